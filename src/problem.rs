//! RFC 9457 problem details: the body of every error the gateway itself
//! answers with.
//!
//! Each problem type has a stable URI (`urn:portico:problem:<slug>`) that
//! clients can switch on; `docs/problems.md` lists them. A problem body must
//! never reveal internal addresses, stack traces or which part of a
//! credential was wrong.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;

use crate::body::Body;

/// The media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";
/// The prefix of every problem type URI.
pub const TYPE_PREFIX: &str = "urn:portico:problem:";

/// A kind of problem: its slug, title and status are fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProblemType {
    pub slug: &'static str,
    pub title: &'static str,
    pub status: StatusCode,
}

impl ProblemType {
    pub const NOT_CONFIGURED: ProblemType = ProblemType {
        slug: "not-configured",
        title: "Gateway not configured",
        status: StatusCode::SERVICE_UNAVAILABLE,
    };
    pub const BAD_REQUEST: ProblemType = ProblemType {
        slug: "bad-request",
        title: "Malformed request",
        status: StatusCode::BAD_REQUEST,
    };
    pub const ROUTE_NOT_FOUND: ProblemType = ProblemType {
        slug: "route-not-found",
        title: "No route matches this request",
        status: StatusCode::NOT_FOUND,
    };
    pub const METHOD_NOT_ALLOWED: ProblemType = ProblemType {
        slug: "method-not-allowed",
        title: "Method not allowed on this route",
        status: StatusCode::METHOD_NOT_ALLOWED,
    };
    pub const UNAUTHORIZED: ProblemType = ProblemType {
        slug: "unauthorized",
        title: "Authentication required",
        status: StatusCode::UNAUTHORIZED,
    };
    pub const FORBIDDEN: ProblemType = ProblemType {
        slug: "forbidden",
        title: "Access denied",
        status: StatusCode::FORBIDDEN,
    };
    pub const AUTH_UNAVAILABLE: ProblemType = ProblemType {
        slug: "auth-unavailable",
        title: "Authentication temporarily unavailable",
        status: StatusCode::SERVICE_UNAVAILABLE,
    };
    pub const RATE_LIMITED: ProblemType = ProblemType {
        slug: "rate-limited",
        title: "Too many requests",
        status: StatusCode::TOO_MANY_REQUESTS,
    };
    pub const RATE_LIMIT_UNAVAILABLE: ProblemType = ProblemType {
        slug: "rate-limit-unavailable",
        title: "Rate limiting temporarily unavailable",
        status: StatusCode::SERVICE_UNAVAILABLE,
    };
    pub const UPSTREAM_UNREACHABLE: ProblemType = ProblemType {
        slug: "upstream-unreachable",
        title: "Upstream service unreachable",
        status: StatusCode::BAD_GATEWAY,
    };
    pub const UPSTREAM_TIMEOUT: ProblemType = ProblemType {
        slug: "upstream-timeout",
        title: "Upstream service timed out",
        status: StatusCode::GATEWAY_TIMEOUT,
    };
    pub const NO_HEALTHY_UPSTREAM: ProblemType = ProblemType {
        slug: "no-healthy-upstream",
        title: "No healthy upstream target",
        status: StatusCode::SERVICE_UNAVAILABLE,
    };
    pub const INVALID_BODY: ProblemType = ProblemType {
        slug: "invalid-body",
        title: "Request body refused",
        status: StatusCode::BAD_REQUEST,
    };
    pub const BODY_TOO_LARGE: ProblemType = ProblemType {
        slug: "body-too-large",
        title: "Request body too large",
        status: StatusCode::PAYLOAD_TOO_LARGE,
    };
    pub const UNSUPPORTED_MEDIA_TYPE: ProblemType = ProblemType {
        slug: "unsupported-media-type",
        title: "Request body cannot be transformed",
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
    };
    pub const UPSTREAM_INVALID_BODY: ProblemType = ProblemType {
        slug: "upstream-invalid-body",
        title: "Upstream response could not be transformed",
        status: StatusCode::BAD_GATEWAY,
    };
    pub const INTERNAL: ProblemType = ProblemType {
        slug: "internal-error",
        title: "Internal gateway error",
        status: StatusCode::INTERNAL_SERVER_ERROR,
    };

    pub const AGGREGATE_FAILED: ProblemType = ProblemType {
        slug: "aggregate-failed",
        title: "A required part of the aggregated answer failed",
        status: StatusCode::BAD_GATEWAY,
    };
    pub const AGGREGATE_TIMEOUT: ProblemType = ProblemType {
        slug: "aggregate-timeout",
        title: "A required part of the aggregated answer timed out",
        status: StatusCode::GATEWAY_TIMEOUT,
    };
    /// Not a response of its own: what fills an optional leg's slot in an
    /// aggregated document when that leg failed.
    pub const AGGREGATE_LEG_FAILED: ProblemType = ProblemType {
        slug: "aggregate-leg-failed",
        title: "This part of the aggregated answer failed",
        status: StatusCode::BAD_GATEWAY,
    };

    pub const UPGRADE_NOT_ALLOWED: ProblemType = ProblemType {
        slug: "upgrade-not-allowed",
        title: "This route does not take WebSocket upgrades",
        status: StatusCode::BAD_REQUEST,
    };
    pub const ORIGIN_NOT_ALLOWED: ProblemType = ProblemType {
        slug: "origin-not-allowed",
        title: "The request's origin is not allowed on this route",
        status: StatusCode::FORBIDDEN,
    };
    pub const UPSTREAM_INVALID_RESPONSE: ProblemType = ProblemType {
        slug: "upstream-invalid-response",
        title: "The upstream service gave no valid response",
        status: StatusCode::BAD_GATEWAY,
    };

    /// Every problem type, for docs and tests.
    pub const ALL: [ProblemType; 23] = [
        Self::NOT_CONFIGURED,
        Self::BAD_REQUEST,
        Self::ROUTE_NOT_FOUND,
        Self::METHOD_NOT_ALLOWED,
        Self::UNAUTHORIZED,
        Self::FORBIDDEN,
        Self::AUTH_UNAVAILABLE,
        Self::RATE_LIMITED,
        Self::RATE_LIMIT_UNAVAILABLE,
        Self::UPSTREAM_UNREACHABLE,
        Self::UPSTREAM_TIMEOUT,
        Self::NO_HEALTHY_UPSTREAM,
        Self::INVALID_BODY,
        Self::BODY_TOO_LARGE,
        Self::UNSUPPORTED_MEDIA_TYPE,
        Self::UPSTREAM_INVALID_BODY,
        Self::INTERNAL,
        Self::AGGREGATE_FAILED,
        Self::AGGREGATE_TIMEOUT,
        Self::AGGREGATE_LEG_FAILED,
        Self::UPGRADE_NOT_ALLOWED,
        Self::ORIGIN_NOT_ALLOWED,
        Self::UPSTREAM_INVALID_RESPONSE,
    ];

    pub fn uri(&self) -> String {
        format!("{TYPE_PREFIX}{}", self.slug)
    }
}

/// A problem details document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    pub request_id: String,
    /// For aggregated calls: the legs that failed, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub legs: Vec<LegProblem>,
}

/// One failed leg of an aggregated call, as clients see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LegProblem {
    pub leg: String,
    pub status: u16,
    pub detail: String,
}

impl Problem {
    pub fn new(kind: ProblemType, detail: impl Into<String>, request_id: &str) -> Problem {
        Problem {
            type_uri: kind.uri(),
            title: kind.title,
            status: kind.status.as_u16(),
            detail: detail.into(),
            request_id: request_id.to_owned(),
            legs: Vec::new(),
        }
    }

    /// The problem as an HTTP response (never cached).
    pub fn into_response<S>(self) -> Response<Body<S>> {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let json = serde_json::to_vec(&self).unwrap_or_else(|_| {
            br#"{"type":"urn:portico:problem:internal-error","title":"Internal gateway error","status":500}"#.to_vec()
        });
        let mut response = Response::new(Body::Full(Bytes::from(json)));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}
