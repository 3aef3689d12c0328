//! The whole request pipeline on the in-memory platform: routing through
//! to the upstream and back, upstream failures, request ids, access logs.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Harness, body_bytes, body_json, header, request};
use http::{Method, StatusCode};
use portico::Body;
use portico::observe::events::Event;

#[test]
fn demo_routes_reach_their_services_with_the_forwarded_path() {
    let harness = Harness::basic();

    let response = harness.get("http://gw.example/api/users/42?expand=orders&x=%2F");
    assert_eq!(response.status(), StatusCode::OK);
    let echo = body_json(&response);
    assert_eq!(echo["service"], "users");
    assert_eq!(echo["path"], "/users/42");
    assert_eq!(echo["query"], "expand=orders&x=%2F");

    let response = harness.get("http://gw.example/api/users/42/profile");
    assert_eq!(body_json(&response)["path"], "/profiles/42");

    let response = harness.get("http://gw.example/api/orders/7");
    let echo = body_json(&response);
    assert_eq!(echo["service"], "orders");
    assert_eq!(echo["path"], "/orders/7");
}

#[test]
fn a_get_or_head_body_is_dropped_with_its_length() {
    // Fetch cannot send a body with GET or HEAD; forwarding its length
    // without it would leave the origin waiting for bytes that never come.
    for method in [Method::GET, Method::HEAD] {
        let harness = Harness::basic();
        let mut get = request(
            method.clone(),
            "http://gw.example/api/users/1",
            &[
                ("content-length", "11"),
                ("transfer-encoding", "chunked"),
                ("content-type", "text/plain"),
            ],
        );
        *get.body_mut() = Body::Stream(Bytes::from_static(b"hello world"));
        assert_eq!(harness.send(get).status(), StatusCode::OK, "{method}");
        let sent = harness.platform.sent();
        let upstream = sent.last().unwrap();
        assert!(upstream.body.is_empty(), "{method}: the body went upstream");
        for gone in ["content-length", "transfer-encoding"] {
            assert!(
                !upstream.headers.contains_key(gone),
                "{method}: {gone} went upstream"
            );
        }
    }
}

#[test]
fn a_post_body_keeps_its_length() {
    let harness = Harness::basic();
    let mut post = request(
        Method::POST,
        "http://gw.example/api/orders/new",
        &[("content-length", "13")],
    );
    *post.body_mut() = Body::Stream(Bytes::from_static(br#"{"sku":"abc"}"#));
    harness.send(post);
    let upstream = harness.platform.sent().last().cloned().unwrap();
    assert_eq!(upstream.body.len(), 13);
    assert_eq!(header(&upstream.headers, "content-length"), Some("13"));
}

#[test]
fn method_path_query_and_body_are_forwarded_unchanged() {
    let harness = Harness::basic();
    let mut post = request(
        Method::POST,
        "http://gw.example/api/orders/new?a=1&a=2&empty=",
        &[("content-type", "application/json"), ("x-custom", "kept")],
    );
    *post.body_mut() = Body::Stream(Bytes::from_static(br#"{"sku":"abc"}"#));
    let response = harness.send(post);
    assert_eq!(response.status(), StatusCode::OK);

    let sent = harness.platform.sent();
    let upstream = sent.last().unwrap();
    assert_eq!(upstream.method, Method::POST);
    assert_eq!(
        upstream.uri.to_string(),
        "http://127.0.0.1:9102/orders/new?a=1&a=2&empty="
    );
    assert_eq!(upstream.body, Bytes::from_static(br#"{"sku":"abc"}"#));
    assert_eq!(header(&upstream.headers, "x-custom"), Some("kept"));
    assert_eq!(
        header(&upstream.headers, "content-type"),
        Some("application/json")
    );
}

#[test]
fn a_route_timeout_overrides_the_service_timeout() {
    let harness = Harness::with_config(
        r#"{ "version": 1,
            "services": { "users": { "url": "http://127.0.0.1:9101/base", "timeout_ms": 5000 } },
            "routes": [
              { "id": "slow", "path": "/slow/*", "service": "users", "timeout_ms": 250 },
              { "id": "normal", "path": "/*", "service": "users" }
            ] }"#,
    );
    harness.get("http://gw.example/slow/x");
    harness.get("http://gw.example/other");
    let sent = harness.platform.sent();
    assert_eq!(sent[0].timeout, Duration::from_millis(250));
    assert_eq!(sent[0].uri.path(), "/base/slow/x");
    assert_eq!(sent[1].timeout, Duration::from_millis(5000));
}

#[test]
fn an_upstream_over_its_timeout_gives_504() {
    let harness = Harness::basic();
    let response = harness.get("http://gw.example/api/orders/1?delay_ms=2500");
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    let problem = body_json(&response);
    assert_eq!(problem["type"], "urn:portico:problem:upstream-timeout");
    assert_eq!(
        problem["detail"],
        "The upstream service did not answer within 2000 ms."
    );

    let response = harness.get("http://gw.example/api/orders/1?delay_ms=1999");
    assert_eq!(response.status(), StatusCode::OK);
}

#[test]
fn an_unreachable_upstream_gives_502_without_its_address() {
    let harness = Harness::with_config(
        r#"{ "version": 1,
            "services": { "gone": { "url": "http://10.9.8.7:4321" } },
            "routes": [ { "id": "gone", "path": "/*", "service": "gone" } ] }"#,
    );
    let response = harness.get("http://gw.example/x");
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let text = String::from_utf8(body_bytes(&response).to_vec()).unwrap();
    assert!(text.contains("urn:portico:problem:upstream-unreachable"));
    assert!(
        !text.contains("10.9.8.7") && !text.contains("4321"),
        "{text}"
    );

    let Some(Event::Request(log)) = harness.platform.events().into_iter().last() else {
        panic!("no access log");
    };
    assert_eq!(log.status, 502);
    assert!(
        log.error.unwrap().contains("10.9.8.7:4321"),
        "operators see the address"
    );
}

/// The `Location` the client gets when the service answers a request for
/// `url` with a redirect to `location`.
fn redirected(harness: &Harness, url: &str, location: &str) -> Option<String> {
    let separator = if url.contains('?') { '&' } else { '?' };
    let response = harness.get(&format!("{url}{separator}status=302&location={location}"));
    assert_eq!(response.status(), StatusCode::FOUND);
    header(response.headers(), "location").map(str::to_owned)
}

#[test]
fn absolute_redirects_to_the_service_point_at_the_gateway_instead() {
    let harness = Harness::basic();
    // Route `/api/users/*` strips `/api`; the service is http://127.0.0.1:9101.
    let cases = [
        (
            "http://127.0.0.1:9101/users/2?tab=1",
            "https://api.example.com/api/users/2?tab=1",
        ),
        (
            "HTTP://127.0.0.1:9101/users/3",
            "https://api.example.com/api/users/3",
        ),
        ("http://127.0.0.1:9101", "https://api.example.com/api/"),
        // Elsewhere, or the same host on another port or scheme: not the
        // service's address, so not the gateway's to change.
        ("https://login.example.com/x", "https://login.example.com/x"),
        (
            "http://127.0.0.1:9102/orders/1",
            "http://127.0.0.1:9102/orders/1",
        ),
        (
            "https://127.0.0.1:9101/users/2",
            "https://127.0.0.1:9101/users/2",
        ),
        ("/users/2", "/users/2"),
    ];
    for (location, expected) in cases {
        assert_eq!(
            redirected(&harness, "https://api.example.com/api/users/1", location).as_deref(),
            Some(expected),
            "{location}"
        );
    }
}

#[test]
fn a_redirect_under_the_service_base_path_maps_back_through_the_route() {
    let config = serde_json::json!({
        "version": 1,
        "services": { "users": { "url": "http://127.0.0.1:9101/v1" } },
        "routes": [
            { "id": "tenants", "path": "/t/:tenant/users/*", "service": "users",
              "strip_prefix": "/t/:tenant" },
            { "id": "plain", "path": "/plain/*", "service": "users" },
            { "id": "profile", "path": "/people/:id", "service": "users",
              "rewrite": "/profiles/{id}" }
        ]
    });
    let harness = Harness::with_config(&config.to_string());
    let cases = [
        // The base path becomes the prefix the route stripped, as the
        // client wrote it.
        (
            "http://gw.example/t/acme/users/1",
            "http://127.0.0.1:9101/v1/users/2",
            "http://gw.example/t/acme/users/2",
        ),
        (
            "http://gw.example/plain/a",
            "http://127.0.0.1:9101/v1/plain/b",
            "http://gw.example/plain/b",
        ),
        // A rewrite cannot be reversed: only the base path goes.
        (
            "http://gw.example/people/7",
            "http://127.0.0.1:9101/v1/profiles/8",
            "http://gw.example/profiles/8",
        ),
        // Outside the base path: the address goes, the path stays.
        (
            "http://gw.example/plain/a",
            "http://127.0.0.1:9101/v2/x",
            "http://gw.example/v2/x",
        ),
    ];
    for (url, location, expected) in cases {
        assert_eq!(
            redirected(&harness, url, location).as_deref(),
            Some(expected),
            "{url} -> {location}"
        );
    }
}

#[test]
fn upstream_errors_and_redirects_pass_through_untouched() {
    let harness = Harness::basic();
    let response = harness.get("http://gw.example/api/users/1?status=503");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        header(response.headers(), "content-type"),
        Some("application/json")
    );

    let response = harness.get("http://gw.example/api/users/1?status=302&location=/elsewhere");
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(header(response.headers(), "location"), Some("/elsewhere"));
    assert_eq!(
        harness.platform.sent().len(),
        2,
        "the redirect was not followed"
    );
}

#[test]
fn a_well_formed_request_id_is_kept_end_to_end_and_others_replaced() {
    let harness = Harness::basic();
    let response = harness.send(request(
        Method::GET,
        "http://gw.example/api/users/1",
        &[("x-request-id", "trace-abc.123")],
    ));
    assert_eq!(
        header(response.headers(), "x-request-id"),
        Some("trace-abc.123")
    );
    let echo = body_json(&response);
    assert_eq!(echo["headers"]["x-request-id"], "trace-abc.123");

    let response = harness.send(request(
        Method::GET,
        "http://gw.example/api/users/1",
        &[("x-request-id", "bad id with spaces")],
    ));
    let id = header(response.headers(), "x-request-id")
        .unwrap()
        .to_owned();
    assert!(id.starts_with("req-"), "{id}");
    assert_eq!(body_json(&response)["headers"]["x-request-id"], id.as_str());
}

#[test]
fn every_request_is_logged_once_without_its_query() {
    let harness = Harness::basic();
    harness.get("http://gw.example/api/users/1?api_key=secret");
    harness.get("http://gw.example/nope");
    let logs: Vec<_> = harness
        .platform
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Request(log) => Some(log),
            _ => None,
        })
        .collect();
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0].path, "/api/users/1");
    assert_eq!(logs[0].route.as_deref(), Some("users"));
    assert_eq!(logs[0].upstream_status, Some(200));
    assert_eq!(logs[1].status, 404);
    assert_eq!(logs[1].problem, Some("route-not-found"));
    let line = Event::Request(logs[0].clone()).to_json_line();
    assert!(!line.contains("secret"), "{line}");
}

#[test]
fn head_requests_get_no_body_even_for_problems() {
    let harness = Harness::basic();
    let response = harness.send(request(Method::HEAD, "http://gw.example/nope", &[]));
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.body().is_empty());
    assert_eq!(
        header(response.headers(), "content-type"),
        Some("application/problem+json")
    );
}

#[test]
fn malformed_paths_get_400() {
    let harness = Harness::basic();
    for path in ["/api/users/%zz", "/api/users/%2e%2e/admin"] {
        let response = harness.get(&format!("http://gw.example{path}"));
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(
            body_json(&response)["type"],
            "urn:portico:problem:bad-request"
        );
    }
    assert!(harness.platform.sent().is_empty());
}
