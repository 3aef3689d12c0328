//! OAuth 2.0 token introspection (RFC 7662) for opaque bearer tokens.
//!
//! The gateway POSTs the token to the endpoint with its client
//! credentials (HTTP Basic, the secret from a Worker secret). `active:
//! false` is a 401; an endpoint that cannot answer is a 503. Results are
//! cached by the token's SHA-256: active ones no longer than the token's
//! `exp` and the configured maximum, inactive ones briefly.

use std::rc::Rc;
use std::time::Duration;

use base64ct::Encoding;
use bytes::Bytes;
use http::{HeaderValue, Method, header};
use serde_json::{Map, Value};

use super::jwt::{names_at, token_hash};
use super::state::AuthState;
use super::{AuthFailure, AuthMethod, Identity};
use crate::body::Body;
use crate::platform::{Clock, FetchOptions, HttpClient, Secrets, UnixMillis};

const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// An introspection endpoint and how to use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Introspector {
    pub name: String,
    pub url: http::Uri,
    pub client_id: String,
    /// Name of the Worker secret holding the client secret.
    pub client_secret: String,
    /// Longest an active result is reused (never past the token's `exp`).
    pub cache_ttl: Duration,
    /// How long an inactive result is remembered.
    pub negative_ttl: Duration,
    pub timeout: Duration,
    pub roles_claim: Option<String>,
    pub scopes_claim: String,
}

/// Check `token` with the introspectors a route accepts, in order.
pub async fn introspect<P>(
    platform: &P,
    state: &AuthState,
    introspectors: &[Rc<Introspector>],
    token: &str,
) -> Result<Identity, AuthFailure>
where
    P: Clock + HttpClient + Secrets,
{
    let hash = token_hash(token);
    let mut failure = AuthFailure::Invalid("token is not active".to_owned());
    for introspector in introspectors {
        let now = platform.now();
        let key = (introspector.name.clone(), hash);
        let cached = state.introspected.borrow_mut().get(&key, now);
        let result = match cached {
            Some(result) => result,
            None => {
                let result = match ask(platform, introspector, token, now).await {
                    Ok(result) => result,
                    Err(unavailable) => {
                        failure = unavailable;
                        continue;
                    }
                };
                let until = match &result {
                    Some((_, expires)) => *expires,
                    None => now.plus(introspector.negative_ttl),
                };
                let value = result.map(|(identity, _)| Rc::new(identity));
                state
                    .introspected
                    .borrow_mut()
                    .insert(key, value.clone(), until);
                value
            }
        };
        if let Some(identity) = result {
            return Ok((*identity).clone());
        }
    }
    Err(failure)
}

/// One call to the endpoint: `Some((identity, cache until))` when active.
async fn ask<P>(
    platform: &P,
    introspector: &Introspector,
    token: &str,
    now: UnixMillis,
) -> Result<Option<(Identity, UnixMillis)>, AuthFailure>
where
    P: HttpClient + Secrets,
{
    let unavailable = |why: String| {
        AuthFailure::Unavailable(format!("introspection '{}': {why}", introspector.name))
    };
    let secret = platform
        .secret(&introspector.client_secret)
        .ok_or_else(|| {
            unavailable(format!(
                "Worker secret {} is not set",
                introspector.client_secret
            ))
        })?;
    let form = serde_urlencoded::to_string([("token", token), ("token_type_hint", "access_token")])
        .map_err(|e| unavailable(e.to_string()))?;
    // RFC 6749 2.3.1: the client id and secret are form-encoded first.
    let encode = |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", encode(&introspector.client_id), encode(&secret));
    let basic = base64ct::Base64::encode_string(pair.as_bytes());

    let mut request = http::Request::new(Body::Full(Bytes::from(form)));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = introspector.url.clone();
    let headers = request.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Basic {basic}")).map_err(|e| unavailable(e.to_string()))?,
    );
    let response = platform
        .fetch(
            request,
            FetchOptions {
                timeout: introspector.timeout,
            },
        )
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    if !response.status().is_success() {
        return Err(unavailable(format!("status {}", response.status())));
    }
    let body = platform
        .read_body(response.into_body(), MAX_RESPONSE_BYTES)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let result: Map<String, Value> = serde_json::from_slice(&body)
        .map_err(|e| unavailable(format!("not a JSON object: {e}")))?;
    if result.get("active") != Some(&Value::Bool(true)) {
        return Ok(None);
    }
    let now_seconds = now.as_secs();
    let exp = result.get("exp").and_then(Value::as_u64);
    if exp.is_some_and(|exp| exp <= now_seconds) {
        return Ok(None);
    }
    let ceiling = now.plus(introspector.cache_ttl);
    let until = exp.map_or(ceiling, |exp| {
        ceiling.min(UnixMillis(exp.saturating_mul(1000)))
    });
    let text = |name: &str| result.get(name).and_then(Value::as_str).map(str::to_owned);
    let mut identity = Identity {
        method: Some(AuthMethod::Introspection),
        consumer: text("client_id"),
        key_id: None,
        subject: text("sub").or_else(|| text("username")),
        issuer: text("iss"),
        roles: introspector
            .roles_claim
            .as_deref()
            .map(|path| names_at(&result, path))
            .unwrap_or_default(),
        scopes: names_at(&result, &introspector.scopes_claim),
        rate: None,
        claims: None,
    };
    identity.claims = Some(std::rc::Rc::new(result));
    Ok(Some((identity, until)))
}
