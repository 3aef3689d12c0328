// Cold start: how long until a freshly started Worker answers its first
// request, for Portico, the plain pass-through Worker and the JavaScript
// gateway (an API key and an exact limit, beside Portico's), in workerd
// through Miniflare (startup, wasm compile and instantiate, config load
// from KV, one proxied request), and for Portico under `wrangler dev`
// (which adds wrangler's own startup). Medians of several starts.
//
//   node tests/support/coldstart.mjs [--starts 5]

import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { demoKey, startJsGateway, startOrigin, startPassthrough, startPortico } from "./bench-targets.mjs";
import { ROOT, freePort, pushConfig, startWrangler, writeTestWranglerConfig } from "./stack.mjs";

const args = process.argv.slice(2);
const at = args.indexOf("--starts");
const STARTS = at >= 0 ? Number(args[at + 1]) : 5;
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function firstAnswer(start, pathAndQuery, headers = {}) {
  const began = performance.now();
  const target = await start();
  try {
    const response = await fetch(`${target.url}${pathAndQuery}`, { headers });
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`first answer was ${response.status}`);
    return performance.now() - began;
  } finally {
    await target.stop();
  }
}

const origin = await startOrigin();
const rows = [];
try {
  const withKey = { "X-API-Key": demoKey.key };
  await startJsGateway(origin.url).then((warm) => warm.stop()); // bundle it before timing
  for (const [name, start, route, headers] of [
    ["passthrough (Miniflare)", () => startPassthrough(origin.url), "/bench/x"],
    ["portico (Miniflare)", () => startPortico(origin.url), "/route/bench/x"],
    // The first request with an API key and an exact limit: KV, the
    // Durable Object and, for Portico, the config load as well.
    ["js-gateway, API key and limit (Miniflare)", () => startJsGateway(origin.url), "/apikey/bench/x", withKey],
    ["portico, API key and limit (Miniflare)", () => startPortico(origin.url), "/apikey/bench/x", withKey],
  ]) {
    const times = [];
    for (let i = 0; i < STARTS; i += 1) times.push(await firstAnswer(start, route, headers));
    rows.push({ name, ms: median(times), min: Math.min(...times), max: Math.max(...times) });
  }

  const work = fs.mkdtempSync(path.join(os.tmpdir(), "portico-coldstart-"));
  const config = JSON.parse(fs.readFileSync(path.join(ROOT, "fixtures/config/bench.json"), "utf8"));
  config.services.upstream.url = origin.url;
  const configFile = path.join(work, "config.json");
  fs.writeFileSync(configFile, JSON.stringify(config));
  const state = path.join(work, "state");
  const pushed = await pushConfig(configFile, state);
  if (pushed.code !== 0) throw new Error(pushed.output);
  const wranglerConfig = writeTestWranglerConfig(work);
  const times = [];
  for (let i = 0; i < STARTS; i += 1) {
    const port = await freePort();
    const began = performance.now();
    const gateway = await startWrangler({ port, persistTo: state, logFile: path.join(work, "wrangler.log"), config: wranglerConfig, readyTimeoutMs: 120_000 });
    try {
      for (;;) {
        const response = await fetch(`${gateway.url}/route/bench/x`);
        await response.arrayBuffer();
        if (response.status === 200) break;
      }
      times.push(performance.now() - began);
    } finally {
      await gateway.stop();
    }
  }
  rows.push({ name: "portico (wrangler dev, spawn to first 200)", ms: median(times), min: Math.min(...times), max: Math.max(...times) });
  fs.rmSync(work, { recursive: true, force: true });
} finally {
  origin.stop();
}

console.log(`Cold start, median of ${STARTS} starts (ms)`);
console.log("");
console.log("| target | median | range |");
console.log("|---|---:|---:|");
for (const row of rows) console.log(`| ${row.name} | ${row.ms.toFixed(0)} | ${row.min.toFixed(0)}-${row.max.toFixed(0)} |`);
