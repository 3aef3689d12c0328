//! `portico routes explain`: which route serves a request, and what goes
//! upstream, computed by the gateway's own routing and forwarding code.

use std::path::Path;

use http::{HeaderMap, Method, Uri};

use super::Verdict;
use super::wrangler::{self, KvTarget};
use crate::config::{CONFIG_KEY, Config};
use crate::error::GatewayError;
use crate::phases::{forward, route};
use crate::platform::KvNamespace;

pub(crate) fn run(
    method: &str,
    url: &str,
    file: Option<&Path>,
    target: &KvTarget,
) -> Result<Verdict, String> {
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("'{method}' is not an HTTP method"))?;
    let uri: Uri = url
        .parse()
        .map_err(|_| format!("'{url}' is not a URL or path"))?;
    let text = match file {
        Some(file) => std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?,
        None => wrangler::kv_get(KvNamespace::Config.binding(), CONFIG_KEY, target)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!(
                    "no configuration in {} ({})",
                    KvNamespace::Config.binding(),
                    target.describe()
                )
            })?,
    };
    let config =
        Config::from_json(&text).map_err(|e| format!("the configuration is invalid:\n{e}"))?;
    let (report, matched) = explain(&config, &method, &uri);
    print!("{report}");
    Ok(if matched {
        Verdict::Accepted
    } else {
        Verdict::Refused
    })
}

/// A human-readable account of how `config` handles `method uri`, and
/// whether a route serves it.
pub fn explain(config: &Config, method: &Method, uri: &Uri) -> (String, bool) {
    let mut lines = vec![format!("{method} {uri}")];
    let outcome = route::find(config, method, uri, &HeaderMap::new()).and_then(|routed| {
        let origin = routed
            .route
            .service
            .upstream
            .origins()
            .next()
            .ok_or_else(|| GatewayError::Internal("the service has no origin".to_owned()))?;
        let upstream = forward::upstream_uri(&routed, origin, uri.query())?;
        Ok((routed, upstream))
    });
    let matched = outcome.is_ok();
    match outcome {
        Ok((routed, upstream)) => {
            let route = &routed.route;
            let spec = &route.spec;
            let hosts = if spec.hosts.is_empty() {
                "any".to_owned()
            } else {
                join(spec.hosts.iter().map(ToString::to_string))
            };
            lines.push(format!(
                "  route     {} (routes[{}])",
                route.id, route.position
            ));
            lines.push(format!(
                "  matches   path {}, methods {}, hosts {hosts}",
                spec.path, spec.methods
            ));
            let params = spec.path.captures(&routed.path);
            if !params.is_empty() {
                lines.push(format!(
                    "  params    {}",
                    join(params.into_iter().map(|(name, value)| {
                        format!("{name}={}", value.unwrap_or("(nothing)"))
                    }))
                ));
            }
            lines.push(format!(
                "  service   {} ({})",
                route.service.name, route.service.upstream
            ));
            let targets = route.service.upstream.origins().count();
            if targets > 1 {
                lines.push(format!(
                    "  upstream  {method} {upstream} (the first of {targets} targets; each request's is chosen when it arrives)"
                ));
            } else {
                lines.push(format!("  upstream  {method} {upstream}"));
            }
            lines.push(format!("  timeout   {} ms", route.timeout.as_millis()));
            lines.extend(policies(config, route));
        }
        Err(error) => {
            let kind = error.problem_type();
            let why = match &error {
                GatewayError::MethodNotAllowed { allow } => {
                    format!("Allow: {}", join(allow.iter().map(Method::to_string)))
                }
                other => other.to_string(),
            };
            lines.push(format!(
                "  result    {} {} ({why})",
                kind.status.as_u16(),
                kind.slug
            ));
        }
    }
    let mut report = lines.join("\n");
    report.push('\n');
    (report, matched)
}

/// The policies a request on `route` meets, one line each.
fn policies(config: &Config, route: &crate::config::Route) -> Vec<String> {
    use crate::auth::Requirement;
    let mut lines = Vec::new();
    match &route.auth {
        None => lines.push("  auth      none (public)".to_owned()),
        Some(auth) => {
            let mut accepted = Vec::new();
            if let Some(source) = &auth.api_key {
                let mut where_from = vec![format!("header {}", source.header)];
                if source.bearer {
                    where_from.push("bearer".to_owned());
                }
                if let Some(query) = &source.query {
                    where_from.push(format!("query {query}"));
                }
                accepted.push(format!("api key ({})", where_from.join(", ")));
            }
            for issuer in &auth.jwt {
                accepted.push(format!("jwt {}", issuer.name));
            }
            for introspector in &auth.introspection {
                accepted.push(format!("introspection {}", introspector.name));
            }
            lines.push(format!("  auth      {}", accepted.join(" or ")));
            if let Some(budget) = &config.failed_auth {
                lines.push(format!(
                    "  failures  {} per {} ms per client network, then 429",
                    budget.quota.limit, budget.quota.period_ms
                ));
            }
            for (what, requirement) in [("roles", &auth.roles), ("scopes", &auth.scopes)] {
                match requirement {
                    Requirement::None => {}
                    Requirement::AllOf(names) => {
                        lines.push(format!("  {what:<9} all of {}", names.join(", ")))
                    }
                    Requirement::AnyOf(names) => {
                        lines.push(format!("  {what:<9} any of {}", names.join(", ")))
                    }
                }
            }
        }
    }
    match &route.rate_limit {
        None => lines.push("  limits    none".to_owned()),
        Some(limits) => {
            let describe = |policy: &crate::ratelimit::Policy, note: &str| {
                let scope: Vec<&str> = policy.scope.iter().map(|part| part.as_str()).collect();
                format!(
                    "  limit     {}: {} {} per {} ms, per {}{}",
                    policy.name,
                    policy.quota.algorithm.as_str(),
                    policy.quota.limit,
                    policy.quota.period_ms,
                    scope.join("+"),
                    note
                )
            };
            lines.extend(
                limits
                    .before_auth
                    .iter()
                    .map(|policy| describe(policy, " (before auth)")),
            );
            lines.extend(
                limits
                    .plan
                    .iter()
                    .map(|plan| describe(plan, " (plan: a key's own rate replaces it)")),
            );
            lines.extend(limits.policies.iter().map(|policy| describe(policy, "")));
        }
    }
    if let Some(cache) = &route.cache {
        lines.push(format!(
            "  cache     {} s fresh{}{}",
            cache.ttl.as_secs(),
            if cache.honor_origin {
                " (or the origin's Cache-Control)"
            } else {
                ""
            },
            if route.auth.is_some() && !cache.shared {
                ", per caller"
            } else {
                ""
            }
        ));
    }
    if let Some(cors) = &route.cors {
        lines.push(format!(
            "  cors      methods {}",
            cors.methods_value.to_str().unwrap_or("?")
        ));
    }
    lines
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}
