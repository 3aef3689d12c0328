//! The Workers adapter: the platform seam implemented with the `worker`
//! crate, plus the runtime's entry points (the fetch handler and the
//! Durable Object classes). wasm32 only.
//!
//! This is the only place that names `worker::*` or JavaScript types. It
//! converts, and holds no policy. Bodies stay JavaScript `ReadableStream`s
//! from client to origin and back, so nothing here copies them through
//! wasm memory.

mod convert;
mod entry;
mod rate_limiter;

use std::pin::pin;

use bytes::Bytes;
use futures::future::{Either, select};
use wasm_bindgen::JsCast;
use web_sys::ReadableStream;

use super::{
    Clock, FetchError, FetchOptions, HttpClient, KvNamespace, KvStore, LogSink, PlatformError,
    RateLimitStore, RequestIds, Secrets, UnixMillis,
};
use crate::ratelimit::object::{LimitCall, LimitReply};

/// The binding of the rate-limit Durable Object namespace.
const RATE_LIMITER_BINDING: &str = "RATE_LIMITER";
/// A rate-limit object that has not answered by then counts as failed.
const RATE_LIMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
use crate::body::Body;
use crate::events::{Event, Level};

pub use rate_limiter::RateLimiter;

/// The platform as seen from one request of a Worker.
pub struct WorkersPlatform {
    env: worker::Env,
}

impl WorkersPlatform {
    pub fn new(env: worker::Env) -> Self {
        WorkersPlatform { env }
    }
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
}

impl HttpClient for WorkersPlatform {
    type Stream = ReadableStream;

    async fn fetch(
        &self,
        request: http::Request<Body<ReadableStream>>,
        options: FetchOptions,
    ) -> Result<http::Response<Body<ReadableStream>>, FetchError> {
        let controller = web_sys::AbortController::new()
            .map_err(|e| FetchError::Unreachable(convert::js_error_text(&e)))?;
        let outbound = convert::outbound_request(request, &controller.signal())
            .map_err(FetchError::Unreachable)?;
        // The global fetch, straight from web-sys: going through
        // `worker::Fetch` would convert the request and read its `cf`.
        let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
        let send = pin!(wasm_bindgen_futures::JsFuture::from(
            global.fetch_with_request(&outbound)
        ));
        let timer = pin!(worker::Delay::from(options.timeout));
        match select(send, timer).await {
            Either::Left((Ok(response), _)) => {
                convert::upstream_response(response.unchecked_into())
                    .map_err(FetchError::Unreachable)
            }
            Either::Left((Err(error), _)) => {
                Err(FetchError::Unreachable(convert::js_error_text(&error)))
            }
            Either::Right(_) => {
                controller.abort();
                Err(FetchError::Timeout(options.timeout))
            }
        }
    }

    async fn read_body(
        &self,
        body: Body<ReadableStream>,
        limit: usize,
    ) -> Result<Bytes, FetchError> {
        let stream = match body {
            Body::Empty => return Ok(Bytes::new()),
            Body::Full(bytes) => return check_length(bytes, limit),
            Body::Stream(stream) => stream,
        };
        // Let the runtime collect the stream: a Response over it reads it
        // to one ArrayBuffer without a trip through wasm per chunk.
        let response = web_sys::Response::new_with_opt_readable_stream(Some(&stream))
            .map_err(|e| FetchError::Unreachable(convert::js_error_text(&e)))?;
        let promise = response
            .array_buffer()
            .map_err(|e| FetchError::Unreachable(convert::js_error_text(&e)))?;
        let buffer = wasm_bindgen_futures::JsFuture::from(promise)
            .await
            .map_err(|e| FetchError::Unreachable(convert::js_error_text(&e)))?;
        check_length(
            Bytes::from(js_sys::Uint8Array::new(&buffer).to_vec()),
            limit,
        )
    }
}

fn check_length(bytes: Bytes, limit: usize) -> Result<Bytes, FetchError> {
    if bytes.len() > limit {
        return Err(FetchError::TooLarge(limit));
    }
    Ok(bytes)
}

impl RateLimitStore for WorkersPlatform {
    async fn rate_limit(
        &self,
        object: &str,
        call: &LimitCall,
    ) -> Result<LimitReply, PlatformError> {
        let failed = |what: &str, e: &dyn std::fmt::Display| PlatformError(format!("{what}: {e}"));
        let namespace = self
            .env
            .durable_object(RATE_LIMITER_BINDING)
            .map_err(|e| failed("rate-limit binding", &e))?;
        let stub = namespace
            .id_from_name(object)
            .and_then(|id| id.get_stub())
            .map_err(|e| failed("rate-limit object", &e))?;
        let body = serde_json::to_string(call).map_err(|e| failed("rate-limit call", &e))?;
        let mut init = worker::RequestInit::new();
        init.with_method(worker::Method::Post)
            .with_body(Some(wasm_bindgen::JsValue::from_str(&body)));
        let request = worker::Request::new_with_init("https://rate-limiter.internal/apply", &init)
            .map_err(|e| failed("rate-limit request", &e))?;
        let send = pin!(stub.fetch_with_request(request));
        let timer = pin!(worker::Delay::from(RATE_LIMIT_TIMEOUT));
        let mut response = match select(send, timer).await {
            Either::Left((Ok(response), _)) => response,
            Either::Left((Err(e), _)) => return Err(failed("rate-limit object", &e)),
            Either::Right(_) => {
                return Err(PlatformError(format!(
                    "rate-limit object gave no answer within {RATE_LIMIT_TIMEOUT:?}"
                )));
            }
        };
        if response.status_code() != 200 {
            return Err(PlatformError(format!(
                "rate-limit object answered {}",
                response.status_code()
            )));
        }
        response
            .json::<LimitReply>()
            .await
            .map_err(|e| failed("rate-limit reply", &e))
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

impl RequestIds for WorkersPlatform {
    fn new_request_id(&self) -> String {
        js_sys::Reflect::get(&js_sys::global(), &"crypto".into())
            .ok()
            .and_then(|crypto| crypto.dyn_into::<web_sys::Crypto>().ok())
            .map(|crypto| crypto.random_uuid())
            .unwrap_or_else(|| format!("{:016x}", (js_sys::Math::random() * 1e16) as u64))
    }
}
