// End-to-end test of the browser console: the real `idm` binary with a
// fresh data folder, driven by headless Chromium from Debian
// (/usr/bin/chromium) through playwright-core. Never downloads a browser.
//
// Fails on any console error (CSP violations included), uncaught page
// error, failed request, or unexpected 4xx/5xx answer. Screenshots go to
// <repo>/test-artifacts/e2e/ (git-ignored).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { artifacts, launchWatchedPage, startIdm } from "./harness.mjs";

const ADMIN = "admin@study.example";
const ADMIN_PASSWORD = "correct horse battery staple";
const STAFF = "staff@study.example";
const STAFF_PASSWORD = "a staff member's passphrase";
const TEMP = "temp@study.example";

let server;
let base;
let dataDir;
let profileDir;
let context;
let page;
const problems = [];
// Requests htmx made (they carry HX-Request), to prove the pages are
// enhanced and not only working as plain forms.
const htmxRequests = [];
// Answers with an error status that a step provokes on purpose.
const expectedErrors = new Set();

async function shot(name) {
  // caret "initial": hiding the caret injects an inline style, which the
  // CSP blocks (and this test would report).
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true, caret: "initial" });
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  profileDir = mkdtempSync(join(tmpdir(), "idm-e2e-chromium-"));
  server = await startIdm({ name: "console" });
  ({ base, dataDir } = server);

  ({ context, page } = await launchWatchedPage(profileDir, { width: 1280, height: 860 }, { problems, htmxRequests, expectedErrors }));
});

after(async () => {
  await context?.close();
  server?.stop();
  rmSync(profileDir, { recursive: true, force: true });
});

function assertNoProblems(step) {
  assert.deepEqual(problems, [], `${step}: ${problems.join("\n")}`);
}

test("first run, user management, sign-out and the 403 page", async (t) => {
  await t.test("first run: /init creates the administrator", async () => {
    await page.goto(`${base}/init`);
    await page.getByLabel("Email").fill(ADMIN);
    await page.getByLabel("Password", { exact: true }).fill(ADMIN_PASSWORD);
    await page.getByLabel("Repeat password").fill(ADMIN_PASSWORD);
    await shot("01-init-form");
    await page.getByRole("button", { name: "Create administrator" }).click();
    await page.getByText(`The administrator ${ADMIN} was created.`).waitFor();
    await shot("02-init-done");
    assertNoProblems("init");
  });

  await t.test("login lands on user management", async () => {
    await page.getByRole("link", { name: "Sign in" }).click();
    await page.waitForURL(`${base}/login`);
    await page.getByLabel("Email").fill(ADMIN);
    await page.getByLabel("Password").fill(ADMIN_PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${base}/users`);
    await page.getByText(`Signed in as ${ADMIN}`).waitFor();
    await shot("03-users");
    assertNoProblems("login");
  });

  await t.test("create users", async () => {
    for (const username of [STAFF, TEMP]) {
      await page.getByLabel("Email", { exact: true }).fill(username);
      await page.getByLabel("Initial password").fill(STAFF_PASSWORD);
      await page.getByRole("button", { name: "Create user" }).click();
      await page.getByText(`Created ${username} as staff member.`).waitFor();
    }
    const row = page.getByRole("row").filter({ hasText: STAFF });
    await row.getByText("Staff", { exact: true }).waitFor();
    // The form is empty again and the password never comes back.
    assert.equal(await page.getByLabel("Initial password").inputValue(), "");
    assert.ok(htmxRequests.includes("POST /users"), `htmx did not post: ${htmxRequests}`);
    await shot("04-users-created");
    assertNoProblems("create");
  });

  await t.test("make admin, then remove admin", async () => {
    const row = () => page.getByRole("row").filter({ hasText: STAFF });
    await row().getByRole("button", { name: `Make admin: ${STAFF}` }).click();
    await page.getByText(`${STAFF} is now an administrator.`).waitFor();
    await row().getByText("Admin", { exact: true }).waitFor();
    await shot("05-made-admin");
    await row().getByRole("button", { name: `Remove admin from ${STAFF}` }).click();
    await page.getByText(`${STAFF} is no longer an administrator.`).waitFor();
    await row().getByText("Staff", { exact: true }).waitFor();
    assertNoProblems("toggle admin");
  });

  await t.test("send a password reset email", async () => {
    const row = () => page.getByRole("row").filter({ hasText: STAFF });
    await row().getByRole("button", { name: `Send reset email to ${STAFF}` }).click();
    await page.getByText(`A password reset link was sent to ${STAFF}.`).waitFor();
    // The file transport (the embedded default) wrote the mail.
    const mails = readdirSync(join(dataDir, "outbox")).filter((f) => f.endsWith(".eml"));
    assert.equal(mails.length, 1, `outbox: ${mails}`);
    const mail = readFileSync(join(dataDir, "outbox", mails[0]), "utf8");
    assert.ok(mail.includes(STAFF), "the mail goes to the staff member");
    await shot("05b-reset-sent");
    assertNoProblems("send reset email");
  });

  await t.test("search filters the list", async () => {
    await page.getByLabel("Search users").fill("temp");
    await page.waitForURL(`${base}/users?q=temp`);
    await page.getByText("1 user · page 1 of 1").waitFor();
    assert.equal(await page.getByRole("row").filter({ hasText: STAFF }).count(), 0);
    await page.setViewportSize({ width: 390, height: 844 });
    await shot("06-users-search-phone");
    await page.setViewportSize({ width: 1280, height: 860 });
    assertNoProblems("search");
  });

  await t.test("delete a user after confirmation", async () => {
    await page.getByRole("link", { name: `Delete ${TEMP}` }).click();
    await page.getByText(`Delete ${TEMP}?`).waitFor();
    await shot("07-delete-confirm");
    await page.getByRole("button", { name: "Delete user" }).click();
    await page.getByText(`Deleted ${TEMP}.`).waitFor();
    assert.ok(htmxRequests.includes("GET /users/delete"), `${htmxRequests}`);
    assert.ok(htmxRequests.includes("POST /users/delete"), `${htmxRequests}`);
    assert.equal(await page.getByRole("row").filter({ hasText: TEMP }).count(), 0);
    await shot("08-deleted");
    assertNoProblems("delete");
  });

  await t.test("logout", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(`${base}/login?signed_out=1`);
    await page.getByText("You have signed out.").waitFor();
    await shot("09-signed-out");
    assertNoProblems("logout");
  });

  await t.test("a non-admin sees no user management", async () => {
    await page.getByLabel("Email").fill(STAFF);
    await page.getByLabel("Password").fill(STAFF_PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${base}/home`);
    assert.equal(await page.getByRole("link", { name: "Users" }).count(), 0);
    expectedErrors.add({ path: "/users", status: 403 });
    const response = await page.goto(`${base}/users`);
    assert.equal(response.status(), 403);
    await page.getByRole("heading", { name: "Access denied" }).waitFor();
    await shot("10-forbidden");
    assertNoProblems("403 page");
  });
});
