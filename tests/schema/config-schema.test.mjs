// docs/config.schema.json is what editors use to check and complete config
// files. It must accept every valid fixture and reject the invalid ones it
// can express (the gateway checks the rest: ties, references, templates).

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import Ajv2020 from "ajv/dist/2020.js";

import { ROOT } from "../support/stack.mjs";

const schema = JSON.parse(fs.readFileSync(path.join(ROOT, "docs/config.schema.json"), "utf8"));
const validate = new Ajv2020({ allErrors: true, strict: true, strictRequired: false }).compile(schema);
const fixture = (name) => JSON.parse(fs.readFileSync(path.join(ROOT, "fixtures/config", name), "utf8"));

test("the schema accepts the valid fixtures", () => {
  for (const name of ["demo.json", "full.json", "basic.json", "bench.json", "balanced.json"]) {
    assert.ok(validate(fixture(name)), `${name}: ${JSON.stringify(validate.errors)}`);
  }
});

test("the schema rejects the invalid fixtures it can express", () => {
  const structural = [
    "unsupported-version",
    "missing-routes",
    "unknown-field",
    "wrong-type",
    "bad-service-url",
    "service-url-with-query",
    "strip-and-rewrite",
    "bad-timeout",
    "lowercase-method",
    "bad-host",
    "bad-refresh",
    "auth-bad-algorithm",
    "auth-keys-and-jwks",
    "auth-no-audiences",
    "auth-empty-route-policy",
    "auth-requirement-both",
    "auth-secret-value",
    "ratelimit-bad-period",
    "ratelimit-unknown-algorithm",
    "cors-credentials-any-origin",
    "cors-bad-origin",
    "log-bad-sample-rate",
    "balance-zero-weight",
    "balance-target-credentials",
    "balance-url-and-targets",
    "balance-bad-continent",
    "retry-bad-attempts",
    "health-bad-path",
    "transform-two-operations",
    "transform-xml-without-root",
    "transform-bad-json-rule",
  ];
  for (const name of structural) {
    assert.equal(validate(fixture(`invalid/${name}.json`)), false, `${name} passed the schema`);
  }
});
