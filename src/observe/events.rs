//! Structured log events: one JSON object per line, the gateway's only
//! logging vocabulary.
//!
//! Events must never carry secrets: no query strings, no credentials, no
//! request or response bodies. Internal addresses may appear here (logs are
//! for operators) but never in responses to clients.

use serde::Serialize;

/// How loud an event is; the Workers adapter maps it to `console.log`,
/// `console.warn` or `console.error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// Everything the gateway logs.
// Events live only as long as it takes to log them; boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// One per request, after the response is ready.
    Request(AccessLog),
    /// A new configuration was validated and is now serving.
    ConfigLoaded { routes: usize, services: usize },
    /// A configuration in KV failed validation; the last good one (if any)
    /// keeps serving.
    ConfigRefused {
        kept_previous: bool,
        errors: Vec<String>,
    },
    /// KV holds no configuration: with `kept_previous` the last good one
    /// keeps serving, otherwise the gateway answers 503 until one appears.
    ConfigMissing { kept_previous: bool },
    /// Reading the configuration from KV failed.
    ConfigReadFailed { kept_previous: bool, error: String },
    /// An issuer's key set was fetched.
    JwksFetched {
        url: String,
        keys: usize,
        cache_seconds: u64,
    },
    /// The rate-limit store could not answer; with `failed_open` the
    /// request went through unlimited, otherwise it got 503.
    RateLimitUnavailable {
        route: String,
        error: String,
        failed_open: bool,
    },
    /// The response cache failed (a lookup, a store, a background
    /// refresh); the request went on as a miss.
    CacheFailed {
        route: String,
        operation: &'static str,
        error: String,
    },
    /// A response the cache meant to store was not: its body, of no
    /// declared length, ran past the route's `max_body_bytes`
    /// (`too-large`), or it ended early (`body-failed`).
    CacheNotStored { route: String, reason: &'static str },
    /// A caller's own rate plan (from its API key record) was not valid;
    /// the route's plan applied instead.
    RatePlanRefused {
        route: String,
        key_id: Option<String>,
        reason: String,
    },
    /// A client network used up its budget of failed authentication
    /// attempts; its requests to authenticated routes get 429 without a
    /// credential check for `retry_after_s`.
    FailedAuthBlocked {
        route: String,
        network: String,
        retry_after_s: u64,
    },
    /// Fetching an issuer's key set failed; with `kept_previous` the last
    /// set stays in use.
    JwksFetchFailed {
        url: String,
        error: String,
        kept_previous: bool,
    },
    /// Passive health took a target out of service in this isolate.
    TargetEjected {
        service: String,
        target: String,
        for_ms: u64,
        /// Ejections in a row, this one included.
        ejections: u32,
    },
    /// A target is back in service in this isolate: its trial request
    /// succeeded (`trial`) or the scheduled check saw it answer (`check`).
    TargetRestored {
        service: String,
        target: String,
        by: &'static str,
    },
    /// The scheduled health check ran and stored its results.
    HealthChecked {
        targets: usize,
        /// `service target` of each target it has down.
        down: Vec<String>,
        /// Whether the results were written (unchanged ones are written
        /// only every few minutes).
        stored: bool,
    },
    /// The scheduled health check could not run or store its results.
    HealthCheckFailed { error: String },
}

impl Event {
    pub fn level(&self) -> Level {
        match self {
            Event::Request(log) if log.status >= 500 => Level::Error,
            Event::Request(_)
            | Event::ConfigLoaded { .. }
            | Event::JwksFetched { .. }
            | Event::TargetRestored { .. } => Level::Info,
            Event::HealthChecked { down, .. } if down.is_empty() => Level::Info,
            Event::CacheNotStored { reason, .. } if *reason == "too-large" => Level::Info,
            Event::ConfigRefused { .. }
            | Event::ConfigMissing { .. }
            | Event::CacheFailed { .. }
            | Event::CacheNotStored { .. }
            | Event::RatePlanRefused { .. }
            | Event::FailedAuthBlocked { .. }
            | Event::TargetEjected { .. }
            | Event::HealthChecked { .. } => Level::Warn,
            Event::ConfigReadFailed { .. }
            | Event::HealthCheckFailed { .. }
            | Event::JwksFetchFailed { .. }
            | Event::RateLimitUnavailable { .. } => Level::Error,
        }
    }

    /// The event as one JSON line, with its level.
    pub fn to_json_line(&self) -> String {
        #[derive(Serialize)]
        struct Line<'a> {
            level: Level,
            #[serde(flatten)]
            event: &'a Event,
        }
        serde_json::to_string(&Line {
            level: self.level(),
            event: self,
        })
        .unwrap_or_else(|_| String::from(r#"{"level":"error","event":"unserializable"}"#))
    }
}

/// The access log record of one request: what an operator needs to answer
/// "why was this slow, or refused". Absent values are left out of the line
/// rather than written as null: shorter lines cost less to log.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AccessLog {
    pub request_id: String,
    /// The W3C trace id (32 hex digits), shared with the upstream.
    pub trace_id: String,
    /// The gateway's own span id in that trace (16 hex digits).
    pub span_id: String,
    pub method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The request path without its query string (queries may hold secrets).
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The target that answered last (`host:port`); never sent to clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Every try when there was more than one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<AttemptLog>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// What rate limiting decided (see `docs/observability.md`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<&'static str>,
    /// What the response cache did (RFC 9211 vocabulary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<&'static str>,
    /// What CORS did: `preflight`, `allowed`, `refused`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors: Option<&'static str>,
    /// `websocket` when the request became one (status 101).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<&'static str>,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
    pub timings_ms: Timings,
    /// The problem type slug when the gateway answered with an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<&'static str>,
    /// Operator-facing detail of an error (may name internal addresses).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where the time of one request went, in milliseconds. Phases that did
/// not run are left out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Timings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u64>,
    /// Until the upstream's response headers arrived, every try included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<u64>,
    pub total: u64,
}

/// One try at an upstream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttemptLog {
    /// `host:port` of the target.
    pub target: String,
    /// Its status, if it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it gave no answer, if it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub ms: u64,
}
