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
//!
//! Every distinct limit value (an API key, a user, a client network) is an
//! object of its own, so storage is emptied once it stops mattering: with
//! its states the object stores when they all decide as no state would
//! ([`LimiterObject::idle_at`]: the bucket full again, the window or log
//! run out), and an alarm then deletes everything. An object that is used
//! again meanwhile finds its idle time moved on and sets the alarm again.

use std::cell::{Cell, RefCell};

use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::{DurableObject, Env, Request, Response, State, Storage, durable_object};

use crate::problem::{PROBLEM_JSON, TYPE_PREFIX};
use crate::ratelimit::algorithm;
use crate::ratelimit::object::{LimitCall, LimiterObject, Sweep};

/// The storage key of the idle time. State keys always hold four colons
/// (`policy:algorithm:limit:period:burst`), so this one cannot collide.
const IDLE_AT_KEY: &str = "idle_at";

#[durable_object]
pub struct RateLimiter {
    state: State,
    limiter: RefCell<LimiterObject>,
    /// Whether the stored idle time has been read into `limiter`.
    idle_known: Cell<bool>,
    /// Whether this instance has set the alarm since the last sweep.
    armed: Cell<bool>,
}

impl RateLimiter {
    /// Read the idle time an earlier instance stored, once per instance.
    async fn learn_idle_at(&self, storage: &Storage) -> worker::Result<()> {
        if self.idle_known.get() {
            return Ok(());
        }
        let stored: Option<String> = storage.get(IDLE_AT_KEY).await?;
        if let Some(at) = stored.and_then(|text| text.parse::<u64>().ok()) {
            self.limiter.borrow_mut().note_idle_at(at);
        }
        self.idle_known.set(true);
        Ok(())
    }
}

impl RateLimiter {
    /// Apply a batch of calls (JSON, as the gateway sends them); the
    /// replies, as JSON, in the calls' order.
    async fn apply(&self, body: &str) -> Result<String, Refused> {
        let calls: Vec<LimitCall> = serde_json::from_str(body)
            .map_err(|error| Refused::new(400, "Malformed rate-limit call", error))?;
        let storage = self.state.storage();
        for check in calls.iter().flat_map(|call| &call.checks) {
            if self.limiter.borrow().has(&check.state_key) {
                continue;
            }
            // A state that cannot be read is an error, never a fresh bucket:
            // starting over would admit what the stored state refuses.
            let stored: Option<String> = storage
                .get(&check.state_key)
                .await
                .map_err(|error| Refused::new(503, "Rate-limit state unreadable", error))?;
            let parsed = stored.map(|text| serde_json::from_str::<algorithm::State>(&text));
            if let Some(Err(error)) = parsed {
                return Err(Refused::new(500, "Rate-limit state unparseable", error));
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
        if !changed.is_empty() {
            self.learn_idle_at(&storage)
                .await
                .map_err(|error| Refused::new(503, "Rate-limit state unreadable", error))?;
            let unwritable =
                |error: worker::Error| Refused::new(503, "Rate-limit state unwritable", error);
            // Every changed state and the idle time, in one write.
            let values = js_sys::Object::new();
            for (key, state) in changed {
                let text = serde_json::to_string(&state)
                    .map_err(|error| Refused::new(500, "Unstorable rate-limit state", error))?;
                js_sys::Reflect::set(&values, &key.into(), &text.into())
                    .map_err(|error| unwritable(error.into()))?;
            }
            let idle_at = self.limiter.borrow().idle_at();
            if let Some(at) = idle_at {
                js_sys::Reflect::set(&values, &IDLE_AT_KEY.into(), &JsValue::from(at.to_string()))
                    .map_err(|error| unwritable(error.into()))?;
            }
            storage.put_multiple_raw(values).await.map_err(unwritable)?;
            // `u64::MAX`: a quota that never refills; no alarm can help.
            let alarm_at = idle_at.filter(|&at| at != u64::MAX);
            if let (Some(at), false) = (alarm_at, self.armed.get()) {
                storage.set_alarm(at_time(at)).await.map_err(unwritable)?;
                self.armed.set(true);
            }
        }
        serde_json::to_string(&replies)
            .map_err(|error| Refused::new(500, "Unsendable rate-limit reply", error))
    }
}

/// The object's RPC method, `stub.limit(calls)`: the JSON replies, or a
/// rejection saying why there are none. Cheaper than `fetch` for the
/// caller and the object alike: no request, response or body streams.
#[wasm_bindgen]
impl RateLimiter {
    #[wasm_bindgen(js_name = limit)]
    pub async fn limit(&self, calls: String) -> Result<String, JsValue> {
        self.apply(&calls).await.map_err(|refused| {
            js_sys::Error::new(&format!("{}: {}", refused.title, refused.detail)).into()
        })
    }
}

/// Why a batch was not applied, as its problem says it.
struct Refused {
    status: u16,
    title: &'static str,
    detail: String,
}

impl Refused {
    fn new(status: u16, title: &'static str, detail: impl std::fmt::Display) -> Refused {
        Refused {
            status,
            title,
            detail: detail.to_string(),
        }
    }
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
            idle_known: Cell::new(false),
            armed: Cell::new(false),
        }
    }

    /// The same call over HTTP (`POST` with the calls as its body), for
    /// callers that cannot use RPC.
    async fn fetch(&self, mut request: Request) -> worker::Result<Response> {
        let body = request.text().await?;
        match self.apply(&body).await {
            Ok(replies) => {
                let mut response = Response::ok(replies)?;
                response
                    .headers_mut()
                    .set("content-type", "application/json")?;
                Ok(response)
            }
            Err(refused) => problem(refused.status, refused.title, &refused.detail),
        }
    }

    /// Empty the storage if every state has stopped mattering, else look
    /// again when the last one does.
    async fn alarm(&self) -> worker::Result<Response> {
        let storage = self.state.storage();
        self.learn_idle_at(&storage).await?;
        let now = worker::Date::now().as_millis();
        let sweep = self.limiter.borrow_mut().sweep(now);
        match sweep {
            Sweep::Cleared => {
                storage.delete_all().await?;
                self.armed.set(false);
            }
            Sweep::Later(u64::MAX) => self.armed.set(false),
            Sweep::Later(at) => {
                storage.set_alarm(at_time(at)).await?;
                self.armed.set(true);
            }
        }
        Response::empty()
    }
}

/// An alarm time from milliseconds since the epoch.
fn at_time(at: u64) -> worker::ScheduledTime {
    // Milliseconds stay exact in an f64 until the year 287,396.
    #[allow(clippy::cast_precision_loss)]
    let at = at as f64;
    worker::ScheduledTime::new(js_sys::Date::new(&JsValue::from(at)))
}
