//! CORS through the gateway, on the in-memory platform: preflights are
//! answered before authentication, limits and the method check; one
//! allowed origin is echoed, on errors too; the config refuses
//! contradictions with the JSON path of each.

mod common;

use common::{Harness, auth_config, body_json, header, request};
use http::{Method, StatusCode};
use portico::config::Config;
use serde_json::{Value, json};

const APP: &str = "http://localhost:5173";

fn harness(default_cors: Option<Value>, routes: Value) -> Harness {
    let mut config: Value = serde_json::from_str(&auth_config(json!({}), routes)).unwrap();
    if let Some(cors) = default_cors {
        config["cors"] = cors;
    }
    Harness::with_config(&config.to_string())
}

/// A GET-only API-key route with a CORS policy for the app, and a limit
/// of one request per hour per key.
fn orders() -> Harness {
    harness(
        None,
        json!([
            { "id": "orders", "path": "/orders/*", "methods": ["GET"], "service": "users",
              "auth": { "api_key": {} },
              "rate_limit": { "policies": [ { "name": "tight", "limit": 1, "period": "1h", "scope": ["key"] } ] },
              "cors": { "origins": [APP, "https://*.example.com"], "max_age_seconds": 600 } },
            { "id": "open", "path": "/open/*", "service": "users" }
        ]),
    )
}

fn api_key(harness: &Harness) -> String {
    harness.store_key(7, "app", |_| {}).1
}

fn preflight(
    harness: &Harness,
    url: &str,
    origin: &str,
    method: &str,
    headers: &str,
) -> http::Response<portico::Body<bytes::Bytes>> {
    let mut sent = vec![
        ("origin", origin),
        ("access-control-request-method", method),
    ];
    if !headers.is_empty() {
        sent.push(("access-control-request-headers", headers));
    }
    harness.send(request(Method::OPTIONS, url, &sent))
}

#[test]
fn a_preflight_is_answered_before_authentication_limits_and_the_method_check() {
    let harness = orders();
    harness.get("http://gw.example/nowhere"); // loads the config
    let kv_reads = harness.platform.kv_reads();
    let response = preflight(
        &harness,
        "http://gw.example/orders/7",
        APP,
        "GET",
        "x-api-key",
    );
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let headers = response.headers();
    assert_eq!(header(headers, "access-control-allow-origin"), Some(APP));
    assert_eq!(
        header(headers, "access-control-allow-methods"),
        Some("GET, HEAD")
    );
    let allowed = header(headers, "access-control-allow-headers").unwrap();
    assert!(
        allowed.contains("x-api-key") && allowed.contains("content-type"),
        "{allowed}"
    );
    assert_eq!(header(headers, "access-control-max-age"), Some("600"));
    assert!(header(headers, "vary").unwrap().contains("Origin"));
    assert!(!headers.contains_key("access-control-allow-credentials"));
    assert!(headers.contains_key("x-request-id") && headers.contains_key("traceparent"));
    assert!(
        harness.platform.sent().is_empty(),
        "preflights never reach the origin"
    );
    assert_eq!(harness.platform.limiter_calls(), 0);
    assert_eq!(harness.platform.kv_reads(), kv_reads, "no key lookup");
}

#[test]
fn a_preflight_outside_the_policy_is_answered_without_a_grant() {
    let harness = orders();
    for (origin, method, headers) in [
        ("https://evil.example", "GET", ""),
        (APP, "DELETE", ""),
        (APP, "GET", "x-secret-header"),
        ("https://example.com", "GET", ""),
    ] {
        let response = preflight(
            &harness,
            "http://gw.example/orders/7",
            origin,
            method,
            headers,
        );
        assert_eq!(
            response.status(),
            StatusCode::NO_CONTENT,
            "{origin} {method}"
        );
        assert!(
            !response
                .headers()
                .contains_key("access-control-allow-origin"),
            "{origin} {method} {headers}"
        );
    }
    let granted = preflight(
        &harness,
        "http://gw.example/orders/7",
        "https://app.example.com",
        "GET",
        "",
    );
    assert_eq!(
        header(granted.headers(), "access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(harness.platform.sent().is_empty());
}

#[test]
fn an_options_request_on_a_route_without_a_policy_is_an_ordinary_request() {
    let harness = orders();
    let response = preflight(&harness, "http://gw.example/open/1", APP, "GET", "");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(harness.platform.sent().len(), 1);
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

#[test]
fn an_allowed_origin_gets_its_own_origin_back_with_the_exposed_headers() {
    let harness = orders();
    harness.platform.add_origin("127.0.0.1:9101", |_| {
        portico::platform::memory::OriginReply::Respond(
            http::Response::builder()
                .header("access-control-allow-origin", "*")
                .header("vary", "Accept-Encoding")
                .body(bytes::Bytes::from_static(b"{}"))
                .unwrap(),
        )
    });
    let key = api_key(&harness);
    let response = harness.send(request(
        Method::GET,
        "http://gw.example/orders/7",
        &[("origin", APP), ("x-api-key", &key)],
    ));
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert_eq!(
        header(headers, "access-control-allow-origin"),
        Some(APP),
        "the upstream's '*' is replaced"
    );
    assert_eq!(
        headers
            .get_all("access-control-allow-origin")
            .iter()
            .count(),
        1
    );
    let exposed = header(headers, "access-control-expose-headers").unwrap();
    for name in [
        "x-request-id",
        "ratelimit",
        "ratelimit-policy",
        "retry-after",
        "traceparent",
    ] {
        assert!(exposed.contains(name), "{exposed}");
    }
    let vary: Vec<_> = headers.get_all("vary").iter().collect();
    assert_eq!(vary, ["Accept-Encoding", "Origin"]);
}

#[test]
fn error_responses_carry_cors_headers_so_the_browser_can_read_them() {
    let harness = orders();
    let unauthenticated = harness.send(request(
        Method::GET,
        "http://gw.example/orders/7",
        &[("origin", APP)],
    ));
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(unauthenticated.headers(), "access-control-allow-origin"),
        Some(APP)
    );

    let key = api_key(&harness);
    let call = || {
        harness.send(request(
            Method::GET,
            "http://gw.example/orders/7",
            &[("origin", APP), ("x-api-key", &key)],
        ))
    };
    assert_eq!(call().status(), StatusCode::OK);
    let limited = call();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        header(limited.headers(), "access-control-allow-origin"),
        Some(APP)
    );
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(
        body_json(&limited)["type"],
        "urn:portico:problem:rate-limited"
    );
}

#[test]
fn a_refused_origin_gets_no_grant_but_the_response_still_varies_by_origin() {
    let harness = orders();
    let response = harness.send(request(
        Method::GET,
        "http://gw.example/orders/7",
        &[("origin", "https://evil.example")],
    ));
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
    assert_eq!(header(response.headers(), "vary"), Some("Origin"));
}

#[test]
fn the_config_wide_policy_covers_unmatched_requests_and_routes_can_opt_out() {
    let harness = harness(
        Some(json!({ "origins": ["*"] })),
        json!([
            { "id": "users", "path": "/users/*", "service": "users" },
            { "id": "private", "path": "/private/*", "service": "users", "cors": false }
        ]),
    );
    let with_origin = |url: &str| harness.send(request(Method::GET, url, &[("origin", APP)]));
    let routed = with_origin("http://gw.example/users/1");
    assert_eq!(
        header(routed.headers(), "access-control-allow-origin"),
        Some("*")
    );
    let missing = with_origin("http://gw.example/nowhere");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        header(missing.headers(), "access-control-allow-origin"),
        Some("*")
    );
    let private = with_origin("http://gw.example/private/1");
    assert!(
        !private
            .headers()
            .contains_key("access-control-allow-origin")
    );
    assert!(!private.headers().contains_key("vary"));
}

#[test]
fn credentials_echo_the_origin_and_say_so() {
    let harness = harness(
        None,
        json!([{ "id": "users", "path": "/users/*", "service": "users",
                 "cors": { "origins": [APP], "credentials": true } }]),
    );
    let response = harness.send(request(
        Method::GET,
        "http://gw.example/users/1",
        &[("origin", APP)],
    ));
    assert_eq!(
        header(response.headers(), "access-control-allow-origin"),
        Some(APP)
    );
    assert_eq!(
        header(response.headers(), "access-control-allow-credentials"),
        Some("true")
    );
    let answer = preflight(&harness, "http://gw.example/users/1", APP, "PUT", "");
    assert_eq!(
        header(answer.headers(), "access-control-allow-credentials"),
        Some("true")
    );
    let methods = header(answer.headers(), "access-control-allow-methods").unwrap();
    assert!(
        methods.contains("PUT") && methods.contains("DELETE"),
        "{methods}"
    );
}

#[test]
fn a_passed_through_preflight_reaches_the_upstream_without_credentials() {
    let harness = harness(
        None,
        json!([{ "id": "users", "path": "/users/*", "methods": ["GET"], "service": "users",
                 "auth": { "api_key": {} },
                 "cors": { "origins": [APP], "pass_through_preflight": true } }]),
    );
    let response = preflight(&harness, "http://gw.example/users/1", APP, "GET", "");
    assert_eq!(response.status(), StatusCode::OK);
    let sent = harness.platform.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, Method::OPTIONS);
    assert_eq!(body_json(&response)["method"], "OPTIONS");
}

#[test]
fn contradictory_or_unsafe_policies_are_refused_with_their_paths() {
    let config = |cors: Value, route_cors: Value| {
        json!({
            "version": 1,
            "cors": cors,
            "services": { "s": { "url": "http://127.0.0.1:9101" } },
            "routes": [ { "id": "r", "path": "/r/*", "service": "s", "cors": route_cors } ]
        })
        .to_string()
    };
    let cases = [
        (
            json!({ "origins": ["*"], "credentials": true }),
            json!(false),
            "cors.credentials",
        ),
        (
            json!({ "origins": ["null"] }),
            json!(false),
            "cors.origins[0]",
        ),
        (
            json!({ "origins": ["https://*.com"] }),
            json!(false),
            "cors.origins[0]",
        ),
        (json!({ "origins": [] }), json!(false), "cors.origins"),
        (
            json!({ "origins": [APP], "max_age_seconds": 100000 }),
            json!(false),
            "cors.max_age_seconds",
        ),
        (json!({ "origins": [APP] }), json!(true), "routes[0].cors"),
        (
            json!({ "origins": [APP] }),
            json!({ "origins": [APP], "methods": ["get"] }),
            "routes[0].cors.methods",
        ),
        (
            json!({ "origins": [APP] }),
            json!({ "origin": [APP] }),
            "routes[0].cors.origin",
        ),
        (
            json!({ "origins": [APP] }),
            json!({ "origins": ["https://a.example/x"] }),
            "routes[0].cors.origins[0]",
        ),
    ];
    for (cors, route_cors, path) in cases {
        let error = Config::from_json(&config(cors.clone(), route_cors.clone())).unwrap_err();
        assert!(
            error.issues.iter().any(|issue| issue.path == path),
            "{cors} / {route_cors}: expected an issue at {path}, got {error}"
        );
    }
}
