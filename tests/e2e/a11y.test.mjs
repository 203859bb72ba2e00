// Accessibility of every console page and state, checked with axe-core
// (WCAG 2.0-2.2 A and AA, and axe's best practices) in Debian's headless
// Chromium through playwright-core: first run, sign-in with an error, the
// start page, the subject list (empty, with rows, filtered), the
// new-subject form with errors, a subject with its step confirmation and
// QR dialog open, the printable invitation, user management with an error
// and a sent reset email, and password recovery. Any violation fails the
// test with the rule and the elements it found.
//
// The page under test is watched like in the other browser tests: console
// errors (CSP violations included), page errors, failed requests and
// unexpected 4xx/5xx answers fail it too. Screenshots go to
// <repo>/test-artifacts/e2e/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { artifacts, checkAccessibility, launchWatchedPage, startIdm } from "./harness.mjs";

const ADMIN = "admin@a11y.example";
const ADMIN_PASSWORD = "an accessible admin passphrase";
const STAFF = "staff@a11y.example";
const STAFF_PASSWORD = "an accessible staff passphrase";
const SSSID = "A11Y-0001";
const NAME = "Ada Lovelace";

let server;
let base;
let dataDir;
let profileDir;
let context;
let page;
const problems = [];
const htmxRequests = [];
const expectedErrors = new Set();

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  profileDir = mkdtempSync(join(tmpdir(), "idm-e2e-a11y-chromium-"));
  server = await startIdm({ name: "a11y", env: { IDM_LINK_SECRET: randomBytes(32).toString("hex") } });
  ({ base, dataDir } = server);
  ({ context, page } = await launchWatchedPage(profileDir, { width: 1280, height: 900 }, { problems, htmxRequests, expectedErrors }));
});

after(async () => {
  await context?.close();
  server?.stop();
  rmSync(profileDir, { recursive: true, force: true });
});

// Checks the page as it is now, keeps a screenshot of it, and fails on
// anything the watched page collected on the way.
async function check(name) {
  await page.screenshot({ path: join(artifacts, `a11y-${name}.png`), fullPage: true, caret: "initial" });
  await checkAccessibility(page, name);
  assert.deepEqual(problems, [], `${name}: ${problems.join("\n")}`);
}

function expectError(path, status) {
  expectedErrors.add({ path, status });
}

// The reset link of the first mail to `recipient` that is not in `seen`,
// waiting for it: the reset mail of /iforgot is sent after the answer.
async function resetLinkMailedTo(recipient, seen) {
  const outbox = join(dataDir, "outbox");
  for (let i = 0; i < 100; i++) {
    for (const file of readdirSync(outbox).filter((f) => f.endsWith(".eml") && !seen.has(f))) {
      // Quoted-printable: soft line breaks and =XX escapes (`k=` is `k=3D`).
      const text = readFileSync(join(outbox, file), "utf8")
        .replace(/=\r?\n/g, "")
        .replace(/=([0-9A-F]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
      const link = text.match(/\/reset\?k=([A-Za-z0-9_-]+)/);
      if (text.includes(`To: ${recipient}`) && link) return `${base}/reset?k=${link[1]}`;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no reset mail to ${recipient}`);
}

function mailsSoFar() {
  return new Set(readdirSync(join(dataDir, "outbox")));
}

test("every console page and state has no accessibility violations", async (t) => {
  await t.test("first run", async () => {
    await page.goto(`${base}/init`);
    await check("init");
    expectError("/init", 400);
    await page.getByRole("button", { name: "Create administrator" }).click();
    await page.locator('[aria-invalid="true"]').first().waitFor();
    await check("init-errors");
    await page.getByLabel("Email").fill(ADMIN);
    await page.getByLabel("Password", { exact: true }).fill(ADMIN_PASSWORD);
    await page.getByLabel("Repeat password").fill(ADMIN_PASSWORD);
    await page.getByRole("button", { name: "Create administrator" }).click();
    await page.getByText(`The administrator ${ADMIN} was created.`).waitFor();
    await check("init-done");
  });

  await t.test("sign-in with an error, then the start page", async () => {
    await page.goto(`${base}/login`);
    await check("login");
    expectError("/login", 401);
    await page.getByLabel("Email").fill(ADMIN);
    await page.getByLabel("Password").fill("not the password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("#login-error").waitFor();
    await check("login-error");
    await page.getByLabel("Password").fill(ADMIN_PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(/\/(users|home)$/);
    await page.goto(`${base}/home`);
    await check("home-empty");
  });

  await t.test("subjects: empty, new with errors, with rows, filtered", async () => {
    await page.goto(`${base}/subjects`);
    await page.getByText("No subjects yet.").waitFor();
    await check("subjects-empty");
    await page.goto(`${base}/subjects/new`);
    await check("subject-new");
    expectError("/subjects", 400);
    await page.getByRole("button", { name: "Create subject" }).click();
    await page.locator("#new-subject-bday-error").waitFor();
    await check("subject-new-errors");
    await page.getByLabel("SSSID").fill(SSSID);
    await page.getByLabel("Name").fill(NAME);
    await page.getByLabel("Birth date").fill("1980-02-29");
    await page.getByRole("button", { name: "Create subject" }).click();
    await page.waitForURL(`${base}/subjects/${SSSID}`);
    await check("subject-created");
    for (const [sssid, name] of [["A11Y-0002", "Grace Hopper"], ["A11Y-0003", "Katherine Johnson"]]) {
      await page.goto(`${base}/subjects/new`);
      await page.getByLabel("SSSID").fill(sssid);
      await page.getByLabel("Name").fill(name);
      await page.getByLabel("Birth date").fill("1918-08-26");
      await page.getByRole("button", { name: "Create subject" }).click();
      await page.waitForURL(`${base}/subjects/${sssid}`);
    }
    await page.goto(`${base}/subjects`);
    await page.getByText("3 subjects").waitFor();
    await check("subjects-rows");
    await page.getByLabel("Search subjects").fill("hopper");
    await page.waitForURL(/q=hopper/);
    await page.getByText("1 subject ·").waitFor();
    await check("subjects-filtered");
    await page.getByLabel("Search subjects").fill("nobody at all");
    await page.getByText("No subject matches.").waitFor();
    await check("subjects-no-match");
    await page.goto(`${base}/home`);
    await check("home-with-subjects");
  });

  await t.test("a subject: step confirmation, QR dialog, printable invitation", async () => {
    await page.goto(`${base}/subjects/${SSSID}`);
    await check("subject");
    await page.getByRole("link", { name: "Record consent…" }).click();
    await page.getByRole("alertdialog").waitFor();
    await check("subject-confirm-consent");
    await page.getByRole("button", { name: "Record consent" }).click();
    await page.getByText("Consent recorded.").waitFor();
    await check("subject-consented");
    await page.getByRole("link", { name: "Record withdrawal…" }).click();
    await page.getByRole("alertdialog").waitFor();
    await check("subject-confirm-withdrawal");
    await page.getByRole("link", { name: "Cancel" }).click();
    await page.getByRole("alertdialog").waitFor({ state: "detached" });
    await page.goto(`${base}/subjects?status=not-invited`);
    await check("subjects-not-invited");
    await page.goto(`${base}/subjects/${SSSID}`);
    await page.getByRole("button", { name: `Show the QR code for ${SSSID}` }).click();
    const dialog = page.getByRole("dialog", { name: `Invitation for ${NAME}` });
    await dialog.waitFor();
    await check("subject-qr-dialog");
    await dialog.getByRole("link", { name: "Printable invitation" }).click();
    await page.getByRole("heading", { name: "Your invitation to the study" }).waitFor();
    await check("invitation-printable");
  });

  await t.test("users: a create error, a sent reset email, a delete confirmation", async () => {
    await page.goto(`${base}/users`);
    await check("users");
    expectError("/users", 400);
    await page.getByLabel("Email", { exact: true }).fill("not an address");
    await page.getByLabel("Initial password").fill("short");
    await page.getByRole("button", { name: "Create user" }).click();
    await page.locator("#new-user-username-error").waitFor();
    await check("users-create-error");
    await page.getByLabel("Email", { exact: true }).fill(STAFF);
    await page.getByLabel("Initial password").fill(STAFF_PASSWORD);
    await page.getByRole("button", { name: "Create user" }).click();
    await page.getByText(`Created ${STAFF} as staff member.`).waitFor();
    await check("users-created");
    const row = page.getByRole("row").filter({ hasText: STAFF });
    await row.getByRole("button", { name: `Send reset email to ${STAFF}` }).click();
    await page.getByText(`A password reset link was sent to ${STAFF}.`).waitFor();
    await check("users-reset-sent");
    await row.getByRole("link", { name: `Delete ${STAFF}` }).click();
    await page.getByText(`Delete ${STAFF}?`).waitFor();
    await check("users-delete-confirm");
  });

  await t.test("password recovery", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(`${base}/login?signed_out=1`);
    await check("signed-out");
    await page.goto(`${base}/login?next=%2Fsubjects&ended=form`);
    await page.getByText("Your session ended.").waitFor();
    await check("login-session-ended");
    await page.goto(`${base}/iforgot`);
    await check("iforgot");
    const seen = mailsSoFar();
    await page.getByLabel("Email").fill(STAFF);
    await page.getByRole("button", { name: "Send reset link" }).click();
    await page.getByRole("heading", { name: "Check your email" }).waitFor();
    await check("iforgot-sent");
    await page.goto(await resetLinkMailedTo(STAFF, seen));
    await page.getByLabel("New password", { exact: true }).waitFor();
    await check("reset");
    expectError("/reset", 400);
    await page.getByLabel("New password", { exact: true }).fill("a brand new passphrase");
    await page.getByLabel("Repeat the new password").fill("a different passphrase");
    await page.getByRole("button", { name: "Set new password" }).click();
    await page.getByText("The passwords do not match.").waitFor();
    await check("reset-mismatch");
  });
});

test("the accessibility check fails on a violation and names it", async () => {
  // A button whose accessible name leaves out its visible text, like the
  // users page's "Send reset email" once did.
  const scratch = await context.newPage();
  try {
    await scratch.setContent('<!DOCTYPE html><html lang="en"><head><title>Scratch</title></head><body><main><h1>Scratch</h1><button aria-label="Send a link">Send reset email</button></main></body></html>');
    await assert.rejects(checkAccessibility(scratch, "scratch"), /scratch: 1 accessibility violation\(s\)\n  label-content-name-mismatch \(serious\)/);
  } finally {
    await scratch.close();
  }
});
