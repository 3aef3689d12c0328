// End-to-end: a balanced service on workerd. The orders service runs on
// three echo origins (orders-a, -b, -c: each echo says which answered)
// with retries and passive health; one is stopped mid-run and started
// again on the same port. A second service has the scheduled health check
// (the Cron Trigger, run through wrangler's --test-scheduled endpoint).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { startEchoServer } from "../../fixtures/origin/echo-server.mjs";
import { eventually } from "../support/stack.mjs";
import { expectProblem, startE2E } from "../support/e2e.mjs";

let stack;
/** The origins by name; replaced when one restarts. */
const origins = {};

before(async () => {
  stack = await startE2E({
    name: "balancing",
    wranglerArgs: ["--test-scheduled"],
    configure: async (config) => {
      for (const name of ["orders-a", "orders-b", "orders-c", "stock-a", "stock-b"]) {
        origins[name] = await startEchoServer({ name });
      }
      // Every request in the log, so each try can be checked.
      config.log = { sample_rate: 1 };
      config.services.orders = {
        targets: ["orders-a", "orders-b", "orders-c"].map((name) => ({ url: origins[name].url })),
        timeout_ms: 2000,
        retry: { attempts: 3, backoff: { base_ms: 0, max_ms: 0 } },
        health: { passive: { consecutive_failures: 2, base_ejection_ms: 1000, max_ejection_ms: 2000 } },
      };
      config.services.stock = {
        targets: ["stock-a", "stock-b"].map((name) => ({ url: origins[name].url })),
        health: { active: { path: "/health", timeout_ms: 1000, unhealthy_threshold: 1, healthy_threshold: 1 } },
      };
      config.routes.push({ id: "stock", path: "/api/stock/*", service: "stock", strip_prefix: "/api" });
    },
  });
});

after(async () => {
  await stack?.stop();
  await Promise.all(Object.values(origins).map((origin) => origin.close()));
});

const orders = (init = {}) =>
  stack.fetch("/api/orders/7", { ...init, headers: { "x-api-key": stack.apiKey.key, ...init.headers } });

/** The JSON events the gateway logged so far. */
function events() {
  return stack
    .log()
    .split("\n")
    .map((line) => {
      // Warnings and errors come coloured: drop the escapes around the JSON.
      const plain = line.replace(/\x1b\[[0-9;]*m/g, "");
      const start = plain.indexOf("{");
      const end = plain.lastIndexOf("}");
      if (start < 0 || end < start) return undefined;
      try {
        return JSON.parse(plain.slice(start, end + 1));
      } catch {
        return undefined;
      }
    })
    .filter((event) => event?.event);
}

/** The access event of the request with this id (once it is logged). */
const accessEvent = (requestId) =>
  eventually(() => events().find((e) => e.event === "request" && e.request_id === requestId), {
    what: `the access event of ${requestId}`,
  });

const authority = (origin) => new URL(origin.url).host;

test("GET requests are spread over the three instances, which the echo names", async () => {
  const served = {};
  for (let i = 0; i < 30; i += 1) {
    const response = await orders();
    assert.equal(response.status, 200);
    const { service } = await response.json();
    served[service] = (served[service] ?? 0) + 1;
  }
  for (const name of ["orders-a", "orders-b", "orders-c"]) {
    assert.ok(served[name] >= 5, `${name} served ${served[name] ?? 0} of 30: ${JSON.stringify(served)}`);
  }
});

test("with an instance stopped, a POST to it is not retried, GETs keep succeeding and it is ejected", async () => {
  const stopped = origins["orders-b"];
  await stopped.close();

  // Round robin reaches orders-b within three requests: that POST fails
  // and is not sent anywhere else.
  let refused;
  for (let i = 0; i < 3 && !refused; i += 1) {
    const response = await orders({ method: "POST", body: "order", headers: { "content-type": "text/plain" } });
    if (response.status === 502) {
      await expectProblem(response, 502, "upstream-unreachable");
      refused = response.headers.get("x-request-id");
    } else {
      assert.equal(response.status, 200);
      assert.notEqual((await response.json()).service, "orders-b");
    }
  }
  assert.ok(refused, "a POST reached the stopped instance");
  const post = await accessEvent(refused);
  assert.equal(post.upstream, authority(stopped));
  assert.equal(post.attempts, undefined, "one try only");

  const ids = [];
  for (let i = 0; i < 30; i += 1) {
    const response = await orders();
    assert.equal(response.status, 200, "no client error while an instance is down");
    assert.notEqual((await response.json()).service, "orders-b");
    ids.push(response.headers.get("x-request-id"));
  }
  const ejected = await eventually(
    () => events().find((e) => e.event === "target_ejected" && e.target === stopped.url),
    { what: "orders-b's ejection" },
  );
  assert.equal(ejected.service, "orders");
  const logged = await Promise.all(ids.map(accessEvent));
  const retried = logged.filter((e) => e.attempts);
  assert.ok(retried.length >= 1, "a GET that met the stopped instance was retried");
  for (const event of retried) {
    assert.equal(event.attempts[0].target, authority(stopped));
    assert.ok(event.attempts[0].error);
    assert.notEqual(event.attempts.at(-1).target, authority(stopped));
  }
  assert.ok(retried.length < 10, `ejected, orders-b was tried by only a few: ${retried.length} of 30`);
});

test("started again on the same port, the instance takes traffic again", async () => {
  const port = origins["orders-b"].port;
  origins["orders-b"] = await startEchoServer({ name: "orders-b", port });
  await eventually(
    async () => {
      const response = await orders();
      assert.equal(response.status, 200);
      return (await response.json()).service === "orders-b";
    },
    { what: "a response from orders-b", timeoutMs: 30_000 },
  );
  const restored = events().find((e) => e.event === "target_restored" && e.target === origins["orders-b"].url);
  assert.equal(restored?.by, "trial");
  const served = new Set();
  for (let i = 0; i < 9; i += 1) {
    served.add((await (await orders()).json()).service);
  }
  assert.deepEqual([...served].sort(), ["orders-a", "orders-b", "orders-c"]);
});

test("the scheduled check keeps a stopped instance out before any request fails there, and brings it back", async () => {
  const stopped = origins["stock-b"];
  await stopped.close();
  const scheduled = await stack.fetch("/__scheduled?cron=*+*+*+*+*");
  assert.equal(scheduled.status, 200, await scheduled.text());
  await eventually(
    () => events().find((e) => e.event === "health_checked" && e.down.includes(`stock ${stopped.url}`)),
    { what: "the check's results" },
  );

  // The first request to the service reads the results: none goes to stock-b.
  const ids = [];
  for (let i = 0; i < 10; i += 1) {
    const response = await stack.fetch("/api/stock/1");
    assert.equal(response.status, 200);
    assert.equal((await response.json()).service, "stock-a");
    ids.push(response.headers.get("x-request-id"));
  }
  for (const event of await Promise.all(ids.map(accessEvent))) {
    assert.equal(event.attempts, undefined, "no try went to the stopped instance");
    assert.equal(event.upstream, authority(origins["stock-a"]));
  }

  origins["stock-b"] = await startEchoServer({ name: "stock-b", port: stopped.port });
  const again = await stack.fetch("/__scheduled?cron=*+*+*+*+*");
  assert.equal(again.status, 200);
  await eventually(
    async () => {
      const response = await stack.fetch("/api/stock/1");
      assert.equal(response.status, 200);
      return (await response.json()).service === "stock-b";
    },
    { what: "a response from stock-b", timeoutMs: 30_000 },
  );
});
