// End-to-end test of a session that ends while a console page is open:
// the real `idm` binary, headless Chromium from Debian
// (/usr/bin/chromium) through playwright-core.
//
// The session ends behind the page's back (sign-out in a second tab of the
// same browser, or the idle timeout of a server started with
// IDM_SESSION_IDLE_SECS=4); then Save / Create / a search as you type must
// lead to the login page that says so, and after signing in back to the
// page, with what was typed put back and saved only when pressed again.
// Fails on any console error, page error, failed request or unexpected
// 4xx/5xx. Screenshots go to <repo>/test-artifacts/e2e/.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { apiClient, artifacts, chromiumPath, launchWatchedPage, startIdm } from "./harness.mjs";

const STAFF = "nurse@study.example";
const STAFF_PASSWORD = "a study nurse's passphrase";
const SESSION_ENDED = "Your session ended. Sign in again to continue.";
const RESTORED = "Your unsaved input was restored. Check it and save again.";
const KEPT = "What you typed was kept in this browser tab";
const NOT_KEPT = "What you typed into the form could not be kept";
// Short enough to wait for, long enough for the steps between requests.
const IDLE_SECS = 4;

const cleanups = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

mkdirSync(artifacts, { recursive: true });

// A server with a fresh data folder, staff members and subject S1.
async function startServer(extraEnv = {}, users = [STAFF]) {
  const server = await startIdm({
    name: "session",
    env: extraEnv,
    users: users.map((username) => ({ username, password: STAFF_PASSWORD })),
  });
  cleanups.push(async () => server.stop());
  // The subject comes through the JSON API: no browser session involved.
  const { api } = await apiClient(server.base, STAFF, STAFF_PASSWORD);
  await api("POST", "/subject", { sssid: "S1", name: "Ada Lovelace", bday: "1980-02-29" }, 201);
  return server.base;
}

// Chromium with the harness's watched page, in its own profile.
async function openBrowser(viewport = { width: 1200, height: 900 }) {
  const profileDir = mkdtempSync(join(tmpdir(), "idm-e2e-session-chromium-"));
  const watch = { problems: [], htmxRequests: [], expectedErrors: new Set() };
  const { context, page } = await launchWatchedPage(profileDir, viewport, watch);
  cleanups.push(async () => {
    await context.close();
    rmSync(profileDir, { recursive: true, force: true });
  });
  // (An htmx request reported aborted after its HX-Redirect answer is
  // the planned navigation; the harness does not count it.)
  const assertNoProblems = (step) => {
    assert.deepEqual(watch.problems, [], `${step}: ${watch.problems.join("\n")}`);
  };
  return { context, page, watch, assertNoProblems };
}

// A second tab of the same browser (same cookies), watched like the first.
async function secondTab(context, watch) {
  const tab = await context.newPage();
  tab.on("console", (msg) => {
    if (msg.type() === "error") watch.problems.push(`second tab console error: ${msg.text()}`);
  });
  tab.on("pageerror", (err) => watch.problems.push(`second tab page error: ${err.message}`));
  tab.on("response", (res) => {
    if (res.status() >= 400) watch.problems.push(`second tab error answer: ${res.status()} ${res.url()}`);
  });
  return tab;
}

async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true, caret: "initial" });
}

async function signIn(page, user = STAFF) {
  await page.getByLabel("Email").fill(user);
  await page.getByLabel("Password").fill(STAFF_PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
}

// Signs out in another tab of the same browser, as a colleague or the
// user in a forgotten tab would.
async function signOutElsewhere(context, watch, base) {
  const tab = await secondTab(context, watch);
  await tab.goto(`${base}/logout`);
  await tab.locator("#main").getByRole("button", { name: "Sign out" }).click();
  await tab.getByText("You have signed out.").waitFor();
  await tab.close();
}

// The session cookie, if the browser still holds it.
async function sessionCookie(context, base) {
  return (await context.cookies(base)).find((c) => c.name === "idm_session");
}

// Waits until the idle timeout has passed: the cookie's Max-Age is the idle
// timeout, renewed by every answer, so the browser drops it exactly then
// (the server's record ends at the same moment, a little earlier).
async function waitForIdleTimeout(context, base) {
  const deadline = Date.now() + (IDLE_SECS + 10) * 1000;
  while (await sessionCookie(context, base)) {
    assert.ok(Date.now() < deadline, "the session cookie never expired");
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("Create after signing out in another tab: login page, then the typed values are back", async () => {
  const base = await startServer();
  const { context, page, watch, assertNoProblems } = await openBrowser();

  await page.goto(`${base}/subjects/new`);
  await page.waitForURL(`${base}/login?next=%2Fsubjects%2Fnew`);
  // Only opened, never signed in here: nothing to explain.
  assert.equal(await page.getByText(SESSION_ENDED).count(), 0);
  await signIn(page);
  await page.waitForURL(`${base}/subjects/new`);

  await page.getByLabel("SSSID").fill("S2");
  await page.getByLabel("Name").fill("Grace Hopper");
  await page.getByLabel("Birth date").fill("1906-12-09");
  await page.getByLabel("Email (optional)").fill("grace@example.org");
  await signOutElsewhere(context, watch, base);

  await page.getByRole("button", { name: "Create subject" }).click();
  await page.waitForURL(`${base}/login?next=%2Fsubjects%2Fnew&ended=form`);
  await page.getByText(SESSION_ENDED).waitFor();
  await page.getByText(KEPT).waitFor();
  assert.equal(await page.getByText(NOT_KEPT).count(), 0);
  await shot(page, "session-01-login-after-sign-out-elsewhere");
  assertNoProblems("create after sign-out elsewhere");

  await signIn(page);
  await page.waitForURL(`${base}/subjects/new`);
  await page.getByText(RESTORED).waitFor();
  assert.equal(await page.getByLabel("SSSID").inputValue(), "S2");
  assert.equal(await page.getByLabel("Name").inputValue(), "Grace Hopper");
  assert.equal(await page.getByLabel("Birth date").inputValue(), "1906-12-09");
  assert.equal(await page.getByLabel("Email (optional)").inputValue(), "grace@example.org");
  await shot(page, "session-02-new-subject-restored");
  // Never sent on its own: the subject does not exist until Create.
  const before = await context.request.get(`${base}/subjects/S2`, { maxRedirects: 0 });
  assert.equal(before.status(), 404);

  await page.getByRole("button", { name: "Create subject" }).click();
  await page.waitForURL(`${base}/subjects/S2`);
  await page.getByText("Created subject S2.").waitFor();
  await page.getByRole("heading", { name: "Grace Hopper" }).waitFor();
  // The copy is gone once used.
  await page.goto(`${base}/subjects/new`);
  assert.equal(await page.getByText(RESTORED).count(), 0);
  assert.equal(await page.getByLabel("SSSID").inputValue(), "");
  const drafts = await page.evaluate(() => Object.keys(window.sessionStorage).filter((k) => k.startsWith("idm-draft")));
  assert.deepEqual(drafts, []);
  assertNoProblems("create after sign-in");
});

test("htmx Save after signing out in another tab, then a search as you type", async () => {
  const base = await startServer();
  const { context, page, watch, assertNoProblems } = await openBrowser();
  await page.goto(`${base}/login`);
  await signIn(page);
  await page.waitForURL(`${base}/home`);

  await page.goto(`${base}/subjects/S1`);
  await page.getByLabel("Name").fill("Ada King");
  await page.getByLabel("Email (optional)").fill("ada@example.org");
  await signOutElsewhere(context, watch, base);
  await page.getByRole("button", { name: "Save changes" }).click();
  // Not "Access denied", not the login page inside the panel: a full page.
  await page.waitForURL(`${base}/login?next=%2Fsubjects%2FS1&ended=form`);
  await page.getByText(SESSION_ENDED).waitFor();
  assert.ok(watch.htmxRequests.includes("POST /subjects/S1"), `htmx did not post: ${watch.htmxRequests}`);
  assertNoProblems("htmx save after sign-out elsewhere");

  // A wrong password first: the copy waits for the right one.
  await page.getByLabel("Email").fill(STAFF);
  await page.getByLabel("Password").fill("not the passphrase");
  watch.expectedErrors.add({ path: "/login", status: 401 });
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("Wrong username or password").waitFor();
  watch.expectedErrors.clear();
  await page.getByText(KEPT).waitFor();
  await page.getByLabel("Password").fill(STAFF_PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();

  await page.waitForURL(`${base}/subjects/S1`);
  await page.getByText(RESTORED).waitFor();
  assert.equal(await page.getByLabel("Name").inputValue(), "Ada King");
  assert.equal(await page.getByLabel("Email (optional)").inputValue(), "ada@example.org");
  assert.equal(await page.getByLabel("Birth date").inputValue(), "1980-02-29");
  // The stored subject is unchanged until Save is pressed again.
  await page.getByRole("heading", { name: "Ada Lovelace" }).waitFor();
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.getByText("Changes saved.").waitFor();
  await page.getByRole("heading", { name: "Ada King" }).waitFor();
  assertNoProblems("htmx save after sign-in");

  // Search as you type on the list, after the session ended.
  await page.goto(`${base}/subjects`);
  await signOutElsewhere(context, watch, base);
  await page.getByLabel("Search subjects").fill("King");
  await page.waitForURL((url) => url.pathname === "/login" && url.searchParams.get("ended") === "1");
  const next = new URL(page.url()).searchParams.get("next");
  assert.equal(new URL(next, base).searchParams.get("q"), "King", next);
  await page.getByText(SESSION_ENDED).waitFor();
  // The search is in the URL: nothing typed was lost.
  assert.equal(await page.getByText(NOT_KEPT).count(), 0);
  assert.equal(await page.getByText(KEPT).count(), 0);
  await shot(page, "session-03-login-after-search");
  await signIn(page);
  await page.waitForURL((url) => url.pathname === "/subjects" && url.searchParams.get("q") === "King");
  assert.equal(await page.getByLabel("Search subjects").inputValue(), "King");
  await page.getByRole("link", { name: "S1", exact: true }).waitFor();
  assert.equal(await page.getByText(RESTORED).count(), 0);
  assertNoProblems("search after sign-in");
});

test("htmx Save after the idle timeout", async () => {
  const base = await startServer({ IDM_SESSION_IDLE_SECS: String(IDLE_SECS) });
  const { context, page, assertNoProblems } = await openBrowser();
  await page.goto(`${base}/subjects/S1`);
  await signIn(page);
  await page.waitForURL(`${base}/subjects/S1`);
  await page.getByLabel("Name").fill("Augusta Ada King");
  await page.getByLabel("Birth date").fill("1935-12-10");
  const cookie = await sessionCookie(context, base);
  assert.ok(cookie, "signed in with a session cookie");
  await waitForIdleTimeout(context, base);
  // A browser that kept the cookie anyway sends a session the server has
  // expired: the same answer as with no cookie at all.
  await context.addCookies([{ ...cookie, expires: -1 }]);

  await page.getByRole("button", { name: "Save changes" }).click();
  await page.waitForURL(`${base}/login?next=%2Fsubjects%2FS1&ended=form`);
  await page.getByText(SESSION_ENDED).waitFor();
  await page.getByText(KEPT).waitFor();
  await shot(page, "session-04-login-after-idle-timeout");
  await signIn(page);
  await page.waitForURL(`${base}/subjects/S1`);
  await page.getByText(RESTORED).waitFor();
  assert.equal(await page.getByLabel("Name").inputValue(), "Augusta Ada King");
  assert.equal(await page.getByLabel("Birth date").inputValue(), "1935-12-10");
  await shot(page, "session-05-edit-restored");
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.getByText("Changes saved.").waitFor();
  await page.getByRole("heading", { name: "Augusta Ada King" }).waitFor();
  assertNoProblems("idle timeout");
});

test("what one user typed never goes to another user signing in", async () => {
  const colleague = "colleague@study.example";
  const base = await startServer({}, [STAFF, colleague]);
  const { context, page, watch, assertNoProblems } = await openBrowser();
  await page.goto(`${base}/subjects/new`);
  await signIn(page);
  await page.waitForURL(`${base}/subjects/new`);
  await page.getByLabel("SSSID").fill("S4");
  await page.getByLabel("Name").fill("Hedy Lamarr");
  await signOutElsewhere(context, watch, base);
  await page.getByRole("button", { name: "Create subject" }).click();
  await page.waitForURL(`${base}/login?next=%2Fsubjects%2Fnew&ended=form`);
  await page.getByText(KEPT).waitFor();
  await signIn(page, colleague);
  await page.waitForURL(`${base}/subjects/new`);
  await page.getByText(`Signed in as ${colleague}`).waitFor();
  assert.equal(await page.getByText(RESTORED).count(), 0);
  assert.equal(await page.getByLabel("SSSID").inputValue(), "");
  assert.equal(await page.getByLabel("Name").inputValue(), "");
  const drafts = await page.evaluate(() => Object.keys(window.sessionStorage).filter((k) => k.startsWith("idm-draft")));
  assert.deepEqual(drafts, [], "the copy is dropped");
  assertNoProblems("another user");
});

test("without JavaScript the login page says the input could not be kept", async () => {
  const base = await startServer();
  const profileDir = mkdtempSync(join(tmpdir(), "idm-e2e-session-nojs-"));
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: chromiumPath,
    headless: true,
    javaScriptEnabled: false,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
  });
  cleanups.push(async () => {
    await context.close();
    rmSync(profileDir, { recursive: true, force: true });
  });
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`${base}/subjects/new`);
  await signIn(page);
  await page.waitForURL(`${base}/subjects/new`);
  await page.getByLabel("SSSID").fill("S3");
  await page.getByLabel("Name").fill("Mary Somerville");
  await page.getByLabel("Birth date").fill("1940-12-26");
  await context.clearCookies();
  await page.getByRole("button", { name: "Create subject" }).click();
  await page.waitForURL(`${base}/login?next=%2Fsubjects%2Fnew&ended=form`);
  await page.getByText(SESSION_ENDED).waitFor();
  await page.getByText(NOT_KEPT).waitFor();
  await shot(page, "session-06-login-without-javascript");
  await signIn(page);
  await page.waitForURL(`${base}/subjects/new`);
  assert.equal(await page.getByLabel("SSSID").inputValue(), "");
});
