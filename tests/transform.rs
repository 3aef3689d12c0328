//! Transformation through the whole pipeline on the in-memory platform:
//! header and query rules with templates over every source, header
//! injection attempts, JSON reshaping of requests and responses, JSON
//! clients of an XML origin and XML clients of a JSON origin, hostile XML
//! refused before the origin is contacted, caps, compression, validators,
//! and the cache storing the origin's response while each client gets
//! its own format.

mod common;

use bytes::Bytes;
use common::tokens::{self, claims, sign};
use common::{Harness, body_bytes, body_json, header, last_upstream, request};
use http::{Method, Request, Response, StatusCode};
use portico::Body;
use portico::gateway::Inbound;
use portico::platform::memory::OriginReply;
use portico::upstream::geo::Location;
use serde_json::{Value, json};

const XML_ORIGIN: &str = "127.0.0.1:9104";

const ORDER_XML: &str = r#"<?xml version="1.0"?>
<order id="7" xmlns:x="urn:x">
  <status>shipped</status>
  <item sku="A1"><price>10</price><cost>4</cost></item>
  <x:internal>do not show</x:internal>
</order>"#;

/// A config with the echo services and an XML-only `legacy` service, the
/// test issuer, and `routes`.
fn harness(routes: Value) -> Harness {
    let config = json!({
        "version": 1,
        "auth": { "jwt": { "test": tokens::issuer_config(&["ES256"]) } },
        "services": {
            "users": { "url": "http://127.0.0.1:9101" },
            "legacy": { "url": format!("http://{XML_ORIGIN}") }
        },
        "routes": routes,
    });
    let harness = Harness::with_config(&config.to_string());
    harness.platform.add_origin(XML_ORIGIN, |recorded| {
        let query = recorded.uri.query().unwrap_or("");
        let mut builder = Response::builder()
            .status(200)
            .header("content-type", "application/xml")
            .header("etag", "\"v1\"");
        if query.contains("gzip=1") {
            builder = builder.header("content-encoding", "gzip");
        }
        let body = if query.contains("broken=1") {
            "<order><unclosed></order>".to_owned()
        } else if recorded.method == Method::POST {
            // Echo what arrived, inside an XML document.
            format!(
                "<received>{}</received>",
                String::from_utf8_lossy(&recorded.body)
                    .replace("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "")
            )
        } else {
            ORDER_XML.to_owned()
        };
        OriginReply::Respond(builder.body(Bytes::from(body)).expect("response"))
    });
    harness
}

fn with_body(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Request<Body<Bytes>> {
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Body::Stream(Bytes::from(body.to_owned())))
        .expect("request")
}

fn problem(response: &Response<Body<Bytes>>, status: u16, slug: &str) -> Value {
    assert_eq!(
        response.status().as_u16(),
        status,
        "{:?}",
        body_bytes(response)
    );
    assert_eq!(
        header(response.headers(), "content-type"),
        Some("application/problem+json")
    );
    let body = body_json(response);
    assert_eq!(body["type"], format!("urn:portico:problem:{slug}"));
    body
}

fn token(extra: Value) -> String {
    sign("ES256", "es256", Some("test-es256-1"), &claims(extra))
}

// --- header and query rules -------------------------------------------

#[test]
fn templates_read_every_source() {
    let harness = harness(json!([{
        "id": "t", "path": "/t/:tenant/*rest", "service": "users", "strip_prefix": "/t/:tenant",
        "auth": { "jwt": ["test"] },
        "transform": { "request": { "headers": [
            { "set": "X-Tenant", "value": "${params.tenant}" },
            { "set": "X-Rest", "value": "${params.rest}" },
            { "set": "X-Sub", "value": "sub=${identity.sub}" },
            { "set": "X-Roles", "value": "${identity.roles}" },
            { "set": "X-Org", "value": "${identity.claims.org.id}" },
            { "set": "X-Method", "value": "${identity.method}" },
            { "set": "X-From", "value": "${header.x-client-tag}" },
            { "set": "X-Q", "value": "${query.lang}" },
            { "set": "X-Ip", "value": "${client.ip}" },
            { "set": "X-Country", "value": "${cf.country}/${cf.continent}" },
            { "set": "X-Req", "value": "${request.method} ${request.path}" }
        ] } }
    }]));
    let request = request(
        Method::GET,
        "http://gw.example/t/acme/a/b?lang=fr%20CA",
        &[
            (
                "authorization",
                &format!(
                    "Bearer {}",
                    token(json!({"realm": {"roles": ["r1", "r2"]}, "org": {"id": 42}}))
                ),
            ),
            ("x-client-tag", "blue"),
        ],
    );
    let inbound =
        Inbound::new(request, Some("203.0.113.9".parse().unwrap())).located_by(|| Location {
            colo: Some("AMS".into()),
            country: Some("NL".into()),
            continent: Some("EU".into()),
        });
    let response = futures::executor::block_on(harness.gateway.handle(&harness.platform, inbound));
    assert_eq!(response.status(), StatusCode::OK);
    let sent = last_upstream(&harness);
    let got = |name: &str| header(&sent.headers, name).map(str::to_owned);
    assert_eq!(got("x-tenant").as_deref(), Some("acme"));
    assert_eq!(got("x-rest").as_deref(), Some("a/b"));
    assert_eq!(got("x-sub").as_deref(), Some("sub=user-1"));
    assert_eq!(got("x-roles").as_deref(), Some("r1,r2"));
    assert_eq!(got("x-org").as_deref(), Some("42"));
    assert_eq!(got("x-method").as_deref(), Some("jwt"));
    assert_eq!(got("x-from").as_deref(), Some("blue"));
    assert_eq!(got("x-q").as_deref(), Some("fr CA"));
    assert_eq!(got("x-ip").as_deref(), Some("203.0.113.9"));
    assert_eq!(got("x-country").as_deref(), Some("NL/EU"));
    assert_eq!(got("x-req").as_deref(), Some("GET /t/acme/a/b"));
}

#[test]
fn templates_read_api_key_callers_and_the_connection() {
    let harness = harness(json!([{
        "id": "k", "path": "/k/*", "service": "users", "auth": { "api_key": {} },
        "transform": { "request": { "headers": [
            { "set": "X-Consumer", "value": "${identity.consumer}/${identity.key_id}" },
            { "set": "X-Conn", "value": "${client.scheme}://${client.host}" },
            { "set": "X-Colo", "value": "${cf.colo}" },
            { "set": "X-Req-Id", "value": "${request.id}" }
        ] } }
    }]));
    let (id, key) = portico::auth::api_key::generate(&[7u8; 38]);
    let record = portico::auth::api_key::KeyRecord::new(&id, &key, "acme", tokens::NOW as u64 - 60);
    harness.platform.kv_put(
        portico::platform::KvNamespace::Keys,
        &portico::auth::api_key::kv_key(&id),
        &serde_json::to_string(&record).unwrap(),
    );
    let request = request(
        Method::GET,
        "https://gw.example:8443/k/1",
        &[("x-api-key", &key), ("x-request-id", "req-42")],
    );
    let inbound = Inbound::new(request, None).located_by(|| Location {
        colo: Some("AMS".into()),
        ..Location::default()
    });
    let response = futures::executor::block_on(harness.gateway.handle(&harness.platform, inbound));
    assert_eq!(response.status(), StatusCode::OK);
    let sent = last_upstream(&harness);
    assert_eq!(
        header(&sent.headers, "x-consumer"),
        Some(format!("acme/{id}").as_str())
    );
    assert_eq!(
        header(&sent.headers, "x-conn"),
        Some("https://gw.example:8443")
    );
    assert_eq!(header(&sent.headers, "x-colo"), Some("AMS"));
    assert_eq!(header(&sent.headers, "x-req-id"), Some("req-42"));
}

#[test]
fn geo_data_is_read_only_when_a_template_needs_it() {
    let harness = harness(json!([{ "id": "plain", "path": "/p/*", "service": "users",
        "transform": { "request": { "headers": [ { "set": "X-Where", "value": "${client.ip}" } ] } } }]));
    let read = std::rc::Rc::new(std::cell::Cell::new(false));
    let flag = std::rc::Rc::clone(&read);
    let inbound = Inbound::new(request(Method::GET, "http://gw.example/p/x", &[]), None)
        .located_by(move || {
            flag.set(true);
            Location::default()
        });
    futures::executor::block_on(harness.gateway.handle(&harness.platform, inbound));
    assert!(!read.get(), "the runtime's geo data was read for nothing");
}

#[test]
fn missing_values_remove_or_render_empty_as_the_rule_says() {
    let harness = harness(json!([{ "id": "m", "path": "/m/*", "service": "users",
        "transform": { "request": { "headers": [
            { "set": "X-Gone", "value": "v=${header.x-absent}" },
            { "set": "X-Empty", "value": "v=${header.x-absent}", "if_missing": "empty" },
            { "add": "X-Added", "value": "${header.x-absent}" },
            { "set": "X-Overwritten", "value": "${header.x-absent}" }
        ] } } }]));
    harness.send(request(
        Method::GET,
        "http://gw.example/m/1",
        &[("x-overwritten", "client")],
    ));
    let sent = last_upstream(&harness);
    assert_eq!(header(&sent.headers, "x-gone"), None);
    assert_eq!(header(&sent.headers, "x-empty"), Some("v="));
    assert_eq!(header(&sent.headers, "x-added"), None);
    assert_eq!(
        header(&sent.headers, "x-overwritten"),
        None,
        "a set whose value is missing removes what the client sent"
    );
}

#[test]
fn header_operations_set_add_append_remove_rename() {
    let harness = harness(json!([{ "id": "h", "path": "/h/*", "service": "users",
        "transform": {
            "request": { "headers": [
                { "set": "X-Set", "value": "gw" },
                { "add": "X-Add", "value": "gw" },
                { "add": "X-Add-New", "value": "gw" },
                { "append": "X-Append", "value": "gw" },
                { "remove": "X-Debug" },
                { "rename": "X-Old", "to": "X-New" }
            ] },
            "response": { "headers": [
                { "remove": "X-Origin-Secret-Header" },
                { "set": "X-Served-For", "value": "${request.path}" },
                { "rename": "Content-Type", "to": "X-Original-Type" }
            ] }
        } }]));
    let response = harness.send(request(
        Method::GET,
        "http://gw.example/h/1",
        &[
            ("x-set", "client"),
            ("x-add", "client"),
            ("x-append", "client"),
            ("x-debug", "1"),
            ("x-old", "o"),
        ],
    ));
    let sent = last_upstream(&harness);
    let all = |name: &str| -> Vec<String> {
        sent.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(all("x-set"), ["gw"]);
    assert_eq!(all("x-add"), ["client"]);
    assert_eq!(all("x-add-new"), ["gw"]);
    assert_eq!(all("x-append"), ["client", "gw"]);
    assert!(all("x-debug").is_empty());
    assert!(all("x-old").is_empty());
    assert_eq!(all("x-new"), ["o"]);
    assert_eq!(header(response.headers(), "x-served-for"), Some("/h/1"));
    assert_eq!(
        header(response.headers(), "x-original-type"),
        Some("application/json")
    );
    assert_eq!(header(response.headers(), "content-type"), None);
}

#[test]
fn query_operations_keep_untouched_parameters_as_sent() {
    let harness = harness(json!([{ "id": "q", "path": "/q/:id", "service": "users",
        "transform": { "request": { "query": [
            { "set": "id", "value": "${params.id}" },
            { "add": "page", "value": "1" },
            { "append": "tag", "value": "a b&c" },
            { "remove": "debug" },
            { "rename": "q", "to": "search" }
        ] } } }]));
    harness.send(request(
        Method::GET,
        "http://gw.example/q/7?keep=%7Eraw&debug=1&q=x&tag=t&id=999",
        &[],
    ));
    assert_eq!(
        last_upstream(&harness).uri.query(),
        Some("keep=%7Eraw&search=x&tag=t&id=7&page=1&tag=a+b%26c")
    );
}

#[test]
fn header_injection_never_reaches_a_header() {
    let harness = harness(json!([{ "id": "i", "path": "/i/:id", "service": "users",
        "auth": { "jwt": ["test"] },
        "transform": { "request": {
            "headers": [
                { "set": "X-Id", "value": "${params.id}" },
                { "set": "X-Q", "value": "${query.v}", "if_missing": "empty" },
                { "set": "X-Claim", "value": "${identity.claims.note}" }
            ] } } }]));
    let token = token(json!({"note": "ok\r\nX-Injected: yes"}));
    harness.send(request(
        Method::GET,
        "http://gw.example/i/a%0D%0AX-Injected:%20yes?v=%0Aevil",
        &[("authorization", &format!("Bearer {token}"))],
    ));
    let sent = last_upstream(&harness);
    assert_eq!(header(&sent.headers, "x-injected"), None);
    assert_eq!(
        header(&sent.headers, "x-id"),
        None,
        "a value with CR/LF is missing"
    );
    assert_eq!(
        header(&sent.headers, "x-q"),
        Some(""),
        "rendered empty, as the rule asks"
    );
    assert_eq!(header(&sent.headers, "x-claim"), None);
    for value in sent.headers.values() {
        assert!(!value.as_bytes().iter().any(|b| *b == b'\r' || *b == b'\n'));
    }
}

#[test]
fn rules_cannot_forge_what_the_gateway_asserts() {
    let harness = harness(json!([{ "id": "f", "path": "/f/*", "service": "users",
        "auth": { "jwt": ["test"] },
        "transform": { "request": { "headers": [ { "set": "X-Team", "value": "${header.x-portico-subject}" } ] } } }]));
    harness.send(request(
        Method::GET,
        "http://gw.example/f/1",
        &[
            ("authorization", &format!("Bearer {}", token(json!({})))),
            ("x-portico-subject", "admin"),
        ],
    ));
    let sent = last_upstream(&harness);
    assert_eq!(header(&sent.headers, "x-portico-subject"), Some("user-1"));
    assert_eq!(
        header(&sent.headers, "x-team"),
        Some("admin"),
        "a copy under another name is plain data"
    );
}

// --- JSON bodies ------------------------------------------------------

#[test]
fn response_fields_are_filtered_on_the_way_out() {
    let harness = harness(json!([
        { "id": "allow", "path": "/allow/*", "service": "users",
          "transform": { "response": { "body": [ { "allow": ["service", "headers.x-request-id", "method"] } ] } } },
        { "id": "deny", "path": "/deny/*", "service": "users",
          "transform": { "response": { "body": [ { "deny": ["headers", "query"] }, { "rename": "service", "to": "meta.origin" } ] } } }
    ]));
    let allowed = harness.get("http://gw.example/allow/1");
    assert_eq!(allowed.status(), StatusCode::OK);
    let body = body_json(&allowed);
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["service", "method", "headers"]
    );
    assert_eq!(body["headers"].as_object().unwrap().len(), 1);
    assert_eq!(
        header(allowed.headers(), "content-length").map(|v| v.parse::<usize>().unwrap()),
        Some(body_bytes(&allowed).len()),
        "the length is the new body's"
    );
    let denied = body_json(&harness.get("http://gw.example/deny/1?secret=1"));
    assert!(denied.get("headers").is_none() && denied.get("query").is_none());
    assert_eq!(denied["meta"]["origin"], "users");
    assert!(denied.get("service").is_none());
}

#[test]
fn request_bodies_are_reshaped_before_the_origin_sees_them() {
    let harness = harness(
        json!([{ "id": "in", "path": "/in/*", "service": "users", "methods": ["POST"],
        "transform": { "request": { "body": [
            { "deny": ["order.items.internal"] },
            { "rename": "order.customer.name", "to": "order.customer.full_name" },
            { "take": "order" },
            { "wrap": "data" }
        ] } } }]),
    );
    let response = harness.send(with_body(
        Method::POST,
        "http://gw.example/in/1",
        &[("content-type", "application/json")],
        r#"{"order":{"customer":{"name":"Ada"},"items":[{"sku":"a","internal":1},{"sku":"b","internal":2}]},"noise":true}"#,
    ));
    assert_eq!(response.status(), StatusCode::OK);
    let sent = last_upstream(&harness);
    let received: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(
        received,
        json!({"data": {"customer": {"full_name": "Ada"}, "items": [{"sku": "a"}, {"sku": "b"}]}})
    );
    assert_eq!(
        header(&sent.headers, "content-length"),
        Some(sent.body.len().to_string().as_str())
    );
    assert_eq!(
        header(&sent.headers, "content-type"),
        Some("application/json")
    );
}

#[test]
fn invalid_json_is_400_on_the_way_in_and_502_on_the_way_out() {
    let harness = harness(json!([
        { "id": "in", "path": "/in/*", "service": "users", "transform": { "request": { "body": [] } } },
        { "id": "out", "path": "/out/*", "service": "legacy",
          "transform": { "response": { "body": [ { "deny": ["x"] } ] } } }
    ]));
    let refused = harness.send(with_body(
        Method::POST,
        "http://gw.example/in/1",
        &[("content-type", "application/json")],
        "{not json",
    ));
    let body = problem(&refused, 400, "invalid-body");
    assert!(
        body["detail"].as_str().unwrap().contains("not valid JSON"),
        "{body}"
    );
    assert!(
        harness.platform.sent().is_empty(),
        "the origin was never contacted"
    );

    // The legacy origin answers XML where this route expects JSON.
    let failed = harness.get("http://gw.example/out/1");
    let body = problem(&failed, 502, "upstream-invalid-body");
    assert!(!body["detail"].as_str().unwrap().contains("127.0.0.1"));
    let logged = harness
        .platform
        .events()
        .iter()
        .map(|e| e.to_json_line())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(logged.contains("upstream-invalid-body"), "{logged}");
}

// --- XML ---------------------------------------------------------------

fn legacy_routes() -> Value {
    json!([{ "id": "legacy", "path": "/legacy/*", "service": "legacy", "strip_prefix": "/legacy",
        "transform": {
            "origin_format": "xml", "negotiate": true,
            "xml": { "root": "order", "always_array": ["item"] },
            "response": { "body": [ { "deny": ["x:internal", "item.cost"] } ] }
        } }])
}

#[test]
fn a_json_client_reads_an_xml_origin() {
    let harness = harness(legacy_routes());
    let response = harness.get("http://gw.example/legacy/orders/7");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(response.headers(), "content-type"),
        Some("application/json")
    );
    assert_eq!(
        body_json(&response),
        json!({"@id": "7", "@xmlns:x": "urn:x", "status": "shipped", "item": [{"@sku": "A1", "price": "10"}]})
    );
    assert_eq!(
        header(response.headers(), "etag"),
        Some("W/\"v1\""),
        "a strong validator is weakened"
    );
    assert_eq!(header(response.headers(), "vary"), Some("Accept"));
    let sent = last_upstream(&harness);
    assert_eq!(
        header(&sent.headers, "accept"),
        Some("application/xml; charset=utf-8")
    );
    assert_eq!(header(&sent.headers, "accept-encoding"), Some("identity"));
}

#[test]
fn an_xml_client_gets_xml_when_it_asks() {
    let harness = harness(legacy_routes());
    let response = harness.send(request(
        Method::GET,
        "http://gw.example/legacy/orders/7",
        &[("accept", "application/json;q=0.5, application/xml")],
    ));
    assert_eq!(
        header(response.headers(), "content-type"),
        Some("application/xml; charset=utf-8")
    );
    let xml = String::from_utf8(body_bytes(&response).to_vec()).unwrap();
    assert_eq!(
        xml,
        r#"<?xml version="1.0" encoding="UTF-8"?><order id="7" xmlns:x="urn:x"><status>shipped</status><item sku="A1"><price>10</price></item></order>"#,
        "the deny rules apply to XML clients too"
    );
}

#[test]
fn a_json_request_reaches_the_xml_origin_as_xml() {
    let harness = harness(legacy_routes());
    let response = harness.send(with_body(
        Method::POST,
        "http://gw.example/legacy/orders",
        &[("content-type", "application/json")],
        r#"{"@id":"9","item":[{"sku":"A1"},{"sku":"B2"}],"note":"<fragile> & \"urgent\""}"#,
    ));
    assert_eq!(response.status(), StatusCode::OK);
    let sent = last_upstream(&harness);
    assert_eq!(
        header(&sent.headers, "content-type"),
        Some("application/xml; charset=utf-8")
    );
    assert_eq!(
        String::from_utf8(sent.body.to_vec()).unwrap(),
        r#"<?xml version="1.0" encoding="UTF-8"?><order id="9"><item><sku>A1</sku></item><item><sku>B2</sku></item><note>&lt;fragile&gt; &amp; &quot;urgent&quot;</note></order>"#
    );
    // The origin's XML echo comes back as JSON.
    assert_eq!(
        body_json(&response)["order"]["note"],
        "<fragile> & \"urgent\""
    );
}

#[test]
fn an_xml_client_talks_to_a_json_origin() {
    let harness = harness(
        json!([{ "id": "api", "path": "/api/*", "service": "users", "methods": ["POST"],
        "transform": { "negotiate": true, "xml": { "root": "echo" } } }]),
    );
    let response = harness.send(with_body(
        Method::POST,
        "http://gw.example/api/things",
        &[("content-type", "text/xml"), ("accept", "application/xml")],
        "<thing><name>lamp</name><tags>a</tags><tags>b</tags></thing>",
    ));
    assert_eq!(response.status(), StatusCode::OK);
    let sent = last_upstream(&harness);
    assert_eq!(
        serde_json::from_slice::<Value>(&sent.body).unwrap(),
        json!({"name": "lamp", "tags": ["a", "b"]})
    );
    let xml = String::from_utf8(body_bytes(&response).to_vec()).unwrap();
    assert!(xml.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?><echo><service>users</service><method>POST</method>"#), "{xml}");
}

#[test]
fn hostile_xml_is_refused_before_the_origin_is_contacted() {
    let harness = harness(json!([{ "id": "api", "path": "/api/*", "service": "users",
        "transform": { "negotiate": true, "xml": { "root": "r", "max_depth": 16, "max_attributes": 4 } } }]));
    let payloads = [
        ("billion laughs", r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><lolz>&lol2;</lolz>"#.to_owned()),
        ("external entity", r#"<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>"#.to_owned()),
        ("undeclared entity", "<foo>&xxe;</foo>".to_owned()),
        ("too deep", format!("{}{}", "<a>".repeat(17), "</a>".repeat(17))),
        ("too many attributes", r#"<a b="1" c="2" d="3" e="4" f="5"/>"#.to_owned()),
    ];
    for (what, payload) in payloads {
        let response = harness.send(with_body(
            Method::POST,
            "http://gw.example/api/x",
            &[("content-type", "application/xml")],
            &payload,
        ));
        let body = problem(&response, 400, "invalid-body");
        assert!(!body["detail"].as_str().unwrap().is_empty(), "{what}");
    }
    assert!(
        harness.platform.sent().is_empty(),
        "the origin was never contacted"
    );
}

#[test]
fn xml_bound_for_an_xml_origin_is_checked_and_forwarded_as_it_came() {
    let harness = harness(legacy_routes());
    let xxe = r#"<?xml version="1.0"?><!DOCTYPE order [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><order>&xxe;</order>"#;
    let response = harness.send(with_body(
        Method::POST,
        "http://gw.example/legacy/orders",
        &[("content-type", "application/xml")],
        xxe,
    ));
    problem(&response, 400, "invalid-body");
    assert!(
        harness.platform.sent().is_empty(),
        "the XML origin was never contacted"
    );

    let fine = "<order>\n  <!-- kept --><note>as <b>sent</b></note></order>";
    let response = harness.send(with_body(
        Method::POST,
        "http://gw.example/legacy/orders",
        &[("content-type", "application/xml")],
        fine,
    ));
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        &last_upstream(&harness).body[..],
        fine.as_bytes(),
        "byte for byte"
    );
}

#[test]
fn hostile_or_broken_xml_from_the_origin_is_502() {
    let harness = harness(legacy_routes());
    let response = harness.get("http://gw.example/legacy/orders/7?broken=1");
    problem(&response, 502, "upstream-invalid-body");
}

// --- caps, encodings, streaming ------------------------------------------

#[test]
fn bodies_over_the_cap_are_413_in_and_502_out() {
    let harness = harness(json!([
        { "id": "in", "path": "/in/*", "service": "users", "transform": { "max_body_bytes": 64, "request": { "body": [] } } },
        { "id": "out", "path": "/out/*", "service": "users", "transform": { "max_body_bytes": 64, "response": { "body": [] } } }
    ]));
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(100));
    let response = harness.send(with_body(
        Method::POST,
        "http://gw.example/in/1",
        &[("content-type", "application/json")],
        &big,
    ));
    problem(&response, 413, "body-too-large");
    assert!(harness.platform.sent().is_empty());
    problem(
        &harness.get("http://gw.example/out/1"),
        502,
        "upstream-invalid-body",
    );
}

#[test]
fn compressed_bodies_are_refused_not_guessed_at() {
    let harness = harness(legacy_routes());
    let response = harness.send(with_body(
        Method::POST,
        "http://gw.example/legacy/orders",
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
        "\u{1f}\u{8b}",
    ));
    let body = problem(&response, 415, "unsupported-media-type");
    assert!(body["detail"].as_str().unwrap().contains("gzip"));
    problem(
        &harness.get("http://gw.example/legacy/orders/7?gzip=1"),
        502,
        "upstream-invalid-body",
    );
}

#[test]
fn other_media_types_under_body_rules_are_415() {
    let harness = harness(json!([{ "id": "in", "path": "/in/*", "service": "users",
        "transform": { "request": { "body": [ { "deny": ["x"] } ] } } }]));
    let response = harness.send(with_body(
        Method::POST,
        "http://gw.example/in/1",
        &[("content-type", "text/plain")],
        "x",
    ));
    problem(&response, 415, "unsupported-media-type");
}

#[test]
fn without_body_rules_bodies_stream_untouched() {
    let harness = harness(json!([{ "id": "h", "path": "/h/*", "service": "users",
        "transform": { "request": { "headers": [ { "set": "X-A", "value": "1" } ] } } }]));
    let response = harness.send(with_body(
        Method::POST,
        "http://gw.example/h/1",
        &[("content-type", "text/plain")],
        "not json at all",
    ));
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        matches!(response.body(), Body::Stream(_)),
        "the response was not buffered"
    );
    assert_eq!(&last_upstream(&harness).body[..], b"not json at all");
}

#[test]
fn the_origins_error_pages_pass_through_untouched() {
    let harness = harness(json!([{ "id": "out", "path": "/out/*", "service": "legacy",
        "transform": { "response": { "body": [ { "deny": ["x"] } ] } } }]));
    // A 2xx in the wrong format is a 502 (above); an error status in
    // another format is the origin's own answer.
    harness.platform.add_origin(XML_ORIGIN, |_| {
        OriginReply::Respond(
            Response::builder()
                .status(503)
                .header("content-type", "text/html")
                .body(Bytes::from_static(b"<h1>down</h1>"))
                .unwrap(),
        )
    });
    let response = harness.get("http://gw.example/out/1");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(&body_bytes(&response)[..], b"<h1>down</h1>");
}

#[test]
fn gateway_errors_are_never_transformed() {
    let harness = harness(
        json!([{ "id": "p", "path": "/p/*", "service": "users", "auth": { "jwt": ["test"] },
        "transform": { "response": {
            "headers": [ { "set": "X-Transformed", "value": "yes" } ],
            "body": [ { "wrap": "data" } ] } } }]),
    );
    let response = harness.get("http://gw.example/p/1");
    let body = problem(&response, 401, "unauthorized");
    assert!(body.get("data").is_none());
    assert_eq!(header(response.headers(), "x-transformed"), None);
}

// --- cache ---------------------------------------------------------------

#[test]
fn one_cached_entry_serves_json_and_xml_clients() {
    let mut routes = legacy_routes();
    routes[0]["methods"] = json!(["GET"]);
    routes[0]["cache"] = json!({ "ttl_seconds": 60 });
    let harness = harness(routes);
    let json_first = harness.get("http://gw.example/legacy/orders/7");
    assert_eq!(
        header(json_first.headers(), "content-type"),
        Some("application/json")
    );
    harness.platform.run_background();
    let xml_hit = harness.send(request(
        Method::GET,
        "http://gw.example/legacy/orders/7",
        &[("accept", "application/xml")],
    ));
    assert!(
        header(xml_hit.headers(), "cache-status")
            .unwrap()
            .starts_with("Portico; hit")
    );
    assert_eq!(
        header(xml_hit.headers(), "content-type"),
        Some("application/xml; charset=utf-8")
    );
    let json_hit = harness.get("http://gw.example/legacy/orders/7");
    assert!(
        header(json_hit.headers(), "cache-status")
            .unwrap()
            .starts_with("Portico; hit")
    );
    assert_eq!(body_json(&json_hit), body_json(&json_first));
    assert_eq!(harness.platform.sent().len(), 1, "the origin answered once");
}

// --- config ----------------------------------------------------------------

fn refused(route_transform: Value, extra: Value) -> Vec<String> {
    let mut route =
        json!({ "id": "r", "path": "/r/:id", "service": "users", "transform": route_transform });
    if let (Some(route), Some(extra)) = (route.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            route.insert(key.clone(), value.clone());
        }
    }
    let config = json!({ "version": 1, "services": { "users": { "url": "http://127.0.0.1:9101" } }, "routes": [route] });
    match portico::config::Config::from_json(&config.to_string()) {
        Ok(_) => Vec::new(),
        Err(error) => error.lines(),
    }
}

#[test]
fn rules_are_checked_at_load_with_their_json_path() {
    let cases = [
        (
            json!({ "request": { "headers": [ { "set": "X-A", "value": "${params.nope}" } ] } }),
            json!({}),
            "routes[0].transform.request.headers[0].value: '${params.nope}': '${params.nope}' is not a parameter of the route's path pattern",
        ),
        (
            json!({ "request": { "headers": [ { "set": "X-A", "value": "${bogus.x}" } ] } }),
            json!({}),
            "routes[0].transform.request.headers[0].value",
        ),
        (
            json!({ "request": { "headers": [ { "set": "X-A", "value": "${identity.sub}" } ] } }),
            json!({}),
            "the route has no 'auth'",
        ),
        (
            json!({ "request": { "headers": [ { "set": "X-A", "value": "a\r\nb" } ] } }),
            json!({}),
            "control character",
        ),
        (
            json!({ "request": { "headers": [ { "set": "X-A", "add": "X-B", "value": "1" } ] } }),
            json!({}),
            "routes[0].transform.request.headers[0]: give exactly one of",
        ),
        (
            json!({ "request": { "headers": [ { "remove": "X-A", "value": "1" } ] } }),
            json!({}),
            "routes[0].transform.request.headers[0].value: 'remove' takes no 'value'",
        ),
        (
            json!({ "request": { "headers": [ { "rename": "X-A" } ] } }),
            json!({}),
            "routes[0].transform.request.headers[0].to",
        ),
        (
            json!({ "request": { "headers": [ { "set": "X-Portico-Subject", "value": "x" } ] } }),
            json!({}),
            "manages itself",
        ),
        (
            json!({ "request": { "headers": [ { "set": "Connection", "value": "x" } ] } }),
            json!({}),
            "manages itself",
        ),
        (
            json!({ "request": { "headers": [ { "set": "X_A", "value": "x" } ] } }),
            json!({}),
            "must not contain '_'",
        ),
        (
            json!({ "request": { "headers": [ { "set": "X-A", "value": "${client.ip}" } ] } }),
            json!({ "methods": ["GET"], "cache": {} }),
            "not part of the cache key",
        ),
        (
            json!({ "request": { "headers": [ { "set": "X-A", "value": "${header.x-tenant}" } ] } }),
            json!({ "methods": ["GET"], "cache": {} }),
            "not part of the cache key",
        ),
        (
            json!({ "response": { "body": [ { "allow": [] } ] } }),
            json!({}),
            "routes[0].transform.response.body[0].allow: list at least one path",
        ),
        (
            json!({ "response": { "body": [ { "deny": ["a..b"] } ] } }),
            json!({}),
            "routes[0].transform.response.body[0].deny[0]",
        ),
        (
            json!({ "response": { "body": [ { "wrap": "a", "take": "b" } ] } }),
            json!({}),
            "routes[0].transform.response.body[0]: give exactly one of",
        ),
        (
            json!({ "origin_format": "xml" }),
            json!({}),
            "routes[0].transform.xml.root",
        ),
        (
            json!({ "negotiate": true, "xml": { "root": "1bad" } }),
            json!({}),
            "routes[0].transform.xml.root: '1bad' is not an XML element name",
        ),
        (
            json!({ "max_body_bytes": 0 }),
            json!({}),
            "routes[0].transform.max_body_bytes",
        ),
        (
            json!({ "xml": { "max_depth": 100000 } }),
            json!({}),
            "routes[0].transform.xml.max_depth",
        ),
    ];
    for (transform, extra, expected) in cases {
        let lines = refused(transform.clone(), extra);
        assert!(
            lines.iter().any(|line| line.contains(expected)),
            "{transform}: expected '{expected}' in {lines:?}"
        );
    }
    assert!(refused(json!({ "request": { "headers": [ { "set": "X-A", "value": "${header.x-tenant}" } ] } }),
        json!({ "methods": ["GET"], "cache": { "vary_headers": ["X-Tenant"] } })).is_empty(),
        "a header in the cache key may be read");
}

#[test]
fn credentials_the_route_keeps_back_cannot_be_copied() {
    let config = |rule: Value| {
        json!({ "version": 1, "auth": { "jwt": { "test": tokens::issuer_config(&["ES256"]) } },
            "services": { "users": { "url": "http://127.0.0.1:9101" } },
            "routes": [{ "id": "r", "path": "/r/*", "service": "users", "auth": { "jwt": ["test"], "api_key": {} },
                "transform": { "request": { "headers": [rule] } } }] })
        .to_string()
    };
    for rule in [
        json!({ "set": "X-Token", "value": "${header.authorization}" }),
        json!({ "rename": "Authorization", "to": "X-Token" }),
        json!({ "rename": "X-Api-Key", "to": "X-Key" }),
        json!({ "set": "Authorization", "value": "Bearer static" }),
    ] {
        let error =
            portico::config::Config::from_json(&config(rule.clone())).expect_err(&rule.to_string());
        assert!(error.to_string().contains("credentials"), "{rule}: {error}");
    }
}
