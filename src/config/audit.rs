//! A second look at a valid config, for what it allows but an operator
//! probably did not mean: a path reachable without authentication (or
//! without a rate limit) that reaches the same service paths as a route
//! that requires it. Requests can then simply go round the guarded route.
//!
//! Warnings, not errors: two routes may legitimately reach overlapping
//! paths (a public health check beside a protected API). `portico config
//! validate` and `push` print them.

use std::rc::Rc;

use super::{Config, Route};
use crate::upstream::Upstream;

/// One finding, at the JSON path of the route it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub path: String,
    pub message: String,
}

/// Every finding in `config`.
pub fn audit(config: &Config) -> Vec<Warning> {
    let mut warnings = Vec::new();
    for open in &config.routes {
        for guarded in &config.routes {
            if Rc::ptr_eq(open, guarded) || !same_paths(open, guarded) {
                continue;
            }
            let service = &guarded.service.name;
            if guarded.auth.is_some() && open.auth.is_none() {
                warnings.push(Warning {
                    path: format!("routes[{}]", open.position),
                    message: format!(
                        "reaches paths of service '{service}' that route '{}' (routes[{}]) guards with authentication, without any: requests can go round it here",
                        guarded.id, guarded.position
                    ),
                });
            } else if guarded.rate_limit.is_some() && open.rate_limit.is_none() {
                warnings.push(Warning {
                    path: format!("routes[{}]", open.position),
                    message: format!(
                        "reaches paths of service '{service}' that route '{}' (routes[{}]) rate-limits, without a limit: requests can go round it here",
                        guarded.id, guarded.position
                    ),
                });
            }
        }
    }
    warnings
}

/// Whether two routes can send a request to the same path of one service.
fn same_paths(a: &Route, b: &Route) -> bool {
    let same_service =
        Rc::ptr_eq(&a.service, &b.service) && matches!(a.service.upstream, Upstream::Single(_));
    same_service
        && a.transform
            .reach(&a.spec.path)
            .overlaps(&b.transform.reach(&b.spec.path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings(routes: serde_json::Value) -> Vec<Warning> {
        let config = Config::from_json(
            &serde_json::json!({
                "version": 1,
                "auth": { "jwt": { "demo": { "issuer": "https://i", "audiences": "any",
                    "algorithms": ["HS256"], "keys": [ { "kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA" } ] } } },
                "services": { "users": { "url": "http://u" }, "other": { "url": "http://o" } },
                "routes": routes
            })
            .to_string(),
        )
        .unwrap();
        audit(&config)
    }

    #[test]
    fn a_public_route_onto_guarded_service_paths_is_flagged() {
        let found = warnings(serde_json::json!([
            { "id": "guarded", "path": "/api/users/:id", "service": "users", "rewrite": "/people/{id}", "auth": { "jwt": ["demo"] } },
            { "id": "open", "path": "/public/*", "service": "users", "strip_prefix": "/public" }
        ]));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, "routes[1]");
        assert!(
            found[0].message.contains("'guarded'"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn separate_paths_and_separate_services_are_fine() {
        assert!(warnings(serde_json::json!([
            { "id": "guarded", "path": "/api/users/:id", "service": "users", "rewrite": "/people/{id}", "auth": { "jwt": ["demo"] } },
            { "id": "open", "path": "/api/status", "service": "users", "rewrite": "/status" },
            { "id": "elsewhere", "path": "/other/*", "service": "other" }
        ]))
        .is_empty());
    }

    #[test]
    fn a_route_without_the_limit_of_another_onto_the_same_paths_is_flagged() {
        let found = warnings(serde_json::json!([
            { "id": "limited", "path": "/api/users/*", "service": "users", "strip_prefix": "/api", "auth": { "jwt": ["demo"] },
              "rate_limit": { "policies": [ { "name": "per-user", "limit": 5, "period": "1m", "scope": ["user"] } ] } },
            { "id": "profile", "path": "/api/users/:id/profile", "methods": ["GET"], "service": "users",
              "rewrite": "/users/{id}/profile", "auth": { "jwt": ["demo"] } }
        ]));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].message.contains("rate-limits"));
    }
}
