//! API-key authentication: keys hashed in KV, the isolate cache and its
//! bounds, where keys may be read from, and the identity services receive.

mod common;

use std::time::Duration;

use common::{Harness, auth_config, body_json, challenges, header, last_upstream, request};
use http::{Method, StatusCode};
use portico::auth::api_key::{self, KeyRecord};
use portico::auth::{RatePlan, identity};
use portico::platform::KvNamespace;
use serde_json::{Value, json};

const NOW_SECS: u64 = 1_767_225_600;

fn harness(route_auth: Value) -> Harness {
    Harness::with_config(&auth_config(
        json!({ "api_keys": { "cache_seconds": 30, "negative_cache_seconds": 5 } }),
        json!([
            { "id": "orders", "path": "/orders/*", "service": "users", "auth": route_auth },
            { "id": "open", "path": "/open", "service": "users" }
        ]),
    ))
}

/// Store a new key for `name`; returns (id, key).
fn store_key(harness: &Harness, name: &str, edit: impl Fn(&mut KeyRecord)) -> (String, String) {
    let seed = name
        .bytes()
        .fold(7u8, |a, b| a.wrapping_mul(31).wrapping_add(b));
    let mut random = [0u8; 38];
    for (i, byte) in random.iter_mut().enumerate() {
        *byte = seed.wrapping_add(u8::try_from(i).unwrap()).wrapping_mul(13);
    }
    let (id, key) = api_key::generate(&random);
    let mut record = KeyRecord::new(&id, &key, name, NOW_SECS - 60);
    edit(&mut record);
    harness.put_key(&record);
    (id, key)
}

fn with_key(harness: &Harness, key: &str) -> http::Response<portico::Body<bytes::Bytes>> {
    harness.send(request(
        Method::GET,
        "http://gw.example/orders/1",
        &[("x-api-key", key)],
    ))
}

#[test]
fn a_valid_key_reaches_the_service_as_a_trusted_identity() {
    let harness = harness(json!({ "api_key": {} }));
    let (id, key) = store_key(&harness, "acme", |r| {
        r.roles = vec!["orders".into(), "billing".into()];
        r.rate = Some(RatePlan {
            limit: 5,
            period_seconds: 60,
        });
    });
    let response = with_key(&harness, &key);
    assert_eq!(response.status(), StatusCode::OK);
    let sent = last_upstream(&harness).headers;
    assert_eq!(header(&sent, "x-portico-auth-method"), Some("api_key"));
    assert_eq!(header(&sent, "x-portico-consumer"), Some("acme"));
    assert_eq!(header(&sent, "x-portico-key-id"), Some(id.as_str()));
    assert_eq!(header(&sent, "x-portico-roles"), Some("orders,billing"));
    assert!(
        !sent.contains_key("x-api-key"),
        "the key itself is not forwarded"
    );
}

#[test]
fn wrong_unknown_and_malformed_keys_are_rejected() {
    let harness = harness(json!({ "api_key": {} }));
    let (_, key) = store_key(&harness, "acme", |_| {});
    let mut wrong = key.clone();
    wrong.replace_range(key.len() - 4.., "AAAA");
    for (bad, why) in [
        (wrong.as_str(), "wrong secret"),
        (
            "pk_ffffffffffff_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "unknown id",
        ),
        ("hunter2", "malformed"),
    ] {
        let response = with_key(&harness, bad);
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{why}");
        assert_eq!(
            challenges(&response),
            ["ApiKey realm=\"portico\", header=\"x-api-key\", error=\"invalid_key\""],
            "{why}"
        );
        assert_eq!(
            body_json(&response)["detail"],
            "The credentials presented are not valid."
        );
    }
    let response = harness.get("http://gw.example/orders/1");
    assert_eq!(
        challenges(&response),
        ["ApiKey realm=\"portico\", header=\"x-api-key\""]
    );
}

#[test]
fn a_malformed_key_costs_no_kv_read() {
    let harness = harness(json!({ "api_key": {} }));
    harness.get("http://gw.example/open"); // loads the config
    let reads = harness.platform.kv_reads();
    with_key(&harness, "definitely-not-a-key");
    assert_eq!(harness.platform.kv_reads(), reads);
}

#[test]
fn expired_and_disabled_keys_are_rejected() {
    let harness = harness(json!({ "api_key": {} }));
    let (_, expired) = store_key(&harness, "old", |r| r.expires_at = Some(NOW_SECS));
    let (_, disabled) = store_key(&harness, "gone", |r| r.disabled = true);
    let (_, later) = store_key(&harness, "later", |r| r.expires_at = Some(NOW_SECS + 10));
    assert_eq!(
        with_key(&harness, &expired).status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        with_key(&harness, &disabled).status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(with_key(&harness, &later).status(), StatusCode::OK);
    harness.platform.advance(Duration::from_secs(10));
    assert_eq!(
        with_key(&harness, &later).status(),
        StatusCode::UNAUTHORIZED,
        "expires while cached"
    );
}

#[test]
fn a_hot_key_costs_one_kv_read_per_cache_period() {
    let harness = harness(json!({ "api_key": {} }));
    let (_, key) = store_key(&harness, "acme", |_| {});
    with_key(&harness, &key);
    let reads = harness.platform.kv_reads();
    for _ in 0..50 {
        assert_eq!(with_key(&harness, &key).status(), StatusCode::OK);
    }
    assert_eq!(harness.platform.kv_reads(), reads);
}

#[test]
fn a_revoked_key_stops_working_within_the_cache_period() {
    let harness = harness(json!({ "api_key": {} }));
    let (id, key) = store_key(&harness, "acme", |_| {});
    assert_eq!(with_key(&harness, &key).status(), StatusCode::OK);
    let mut record: KeyRecord = serde_json::from_str(
        &futures::executor::block_on(portico::platform::KvStore::get_text(
            &harness.platform,
            KvNamespace::Keys,
            &api_key::kv_key(&id),
        ))
        .unwrap()
        .unwrap(),
    )
    .unwrap();
    record.disabled = true;
    harness.put_key(&record);
    harness.platform.advance(Duration::from_secs(29));
    assert_eq!(
        with_key(&harness, &key).status(),
        StatusCode::OK,
        "still cached"
    );
    harness.platform.advance(Duration::from_secs(1));
    assert_eq!(
        with_key(&harness, &key).status(),
        StatusCode::UNAUTHORIZED,
        "30 s bound"
    );
}

#[test]
fn unknown_ids_are_remembered_briefly() {
    let harness = harness(json!({ "api_key": {} }));
    let unknown = "pk_ffffffffffff_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    with_key(&harness, unknown);
    let reads = harness.platform.kv_reads();
    with_key(&harness, unknown);
    assert_eq!(harness.platform.kv_reads(), reads, "negative cache hit");
    harness.platform.advance(Duration::from_secs(5));
    with_key(&harness, unknown);
    assert_eq!(
        harness.platform.kv_reads(),
        reads + 1,
        "negative cache expired"
    );
}

#[test]
fn keys_are_read_from_the_query_only_where_a_route_opts_in() {
    let strict = harness(json!({ "api_key": {} }));
    let (_, key) = store_key(&strict, "acme", |_| {});
    let response = strict.get(&format!("http://gw.example/orders/1?api_key={key}"));
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let lenient = harness(json!({ "api_key": { "query": "api_key" } }));
    let (_, key) = store_key(&lenient, "acme", |_| {});
    let response = lenient.get(&format!("http://gw.example/orders/1?x=1&api_key={key}&y=2"));
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        last_upstream(&lenient).uri.query(),
        Some("x=1&y=2"),
        "the key is not forwarded"
    );
}

#[test]
fn bearer_keys_and_custom_headers_work_where_configured() {
    let harness = harness(json!({ "api_key": { "header": "X-Partner-Key", "bearer": true } }));
    let (_, key) = store_key(&harness, "acme", |_| {});
    let bearer = harness.send(request(
        Method::GET,
        "http://gw.example/orders/1",
        &[("authorization", &format!("Bearer {key}"))],
    ));
    assert_eq!(bearer.status(), StatusCode::OK);
    assert!(
        !last_upstream(&harness)
            .headers
            .contains_key("authorization")
    );
    let custom = harness.send(request(
        Method::GET,
        "http://gw.example/orders/1",
        &[("x-partner-key", &key)],
    ));
    assert_eq!(custom.status(), StatusCode::OK);
    assert_eq!(
        with_key(&harness, &key).status(),
        StatusCode::UNAUTHORIZED,
        "X-API-Key is not read here"
    );
}

#[test]
fn forwarding_credentials_is_opt_in() {
    let harness = harness(json!({ "api_key": {}, "forward_credentials": true }));
    let (_, key) = store_key(&harness, "acme", |_| {});
    with_key(&harness, &key);
    assert_eq!(
        header(&last_upstream(&harness).headers, "x-api-key"),
        Some(key.as_str())
    );
}

#[test]
fn two_key_headers_are_refused() {
    let harness = harness(json!({ "api_key": {} }));
    let (_, key) = store_key(&harness, "acme", |_| {});
    let response = harness.send(request(
        Method::GET,
        "http://gw.example/orders/1",
        &[
            ("x-api-key", &key),
            (
                "x-api-key",
                "pk_ffffffffffff_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            ),
        ],
    ));
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn kv_down_fails_closed_but_cached_keys_keep_working() {
    let harness = harness(json!({ "api_key": {} }));
    let (_, cached) = store_key(&harness, "cached", |_| {});
    let (_, cold) = store_key(&harness, "cold", |_| {});
    assert_eq!(with_key(&harness, &cached).status(), StatusCode::OK);
    harness.platform.fail_kv(Some("KV unavailable"));
    assert_eq!(with_key(&harness, &cached).status(), StatusCode::OK);
    let response = with_key(&harness, &cold);
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body_json(&response)["type"],
        "urn:portico:problem:auth-unavailable"
    );
}

#[test]
fn an_unreadable_key_record_is_a_rejection_not_a_crash() {
    let harness = harness(json!({ "api_key": {} }));
    let (id, key) = store_key(&harness, "acme", |_| {});
    harness
        .platform
        .kv_put(KvNamespace::Keys, &api_key::kv_key(&id), "{not json");
    assert_eq!(with_key(&harness, &key).status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn roles_are_enforced_for_keys() {
    let harness = harness(json!({ "api_key": {}, "roles": { "any_of": ["orders"] } }));
    let (_, reader) = store_key(&harness, "reader", |r| r.roles = vec!["profile".into()]);
    let (_, writer) = store_key(&harness, "writer", |r| r.roles = vec!["orders".into()]);
    let response = with_key(&harness, &reader);
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        challenges(&response).is_empty(),
        "no bearer challenge for API keys"
    );
    assert_eq!(with_key(&harness, &writer).status(), StatusCode::OK);
}

#[test]
fn requests_are_signed_so_services_can_verify_them() {
    let harness = Harness::with_config(&auth_config(
        json!({ "signing_secret": "PORTICO_IDENTITY_SECRET" }),
        json!([{ "id": "orders", "path": "/orders/*", "service": "users", "auth": { "api_key": {} } }]),
    ));
    let (id, key) = store_key(&harness, "acme", |r| r.roles = vec!["orders".into()]);

    // Without the secret the gateway refuses to send unsigned requests.
    let response = with_key(&harness, &key);
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(harness.platform.sent().is_empty());

    harness
        .platform
        .set_secret("PORTICO_IDENTITY_SECRET", "s3cret-for-tests");
    let response = harness.send(request(
        Method::POST,
        "http://gw.example/orders/1?b=2",
        &[("x-api-key", &key)],
    ));
    assert_eq!(response.status(), StatusCode::OK);
    let sent = last_upstream(&harness).headers;
    let timestamp = header(&sent, "x-portico-timestamp").unwrap();
    assert_eq!(timestamp, NOW_SECS.to_string());
    let values = ["api_key", "acme", id.as_str(), "", "", "orders", ""].map(str::to_owned);
    let expected = identity::signature(
        b"s3cret-for-tests",
        &identity::canonical(NOW_SECS, "POST", "/orders/1?b=2", &values),
    );
    assert_eq!(
        header(&sent, "x-portico-signature"),
        Some(expected.as_str())
    );
}

#[test]
fn the_demo_key_fixture_matches_its_record() {
    let fixture: Value = serde_json::from_str(&common::fixture("auth/demo-api-key.json")).unwrap();
    let key = fixture["key"].as_str().unwrap();
    let record: KeyRecord = serde_json::from_value(fixture["record"].clone()).unwrap();
    assert_eq!(api_key::key_id(key), Some(record.id.as_str()));
    assert!(record.matches(key));
}

#[test]
fn a_custom_identity_prefix_names_and_guards_the_headers() {
    let harness = Harness::with_config(&auth_config(
        json!({ "identity_header_prefix": "X-Gateway-", "signing_secret": "SIGNING" }),
        json!([{ "id": "orders", "path": "/orders/*", "service": "users", "auth": { "api_key": {} } }]),
    ));
    harness.platform.set_secret("SIGNING", "s");
    let (_, key) = store_key(&harness, "acme", |_| {});
    harness.send(request(
        Method::GET,
        "http://gw.example/orders/1",
        &[("x-api-key", &key), ("x-gateway-roles", "admin")],
    ));
    let sent = last_upstream(&harness).headers;
    assert_eq!(header(&sent, "x-gateway-consumer"), Some("acme"));
    assert_eq!(
        header(&sent, "x-gateway-roles"),
        None,
        "the client's copy is gone"
    );
    assert!(header(&sent, "x-gateway-signature").is_some_and(|s| s.starts_with("v1=")));
    assert!(
        !sent
            .keys()
            .any(|name| name.as_str().starts_with("x-portico-"))
    );
}
