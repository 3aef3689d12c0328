//! Response caching through the gateway, on the in-memory platform with a
//! fake clock: misses, hits and their Cache-Status, callers kept apart,
//! what is never stored, origin Cache-Control, 304s, stale-while-
//! revalidate with one background refresh, stale-if-error, coalesced
//! misses, poisoning attempts, generations, and a cache that fails.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Harness, auth_config, body_json, header, request};
use http::{Method, Response, StatusCode};
use portico::Body;
use portico::observe::events::Event;
use portico::platform::KvNamespace;
use portico::platform::memory::{Gate, OriginReply, RecordedRequest};
use serde_json::{Value, json};

/// A public cached route, a per-caller cached route behind an API key
/// limited to 5 calls a minute, and a shared one.
fn cached(policy: Value) -> Harness {
    Harness::with_config(&auth_config(
        json!({}),
        json!([
            { "id": "catalog", "path": "/catalog/*", "service": "users", "cache": policy },
            { "id": "orders", "path": "/orders/*", "service": "users",
              "auth": { "api_key": {} }, "cache": policy,
              "rate_limit": { "policies": [{ "name": "per-key", "limit": 5, "period": "1m", "scope": ["key"] }] } },
            { "id": "prices", "path": "/prices/*", "service": "users",
              "auth": { "api_key": {} }, "cache": { "shared": true, "ttl_seconds": 30 } }
        ]),
    ))
}

fn thirty_seconds() -> Harness {
    cached(json!({ "ttl_seconds": 30 }))
}

fn key(harness: &Harness, seed: u8) -> String {
    harness
        .store_key(seed, &format!("consumer-{seed}"), |_| {})
        .1
}

fn get(harness: &Harness, url: &str, headers: &[(&str, &str)]) -> Response<Body<Bytes>> {
    let response = harness.send(request(Method::GET, url, headers));
    harness.platform.run_background();
    response
}

fn origin_calls(harness: &Harness) -> usize {
    harness.platform.sent().len()
}

fn cache_status(response: &Response<Body<Bytes>>) -> &str {
    header(response.headers(), "cache-status").unwrap_or("")
}

/// An origin that answers with `headers` and a body naming its call count.
fn origin(harness: &Harness, headers: &'static [(&'static str, &'static str)]) {
    let calls = std::rc::Rc::new(std::cell::Cell::new(0));
    harness.platform.add_origin("127.0.0.1:9101", move |request: &RecordedRequest| {
        calls.set(calls.get() + 1);
        let status: u16 = request
            .uri
            .query()
            .and_then(|q| q.strip_prefix("status="))
            .and_then(|s| s.parse().ok())
            .unwrap_or(200);
        let mut builder = Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let body = json!({ "call": calls.get(), "consumer": request.headers.get("x-portico-consumer").and_then(|v| v.to_str().ok()) });
        OriginReply::Respond(builder.body(Bytes::from(body.to_string())).unwrap())
    });
}

#[test]
fn a_miss_is_stored_and_the_next_request_is_a_hit_with_its_age() {
    let harness = thirty_seconds();
    let first = get(&harness, "http://gw.example/catalog/1", &[]);
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        cache_status(&first),
        "Portico; fwd=uri-miss; stored; ttl=30"
    );
    harness.platform.advance(Duration::from_secs(12));
    let second = get(&harness, "http://gw.example/catalog/1", &[]);
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(cache_status(&second), "Portico; hit; ttl=18");
    assert_eq!(header(second.headers(), "age"), Some("12"));
    assert_eq!(body_json(&second), body_json(&first));
    assert_eq!(origin_calls(&harness), 1);
    assert!(second.headers().contains_key("x-request-id"));
    assert!(
        !second.headers().contains_key("x-portico-cache"),
        "the record stays inside"
    );
}

#[test]
fn head_is_answered_from_the_get_entry_and_post_bypasses() {
    let harness = thirty_seconds();
    get(&harness, "http://gw.example/catalog/1", &[]);
    let head = harness.send(request(Method::HEAD, "http://gw.example/catalog/1", &[]));
    assert_eq!(cache_status(&head), "Portico; hit; ttl=30");
    assert!(head.body().is_empty());
    let post = harness.send(request(Method::POST, "http://gw.example/catalog/1", &[]));
    assert_eq!(cache_status(&post), "Portico; fwd=bypass; detail=method");
    assert_eq!(origin_calls(&harness), 2);
}

#[test]
fn each_caller_gets_their_own_entry_unless_the_route_shares() {
    let harness = thirty_seconds();
    origin(&harness, &[]);
    let (a, b) = (key(&harness, 1), key(&harness, 2));
    let first_a = get(&harness, "http://gw.example/orders/7", &[("x-api-key", &a)]);
    let first_b = get(&harness, "http://gw.example/orders/7", &[("x-api-key", &b)]);
    assert_eq!(body_json(&first_a)["consumer"], "consumer-1");
    assert_eq!(
        body_json(&first_b)["consumer"],
        "consumer-2",
        "B never sees A's entry"
    );
    let again_a = get(&harness, "http://gw.example/orders/7", &[("x-api-key", &a)]);
    assert_eq!(cache_status(&again_a), "Portico; hit; ttl=30");
    assert_eq!(body_json(&again_a)["consumer"], "consumer-1");
    assert_eq!(origin_calls(&harness), 2);

    get(&harness, "http://gw.example/prices/1", &[("x-api-key", &a)]);
    let shared = get(&harness, "http://gw.example/prices/1", &[("x-api-key", &b)]);
    assert_eq!(cache_status(&shared), "Portico; hit; ttl=30");
    assert_eq!(origin_calls(&harness), 3);
}

#[test]
fn a_hit_still_needs_credentials_and_counts_against_the_limit() {
    let harness = thirty_seconds();
    let a = key(&harness, 1);
    get(&harness, "http://gw.example/orders/7", &[("x-api-key", &a)]);
    let anonymous = get(&harness, "http://gw.example/orders/7", &[]);
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        cache_status(&anonymous),
        "Portico; fwd=bypass; detail=refused",
        "every response of a cached route says what the cache did"
    );
    let responses: Vec<_> = (0..5)
        .map(|_| get(&harness, "http://gw.example/orders/7", &[("x-api-key", &a)]))
        .collect();
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 429],
        "hits count: 1 miss + 4 hits, then refused"
    );
    assert_eq!(
        cache_status(&responses[4]),
        "Portico; fwd=bypass; detail=refused"
    );
    assert_eq!(origin_calls(&harness), 1);
    let words: Vec<Option<&str>> = harness.access_logs().iter().map(|log| log.cache).collect();
    // Successes are sampled; refusals are always logged.
    assert_eq!(words, [Some("bypass"), Some("bypass")]);
}

#[test]
fn a_route_without_a_cache_policy_has_no_cache_status_even_when_refused() {
    let harness = thirty_seconds();
    let response = get(&harness, "http://gw.example/nowhere", &[]);
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(!response.headers().contains_key("cache-status"));
}

#[test]
fn responses_that_must_not_be_shared_are_not_stored() {
    for (headers, why) in [
        (&[("set-cookie", "session=1")][..], "set-cookie"),
        (
            &[("cache-control", "private, max-age=60")][..],
            "origin-cache-control",
        ),
        (&[("cache-control", "no-store")][..], "origin-cache-control"),
        (&[("vary", "*")][..], "vary"),
        (&[("vary", "x-user")][..], "vary"),
    ] {
        let harness = thirty_seconds();
        origin(&harness, headers);
        let first = get(&harness, "http://gw.example/catalog/1", &[]);
        assert_eq!(
            cache_status(&first),
            format!("Portico; fwd=uri-miss; detail={why}"),
            "{headers:?}"
        );
        get(&harness, "http://gw.example/catalog/1", &[]);
        assert_eq!(origin_calls(&harness), 2, "{headers:?}");
    }
    let harness = thirty_seconds();
    let error = get(&harness, "http://gw.example/catalog/1?status=500", &[]);
    assert_eq!(cache_status(&error), "Portico; fwd=uri-miss; detail=status");
    let not_found = get(&harness, "http://gw.example/catalog/1?status=404", &[]);
    assert!(cache_status(&not_found).contains("stored"));
}

#[test]
fn the_origin_cache_control_sets_freshness_when_honoured() {
    let harness = thirty_seconds();
    origin(
        &harness,
        &[("cache-control", "public, max-age=60, s-maxage=120")],
    );
    let first = get(&harness, "http://gw.example/catalog/1", &[]);
    assert_eq!(
        cache_status(&first),
        "Portico; fwd=uri-miss; stored; ttl=120"
    );
    harness.platform.advance(Duration::from_secs(100));
    let hit = get(&harness, "http://gw.example/catalog/1", &[]);
    assert_eq!(cache_status(&hit), "Portico; hit; ttl=20");
    assert_eq!(
        header(hit.headers(), "cache-control"),
        Some("public, max-age=60, s-maxage=120"),
        "the client sees the origin's directives"
    );

    let ignoring = cached(json!({ "ttl_seconds": 5, "honor_origin": false }));
    origin(&ignoring, &[("cache-control", "max-age=600")]);
    let first = get(&ignoring, "http://gw.example/catalog/1", &[]);
    assert_eq!(cache_status(&first), "Portico; fwd=uri-miss; stored; ttl=5");
}

#[test]
fn conditional_requests_are_answered_304_from_the_cache() {
    let harness = thirty_seconds();
    origin(
        &harness,
        &[
            ("etag", "\"v1\""),
            ("last-modified", "Thu, 01 Jan 2026 00:00:00 GMT"),
        ],
    );
    let first = get(
        &harness,
        "http://gw.example/catalog/1",
        &[("if-none-match", "\"v1\"")],
    );
    assert_eq!(
        first.status(),
        StatusCode::OK,
        "a miss gets the full response"
    );
    assert!(
        !harness.platform.sent()[0]
            .headers
            .contains_key("if-none-match"),
        "the client's conditional does not go upstream"
    );
    let revalidate = get(
        &harness,
        "http://gw.example/catalog/1",
        &[("if-none-match", "W/\"v1\"")],
    );
    assert_eq!(revalidate.status(), StatusCode::NOT_MODIFIED);
    assert!(revalidate.body().is_empty());
    assert_eq!(header(revalidate.headers(), "etag"), Some("\"v1\""));
    let since = get(
        &harness,
        "http://gw.example/catalog/1",
        &[("if-modified-since", "Thu, 01 Jan 2026 00:00:00 GMT")],
    );
    assert_eq!(since.status(), StatusCode::NOT_MODIFIED);
    let changed = get(
        &harness,
        "http://gw.example/catalog/1",
        &[("if-none-match", "\"v0\"")],
    );
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(origin_calls(&harness), 1);
}

#[test]
fn a_stale_entry_is_served_at_once_and_refreshed_once_in_the_background() {
    let harness = cached(json!({ "ttl_seconds": 30, "stale_while_revalidate_seconds": 30 }));
    origin(&harness, &[]);
    get(&harness, "http://gw.example/catalog/1", &[]);
    harness.platform.advance(Duration::from_secs(40));
    let stale: Vec<_> = (0..3)
        .map(|_| harness.send(request(Method::GET, "http://gw.example/catalog/1", &[])))
        .collect();
    for response in &stale {
        assert_eq!(cache_status(response), "Portico; hit; ttl=-10");
        assert_eq!(body_json(response)["call"], 1);
    }
    assert_eq!(origin_calls(&harness), 1, "nothing waited for the origin");
    assert_eq!(
        harness.platform.run_background(),
        1,
        "one refresh, stored when it came"
    );
    assert_eq!(origin_calls(&harness), 2, "three stale hits, one refresh");
    let fresh = get(&harness, "http://gw.example/catalog/1", &[]);
    assert_eq!(cache_status(&fresh), "Portico; hit; ttl=30");
    assert_eq!(body_json(&fresh)["call"], 2);
}

#[test]
fn a_stale_entry_answers_when_the_origin_fails_within_stale_if_error() {
    let harness = cached(json!({ "ttl_seconds": 30, "stale_if_error_seconds": 60 }));
    get(&harness, "http://gw.example/catalog/1", &[]);
    harness.platform.advance(Duration::from_secs(50));
    harness
        .platform
        .add_origin("127.0.0.1:9101", |_| OriginReply::Refuse);
    let rescued = get(&harness, "http://gw.example/catalog/1", &[]);
    assert_eq!(rescued.status(), StatusCode::OK);
    assert_eq!(
        cache_status(&rescued),
        "Portico; hit; ttl=-20; detail=stale-if-error"
    );
    harness.platform.add_origin("127.0.0.1:9101", |_| {
        OriginReply::Respond(Response::builder().status(503).body(Bytes::new()).unwrap())
    });
    assert_eq!(
        get(&harness, "http://gw.example/catalog/1", &[]).status(),
        StatusCode::OK
    );
    harness.platform.advance(Duration::from_secs(60));
    let too_late = get(&harness, "http://gw.example/catalog/1", &[]);
    assert_eq!(too_late.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[test]
fn concurrent_misses_for_one_key_make_one_origin_request() {
    let harness = thirty_seconds();
    let gate = Gate::new();
    let gate_for_origin = gate.clone();
    harness.platform.add_origin("127.0.0.1:9101", move |_| {
        OriginReply::Gated(
            gate_for_origin.clone(),
            Response::new(Bytes::from_static(b"{\"one\":1}")),
        )
    });
    let requests = (0..5).map(|_| {
        harness.gateway.handle(
            &harness.platform,
            portico::Inbound::new(
                request(Method::GET, "http://gw.example/catalog/1", &[]),
                None,
            ),
        )
    });
    let opener = async {
        // Every request has had its turn by now and waits: let the origin answer.
        yield_once().await;
        gate.open();
        // The leader shares what it stores, in its background work (as
        // `waitUntil` on Workers runs beside the other requests): run that
        // work as soon as the leader has handed it over.
        for _ in 0..1000 {
            yield_once().await;
            if harness.platform.run_background() > 0 {
                break;
            }
        }
    };
    let (responses, ()) = futures::executor::block_on(futures::future::join(
        futures::future::join_all(requests),
        opener,
    ));
    assert_eq!(origin_calls(&harness), 1);
    let statuses: Vec<&str> = responses.iter().map(cache_status).collect();
    assert_eq!(
        statuses.iter().filter(|s| s.contains("coalesced")).count(),
        4,
        "{statuses:?}"
    );
    for response in &responses {
        assert_eq!(body_json(response)["one"], 1);
    }
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

#[test]
fn headers_outside_the_key_cannot_poison_the_entry() {
    let harness = cached(json!({ "ttl_seconds": 30 }));
    let poisoned = get(
        &harness,
        "http://gw.example/catalog/1",
        &[
            ("x-forwarded-host", "evil.example"),
            ("x-original-url", "/admin"),
            ("x-http-method-override", "DELETE"),
        ],
    );
    let seen = &harness.platform.sent()[0].headers;
    assert_eq!(seen.get("x-forwarded-host").unwrap(), "gw.example");
    assert!(!seen.contains_key("x-original-url") && !seen.contains_key("x-http-method-override"));
    let clean = get(&harness, "http://gw.example/catalog/1", &[]);
    assert_eq!(cache_status(&clean), "Portico; hit; ttl=30");
    assert_eq!(body_json(&clean), body_json(&poisoned));
}

#[test]
fn a_new_generation_retires_every_entry_of_the_route() {
    let harness = cached(json!({ "ttl_seconds": 30, "generation": 1 }));
    get(&harness, "http://gw.example/catalog/1", &[]);
    let mut config: Value = serde_json::from_str(&auth_config(
        json!({}),
        json!([{ "id": "catalog", "path": "/catalog/*", "service": "users",
                 "cache": { "ttl_seconds": 30, "generation": 2 } }]),
    ))
    .unwrap();
    config["settings"] = json!({ "config_refresh_seconds": 1 });
    harness.platform.kv_put(
        KvNamespace::Config,
        portico::config::CONFIG_KEY,
        &config.to_string(),
    );
    // The first config is checked again after its 10 s refresh interval.
    harness.platform.advance(Duration::from_secs(11));
    let after = get(&harness, "http://gw.example/catalog/1", &[]);
    assert_eq!(
        cache_status(&after),
        "Portico; fwd=uri-miss; stored; ttl=30"
    );
    assert_eq!(origin_calls(&harness), 2);
}

#[test]
fn a_miss_while_the_store_is_under_way_is_answered_from_the_isolates_copy() {
    let harness = thirty_seconds();
    let gate = Gate::new();
    harness.platform.hold_cache_puts(Some(gate.clone()));
    let url = "http://gw.example/catalog/1";
    let first = get(&harness, url, &[]);
    assert_eq!(gate.waiting(), 1, "the store is under way");
    assert!(harness.platform.cache_keys().is_empty());
    let second = get(&harness, url, &[]);
    assert_eq!(cache_status(&second), "Portico; hit; ttl=30");
    assert_eq!(body_json(&second), body_json(&first));
    assert_eq!(origin_calls(&harness), 1, "the origin saw the first only");
    gate.open();
    harness.platform.run_background();
    assert_eq!(harness.platform.cache_keys().len(), 1, "then stored");
    assert_eq!(harness.platform.pending_background(), 0);
}

#[test]
fn a_failing_cache_is_a_logged_miss_never_an_error() {
    let harness = thirty_seconds();
    harness.platform.fail_cache(Some("cache unavailable"));
    let first = get(&harness, "http://gw.example/catalog/1", &[]);
    let second = get(&harness, "http://gw.example/catalog/1", &[]);
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(origin_calls(&harness), 2);
    let failures = harness
        .platform
        .events()
        .into_iter()
        .filter(|event| matches!(event, Event::CacheFailed { .. }))
        .count();
    assert!(failures >= 2, "{failures}");
}

#[test]
fn a_body_over_the_cap_passes_through_and_is_not_stored() {
    let harness = cached(json!({ "ttl_seconds": 30, "max_body_bytes": 16 }));
    let big = get(&harness, "http://gw.example/catalog/1", &[]);
    assert_eq!(big.status(), StatusCode::OK);
    assert!(common::body_bytes(&big).len() > 16);
    assert_eq!(
        cache_status(&big),
        "Portico; fwd=uri-miss; detail=too-large",
        "its declared length is over the cap: passed through, no copy read"
    );
    get(&harness, "http://gw.example/catalog/1", &[]);
    assert_eq!(origin_calls(&harness), 2);
}

/// An origin whose bodies have no declared length (chunked), `size` bytes.
fn chunked_origin(harness: &Harness, size: usize) {
    harness.platform.add_origin("127.0.0.1:9101", move |_| {
        let response = Response::builder()
            .header("content-type", "text/plain")
            .body(Bytes::from(vec![b'x'; size]))
            .unwrap();
        OriginReply::Chunked(response)
    });
}

fn not_stored_events(harness: &Harness) -> Vec<&'static str> {
    harness
        .platform
        .events()
        .into_iter()
        .filter_map(|event| match event {
            Event::CacheNotStored { reason, .. } => Some(reason),
            _ => None,
        })
        .collect()
}

#[test]
fn a_body_of_no_declared_length_is_not_promised_stored_and_over_the_cap_is_not() {
    let harness = cached(json!({ "ttl_seconds": 30, "max_body_bytes": 16 }));
    chunked_origin(&harness, 17);
    let big = get(&harness, "http://gw.example/catalog/1", &[]);
    assert_eq!(
        common::body_bytes(&big).len(),
        17,
        "the client has all of it"
    );
    assert_eq!(
        cache_status(&big),
        "Portico; fwd=uri-miss; ttl=30; detail=storing",
        "whether it fits is known only after the headers are sent"
    );
    assert_eq!(not_stored_events(&harness), ["too-large"]);
    let again = get(&harness, "http://gw.example/catalog/1", &[]);
    assert!(cache_status(&again).starts_with("Portico; fwd=uri-miss"));
    assert_eq!(origin_calls(&harness), 2);
}

#[test]
fn a_body_of_no_declared_length_within_the_cap_is_stored() {
    let harness = cached(json!({ "ttl_seconds": 30, "max_body_bytes": 16 }));
    chunked_origin(&harness, 16);
    let first = get(&harness, "http://gw.example/catalog/1", &[]);
    assert_eq!(
        cache_status(&first),
        "Portico; fwd=uri-miss; ttl=30; detail=storing"
    );
    let hit = get(&harness, "http://gw.example/catalog/1", &[]);
    assert_eq!(cache_status(&hit), "Portico; hit; ttl=30");
    assert_eq!(common::body_bytes(&hit).len(), 16);
    assert_eq!(header(hit.headers(), "content-length"), Some("16"));
    assert_eq!(origin_calls(&harness), 1);
    assert!(not_stored_events(&harness).is_empty());
}

#[test]
fn a_response_that_is_not_stored_is_not_shared_with_waiting_requests() {
    let harness = thirty_seconds();
    let gate = Gate::new();
    let gate_for_origin = gate.clone();
    harness.platform.add_origin("127.0.0.1:9101", move |_| {
        let response = Response::builder()
            .header("set-cookie", "session=abc")
            .body(Bytes::from_static(b"{}"))
            .unwrap();
        OriginReply::Gated(gate_for_origin.clone(), response)
    });
    let requests = (0..3).map(|_| {
        harness.gateway.handle(
            &harness.platform,
            portico::Inbound::new(
                request(Method::GET, "http://gw.example/catalog/1", &[]),
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
    assert_eq!(
        origin_calls(&harness),
        3,
        "each waiter went to the origin itself"
    );
    assert!(responses.iter().all(|r| r.status() == StatusCode::OK));
    assert!(
        responses
            .iter()
            .all(|r| !cache_status(r).contains("coalesced"))
    );
}

#[test]
fn contradictory_or_unsafe_cache_policies_are_refused_with_their_paths() {
    let config = |defaults: Value, route: Value| {
        json!({
            "version": 1,
            "cache": defaults,
            "auth": {},
            "services": { "s": { "url": "http://127.0.0.1:9101" } },
            "routes": [ route ]
        })
        .to_string()
    };
    let public =
        |cache: Value| json!({ "id": "r", "path": "/r/*", "service": "s", "cache": cache });
    let keyed = |cache: Value| json!({ "id": "r", "path": "/r/*", "service": "s", "auth": { "api_key": {} }, "cache": cache });
    let cases = [
        (
            json!({}),
            public(json!({ "shared": true })),
            "routes[0].cache.shared",
        ),
        (json!({ "shared": true }), public(json!({})), "cache.shared"),
        (
            json!({}),
            keyed(json!({ "vary_headers": ["Authorization"] })),
            "routes[0].cache.vary_headers[0]",
        ),
        (
            json!({}),
            keyed(json!({ "vary_headers": ["x-api-key"] })),
            "routes[0].cache.vary_headers[0]",
        ),
        (
            json!({}),
            public(json!({ "statuses": [206] })),
            "routes[0].cache.statuses[0]",
        ),
        (
            json!({}),
            public(json!({ "ttl_seconds": -5 })),
            "routes[0].cache.ttl_seconds",
        ),
        (
            json!({}),
            public(json!({ "ttl_seconds": 0, "honor_origin": false })),
            "routes[0].cache.ttl_seconds",
        ),
        (
            json!({}),
            public(json!({ "query_params": ["a"], "ignore_query_params": ["b"] })),
            "routes[0].cache",
        ),
        (
            json!({}),
            public(json!({ "max_body_bytes": 0 })),
            "routes[0].cache.max_body_bytes",
        ),
        (
            json!({}),
            json!({ "id": "r", "path": "/r/*", "methods": ["POST"], "service": "s", "cache": {} }),
            "routes[0].cache",
        ),
        (
            json!({}),
            public(json!({ "tll_seconds": 5 })),
            "routes[0].cache.tll_seconds",
        ),
    ];
    for (defaults, route, path) in cases {
        let error = portico::config::Config::from_json(&config(defaults.clone(), route.clone()))
            .unwrap_err();
        assert!(
            error.issues.iter().any(|issue| issue.path == path),
            "{defaults} / {route}: expected an issue at {path}, got {error}"
        );
    }
    let fine = portico::config::Config::from_json(&config(
        json!({ "ttl_seconds": 10 }),
        public(json!({ "ignore_query_params": ["utm_source"] })),
    ))
    .unwrap();
    assert_eq!(
        fine.routes[0].cache.as_ref().unwrap().ttl,
        Duration::from_secs(10),
        "defaults apply"
    );
}

#[test]
fn operators_purge_a_route_or_a_shared_url_in_this_data_centre() {
    let mut config: Value = serde_json::from_str(&auth_config(
        json!({}),
        json!([
            { "id": "catalog", "path": "/catalog/*", "service": "users", "cache": { "ttl_seconds": 300 } },
            { "id": "orders", "path": "/orders/*", "service": "users",
              "auth": { "api_key": {} }, "cache": { "ttl_seconds": 300 } }
        ]),
    ))
    .unwrap();
    config["admin"] = json!({ "token_secret": "ADMIN_TOKEN" });
    let harness = Harness::with_config(&config.to_string());
    harness.platform.set_secret("ADMIN_TOKEN", "admin-secret");
    let purge = |path: &str| {
        harness.send(request(
            Method::DELETE,
            &format!("http://gw.example/__portico/cache/{path}"),
            &[("authorization", "Bearer admin-secret")],
        ))
    };

    get(&harness, "http://gw.example/catalog/1?b=2&a=1", &[]);
    // A hit: this isolate now holds its own copy too, which the purge
    // drops as well.
    get(&harness, "http://gw.example/catalog/1?b=2&a=1", &[]);
    get(&harness, "http://gw.example/catalog/2", &[]);
    let by_url = purge("urls?url=http%3A%2F%2Fgw.example%2Fcatalog%2F1%3Fa%3D1%26b%3D2");
    assert_eq!(by_url.status(), StatusCode::OK);
    assert_eq!(body_json(&by_url)["deleted"], true);
    assert!(
        cache_status(&get(&harness, "http://gw.example/catalog/1?a=1&b=2", &[]))
            .contains("uri-miss")
    );
    assert!(cache_status(&get(&harness, "http://gw.example/catalog/2", &[])).contains("hit"));

    let by_route = purge("routes/catalog");
    assert_eq!(by_route.status(), StatusCode::OK);
    assert_eq!(body_json(&by_route)["scope"], "this data centre");
    assert!(cache_status(&get(&harness, "http://gw.example/catalog/2", &[])).contains("uri-miss"));

    let per_caller = purge("urls?url=http%3A%2F%2Fgw.example%2Forders%2F1");
    assert_eq!(per_caller.status(), StatusCode::BAD_REQUEST);
    assert_eq!(purge("routes/nowhere").status(), StatusCode::NOT_FOUND);
    let wrong_method = harness.send(request(
        Method::GET,
        "http://gw.example/__portico/cache/routes/catalog",
        &[("authorization", "Bearer admin-secret")],
    ));
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[test]
fn another_isolate_sees_a_route_purge_within_the_epoch_time() {
    let harness = cached(json!({ "ttl_seconds": 300 }));
    let other = portico::Gateway::new();
    let via_other = |harness: &Harness| {
        let response = futures::executor::block_on(other.handle(
            &harness.platform,
            portico::Inbound::new(
                request(Method::GET, "http://gw.example/catalog/1", &[]),
                None,
            ),
        ));
        harness.platform.run_background();
        response
    };
    get(&harness, "http://gw.example/catalog/1", &[]);
    assert!(
        cache_status(&via_other(&harness)).contains("hit"),
        "isolates share the data centre's cache"
    );
    let isolate = std::rc::Rc::new(portico::pipeline::Isolate::default());
    futures::executor::block_on(portico::phases::cache::purge_route(
        &isolate,
        &harness.platform,
        "catalog",
    ))
    .unwrap();
    assert!(
        cache_status(&via_other(&harness)).contains("hit"),
        "the other isolate trusts its epoch a while"
    );
    harness.platform.advance(portico::phases::cache::EPOCH_TTL);
    assert!(cache_status(&via_other(&harness)).contains("uri-miss"));
}

#[test]
fn a_hot_entry_is_answered_from_the_isolates_own_copy_for_at_most_a_second() {
    let harness = thirty_seconds();
    get(&harness, "http://gw.example/catalog/1", &[]);
    harness.platform.advance(Duration::from_secs(2));
    let from_cache = get(&harness, "http://gw.example/catalog/1", &[]);
    assert_eq!(cache_status(&from_cache), "Portico; hit; ttl=28");

    // The data centre's cache is not asked again within the second: a
    // lookup would fail now.
    harness.platform.fail_cache(Some("cache unavailable"));
    harness.platform.advance(Duration::from_millis(900));
    let from_memory = get(&harness, "http://gw.example/catalog/1", &[]);
    assert_eq!(from_memory.status(), StatusCode::OK);
    assert_eq!(cache_status(&from_memory), "Portico; hit; ttl=28");
    assert_eq!(header(from_memory.headers(), "age"), Some("2"));
    assert_eq!(body_json(&from_memory), body_json(&from_cache));
    assert!(!from_memory.headers().contains_key("x-portico-cache"));
    let head = harness.send(request(Method::HEAD, "http://gw.example/catalog/1", &[]));
    assert_eq!(cache_status(&head), "Portico; hit; ttl=28");
    assert_eq!(origin_calls(&harness), 1);

    // After the second, the lookup is made again (and here fails: a miss).
    harness.platform.advance(Duration::from_millis(200));
    let after = get(&harness, "http://gw.example/catalog/1", &[]);
    assert_eq!(after.status(), StatusCode::OK);
    assert!(
        cache_status(&after).contains("fwd="),
        "{}",
        cache_status(&after)
    );
    assert_eq!(origin_calls(&harness), 2);
}

#[test]
fn a_copy_is_kept_for_small_bodies_only_and_never_past_freshness() {
    let harness = cached(json!({ "ttl_seconds": 30, "max_body_bytes": 200_000 }));
    chunked_origin(&harness, 100_000);
    get(&harness, "http://gw.example/catalog/big", &[]);
    let hit = get(&harness, "http://gw.example/catalog/big", &[]);
    assert_eq!(cache_status(&hit), "Portico; hit; ttl=30");
    assert_eq!(common::body_bytes(&hit).len(), 100_000);
    harness.platform.fail_cache(Some("cache unavailable"));
    let next = get(&harness, "http://gw.example/catalog/big", &[]);
    assert!(
        cache_status(&next).contains("fwd="),
        "100 KB is not kept in memory"
    );
    assert_eq!(origin_calls(&harness), 2);

    // An entry fresh for less than a second more is held no longer.
    let brief = cached(json!({ "ttl_seconds": 1, "stale_while_revalidate_seconds": 30 }));
    get(&brief, "http://gw.example/catalog/1", &[]);
    brief.platform.advance(Duration::from_millis(500));
    get(&brief, "http://gw.example/catalog/1", &[]);
    brief.platform.advance(Duration::from_millis(600));
    let stale = get(&brief, "http://gw.example/catalog/1", &[]);
    assert_eq!(
        cache_status(&stale),
        "Portico; hit; ttl=0",
        "stale: served from the data centre's cache while it is refreshed"
    );
    assert_eq!(origin_calls(&brief), 2, "one refresh");
}
