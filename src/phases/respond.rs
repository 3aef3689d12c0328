//! Phase "respond": the last touches every response gets, whoever made it:
//! the request id and `traceparent` headers, and no body on a response to
//! HEAD.

use http::{Method, Response};

use crate::body::Body;
use crate::observe::trace::TRACEPARENT;
use crate::pipeline::context::RequestCtx;

/// Stamp the request id and trace, and drop the body of a HEAD response.
pub fn finish<S>(ctx: &RequestCtx<S>, mut response: Response<Body<S>>) -> Response<Body<S>> {
    let headers = response.headers_mut();
    if let Some(value) = &ctx.request_id_value {
        headers.insert(ctx.request_id_header(), value.clone());
    }
    headers.insert(TRACEPARENT, ctx.traceparent.clone());
    if ctx.method == Method::HEAD {
        *response.body_mut() = Body::Empty;
    }
    response
}
