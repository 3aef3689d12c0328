// End-to-end authentication on workerd: API keys made and revoked with the
// CLI, a JWKS served by a local fixture server (with a key rotation picked
// up through the unknown-kid refetch), token introspection against a local
// fixture endpoint, and the identity headers services receive.

import assert from "node:assert/strict";
import crypto from "node:crypto";
import http from "node:http";
import { after, before, test } from "node:test";

import { demoClaims, mintToken } from "../../fixtures/auth/mint-token.mjs";
import { downOrigin, eventually, portico } from "../support/stack.mjs";
import { SIGNING_SECRET, expectProblem, startE2E } from "../support/e2e.mjs";

const ISSUER = "https://idp.e2e.test";
const FLAKY_ISSUER = "https://flaky.e2e.test";
const AUDIENCE = "portico-e2e";

/** A local identity provider: a JWKS whose keys can rotate, and an introspection endpoint. */
function startIdentityProvider() {
  const keys = new Map();
  const newKey = (kid) => {
    const { privateKey, publicKey } = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
    keys.set(kid, {
      privateJwk: { ...privateKey.export({ format: "jwk" }), kid, alg: "ES256" },
      publicJwk: { ...publicKey.export({ format: "jwk" }), kid, alg: "ES256", use: "sig" },
    });
  };
  const state = { jwksFetches: 0, introspections: [], published: [], active: new Map(), down: false };
  const server = http.createServer((req, res) => {
    // /jwks.json is cached for 5 minutes; /jwks-short.json for 1 second.
    if (req.url === "/jwks.json" || req.url === "/jwks-short.json") {
      state.jwksFetches += 1;
      if (state.down) {
        res.writeHead(503).end();
        return;
      }
      const body = JSON.stringify({ keys: state.published.map((kid) => keys.get(kid).publicJwk) });
      const maxAge = req.url === "/jwks.json" ? 300 : 1;
      res.writeHead(200, { "content-type": "application/json", "cache-control": `max-age=${maxAge}` });
      res.end(body);
      return;
    }
    if (req.url === "/introspect" && req.method === "POST") {
      let body = "";
      req.on("data", (chunk) => (body += chunk));
      req.on("end", () => {
        const form = new URLSearchParams(body);
        state.introspections.push({ authorization: req.headers.authorization, form: Object.fromEntries(form) });
        const expected = `Basic ${Buffer.from("gateway:introspection-secret").toString("base64")}`;
        if (req.headers.authorization !== expected) {
          res.writeHead(401).end();
          return;
        }
        const answer = state.active.get(form.get("token")) ?? { active: false };
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(answer));
      });
      return;
    }
    res.writeHead(404).end();
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const url = `http://127.0.0.1:${server.address().port}`;
      resolve({
        url,
        state,
        newKey,
        publish: (...kids) => (state.published = kids),
        sign: (kid, claims) => mintToken({ jwk: keys.get(kid).privateJwk, claims }),
        close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()); }),
      });
    });
  });
}

let stack;
let idp;

before(async () => {
  const unused = await downOrigin();
  idp = await startIdentityProvider();
  idp.newKey("k1");
  idp.publish("k1");
  stack = await startE2E({
    name: "auth",
    vars: { INTROSPECTION_SECRET: "introspection-secret" },
    configure: (config, { closers }) => {
      closers.push(idp.close, unused.close);
      config.auth.jwt.rotating = {
        issuer: ISSUER,
        audiences: [AUDIENCE],
        algorithms: ["ES256"],
        jwks_url: `${idp.url}/jwks.json`,
        jwks_min_cache_seconds: 300,
        jwks_refetch_seconds: 1,
      };
      // Keys cached for a second, usable for an hour if the JWKS goes down.
      config.auth.jwt.flaky = {
        issuer: FLAKY_ISSUER,
        audiences: [AUDIENCE],
        algorithms: ["ES256"],
        jwks_url: `${idp.url}/jwks-short.json`,
        jwks_min_cache_seconds: 1,
        jwks_max_cache_seconds: 3600,
        jwks_refetch_seconds: 1,
      };
      config.auth.jwt.unreachable = {
        issuer: "https://unreachable.e2e.test",
        audiences: [AUDIENCE],
        algorithms: ["ES256"],
        jwks_url: `http://127.0.0.1:${unused.port}/jwks.json`,
        jwks_timeout_ms: 1000,
      };
      config.auth.introspection = {
        corp: { url: `${idp.url}/introspect`, client_id: "gateway", client_secret: "INTROSPECTION_SECRET", cache_seconds: 60 },
      };
      config.routes.push(
        { id: "jwks", path: "/api/jwks/*", service: "users", auth: { jwt: ["rotating"] } },
        { id: "flaky", path: "/api/flaky/*", service: "users", auth: { jwt: ["flaky"] } },
        { id: "unreachable", path: "/api/unreachable/*", service: "users", auth: { jwt: ["unreachable"] } },
        { id: "opaque", path: "/api/opaque/*", service: "users", auth: { introspection: ["corp"], scopes: { any_of: ["read"] } } },
      );
    },
  });
});

after(async () => {
  await stack?.stop();
});

const withKey = (key) => stack.fetch("/api/orders/1", { headers: { "x-api-key": key } });
const withToken = (path, token) => stack.fetch(path, { headers: { authorization: `Bearer ${token}` } });

test("a key created with the CLI works and its identity reaches the service", async () => {
  const response = await withKey(stack.apiKey.key);
  assert.equal(response.status, 200);
  const echo = await response.json();
  assert.equal(echo.headers["x-portico-auth-method"], "api_key");
  assert.equal(echo.headers["x-portico-consumer"], "e2e");
  assert.equal(echo.headers["x-portico-key-id"], stack.apiKey.id);
  assert.equal(echo.headers["x-portico-roles"], "orders");
  assert.ok(!("x-api-key" in echo.headers), "the key itself is not forwarded");
});

test("requests without a valid key are refused with a challenge", async () => {
  const none = await stack.fetch("/api/orders/1");
  assert.equal(none.headers.get("www-authenticate"), 'ApiKey realm="portico", header="x-api-key"');
  await expectProblem(none, 401, "unauthorized");
  const wrong = await withKey(`${stack.apiKey.key.slice(0, -4)}AAAA`);
  assert.match(wrong.headers.get("www-authenticate"), /error="invalid_key"/);
  await expectProblem(wrong, 401, "unauthorized");
});

test("a key without the route's role gets 403", async () => {
  const created = await portico(["keys", "create", "--name", "no-roles", "--local", "--persist-to", stack.state, "--json"]);
  assert.equal(created.code, 0, created.stderr);
  const { key } = JSON.parse(created.stdout);
  await expectProblem(await withKey(key), 403, "forbidden");
});

test("a revoked key stops working", async () => {
  const created = await portico(["keys", "create", "--name", "short-lived", "--roles", "orders", "--local", "--persist-to", stack.state, "--json"]);
  const { id, key } = JSON.parse(created.stdout);
  assert.equal((await withKey(key)).status, 200);
  const revoked = await portico(["keys", "revoke", id, "--local", "--persist-to", stack.state]);
  assert.equal(revoked.code, 0, revoked.stderr);
  await eventually(async () => (await withKey(key)).status === 401, { what: "the revoked key to be refused" });
});

test("a demo JWT works and spoofed identity headers never reach the service", async () => {
  const response = await stack.fetch("/api/users/7", {
    headers: {
      authorization: `Bearer ${stack.token}`,
      "x-portico-roles": "admin",
      "x-portico-subject": "root",
      "X-Portico-Auth-Method": "api_key",
    },
  });
  assert.equal(response.status, 200);
  const echo = await response.json();
  assert.equal(echo.headers["x-portico-auth-method"], "jwt");
  assert.equal(echo.headers["x-portico-subject"], "alice");
  assert.equal(echo.headers["x-portico-roles"], "reader");
  assert.equal(echo.headers["x-portico-issuer"], "https://demo.portico.local");
  assert.ok(!("authorization" in echo.headers));
});

test("the service can verify the gateway's signature", async () => {
  const echo = await (await withToken("/api/users/7?x=1", stack.token)).json();
  const h = echo.headers;
  const fields = ["auth-method", "consumer", "key-id", "subject", "issuer", "roles", "scopes"];
  const canonical = [
    "portico-identity-v1",
    h["x-portico-timestamp"],
    echo.method,
    `${echo.path}${echo.query ? `?${echo.query}` : ""}`,
    ...fields.map((f) => h[`x-portico-${f}`] ?? ""),
  ].join("\n");
  const expected = `v1=${crypto.createHmac("sha256", SIGNING_SECRET).update(canonical).digest("hex")}`;
  assert.equal(h["x-portico-signature"], expected);
  assert.ok(Math.abs(Date.now() / 1000 - Number(h["x-portico-timestamp"])) < 300);
});

test("tampered and expired JWTs are refused", async () => {
  const [head, , sig] = stack.token.split(".");
  const forged = Buffer.from(JSON.stringify({ ...demoClaims(), roles: ["admin"] })).toString("base64url");
  const response = await withToken("/api/users/7", `${head}.${forged}.${sig}`);
  assert.equal(response.headers.get("www-authenticate"), 'Bearer realm="portico", error="invalid_token"');
  await expectProblem(response, 401, "unauthorized");
  const expired = mintToken({ claims: demoClaims({ ttl: -3600 }) });
  await expectProblem(await withToken("/api/users/7", expired), 401, "unauthorized");
});

test("a JWKS from a local server is fetched, and a rotation is picked up through the unknown kid", async () => {
  const claims = { iss: ISSUER, aud: AUDIENCE, sub: "svc", exp: Math.floor(Date.now() / 1000) + 600 };
  const first = await withToken("/api/jwks/x", idp.sign("k1", claims));
  assert.equal(first.status, 200);
  assert.equal((await first.json()).headers["x-portico-subject"], "svc");
  const fetchesBefore = idp.state.jwksFetches;

  idp.newKey("k2");
  idp.publish("k1", "k2");
  const rotated = idp.sign("k2", claims);
  // The cached set (max-age 300) lacks k2: one refetch brings it in.
  await eventually(async () => (await withToken("/api/jwks/x", rotated)).status === 200, {
    what: "the rotated key to be accepted",
  });
  assert.ok(idp.state.jwksFetches > fetchesBefore, "the JWKS was fetched again");
  assert.ok(idp.state.jwksFetches <= fetchesBefore + 3, `refetches are bounded (${idp.state.jwksFetches - fetchesBefore})`);
});

test("opaque tokens are checked with the introspection endpoint", async () => {
  idp.state.active.set("opaque-good", { active: true, sub: "svc-9", client_id: "mobile", scope: "read" });
  idp.state.active.set("opaque-noscope", { active: true, sub: "svc-9", scope: "write" });
  const good = await withToken("/api/opaque/1", "opaque-good");
  assert.equal(good.status, 200);
  const echo = await good.json();
  assert.equal(echo.headers["x-portico-auth-method"], "introspection");
  assert.equal(echo.headers["x-portico-consumer"], "mobile");
  const call = idp.state.introspections.at(-1);
  assert.deepEqual(call.form, { token: "opaque-good", token_type_hint: "access_token" });

  await expectProblem(await withToken("/api/opaque/1", "opaque-unknown"), 401, "unauthorized");
  await expectProblem(await withToken("/api/opaque/1", "opaque-noscope"), 403, "forbidden");
});

test("with the JWKS endpoint down, the last key set keeps verifying tokens up to its ceiling", async () => {
  let minted = 0;
  const fresh = () => {
    minted += 1; // a new subject each time, so no verified-token cache answers
    const claims = { iss: FLAKY_ISSUER, aud: AUDIENCE, sub: `svc-${minted}`, exp: Math.floor(Date.now() / 1000) + 600 };
    return idp.sign("k1", claims);
  };
  assert.equal((await withToken("/api/flaky/x", fresh())).status, 200);
  idp.state.down = true;
  try {
    // Once the one-second set is due for refresh, the refresh fails and
    // the old set stays in use.
    await eventually(
      async () => {
        const response = await withToken("/api/flaky/x", fresh());
        assert.equal(response.status, 200, "still verified with the last good keys");
        await response.arrayBuffer();
        return stack
          .log()
          .split("\n")
          .some((line) => line.includes('"event":"jwks_fetch_failed"') && line.includes("jwks-short.json") && line.includes('"kept_previous":true'));
      },
      { what: "a failed JWKS refresh that kept the previous keys" },
    );
  } finally {
    idp.state.down = false;
  }
});

test("an issuer whose JWKS was never reachable fails closed with 503", async () => {
  const claims = { iss: "https://unreachable.e2e.test", aud: AUDIENCE, sub: "svc", exp: Math.floor(Date.now() / 1000) + 600 };
  await expectProblem(await withToken("/api/unreachable/x", idp.sign("k1", claims)), 503, "auth-unavailable");
});
