//! The request phases, in the order every request goes through them.
//!
//! | phase        | module          | what it decides                                   |
//! |--------------|-----------------|---------------------------------------------------|
//! | request id   | [`request_id`]  | keep the client's well-formed id or mint one      |
//! | match route  | [`route`]       | which route and service; 400, 404 or 405 if none  |
//! | forward      | [`forward`]     | the upstream request: URL, path, header hygiene   |
//! | upstream     | [`upstream`]    | send it; 502 or 504 when the service fails        |
//! | respond      | [`respond`]     | the client response: hop-by-hop out, id in        |
//! | log          | [`log`]         | one structured access-log event                   |
//!
//! Authentication, authorisation, rate limiting, caching, transformation,
//! load balancing and aggregation slot in between "match route" and
//! "upstream" as their own modules. Each phase is mostly pure functions
//! over the request's parts; only `upstream` does I/O, through the seam.
//! [`crate::gateway::Gateway::handle`] runs them in order.

pub mod forward;
pub mod log;
pub mod request_id;
pub mod respond;
pub mod route;
pub mod upstream;
