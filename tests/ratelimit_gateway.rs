//! Rate limiting through the gateway, on the in-memory platform: 429s and
//! their headers, per-key buckets and plans, several policies, the local
//! deny cache, and what happens when the store fails.

mod common;

use std::time::Duration;

use common::{Harness, auth_config, body_json, header, request};
use http::{Method, StatusCode};
use portico::auth::RatePlan;
use portico::auth::api_key::{self};
use portico::observe::events::Event;
use serde_json::{Value, json};

fn harness(rate_limit: Value) -> Harness {
    Harness::with_config(&auth_config(
        json!({}),
        json!([
            { "id": "orders", "path": "/orders/*", "service": "users",
              "auth": { "api_key": {} }, "rate_limit": rate_limit },
            { "id": "public", "path": "/public/*", "service": "users",
              "rate_limit": { "policies": [ { "name": "per-ip", "limit": 2, "period": "1m", "scope": ["ip"] } ] } }
        ]),
    ))
}

fn key(harness: &Harness, seed: u8, rate: Option<RatePlan>) -> String {
    harness
        .store_key(seed, &format!("consumer-{seed}"), |record| {
            record.rate = rate
        })
        .1
}

fn call(harness: &Harness, key: &str) -> http::Response<portico::Body<bytes::Bytes>> {
    harness.send(request(
        Method::GET,
        "http://gw.example/orders/1",
        &[("x-api-key", key)],
    ))
}

fn per_minute(limit: u64) -> Value {
    json!({ "plan": { "name": "plan", "limit": limit, "period": "1m", "scope": ["key"] } })
}

#[test]
fn the_request_over_the_limit_gets_429_with_retry_after_and_headers() {
    let harness = harness(per_minute(3));
    let k = key(&harness, 1, None);
    for remaining in ["2", "1", "0"] {
        let response = call(&harness, &k);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(response.headers(), "x-ratelimit-limit"), Some("3"));
        assert_eq!(
            header(response.headers(), "x-ratelimit-remaining"),
            Some(remaining)
        );
    }
    let response = call(&harness, &k);
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        header(response.headers(), "retry-after"),
        Some("20"),
        "one token per 20 s"
    );
    assert_eq!(
        header(response.headers(), "x-ratelimit-remaining"),
        Some("0")
    );
    assert_eq!(header(response.headers(), "x-ratelimit-reset"), Some("60"));
    assert_eq!(
        header(response.headers(), "ratelimit-policy"),
        Some("\"plan\";q=3;w=60")
    );
    assert_eq!(
        header(response.headers(), "ratelimit"),
        Some("\"plan\";r=0;t=60")
    );
    let problem = body_json(&response);
    assert_eq!(problem["type"], "urn:portico:problem:rate-limited");
    assert_eq!(problem["status"], 429);

    harness.platform.advance(Duration::from_secs(20));
    assert_eq!(
        call(&harness, &k).status(),
        StatusCode::OK,
        "a token is back after Retry-After"
    );
}

#[test]
fn different_keys_have_different_buckets() {
    let harness = harness(per_minute(1));
    let (a, b) = (key(&harness, 1, None), key(&harness, 2, None));
    assert_eq!(call(&harness, &a).status(), StatusCode::OK);
    assert_eq!(call(&harness, &a).status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(call(&harness, &b).status(), StatusCode::OK);
    assert_eq!(harness.platform.object_names().len(), 2);
}

#[test]
fn object_names_never_contain_the_key_or_address() {
    let harness = harness(per_minute(5));
    let k = key(&harness, 9, None);
    call(&harness, &k);
    harness.get("http://gw.example/public/x");
    for name in harness.platform.object_names() {
        assert_eq!(name.len(), 64, "a SHA-256 in hex: {name}");
        assert!(name.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!name.contains(api_key::key_id(&k).unwrap()));
    }
}

#[test]
fn a_keys_own_rate_plan_overrides_the_route_plan() {
    let harness = harness(per_minute(1));
    let generous = key(
        &harness,
        3,
        Some(RatePlan {
            limit: 3,
            period_seconds: 60,
        }),
    );
    for _ in 0..3 {
        assert_eq!(call(&harness, &generous).status(), StatusCode::OK);
    }
    let response = call(&harness, &generous);
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(response.headers(), "x-ratelimit-limit"), Some("3"));
}

#[test]
fn a_key_plan_that_would_lift_the_limit_is_refused_and_the_route_plan_applies() {
    const DAY: u64 = 86_400;
    for (seed, algorithm, limit, period_seconds) in [
        (10, "token_bucket", 0, 60),
        (11, "token_bucket", 100, 0),
        (12, "fixed_window", 0, 0),
        (13, "token_bucket", u64::MAX, 60),
        (14, "gcra", 5, 32 * DAY),
        (15, "sliding_log", 1_000_000, 60),
    ] {
        let harness = harness(json!({ "plan": {
            "name": "plan", "algorithm": algorithm, "limit": 3, "period": "1m", "scope": ["key"]
        } }));
        let k = key(
            &harness,
            seed,
            Some(RatePlan {
                limit,
                period_seconds,
            }),
        );
        let case = format!("{algorithm} {limit}/{period_seconds}s");
        for _ in 0..3 {
            let response = call(&harness, &k);
            assert_eq!(response.status(), StatusCode::OK, "{case}");
            assert_eq!(
                header(response.headers(), "ratelimit-policy"),
                Some("\"plan\";q=3;w=60"),
                "{case}: the route's plan applies"
            );
        }
        assert_eq!(
            call(&harness, &k).status(),
            StatusCode::TOO_MANY_REQUESTS,
            "{case}: never a free pass"
        );
        let refusals = harness
            .platform
            .events()
            .into_iter()
            .filter(|e| matches!(e, Event::RatePlanRefused { route, .. } if route == "orders"))
            .count();
        assert!(refusals >= 1, "{case}: the refusal is logged");
    }
}

#[test]
fn every_policy_must_pass_and_headers_name_each() {
    let harness = harness(json!({
        "plan": { "name": "burst", "limit": 2, "period": "1s", "scope": ["key"] },
        "policies": [ { "name": "daily", "algorithm": "fixed_window", "limit": 3, "period": "1d", "scope": ["key"] } ]
    }));
    let k = key(&harness, 4, None);
    let first = call(&harness, &k);
    assert_eq!(
        header(first.headers(), "ratelimit-policy"),
        Some("\"burst\";q=2;w=1, \"daily\";q=3;w=86400")
    );
    assert_eq!(
        header(first.headers(), "ratelimit"),
        Some("\"burst\";r=1;t=1, \"daily\";r=2;t=86400")
    );
    assert_eq!(call(&harness, &k).status(), StatusCode::OK);
    assert_eq!(
        call(&harness, &k).status(),
        StatusCode::TOO_MANY_REQUESTS,
        "burst"
    );
    harness.platform.advance(Duration::from_secs(1));
    assert_eq!(
        call(&harness, &k).status(),
        StatusCode::OK,
        "the refused one did not count against daily"
    );
    harness.platform.advance(Duration::from_secs(1));
    let response = call(&harness, &k);
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "daily");
    assert_eq!(header(response.headers(), "x-ratelimit-limit"), Some("3"));
    let retry: u64 = header(response.headers(), "retry-after")
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 80_000, "until the day's window ends: {retry}");
}

#[test]
fn cost_is_configurable() {
    let harness = harness(
        json!({ "plan": { "name": "units", "limit": 10, "period": "1m", "scope": ["key"], "cost": 4 } }),
    );
    let k = key(&harness, 5, None);
    assert_eq!(call(&harness, &k).status(), StatusCode::OK);
    assert_eq!(call(&harness, &k).status(), StatusCode::OK);
    let response = call(&harness, &k);
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        header(response.headers(), "x-ratelimit-remaining"),
        Some("2")
    );
}

#[test]
fn a_refused_key_costs_no_store_call_until_its_retry_time() {
    let harness = harness(per_minute(1));
    let k = key(&harness, 6, None);
    call(&harness, &k);
    assert_eq!(call(&harness, &k).status(), StatusCode::TOO_MANY_REQUESTS);
    let calls = harness.platform.limiter_calls();
    for _ in 0..100 {
        let response = call(&harness, &k);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    assert_eq!(
        harness.platform.limiter_calls(),
        calls,
        "answered from the deny cache"
    );
    harness.platform.advance(Duration::from_secs(30));
    let response = call(&harness, &k);
    assert_eq!(
        header(response.headers(), "retry-after"),
        Some("30"),
        "the cached refusal counts down"
    );
    harness.platform.advance(Duration::from_secs(30));
    assert_eq!(call(&harness, &k).status(), StatusCode::OK);
    assert_eq!(harness.platform.limiter_calls(), calls + 1);
}

#[test]
fn an_ip_scoped_limit_works_on_public_routes() {
    let harness = harness(per_minute(5));
    for expected in [
        StatusCode::OK,
        StatusCode::OK,
        StatusCode::TOO_MANY_REQUESTS,
    ] {
        assert_eq!(harness.get("http://gw.example/public/x").status(), expected);
    }
    let other = harness.send_from(
        request(Method::GET, "http://gw.example/public/x", &[]),
        Some("198.51.100.7".parse().unwrap()),
    );
    assert_eq!(other.status(), StatusCode::OK);
}

#[test]
fn a_failing_store_fails_open_or_closed_as_configured() {
    let open = harness(per_minute(1));
    let k = key(&open, 7, None);
    open.platform.fail_limiters(Some("object overloaded"));
    let response = call(&open, &k);
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!response.headers().contains_key("x-ratelimit-limit"));
    assert!(open.platform.events().iter().any(|e| matches!(
        e,
        portico::observe::events::Event::RateLimitUnavailable {
            failed_open: true,
            ..
        }
    )));

    let closed = harness(
        json!({ "plan": { "name": "plan", "limit": 1, "period": "1m", "scope": ["key"] }, "on_failure": "closed" }),
    );
    let k = key(&closed, 8, None);
    closed.platform.fail_limiters(Some("object overloaded"));
    let response = call(&closed, &k);
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body_json(&response)["type"],
        "urn:portico:problem:rate-limit-unavailable"
    );
}

#[test]
fn a_failed_store_is_not_retried_in_a_tight_loop() {
    let harness = harness(per_minute(100));
    let k = key(&harness, 10, None);
    harness.platform.fail_limiters(Some("overloaded"));
    for _ in 0..20 {
        call(&harness, &k);
    }
    assert_eq!(
        harness.platform.limiter_calls(),
        1,
        "one attempt, then the back-off"
    );
    harness.platform.fail_limiters(None);
    harness.platform.advance(Duration::from_secs(1));
    assert_eq!(
        header(call(&harness, &k).headers(), "x-ratelimit-remaining"),
        Some("99")
    );
}

#[test]
fn header_families_can_be_turned_off() {
    let harness = harness(json!({
        "plan": { "name": "plan", "limit": 5, "period": "1m", "scope": ["key"] },
        "headers": { "legacy": false, "ietf": true }
    }));
    let k = key(&harness, 11, None);
    let response = call(&harness, &k);
    assert!(!response.headers().contains_key("x-ratelimit-limit"));
    assert!(response.headers().contains_key("ratelimit"));
}

#[test]
fn upstream_failures_on_a_limited_route_still_carry_the_headers() {
    let harness = harness(per_minute(5));
    let k = key(&harness, 12, None);
    let response = harness.send(request(
        Method::GET,
        "http://gw.example/orders/1?status=502",
        &[("x-api-key", &k)],
    ));
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(
        header(response.headers(), "x-ratelimit-remaining"),
        Some("4")
    );
    let response = harness.send(request(
        Method::GET,
        "http://gw.example/orders/1?delay_ms=9000",
        &[("x-api-key", &k)],
    ));
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        header(response.headers(), "x-ratelimit-remaining"),
        Some("3")
    );
}

/// A request through another isolate (its own gateway) on the same platform.
fn call_via(
    isolate: &portico::Gateway,
    harness: &Harness,
    key: &str,
) -> http::Response<portico::Body<bytes::Bytes>> {
    futures::executor::block_on(isolate.handle(
        &harness.platform,
        portico::Inbound::new(
            request(
                Method::GET,
                "http://gw.example/orders/1",
                &[("x-api-key", key)],
            ),
            None,
        ),
    ))
}

fn leased(size: u64, limit: u64) -> Value {
    json!({ "plan": { "name": "hot", "limit": limit, "period": "1h", "scope": ["key"],
                      "lease": { "size": size, "ttl": "1s" } } })
}

#[test]
fn leased_units_are_spent_without_calling_the_object() {
    let harness = harness(leased(5, 100));
    let k = key(&harness, 20, None);
    for _ in 0..10 {
        assert_eq!(call(&harness, &k).status(), StatusCode::OK);
    }
    assert_eq!(
        harness.platform.limiter_calls(),
        2,
        "one call per lease of five"
    );
    let response = call(&harness, &k);
    assert_eq!(
        header(response.headers(), "x-ratelimit-remaining"),
        Some("89")
    );
}

#[test]
fn leases_never_admit_more_than_the_quota_across_isolates() {
    let harness = harness(leased(4, 10));
    let k = key(&harness, 21, None);
    let isolates = [
        portico::Gateway::new(),
        portico::Gateway::new(),
        portico::Gateway::new(),
    ];
    let mut admitted = 0;
    for round in 0..30 {
        let isolate = &isolates[round % 3];
        let response = call_via(isolate, &harness, &k);
        if response.status() == StatusCode::OK {
            admitted += 1;
        }
    }
    assert_eq!(
        admitted, 10,
        "every unit leased is spent within its lease, none twice"
    );
}

#[test]
fn unspent_leased_units_expire_and_are_lost_within_the_bound() {
    let harness = harness(leased(4, 10));
    let k = key(&harness, 22, None);
    let quiet = portico::Gateway::new();
    // Another isolate takes a lease of four and uses one.
    let one = call_via(&quiet, &harness, &k);
    assert_eq!(one.status(), StatusCode::OK);
    harness.platform.advance(Duration::from_millis(1001));
    let mut admitted = 0;
    for _ in 0..20 {
        if call(&harness, &k).status() == StatusCode::OK {
            admitted += 1;
        }
    }
    assert_eq!(
        admitted, 6,
        "the three units left in the quiet isolate's expired lease are lost"
    );
}

#[test]
fn concurrent_requests_for_one_key_share_object_calls_and_exactly_the_limit_is_admitted() {
    use std::future::Future;
    use std::task::Context;

    let harness = harness(per_minute(5));
    let k = key(&harness, 23, None);
    let gate = portico::platform::memory::Gate::new();
    harness.platform.hold_limiters(Some(gate.clone()));
    let mut all = Box::pin(futures::future::join_all((0..20).map(|_| {
        harness.gateway.handle(
            &harness.platform,
            portico::Inbound::new(
                request(
                    Method::GET,
                    "http://gw.example/orders/1",
                    &[("x-api-key", &k)],
                ),
                Some("203.0.113.9".parse().expect("ip")),
            ),
        )
    })));
    let waker = futures::task::noop_waker();
    assert!(
        all.as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    assert_eq!(
        harness.platform.limiter_calls(),
        1,
        "one call in flight; the other requests wait for it"
    );
    gate.open();
    let responses = futures::executor::block_on(all);
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 5);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 15);
    assert_eq!(&statuses[..5], [200; 5], "admitted in the order they came");
    assert_eq!(
        harness.platform.limiter_calls(),
        2,
        "the nineteen that waited went as one batch"
    );
}

#[test]
fn an_object_whose_states_stopped_mattering_is_emptied_and_decides_the_same_after() {
    let harness = harness(per_minute(3));
    let k = key(&harness, 1, None);
    for _ in 0..3 {
        assert_eq!(call(&harness, &k).status(), StatusCode::OK);
    }
    assert_eq!(call(&harness, &k).status(), StatusCode::TOO_MANY_REQUESTS);
    let objects = harness.platform.object_names();
    assert_eq!(objects.len(), 1);
    // Three tokens at 3 per minute: the bucket is full again after 60 s.
    harness.platform.advance(Duration::from_millis(59_999));
    assert!(
        harness.platform.sweep_idle_limiters().is_empty(),
        "a bucket not yet full still matters"
    );
    harness.platform.advance(Duration::from_millis(1));
    assert_eq!(harness.platform.sweep_idle_limiters(), objects);
    assert!(harness.platform.object_names().is_empty());
    // A fresh object decides exactly as the full bucket would have.
    for remaining in ["2", "1", "0"] {
        let response = call(&harness, &k);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(response.headers(), "x-ratelimit-remaining"),
            Some(remaining)
        );
    }
    assert_eq!(call(&harness, &k).status(), StatusCode::TOO_MANY_REQUESTS);
}
