// Rate-limit numbers on the real runtime (wrangler dev, local Durable
// Objects): the latency the rate-limit phase adds under load (wrk, same
// key, same route shape, with and without a limit that never refuses, and
// with leasing), and how many of M concurrent requests each algorithm
// admits for a limit of N (the error must be zero).
//
//   node tests/support/ratelimit-bench.mjs [--seconds 10] [--json FILE]

import { execFile } from "node:child_process";
import fs from "node:fs";
import { promisify } from "node:util";
import { startE2E } from "./e2e.mjs";

const args = process.argv.slice(2);
const option = (flag, fallback) => {
  const at = args.indexOf(flag);
  return at >= 0 ? args[at + 1] : fallback;
};
const SECONDS = Number(option("--seconds", "10"));
const N = 50;
const M = 500;
const ALGORITHMS = ["token_bucket", "gcra", "fixed_window", "sliding_log"];

const stack = await startE2E({
  name: "ratelimit-bench",
  configure: (config) => {
    const route = (id, rateLimit) => ({
      id,
      path: `/bench/${id}/*`,
      service: "orders",
      auth: { api_key: {} },
      ...(rateLimit ? { rate_limit: rateLimit } : {}),
    });
    config.routes.push(
      route("unlimited"),
      route("limited", { plan: { name: "hot", limit: 1_000_000_000, period: "1s", scope: ["key"] } }),
      route("leased", {
        plan: { name: "hot", limit: 1_000_000_000, period: "1s", scope: ["key"], lease: { size: 1000, ttl: "1s" } },
      }),
      ...ALGORITHMS.map((algorithm) =>
        route(`exact-${algorithm}`, { policies: [{ name: "exact", algorithm, limit: N, period: "1h", scope: ["key"] }] }),
      ),
    );
  },
});

// wrk runs as a child process while this one keeps serving the origins.
async function wrk(path, key) {
  const { stdout: out } = await promisify(execFile)(
    "wrk",
    ["-t1", "-c16", `-d${SECONDS}s`, "--latency", "-H", `X-API-Key: ${key}`, `${stack.gateway.url}${path}`],
    { encoding: "utf8" },
  );
  const latency = (p) => {
    const match = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)`, "m").exec(out);
    if (!match) return NaN;
    const scale = { us: 0.001, ms: 1, s: 1000 }[match[2]];
    return Number(match[1]) * scale;
  };
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  return { rps, p50: latency(50), p99: latency(99), non2xx };
}

const results = { latency: {}, exactness: {} };
try {
  const { key } = await stack.createKey("--name", "bench");
  for (const route of ["unlimited", "limited", "leased"]) {
    await wrk(`/bench/${route}/warm`, key); // warm up isolates and objects
    results.latency[route] = await wrk(`/bench/${route}/x`, key);
  }
  for (const algorithm of ALGORITHMS) {
    const { key: fresh } = await stack.createKey("--name", `exact-${algorithm}`);
    const responses = await Promise.all(
      Array.from({ length: M }, () => stack.fetch(`/bench/exact-${algorithm}/x`, { headers: { "x-api-key": fresh } })),
    );
    await Promise.all(responses.map((r) => r.arrayBuffer()));
    // Admitted means not refused by the limit (a busy origin may still fail some).
    const admitted = responses.filter((r) => r.status !== 429).length;
    results.exactness[algorithm] = { limit: N, sent: M, admitted, error: admitted - N };
  }
} finally {
  await stack.stop();
}

console.log(`rate-limit phase under load: wrk -t1 -c16 -d${SECONDS}s, wrangler dev (local Durable Objects), 2 cores shared with wrk`);
console.log("| route | req/s | p50 ms | p99 ms | non-2xx |");
console.log("|---|---:|---:|---:|---:|");
for (const [route, r] of Object.entries(results.latency)) {
  console.log(`| ${route} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.non2xx} |`);
}
console.log(`\nadmitted of ${M} concurrent requests, limit ${N}:`);
console.log("| algorithm | admitted | error |");
console.log("|---|---:|---:|");
for (const [algorithm, r] of Object.entries(results.exactness)) {
  console.log(`| ${algorithm} | ${r.admitted} | ${r.error} |`);
}
const jsonAt = args.indexOf("--json");
if (jsonAt >= 0) fs.writeFileSync(args[jsonAt + 1], JSON.stringify(results, null, 2));
