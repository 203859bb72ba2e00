// End-to-end test of study data in and out in headless Chromium (Debian's
// /usr/bin/chromium through playwright-core; never a downloaded browser):
// the subject list filtered and sorted, downloaded as CSV (the file holds
// exactly the rows on screen, in their order, formulas neutralised), and a
// CSV upload with problems: the check shows them, the fixed file is
// checked again and imported. Fails on any console error, page error,
// failed request or unexpected 4xx/5xx. Screenshots go to
// <repo>/test-artifacts/e2e/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { apiClient, artifacts, checkAccessibility, launchWatchedPage, startIdm } from "./harness.mjs";

const STAFF = "csv@study.example";
const STAFF_PASSWORD = "a spreadsheet tester's passphrase";

const SUBJECTS = [
  { sssid: "C-01", name: "Ada Lovelace" },
  { sssid: "C-02", name: "Ada Yonath" },
  { sssid: "C-03", name: "=HYPERLINK(\"http://evil.example\",\"Ada\")" },
  { sssid: "C-04", name: "O'Brien, \"Ada\"" },
  { sssid: "C-05", name: "Grace Hopper" },
  { sssid: "C-06", name: "Ada أدا محمد" },
];

let server;
let base;
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

// RFC 4180 as a spreadsheet reads it: quoted fields may hold commas,
// quotes (doubled) and line breaks; lines end in CRLF.
function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(cell);
      cell = "";
    } else if (c === "\r" && text[i + 1] === "\n") {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
      i++;
    } else cell += c;
  }
  assert.equal(row.length + cell.length, 0, "the file ends with a line break");
  return rows;
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  profileDir = mkdtempSync(join(tmpdir(), "idm-e2e-csv-chromium-"));
  server = await startIdm({ name: "csv", users: [{ username: STAFF, password: STAFF_PASSWORD }] });
  ({ base } = server);
  const { api } = await apiClient(base, STAFF, STAFF_PASSWORD);
  for (const s of SUBJECTS) {
    await api("POST", "/subject", { sssid: s.sssid, name: s.name, bday: "1980-02-29" });
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

test("study data in and out of the console", async (t) => {
  await t.test("the downloaded list holds exactly the rows on screen", async () => {
    await page.goto(`${base}/subjects`);
    await page.locator("#subject-search").fill("ada");
    await page.locator("#subjects-list .pager").getByText("5 subjects · page 1 of 1", { exact: true }).waitFor();
    await page.getByRole("link", { name: "Name", exact: true }).click();
    await page.waitForFunction(() => document.querySelector("#subjects-list th[aria-sort]")?.textContent.includes("Name"));
    const onScreen = await page.locator("#subjects-list td.sssid").allInnerTexts();
    assert.equal(onScreen.length, 5);
    await shot("csv-01-filtered-list");

    const link = page.getByRole("link", { name: "Download CSV of the 5 subjects of this list" });
    const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
    assert.equal(download.suggestedFilename(), "subjects.csv");
    const text = readFileSync(await download.path(), "utf8");
    const rows = parseCsv(text);
    assert.deepEqual(rows[0], ["sssid", "name", "bday", "email", "date_invited", "date_consented", "date_enrolled", "date_withdrawn"]);
    assert.deepEqual(
      rows.slice(1).map((r) => r[0]),
      onScreen.map((s) => s.trim()),
      "the same rows in the same order",
    );
    const names = rows.slice(1).map((r) => r[1]);
    assert.ok(names.includes("'=HYPERLINK(\"http://evil.example\",\"Ada\")"), `neutralised: ${names}`);
    assert.ok(names.includes("O'Brien, \"Ada\""), `kept: ${names}`);
    assert.ok(names.includes("Ada أدا محمد"), `non-Latin kept: ${names}`);
    assertNoProblems("download");
  });

  await t.test("an upload with problems shows them; the fixed file is imported", async () => {
    await page.goto(`${base}/subjects`);
    await page.getByRole("link", { name: "Import CSV" }).click();
    await page.waitForURL(`${base}/subjects/import`);
    const bad = "sssid,name,bday,email\r\nR-01,Rosalind Franklin,1920-07-25,\r\nR-02,Lise Meitner,1878-11-07,\r\nR-03,,1967-11-07,\r\nC-01,Taken Already,1980-01-01,\r\n";
    await page.locator("#import-file").setInputFiles({ name: "recruits.csv", mimeType: "text/csv", buffer: Buffer.from(bad) });
    await page.getByRole("button", { name: "Check file" }).click();
    await page.locator("#import-summary").getByText("4 rows: 1 valid, 3 with problems.").waitFor();
    const problemRows = await page.locator("#import-problems tbody tr").allInnerTexts();
    assert.equal(problemRows.length, 3);
    assert.match(problemRows[0], /^3\tR-02\tbday must be between 1900-01-01 and 2100-12-31$/);
    assert.match(problemRows[1], /^4\tR-03\tname is required$/);
    assert.match(problemRows[2], /^5\tC-01\tsssid "C-01" is already taken by a stored subject$/);
    await checkAccessibility(page, "the check of a file with problems");
    await shot("csv-02-check-with-problems");

    const fixed = "sssid,name,bday,email\r\nR-01,Rosalind Franklin,1920-07-25,\r\nR-02,Lise Meitner,1978-11-07,\r\nR-03,Marie Curie,1967-11-07,m@example.org\r\n";
    await page.locator("#import-file").setInputFiles({ name: "recruits-fixed.csv", mimeType: "text/csv", buffer: Buffer.from(fixed) });
    await page.getByRole("button", { name: "Check file" }).click();
    await page.locator("#import-summary").getByText("3 rows: 3 valid, 0 with problems.").waitFor();
    assert.equal(await page.locator("#import-problems").count(), 0);
    const preview = await page.locator("#import-preview tbody tr").allInnerTexts();
    assert.equal(preview.length, 3);
    await shot("csv-03-check-fixed");
    await page.getByRole("button", { name: "Import 3 subjects" }).click();
    await page.waitForURL(`${base}/subjects/import`);
    await page.getByText("Imported 3 subjects of “recruits-fixed.csv”.").waitFor();
    await shot("csv-04-imported");

    await page.goto(`${base}/subjects?q=R-0&sort=sssid&dir=asc`);
    const imported = await page.locator("#subjects-list td.sssid").allInnerTexts();
    assert.deepEqual(imported.map((s) => s.trim()), ["R-01", "R-02", "R-03"]);
    assertNoProblems("upload");
  });
});
