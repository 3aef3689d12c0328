// Sustained load on one Portico isolate, in phases: wrk runs one after
// another (each end disconnects its 32 clients mid-request), so what
// builds up across client disconnects shows. Prints each phase's req/s
// and non-2xx count; the gateway's error lines come out between them.
//
//   node tests/support/soak.mjs hs256:2 hs256:5 hs256:5 sleep8 apikey:5
//
// A step is `target:seconds` (targets: apikey, hs256) or `sleepN`.

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { demoKey, startOrigin, startPortico, tokens } from "./bench-targets.mjs";
const order = process.argv.slice(2);
const targets = {
  apikey: ["/apikey/bench/x", ["X-API-Key", demoKey.key]],
  hs256: ["/jwt-hs256/bench/x", ["Authorization", `Bearer ${tokens.HS256}`]],
};
const origin = await startOrigin();
const portico = await startPortico(origin.url);
for (const step of order) {
  if (step.startsWith("sleep")) { await new Promise((r) => setTimeout(r, Number(step.slice(5)) * 1000)); console.log(`=== slept`); continue; }
  const [name, secs] = step.split(":");
  const [path, header] = targets[name];
  console.log(`=== phase ${name}`);
  const { stdout } = await promisify(execFile)("wrk", ["-t1", "-c32", `-d${secs}s`, "-H", `${header[0]}: ${header[1]}`, portico.url + path], { encoding: "utf8" });
  console.log(`=== done ${name}: ${/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]} req/s, non-2xx ${/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0}`);
}
await portico.stop();
origin.stop();
