//! Phase "authenticate": on a route with an auth policy, establish who is
//! calling from the credentials it accepts; any one accepted method that
//! verifies is enough.
//!
//! Returns the identity, or ends the request: 401 with a
//! `WWW-Authenticate` challenge per accepted scheme (`error="invalid_token"`
//! on a bad bearer token, `error="invalid_key"` on a bad API key) when
//! nothing verified, or 503 when a credential could not be checked because
//! KV, a JWKS or an introspection endpoint is unreachable. It fails
//! closed: it never lets a request through that it could not check.

use http::HeaderMap;

use crate::auth::{
    AuthFailure, AuthSettings, AuthState, Identity, RouteAuth, api_key, credentials, introspection,
    jwt,
};
use crate::error::GatewayError;
use crate::platform::{Clock, HttpClient, KvStore, LogSink, Secrets};

const REALM: &str = "portico";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scheme {
    ApiKey,
    Bearer,
}

/// Verify the request's credentials against `policy`.
pub async fn authenticate<P>(
    platform: &P,
    state: &AuthState,
    settings: &AuthSettings,
    policy: &RouteAuth,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Identity, GatewayError>
where
    P: Clock + KvStore + HttpClient + LogSink + Secrets,
{
    let presented = credentials::extract(headers, query, policy);
    let mut failures: Vec<(Scheme, AuthFailure)> = Vec::new();

    if let Some(key) = &presented.api_key {
        match api_key::verify(platform, &state.api_keys, &settings.api_keys, key).await {
            Ok(identity) => return Ok(identity),
            Err(failure) => failures.push((Scheme::ApiKey, failure)),
        }
    }
    if let Some(token) = &presented.bearer {
        let issuers: Vec<&jwt::Issuer> = policy
            .jwt
            .iter()
            .filter_map(|&index| settings.issuers.get(index))
            .collect();
        if !issuers.is_empty() && jwt::looks_like_jwt(token) {
            match jwt::verify(platform, state, &issuers, token).await {
                Ok(identity) => return Ok(identity),
                Err(failure) => failures.push((Scheme::Bearer, failure)),
            }
        }
        let introspectors: Vec<&introspection::Introspector> = policy
            .introspection
            .iter()
            .filter_map(|&index| settings.introspectors.get(index))
            .collect();
        if !introspectors.is_empty() {
            match introspection::introspect(platform, state, &introspectors, token).await {
                Ok(identity) => return Ok(identity),
                Err(failure) => failures.push((Scheme::Bearer, failure)),
            }
        }
        if issuers.is_empty() && introspectors.is_empty() {
            failures.push((
                Scheme::Bearer,
                AuthFailure::Invalid("bearer token on a route without token auth".into()),
            ));
        } else if !jwt::looks_like_jwt(token) && introspectors.is_empty() {
            failures.push((
                Scheme::Bearer,
                AuthFailure::Invalid("bearer token is not a JWT".into()),
            ));
        }
    }
    if presented.malformed {
        let scheme =
            if policy.api_key.is_some() && policy.jwt.is_empty() && policy.introspection.is_empty()
            {
                Scheme::ApiKey
            } else {
                Scheme::Bearer
            };
        failures.push((
            scheme,
            AuthFailure::Invalid("credentials are malformed or given twice".into()),
        ));
    }

    if let Some((_, AuthFailure::Unavailable(reason))) = failures
        .iter()
        .find(|(_, f)| matches!(f, AuthFailure::Unavailable(_)))
    {
        return Err(GatewayError::AuthUnavailable(reason.clone()));
    }
    let invalid = !failures.is_empty();
    let reason = if invalid {
        failures
            .iter()
            .map(|(_, failure)| match failure {
                AuthFailure::Invalid(why) | AuthFailure::Unavailable(why) => why.as_str(),
                AuthFailure::Missing => "missing",
            })
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        "no credentials".to_owned()
    };
    let failed = |scheme: Scheme| failures.iter().any(|(s, _)| *s == scheme);
    let mut challenges = Vec::new();
    if let Some(source) = &policy.api_key {
        let mut challenge = format!("ApiKey realm=\"{REALM}\", header=\"{}\"", source.header);
        if failed(Scheme::ApiKey) {
            challenge.push_str(", error=\"invalid_key\"");
        }
        challenges.push(challenge);
    }
    if !policy.jwt.is_empty()
        || !policy.introspection.is_empty()
        || policy.api_key.as_ref().is_some_and(|s| s.bearer)
    {
        let mut challenge = format!("Bearer realm=\"{REALM}\"");
        if failed(Scheme::Bearer) {
            challenge.push_str(", error=\"invalid_token\"");
        }
        challenges.push(challenge);
    }
    Err(GatewayError::Unauthenticated {
        challenges,
        invalid,
        reason,
    })
}
