//! Whose bucket a request counts against: limit-key values are tagged by
//! where they came from, so callers from different credentials or issuers
//! never share one, and IPv6 clients are counted per network, not per
//! address.

mod common;

use std::net::IpAddr;

use common::tokens::{self, ISSUER, claims, sign};
use common::{Harness, auth_config, request};
use http::{Method, StatusCode};
use portico::auth::api_key::{self, KeyRecord};
use portico::platform::KvNamespace;
use serde_json::{Value, json};

const OTHER_ISSUER: &str = "https://other-issuer.test";

/// A route that takes API keys and tokens from two issuers, limited to one
/// request a minute per `scope`; and a public route limited per address.
fn harness(scope: &str, ip_policy: Value) -> Harness {
    let mut other = tokens::issuer_config(&["HS256"]);
    other["issuer"] = json!(OTHER_ISSUER);
    Harness::with_config(&auth_config(
        json!({ "jwt": { "test": tokens::issuer_config(&["HS256"]), "other": other } }),
        json!([
            { "id": "orders", "path": "/orders/*", "service": "users",
              "auth": { "api_key": {}, "jwt": ["test", "other"] },
              "rate_limit": { "plan": { "name": "plan", "limit": 1, "period": "1m", "scope": [scope] } } },
            { "id": "public", "path": "/public/*", "service": "users",
              "rate_limit": { "policies": [ ip_policy ] } }
        ]),
    ))
}

fn per_ip(extra: Value) -> Value {
    let mut policy = json!({ "name": "per-ip", "limit": 2, "period": "1m", "scope": ["ip"] });
    if let (Some(policy), Some(extra)) = (policy.as_object_mut(), extra.as_object()) {
        policy.extend(extra.clone());
    }
    policy
}

fn api_key(harness: &Harness, seed: u8, consumer: &str) -> (String, String) {
    let (id, key) = api_key::generate(&[seed; 38]);
    let record = KeyRecord::new(&id, &key, consumer, 0);
    harness.platform.kv_put(
        KvNamespace::Keys,
        &api_key::kv_key(&id),
        &serde_json::to_string(&record).unwrap(),
    );
    (id, key)
}

fn token(iss: &str, extra: Value) -> String {
    let mut payload = claims(extra);
    payload["iss"] = json!(iss);
    sign("HS256", "hs256", Some("test-hs-1"), &payload)
}

fn with_key(harness: &Harness, key: &str) -> StatusCode {
    harness
        .send(request(
            Method::GET,
            "http://gw.example/orders/1",
            &[("x-api-key", key)],
        ))
        .status()
}

fn with_token(harness: &Harness, token: &str) -> StatusCode {
    harness
        .send(request(
            Method::GET,
            "http://gw.example/orders/1",
            &[("authorization", &format!("Bearer {token}"))],
        ))
        .status()
}

fn from(harness: &Harness, ip: &str) -> StatusCode {
    let ip: IpAddr = ip.parse().unwrap();
    harness
        .send_from(
            request(Method::GET, "http://gw.example/public/x", &[]),
            Some(ip),
        )
        .status()
}

#[test]
fn a_token_subject_never_shares_a_bucket_with_an_api_key_id() {
    let harness = harness("key", per_ip(json!({})));
    let (id, key) = api_key(&harness, 1, "acme");
    assert_eq!(with_key(&harness, &key), StatusCode::OK);
    assert_eq!(with_key(&harness, &key), StatusCode::TOO_MANY_REQUESTS);
    // A token whose `sub` is the key's id is someone else.
    let impostor = token(ISSUER, json!({ "sub": id }));
    assert_eq!(with_token(&harness, &impostor), StatusCode::OK);
}

#[test]
fn the_same_subject_from_two_issuers_is_two_callers() {
    let harness = harness("key", per_ip(json!({})));
    let ours = token(ISSUER, json!({ "sub": "alice" }));
    let theirs = token(OTHER_ISSUER, json!({ "sub": "alice" }));
    assert_eq!(with_token(&harness, &ours), StatusCode::OK);
    assert_eq!(with_token(&harness, &ours), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(with_token(&harness, &theirs), StatusCode::OK);
}

#[test]
fn a_token_subject_never_shares_a_user_bucket_with_an_api_key_consumer() {
    let harness = harness("user", per_ip(json!({})));
    let (_, key) = api_key(&harness, 2, "acme");
    assert_eq!(with_key(&harness, &key), StatusCode::OK);
    assert_eq!(with_key(&harness, &key), StatusCode::TOO_MANY_REQUESTS);
    let impostor = token(ISSUER, json!({ "sub": "acme" }));
    assert_eq!(
        with_token(&harness, &impostor),
        StatusCode::OK,
        "a token subject 'acme' is not the API key consumer 'acme'"
    );
}

#[test]
fn ipv6_clients_are_counted_per_64_bit_network() {
    let harness = harness("key", per_ip(json!({})));
    assert_eq!(from(&harness, "2001:db8:1:2::1"), StatusCode::OK);
    assert_eq!(from(&harness, "2001:db8:1:2:aaaa::2"), StatusCode::OK);
    assert_eq!(
        from(&harness, "2001:db8:1:2:ffff:ffff:ffff:ffff"),
        StatusCode::TOO_MANY_REQUESTS,
        "a new address in the same /64 is the same client"
    );
    assert_eq!(from(&harness, "2001:db8:1:3::1"), StatusCode::OK);
}

#[test]
fn the_ipv6_prefix_is_configurable_per_policy() {
    let harness = harness("key", per_ip(json!({ "ipv6_prefix": 48 })));
    assert_eq!(from(&harness, "2001:db8:1:2::1"), StatusCode::OK);
    assert_eq!(from(&harness, "2001:db8:1:3::1"), StatusCode::OK);
    assert_eq!(
        from(&harness, "2001:db8:1:4::1"),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(from(&harness, "2001:db8:2::1"), StatusCode::OK);
}

#[test]
fn an_ipv4_mapped_address_is_the_ipv4_client() {
    let harness = harness("key", per_ip(json!({})));
    assert_eq!(from(&harness, "192.0.2.7"), StatusCode::OK);
    assert_eq!(from(&harness, "::ffff:192.0.2.7"), StatusCode::OK);
    assert_eq!(from(&harness, "192.0.2.7"), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        from(&harness, "192.0.2.8"),
        StatusCode::OK,
        "IPv4 is per address"
    );
}
