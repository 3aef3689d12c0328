//! Balanced services on the in-memory platform, with a fake clock and
//! scripted origins: how each algorithm spreads requests, what is retried
//! (and what never is), passive health ejecting and bringing back targets,
//! the refusal when none is healthy, and the preference for targets near
//! the caller.

mod common;

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use common::{Harness, body_json, echo_origin, header, request};
use http::{Method, Response, StatusCode};
use portico::Body;
use portico::gateway::Inbound;
use portico::observe::events::{AccessLog, Event};
use portico::platform::memory::{Gate, OriginReply, RecordedRequest};
use portico::upstream::geo::Location;
use serde_json::{Value, json};

const A: &str = "127.0.0.1:9201";
const B: &str = "127.0.0.1:9202";
const C: &str = "127.0.0.1:9203";
const D: &str = "127.0.0.1:9204";
const E: &str = "127.0.0.1:9205";
const NAMES: [(&str, &str); 5] = [
    (A, "orders-a"),
    (B, "orders-b"),
    (C, "orders-c"),
    (D, "orders-d"),
    (E, "orders-e"),
];

/// Targets A, B, C, ... with these weights.
fn targets(weights: &[u32]) -> Value {
    NAMES
        .iter()
        .zip(weights)
        .map(|((authority, _), weight)| json!({ "url": format!("http://{authority}"), "weight": weight }))
        .collect()
}

/// A gateway whose `orders` service is `service`, behind `/orders/*`,
/// `/tenants/:tenant/*` and, with an API key, `/keyed/*`; every request
/// logged; echo origins on every target.
fn harness(service: Value) -> Harness {
    harness_with_routes(
        service,
        json!([
            { "id": "orders", "path": "/orders/*", "service": "orders" },
            { "id": "tenants", "path": "/tenants/:tenant/*", "service": "orders" }
        ]),
    )
}

fn harness_with_routes(service: Value, routes: Value) -> Harness {
    let config = json!({
        "version": 1,
        "log": { "sample_rate": 1 },
        "services": { "orders": service },
        "routes": routes,
    });
    let harness = Harness::with_config(&config.to_string());
    for (authority, name) in NAMES {
        harness.platform.add_origin(authority, echo_origin(name));
    }
    harness
}

fn get(harness: &Harness, path: &str) -> Response<Body<Bytes>> {
    harness.get(&format!("http://gw.example{path}"))
}

fn served_by(response: &Response<Body<Bytes>>) -> String {
    body_json(response)["service"]
        .as_str()
        .unwrap_or("?")
        .to_owned()
}

/// How many requests each origin received.
fn received(harness: &Harness) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for sent in harness.platform.sent() {
        *counts
            .entry(sent.uri.authority().unwrap().to_string())
            .or_insert(0) += 1;
    }
    counts
}

fn count(counts: &HashMap<String, usize>, authority: &str) -> usize {
    counts.get(authority).copied().unwrap_or(0)
}

fn access_logs(harness: &Harness) -> Vec<AccessLog> {
    harness.access_logs()
}

fn ejections(harness: &Harness) -> Vec<(String, u64, u32)> {
    harness
        .platform
        .events()
        .into_iter()
        .filter_map(|event| match event {
            Event::TargetEjected {
                target,
                for_ms,
                ejections,
                ..
            } => Some((target, for_ms, ejections)),
            _ => None,
        })
        .collect()
}

fn restorations(harness: &Harness) -> Vec<(String, &'static str)> {
    harness
        .platform
        .events()
        .into_iter()
        .filter_map(|event| match event {
            Event::TargetRestored { target, by, .. } => Some((target, by)),
            _ => None,
        })
        .collect()
}

fn refuse(_: &RecordedRequest) -> OriginReply {
    OriginReply::Refuse
}

fn answer(status: u16) -> impl Fn(&RecordedRequest) -> OriginReply {
    move |_| {
        OriginReply::Respond(
            Response::builder()
                .status(status)
                .body(Bytes::from_static(b"{\"service\":\"failing\"}"))
                .unwrap(),
        )
    }
}

// ---------------------------------------------------------------- spreading

#[test]
fn round_robin_gives_each_target_exactly_its_weights_share() {
    let harness = harness(json!({ "targets": targets(&[1, 2, 3]) }));
    let mut served: HashMap<String, usize> = HashMap::new();
    for _ in 0..60 {
        *served
            .entry(served_by(&get(&harness, "/orders/1")))
            .or_insert(0) += 1;
    }
    assert_eq!(served["orders-a"], 10);
    assert_eq!(served["orders-b"], 20);
    assert_eq!(served["orders-c"], 30);
}

#[test]
fn random_spreads_requests_by_weight_within_statistical_bounds() {
    let harness = harness(json!({ "targets": targets(&[1, 1, 2]), "algorithm": "random" }));
    let n: f64 = 4000.0;
    for _ in 0..4000 {
        get(&harness, "/orders/1");
    }
    let counts = received(&harness);
    for (authority, share) in [(A, 0.25f64), (B, 0.25), (C, 0.5)] {
        let expected = n * share;
        let sigma = (n * share * (1.0 - share)).sqrt();
        let got = count(&counts, authority) as f64;
        assert!(
            (got - expected).abs() < 5.0 * sigma,
            "{authority}: {got} of {n}, expected about {expected}"
        );
    }
}

#[test]
fn least_request_keeps_new_requests_off_a_target_still_busy() {
    let harness = harness(json!({ "targets": targets(&[1, 1, 1]), "algorithm": "least_request" }));
    let gate = Gate::new();
    let held = gate.clone();
    // A answers only when the test says so: its requests stay in flight.
    harness.platform.add_origin(A, move |_| {
        OriginReply::Gated(
            held.clone(),
            Response::new(Bytes::from_static(b"{\"service\":\"orders-a\"}")),
        )
    });
    let requests = (0..30).map(|_| {
        harness.gateway.handle(
            &harness.platform,
            Inbound::new(
                request(Method::GET, "http://gw.example/orders/1", &[]),
                None,
            ),
        )
    });
    let opener = async {
        yield_once().await;
        gate.open();
    };
    let (responses, ()) = futures::executor::block_on(futures::future::join(
        futures::future::join_all(requests),
        opener,
    ));
    assert!(responses.iter().all(|r| r.status() == StatusCode::OK));
    let counts = received(&harness);
    assert!(
        count(&counts, A) <= 1,
        "the busy target got more: {counts:?}"
    );
    assert_eq!(
        count(&counts, B) + count(&counts, C),
        30 - count(&counts, A)
    );
}

#[test]
fn consistent_hash_sends_each_key_to_one_target() {
    let harness = harness(json!({
        "targets": targets(&[1, 1, 1, 1]),
        "algorithm": "consistent_hash",
        "hash_on": { "header": "X-Tenant" }
    }));
    let mut owners: HashMap<String, String> = HashMap::new();
    for round in 0..3 {
        for tenant in 0..50 {
            let tenant = format!("tenant-{tenant}");
            let response = harness.send(request(
                Method::GET,
                "http://gw.example/orders/1",
                &[("x-tenant", &tenant)],
            ));
            let owner = served_by(&response);
            if round == 0 {
                owners.insert(tenant, owner);
            } else {
                assert_eq!(owners[&tenant], owner, "{tenant} moved");
            }
        }
    }
    let distinct: std::collections::HashSet<&String> = owners.values().collect();
    assert_eq!(distinct.len(), 4, "50 keys use every target");
}

#[test]
fn adding_a_target_moves_about_one_key_in_n_and_only_to_it() {
    let owners = |weights: &[u32]| -> Vec<String> {
        let harness = harness_with_routes(
            json!({
                "targets": targets(weights),
                "algorithm": "consistent_hash",
                "hash_on": { "param": "tenant" }
            }),
            json!([{ "id": "tenants", "path": "/tenants/:tenant/*", "service": "orders" }]),
        );
        (0..500)
            .map(|tenant| served_by(&get(&harness, &format!("/tenants/t{tenant}/orders"))))
            .collect()
    };
    let before = owners(&[1, 1, 1, 1]);
    let after = owners(&[1, 1, 1, 1, 1]);
    let moved: Vec<(&String, &String)> = before
        .iter()
        .zip(&after)
        .filter(|(old, new)| old != new)
        .collect();
    assert!(
        moved.iter().all(|(_, new)| *new == "orders-e"),
        "keys moved between old targets"
    );
    assert!(
        (50..=150).contains(&moved.len()),
        "{} of 500 keys moved; about 100 expected",
        moved.len()
    );
}

#[test]
fn consistent_hash_on_the_client_address_and_without_a_key_still_answers() {
    let harness = harness(json!({
        "targets": targets(&[1, 1, 1]),
        "algorithm": "consistent_hash",
        "hash_on": "ip"
    }));
    let from = |ip: &str| {
        harness.send_from(
            request(Method::GET, "http://gw.example/orders/1", &[]),
            Some(ip.parse().unwrap()),
        )
    };
    let first = served_by(&from("198.51.100.7"));
    for _ in 0..10 {
        assert_eq!(served_by(&from("198.51.100.7")), first);
    }
    let without = harness.send_from(
        request(Method::GET, "http://gw.example/orders/1", &[]),
        None,
    );
    assert_eq!(without.status(), StatusCode::OK, "no key: any target");
}

// ----------------------------------------------------------------- retries

fn retrying(extra: Value) -> Value {
    let mut service = json!({
        "targets": targets(&[1, 1, 1]),
        "retry": { "attempts": 3, "backoff": { "base_ms": 0, "max_ms": 0 } }
    });
    if let (Some(retry), Some(extra)) = (service["retry"].as_object_mut(), extra.as_object()) {
        retry.extend(extra.clone());
    }
    service
}

#[test]
fn a_failed_try_goes_to_another_target_and_every_try_is_logged() {
    let harness = harness(retrying(json!({})));
    harness.platform.add_origin(A, refuse);
    let response = get(&harness, "/orders/1");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(served_by(&response), "orders-b");
    let log = access_logs(&harness).pop().unwrap();
    assert_eq!(log.upstream.as_deref(), Some(B));
    assert_eq!(log.attempts.len(), 2);
    assert_eq!(log.attempts[0].target, A);
    assert!(
        log.attempts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("refused")
    );
    assert_eq!(log.attempts[1].target, B);
    assert_eq!(log.attempts[1].status, Some(200));
    for value in response.headers().values() {
        let value = value.to_str().unwrap_or("");
        assert!(!value.contains(A) && !value.contains(B), "{value}");
    }
}

#[test]
fn a_gateway_error_is_retried_and_an_application_error_is_not() {
    let harness = harness(retrying(json!({})));
    harness.platform.add_origin(A, answer(503));
    assert_eq!(served_by(&get(&harness, "/orders/1")), "orders-b");
    let harness = harness_500();
    let response = get(&harness, "/orders/1");
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(harness.platform.sent().len(), 1);
}

fn harness_500() -> Harness {
    let harness = harness(retrying(json!({})));
    harness.platform.add_origin(A, answer(500));
    harness
}

#[test]
fn listed_statuses_are_retried_and_the_last_answer_passes_through() {
    let harness = harness(retrying(
        json!({ "on": ["connect_error"], "statuses": [429] }),
    ));
    for (authority, _) in NAMES {
        harness.platform.add_origin(authority, answer(429));
    }
    let response = get(&harness, "/orders/1");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(harness.platform.sent().len(), 3, "every try used");
}

#[test]
fn a_post_is_not_retried_unless_the_route_opts_in() {
    let harness = harness_with_routes(
        retrying(json!({})),
        json!([
            { "id": "orders", "path": "/orders/*", "service": "orders" },
            { "id": "payments", "path": "/payments/*", "service": "orders",
              "retry": { "attempts": 2, "non_idempotent": true } }
        ]),
    );
    harness.platform.add_origin(A, refuse);
    let mut post = request(
        Method::POST,
        "http://gw.example/orders/1",
        &[("content-length", "7")],
    );
    *post.body_mut() = Body::full("payload");
    let response = harness.send(post);
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(harness.platform.sent().len(), 1, "POST went out once");

    // The next turn is B's; make A's come round again.
    get(&harness, "/orders/1");
    get(&harness, "/orders/1");
    let before = harness.platform.sent().len();
    let mut post = request(
        Method::POST,
        "http://gw.example/payments/1",
        &[("content-length", "7")],
    );
    *post.body_mut() = Body::full("payload");
    let response = harness.send(post);
    assert_eq!(response.status(), StatusCode::OK);
    let sent = harness.platform.sent();
    assert_eq!(sent.len() - before, 2, "the opted-in route retried");
    assert_eq!(
        body_json(&response)["body"],
        "payload",
        "the body went again"
    );
}

#[test]
fn a_body_is_kept_for_a_retry_only_within_the_cap() {
    let harness = harness(retrying(json!({ "max_body_bytes": 8 })));
    harness.platform.add_origin(A, refuse);
    harness.platform.add_origin(B, refuse);
    let put = |harness: &Harness, body: &'static str| {
        let length = body.len().to_string();
        let mut put = request(
            Method::PUT,
            "http://gw.example/orders/1",
            &[("content-length", &length)],
        );
        *put.body_mut() = Body::full(body);
        harness.send(put)
    };
    let kept = put(&harness, "12345678");
    assert_eq!(kept.status(), StatusCode::OK);
    assert_eq!(body_json(&kept)["body"], "12345678");
    assert_eq!(harness.platform.sent().len(), 3);

    let fresh = self::harness(retrying(json!({ "max_body_bytes": 8 })));
    fresh.platform.add_origin(A, refuse);
    let response = put(&fresh, "123456789");
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(fresh.platform.sent().len(), 1, "too long to keep: one try");
}

#[test]
fn retries_stop_at_the_routes_deadline_which_covers_every_try() {
    let harness = harness(json!({
        "targets": targets(&[1, 1, 1]),
        "timeout_ms": 1000,
        "retry": { "attempts": 10, "on": ["timeout"], "per_try_timeout_ms": 300,
                   "backoff": { "base_ms": 0, "max_ms": 0 } }
    }));
    let response = get(&harness, "/orders/1?delay_ms=5000");
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    let sent = harness.platform.sent();
    let timeouts: Vec<u128> = sent.iter().map(|r| r.timeout.as_millis()).collect();
    assert_eq!(
        timeouts,
        [300, 300, 300, 100],
        "the last try gets what is left"
    );
    let log = access_logs(&harness).pop().unwrap();
    assert_eq!(log.timings_ms.upstream, Some(1000));
}

#[test]
fn the_retry_budget_caps_retries_at_its_share_of_requests() {
    let harness = harness(retrying(
        json!({ "budget": { "ratio": 0.2, "min_retries": 0 } }),
    ));
    for (authority, _) in NAMES {
        harness.platform.add_origin(authority, answer(503));
    }
    for _ in 0..50 {
        assert_eq!(
            get(&harness, "/orders/1").status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    assert_eq!(
        harness.platform.sent().len(),
        60,
        "50 first tries and 20% of 50 retries"
    );
    // A new window: its own allowance, starting from zero requests.
    harness.platform.advance(Duration::from_secs(10));
    get(&harness, "/orders/1");
    assert_eq!(harness.platform.sent().len(), 61);
}

#[test]
fn a_retry_never_goes_to_the_target_just_tried() {
    for algorithm in [
        json!("round_robin"),
        json!("random"),
        json!("least_request"),
        json!("consistent_hash"),
    ] {
        let mut service = retrying(json!({ "budget": { "ratio": 1, "min_retries": 100 } }));
        service["algorithm"] = algorithm.clone();
        if algorithm == "consistent_hash" {
            service["hash_on"] = json!("ip");
        }
        let harness = harness(service);
        for (authority, _) in NAMES {
            harness.platform.add_origin(authority, answer(502));
        }
        for _ in 0..20 {
            get(&harness, "/orders/1");
        }
        for log in access_logs(&harness) {
            assert_eq!(log.attempts.len(), 3);
            for pair in log.attempts.windows(2) {
                assert_ne!(pair[0].target, pair[1].target, "{algorithm}");
            }
        }
    }
}

#[test]
fn one_target_is_tried_again_when_it_is_the_only_one() {
    let harness = harness(json!({
        "url": format!("http://{A}"),
        "retry": { "attempts": 2 }
    }));
    let calls = Rc::new(Cell::new(0));
    let seen = Rc::clone(&calls);
    harness.platform.add_origin(A, move |request| {
        seen.set(seen.get() + 1);
        if seen.get() == 1 {
            OriginReply::Refuse
        } else {
            echo_origin("orders-a")(request)
        }
    });
    assert_eq!(get(&harness, "/orders/1").status(), StatusCode::OK);
    assert_eq!(calls.get(), 2);
}

#[test]
fn backoff_waits_a_jittered_time_below_its_ceiling_between_tries() {
    let harness = harness(json!({
        "targets": targets(&[1, 1, 1]),
        "retry": { "attempts": 3, "backoff": { "base_ms": 40, "max_ms": 60 } }
    }));
    for (authority, _) in NAMES {
        harness.platform.add_origin(authority, answer(503));
    }
    for _ in 0..20 {
        get(&harness, "/orders/1");
    }
    let slept = harness.platform.slept();
    assert!(!slept.is_empty());
    assert!(slept.len() <= 40, "at most two waits per request");
    assert!(slept.iter().all(|d| *d <= Duration::from_millis(60)));
    let distinct: std::collections::HashSet<&Duration> = slept.iter().collect();
    assert!(distinct.len() > 3, "jittered: {slept:?}");
}

#[test]
fn without_a_policy_only_the_always_safe_retry_is_made() {
    let harness = harness(json!({ "targets": targets(&[1, 1]) }));
    harness.platform.add_origin(A, refuse);
    assert_eq!(get(&harness, "/orders/1").status(), StatusCode::OK);
    assert_eq!(harness.platform.sent().len(), 2, "refused, then B");
    harness.platform.add_origin(B, answer(503));
    harness.platform.add_origin(A, answer(503));
    assert_eq!(
        get(&harness, "/orders/1").status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(harness.platform.sent().len(), 3, "a 503 is the answer");
}

// ----------------------------------------------------------- passive health

fn ejecting(percent: u32) -> Value {
    json!({
        "targets": targets(&[1, 1, 1]),
        "retry": { "attempts": 3, "backoff": { "base_ms": 0, "max_ms": 0 } },
        "health": { "passive": { "consecutive_failures": 2, "base_ejection_ms": 10000,
                                  "max_ejection_ms": 60000, "max_ejected_percent": percent } }
    })
}

#[test]
fn consecutive_failures_eject_a_target_and_a_half_open_trial_brings_it_back() {
    let harness = harness(ejecting(50));
    harness.platform.add_origin(A, refuse);
    for _ in 0..6 {
        assert_eq!(get(&harness, "/orders/1").status(), StatusCode::OK);
    }
    assert_eq!(
        ejections(&harness),
        [(format!("http://{A}"), 10_000, 1)],
        "two failures in a row"
    );
    let before = count(&received(&harness), A);
    for _ in 0..30 {
        get(&harness, "/orders/1");
    }
    assert_eq!(count(&received(&harness), A), before, "no request to A");

    // Ejection over: one trial, which fails, and a longer ejection.
    harness.platform.advance(Duration::from_secs(10));
    for _ in 0..3 {
        assert_eq!(get(&harness, "/orders/1").status(), StatusCode::OK);
    }
    assert_eq!(count(&received(&harness), A), before + 1, "one trial");
    assert_eq!(ejections(&harness)[1], (format!("http://{A}"), 20_000, 2));

    // A recovers; after the second ejection its trial succeeds.
    harness.platform.add_origin(A, echo_origin("orders-a"));
    harness.platform.advance(Duration::from_secs(20));
    let served: Vec<String> = (0..6)
        .map(|_| served_by(&get(&harness, "/orders/1")))
        .collect();
    assert_eq!(restorations(&harness), [(format!("http://{A}"), "trial")]);
    assert_eq!(
        served.iter().filter(|s| *s == "orders-a").count(),
        2,
        "A takes its share again: {served:?}"
    );
}

#[test]
fn no_more_than_the_max_share_of_targets_is_ejected_at_once() {
    let harness = harness(json!({
        "targets": targets(&[1, 1, 1, 1]),
        "health": { "passive": { "consecutive_failures": 1, "max_ejected_percent": 50 } }
    }));
    for (authority, _) in NAMES {
        harness.platform.add_origin(authority, answer(503));
    }
    for _ in 0..40 {
        get(&harness, "/orders/1");
    }
    assert_eq!(ejections(&harness).len(), 2);
    let counts = received(&harness);
    let still_called = [A, B, C, D]
        .iter()
        .filter(|a| count(&counts, a) > 10)
        .count();
    assert_eq!(still_called, 2, "{counts:?}");
}

#[test]
fn with_every_target_out_the_answer_is_503_no_healthy_upstream_with_retry_after() {
    let harness = harness(ejecting(100));
    for (authority, _) in NAMES {
        harness.platform.add_origin(authority, refuse);
    }
    for _ in 0..3 {
        get(&harness, "/orders/1");
    }
    assert_eq!(ejections(&harness).len(), 3);
    harness.platform.advance(Duration::from_millis(2500));
    let before = harness.platform.sent().len();
    let response = get(&harness, "/orders/1");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body_json(&response)["type"],
        "urn:portico:problem:no-healthy-upstream"
    );
    assert_eq!(header(response.headers(), "retry-after"), Some("8"));
    assert_eq!(harness.platform.sent().len(), before, "nothing was sent");
    let log = access_logs(&harness).pop().unwrap();
    assert_eq!(log.problem, Some("no-healthy-upstream"));
    assert_eq!(log.upstream, None);
}

// --------------------------------------------------------------------- geo

fn located(harness: &Harness, continent: &str, country: &str) -> String {
    let inbound = Inbound::new(
        request(Method::GET, "http://gw.example/orders/1", &[]),
        None,
    )
    .located(Location {
        continent: Some(continent.to_owned()),
        country: Some(country.to_owned()),
        colo: None,
    });
    served_by(&futures::executor::block_on(
        harness.gateway.handle(&harness.platform, inbound),
    ))
}

fn placed() -> Value {
    json!({
        "targets": [
            { "url": format!("http://{A}"), "continent": "EU", "country": "DE" },
            { "url": format!("http://{B}"), "continent": "EU", "country": "FR" },
            { "url": format!("http://{C}"), "continent": "NA", "country": "US" }
        ],
        "retry": { "attempts": 2, "backoff": { "base_ms": 0, "max_ms": 0 } },
        "health": { "passive": { "consecutive_failures": 1 } }
    })
}

#[test]
fn callers_go_to_targets_in_their_country_then_continent_then_anywhere() {
    let harness = harness(placed());
    for _ in 0..5 {
        assert_eq!(located(&harness, "EU", "DE"), "orders-a");
        assert_eq!(located(&harness, "NA", "US"), "orders-c");
    }
    let europe: std::collections::HashSet<String> =
        (0..6).map(|_| located(&harness, "EU", "AT")).collect();
    assert_eq!(europe.len(), 2, "both European targets: {europe:?}");
    assert!(!europe.contains("orders-c"));
    let anywhere: std::collections::HashSet<String> =
        (0..9).map(|_| located(&harness, "AS", "JP")).collect();
    assert_eq!(anywhere.len(), 3);
}

#[test]
fn a_caller_whose_nearby_target_is_down_goes_to_the_next_nearest() {
    let harness = harness(placed());
    harness.platform.add_origin(A, refuse);
    // The first try fails on A and is retried (B is the nearest other).
    assert_eq!(located(&harness, "EU", "DE"), "orders-b");
    // A is ejected now: German callers go to France, not America.
    for _ in 0..5 {
        assert_eq!(located(&harness, "EU", "DE"), "orders-b");
    }
}

#[test]
fn the_callers_location_is_read_only_for_services_that_place_targets() {
    let reads = Rc::new(Cell::new(0));
    let send = |harness: &Harness, path: &str| {
        let counter = Rc::clone(&reads);
        let mut inbound = Inbound::new(
            request(Method::GET, &format!("http://gw.example{path}"), &[]),
            None,
        );
        inbound.locator = Some(portico::pipeline::Locator::new(move || {
            counter.set(counter.get() + 1);
            Location::default()
        }));
        futures::executor::block_on(harness.gateway.handle(&harness.platform, inbound))
    };
    let unplaced = harness(json!({ "targets": targets(&[1, 1]) }));
    assert_eq!(send(&unplaced, "/orders/1").status(), StatusCode::OK);
    assert_eq!(reads.get(), 0);
    let placed = harness(placed());
    assert_eq!(send(&placed, "/orders/1").status(), StatusCode::OK);
    assert_eq!(reads.get(), 1);
}

/// Give the other futures of a join one turn.
async fn yield_once() {
    let mut yielded = false;
    futures::future::poll_fn(|context| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            context.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

// ------------------------------------------------------- aggregate legs

#[test]
fn an_aggregate_leg_to_a_balanced_service_is_retried_and_judged_for_health() {
    let harness = harness_with_routes(
        ejecting(50),
        json!([
            { "id": "both", "path": "/both/:id", "methods": ["GET"], "aggregate": { "legs": [
                { "name": "order", "service": "orders", "path": "/orders/{params.id}" },
                { "name": "again", "service": "orders", "path": "/orders/{params.id}/again" } ] } }
        ]),
    );
    harness.platform.add_origin(A, refuse);
    for _ in 0..6 {
        let response = get(&harness, "/both/7");
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "a refused try goes to another target"
        );
        assert_eq!(
            header(response.headers(), "portico-aggregate"),
            Some("complete")
        );
        let body = body_json(&response);
        assert_ne!(body["order"]["service"], "orders-a");
        assert_eq!(body["again"]["path"], "/orders/7/again");
    }
    assert_eq!(
        ejections(&harness),
        [(format!("http://{A}"), 10_000, 1)],
        "the legs' failures count for the target's health"
    );
    let before = count(&received(&harness), A);
    for _ in 0..10 {
        get(&harness, "/both/7");
    }
    assert_eq!(count(&received(&harness), A), before, "no leg goes to A");
    let log = access_logs(&harness).pop().unwrap();
    assert!(log.attempts.iter().all(|attempt| attempt.target != A));
}
