//! Phase "body limit": refuse a request body larger than the route's
//! `max_body_bytes` (or the config-wide default) before any upstream call.
//!
//! A body that declares its length (`Content-Length`) over the limit gets
//! 413 here, before authentication: nothing of it is read or sent. A body
//! of undeclared length (chunked) cannot be judged yet: the limit goes
//! with the upstream request, the platform counts the bytes as they
//! stream, and the upstream request is abandoned once they pass it (the
//! client then gets the same 413). Bodies are never buffered for this.

use http::header;

use crate::error::GatewayError;
use crate::pipeline::context::RequestCtx;
use crate::pipeline::flow::Flow;

/// Check the declared length; arm the streamed count. Never answers early.
pub fn check<S>(ctx: &mut RequestCtx<S>) -> Result<Flow<S>, GatewayError> {
    let Some(limit) = ctx
        .route
        .as_ref()
        .and_then(|routed| routed.route.max_body_bytes)
    else {
        return Ok(Flow::Continue);
    };
    if ctx.preflight.is_some() || ctx.body.is_empty() {
        return Ok(Flow::Continue);
    }
    match declared_length(&ctx.headers) {
        Some(length) if length > limit => Err(too_large(limit)),
        Some(_) => Ok(Flow::Continue),
        None => {
            ctx.streamed_body_limit = Some(limit);
            Ok(Flow::Continue)
        }
    }
}

/// The body's declared length, if it declares exactly one valid length.
pub fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    let mut values = headers.get_all(header::CONTENT_LENGTH).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    value.to_str().ok()?.trim().parse().ok()
}

fn too_large(limit: u64) -> GatewayError {
    GatewayError::RequestBodyTooLarge(usize::try_from(limit).unwrap_or(usize::MAX))
}
