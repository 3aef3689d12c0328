//! Phase "authenticate": on a route with an auth policy, establish who is
//! calling from the credentials it accepts; any one accepted method that
//! verifies is enough.
//!
//! Sets the identity in the context, or ends the request: 401 with a
//! `WWW-Authenticate` challenge per accepted scheme
//! (`error="invalid_token"` on a bad bearer token, `error="invalid_key"`
//! on a bad API key) when nothing verified, or 503 when a credential could
//! not be checked because KV, a JWKS or an introspection endpoint is
//! unreachable. It fails closed: it never lets a request through that it
//! could not check. Public routes and passed-through CORS preflights skip
//! it.

use http::HeaderMap;

use crate::auth::{
    AuthFailure, AuthSettings, AuthState, Identity, RouteAuth, api_key, credentials, introspection,
    jwt,
};
use crate::config::Config;
use crate::error::GatewayError;
use crate::http::upgrade;
use crate::pipeline::context::RequestCtx;
use crate::pipeline::flow::Flow;
use crate::platform::{Clock, HttpClient, KvStore, LogSink, Secrets, SignatureChecks};

const REALM: &str = "portico";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scheme {
    ApiKey,
    Bearer,
}

/// Authenticate the request if its route asks for it.
pub async fn run<P, S>(
    platform: &P,
    state: &AuthState,
    config: &Config,
    ctx: &mut RequestCtx<S>,
) -> Result<Flow<S>, GatewayError>
where
    P: Clock + KvStore + HttpClient + LogSink + Secrets + SignatureChecks,
{
    let Some(routed) = &ctx.route else {
        return Ok(Flow::Continue);
    };
    let Some(policy) = &routed.route.auth else {
        return Ok(Flow::Continue);
    };
    if ctx.preflight.is_some() {
        return Ok(Flow::Continue);
    }
    state.use_config(config.generation);
    let started = platform.now();
    let offered = routed
        .route
        .websocket
        .filter(|websocket| ctx.websocket && websocket.subprotocol_credentials)
        .and_then(|_| upgrade::protocol_credential(&ctx.headers));
    let verdict = authenticate(
        platform,
        state,
        &config.auth,
        policy,
        &Request {
            headers: &ctx.headers,
            query: ctx.uri.query(),
            offered: offered.as_deref(),
        },
    )
    .await;
    ctx.timings.auth = Some(platform.now().millis_since(started));
    ctx.identity = Some(verdict?);
    Ok(Flow::Continue)
}

/// Where a request's credentials may be.
struct Request<'a> {
    headers: &'a HeaderMap,
    query: Option<&'a str>,
    /// A credential a WebSocket client offered as a subprotocol, on a
    /// route that reads them.
    offered: Option<&'a str>,
}

/// Verify the request's credentials against `policy`.
async fn authenticate<P>(
    platform: &P,
    state: &AuthState,
    settings: &AuthSettings,
    policy: &RouteAuth,
    request: &Request<'_>,
) -> Result<Identity, GatewayError>
where
    P: Clock + KvStore + HttpClient + LogSink + Secrets + SignatureChecks,
{
    let mut presented = credentials::extract(request.headers, request.query, policy);
    if let Some(offered) = request.offered {
        credentials::add_offered(&mut presented, offered, policy);
    }
    let mut failures: Vec<(Scheme, AuthFailure)> = Vec::new();
    if let Some(key) = &presented.api_key {
        match api_key::verify(platform, &state.api_keys, &settings.api_keys, key).await {
            Ok(identity) => return Ok(identity),
            Err(failure) => failures.push((Scheme::ApiKey, failure)),
        }
    }
    if let Some(token) = &presented.bearer {
        match verify_bearer(platform, state, policy, token).await {
            Ok(identity) => return Ok(identity),
            Err(mut more) => failures.append(&mut more),
        }
    }
    if presented.malformed {
        failures.push((malformed_scheme(policy), malformed()));
    }
    Err(refusal(policy, failures))
}

/// A bearer token, checked as a JWT and then by introspection, as the
/// route accepts them.
async fn verify_bearer<P>(
    platform: &P,
    state: &AuthState,
    policy: &RouteAuth,
    token: &str,
) -> Result<Identity, Vec<(Scheme, AuthFailure)>>
where
    P: Clock + HttpClient + LogSink + Secrets + SignatureChecks,
{
    let mut failures = Vec::new();
    let is_jwt = jwt::looks_like_jwt(token);
    if !policy.jwt.is_empty() && is_jwt {
        match jwt::verify(platform, state, &policy.jwt, token).await {
            Ok(identity) => return Ok(identity),
            Err(failure) => failures.push((Scheme::Bearer, failure)),
        }
    }
    if !policy.introspection.is_empty() {
        match introspection::introspect(platform, state, &policy.introspection, token).await {
            Ok(identity) => return Ok(identity),
            Err(failure) => failures.push((Scheme::Bearer, failure)),
        }
    }
    if policy.jwt.is_empty() && policy.introspection.is_empty() {
        failures.push((
            Scheme::Bearer,
            AuthFailure::Invalid("bearer token on a route without token auth".into()),
        ));
    } else if !is_jwt && policy.introspection.is_empty() {
        failures.push((
            Scheme::Bearer,
            AuthFailure::Invalid("bearer token is not a JWT".into()),
        ));
    }
    Err(failures)
}

fn malformed() -> AuthFailure {
    AuthFailure::Invalid("credentials are malformed or given twice".into())
}

/// Which challenge a malformed credential is reported under.
fn malformed_scheme(policy: &RouteAuth) -> Scheme {
    if policy.api_key.is_some() && policy.jwt.is_empty() && policy.introspection.is_empty() {
        Scheme::ApiKey
    } else {
        Scheme::Bearer
    }
}

/// The error for a request nothing verified: 503 if a check could not be
/// made, else 401 with one challenge per accepted scheme.
fn refusal(policy: &RouteAuth, failures: Vec<(Scheme, AuthFailure)>) -> GatewayError {
    if let Some((_, AuthFailure::Unavailable(reason))) = failures
        .iter()
        .find(|(_, f)| matches!(f, AuthFailure::Unavailable(_)))
    {
        return GatewayError::AuthUnavailable(reason.clone());
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
    GatewayError::Unauthenticated {
        challenges: challenges(policy, |scheme| failures.iter().any(|(s, _)| *s == scheme)),
        invalid,
        reason,
    }
}

/// One `WWW-Authenticate` challenge per scheme the route accepts.
fn challenges(policy: &RouteAuth, failed: impl Fn(Scheme) -> bool) -> Vec<String> {
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
    challenges
}
