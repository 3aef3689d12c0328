//! Phase "respond": finish the response the client receives, whether it
//! came from the upstream or from the gateway.
//!
//! Hop-by-hop headers from the upstream are removed, the request id header
//! is set, and a response to HEAD carries no body.

use http::{HeaderName, HeaderValue, Method, Response};

use crate::body::Body;
use crate::phases::forward::strip_hop_by_hop;

/// Clean an upstream response for the client.
pub fn from_upstream<S>(mut response: Response<Body<S>>) -> Response<Body<S>> {
    strip_hop_by_hop(response.headers_mut());
    response
}

/// Stamp the request id and drop the body of a HEAD response.
pub fn finish<S>(
    mut response: Response<Body<S>>,
    method: &Method,
    request_id_header: &HeaderName,
    request_id: &str,
) -> Response<Body<S>> {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response
            .headers_mut()
            .insert(request_id_header.clone(), value);
    }
    if method == Method::HEAD {
        *response.body_mut() = Body::Empty;
    }
    response
}
