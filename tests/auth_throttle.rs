//! Work before authentication is throttled: each client network's budget
//! of failed attempts, rate limits that count before credentials are
//! checked, and negative cache entries that cannot evict valid ones.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use common::{Harness, auth_config, body_json, header, request};
use http::{Method, Response, StatusCode};
use portico::Body;
use portico::gateway::Gateway;
use portico::observe::events::Event;
use serde_json::{Value, json};

const UNKNOWN_KEY: &str = "pk_ffffffffffff_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

fn harness(auth: Value, rate_limit: Option<Value>) -> Harness {
    let mut orders = json!({ "id": "orders", "path": "/orders/*", "service": "users",
                             "auth": { "api_key": {} } });
    if let Some(rate_limit) = rate_limit {
        orders["rate_limit"] = rate_limit;
    }
    Harness::with_config(&auth_config(
        auth,
        json!([orders, { "id": "open", "path": "/open/*", "service": "users" }]),
    ))
}

fn ip(text: &str) -> Option<IpAddr> {
    Some(text.parse().expect("an address"))
}

fn with_key(harness: &Harness, key: &str, from: Option<IpAddr>) -> Response<Body<Bytes>> {
    harness.send_from(
        request(
            Method::GET,
            "http://gw.example/orders/1",
            &[("x-api-key", key)],
        ),
        from,
    )
}

#[test]
fn an_address_out_of_failed_attempts_gets_429_and_costs_no_more_lookups() {
    let harness = harness(
        json!({ "failed_attempts": { "limit": 3, "period": "1m" } }),
        None,
    );
    let (_, good) = harness.store_key(1, "acme", |_| {});
    let attacker = ip("198.51.100.7");
    for attempt in 0..3 {
        assert_eq!(
            with_key(&harness, UNKNOWN_KEY, attacker).status(),
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
    }
    let over = with_key(&harness, UNKNOWN_KEY, attacker);
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(over.headers(), "retry-after"), Some("20"));
    let body = body_json(&over);
    assert_eq!(body["type"], "urn:portico:problem:rate-limited");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("failed authentication attempts"),
        "{body}"
    );
    assert!(harness.platform.events().iter().any(|event| matches!(
        event,
        Event::FailedAuthBlocked { route, network, retry_after_s: 20 }
            if route == "orders" && network == "198.51.100.7"
    )));

    // Blocked: nothing is checked, not even a good key.
    let reads = harness.platform.kv_reads();
    let calls = harness.platform.limiter_calls();
    for _ in 0..50 {
        assert_eq!(
            with_key(&harness, UNKNOWN_KEY, attacker).status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    assert_eq!(
        with_key(&harness, &good, attacker).status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(harness.platform.kv_reads(), reads, "no key lookups");
    assert_eq!(harness.platform.limiter_calls(), calls, "no object calls");

    // Other addresses, and public routes, are untouched.
    assert_eq!(
        with_key(&harness, &good, ip("198.51.100.8")).status(),
        StatusCode::OK
    );
    assert_eq!(
        harness
            .send_from(
                request(Method::GET, "http://gw.example/open/x", &[]),
                attacker
            )
            .status(),
        StatusCode::OK
    );

    // At the retry time one more attempt is checked again.
    harness.platform.advance(Duration::from_secs(20));
    assert_eq!(with_key(&harness, &good, attacker).status(), StatusCode::OK);
}

#[test]
fn the_budget_is_counted_globally_across_isolates() {
    let harness = harness(
        json!({ "failed_attempts": { "limit": 2, "period": "1m" } }),
        None,
    );
    let other = Harness {
        platform: harness.platform.clone(),
        gateway: Gateway::new(),
    };
    let attacker = ip("198.51.100.7");
    assert_eq!(
        with_key(&harness, UNKNOWN_KEY, attacker).status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        with_key(&other, UNKNOWN_KEY, attacker).status(),
        StatusCode::UNAUTHORIZED
    );
    // The third failure, wherever it happens, is over the budget.
    assert_eq!(
        with_key(&harness, UNKNOWN_KEY, attacker).status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // The other isolate learns it on its own next failure.
    assert_eq!(
        with_key(&other, UNKNOWN_KEY, attacker).status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let reads = harness.platform.kv_reads();
    assert_eq!(
        with_key(&other, UNKNOWN_KEY, attacker).status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(harness.platform.kv_reads(), reads);
}

#[test]
fn missing_credentials_are_not_counted() {
    let harness = harness(
        json!({ "failed_attempts": { "limit": 1, "period": "1m" } }),
        None,
    );
    for _ in 0..10 {
        let response = harness.send(request(Method::GET, "http://gw.example/orders/1", &[]));
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(harness.platform.limiter_calls(), 0);
}

#[test]
fn ipv6_clients_share_the_budget_of_their_network() {
    let harness = harness(
        json!({ "failed_attempts": { "limit": 1, "period": "1m" } }),
        None,
    );
    assert_eq!(
        with_key(&harness, UNKNOWN_KEY, ip("2001:db8:1:2::1")).status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        with_key(&harness, UNKNOWN_KEY, ip("2001:db8:1:2:ffff::9")).status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        with_key(&harness, UNKNOWN_KEY, ip("2001:db8:1:3::1")).status(),
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn the_budget_is_on_by_default_and_can_be_turned_off() {
    let default = harness(json!({}), None);
    let statuses: Vec<StatusCode> = (0..31)
        .map(|_| with_key(&default, UNKNOWN_KEY, ip("198.51.100.7")).status())
        .collect();
    assert!(
        statuses[..30]
            .iter()
            .all(|status| *status == StatusCode::UNAUTHORIZED)
    );
    assert_eq!(statuses[30], StatusCode::TOO_MANY_REQUESTS);

    let off = harness(json!({ "failed_attempts": { "enabled": false } }), None);
    for _ in 0..40 {
        assert_eq!(
            with_key(&off, UNKNOWN_KEY, ip("198.51.100.7")).status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(off.platform.limiter_calls(), 0);
}

#[test]
fn an_unknown_client_address_is_never_throttled() {
    let harness = harness(
        json!({ "failed_attempts": { "limit": 1, "period": "1m" } }),
        None,
    );
    for _ in 0..5 {
        assert_eq!(
            with_key(&harness, UNKNOWN_KEY, None).status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(harness.platform.limiter_calls(), 0);
}

#[test]
fn the_budget_fails_open_when_its_object_cannot_answer() {
    let harness = harness(
        json!({ "failed_attempts": { "limit": 1, "period": "1m" } }),
        None,
    );
    harness.platform.fail_limiters(Some("object overloaded"));
    for _ in 0..3 {
        assert_eq!(
            with_key(&harness, UNKNOWN_KEY, ip("198.51.100.7")).status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert!(harness.platform.events().iter().any(|event| matches!(
        event,
        Event::RateLimitUnavailable { error, failed_open: true, .. }
            if error.contains("failed-auth budget")
    )));
}

#[test]
fn policies_before_auth_count_requests_whose_credentials_are_never_checked() {
    let harness = harness(
        json!({ "failed_attempts": { "enabled": false } }),
        Some(json!({ "policies": [
            { "name": "per-ip", "limit": 2, "period": "1m", "scope": ["ip"], "before_auth": true },
            { "name": "per-key", "limit": 100, "period": "1m", "scope": ["key"] }
        ] })),
    );
    let (_, good) = harness.store_key(1, "acme", |_| {});
    let client = ip("198.51.100.7");
    let first = with_key(&harness, &good, client);
    assert_eq!(first.status(), StatusCode::OK);
    // Both policies are reported, the early one first.
    assert_eq!(
        header(first.headers(), "ratelimit-policy"),
        Some("\"per-ip\";q=2;w=60, \"per-key\";q=100;w=60")
    );
    assert_eq!(
        with_key(&harness, UNKNOWN_KEY, client).status(),
        StatusCode::UNAUTHORIZED
    );
    let reads = harness.platform.kv_reads();
    let refused = with_key(&harness, UNKNOWN_KEY, client);
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(refused.headers(), "x-ratelimit-limit"), Some("2"));
    assert_eq!(
        harness.platform.kv_reads(),
        reads,
        "refused before a lookup"
    );
}

#[test]
fn before_auth_policies_may_only_count_what_is_known_before_auth() {
    let config = |rate_limit: Value| {
        auth_config(
            json!({}),
            json!([{ "id": "orders", "path": "/orders/*", "service": "users",
                     "auth": { "api_key": {} }, "rate_limit": rate_limit }]),
        )
    };
    let per_key = portico::config::Config::from_json(&config(json!({ "policies": [
        { "name": "k", "limit": 2, "period": "1m", "scope": ["key"], "before_auth": true }
    ] })))
    .unwrap_err()
    .to_string();
    assert!(
        per_key.contains("routes[0].rate_limit.policies[0].before_auth")
            && per_key.contains("'key'"),
        "{per_key}"
    );
    let plan = portico::config::Config::from_json(&config(json!({
        "plan": { "name": "p", "limit": 2, "period": "1m", "scope": ["ip"], "before_auth": true }
    })))
    .unwrap_err()
    .to_string();
    assert!(plan.contains("rate_limit.plan.before_auth"), "{plan}");
}

#[test]
fn a_flood_of_unknown_keys_does_not_evict_a_valid_one() {
    let harness = harness(
        json!({ "failed_attempts": { "enabled": false },
                "api_keys": { "cache_seconds": 600, "negative_cache_seconds": 600 } }),
        None,
    );
    let (_, good) = harness.store_key(1, "acme", |_| {});
    assert_eq!(with_key(&harness, &good, None).status(), StatusCode::OK);
    for n in 0..10_050u32 {
        let made_up = format!("pk_{n:012x}_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(
            with_key(&harness, &made_up, None).status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let reads = harness.platform.kv_reads();
    assert_eq!(with_key(&harness, &good, None).status(), StatusCode::OK);
    assert_eq!(harness.platform.kv_reads(), reads, "still cached");
}
