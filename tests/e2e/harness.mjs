// Shared pieces of the end-to-end tests: a free port, waiting for the
// server, and Debian's Chromium (never a downloaded browser) opened with a
// page whose console errors, page errors, failed requests and unexpected
// error answers are collected as problems.

import { createServer } from "node:net";
import { chromium } from "playwright-core";

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
  page.on("requestfailed", (req) =>
    problems.push(`request failed: ${req.method()} ${req.url()} ${req.failure()?.errorText}`),
  );
  page.on("response", (res) => {
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
