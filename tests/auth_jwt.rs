//! JWT authentication: every supported algorithm, every classic attack,
//! the claim checks, roles, and the verified-token cache.

mod common;

use std::time::Duration;

use common::tokens::{self, AUDIENCE, ISSUER, NOW, claims, craft, hs256_signature, key_json, sign};
use common::{Harness, auth_config, body_json, challenges, header, last_upstream, request};
use http::{Method, StatusCode};
use serde_json::{Value, json};

const ALL_ALGORITHMS: [&str; 11] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "EdDSA",
];

fn harness_with(issuer: Value, route_auth: Value) -> Harness {
    Harness::with_config(&auth_config(
        json!({ "jwt": { "test": issuer } }),
        json!([
            { "id": "private", "path": "/private/*", "service": "users", "auth": route_auth },
            { "id": "public", "path": "/public/*", "service": "users" }
        ]),
    ))
}

fn harness() -> Harness {
    harness_with(
        tokens::issuer_config(&ALL_ALGORITHMS),
        json!({ "jwt": ["test"] }),
    )
}

fn call(harness: &Harness, token: &str) -> http::Response<portico::Body<bytes::Bytes>> {
    harness.send(request(
        Method::GET,
        "http://gw.example/private/x",
        &[("authorization", &format!("Bearer {token}"))],
    ))
}

fn assert_rejected(harness: &Harness, token: &str, why: &str) {
    let response = call(harness, token);
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{why}");
    assert_eq!(
        challenges(&response),
        ["Bearer realm=\"portico\", error=\"invalid_token\""],
        "{why}"
    );
    let body = body_json(&response);
    assert_eq!(body["type"], "urn:portico:problem:unauthorized");
    assert_eq!(
        body["detail"], "The credentials presented are not valid.",
        "{why}"
    );
}

fn key_for(alg: &str) -> (&'static str, &'static str) {
    match alg {
        "ES256" => ("es256", "test-es256-1"),
        "EdDSA" => ("eddsa", "test-eddsa-1"),
        a if a.starts_with("HS") => ("hs256", "test-hs-1"),
        _ => ("rsa", "test-rsa-1"),
    }
}

#[test]
fn every_supported_algorithm_verifies() {
    for alg in ALL_ALGORITHMS {
        let harness = harness();
        let (key, kid) = key_for(alg);
        let token = sign(
            alg,
            key,
            Some(kid),
            &claims(json!({ "realm": { "roles": ["reader"] } })),
        );
        let response = call(&harness, &token);
        assert_eq!(response.status(), StatusCode::OK, "{alg}");
        let sent = last_upstream(&harness);
        assert_eq!(
            header(&sent.headers, "x-portico-auth-method"),
            Some("jwt"),
            "{alg}"
        );
        assert_eq!(header(&sent.headers, "x-portico-subject"), Some("user-1"));
        assert_eq!(header(&sent.headers, "x-portico-issuer"), Some(ISSUER));
        assert_eq!(header(&sent.headers, "x-portico-roles"), Some("reader"));
        assert!(
            !sent.headers.contains_key("authorization"),
            "the token is not forwarded"
        );
    }
}

#[test]
fn a_token_without_kid_is_tried_against_matching_keys() {
    let harness = harness();
    let token = sign("ES256", "es256", None, &claims(json!({})));
    assert_eq!(call(&harness, &token).status(), StatusCode::OK);
}

#[test]
fn pem_keys_verify_too() {
    let issuer = json!({
        "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["RS256", "ES256", "EdDSA"],
        "keys": [
            { "pem": common::fixture("auth/keys/rsa.public.pem"), "kid": "test-rsa-1" },
            { "pem": common::fixture("auth/keys/es256.public.pem") },
            { "pem": common::fixture("auth/keys/eddsa.public.pem") }
        ]
    });
    let harness = harness_with(issuer, json!({ "jwt": ["test"] }));
    for (alg, key, kid) in [
        ("RS256", "rsa", Some("test-rsa-1")),
        ("ES256", "es256", None),
        ("EdDSA", "eddsa", None),
    ] {
        assert_eq!(
            call(&harness, &sign(alg, key, kid, &claims(json!({})))).status(),
            StatusCode::OK,
            "{alg}"
        );
    }
}

#[test]
fn alg_none_is_rejected() {
    let harness = harness();
    let token = craft(
        &json!({ "alg": "none", "typ": "JWT" }),
        &claims(json!({})),
        b"",
    );
    assert_rejected(&harness, &token, "alg none");
    let token = craft(&json!({ "alg": "None" }), &claims(json!({})), b"");
    assert_rejected(&harness, &token, "alg None");
}

#[test]
fn an_rsa_public_key_cannot_be_used_as_an_hmac_secret() {
    // The classic confusion: sign HS256 with the RSA public key as secret.
    let pem = common::fixture("auth/keys/rsa.public.pem");
    let header = json!({ "alg": "HS256", "kid": "test-rsa-1" });
    let payload = claims(json!({}));
    let unsigned = craft(&header, &payload, b"");
    let signing_input = unsigned.trim_end_matches('.');
    for secret in [
        pem.as_bytes().to_vec(),
        key_json("rsa.public.jwk.json").to_string().into_bytes(),
    ] {
        let token = format!(
            "{signing_input}.{}",
            b64(&hs256_signature(signing_input, &secret))
        );
        // Issuer pinned to RS256: HS256 is not even considered.
        let rs_only = harness_with(
            tokens::issuer_config(&["RS256"]),
            json!({ "jwt": ["test"] }),
        );
        assert_rejected(&rs_only, &token, "HS256 against an RS256 issuer");
        // Issuer accepting both, RSA key only: the RSA key never acts as a secret.
        let mut issuer = tokens::issuer_config(&["RS256", "HS256"]);
        issuer["keys"] = json!([key_json("rsa.public.jwk.json")]);
        let both = harness_with(issuer, json!({ "jwt": ["test"] }));
        assert_rejected(&both, &token, "HS256 with the RSA key as secret");
    }
}

#[test]
fn wrong_issuer_and_audience_are_rejected() {
    let harness = harness();
    let token = sign(
        "ES256",
        "es256",
        Some("test-es256-1"),
        &claims(json!({ "iss": "https://evil.test" })),
    );
    assert_rejected(&harness, &token, "issuer");
    let token = sign(
        "ES256",
        "es256",
        Some("test-es256-1"),
        &claims(json!({ "aud": "someone-else" })),
    );
    assert_rejected(&harness, &token, "audience string");
    let token = sign(
        "ES256",
        "es256",
        Some("test-es256-1"),
        &claims(json!({ "aud": ["a", "b"] })),
    );
    assert_rejected(&harness, &token, "audience array");
    let token = sign(
        "ES256",
        "es256",
        Some("test-es256-1"),
        &claims(json!({ "aud": ["a", AUDIENCE] })),
    );
    assert_eq!(
        call(&harness, &token).status(),
        StatusCode::OK,
        "one matching audience in an array"
    );
    let token = sign(
        "ES256",
        "es256",
        Some("test-es256-1"),
        &claims(json!({ "aud": null })),
    );
    assert_rejected(&harness, &token, "no audience");
}

#[test]
fn an_issuer_with_audiences_any_accepts_every_audience() {
    let mut issuer = tokens::issuer_config(&["ES256"]);
    issuer["audiences"] = json!("any");
    let harness = harness_with(issuer, json!({ "jwt": ["test"] }));
    for aud in [json!("someone-else"), json!(["a", "b"]), Value::Null] {
        let token = sign(
            "ES256",
            "es256",
            Some("test-es256-1"),
            &claims(json!({ "aud": aud.clone() })),
        );
        assert_eq!(call(&harness, &token).status(), StatusCode::OK, "{aud}");
    }
}

#[test]
fn an_issuer_with_a_typ_accepts_only_tokens_of_that_type() {
    let mut issuer = tokens::issuer_config(&["ES256"]);
    issuer["typ"] = json!("at+jwt");
    let harness = harness_with(issuer, json!({ "jwt": ["test"] }));
    let typed = |typ: &str| {
        tokens::sign_typed(
            "ES256",
            "es256",
            Some("test-es256-1"),
            typ,
            &claims(json!({})),
        )
    };
    // RFC 7515: media types compare without case, and "application/" may
    // be left out.
    for accepted in ["at+jwt", "AT+JWT", "application/at+jwt"] {
        assert_eq!(
            call(&harness, &typed(accepted)).status(),
            StatusCode::OK,
            "{accepted}"
        );
    }
    assert_rejected(&harness, &typed("JWT"), "an ID token's typ");
    assert_rejected(&harness, &typed("at+jwt2"), "another type");
    let untyped = sign("ES256", "es256", Some("test-es256-1"), &claims(json!({})));
    assert_rejected(&harness, &untyped, "no typ at all");
}

#[test]
fn expiry_and_not_before_honour_the_leeway() {
    let harness = harness();
    let expired = |ago: i64| {
        sign(
            "ES256",
            "es256",
            Some("test-es256-1"),
            &claims(json!({ "exp": NOW - ago })),
        )
    };
    assert_rejected(&harness, &expired(31), "expired beyond the 30 s leeway");
    assert_eq!(
        call(&harness, &expired(29)).status(),
        StatusCode::OK,
        "within leeway"
    );
    let early = |ahead: i64| {
        sign(
            "ES256",
            "es256",
            Some("test-es256-1"),
            &claims(json!({ "nbf": NOW + ahead })),
        )
    };
    assert_rejected(&harness, &early(31), "not yet valid");
    assert_eq!(
        call(&harness, &early(29)).status(),
        StatusCode::OK,
        "nbf within leeway"
    );
}

/// `exp`, `nbf` and `iat` values at and past the edges of what a date
/// type can hold, and past the NumericDates the gateway accepts (the Unix
/// epoch to the end of year 9999).
fn edge_times() -> Vec<Value> {
    let min = chrono::DateTime::<chrono::Utc>::MIN_UTC.timestamp();
    let max = chrono::DateTime::<chrono::Utc>::MAX_UTC.timestamp();
    vec![
        json!(min),
        json!(min + 1),
        json!(min + 59),
        json!(max),
        json!(max - 1),
        json!(i64::MIN),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(-1),
        json!(1e300),
        json!(-1e300),
        json!(253_402_300_800_i64),
    ]
}

#[test]
fn claim_times_at_the_edge_of_the_representable_range_get_401_not_a_panic() {
    for claim in ["nbf", "exp", "iat"] {
        // One harness per claim keeps each within the address's budget of
        // failed attempts.
        let harness = harness();
        for value in edge_times() {
            let token = tokens::sign_payload(
                "HS256",
                "hs256",
                Some("test-hs-1"),
                &claims(json!({ claim: value.clone() })),
            );
            assert_rejected(&harness, &token, &format!("{claim}: {value}"));
        }
    }
}

#[test]
fn the_last_second_of_year_9999_is_still_a_valid_expiry() {
    let harness = harness();
    let token = tokens::sign_payload(
        "HS256",
        "hs256",
        Some("test-hs-1"),
        &claims(json!({ "exp": 253_402_300_799_i64 })),
    );
    assert_eq!(call(&harness, &token).status(), StatusCode::OK);
}

#[test]
fn a_token_issued_in_the_future_is_rejected_beyond_the_leeway() {
    let harness = harness();
    let issued = |ahead: i64| {
        sign(
            "ES256",
            "es256",
            Some("test-es256-1"),
            &claims(json!({ "iat": NOW + ahead })),
        )
    };
    assert_rejected(&harness, &issued(31), "issued in the future");
    assert_eq!(
        call(&harness, &issued(29)).status(),
        StatusCode::OK,
        "iat within leeway"
    );
}

#[test]
fn required_claims_must_be_present() {
    let harness = harness();
    let token = sign(
        "ES256",
        "es256",
        Some("test-es256-1"),
        &claims(json!({ "sub": null })),
    );
    assert_rejected(&harness, &token, "sub is required");
    let token = sign(
        "ES256",
        "es256",
        Some("test-es256-1"),
        &claims(json!({ "exp": null })),
    );
    assert_rejected(&harness, &token, "exp is required");
}

#[test]
fn tampering_and_stripping_break_the_token() {
    let harness = harness();
    let token = sign(
        "ES256",
        "es256",
        Some("test-es256-1"),
        &claims(json!({ "realm": { "roles": ["reader"] } })),
    );
    let parts: Vec<&str> = token.split('.').collect();
    let forged_payload = b64(claims(json!({ "realm": { "roles": ["admin"] } }))
        .to_string()
        .as_bytes());
    assert_rejected(
        &harness,
        &format!("{}.{}.{}", parts[0], forged_payload, parts[2]),
        "tampered payload",
    );
    assert_rejected(
        &harness,
        &format!("{}.{}.", parts[0], parts[1]),
        "stripped signature",
    );
    assert_rejected(&harness, &format!("{}.{}", parts[0], parts[1]), "two parts");
    assert_rejected(
        &harness,
        &format!("{}.{}!.{}", parts[0], parts[1], parts[2]),
        "bad base64",
    );
    assert_rejected(&harness, "not-a-token", "garbage");
}

#[test]
fn unknown_kid_and_key_smuggling_headers_are_rejected() {
    let harness = harness();
    assert_rejected(
        &harness,
        &sign("ES256", "es256", Some("nope"), &claims(json!({}))),
        "unknown kid",
    );
    let payload = claims(json!({}));
    let jwk = key_json("es256.public.jwk.json");
    for (field, value) in [
        ("jwk", jwk),
        ("jku", json!("https://evil.test/jwks.json")),
        ("x5u", json!("https://evil.test/cert.pem")),
        ("x5c", json!(["MIIB"])),
        ("crit", json!(["exp"])),
    ] {
        let header = json!({ "alg": "ES256", "kid": "test-es256-1", field: value });
        // Signed for real, so only the header field can be the reason.
        let token = sign_with_header("es256", &header, &payload);
        assert_rejected(&harness, &token, field);
    }
}

/// Sign `header`/`payload` exactly as given, with the fixture ES256 key.
fn sign_with_header(key: &str, header: &Value, payload: &Value) -> String {
    use p256::ecdsa::signature::Signer;
    let jwk: jwt_compact::jwk::JsonWebKey<'_> =
        serde_json::from_value(key_json(&format!("{key}.private.jwk.json"))).unwrap();
    let signing = p256::ecdsa::SigningKey::try_from(&jwk).unwrap();
    let unsigned = craft(header, payload, b"");
    let input = unsigned.trim_end_matches('.');
    let signature: p256::ecdsa::Signature = signing.sign(input.as_bytes());
    format!("{input}.{}", b64(&signature.to_bytes()))
}

#[test]
fn oversize_tokens_are_rejected_before_parsing() {
    let harness = harness();
    let padding = "x".repeat(9000);
    let token = sign(
        "ES256",
        "es256",
        Some("test-es256-1"),
        &claims(json!({ "pad": padding })),
    );
    assert_rejected(&harness, &token, "over max_token_bytes");
}

#[test]
fn no_token_gets_a_bearer_challenge_without_error() {
    let harness = harness();
    let response = harness.get("http://gw.example/private/x");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenges(&response), ["Bearer realm=\"portico\""]);
    assert_eq!(
        body_json(&response)["detail"],
        "This route requires credentials."
    );
    assert!(harness.platform.sent().is_empty());
}

#[test]
fn missing_roles_or_scopes_give_403_with_insufficient_scope() {
    let harness = harness_with(
        tokens::issuer_config(&["ES256"]),
        json!({ "jwt": ["test"], "roles": { "all_of": ["admin", "reader"] }, "scopes": { "any_of": ["orders:read", "orders:write"] } }),
    );
    let token = |roles: Value, scope: &str| {
        sign(
            "ES256",
            "es256",
            Some("test-es256-1"),
            &claims(json!({ "realm": { "roles": roles }, "scope": scope })),
        )
    };
    let ok = call(
        &harness,
        &token(json!(["admin", "reader"]), "orders:write profile"),
    );
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(
        header(&last_upstream(&harness).headers, "x-portico-scopes"),
        Some("orders:write profile")
    );

    let response = call(&harness, &token(json!(["reader"]), "orders:read"));
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        body_json(&response)["type"],
        "urn:portico:problem:forbidden"
    );
    let response = call(&harness, &token(json!(["admin", "reader"]), "profile"));
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenges(&response),
        [
            "Bearer realm=\"portico\", error=\"insufficient_scope\", scope=\"orders:read orders:write\""
        ]
    );
}

#[test]
fn a_verified_token_is_cached_until_it_expires() {
    let harness = harness();
    let token = sign(
        "ES256",
        "es256",
        Some("test-es256-1"),
        &claims(json!({ "exp": NOW + 120 })),
    );
    assert_eq!(call(&harness, &token).status(), StatusCode::OK);
    assert_eq!(harness.gateway.auth_state().tokens.borrow().len(), 1);
    assert_eq!(call(&harness, &token).status(), StatusCode::OK);
    // Past exp + leeway the cache no longer vouches for it.
    harness.platform.advance(Duration::from_secs(151));
    assert_rejected(&harness, &token, "expired while cached");
}

#[test]
fn a_new_config_forgets_tokens_verified_under_the_old_one() {
    let harness = harness();
    let token = sign(
        "ES256",
        "es256",
        Some("test-es256-1"),
        &claims(json!({ "exp": NOW + 3600 })),
    );
    assert_eq!(call(&harness, &token).status(), StatusCode::OK);
    assert_eq!(harness.gateway.auth_state().tokens.borrow().len(), 1);
    // The same issuer name, now trusting HS256 only: the cached ES256
    // verification must not outlive the config that made it.
    harness.platform.kv_put(
        portico::platform::KvNamespace::Config,
        portico::config::CONFIG_KEY,
        &auth_config(
            json!({ "jwt": { "test": tokens::issuer_config(&["HS256"]) } }),
            json!([
                { "id": "private", "path": "/private/*", "service": "users", "auth": { "jwt": ["test"] } }
            ]),
        ),
    );
    harness.platform.advance(Duration::from_secs(10));
    assert_rejected(&harness, &token, "verified under the previous config");
    assert_eq!(
        harness.gateway.auth_state().tokens.borrow().len(),
        0,
        "nothing cached from the old config, nothing new vouched for"
    );
}

#[test]
fn identity_headers_sent_by_the_client_never_reach_the_service() {
    let harness = harness();
    let token = sign("ES256", "es256", Some("test-es256-1"), &claims(json!({})));
    harness.send(request(
        Method::GET,
        "http://gw.example/private/x",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("x-portico-roles", "admin"),
            ("X-Portico-Consumer", "root"),
            ("x-portico-signature", "v1=forged"),
        ],
    ));
    let sent = last_upstream(&harness).headers;
    assert_eq!(header(&sent, "x-portico-roles"), None);
    assert_eq!(header(&sent, "x-portico-consumer"), None);
    assert_eq!(header(&sent, "x-portico-signature"), None);

    harness.send(request(
        Method::GET,
        "http://gw.example/public/x",
        &[("x-portico-subject", "admin")],
    ));
    let sent = last_upstream(&harness).headers;
    assert_eq!(
        header(&sent, "x-portico-subject"),
        None,
        "public routes strip them too"
    );
}

#[test]
fn identity_headers_spoofed_under_underscore_names_never_reach_the_service() {
    let harness = harness();
    let token = sign("ES256", "es256", Some("test-es256-1"), &claims(json!({})));
    harness.send(request(
        Method::GET,
        "http://gw.example/private/x",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("X_Portico_Roles", "admin"),
            ("x_portico_subject", "root"),
        ],
    ));
    let sent = last_upstream(&harness).headers;
    assert_eq!(header(&sent, "x_portico_roles"), None);
    assert_eq!(header(&sent, "x_portico_subject"), None);
    assert_eq!(header(&sent, "x-portico-roles"), None, "the token has none");
    assert_eq!(header(&sent, "x-portico-subject"), Some("user-1"));
}

fn b64(bytes: &[u8]) -> String {
    use base64ct::Encoding;
    base64ct::Base64UrlUnpadded::encode_string(bytes)
}

#[test]
fn the_runtimes_own_signature_check_decides_for_asymmetric_keys() {
    for alg in ["RS256", "PS384", "ES256", "EdDSA"] {
        let (key, kid) = key_for(alg);
        let token = sign(alg, key, Some(kid), &claims(json!({})));

        let refusing = harness();
        refusing.platform.answer_signatures(Some(false));
        assert_rejected(&refusing, &token, "the runtime's refusal stands");
        let asked = refusing.platform.signature_checks();
        assert_eq!(asked.len(), 1, "{alg}: one key, one check");
        assert_eq!(asked[0].0, alg);
        let jwk: Value = serde_json::from_str(&asked[0].1.jwk).unwrap();
        let kty = match alg {
            "ES256" => "EC",
            "EdDSA" => "OKP",
            _ => "RSA",
        };
        assert_eq!(jwk["kty"], kty, "{alg}");
        assert!(jwk.get("d").is_none(), "{alg}: public members only");

        // A verdict of the runtime's is not checked again in Rust: a
        // signature it accepts is accepted, and the claims still count.
        let accepting = harness();
        accepting.platform.answer_signatures(Some(true));
        let (forged, _) = token.rsplit_once('.').unwrap();
        let forged = format!("{forged}.{}", b64(b"not the signature"));
        assert_eq!(call(&accepting, &forged).status(), StatusCode::OK, "{alg}");
        let expired = sign(
            alg,
            key,
            Some(kid),
            &claims(json!({ "exp": NOW - 3600, "iat": NOW - 7200 })),
        );
        assert_rejected(&accepting, &expired, "claims are checked after it");
    }
}

#[test]
fn hmac_tokens_are_never_asked_of_the_runtime() {
    let harness = harness();
    harness.platform.answer_signatures(Some(false));
    let token = sign("HS256", "hs256", Some("test-hs-1"), &claims(json!({})));
    assert_eq!(call(&harness, &token).status(), StatusCode::OK);
    assert!(harness.platform.signature_checks().is_empty());
}

/// The corpus of signatures that the runtime's WebCrypto check is held to
/// as well (tests/e2e/webcrypto.test.mjs runs the same cases there): every
/// verdict of the pure-Rust check is the expected one.
#[test]
fn the_pure_rust_check_gives_the_corpus_verdicts() {
    let corpus: Value =
        serde_json::from_str(&common::fixture("auth/signature-corpus.json")).unwrap();
    let cases = corpus["cases"].as_array().unwrap();
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let key = portico::auth::keys::VerifyingKey::from_jwk(&case["jwk"]).unwrap();
        let token = portico::auth::keys::Token::try_from(case["token"].as_str().unwrap()).unwrap();
        let verdict = key.verify(&token).is_ok();
        assert_eq!(verdict, case["valid"].as_bool().unwrap(), "{name}");
        assert!(key.public.is_some(), "{name}: the runtime gets the key");
    }
}

/// The JWK the runtime imports is the key's own public JWK, member for
/// member (the form the corpus checks WebCrypto with), whatever form the
/// config gave the key in.
#[test]
fn the_runtime_gets_the_keys_public_jwk_from_a_jwk_or_a_pem() {
    for (name, members) in [
        ("rsa", &["kty", "n", "e"][..]),
        ("es256", &["kty", "crv", "x", "y"][..]),
        ("eddsa", &["kty", "crv", "x"][..]),
    ] {
        let published = key_json(&format!("{name}.public.jwk.json"));
        let from_pem = portico::auth::keys::VerifyingKey::from_pem(
            &common::fixture(&format!("auth/keys/{name}.public.pem")),
            None,
        )
        .unwrap();
        for key in [
            portico::auth::keys::VerifyingKey::from_jwk(&published).unwrap(),
            from_pem,
        ] {
            let public = key.public.clone().expect("an asymmetric key");
            let given: Value = serde_json::from_str(&public.jwk).unwrap();
            for member in members {
                assert_eq!(given[member], published[member], "{name}: {member}");
            }
            assert_eq!(
                given.as_object().unwrap().len(),
                members.len(),
                "{name}: only those"
            );
            assert_eq!(public.id.len(), 64, "{name}: a SHA-256 in hex");
        }
    }
}
