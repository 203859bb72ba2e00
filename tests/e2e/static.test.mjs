// The console's static files in a real browser: the real `idm` binary is
// started in a fresh, empty working directory (no static/ folder beside it,
// no static_dir), so everything the pages load must come from the binary.
// Chromium (Debian's) must find the console styled and its scripts running,
// with no console error (CSP violations included), page error or failed
// request; and `/` must take a person to /init, then to /login, then home.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { artifacts, launchWatchedPage, repo, startIdm } from "./harness.mjs";

const ADMIN = "admin@static.example";
const ADMIN_PASSWORD = "correct horse battery staple";
const IMMUTABLE = "public, max-age=31536000, immutable";

let server;
let base;
let workDir;
let profileDir;
let context;
let page;
const problems = [];
const htmxRequests = [];
const expectedErrors = new Set();
// Every /static/ answer the browser got: path, status, Cache-Control.
const staticAnswers = [];
// The X-CSRF-Token header of htmx requests: static/app.js adds it.
const csrfHeaders = [];

async function shot(name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true, caret: "initial" });
}

function assertNoProblems(step) {
  assert.deepEqual(problems, [], `${step}: ${problems.join("\n")}`);
}

// The value of a custom property in the repository's console.css, so the
// check follows the stylesheet instead of repeating it.
function cssVariable(name) {
  const css = readFileSync(join(repo, "static/console.css"), "utf8");
  const match = css.match(new RegExp(`${name}:\\s*([^;]+);`));
  assert.ok(match, `console.css defines ${name}`);
  return match[1].trim();
}

// What the browser made of the page's stylesheet and scripts.
async function styling() {
  return page.evaluate(() => {
    const root = getComputedStyle(document.documentElement);
    const header = document.querySelector(".site-header");
    return {
      accent: root.getPropertyValue("--accent").trim(),
      bodyDisplay: getComputedStyle(document.body).display,
      headerColor: header ? getComputedStyle(header).color : null,
      stylesheets: [...document.querySelectorAll('link[rel="stylesheet"]')].map((l) => l.getAttribute("href")),
      scripts: [...document.querySelectorAll("script[src]")].map((s) => s.getAttribute("src")),
      htmx: typeof window.htmx === "object" && window.htmx !== null,
    };
  });
}

async function assertStyled(step) {
  const seen = await styling();
  assert.equal(seen.accent, cssVariable("--accent"), `${step}: console.css applies`);
  assert.equal(seen.bodyDisplay, "flex", `${step}: body layout from console.css`);
  assert.equal(seen.headerColor, "rgb(255, 255, 255)", `${step}: header colours from console.css`);
  assert.deepEqual(seen.stylesheets.map((h) => /^\/static\/console\.[0-9a-f]{16}\.css$/.test(h)), [true], `${step}: ${seen.stylesheets}`);
  assert.equal(seen.scripts.length, 2, `${step}: ${seen.scripts}`);
  for (const src of seen.scripts) {
    assert.match(src, /^\/static\/(htmx\/htmx\.min|app)\.[0-9a-f]{16}\.js$/, step);
  }
  assert.ok(seen.htmx, `${step}: htmx loaded`);
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  // The working directory: empty, and not the repository.
  workDir = mkdtempSync(join(tmpdir(), "idm-e2e-static-"));
  profileDir = mkdtempSync(join(tmpdir(), "idm-e2e-chromium-"));
  // With `cwd`: no IDM_STATIC_DIR and no IDM_DATA_DIR, both defaults are
  // in effect.
  server = await startIdm({ cwd: workDir, env: { IDM_MAIL_TRANSPORT: "none" } });
  ({ base } = server);

  ({ context, page } = await launchWatchedPage(profileDir, { width: 1280, height: 860 }, { problems, htmxRequests, expectedErrors }));
  page.on("response", (res) => {
    const url = new URL(res.url());
    if (url.pathname.startsWith("/static/")) {
      staticAnswers.push({ path: url.pathname, status: res.status(), cacheControl: res.headers()["cache-control"] });
    }
  });
  page.on("request", (req) => {
    if (req.headers()["hx-request"]) csrfHeaders.push(req.headers()["x-csrf-token"] ?? "");
  });
});

after(async () => {
  await context?.close();
  server?.stop();
  rmSync(workDir, { recursive: true, force: true });
  rmSync(profileDir, { recursive: true, force: true });
});

test("the console runs styled from the binary alone, and / leads the way", async (t) => {
  await t.test("the server runs from an empty folder, with its data there", async () => {
    assert.ok(!existsSync(join(workDir, "static")), "no static/ folder in the working directory");
    assert.ok(existsSync(join(workDir, "data")), `the default data folder is relative: ${server.log()}`);
  });

  await t.test("/ in a browser lands on /init while no administrator exists", async () => {
    await page.goto(`${base}/`);
    await page.waitForURL(`${base}/init`);
    await page.getByRole("heading", { name: "Set up C3-PRO IDM" }).waitFor();
    await assertStyled("/init");
    await shot("static-01-init-from-root");
    assertNoProblems("/ to /init");
  });

  await t.test("the hashed files are cached for a year", async () => {
    const hashed = staticAnswers.filter((a) => /\.[0-9a-f]{16}\./.test(a.path));
    const names = new Set(hashed.map((a) => a.path.replace(/\.[0-9a-f]{16}\./, ".")));
    for (const name of ["/static/console.css", "/static/htmx/htmx.min.js", "/static/app.js"]) {
      assert.ok(names.has(name), `${name} not loaded under a hashed name: ${JSON.stringify(staticAnswers)}`);
    }
    for (const answer of hashed) {
      assert.equal(answer.status, 200, answer.path);
      assert.equal(answer.cacheControl, IMMUTABLE, answer.path);
    }
  });

  await t.test("/login points to /init while no administrator exists", async () => {
    await page.goto(`${base}/login`);
    await assertStyled("/login before setup");
    await shot("static-02-login-before-setup");
    await page.getByRole("link", { name: "Create the first administrator" }).click();
    await page.waitForURL(`${base}/init`);
    assertNoProblems("/login hint");
  });

  await t.test("htmx and app.js run: the form posts with the CSRF header", async () => {
    await page.getByLabel("Email").fill(ADMIN);
    await page.getByLabel("Password", { exact: true }).fill(ADMIN_PASSWORD);
    await page.getByLabel("Repeat password").fill(ADMIN_PASSWORD);
    await page.getByRole("button", { name: "Create administrator" }).click();
    await page.getByText(`The administrator ${ADMIN} was created.`).waitFor();
    assert.ok(htmxRequests.includes("POST /init"), `htmx did not post: ${htmxRequests}`);
    const token = await page.locator('meta[name="csrf-token"]').getAttribute("content");
    assert.ok(token, "the page carries a CSRF token");
    assert.deepEqual(csrfHeaders, [token], "app.js put the page's token on the htmx request");
    assertNoProblems("init");
  });

  await t.test("/ then lands on /login, and on /home once signed in", async () => {
    await page.goto(`${base}/`);
    await page.waitForURL(`${base}/login`);
    assert.equal(await page.getByRole("link", { name: "Create the first administrator" }).count(), 0);
    await assertStyled("/login");
    await shot("static-03-login-from-root");
    await page.getByLabel("Email").fill(ADMIN);
    await page.getByLabel("Password").fill(ADMIN_PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${base}/users`);
    await page.goto(`${base}/`);
    await page.waitForURL(`${base}/home`);
    await assertStyled("/home");
    assertNoProblems("/ to /login and /home");
  });

  await t.test("the API page renders under the CSP from the plain names", async () => {
    await page.goto(`${base}/static/api/`);
    await page.locator("#api-toc a").first().waitFor();
    const accent = await page.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue("--accent").trim());
    assert.equal(accent, cssVariable("--accent"), "console.css applies on the API page");
    await shot("static-04-api-page");
    assertNoProblems("/static/api/");
  });
});
