//! Authentication and authorisation: who is calling, and may they use
//! this route.
//!
//! Credentials are checked once, here at the edge, so services never
//! re-check them: API keys stored hashed in the `KEYS` namespace
//! ([`api_key`]), JWTs verified against static keys or a JWKS ([`jwt`],
//! [`jwks`], [`keys`]), and opaque tokens checked with an OAuth 2.0
//! introspection endpoint ([`introspection`]). The verified [`Identity`]
//! reaches services as headers they can trust ([`identity`]).
//!
//! Rules this module keeps:
//! - a route with an auth policy is never reached without a credential
//!   that one of its accepted methods verified;
//! - failures never say which part of a credential was wrong (RFC 6750
//!   `invalid_token` at most); the reason goes to the log only;
//! - when an identity provider cannot be reached the answer is 503, never
//!   a pass; previously cached keys and results stay in use while valid;
//! - no plaintext credential is stored or logged: caches key on hashes.

use std::rc::Rc;
use std::time::Duration;

use http::HeaderName;

pub mod api_key;
pub mod credentials;
pub mod identity;
pub mod introspection;
pub mod jwks;
pub mod jwt;
pub mod keys;
pub mod state;

pub use state::AuthState;

/// How an identity was established.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    ApiKey,
    Jwt,
    Introspection,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ApiKey => "api_key",
            AuthMethod::Jwt => "jwt",
            AuthMethod::Introspection => "introspection",
        }
    }
}

/// A rate limit attached to a credential (used by rate limiting).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct RatePlan {
    pub limit: u64,
    pub period_seconds: u64,
}

/// A verified caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    pub method: Option<AuthMethod>,
    /// API key: the key's consumer name; tokens: the client id, if any.
    pub consumer: Option<String>,
    pub key_id: Option<String>,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    pub rate: Option<RatePlan>,
    /// A token's claims (the JWT payload, or the introspection answer),
    /// for templates that name them; `None` for API keys.
    pub claims: Option<std::rc::Rc<serde_json::Map<String, serde_json::Value>>>,
}

/// Roles or scopes a route requires.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Requirement {
    #[default]
    None,
    AllOf(Vec<String>),
    AnyOf(Vec<String>),
}

impl Requirement {
    pub fn is_met_by(&self, held: &[String]) -> bool {
        match self {
            Requirement::None => true,
            Requirement::AllOf(needed) => needed.iter().all(|n| held.contains(n)),
            Requirement::AnyOf(needed) => needed.iter().any(|n| held.contains(n)),
        }
    }

    pub fn names(&self) -> &[String] {
        match self {
            Requirement::None => &[],
            Requirement::AllOf(names) | Requirement::AnyOf(names) => names,
        }
    }
}

/// Where a route accepts an API key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeySource {
    pub header: HeaderName,
    /// Also accept `Authorization: Bearer <key>`.
    pub bearer: bool,
    /// Also accept this query parameter (off unless a route opts in).
    pub query: Option<String>,
}

/// A route's authentication policy: any one accepted method suffices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteAuth {
    pub api_key: Option<ApiKeySource>,
    /// The JWT issuers accepted, in the order they are tried.
    pub jwt: Vec<Rc<jwt::Issuer>>,
    /// The introspection endpoints accepted, in the order they are asked.
    pub introspection: Vec<Rc<introspection::Introspector>>,
    pub roles: Requirement,
    pub scopes: Requirement,
    /// Pass the credential itself on to the service (off by default: the
    /// identity headers say who the caller is).
    pub forward_credentials: bool,
}

/// Gateway-wide auth settings.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AuthSettings {
    /// The identity headers services receive (prefix `x-portico-`).
    pub identity_headers: identity::IdentityHeaderNames,
    /// Name of the Worker secret that signs identity assertions.
    pub signing_secret: Option<String>,
    pub api_keys: ApiKeySettings,
    pub issuers: Vec<Rc<jwt::Issuer>>,
    pub introspectors: Vec<Rc<introspection::Introspector>>,
}

/// How long API-key lookups are remembered by an isolate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiKeySettings {
    /// A key that was found: also the bound on how long a revoked key may
    /// keep working in an isolate that has seen it.
    pub cache_ttl: Duration,
    /// A key id that was not found.
    pub negative_ttl: Duration,
}

impl Default for ApiKeySettings {
    fn default() -> Self {
        ApiKeySettings {
            cache_ttl: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(5),
        }
    }
}

/// Why authentication did not produce an identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credential the route accepts was presented.
    Missing,
    /// A credential was presented and is not valid. The text is for logs.
    Invalid(String),
    /// The credential could not be checked (identity provider down). The
    /// text is for logs.
    Unavailable(String),
}
