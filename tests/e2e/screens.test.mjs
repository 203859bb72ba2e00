// End-to-end test of the study screens: the real `idm` binary with a fresh
// data folder and a known link secret, driven by headless Chromium from
// Debian (/usr/bin/chromium) through playwright-core.
//
// A (non-admin) staff member creates a subject, finds it by a name
// fragment, records consent and opens the QR code. The test decodes the QR
// image (jsQR on a PNG screenshot of it), verifies the JWT with the link
// secret as the mobile app would, posts it to /establish like the app,
// then sees "Enrolled" and the audit entries on the subject page. Fails on
// any console error (CSP violations included), page error, failed request
// or unexpected 4xx/5xx. Screenshots go to <repo>/test-artifacts/e2e/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { apiClient, artifacts, launchWatchedPage, startIdm } from "./harness.mjs";
import jsQR from "jsqr";
import { PNG } from "pngjs";

const STAFF = "nurse@study.example";
const STAFF_PASSWORD = "a study nurse's passphrase";
const LINK_SECRET = randomBytes(32).toString("hex");
const SSSID = "E2E-0001";
const NAME = "Ada Lovelace";
const BDAY = "1980-02-29";

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

/// The text held by the QR code image on the page, read from its pixels.
async function decodeQr(locator, name) {
  const png = PNG.sync.read(await locator.screenshot({ path: join(artifacts, `${name}.png`) }));
  const code = jsQR(new Uint8ClampedArray(png.data), png.width, png.height);
  assert.ok(code, "the QR code could not be decoded");
  return code.data;
}

/// Verifies an HS256 JWT with the link secret, as the mobile app does, and
/// returns its claims.
function verifyLinkJwt(token) {
  const [header, payload, signature] = token.split(".");
  assert.ok(header && payload && signature, `not a compact JWT: ${token}`);
  const json = (part) => JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
  assert.deepEqual(json(header), { typ: "JWT", alg: "HS256" });
  const expected = createHmac("sha256", LINK_SECRET).update(`${header}.${payload}`).digest();
  const given = Buffer.from(signature, "base64url");
  assert.ok(given.length === expected.length && timingSafeEqual(given, expected), "bad signature");
  return json(payload);
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  profileDir = mkdtempSync(join(tmpdir(), "idm-e2e-screens-chromium-"));
  server = await startIdm({
    name: "screens",
    env: { IDM_LINK_SECRET: LINK_SECRET },
    // A staff member (not an admin), made with the command line.
    users: [{ username: STAFF, password: STAFF_PASSWORD }],
  });
  ({ base } = server);

  ({ context, page } = await launchWatchedPage(profileDir, { width: 1280, height: 900 }, { problems, htmxRequests, expectedErrors }));
});

after(async () => {
  await context?.close();
  server?.stop();
  rmSync(profileDir, { recursive: true, force: true });
});

test("study screens: subject, consent, QR code, establish, enrolled", async (t) => {
  let token;

  await t.test("a staff member signs in and creates a subject", async () => {
    await page.goto(`${base}/login`);
    await page.getByLabel("Email").fill(STAFF);
    await page.getByLabel("Password").fill(STAFF_PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${base}/home`);
    await page.getByRole("heading", { name: "Recent subjects" }).waitFor();
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Subjects" }).click();
    await page.waitForURL(`${base}/subjects`);
    await page.getByRole("link", { name: "New subject" }).click();
    await page.waitForURL(`${base}/subjects/new`);
    // A wrong birth date is shown next to its field, the rest is kept.
    await page.getByLabel("SSSID").fill(SSSID);
    await page.getByLabel("Name").fill(NAME);
    await page.getByLabel("Email (optional)").fill("ada@example.org");
    expectedErrors.add({ path: "/subjects", status: 400 });
    await page.getByRole("button", { name: "Create subject" }).click();
    await page.locator("#new-subject-bday-error").waitFor();
    assert.equal(await page.getByLabel("Name").inputValue(), NAME);
    await shot("screens-01-new-subject-error");
    await page.getByLabel("Birth date").fill(BDAY);
    await page.getByRole("button", { name: "Create subject" }).click();
    await page.waitForURL(`${base}/subjects/${SSSID}`);
    await page.getByText(`Created subject ${SSSID}.`).waitFor();
    await shot("screens-02-subject-created");
    assertNoProblems("create");
  });

  await t.test("the subject is found by a name fragment", async () => {
    // A second subject through the JSON API, so the search has to filter.
    const { api } = await apiClient(base, STAFF, STAFF_PASSWORD);
    await api("POST", "/subject", { sssid: "E2E-0002", name: "Grace Hopper", bday: "1906-12-09" }, 201);
    await page.goto(`${base}/subjects`);
    await page.getByRole("row").filter({ hasText: "E2E-0002" }).waitFor();
    await page.getByLabel("Search subjects").fill("OVELA");
    await page.waitForURL(/q=OVELA/);
    await page.getByText("1 subject · page 1 of 1").waitFor();
    assert.equal(await page.getByRole("row").filter({ hasText: "E2E-0002" }).count(), 0);
    const row = page.getByRole("row").filter({ hasText: SSSID });
    await row.getByText("Pending").waitFor();
    assert.ok(htmxRequests.includes("GET /subjects"), `search did not use htmx: ${htmxRequests}`);
    await shot("screens-03-search");
    assertNoProblems("search");
  });

  await t.test("consent is recorded after confirmation", async () => {
    const row = page.getByRole("row").filter({ hasText: SSSID });
    await row.getByRole("link", { name: `Record consent of ${SSSID}` }).click();
    await page.getByText(`Record that ${NAME} (${SSSID}) gave consent?`).waitFor();
    await shot("screens-04-confirm-consent");
    await page.getByRole("button", { name: "Record consent" }).click();
    await page.waitForURL(`${base}/subjects/${SSSID}`);
    await page.getByText("Consent recorded.").waitFor();
    await page.locator(".title-row .status").getByText("Consented").waitFor();
    assertNoProblems("consent");
  });

  await t.test("the QR code holds a link JWT signed with the link secret", async () => {
    await page.getByRole("button", { name: `Show the QR code for ${SSSID}` }).click();
    const dialog = page.getByRole("dialog", { name: `Invitation for ${NAME}` });
    await dialog.waitFor();
    assert.ok(htmxRequests.includes(`POST /subjects/${SSSID}/invitation`), `${htmxRequests}`);
    await shot("screens-05-qr-overlay");
    token = await decodeQr(dialog.locator("img.qr"), "screens-05b-qr-code");
    const claims = verifyLinkJwt(token);
    assert.equal(claims.sub, NAME);
    assert.equal(claims.birthdate, BDAY);
    assert.match(claims.jti, /^[0-9a-f]{32}$/);
    assert.equal(claims.iss, base);
    assert.equal(claims.aud, base);
    const now = Date.now() / 1000;
    assert.ok(claims.exp > now + 3600, `exp ${claims.exp} is not in the future`);
    assert.ok(claims.iat <= now + 5);

    // Closing and showing it again reuses the same unexpired link.
    await dialog.getByRole("button", { name: "Close" }).click();
    await dialog.waitFor({ state: "hidden" });
    await page.getByRole("button", { name: `Show the QR code for ${SSSID}` }).click();
    await dialog.waitFor();
    assert.equal(await decodeQr(dialog.locator("img.qr"), "screens-05c-qr-again"), token);

    // The printable invitation shows the same code.
    await dialog.getByRole("link", { name: "Printable invitation" }).click();
    await page.waitForURL(new RegExp(`/subjects/${SSSID}/invitations/${claims.jti}$`));
    await page.getByRole("heading", { name: "Your invitation to the study" }).waitFor();
    assert.equal(await decodeQr(page.locator("img.qr"), "screens-06b-printable-qr"), token);
    await shot("screens-06-printable");
    await page.emulateMedia({ media: "print" });
    await shot("screens-06c-printable-print-media");
    await page.emulateMedia({ media: "screen" });
    assertNoProblems("QR code");
  });

  await t.test("the app establishes the link; the subject page shows Enrolled and the audits", async () => {
    const establish = await fetch(`${base}/establish`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({
        resourceType: "Patient",
        identifier: [{ system: "urn:c3pro:app", value: "install-4711" }],
      }),
    });
    assert.equal(establish.status, 204, await establish.text());
    await page.getByRole("link", { name: "Back to the subject" }).click();
    await page.waitForURL(`${base}/subjects/${SSSID}`);
    await page.locator(".title-row .status").getByText("Enrolled").waitFor();
    const activity = page.locator("#activity");
    const log = await activity.innerText();
    // The activity reads as sentences, not as the API's audit texts.
    for (const action of [
      `Subject created — by ${STAFF}`,
      "Consent recorded, dated ",
      `Link created — by ${STAFF}`,
      `QR code shown — by ${STAFF}`,
      "App linked (install-4711)",
      "Enrolment recorded, dated ",
    ]) {
      assert.ok(log.includes(action), `no audit entry ${action}:\n${log}`);
    }
    assert.ok(!log.includes("[Link]") && !log.includes("consented: "), `raw audit texts:\n${log}`);
    const consentRow = activity.getByRole("row").filter({ hasText: "Consent recorded" });
    await consentRow.getByText(STAFF).waitFor();
    const linkRow = activity.getByRole("row").filter({ hasText: "App linked (install-4711)" });
    assert.ok(!(await linkRow.innerText()).includes(" — by "), "the app is no staff member");
    await page.getByText("Linked ").first().waitFor();
    await shot("screens-07-enrolled");
    assertNoProblems("enrolled");
  });

  await t.test("withdrawal is recorded once; a second attempt shows the conflict", async () => {
    await page.getByRole("link", { name: "Record withdrawal…" }).click();
    await page.getByText("withdrew from the study?").waitFor();
    await page.getByRole("button", { name: "Record withdrawal" }).click();
    await page.getByText("Withdrawal recorded.").waitFor();
    await page.locator(".title-row .status").getByText("Withdrawn").waitFor();
    // A stale confirmation (another tab, the back button) tries again.
    expectedErrors.add({ path: `/subjects/${SSSID}/record`, status: 409 });
    await page.goto(`${base}/subjects/${SSSID}/record?step=withdrawn`);
    await page.getByRole("button", { name: "Record withdrawal" }).click();
    await page.getByText("The withdrawal was already recorded; nothing was changed.").waitFor();
    await shot("screens-08-withdrawal-conflict");
    const withdrawals = await page.locator("#activity").getByRole("row").filter({ hasText: "Withdrawal recorded" }).count();
    assert.equal(withdrawals, 1);
    assertNoProblems("withdrawal");
  });
});
