// End-to-end rate limiting on workerd: one Durable Object per limit key,
// exact under concurrency, persisted across a restart, separate per key,
// and the failure policy when the objects cannot be reached.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import { ROOT, eventually, freePort, startWrangler, writeTestWranglerConfig } from "../support/stack.mjs";
import { ADMIN_TOKEN, expectProblem, startE2E } from "../support/e2e.mjs";
import { portico } from "../support/stack.mjs";

const LIMIT = 10;
const SUSTAINED_LIMIT = 10000;
let stack;

before(async () => {
  stack = await startE2E({
    name: "ratelimit",
    configure: (config) => {
      // A budget that refills too slowly (one attempt per 2 minutes) for
      // the time the test takes to matter.
      config.auth.failed_attempts = { limit: 30, period: "1h" };
      config.routes.push(
        {
          id: "limited",
          path: "/api/limited/*",
          service: "orders",
          auth: { api_key: {} },
          rate_limit: { plan: { name: "hourly", limit: LIMIT, period: "1h", scope: ["key"] } },
        },
        {
          id: "windowed",
          path: "/api/windowed/*",
          service: "orders",
          auth: { api_key: {} },
          rate_limit: {
            policies: [{ name: "window", algorithm: "fixed_window", limit: LIMIT, period: "1h", scope: ["key"] }],
          },
        },
        {
          id: "brief",
          path: "/api/brief/*",
          service: "orders",
          auth: { api_key: {} },
          rate_limit: { policies: [{ name: "brief", limit: 1, period: "5s", scope: ["key"] }] },
        },
        {
          id: "sustained",
          path: "/api/sustained/*",
          service: "orders",
          auth: { api_key: {} },
          // Closed: a request the objects did not answer shows as a 503
          // rather than passing unchecked.
          rate_limit: { policies: [{ name: "big", algorithm: "sliding_log", limit: SUSTAINED_LIMIT, period: "1h", scope: ["key"] }], on_failure: "closed" },
        },
        {
          id: "fail-open",
          path: "/api/fail-open/*",
          service: "orders",
          rate_limit: { policies: [{ name: "ip", limit: 100, period: "1m", scope: ["ip"] }], on_failure: "open" },
        },
        {
          id: "fail-closed",
          path: "/api/fail-closed/*",
          service: "orders",
          rate_limit: { policies: [{ name: "ip", limit: 100, period: "1m", scope: ["ip"] }], on_failure: "closed" },
        },
      );
    },
  });
});

after(async () => {
  await stack?.stop();
});

const withKey = (route, key) => stack.fetch(`/api/${route}/x`, { headers: { "x-api-key": key } });

/** Fire `count` requests at once; resolves to their responses. */
async function burst(route, key, count) {
  const responses = await Promise.all(Array.from({ length: count }, () => withKey(route, key)));
  await Promise.all(responses.map((r) => r.arrayBuffer()));
  return responses;
}

for (const route of ["limited", "windowed"]) {
  test(`${route}: ${LIMIT} per hour admits exactly ${LIMIT} of 60 concurrent requests`, async () => {
    const { key } = await stack.createKey("--name", `burst-${route}`);
    const responses = await burst(route, key, 60);
    const statuses = responses.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 200).length, LIMIT, `statuses: ${statuses.join(",")}`);
    assert.equal(statuses.filter((s) => s === 429).length, 60 - LIMIT);
    for (const response of responses) {
      assert.equal(response.headers.get("x-ratelimit-limit"), String(LIMIT));
      assert.ok(response.headers.get("ratelimit-policy").includes(`q=${LIMIT};w=3600`));
      if (response.status === 429) {
        assert.equal(response.headers.get("x-ratelimit-remaining"), "0");
        assert.ok(Number(response.headers.get("retry-after")) >= 1);
      }
    }
    const remaining = responses.filter((r) => r.status === 200).map((r) => Number(r.headers.get("x-ratelimit-remaining")));
    assert.deepEqual([...remaining].sort((a, b) => a - b), Array.from({ length: LIMIT }, (_, i) => i), "each admitted request saw its own count");
  });
}

// Coalesced calls under sustained load: each of many concurrent clients
// sends one request after another, so requests keep waiting behind one
// another's calls for the key. Every one must be answered by the object
// (none refused for a failed call) and see a count of its own.
test("sustained concurrent load on one key: every request is decided by the object, each with its own count", async () => {
  const { key } = await stack.createKey("--name", "sustained");
  const CLIENTS = 32;
  const EACH = 60;
  const seen = [];
  const failures = [];
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      for (let i = 0; i < EACH; i++) {
        const response = await withKey("sustained", key);
        const body = await response.text();
        if (response.status === 200) seen.push(Number(response.headers.get("x-ratelimit-remaining")));
        else failures.push(`${response.status} ${body.slice(0, 200)}`);
      }
    }),
  );
  assert.deepEqual(failures, [], `${failures.length} of ${CLIENTS * EACH} not admitted`);
  const total = CLIENTS * EACH;
  assert.deepEqual(
    [...seen].sort((a, b) => a - b),
    Array.from({ length: total }, (_, i) => SUSTAINED_LIMIT - total + i),
    "each request saw its own count",
  );
});

test("a 429 is problem+json with Retry-After", async () => {
  const { key } = await stack.createKey("--name", "one-more");
  await burst("limited", key, LIMIT);
  const response = await withKey("limited", key);
  assert.equal(response.headers.get("retry-after"), "360", "one token per 360 s at 10 per hour");
  await expectProblem(response, 429, "rate-limited");
});

test("different keys do not share a bucket", async () => {
  const first = await stack.createKey("--name", "first");
  const second = await stack.createKey("--name", "second");
  await burst("limited", first.key, LIMIT + 1);
  assert.equal((await withKey("limited", first.key)).status, 429);
  const other = await withKey("limited", second.key);
  assert.equal(other.status, 200);
  assert.equal(other.headers.get("x-ratelimit-remaining"), String(LIMIT - 1));
});

test("a key's own rate plan overrides the route's plan", async () => {
  const { key } = await stack.createKey("--name", "plan", "--rate", "3/1h");
  const statuses = (await burst("limited", key, 8)).map((r) => r.status);
  assert.equal(statuses.filter((s) => s === 200).length, 3);
});

test("portico limits show reports a key's state on the running gateway", async () => {
  const { id, key } = await stack.createKey("--name", "inspected");
  await burst("limited", key, 4);
  const shown = await portico(["limits", "show", id, "--gateway", stack.gateway.url, "--admin-token", ADMIN_TOKEN, "--json"]);
  assert.equal(shown.code, 0, shown.stderr);
  const report = JSON.parse(shown.stdout);
  assert.equal(report.consumer, "inspected");
  const hourly = report.limits.find((l) => l.route === "limited");
  assert.equal(hourly.policy, "hourly");
  assert.equal(hourly.remaining, LIMIT - 4);
  assert.equal(hourly.stored, true);
  const table = await portico(["limits", "show", id, "--gateway", stack.gateway.url, "--admin-token", ADMIN_TOKEN]);
  assert.match(table.stdout, /limited\s+hourly\s+token_bucket\s+10\/1h\s+6/);
  const denied = await portico(["limits", "show", id, "--gateway", stack.gateway.url, "--admin-token", "wrong"]);
  assert.equal(denied.code, 2);
});

test("an object whose limits stopped mattering empties its storage by alarm", async () => {
  const { id, key } = await stack.createKey("--name", "fleeting");
  const show = async () => {
    const shown = await portico(["limits", "show", id, "--gateway", stack.gateway.url, "--admin-token", ADMIN_TOKEN, "--json"]);
    assert.equal(shown.code, 0, shown.stderr);
    return JSON.parse(shown.stdout).limits.find((l) => l.route === "brief");
  };
  // One token of one per 5 s: the bucket is full again, and the state no
  // longer matters, 5 s after the charge.
  let charged = Date.now();
  const charge = await withKey("brief", key);
  await charge.arrayBuffer();
  assert.equal(charge.status, 200);
  const first = await show();
  if (Date.now() - charged < 5000) {
    assert.equal(first.stored, true, "the charge is stored while it matters");
    assert.equal(first.remaining, 0);
  }
  const emptied = await eventually(async () => {
    const limit = await show();
    return limit.stored === false && limit;
  }, { timeoutMs: 30_000, what: "the object's alarm to empty its storage" });
  assert.equal(emptied.remaining, 1, "an emptied object decides as a full bucket");
  charged = Date.now();
  const reuse = await withKey("brief", key);
  await reuse.arrayBuffer();
  assert.equal(reuse.status, 200);
  const second = await show();
  if (Date.now() - charged < 5000) {
    assert.equal(second.stored, true, "used again, it stores again");
  }
});

test("limit state survives a restart of wrangler dev", async () => {
  const { key } = await stack.createKey("--name", "durable");
  await burst("limited", key, LIMIT);
  const before = await withKey("limited", key);
  assert.equal(before.status, 429);
  await stack.restart();
  const after = await withKey("limited", key);
  assert.equal(after.status, 429, "the object kept its bucket (and the new isolate has no deny cache)");
  assert.equal(after.headers.get("x-ratelimit-remaining"), "0");
});

test("with the objects unreachable, routes fail open or closed as configured", async () => {
  // The same worker and state, but RATE_LIMITER bound to a script that
  // does not run: every object call fails.
  const work = path.join(ROOT, "target/e2e/ratelimit-unavailable");
  const config = writeTestWranglerConfig(work, { rateLimiterScript: "portico-limiter-that-is-not-running" });
  const gateway = await startWrangler({
    port: await freePort(),
    persistTo: stack.state,
    logFile: path.join(work, "wrangler.log"),
    config,
    vars: { PORTICO_IDENTITY_SECRET: "x" },
  });
  try {
    const open = await fetch(`${gateway.url}/api/fail-open/x`);
    assert.equal(open.status, 200, "fail open: admitted");
    assert.equal(open.headers.get("x-ratelimit-limit"), null);
    await expectProblem(await fetch(`${gateway.url}/api/fail-closed/x`), 503, "rate-limit-unavailable");
    const logged = () => fs.readFileSync(path.join(work, "wrangler.log"), "utf8");
    await eventually(() => /"event":"rate_limit_unavailable","route":"fail-open"/.test(logged()), {
      what: "the failed-open request to be logged",
    });
  } finally {
    await gateway.stop();
  }
});

test("an address out of failed attempts gets 429, and its credentials are not checked until the retry time", async () => {
  // 30 failed attempts per client address (see `configure` above).
  const from = (ip) => ({ "cf-connecting-ip": ip });
  const attempt = async (key, ip) => {
    const response = await stack.fetch("/api/orders/1", { headers: { "x-api-key": key, ...from(ip) } });
    await response.arrayBuffer();
    return response;
  };
  const wrong = `${stack.apiKey.key.slice(0, -4)}AAAA`;
  for (let i = 0; i < 30; i += 1) {
    assert.equal((await attempt(wrong, "198.51.100.7")).status, 401, `attempt ${i}`);
  }
  const over = await stack.fetch("/api/orders/1", { headers: { "x-api-key": wrong, ...from("198.51.100.7") } });
  const problem = await expectProblem(over, 429, "rate-limited");
  assert.match(problem.detail, /failed authentication attempts/);
  assert.ok(Number(over.headers.get("retry-after")) >= 1);
  // While blocked, even the right key from that address is refused unchecked...
  assert.equal((await attempt(stack.apiKey.key, "198.51.100.7")).status, 429);
  // ...and other addresses are untouched.
  assert.equal((await attempt(stack.apiKey.key, "198.51.100.8")).status, 200);
});
