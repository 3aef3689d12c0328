//! The configuration document as people write it: plain serde types that
//! mirror the JSON (and `docs/config.schema.json`) one to one.
//!
//! No validation lives here beyond what serde does (types, unknown fields,
//! required fields); [`super::Config::from_json`] turns these into checked
//! domain types. Keep this file, the schema and `docs/config.md` in step.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::ConfigError;

/// Deserialise `text`, reporting a failure at its JSON path (under `at`).
pub(crate) fn parse<T: DeserializeOwned>(text: &str, at: &str) -> Result<T, ConfigError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| located(err, at))
}

/// Deserialise a JSON value found at `at`, reporting a failure at its path.
pub(crate) fn from_value<T: DeserializeOwned>(
    value: &serde_json::Value,
    at: &str,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|err| located(err, at))
}

fn located(err: serde_path_to_error::Error<serde_json::Error>, at: &str) -> ConfigError {
    let inner = err.path().to_string();
    let path = match (at.is_empty(), inner == ".") {
        (true, true) => "(document)".to_owned(),
        (true, false) => inner,
        (false, true) => at.to_owned(),
        (false, false) => format!("{at}.{inner}"),
    };
    ConfigError::single(path, err.into_inner().to_string())
}

/// The whole document stored under the `config` key of the `CONFIG`
/// namespace.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigDocument {
    /// For editors; ignored by the gateway.
    #[serde(rename = "$schema", default)]
    pub schema: Option<String>,
    pub version: u32,
    #[serde(default)]
    pub settings: SettingsDocument,
    #[serde(default)]
    pub auth: AuthDocument,
    pub admin: Option<AdminDocument>,
    /// The config-wide CORS policy (routes may set their own or `false`).
    pub cors: Option<CorsDocument>,
    /// Defaults for routes' `cache` policies.
    pub cache: Option<CacheDocument>,
    pub log: Option<LogDocument>,
    pub services: BTreeMap<String, ServiceDocument>,
    pub routes: Vec<RouteDocument>,
}

/// A response caching policy (every field optional: a route's fields
/// fall back to the config-wide `cache`, then to built-in defaults).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheDocument {
    pub ttl_seconds: Option<u64>,
    pub honor_origin: Option<bool>,
    pub statuses: Option<Vec<u16>>,
    pub stale_while_revalidate_seconds: Option<u64>,
    pub stale_if_error_seconds: Option<u64>,
    pub max_body_bytes: Option<u64>,
    pub vary_headers: Option<Vec<String>>,
    pub query_params: Option<Vec<String>>,
    pub ignore_query_params: Option<Vec<String>>,
    pub shared: Option<bool>,
    pub generation: Option<u64>,
}

/// Which requests are logged.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogDocument {
    /// Share of successful requests logged (errors always are).
    pub sample_rate: Option<f64>,
}

/// A CORS policy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsDocument {
    /// Exact origins, `https://*.example.com` patterns, or `["*"]`.
    pub origins: Vec<String>,
    /// Default: the route's methods.
    pub methods: Option<Vec<String>>,
    /// Request headers scripts may send; `["*"]`: whatever they ask for.
    pub headers: Option<Vec<String>>,
    /// Response headers scripts may read.
    pub expose_headers: Option<Vec<String>>,
    pub max_age_seconds: Option<u64>,
    pub credentials: Option<bool>,
    pub pass_through_preflight: Option<bool>,
}

/// The operators' API under `/__portico/` (off unless configured).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminDocument {
    /// Name of the Worker secret holding the admin bearer token.
    pub token_secret: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsDocument {
    pub config_refresh_seconds: Option<u64>,
    pub request_id_header: Option<String>,
    pub trust_forwarded_headers: Option<bool>,
    /// Client headers never forwarded; replaces the default list.
    pub strip_request_headers: Option<Vec<String>>,
    /// The request header that carries the client's address, set by a
    /// proxy in front that clients cannot bypass (`CF-Connecting-IP` on
    /// Cloudflare); `""` when there is none.
    pub client_ip_header: Option<String>,
    /// The largest request body any route accepts, in bytes, unless the
    /// route sets its own; unset: no limit of the gateway's own.
    pub max_body_bytes: Option<u64>,
    /// The most legs an aggregate route may list (at most 20).
    pub max_aggregate_legs: Option<u64>,
}

/// A service: one `url`, or several `targets` to balance over.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDocument {
    pub url: Option<String>,
    pub targets: Option<Vec<TargetDocument>>,
    pub timeout_ms: Option<u64>,
    pub algorithm: Option<BalanceAlgorithm>,
    /// What `consistent_hash` hashes.
    pub hash_on: Option<HashOnDocument>,
    pub retry: Option<RetryDocument>,
    pub health: Option<ServiceHealthDocument>,
}

/// One target of a balanced service.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetDocument {
    pub url: String,
    pub weight: Option<u32>,
    /// Where it is, for callers nearby: a continent code (`EU`) ...
    pub continent: Option<String>,
    /// ... and a country code (`DE`).
    pub country: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BalanceAlgorithm {
    RoundRobin,
    Random,
    LeastRequest,
    ConsistentHash,
}

/// `"consumer"`, `"ip"`, `{"header": NAME}` or `{"param": NAME}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HashOnDocument {
    Consumer,
    Ip,
    Header(String),
    Param(String),
}

/// A retry policy (a service's, or a route's in its place).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryDocument {
    /// Tries in all, the first included.
    pub attempts: Option<u32>,
    pub on: Option<Vec<RetryOnName>>,
    /// More statuses worth another try.
    pub statuses: Option<Vec<u16>>,
    pub per_try_timeout_ms: Option<u64>,
    pub backoff: Option<BackoffDocument>,
    /// Retry POST and PATCH too.
    pub non_idempotent: Option<bool>,
    pub max_body_bytes: Option<u64>,
    pub budget: Option<BudgetDocument>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryOnName {
    ConnectError,
    Timeout,
    /// 502, 503 and 504.
    GatewayError,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackoffDocument {
    pub base_ms: Option<u64>,
    pub max_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetDocument {
    pub ratio: Option<f64>,
    pub min_retries: Option<u32>,
}

/// A service's health checking.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceHealthDocument {
    pub passive: Option<PassiveHealthDocument>,
    pub active: Option<ActiveHealthDocument>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassiveHealthDocument {
    pub consecutive_failures: Option<u32>,
    pub base_ejection_ms: Option<u64>,
    pub max_ejection_ms: Option<u64>,
    pub max_ejected_percent: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActiveHealthDocument {
    pub path: String,
    pub timeout_ms: Option<u64>,
    pub healthy_threshold: Option<u32>,
    pub unhealthy_threshold: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteDocument {
    pub id: String,
    pub path: String,
    pub methods: Option<Vec<String>>,
    pub hosts: Option<Vec<String>>,
    /// The service that serves the route (or give `aggregate`).
    pub service: Option<String>,
    pub strip_prefix: Option<String>,
    pub rewrite: Option<String>,
    pub timeout_ms: Option<u64>,
    pub auth: Option<RouteAuthDocument>,
    pub rate_limit: Option<RateLimitDocument>,
    /// A [`CorsDocument`], or `false` to turn the config-wide policy off
    /// for this route. Kept as JSON here so a mistake inside the policy is
    /// reported at its own path.
    pub cors: Option<serde_json::Value>,
    /// Cache this route's GET responses.
    pub cache: Option<CacheDocument>,
    /// Answer by calling several services and merging their answers
    /// (instead of `service`).
    pub aggregate: Option<AggregateDocument>,
    /// What to do with `%2F` and `%5C` in the path: `reject` (400, the
    /// default) or `keep` (forward them encoded).
    pub escaped_slashes: Option<EscapedSlashes>,
    /// Replaces the service's retry policy for this route.
    pub retry: Option<RetryDocument>,
    /// Change requests and responses on their way through.
    pub transform: Option<TransformDocument>,
    /// Let the route's GET requests become WebSockets: `true`, or a
    /// [`WebSocketDocument`]. Kept as JSON here so a mistake inside it is
    /// reported at its own path, with the rest of the document's.
    pub websocket: Option<serde_json::Value>,
    /// The largest request body the route accepts, in bytes (replaces
    /// `settings.max_body_bytes`).
    pub max_body_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSocketDocument {
    /// Read a credential a browser offers as the subprotocol
    /// `portico.bearer.<key or token>` (browsers cannot set headers on
    /// WebSocket requests).
    pub subprotocol_credentials: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EscapedSlashes {
    Reject,
    Keep,
}

/// An aggregate: the legs to call and how to merge them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateDocument {
    pub legs: Vec<LegDocument>,
    pub merge: Option<MergeName>,
    pub deadline_ms: Option<u64>,
    pub max_leg_bytes: Option<u64>,
    pub max_response_bytes: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeName {
    Named,
    Deep,
    Array,
}

/// One leg of an aggregate.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegDocument {
    pub name: String,
    pub service: String,
    pub method: Option<String>,
    /// Path and query template: `/users/{params.id}`, `/teams/{user.body.team_id}`.
    pub path: String,
    /// Client request headers to pass on.
    pub headers: Option<Vec<String>>,
    pub timeout_ms: Option<u64>,
    pub required: Option<bool>,
    pub take: Option<String>,
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
    pub rename: Option<BTreeMap<String, String>>,
    /// Cache this leg's answers (a route cache policy).
    pub cache: Option<CacheDocument>,
}

/// A route's transformation rules.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformDocument {
    /// The format the service speaks: `json` (default) or `xml`.
    pub origin_format: Option<FormatName>,
    /// Clients may send XML and ask for it with `Accept`.
    pub negotiate: Option<bool>,
    pub xml: Option<XmlDocument>,
    /// The largest body read to be transformed.
    pub max_body_bytes: Option<u64>,
    pub request: Option<RequestTransformDocument>,
    pub response: Option<ResponseTransformDocument>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormatName {
    Json,
    Xml,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XmlDocument {
    /// The root element of XML the gateway writes.
    pub root: Option<String>,
    pub always_array: Option<Vec<String>>,
    pub infer_types: Option<bool>,
    pub max_depth: Option<u64>,
    pub max_attributes: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestTransformDocument {
    pub headers: Option<Vec<HeaderRuleDocument>>,
    pub query: Option<Vec<HeaderRuleDocument>>,
    pub body: Option<Vec<JsonRuleDocument>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseTransformDocument {
    pub headers: Option<Vec<HeaderRuleDocument>>,
    pub body: Option<Vec<JsonRuleDocument>>,
}

/// One header or query rule: exactly one of `set`, `add`, `append`,
/// `remove`, `rename`, naming what it changes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderRuleDocument {
    pub set: Option<String>,
    pub add: Option<String>,
    pub append: Option<String>,
    pub remove: Option<String>,
    pub rename: Option<String>,
    /// The new name, for `rename`.
    pub to: Option<String>,
    /// The value template, for `set`, `add` and `append`.
    pub value: Option<String>,
    pub if_missing: Option<MissingName>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingName {
    Remove,
    Empty,
}

/// One JSON rule: exactly one of `allow`, `deny`, `rename` (with `to`),
/// `wrap`, `take`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonRuleDocument {
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
    pub rename: Option<String>,
    pub to: Option<String>,
    pub wrap: Option<String>,
    pub take: Option<String>,
}

/// A route's rate limits.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitDocument {
    /// The default plan; an API key's rate plan replaces its limit and period.
    pub plan: Option<PolicyDocument>,
    /// Applied on top of the plan, always.
    pub policies: Option<Vec<PolicyDocument>>,
    pub on_failure: Option<crate::config::wire::OnFailure>,
    pub headers: Option<RateLimitHeadersDocument>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    Open,
    Closed,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitHeadersDocument {
    pub legacy: Option<bool>,
    pub ietf: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    pub name: String,
    pub algorithm: Option<AlgorithmName>,
    pub limit: u64,
    /// `500ms`, `1s`, `1m`, `1h`, `1d`.
    pub period: String,
    pub burst: Option<u64>,
    pub scope: Vec<crate::ratelimit::ScopePart>,
    pub cost: Option<u64>,
    pub lease: Option<LeaseDocument>,
    /// With an `ip` scope: IPv6 clients count per network of this many bits.
    pub ipv6_prefix: Option<u8>,
    /// Count before authentication (scopes `ip` and `route` only).
    pub before_auth: Option<bool>,
}

/// Lease batches of units to isolates (for keys hotter than one object).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseDocument {
    pub size: u64,
    /// `250ms`, `1s`; default 1s.
    pub ttl: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlgorithmName {
    TokenBucket,
    #[serde(alias = "leaky_bucket")]
    Gcra,
    FixedWindow,
    SlidingLog,
}

/// Gateway-wide authentication settings: the identity headers, API-key
/// caching, trusted JWT issuers and introspection endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthDocument {
    pub identity_header_prefix: Option<String>,
    pub signing_secret: Option<String>,
    pub api_keys: Option<ApiKeysDocument>,
    #[serde(default)]
    pub jwt: BTreeMap<String, IssuerDocument>,
    #[serde(default)]
    pub introspection: BTreeMap<String, IntrospectorDocument>,
    /// The budget of failed authentication attempts per client address.
    pub failed_attempts: Option<FailedAttemptsDocument>,
}

/// How many failed authentication attempts a client address may make.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailedAttemptsDocument {
    /// `false` turns the budget off.
    pub enabled: Option<bool>,
    pub limit: Option<u64>,
    /// `1m`, `10m`.
    pub period: Option<String>,
    /// IPv6 clients count per network of this many bits.
    pub ipv6_prefix: Option<u8>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeysDocument {
    pub cache_seconds: Option<u64>,
    pub negative_cache_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerDocument {
    pub issuer: String,
    /// A list of audiences, or `"any"`. Kept as JSON so each mistake is
    /// reported at its own path with a reason people can act on.
    pub audiences: Option<serde_json::Value>,
    pub algorithms: Vec<String>,
    /// JWKs (JSON objects), or `{"pem": "...", "kid": "..."}` objects.
    pub keys: Option<Vec<serde_json::Value>>,
    pub jwks_url: Option<String>,
    pub jwks_min_cache_seconds: Option<u64>,
    pub jwks_max_cache_seconds: Option<u64>,
    pub jwks_refetch_seconds: Option<u64>,
    pub jwks_timeout_ms: Option<u64>,
    pub leeway_seconds: Option<u64>,
    pub required_claims: Option<Vec<String>>,
    pub roles_claim: Option<String>,
    pub scopes_claim: Option<String>,
    pub max_token_bytes: Option<usize>,
    pub cache_seconds: Option<u64>,
    /// The `typ` header the issuer's tokens must carry (`at+jwt`).
    pub typ: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectorDocument {
    pub url: String,
    pub client_id: String,
    pub client_secret: String,
    pub cache_seconds: Option<u64>,
    pub negative_cache_seconds: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub roles_claim: Option<String>,
    pub scopes_claim: Option<String>,
}

/// A route's authentication policy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteAuthDocument {
    /// Accept API keys; `{}` for the default header.
    pub api_key: Option<ApiKeySourceDocument>,
    pub jwt: Option<Vec<String>>,
    pub introspection: Option<Vec<String>>,
    pub roles: Option<RequirementDocument>,
    pub scopes: Option<RequirementDocument>,
    pub forward_credentials: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySourceDocument {
    pub header: Option<String>,
    pub bearer: Option<bool>,
    pub query: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequirementDocument {
    pub all_of: Option<Vec<String>>,
    pub any_of: Option<Vec<String>>,
}
