//! Phase "upgrade": decide whether a request that asks to become a
//! WebSocket may, before anything is checked or counted for it.
//!
//! A route takes upgrades only if its config says `websocket`. Elsewhere a
//! WebSocket upgrade is refused with 400, never silently sent on as a
//! plain request (which the service would refuse in its own way, 426 at
//! best). Other upgrade tokens (`h2c`, say) are optional for a server and
//! are dropped as hop-by-hop headers, as before.
//!
//! Browsers apply no CORS to WebSockets: any page may open one, with the
//! user's cookies. On a route with a CORS policy the page's `Origin` must
//! be one the policy admits (403 otherwise); an upgrade without `Origin`
//! (not from a browser) is not judged by it.
//!
//! An upgrade that is let through then goes through every other request
//! phase like any request: authentication, authorisation and rate limits
//! (one unit per connection). The cache and body transforms do not apply
//! to it.

use http::header;

use crate::error::GatewayError;
use crate::http::upgrade::{is_upgrade_method, is_websocket_upgrade};
use crate::pipeline::context::RequestCtx;
use crate::pipeline::flow::Flow;

/// Admit or refuse a WebSocket upgrade; never answers early.
pub fn check<S>(ctx: &mut RequestCtx<S>) -> Result<Flow<S>, GatewayError> {
    if ctx.preflight.is_some() || !is_websocket_upgrade(&ctx.headers) {
        return Ok(Flow::Continue);
    }
    let Some(routed) = &ctx.route else {
        return Ok(Flow::Continue);
    };
    let route = &routed.route;
    if route.websocket.is_none() {
        return Err(GatewayError::UpgradeNotAllowed(
            "this route does not take WebSocket connections",
        ));
    }
    if !is_upgrade_method(&ctx.method) {
        return Err(GatewayError::UpgradeNotAllowed(
            "a WebSocket opening handshake is a GET request",
        ));
    }
    if let (Some(cors), Some(origin)) = (&route.cors, ctx.headers.get(header::ORIGIN))
        && !cors.policy.admits(origin)
    {
        return Err(GatewayError::OriginNotAllowed(
            origin.to_str().unwrap_or("(not text)").to_owned(),
        ));
    }
    ctx.websocket = true;
    Ok(Flow::Continue)
}
