// End-to-end transformation on workerd: a JSON client talks to an
// XML-only origin (and gets XML when it asks), an XML client talks to a
// JSON origin, fields are filtered out of a real response, and hostile XML
// (a billion laughs, an external entity) is refused with 400 before any
// origin is contacted.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { startXmlServer } from "../../fixtures/origin/xml-server.mjs";
import { expectProblem, startE2E } from "../support/e2e.mjs";

let stack;
let legacy;

before(async () => {
  stack = await startE2E({
    name: "transform",
    configure: async (config, { closers }) => {
      legacy = await startXmlServer({ name: "legacy" });
      closers.push(legacy.close);
      config.services.legacy = { url: legacy.url, timeout_ms: 5000 };
      config.routes.push(
        {
          id: "xml-origin", path: "/legacy/*", service: "legacy", strip_prefix: "/legacy",
          transform: {
            origin_format: "xml", negotiate: true,
            xml: { root: "order", always_array: ["item"] },
            request: { headers: [{ set: "X-Channel", value: "gateway-${request.method}" }] },
            response: { body: [{ deny: ["item.cost", "audit:trail"] }] },
          },
        },
        {
          id: "xml-clients", path: "/xml-api/*", service: "catalog", strip_prefix: "/xml-api",
          transform: { negotiate: true, xml: { root: "response" } },
        },
        {
          id: "filtered", path: "/filtered/*", service: "catalog", strip_prefix: "/filtered",
          transform: { response: { body: [{ allow: ["service", "method", "path"] }] } },
        },
      );
    },
  });
});

after(async () => {
  await stack?.stop();
});

test("a JSON client reads an XML-only origin as JSON", async () => {
  const response = await stack.fetch("/legacy/orders/7");
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/json");
  assert.match(response.headers.get("etag"), /^W\/"legacy-\d+"$/, "a strong validator is weakened");
  assert.match(response.headers.get("vary") ?? "", /Accept/);
  const body = await response.json();
  assert.equal(body["@id"], "7");
  assert.equal(body.status, "shipped");
  assert.deepEqual(body.customer, { name: "Ada Lovelace", email: "ada@example.com" });
  assert.deepEqual(body.item.map((item) => item["@sku"]), ["A1", "B2"]);
  assert.deepEqual(body.item[1].price, { "@currency": "EUR", "#text": "249.00" });
  assert.equal(body.item[1].name, "Desk & chair");
  assert.equal(body.item[0].cost, undefined, "denied fields never leave the gateway");
  assert.equal(body["audit:trail"], undefined);
  assert.equal(legacy.stats.last.headers.accept, "application/xml; charset=utf-8");
  assert.equal(legacy.stats.last.headers["x-channel"], "gateway-GET");
});

test("an XML client of the same route gets XML, filtered the same way", async () => {
  const response = await stack.fetch("/legacy/orders/8", { headers: { accept: "application/xml" } });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/xml; charset=utf-8");
  const xml = await response.text();
  assert.ok(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?><order id="8" xmlns:audit="urn:example:audit">'), xml);
  assert.ok(xml.includes('<item sku="B2"><name>Desk &amp; chair</name><price currency="EUR">249.00</price></item>'), xml);
  assert.ok(!xml.includes("cost") && !xml.includes("audit:trail"), xml);
});

test("a JSON request body reaches the XML origin as XML", async () => {
  const response = await stack.fetch("/legacy/orders", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ "@ref": "r-1", item: [{ sku: "A1", qty: 2 }], note: "<fragile> & \"urgent\"" }),
  });
  assert.equal(response.status, 200);
  assert.equal(legacy.stats.last.headers["content-type"], "application/xml; charset=utf-8");
  assert.equal(
    legacy.stats.last.body,
    '<?xml version="1.0" encoding="UTF-8"?><order ref="r-1"><item><sku>A1</sku><qty>2</qty></item><note>&lt;fragile&gt; &amp; &quot;urgent&quot;</note></order>',
  );
  const echo = await response.json();
  assert.equal(echo["@service"], "legacy");
  assert.equal(echo.method, "POST");
  assert.deepEqual(echo.received.order.item, [{ sku: "A1", qty: "2" }]);
  assert.equal(echo.received.order.note, '<fragile> & "urgent"');
});

test("an XML client talks to a JSON origin", async () => {
  const response = await stack.fetch("/xml-api/things", {
    method: "POST",
    headers: { "content-type": "application/xml", accept: "application/xml" },
    body: '<?xml version="1.0"?><thing kind="lamp"><name>Desk lamp</name><tag>a</tag><tag>b</tag></thing>',
  });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/xml; charset=utf-8");
  const xml = await response.text();
  assert.ok(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?><response><service>catalog</service><method>POST</method><path>/things</path>'), xml);
  // The JSON origin received JSON (its echo holds the body it got, as text).
  const received = xml.match(/<body>(.*)<\/body>/)[1].replaceAll("&quot;", '"');
  assert.deepEqual(JSON.parse(received), { "@kind": "lamp", name: "Desk lamp", tag: ["a", "b"] });
});

test("fields are filtered out of a real response", async () => {
  const response = await stack.fetch("/filtered/items/3?secret=1", { headers: { "x-internal": "yes" } });
  assert.equal(response.status, 200);
  const body = await response.json();
  assert.deepEqual(body, { service: "catalog", method: "GET", path: "/items/3" });
});

const BILLION_LAUGHS = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>`;

const XXE = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE order [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<order><note>&xxe;</note></order>`;

for (const [what, payload, path] of [
  ["a billion laughs", BILLION_LAUGHS, "/xml-api/things"],
  ["an external entity (XXE)", XXE, "/legacy/orders"],
]) {
  test(`${what} gets 400 and no origin is contacted`, async () => {
    const before = { legacy: legacy.stats.requests, catalog: stack.catalog.stats.requests };
    const response = await stack.fetch(path, {
      method: "POST",
      headers: { "content-type": "application/xml" },
      body: payload,
    });
    const problem = await expectProblem(response, 400, "invalid-body");
    assert.match(problem.detail, /DOCTYPE/);
    assert.deepEqual({ legacy: legacy.stats.requests, catalog: stack.catalog.stats.requests }, before);
  });
}
