//! Checking the `auth` section and the routes' `auth` policies.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use http::HeaderName;
use http::uri::Uri;
use serde_json::Value;

use super::error::Issues;
use super::wire::{
    AuthDocument, IntrospectorDocument, IssuerDocument, RequirementDocument, RouteAuthDocument,
};
use super::{NAME_RULE, UNDERSCORE_RULE, is_name};
use crate::auth::identity::IdentityHeaderNames;
use crate::auth::introspection::Introspector;
use crate::auth::jwks::JwksSettings;
use crate::auth::jwt::{Audiences, Issuer, KeySource};
use crate::auth::keys::{SUPPORTED_ALGORITHMS, VerifyingKey};
use crate::auth::{ApiKeySettings, ApiKeySource, AuthSettings, Requirement, RouteAuth};
use crate::http::is_hop_by_hop;

/// The checked `auth` section, with its issuers and introspectors by
/// name for routes to refer to.
pub(crate) struct CheckedAuth {
    pub settings: AuthSettings,
    issuers: BTreeMap<String, Rc<Issuer>>,
    introspectors: BTreeMap<String, Rc<Introspector>>,
}

fn seconds(
    value: Option<u64>,
    default: u64,
    max: u64,
    at: String,
    issues: &mut Issues,
) -> Duration {
    match value {
        None => Duration::from_secs(default),
        Some(s) if s <= max => Duration::from_secs(s),
        Some(s) => {
            issues.push(at, format!("must be between 0 and {max}, got {s}"));
            Duration::from_secs(default)
        }
    }
}

fn millis(value: Option<u64>, default: u64, at: String, issues: &mut Issues) -> Duration {
    match value {
        None => Duration::from_millis(default),
        Some(ms) if (1..=60_000).contains(&ms) => Duration::from_millis(ms),
        Some(ms) => {
            issues.push(
                at,
                format!("must be between 1 and 60000 milliseconds, got {ms}"),
            );
            Duration::from_millis(default)
        }
    }
}

pub(crate) fn is_secret_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn http_url(text: &str, at: String, issues: &mut Issues) -> Option<Uri> {
    match text.parse::<Uri>() {
        Ok(uri)
            if matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some() =>
        {
            Some(uri)
        }
        _ => {
            issues.push(
                at,
                format!("'{text}' is not an absolute http:// or https:// URL"),
            );
            None
        }
    }
}

pub(crate) fn check_auth(document: &AuthDocument, issues: &mut Issues) -> CheckedAuth {
    let mut settings = AuthSettings::default();
    if let Some(prefix) = &document.identity_header_prefix {
        let lower = prefix.to_ascii_lowercase();
        match IdentityHeaderNames::new(&lower) {
            Some(_) if lower.contains('_') => {
                issues.push("auth.identity_header_prefix", UNDERSCORE_RULE)
            }
            Some(names) if lower.len() >= 3 && lower.ends_with('-') => settings.identity_headers = names,
            _ => issues.push(
                "auth.identity_header_prefix",
                format!("'{prefix}' must be a header-name prefix of at least 3 characters ending in '-', like 'X-Portico-'"),
            ),
        }
    }
    if let Some(name) = &document.signing_secret {
        if is_secret_name(name) {
            settings.signing_secret = Some(name.clone());
        } else {
            issues.push(
                "auth.signing_secret",
                format!("'{name}' is not a Worker secret name (letters, digits, '_')"),
            );
        }
    }
    if let Some(keys) = &document.api_keys {
        settings.api_keys = ApiKeySettings {
            cache_ttl: seconds(
                keys.cache_seconds,
                30,
                3600,
                "auth.api_keys.cache_seconds".into(),
                issues,
            ),
            negative_ttl: seconds(
                keys.negative_cache_seconds,
                5,
                600,
                "auth.api_keys.negative_cache_seconds".into(),
                issues,
            ),
        };
    }
    let mut issuers = BTreeMap::new();
    let mut introspectors = BTreeMap::new();
    for (name, issuer) in &document.jwt {
        let at = format!("auth.jwt.{name}");
        if !is_name(name) {
            issues.push(at, format!("the issuer name {NAME_RULE}"));
            continue;
        }
        if let Some(issuer) = check_issuer(name, issuer, &at, issues) {
            let issuer = Rc::new(issuer);
            issuers.insert(name.clone(), Rc::clone(&issuer));
            settings.issuers.push(issuer);
        }
    }
    for (name, introspector) in &document.introspection {
        let at = format!("auth.introspection.{name}");
        if !is_name(name) {
            issues.push(at, format!("the introspection name {NAME_RULE}"));
            continue;
        }
        if let Some(introspector) = check_introspector(name, introspector, &at, issues) {
            let introspector = Rc::new(introspector);
            introspectors.insert(name.clone(), Rc::clone(&introspector));
            settings.introspectors.push(introspector);
        }
    }
    CheckedAuth {
        settings,
        issuers,
        introspectors,
    }
}

fn check_issuer(
    name: &str,
    document: &IssuerDocument,
    at: &str,
    issues: &mut Issues,
) -> Option<Issuer> {
    let before = issues.len();
    if document.issuer.is_empty() {
        issues.push(
            format!("{at}.issuer"),
            "must be the exact 'iss' of the tokens",
        );
    }
    if document.algorithms.is_empty() {
        issues.push(format!("{at}.algorithms"), "list at least one algorithm");
    }
    for (index, alg) in document.algorithms.iter().enumerate() {
        if !SUPPORTED_ALGORITHMS.contains(&alg.as_str()) {
            issues.push(
                format!("{at}.algorithms[{index}]"),
                format!("'{alg}' is not one of {}", SUPPORTED_ALGORITHMS.join(", ")),
            );
        }
    }
    let audiences = check_audiences(document.audiences.as_ref(), at, issues);
    let keys = check_key_source(document, at, issues);
    let leeway = seconds(
        document.leeway_seconds,
        60,
        600,
        format!("{at}.leeway_seconds"),
        issues,
    );
    let max_token_bytes = match document.max_token_bytes {
        None => 8192,
        Some(bytes) if (256..=65_536).contains(&bytes) => bytes,
        Some(bytes) => {
            issues.push(
                format!("{at}.max_token_bytes"),
                format!("must be between 256 and 65536, got {bytes}"),
            );
            8192
        }
    };
    let cache_ttl = seconds(
        document.cache_seconds,
        300,
        86_400,
        format!("{at}.cache_seconds"),
        issues,
    );
    let typ = document.typ.as_deref().and_then(|typ| {
        let media_type = crate::auth::jwt::media_type(typ);
        let valid = !media_type.is_empty()
            && media_type.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.' | b'/' | b'_')
            });
        if valid {
            Some(media_type)
        } else {
            issues.push(
                format!("{at}.typ"),
                format!("'{typ}' is not a media type such as 'at+jwt' or 'JWT'"),
            );
            None
        }
    });
    if issues.len() != before {
        return None;
    }
    Some(Issuer {
        name: name.to_owned(),
        issuer: document.issuer.clone(),
        audiences: audiences?,
        algorithms: document.algorithms.clone(),
        keys: keys?,
        leeway,
        required_claims: document
            .required_claims
            .clone()
            .unwrap_or_else(|| vec!["exp".to_owned()]),
        roles_claim: document.roles_claim.clone(),
        scopes_claim: document
            .scopes_claim
            .clone()
            .unwrap_or_else(|| "scope".to_owned()),
        max_token_bytes,
        cache_ttl,
        typ,
    })
}

/// An issuer's accepted audiences: a list of names, or `"any"`, never
/// left out (an issuer often serves many APIs, and without an audience
/// check a token minted for any of them is accepted here).
fn check_audiences(value: Option<&Value>, at: &str, issues: &mut Issues) -> Option<Audiences> {
    let at = format!("{at}.audiences");
    const RULE: &str = "list the audiences this gateway accepts (a token's 'aud' must contain one), or \"any\" to accept tokens meant for any audience of this issuer";
    match value {
        Some(Value::String(any)) if any == "any" => Some(Audiences::Any),
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut names = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(name) if !name.is_empty() => names.push(name.to_owned()),
                    _ => issues.push(format!("{at}[{index}]"), "must be a non-empty string"),
                }
            }
            (names.len() == items.len()).then_some(Audiences::OneOf(names))
        }
        _ => {
            issues.push(at, RULE);
            None
        }
    }
}

/// Where an issuer's keys come from: listed in the config, or a JWKS URL.
fn check_key_source(document: &IssuerDocument, at: &str, issues: &mut Issues) -> Option<KeySource> {
    match (&document.keys, &document.jwks_url) {
        (Some(_), Some(_)) | (None, None) => {
            issues.push(at.to_owned(), "give either 'keys' or 'jwks_url'");
            None
        }
        (Some(keys), None) => {
            let mut parsed = Vec::new();
            for (index, key) in keys.iter().enumerate() {
                match static_key(key) {
                    Ok(key) if document.algorithms.iter().any(|alg| key.supports(alg)) => {
                        parsed.push(key)
                    }
                    Ok(_) => issues.push(
                        format!("{at}.keys[{index}]"),
                        "this key cannot verify any of the issuer's algorithms",
                    ),
                    Err(reason) => issues.push(format!("{at}.keys[{index}]"), reason),
                }
            }
            if keys.is_empty() {
                issues.push(format!("{at}.keys"), "list at least one key");
            }
            Some(KeySource::Static(Rc::new(parsed)))
        }
        (None, Some(url)) => {
            let url = http_url(url, format!("{at}.jwks_url"), issues);
            let min_ttl = seconds(
                document.jwks_min_cache_seconds,
                300,
                86_400,
                format!("{at}.jwks_min_cache_seconds"),
                issues,
            );
            let max_ttl = seconds(
                document.jwks_max_cache_seconds,
                86_400,
                604_800,
                format!("{at}.jwks_max_cache_seconds"),
                issues,
            );
            if min_ttl > max_ttl {
                issues.push(
                    format!("{at}.jwks_min_cache_seconds"),
                    "must not exceed jwks_max_cache_seconds",
                );
            }
            let refetch_interval = seconds(
                document.jwks_refetch_seconds,
                30,
                3600,
                format!("{at}.jwks_refetch_seconds"),
                issues,
            );
            let timeout = millis(
                document.jwks_timeout_ms,
                5_000,
                format!("{at}.jwks_timeout_ms"),
                issues,
            );
            url.map(|url| {
                KeySource::Jwks(JwksSettings {
                    url,
                    min_ttl,
                    max_ttl,
                    refetch_interval,
                    timeout,
                })
            })
        }
    }
}

/// A key from config: a JWK, or `{"pem": "...", "kid": "..."}`.
fn static_key(value: &Value) -> Result<VerifyingKey, String> {
    if let Some(pem) = value.get("pem") {
        let object = value.as_object().map(|o| o.len()).unwrap_or(0);
        let kid = value.get("kid").and_then(Value::as_str).map(str::to_owned);
        if object > 1 + usize::from(kid.is_some()) {
            return Err("a PEM key takes only 'pem' and 'kid'".to_owned());
        }
        let pem = pem
            .as_str()
            .ok_or_else(|| "'pem' must be a string".to_owned())?;
        return VerifyingKey::from_pem(pem, kid).map_err(|e| e.to_string());
    }
    VerifyingKey::from_jwk(value).map_err(|e| e.to_string())
}

fn check_introspector(
    name: &str,
    document: &IntrospectorDocument,
    at: &str,
    issues: &mut Issues,
) -> Option<Introspector> {
    let before = issues.len();
    let url = http_url(&document.url, format!("{at}.url"), issues);
    if document.client_id.is_empty() {
        issues.push(format!("{at}.client_id"), "must not be empty");
    }
    if !is_secret_name(&document.client_secret) {
        issues.push(
            format!("{at}.client_secret"),
            format!(
                "'{}' is not a Worker secret name: give the name of the secret, not its value",
                document.client_secret
            ),
        );
    }
    let cache_ttl = seconds(
        document.cache_seconds,
        60,
        3600,
        format!("{at}.cache_seconds"),
        issues,
    );
    let negative_ttl = seconds(
        document.negative_cache_seconds,
        10,
        600,
        format!("{at}.negative_cache_seconds"),
        issues,
    );
    let timeout = millis(
        document.timeout_ms,
        5_000,
        format!("{at}.timeout_ms"),
        issues,
    );
    if issues.len() != before {
        return None;
    }
    Some(Introspector {
        name: name.to_owned(),
        url: url?,
        client_id: document.client_id.clone(),
        client_secret: document.client_secret.clone(),
        cache_ttl,
        negative_ttl,
        timeout,
        roles_claim: document.roles_claim.clone(),
        scopes_claim: document
            .scopes_claim
            .clone()
            .unwrap_or_else(|| "scope".to_owned()),
    })
}

fn requirement(
    document: &Option<RequirementDocument>,
    at: String,
    issues: &mut Issues,
) -> Requirement {
    let Some(document) = document else {
        return Requirement::None;
    };
    match (&document.all_of, &document.any_of) {
        (Some(names), None) if !names.is_empty() => Requirement::AllOf(names.clone()),
        (None, Some(names)) if !names.is_empty() => Requirement::AnyOf(names.clone()),
        _ => {
            issues.push(
                at,
                "give exactly one of 'all_of' or 'any_of', with at least one name",
            );
            Requirement::None
        }
    }
}

pub(crate) fn check_route_auth(
    document: &RouteAuthDocument,
    at: &str,
    checked: &CheckedAuth,
    issues: &mut Issues,
) -> Option<RouteAuth> {
    let before = issues.len();
    let api_key = document.api_key.as_ref().and_then(|source| {
        let header_text = source.header.as_deref().unwrap_or("X-API-Key");
        let header = match HeaderName::from_bytes(header_text.as_bytes()) {
            Ok(name) if name.as_str().contains('_') => {
                issues.push(format!("{at}.auth.api_key.header"), UNDERSCORE_RULE);
                return None;
            }
            Ok(name)
                if !is_hop_by_hop(&name)
                    && name != http::header::AUTHORIZATION
                    && name != http::header::HOST =>
            {
                name
            }
            _ => {
                issues.push(
                    format!("{at}.auth.api_key.header"),
                    format!("'{header_text}' cannot carry API keys"),
                );
                return None;
            }
        };
        if source.query.as_deref().is_some_and(str::is_empty) {
            issues.push(
                format!("{at}.auth.api_key.query"),
                "the parameter name must not be empty",
            );
        }
        Some(ApiKeySource {
            header,
            bearer: source.bearer.unwrap_or(false),
            query: source.query.clone(),
        })
    });
    fn lookup<T>(
        list: &Option<Vec<String>>,
        by_name: &BTreeMap<String, Rc<T>>,
        at: &str,
        field: &str,
        issues: &mut Issues,
    ) -> Vec<Rc<T>> {
        let mut found = Vec::new();
        for (position, name) in list.iter().flatten().enumerate() {
            match by_name.get(name) {
                Some(entry) => found.push(Rc::clone(entry)),
                None => issues.push(
                    format!("{at}.auth.{field}[{position}]"),
                    format!("no usable auth.{field} entry named '{name}'"),
                ),
            }
        }
        found
    }
    let jwt = lookup(&document.jwt, &checked.issuers, at, "jwt", issues);
    let introspection = lookup(
        &document.introspection,
        &checked.introspectors,
        at,
        "introspection",
        issues,
    );
    if document.api_key.is_none()
        && document.jwt.as_ref().is_none_or(Vec::is_empty)
        && document.introspection.as_ref().is_none_or(Vec::is_empty)
    {
        issues.push(
            format!("{at}.auth"),
            "accept at least one of 'api_key', 'jwt' or 'introspection' (leave 'auth' out for a public route)",
        );
    }
    let roles = requirement(&document.roles, format!("{at}.auth.roles"), issues);
    let scopes = requirement(&document.scopes, format!("{at}.auth.scopes"), issues);
    if issues.len() != before {
        return None;
    }
    Some(RouteAuth {
        api_key,
        jwt,
        introspection,
        roles,
        scopes,
        forward_credentials: document.forward_credentials.unwrap_or(false),
    })
}
