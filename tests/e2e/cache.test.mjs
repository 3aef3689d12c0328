// End-to-end response caching on workerd (wrangler dev has the Cache API,
// caches.default): a miss is stored and the next request is a hit the
// origin never sees; callers of an authenticated route never receive each
// other's entries; a stale entry is served at once while exactly one
// background request refreshes it; operators purge with the CLI.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { eventually, portico } from "../support/stack.mjs";
import { ADMIN_TOKEN, startE2E } from "../support/e2e.mjs";

let stack;

before(async () => {
  stack = await startE2E({
    name: "cache",
    configure: (config) => {
      config.routes.push(
        { id: "cached", path: "/cached/*", methods: ["GET"], service: "catalog", strip_prefix: "/cached",
          cache: { ttl_seconds: 300 } },
        { id: "swr", path: "/swr/*", methods: ["GET"], service: "catalog", strip_prefix: "/swr",
          cache: { ttl_seconds: 1, stale_while_revalidate_seconds: 300 } },
        { id: "mine", path: "/mine/*", methods: ["GET"], service: "orders", strip_prefix: "/mine",
          auth: { api_key: {} }, cache: { ttl_seconds: 300 } },
      );
    },
  });
});

after(async () => {
  await stack?.stop();
});

const cacheStatus = (response) => response.headers.get("cache-status") ?? "";

test("a miss is stored and the next request is a hit the origin never sees", async () => {
  const before = stack.catalog.stats.requests;
  const first = await stack.fetch("/cached/items/1?b=2&a=1");
  assert.equal(first.status, 200);
  assert.equal(cacheStatus(first), "Portico; fwd=uri-miss; stored; ttl=300");
  const body = await first.json();
  assert.equal(stack.catalog.stats.requests, before + 1);

  const second = await eventually(async () => {
    const response = await stack.fetch("/cached/items/1?a=1&b=2");
    return cacheStatus(response).startsWith("Portico; hit") ? response : null;
  }, { what: "a hit (the entry is stored in the background)" });
  assert.match(cacheStatus(second), /^Portico; hit; ttl=\d+$/);
  assert.match(second.headers.get("age"), /^\d+$/);
  assert.deepEqual(await second.json(), body);
  assert.ok(second.headers.get("x-request-id"), "response phases run on hits too");
  assert.equal(stack.catalog.stats.requests, before + 1, "the origin saw one request");
});

test("concurrent misses for one key make one origin call and every caller gets the response", async () => {
  const before = stack.catalog.stats.requests;
  // The origin holds its answer for a second, so all ten arrive while the
  // first is at the origin.
  const responses = await Promise.all(
    Array.from({ length: 10 }, () => stack.fetch("/cached/items/concurrent?delay_ms=1000")),
  );
  const bodies = await Promise.all(responses.map((r) => r.text()));
  assert.deepEqual(responses.map((r) => r.status), Array(10).fill(200), bodies.join("\n"));
  const statuses = responses.map(cacheStatus);
  assert.equal(statuses.filter((s) => s === "Portico; fwd=uri-miss; stored; ttl=300").length, 1, statuses.join("\n"));
  assert.equal(statuses.filter((s) => s === "Portico; fwd=miss; detail=coalesced").length, 9, statuses.join("\n"));
  assert.equal(new Set(bodies).size, 1, "every caller got the same response");
  assert.equal(stack.catalog.stats.requests, before + 1, "the origin saw one request");
});

test("a caller never receives another caller's cached response", async () => {
  const alice = await stack.createKey("--name", "alice");
  const bob = await stack.createKey("--name", "bob");
  const as = (key) => stack.fetch("/mine/orders/9", { headers: { "x-api-key": key.key } });
  const aliceFirst = await as(alice);
  assert.equal((await aliceFirst.json()).headers["x-portico-consumer"], "alice");
  await eventually(async () => cacheStatus(await as(alice)).startsWith("Portico; hit"), { what: "alice's hit" });

  const bobFirst = await as(bob);
  assert.match(cacheStatus(bobFirst), /fwd=uri-miss/);
  assert.equal((await bobFirst.json()).headers["x-portico-consumer"], "bob");
  const anonymous = await stack.fetch("/mine/orders/9");
  assert.equal(anonymous.status, 401, "a cached entry never answers without credentials");
});

test("a stale entry is served at once and exactly one request refreshes it", async () => {
  const before = stack.catalog.stats.requests;
  const first = await stack.fetch("/swr/items/7");
  assert.match(cacheStatus(first), /stored; ttl=1$/);
  // After a second the entry is stale: the first stale hit starts the refresh.
  const stale = await eventually(async () => {
    const response = await stack.fetch("/swr/items/7");
    return /^Portico; hit; ttl=(0|-\d+)$/.test(cacheStatus(response)) ? response : null;
  }, { what: "a stale hit" });
  assert.equal(stale.status, 200);
  await eventually(() => stack.catalog.stats.requests === before + 2, { what: "the background refresh" });
  assert.equal(stack.catalog.stats.requests, before + 2, "one store, one refresh");
});

test("operators purge a route and a shared URL with the CLI", async () => {
  await eventually(async () => cacheStatus(await stack.fetch("/cached/items/2")).startsWith("Portico; hit"), { what: "a stored entry" });
  const gateway = ["--gateway", stack.gateway.url, "--admin-token", ADMIN_TOKEN];
  const byUrl = await portico(["cache", "purge", "--url", `${stack.gateway.url}/cached/items/2`, ...gateway]);
  assert.equal(byUrl.code, 0, byUrl.stderr);
  assert.match(byUrl.stdout, /entry removed/);
  assert.match(cacheStatus(await stack.fetch("/cached/items/2")), /fwd=uri-miss/);

  await eventually(async () => cacheStatus(await stack.fetch("/cached/items/3")).startsWith("Portico; hit"), { what: "another stored entry" });
  const byRoute = await portico(["cache", "purge", "--route", "cached", ...gateway]);
  assert.equal(byRoute.code, 0, byRoute.stderr);
  assert.match(cacheStatus(await stack.fetch("/cached/items/3")), /fwd=uri-miss/);

  const perCaller = await portico(["cache", "purge", "--url", `${stack.gateway.url}/mine/orders/9`, ...gateway]);
  assert.equal(perCaller.code, 1, "per-caller entries are purged by route");
});

test("a response the origin cuts off mid-body is never stored", async () => {
  const url = "/cached/cut?reset_after_bytes=20";
  const before = stack.catalog.stats.requests;
  // Had the first been stored, a later one would be a hit (stores land
  // within milliseconds); every one reaches the origin instead.
  for (let i = 0; i < 3; i += 1) {
    const response = await stack.fetch(url);
    assert.ok(!cacheStatus(response).startsWith("Portico; hit"), `request ${i}: ${cacheStatus(response)}`);
    await response.arrayBuffer().catch(() => {});
  }
  // At least once each (a reset that comes before the headers counts as
  // unreachable, and a GET is then tried once more).
  assert.ok(stack.catalog.stats.requests >= before + 3, `${stack.catalog.stats.requests - before} origin requests`);
});
