//! Checking aggregate routes: legs, their templates and shapes, the
//! dependency graph (no cycles), limits.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use http::{HeaderName, Method};

use super::error::Issues;
use super::wire::{AggregateDocument, CacheDocument, LegDocument, MergeName};
use super::{NAME_RULE, Service, cache, is_name, services};
use crate::auth::RouteAuth;
use crate::routing::MethodSet;
use crate::upstream::Upstream;
use crate::upstream::aggregate::{Aggregate, Leg, MAX_LEGS, MergeMode, Shape, Template};

const DEFAULT_DEADLINE_MS: u64 = 10_000;
const DEFAULT_MAX_LEG_BYTES: u64 = 1024 * 1024;
const DEFAULT_MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;
/// Leg answers and the merged document are held in memory.
const MAX_BYTES: u64 = 16 * 1024 * 1024;

/// What an aggregate's legs may refer to.
pub(super) struct RouteContext<'a> {
    pub route_id: &'a str,
    /// The route path's captures.
    pub captures: &'a [&'a str],
    pub services: &'a BTreeMap<String, Rc<Service>>,
    pub auth: Option<&'a RouteAuth>,
    pub cache_defaults: Option<&'a CacheDocument>,
    /// `settings.max_aggregate_legs`.
    pub max_legs: usize,
}

/// The aggregate as the route's own service.
pub(super) fn check_aggregate(
    document: &AggregateDocument,
    route: &RouteContext<'_>,
    at: &str,
    issues: &mut Issues,
) -> Option<Rc<Service>> {
    let before = issues.len();
    let at = format!("{at}.aggregate");
    let most = route.max_legs.min(MAX_LEGS);
    if document.legs.is_empty() || document.legs.len() > most {
        let why = if most < MAX_LEGS {
            " (settings.max_aggregate_legs)"
        } else {
            ""
        };
        issues.push(
            format!("{at}.legs"),
            format!("list 1 to {most} legs{why}, got {}", document.legs.len()),
        );
    }
    let deadline = services::check_timeout(
        document.deadline_ms,
        Duration::from_millis(DEFAULT_DEADLINE_MS),
        format!("{at}.deadline_ms"),
        issues,
    );
    let bytes = |value: Option<u64>, default: u64, name: &str, issues: &mut Issues| {
        let value = value.unwrap_or(default);
        if !(1..=MAX_BYTES).contains(&value) {
            issues.push(
                format!("{at}.{name}"),
                format!("must be between 1 and {MAX_BYTES}"),
            );
        }
        usize::try_from(value.min(MAX_BYTES)).unwrap_or(usize::MAX)
    };
    let max_leg_bytes = bytes(
        document.max_leg_bytes,
        DEFAULT_MAX_LEG_BYTES,
        "max_leg_bytes",
        issues,
    );
    let max_response_bytes = bytes(
        document.max_response_bytes,
        DEFAULT_MAX_RESPONSE_BYTES,
        "max_response_bytes",
        issues,
    );
    let mut legs: Vec<Leg> = Vec::with_capacity(document.legs.len());
    for (index, leg) in document.legs.iter().enumerate() {
        let at = format!("{at}.legs[{index}]");
        if legs.iter().any(|earlier| earlier.name == leg.name) {
            issues.push(
                format!("{at}.name"),
                format!("'{}' is the name of an earlier leg", leg.name),
            );
        }
        if let Some(checked) = check_leg(leg, route, deadline, &at, issues) {
            legs.push(checked);
        }
    }
    link(&mut legs, &document.legs, &at, issues);
    if issues.len() != before {
        return None;
    }
    let merge = match document.merge.unwrap_or(MergeName::Named) {
        MergeName::Named => MergeMode::Named,
        MergeName::Deep => MergeMode::Deep,
        MergeName::Array => MergeMode::Array,
    };
    Some(Rc::new(Service {
        name: route.route_id.to_owned(),
        upstream: Upstream::Aggregate(Rc::new(Aggregate {
            legs,
            merge,
            deadline,
            max_leg_bytes,
            max_response_bytes,
        })),
        timeout: deadline,
    }))
}

fn check_leg(
    leg: &LegDocument,
    route: &RouteContext<'_>,
    deadline: Duration,
    at: &str,
    issues: &mut Issues,
) -> Option<Leg> {
    let (captures, services) = (route.captures, route.services);
    let before = issues.len();
    if !is_name(&leg.name) || leg.name.contains('.') {
        issues.push(
            format!("{at}.name"),
            format!("the leg name {NAME_RULE}, without '.'"),
        );
    }
    let service = services.get(&leg.service).cloned();
    match &service {
        None => issues.push(
            format!("{at}.service"),
            format!("no usable service named '{}' in 'services'", leg.service),
        ),
        Some(service) if matches!(service.upstream, Upstream::Aggregate(_)) => issues.push(
            format!("{at}.service"),
            "a leg calls a service, not another aggregate",
        ),
        Some(_) => {}
    }
    let method = match leg.method.as_deref().unwrap_or("GET") {
        name if name.bytes().all(|b| b.is_ascii_uppercase()) => {
            Method::from_bytes(name.as_bytes()).ok()
        }
        _ => None,
    };
    if method.is_none() {
        issues.push(format!("{at}.method"), "must be an upper-case HTTP method");
    }
    let path = Template::parse(&leg.path, captures)
        .map_err(|reason| issues.push(format!("{at}.path"), format!("'{}' {reason}", leg.path)))
        .ok();
    let mut pass_headers = Vec::new();
    for (index, name) in leg.headers.iter().flatten().enumerate() {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(header) if crate::http::is_hop_by_hop(&header) || header == http::header::HOST => {
                issues.push(
                    format!("{at}.headers[{index}]"),
                    format!("'{name}' is a header the gateway manages itself"),
                )
            }
            Ok(header) => pass_headers.push(header),
            Err(_) => issues.push(
                format!("{at}.headers[{index}]"),
                format!("'{name}' is not a header name"),
            ),
        }
    }
    let service_timeout = service.as_ref().map_or(deadline, |s| s.timeout);
    let timeout = services::check_timeout(
        leg.timeout_ms,
        service_timeout,
        format!("{at}.timeout_ms"),
        issues,
    )
    .min(deadline);
    let shape = check_shape(leg, at, issues);
    let cache = leg.cache.as_ref().and_then(|policy| {
        let methods = MethodSet::Only(vec![method.clone().unwrap_or(Method::GET)]);
        cache::check_route_cache(
            policy,
            route.cache_defaults,
            &methods,
            route.auth,
            at,
            issues,
        )
    });
    if issues.len() != before {
        return None;
    }
    Some(Leg {
        name: leg.name.clone(),
        service: service?,
        method: method?,
        path: path?,
        pass_headers,
        timeout,
        required: leg.required.unwrap_or(true),
        shape,
        cache,
        depends_on: Vec::new(),
    })
}

fn dotted(text: &str) -> Option<Vec<String>> {
    let parts: Vec<String> = text.split('.').map(str::to_owned).collect();
    parts.iter().all(|part| !part.is_empty()).then_some(parts)
}

fn check_shape(leg: &LegDocument, at: &str, issues: &mut Issues) -> Shape {
    let paths = |list: &Option<Vec<String>>, field: &str, issues: &mut Issues| {
        let mut parsed = Vec::new();
        for (index, text) in list.iter().flatten().enumerate() {
            match dotted(text) {
                Some(path) => parsed.push(path),
                None => issues.push(
                    format!("{at}.{field}[{index}]"),
                    format!("'{text}' is not a dotted field path"),
                ),
            }
        }
        parsed
    };
    let allow = paths(&leg.allow, "allow", issues);
    let deny = paths(&leg.deny, "deny", issues);
    if leg.allow.is_some() && leg.deny.is_some() {
        issues.push(
            at.to_owned(),
            "give 'allow' (only these) or 'deny' (all but these), not both",
        );
    }
    let take = leg.take.as_deref().and_then(|text| {
        dotted(text).or_else(|| {
            issues.push(
                format!("{at}.take"),
                format!("'{text}' is not a dotted field path"),
            );
            None
        })
    });
    let mut rename = Vec::new();
    for (from, to) in leg.rename.iter().flatten() {
        match (dotted(from), dotted(to)) {
            (Some(from), Some(to)) => rename.push((from, to)),
            _ => issues.push(
                format!("{at}.rename.{from}"),
                "both sides must be dotted field paths",
            ),
        }
    }
    Shape {
        take,
        allow,
        deny,
        rename,
    }
}

/// Resolve which legs each leg reads from, and refuse cycles.
fn link(legs: &mut [Leg], documents: &[LegDocument], at: &str, issues: &mut Issues) {
    if legs.len() != documents.len() {
        return; // a leg was refused; its issue is reported
    }
    let names: Vec<String> = legs.iter().map(|leg| leg.name.clone()).collect();
    for (index, leg) in legs.iter_mut().enumerate() {
        let mut depends_on = Vec::new();
        for name in leg.path.legs() {
            match names.iter().position(|other| other == name) {
                Some(position) if position == index => issues.push(
                    format!("{at}.legs[{index}].path"),
                    "a leg cannot read its own answer",
                ),
                Some(position) => {
                    if !depends_on.contains(&position) {
                        depends_on.push(position);
                    }
                }
                None => issues.push(
                    format!("{at}.legs[{index}].path"),
                    format!("no leg named '{name}'"),
                ),
            }
        }
        leg.depends_on = depends_on;
    }
    // Kahn's algorithm: whatever cannot be ordered is on a cycle.
    let mut remaining: Vec<usize> = legs.iter().map(|leg| leg.depends_on.len()).collect();
    let mut done = vec![false; legs.len()];
    let mut changed = true;
    while changed {
        changed = false;
        for index in 0..legs.len() {
            if done.get(index).copied().unwrap_or(true) || remaining.get(index).copied() != Some(0)
            {
                continue;
            }
            if let Some(flag) = done.get_mut(index) {
                *flag = true;
            }
            changed = true;
            for (other, leg) in legs.iter().enumerate() {
                if leg.depends_on.contains(&index)
                    && let Some(count) = remaining.get_mut(other)
                {
                    *count = count.saturating_sub(1);
                }
            }
        }
    }
    let cycle: Vec<&str> = legs
        .iter()
        .zip(&done)
        .filter(|(_, done)| !**done)
        .map(|(leg, _)| leg.name.as_str())
        .collect();
    if !cycle.is_empty() {
        issues.push(
            format!("{at}.legs"),
            format!("legs read from each other in a cycle: {}", cycle.join(", ")),
        );
    }
}
