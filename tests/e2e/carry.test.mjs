// End-to-end: requests that are more than one plain exchange, through the
// built worker under `wrangler dev` against real echo origins: uploads with
// `Expect: 100-continue` (curl's defaults), request body limits by length
// and by chunked stream, WebSocket upgrades through an authenticated route,
// and Server-Sent Events that stream through unbuffered.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

import { WebSocket } from "ws";

import { eventually } from "../support/stack.mjs";
import { expectProblem, startE2E } from "../support/e2e.mjs";

const SMALL_LIMIT = 1024;
let stack;

before(async () => {
  stack = await startE2E({
    name: "carry",
    configure: (config) => {
      config.routes.push(
        { id: "upload", path: "/upload/*", methods: ["POST", "PUT"], service: "users", timeout_ms: 20000 },
        { id: "small", path: "/small/*", methods: ["POST"], service: "users", max_body_bytes: SMALL_LIMIT },
        { id: "events", path: "/events/*", methods: ["GET"], service: "users" },
      );
    },
  });
});

after(async () => {
  await stack?.stop();
});

const run = promisify(execFile);

/** curl with its defaults (it sends `Expect: 100-continue` for large bodies). */
async function curl(args) {
  const { stdout, stderr } = await run("curl", ["-sS", "-v", ...args], { maxBuffer: 1 << 24 });
  return { stdout, stderr };
}

function bodyFile(name, bytes) {
  const file = path.join(stack.state, "..", name);
  fs.writeFileSync(file, Buffer.alloc(bytes, 0x61));
  return file;
}

test("a 5 MB upload with curl's defaults (Expect: 100-continue) reaches the origin whole, without Expect", async () => {
  const file = bodyFile("upload.bin", 5 * 1024 * 1024);
  const { stdout, stderr } = await curl([
    "-X", "POST", "--data-binary", `@${file}`, "-H", "content-type: application/octet-stream",
    "-w", "\n%{http_code}", `${stack.gateway.url}/upload/big`,
  ]);
  assert.match(stderr, /> Expect: 100-continue/i, "curl asked to continue, as it does for large bodies");
  const lines = stdout.trimEnd().split("\n");
  assert.equal(lines.at(-1), "200", stderr);
  const echo = JSON.parse(lines.slice(0, -1).join("\n"));
  assert.equal(echo.body_bytes, 5 * 1024 * 1024);
  assert.equal(echo.headers.expect, undefined, "Expect is the gateway's to answer, never the service's");
});

test("a small body with an explicit Expect: 100-continue goes through too", async () => {
  const { stdout, stderr } = await curl([
    "-X", "POST", "--data-binary", "hello", "-H", "Expect: 100-continue",
    "-w", "\n%{http_code}", `${stack.gateway.url}/upload/small`,
  ]);
  const lines = stdout.trimEnd().split("\n");
  assert.equal(lines.at(-1), "200", stderr);
  const echo = JSON.parse(lines.slice(0, -1).join("\n"));
  assert.equal(echo.body, "hello");
  assert.equal(echo.headers.expect, undefined);
});

test("a body whose Content-Length is over the route's limit gets 413 and no upstream call", async () => {
  const before = stack.users.stats.requests;
  const response = await stack.fetch("/small/x", { method: "POST", body: "a".repeat(SMALL_LIMIT + 1) });
  const problem = await expectProblem(response, 413, "body-too-large");
  assert.match(problem.detail, new RegExp(`${SMALL_LIMIT} bytes`));
  assert.equal(stack.users.stats.requests, before, "the origin was never called");

  const fits = await stack.fetch("/small/x", { method: "POST", body: "a".repeat(SMALL_LIMIT) });
  assert.equal(fits.status, 200);
  assert.equal((await fits.json()).body_bytes, SMALL_LIMIT);
});

/** POST `chunks` as a chunked body (no Content-Length); resolves to { status, body }. */
function postChunked(pathAndQuery, chunks) {
  const url = new URL(pathAndQuery, stack.gateway.url);
  return new Promise((resolve, reject) => {
    // A connection of its own: after an early answer the rest of an upload
    // still in flight makes the connection unfit for another request.
    const request = http.request(url, { method: "POST", agent: false, headers: { "content-type": "application/octet-stream" } }, (response) => {
      const parts = [];
      response.on("data", (part) => parts.push(part));
      response.on("end", () => resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(parts).toString("utf8") }));
      response.on("error", reject);
    });
    // The gateway may answer (and close) before the upload ends.
    request.on("error", reject);
    const write = (index) => {
      if (index === chunks.length) {
        request.end();
        return;
      }
      request.write(chunks[index], () => write(index + 1));
    };
    write(0);
  });
}

test("a chunked body is counted as it streams and refused with 413 once it passes the limit", async () => {
  const chunks = Array.from({ length: 8 }, () => Buffer.alloc(512, 0x62));
  const refused = await postChunked("/small/stream", chunks);
  assert.equal(refused.status, 413, refused.body);
  assert.equal(refused.headers["content-type"], "application/problem+json");
  assert.equal(JSON.parse(refused.body).type, "urn:portico:problem:body-too-large");

  const fits = await postChunked("/small/stream", [Buffer.alloc(512, 0x63), Buffer.alloc(512, 0x63)]);
  assert.equal(fits.status, 200, fits.body);
  const echo = JSON.parse(fits.body);
  assert.equal(echo.body_bytes, 1024);
  assert.equal(echo.headers["content-length"], undefined, "it went on streamed, not buffered");
});

/** Open a WebSocket through the gateway; resolves once open, with its first message. */
function openSocket(pathAndQuery, { headers = {}, protocols = [] } = {}) {
  const url = new URL(pathAndQuery, stack.gateway.url.replace(/^http/, "ws"));
  const socket = new WebSocket(url, protocols, { headers });
  const refused = new Promise((resolve) => {
    socket.on("unexpected-response", (_request, response) => {
      const parts = [];
      response.on("data", (part) => parts.push(part));
      response.on("end", () => resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(parts).toString("utf8") }));
    });
  });
  const opened = new Promise((resolve, reject) => {
    socket.once("message", (data) => resolve(JSON.parse(data.toString("utf8"))));
    socket.once("error", reject);
  });
  return { socket, opened, refused };
}

test("a WebSocket through an authenticated route carries messages both ways and the origin's close code", async () => {
  const { socket, opened } = openSocket("/api/live/chat", { headers: { "x-api-key": stack.apiKey.key } });
  const handshake = await opened;
  assert.equal(handshake.service, "users");
  assert.equal(handshake.path, "/live/chat");
  assert.equal(handshake.headers.upgrade?.toLowerCase(), "websocket");
  assert.equal(handshake.headers["x-portico-consumer"], "e2e", "the verified identity reached the origin");
  assert.equal(handshake.headers["x-api-key"], undefined, "the credential did not");

  socket.send("ping through the gateway");
  const [echoed] = await once(socket, "message");
  assert.equal(echoed.toString("utf8"), "ping through the gateway");

  socket.send("close:4001:origin says bye");
  const [code, reason] = await once(socket, "close");
  assert.equal(code, 4001);
  assert.equal(reason.toString("utf8"), "origin says bye");
});

test("the client's close code and reason reach the origin", async () => {
  const { socket, opened } = openSocket("/api/live/chat", { headers: { "x-api-key": stack.apiKey.key } });
  await opened;
  const closed = stack.users.stats.closes.length;
  socket.close(4002, "client leaves");
  const [code] = await once(socket, "close");
  assert.equal(code, 4002);
  const atOrigin = await eventually(() => stack.users.stats.closes.at(closed), { what: "the origin's close" });
  assert.deepEqual(atOrigin, { code: 4002, reason: "client leaves" });
});

test("browsers authenticate with the api_key query parameter or a credential subprotocol", async () => {
  const byQuery = openSocket(`/api/live/chat?api_key=${encodeURIComponent(stack.apiKey.key)}`);
  const viaQuery = await byQuery.opened;
  assert.equal(viaQuery.headers["x-portico-consumer"], "e2e");
  assert.equal(viaQuery.query, "", "the key stayed at the gateway");
  byQuery.socket.close(1000);

  const byProtocol = openSocket("/api/live/chat", { protocols: [`portico.bearer.${stack.apiKey.key}`, "echo"] });
  const viaProtocol = await byProtocol.opened;
  assert.equal(viaProtocol.headers["x-portico-consumer"], "e2e");
  assert.equal(viaProtocol.headers["sec-websocket-protocol"], "echo", "the credential was taken out of the offer");
  assert.equal(byProtocol.socket.protocol, "echo", "the origin's choice came back");
  byProtocol.socket.close(1000);
});

test("an upgrade without credentials gets 401, from a page of another origin 403, on a plain route 400", async () => {
  const before = stack.users.stats.upgrades;
  const anonymous = await openSocket("/api/live/chat").refused;
  assert.equal(anonymous.status, 401);
  assert.equal(JSON.parse(anonymous.body).type, "urn:portico:problem:unauthorized");

  const foreign = await openSocket("/api/live/chat", {
    headers: { "x-api-key": stack.apiKey.key, origin: "https://evil.example" },
  }).refused;
  assert.equal(foreign.status, 403);
  assert.equal(JSON.parse(foreign.body).type, "urn:portico:problem:origin-not-allowed");

  const plain = await openSocket("/api/orders/7", { headers: { "x-api-key": stack.apiKey.key } }).refused;
  assert.equal(plain.status, 400);
  assert.equal(JSON.parse(plain.body).type, "urn:portico:problem:upgrade-not-allowed");
  assert.equal(stack.users.stats.upgrades, before, "no refused upgrade reached an origin");
});

test("the access log records each WebSocket connection with status 101, route and consumer", async () => {
  const { socket, opened } = openSocket("/api/live/logged", { headers: { "x-api-key": stack.apiKey.key } });
  await opened;
  socket.close(1000);
  await once(socket, "close");
  const line = await eventually(
    () =>
      stack
        .log()
        .split("\n")
        .filter((l) => l.includes('"upgrade":"websocket"') && l.includes("/api/live/logged"))
        .at(-1),
    { what: "the upgrade's access event" },
  );
  const event = JSON.parse(line.slice(line.indexOf("{")));
  assert.equal(event.status, 101);
  assert.equal(event.route, "live");
  assert.equal(event.consumer, "e2e");
});

test("Server-Sent Events arrive as the origin sends them, before the stream ends", async () => {
  const id = `sse-${Date.now()}`;
  const response = await stack.fetch(`/events/feed?sse=${id}`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "text/event-stream");
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let seen = "";
  while (!seen.includes("data: first\n\n")) {
    const { value, done } = await reader.read();
    assert.equal(done, false, "the stream ended before its first event came through");
    seen += decoder.decode(value, { stream: true });
  }
  // The origin holds the stream open until told: the first event came
  // through while it was still open.
  assert.ok(!seen.includes("data: last"));
  const released = await fetch(`${stack.users.url}/__release/${id}`);
  assert.equal(released.status, 204, "the origin was still holding the stream");
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += decoder.decode(value, { stream: true });
  }
  assert.ok(seen.endsWith("data: last\n\n"), seen);
});
