// End-to-end aggregation on workerd: one call fans out to the echo
// origins in parallel (three legs of 200, 300 and 400 ms answer in well
// under their sum), a failing optional leg gives a partial answer, and a
// required leg that is down gives 502 problem+json naming it; a leg whose
// body stalls is given up within its time.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { expectProblem, startE2E } from "../support/e2e.mjs";
import { eventually } from "../support/stack.mjs";

let stack;

before(async () => {
  stack = await startE2E({
    name: "aggregate",
    configure: (config) => {
      const leg = (name, service, path, extra = {}) => ({ name, service, path, ...extra });
      config.routes.push(
        { id: "fanout", path: "/fanout/:id", methods: ["GET"], aggregate: { legs: [
          leg("user", "users", "/users/{params.id}?delay_ms=200"),
          leg("orders", "orders", "/orders?user={params.id}&delay_ms=300"),
          leg("catalog", "catalog", "/items?delay_ms=400"),
        ] } },
        { id: "partial", path: "/partial/:id", methods: ["GET"], aggregate: { legs: [
          leg("user", "users", "/users/{params.id}"),
          leg("orders", "orders", "/orders?delay_ms={query.delay_ms?}", { timeout_ms: 300, required: false }),
          leg("team", "catalog", "/teams/{user.body.path}", { required: false }),
        ] } },
        { id: "stalled", path: "/stalled/:id", methods: ["GET"], aggregate: { legs: [
          leg("user", "users", "/users/{params.id}"),
          // Headers at once, then a body that never ends.
          leg("events", "orders", "/events?sse=aggregate-{params.id}", { timeout_ms: 400, required: false }),
        ] } },
        { id: "broken", path: "/broken/:id", methods: ["GET"], aggregate: { legs: [
          leg("user", "users", "/users/{params.id}"),
          leg("gone", "down", "/anything"),
        ] } },
      );
    },
  });
});

after(async () => {
  await stack?.stop();
});

test("three legs of 200, 300 and 400 ms answer together in under 550 ms", async () => {
  await stack.fetch("/fanout/1"); // the isolate and its connections are warm
  const started = performance.now();
  const response = await stack.fetch("/fanout/42");
  const body = await response.json();
  const took = performance.now() - started;
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("portico-aggregate"), "complete");
  assert.equal(body.user.path, "/users/42");
  assert.equal(body.orders.query, "user=42&delay_ms=300");
  assert.equal(body.catalog.service, "catalog");
  assert.ok(took < 550, `took ${took.toFixed(0)} ms; in sequence it would be 900`);
  assert.ok(took >= 400, `took ${took.toFixed(0)} ms, less than the slowest leg`);
});

test("a chained leg reads another leg's answer and a slow optional leg leaves a partial answer", async () => {
  const response = await stack.fetch("/partial/7?delay_ms=2000");
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("portico-aggregate"), "partial; failed=orders");
  const body = await response.json();
  assert.equal(body.user.path, "/users/7");
  assert.equal(body.team.path, "/teams/%2Fusers%2F7", "the chained value stays one segment");
  assert.equal(body.orders.type, "urn:portico:problem:aggregate-leg-failed");
  assert.equal(body.orders.status, 504);
  assert.equal(body.orders.leg, "orders");

  const whole = await stack.fetch("/partial/7");
  assert.equal(whole.headers.get("portico-aggregate"), "complete");
});

test("a leg whose origin sends its headers and then stalls times out, and the stream is let go", async () => {
  const abandonedBefore = stack.orders.stats.abandoned;
  const started = performance.now();
  // A gateway that waited for the body would never answer: give up well
  // before the test runner would.
  const response = await stack.fetch("/stalled/3", { signal: AbortSignal.timeout(10_000) });
  const body = await response.json();
  const took = performance.now() - started;
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("portico-aggregate"), "partial; failed=events");
  assert.equal(body.user.path, "/users/3");
  assert.equal(body.events.status, 504);
  assert.ok(took >= 400, `took ${took.toFixed(0)} ms, less than the leg's time`);
  await eventually(() => stack.orders.stats.abandoned === abandonedBefore + 1, {
    timeoutMs: 5_000,
    intervalMs: 50,
    what: "the stalled leg's connection to be closed",
  });
});

test("a required leg that is down gives 502 problem+json naming it, not its address", async () => {
  const response = await stack.fetch("/broken/1");
  const problem = await expectProblem(response, 502, "aggregate-failed");
  assert.deepEqual(problem.legs.map((leg) => leg.leg), ["gone"]);
  assert.doesNotMatch(JSON.stringify(problem), /127\.0\.0\.1/);
});
