//! Checking `cache` policies: the config-wide defaults and routes' own,
//! merged field by field, refused when they contradict themselves.

use std::rc::Rc;
use std::time::Duration;

use http::HeaderName;
use http::header;

use super::error::Issues;
use super::wire::CacheDocument;
use crate::auth::RouteAuth;
use crate::cache::{CachePolicy, DEFAULT_STATUSES, QueryKey};
use crate::routing::MethodSet;

const DEFAULT_TTL_SECONDS: u64 = 60;
const MAX_TTL_SECONDS: u64 = 365 * 86_400;
const MAX_STALE_SECONDS: u64 = 7 * 86_400;
const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;
/// Bodies are read into memory to be stored; a Workers isolate has 128 MB.
const MAX_BODY_BYTES: u64 = 32 * 1024 * 1024;

/// Check the config-wide defaults (whose `shared` would apply to routes
/// that never said so, and is refused).
pub(super) fn check_defaults(document: &CacheDocument, issues: &mut Issues) {
    if document.shared.is_some() {
        issues.push(
            "cache.shared",
            "set 'shared' on each route it applies to: sharing one caller's responses with every other is never a default",
        );
    }
    if document.generation.is_some() {
        issues.push(
            "cache.generation",
            "set 'generation' per route: it retires that route's entries",
        );
    }
}

/// The policy of a route with `cache`, merged with the defaults.
pub(super) fn check_route_cache(
    route: &CacheDocument,
    defaults: Option<&CacheDocument>,
    methods: &MethodSet,
    auth: Option<&RouteAuth>,
    at: &str,
    issues: &mut Issues,
) -> Option<Rc<CachePolicy>> {
    let before = issues.len();
    let at = format!("{at}.cache");
    let pick = |field: fn(&CacheDocument) -> Option<u64>| {
        field(route).or_else(|| defaults.and_then(field))
    };
    let seconds = |value: Option<u64>, default: u64, max: u64, name: &str, issues: &mut Issues| {
        let value = value.unwrap_or(default);
        if value > max {
            issues.push(
                format!("{at}.{name}"),
                format!("must be at most {max}, got {value}"),
            );
        }
        Duration::from_secs(value.min(max))
    };
    let ttl = seconds(
        pick(|d| d.ttl_seconds),
        DEFAULT_TTL_SECONDS,
        MAX_TTL_SECONDS,
        "ttl_seconds",
        issues,
    );
    let honor_origin = route
        .honor_origin
        .or_else(|| defaults.and_then(|d| d.honor_origin))
        .unwrap_or(true);
    if ttl.is_zero() && !honor_origin {
        issues.push(
            format!("{at}.ttl_seconds"),
            "0 without honor_origin would store nothing; remove 'cache' instead",
        );
    }
    let stale_while_revalidate = seconds(
        pick(|d| d.stale_while_revalidate_seconds),
        0,
        MAX_STALE_SECONDS,
        "stale_while_revalidate_seconds",
        issues,
    );
    let stale_if_error = seconds(
        pick(|d| d.stale_if_error_seconds),
        0,
        MAX_STALE_SECONDS,
        "stale_if_error_seconds",
        issues,
    );
    let max_body_bytes = pick(|d| d.max_body_bytes).unwrap_or(DEFAULT_MAX_BODY_BYTES);
    if !(1..=MAX_BODY_BYTES).contains(&max_body_bytes) {
        issues.push(
            format!("{at}.max_body_bytes"),
            format!(
                "must be between 1 and {MAX_BODY_BYTES} (bodies are read into memory to be stored)"
            ),
        );
    }
    let statuses = check_statuses(
        route
            .statuses
            .as_ref()
            .or_else(|| defaults.and_then(|d| d.statuses.as_ref())),
        &at,
        issues,
    );
    let vary_headers = check_vary(
        route
            .vary_headers
            .as_ref()
            .or_else(|| defaults.and_then(|d| d.vary_headers.as_ref())),
        auth,
        &at,
        issues,
    );
    let query = check_query(route, defaults, &at, issues);
    let shared = route.shared.unwrap_or(false);
    check_sharing(shared, auth, methods, &at, issues);
    if issues.len() != before {
        return None;
    }
    Some(Rc::new(CachePolicy {
        ttl,
        honor_origin,
        statuses,
        stale_while_revalidate,
        stale_if_error,
        max_body_bytes: usize::try_from(max_body_bytes).unwrap_or(usize::MAX),
        vary_headers,
        query,
        shared,
        generation: route.generation.unwrap_or(0),
    }))
}

/// Which query parameters are part of the key.
fn check_query(
    route: &CacheDocument,
    defaults: Option<&CacheDocument>,
    at: &str,
    issues: &mut Issues,
) -> QueryKey {
    match (
        route
            .query_params
            .as_ref()
            .or_else(|| defaults.and_then(|d| d.query_params.as_ref())),
        route
            .ignore_query_params
            .as_ref()
            .or_else(|| defaults.and_then(|d| d.ignore_query_params.as_ref())),
    ) {
        (Some(_), Some(_)) => {
            issues.push(
                at.to_owned(),
                "give 'query_params' (only these) or 'ignore_query_params' (all but these), not both",
            );
            QueryKey::AllBut(Vec::new())
        }
        (Some(only), None) => QueryKey::Only(only.clone()),
        (None, ignored) => QueryKey::AllBut(ignored.cloned().unwrap_or_default()),
    }
}

/// Whether the policy fits the route: `shared` only where callers are
/// known and their responses cannot differ, and a route that serves GET.
fn check_sharing(
    shared: bool,
    auth: Option<&RouteAuth>,
    methods: &MethodSet,
    at: &str,
    issues: &mut Issues,
) {
    match auth {
        None if shared => issues.push(
            format!("{at}.shared"),
            "applies to routes with 'auth' only: a public route's entries are shared anyway",
        ),
        Some(policy) if shared && policy.forward_credentials => issues.push(
            format!("{at}.shared"),
            "the route forwards each caller's credentials, so its responses may differ per caller; key them per caller (shared: false)",
        ),
        _ => {}
    }
    let serves_get = match methods {
        MethodSet::Any => true,
        MethodSet::Only(listed) => listed.contains(&http::Method::GET),
    };
    if !serves_get {
        issues.push(
            at.to_owned(),
            "only GET (and HEAD) responses are cached, and this route does not accept GET",
        );
    }
}

fn check_statuses(listed: Option<&Vec<u16>>, at: &str, issues: &mut Issues) -> Vec<u16> {
    let Some(listed) = listed else {
        return DEFAULT_STATUSES.to_vec();
    };
    if listed.is_empty() {
        issues.push(format!("{at}.statuses"), "list at least one status");
    }
    let mut statuses = Vec::with_capacity(listed.len());
    for (index, &status) in listed.iter().enumerate() {
        if !(200..=599).contains(&status) || status == 206 {
            issues.push(
                format!("{at}.statuses[{index}]"),
                format!("{status} cannot be cached (200 to 599, never 206)"),
            );
        } else if statuses.contains(&status) {
            issues.push(
                format!("{at}.statuses[{index}]"),
                format!("{status} is listed twice"),
            );
        } else {
            statuses.push(status);
        }
    }
    statuses.sort_unstable();
    statuses
}

fn check_vary(
    listed: Option<&Vec<String>>,
    auth: Option<&RouteAuth>,
    at: &str,
    issues: &mut Issues,
) -> Vec<HeaderName> {
    let mut names: Vec<HeaderName> = Vec::new();
    for (index, text) in listed.into_iter().flatten().enumerate() {
        let at = format!("{at}.vary_headers[{index}]");
        let Ok(name) = HeaderName::from_bytes(text.as_bytes()) else {
            issues.push(at, format!("'{text}' is not a header name"));
            continue;
        };
        let credential = name == header::AUTHORIZATION
            || name == header::COOKIE
            || auth
                .and_then(|policy| policy.api_key.as_ref())
                .is_some_and(|source| source.header == name);
        if credential {
            issues.push(
                at,
                format!("'{text}' carries credentials, which never become part of a stored entry: on a route with 'auth' entries are already kept per caller"),
            );
        } else if names.contains(&name) {
            issues.push(at, format!("'{text}' is listed twice"));
        } else {
            names.push(name);
        }
    }
    names
}
