//! What path reaches the upstream: stripped prefixes, templates filled from
//! captured parameters, service base paths, and the query as sent.

mod common;

use common::{Harness, fixture};

/// `config` without its auth and rate limits: these tests are about paths.
fn public(config: &str) -> String {
    let mut config: serde_json::Value = serde_json::from_str(config).unwrap();
    if let Some(object) = config.as_object_mut() {
        object.remove("auth");
    }
    for route in config["routes"].as_array_mut().unwrap() {
        route.as_object_mut().unwrap().remove("auth");
        route.as_object_mut().unwrap().remove("rate_limit");
    }
    config.to_string()
}

fn upstream_url(config: &str, url: &str) -> String {
    let harness = Harness::with_config(&public(config));
    for authority in ["users.internal.example.com", "10.0.0.7:8080", "[::1]:9000"] {
        harness
            .platform
            .add_origin(authority, common::echo_origin("any"));
    }
    harness.get(url);
    harness
        .platform
        .sent()
        .last()
        .map(|r| r.uri.to_string())
        .unwrap_or_default()
}

#[test]
fn full_fixture_rewrites() {
    let config = fixture("config/full.json");
    let cases = [
        // strip_prefix of a leading segment, under the service base path
        // (/api only: stripping /api/users too would let this public route
        // reach /people/42, which user-by-id guards)
        (
            "http://gw.example/api/users/42/orders?x=1",
            "https://users.internal.example.com/v1/users/42/orders?x=1",
        ),
        (
            "http://gw.example/api/users",
            "https://users.internal.example.com/v1/users",
        ),
        // a template filled from a parameter
        (
            "http://gw.example/api/users/42",
            "https://users.internal.example.com/v1/people/42",
        ),
        // a template filled from a named wildcard
        (
            "http://gw.example/api/orders/2024/17?sort=desc",
            "http://10.0.0.7:8080/v2/2024/17?sort=desc",
        ),
        ("http://gw.example/api/orders", "http://10.0.0.7:8080/v2"),
        // strip_prefix through a parameter, with a host condition (and
        // the route's query rule, which sets the tenant from it)
        (
            "http://acme.example.com/t/acme/reports/q3?debug=1",
            "http://[::1]:9000/legacy/reports/q3?tenant=acme",
        ),
        // unchanged path, base path kept
        (
            "http://gw.example/health",
            "http://[::1]:9000/legacy/health",
        ),
    ];
    for (request, expected) in cases {
        assert_eq!(upstream_url(&config, request), expected, "{request}");
    }
}

#[test]
fn captured_values_keep_their_encoding() {
    let config = fixture("config/full.json");
    assert_eq!(
        upstream_url(&config, "http://gw.example/api/users/a%3Bb%20c"),
        "https://users.internal.example.com/v1/people/a%3Bb%20c"
    );
    assert_eq!(
        upstream_url(&config, "http://gw.example/api/users/%7Ejo"),
        "https://users.internal.example.com/v1/people/~jo",
        "escaped unreserved characters are normalised"
    );
}

#[test]
fn the_query_string_is_forwarded_byte_for_byte() {
    let config = fixture("config/basic.json");
    assert_eq!(
        upstream_url(
            &config,
            "http://gw.example/api/orders/1?b=2&a=1&a=%20&flag&=x"
        ),
        "http://127.0.0.1:9102/orders/1?b=2&a=1&a=%20&flag&=x"
    );
}

#[test]
fn encoded_separators_and_servlet_dot_segments_are_refused_unless_the_route_keeps_them() {
    let config = |escaped: Option<&str>| {
        let mut route = serde_json::json!({ "id": "r", "path": "/api/*rest", "service": "s", "rewrite": "/v1/{rest}" });
        if let Some(action) = escaped {
            route["escaped_slashes"] = serde_json::json!(action);
        }
        serde_json::json!({ "version": 1, "log": { "sample_rate": 1 },
            "services": { "s": { "url": "http://127.0.0.1:9101" } }, "routes": [route] })
        .to_string()
    };
    let strict = Harness::with_config(&config(None));
    for path in [
        "/api/a%2F..%2Fadmin",
        "/api/a%2fb",
        "/api/a%5Cb",
        "/api/..;/admin",
        "/api/x/.;/y",
    ] {
        let response = strict.get(&format!("http://gw.example{path}"));
        assert_eq!(response.status(), http::StatusCode::BAD_REQUEST, "{path}");
    }
    assert!(
        strict.platform.sent().is_empty(),
        "nothing reached the service"
    );

    let keeping = Harness::with_config(&config(Some("keep")));
    let response = keeping.get("http://gw.example/api/a%2Fb");
    assert_eq!(response.status(), http::StatusCode::OK);
    assert_eq!(keeping.platform.sent()[0].uri.path(), "/v1/a%2Fb");
    assert_eq!(
        keeping.get("http://gw.example/api/..;/admin").status(),
        http::StatusCode::BAD_REQUEST,
        "'..;' is refused on every route"
    );
}
