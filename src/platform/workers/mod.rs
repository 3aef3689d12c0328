//! The Workers adapter: the platform seam implemented on the Cloudflare
//! Workers runtime, plus the runtime's entry points (the fetch handler and
//! the Durable Object classes; `shim.mjs` is the entry module that calls
//! them) and the bridge from promises to futures (`settle`). wasm32 only.
//!
//! This is the only place that names `worker::*` or JavaScript types. It
//! converts, and holds no policy. Bodies stay JavaScript `ReadableStream`s
//! from client to origin and back, so nothing here copies them through
//! wasm memory unless the core asks to read one.

mod convert;
mod entry;
mod random;
mod rate_limiter;
mod settle;

use std::future::Future;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::ReadableStream;

use super::{
    Background, Bodies, BodyPair, Clock, FetchError, FetchOptions, HttpClient, KvNamespace,
    KvStore, LogSink, MetricsSink, PlatformError, PublicJwk, Randomness, RateLimitStore,
    ResponseCache, Secrets, SignatureChecks, Timer, UnixMillis, Waiting, Wakeup, Wakeups,
};
use crate::body::Body;
use crate::observe::events::{Event, Level};
use crate::observe::metrics::MetricsPoint;
use crate::ratelimit::object::{LimitCall, LimitReply};

pub use rate_limiter::RateLimiter;

/// The binding of the rate-limit Durable Object namespace.
const RATE_LIMITER_BINDING: &str = "RATE_LIMITER";
/// The optional Workers Analytics Engine dataset for request metrics.
const ANALYTICS_BINDING: &str = "ANALYTICS";
/// A rate-limit object that has not answered by then counts as failed.
const RATE_LIMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

thread_local! {
    /// Whether this isolate's Worker has a metrics dataset bound, once a
    /// request has looked.
    static ANALYTICS_BOUND: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// The platform as seen from one request of a Worker: a cheap handle that
/// background work may keep past the response.
#[derive(Clone)]
pub struct WorkersPlatform {
    env: worker::Env,
    context: Option<Rc<worker::Context>>,
    analytics: Option<worker::AnalyticsEngineDataset>,
}

impl WorkersPlatform {
    pub fn new(env: worker::Env, context: Option<worker::Context>) -> Self {
        // An isolate's bindings never change: once it is known that no
        // dataset is bound, no request looks for one again.
        let analytics = if ANALYTICS_BOUND.get() == Some(false) {
            None
        } else {
            let dataset = env
                .get_binding::<worker::AnalyticsEngineDataset>(ANALYTICS_BINDING)
                .ok();
            ANALYTICS_BOUND.set(Some(dataset.is_some()));
            dataset
        };
        WorkersPlatform {
            env,
            context: context.map(Rc::new),
            analytics,
        }
    }

    /// Whether a metrics dataset is bound (then the data centre is worth
    /// reading from the request).
    pub fn has_analytics(&self) -> bool {
        self.analytics.is_some()
    }
}

fn js_failure(error: &JsValue) -> PlatformError {
    PlatformError(convert::js_error_text(error))
}

impl Clock for WorkersPlatform {
    fn now(&self) -> UnixMillis {
        let millis = js_sys::Date::now();
        UnixMillis(if millis.is_finite() && millis > 0.0 {
            millis as u64
        } else {
            0
        })
    }
}

impl KvStore for WorkersPlatform {
    async fn get_text(
        &self,
        namespace: KvNamespace,
        key: &str,
    ) -> Result<Option<String>, PlatformError> {
        let store = self
            .env
            .kv(namespace.binding())
            .map_err(|e| PlatformError(format!("KV binding {}: {e}", namespace.binding())))?;
        store
            .get(key)
            .text()
            .await
            .map_err(|e| PlatformError(format!("KV read of '{key}': {e}")))
    }

    async fn put_text(
        &self,
        namespace: KvNamespace,
        key: &str,
        value: &str,
    ) -> Result<(), PlatformError> {
        let store = self
            .env
            .kv(namespace.binding())
            .map_err(|e| PlatformError(format!("KV binding {}: {e}", namespace.binding())))?;
        store
            .put(key, value)
            .map_err(|e| PlatformError(format!("KV write of '{key}': {e}")))?
            .execute()
            .await
            .map_err(|e| PlatformError(format!("KV write of '{key}': {e}")))
    }
}

/// Cancels a body stream whose read ended before the stream did.
struct CancelUnlessDone<'a> {
    reader: &'a web_sys::ReadableStreamDefaultReader,
    done: bool,
}

impl Drop for CancelUnlessDone<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _cancelled = self.reader.cancel();
        }
    }
}

impl Timer for WorkersPlatform {
    async fn sleep(&self, duration: std::time::Duration) {
        worker::Delay::from(duration).await;
    }
}

impl Bodies for WorkersPlatform {
    type Stream = ReadableStream;

    async fn read_body(
        &self,
        body: Body<ReadableStream>,
        limit: usize,
    ) -> Result<Bytes, FetchError> {
        let stream = match body {
            Body::Empty => return Ok(Bytes::new()),
            Body::Full(bytes) if bytes.len() > limit => return Err(FetchError::TooLarge(limit)),
            Body::Full(bytes) => return Ok(bytes),
            Body::Stream(stream) => stream,
        };
        let unreadable = |e: JsValue| FetchError::Unreachable(convert::js_error_text(&e));
        let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
        // A read given up on (its future dropped, as when a leg runs out
        // of time) cancels the stream, so the origin's connection is let go.
        let mut guard = CancelUnlessDone {
            reader: &reader,
            done: false,
        };
        let mut collected = BytesMut::new();
        loop {
            let chunk = settle::settle(reader.read()).await;
            // A failed stream is over: nothing to cancel.
            guard.done = chunk.is_err();
            let chunk = chunk.map_err(unreadable)?;
            let done = js_sys::Reflect::get(&chunk, &JsValue::from_str("done"))
                .map_err(unreadable)?
                .is_truthy();
            if done {
                guard.done = true;
                return Ok(collected.freeze());
            }
            let value =
                js_sys::Reflect::get(&chunk, &JsValue::from_str("value")).map_err(unreadable)?;
            let Some(bytes) = value.dyn_ref::<js_sys::Uint8Array>() else {
                continue;
            };
            let length = bytes.length() as usize;
            if collected.len().saturating_add(length) > limit {
                // Stop the producer: nothing more of it will be read
                // (the guard cancels the stream).
                return Err(FetchError::TooLarge(limit));
            }
            let start = collected.len();
            collected.resize(start + length, 0);
            if let Some(slot) = collected.get_mut(start..) {
                bytes.copy_to(slot);
            }
        }
    }

    fn tee_body(
        &self,
        body: Body<ReadableStream>,
    ) -> Result<BodyPair<ReadableStream>, PlatformError> {
        match body {
            Body::Empty => Ok((Body::Empty, Body::Empty)),
            Body::Full(bytes) => Ok((Body::Full(bytes.clone()), Body::Full(bytes))),
            Body::Stream(stream) => {
                let pair = stream.tee();
                let first = pair
                    .get(0)
                    .dyn_into::<ReadableStream>()
                    .map_err(|e| js_failure(&e))?;
                let second = pair
                    .get(1)
                    .dyn_into::<ReadableStream>()
                    .map_err(|e| js_failure(&e))?;
                Ok((Body::Stream(first), Body::Stream(second)))
            }
        }
    }
}

impl HttpClient for WorkersPlatform {
    async fn fetch(
        &self,
        request: http::Request<Body<ReadableStream>>,
        options: FetchOptions,
    ) -> Result<http::Response<Body<ReadableStream>>, FetchError> {
        // The global fetch, through one JavaScript helper that also owns the
        // timeout: going through `worker::Fetch` would convert the request
        // and read its `cf`, and a timer raced from Rust costs several more
        // calls across the boundary.
        let timeout_ms = u32::try_from(options.timeout.as_millis()).unwrap_or(u32::MAX);
        let limit = request
            .extensions()
            .get::<super::RequestBodyLimit>()
            .copied();
        match convert::fetch(request, timeout_ms).await {
            Ok(response) => convert::upstream_response(response.unchecked_into())
                .map_err(FetchError::Unreachable),
            Err(error) if convert::is_timeout(&error) => Err(FetchError::Timeout(options.timeout)),
            Err(error) if convert::is_body_limit(&error) => Err(FetchError::RequestBodyTooLarge(
                limit.map_or(0, |limit| limit.0),
            )),
            Err(error) => Err(FetchError::Unreachable(convert::js_error_text(&error))),
        }
    }
}

/// `caches.default`, the data centre's cache.
fn default_cache() -> Result<web_sys::Cache, PlatformError> {
    let caches = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("caches"))
        .map_err(|e| js_failure(&e))?;
    js_sys::Reflect::get(&caches, &JsValue::from_str("default"))
        .map_err(|e| js_failure(&e))?
        .dyn_into::<web_sys::Cache>()
        .map_err(|_| PlatformError("the Cache API is not available here".to_owned()))
}

impl ResponseCache for WorkersPlatform {
    async fn cache_match(
        &self,
        key: &str,
    ) -> Result<Option<http::Response<Body<ReadableStream>>>, PlatformError> {
        let found = settle::settle(default_cache()?.match_with_str(key))
            .await
            .map_err(|e| js_failure(&e))?;
        if found.is_undefined() || found.is_null() {
            return Ok(None);
        }
        let response: web_sys::Response = found.dyn_into().map_err(|_| {
            PlatformError("the cache returned something else than a response".to_owned())
        })?;
        convert::upstream_response(response)
            .map(Some)
            .map_err(PlatformError)
    }

    async fn cache_put(
        &self,
        key: &str,
        response: http::Response<Body<ReadableStream>>,
    ) -> Result<(), PlatformError> {
        let response = convert::client_response(response).map_err(PlatformError)?;
        settle::settle(default_cache()?.put_with_str(key, &response))
            .await
            .map(|_| ())
            .map_err(|e| js_failure(&e))
    }

    async fn cache_delete(&self, key: &str) -> Result<bool, PlatformError> {
        settle::settle(default_cache()?.delete_with_str(key))
            .await
            .map(|deleted| deleted.is_truthy())
            .map_err(|e| js_failure(&e))
    }
}

impl Background for WorkersPlatform {
    fn wait_until(&self, work: impl Future<Output = ()> + 'static) {
        match &self.context {
            Some(context) => context.wait_until(work),
            // No event context (inside a Durable Object): run it now, on
            // the same isolate, without holding up anything.
            None => wasm_bindgen_futures::spawn_local(work),
        }
    }
}

#[wasm_bindgen::prelude::wasm_bindgen(inline_js = r#"
// One call to a rate-limit object, in one crossing: the reply's text, or
// a rejection (a TimeoutError when no whole reply came within timeoutMs).
export function portico_limit(namespace, name, body, timeoutMs) {
  const stub = namespace.get(namespace.idFromName(name));
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new DOMException("no answer in time", "TimeoutError")), timeoutMs);
  });
  // RPC (the object's `limit`): no request, response or body streams.
  const call = stub.limit(body);
  return Promise.race([call, late]).finally(() => clearTimeout(timer));
}
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    fn portico_limit(
        namespace: &JsValue,
        name: &str,
        body: &str,
        timeout_ms: u32,
    ) -> Result<js_sys::Promise, JsValue>;
}

/// The call goes through a small JavaScript helper: the stub, the RPC
/// call and the timeout are one crossing, and the reply arrives as one
/// string.
impl RateLimitStore for WorkersPlatform {
    async fn rate_limit(
        &self,
        object: &str,
        calls: &[LimitCall],
    ) -> Result<Vec<LimitReply>, PlatformError> {
        let failed = |what: &str, e: &dyn std::fmt::Display| PlatformError(format!("{what}: {e}"));
        let namespace = js_sys::Reflect::get(&self.env, &JsValue::from_str(RATE_LIMITER_BINDING))
            .ok()
            .filter(|namespace| namespace.is_object())
            .ok_or_else(|| PlatformError(format!("no {RATE_LIMITER_BINDING} binding")))?;
        let body = serde_json::to_string(calls).map_err(|e| failed("rate-limit call", &e))?;
        let timeout_ms = u32::try_from(RATE_LIMIT_TIMEOUT.as_millis()).unwrap_or(u32::MAX);
        let call = portico_limit(&namespace, object, &body, timeout_ms)
            .map_err(|e| failed("rate-limit object", &convert::js_error_text(&e)))?;
        let text = match settle::settle(call).await {
            Ok(text) => text.as_string().unwrap_or_default(),
            Err(e) if convert::is_timeout(&e) => {
                return Err(PlatformError(format!(
                    "rate-limit object gave no answer within {RATE_LIMIT_TIMEOUT:?}"
                )));
            }
            Err(e) => return Err(PlatformError(convert::js_error_text(&e))),
        };
        serde_json::from_str::<Vec<LimitReply>>(&text).map_err(|e| failed("rate-limit reply", &e))
    }
}

#[wasm_bindgen::prelude::wasm_bindgen(inline_js = r#"
// A wake-up that no other request settles: the waking request only sets
// a flag, and the waiter sees it on a timer of its own (every millisecond
// at first, then every 4 ms), so everything the waiter runs next runs in
// its own context. Resolves to true once woken, false at the limit.
export function portico_wakeup(limitMs) {
  const flag = { woken: false };
  const started = Date.now();
  const woken = new Promise((resolve) => {
    const look = () => {
      const waited = Date.now() - started;
      if (flag.woken) resolve(true);
      else if (waited >= limitMs) resolve(false);
      else setTimeout(look, waited < 16 ? 1 : 4);
    };
    setTimeout(look, 1);
  });
  return [() => { flag.woken = true; }, woken];
}
"#)]
extern "C" {
    fn portico_wakeup(limit_ms: f64) -> js_sys::Array;
}

/// The waiter's own timers carry it on: a promise of the waiter's that the
/// waking request resolved would run its reactions inside the waking
/// request's context on workerd (with the waiter's async context), and the
/// waiter's next I/O would fail there as "I/O on behalf of a different
/// request". A flag that only the waiter's own timer reads never crosses.
impl Wakeups for WorkersPlatform {
    fn wakeup(&self, limit: std::time::Duration) -> (Wakeup, Waiting) {
        // Whole milliseconds; a limit past f64's exact integers never
        // comes up (the limits are seconds).
        let limit_ms = limit.as_millis().min(u128::from(u32::MAX)) as f64;
        let pair = portico_wakeup(limit_ms);
        let (Ok(wake), Ok(promise)) = (
            pair.get(0).dyn_into::<js_sys::Function>(),
            pair.get(1).dyn_into::<js_sys::Promise>(),
        ) else {
            // Never so; if it were, the waiter would go on alone at once.
            return (Wakeup::new(|| ()), Box::pin(async { false }));
        };
        let woken = settle::settle(promise);
        let waiting = async move { woken.await.is_ok_and(|woken| woken.is_truthy()) };
        (
            Wakeup::new(move || {
                let _ = wake.call0(&JsValue::UNDEFINED);
            }),
            Box::pin(waiting),
        )
    }
}

#[wasm_bindgen::prelude::wasm_bindgen(module = "/src/platform/workers/webcrypto.js")]
extern "C" {
    fn portico_verify(
        alg: &str,
        id: &str,
        jwk: &str,
        signed: &[u8],
        signature: &[u8],
    ) -> js_sys::Promise;
}

/// WebCrypto's native RSA, ECDSA and EdDSA (webcrypto.js): an imported
/// key is kept for the isolate's life, so a new token costs one
/// `crypto.subtle.verify`.
impl SignatureChecks for WorkersPlatform {
    async fn check_signature(
        &self,
        alg: &str,
        key: &PublicJwk,
        signed: &[u8],
        signature: &[u8],
    ) -> Option<bool> {
        let verdict = portico_verify(alg, &key.id, &key.jwk, signed, signature);
        settle::settle(verdict).await.ok()?.as_bool()
    }
}

impl Secrets for WorkersPlatform {
    fn secret(&self, name: &str) -> Option<String> {
        self.env
            .secret(name)
            .map(|s| s.to_string())
            .or_else(|_| self.env.var(name).map(|v| v.to_string()))
            .ok()
    }
}

impl LogSink for WorkersPlatform {
    fn log(&self, event: &Event) {
        let line = event.to_json_line();
        match event.level() {
            Level::Info => worker::console_log!("{line}"),
            Level::Warn => worker::console_warn!("{line}"),
            Level::Error => worker::console_error!("{line}"),
        }
    }
}

impl MetricsSink for WorkersPlatform {
    fn wants_metrics(&self) -> bool {
        self.analytics.is_some()
    }

    fn record(&self, point: &MetricsPoint) {
        let Some(dataset) = &self.analytics else {
            return;
        };
        let written = worker::AnalyticsEngineDataPointBuilder::new()
            .indexes([point.index.as_str()])
            .blobs(point.blobs.iter().map(String::as_str))
            .doubles(point.doubles.iter().copied())
            .write_to(dataset);
        if let Err(error) = written {
            worker::console_error!(
                "{{\"level\":\"error\",\"event\":\"metrics_write_failed\",\"error\":{:?}}}",
                error.to_string()
            );
        }
    }
}

impl Randomness for WorkersPlatform {
    fn new_request_id(&self) -> String {
        random::uuid_v4()
    }

    fn fill_random(&self, bytes: &mut [u8]) {
        random::fill(bytes);
    }
}
