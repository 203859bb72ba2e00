// End-to-end test of the staff account lifecycle: the real `idm` binary
// with the file mail transport, headless Chromium from Debian
// (/usr/bin/chromium) through playwright-core.
//
// An admin invites a staff member on the users page; the invitation
// mail's link, opened in a fresh browser, sets the password; the new user
// sets up two-factor sign-in (this test reads the secret from the page and
// computes the codes, as an authenticator app would), signs out, signs in
// with password and code, uses a recovery code once (the second use is
// refused), changes the password on the account page (the other session
// ends); the admin disables the account (the open session and the API
// token stop at once). A monitor sees subjects and audits with no write
// control, and the API refuses every write with 403. With
// `mfa_required = admins` an admin without a second factor reaches only
// the enrolment until done. Fails on any console error, page error,
// failed request or unexpected 4xx/5xx. Screenshots go to
// <repo>/test-artifacts/e2e/.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { apiClient, artifacts, launchWatchedPage, startIdm } from "./harness.mjs";

const ADMIN = "admin@study.example";
const ADMIN_PASSWORD = "correct horse battery staple";
const STAFF = "new.nurse@study.example";
const STAFF_PASSWORD = "a nurse's own passphrase";
const NEW_PASSWORD = "a nurse's second passphrase";
const MONITOR = "monitor@sponsor.example";
const MONITOR_PASSWORD = "a monitor's passphrase";

const cleanups = [];
const problems = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});
mkdirSync(artifacts, { recursive: true });

function assertNoProblems(step) {
  assert.deepEqual(problems, [], `${step}: ${problems.join("\n")}`);
}

async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, `accounts-${name}.png`), fullPage: true, caret: "initial" });
}

// A browser with a profile of its own, as a person opening a mail would.
async function freshBrowser(name) {
  const profileDir = mkdtempSync(join(tmpdir(), `idm-e2e-accounts-${name}-`));
  const expectedErrors = new Set();
  const { context, page } = await launchWatchedPage(
    profileDir,
    { width: 1280, height: 900 },
    { problems, htmxRequests: [], expectedErrors },
  );
  cleanups.push(async () => {
    await context.close();
    rmSync(profileDir, { recursive: true, force: true });
  });
  return { page, expectedErrors };
}

// ------------------------------------------------------------ TOTP (RFC 6238)

function base32Decode(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of text.replace(/=+$/, "").toUpperCase()) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 255);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

// The 6-digit code of `secret` for the 30-second step `step`.
function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const hash = createHmac("sha1", base32Decode(secret)).update(counter).digest();
  const offset = hash[19] & 15;
  const number = ((hash[offset] & 127) << 24) | (hash[offset + 1] << 16) | (hash[offset + 2] << 8) | hash[offset + 3];
  return String(number % 1_000_000).padStart(6, "0");
}

// Each code works once: steps already used are skipped (one step of
// drift either way is accepted).
const usedSteps = new Set();
function nextCode(secret) {
  const now = Math.floor(Date.now() / 30_000);
  for (const step of [now, now + 1]) {
    if (!usedSteps.has(step) && ![...usedSteps].some((s) => s > step)) {
      usedSteps.add(step);
      return totp(secret, step);
    }
  }
  throw new Error("no unused step within the drift; the test took too long");
}

// ------------------------------------------------------------ mail

function readMailText(path) {
  const raw = readFileSync(path, "utf8").replace(/\r\n/g, "\n");
  const decoded = raw.replace(/=\n/g, "").replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
  return decoded;
}

async function invitationLink(dataDir, to) {
  const outbox = join(dataDir, "outbox");
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const files = existsSync(outbox) ? readdirSync(outbox).filter((f) => f.endsWith(".eml")) : [];
    for (const file of files) {
      const text = readMailText(join(outbox, file));
      if (!text.includes(`To: ${to}`)) continue;
      const link = /(http:\/\/\S+\/welcome\?k=[0-9a-f]{64})/.exec(text)?.[1];
      if (link) return link;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no invitation mail to ${to}`);
}

// ------------------------------------------------------------ steps

// Opens `url` once the current page has loaded: leaving a page while its
// scripts still load makes Chromium report them as failed requests.
async function go(page, url) {
  await page.waitForLoadState("load");
  await page.goto(url);
}

async function signIn(page, base, username, password) {
  await go(page, `${base}/login`);
  await page.getByLabel("Email", { exact: true }).fill(username);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

async function enterCode(page, code) {
  await page.getByRole("heading", { name: "Two-factor sign-in" }).waitFor();
  await page.getByLabel("Code", { exact: true }).fill(code);
  await page.getByRole("button", { name: "Verify" }).click();
}

async function signOut(page, base) {
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await page.waitForURL(`${base}/login?signed_out=1`);
}

test("the account lifecycle from invitation to disabling", async () => {
  const server = await startIdm({
    name: "accounts",
    users: [{ username: ADMIN, password: ADMIN_PASSWORD, admin: true }],
  });
  cleanups.push(async () => server.stop());
  const { base, dataDir } = server;
  const { api: adminApi } = await apiClient(base, ADMIN, ADMIN_PASSWORD);
  await adminApi("POST", "/subject", { sssid: "S1", name: "Ada Lovelace", bday: "1980-02-29" }, 201);

  // The admin invites a staff member: no password to type or know.
  const admin = await freshBrowser("admin");
  await signIn(admin.page, base, ADMIN, ADMIN_PASSWORD);
  await admin.page.waitForURL(`${base}/users`);
  await admin.page.getByLabel("Email", { exact: true }).fill(STAFF);
  await admin.page.getByLabel("Role").selectOption("staff");
  await admin.page.getByRole("button", { name: "Create user" }).click();
  await admin.page.getByText(`Invited ${STAFF} as staff member.`).waitFor();
  await admin.page.getByRole("row").filter({ hasText: STAFF }).getByText("Invited", { exact: true }).waitFor();
  await shot(admin.page, "01-invited");
  assertNoProblems("invite");

  // The mail's link, in a fresh browser, sets the password.
  const link = await invitationLink(dataDir, STAFF);
  const welcome = await freshBrowser("welcome");
  await go(welcome.page, link);
  assert.equal(welcome.page.url(), `${base}/welcome`, "the key left the address bar");
  await welcome.page.getByText(`Your account ${STAFF} is ready.`).waitFor();
  await welcome.page.getByLabel("Password", { exact: true }).fill(STAFF_PASSWORD);
  await welcome.page.getByLabel("Repeat the password").fill(STAFF_PASSWORD);
  await shot(welcome.page, "02-welcome");
  await welcome.page.getByRole("button", { name: "Set password" }).click();
  await welcome.page.getByText("Your account is active.").waitFor();
  assertNoProblems("welcome");

  // The new user sets up two-factor sign-in on the account page.
  const user = await freshBrowser("user");
  await signIn(user.page, base, STAFF, STAFF_PASSWORD);
  await user.page.waitForURL(`${base}/home`);
  await user.page.getByRole("link", { name: "Account" }).click();
  await user.page.getByLabel("Password", { exact: true }).fill(STAFF_PASSWORD);
  await user.page.getByRole("button", { name: "Set up two-factor sign-in" }).click();
  await user.page.getByRole("heading", { name: "Set up two-factor sign-in" }).waitFor();
  assert.ok(await user.page.locator('img[src^="data:image/svg+xml;base64,"]').isVisible(), "a QR code");
  const secret = (await user.page.locator("#totp-secret").innerText()).trim();
  const recovery = await user.page.locator("#recovery-codes li").allInnerTexts();
  assert.equal(recovery.length, 10);
  await shot(user.page, "03-enrolment");
  await user.page.getByLabel("Code from the app", { exact: true }).fill(nextCode(secret));
  await user.page.getByRole("button", { name: "Turn on two-factor sign-in" }).click();
  await user.page.getByText("Two-factor sign-in is on.").first().waitFor();
  assert.equal(await user.page.getByText(secret).count(), 0, "the secret is not shown again");
  await signOut(user.page, base);
  assertNoProblems("enrolment");

  // Password and code.
  await signIn(user.page, base, STAFF, STAFF_PASSWORD);
  await user.page.waitForURL(`${base}/login/code`);
  await enterCode(user.page, nextCode(secret));
  await user.page.waitForURL(`${base}/home`);
  await signOut(user.page, base);

  // A recovery code works once.
  await signIn(user.page, base, STAFF, STAFF_PASSWORD);
  await enterCode(user.page, recovery[0]);
  await user.page.waitForURL(`${base}/home`);
  const elsewhere = await freshBrowser("elsewhere");
  elsewhere.expectedErrors.add({ path: "/login/code", status: 401 });
  await signIn(elsewhere.page, base, STAFF, STAFF_PASSWORD);
  await enterCode(elsewhere.page, recovery[0]);
  await elsewhere.page.getByText("Wrong code.").waitFor();
  await shot(elsewhere.page, "04-recovery-code-reused");
  elsewhere.expectedErrors.clear();
  await enterCode(elsewhere.page, recovery[1]);
  await elsewhere.page.waitForURL(`${base}/home`);
  assertNoProblems("second factor");

  // A new password on the account page ends the other session.
  await user.page.getByRole("link", { name: "Account" }).click();
  await user.page.getByText("This session").waitFor();
  await user.page.getByLabel("Current password").fill(STAFF_PASSWORD);
  await user.page.getByLabel("New password", { exact: true }).fill(NEW_PASSWORD);
  await user.page.getByLabel("Repeat the new password").fill(NEW_PASSWORD);
  await user.page.getByRole("button", { name: "Change password" }).click();
  await user.page.getByText("Your password was changed.").waitFor();
  await shot(user.page, "05-password-changed");
  await go(elsewhere.page, `${base}/home`);
  await elsewhere.page.waitForURL(/\/login/);

  // The admin disables the account: its session and token stop at once.
  const tokenAnswer = await fetch(`${base}/auth`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: STAFF, password: NEW_PASSWORD, otp: recovery[2] }),
  });
  assert.equal(tokenAnswer.status, 200);
  const { access_token: token } = await tokenAnswer.json();
  const subjects = () => fetch(`${base}/subject`, { headers: { authorization: `JWT ${token}` } });
  assert.equal((await subjects()).status, 200);
  await go(admin.page, `${base}/users`);
  await admin.page.getByRole("link", { name: STAFF, exact: true }).click();
  await admin.page.getByText("second factor added").first().waitFor();
  await admin.page.getByRole("button", { name: "Disable account" }).click();
  await admin.page.getByText(`${STAFF} is disabled`).waitFor();
  await shot(admin.page, "06-user-detail-disabled");
  assert.equal((await subjects()).status, 401);
  await go(user.page, `${base}/home`);
  await user.page.waitForURL(/\/login/);
  assertNoProblems("disable");
});

test("a monitor reads and changes nothing", async () => {
  const server = await startIdm({
    name: "accounts-monitor",
    users: [{ username: ADMIN, password: ADMIN_PASSWORD, admin: true }],
  });
  cleanups.push(async () => server.stop());
  const { base } = server;
  const { api: adminApi } = await apiClient(base, ADMIN, ADMIN_PASSWORD);
  await adminApi("POST", "/subject", { sssid: "S1", name: "Ada Lovelace", bday: "1980-02-29" }, 201);
  await adminApi("PUT", "/subject/S1", { date_invited: new Date().toISOString() });
  await adminApi("PUT", "/subject/S1", { date_consented: new Date().toISOString() });
  const [link] = [await adminApi("POST", "/subject/S1/links", {})];
  await adminApi("POST", "/user", { username: MONITOR, password: MONITOR_PASSWORD, role: "monitor" }, 201);

  const monitor = await freshBrowser("monitor");
  await signIn(monitor.page, base, MONITOR, MONITOR_PASSWORD);
  await monitor.page.waitForURL(`${base}/home`);
  await monitor.page.getByText("monitor, read only").waitFor();
  for (const path of ["/home", "/subjects", "/subjects/S1"]) {
    await go(monitor.page, `${base}${path}`);
    await monitor.page.getByText("Ada Lovelace").first().waitFor();
    // The only form that posts is the sign-out in the header.
    const posting = await monitor.page.locator('main form[method="post"]').count();
    assert.equal(posting, 0, `${path} has a write control`);
    for (const name of ["New subject", "Save changes", "Record consent…", "QR code", "Revoke"]) {
      assert.equal(await monitor.page.getByRole("button", { name }).count(), 0, `${path}: ${name}`);
      assert.equal(await monitor.page.getByRole("link", { name }).count(), 0, `${path}: ${name}`);
    }
  }
  await monitor.page.getByRole("heading", { name: "Activity" }).waitFor();
  await shot(monitor.page, "07-monitor-subject");
  monitor.expectedErrors.add({ path: "/subjects/new", status: 403 });
  await go(monitor.page, `${base}/subjects/new`);
  await monitor.page.getByText("monitors may read study data but not change it", { exact: false }).waitFor();
  assertNoProblems("monitor console");

  const { api } = await apiClient(base, MONITOR, MONITOR_PASSWORD);
  await api("GET", "/subject", undefined, 200);
  await api("GET", "/subject/S1/audits", undefined, 200);
  const writes = [
    ["POST", "/subject", { sssid: "S2", name: "B", bday: "1990-01-01" }],
    ["PUT", "/subject/S1", { name: "Changed" }],
    ["POST", "/subject/S1/links", {}],
    ["PUT", `/link/${link._id}`, { withdrawn_on: new Date().toISOString() }],
    ["GET", `/link/${link._id}/jwt`, undefined],
    ["POST", "/user", { username: "x@study.example", password: "another passphrase" }],
    ["PUT", `/user/${ADMIN}`, { role: "staff" }],
    ["DELETE", "/user", { username: ADMIN }],
    ["POST", `/user/${ADMIN}/reset`, {}],
    ["POST", `/user/${ADMIN}/invitation`, {}],
    ["DELETE", `/user/${ADMIN}/mfa`, {}],
    ["POST", `/user/${ADMIN}/sessions/revoke`, {}],
    ["POST", `/user/${ADMIN}/unlock`, {}],
  ];
  for (const [method, path, body] of writes) await api(method, path, body, 403);
  const subject = await adminApi("GET", "/subject/S1");
  assert.equal(subject.name, "Ada Lovelace");
});

test("with mfa_required = admins an admin reaches only the enrolment first", async () => {
  const server = await startIdm({
    name: "accounts-required",
    env: { IDM_MFA_REQUIRED: "admins" },
    users: [{ username: ADMIN, password: ADMIN_PASSWORD, admin: true }],
  });
  cleanups.push(async () => server.stop());
  const { base } = server;
  const admin = await freshBrowser("required");
  await signIn(admin.page, base, ADMIN, ADMIN_PASSWORD);
  await admin.page.waitForURL(`${base}/account`);
  await admin.page.getByText("requires two-factor sign-in").waitFor();
  await go(admin.page, `${base}/users`);
  await admin.page.waitForURL(`${base}/account`);
  await shot(admin.page, "08-required");
  await admin.page.getByLabel("Password", { exact: true }).fill(ADMIN_PASSWORD);
  await admin.page.getByRole("button", { name: "Set up two-factor sign-in" }).click();
  const secret = (await admin.page.locator("#totp-secret").innerText()).trim();
  await admin.page.getByLabel("Code from the app", { exact: true }).fill(totp(secret, Math.floor(Date.now() / 30_000)));
  await admin.page.getByRole("button", { name: "Turn on two-factor sign-in" }).click();
  await admin.page.getByText("Two-factor sign-in is on.").first().waitFor();
  await go(admin.page, `${base}/users`);
  await admin.page.getByRole("heading", { name: "User management" }).waitFor();
  assertNoProblems("mfa required");
});
