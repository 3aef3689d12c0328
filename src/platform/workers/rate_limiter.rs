//! The `RateLimiter` Durable Object class (binding `RATE_LIMITER`): the
//! single writer for one limit key.
//!
//! It applies [`LimiterObject`] (pure arithmetic from the core) to its
//! state, which it keeps in memory and in its SQLite-backed storage, so an
//! evicted or restarted object picks up where it left off instead of
//! handing out a fresh bucket. States are read from storage the first time
//! a policy is seen and written back after every change, before the answer
//! leaves; the runtime's input and output gates make the read-decide-write
//! of each call atomic with respect to the others.
//!
//! A call carries a batch: the calls an isolate coalesced while its
//! previous call was in flight, applied in order, each as if alone; each
//! changed state is written once per batch.

use std::cell::RefCell;

use worker::{DurableObject, Env, Request, Response, State, durable_object};

use crate::problem::{PROBLEM_JSON, TYPE_PREFIX};
use crate::ratelimit::algorithm;
use crate::ratelimit::object::{LimitCall, LimiterObject};

#[durable_object]
pub struct RateLimiter {
    state: State,
    limiter: RefCell<LimiterObject>,
}

fn problem(status: u16, title: &str, detail: &str) -> worker::Result<Response> {
    let body = serde_json::json!({
        "type": format!("{TYPE_PREFIX}rate-limit-object"),
        "title": title,
        "status": status,
        "detail": detail,
    });
    let mut response = Response::from_json(&body)?.with_status(status);
    response.headers_mut().set("content-type", PROBLEM_JSON)?;
    Ok(response)
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        RateLimiter {
            state,
            limiter: RefCell::new(LimiterObject::new()),
        }
    }

    async fn fetch(&self, mut request: Request) -> worker::Result<Response> {
        let calls: Vec<LimitCall> = match request.json().await {
            Ok(calls) => calls,
            Err(error) => return problem(400, "Malformed rate-limit call", &error.to_string()),
        };
        let storage = self.state.storage();
        for check in calls.iter().flat_map(|call| &call.checks) {
            if self.limiter.borrow().has(&check.state_key) {
                continue;
            }
            // A state that cannot be read is an error, never a fresh bucket:
            // starting over would admit what the stored state refuses.
            let stored: Option<String> = match storage.get(&check.state_key).await {
                Ok(stored) => stored,
                Err(error) => {
                    return problem(503, "Rate-limit state unreadable", &error.to_string());
                }
            };
            let parsed = stored.map(|text| serde_json::from_str::<algorithm::State>(&text));
            if let Some(Err(error)) = &parsed {
                return problem(500, "Rate-limit state unparseable", &error.to_string());
            }
            if let Some(Ok(state)) = parsed {
                let mut limiter = self.limiter.borrow_mut();
                // Another call may have loaded (and changed) it meanwhile.
                if !limiter.has(&check.state_key) {
                    limiter.load(check.state_key.clone(), state);
                }
            }
        }
        let now = worker::Date::now().as_millis();
        let (replies, changed) = self.limiter.borrow_mut().apply_all(now, &calls);
        for (key, state) in changed {
            match serde_json::to_string(&state) {
                Ok(text) => storage.put(&key, text).await?,
                Err(error) => {
                    return problem(500, "Unstorable rate-limit state", &error.to_string());
                }
            }
        }
        Response::from_json(&replies)
    }
}
