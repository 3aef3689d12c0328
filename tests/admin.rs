//! The operators' API: off unless configured, guarded by a bearer token,
//! and reporting a key's rate-limit state without charging it.

mod common;

use std::time::Duration;

use common::{Harness, auth_config, body_json, challenges, request};
use http::{Method, StatusCode};
use serde_json::json;

fn harness(admin: bool) -> (Harness, String, String) {
    let mut config: serde_json::Value = serde_json::from_str(&auth_config(
        json!({}),
        json!([
            { "id": "orders", "path": "/orders/*", "service": "users", "auth": { "api_key": {} },
              "rate_limit": {
                  "plan": { "name": "per-key", "limit": 5, "period": "1m", "scope": ["key"] },
                  "policies": [ { "name": "per-ip", "limit": 100, "period": "1m", "scope": ["ip"] } ] } },
            { "id": "catch-all", "path": "/*", "service": "users" }
        ]),
    ))
    .unwrap();
    if admin {
        config["admin"] = json!({ "token_secret": "ADMIN_TOKEN" });
    }
    let harness = Harness::with_config(&config.to_string());
    harness.platform.set_secret("ADMIN_TOKEN", "let-me-in");
    let (id, key) = harness.store_key(3, "acme", |_| {});
    (harness, id, key)
}

fn admin_get(
    harness: &Harness,
    path: &str,
    token: Option<&str>,
) -> http::Response<portico::Body<bytes::Bytes>> {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("authorization", b.as_str()))
        .collect();
    harness.send(request(
        Method::GET,
        &format!("http://gw.example{path}"),
        &headers,
    ))
}

#[test]
fn without_configuration_the_admin_path_is_just_a_path() {
    let (harness, id, _) = harness(false);
    let response = admin_get(
        &harness,
        &format!("/__portico/limits/keys/{id}"),
        Some("let-me-in"),
    );
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "routed to the catch-all route"
    );
    assert_eq!(harness.platform.sent().len(), 1);
}

#[test]
fn the_admin_api_needs_its_token() {
    let (harness, id, _) = harness(true);
    let path = format!("/__portico/limits/keys/{id}");
    let none = admin_get(&harness, &path, None);
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenges(&none), ["Bearer realm=\"portico-admin\""]);
    assert_eq!(
        admin_get(&harness, &path, Some("let-me-ou")).status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        admin_get(&harness, &path, Some("let-me-in")).status(),
        StatusCode::OK
    );
    assert!(
        harness.platform.sent().is_empty(),
        "admin requests never reach a service"
    );
}

#[test]
fn a_keys_limits_are_reported_without_charging_it() {
    let (harness, id, key) = harness(true);
    for _ in 0..2 {
        harness.send(request(
            Method::GET,
            "http://gw.example/orders/1",
            &[("x-api-key", &key)],
        ));
    }
    let path = format!("/__portico/limits/keys/{id}");
    for _ in 0..3 {
        let report = body_json(&admin_get(&harness, &path, Some("let-me-in")));
        assert_eq!(report["key_id"], id.as_str());
        assert_eq!(report["consumer"], "acme");
        let limits = report["limits"].as_array().unwrap();
        assert_eq!(
            limits.len(),
            1,
            "the per-IP policy is not the key's: {report}"
        );
        assert_eq!(limits[0]["policy"], "per-key");
        assert_eq!(limits[0]["remaining"], 3);
    }
    let unknown = admin_get(
        &harness,
        "/__portico/limits/keys/000000000000",
        Some("let-me-in"),
    );
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let nowhere = admin_get(&harness, "/__portico/nothing", Some("let-me-in"));
    assert_eq!(nowhere.status(), StatusCode::NOT_FOUND);
}

#[test]
fn wrong_admin_tokens_are_throttled_per_isolate() {
    let (harness, id, _) = harness(true);
    let path = format!("/__portico/limits/keys/{id}");
    // Requests without a token are not guesses: they never count.
    for _ in 0..20 {
        assert_eq!(
            admin_get(&harness, &path, None).status(),
            StatusCode::UNAUTHORIZED
        );
    }
    for guess in 0..10 {
        assert_eq!(
            admin_get(&harness, &path, Some(&format!("guess-{guess}"))).status(),
            StatusCode::UNAUTHORIZED,
            "guess {guess}"
        );
    }
    harness.platform.advance(Duration::from_secs(20));
    // Ten wrong tokens within a minute: the isolate stops comparing, even
    // the right token, until the minute is over.
    let throttled = admin_get(&harness, &path, Some("let-me-in"));
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        common::header(throttled.headers(), "retry-after"),
        Some("40")
    );
    assert_eq!(
        body_json(&throttled)["type"],
        "urn:portico:problem:rate-limited"
    );
    harness.platform.advance(Duration::from_secs(40));
    assert_eq!(
        admin_get(&harness, &path, Some("let-me-in")).status(),
        StatusCode::OK
    );
}
