//! A second look at a valid config, for what it allows but an operator
//! probably did not mean:
//!
//! - a path reachable without authentication (or without a rate limit)
//!   that reaches the same service paths as a route that requires it:
//!   requests can then simply go round the guarded route;
//! - an HMAC secret written into the config, where everyone who can read
//!   the CONFIG namespace can mint tokens with it.
//!
//! Secrets the config names are listed by [`secret_names`], so the CLI
//! can warn when one of them is a plain variable in `wrangler.toml`
//! rather than a Worker secret (the Worker itself cannot tell the two
//! apart: both arrive as strings in its environment).
//!
//! Warnings, not errors: two routes may legitimately reach overlapping
//! paths (a public health check beside a protected API). `portico config
//! validate` and `push` print them.

use std::rc::Rc;

use super::{Config, Route};
use crate::auth::jwt::KeySource;
use crate::auth::keys::KeyMaterial;
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
    for issuer in &config.auth.issuers {
        if let KeySource::Static(keys) = &issuer.keys
            && keys
                .iter()
                .any(|key| matches!(key.material, KeyMaterial::Hmac(_)))
        {
            warnings.push(Warning {
                path: format!("auth.jwt.{}.keys", issuer.name),
                message: "holds an HMAC secret: everyone who can read the CONFIG namespace can mint tokens this issuer accepts; prefer an asymmetric algorithm (ES256, EdDSA, RS256) or a jwks_url".to_owned(),
            });
        }
    }
    warnings
}

/// The Worker secrets the config names, each with its JSON path.
pub fn secret_names(config: &Config) -> Vec<(String, String)> {
    let mut names = Vec::new();
    if let Some(name) = &config.auth.signing_secret {
        names.push(("auth.signing_secret".to_owned(), name.clone()));
    }
    for introspector in &config.auth.introspectors {
        names.push((
            format!("auth.introspection.{}.client_secret", introspector.name),
            introspector.client_secret.clone(),
        ));
    }
    if let Some(name) = &config.admin_token_secret {
        names.push(("admin.token_secret".to_owned(), name.clone()));
    }
    names
}

/// Whether two routes can send a request to the same path of one service.
fn same_paths(a: &Route, b: &Route) -> bool {
    let same_service = Rc::ptr_eq(&a.service, &b.service)
        && matches!(
            a.service.upstream,
            Upstream::Single(_) | Upstream::Balanced(_)
        );
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
            .into_iter()
            .filter(|warning| warning.path.starts_with("routes"))
            .collect()
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

    #[test]
    fn an_hmac_secret_in_the_config_is_flagged_and_secrets_are_listed() {
        let config = Config::from_json(
            &serde_json::json!({
                "version": 1,
                "auth": { "signing_secret": "IDENTITY_SECRET",
                    "jwt": { "demo": { "issuer": "https://i", "audiences": "any",
                    "algorithms": ["HS256"], "keys": [ { "kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA" } ] } } },
                "admin": { "token_secret": "ADMIN_TOKEN" },
                "services": { "users": { "url": "http://u" } },
                "routes": []
            })
            .to_string(),
        )
        .unwrap();
        let found = audit(&config);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, "auth.jwt.demo.keys");
        assert_eq!(
            secret_names(&config),
            [
                (
                    "auth.signing_secret".to_owned(),
                    "IDENTITY_SECRET".to_owned()
                ),
                ("admin.token_secret".to_owned(), "ADMIN_TOKEN".to_owned())
            ]
        );
    }
}
