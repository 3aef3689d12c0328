//! Checking the `routes` section: what each route matches, the service it
//! reaches and the policies it applies, every reference resolved.

use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use super::error::{ConfigError, Issues};
use super::wire::{CacheDocument, RouteDocument, ServiceDocument};
use super::{
    NAME_RULE, Route, Service, aggregate, auth, balancing, cache, carry, cors, is_name, rate_limit,
    services, transform,
};
use crate::auth::RouteAuth;
use crate::cache::CachePolicy;
use crate::cors::CorsPolicy;
use crate::routing::{
    HostPattern, MethodSet, PathPattern, PathTransform, RouteConflict, RouteSpec, RouteTable,
};
use crate::transform::RouteTransform;
use crate::upstream::Upstream;
use crate::upstream::balanced::HashOn;

/// What routes may refer to.
pub(super) struct Context<'a> {
    pub services: &'a BTreeMap<String, Rc<Service>>,
    pub declared_services: &'a BTreeMap<String, ServiceDocument>,
    pub auth: &'a auth::CheckedAuth,
    pub cors: Option<&'a Rc<CorsPolicy>>,
    pub cache: Option<&'a CacheDocument>,
    pub settings: &'a super::Settings,
}

/// The usable routes, in document order; every problem goes to `issues`.
pub(super) fn check_routes(
    documents: &[RouteDocument],
    context: &Context<'_>,
    issues: &mut Issues,
) -> Vec<Rc<Route>> {
    let mut routes = Vec::with_capacity(documents.len());
    let mut ids = HashSet::new();
    for (position, document) in documents.iter().enumerate() {
        let at = format!("routes[{position}]");
        if !is_name(&document.id) {
            issues.push(format!("{at}.id"), NAME_RULE);
        } else if !ids.insert(document.id.as_str()) {
            issues.push(
                format!("{at}.id"),
                format!("'{}' is already the id of an earlier route", document.id),
            );
        }
        if let Some(route) = check_route(document, position, &at, context, issues) {
            routes.push(Rc::new(route));
        }
    }
    routes
}

/// Index the routes; two routes that would tie are refused.
pub(super) fn build_table(routes: &[Rc<Route>]) -> Result<RouteTable<Rc<Route>>, ConfigError> {
    RouteTable::build(
        routes
            .iter()
            .map(|route| (route.spec.clone(), Rc::clone(route))),
    )
    .map_err(|conflicts| {
        let mut issues = Issues::default();
        for RouteConflict {
            first,
            second,
            host,
        } in conflicts
        {
            let host = host.map_or_else(|| "no host condition".to_owned(), |h| format!("host '{h}'"));
            let first_id = routes.get(first).map_or("?", |route| route.id.as_str());
            issues.push(
                format!("routes[{second}]"),
                format!(
                    "ties with route '{first_id}' (routes[{first}]): same {host}, same path pattern and overlapping methods; make one more specific or merge them"
                ),
            );
        }
        issues.into_error()
    })
}

fn check_route(
    document: &RouteDocument,
    position: usize,
    at: &str,
    context: &Context<'_>,
    issues: &mut Issues,
) -> Option<Route> {
    let before = issues.len();
    let spec = check_match(document, at, issues);
    let route_auth = document
        .auth
        .as_ref()
        .map(|policy| auth::check_route_auth(policy, at, context.auth, issues));
    let auth = route_auth.as_ref().and_then(Option::as_ref);
    let service = check_upstream(document, spec.as_ref(), auth, at, context, issues);
    let timeout = services::check_timeout(
        document.timeout_ms,
        service.as_ref().map_or(Duration::ZERO, |s| s.timeout),
        format!("{at}.timeout_ms"),
        issues,
    );
    let path_transform = spec
        .as_ref()
        .and_then(|spec| check_path_transform(document, &spec.path, at, issues));
    let rate_limit = document
        .rate_limit
        .as_ref()
        .map(|limits| rate_limit::check_rate_limit(limits, at, document.auth.is_some(), issues));
    let api_key_header = route_auth
        .as_ref()
        .and_then(|auth| auth.as_ref())
        .and_then(|auth| auth.api_key.as_ref())
        .map(|source| &source.header);
    let cors = spec.as_ref().and_then(|spec| {
        cors::route_cors(
            document.cors.as_ref(),
            context.cors,
            &spec.methods,
            api_key_header,
            at,
            issues,
        )
    });
    check_service_only_fields(document, at, issues);
    let own_retry = document
        .retry
        .as_ref()
        .and_then(|retry| balancing::check_retry(retry, &format!("{at}.retry"), issues))
        .map(Rc::new);
    if let (Some(service), Some(spec)) = (&service, &spec) {
        check_hash_key(service, spec, document.auth.is_some(), at, issues);
    }
    let cache = match (&document.cache, &spec) {
        (Some(policy), Some(spec)) => cache::check_route_cache(
            policy,
            context.cache,
            &spec.methods,
            route_auth.as_ref().and_then(|auth| auth.as_ref()),
            at,
            issues,
        ),
        _ => None,
    };
    let transformation = check_transformation(
        document,
        spec.as_ref(),
        auth,
        cache.as_deref(),
        at,
        context,
        issues,
    );
    let websocket = carry::check_websocket(
        document,
        spec.as_ref().map(|spec| &spec.methods),
        route_auth.as_ref().and_then(|auth| auth.as_ref()),
        at,
        issues,
    );
    let max_body_bytes = carry::check_body_limit(
        document.max_body_bytes,
        &format!("{at}.max_body_bytes"),
        issues,
    )
    .or(context.settings.max_body_bytes);
    if issues.len() != before {
        return None;
    }
    let service = service?;
    let retry = own_retry.or_else(|| match &service.upstream {
        Upstream::Balanced(balanced) => balanced.retry.clone(),
        Upstream::Single(_) | Upstream::Aggregate(_) => None,
    });
    Some(Route {
        id: document.id.clone(),
        position,
        spec: spec?,
        service,
        transform: path_transform?,
        timeout,
        auth: route_auth.flatten(),
        rate_limit: rate_limit.flatten(),
        cors,
        cache,
        keep_escaped_slashes: document.escaped_slashes == Some(super::wire::EscapedSlashes::Keep),
        retry,
        transformation,
        websocket,
        max_body_bytes,
    })
}

/// The route's upstream: one service, or an aggregate of legs.
fn check_upstream(
    document: &RouteDocument,
    spec: Option<&RouteSpec>,
    auth: Option<&RouteAuth>,
    at: &str,
    context: &Context<'_>,
    issues: &mut Issues,
) -> Option<Rc<Service>> {
    match (&document.service, &document.aggregate) {
        (Some(_), None) => check_service(document, at, context, issues),
        (None, Some(aggregate)) => {
            if document.strip_prefix.is_some() || document.rewrite.is_some() {
                issues.push(
                    at.to_owned(),
                    "an aggregate's legs give their own paths; 'strip_prefix' and 'rewrite' do not apply",
                );
            }
            let captures = spec
                .as_ref()
                .map(|spec| spec.path.capture_names())
                .unwrap_or_default();
            aggregate::check_aggregate(
                aggregate,
                &aggregate::RouteContext {
                    route_id: &document.id,
                    captures: &captures,
                    services: context.services,
                    auth,
                    cache_defaults: context.cache,
                    max_legs: context.settings.max_aggregate_legs,
                },
                at,
                issues,
            )
        }
        _ => {
            issues.push(
                at.to_owned(),
                "give 'service' (one upstream) or 'aggregate' (several), exactly one",
            );
            None
        }
    }
}

/// Fields that only a route with a `service` can use.
fn check_service_only_fields(document: &RouteDocument, at: &str, issues: &mut Issues) {
    if document.aggregate.is_none() {
        return;
    }
    if document.transform.is_some() {
        issues.push(
            format!("{at}.transform"),
            "an aggregate's legs shape their own answers ('take', 'allow', 'deny', 'rename'); 'transform' applies to routes with a 'service'",
        );
    }
    if document.retry.is_some() {
        issues.push(
            format!("{at}.retry"),
            "an aggregate's legs are each tried once; 'retry' applies to routes with a 'service'",
        );
    }
}

/// The route's request and response transformation, with what it may
/// refer to (the path's captures, the identity, the cache policy).
fn check_transformation(
    document: &RouteDocument,
    spec: Option<&RouteSpec>,
    auth: Option<&RouteAuth>,
    cache: Option<&CachePolicy>,
    at: &str,
    context: &Context<'_>,
    issues: &mut Issues,
) -> Option<Rc<RouteTransform>> {
    let (rules, spec) = (document.transform.as_ref()?, spec?);
    transform::check_transform(
        rules,
        &transform::RouteFacts {
            pattern: &spec.path,
            auth,
            cache,
            settings: context.settings,
            identity_prefix: context.auth.settings.identity_headers.prefix(),
        },
        at,
        issues,
    )
    .map(Rc::new)
}

/// A `consistent_hash` service's key must exist on every route to it: a
/// path parameter its pattern captures, a consumer it authenticates.
fn check_hash_key(
    service: &Service,
    spec: &RouteSpec,
    authenticated: bool,
    at: &str,
    issues: &mut Issues,
) {
    let Upstream::Balanced(balanced) = &service.upstream else {
        return;
    };
    match balanced.hash_on() {
        Some(HashOn::Param(name))
            if spec.path.param_position(name).is_none()
                && spec.path.tail_name() != Some(name.as_str()) =>
        {
            issues.push(
                format!("{at}.path"),
                format!(
                    "service '{}' hashes on the path parameter '{name}', which '{}' does not capture",
                    service.name, spec.path
                ),
            )
        }
        Some(HashOn::Consumer) if !authenticated => issues.push(
            format!("{at}.service"),
            format!(
                "service '{}' hashes on the consumer, and this route has no 'auth' to name one",
                service.name
            ),
        ),
        _ => {}
    }
}

/// What the route matches: path, methods and hosts.
fn check_match(document: &RouteDocument, at: &str, issues: &mut Issues) -> Option<RouteSpec> {
    let path = PathPattern::parse(&document.path)
        .map_err(|e| issues.push(format!("{at}.path"), format!("'{}': {e}", document.path)))
        .ok();
    let methods = match &document.methods {
        None => Some(MethodSet::Any),
        Some(names) => MethodSet::parse(names)
            .map_err(|e| issues.push(format!("{at}.methods"), e))
            .ok(),
    };
    let mut hosts = Vec::new();
    for (index, text) in document.hosts.iter().flatten().enumerate() {
        match HostPattern::parse(text) {
            Ok(host) if hosts.contains(&host) => issues.push(
                format!("{at}.hosts[{index}]"),
                format!("'{text}' is listed twice"),
            ),
            Ok(host) => hosts.push(host),
            Err(e) => issues.push(format!("{at}.hosts[{index}]"), format!("'{text}': {e}")),
        }
    }
    if document.hosts.as_ref().is_some_and(Vec::is_empty) {
        issues.push(
            format!("{at}.hosts"),
            "the list is empty; leave 'hosts' out to match any host",
        );
    }
    Some(RouteSpec {
        id: document.id.clone(),
        hosts,
        path: path?,
        methods: methods?,
    })
}

fn check_service(
    document: &RouteDocument,
    at: &str,
    context: &Context<'_>,
    issues: &mut Issues,
) -> Option<Rc<Service>> {
    let name = document.service.as_deref().unwrap_or_default();
    if let Some(service) = context.services.get(name) {
        return Some(Rc::clone(service));
    }
    let reason = if context.declared_services.contains_key(name) {
        format!("service '{name}' is not usable (see services.{name})")
    } else {
        format!("no service named '{name}' in 'services'")
    };
    issues.push(format!("{at}.service"), reason);
    None
}

fn check_path_transform(
    document: &RouteDocument,
    pattern: &PathPattern,
    at: &str,
    issues: &mut Issues,
) -> Option<PathTransform> {
    match (&document.strip_prefix, &document.rewrite) {
        (Some(_), Some(_)) => {
            issues.push(
                at.to_owned(),
                "'strip_prefix' and 'rewrite' cannot both be set",
            );
            None
        }
        (Some(prefix), None) => PathTransform::strip_prefix(prefix, pattern)
            .map_err(|e| issues.push(format!("{at}.strip_prefix"), e))
            .ok(),
        (None, Some(template)) => PathTransform::template(template, pattern)
            .map_err(|e| issues.push(format!("{at}.rewrite"), format!("'{template}' {e}")))
            .ok(),
        (None, None) => Some(PathTransform::Keep),
    }
}
