//! What a request phase tells the pipeline: go on, or answer now.

use crate::body::Body;

/// The outcome of a request phase that did not fail.
#[derive(Debug)]
pub enum Flow<S> {
    /// Go on to the next phase.
    Continue,
    /// Answer with this response now; the remaining request phases are
    /// skipped, the response phases still run.
    Respond(http::Response<Body<S>>),
}
