//! Config documents are checked once, at load: good fixtures load, and each
//! bad one is refused with the JSON path of the offending field and the
//! reason.

mod common;

use std::time::Duration;

use common::fixture;
use portico::config::Config;

#[test]
fn the_example_configs_are_safe_to_copy() {
    for name in ["demo", "full", "basic"] {
        let config = Config::from_json(&fixture(&format!("config/{name}.json"))).expect(name);
        let warnings = portico::config::audit::audit(&config);
        assert!(warnings.is_empty(), "{name}: {warnings:?}");
    }
}

#[test]
fn basic_demo_and_full_fixtures_are_valid() {
    let basic = Config::from_json(&fixture("config/basic.json")).expect("basic config");
    assert_eq!(basic.routes.len(), 3);
    assert!(basic.routes.iter().all(|r| r.auth.is_none()));

    let demo = Config::from_json(&fixture("config/demo.json")).expect("demo config");
    assert_eq!(demo.services.len(), 5);
    let live = demo.routes.iter().find(|r| r.id == "live").unwrap();
    assert!(live.websocket.is_some_and(|ws| ws.subprotocol_credentials));
    assert_eq!(demo.settings.max_body_bytes, Some(10 * 1024 * 1024));
    assert_eq!(demo.auth.issuers.len(), 1);
    assert_eq!(
        demo.auth.signing_secret.as_deref(),
        Some("PORTICO_IDENTITY_SECRET")
    );
    assert!(
        demo.routes
            .iter()
            .all(|r| r.auth.is_some() || (r.id == "catalog" && r.cache.is_some())),
        "every demo route is protected but the public, cached catalog"
    );

    let balanced = Config::from_json(&fixture("config/balanced.json")).expect("balanced config");
    assert_eq!(balanced.services.len(), 6);

    let full = Config::from_json(&fixture("config/full.json")).expect("full config");
    assert_eq!(full.settings.refresh, Duration::from_secs(30));
    assert_eq!(full.settings.request_id_header.as_str(), "x-correlation-id");
    let legacy = full.service("legacy").unwrap();
    let portico::upstream::Upstream::Single(origin) = &legacy.upstream else {
        panic!("one url makes a single upstream")
    };
    assert_eq!(origin.base_path, "/legacy");
    let orders = full.service("orders").unwrap();
    assert_eq!(orders.timeout, Duration::from_secs(30), "default timeout");
    let by_id = full.routes.iter().find(|r| r.id == "user-by-id").unwrap();
    assert_eq!(
        by_id.timeout,
        Duration::from_millis(1500),
        "route timeout wins"
    );
    let users = full.routes.iter().find(|r| r.id == "users").unwrap();
    assert_eq!(
        users.timeout,
        Duration::from_millis(4000),
        "service timeout inherited"
    );
}

/// (fixture, JSON path of the first issue, words its reason must contain)
const INVALID: &[(&str, &str, &str)] = &[
    (
        "balance-zero-weight",
        "services.orders.targets[1].weight",
        "weights must be positive",
    ),
    (
        "balance-target-credentials",
        "services.orders.targets[0].url",
        "credentials in the URL are not allowed",
    ),
    (
        "balance-url-and-targets",
        "services.orders",
        "either 'url' or 'targets', not both",
    ),
    (
        "balance-hash-unknown-param",
        "routes[0].path",
        "hashes on the path parameter 'tenant', which '/orders/:id' does not capture",
    ),
    (
        "balance-bad-continent",
        "services.orders.targets[0].continent",
        "'Europe' is not a continent code",
    ),
    (
        "retry-bad-attempts",
        "services.orders.retry.attempts",
        "1 to 10, got 0",
    ),
    (
        "retry-timeout-without-per-try",
        "services.orders.retry.on",
        "needs 'per_try_timeout_ms'",
    ),
    (
        "health-bad-path",
        "services.orders.health.active.path",
        "'health' is not a path",
    ),
    ("not-json", "routes", "EOF while parsing a list"),
    (
        "unsupported-version",
        "version",
        "version 2 is not supported",
    ),
    ("missing-routes", "(document)", "missing field `routes`"),
    ("unknown-field", "routes[0].paht", "unknown field `paht`"),
    (
        "wrong-type",
        "services.s.timeout_ms",
        "invalid type: string \"fast\"",
    ),
    (
        "bad-path-pattern",
        "routes[0].path",
        "'*' is only allowed as the whole last segment",
    ),
    (
        "duplicate-route-id",
        "routes[1].id",
        "'a' is already the id of an earlier route",
    ),
    (
        "unknown-service",
        "routes[0].service",
        "no service named 'nope'",
    ),
    (
        "bad-service-url",
        "services.users.url",
        "must start with http:// or https://",
    ),
    (
        "service-url-with-query",
        "services.users.url",
        "no query string",
    ),
    ("tie", "routes[1]", "ties with route 'first' (routes[0])"),
    (
        "strip-and-rewrite",
        "routes[0]",
        "'strip_prefix' and 'rewrite' cannot both be set",
    ),
    (
        "bad-rewrite-param",
        "routes[0].rewrite",
        "'{user}' is not a parameter",
    ),
    (
        "strip-prefix-not-a-prefix",
        "routes[0].strip_prefix",
        "not a leading part",
    ),
    (
        "bad-timeout",
        "routes[0].timeout_ms",
        "between 1 and 600000",
    ),
    (
        "lowercase-method",
        "routes[0].methods",
        "must be upper-case",
    ),
    ("bad-host", "routes[0].hosts[0]", "without a port"),
    (
        "bad-refresh",
        "settings.config_refresh_seconds",
        "between 1 and 3600",
    ),
    (
        "bad-request-id-header",
        "settings.request_id_header",
        "manages itself",
    ),
    (
        "auth-unknown-issuer",
        "routes[0].auth.jwt[0]",
        "no usable auth.jwt entry named 'nope'",
    ),
    (
        "auth-weak-rsa-key",
        "auth.jwt.test.keys[0]",
        "at least 2048 bits",
    ),
    (
        "auth-private-key",
        "auth.jwt.test.keys[0]",
        "configure the public key only",
    ),
    (
        "auth-bad-algorithm",
        "auth.jwt.test.algorithms[1]",
        "'none' is not one of",
    ),
    ("auth-no-audiences", "auth.jwt.test.audiences", "or \"any\""),
    (
        "auth-keys-and-jwks",
        "auth.jwt.test",
        "either 'keys' or 'jwks_url'",
    ),
    (
        "auth-empty-route-policy",
        "routes[0].auth",
        "accept at least one of",
    ),
    (
        "auth-requirement-both",
        "routes[0].auth.roles",
        "exactly one of 'all_of' or 'any_of'",
    ),
    (
        "auth-secret-value",
        "auth.introspection.corp.client_secret",
        "give the name of the secret",
    ),
    (
        "ratelimit-key-scope-without-auth",
        "routes[0].rate_limit.policies[0].scope[0]",
        "no 'auth' policy",
    ),
    (
        "ratelimit-cost-over-capacity",
        "routes[0].rate_limit.policies[0].cost",
        "could never pass",
    ),
    (
        "ratelimit-bad-period",
        "routes[0].rate_limit.policies[0].period",
        "the unit must be",
    ),
    (
        "ratelimit-burst-on-window",
        "routes[0].rate_limit.policies[0].burst",
        "token_bucket and gcra only",
    ),
    (
        "ratelimit-unknown-algorithm",
        "routes[0].rate_limit.policies[0].algorithm",
        "unknown variant `magic`",
    ),
    (
        "ratelimit-duplicate-names",
        "routes[0].rate_limit",
        "unique within a route",
    ),
    (
        "cors-credentials-any-origin",
        "routes[0].cors.credentials",
        "credentials cannot be allowed for every origin",
    ),
    (
        "cors-bad-origin",
        "cors.origins[0]",
        "scheme, host and port only",
    ),
    ("log-bad-sample-rate", "log.sample_rate", "between 0 and 1"),
    (
        "transform-two-operations",
        "routes[0].transform.request.headers[0]",
        "exactly one of 'set', 'add', 'append', 'remove' or 'rename'",
    ),
    (
        "transform-xml-without-root",
        "routes[0].transform.xml.root",
        "name the root element",
    ),
    (
        "transform-unknown-param",
        "routes[0].transform.request.headers[0].value",
        "is not a parameter of the route's path pattern",
    ),
    (
        "transform-bad-json-rule",
        "routes[0].transform.response.body[0]",
        "exactly one of 'allow', 'deny', 'rename', 'wrap' or 'take'",
    ),
];

#[test]
fn each_invalid_fixture_names_the_field_and_reason() {
    for (name, path, reason) in INVALID {
        let text = fixture(&format!("config/invalid/{name}.json"));
        let error = Config::from_json(&text).expect_err(name);
        let first = &error.issues[0];
        assert_eq!(first.path, *path, "{name}: {error}");
        assert!(
            first.reason.contains(reason),
            "{name}: {:?} lacks {reason:?}",
            first.reason
        );
    }
}

#[test]
fn every_invalid_fixture_is_covered() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/config/invalid");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".json")
                .to_owned()
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = INVALID.iter().map(|(n, _, _)| (*n).to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn all_issues_are_reported_at_once() {
    let text = r#"{ "version": 1,
        "services": { "s": { "url": "gopher://x" } },
        "routes": [
          { "id": "bad id!", "path": "nope", "service": "s", "methods": [] },
          { "id": "ok", "path": "/ok", "service": "missing", "hosts": [] }
        ] }"#;
    let error = Config::from_json(text).unwrap_err();
    let paths: Vec<&str> = error.issues.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "services.s.url",
            "routes[0].id",
            "routes[0].path",
            "routes[0].methods",
            "routes[0].service",
            "routes[1].hosts",
            "routes[1].service",
        ]
    );
    assert!(
        error.issues[4]
            .reason
            .contains("not usable (see services.s)")
    );
}

#[test]
fn routes_differing_only_by_disjoint_methods_or_hosts_do_not_tie() {
    let text = r#"{ "version": 1,
        "services": { "s": { "url": "http://127.0.0.1:1" } },
        "routes": [
          { "id": "read", "path": "/users/:id", "methods": ["GET"], "service": "s" },
          { "id": "write", "path": "/users/:user", "methods": ["PUT"], "service": "s" },
          { "id": "any", "path": "/users/:u", "service": "s" },
          { "id": "other-host", "path": "/users/:u", "hosts": ["a.example.com"], "service": "s" }
        ] }"#;
    Config::from_json(text).expect("no ties");
}

#[test]
fn two_any_method_routes_on_the_same_pattern_and_host_tie() {
    let text = r#"{ "version": 1,
        "services": { "s": { "url": "http://127.0.0.1:1" } },
        "routes": [
          { "id": "a", "path": "/x/*", "hosts": ["*.example.com"], "service": "s" },
          { "id": "b", "path": "/x/*", "hosts": ["*.EXAMPLE.com"], "service": "s" }
        ] }"#;
    let error = Config::from_json(text).unwrap_err();
    assert_eq!(error.issues.len(), 1, "{error}");
    assert_eq!(error.issues[0].path, "routes[1]");
    assert!(
        error.issues[0].reason.contains("host '*.example.com'"),
        "{error}"
    );
}

#[test]
fn header_names_the_gateway_owns_may_not_contain_underscores() {
    let text = serde_json::json!({
        "version": 1,
        "settings": { "request_id_header": "X_Request_Id" },
        "auth": { "identity_header_prefix": "X_Gateway_" },
        "services": { "s": { "url": "http://10.0.0.1" } },
        "routes": [
            { "id": "r", "path": "/r", "service": "s",
              "auth": { "api_key": { "header": "X_Api_Key" } } }
        ]
    })
    .to_string();
    let error = Config::from_json(&text).expect_err("underscores refused");
    let paths: Vec<&str> = error.issues.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "settings.request_id_header",
            "auth.identity_header_prefix",
            "routes[0].auth.api_key.header"
        ],
        "{error}"
    );
    assert!(
        error.issues.iter().all(|i| i.reason.contains("'_'")),
        "{error}"
    );
}

#[test]
fn stripped_request_headers_must_be_header_names_the_gateway_does_not_set() {
    let text = serde_json::json!({
        "version": 1,
        "settings": { "strip_request_headers": [
            "X-Debug", "not a header", "x-debug", "traceparent", "X-Request-Id", "Connection"
        ] },
        "services": {},
        "routes": []
    })
    .to_string();
    let error = Config::from_json(&text).expect_err("refused");
    let paths: Vec<&str> = error.issues.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "settings.strip_request_headers[1]",
            "settings.strip_request_headers[2]",
            "settings.strip_request_headers[3]",
            "settings.strip_request_headers[4]",
            "settings.strip_request_headers[5]",
        ],
        "{error}"
    );
    let empty = r#"{ "version": 1, "settings": { "strip_request_headers": [] }, "services": {}, "routes": [] }"#;
    assert!(
        Config::from_json(empty)
            .unwrap()
            .settings
            .strip_request_headers
            .is_empty()
    );
}

#[test]
fn an_issuer_names_its_audiences_or_says_any() {
    let config = |audiences: serde_json::Value| {
        serde_json::json!({
            "version": 1,
            "auth": { "jwt": { "t": {
                "issuer": "https://issuer.test", "audiences": audiences,
                "algorithms": ["HS256"],
                "keys": [{ "kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA" }]
            } } },
            "services": {},
            "routes": []
        })
        .to_string()
    };
    for bad in [
        serde_json::json!([]),
        serde_json::json!("api"),
        serde_json::json!([""]),
        serde_json::json!(["api", 7]),
        serde_json::json!(null),
    ] {
        let error = Config::from_json(&config(bad.clone())).expect_err("refused");
        assert!(
            error.issues[0].path.starts_with("auth.jwt.t.audiences"),
            "{bad}: {error}"
        );
    }
    for good in [serde_json::json!("any"), serde_json::json!(["api", "web"])] {
        Config::from_json(&config(good.clone())).unwrap_or_else(|e| panic!("{good}: {e}"));
    }
}

#[test]
fn an_issuer_typ_must_be_a_media_type() {
    let text = serde_json::json!({
        "version": 1,
        "auth": { "jwt": { "t": {
            "issuer": "https://issuer.test", "audiences": "any", "typ": "at jwt",
            "algorithms": ["HS256"],
            "keys": [{ "kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA" }]
        } } },
        "services": {},
        "routes": []
    })
    .to_string();
    let error = Config::from_json(&text).expect_err("refused");
    assert_eq!(error.issues[0].path, "auth.jwt.t.typ", "{error}");
}

#[test]
fn an_ipv6_prefix_needs_an_ip_scope_and_a_prefix_length() {
    let text = serde_json::json!({
        "version": 1,
        "services": { "s": { "url": "http://10.0.0.1" } },
        "routes": [ { "id": "r", "path": "/r", "service": "s", "rate_limit": { "policies": [
            { "name": "a", "limit": 1, "period": "1s", "scope": ["route"], "ipv6_prefix": 64 },
            { "name": "b", "limit": 1, "period": "1s", "scope": ["ip"], "ipv6_prefix": 129 },
            { "name": "c", "limit": 1, "period": "1s", "scope": ["ip"], "ipv6_prefix": 56 }
        ] } } ]
    })
    .to_string();
    let error = Config::from_json(&text).expect_err("refused");
    let paths: Vec<&str> = error.issues.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "routes[0].rate_limit.policies[0].ipv6_prefix",
            "routes[0].rate_limit.policies[1].ipv6_prefix"
        ],
        "{error}"
    );
}

fn service_config(service: serde_json::Value, routes: serde_json::Value) -> String {
    serde_json::json!({ "version": 1, "services": { "orders": service }, "routes": routes })
        .to_string()
}

fn issues(text: &str) -> Vec<String> {
    Config::from_json(text).unwrap_err().lines()
}

#[test]
fn a_url_alone_stays_a_single_upstream_and_anything_balanced_makes_it_balanced() {
    use portico::upstream::Upstream;
    let route = serde_json::json!([{ "id": "o", "path": "/o/*", "service": "orders" }]);
    let single = Config::from_json(&service_config(
        serde_json::json!({ "url": "http://10.0.0.1" }),
        route.clone(),
    ))
    .unwrap();
    assert!(matches!(single.services[0].upstream, Upstream::Single(_)));
    assert!(single.routes[0].retry.is_none());
    for service in [
        serde_json::json!({ "url": "http://10.0.0.1", "retry": {} }),
        serde_json::json!({ "url": "http://10.0.0.1", "health": { "passive": {} } }),
        serde_json::json!({ "targets": [{ "url": "http://10.0.0.1" }] }),
    ] {
        let config = Config::from_json(&service_config(service, route.clone())).unwrap();
        assert!(matches!(config.services[0].upstream, Upstream::Balanced(_)));
    }
    // A route's own retry policy makes its service balanced too.
    let retried = Config::from_json(&service_config(
        serde_json::json!({ "url": "http://10.0.0.1" }),
        serde_json::json!([{ "id": "o", "path": "/o/*", "service": "orders",
                             "retry": { "attempts": 2 } }]),
    ))
    .unwrap();
    assert!(matches!(
        retried.services[0].upstream,
        Upstream::Balanced(_)
    ));
    assert_eq!(retried.routes[0].retry.as_ref().unwrap().attempts, 2);
}

#[test]
fn a_routes_retry_policy_replaces_the_services() {
    let config = Config::from_json(&service_config(
        serde_json::json!({ "targets": [{ "url": "http://10.0.0.1" }], "retry": { "attempts": 4 } }),
        serde_json::json!([
            { "id": "a", "path": "/a/*", "service": "orders" },
            { "id": "b", "path": "/b/*", "service": "orders", "retry": { "attempts": 2 } }
        ]),
    ))
    .unwrap();
    assert_eq!(config.routes[0].retry.as_ref().unwrap().attempts, 4);
    assert_eq!(config.routes[1].retry.as_ref().unwrap().attempts, 2);
}

#[test]
fn a_hash_key_must_name_something_every_route_to_the_service_has() {
    let consumer = issues(&service_config(
        serde_json::json!({ "targets": [{ "url": "http://10.0.0.1" }],
                            "algorithm": "consistent_hash", "hash_on": "consumer" }),
        serde_json::json!([{ "id": "o", "path": "/o/*", "service": "orders" }]),
    ));
    assert!(
        consumer[0].starts_with("routes[0].service: service 'orders' hashes on the consumer"),
        "{consumer:?}"
    );
    let tail = Config::from_json(&service_config(
        serde_json::json!({ "targets": [{ "url": "http://10.0.0.1" }],
                            "algorithm": "consistent_hash", "hash_on": { "param": "rest" } }),
        serde_json::json!([{ "id": "o", "path": "/o/*rest", "service": "orders" }]),
    ));
    assert!(tail.is_ok(), "a named wildcard is a parameter too");
    let header = issues(&service_config(
        serde_json::json!({ "targets": [{ "url": "http://10.0.0.1" }],
                            "algorithm": "consistent_hash", "hash_on": { "header": "bad header" } }),
        serde_json::json!([]),
    ));
    assert_eq!(
        header,
        ["services.orders.hash_on.header: 'bad header' is not a valid header name"]
    );
    let missing = issues(&service_config(
        serde_json::json!({ "targets": [{ "url": "http://10.0.0.1" }], "algorithm": "consistent_hash" }),
        serde_json::json!([]),
    ));
    assert!(missing[0].starts_with("services.orders.hash_on: consistent_hash needs"));
    let stray = issues(&service_config(
        serde_json::json!({ "targets": [{ "url": "http://10.0.0.1" }], "hash_on": "ip" }),
        serde_json::json!([]),
    ));
    assert!(stray[0].starts_with("services.orders.hash_on: only a consistent_hash service"));
}

#[test]
fn every_balancing_mistake_is_reported_at_its_path_at_once() {
    let found = issues(&service_config(
        serde_json::json!({
            "targets": [
                { "url": "ftp://10.0.0.1" },
                { "url": "http://10.0.0.2", "weight": 1001, "country": "Germany" },
                { "url": "http://10.0.0.2" }
            ],
            "retry": { "statuses": [200], "backoff": { "base_ms": 100, "max_ms": 50 },
                       "budget": { "ratio": 1.5 }, "max_body_bytes": 100000000 },
            "health": { "passive": { "max_ejected_percent": 0, "consecutive_failures": 0 },
                        "active": { "path": "/h", "timeout_ms": 0, "unhealthy_threshold": 0 } }
        }),
        serde_json::json!([]),
    ));
    let paths: Vec<&str> = found
        .iter()
        .map(|line| line.split(": ").next().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "services.orders.targets[0].url",
            "services.orders.targets[1].weight",
            "services.orders.targets[1].country",
            "services.orders.targets[2].url",
            "services.orders.retry.statuses[0]",
            "services.orders.retry.backoff.max_ms",
            "services.orders.retry.max_body_bytes",
            "services.orders.retry.budget.ratio",
            "services.orders.health.passive.consecutive_failures",
            "services.orders.health.passive.max_ejected_percent",
            "services.orders.health.active.timeout_ms",
            "services.orders.health.active.unhealthy_threshold",
        ],
        "{found:#?}"
    );
    assert!(found[3].contains("is listed twice"));
}
