//! What the gateway tells operators, on the in-memory platform: one access
//! event per request with everything needed to explain it (and nothing
//! secret), W3C trace context end to end, sampling that never hides an
//! error, and one metrics point per request.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use common::{Harness, auth_config, body_json, header, request};
use http::{Method, StatusCode};
use portico::observe::events::{AccessLog, Event};
use portico::platform::KvNamespace;
use portico::platform::memory::OriginReply;
use serde_json::{Value, json};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn access_logs(harness: &Harness) -> Vec<AccessLog> {
    harness.access_logs()
}

/// An API-key route with a per-key limit, and a public route; every
/// request logged unless `extra` sets another `log`.
fn harness(extra: Value) -> Harness {
    let mut config: Value = serde_json::from_str(&auth_config(
        json!({}),
        json!([
            { "id": "orders", "path": "/orders/*", "service": "users",
              "auth": { "api_key": {} },
              "rate_limit": { "plan": { "name": "per-key", "limit": 2, "period": "1m", "scope": ["key"] } } },
            { "id": "public", "path": "/public/*", "service": "users" }
        ]),
    ))
    .unwrap();
    config["log"] = json!({ "sample_rate": 1 });
    if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        config.extend(extra.clone());
    }
    Harness::with_config(&config.to_string())
}

fn api_key(harness: &Harness) -> String {
    harness.store_key(3, "acme", |_| {}).1
}

#[test]
fn the_access_event_tells_the_whole_story_of_a_request_and_no_secret() {
    let harness = harness(json!({}));
    let key = api_key(&harness);
    let response = harness.send(request(
        Method::GET,
        "http://gw.example/orders/7?token=query-secret",
        &[("x-api-key", &key), ("traceparent", TRACEPARENT)],
    ));
    assert_eq!(response.status(), StatusCode::OK);
    let logs = access_logs(&harness);
    let log = logs.last().unwrap();
    assert_eq!(log.route.as_deref(), Some("orders"));
    assert_eq!(log.service.as_deref(), Some("users"));
    assert_eq!(log.upstream.as_deref(), Some("127.0.0.1:9101"));
    assert_eq!(log.auth_method, Some("api_key"));
    assert_eq!(log.consumer.as_deref(), Some("acme"));
    assert_eq!(log.rate_limit, Some("allowed"));
    assert_eq!(log.status, 200);
    assert_eq!(log.upstream_status, Some(200));
    assert_eq!(log.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(log.span_id.len(), 16);
    assert_eq!(
        Some(log.request_id.as_str()),
        header(response.headers(), "x-request-id")
    );
    assert!(log.timings_ms.auth.is_some() && log.timings_ms.rate_limit.is_some());
    assert!(log.timings_ms.upstream.is_some());

    let line = Event::Request(log.clone()).to_json_line();
    let parsed: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(parsed["event"], "request");
    assert!(parsed["timings_ms"]["total"].is_u64(), "{line}");
    for secret in ["query-secret", &key, "token="] {
        assert!(!line.contains(secret), "{line}");
    }
}

#[test]
fn phase_timings_show_where_a_slow_request_spent_its_time() {
    let harness = harness(json!({}));
    harness.get("http://gw.example/public/1?delay_ms=250");
    let log = access_logs(&harness).pop().unwrap();
    assert_eq!(log.timings_ms.upstream, Some(250));
    assert_eq!(log.timings_ms.total, 250);
    assert_eq!(
        log.timings_ms.auth, None,
        "a public route does not authenticate"
    );
}

#[test]
fn a_refusal_is_logged_with_the_decision_and_problem() {
    let harness = harness(json!({}));
    let key = api_key(&harness);
    for _ in 0..3 {
        harness.send(request(
            Method::GET,
            "http://gw.example/orders/7",
            &[("x-api-key", &key)],
        ));
    }
    let log = access_logs(&harness).pop().unwrap();
    assert_eq!(log.status, 429);
    assert_eq!(log.rate_limit, Some("refused"));
    assert_eq!(log.problem, Some("rate-limited"));
    assert_eq!(log.upstream, None);
}

#[test]
fn a_client_trace_is_continued_to_the_upstream_and_back() {
    let harness = harness(json!({}));
    let response = harness.send(request(
        Method::GET,
        "http://gw.example/public/1",
        &[
            ("traceparent", TRACEPARENT),
            ("tracestate", "vendor=opaque,other=1"),
        ],
    ));
    let upstream = &body_json(&response)["headers"];
    let sent = upstream["traceparent"].as_str().unwrap();
    assert!(
        sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{sent}"
    );
    assert!(sent.ends_with("-01"), "the sampled flag is kept: {sent}");
    assert_ne!(
        &sent[36..52],
        "00f067aa0ba902b7",
        "the gateway's own span is the parent"
    );
    assert_eq!(upstream["tracestate"], "vendor=opaque,other=1");
    assert_eq!(header(response.headers(), "traceparent"), Some(sent));
}

#[test]
fn a_missing_or_malformed_trace_is_replaced_by_a_new_one() {
    let harness = harness(json!({}));
    let mut trace_ids = Vec::new();
    for traceparent in [
        "",
        "00-zz-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    ] {
        let headers: Vec<(&str, &str)> = if traceparent.is_empty() {
            Vec::new()
        } else {
            vec![("traceparent", traceparent)]
        };
        let response = harness.send(request(Method::GET, "http://gw.example/public/1", &headers));
        let sent = body_json(&response)["headers"]["traceparent"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(sent.len(), 55, "{sent}");
        assert_eq!(
            header(response.headers(), "traceparent"),
            Some(sent.as_str())
        );
        trace_ids.push(sent[3..35].to_owned());
    }
    trace_ids.sort();
    trace_ids.dedup();
    assert_eq!(trace_ids.len(), 3, "each request starts its own trace");
    assert!(
        trace_ids
            .iter()
            .all(|id| id != "00000000000000000000000000000000")
    );
}

#[test]
fn sampling_drops_only_successes_and_never_an_error() {
    let harness = harness(json!({ "log": { "sample_rate": 0 } }));
    for _ in 0..5 {
        assert_eq!(
            harness.get("http://gw.example/public/1").status(),
            StatusCode::OK
        );
    }
    harness.get("http://gw.example/orders/1");
    harness.get("http://gw.example/nowhere");
    harness.get("http://gw.example/public/1?status=503");
    let statuses: Vec<u16> = access_logs(&harness).iter().map(|log| log.status).collect();
    assert_eq!(statuses, [401, 404, 503]);
    assert_eq!(
        harness.platform.metrics().len(),
        8,
        "metrics count every request"
    );
}

#[test]
fn by_default_one_success_in_ten_is_logged_and_every_error() {
    let harness = harness(json!({}));
    let mut config: Value = serde_json::from_str(&auth_config(
        json!({}),
        json!([{ "id": "public", "path": "/public/*", "service": "users" }]),
    ))
    .unwrap();
    config.as_object_mut().unwrap().remove("log");
    harness.platform.kv_put(
        KvNamespace::Config,
        portico::config::CONFIG_KEY,
        &config.to_string(),
    );
    for _ in 0..1000 {
        harness.get("http://gw.example/public/1");
    }
    for _ in 0..50 {
        harness.get("http://gw.example/nowhere");
    }
    let logs = access_logs(&harness);
    let errors = logs.iter().filter(|log| log.status == 404).count();
    assert_eq!(errors, 50);
    let successes = logs.len() - errors;
    assert!(
        (60..=140).contains(&successes),
        "{successes} of 1000 logged"
    );
}

#[test]
fn a_sample_rate_keeps_about_that_share_of_successes() {
    let harness = harness(json!({ "log": { "sample_rate": 0.25 } }));
    for _ in 0..2000 {
        harness.get("http://gw.example/public/1");
    }
    let logged = access_logs(&harness).len();
    assert!(
        (380..=620).contains(&logged),
        "{logged} of 2000 logged at 0.25"
    );
}

#[test]
fn a_metrics_point_carries_route_consumer_status_class_and_latency() {
    let harness = harness(json!({}));
    let key = api_key(&harness);
    harness.send(request(
        Method::GET,
        "http://gw.example/orders/7?delay_ms=40",
        &[("x-api-key", &key)],
    ));
    let point = harness.platform.metrics().pop().unwrap();
    assert_eq!(point.index, "orders");
    assert_eq!(&point.blobs[..4], ["orders", "users", "acme", "2xx"]);
    assert_eq!(point.doubles[0], 200.0);
    assert_eq!(point.doubles[1], 40.0);
    assert_eq!(point.blobs.len(), portico::observe::metrics::BLOBS.len());
}

/// An origin that drops the first `failures` connections, then answers.
fn flaky_origin(harness: &Harness, failures: usize) -> Rc<Cell<usize>> {
    let seen = Rc::new(Cell::new(0));
    let counter = Rc::clone(&seen);
    harness
        .platform
        .add_origin("127.0.0.1:9101", move |request| {
            counter.set(counter.get() + 1);
            if counter.get() <= failures {
                return OriginReply::Refuse;
            }
            if let Some(delay) = request
                .uri
                .query()
                .and_then(|q| q.strip_prefix("delay_ms="))
            {
                return OriginReply::Delayed(
                    Duration::from_millis(delay.parse().unwrap()),
                    http::Response::new(Bytes::from_static(b"late")),
                );
            }
            OriginReply::Respond(http::Response::new(Bytes::from_static(b"ok")))
        });
    seen
}

#[test]
fn a_get_that_got_no_response_is_sent_once_more_and_both_tries_are_logged() {
    let harness = harness(json!({}));
    let seen = flaky_origin(&harness, 1);
    let response = harness.get("http://gw.example/public/1");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen.get(), 2);
    let log = access_logs(&harness).pop().unwrap();
    assert_eq!(log.attempts.len(), 2);
    assert!(
        log.attempts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("refused")
    );
    assert_eq!(log.attempts[1].status, Some(200));
    // The second try is the same request: same URL, same headers (request
    // id, trace and forwarding headers included).
    let sent = harness.platform.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].method, sent[1].method);
    assert_eq!(sent[0].uri, sent[1].uri);
    assert_eq!(sent[0].headers, sent[1].headers);
    assert!(sent[1].headers.contains_key("x-request-id"));
    assert!(sent[1].headers.contains_key("traceparent"));
}

#[test]
fn only_one_retry_and_never_for_a_request_with_a_body_or_an_unsafe_method() {
    let harness = harness(json!({}));
    let seen = flaky_origin(&harness, 10);
    assert_eq!(
        harness.get("http://gw.example/public/1").status(),
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(seen.get(), 2, "one retry, not more");

    let mut post = request(Method::POST, "http://gw.example/public/1", &[]);
    *post.body_mut() = portico::Body::full("payload");
    assert_eq!(harness.send(post).status(), StatusCode::BAD_GATEWAY);
    let delete = request(Method::DELETE, "http://gw.example/public/1", &[]);
    assert_eq!(harness.send(delete).status(), StatusCode::BAD_GATEWAY);
    assert_eq!(seen.get(), 4, "POST and DELETE went out once each");
}

#[test]
fn a_timed_out_request_is_not_retried() {
    let harness = harness(json!({}));
    let seen = flaky_origin(&harness, 0);
    let response = harness.get("http://gw.example/public/1?delay_ms=60000");
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(seen.get(), 1);
}
