//! Property tests over hostile input: configs, paths, tokens, header
//! templates and XML. Whatever comes in, the gateway gives a verdict and
//! never panics (in wasm a panic takes down every request in flight), and
//! the promises other suites check by example hold for every generated
//! case: what goes upstream is a normalised path inside the route's base,
//! client copies of owned headers never get through, a token is accepted
//! exactly when its claims are good.
//!
//! Each property runs 256 cases by default; `make fuzz` runs many more
//! (`PROPTEST_CASES`). Failures print the smallest input found; nothing is
//! written to disk, so every run starts from the same place.

mod common;

use bytes::Bytes;
use common::tokens::{self, NOW, claims};
use common::{Harness, auth_config, fixture};
use http::{Method, Request, StatusCode};
use portico::Body;
use portico::config::Config;
use portico::routing::path::RequestPath;
use portico::transform::xml::{XmlOptions, to_json, to_xml};
use proptest::prelude::*;
use proptest::test_runner::Config as Cases;
use serde_json::{Value, json};

fn cases() -> Cases {
    Cases {
        failure_persistence: None,
        ..Cases::default()
    }
}

// ---------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------

/// Path segments chosen to hit every rule of path normalisation.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9]{1,6}",
        1 => Just(String::new()),
        1 => Just(".".to_owned()),
        1 => Just("..".to_owned()),
        1 => Just("..;x".to_owned()),
        1 => Just(".;".to_owned()),
        1 => Just("%2e%2e".to_owned()),
        1 => Just("%2E".to_owned()),
        1 => Just(".%2e".to_owned()),
        1 => Just("a%2Fb".to_owned()),
        1 => Just("a%2fb".to_owned()),
        1 => Just("a%5Cb".to_owned()),
        1 => Just("%7Eu".to_owned()),
        1 => Just("~u".to_owned()),
        1 => Just("%zz".to_owned()),
        1 => Just("%4".to_owned()),
        1 => Just("%00".to_owned()),
        1 => Just("%0D%0A".to_owned()),
        1 => Just("a;b=c".to_owned()),
        1 => Just("%3B".to_owned()),
        1 => Just("%25".to_owned()),
        1 => Just("%C3%A9".to_owned()),
        1 => Just("%FF".to_owned()),
        1 => Just("api".to_owned()),
        1 => Just("users".to_owned()),
        1 => Just("orders".to_owned()),
        1 => Just("t".to_owned()),
        1 => Just("health".to_owned()),
        1 => "[ -~]{0,4}",
    ]
}

/// A route's prefix, so most paths reach a route, then anything.
fn prefix() -> impl Strategy<Value = &'static str> {
    prop::sample::select(
        &[
            "",
            "/api",
            "/api/users",
            "/api/users/",
            "/api/orders",
            "/api/orders/",
            "/t/acme",
            "/t/",
            "/health",
            "/private",
        ][..],
    )
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (prefix(), prop::collection::vec(segment(), 0..6))
            .prop_map(|(prefix, s)| format!("{prefix}/{}", s.join("/"))),
        1 => "/[ -~]{0,24}",
        1 => any::<String>(),
    ]
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        4 => Just(Method::GET),
        1 => Just(Method::HEAD),
        1 => Just(Method::POST),
        1 => Just(Method::PUT),
        1 => Just(Method::DELETE),
        1 => Just(Method::OPTIONS),
        1 => Just(Method::PATCH),
        1 => Just(Method::TRACE),
        1 => Just(Method::CONNECT),
        1 => "[A-Z]{1,8}".prop_map(|m| Method::from_bytes(m.as_bytes()).expect("a token")),
    ]
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("gw.example".to_owned()),
        Just("acme.example.com".to_owned()),
        Just("admin.example.com".to_owned()),
        Just("ADMIN.EXAMPLE.COM".to_owned()),
        Just("gw.example:8443".to_owned()),
        Just("example.com".to_owned()),
        Just("a.b.example.com".to_owned()),
        "[a-z0-9.-]{1,20}",
    ]
}

/// Headers the gateway owns or strips, under the names a service might
/// read them by.
const OWNED_HEADERS: [&str; 20] = [
    "x-portico-consumer",
    "X-Portico-Roles",
    "x_portico_roles",
    "X_Portico_Consumer",
    "x-portico-anything",
    "x-forwarded-for",
    "X_Forwarded_For",
    "x-forwarded-host",
    "x-forwarded-proto",
    "forwarded",
    "x-real-ip",
    "x_real_ip",
    "x-http-method-override",
    "x_http_method_override",
    "x-method-override",
    "x-http-method",
    "x-original-url",
    "x-rewrite-url",
    "true-client-ip",
    "x-cluster-client-ip",
];

/// A JSON value of any shape, with the numbers and strings that break
/// arithmetic and templates.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::from)),
        prop_oneof![
            Just(0i64),
            Just(-1),
            Just(1),
            Just(i64::MAX),
            Just(i64::MIN),
            Just(u32::MAX as i64),
        ]
        .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        prop_oneof![
            Just("${params.tenant}"),
            Just("${"),
            Just("${}"),
            Just("$"),
            Just("http://127.0.0.1:9101"),
            Just("/api/*"),
            Just("/:a/:a"),
            Just("*"),
            Just(""),
            Just("HS256"),
            Just("none"),
            Just("token_bucket"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer into `value`.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                pointers(
                    child,
                    format!("{at}/{}", key.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{index}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// One change to a config: most keep the value's type, so that the edited
/// config gets past the schema and into the deeper checks.
#[derive(Clone, Debug)]
enum Edit {
    /// Any value at all.
    Replace(Value),
    /// Drop an object member or array item.
    Remove,
    /// A number becomes this one, a string this one, a bool flips; other
    /// values stay.
    SameType(Value, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    let number = prop_oneof![
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(1)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(0.5)),
        Just(json!(1e300)),
        any::<u32>().prop_map(Value::from),
    ];
    let string = prop_oneof![
        Just(String::new()),
        Just("*".to_owned()),
        Just("/".to_owned()),
        Just("/:a/:a".to_owned()),
        Just("/*rest/x".to_owned()),
        Just("${params.nope}".to_owned()),
        Just("${".to_owned()),
        Just("http://".to_owned()),
        Just("ftp://x".to_owned()),
        Just("http://127.0.0.1:9101/a/../b".to_owned()),
        Just("users".to_owned()),
        Just("nope".to_owned()),
        "[ -~]{0,12}",
    ];
    prop_oneof![
        1 => json_value().prop_map(Edit::Replace),
        1 => Just(Edit::Remove),
        3 => (number, string).prop_map(|(n, s)| Edit::SameType(n, s)),
    ]
}

fn apply(config: &mut Value, pointer: &str, edit: Edit) {
    match edit {
        Edit::Replace(value) => {
            if let Some(slot) = config.pointer_mut(pointer) {
                *slot = value;
            }
        }
        Edit::Remove => {
            let Some((parent, last)) = pointer.rsplit_once('/') else {
                return;
            };
            let last = last.replace("~1", "/").replace("~0", "~");
            match config.pointer_mut(parent) {
                Some(Value::Object(map)) => {
                    map.remove(&last);
                }
                Some(Value::Array(items)) => {
                    if let Ok(index) = last.parse::<usize>()
                        && index < items.len()
                    {
                        items.remove(index);
                    }
                }
                _ => {}
            }
        }
        Edit::SameType(number, string) => {
            if let Some(slot) = config.pointer_mut(pointer) {
                match slot {
                    Value::Number(_) => *slot = number,
                    Value::String(_) => *slot = Value::from(string),
                    Value::Bool(b) => *b = !*b,
                    _ => {}
                }
            }
        }
    }
}

fn send(harness: &Harness, request: Request<Body<Bytes>>) -> http::Response<Body<Bytes>> {
    harness.send(request)
}

fn build(method: Method, uri: &str, headers: &[(String, String)]) -> Option<Request<Body<Bytes>>> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder.body(Body::Empty).ok()
}

// ---------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------

/// The Worker secrets the fixture configs name.
const FIXTURE_SECRETS: [&str; 5] = [
    "GATEWAY_ADMIN_TOKEN",
    "GATEWAY_SIGNING_SECRET",
    "LEGACY_OAUTH_SECRET",
    "PORTICO_ADMIN_TOKEN",
    "PORTICO_IDENTITY_SECRET",
];

const FIXTURE_CONFIGS: [&str; 5] = ["basic", "full", "demo", "balanced", "bench"];

#[test]
fn any_text_as_a_config_is_loaded_or_refused() {
    proptest!(cases(), |(text in any::<String>())| {
        let _ = Config::from_json(&text);
    });
}

#[test]
fn a_fixture_config_with_any_value_anywhere_is_loaded_or_refused_and_serves_requests() {
    let fixtures: Vec<Value> = FIXTURE_CONFIGS
        .iter()
        .map(|name| serde_json::from_str(&fixture(&format!("config/{name}.json"))).expect("JSON"))
        .collect();
    proptest!(cases(), |(
        which in 0..fixtures.len(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), edit()), 1..4),
        paths in prop::collection::vec(path(), 1..4),
    )| {
        let mut config = fixtures[which].clone();
        let mut applied = Vec::new();
        for (index, edit) in edits {
            let mut all = Vec::new();
            pointers(&config, String::new(), &mut all);
            let pointer = index.get(&all).clone();
            apply(&mut config, &pointer, edit.clone());
            applied.push((pointer, edit));
        }
        let text = config.to_string();
        if Config::from_json(&text).is_ok() {
            let harness = Harness::with_config(&text);
            for secret in FIXTURE_SECRETS {
                harness.platform.set_secret(secret, "a-secret-of-forty-eight-bytes-for-the-tests-0001");
            }
            for path in paths {
                if let Some(request) = build(Method::GET, &format!("http://gw.example{path}"), &[]) {
                    let response = send(&harness, request);
                    if response.status() == StatusCode::INTERNAL_SERVER_ERROR {
                        // The one 500 a config can cause: naming a Worker
                        // secret that was never set.
                        let error = harness.access_logs().pop().and_then(|log| log.error);
                        prop_assert!(
                            error.as_deref().is_some_and(|e| e.ends_with("is not set")),
                            "{:?} {}: {:?}",
                            applied,
                            path,
                            error
                        );
                    }
                }
            }
        }
    });
}

#[test]
fn a_truncated_or_bit_flipped_fixture_config_is_loaded_or_refused() {
    let fixtures: Vec<String> = FIXTURE_CONFIGS
        .iter()
        .map(|name| fixture(&format!("config/{name}.json")))
        .collect();
    proptest!(cases(), |(
        which in 0..fixtures.len(),
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    )| {
        let mut bytes = fixtures[which].as_bytes().to_vec();
        for (at, byte) in flips {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let _ = Config::from_json(&String::from_utf8_lossy(&bytes));
    });
}

// ---------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------

fn is_normal_form(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.iter().enumerate().all(|(at, &b)| {
        b != b'%'
            || (bytes
                .get(at + 1)
                .is_some_and(|h| matches!(h, b'0'..=b'9' | b'A'..=b'F'))
                && bytes
                    .get(at + 2)
                    .is_some_and(|h| matches!(h, b'0'..=b'9' | b'A'..=b'F')))
    })
}

#[test]
fn a_path_parses_to_a_normal_form_without_dot_segments_or_is_refused() {
    proptest!(cases(), |(raw in path())| {
        if let Ok(parsed) = RequestPath::parse(&raw) {
            let normal = parsed.as_str();
            prop_assert!(normal.starts_with('/'));
            prop_assert!(is_normal_form(normal), "{normal}");
            prop_assert!(
                !parsed.segments().any(|s| {
                    let name = s.split(';').next().unwrap_or(s);
                    name == "." || name == ".."
                }),
                "{normal}"
            );
            let again = RequestPath::parse(normal);
            prop_assert_eq!(again.as_ref(), Ok(&parsed), "normalising is idempotent");
            let rebuilt: Vec<&str> = parsed.segments().collect();
            if !parsed.is_empty() {
                prop_assert_eq!(format!("/{}", rebuilt.join("/")), normal);
            }
        }
    });
}

/// The full fixture without auth or limits, with its three services
/// answering: these properties are about what reaches them.
fn open_gateway() -> Harness {
    let mut config: Value = serde_json::from_str(&fixture("config/full.json")).expect("JSON");
    if let Some(object) = config.as_object_mut() {
        object.remove("auth");
    }
    for route in config["routes"].as_array_mut().expect("routes") {
        let route = route.as_object_mut().expect("a route");
        route.remove("auth");
        route.remove("rate_limit");
        route.remove("cache");
    }
    let harness = Harness::with_config(&config.to_string());
    for authority in ["users.internal.example.com", "10.0.0.7:8080", "[::1]:9000"] {
        harness
            .platform
            .add_origin(authority, common::echo_origin("any"));
    }
    harness
}

/// Where each service of the full fixture keeps its API.
fn base_path(authority: &str) -> &'static str {
    match authority {
        "users.internal.example.com" => "/v1/",
        "[::1]:9000" => "/legacy/",
        _ => "/",
    }
}

#[test]
fn whatever_the_request_what_goes_upstream_is_a_normal_path_inside_the_service() {
    proptest!(cases(), |(
        method in method(),
        host in host(),
        path in path(),
        query in prop::option::of("[ -~]{0,16}"),
        spoofs in prop::collection::vec(prop::sample::select(&OWNED_HEADERS[..]), 0..4),
    )| {
        let uri = match &query {
            Some(query) => format!("http://{host}{path}?{query}"),
            None => format!("http://{host}{path}"),
        };
        let headers: Vec<(String, String)> = spoofs
            .iter()
            .map(|name| (name.to_string(), "spoofed".to_owned()))
            .collect();
        let Some(request) = build(method, &uri, &headers) else {
            return Ok(());
        };
        let harness = open_gateway();
        let response = send(&harness, request);
        prop_assert_ne!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        for upstream in &harness.platform.sent() {
            let authority = upstream.uri.authority().map_or("", |a| a.as_str());
            let upstream_path = upstream.uri.path();
            let parsed = RequestPath::parse(upstream_path);
            prop_assert!(parsed.is_ok(), "{uri} went upstream as {upstream_path}: {parsed:?}");
            let parsed = parsed.expect("checked");
            prop_assert_eq!(parsed.as_str(), upstream_path, "sent in normal form");
            prop_assert!(!parsed.has_escaped_separator(), "{uri} -> {upstream_path}");
            let base = base_path(authority);
            prop_assert!(
                upstream_path.starts_with(base) || format!("{upstream_path}/") == base,
                "{uri} escaped {base}: {upstream_path}"
            );
            for (name, value) in &upstream.headers {
                prop_assert!(
                    value.as_bytes() != b"spoofed",
                    "{uri}: the client's {name} reached the service"
                );
            }
        }
    });
}

// ---------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------

fn jwt_gateway() -> Harness {
    Harness::with_config(&auth_config(
        json!({ "jwt": { "test": tokens::issuer_config(&["HS256"]) } }),
        json!([{ "id": "private", "path": "/private/*", "service": "users", "auth": { "jwt": ["test"] } }]),
    ))
}

fn bearer(harness: &Harness, token: &str) -> Option<StatusCode> {
    let request = build(
        Method::GET,
        "http://gw.example/private/x",
        &[("authorization".to_owned(), format!("Bearer {token}"))],
    )?;
    Some(send(harness, request).status())
}

/// A claim time: most far enough from now and the leeway that the verdict
/// is not in doubt, some at the edges of every number type.
#[derive(Clone, Debug)]
enum Time {
    Absent,
    /// Seconds from now, at least two minutes away.
    Clear(i64),
    Extreme(Value),
}

fn time() -> impl Strategy<Value = Time> {
    prop_oneof![
        1 => Just(Time::Absent),
        3 => prop_oneof![(-10_000_000i64..-120), (120i64..10_000_000)].prop_map(Time::Clear),
        2 => json_value().prop_map(Time::Extreme),
        1 => prop_oneof![
            Just(json!(253_402_300_800_i64)),
            Just(json!(-62_167_219_200_i64)),
            Just(json!(i64::MAX)),
            Just(json!(u64::MAX)),
            Just(json!(1e300)),
            Just(json!(-0.5)),
            Just(json!(NOW as f64 + 0.5)),
            Just(json!(NOW.to_string())),
        ]
        .prop_map(Time::Extreme),
    ]
}

#[test]
fn a_signed_token_is_accepted_exactly_when_its_times_are_good() {
    proptest!(cases(), |(exp in time(), nbf in time(), iat in time())| {
        let mut extra = serde_json::Map::new();
        let mut expected = Some(true);
        for (claim, time) in [("exp", &exp), ("nbf", &nbf), ("iat", &iat)] {
            match time {
                Time::Absent => {
                    extra.insert(claim.to_owned(), Value::Null);
                    if claim == "exp" {
                        expected = Some(false);
                    }
                }
                Time::Clear(offset) => {
                    extra.insert(claim.to_owned(), json!(NOW + offset));
                    let good = if claim == "exp" { *offset > 0 } else { *offset < 0 };
                    if !good {
                        expected = Some(false);
                    }
                }
                Time::Extreme(value) => {
                    extra.insert(claim.to_owned(), value.clone());
                    if expected == Some(true) {
                        expected = None;
                    }
                }
            }
        }
        let token = tokens::sign_payload("HS256", "hs256", Some("test-hs-1"), &claims(Value::Object(extra)));
        let status = bearer(&jwt_gateway(), &token).expect("a token is a header value");
        match expected {
            Some(true) => prop_assert_eq!(status, StatusCode::OK),
            Some(false) => prop_assert_eq!(status, StatusCode::UNAUTHORIZED),
            None => prop_assert!(
                status == StatusCode::OK || status == StatusCode::UNAUTHORIZED,
                "{status}"
            ),
        }
    });
}

fn base64url(bytes: &[u8]) -> String {
    use base64ct::{Base64UrlUnpadded, Encoding};
    Base64UrlUnpadded::encode_string(bytes)
}

fn token_shape() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        json_value().prop_map(|v| base64url(v.to_string().as_bytes())),
        prop::collection::vec(any::<u8>(), 0..48).prop_map(|b| base64url(&b)),
        "[A-Za-z0-9_=+/.-]{0,40}",
        Just(base64url(br#"{"alg":"HS256","kid":"test-hs-1"}"#)),
        Just(base64url(br#"{"alg":"none"}"#)),
    ];
    prop_oneof![
        (part.clone(), part.clone(), part.clone()).prop_map(|(h, p, s)| format!("{h}.{p}.{s}")),
        prop::collection::vec(part, 0..6).prop_map(|parts| parts.join(".")),
        "[ -~]{0,64}",
    ]
}

#[test]
fn any_unsigned_bearer_token_gets_401() {
    proptest!(cases(), |(token in token_shape())| {
        // A fresh gateway each time: failed attempts from one address are
        // throttled, which would answer 429 instead.
        if let Some(status) = bearer(&jwt_gateway(), &token) {
            prop_assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", token);
        }
    });
}

// ---------------------------------------------------------------------
// Header templates
// ---------------------------------------------------------------------

fn template() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("${params.tenant}".to_owned()),
        Just("${params.rest}".to_owned()),
        Just("${params.nope}".to_owned()),
        Just("${query.q}".to_owned()),
        Just("${header.x-in}".to_owned()),
        Just("${request.path}".to_owned()),
        Just("${request.id}".to_owned()),
        Just("${client.ip}".to_owned()),
        Just("${cf.country}".to_owned()),
        Just("${identity.claims.a.b}".to_owned()),
        Just("${".to_owned()),
        Just("}".to_owned()),
        Just("$".to_owned()),
        Just("${}".to_owned()),
        Just("${params.}".to_owned()),
        Just("\r\n".to_owned()),
        "[ -~]{0,6}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..5).prop_map(|p| p.concat())
}

/// Values that become dangerous once decoded: controls, separators,
/// invalid UTF-8.
fn hostile_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,6}",
        Just("%0D%0AX-Injected:%201".to_owned()),
        Just("%00".to_owned()),
        Just("%FF%FE".to_owned()),
        Just("%C3%A9".to_owned()),
        Just("%7F".to_owned()),
        Just("%20".to_owned()),
        "[a-zA-Z0-9%]{0,12}",
    ]
}

#[test]
fn a_header_template_is_refused_at_load_or_renders_a_valid_header_for_any_request() {
    proptest!(cases(), |(
        value in template(),
        tenant in hostile_segment(),
        rest in hostile_segment(),
        q in hostile_segment(),
        x_in in "[ -~]{0,12}",
    )| {
        let config = json!({
            "version": 1,
            "services": { "users": { "url": "http://127.0.0.1:9101" } },
            "routes": [{
                "id": "t", "path": "/t/:tenant/*rest", "service": "users",
                "transform": { "request": { "headers": [ { "set": "X-T", "value": value } ] },
                               "response": { "headers": [ { "set": "X-R", "value": value } ] } }
            }]
        })
        .to_string();
        if Config::from_json(&config).is_err() {
            return Ok(());
        }
        let harness = Harness::with_config(&config);
        let Some(request) = build(
            Method::GET,
            &format!("http://gw.example/t/{tenant}/{rest}?q={q}"),
            &[("x-in".to_owned(), x_in)],
        ) else {
            return Ok(());
        };
        let response = send(&harness, request);
        prop_assert_ne!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        for upstream in harness.platform.sent() {
            prop_assert!(!upstream.headers.contains_key("x-injected"));
        }
        prop_assert!(!response.headers().contains_key("x-injected"));
    });
}

// ---------------------------------------------------------------------
// XML
// ---------------------------------------------------------------------

fn xml_options() -> XmlOptions {
    let mut options = XmlOptions {
        max_depth: 32,
        ..XmlOptions::default()
    };
    options.always_array.insert("item".to_owned());
    options
}

/// Byte soup made of XML's own pieces, so the reader gets past the prolog.
fn xml_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"<a>".to_vec()),
        Just(b"</a>".to_vec()),
        Just(b"<item x=\"1\">".to_vec()),
        Just(b"</item>".to_vec()),
        Just(b"<b/>".to_vec()),
        Just(b"<?xml version=\"1.0\"?>".to_vec()),
        Just(b"<!DOCTYPE a [<!ENTITY e \"x\">]>".to_vec()),
        Just(b"&amp;".to_vec()),
        Just(b"&e;".to_vec()),
        Just(b"&#0;".to_vec()),
        Just(b"&#x110000;".to_vec()),
        Just(b"<![CDATA[x]]>".to_vec()),
        Just(b"<!-- c -->".to_vec()),
        Just(b"42".to_vec()),
        Just(b"true".to_vec()),
        Just(b" a=\"".to_vec()),
        Just(b"#text".to_vec()),
        prop::collection::vec(any::<u8>(), 0..8),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|p| p.concat())
}

#[test]
fn any_bytes_as_xml_convert_to_bounded_json_that_writes_back() {
    let options = xml_options();
    let typed = XmlOptions {
        infer_types: true,
        ..xml_options()
    };
    proptest!(cases(), |(data in prop_oneof![xml_bytes(), prop::collection::vec(any::<u8>(), 0..256)])| {
        for options in [&options, &typed] {
            if let Ok((root, value)) = to_json(&data, options) {
                let json = serde_json::to_vec(&value).expect("a JSON value serialises");
                prop_assert!(json.len() <= 8 * data.len() + 16, "output out of bounds");
                let xml = to_xml(&root, &value, options.max_depth);
                prop_assert!(xml.is_ok(), "what was read can be written: {xml:?}");
                let back = to_json(&xml.expect("checked"), options);
                prop_assert!(back.is_ok(), "what was written can be read: {back:?}");
            }
        }
    });
}

#[test]
fn any_json_writes_as_xml_that_reads_back_or_is_refused() {
    let options = xml_options();
    proptest!(cases(), |(value in json_value(), root in prop_oneof![Just("root".to_owned()), "[ -~]{0,6}"])| {
        if let Ok(xml) = to_xml(&root, &value, options.max_depth) {
            let back = to_json(&xml, &options);
            prop_assert!(back.is_ok(), "{}: {back:?}", String::from_utf8_lossy(&xml));
        }
    });
}
