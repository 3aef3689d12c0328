//! The gateway's one error type. Each variant says where the failure came
//! from (the client, the upstream, or the gateway itself) and maps to an
//! HTTP problem response exactly once, in the pipeline
//! ([`crate::pipeline`]); the response phases then decorate it like any
//! other response.
//!
//! `Display` texts are for operators' logs and may name internal
//! addresses; what clients see comes only from [`GatewayError::problem`].

use std::time::Duration;

use http::{HeaderValue, Method, Response, header};

use crate::body::Body;
use crate::config::source::Unconfigured;
use crate::problem::{LegProblem, Problem, ProblemType};
use crate::routing::PathError;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    #[error("not configured: {0}")]
    NotConfigured(#[from] Unconfigured),
    #[error("malformed request path: {0}")]
    BadPath(#[from] PathError),
    /// The runtime handed over a request the core cannot represent.
    #[error("malformed request: {0}")]
    MalformedRequest(String),
    #[error("no route matches")]
    RouteNotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: Vec<Method> },
    /// No valid credential. `challenges` become `WWW-Authenticate` headers;
    /// `invalid` tells a presented-but-wrong credential from none at all.
    #[error("not authenticated: {reason}")]
    Unauthenticated {
        challenges: Vec<String>,
        invalid: bool,
        reason: String,
    },
    #[error("forbidden: {reason}")]
    Forbidden {
        challenge: Option<String>,
        reason: String,
    },
    /// Credentials could not be checked (identity provider or KV down).
    #[error("authentication unavailable: {0}")]
    AuthUnavailable(String),
    /// A rate limit refused the request; `retry_after` in seconds. The
    /// rate-limit headers are added by the response phases, as on every
    /// response of a limited route.
    #[error("rate limited (retry after {retry_after} s)")]
    RateLimited { retry_after: u64 },
    /// The client's address used up its budget of failed authentication
    /// attempts; its credentials are not checked for `retry_after` seconds.
    #[error("too many failed authentication attempts (retry after {retry_after} s)")]
    AuthThrottled { retry_after: u64 },
    /// The operators' API stopped comparing tokens after too many wrong
    /// ones; `retry_after` in seconds.
    #[error("admin token guessing throttled (retry after {retry_after} s)")]
    AdminThrottled { retry_after: u64 },
    /// The rate-limit store failed and the route fails closed.
    #[error("rate limiting unavailable: {0}")]
    RateLimitUnavailable(String),
    #[error("upstream gave no response within {0:?}")]
    UpstreamTimeout(Duration),
    #[error("upstream unreachable: {0}")]
    UpstreamUnreachable(String),
    /// Required legs of an aggregated call failed (each with what a client
    /// may be told); a timeout if they all timed out.
    #[error("aggregate failed: {}", legs.iter().map(|leg| format!("{} ({})", leg.leg, leg.detail)).collect::<Vec<_>>().join(", "))]
    AggregateFailed {
        legs: Vec<LegProblem>,
        timeout: bool,
    },
    /// Every target of a balanced service is ejected or checked down;
    /// `retry_after` in seconds.
    #[error("no healthy upstream target (retry after {retry_after} s)")]
    NoHealthyUpstream { retry_after: u64 },
    /// The request body could not be read as the route expects (not
    /// JSON, refused XML, or not convertible); the text is the client's.
    #[error("invalid request body: {0}")]
    InvalidRequestBody(String),
    /// A request body the route transforms was over its cap (bytes).
    #[error("request body over {0} bytes")]
    RequestBodyTooLarge(usize),
    /// A request body of a type or encoding the route cannot transform.
    #[error("unsupported request body: {0}")]
    UnsupportedRequestBody(String),
    /// The upstream's response could not be transformed; the text may
    /// describe the service and is for the log only.
    #[error("upstream response not transformable: {0}")]
    InvalidUpstreamBody(String),
    /// A WebSocket upgrade on a route that does not take them (or one
    /// that is not a GET).
    #[error("upgrade refused: {0}")]
    UpgradeNotAllowed(&'static str),
    /// A WebSocket upgrade from a page whose origin the route's CORS policy
    /// does not admit (browsers apply no CORS to WebSockets: the gateway
    /// checks the origin itself).
    #[error("origin not allowed: {0}")]
    OriginNotAllowed(String),
    /// The upstream answered with something that is not a final response
    /// to this request: an interim 1xx, or a 101 to a request that asked
    /// for no upgrade. The text is for the log.
    #[error("upstream gave an invalid response: {0}")]
    UpstreamInvalidResponse(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl GatewayError {
    pub fn problem_type(&self) -> ProblemType {
        match self {
            GatewayError::NotConfigured(_) => ProblemType::NOT_CONFIGURED,
            GatewayError::BadPath(_) | GatewayError::MalformedRequest(_) => {
                ProblemType::BAD_REQUEST
            }
            GatewayError::RouteNotFound => ProblemType::ROUTE_NOT_FOUND,
            GatewayError::MethodNotAllowed { .. } => ProblemType::METHOD_NOT_ALLOWED,
            GatewayError::Unauthenticated { .. } => ProblemType::UNAUTHORIZED,
            GatewayError::Forbidden { .. } => ProblemType::FORBIDDEN,
            GatewayError::AuthUnavailable(_) => ProblemType::AUTH_UNAVAILABLE,
            GatewayError::RateLimited { .. }
            | GatewayError::AuthThrottled { .. }
            | GatewayError::AdminThrottled { .. } => ProblemType::RATE_LIMITED,
            GatewayError::RateLimitUnavailable(_) => ProblemType::RATE_LIMIT_UNAVAILABLE,
            GatewayError::UpstreamTimeout(_) => ProblemType::UPSTREAM_TIMEOUT,
            GatewayError::UpstreamUnreachable(_) => ProblemType::UPSTREAM_UNREACHABLE,
            GatewayError::AggregateFailed { timeout: true, .. } => ProblemType::AGGREGATE_TIMEOUT,
            GatewayError::AggregateFailed { .. } => ProblemType::AGGREGATE_FAILED,
            GatewayError::NoHealthyUpstream { .. } => ProblemType::NO_HEALTHY_UPSTREAM,
            GatewayError::InvalidRequestBody(_) => ProblemType::INVALID_BODY,
            GatewayError::RequestBodyTooLarge(_) => ProblemType::BODY_TOO_LARGE,
            GatewayError::UnsupportedRequestBody(_) => ProblemType::UNSUPPORTED_MEDIA_TYPE,
            GatewayError::InvalidUpstreamBody(_) => ProblemType::UPSTREAM_INVALID_BODY,
            GatewayError::UpgradeNotAllowed(_) => ProblemType::UPGRADE_NOT_ALLOWED,
            GatewayError::OriginNotAllowed(_) => ProblemType::ORIGIN_NOT_ALLOWED,
            GatewayError::UpstreamInvalidResponse(_) => ProblemType::UPSTREAM_INVALID_RESPONSE,
            GatewayError::Internal(_) => ProblemType::INTERNAL,
        }
    }

    /// What the client is told: nothing internal.
    pub fn problem(&self, request_id: &str) -> Problem {
        let detail = match self {
            GatewayError::NotConfigured(reason) => format!(
                "The gateway has no usable configuration: {reason}. Push one with 'portico config push'."
            ),
            GatewayError::BadPath(reason) => format!("The request path was refused: {reason}."),
            GatewayError::MalformedRequest(reason) => format!("The request was refused: {reason}."),
            GatewayError::RouteNotFound => {
                "No route matches this request's host and path.".to_owned()
            }
            GatewayError::MethodNotAllowed { allow } => format!(
                "This route accepts: {}.",
                allow
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            GatewayError::Unauthenticated { invalid: false, .. } => {
                "This route requires credentials.".to_owned()
            }
            GatewayError::Unauthenticated { invalid: true, .. } => {
                "The credentials presented are not valid.".to_owned()
            }
            GatewayError::Forbidden { .. } => {
                "The credentials are valid but lack a role or scope this route requires.".to_owned()
            }
            GatewayError::AuthUnavailable(_) => {
                "Credentials could not be checked right now; try again shortly.".to_owned()
            }
            GatewayError::RateLimited { retry_after, .. } => {
                format!("The rate limit for this route is used up; retry in {retry_after} s.")
            }
            GatewayError::AuthThrottled { retry_after } => format!(
                "Too many failed authentication attempts from this address; no credentials are checked for {retry_after} s."
            ),
            GatewayError::AdminThrottled { retry_after } => format!(
                "Too many wrong admin tokens; this endpoint compares none for {retry_after} s."
            ),
            GatewayError::RateLimitUnavailable(_) => {
                "Rate limits could not be checked right now; try again shortly.".to_owned()
            }
            GatewayError::UpstreamTimeout(timeout) => format!(
                "The upstream service did not answer within {} ms.",
                timeout.as_millis()
            ),
            GatewayError::UpstreamUnreachable(_) => {
                "The upstream service for this route could not be reached.".to_owned()
            }
            GatewayError::AggregateFailed { legs, .. } => format!(
                "Required parts of the answer failed: {}.",
                legs.iter()
                    .map(|leg| leg.leg.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            GatewayError::NoHealthyUpstream { retry_after } => format!(
                "No instance of the upstream service is healthy right now; retry in {retry_after} s."
            ),
            GatewayError::InvalidRequestBody(reason) => {
                format!("The request body was refused: {reason}.")
            }
            GatewayError::RequestBodyTooLarge(limit) => {
                format!("This route reads request bodies of at most {limit} bytes.")
            }
            GatewayError::UnsupportedRequestBody(reason) => {
                format!("The request body cannot be transformed: {reason}.")
            }
            GatewayError::InvalidUpstreamBody(_) => {
                "The upstream service's response could not be transformed for this route."
                    .to_owned()
            }
            GatewayError::UpgradeNotAllowed(reason) => {
                format!("The upgrade was refused: {reason}.")
            }
            GatewayError::OriginNotAllowed(_) => {
                "This route does not accept WebSocket connections from the page's origin."
                    .to_owned()
            }
            GatewayError::UpstreamInvalidResponse(_) => {
                "The upstream service answered with an interim or unrequested response.".to_owned()
            }
            GatewayError::Internal(_) => "The gateway failed to handle this request.".to_owned(),
        };
        let mut problem = Problem::new(self.problem_type(), detail, request_id);
        if let GatewayError::AggregateFailed { legs, .. } = self {
            problem.legs = legs.clone();
        }
        problem
    }

    /// The problem response, with any headers the status calls for.
    pub fn into_response<S>(&self, request_id: &str) -> Response<Body<S>> {
        let mut response = self.problem(request_id).into_response();
        let headers = response.headers_mut();
        match self {
            GatewayError::MethodNotAllowed { allow } => {
                let list = allow
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                if let Ok(value) = HeaderValue::from_str(&list) {
                    headers.insert(header::ALLOW, value);
                }
            }
            GatewayError::Unauthenticated { challenges, .. } => {
                for challenge in challenges {
                    if let Ok(value) = HeaderValue::from_str(challenge) {
                        headers.append(header::WWW_AUTHENTICATE, value);
                    }
                }
            }
            GatewayError::RateLimited { retry_after }
            | GatewayError::AuthThrottled { retry_after }
            | GatewayError::AdminThrottled { retry_after }
            | GatewayError::NoHealthyUpstream { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            GatewayError::Forbidden {
                challenge: Some(challenge),
                ..
            } => {
                if let Ok(value) = HeaderValue::from_str(challenge) {
                    headers.insert(header::WWW_AUTHENTICATE, value);
                }
            }
            _ => {}
        }
        response
    }
}
