// `make dev`: the demo on this machine. Starts the echo origins (users;
// orders-a and orders-b, the two instances of the balanced orders service,
// orders-b in a process of its own so it can be stopped alone; catalog;
// legacy, which speaks XML only; live, a WebSocket echo),
// seeds local KV with fixtures/config/demo.json and the demo API
// key, runs the gateway under `wrangler dev` on http://127.0.0.1:8787, and
// prints what to try. Ctrl-C stops everything it started.

import { spawn } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startEchoServer } from "../../fixtures/origin/echo-server.mjs";
import { startXmlServer } from "../../fixtures/origin/xml-server.mjs";
import { demoClaims, mintToken } from "../../fixtures/auth/mint-token.mjs";
import { ROOT, pushConfig, putKvRaw, startWrangler } from "./stack.mjs";

const GATEWAY_PORT = 8787;
const ORDERS_B_SCRIPT = path.join(ROOT, "fixtures/origin/echo-server.mjs");
const STATE = path.join(ROOT, ".wrangler/state");
const CONFIG = path.join(ROOT, "fixtures/config/demo.json");
const SIGNING_SECRET = "demo-signing-secret";
const ADMIN_TOKEN = "demo-admin-token";

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
  for (const [name, port] of [["users", 9101], ["orders-a", 9102], ["catalog", 9103], ["live", 9106]]) {
    const origin = await startEchoServer({ name, port });
    started.push(origin.close);
    console.log(`origin ${name.padEnd(8)} ${origin.url}`);
  }
  const legacy = await startXmlServer({ name: "legacy", port: 9105 });
  started.push(legacy.close);
  console.log(`origin legacy   ${legacy.url} (speaks XML only)`);
  const ordersB = spawn(process.execPath, [ORDERS_B_SCRIPT, "--name", "orders-b", "--port", "9104"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  started.push(async () => {
    if (ordersB.exitCode === null) {
      ordersB.kill("SIGTERM");
      await once(ordersB, "exit");
    }
  });
  await once(ordersB.stdout, "data");
  console.log(`origin orders-b http://127.0.0.1:9104 (process ${ordersB.pid})`);

  const pushed = await pushConfig(CONFIG, STATE);
  process.stdout.write(pushed.output);
  if (pushed.code !== 0) throw new Error("could not seed the demo config");

  // The demo API key: its record (hash only) goes to the KEYS namespace.
  const demoKey = JSON.parse(fs.readFileSync(path.join(ROOT, "fixtures/auth/demo-api-key.json"), "utf8"));
  const recordFile = path.join(os.tmpdir(), `portico-demo-key-${process.pid}.json`);
  fs.writeFileSync(recordFile, JSON.stringify(demoKey.record));
  await putKvRaw("KEYS", `key:${demoKey.record.id}`, recordFile, STATE);
  fs.rmSync(recordFile, { force: true });
  const token = mintToken({ claims: demoClaims({ sub: "alice", roles: ["reader"], ttl: 12 * 3600 }) });

  console.log(`starting the gateway on http://127.0.0.1:${GATEWAY_PORT} ...`);
  const gateway = await startWrangler({
    port: GATEWAY_PORT,
    persistTo: STATE,
    inherit: true,
    vars: { PORTICO_IDENTITY_SECRET: SIGNING_SECRET, PORTICO_ADMIN_TOKEN: ADMIN_TOKEN },
  });
  started.push(gateway.stop);

  const base = gateway.url;
  console.log(`
Portico is running at ${base} (Ctrl-C stops it and the demo origins).
The demo API key opens /api/orders/*, a JWT from the demo issuer opens
/api/users/* (mint more: node fixtures/auth/mint-token.mjs --sub bob --roles admin).
Services can check X-Portico-Signature with the secret '${SIGNING_SECRET}'.

Paste into a shell:
  export KEY='${demoKey.key}'
  export TOKEN='${token}'

Then try:
  curl -i ${base}/api/orders/7 -H "X-API-Key: $KEY"
  curl -i -X POST ${base}/api/orders -H "X-API-Key: $KEY" -d '{"sku":"tea"}'
  curl -i ${base}/api/users/42 -H "Authorization: Bearer $TOKEN"
  curl -i ${base}/api/users/42/profile -H "Authorization: Bearer $TOKEN"
  curl -i ${base}/api/users/42                          # 401 with a Bearer challenge
  curl -i -X PATCH ${base}/api/orders/7                 # 405, with Allow
  curl -i ${base}/nowhere                               # 404 problem+json
  curl -i "${base}/api/orders/7?delay_ms=3000" -H "X-API-Key: $KEY"   # 504 after 2 s
  curl -i -X OPTIONS ${base}/api/orders/7 -H "Origin: http://localhost:5173" -H "Access-Control-Request-Method: GET" -H "Access-Control-Request-Headers: x-api-key"
                                                        # CORS preflight answered by the gateway: 204
  curl -i ${base}/api/orders/7 -H "X-API-Key: $KEY" -H "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                                                        # the trace reaches the service and comes back
  curl -s ${base}/api/dashboard/42 -H "Authorization: Bearer $TOKEN"   # user and orders in one answer
  curl -si "${base}/api/dashboard/42?delay_ms=2000" -H "Authorization: Bearer $TOKEN" | grep -i '^portico-aggregate'   # partial; failed=orders
  for i in 1 2 3 4; do curl -s ${base}/api/orders/$i -H "X-API-Key: $KEY" | jq -r .service; done
                                                        # orders-a, orders-b, ... (balanced)
  kill ${ordersB.pid}                                    # stop orders-b: GETs still answer, from orders-a
  node fixtures/origin/echo-server.mjs --name orders-b --port 9104 &   # back within ~5 s
  curl -s ${base}/api/legacy/orders/7 -H "X-API-Key: $KEY"   # XML-only origin, JSON answer (cost and audit trail left out)
  curl -s ${base}/api/legacy/orders/7 -H "X-API-Key: $KEY" -H "Accept: application/xml"   # the same order, as XML
  node fixtures/origin/ws-client.mjs "ws://127.0.0.1:${GATEWAY_PORT}/api/live/chat?api_key=$KEY" hello   # WebSocket echo
  curl -s -X POST ${base}/api/orders -H "X-API-Key: $KEY" --data-binary @<(head -c 5000000 /dev/zero) | jq .body_bytes
                                                        # 5 MB upload with curl's Expect: 100-continue
  curl -si ${base}/api/catalog/shoes | grep -i '^cache-status'   # Portico; fwd=uri-miss; stored; ttl=30
  curl -si ${base}/api/catalog/shoes | grep -i '^cache-status'   # Portico; hit; ttl=29 (the origin saw one request)
  curl -si ${base}/api/orders/7 -H "X-API-Key: $KEY" | grep -i '^cache-status'   # cached per API key for 10 s
  target/debug/portico cache purge --route catalog --admin-token ${ADMIN_TOKEN}   # purge it in this data centre
  for i in $(seq 12); do curl -s -o /dev/null -w "%{http_code} " ${base}/api/orders/7 -H "X-API-Key: $KEY"; done; echo
                                                        # the demo key may make 10 calls a minute
  target/debug/portico limits show ${demoKey.record.id} --admin-token ${ADMIN_TOKEN}
  target/debug/portico keys create --name acme --roles orders --rate 100/1m --local --persist-to .wrangler/state
  target/debug/portico routes explain GET ${base}/api/users/42/profile --persist-to .wrangler/state
Edit fixtures/config/demo.json, then:
  target/debug/portico config push fixtures/config/demo.json --local --persist-to .wrangler/state
`);
} catch (error) {
  console.error(`make dev: ${error.message}`);
  await shutdown(1);
}
