// End-to-end test of the subject list in headless Chromium (Debian's
// /usr/bin/chromium through playwright-core; never a downloaded browser):
// search as you type without a history entry or a request per keystroke,
// sorting and paging that Back/Forward restore, where focus goes after a
// swap, the loading indicator on a slow answer, the "not yet invited"
// filter and the Invited column, names in reading order (Åsa, Émilie, Zoë)
// and the search box on a phone. Fails on any console error, page error,
// failed request or unexpected 4xx/5xx. Screenshots go to
// <repo>/test-artifacts/e2e/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { apiClient, artifacts, launchWatchedPage, startIdm } from "./harness.mjs";

const STAFF = "list@study.example";
const STAFF_PASSWORD = "a list tester's passphrase";

// 30 subjects: two pages of 25. The three names with diacritics sort among
// the a's, e's and z's; every third Person is invited.
const PEOPLE = Array.from({ length: 27 }, (_, i) => {
  const n = String(i + 1).padStart(2, "0");
  return { sssid: `L-2026-${n}`, name: `Person ${n}`, invited: i % 3 === 0 };
});
const SUBJECTS = [
  { sssid: "L-2026-90", name: "Zoë Zander", invited: false },
  { sssid: "L-2026-91", name: "Émilie Martin", invited: true },
  { sssid: "L-2026-92", name: "Åsa Berg", invited: false },
  ...PEOPLE,
];

let server;
let base;
let profileDir;
let context;
let page;
const problems = [];
const htmxRequests = [];
const expectedErrors = new Set();

async function shot(name, { fullPage = true } = {}) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage, caret: "initial" });
}

function assertNoProblems(step) {
  assert.deepEqual(problems, [], `${step}: ${problems.join("\n")}`);
}

// The names in the list, top to bottom (the Name cell without "born …").
async function listedNames() {
  const cells = await page.locator('#subjects-list td[data-label="Name"]').allInnerTexts();
  return cells.map((text) => text.split("\n")[0].trim());
}

async function pagerText() {
  return (await page.locator("#subjects-list .pager .muted").innerText()).trim();
}

// Waits until the list shows `pager` ("30 subjects · page 2 of 2") and
// `first` as its first name.
async function waitForList(pager, first) {
  await page.locator("#subjects-list .pager").getByText(pager, { exact: true }).waitFor();
  await page.waitForFunction(
    (name) => {
      const cell = document.querySelector('#subjects-list td[data-label="Name"]');
      return cell && cell.innerText.split("\n")[0].trim() === name;
    },
    first,
  );
}

async function historyLength() {
  return page.evaluate(() => history.length);
}

// What has focus: "body" when focus was lost, else the element's id (or
// its tag).
async function focused() {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return "body";
    return el.id || el.tagName.toLowerCase();
  });
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  profileDir = mkdtempSync(join(tmpdir(), "idm-e2e-list-chromium-"));
  server = await startIdm({ name: "list", users: [{ username: STAFF, password: STAFF_PASSWORD }] });
  ({ base } = server);

  const { api } = await apiClient(base, STAFF, STAFF_PASSWORD);
  for (const s of SUBJECTS) {
    await api("POST", "/subject", { sssid: s.sssid, name: s.name, bday: "1980-02-29" });
    if (s.invited) await api("PUT", `/subject/${s.sssid}`, { date_invited: "2026-11-02" });
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

test("the subject list: history, focus, loading, filter, order, phone", async (t) => {
  await t.test("the list shows an Invited column, ids and dates on one line", async () => {
    await page.goto(`${base}/subjects`);
    await waitForList("30 subjects · page 1 of 2", "Person 27");
    await page.getByRole("columnheader", { name: "Invited" }).waitFor();
    const invitedRow = page.getByRole("row").filter({ hasText: "Person 25" });
    // The day as written by the server, shown as the browser's calendar day.
    const invited = invitedRow.locator('td[data-label="Invited"] time');
    assert.match(await invited.getAttribute("datetime"), /^2026-11-02T00:00:00/);
    assert.equal((await invited.innerText()).trim(), "2 Nov 2026");
    const fresh = page.getByRole("row").filter({ hasText: "Person 26" });
    assert.equal((await fresh.locator('td[data-label="Invited"]').innerText()).trim(), "—");
    // One line each: a cell as tall as a single line of its text.
    const lines = await page.evaluate(() =>
      [...document.querySelectorAll('#subjects-list td.sssid a, #subjects-list td.date time')].map((el) => {
        const lineHeight = parseFloat(getComputedStyle(el).lineHeight);
        return { text: el.textContent, lines: Math.round(el.getBoundingClientRect().height / lineHeight) };
      }),
    );
    assert.ok(lines.length >= 50, `too few ids and dates: ${lines.length}`);
    const wrapped = lines.filter((l) => l.lines !== 1);
    assert.deepEqual(wrapped, [], "ids and dates must not wrap");
    await shot("list-01-desktop");
    assertNoProblems("list");
  });

  await t.test("search as you type: one request after the pause, no history entry per keystroke", async () => {
    const entries = await historyLength();
    const requests = htmxRequests.length;
    await page.getByLabel("Search subjects").click();
    // Two bursts of keystrokes, each well inside the 300 ms pause that
    // sends the request, with a pause (and an answer) between them.
    await page.keyboard.type("Pers", { delay: 25 });
    await page.waitForURL(/[?&]q=Pers(&|$)/);
    await waitForList("27 subjects · page 1 of 2", "Person 27");
    await page.keyboard.type("on 1", { delay: 25 });
    await page.waitForURL(/[?&]q=Person(\+|%20)1(&|$)/);
    await waitForList("10 subjects · page 1 of 1", "Person 19");
    const sent = htmxRequests.slice(requests).filter((r) => r === "GET /subjects");
    assert.equal(sent.length, 2, `one request per pause: ${sent}`);
    assert.ok((await historyLength()) <= entries + 1, "typing must not push an entry per pause");
    assert.equal(await focused(), "subject-search", "focus stays in the search box while typing");
    // Enter searches through htmx too: no page load, no new entry.
    const answered = page.waitForResponse((r) => r.request().headers()["hx-request"] === "true");
    await page.keyboard.press("Enter");
    await answered;
    await waitForList("10 subjects · page 1 of 1", "Person 19");
    assert.ok((await historyLength()) <= entries + 1, "Enter must not add an entry");
    await shot("list-02-search");
    // Emptying the box brings the whole list back.
    await page.getByLabel("Search subjects").fill("");
    await waitForList("30 subjects · page 1 of 2", "Person 27");
    assertNoProblems("search");
  });

  await t.test("a newer search replaces one in flight; a slow answer shows the loading indicator", async () => {
    const indicator = page.locator("#subjects-loading");
    assert.equal(await indicator.isVisible(), false, "no indicator while idle");
    // Holds the answer to the first search until released.
    let release;
    const held = new Promise((r) => (release = r));
    const first = (url) => new URL(url).searchParams.get("q") === "Pers";
    await page.route(first, async (route) => {
      await held;
      await route.continue().catch(() => {});
    });
    const box = page.getByLabel("Search subjects");
    await box.fill("Pers");
    await indicator.waitFor({ state: "visible" });
    await shot("list-03-loading", { fullPage: false });
    // The newer request aborts the held one (hx-sync replace).
    const aborted = page.waitForEvent("requestfailed", (req) => first(req.url()));
    await box.fill("Person 2");
    const failure = await aborted;
    assert.match(failure.failure().errorText, /ABORTED/);
    await waitForList("8 subjects · page 1 of 1", "Person 27");
    await indicator.waitFor({ state: "hidden" });
    release();
    await page.unroute(first);
    // The abort was the point of this step, not a problem: the failed
    // request, and htmx's log of it (htmx:sendAbort, then afterRequest).
    const expected = [
      (p) => p.startsWith("request failed:") && /[?&]q=Pers(&|\s)/.test(p),
      (p) => p.startsWith("console error: htmx:sendAbort"),
      (p) => p.startsWith("console error: htmx:afterRequest"),
    ];
    for (const isExpected of expected) {
      const at = problems.findIndex(isExpected);
      assert.ok(at >= 0, `the abort was not seen: ${problems.join("\n")}`);
      problems.splice(at, 1);
    }
    await box.fill("");
    await waitForList("30 subjects · page 1 of 2", "Person 27");
    assertNoProblems("replace");
  });

  let unsorted;
  await t.test("names sort in reading order: Åsa, Émilie, …, Zoë; focus stays off the body", async () => {
    unsorted = page.url();
    const entries = await historyLength();
    await page.locator("#subjects-list").getByRole("link", { name: "Name", exact: true }).click();
    await page.waitForURL(/sort=name&dir=asc/);
    await waitForList("30 subjects · page 1 of 2", "Åsa Berg");
    const names = await listedNames();
    assert.deepEqual(names.slice(0, 4), ["Åsa Berg", "Émilie Martin", "Person 01", "Person 02"]);
    assert.equal(await historyLength(), entries + 1, "a sort is a new history entry");
    assert.equal(await focused(), "subjects-list", "focus goes to the updated list");
    assert.match(
      await page.locator("#subjects-list").getAttribute("aria-label"),
      /by Name, ascending, page 1 of 2/,
    );
    await shot("list-04-by-name");

    await page.locator("#subjects-list").getByRole("link", { name: "Next" }).click();
    await page.waitForURL(/sort=name&dir=asc&page=2/);
    await waitForList("30 subjects · page 2 of 2", "Person 24");
    assert.deepEqual(await listedNames(), ["Person 24", "Person 25", "Person 26", "Person 27", "Zoë Zander"]);
    assert.equal(await focused(), "subjects-list");
    await shot("list-05-page-2");
    assertNoProblems("sort and page");
  });

  await t.test("Back and Forward restore the right rows without errors", async () => {
    await page.goBack();
    await page.waitForURL(/sort=name&dir=asc$/);
    await waitForList("30 subjects · page 1 of 2", "Åsa Berg");
    assert.notEqual(await focused(), "body");
    await page.goBack();
    await page.waitForURL(unsorted);
    await waitForList("30 subjects · page 1 of 2", "Person 27");
    assert.notEqual(await focused(), "body");
    await page.goForward();
    await page.waitForURL(/sort=name&dir=asc$/);
    await waitForList("30 subjects · page 1 of 2", "Åsa Berg");
    await page.goForward();
    await page.waitForURL(/page=2/);
    await waitForList("30 subjects · page 2 of 2", "Person 24");
    // The restored page works like a fresh one.
    await page.locator("#subjects-list").getByRole("link", { name: "Previous" }).click();
    await waitForList("30 subjects · page 1 of 2", "Åsa Berg");
    await shot("list-06-after-back-forward");
    assertNoProblems("back and forward");
  });

  await t.test('the "not yet invited" filter lists subjects with no step recorded', async () => {
    await page.getByLabel("Status").selectOption({ label: "Not yet invited" });
    await page.waitForURL(/status=not-invited/);
    await waitForList("20 subjects · page 1 of 1", "Åsa Berg");
    const names = await listedNames();
    assert.ok(!names.includes("Émilie Martin") && !names.includes("Person 01"), `${names}`);
    assert.ok(names.includes("Zoë Zander") && names.includes("Person 02"), `${names}`);
    assert.equal(names.at(-1), "Zoë Zander");
    await shot("list-07-not-invited");
    // A filter is a new list: Back returns to the unfiltered one.
    await page.goBack();
    await waitForList("30 subjects · page 1 of 2", "Åsa Berg");
    assert.equal(await page.getByLabel("Status").inputValue(), "");
    assertNoProblems("filter");
  });

  await t.test("after a form error focus is on the field; after Save on the outcome", async () => {
    await page.goto(`${base}/subjects/L-2026-92`);
    const name = page.getByLabel("Name", { exact: true });
    await name.fill("");
    expectedErrors.add({ path: "/subjects/L-2026-92", status: 400 });
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.locator("#edit-subject-name-error").waitFor();
    assert.equal(await focused(), "edit-subject-name", "focus on the invalid field");
    await shot("list-08-form-error");
    await name.fill("Åsa Lindqvist");
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.getByText("Changes saved.").waitFor();
    const after = await page.evaluate(() => document.activeElement?.className ?? "");
    assert.match(after, /flash/, "focus on the outcome message");
    assertNoProblems("form");
  });

  await t.test("on a 360 px phone the search box takes the full width", async () => {
    await page.setViewportSize({ width: 360, height: 740 });
    await page.goto(`${base}/subjects`);
    await waitForList("30 subjects · page 1 of 2", "Åsa Lindqvist");
    const box = await page.getByLabel("Search subjects").boundingBox();
    assert.ok(box.width >= 0.8 * 360, `the search box is ${box.width} px wide`);
    await shot("list-09-phone", { fullPage: false });
    await page.setViewportSize({ width: 1280, height: 900 });
    assertNoProblems("phone");
  });
});
