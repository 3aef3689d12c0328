// End-to-end CORS in a real browser: headless Chromium (Debian's package,
// driven by puppeteer-core, which downloads no browser of its own) opens a
// page served from a second local origin and, from that page, calls the
// gateway with the browser's own fetch(). Chromium enforces CORS exactly
// as it does for a web app: it sends the preflight, checks the answer, and
// hides whatever response or header the gateway did not allow. The page
// and the gateway are both on 127.0.0.1 but on different ports, so every
// call is cross-origin.

import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import puppeteer from "puppeteer-core";

import { startE2E } from "../support/e2e.mjs";

// Installed by `make browser` (apt), never downloaded by puppeteer.
const CHROMIUM = "/usr/bin/chromium";

// puppeteer passes --headless=new itself for `headless: true`; listed so
// the whole command line this machine needs is in one place.
const CHROMIUM_ARGS = [
  "--headless=new",
  // Tests may run as root, where Chromium refuses to start with its sandbox.
  "--no-sandbox",
  "--disable-gpu",
  // The network is closed: without these Chromium keeps opening (refused)
  // connections to Google's services in the background.
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  // Shared memory in /tmp, not /dev/shm, which is small on many CI machines
  // (Debian's launcher adds this only when it finds /dev/shm small).
  "--disable-dev-shm-usage",
];

// Every in-page fetch gives up after this, so a gateway that never answers
// fails the test with a TimeoutError instead of hanging it.
const FETCH_TIMEOUT_MS = 10_000;

let pageServer;
let pageOrigin;
let stack;
let gatewayUrl;
let browser;
let browserDir;
let page;
/** "METHOD /path" of every request that reached the orders service. */
const ordersSeen = [];
/** The page's console; Chromium explains every CORS refusal there. */
const consoleLines = [];

/** The page the browser app runs in: one HTML document, nothing else. */
function startPageServer() {
  const html = "<!doctype html>\n<meta charset=\"utf-8\">\n<title>Portico CORS test app</title>\n<p>A browser app on its own origin.</p>\n";
  return new Promise((resolve, reject) => {
    const server = http.createServer((req, res) => {
      if (req.method === "GET" && req.url === "/") {
        res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
        res.end(html);
      } else {
        res.writeHead(404, { "content-type": "text/plain" });
        res.end("not found\n");
      }
    });
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () =>
      resolve({
        origin: `http://127.0.0.1:${server.address().port}`,
        close: () =>
          new Promise((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      }),
    );
  });
}

before(async () => {
  pageServer = await startPageServer();
  pageOrigin = pageServer.origin;

  stack = await startE2E({
    name: "cors-browser",
    configure: (config) => {
      const orders = config.routes.find((route) => route.id === "orders");
      orders.cors = { origins: [pageOrigin], headers: ["X-API-Key", "Content-Type"], max_age_seconds: 600 };
      config.routes.push(
        // Added after startE2E raised the demo's limits, so this one stays at 1.
        {
          id: "orders-limited",
          path: "/api/limited/*",
          methods: ["GET"],
          service: "orders",
          strip_prefix: "/api",
          auth: { api_key: {} },
          rate_limit: { policies: [{ name: "tight", limit: 1, period: "1h", scope: ["key"] }] },
          cors: { origins: [pageOrigin], headers: ["X-API-Key"] },
        },
        {
          id: "orders-other-origin",
          path: "/api/partner/*",
          service: "orders",
          strip_prefix: "/api",
          auth: { api_key: {} },
          cors: { origins: ["https://partner.example.com"], headers: ["X-API-Key"] },
        },
      );
    },
  });
  gatewayUrl = stack.gateway.url;
  stack.orders.server.on("request", (req) => ordersSeen.push(`${req.method} ${req.url}`));

  // A fresh profile per run, and Chromium's XDG config and cache (crash
  // report database, dconf) beside it rather than in the home directory.
  browserDir = fs.mkdtempSync(path.join(os.tmpdir(), "portico-chromium-"));
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: path.join(browserDir, "profile"),
    env: { ...process.env, XDG_CONFIG_HOME: path.join(browserDir, "config"), XDG_CACHE_HOME: path.join(browserDir, "cache") },
    args: CHROMIUM_ARGS,
  });
  page = await browser.newPage();
  page.setDefaultTimeout(FETCH_TIMEOUT_MS);
  page.on("console", (message) => consoleLines.push(message.text()));
  const loaded = await page.goto(`${pageOrigin}/`);
  assert.equal(loaded.status(), 200);
});

after(async () => {
  if (browser) {
    try {
      await browser.close();
    } catch {
      browser.process()?.kill("SIGKILL");
    }
  }
  if (browserDir) fs.rmSync(browserDir, { recursive: true, force: true });
  await stack?.stop();
  await pageServer?.close();
});

/**
 * fetch() run by the page's own script, so the browser applies CORS.
 * Resolves to what that script can see: the status, the headers it may
 * read (Headers iteration skips the ones CORS hides) and the body, or the
 * name and message of the error the fetch rejected with.
 */
function fetchFromPage(url, init = {}) {
  return page.evaluate(
    async (url, init, timeoutMs) => {
      try {
        const response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
        const text = await response.text();
        let body = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON; keep the text
        }
        return { status: response.status, headers: Object.fromEntries(response.headers), body };
      } catch (error) {
        return { rejected: error.name, message: error.message };
      }
    },
    url,
    init,
    FETCH_TIMEOUT_MS,
  );
}

/** A failure message for a call to `url` the browser refused, with Chromium's reason if the console has it. */
function blockedBy(outcome, url) {
  const reasons = consoleLines.filter((line) => line.includes("CORS policy") && line.includes(`'${url}'`)).slice(-1);
  return `the browser refused the call (${outcome.rejected}: ${outcome.message})${reasons.length ? `; console: ${reasons.join(" | ")}` : ""}`;
}

/**
 * The browser's preflight for `url`, as puppeteer saw its response (status
 * and headers), or null if none came while `action` ran.
 */
async function withPreflight(url, action) {
  const preflight = page
    .waitForResponse((response) => response.url() === url && response.request().method() === "OPTIONS")
    .catch(() => null);
  const [answered, outcome] = await Promise.all([preflight, action()]);
  return { preflight: answered, outcome };
}

test("a browser app on an allowed origin calls the API-key route: preflight and GET succeed, body and X-Request-Id readable", async () => {
  const target = `${gatewayUrl}/api/orders/7`;
  const seenBefore = ordersSeen.length;
  const { preflight, outcome } = await withPreflight(target, () =>
    fetchFromPage(target, { headers: { "X-API-Key": stack.apiKey.key } }),
  );

  assert.equal(outcome.rejected, undefined, blockedBy(outcome, target));
  assert.equal(outcome.status, 200);
  assert.equal(outcome.body.service, "orders");
  assert.equal(outcome.body.path, "/orders/7");
  const requestId = outcome.headers["x-request-id"];
  assert.ok(requestId, `X-Request-Id is not readable by the page; it sees ${JSON.stringify(outcome.headers)}`);
  assert.equal(outcome.body.headers["x-request-id"], requestId);

  // X-API-Key is not a CORS-safelisted header, so the browser asked first,
  // and the gateway answered that preflight itself.
  assert.ok(preflight, "the browser sent no preflight");
  assert.equal(preflight.status(), 204);
  const allowed = preflight.headers();
  assert.equal(allowed["access-control-allow-origin"], pageOrigin);
  assert.match(allowed["access-control-allow-headers"] ?? "", /(^|[\s,])x-api-key($|[\s,])/i);
  assert.equal(allowed["access-control-max-age"], "600");
  assert.match(allowed.vary ?? "", /(^|[\s,])origin($|[\s,])/i);
  assert.deepEqual(ordersSeen.slice(seenBefore), ["GET /orders/7"], "only the GET reaches the orders service");
});

test("a browser app reads the 429 problem body and Retry-After of a rate-limited route", async () => {
  const target = `${gatewayUrl}/api/limited/1`;
  const call = () => fetchFromPage(target, { headers: { "X-API-Key": stack.apiKey.key } });

  const first = await call();
  assert.equal(first.rejected, undefined, blockedBy(first, target));
  assert.equal(first.status, 200);

  const limited = await call();
  assert.equal(limited.rejected, undefined, blockedBy(limited, target));
  assert.equal(limited.status, 429);
  assert.equal(limited.headers["content-type"], "application/problem+json");
  assert.equal(limited.body.type, "urn:portico:problem:rate-limited");
  assert.equal(limited.body.status, 429);
  // Retry-After is not CORS-safelisted: readable only because the policy's
  // default Access-Control-Expose-Headers lists it.
  assert.ok(
    Number(limited.headers["retry-after"]) >= 1,
    `Retry-After is not readable by the page; it sees ${JSON.stringify(limited.headers)}`,
  );
  assert.equal(limited.body.request_id, limited.headers["x-request-id"]);
});

test("a route whose policy does not allow the page's origin is blocked by the browser", async () => {
  const target = `${gatewayUrl}/api/partner/1`;
  const seenBefore = ordersSeen.length;
  const { preflight, outcome } = await withPreflight(target, () =>
    fetchFromPage(target, { headers: { "X-API-Key": stack.apiKey.key } }),
  );

  assert.equal(outcome.rejected, "TypeError", `the page could read the response: ${JSON.stringify(outcome)}`);
  // The gateway did answer (so this is CORS, not a network failure), and
  // its answer did not allow this origin; the GET itself was never sent.
  assert.ok(preflight, "the browser sent no preflight");
  assert.notEqual(preflight.headers()["access-control-allow-origin"], pageOrigin);
  assert.notEqual(preflight.headers()["access-control-allow-origin"], "*");
  assert.deepEqual(
    ordersSeen.slice(seenBefore).filter((request) => !request.startsWith("OPTIONS ")),
    [],
    "the blocked request reached the orders service",
  );
});

test("CORS is opt-in: a route without a policy is unreadable from another origin, even its 401", async () => {
  // A simple GET (no custom headers) needs no preflight: the browser sends
  // it, and the gateway's answer carries no Access-Control-Allow-Origin.
  const direct = await stack.fetch("/api/users/42", { headers: { origin: pageOrigin } });
  assert.equal(direct.status, 401);
  assert.equal(direct.headers.get("access-control-allow-origin"), null);
  await direct.body?.cancel();

  const outcome = await fetchFromPage(`${gatewayUrl}/api/users/42`);
  assert.equal(outcome.rejected, "TypeError", `the page could read the response: ${JSON.stringify(outcome)}`);
});
