// Shared pieces of the end-to-end tests: the real `idm` binary started on
// a free port with a fresh data folder, a JSON-API client signed in as a
// user, and Debian's Chromium (never a downloaded browser) opened with a
// page whose console errors, page errors, failed requests and unexpected
// error answers are collected as problems.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const binary = process.env.IDM_BINARY ?? join(repo, "target/debug/idm");
// Screenshots of every test (git-ignored).
export const artifacts = join(repo, "test-artifacts/e2e");
export const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";

export function freePort() {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolvePort(port));
    });
  });
}

// Waits for `/healthz`; `log()` is shown if the server never answers.
export async function waitForServer(url, log) {
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the server did not start:\n${log()}`);
}

// Starts `idm serve` on a free port of 127.0.0.1 and waits until it
// answers. `users` ({ username, password, admin }) are added first with
// `idm user add --password-stdin`, under the same environment. The server
// gets a fresh data folder (`dataDir`, prefix `idm-e2e-<name>-data-`), the
// repository's static/ folder, file mail (into <dataDir>/outbox) and warn
// logging; `env` adds to or overrides that. With `cwd` it runs in that
// folder instead, on its defaults for the data and static folders (no
// IDM_DATA_DIR, no IDM_STATIC_DIR, `dataDir` is null); the caller owns
// `cwd`. `log()` is what the server printed so far; `stop()` ends it and
// removes the data folder.
export async function startIdm({ name, env = {}, users = [], cwd } = {}) {
  const dataDir = cwd ? null : mkdtempSync(join(tmpdir(), `idm-e2e-${name}-data-`));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const serverEnv = {
    PATH: process.env.PATH,
    IDM_BIND: "127.0.0.1",
    IDM_PORT: String(port),
    IDM_PUBLIC_URL: base,
    ...(cwd ? {} : { IDM_DATA_DIR: dataDir, IDM_STATIC_DIR: join(repo, "static") }),
    IDM_MAIL_TRANSPORT: "file",
    IDM_LOG_LEVEL: "warn",
    ...env,
  };
  let server;
  let output = "";
  const stop = () => {
    server?.kill("SIGTERM");
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    for (const { username, password, admin } of users) {
      const args = ["user", "add", username, "--password-stdin", ...(admin ? ["--admin"] : [])];
      const add = spawnSync(binary, args, { cwd, env: serverEnv, input: `${password}\n`, encoding: "utf8" });
      assert.equal(add.status, 0, `idm user add ${username} failed: ${add.stderr}`);
    }
    server = spawn(binary, ["serve"], { cwd, env: serverEnv, stdio: ["ignore", "pipe", "pipe"] });
    server.stdout.on("data", (d) => (output += d));
    server.stderr.on("data", (d) => (output += d));
    await waitForServer(base, () => output);
  } catch (error) {
    stop();
    throw error;
  }
  return { base, dataDir, log: () => output, stop };
}

// A JSON-API client signed in (POST /auth) as `username`. `api(method,
// path, body, status)` sends `body` as JSON with the token, fails unless
// the answer has `status` (any 2xx when not given), and returns the
// answer's `data` (null when it has no body).
export async function apiClient(base, username, password) {
  const auth = await fetch(`${base}/auth`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  assert.equal(auth.status, 200, `POST /auth as ${username}: ${await auth.clone().text()}`);
  const { access_token: token } = await auth.json();
  async function api(method, path, body, status) {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { "content-type": "application/json", authorization: `JWT ${token}` },
      body: body && JSON.stringify(body),
    });
    const text = await response.text();
    const detail = `${method} ${path}: ${response.status} ${text}`;
    if (status === undefined) assert.ok(response.ok, detail);
    else assert.equal(response.status, status, detail);
    return text === "" ? null : JSON.parse(text).data;
  }
  return { token, api };
}

// Opens Chromium on `profileDir` and watches its page. `watch` holds the
// arrays and set the test reads: `problems`, `htmxRequests` (requests htmx
// made) and `expectedErrors` ({path, status} answers a step provokes).
export async function launchWatchedPage(profileDir, viewport, { problems, htmxRequests, expectedErrors }) {
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-quic",
      "--no-first-run",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const text = msg.text();
    const expected = [...expectedErrors].some((e) => text.includes(`status of ${e.status}`));
    if (!expected) problems.push(`console error: ${text}`);
  });
  page.on("request", (req) => {
    if (req.headers()["hx-request"]) htmxRequests.push(`${req.method()} ${new URL(req.url()).pathname}`);
  });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  // Chromium now and then reports an htmx request as aborted although its
  // answer arrived: the HX-Redirect in that answer navigated the page away
  // before the browser marked the request finished (more often on a busy
  // machine). That abort is the planned navigation; any other failed
  // request is a problem.
  const redirectedBy = new WeakSet();
  page.on("requestfailed", (req) => {
    const error = req.failure()?.errorText;
    if (error === "net::ERR_ABORTED" && redirectedBy.has(req)) return;
    problems.push(`request failed: ${req.method()} ${req.url()} ${error}`);
  });
  page.on("response", (res) => {
    if (res.headers()["hx-redirect"]) redirectedBy.add(res.request());
    const path = new URL(res.url()).pathname;
    const expected = [...expectedErrors].some((e) => e.path === path && e.status === res.status());
    if (res.status() >= 400 && !expected) {
      problems.push(`error answer: ${res.status()} ${res.request().method()} ${res.url()}`);
    }
  });
  return { context, page };
}

// The axe-core rule sets the console must pass: WCAG 2.0, 2.1 and 2.2 at
// levels A and AA, and axe's best practices.
const AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"];

// Rules left out, by id, each with the reason it does not apply to the
// console. None is: every page passes all of the rules above.
const AXE_RULES_OFF = {};

// Runs axe-core on the page as it is now and fails, listing every
// violation with the elements it found, unless there are none. axe is
// evaluated through the DevTools protocol, which the page's CSP (no inline
// script) does not apply to, so the page under test stays as it ships
// (no bypassCSP).
export async function checkAccessibility(page, label) {
  const { source } = (await import("axe-core")).default;
  const loaded = await page.evaluate(() => typeof window.axe !== "undefined");
  // Shadows `module` and `define` of the evaluating scope, so axe's loader
  // attaches it to `window` rather than exporting it.
  if (!loaded) await page.evaluate(`(function (module, define) {\n${source}\n})()`);
  const violations = await page.evaluate(
    async ({ tags, rules }) => {
      const results = await window.axe.run(document, {
        runOnly: { type: "tag", values: tags },
        rules,
        resultTypes: ["violations"],
      });
      return results.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.map((n) => `${n.target.join(" ")}: ${n.failureSummary.replace(/\s+/g, " ")}`),
      }));
    },
    { tags: AXE_TAGS, rules: Object.fromEntries(Object.keys(AXE_RULES_OFF).map((id) => [id, { enabled: false }])) },
  );
  const report = violations
    .map((v) => `  ${v.id} (${v.impact}): ${v.help}\n${v.nodes.map((n) => `    - ${n}`).join("\n")}`)
    .join("\n");
  if (violations.length > 0) {
    throw new Error(`${label}: ${violations.length} accessibility violation(s)\n${report}`);
  }
}
