// End-to-end response caching on workerd (wrangler dev has the Cache API,
// caches.default): a miss is stored and the next request is a hit the
// origin never sees; callers of an authenticated route never receive each
// other's entries; a stale entry is served at once while exactly one
// background request refreshes it; operators purge with the CLI.

import assert from "node:assert/strict";
import http from "node:http";
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
          cache: { ttl_seconds: 3, stale_while_revalidate_seconds: 300 } },
        { id: "small", path: "/small/*", methods: ["GET"], service: "catalog", strip_prefix: "/small",
          cache: { ttl_seconds: 300, max_body_bytes: 64 } },
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

  // The entry is stored in the background, after the first answer has
  // gone. Until the store has read the body, a request for the key waits
  // for it and shares it (coalesced); from then on the isolate's own copy
  // answers, and then the data centre's cache. So every later answer is
  // the stored body, and the origin never sees a second request.
  const second = await eventually(async () => {
    const response = await stack.fetch("/cached/items/1?a=1&b=2");
    assert.equal(response.status, 200);
    assert.match(cacheStatus(response), /^Portico; (hit; ttl=\d+|fwd=miss; detail=coalesced)$/);
    const served = await response.json();
    assert.deepEqual(served, body, "the stored body");
    return cacheStatus(response).startsWith("Portico; hit") ? response : null;
  }, { what: "a hit (the entry is stored in the background)" });
  assert.match(second.headers.get("age"), /^\d+$/);
  assert.ok(second.headers.get("x-request-id"), "response phases run on hits too");
  assert.equal(stack.catalog.stats.requests, before + 1, "the origin saw the first request only");
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
  // The origin takes 1.2 s to answer: a refresh stays in flight while the
  // stale hits below come and go.
  const url = "/swr/items/7?delay_ms=1200";
  const before = stack.catalog.stats.requests;
  const first = await stack.fetch(url);
  assert.match(cacheStatus(first), /stored; ttl=3$/);
  const isStale = (response) => /^Portico; hit; ttl=(0|-\d+)$/.test(cacheStatus(response));
  // After 3 s the entry is stale: the first stale hit starts the refresh.
  await eventually(async () => isStale(await stack.fetch(url)), { what: "a stale hit" });
  // While that refresh is at the origin, every request is answered at once
  // from the stale entry (had one waited for the origin, it would have
  // found a fresh entry), and none starts another refresh.
  const during = await Promise.all(Array.from({ length: 10 }, () => stack.fetch(url)));
  assert.deepEqual(during.map(isStale), Array(10).fill(true), during.map(cacheStatus).join("\n"));
  // The refresh landed when a hit is fresh again; any second refresh would
  // have reached the origin long before.
  await eventually(async () => /^Portico; hit; ttl=[1-9]/.test(cacheStatus(await stack.fetch(url))), { what: "the refreshed entry" });
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

/**
 * GET on a connection of its own, the body read and dropped whatever
 * happens to it; resolves to the response's Cache-Status.
 */
function cacheStatusOnce(pathAndQuery) {
  return new Promise((resolve, reject) => {
    const request = http.get(`${stack.gateway.url}${pathAndQuery}`, { agent: false }, (response) => {
      response.on("error", () => {});
      response.resume();
      resolve(response.headers["cache-status"] ?? "");
    });
    request.on("error", reject);
  });
}

test("a response the origin cuts off mid-body is never stored", async () => {
  const url = "/cached/cut?reset_after_bytes=20";
  const before = stack.catalog.stats.requests;
  // Had the first been stored, a later one would be a hit (stores land
  // within milliseconds); every one reaches the origin instead. Each on a
  // new connection: local workerd can end a body cut off by the origin as
  // if it were complete, and a client that then reuses the connection
  // would wait on a response that never comes.
  for (let i = 0; i < 3; i += 1) {
    const status = await cacheStatusOnce(url);
    assert.ok(!status.startsWith("Portico; hit"), `request ${i}: ${status}`);
  }
  // At least once each (a reset that comes before the headers counts as
  // unreachable, and a GET is then tried once more).
  assert.ok(stack.catalog.stats.requests >= before + 3, `${stack.catalog.stats.requests - before} origin requests`);
});

test("a body over the cap is passed through and never stored, with or without a declared length", async () => {
  // The echo's JSON is a few hundred bytes, over the route's 64.
  for (const [url, status] of [
    ["/small/declared", "Portico; fwd=uri-miss; detail=too-large"],
    ["/small/chunked?chunked=1", "Portico; fwd=uri-miss; ttl=300; detail=storing"],
  ]) {
    const before = stack.catalog.stats.requests;
    for (let i = 0; i < 3; i += 1) {
      const response = await stack.fetch(url);
      assert.equal(response.status, 200);
      if (url.includes("chunked")) assert.equal(response.headers.get("content-length"), null, "the origin sent no length");
      assert.equal(cacheStatus(response), status, `${url} request ${i}`);
      const body = await response.json();
      assert.equal(body.service, "catalog", "the client gets the whole body");
    }
    assert.equal(stack.catalog.stats.requests, before + 3, `${url}: every request reached the origin`);
  }
});

test("a body of no declared length within the cap is stored", async () => {
  const before = stack.catalog.stats.requests;
  const first = await stack.fetch("/cached/chunked?chunked=1");
  assert.equal(cacheStatus(first), "Portico; fwd=uri-miss; ttl=300; detail=storing");
  const body = await first.json();
  const hit = await eventually(async () => {
    const response = await stack.fetch("/cached/chunked?chunked=1");
    return cacheStatus(response).startsWith("Portico; hit") ? response : null;
  }, { what: "a hit (the entry is stored in the background)" });
  assert.deepEqual(await hit.json(), body);
  assert.equal(stack.catalog.stats.requests, before + 1);
});
