// The stack each end-to-end test file runs against: echo origins, the demo
// config pointed at them (with quick refresh and cache times so changes
// show within a second or two), an API key made with the CLI, a demo JWT,
// and the built worker under wrangler dev with its own port and state.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";

import { startEchoServer } from "../../fixtures/origin/echo-server.mjs";
import { demoClaims, mintToken } from "../../fixtures/auth/mint-token.mjs";
import { ROOT, downOrigin, freePort, portico, pushConfig, startWrangler, writeTestWranglerConfig } from "./stack.mjs";

export const SIGNING_SECRET = "e2e-signing-secret";
export const ADMIN_TOKEN = "e2e-admin-token";

export async function startE2E(options) {
  // Whatever started before a failure (a refused config, say) is stopped
  // again; an echo origin left listening would keep the test process alive.
  const closers = [];
  try {
    return await startStack(options, closers);
  } catch (error) {
    await Promise.all(closers.map((close) => close()));
    throw error;
  }
}

async function startStack({ name, configure = () => {}, vars = {}, wranglerArgs = [] }, closers) {
  const work = path.join(ROOT, "target/e2e", name);
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  const state = path.join(work, "state");
  const log = path.join(work, "wrangler.log");
  const users = await startEchoServer({ name: "users" });
  const orders = await startEchoServer({ name: "orders" });
  const catalog = await startEchoServer({ name: "catalog" });
  closers.push(users.close, orders.close, catalog.close);

  const config = JSON.parse(fs.readFileSync(path.join(ROOT, "fixtures/config/demo.json"), "utf8"));
  config.settings.config_refresh_seconds = 1;
  config.auth.api_keys = { cache_seconds: 1, negative_cache_seconds: 1 };
  config.services.users.url = users.url;
  config.services.orders = { url: orders.url, timeout_ms: 1000 };
  config.services.catalog.url = catalog.url;
  config.services.live.url = users.url;
  const down = await downOrigin();
  closers.push(down.close);
  config.services.down = { url: `http://127.0.0.1:${down.port}` };
  config.routes.push({ id: "down", path: "/api/down/*", service: "down" });
  // The demo's caches and limits are for people trying it; tests set their own.
  for (const route of config.routes) delete route.cache;
  for (const route of config.routes) {
    for (const policy of [route.rate_limit?.plan, ...(route.rate_limit?.policies ?? [])].filter(Boolean)) {
      policy.limit = Math.max(policy.limit, 1000);
    }
  }
  await configure(config, { closers });

  const writeJson = (file, value) => {
    const full = path.join(work, file);
    fs.writeFileSync(full, JSON.stringify(value, null, 2));
    return full;
  };
  const pushed = await pushConfig(writeJson("config.json", config), state);
  assert.equal(pushed.code, 0, pushed.output);

  const created = await portico(["keys", "create", "--name", "e2e", "--roles", "orders", "--local", "--persist-to", state, "--json"]);
  assert.equal(created.code, 0, created.stderr);
  const apiKey = JSON.parse(created.stdout);

  const port = await freePort();
  const wranglerConfig = writeTestWranglerConfig(work);
  const launch = () =>
    startWrangler({
      port,
      persistTo: state,
      logFile: log,
      config: wranglerConfig,
      vars: { PORTICO_IDENTITY_SECRET: SIGNING_SECRET, PORTICO_ADMIN_TOKEN: ADMIN_TOKEN, ...vars },
      args: wranglerArgs,
    });
  let gateway = await launch();
  return {
    get gateway() {
      return gateway;
    },
    /** Stop wrangler dev and start it again on the same port and state. */
    restart: async () => {
      await gateway.stop();
      gateway = await launch();
    },
    users,
    orders,
    catalog,
    config,
    state,
    apiKey,
    token: mintToken({ claims: demoClaims({ sub: "alice", roles: ["reader"] }) }),
    writeJson,
    log: () => (fs.existsSync(log) ? fs.readFileSync(log, "utf8") : ""),
    fetch: (pathAndQuery, init = {}) => fetch(`${gateway.url}${pathAndQuery}`, { redirect: "manual", ...init }),
    /** Create an API key with the CLI; resolves to { id, key, ... }. */
    createKey: async (...args) => {
      const made = await portico(["keys", "create", "--local", "--persist-to", state, "--json", ...args]);
      assert.equal(made.code, 0, made.stderr);
      return JSON.parse(made.stdout);
    },
    stop: async () => {
      await gateway.stop();
      await Promise.all(closers.map((close) => close()));
    },
  };
}

/** Assert a problem+json response and return its body. */
export async function expectProblem(response, status, slug) {
  assert.equal(response.status, status);
  assert.equal(response.headers.get("content-type"), "application/problem+json");
  const body = await response.json();
  assert.equal(body.type, `urn:portico:problem:${slug}`);
  assert.equal(body.status, status);
  assert.equal(typeof body.title, "string");
  assert.equal(body.request_id, response.headers.get("x-request-id"));
  return body;
}
