// End-to-end test of password recovery: the real `idm` binary with the
// file mail transport (each mail is an .eml file in <data_dir>/outbox),
// driven by headless Chromium from Debian (/usr/bin/chromium) through
// playwright-core.
//
// The emailed link is always opened in a fresh browser profile, as a person
// opens it from their mail program: nothing carries over from the browser
// that asked for it. Both ways to get a link are covered: `/iforgot`, and an
// administrator's "Send reset email" on the users page. Fails on any console
// error (CSP violations included), page error, failed request or unexpected
// 4xx/5xx. Screenshots go to <repo>/test-artifacts/e2e/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { artifacts, launchWatchedPage, startIdm } from "./harness.mjs";

const ADMIN = "admin@study.example";
const ADMIN_PASSWORD = "correct horse battery staple";
// Forgets their password and uses /iforgot.
const FORGETFUL = "forgetful@study.example";
// Gets a link from the administrator.
const STAFF = "staff@study.example";
const OLD_PASSWORD = "the old passphrase of a staff member";

let server;
let base;
let dataDir;
const profileDirs = [];
const contexts = [];
// Problems of every browser of this file: none may have any.
const problems = [];

function assertNoProblems(step) {
  assert.deepEqual(problems, [], `${step}: ${problems.join("\n")}`);
}

async function shot(page, name) {
  // caret "initial": hiding the caret injects an inline style, which the
  // CSP blocks (and this test would report).
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true, caret: "initial" });
}

// A browser with a profile of its own, watched like every e2e page.
async function freshBrowser(name) {
  const profileDir = mkdtempSync(join(tmpdir(), `idm-e2e-recovery-${name}-`));
  profileDirs.push(profileDir);
  const expectedErrors = new Set();
  const { context, page } = await launchWatchedPage(
    profileDir,
    { width: 1280, height: 860 },
    { problems, htmxRequests: [], expectedErrors },
  );
  contexts.push(context);
  return { context, page, expectedErrors };
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  server = await startIdm({
    name: "recovery",
    users: [
      { username: ADMIN, password: ADMIN_PASSWORD, admin: true },
      { username: FORGETFUL, password: OLD_PASSWORD },
      { username: STAFF, password: OLD_PASSWORD },
    ],
  });
  ({ base, dataDir } = server);
});

after(async () => {
  for (const context of contexts) await context.close();
  server?.stop();
  for (const dir of profileDirs) rmSync(dir, { recursive: true, force: true });
});

// ------------------------------------------------------------ mail files

// The body of one MIME part, undone from its transfer encoding.
function decodePart(headers, body) {
  const encoding = (headers["content-transfer-encoding"] ?? "7bit").toLowerCase();
  if (encoding === "base64") return Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8");
  if (encoding === "quoted-printable") {
    const bytes = [];
    const text = body.replace(/=\r?\n/g, "");
    for (let i = 0; i < text.length; i++) {
      if (text[i] === "=" && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
        bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
        i += 2;
      } else {
        bytes.push(...Buffer.from(text[i], "utf8"));
      }
    }
    return Buffer.from(bytes).toString("utf8");
  }
  return body;
}

// Headers (lower-case names, folded lines joined) and body of a message
// or part.
function splitMessage(raw) {
  const text = raw.replace(/\r\n/g, "\n");
  const end = text.indexOf("\n\n");
  const head = text.slice(0, end).replace(/\n[ \t]+/g, " ");
  const headers = {};
  for (const line of head.split("\n")) {
    const colon = line.indexOf(":");
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { headers, body: text.slice(end + 2) };
}

// A mail file of the outbox as {to, subject, text, html}.
function readMail(path) {
  const { headers, body } = splitMessage(readFileSync(path, "utf8"));
  const mail = { file: path, to: headers.to, subject: headers.subject, text: "", html: "" };
  const boundary = /boundary="?([^";]+)"?/.exec(headers["content-type"] ?? "")?.[1];
  const parts = boundary
    ? body.split(`--${boundary}`).slice(1, -1).map((p) => splitMessage(p.replace(/^\n/, "")))
    : [{ headers, body }];
  for (const part of parts) {
    const type = part.headers["content-type"] ?? "text/plain";
    const decoded = decodePart(part.headers, part.body);
    if (type.startsWith("text/html")) mail.html = decoded;
    else if (type.startsWith("text/plain")) mail.text = decoded;
  }
  return mail;
}

const mailsSeen = new Set();

// Waits for the next new mail in the outbox that `wanted` accepts. Mail is
// written after the page has answered, so the file is the signal.
async function nextMail(wanted) {
  const outbox = join(dataDir, "outbox");
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const files = existsSync(outbox) ? readdirSync(outbox).filter((f) => f.endsWith(".eml")) : [];
    for (const file of files) {
      if (mailsSeen.has(file)) continue;
      const mail = readMail(join(outbox, file));
      if (wanted(mail)) {
        mailsSeen.add(file);
        return mail;
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no such mail arrived in ${outbox}\n${server.log()}`);
}

function resetLink(mail) {
  const link = /(http:\/\/\S+\/reset\?k=[0-9a-f]+)/.exec(mail.text)?.[1];
  assert.ok(link, `no reset link in:\n${mail.text}`);
  assert.ok(mail.html.includes(`href="${link}"`), "the HTML part has the same link");
  return link;
}

// ------------------------------------------------------------ steps

// Opens the emailed `link` in `browser` and sets `password`, after first
// mistyping the confirmation. Checks that the key never shows in the
// address bar or in any Referer, and that the form posts with our Origin.
async function chooseNewPassword(browser, link, username, password, shotPrefix) {
  const { page, expectedErrors } = browser;
  const key = new URL(link).searchParams.get("k");
  const sent = [];
  page.on("request", (request) => sent.push(request.allHeaders().then((headers) => ({ request, headers }))));

  await page.goto(link);
  // The key left the address bar (and so the history) at once.
  assert.equal(page.url(), `${base}/reset`);
  await page.getByRole("heading", { name: "Choose a new password" }).waitFor();
  await page.getByText(`This link sets the password of the account ${username}.`).waitFor();
  // The rules are on the page before anyone types.
  await page.getByText(/^At least 8 characters;.*common passwords are not accepted\.$/).waitFor();
  await shot(page, `${shotPrefix}-reset-form`);

  const newPassword = page.getByLabel("New password", { exact: true });
  const confirmation = page.getByLabel("Repeat the new password", { exact: true });
  expectedErrors.add({ path: "/reset", status: 400 });
  await newPassword.fill(password);
  await confirmation.fill(`${password} with a typo`);
  await page.getByRole("button", { name: "Set new password" }).click();
  await page.locator('#reset-password2[aria-invalid="true"]').waitFor();
  const describedBy = await confirmation.getAttribute("aria-describedby");
  assert.equal(await page.locator(`#${describedBy}`).innerText(), "The passwords do not match.");
  const confirmationField = page.locator(".field", { has: confirmation });
  assert.equal(await confirmationField.getByText("The passwords do not match.").count(), 1);
  assert.equal(await newPassword.getAttribute("aria-invalid"), null, "the new password itself is fine");
  assert.equal(page.url(), `${base}/reset`);
  await shot(page, `${shotPrefix}-reset-mismatch`);
  expectedErrors.clear();

  await newPassword.fill(password);
  await confirmation.fill(password);
  await page.getByRole("button", { name: "Set new password" }).click();
  await page.getByRole("heading", { name: "Password changed" }).waitFor();
  await page.getByText("Your password was changed.").waitFor();
  await shot(page, `${shotPrefix}-reset-done`);

  const requests = await Promise.all(sent);
  const posts = requests.filter(({ request }) => request.method() === "POST");
  assert.equal(posts.length, 2, "the mismatch and the real submission");
  for (const { headers } of posts) assert.equal(headers.origin, base, "the form posts with this site's Origin");
  for (const { request, headers } of requests) {
    assert.ok(!(headers.referer ?? "").includes(key), `Referer with the key: ${request.url()}`);
    if (request.url() !== link) assert.ok(!request.url().includes(key), `the key in ${request.url()}`);
  }

  // Spent: the same link now says so, and where to get a new one.
  expectedErrors.add({ path: "/reset", status: 400 });
  const again = await page.goto(link);
  assert.equal(again.status(), 400);
  await page.getByRole("heading", { name: "This link does not work" }).waitFor();
  await page.getByText("This reset link is invalid, was already used, was replaced by a newer one or has expired.").waitFor();
  assert.equal(await page.getByRole("link", { name: "ask for a new link" }).getAttribute("href"), "/iforgot");
  await shot(page, `${shotPrefix}-reset-spent`);
  expectedErrors.clear();
}

async function signIn(page, username, password, landing) {
  await page.goto(`${base}/login`);
  await page.getByLabel("Email").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}${landing}`);
  await page.getByText(`Signed in as ${username}`, { exact: true }).waitFor();
}

// ------------------------------------------------------------ tests

test("a forgotten password is reset through the link from /iforgot", async () => {
  const asking = await freshBrowser("asking");
  const { page } = asking;
  await page.goto(`${base}/login`);
  await page.getByRole("link", { name: "Forgot your password?" }).click();
  await page.waitForURL(`${base}/iforgot`);
  await page.getByRole("heading", { name: "Forgot your password?" }).waitFor();
  await shot(page, "recovery-01-iforgot");

  // A typo in the address is shown below the field, as a sentence.
  asking.expectedErrors.add({ path: "/iforgot", status: 400 });
  await page.getByLabel("Email").fill("forgetful at study.example");
  await page.getByRole("button", { name: "Send reset link" }).click();
  await page.locator('#iforgot-username[aria-invalid="true"]').waitFor();
  const describedBy = await page.getByLabel("Email").getAttribute("aria-describedby");
  assert.equal(
    await page.locator(`#${describedBy}`).innerText(),
    "Enter the email address you sign in with, like name@example.org.",
  );
  await shot(page, "recovery-02-iforgot-error");
  asking.expectedErrors.clear();

  await page.getByLabel("Email").fill(FORGETFUL);
  await page.getByRole("button", { name: "Send reset link" }).click();
  await page.getByRole("heading", { name: "Check your email" }).waitFor();
  await page.getByText(/If an account exists for this email address/).waitFor();
  await shot(page, "recovery-03-iforgot-sent");
  assertNoProblems("/iforgot");

  const mail = await nextMail((m) => m.to === FORGETFUL && m.text.includes("/reset?k="));
  assert.equal(mail.subject, "Reset your C3-PRO IDM password");
  assert.match(mail.text, /We received a request to reset the password of your C3-PRO IDM\s+account/);
  assert.doesNotMatch(mail.text, /administrator of/);
  const link = resetLink(mail);

  // The link is opened elsewhere: a browser that never saw this site.
  const opening = await freshBrowser("link-from-iforgot");
  await chooseNewPassword(opening, link, FORGETFUL, "a fresh passphrase after forgetting", "recovery-04");
  await signIn(opening.page, FORGETFUL, "a fresh passphrase after forgetting", "/home");
  assertNoProblems("reset through /iforgot");
});

test("a reset email sent by an administrator from the users page", async () => {
  const admin = await freshBrowser("admin");
  await signIn(admin.page, ADMIN, ADMIN_PASSWORD, "/users");
  const row = admin.page.getByRole("row").filter({ hasText: STAFF });
  await row.getByRole("button", { name: `Send reset email to ${STAFF}` }).click();
  await admin.page.getByText(`A password reset link was sent to ${STAFF}.`).waitFor();
  assertNoProblems("send reset email");

  const mail = await nextMail((m) => m.to === STAFF && m.text.includes("/reset?k="));
  assert.equal(mail.subject, "Set a new password for your C3-PRO IDM account");
  assert.match(
    mail.text,
    /An administrator of C3-PRO IDM has sent you a link to set a new password\s+for your account staff@study\.example\./,
  );
  assert.doesNotMatch(mail.text + mail.html, /hopefully you|We received a request/);
  const link = resetLink(mail);

  const opening = await freshBrowser("link-from-admin");
  await chooseNewPassword(opening, link, STAFF, "a passphrase chosen after the admin's mail", "recovery-05");
  await signIn(opening.page, STAFF, "a passphrase chosen after the admin's mail", "/home");
  assertNoProblems("reset sent by an administrator");
});
