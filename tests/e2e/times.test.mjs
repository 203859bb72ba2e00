// Times in the browser's time zone, end to end: the real `idm` binary and
// Debian's headless Chromium (through playwright-core) set to
// Europe/Zurich. The server writes UTC; the console shows Zurich's dates
// and times, after htmx swaps too, and a consent recorded with
// yesterday's (Zurich) date reads as yesterday in the list, on the
// subject page and in the API. Fails on any console error, page error,
// failed request or unexpected 4xx/5xx. Screenshots go to
// <repo>/test-artifacts/e2e/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { apiClient, artifacts, launchWatchedPage, startIdm } from "./harness.mjs";

const STAFF = "nurse@zurich.example";
const STAFF_PASSWORD = "a Zurich study nurse's passphrase";
const ZONE = "Europe/Zurich";

let server;
let base;
let profileDir;
let context;
let page;
// The JSON API, signed in as STAFF.
let api;
const problems = [];
const htmxRequests = [];
const expectedErrors = new Set();

async function shot(name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true, caret: "initial" });
}

function assertNoProblems(step) {
  assert.deepEqual(problems, [], `${step}: ${problems.join("\n")}`);
}

// Today in Zurich as a date field holds it (YYYY-MM-DD), `days` later.
function zurichDay(days) {
  const [y, m, d] = new Intl.DateTimeFormat("en-CA", { timeZone: ZONE }).format(new Date()).split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

// A YYYY-MM-DD day as the console writes it: "28 Nov 2026".
function written(day) {
  return new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" }).format(
    new Date(`${day}T00:00:00Z`),
  );
}

// The journey row of a step on the subject page.
function journeyStep(label) {
  return page.locator(".journey-step").filter({ has: page.locator("dt", { hasText: new RegExp(`^${label}$`) }) });
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  profileDir = mkdtempSync(join(tmpdir(), "idm-e2e-times-chromium-"));
  server = await startIdm({ name: "times", users: [{ username: STAFF, password: STAFF_PASSWORD }] });
  ({ base } = server);
  ({ api } = await apiClient(base, STAFF, STAFF_PASSWORD));

  ({ context, page } = await launchWatchedPage(profileDir, { width: 1280, height: 900 }, { problems, htmxRequests, expectedErrors }));
  // What playwright's `timezoneId` context option does, on the watched
  // page of the shared harness.
  const cdp = await context.newCDPSession(page);
  await cdp.send("Emulation.setTimezoneOverride", { timezoneId: ZONE });
});

after(async () => {
  await context?.close();
  server?.stop();
  rmSync(profileDir, { recursive: true, force: true });
});

test("times in the browser's time zone (Europe/Zurich)", async (t) => {
  await t.test("the browser runs in Zurich", async () => {
    await page.goto(`${base}/login`);
    assert.equal(await page.evaluate(() => Intl.DateTimeFormat().resolvedOptions().timeZone), ZONE);
    await page.getByLabel("Email").fill(STAFF);
    await page.getByLabel("Password").fill(STAFF_PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${base}/home`);
    assertNoProblems("sign in");
  });

  await t.test("a consent at 23:30 UTC shows as the next day, 00:30, in Zurich", async () => {
    await api("POST", "/subject", { sssid: "ZRH-1", name: "Late Consent", bday: "1970-01-01" });
    await api("PUT", "/subject/ZRH-1", { date_consented: "2026-11-28T23:30:00Z" });

    await page.goto(`${base}/subjects/ZRH-1`);
    await journeyStep("Consented").getByText("29 Nov 2026, 00:30 CET").waitFor();
    const consented = journeyStep("Consented").locator("time");
    assert.equal(await consented.getAttribute("datetime"), "2026-11-28T23:30:00+00:00");
    assert.equal(await consented.getAttribute("title"), "2026-11-28 23:30 UTC", "the UTC time on hover");
    const activity = await page.locator("#activity").innerText();
    assert.ok(activity.includes("Consent recorded, dated 29 Nov 2026"), activity);
    assert.ok(!activity.includes("UTC"), `UTC times left in the activity:\n${activity}`);
    await shot("times-01-zurich-subject");

    // The list, as loaded and after an htmx swap (search).
    await page.goto(`${base}/subjects`);
    const row = page.getByRole("row").filter({ hasText: "ZRH-1" });
    await row.getByText("29 Nov 2026", { exact: true }).waitFor();
    await page.getByLabel("Search subjects").fill("ZRH");
    await page.waitForURL(/q=ZRH/);
    await row.getByText("29 Nov 2026", { exact: true }).waitFor();
    assert.equal(await row.getByText("2026-11-28").count(), 0, "the UTC day is replaced");
    assert.ok(htmxRequests.includes("GET /subjects"), `${htmxRequests}`);
    await shot("times-02-zurich-list");
    assertNoProblems("23:30 UTC");
  });

  await t.test("a consent dated yesterday reads as yesterday in the list, on the page and in the API", async () => {
    await api("POST", "/subject", { sssid: "ZRH-2", name: "Paper Consent", bday: "1970-01-01" });
    const today = zurichDay(0);
    const yesterday = zurichDay(-1);
    await page.goto(`${base}/subjects/ZRH-2`);
    await page.getByRole("link", { name: "Record consent…" }).click();
    const date = page.getByLabel("Consent given on");
    await date.waitFor();
    assert.equal(await date.inputValue(), today, "today in Zurich by default");
    assert.equal(await date.getAttribute("max"), today);

    // A day after today is refused next to the field, as a sentence.
    expectedErrors.add({ path: "/subjects/ZRH-2/record", status: 400 });
    await date.fill(zurichDay(1));
    await page.getByRole("button", { name: "Record consent" }).click();
    await page
      .locator("#step-date-error")
      .getByText(`Enter a date that is not in the future: today is ${today}.`)
      .waitFor();
    assert.equal(await page.getByLabel("Consent given on").getAttribute("aria-invalid"), "true");
    await shot("times-03-future-refused");
    assert.equal((await api("GET", "/subject/ZRH-2")).date_consented, null);

    await page.getByLabel("Consent given on").fill(yesterday);
    await page.getByRole("button", { name: "Record consent" }).click();
    await page.getByText("Consent recorded.").waitFor();
    await journeyStep("Consented").getByText(new RegExp(`^${written(yesterday)}, 12:00 CES?T$`)).waitFor();
    const activity = page.locator("#activity").getByRole("row").filter({ hasText: "Consent recorded" });
    await activity.getByText(`Consent recorded, dated ${written(yesterday)} — by ${STAFF}`).waitFor();
    await shot("times-04-consent-yesterday");

    const subject = await api("GET", "/subject/ZRH-2");
    assert.ok(subject.date_consented.startsWith(`${yesterday}T`), subject.date_consented);

    await page.goto(`${base}/subjects?q=ZRH-2`);
    const row = page.getByRole("row").filter({ hasText: "ZRH-2" });
    await row.getByText(written(yesterday), { exact: true }).waitFor();
    assertNoProblems("consent dated yesterday");
  });
});
