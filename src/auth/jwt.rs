//! JWT verification: an issuer's pinned algorithms and keys, the standard
//! claim checks, and the identity a token carries.
//!
//! Order of checks: size, structure, refused header fields (`crit`, `jwk`,
//! `jku`, `x5u`, `x5c`), issuer (by the unverified `iss`, to pick the
//! configuration), `typ` (when the issuer requires one), algorithm (must
//! be pinned by that issuer), key (by
//! `kid`, refetching the JWKS once for an unknown one), signature, then
//! `exp`/`nbf`/`iat` with leeway, `iss`, `aud` and required claims. Verified
//! tokens are cached by their SHA-256 until they expire, so a repeated
//! token skips the signature check.

use std::rc::Rc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jwt_compact::Claims;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::jwks::JwksSettings;
use super::keys::{RiskyHeaderFields, Token, VerifyingKey};
use super::state::{AuthState, CachedToken};
use super::{AuthFailure, AuthMethod, Identity};
use crate::platform::{Clock, HttpClient, LogSink, SignatureChecks, UnixMillis};

/// At most this many keys are tried for a token without a `kid`.
const MAX_KEYS_TRIED: usize = 4;

/// Where an issuer's keys come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    Static(Rc<Vec<VerifyingKey>>),
    Jwks(JwksSettings),
}

/// The audiences an issuer's tokens must be meant for. The config has to
/// say which, or say `"any"`: a token minted for another service of the
/// same issuer is otherwise accepted here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audiences {
    /// `aud` is not checked.
    Any,
    /// `aud` (a string, or an array) must contain one of these.
    OneOf(Vec<String>),
}

impl Audiences {
    /// Whether a token's `aud` claim is accepted.
    pub fn accept(&self, aud: Option<&Value>) -> bool {
        match (self, aud) {
            (Audiences::Any, _) => true,
            (Audiences::OneOf(accepted), Some(Value::String(aud))) => accepted.contains(aud),
            (Audiences::OneOf(accepted), Some(Value::Array(auds))) => auds
                .iter()
                .filter_map(Value::as_str)
                .any(|aud| accepted.iter().any(|a| a == aud)),
            (Audiences::OneOf(_), _) => false,
        }
    }
}

/// A trusted token issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issuer {
    /// The name the config gives it.
    pub name: String,
    /// The exact `iss` its tokens carry.
    pub issuer: String,
    /// Which `aud` values are accepted.
    pub audiences: Audiences,
    /// The algorithms this issuer signs with; nothing else is accepted.
    pub algorithms: Vec<String>,
    pub keys: KeySource,
    pub leeway: Duration,
    pub required_claims: Vec<String>,
    /// Dot path of the roles claim (`roles`, `realm_access.roles`).
    pub roles_claim: Option<String>,
    /// Dot path of the scopes claim (a space-separated string or an array).
    pub scopes_claim: String,
    pub max_token_bytes: usize,
    /// How long a verified token may be reused without verifying again
    /// (never past its `exp`); zero disables the cache.
    pub cache_ttl: Duration,
    /// The `typ` header this issuer's tokens must carry, as
    /// [`media_type`] gives it (`at+jwt`); `None`: not checked.
    pub typ: Option<String>,
}

/// A `typ` value as RFC 7515 section 4.1.9 compares it: without case, and
/// without an `application/` prefix.
pub fn media_type(typ: &str) -> String {
    let lower = typ.trim().to_ascii_lowercase();
    match lower.strip_prefix("application/") {
        Some(rest) => rest.to_owned(),
        None => lower,
    }
}

/// Whether `token` has the three-part shape of a JWS compact token.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

/// SHA-256 of a token, the key of every token cache.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Verify `token` against the issuers a route accepts.
pub async fn verify<P>(
    platform: &P,
    state: &AuthState,
    issuers: &[Rc<Issuer>],
    token: &str,
) -> Result<Identity, AuthFailure>
where
    P: Clock + HttpClient + LogSink + SignatureChecks,
{
    let invalid = |reason: &str| AuthFailure::Invalid(reason.to_owned());
    let limit = issuers.iter().map(|i| i.max_token_bytes).max().unwrap_or(0);
    if token.len() > limit {
        return Err(invalid("token too large"));
    }
    let now = platform.now();
    let hash = token_hash(token);
    if let Some(cached) = state.tokens.borrow_mut().get(&hash, now)
        && issuers.iter().any(|i| i.name == cached.issuer)
    {
        return Ok((*cached.identity).clone());
    }

    let untrusted = Token::try_from(token)
        .map_err(|e| AuthFailure::Invalid(format!("malformed token: {e}")))?;
    let header = untrusted.header();
    refuse_risky_fields(header)?;
    let issuer = claimed_issuer(&untrusted, issuers)?;
    let alg = untrusted.algorithm();
    if !issuer.algorithms.iter().any(|a| a == alg) {
        return Err(AuthFailure::Invalid(format!(
            "algorithm {alg} is not accepted for issuer {}",
            issuer.name
        )));
    }
    if let Some(expected) = &issuer.typ
        && header.token_type.as_deref().map(media_type).as_ref() != Some(expected)
    {
        return Err(AuthFailure::Invalid(format!(
            "typ is not {expected}, as issuer {} requires",
            issuer.name
        )));
    }
    let kid = header.key_id.clone();

    let keys = issuer_keys(platform, state, issuer, alg, kid.as_deref()).await?;
    let candidates = candidates(&keys, alg, kid.as_deref());
    if candidates.is_empty() {
        return Err(invalid("no key for this token's kid and algorithm"));
    }
    let mut last_error = String::new();
    let mut verified = None;
    for key in candidates.into_iter().take(MAX_KEYS_TRIED) {
        match check_signature(platform, key, &untrusted, token).await {
            Ok(claims) => {
                verified = Some(claims);
                break;
            }
            Err(error) => last_error = error,
        }
    }
    let claims =
        verified.ok_or_else(|| AuthFailure::Invalid(format!("signature: {last_error}")))?;

    check_claims(issuer, &claims, now)?;
    let identity = identity(issuer, &claims);
    let expires = claims
        .expiration
        .map(|exp| UnixMillis(u64::try_from(exp.timestamp_millis()).unwrap_or(0)));
    if !issuer.cache_ttl.is_zero() {
        let ceiling = now.plus(issuer.cache_ttl);
        let until = expires.map_or(ceiling, |exp| exp.min(ceiling));
        state.tokens.borrow_mut().insert(
            hash,
            CachedToken {
                issuer: issuer.name.clone(),
                identity: Rc::new(identity.clone()),
            },
            until,
        );
    }
    Ok(identity)
}

/// A token may not name its own key, nor carry a critical extension.
fn refuse_risky_fields(header: &jwt_compact::Header<RiskyHeaderFields>) -> Result<(), AuthFailure> {
    let invalid = |reason: &str| AuthFailure::Invalid(reason.to_owned());
    if header.other_fields.crit.is_some() {
        return Err(invalid("token has a 'crit' header"));
    }
    if header.other_fields.jwk.is_some()
        || header.other_fields.x5c.is_some()
        || header.key_set_url.is_some()
        || header.certificate_url.is_some()
    {
        return Err(invalid("token tries to name its own key (jwk/jku/x5u/x5c)"));
    }
    Ok(())
}

/// The configured issuer a token names in its (not yet verified) `iss`.
fn claimed_issuer<'i>(
    untrusted: &Token<'_>,
    issuers: &'i [Rc<Issuer>],
) -> Result<&'i Rc<Issuer>, AuthFailure> {
    let invalid = |reason: &str| AuthFailure::Invalid(reason.to_owned());
    let claimed_issuer = untrusted
        .deserialize_claims_unchecked::<Map<String, Value>>()
        .ok()
        .and_then(|claims| {
            claims
                .custom
                .get("iss")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    match claimed_issuer {
        Some(iss) => issuers.iter().find(|i| i.issuer == iss),
        None => None,
    }
    .ok_or_else(|| invalid("token issuer is not accepted here"))
}

/// The keys a token of `alg` with `kid` may be checked with: the
/// issuer's own, or its JWKS (fetched again once for an unknown `kid`).
async fn issuer_keys<P: Clock + HttpClient + LogSink>(
    platform: &P,
    state: &AuthState,
    issuer: &Issuer,
    alg: &str,
    kid: Option<&str>,
) -> Result<Rc<Vec<VerifyingKey>>, AuthFailure> {
    let keys = match &issuer.keys {
        KeySource::Static(keys) => Rc::clone(keys),
        KeySource::Jwks(settings) => {
            let keys = state.jwks.keys(platform, settings).await?;
            if candidates(&keys, alg, kid).is_empty() && kid.is_some() {
                match state
                    .jwks
                    .refetch_for_unknown_kid(platform, settings)
                    .await?
                {
                    Some(fresh) => fresh,
                    None => keys,
                }
            } else {
                keys
            }
        }
    };
    Ok(keys)
}

/// `token`'s claims if `key` signed it. The runtime's own crypto checks
/// the signature where it has a check for the key (WebCrypto on Workers,
/// far faster than wasm for RSA, ECDSA and EdDSA); otherwise, and for
/// HMAC, the pure-Rust check does. Either way the same signed bytes (the
/// token up to its last `.`) and signature are checked, and the claims
/// are read by the same parser.
async fn check_signature<P: SignatureChecks>(
    platform: &P,
    key: &VerifyingKey,
    untrusted: &Token<'_>,
    token: &str,
) -> Result<Claims<Map<String, Value>>, String> {
    let alg = untrusted.algorithm();
    if let (true, Some(public), Some((signed, _))) =
        (key.supports(alg), &key.public, token.rsplit_once('.'))
    {
        let verdict = platform
            .check_signature(alg, public, signed.as_bytes(), untrusted.signature_bytes())
            .await;
        match verdict {
            Some(true) => {
                return untrusted
                    .deserialize_claims_unchecked()
                    .map_err(|e| e.to_string());
            }
            Some(false) => return Err("signature does not match".to_owned()),
            None => {}
        }
    }
    key.verify(untrusted).map_err(|e| e.to_string())
}

fn candidates<'k>(keys: &'k [VerifyingKey], alg: &str, kid: Option<&str>) -> Vec<&'k VerifyingKey> {
    keys.iter()
        .filter(|key| key.supports(alg))
        .filter(|key| match kid {
            Some(kid) => key.kid.as_deref() == Some(kid),
            None => true,
        })
        .collect()
}

/// The latest NumericDate a token may carry: the last second of year 9999
/// (RFC 3339's range, and what JWT libraries can produce). With the
/// earliest, the Unix epoch, it keeps every time a token names, plus or
/// minus the leeway, far inside `i64` milliseconds.
const LATEST_NUMERIC_DATE: i64 = 253_402_300_799;

/// A time claim in Unix milliseconds, if present; refused when outside
/// the NumericDates the gateway accepts.
fn claim_millis(name: &str, time: Option<DateTime<Utc>>) -> Result<Option<i64>, AuthFailure> {
    let Some(time) = time else {
        return Ok(None);
    };
    let seconds = time.timestamp();
    if !(0..=LATEST_NUMERIC_DATE).contains(&seconds) {
        return Err(AuthFailure::Invalid(format!(
            "{name} {seconds} is outside the accepted range (1970 to 9999)"
        )));
    }
    Ok(Some(seconds.saturating_mul(1000)))
}

/// The standard claim checks, after the signature. Times are compared in
/// integer milliseconds with saturating arithmetic: no claim value, however
/// extreme, can make the arithmetic overflow (date types panic there).
fn check_claims(
    issuer: &Issuer,
    claims: &Claims<Map<String, Value>>,
    now: UnixMillis,
) -> Result<(), AuthFailure> {
    let now = i64::try_from(now.0).unwrap_or(i64::MAX);
    let leeway = i64::try_from(issuer.leeway.as_millis()).unwrap_or(i64::MAX);
    let fail = |what: String| Err(AuthFailure::Invalid(what));
    if let Some(exp) = claim_millis("exp", claims.expiration)?
        && now > exp.saturating_add(leeway)
    {
        return fail("exp: the token has expired".to_owned());
    }
    if let Some(nbf) = claim_millis("nbf", claims.not_before)?
        && now < nbf.saturating_sub(leeway)
    {
        return fail("nbf: the token is not valid yet".to_owned());
    }
    if let Some(iat) = claim_millis("iat", claims.issued_at)?
        && now < iat.saturating_sub(leeway)
    {
        return fail("iat: the token was issued in the future".to_owned());
    }
    for name in &issuer.required_claims {
        let present = match name.as_str() {
            "exp" => claims.expiration.is_some(),
            "nbf" => claims.not_before.is_some(),
            "iat" => claims.issued_at.is_some(),
            other => claims.custom.get(other).is_some_and(|v| !v.is_null()),
        };
        if !present {
            return fail(format!("required claim '{name}' is missing"));
        }
    }
    if claims.custom.get("iss").and_then(Value::as_str) != Some(issuer.issuer.as_str()) {
        return fail("iss does not match".to_owned());
    }
    if !issuer.audiences.accept(claims.custom.get("aud")) {
        return fail("aud does not match".to_owned());
    }
    Ok(())
}

fn identity(issuer: &Issuer, claims: &Claims<Map<String, Value>>) -> Identity {
    let text = |name: &str| {
        claims
            .custom
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Identity {
        method: Some(AuthMethod::Jwt),
        consumer: text("client_id").or_else(|| text("azp")),
        key_id: None,
        subject: text("sub"),
        issuer: Some(issuer.issuer.clone()),
        roles: issuer
            .roles_claim
            .as_deref()
            .map(|path| names_at(&claims.custom, path))
            .unwrap_or_default(),
        scopes: names_at(&claims.custom, &issuer.scopes_claim),
        rate: None,
        claims: Some(std::rc::Rc::new(claims.custom.clone())),
    }
}

/// The names at a dot path of a claims object: an array of strings, or a
/// space-separated string (as OAuth `scope` is).
pub fn names_at(claims: &Map<String, Value>, path: &str) -> Vec<String> {
    let mut parts = path.split('.');
    let Some(first) = parts.next() else {
        return Vec::new();
    };
    let mut value = claims.get(first);
    for part in parts {
        value = value.and_then(|v| v.get(part));
    }
    match value {
        Some(Value::String(text)) => text.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}
