//! Phase "upstream": choose the target for the route's service, shape the
//! request it receives ([`super::forward`]) and call it
//! ([`crate::upstream`]).
//!
//! Redirects come back to the client as they are. Any response the service
//! gives, 5xx included, is the service's answer and passes through, less
//! its hop-by-hop headers; only the absence of a response becomes a
//! gateway error: 504 on timeout, 502 when the service cannot be reached.
//! Neither reveals the service's address to the client.

use crate::body::Body;
use crate::config::Config;
use crate::error::GatewayError;
use crate::http::strip_hop_by_hop;
use crate::phases::forward;
use crate::pipeline::context::RequestCtx;
use crate::platform::{Clock, HttpClient, Secrets};
use crate::upstream::single;

/// Send the request upstream; the upstream's response.
pub async fn run<P>(
    platform: &P,
    config: &Config,
    ctx: &mut RequestCtx<P::Stream>,
) -> Result<http::Response<Body<P::Stream>>, GatewayError>
where
    P: Clock + HttpClient + Secrets,
{
    let route = match &ctx.route {
        Some(routed) => std::rc::Rc::clone(&routed.route),
        None => return Err(GatewayError::Internal("no route to send to".to_owned())),
    };
    let origin = route.service.upstream.choose()?;
    let request = forward::build(platform, config, ctx, origin)?;
    let started = platform.now();
    let sent = single::send(platform, request, route.timeout).await;
    ctx.timings.upstream = Some(platform.now().millis_since(started));
    ctx.upstream.target = Some(origin.authority.as_str().to_owned());
    ctx.upstream.attempts = sent.attempts;
    let mut response = sent.response?;
    ctx.upstream.status = Some(response.status().as_u16());
    strip_hop_by_hop(response.headers_mut());
    Ok(response)
}
