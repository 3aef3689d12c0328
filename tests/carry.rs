//! Requests that are more than one plain exchange: `Expect: 100-continue`
//! and interim responses, WebSocket upgrades (which routes take them, with
//! which credentials, counted how), and request body limits by declared
//! length and by streamed count.

mod common;

use bytes::Bytes;
use common::{Harness, auth_config, body_json, echo_origin, header, last_upstream, request};
use http::{Method, Request, Response, StatusCode};
use portico::Body;
use portico::config::Config;
use portico::observe::events::AccessLog;
use portico::platform::memory::{OriginReply, RecordedRequest};
use serde_json::{Value, json};

const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// The users service at 127.0.0.1:9101 behind `routes`; every request
/// logged except that successes are sampled out, so only what is always
/// logged shows.
fn harness(routes: Value) -> Harness {
    let mut config: Value = serde_json::from_str(&auth_config(json!({}), routes)).unwrap();
    config["log"] = json!({ "sample_rate": 0.0 });
    Harness::with_config(&config.to_string())
}

/// An origin that accepts WebSocket upgrades (choosing the "echo"
/// subprotocol when offered) and echoes anything else.
fn websocket_origin(request: &RecordedRequest) -> OriginReply {
    let upgrading = header(&request.headers, "upgrade") == Some("websocket");
    if !upgrading {
        return echo_origin("users")(request);
    }
    let mut response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    if header(&request.headers, "sec-websocket-protocol").is_some_and(|p| p.contains("echo")) {
        response = response.header("sec-websocket-protocol", "echo");
    }
    OriginReply::Respond(response.body(Bytes::new()).unwrap())
}

fn upgrade(url: &str, extra: &[(&str, &str)]) -> Request<Body<Bytes>> {
    let mut headers = vec![
        ("upgrade", "websocket"),
        ("sec-websocket-key", WS_KEY),
        ("sec-websocket-version", "13"),
    ];
    headers.extend_from_slice(extra);
    request(Method::GET, url, &headers)
}

fn access_logs(harness: &Harness) -> Vec<AccessLog> {
    harness.access_logs()
}

fn problem_type(response: &Response<Body<Bytes>>) -> String {
    body_json(response)["type"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn live_routes() -> Value {
    json!([
        { "id": "live", "path": "/live/*", "methods": ["GET"], "service": "users",
          "websocket": { "subprotocol_credentials": true },
          "auth": { "api_key": { "query": "api_key" } },
          "cors": { "origins": ["https://app.example"] } },
        { "id": "open-live", "path": "/open-live/*", "service": "users", "websocket": true },
        { "id": "plain", "path": "/plain/*", "service": "users" },
        { "id": "plain-keyed", "path": "/plain-keyed/*", "service": "users",
          "auth": { "api_key": { "query": "api_key" } } }
    ])
}

fn live_harness() -> (Harness, String) {
    let harness = harness(live_routes());
    harness
        .platform
        .add_origin("127.0.0.1:9101", websocket_origin);
    let (_, key) = harness.store_key(7, "acme", |_| {});
    (harness, key)
}

// --- Expect and interim responses ------------------------------------------

#[test]
fn expect_100_continue_never_goes_upstream() {
    let harness = harness(json!([{ "id": "up", "path": "/up/*", "service": "users" }]));
    let mut upload = request(
        Method::POST,
        "http://gw.example/up/file",
        &[("expect", "100-continue"), ("content-length", "5")],
    );
    *upload.body_mut() = Body::Stream(Bytes::from_static(b"hello"));
    let response = harness.send(upload);
    assert_eq!(response.status(), StatusCode::OK);
    let sent = last_upstream(&harness);
    assert!(!sent.headers.contains_key("expect"));
    assert_eq!(&sent.body[..], b"hello");
}

#[test]
fn an_interim_response_is_never_passed_off_as_the_answer() {
    let harness = harness(json!([{ "id": "up", "path": "/up/*", "service": "users" }]));
    for status in [100, 103, 101] {
        harness.platform.add_origin("127.0.0.1:9101", move |_| {
            OriginReply::Respond(
                Response::builder()
                    .status(status)
                    .body(Bytes::new())
                    .unwrap(),
            )
        });
        let response = harness.get("http://gw.example/up/x");
        assert_eq!(
            response.status(),
            StatusCode::BAD_GATEWAY,
            "origin answered {status}"
        );
        assert_eq!(
            problem_type(&response),
            "urn:portico:problem:upstream-invalid-response"
        );
    }
}

// --- WebSocket upgrades ------------------------------------------------------

#[test]
fn a_websocket_upgrade_on_a_route_without_websocket_is_refused_not_stripped() {
    let (harness, key) = live_harness();
    for url in [
        "http://gw.example/plain/chat".to_owned(),
        format!("http://gw.example/plain-keyed/chat?api_key={key}"),
    ] {
        let response = harness.send(upgrade(&url, &[]));
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{url}");
        assert_eq!(
            problem_type(&response),
            "urn:portico:problem:upgrade-not-allowed"
        );
    }
    assert!(harness.platform.sent().is_empty());

    // Other upgrade tokens are optional for a server: dropped, as before.
    let response = harness.send(request(
        Method::GET,
        "http://gw.example/plain/x",
        &[("upgrade", "h2c")],
    ));
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!last_upstream(&harness).headers.contains_key("upgrade"));
}

#[test]
fn an_upgrade_is_not_a_get_is_refused() {
    let (harness, _) = live_harness();
    let mut post = upgrade("http://gw.example/open-live/chat", &[]);
    *post.method_mut() = Method::POST;
    let response = harness.send(post);
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        problem_type(&response),
        "urn:portico:problem:upgrade-not-allowed"
    );
    assert!(harness.platform.sent().is_empty());
}

#[test]
fn an_accepted_upgrade_goes_upstream_as_one_with_the_verified_identity_and_comes_back_101() {
    let (harness, key) = live_harness();
    let response = harness.send(upgrade(
        "http://gw.example/live/chat",
        &[
            ("x-api-key", &key),
            ("sec-websocket-protocol", "echo"),
            ("x-portico-consumer", "forged"),
        ],
    ));
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(
        header(response.headers(), "sec-websocket-protocol"),
        Some("echo")
    );
    let sent = last_upstream(&harness).headers;
    assert_eq!(header(&sent, "upgrade"), Some("websocket"));
    assert_eq!(header(&sent, "sec-websocket-key"), Some(WS_KEY));
    assert_eq!(header(&sent, "sec-websocket-version"), Some("13"));
    assert_eq!(header(&sent, "sec-websocket-protocol"), Some("echo"));
    assert_eq!(header(&sent, "x-portico-consumer"), Some("acme"));
    assert!(!sent.contains_key("x-api-key"));

    // Logged although successes are sampled out: status, route, consumer.
    let log = access_logs(&harness).pop().expect("the upgrade was logged");
    assert_eq!(log.status, 101);
    assert_eq!(log.upgrade, Some("websocket"));
    assert_eq!(log.route.as_deref(), Some("live"));
    assert_eq!(log.consumer.as_deref(), Some("acme"));
}

#[test]
fn an_upgrade_without_credentials_gets_401_and_never_reaches_the_origin() {
    let (harness, _) = live_harness();
    let response = harness.send(upgrade("http://gw.example/live/chat", &[]));
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(harness.platform.sent().is_empty());
}

#[test]
fn browsers_may_present_the_key_in_the_query_or_as_a_subprotocol_which_stays_at_the_gateway() {
    let (harness, key) = live_harness();
    let response = harness.send(upgrade(
        &format!("http://gw.example/live/chat?api_key={key}&room=1"),
        &[],
    ));
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let sent = last_upstream(&harness);
    assert_eq!(sent.uri.query(), Some("room=1"));
    assert_eq!(header(&sent.headers, "x-portico-consumer"), Some("acme"));

    let offer = format!("portico.bearer.{key}, echo");
    let response = harness.send(upgrade(
        "http://gw.example/live/chat",
        &[("sec-websocket-protocol", &offer)],
    ));
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(
        header(response.headers(), "sec-websocket-protocol"),
        Some("echo")
    );
    let sent = last_upstream(&harness).headers;
    assert_eq!(header(&sent, "sec-websocket-protocol"), Some("echo"));
    assert_eq!(header(&sent, "x-portico-consumer"), Some("acme"));
}

#[test]
fn a_subprotocol_credential_counts_only_where_the_route_reads_them() {
    let harness = harness(json!([
        { "id": "live", "path": "/live/*", "service": "users", "websocket": true,
          "auth": { "api_key": {} } }
    ]));
    harness
        .platform
        .add_origin("127.0.0.1:9101", websocket_origin);
    let (_, key) = harness.store_key(7, "acme", |_| {});
    let offer = format!("portico.bearer.{key}");
    let response = harness.send(upgrade(
        "http://gw.example/live/chat",
        &[("sec-websocket-protocol", &offer)],
    ));
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn an_upgrade_from_a_page_the_cors_policy_does_not_admit_gets_403() {
    let (harness, key) = live_harness();
    let foreign = harness.send(upgrade(
        "http://gw.example/live/chat",
        &[("x-api-key", &key), ("origin", "https://evil.example")],
    ));
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        problem_type(&foreign),
        "urn:portico:problem:origin-not-allowed"
    );
    assert!(harness.platform.sent().is_empty());

    let admitted = harness.send(upgrade(
        "http://gw.example/live/chat",
        &[("x-api-key", &key), ("origin", "https://app.example")],
    ));
    assert_eq!(admitted.status(), StatusCode::SWITCHING_PROTOCOLS);
    // Not from a browser: no Origin to judge.
    let tool = harness.send(upgrade(
        "http://gw.example/live/chat",
        &[("x-api-key", &key)],
    ));
    assert_eq!(tool.status(), StatusCode::SWITCHING_PROTOCOLS);
}

#[test]
fn each_connection_is_one_unit_of_the_routes_rate_limit() {
    let harness = harness(json!([
        { "id": "live", "path": "/live/*", "service": "users", "websocket": true,
          "auth": { "api_key": {} },
          "rate_limit": { "plan": { "name": "connections", "limit": 2, "period": "1m", "scope": ["key"] } } }
    ]));
    harness
        .platform
        .add_origin("127.0.0.1:9101", websocket_origin);
    let (_, key) = harness.store_key(7, "acme", |_| {});
    let statuses: Vec<u16> = (0..3)
        .map(|_| {
            harness
                .send(upgrade(
                    "http://gw.example/live/chat",
                    &[("x-api-key", &key)],
                ))
                .status()
                .as_u16()
        })
        .collect();
    assert_eq!(statuses, [101, 101, 429]);
    assert_eq!(harness.platform.sent().len(), 2);
}

#[test]
fn an_upgrade_on_a_cached_route_bypasses_the_cache() {
    let harness = harness(json!([
        { "id": "live", "path": "/live/*", "service": "users", "websocket": true,
          "cache": { "ttl_seconds": 60 } }
    ]));
    harness
        .platform
        .add_origin("127.0.0.1:9101", websocket_origin);
    for _ in 0..2 {
        let response = harness.send(upgrade("http://gw.example/live/chat", &[]));
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    }
    assert_eq!(
        harness.platform.sent().len(),
        2,
        "no upgrade came from the cache"
    );
    assert!(harness.platform.cache_keys().is_empty());
}

#[test]
fn websocket_routes_that_cannot_work_are_refused_with_their_paths() {
    let config = auth_config(
        json!({}),
        json!([
            { "id": "posts", "path": "/posts/*", "methods": ["POST"], "service": "users",
              "websocket": true },
            { "id": "bare", "path": "/bare/*", "service": "users",
              "websocket": { "subprotocol_credentials": true } },
            { "id": "agg", "path": "/agg/:id", "websocket": true,
              "aggregate": { "legs": [{ "name": "u", "service": "users", "path": "/users/{id}" }] } },
            { "id": "typo", "path": "/typo/*", "service": "users",
              "websocket": { "subprotocol_credential": true } },
            { "id": "zero", "path": "/zero/*", "service": "users", "max_body_bytes": 0 }
        ]),
    );
    let error = Config::from_json(&config).unwrap_err().to_string();
    for path in [
        "routes[0].websocket",
        "routes[1].websocket.subprotocol_credentials",
        "routes[2].websocket",
        "routes[3].websocket",
        "routes[4].max_body_bytes",
    ] {
        assert!(error.contains(path), "{path} not reported in: {error}");
    }
}

// --- Body limits -------------------------------------------------------------

fn limited_harness() -> Harness {
    let mut config: Value = serde_json::from_str(&auth_config(
        json!({}),
        json!([
            { "id": "small", "path": "/small/*", "service": "users", "max_body_bytes": 8 },
            { "id": "default", "path": "/default/*", "service": "users" }
        ]),
    ))
    .unwrap();
    config["settings"] = json!({ "max_body_bytes": 16 });
    Harness::with_config(&config.to_string())
}

fn post(url: &str, body: &'static [u8], declared: bool) -> Request<Body<Bytes>> {
    let length = body.len().to_string();
    let headers: Vec<(&str, &str)> = if declared {
        vec![("content-length", length.as_str())]
    } else {
        vec![("transfer-encoding", "chunked")]
    };
    let mut post = request(Method::POST, url, &headers);
    *post.body_mut() = Body::Stream(Bytes::from_static(body));
    post
}

#[test]
fn a_declared_length_over_the_limit_is_413_before_any_upstream_call() {
    let harness = limited_harness();
    let response = harness.send(post("http://gw.example/small/x", b"123456789", true));
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        problem_type(&response),
        "urn:portico:problem:body-too-large"
    );
    assert!(harness.platform.sent().is_empty());

    let fits = harness.send(post("http://gw.example/small/x", b"12345678", true));
    assert_eq!(fits.status(), StatusCode::OK);
    assert_eq!(&last_upstream(&harness).body[..], b"12345678");
}

#[test]
fn a_streamed_body_over_the_limit_is_abandoned_upstream_and_413_for_the_client() {
    let harness = limited_harness();
    let response = harness.send(post("http://gw.example/small/x", b"123456789", false));
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        problem_type(&response),
        "urn:portico:problem:body-too-large"
    );
    let sent = last_upstream(&harness);
    assert_eq!(
        &sent.body[..],
        b"12345678",
        "nothing past the limit was sent"
    );

    let fits = harness.send(post("http://gw.example/small/y", b"12345678", false));
    assert_eq!(fits.status(), StatusCode::OK);
}

#[test]
fn the_config_wide_limit_applies_where_a_route_sets_none() {
    let harness = limited_harness();
    let over = harness.send(post(
        "http://gw.example/default/x",
        b"0123456789abcdefg",
        true,
    ));
    assert_eq!(over.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let fits = harness.send(post(
        "http://gw.example/default/x",
        b"0123456789abcdef",
        false,
    ));
    assert_eq!(fits.status(), StatusCode::OK);
    // A GET has no body to count.
    assert_eq!(
        harness.get("http://gw.example/default/x").status(),
        StatusCode::OK
    );
}

#[test]
fn a_body_over_the_limit_on_a_balanced_service_is_neither_retried_nor_held_against_a_target() {
    let config = json!({
        "version": 1,
        "services": { "pool": {
            "targets": [{ "url": "http://127.0.0.1:9101" }, { "url": "http://127.0.0.1:9102" }],
            "retry": { "attempts": 3, "non_idempotent": true },
            "health": { "passive": { "consecutive_failures": 1 } }
        } },
        "routes": [{ "id": "small", "path": "/small/*", "service": "pool", "max_body_bytes": 4 }]
    });
    let harness = Harness::with_config(&config.to_string());
    for _ in 0..3 {
        let response = harness.send(post("http://gw.example/small/x", b"12345", false));
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    assert_eq!(harness.platform.sent().len(), 3, "one try per request");
    let fits = harness.send(post("http://gw.example/small/x", b"1234", false));
    assert_eq!(
        fits.status(),
        StatusCode::OK,
        "no target was ejected for it"
    );
}
