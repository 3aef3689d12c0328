//! Minting test tokens with the fixture keys in `fixtures/auth/keys`, and
//! hand-crafting the malformed and malicious ones.

#![allow(dead_code)]

use base64ct::{Base64UrlUnpadded, Encoding};
use chrono::{DateTime, Utc};
use jwt_compact::alg::{Ed25519, Es256, Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key, Rsa};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, Claims, Header};
use serde_json::{Map, Value, json};

use super::fixture;

pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "portico-tests";

pub fn key_json(name: &str) -> Value {
    serde_json::from_str(&fixture(&format!("auth/keys/{name}"))).expect("fixture key")
}

/// The fake clock's start (2026-01-01T00:00:00Z) in Unix seconds.
pub const NOW: i64 = 1_767_225_600;

/// Standard claims valid at [`NOW`] for an hour, plus `extra`.
pub fn claims(extra: Value) -> Value {
    let mut claims = json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "exp": NOW + 3600,
        "iat": NOW,
    });
    if let (Some(base), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            if v.is_null() {
                base.remove(k);
            } else {
                base.insert(k.clone(), v.clone());
            }
        }
    }
    claims
}

fn to_claims(value: &Value) -> Claims<Map<String, Value>> {
    let mut custom = value.as_object().cloned().unwrap_or_default();
    let time = |v: Option<Value>| {
        v.and_then(|v| v.as_i64())
            .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
    };
    let expiration = time(custom.remove("exp"));
    let not_before = time(custom.remove("nbf"));
    let issued_at = time(custom.remove("iat"));
    let mut claims = Claims::new(custom);
    claims.expiration = expiration;
    claims.not_before = not_before;
    claims.issued_at = issued_at;
    claims
}

/// A token signed with a fixture key (`rsa`, `es256`, `eddsa`, `hs256`).
pub fn sign(alg: &str, key: &str, kid: Option<&str>, claims_json: &Value) -> String {
    sign_claims(alg, key, kid, None, &to_claims(claims_json))
}

/// Like [`sign`], with a `typ` header.
pub fn sign_typed(
    alg: &str,
    key: &str,
    kid: Option<&str>,
    typ: &str,
    claims_json: &Value,
) -> String {
    sign_claims(alg, key, kid, Some(typ), &to_claims(claims_json))
}

/// A token signed with a fixture key whose payload is `payload` exactly as
/// written, numbers included: `exp`, `nbf` and `iat` may hold values no
/// date type can represent.
pub fn sign_payload(alg: &str, key: &str, kid: Option<&str>, payload: &Value) -> String {
    sign_claims(
        alg,
        key,
        kid,
        None,
        &Claims::new(payload.as_object().cloned().unwrap_or_default()),
    )
}

fn sign_claims(
    alg: &str,
    key: &str,
    kid: Option<&str>,
    typ: Option<&str>,
    claims: &Claims<Map<String, Value>>,
) -> String {
    let jwk_json = key_json(&format!(
        "{key}.{}",
        if key == "hs256" {
            "jwk.json"
        } else {
            "private.jwk.json"
        }
    ));
    let jwk: JsonWebKey<'_> = serde_json::from_value(jwk_json.clone()).expect("jwk");
    let mut header = Header::empty();
    if let Some(kid) = kid {
        header = header.with_key_id(kid);
    }
    if let Some(typ) = typ {
        header = header.with_token_type(typ);
    }
    let secret = || match &jwk {
        JsonWebKey::Symmetric { secret } => secret.to_vec(),
        _ => panic!("not an oct key"),
    };
    match alg {
        "HS256" => Hs256.token(&header, claims, &Hs256Key::new(secret())),
        "HS384" => Hs384.token(&header, claims, &Hs384Key::new(secret())),
        "HS512" => Hs512.token(&header, claims, &Hs512Key::new(secret())),
        "ES256" => Es256.token(
            &header,
            claims,
            &p256::ecdsa::SigningKey::try_from(&jwk).unwrap(),
        ),
        "EdDSA" => Ed25519.token(
            &header,
            claims,
            &ed25519_compact::SecretKey::try_from(&jwk).unwrap(),
        ),
        rsa_alg => Rsa::with_name(rsa_alg).token(
            &header,
            claims,
            &rsa::RsaPrivateKey::try_from(&jwk).unwrap(),
        ),
    }
    .expect("signing works")
}

/// A token from raw header and payload JSON and raw signature bytes.
pub fn craft(header: &Value, payload: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        Base64UrlUnpadded::encode_string(header.to_string().as_bytes()),
        Base64UrlUnpadded::encode_string(payload.to_string().as_bytes()),
        Base64UrlUnpadded::encode_string(signature)
    )
}

/// HMAC-SHA256 signature of `header.payload` with `secret` (for forging
/// HS256 tokens with a public key as the secret).
pub fn hs256_signature(signing_input: &str, secret: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(signing_input.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// An issuer block for a config: every fixture public key, and the given
/// algorithms.
pub fn issuer_config(algorithms: &[&str]) -> Value {
    let uses = |prefixes: &[&str]| {
        algorithms
            .iter()
            .any(|a| prefixes.iter().any(|p| a.starts_with(p)))
    };
    let mut keys = Vec::new();
    if uses(&["RS", "PS"]) {
        keys.push(key_json("rsa.public.jwk.json"));
    }
    if uses(&["ES"]) {
        keys.push(key_json("es256.public.jwk.json"));
    }
    if uses(&["Ed"]) {
        keys.push(key_json("eddsa.public.jwk.json"));
    }
    if uses(&["HS"]) {
        keys.push(key_json("hs256.jwk.json"));
    }
    json!({
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "algorithms": algorithms,
        "keys": keys,
        "roles_claim": "realm.roles",
        "leeway_seconds": 30,
        "required_claims": ["exp", "sub"]
    })
}
