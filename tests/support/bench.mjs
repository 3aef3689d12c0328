// `make bench`: Portico's overhead against the direct origin, a plain
// JavaScript pass-through Worker and the JavaScript gateway a Workers user
// would write by hand (fixtures/bench/js-gateway.mjs), on this machine, in
// one run.
//
// Every Worker target runs the same way: the built worker (or the
// pass-through script) in workerd through Miniflare's Node API, with local
// KV and Durable Objects, so what is measured is the Worker, not wrangler's
// dev proxy; and each target in a workerd of its own. The origin is the echo fixture in its own process; wrk drives
// load from a third. Each target gets a warm-up, then several timed runs,
// interleaved with the other targets' runs so that drift in the machine's speed
// reaches them all alike.
//
// The cache hit, the pass-through and the static Worker are also measured
// at a fixed request rate with oha (open loop), for their latency under
// the same offered load.
//
//   node tests/support/bench.mjs [--seconds 10] [--runs 3] [--connections 32]
//                                [--only passthrough,portico-route] [--pace-ms 25]
//                                [--rate 800]

import { execFile, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

import { demoKey, startJsCache, startJsGateway, startOrigin, startPassthrough, startPortico, startStatic, tokens } from "./bench-targets.mjs";
import { ROOT } from "./stack.mjs";

const args = process.argv.slice(2);
const option = (flag, fallback) => {
  const at = args.indexOf(flag);
  return at >= 0 ? args[at + 1] : fallback;
};
const SECONDS = Number(option("--seconds", "10"));
const RUNS = Number(option("--runs", "3"));
const CONNECTIONS = Number(option("--connections", "32"));
const ONLY = option("--only", "")
  .split(",")
  .filter(Boolean);
const OUT = path.join(ROOT, "target/bench");
fs.mkdirSync(OUT, { recursive: true });

// Each connection waits this long after each answer in the paced runs, so
// every target gets about the same offered load, below what the
// pass-through can serve: latency then compares without saturation.
const PACE_MS = Number(option("--pace-ms", "25"));
const PACED = path.join(OUT, "paced.lua");
fs.writeFileSync(PACED, `function delay()\n  return ${PACE_MS}\nend\n`);

// The fixed-rate runs: oha sends this many requests per second in all,
// whatever the answers do, and counts each latency from when its request
// was due (--latency-correction), so a stall shows in the tail rather than
// slowing the load down (coordinated omission); every target gets exactly
// the same offered load. `make bench` installs the pinned oha.
const RATE = Number(option("--rate", "800"));
const OHA = process.env.OHA_BIN || "oha";

// The CPU time of a target's workerd process per request served: on
// these runs the isolate's thread, not the machine, is what saturates, so
// this is what decides a Worker's req/s, with far less run-to-run noise.
function workerdPids() {
  try {
    return execFileSync("pgrep", ["-f", "bin/workerd"], { encoding: "utf8" }).split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Start a Worker target and note its workerd process (null if unclear). */
async function started(start) {
  const before = new Set(workerdPids());
  const target = await start();
  const fresh = workerdPids().filter((pid) => !before.has(pid));
  target.pid = fresh.length === 1 ? fresh[0] : null;
  return target;
}

/** User and system CPU of a process so far, in microseconds. */
function cpuMicros(pid) {
  if (!pid) return NaN;
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100;
  } catch {
    return NaN;
  }
}

async function wrk(url, seconds, headers = [], script = null) {
  const headerArgs = headers.flatMap(([name, value]) => ["-H", `${name}: ${value}`]);
  const scriptArgs = script ? ["-s", script] : [];
  const { stdout } = await promisify(execFile)(
    "wrk",
    ["-t1", `-c${CONNECTIONS}`, `-d${seconds}s`, "--latency", ...scriptArgs, ...headerArgs, url],
    { encoding: "utf8", maxBuffer: 1 << 20 },
  );
  const latency = (p) => {
    const match = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)`, "m").exec(stdout);
    return match ? Number(match[1]) * { us: 0.001, ms: 1, s: 1000 }[match[2]] : NaN;
  };
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]),
    requests: Number(/(\d+) requests in/.exec(stdout)?.[1] ?? 0),
    p50: latency(50),
    p99: latency(99),
    errors: Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0),
  };
}

async function oha(url, seconds, headers = []) {
  const headerArgs = headers.flatMap(([name, value]) => ["-H", `${name}: ${value}`]);
  const { stdout } = await promisify(execFile)(
    OHA,
    ["-z", `${seconds}s`, "-w", "-q", String(RATE), "-c", String(CONNECTIONS), "--latency-correction", "--no-tui", "--output-format", "json", ...headerArgs, url],
    { encoding: "utf8", maxBuffer: 1 << 24 },
  );
  const report = JSON.parse(stdout);
  const ms = (p) => Number(report.latencyPercentiles?.[p]) * 1000;
  const answered = Object.values(report.statusCodeDistribution ?? {}).reduce((sum, n) => sum + n, 0);
  const ok = report.statusCodeDistribution?.["200"] ?? 0;
  const failed = Object.values(report.errorDistribution ?? {}).reduce((sum, n) => sum + n, 0);
  return { rps: report.summary.requestsPerSec, p50: ms("p50"), p99: ms("p99"), p999: ms("p99.9"), errors: answered - ok + failed };
}

function ohaMissing() {
  try {
    execFileSync(OHA, ["--version"], { stdio: "ignore" });
    return false;
  } catch {
    return true;
  }
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** The summary of one target's runs: medians, and the range of req/s. */
function summary(name, runs) {
  const result = {
    name,
    rps: median(runs.map((r) => r.rps)),
    rpsMin: Math.min(...runs.map((r) => r.rps)),
    rpsMax: Math.max(...runs.map((r) => r.rps)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    errors: runs.reduce((sum, r) => sum + r.errors, 0),
    cpu: median(runs.map((r) => r.cpu)),
  };
  console.error(`${name}: ${result.rps.toFixed(0)} req/s (${result.rpsMin.toFixed(0)}-${result.rpsMax.toFixed(0)}), p50 ${result.p50} ms, p99 ${result.p99} ms, workerd ${result.cpu.toFixed(0)} µs/req, errors ${result.errors}`);
  return result;
}

/**
 * Measure every target in `specs` ({ name, url, headers, pid }), the runs
 * interleaved: run 1 of each target, then run 2 of each, and so on. The
 * machine's speed drifts by 5-10 % over minutes; interleaved, the drift
 * reaches every target alike instead of skewing the ratios between them.
 */
async function measureAll(specs, script = null) {
  const chosen = specs.filter((spec) => ONLY.length === 0 || ONLY.includes(spec.name));
  const runs = new Map(chosen.map((spec) => [spec.name, []]));
  for (let i = 0; i < RUNS; i += 1) {
    for (const spec of chosen) {
      // Warm-up before every timed run (2 s the first time: isolates,
      // caches, objects; then 1 s), so that no run starts with what the
      // previous target's load left behind (its collection, its
      // background work) in a shared process.
      await wrk(spec.url, i === 0 ? 2 : 1, spec.headers, script);
      const cpuBefore = cpuMicros(spec.pid);
      const run = await wrk(spec.url, SECONDS, spec.headers, script);
      run.cpu = (cpuMicros(spec.pid) - cpuBefore) / run.requests;
      runs.get(spec.name).push(run);
    }
  }
  return chosen.map((spec) => summary(spec.name, runs.get(spec.name)));
}

/** As `measureAll`, at the fixed rate: medians of the runs' percentiles. */
async function measureFixed(specs) {
  const chosen = specs.filter((spec) => ONLY.length === 0 || ONLY.includes(spec.name));
  const runs = new Map(chosen.map((spec) => [spec.name, []]));
  for (let i = 0; i < RUNS; i += 1) {
    for (const spec of chosen) {
      // Warmed at the same rate: a saturating warm-up just before would
      // leave the run its garbage to collect.
      await oha(spec.url, i === 0 ? 2 : 1, spec.headers);
      runs.get(spec.name).push(await oha(spec.url, SECONDS, spec.headers));
    }
  }
  return chosen.map((spec) => {
    const all = runs.get(spec.name);
    const result = {
      name: spec.name,
      rps: median(all.map((r) => r.rps)),
      p50: median(all.map((r) => r.p50)),
      p99: median(all.map((r) => r.p99)),
      p99s: all.map((r) => r.p99),
      p999: median(all.map((r) => r.p999)),
      errors: all.reduce((sum, r) => sum + r.errors, 0),
    };
    console.error(`fixed ${RATE}/s ${spec.name}: p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms (${result.p99s.map((p) => p.toFixed(1)).join(", ")}), p99.9 ${result.p999.toFixed(2)} ms, errors ${result.errors}`);
    return result;
  });
}

const origin = await startOrigin();
const results = [];
const paced = [];
const fixed = [];
const running = [];
try {
  // Every target runs from the start (an idle isolate costs no CPU), so
  // that their runs can alternate; each in a workerd of its own, as its
  // own deployment. In one shared process a target's runs would also pay
  // for what the others left behind: their garbage, their cache entries,
  // and their Durable Objects' alarms, which fire once the objects go idle.
  const chosen = (name) => ONLY.length === 0 || ONLY.includes(name);
  const own = async (name, start, route, headers = []) => {
    if (!chosen(name)) return null;
    const target = await started(start);
    running.push(target);
    return { name, url: `${target.url}${route}`, headers, pid: target.pid };
  };
  const passthrough = () => startPassthrough(origin.url);
  const jsGateway = () => startJsGateway(origin.url);
  const portico = () => startPortico(origin.url);
  const apiKey = [["X-API-Key", demoKey.key]];
  const bearer = (alg) => [["Authorization", `Bearer ${tokens[alg]}`]];
  const specs = [
    { name: "direct", url: `${origin.url}/bench/x`, headers: [], pid: null },
    await own("passthrough", passthrough, "/bench/x"),
    // No I/O at all: the harness's own floor, and its own tail.
    await own("static", () => startStatic(), "/bench/x"),
    await own("js-cache-hit", () => startJsCache(origin.url), "/bench/x"),
    await own("js-gateway", jsGateway, "/apikey/bench/x", apiKey),
    await own("js-gateway-jwt", jsGateway, "/jwt/bench/x", bearer("HS256")),
    await own("portico-route", portico, "/route/bench/x"),
    await own("portico-cache-hit", portico, "/cached/bench/x"),
    await own("portico-aggregate", portico, "/aggregate/x"),
    await own("portico-apikey", portico, "/apikey/bench/x", apiKey),
    await own("portico-apikey-leased", portico, "/apikey-leased/bench/x", apiKey),
    await own("portico-jwt", portico, "/jwt/bench/x", bearer("ES256")),
    // A signature check on every request (the issuer keeps no verified
    // tokens): what a new token costs.
    await own("portico-jwt-es256-uncached", portico, "/jwt-uncached/bench/x", bearer("ES256")),
    await own("portico-jwt-rs256-uncached", portico, "/jwt-uncached/bench/x", bearer("RS256")),
    await own("portico-jwt-hs256", portico, "/jwt-hs256/bench/x", bearer("HS256")),
  ].filter(Boolean);
  results.push(...(await measureAll(specs)));
  const byTarget = Object.fromEntries(specs.map((spec) => [spec.name, spec]));
  const pacedRuns = await measureAll(
    ["passthrough", "static", "js-cache-hit", "portico-cache-hit"].map((name) => byTarget[name]).filter(Boolean),
    PACED,
  );
  paced.push(...pacedRuns.map(({ name, rps, p50, p99 }) => ({ name, rps, p50, p99 })));
  if (ohaMissing()) {
    console.error(`no ${OHA}: the fixed-rate runs are left out (make bench installs it)`);
  } else {
    fixed.push(
      ...(await measureFixed(["direct", "passthrough", "static", "js-cache-hit", "portico-cache-hit"].map((name) => byTarget[name]).filter(Boolean))),
    );
  }
} finally {
  for (const target of running) await target.stop();
  origin.stop();
}

const measured = results.filter(Boolean);
results.length = 0;
results.push(...measured);
const byName = Object.fromEntries(results.map((r) => [r.name, r]));
const ratio = (a, b) => (b ? (a / b).toFixed(2) : "-");
const lines = [
  `Portico benchmark, ${new Date().toISOString()}`,
  `Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? "unknown"}), shared by wrk, workerd and the origin.`,
  `Harness: Miniflare ${JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules/miniflare/package.json"), "utf8")).version} Node API (workerd, local KV and Durable Objects, no wrangler dev proxy); origin: fixtures/origin/echo-server.mjs in its own process.`,
  `Load: wrk -t1 -c${CONNECTIONS}, ${RUNS} runs of ${SECONDS} s, interleaved across targets (run 1 of each, then run 2, ...), each after a warm-up (2 s, then 1 s); medians, with the range of req/s across runs.`,
  "",
  "workerd µs/req: CPU time of the target's workerd process per request served (its isolate thread is what saturates here).",
  "",
  "| target | req/s | range | p50 ms | p99 ms | req/s vs passthrough | p99 vs passthrough | req/s vs direct | workerd µs/req | vs passthrough | errors |",
  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ...results.map(
    (r) =>
      `| ${r.name} | ${r.rps.toFixed(0)} | ${r.rpsMin.toFixed(0)}-${r.rpsMax.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${ratio(r.rps, byName.passthrough?.rps)} | ${ratio(r.p99, byName.passthrough?.p99)} | ${ratio(r.rps, byName.direct?.rps)} | ${Number.isFinite(r.cpu) ? r.cpu.toFixed(0) : "-"} | ${Number.isFinite(r.cpu) ? ratio(r.cpu, byName.passthrough?.cpu) : "-"} | ${r.errors} |`,
  ),
];
// Each Portico target against the JavaScript gateway doing the same work.
const against = [
  ["portico-apikey", "js-gateway"],
  ["portico-apikey-leased", "js-gateway"],
  ["portico-jwt-hs256", "js-gateway-jwt"],
].filter(([a, b]) => byName[a] && byName[b]);
if (against.length > 0) {
  lines.push(
    "",
    "| target | against | req/s ratio | p99 ratio |",
    "|---|---|---:|---:|",
    ...against.map(([a, b]) => `| ${a} | ${b} | ${ratio(byName[a].rps, byName[b].rps)} | ${ratio(byName[a].p99, byName[b].p99)} |`),
  );
}
const pacedResults = paced.filter(Boolean);
const pacedPassthrough = pacedResults.find((r) => r.name === "passthrough");
if (pacedResults.length > 0) {
  lines.push(
    "",
    `Paced: each of the ${CONNECTIONS} connections waits ${PACE_MS} ms after each answer, so the targets get about the same load, below saturation.`,
    "",
    "| target | req/s | p50 ms | p99 ms | p99 vs passthrough |",
    "|---|---:|---:|---:|---:|",
    ...pacedResults.map((r) => `| ${r.name} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${ratio(r.p99, pacedPassthrough?.p99)} |`),
  );
}
const fixedPassthrough = fixed.find((r) => r.name === "passthrough");
if (fixed.length > 0) {
  lines.push(
    "",
    `Fixed rate: oha sends ${RATE} requests per second in all over ${CONNECTIONS} connections (open loop), each latency counted from when its request was due; ${RUNS} runs of ${SECONDS} s, interleaved, medians (p99 of each run in brackets).`,
    "",
    "| target | req/s | p50 ms | p99 ms | p99.9 ms | p50 vs passthrough | p99 vs passthrough | errors |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    ...fixed.map(
      (r) =>
        `| ${r.name} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} (${r.p99s.map((p) => p.toFixed(1)).join(", ")}) | ${r.p999.toFixed(2)} | ${ratio(r.p50, fixedPassthrough?.p50)} | ${ratio(r.p99, fixedPassthrough?.p99)} | ${r.errors} |`,
    ),
  );
}
const report = lines.join("\n");
fs.writeFileSync(path.join(OUT, "report.md"), `${report}\n`);
fs.writeFileSync(path.join(OUT, "results.json"), JSON.stringify(results, null, 2));
fs.writeFileSync(path.join(OUT, "fixed-rate.json"), JSON.stringify(fixed, null, 2));
console.log(report);
