// Where a Worker's isolate time goes per request: a V8 CPU profile of
// workerd under wrk, taken through the inspector (Miniflare's
// `inspectorPort`, the DevTools `Profiler` domain), self time per function
// divided by the requests served while profiling. With the inspector
// attached everything is slower; the shares are what count.
//
//   node tests/support/profile.mjs [--target portico-apikey] [--seconds 10]
//                                  [--top 25]
//
// Targets: portico-route, portico-apikey, portico-jwt-hs256, js-gateway,
// js-gateway-jwt, and portico-jwt-{es256,rs256,eddsa} with (`-uncached`)
// and without a signature check on every request. For wasm function names, build the worker with
// `CARGO_PROFILE_RELEASE_STRIP=none` and wasm-opt `-g`; otherwise wasm
// frames show as `wasm-function[N]`.

import { execFile } from "node:child_process";
import { promisify } from "node:util";

import WebSocket from "ws";

import { demoKey, startJsGateway, startOrigin, startPassthrough, startPortico, tokens } from "./bench-targets.mjs";
import { freePort } from "./stack.mjs";

const args = process.argv.slice(2);
const option = (flag, fallback) => {
  const at = args.indexOf(flag);
  return at >= 0 ? args[at + 1] : fallback;
};
const TARGET = option("--target", "portico-apikey");
const SECONDS = Number(option("--seconds", "10"));
const TOP = Number(option("--top", "25"));

const targets = {
  passthrough: { start: startPassthrough, worker: "", path: "/bench/x", headers: [] },
  "portico-route": { start: startPortico, worker: "portico", path: "/route/bench/x", headers: [] },
  "portico-apikey": { start: startPortico, worker: "portico", path: "/apikey/bench/x", headers: [["X-API-Key", demoKey.key]] },
  "portico-jwt-hs256": {
    start: startPortico,
    worker: "portico",
    path: "/jwt-hs256/bench/x",
    headers: [["Authorization", `Bearer ${tokens.HS256}`]],
  },
  "js-gateway": { start: startJsGateway, worker: "", path: "/apikey/bench/x", headers: [["X-API-Key", demoKey.key]] },
  // Every request verifies its token's signature (an issuer that keeps no
  // verified tokens), and with a cached token for comparison.
  ...Object.fromEntries(
    ["ES256", "RS256", "EdDSA"].flatMap((alg) => [
      [`portico-jwt-${alg.toLowerCase()}-uncached`, { start: startPortico, worker: "portico", path: "/jwt-uncached/bench/x", headers: [["Authorization", `Bearer ${tokens[alg]}`]] }],
      [`portico-jwt-${alg.toLowerCase()}`, { start: startPortico, worker: "portico", path: "/jwt/bench/x", headers: [["Authorization", `Bearer ${tokens[alg]}`]] }],
    ]),
  ),
  "js-gateway-jwt": { start: startJsGateway, worker: "", path: "/jwt/bench/x", headers: [["Authorization", `Bearer ${tokens.HS256}`]] },
};
const target = targets[TARGET];
if (!target) throw new Error(`unknown target ${TARGET}; one of ${Object.keys(targets).join(", ")}`);

async function wrk(url, seconds) {
  const headerArgs = target.headers.flatMap(([name, value]) => ["-H", `${name}: ${value}`]);
  const { stdout } = await promisify(execFile)("wrk", ["-t1", "-c32", `-d${seconds}s`, ...headerArgs, url], { encoding: "utf8" });
  return Number(/(\d+) requests in/.exec(stdout)?.[1] ?? 0);
}

/** A DevTools session on the worker's isolate. */
async function inspect(port, worker) {
  const list = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const entry = list.find((t) => t.id === `core:user:${worker}` || (!worker && t.id.startsWith("core:user:"))) ?? list[0];
  const socket = new WebSocket(entry.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    socket.once("open", resolve);
    socket.once("error", reject);
  });
  let id = 0;
  const pending = new Map();
  socket.on("message", (data) => {
    const message = JSON.parse(data);
    if (message.id && pending.has(message.id)) {
      pending.get(message.id)(message);
      pending.delete(message.id);
    }
  });
  const send = (method, params = {}) =>
    new Promise((resolve) => {
      id += 1;
      pending.set(id, resolve);
      socket.send(JSON.stringify({ id, method, params }));
    });
  return { send, close: () => socket.close() };
}

const origin = await startOrigin();
const inspectorPort = await freePort();
const running = await target.start(origin.url, { inspectorPort });
try {
  const url = `${running.url}${target.path}`;
  await wrk(url, 2); // warm-up
  const session = await inspect(inspectorPort, target.worker);
  await session.send("Profiler.enable");
  await session.send("Profiler.setSamplingInterval", { interval: 100 });
  await session.send("Profiler.start");
  const requests = await wrk(url, SECONDS);
  const { result } = await session.send("Profiler.stop");
  session.close();

  const { nodes, samples, timeDeltas } = result.profile;
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < samples.length; i += 1) {
    const node = byId.get(samples[i]);
    const frame = node.callFrame;
    const where = frame.url ? frame.url.replace(/^.*\//, "") : "";
    const key = `${frame.functionName || "(anonymous)"} ${where}`.trim();
    self.set(key, (self.get(key) ?? 0) + (timeDeltas[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  // Where each function lives: the wasm module, a script (the Worker's
  // JavaScript, glue included), or the runtime itself (no script).
  const category = (key) => {
    if (key.startsWith("(")) return key;
    if (key.startsWith("wasm-function") || key.startsWith("js-to-wasm") || key.startsWith("wasm-to-js")) return "wasm and its boundary";
    return key.includes(" ") ? "JavaScript of the Worker" : "runtime built-ins (fetch, Headers, timers, ...)";
  };
  const byCategory = new Map();
  for (const [key, us] of self) byCategory.set(category(key), (byCategory.get(category(key)) ?? 0) + us);
  const idle = self.get("(idle)") ?? 0;
  const perRequest = (us) => (us / requests).toFixed(1);
  console.log(`${TARGET}: ${requests} requests in ${SECONDS} s under the profiler`);
  console.log(`isolate time per request ${perRequest(total - idle)} µs (idle excluded)\n`);
  console.log("| part | µs/request |");
  console.log("|---|---:|");
  for (const [part, us] of [...byCategory.entries()].filter(([k]) => k !== "(idle)").sort((a, b) => b[1] - a[1])) {
    console.log(`| ${part} | ${perRequest(us)} |`);
  }
  console.log("");
  console.log("| function | µs/request | share |");
  console.log("|---|---:|---:|");
  for (const [key, us] of [...self.entries()].filter(([k]) => k !== "(idle)").sort((a, b) => b[1] - a[1]).slice(0, TOP)) {
    console.log(`| ${key.replaceAll("|", "\\|")} | ${perRequest(us)} | ${((100 * us) / (total - idle)).toFixed(1)} % |`);
  }
} finally {
  await running.stop();
  origin.stop();
}
