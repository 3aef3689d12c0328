//! Checking the `services` section: each becomes an upstream the routes
//! share by handle (one origin, or a balanced set: [`super::balancing`]).

use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use http::uri::{Scheme, Uri};

use super::error::Issues;
use super::wire::ServiceDocument;
use super::{NAME_RULE, Service, balancing, is_name};
use crate::routing::path::normalize_escapes;
use crate::upstream::{Origin, Upstream};

pub(super) const DEFAULT_TIMEOUT_MS: u64 = 30_000;
const MAX_TIMEOUT_MS: u64 = 600_000;

/// The usable services, by name; every problem goes to `issues`.
/// `retried` names the services some route gives a retry policy of its
/// own (they need a balanced upstream to keep a retry budget in).
pub(super) fn check_services(
    document: &BTreeMap<String, ServiceDocument>,
    retried: &HashSet<&str>,
    issues: &mut Issues,
) -> BTreeMap<String, Rc<Service>> {
    let mut services = BTreeMap::new();
    let mut slots = 0;
    for (name, service) in document {
        let at = format!("services.{name}");
        if !is_name(name) {
            issues.push(at, format!("the service name {NAME_RULE}"));
            continue;
        }
        let timeout = check_timeout(
            service.timeout_ms,
            Duration::from_millis(DEFAULT_TIMEOUT_MS),
            format!("{at}.timeout_ms"),
            issues,
        );
        let upstream = match (&service.url, &service.targets) {
            (Some(_), Some(_)) => {
                issues.push(at, "give either 'url' or 'targets', not both");
                continue;
            }
            (None, None) => {
                issues.push(at, "a service needs 'url' or 'targets'");
                continue;
            }
            _ if balancing::is_balanced(service, retried.contains(name.as_str())) => {
                let upstream =
                    balancing::check_balanced(name, service, &at, slots, parse_origin, issues);
                if upstream.is_some() {
                    slots += 1;
                }
                upstream
            }
            (Some(url), None) => parse_origin(url)
                .map(Upstream::Single)
                .map_err(|reason| issues.push(format!("{at}.url"), reason))
                .ok(),
            (None, Some(_)) => None,
        };
        if let Some(upstream) = upstream {
            services.insert(
                name.clone(),
                Rc::new(Service {
                    name: name.clone(),
                    upstream,
                    timeout,
                }),
            );
        }
    }
    services
}

/// A timeout in milliseconds, `default` when absent.
pub(super) fn check_timeout(
    value: Option<u64>,
    default: Duration,
    at: String,
    issues: &mut Issues,
) -> Duration {
    match value {
        None => default,
        Some(ms) if (1..=MAX_TIMEOUT_MS).contains(&ms) => Duration::from_millis(ms),
        Some(ms) => {
            issues.push(
                at,
                format!("must be between 1 and {MAX_TIMEOUT_MS} milliseconds, got {ms}"),
            );
            default
        }
    }
}

fn parse_origin(url: &str) -> Result<Origin, String> {
    let uri: Uri = url
        .parse()
        .map_err(|_| format!("'{url}' is not an absolute http:// or https:// URL"))?;
    let scheme = match uri.scheme_str() {
        Some("http") => Scheme::HTTP,
        Some("https") => Scheme::HTTPS,
        _ => return Err(format!("'{url}' must start with http:// or https://")),
    };
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| format!("'{url}' has no host"))?;
    if authority.as_str().contains('@') {
        return Err("credentials in the URL are not allowed".to_owned());
    }
    if authority.host().is_empty() {
        return Err(format!("'{url}' has no host"));
    }
    if uri.query().is_some() || url.contains('#') {
        return Err(
            "a service URL has no query string or fragment; the client's query is forwarded"
                .to_owned(),
        );
    }
    let base_path = normalize_escapes(uri.path())
        .map_err(|e| format!("the base path is invalid: {e}"))?
        .trim_end_matches('/')
        .to_owned();
    Ok(Origin {
        scheme,
        authority,
        base_path,
    })
}
