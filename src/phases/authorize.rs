//! Phase "authorize": a verified identity must hold the roles and scopes
//! the route requires (all of them, or any one, as configured); otherwise
//! 403, with RFC 6750's `insufficient_scope` challenge for bearer tokens.

use crate::auth::{AuthMethod, Identity, RouteAuth};
use crate::error::GatewayError;
use crate::pipeline::context::RequestCtx;
use crate::pipeline::flow::Flow;

/// Check the authenticated caller against the route's requirements.
pub fn run<S>(ctx: &mut RequestCtx<S>) -> Result<Flow<S>, GatewayError> {
    let (Some(routed), Some(identity)) = (&ctx.route, &ctx.identity) else {
        return Ok(Flow::Continue);
    };
    if let Some(policy) = &routed.route.auth {
        authorize(policy, identity)?;
    }
    Ok(Flow::Continue)
}

/// Check `identity` against the route's requirements.
pub fn authorize(policy: &RouteAuth, identity: &Identity) -> Result<(), GatewayError> {
    let roles_ok = policy.roles.is_met_by(&identity.roles);
    let scopes_ok = policy.scopes.is_met_by(&identity.scopes);
    if roles_ok && scopes_ok {
        return Ok(());
    }
    let bearer = matches!(
        identity.method,
        Some(AuthMethod::Jwt | AuthMethod::Introspection)
    );
    let challenge = bearer.then(|| {
        let mut challenge = "Bearer realm=\"portico\", error=\"insufficient_scope\"".to_owned();
        if !scopes_ok {
            challenge.push_str(&format!(", scope=\"{}\"", policy.scopes.names().join(" ")));
        }
        challenge
    });
    let missing = if roles_ok { "scopes" } else { "roles" };
    Err(GatewayError::Forbidden {
        challenge,
        reason: format!("identity lacks the required {missing}"),
    })
}
