// End-to-end test of the subject list past the count limit, in headless
// Chromium (Debian's /usr/bin/chromium through playwright-core): with
// `subject_count_limit` at 10 and 60 matches, the pager says "more than"
// what it has seen, Next keeps working page after page (htmx, URL in
// history), and the last page knows the exact number again. Fails on any
// console error, page error, failed request or unexpected 4xx/5xx.
// Screenshots go to <repo>/test-artifacts/e2e/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { apiClient, artifacts, launchWatchedPage, startIdm } from "./harness.mjs";

const STAFF = "limit@study.example";
const STAFF_PASSWORD = "a count limit tester's passphrase";

let server;
let base;
let profileDir;
let context;
let page;
const problems = [];
const htmxRequests = [];
const expectedErrors = new Set();

async function pagerText() {
  return (await page.locator("#subjects-list .pager .muted").innerText()).trim();
}

async function waitForPager(text) {
  await page.locator("#subjects-list .pager").getByText(text, { exact: true }).waitFor();
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  profileDir = mkdtempSync(join(tmpdir(), "idm-e2e-limit-chromium-"));
  server = await startIdm({
    name: "list-limit",
    env: { IDM_SUBJECT_COUNT_LIMIT: "10" },
    users: [{ username: STAFF, password: STAFF_PASSWORD }],
  });
  ({ base } = server);
  const { api } = await apiClient(base, STAFF, STAFF_PASSWORD);
  for (let i = 0; i < 60; i++) {
    const n = String(i).padStart(2, "0");
    await api("POST", "/subject", { sssid: `M-${n}`, name: `Many ${n}`, bday: "1980-02-29" });
  }
  ({ context, page } = await launchWatchedPage(profileDir, { width: 1280, height: 900 }, { problems, htmxRequests, expectedErrors }));
  await page.goto(`${base}/login`);
  await page.getByLabel("Email").fill(STAFF);
  await page.getByLabel("Password").fill(STAFF_PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/home`);
});

after(async () => {
  await context?.close();
  server?.stop();
  rmSync(profileDir, { recursive: true, force: true });
});

test("past the count limit the pager says more than and Next keeps working", async () => {
  await page.goto(`${base}/subjects?sort=sssid&dir=asc`);
  // No filter: the total is exact whatever the limit.
  await waitForPager("60 subjects · page 1 of 3");

  await page.getByLabel("Search subjects").fill("many");
  await waitForPager("More than 25 subjects · page 1");
  const pager = page.locator("#subjects-list .pager");
  assert.equal(await pager.getByRole("link", { name: "Last" }).count(), 0, "no last page yet");
  // caret "initial": hiding it would inject a style the CSP refuses.
  await page.screenshot({ path: join(artifacts, "list-limit-01-more-than.png"), fullPage: true, caret: "initial" });

  await pager.getByRole("link", { name: "Next" }).click();
  await waitForPager("More than 50 subjects · page 2");
  assert.match(page.url(), /[?&]page=2(&|$)/);
  assert.equal(await page.locator('#subjects-list td.sssid').first().innerText(), "M-25");

  await pager.getByRole("link", { name: "Next" }).click();
  await waitForPager("60 subjects · page 3 of 3");
  assert.equal(await pager.getByRole("link", { name: "Next" }).count(), 0, "the last page");
  assert.equal(await page.locator('#subjects-list td.sssid').last().innerText(), "M-59");

  // Back returns to the previous page of the list.
  await page.goBack();
  await waitForPager("More than 50 subjects · page 2");
  assert.ok((await pagerText()).startsWith("More than"));
  assert.deepEqual(problems, [], problems.join("\n"));
});
