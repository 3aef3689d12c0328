//! Active health on the in-memory platform: the scheduled check probes
//! each target's health path and stores its results next to the config;
//! isolates read them with their config refresh, skip targets that are
//! down before any request fails there, and send traffic again once the
//! check sees them answer.

mod common;

use std::time::Duration;

use common::{Harness, body_json, echo_origin, header, request};
use futures::executor::block_on;
use http::{Method, StatusCode};
use portico::observe::events::Event;
use portico::platform::KvNamespace;
use portico::platform::memory::OriginReply;
use portico::upstream::health::{self, HEALTH_KEY, HealthDocument};
use serde_json::{Value, json};

const A: &str = "127.0.0.1:9201";
const B: &str = "127.0.0.1:9202";
const C: &str = "127.0.0.1:9203";
const REFRESH: Duration = Duration::from_secs(5);

fn config(health: Value) -> String {
    json!({
        "version": 1,
        "settings": { "config_refresh_seconds": 5 },
        "services": {
            "orders": {
                "targets": [
                    { "url": format!("http://{A}") },
                    { "url": format!("http://{B}/v1") },
                    { "url": format!("http://{C}") }
                ],
                "health": health
            },
            "users": { "url": "http://127.0.0.1:9101" }
        },
        "routes": [
            { "id": "orders", "path": "/orders/*", "service": "orders" },
            { "id": "users", "path": "/users/*", "service": "users" }
        ]
    })
    .to_string()
}

fn harness(health: Value) -> Harness {
    let harness = Harness::with_config(&config(health));
    harness.platform.add_origin(A, echo_origin("orders-a"));
    harness.platform.add_origin(B, echo_origin("orders-b"));
    harness.platform.add_origin(C, echo_origin("orders-c"));
    harness
}

fn active() -> Value {
    json!({ "active": { "path": "/health", "unhealthy_threshold": 2, "healthy_threshold": 1 } })
}

fn check(harness: &Harness) -> Option<HealthDocument> {
    block_on(health::check_all(&harness.platform)).expect("the check ran")
}

/// Requests (not probes) each origin received.
fn requests_to(harness: &Harness, authority: &str) -> usize {
    harness
        .platform
        .sent()
        .iter()
        .filter(|sent| sent.uri.authority().unwrap().as_str() == authority)
        .filter(|sent| !sent.uri.path().ends_with("/health"))
        .count()
}

fn get_orders(harness: &Harness, times: usize) {
    for _ in 0..times {
        assert_eq!(
            harness.get("http://gw.example/orders/1").status(),
            StatusCode::OK
        );
    }
}

#[test]
fn the_check_probes_each_targets_health_path_and_stores_results_next_to_the_config() {
    let harness = harness(active());
    harness.platform.add_origin(C, |_| {
        OriginReply::Respond(
            http::Response::builder()
                .status(503)
                .body("".into())
                .unwrap(),
        )
    });
    let document = check(&harness).unwrap();
    let probes = harness.platform.sent();
    let urls: Vec<String> = probes.iter().map(|p| p.uri.to_string()).collect();
    assert_eq!(
        urls,
        [
            format!("http://{A}/health"),
            format!("http://{B}/v1/health"),
            format!("http://{C}/health")
        ]
    );
    assert!(probes.iter().all(|p| p.method == Method::GET
        && p.headers["user-agent"] == "portico-health-check"
        && p.timeout == Duration::from_secs(2)));
    let stored: HealthDocument = serde_json::from_str(
        &harness
            .platform
            .kv_get(KvNamespace::Config, HEALTH_KEY)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stored, document);
    let c = stored.target("orders", &format!("http://{C}")).unwrap();
    assert_eq!((c.up, c.failures, c.status), (true, 1, Some(503)));
    assert!(stored.target("users", "http://127.0.0.1:9101").is_none());
    assert!(harness.platform.events().iter().any(|event| matches!(
        event,
        Event::HealthChecked { targets: 3, down, stored: true } if down.is_empty()
    )));
}

#[test]
fn unchanged_results_are_stored_only_every_few_minutes() {
    let harness = harness(active());
    check(&harness);
    assert_eq!(harness.platform.kv_writes(), 1);
    harness.platform.advance(Duration::from_secs(60));
    check(&harness);
    harness.platform.advance(Duration::from_secs(60));
    check(&harness);
    assert_eq!(harness.platform.kv_writes(), 1, "nothing changed");
    harness.platform.remove_origin(C);
    harness.platform.advance(Duration::from_secs(60));
    check(&harness);
    assert_eq!(harness.platform.kv_writes(), 2, "a failure counts");
    harness.platform.add_origin(C, echo_origin("orders-c"));
    harness.platform.advance(Duration::from_secs(60));
    check(&harness);
    assert_eq!(harness.platform.kv_writes(), 3, "and its end too");
    harness.platform.advance(health::REWRITE_AFTER);
    check(&harness);
    assert_eq!(harness.platform.kv_writes(), 4, "due again");
}

#[test]
fn without_a_config_or_active_checks_nothing_is_probed_or_stored() {
    let harness = harness(json!({ "passive": {} }));
    assert_eq!(check(&harness), None);
    assert!(harness.platform.sent().is_empty());
    assert_eq!(harness.platform.kv_writes(), 0);
    harness
        .platform
        .kv_delete(KvNamespace::Config, portico::config::CONFIG_KEY);
    assert_eq!(check(&harness), None);
}

#[test]
fn a_target_the_check_has_down_gets_no_request_until_it_passes_again() {
    let harness = harness(active());
    harness.platform.remove_origin(B);
    check(&harness);
    check(&harness);
    get_orders(&harness, 30);
    assert_eq!(
        requests_to(&harness, B),
        0,
        "skipped before any request failed there"
    );
    assert_eq!(requests_to(&harness, A) + requests_to(&harness, C), 30);

    harness.platform.add_origin(B, echo_origin("orders-b"));
    check(&harness);
    get_orders(&harness, 6);
    assert_eq!(requests_to(&harness, B), 0, "not before the next refresh");
    harness.platform.advance(REFRESH);
    get_orders(&harness, 1);
    assert_eq!(
        harness.platform.run_background(),
        1,
        "read in the background"
    );
    get_orders(&harness, 9);
    assert_eq!(requests_to(&harness, B), 3, "its share again");
}

#[test]
fn stored_results_from_after_an_ejection_bring_the_target_back() {
    let mut health = active();
    health["passive"] = json!({ "consecutive_failures": 1, "base_ejection_ms": 600000,
                                "max_ejection_ms": 600000 });
    let harness = harness(health);
    check(&harness);
    harness.platform.advance(Duration::from_secs(1));
    harness.platform.remove_origin(A);
    // The first request goes to A, fails, and is retried on B (the
    // always-safe retry): A is ejected for ten minutes.
    get_orders(&harness, 1);
    assert!(
        harness
            .platform
            .events()
            .iter()
            .any(|e| matches!(e, Event::TargetEjected { .. }))
    );
    harness.platform.add_origin(A, echo_origin("orders-a"));
    let restored = |harness: &Harness| {
        harness
            .platform
            .events()
            .iter()
            .any(|e| matches!(e, Event::TargetRestored { by: "check", .. }))
    };

    // A check that changes nothing stores nothing: what isolates read
    // predates the ejection, and does not end it.
    harness.platform.advance(Duration::from_secs(60));
    check(&harness);
    get_orders(&harness, 1);
    harness.platform.run_background();
    assert!(!restored(&harness));

    // The next stored results come from after the ejection.
    harness.platform.advance(health::REWRITE_AFTER);
    check(&harness);
    get_orders(&harness, 1);
    harness.platform.run_background();
    assert!(restored(&harness));
    let before = requests_to(&harness, A);
    get_orders(&harness, 12);
    assert!(
        requests_to(&harness, A) - before >= 3,
        "A takes about a third again"
    );
}

#[test]
fn results_too_old_to_trust_keep_no_target_down() {
    let harness = harness(active());
    harness.platform.remove_origin(B);
    check(&harness);
    check(&harness);
    harness.platform.add_origin(B, echo_origin("orders-b"));
    get_orders(&harness, 6);
    assert_eq!(requests_to(&harness, B), 0);
    harness.platform.advance(health::STALE_AFTER);
    get_orders(&harness, 6);
    assert!(
        requests_to(&harness, B) > 0,
        "the checks stopped: trust lapsed"
    );
}

#[test]
fn with_every_target_checked_down_the_answer_is_503_and_nothing_is_sent() {
    let harness = harness(active());
    for target in [A, B, C] {
        harness.platform.remove_origin(target);
    }
    check(&harness);
    check(&harness);
    let before = harness.platform.sent().len();
    let response = harness.send(request(Method::GET, "http://gw.example/orders/1", &[]));
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body_json(&response)["type"],
        "urn:portico:problem:no-healthy-upstream"
    );
    assert_eq!(header(response.headers(), "retry-after"), Some("60"));
    assert_eq!(harness.platform.sent().len(), before);
    // A single-origin service is never affected.
    assert_eq!(
        harness.get("http://gw.example/users/1").status(),
        StatusCode::OK
    );
}
