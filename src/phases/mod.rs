//! The request phases, in the order every request goes through them.
//!
//! | phase        | module          | what it decides                                   |
//! |--------------|-----------------|---------------------------------------------------|
//! | request id   | [`request_id`]  | keep the client's well-formed id or mint one      |
//! | match route  | [`route`]       | which route and service; 400, 404 or 405 if none  |
//! | authenticate | [`authenticate`]| who is calling; 401, or 503 if it cannot be told  |
//! | authorize    | [`authorize`]   | required roles and scopes; 403 if missing         |
//! | rate limit   | [`rate_limit`]  | every policy admits it; 429, or 503 if closed     |
//! | forward      | [`forward`]     | the upstream request: URL, headers, identity      |
//! | upstream     | [`upstream`]    | send it; 502 or 504 when the service fails        |
//! | respond      | [`respond`]     | the client response: hop-by-hop out, id in        |
//! | log          | [`log`]         | one structured access-log event                   |
//!
//! Caching, transformation, load balancing and aggregation slot in between
//! "rate limit" and "upstream" as their own modules. Each phase is mostly pure functions
//! over the request's parts; only `upstream` does I/O, through the seam.
//! [`crate::gateway::Gateway::handle`] runs them in order.

pub mod authenticate;
pub mod authorize;
pub mod forward;
pub mod log;
pub mod rate_limit;
pub mod request_id;
pub mod respond;
pub mod route;
pub mod upstream;
