// `make dev`: the demo on this machine. Starts the users and orders echo
// origins, seeds local KV with fixtures/config/demo.json, runs the gateway
// under `wrangler dev` on http://127.0.0.1:8787, and prints what to try.
// Ctrl-C stops everything it started.

import path from "node:path";
import { startEchoServer } from "../../fixtures/origin/echo-server.mjs";
import { ROOT, pushConfig, startWrangler } from "./stack.mjs";

const GATEWAY_PORT = 8787;
const STATE = path.join(ROOT, ".wrangler/state");
const CONFIG = path.join(ROOT, "fixtures/config/demo.json");

const started = [];
async function shutdown(code) {
  for (const stop of started.reverse()) {
    await stop().catch(() => {});
  }
  process.exit(code);
}
process.on("SIGINT", () => shutdown(0));
process.on("SIGTERM", () => shutdown(0));

try {
  for (const [name, port] of [["users", 9101], ["orders", 9102]]) {
    const origin = await startEchoServer({ name, port });
    started.push(origin.close);
    console.log(`origin ${name.padEnd(6)} ${origin.url}`);
  }

  const pushed = await pushConfig(CONFIG, STATE);
  process.stdout.write(pushed.output);
  if (pushed.code !== 0) throw new Error("could not seed the demo config");

  console.log(`starting the gateway on http://127.0.0.1:${GATEWAY_PORT} ...`);
  const gateway = await startWrangler({ port: GATEWAY_PORT, persistTo: STATE, inherit: true });
  started.push(gateway.stop);

  const base = gateway.url;
  console.log(`
Portico is running at ${base} (Ctrl-C stops it and the demo origins).
Try:
  curl -i ${base}/api/users/42
  curl -i ${base}/api/users/42/profile?fields=name
  curl -i -X POST ${base}/api/orders -H 'content-type: application/json' -d '{"sku":"tea"}'
  curl -i -X PATCH ${base}/api/orders/7                  # 405, with Allow
  curl -i ${base}/nowhere                                # 404 problem+json
  curl -i '${base}/api/orders/7?delay_ms=3000'           # 504 after the 2 s route timeout
  target/debug/portico routes explain GET ${base}/api/users/42/profile --persist-to .wrangler/state
Edit fixtures/config/demo.json, then:
  target/debug/portico config push fixtures/config/demo.json --local --persist-to .wrangler/state
`);
} catch (error) {
  console.error(`make dev: ${error.message}`);
  await shutdown(1);
}
