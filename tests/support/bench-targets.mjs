// The processes `make bench` measures: the echo origin in its own process,
// the built Portico worker and a plain pass-through Worker, each in workerd
// through Miniflare's Node API with local KV and Durable Objects.

import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";

import { Miniflare } from "miniflare";
import { ROOT, freePort } from "./stack.mjs";

const fixture = (p) => fs.readFileSync(path.join(ROOT, "fixtures", p), "utf8");
const compatibilityDate = /compatibility_date = "([^"]+)"/.exec(fs.readFileSync(path.join(ROOT, "wrangler.toml"), "utf8"))[1];
export const demoKey = JSON.parse(fixture("auth/demo-api-key.json"));
export const tokens = JSON.parse(fixture("bench/tokens.json"));

export async function startOrigin() {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, "fixtures/origin/echo-server.mjs"), "--name", "bench", "--port", String(port)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise((resolve) => child.stdout.once("data", resolve));
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill() };
}

export async function startPortico(originUrl, options = {}) {
  const port = await freePort();
  const mf = new Miniflare({
    ...options,
    workers: [
      {
        name: "portico",
        modules: true,
        scriptPath: path.join(ROOT, "build/worker/shim.mjs"),
        modulesRoot: path.join(ROOT, "build"),
        modulesRules: [
          { type: "CompiledWasm", include: ["**/*.wasm"] },
          { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
        ],
        compatibilityDate,
        kvNamespaces: ["CONFIG", "KEYS"],
        durableObjects: { RATE_LIMITER: { className: "RateLimiter", useSQLite: true } },
      },
    ],
    host: "127.0.0.1",
    port,
  });
  await mf.ready;
  const config = JSON.parse(fixture("config/bench.json"));
  config.services.upstream.url = originUrl;
  await (await mf.getKVNamespace("CONFIG")).put("config", JSON.stringify(config));
  await (await mf.getKVNamespace("KEYS")).put(`key:${demoKey.record.id}`, JSON.stringify(demoKey.record));
  return { url: `http://127.0.0.1:${port}`, stop: () => mf.dispose() };
}

export async function startPassthrough(originUrl, options = {}) {
  const port = await freePort();
  const origin = new URL(originUrl);
  const mf = new Miniflare({
    ...options,
    modules: true,
    script: `export default {
      async fetch(request) {
        const url = new URL(request.url);
        url.protocol = "http:";
        url.host = ${JSON.stringify(origin.host)};
        return fetch(new Request(url, request));
      },
    };`,
    compatibilityDate,
    host: "127.0.0.1",
    port,
  });
  await mf.ready;
  return { url: `http://127.0.0.1:${port}`, stop: () => mf.dispose() };
}


/**
 * A Worker that answers every request from memory, with no I/O at all:
 * the fastest Worker this harness can run. Under saturating load its tail
 * is the runtime's own queueing, which every target that answers without
 * waiting on I/O (a cache hit) shares; the paced runs are the latency
 * comparison.
 */
export async function startStatic(options = {}) {
  const port = await freePort();
  const body = JSON.stringify({ service: "static", path: "/bench/x", padding: "x".repeat(512) });
  const mf = new Miniflare({
    ...options,
    modules: true,
    script: `export default {
      fetch() {
        return new Response(${JSON.stringify(body)}, { headers: { "content-type": "application/json" } });
      },
    };`,
    compatibilityDate,
    host: "127.0.0.1",
    port,
  });
  await mf.ready;
  return { url: `http://127.0.0.1:${port}`, stop: () => mf.dispose() };
}

/**
 * The cache a Workers user would write by hand: look the URL up in
 * caches.default, else fetch the origin and store a copy with waitUntil.
 * The baseline for `portico-cache-hit`: the same runtime's Cache API, so
 * what differs is Portico's work around it.
 */
export async function startJsCache(originUrl) {
  const port = await freePort();
  const origin = new URL(originUrl);
  const mf = new Miniflare({
    modules: true,
    script: `export default {
      async fetch(request, env, ctx) {
        const url = new URL(request.url);
        url.protocol = "http:";
        url.host = ${JSON.stringify(origin.host)};
        const cache = caches.default;
        const hit = await cache.match(url.toString());
        if (hit) return hit;
        const fetched = await fetch(new Request(url, request));
        const response = new Response(fetched.body, fetched);
        response.headers.set("cache-control", "max-age=3600");
        ctx.waitUntil(cache.put(url.toString(), response.clone()));
        return response;
      },
    };`,
    compatibilityDate,
    host: "127.0.0.1",
    port,
  });
  await mf.ready;
  return { url: `http://127.0.0.1:${port}`, stop: () => mf.dispose() };
}

/**
 * The JavaScript gateway of fixtures/bench/js-gateway.mjs (Hono, KV lookup
 * by SHA-256 per request, a SQLite-backed Durable Object token bucket per
 * request over RPC, `hono/proxy`), bundled with esbuild as wrangler would.
 */
// The JavaScript gateway, bundled once per process (so a cold start
// measures the Worker's start, not the bundler).
let jsGatewayScript;
async function jsGatewayBundle() {
  if (jsGatewayScript) return jsGatewayScript;
  const { build } = await import("esbuild");
  const bundled = await build({
    entryPoints: [path.join(ROOT, "fixtures/bench/js-gateway.mjs")],
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    minify: true,
    external: ["cloudflare:workers"],
    write: false,
  });
  jsGatewayScript = bundled.outputFiles[0].text;
  return jsGatewayScript;
}

export async function startJsGateway(originUrl, options = {}) {
  const script = await jsGatewayBundle();
  const port = await freePort();
  const mf = new Miniflare({
    ...options,
    modules: true,
    script,
    compatibilityDate,
    kvNamespaces: ["KEYS"],
    durableObjects: { BUCKET: { className: "TokenBucket", useSQLite: true } },
    bindings: { ORIGIN: originUrl, IDENTITY_PREFIX: "x-portico-" },
    host: "127.0.0.1",
    port,
  });
  await mf.ready;
  const digest = crypto.createHash("sha256").update(demoKey.key).digest("hex");
  await (await mf.getKVNamespace("KEYS")).put(`sha256:${digest}`, JSON.stringify(demoKey.record));
  return { url: `http://127.0.0.1:${port}`, stop: () => mf.dispose() };
}
