//! Checking the `services` section: each becomes an upstream the routes
//! share by handle.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use http::uri::{Scheme, Uri};

use super::error::Issues;
use super::wire::ServiceDocument;
use super::{NAME_RULE, Service, is_name};
use crate::routing::path::normalize_escapes;
use crate::upstream::{Origin, Upstream};

pub(super) const DEFAULT_TIMEOUT_MS: u64 = 30_000;
const MAX_TIMEOUT_MS: u64 = 600_000;

/// The usable services, by name; every problem goes to `issues`.
pub(super) fn check_services(
    document: &BTreeMap<String, ServiceDocument>,
    issues: &mut Issues,
) -> BTreeMap<String, Rc<Service>> {
    let mut services = BTreeMap::new();
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
        match parse_origin(&service.url) {
            Ok(origin) => {
                services.insert(
                    name.clone(),
                    Rc::new(Service {
                        name: name.clone(),
                        upstream: Upstream::Single(origin),
                        timeout,
                    }),
                );
            }
            Err(reason) => issues.push(format!("{at}.url"), reason),
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
