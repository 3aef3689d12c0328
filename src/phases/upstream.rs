//! Phase "upstream": send the request to the service and wait for its
//! response headers, within the route's timeout.
//!
//! Redirects come back to the client as they are. Any response the service
//! gives, 5xx included, is the service's answer and passes through; only
//! the absence of a response becomes a gateway error: 504 on timeout, 502
//! when the service cannot be reached. Neither reveals the service's
//! address to the client.

use std::time::Duration;

use crate::body::Body;
use crate::error::GatewayError;
use crate::platform::{FetchError, FetchOptions, HttpClient};

/// Send `request` and map a failure to the gateway error it means.
pub async fn send<P: HttpClient>(
    platform: &P,
    request: http::Request<Body<P::Stream>>,
    timeout: Duration,
) -> Result<http::Response<Body<P::Stream>>, GatewayError> {
    platform
        .fetch(request, FetchOptions { timeout })
        .await
        .map_err(|error| match error {
            FetchError::Timeout(after) => GatewayError::UpstreamTimeout(after),
            FetchError::Unreachable(reason) => GatewayError::UpstreamUnreachable(reason),
            FetchError::TooLarge(limit) => {
                GatewayError::UpstreamUnreachable(format!("response over {limit} bytes"))
            }
        })
}
