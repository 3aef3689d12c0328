//! Checking what a route carries beyond one plain exchange: WebSocket
//! upgrades, and request bodies up to a size.

use super::WebSocketPolicy;
use super::error::Issues;
use super::wire::{RouteDocument, WebSocketDocument};
use crate::auth::RouteAuth;
use crate::routing::MethodSet;

/// A body limit: at least one byte (no limit is said by leaving it out).
pub(super) fn check_body_limit(limit: Option<u64>, at: &str, issues: &mut Issues) -> Option<u64> {
    match limit {
        Some(0) => {
            issues.push(
                at,
                "must be at least 1 byte; leave it out for no limit of the gateway's own",
            );
            None
        }
        other => other,
    }
}

/// The route's WebSocket policy, if it takes upgrades.
pub(super) fn check_websocket(
    document: &RouteDocument,
    methods: Option<&MethodSet>,
    auth: Option<&RouteAuth>,
    at: &str,
    issues: &mut Issues,
) -> Option<WebSocketPolicy> {
    let at = format!("{at}.websocket");
    let settings = match document.websocket.as_ref()? {
        serde_json::Value::Bool(false) => return None,
        serde_json::Value::Bool(true) => WebSocketDocument::default(),
        value @ serde_json::Value::Object(_) => {
            match serde_json::from_value::<WebSocketDocument>(value.clone()) {
                Ok(settings) => settings,
                Err(error) => {
                    issues.push(at.as_str(), error.to_string());
                    return None;
                }
            }
        }
        _ => {
            issues.push(
                at.as_str(),
                "must be true, false or an object such as {\"subprotocol_credentials\": true}",
            );
            return None;
        }
    };
    let policy = WebSocketPolicy {
        subprotocol_credentials: settings.subprotocol_credentials.unwrap_or(false),
    };
    if document.aggregate.is_some() {
        issues.push(
            at.as_str(),
            "an aggregate answers with one merged document; a WebSocket needs one service",
        );
    }
    if let Some(methods) = methods
        && *methods != MethodSet::Any
        && !methods.lists(&http::Method::GET)
    {
        issues.push(
            at.as_str(),
            "WebSocket upgrades are GET requests, which this route's 'methods' leave out",
        );
    }
    if policy.subprotocol_credentials
        && !auth.is_some_and(|auth| {
            auth.api_key.is_some() || !auth.jwt.is_empty() || !auth.introspection.is_empty()
        })
    {
        issues.push(
            format!("{at}.subprotocol_credentials"),
            "the route's 'auth' accepts no API key or bearer token to read from the subprotocol",
        );
    }
    Some(policy)
}
