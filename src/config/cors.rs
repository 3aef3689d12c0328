//! Checking CORS policies (the config-wide `cors` and routes' own), and
//! resolving the one that applies to each route with its header values
//! built once.

use std::rc::Rc;

use http::{HeaderName, HeaderValue, Method};

use super::error::Issues;
use super::wire::{self, CorsDocument};
use crate::cors::{
    AllowedHeaders, AllowedOrigins, CorsPolicy, DEFAULT_ALLOW_HEADERS, DEFAULT_ANY_METHODS,
    DEFAULT_EXPOSE, OriginRule, RouteCors,
};
use crate::routing::MethodSet;

/// Longest `max_age_seconds` accepted; browsers cap it lower anyway.
const MAX_AGE_LIMIT: u64 = 86_400;

/// Check one policy document found at `at`.
pub(super) fn check_policy(
    document: &CorsDocument,
    at: &str,
    issues: &mut Issues,
) -> Option<CorsPolicy> {
    let before = issues.len();
    let credentials = document.credentials.unwrap_or(false);
    let origins = check_origins(&document.origins, credentials, at, issues);
    let methods = document
        .methods
        .as_ref()
        .and_then(|names| match MethodSet::parse(names) {
            Ok(MethodSet::Only(methods)) => Some(methods),
            Ok(MethodSet::Any) => None,
            Err(e) => {
                issues.push(format!("{at}.methods"), e);
                None
            }
        });
    let headers = document.headers.as_ref().map(|names| {
        if names.iter().any(|name| name == "*") {
            if names.len() > 1 {
                issues.push(
                    format!("{at}.headers"),
                    "'*' allows every header; list it alone",
                );
            }
            AllowedHeaders::Any
        } else {
            AllowedHeaders::List(header_names(names, &format!("{at}.headers"), issues))
        }
    });
    let expose = match &document.expose_headers {
        None => HeaderValue::from_str(&DEFAULT_EXPOSE.join(", ")).ok(),
        Some(names) if names.iter().any(|name| name == "*") => {
            issues.push(
                format!("{at}.expose_headers"),
                "list the headers scripts may read; '*' is not honoured with credentials and hides mistakes",
            );
            None
        }
        Some(names) => header_list(&header_names(
            names,
            &format!("{at}.expose_headers"),
            issues,
        )),
    };
    let max_age = match document.max_age_seconds {
        None => None,
        Some(seconds) if seconds <= MAX_AGE_LIMIT => Some(HeaderValue::from(seconds)),
        Some(seconds) => {
            issues.push(
                format!("{at}.max_age_seconds"),
                format!("must be between 0 and {MAX_AGE_LIMIT}, got {seconds}"),
            );
            None
        }
    };
    if issues.len() != before {
        return None;
    }
    Some(CorsPolicy {
        origins,
        methods,
        headers,
        expose,
        max_age,
        credentials,
        pass_through_preflight: document.pass_through_preflight.unwrap_or(false),
    })
}

fn check_origins(
    origins: &[String],
    credentials: bool,
    at: &str,
    issues: &mut Issues,
) -> AllowedOrigins {
    if origins.is_empty() {
        issues.push(
            format!("{at}.origins"),
            "list at least one origin (or leave 'cors' out)",
        );
    }
    if origins.iter().any(|origin| origin == "*") {
        if origins.len() > 1 {
            issues.push(
                format!("{at}.origins"),
                "'*' admits every origin; list it alone",
            );
        }
        if credentials {
            issues.push(
                format!("{at}.credentials"),
                "credentials cannot be allowed for every origin ('*'): browsers refuse it, and echoing any origin would let every site read your users' data; list the origins",
            );
        }
        return AllowedOrigins::Any;
    }
    let mut rules = Vec::with_capacity(origins.len());
    for (index, origin) in origins.iter().enumerate() {
        match OriginRule::parse(origin) {
            Ok(rule) if rules.contains(&rule) => issues.push(
                format!("{at}.origins[{index}]"),
                format!("'{origin}' is listed twice"),
            ),
            Ok(rule) => rules.push(rule),
            Err(reason) => issues.push(format!("{at}.origins[{index}]"), reason),
        }
    }
    AllowedOrigins::List(rules)
}

fn header_names(names: &[String], at: &str, issues: &mut Issues) -> Vec<HeaderName> {
    let mut parsed: Vec<HeaderName> = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(header) if parsed.contains(&header) => issues.push(
                format!("{at}[{index}]"),
                format!("'{name}' is listed twice"),
            ),
            Ok(header) => parsed.push(header),
            Err(_) => issues.push(
                format!("{at}[{index}]"),
                format!("'{name}' is not a header name"),
            ),
        }
    }
    parsed
}

fn header_list(names: &[HeaderName]) -> Option<HeaderValue> {
    if names.is_empty() {
        return None;
    }
    let joined = names
        .iter()
        .map(HeaderName::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    HeaderValue::from_str(&joined).ok()
}

fn method_list(methods: &[Method]) -> HeaderValue {
    let joined = methods
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    HeaderValue::from_str(&joined).unwrap_or(HeaderValue::from_static("GET, HEAD"))
}

/// The policy that applies to a route: its own `cors` (a policy, or
/// `false` for none), else the config-wide one; resolved with the route's
/// methods and API key header.
pub(super) fn route_cors(
    document: Option<&serde_json::Value>,
    default: Option<&Rc<CorsPolicy>>,
    route_methods: &MethodSet,
    api_key_header: Option<&HeaderName>,
    at: &str,
    issues: &mut Issues,
) -> Option<RouteCors> {
    let at = format!("{at}.cors");
    let policy = match document {
        None => Rc::clone(default?),
        Some(serde_json::Value::Bool(false)) => return None,
        Some(serde_json::Value::Bool(true)) => {
            issues.push(
                at,
                "give a policy object, or false to turn the config-wide policy off",
            );
            return None;
        }
        Some(value) => {
            let document: CorsDocument = match wire::from_value(value, &at) {
                Ok(document) => document,
                Err(error) => {
                    for issue in error.issues {
                        issues.push(issue.path, issue.reason);
                    }
                    return None;
                }
            };
            Rc::new(check_policy(&document, &at, issues)?)
        }
    };
    let methods = match (&policy.methods, route_methods) {
        (Some(listed), _) => listed.clone(),
        (None, MethodSet::Only(methods)) => {
            let mut methods = methods.clone();
            if methods.contains(&Method::GET) && !methods.contains(&Method::HEAD) {
                methods.push(Method::HEAD);
            }
            methods
        }
        (None, MethodSet::Any) => DEFAULT_ANY_METHODS.to_vec(),
    };
    let headers = policy.headers.clone().unwrap_or_else(|| {
        let mut names: Vec<HeaderName> = DEFAULT_ALLOW_HEADERS
            .iter()
            .map(|name| HeaderName::from_static(name))
            .collect();
        if let Some(header) = api_key_header
            && !names.contains(header)
        {
            names.push(header.clone());
        }
        AllowedHeaders::List(names)
    });
    let headers_value = match &headers {
        AllowedHeaders::Any => None,
        AllowedHeaders::List(names) => header_list(names),
    };
    Some(RouteCors {
        methods_value: method_list(&methods),
        methods,
        headers,
        headers_value,
        policy,
    })
}
