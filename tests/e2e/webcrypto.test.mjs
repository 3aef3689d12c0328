// The runtime's signature check (src/platform/workers/webcrypto.js) over
// the signature corpus that the pure-Rust check is held to as well
// (tests/auth_jwt.rs): in workerd, whose WebCrypto is what the gateway
// uses on Workers, and in Node. Every case must get the corpus verdict;
// an "undecided" (null, the Rust check would then decide) counts as a
// failure here, since every corpus key and algorithm is one WebCrypto
// takes.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import { Miniflare } from "miniflare";

import { ROOT } from "../support/stack.mjs";

const HELPER = path.join(ROOT, "src/platform/workers/webcrypto.js");
const corpus = JSON.parse(fs.readFileSync(path.join(ROOT, "fixtures/auth/signature-corpus.json"), "utf8")).cases;
const compatibilityDate = /compatibility_date = "([^"]+)"/.exec(fs.readFileSync(path.join(ROOT, "wrangler.toml"), "utf8"))[1];

// What the gateway hands the helper: the signed part and the signature,
// as bytes; a key id; the public JWK as text.
function argumentsFor(testCase, index) {
  const token = testCase.token;
  const dot = token.lastIndexOf(".");
  return [
    testCase.alg,
    `corpus-${index % 7}-${testCase.alg}-${testCase.jwk.kty}`,
    JSON.stringify(testCase.jwk),
    new TextEncoder().encode(token.slice(0, dot)),
    new Uint8Array(Buffer.from(token.slice(dot + 1), "base64url")),
  ];
}

let mf;

before(async () => {
  mf = new Miniflare({
    modules: [
      {
        type: "ESModule",
        path: "main.mjs",
        contents: `
          import { portico_verify } from "./webcrypto.js";
          export default {
            async fetch(request) {
              const cases = await request.json();
              const verdicts = [];
              for (const [alg, id, jwk, signed, signature] of cases) {
                verdicts.push(await portico_verify(alg, id, jwk, new Uint8Array(signed), new Uint8Array(signature)));
              }
              return Response.json(verdicts);
            },
          };`,
      },
      { type: "ESModule", path: "webcrypto.js", contents: fs.readFileSync(HELPER, "utf8") },
    ],
    compatibilityDate,
  });
  await mf.ready;
});

after(async () => {
  await mf?.dispose();
});

test(`workerd's WebCrypto gives every verdict of the signature corpus (${corpus.length} cases)`, async () => {
  const cases = corpus.map((c, i) => argumentsFor(c, i).map((a) => (a instanceof Uint8Array ? [...a] : a)));
  const response = await mf.dispatchFetch("http://corpus.test/", { method: "POST", body: JSON.stringify(cases) });
  const verdicts = await response.json();
  const wrong = corpus.flatMap((c, i) => (verdicts[i] === c.valid ? [] : [`${c.name}: ${verdicts[i]}`]));
  assert.deepEqual(wrong, []);
});

test("Node's WebCrypto gives every verdict of the signature corpus", async () => {
  const { portico_verify } = await import(HELPER);
  const wrong = [];
  for (const [i, c] of corpus.entries()) {
    const verdict = await portico_verify(...argumentsFor(c, i));
    if (verdict !== c.valid) wrong.push(`${c.name}: ${verdict}`);
  }
  assert.deepEqual(wrong, []);
});

test("an algorithm the helper does not take is left to the gateway's own check", async () => {
  const { portico_verify } = await import(HELPER);
  const [, id, jwk, signed, signature] = argumentsFor(corpus[0], 0);
  assert.equal(await portico_verify("HS256", id, jwk, signed, signature), null);
  assert.equal(await portico_verify("none", id, jwk, signed, signature), null);
  assert.equal(await portico_verify("RS256", "bad-key", "{\"kty\":\"RSA\"}", signed, signature), null, "a key WebCrypto cannot import");
});
