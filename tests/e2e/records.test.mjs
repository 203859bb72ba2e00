// End-to-end test of the records an inspection relies on, in headless
// Chromium (Debian's /usr/bin/chromium) against the real `idm` binary:
// an admin corrects a wrongly recorded consent date with a reason on the
// subject page, then erases the personal data of the withdrawn subject
// after a confirmation. The activity log says what happened, the name is
// gone from every screen, and the audit trail still verifies. Fails on any
// console error (CSP violations included), page error, failed request or
// unexpected 4xx/5xx. Screenshots go to <repo>/test-artifacts/e2e/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { apiClient, artifacts, checkAccessibility, launchWatchedPage, startIdm } from "./harness.mjs";

const ADMIN = "admin@study.example";
const ADMIN_PASSWORD = "an admin's long passphrase";
const SSSID = "REC-0001";
const NAME = "Zebulon Quartermaine";
const BDAY = "1971-03-14";
const EMAIL = "zq.private@example.org";
const WRONG_CONSENT = "2026-11-20T09:00:00Z";
const RIGHT_DAY = "2026-11-19";

let server;
let base;
let api;
let profileDir;
let context;
let page;
const problems = [];
const htmxRequests = [];
const expectedErrors = new Set();

async function shot(name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true, caret: "initial" });
}

function assertNoProblems(step) {
  assert.deepEqual(problems, [], `${step}: ${problems.join("\n")}`);
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  profileDir = mkdtempSync(join(tmpdir(), "idm-e2e-records-chromium-"));
  server = await startIdm({
    name: "records",
    users: [{ username: ADMIN, password: ADMIN_PASSWORD, admin: true }],
  });
  ({ base } = server);
  ({ api } = await apiClient(base, ADMIN, ADMIN_PASSWORD));
  // A subject whose consent was recorded with the wrong date, the way the
  // Node frontend records it.
  await api("POST", "/subject", { sssid: SSSID, name: NAME, bday: BDAY, email: EMAIL }, 201);
  await api("PUT", `/subject/${SSSID}`, { sssid: SSSID, date_consented: WRONG_CONSENT }, 204);
  ({ context, page } = await launchWatchedPage(profileDir, { width: 1280, height: 900 }, { problems, htmxRequests, expectedErrors }));
});

after(async () => {
  await context?.close();
  server?.stop();
  rmSync(profileDir, { recursive: true, force: true });
});

test("records: a correction with a reason, then an erasure after a confirmation", async (t) => {
  await t.test("the admin corrects the consent date, a reason is required", async () => {
    await page.goto(`${base}/login`);
    await page.getByLabel("Email").fill(ADMIN);
    await page.getByLabel("Password").fill(ADMIN_PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    // Admins land on the staff list.
    await page.waitForURL(`${base}/users`);
    await page.goto(`${base}/subjects/${SSSID}`);
    const card = page.locator("#records");
    await card.getByRole("heading", { name: "Corrections and erasure" }).waitFor();
    await card.getByLabel("Date to correct").selectOption("date_consented");
    await card.getByLabel("Correct date").fill(RIGHT_DAY);
    expectedErrors.add({ path: `/subjects/${SSSID}/corrections`, status: 400 });
    await card.getByRole("button", { name: "Save correction" }).click();
    await page.locator("#correct-date-reason-error").waitFor();
    assert.equal(await page.locator("#records").getByLabel("Correct date").inputValue(), RIGHT_DAY, "what was typed is kept");
    await shot("records-01-correction-needs-a-reason");
    await page.locator("#records").getByLabel("Reason").fill("consent form signed the day before");
    await page.locator("#records").getByRole("button", { name: "Save correction" }).click();
    await page.getByText("Correction saved.").waitFor();
    await page
      .locator("#activity")
      .getByText("Consent date corrected from")
      .filter({ hasText: "(consent form signed the day before)" })
      .waitFor();
    await shot("records-02-correction-saved");
    assert.ok(htmxRequests.includes(`POST /subjects/${SSSID}/corrections`), htmxRequests.join(", "));
    const audits = await api("GET", `/subject/${SSSID}/audits`);
    assert.equal(
      audits.at(-1).action,
      `corrected date_consented: ${WRONG_CONSENT} -> ${RIGHT_DAY}T00:00:00Z (consent form signed the day before)`,
    );
    const subject = await api("GET", `/subject/${SSSID}`);
    assert.equal(subject.date_consented, `${RIGHT_DAY}T00:00:00Z`);
    assertNoProblems("correction");
  });

  await t.test("erasure waits for the withdrawal, then asks and erases", async () => {
    const card = page.locator("#records");
    await card.getByText("once the subject's withdrawal is recorded").waitFor();
    assert.equal(await card.getByRole("link", { name: "Erase personal data…" }).count(), 0);
    await api("PUT", `/subject/${SSSID}`, { date_withdrawn: "2026-11-21T10:00:00Z" }, 204);
    await page.reload();
    await page.locator("#records").getByRole("link", { name: "Erase personal data…" }).click();
    const dialog = page.getByRole("alertdialog");
    await dialog.getByText("This cannot be undone.").waitFor();
    await dialog.getByText(NAME).waitFor();
    await shot("records-03-erasure-confirmation");
    await checkAccessibility(page, "subject page with the erasure confirmation");
    await dialog.getByLabel("Reason").fill("request of the participant");
    await dialog.getByRole("button", { name: "Erase personal data" }).click();
    await page.getByText("Personal data erased.").waitFor();
    await page.getByRole("heading", { level: 1, name: "Personal data erased" }).waitFor();
    await page.locator("#activity").getByText("Personal data erased (request of the participant)").waitFor();
    await shot("records-04-erased");
    const body = await page.locator("body").innerText();
    for (const trace of [NAME, "Zebulon", BDAY, EMAIL]) assert.ok(!body.includes(trace), `${trace} is still shown`);
    await page.goto(`${base}/subjects`);
    await page.getByRole("link", { name: SSSID, exact: true }).waitFor();
    assert.ok(!(await page.locator("body").innerText()).includes("Zebulon"), "not in the list");
    const subject = await api("GET", `/subject/${SSSID}`);
    assert.deepEqual([subject.name, subject.bday, subject.email], ["", null, null]);
    assert.equal(subject.date_consented, `${RIGHT_DAY}T00:00:00Z`, "the dates remain");
    const verdict = await api("GET", "/audit/verify");
    assert.equal(verdict.ok, true, JSON.stringify(verdict));
    assertNoProblems("erasure");
  });
});
