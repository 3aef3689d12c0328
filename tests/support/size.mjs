// `make size`: build the deployable bundle exactly as `wrangler deploy`
// would (--dry-run, no account needed) and check the wasm against the size
// budget. Sizes are deterministic, so exceeding the budget fails the build.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { ROOT, WRANGLER } from "./stack.mjs";

const BUDGET = { raw: 2 * 1024 * 1024, gzip: 700 * 1024 };
const OUT = path.join(ROOT, "target/bundle");

fs.rmSync(OUT, { recursive: true, force: true });
execFileSync(process.execPath, [WRANGLER, "deploy", "--dry-run", "--outdir", OUT], {
  cwd: ROOT,
  env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  stdio: ["ignore", "ignore", "inherit"],
});

const files = fs.readdirSync(OUT, { recursive: true }).map((f) => path.join(OUT, String(f)));
const wasm = files.filter((f) => f.endsWith(".wasm"));
if (wasm.length !== 1) {
  console.error(`expected one .wasm file in ${OUT}, found ${wasm.length}`);
  process.exit(1);
}
const bytes = fs.readFileSync(wasm[0]);
const raw = bytes.length;
const gzip = zlib.gzipSync(bytes, { level: 9 }).length;
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const verdict = (size, budget) => (size <= budget ? "ok" : "OVER BUDGET");

console.log(`deployable wasm: ${path.relative(ROOT, wasm[0])}`);
console.log("| measure | size | budget | |");
console.log("|---|---:|---:|---|");
console.log(`| raw | ${kb(raw)} | ${kb(BUDGET.raw)} | ${verdict(raw, BUDGET.raw)} |`);
console.log(`| gzip -9 | ${kb(gzip)} | ${kb(BUDGET.gzip)} | ${verdict(gzip, BUDGET.gzip)} |`);
fs.writeFileSync(path.join(ROOT, "target/size.json"), JSON.stringify({ raw, gzip, budget: BUDGET }, null, 2));
if (raw > BUDGET.raw || gzip > BUDGET.gzip) process.exit(1);
