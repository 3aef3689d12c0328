// The gateway's CPU per request as wasm in V8 (the engine workerd runs):
// the release core, built with the `wasm-bench` feature and optimised like
// the Worker, driven through the in-memory platform. No network, no
// runtime: routing, auth, header work and log serialisation only.
//
//   node tests/support/wasm-bench.mjs [--json FILE]
//
// Needs target/wasm-bench/portico.js (`make wasm-bench` builds it).

import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { ROOT } from "./stack.mjs";

const require = createRequire(import.meta.url);
const { WasmBenchGateway } = require(path.join(ROOT, "target/wasm-bench/portico.js"));
const fixture = (p) => fs.readFileSync(path.join(ROOT, "fixtures", p), "utf8");

const gateway = new WasmBenchGateway(fixture("config/bench.json"));
const demoKey = JSON.parse(fixture("auth/demo-api-key.json"));
gateway.put_key(`key:${demoKey.record.id}`, JSON.stringify(demoKey.record));
const tokens = JSON.parse(fixture("bench/tokens.json"));

const scenarios = [
  ["route only", "/route/users/42?x=1", "", "", false],
  ["cache hit (public route)", "/cached/users/42?x=1", "", "", false],
  ["aggregate of three ~1 KB legs", "/aggregate/x", "", "", false],
  ["route + warm API key + rate-limit decision", "/apikey/x", "x-api-key", demoKey.key, false],
  ...["HS256", "RS256", "PS256", "ES256", "EdDSA"].flatMap((alg) => [
    [`JWT ${alg}, cached`, "/jwt/x", "authorization", `Bearer ${tokens[alg]}`, false],
    [`JWT ${alg}, verified`, "/jwt/x", "authorization", `Bearer ${tokens[alg]}`, true],
  ]),
];

/** Median microseconds per request over several timed batches. */
function measure([, url, header, value, uncached]) {
  const run = (n) => gateway.run("GET", `http://gw.example${url}`, header, value, n, uncached);
  if (run(1) !== 200) throw new Error(`${url} did not answer 200`);
  // Size batches to about 50 ms each.
  let n = 16;
  for (;;) {
    const start = performance.now();
    run(n);
    const elapsed = performance.now() - start;
    if (elapsed > 50 || n > 1 << 20) break;
    n *= 2;
  }
  const samples = [];
  for (let i = 0; i < 9; i += 1) {
    const start = performance.now();
    run(n);
    samples.push(((performance.now() - start) * 1000) / n);
  }
  samples.sort((a, b) => a - b);
  return { median: samples[4], min: samples[0], max: samples[8], iterations: n };
}

const results = scenarios.map((scenario) => ({ scenario: scenario[0], ...measure(scenario) }));
console.log(`gateway CPU per request, wasm in V8 (node ${process.version}), median of 9 batches`);
console.log("| scenario | µs/request | min | max |");
console.log("|---|---:|---:|---:|");
for (const r of results) {
  console.log(`| ${r.scenario} | ${r.median.toFixed(1)} | ${r.min.toFixed(1)} | ${r.max.toFixed(1)} |`);
}
const jsonAt = process.argv.indexOf("--json");
if (jsonAt > 0) fs.writeFileSync(process.argv[jsonAt + 1], JSON.stringify(results, null, 2));
