//! Tokens checked against remote identity providers: JWKS fetching,
//! caching and rotation, and OAuth 2.0 token introspection.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use common::tokens::{AUDIENCE, ISSUER, claims, key_json, sign};
use common::{Harness, auth_config, body_json, header, last_upstream, request};
use http::{Method, Response, StatusCode};
use portico::observe::events::Event;
use portico::platform::memory::{OriginReply, RecordedRequest};
use serde_json::{Value, json};

const JWKS_HOST: &str = "idp.test:443";

/// A fake identity provider whose key set tests can change.
struct Provider {
    keys: RefCell<Vec<Value>>,
    up: RefCell<bool>,
    fetches: RefCell<usize>,
}

fn provider(harness: &Harness, keys: Vec<Value>) -> Rc<Provider> {
    let provider = Rc::new(Provider {
        keys: RefCell::new(keys),
        up: RefCell::new(true),
        fetches: RefCell::new(0),
    });
    let serving = Rc::clone(&provider);
    harness
        .platform
        .add_origin(JWKS_HOST, move |_: &RecordedRequest| {
            *serving.fetches.borrow_mut() += 1;
            if !*serving.up.borrow() {
                return OriginReply::Refuse;
            }
            let body = json!({ "keys": *serving.keys.borrow() }).to_string();
            OriginReply::Respond(
                Response::builder()
                    .header("cache-control", "public, max-age=600")
                    .body(Bytes::from(body))
                    .unwrap(),
            )
        });
    provider
}

fn jwks_harness() -> Harness {
    Harness::with_config(&auth_config(
        json!({ "jwt": { "idp": {
            "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256", "RS256"],
            "jwks_url": "https://idp.test:443/.well-known/jwks.json",
            "jwks_min_cache_seconds": 60, "jwks_max_cache_seconds": 3600, "jwks_refetch_seconds": 30
        } } }),
        json!([{ "id": "users", "path": "/users/*", "service": "users", "auth": { "jwt": ["idp"] } }]),
    ))
}

fn bearer(harness: &Harness, token: &str) -> Response<portico::Body<Bytes>> {
    harness.send(request(
        Method::GET,
        "http://gw.example/users/1",
        &[("authorization", &format!("Bearer {token}"))],
    ))
}

fn es256(kid: &str) -> String {
    sign(
        "ES256",
        "es256",
        Some(kid),
        &claims(json!({ "exp": common::tokens::NOW + 86_400 })),
    )
}

fn es256_key(kid: &str) -> Value {
    let mut key = key_json("es256.public.jwk.json");
    key["kid"] = json!(kid);
    key
}

#[test]
fn jwks_keys_are_fetched_once_and_cached_for_max_age() {
    let harness = jwks_harness();
    let idp = provider(&harness, vec![es256_key("k1")]);
    for _ in 0..5 {
        assert_eq!(bearer(&harness, &es256("k1")).status(), StatusCode::OK);
    }
    assert_eq!(*idp.fetches.borrow(), 1);
    harness.platform.advance(Duration::from_secs(601));
    harness.gateway.auth_state().tokens.borrow_mut().clear();
    assert_eq!(bearer(&harness, &es256("k1")).status(), StatusCode::OK);
    assert_eq!(*idp.fetches.borrow(), 2, "refetched after max-age");
}

#[test]
fn a_key_rotation_is_picked_up_through_the_unknown_kid_refetch() {
    let harness = jwks_harness();
    let idp = provider(&harness, vec![es256_key("old")]);
    assert_eq!(bearer(&harness, &es256("old")).status(), StatusCode::OK);
    *idp.keys.borrow_mut() = vec![es256_key("old"), es256_key("new")];
    harness.platform.advance(Duration::from_secs(31));
    assert_eq!(bearer(&harness, &es256("new")).status(), StatusCode::OK);
    assert_eq!(*idp.fetches.borrow(), 2);
}

#[test]
fn unknown_kid_refetches_are_rate_limited() {
    let harness = jwks_harness();
    let idp = provider(&harness, vec![es256_key("k1")]);
    assert_eq!(bearer(&harness, &es256("k1")).status(), StatusCode::OK);
    harness.platform.advance(Duration::from_secs(31));
    for i in 0..20 {
        assert_eq!(
            bearer(&harness, &es256(&format!("random-{i}"))).status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        *idp.fetches.borrow(),
        2,
        "one refetch for twenty unknown kids"
    );
}

#[test]
fn an_unreachable_jwks_fails_closed_and_cached_keys_stay_valid() {
    let harness = jwks_harness();
    let idp = provider(&harness, vec![es256_key("k1")]);
    *idp.up.borrow_mut() = false;
    let response = bearer(&harness, &es256("k1"));
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body_json(&response)["type"],
        "urn:portico:problem:auth-unavailable"
    );

    *idp.up.borrow_mut() = true;
    harness.platform.advance(Duration::from_secs(31));
    assert_eq!(bearer(&harness, &es256("k1")).status(), StatusCode::OK);
    *idp.up.borrow_mut() = false;
    harness.gateway.auth_state().tokens.borrow_mut().clear();
    harness.platform.advance(Duration::from_secs(700));
    assert_eq!(
        bearer(&harness, &es256("k1")).status(),
        StatusCode::OK,
        "stale keys within the ceiling"
    );
    assert!(harness.platform.events().iter().any(|e| matches!(
        e,
        Event::JwksFetchFailed {
            kept_previous: true,
            ..
        }
    )));
    harness.platform.advance(Duration::from_secs(3600));
    harness.gateway.auth_state().tokens.borrow_mut().clear();
    assert_eq!(
        bearer(&harness, &es256("k1")).status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "past the ceiling"
    );
}

#[test]
fn unusable_keys_in_a_jwks_are_skipped() {
    let harness = jwks_harness();
    provider(
        &harness,
        vec![
            json!({ "kty": "weird" }),
            key_json("rsa1024.public.jwk.json"),
            es256_key("k1"),
        ],
    );
    assert_eq!(bearer(&harness, &es256("k1")).status(), StatusCode::OK);
}

// --- introspection -------------------------------------------------------

const INTROSPECT_HOST: &str = "auth.test:443";

struct Introspection {
    calls: RefCell<Vec<RecordedRequest>>,
    answers: RefCell<Value>,
    status: RefCell<u16>,
}

fn introspection_harness() -> (Harness, Rc<Introspection>) {
    let harness = Harness::with_config(&auth_config(
        json!({ "introspection": { "corp": {
            "url": "https://auth.test:443/oauth2/introspect",
            "client_id": "portico gw", "client_secret": "INTROSPECTION_SECRET",
            "cache_seconds": 60, "negative_cache_seconds": 10, "roles_claim": "roles"
        } } }),
        json!([{ "id": "users", "path": "/users/*", "service": "users",
                 "auth": { "introspection": ["corp"], "scopes": { "all_of": ["read"] } } }]),
    ));
    harness
        .platform
        .set_secret("INTROSPECTION_SECRET", "p&ss:word");
    let endpoint = Rc::new(Introspection {
        calls: RefCell::new(Vec::new()),
        answers: RefCell::new(json!({})),
        status: RefCell::new(200),
    });
    let serving = Rc::clone(&endpoint);
    harness
        .platform
        .add_origin(INTROSPECT_HOST, move |request: &RecordedRequest| {
            serving.calls.borrow_mut().push(request.clone());
            let form: Vec<(String, String)> =
                serde_urlencoded::from_bytes(&request.body).unwrap_or_default();
            let token = form
                .iter()
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let answer = serving
                .answers
                .borrow()
                .get(&token)
                .cloned()
                .unwrap_or(json!({ "active": false }));
            OriginReply::Respond(
                Response::builder()
                    .status(*serving.status.borrow())
                    .body(Bytes::from(answer.to_string()))
                    .unwrap(),
            )
        });
    (harness, endpoint)
}

#[test]
fn an_active_token_reaches_the_service_with_its_identity() {
    let (harness, endpoint) = introspection_harness();
    *endpoint.answers.borrow_mut() = json!({ "opaque-1": {
        "active": true, "sub": "svc-42", "client_id": "mobile", "scope": "read write",
        "roles": ["user"], "exp": common::tokens::NOW + 3600
    } });
    let response = bearer(&harness, "opaque-1");
    assert_eq!(response.status(), StatusCode::OK);
    let sent = last_upstream(&harness).headers;
    assert_eq!(
        header(&sent, "x-portico-auth-method"),
        Some("introspection")
    );
    assert_eq!(header(&sent, "x-portico-subject"), Some("svc-42"));
    assert_eq!(header(&sent, "x-portico-consumer"), Some("mobile"));
    assert_eq!(header(&sent, "x-portico-scopes"), Some("read write"));

    let call = &endpoint.calls.borrow()[0];
    assert_eq!(call.method, Method::POST);
    assert_eq!(
        header(&call.headers, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    // RFC 6749 2.3.1: form-encoded id and secret, then Basic.
    use base64ct::Encoding;
    let expected = format!(
        "Basic {}",
        base64ct::Base64::encode_string(b"portico+gw:p%26ss%3Aword")
    );
    assert_eq!(
        header(&call.headers, "authorization"),
        Some(expected.as_str())
    );
    assert_eq!(
        String::from_utf8_lossy(&call.body),
        "token=opaque-1&token_type_hint=access_token"
    );
}

#[test]
fn inactive_tokens_are_rejected_and_remembered_briefly() {
    let (harness, endpoint) = introspection_harness();
    assert_eq!(
        bearer(&harness, "revoked").status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        bearer(&harness, "revoked").status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(endpoint.calls.borrow().len(), 1);
    harness.platform.advance(Duration::from_secs(10));
    bearer(&harness, "revoked");
    assert_eq!(endpoint.calls.borrow().len(), 2);
}

#[test]
fn active_results_are_cached_no_longer_than_exp_or_the_maximum() {
    let (harness, endpoint) = introspection_harness();
    *endpoint.answers.borrow_mut() = json!({
        "short": { "active": true, "scope": "read", "exp": common::tokens::NOW + 20 },
        "long": { "active": true, "scope": "read" }
    });
    for _ in 0..3 {
        assert_eq!(bearer(&harness, "short").status(), StatusCode::OK);
        assert_eq!(bearer(&harness, "long").status(), StatusCode::OK);
    }
    assert_eq!(endpoint.calls.borrow().len(), 2);
    harness.platform.advance(Duration::from_secs(20));
    assert_eq!(
        bearer(&harness, "short").status(),
        StatusCode::UNAUTHORIZED,
        "expired: asks again, now past exp"
    );
    assert_eq!(bearer(&harness, "long").status(), StatusCode::OK);
    assert_eq!(
        endpoint.calls.borrow().len(),
        3,
        "long is still cached at 20 s"
    );
    harness.platform.advance(Duration::from_secs(40));
    bearer(&harness, "long");
    assert_eq!(
        endpoint.calls.borrow().len(),
        4,
        "long expired from cache at 60 s"
    );
}

#[test]
fn missing_scopes_from_introspection_give_403() {
    let (harness, endpoint) = introspection_harness();
    *endpoint.answers.borrow_mut() = json!({ "t": { "active": true, "scope": "write" } });
    assert_eq!(bearer(&harness, "t").status(), StatusCode::FORBIDDEN);
}

#[test]
fn a_failing_introspection_endpoint_fails_closed() {
    let (harness, endpoint) = introspection_harness();
    *endpoint.status.borrow_mut() = 500;
    let response = bearer(&harness, "anything");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    *endpoint.status.borrow_mut() = 200;
    *endpoint.answers.borrow_mut() = json!({ "t": { "active": true, "scope": "read" } });
    assert_eq!(bearer(&harness, "t").status(), StatusCode::OK);
    harness
        .platform
        .add_origin(INTROSPECT_HOST, |_| OriginReply::Refuse);
    assert_eq!(
        bearer(&harness, "t").status(),
        StatusCode::OK,
        "cached result still valid"
    );
    assert_eq!(
        bearer(&harness, "u").status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[test]
fn a_missing_client_secret_fails_closed() {
    let harness = Harness::with_config(&auth_config(
        json!({ "introspection": { "corp": { "url": "https://auth.test:443/i", "client_id": "c", "client_secret": "NOT_SET" } } }),
        json!([{ "id": "users", "path": "/users/*", "service": "users", "auth": { "introspection": ["corp"] } }]),
    ));
    assert_eq!(
        bearer(&harness, "t").status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(
        harness.platform.sent().is_empty(),
        "nothing was sent without credentials"
    );
}

#[test]
fn any_one_accepted_method_is_enough() {
    let harness = Harness::with_config(&auth_config(
        json!({ "jwt": { "test": common::tokens::issuer_config(&["ES256"]) } }),
        json!([{ "id": "users", "path": "/users/*", "service": "users", "auth": { "api_key": {}, "jwt": ["test"] } }]),
    ));
    let token = sign("ES256", "es256", Some("test-es256-1"), &claims(json!({})));
    let response = harness.send(request(
        Method::GET,
        "http://gw.example/users/1",
        &[
            (
                "x-api-key",
                "pk_ffffffffffff_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            ),
            ("authorization", &format!("Bearer {token}")),
        ],
    ));
    assert_eq!(response.status(), StatusCode::OK);
    let response = harness.get("http://gw.example/users/1");
    assert_eq!(
        common::challenges(&response),
        [
            "ApiKey realm=\"portico\", header=\"x-api-key\"",
            "Bearer realm=\"portico\""
        ]
    );
}
