//! The `RateLimiter` Durable Object class (binding `RATE_LIMITER`).
//!
//! It will be the single writer of rate-limit state, one object per limit
//! key. The class is declared now so deployments carry its SQLite-backed
//! migration from the start; until limits are configured it answers every
//! call with a 501 problem.

use worker::{DurableObject, Env, Request, Response, State, durable_object};

use crate::problem::{PROBLEM_JSON, TYPE_PREFIX};

#[durable_object]
pub struct RateLimiter {
    _state: State,
    _env: Env,
}

impl DurableObject for RateLimiter {
    fn new(state: State, env: Env) -> Self {
        RateLimiter {
            _state: state,
            _env: env,
        }
    }

    async fn fetch(&self, _request: Request) -> worker::Result<Response> {
        let body = format!(
            r#"{{"type":"{TYPE_PREFIX}not-implemented","title":"Not implemented","status":501,"detail":"No rate-limit operations are defined yet."}}"#
        );
        let mut response = Response::ok(body)?.with_status(501);
        response.headers_mut().set("content-type", PROBLEM_JSON)?;
        Ok(response)
    }
}
