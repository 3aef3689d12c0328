//! The request phases, one module each. [`crate::pipeline`] runs them in
//! their fixed order and documents the contract (which may answer early,
//! which run on every response).
//!
//! | phase          | module           | what it decides                                     |
//! |----------------|------------------|-----------------------------------------------------|
//! | request id     | [`request_id`]   | keep the client's well-formed id or mint one        |
//! | match route    | [`route`]        | which route and service; 400, 404 or 405 if none    |
//! | CORS           | [`cors`]         | answer preflights; CORS headers on every response   |
//! | upgrade        | [`upgrade`]      | may this WebSocket upgrade go on? 400 or 403 if not  |
//! | body limit     | [`body_limit`]   | the route's `max_body_bytes`; 413 over it           |
//! | failed-auth    | [`auth_throttle`]| each address's budget of failed attempts; 429       |
//! | authenticate   | [`authenticate`] | who is calling; 401, or 503 if it cannot be told    |
//! | authorize      | [`authorize`]    | required roles and scopes; 403 if missing           |
//! | rate limit     | [`rate_limit`]   | every policy admits it; 429, or 503 if closed       |
//! | cache          | [`cache`]        | answer from the cache; store and share what came    |
//! | transform      | [`transform`]    | rewrite bodies; header and query rules; 400/413/415/502 |
//! | forward        | [`forward`]      | the upstream request: URL, headers, identity, trace |
//! | upstream       | [`upstream`]     | choose the target and call it; 502 or 504           |
//! | (aggregate)    | [`aggregate`]    | an aggregate route's legs, merged; 502 or 504       |
//! | respond        | [`respond`]      | request id and trace on the response; HEAD bodies   |
//! | log            | [`log`]          | one access-log event (sampled) and one data point   |
//!
//! Each phase is a function of the per-request context
//! ([`crate::pipeline::RequestCtx`]) and mostly pure; the ones that do
//! I/O (authenticate, rate limit, upstream, the operators' API) do it only
//! through the platform seam.

pub mod aggregate;
pub mod auth_throttle;
pub mod authenticate;
pub mod authorize;
pub mod body_limit;
pub mod cache;
pub mod cors;
pub mod forward;
pub mod log;
pub mod rate_limit;
pub mod request_id;
pub mod respond;
pub mod route;
pub mod transform;
pub mod upgrade;
pub mod upstream;
