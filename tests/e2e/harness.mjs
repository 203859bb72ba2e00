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
