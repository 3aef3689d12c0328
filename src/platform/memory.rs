//! An in-memory platform with a fake clock: the seam's second
//! implementation, for native tests and the CLI.
//!
//! Time only moves when a test moves it; origins are closures keyed by
//! `host:port`; every outbound request and log event is recorded so tests
//! can assert on them. Nothing here may touch the network or the real clock.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

use super::{
    Clock, FetchError, FetchOptions, HttpClient, KvNamespace, KvStore, LogSink, PlatformError,
    RateLimitStore, RequestIds, Secrets, UnixMillis,
};
use crate::body::Body;
use crate::events::Event;
use crate::ratelimit::object::{LimitCall, LimitReply, LimiterObject};

/// What a fake origin does with a request.
#[derive(Debug)]
pub enum OriginReply {
    /// Answer at once.
    Respond(http::Response<Bytes>),
    /// Answer after `Duration` of fake time; a delay at or over the fetch
    /// timeout yields [`FetchError::Timeout`] instead.
    Delayed(Duration, http::Response<Bytes>),
    /// Refuse the connection.
    Refuse,
}

/// An outbound request as the fake origin received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: http::Method,
    pub uri: http::Uri,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub timeout: Duration,
}

type OriginHandler = Rc<dyn Fn(&RecordedRequest) -> OriginReply>;

/// The in-memory platform. Single-threaded, like a Workers isolate.
pub struct MemoryPlatform {
    now: Cell<u64>,
    kv: RefCell<HashMap<(KvNamespace, String), String>>,
    kv_failure: RefCell<Option<String>>,
    kv_reads: Cell<usize>,
    origins: RefCell<HashMap<String, OriginHandler>>,
    sent: RefCell<Vec<RecordedRequest>>,
    events: RefCell<Vec<Event>>,
    next_id: Cell<u64>,
    secrets: RefCell<HashMap<String, String>>,
    keep_events: Cell<bool>,
    limiters: RefCell<HashMap<String, LimiterObject>>,
    limiter_failure: RefCell<Option<String>>,
    limiter_calls: Cell<usize>,
}

impl Default for MemoryPlatform {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryPlatform {
    /// A platform whose clock reads 2026-01-01T00:00:00Z.
    pub fn new() -> Self {
        MemoryPlatform {
            now: Cell::new(1_767_225_600_000),
            kv: RefCell::default(),
            kv_failure: RefCell::default(),
            kv_reads: Cell::new(0),
            origins: RefCell::default(),
            sent: RefCell::default(),
            events: RefCell::default(),
            next_id: Cell::new(1),
            secrets: RefCell::default(),
            keep_events: Cell::new(true),
            limiters: RefCell::default(),
            limiter_failure: RefCell::default(),
            limiter_calls: Cell::new(0),
        }
    }

    /// Move the fake clock forward.
    pub fn advance(&self, by: Duration) {
        let millis = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.now.set(self.now.get().saturating_add(millis));
    }

    /// Set the fake clock, backwards if a test wants to see that.
    pub fn set_now(&self, now: UnixMillis) {
        self.now.set(now.0);
    }

    pub fn kv_put(&self, namespace: KvNamespace, key: &str, value: &str) {
        self.kv
            .borrow_mut()
            .insert((namespace, key.to_owned()), value.to_owned());
    }

    pub fn kv_delete(&self, namespace: KvNamespace, key: &str) {
        self.kv.borrow_mut().remove(&(namespace, key.to_owned()));
    }

    /// Make every KV read fail with `reason` (or succeed again with `None`).
    pub fn fail_kv(&self, reason: Option<&str>) {
        *self.kv_failure.borrow_mut() = reason.map(str::to_owned);
    }

    /// How many KV reads the gateway has made.
    pub fn kv_reads(&self) -> usize {
        self.kv_reads.get()
    }

    /// Serve requests for `authority` (`host:port`, as in the URL) with `handler`.
    pub fn add_origin(
        &self,
        authority: &str,
        handler: impl Fn(&RecordedRequest) -> OriginReply + 'static,
    ) {
        self.origins
            .borrow_mut()
            .insert(authority.to_owned(), Rc::new(handler));
    }

    /// Set a Worker secret.
    pub fn set_secret(&self, name: &str, value: &str) {
        self.secrets
            .borrow_mut()
            .insert(name.to_owned(), value.to_owned());
    }

    /// Outbound requests sent so far, oldest first.
    pub fn sent(&self) -> Vec<RecordedRequest> {
        self.sent.borrow().clone()
    }

    /// Make every rate-limit object call fail with `reason` (or work again).
    pub fn fail_limiters(&self, reason: Option<&str>) {
        *self.limiter_failure.borrow_mut() = reason.map(str::to_owned);
    }

    /// How many calls reached the rate-limit objects.
    pub fn limiter_calls(&self) -> usize {
        self.limiter_calls.get()
    }

    /// The names of the rate-limit objects created so far.
    pub fn object_names(&self) -> Vec<String> {
        self.limiters.borrow().keys().cloned().collect()
    }

    /// Serialise log events as the Workers adapter does, then drop them
    /// instead of keeping them (for benchmarks).
    pub fn discard_events(&self) {
        self.keep_events.set(false);
    }

    /// Log events emitted so far, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.events.borrow().clone()
    }
}

impl Clock for MemoryPlatform {
    fn now(&self) -> UnixMillis {
        UnixMillis(self.now.get())
    }
}

impl KvStore for MemoryPlatform {
    async fn get_text(
        &self,
        namespace: KvNamespace,
        key: &str,
    ) -> Result<Option<String>, PlatformError> {
        self.kv_reads.set(self.kv_reads.get() + 1);
        if let Some(reason) = self.kv_failure.borrow().as_ref() {
            return Err(PlatformError(reason.clone()));
        }
        Ok(self.kv.borrow().get(&(namespace, key.to_owned())).cloned())
    }
}

impl HttpClient for MemoryPlatform {
    type Stream = Bytes;

    async fn fetch(
        &self,
        request: http::Request<Body<Bytes>>,
        options: FetchOptions,
    ) -> Result<http::Response<Body<Bytes>>, FetchError> {
        let (parts, body) = request.into_parts();
        let body = match body {
            Body::Empty => Bytes::new(),
            Body::Full(bytes) | Body::Stream(bytes) => bytes,
        };
        let recorded = RecordedRequest {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
            timeout: options.timeout,
        };
        self.sent.borrow_mut().push(recorded.clone());

        let authority = recorded
            .uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let handler = self.origins.borrow().get(&authority).cloned();
        let Some(handler) = handler else {
            return Err(FetchError::Unreachable(format!(
                "connection refused by {authority}"
            )));
        };
        let response = match handler(&recorded) {
            OriginReply::Respond(response) => response,
            OriginReply::Delayed(delay, _) if delay >= options.timeout => {
                self.advance(options.timeout);
                return Err(FetchError::Timeout(options.timeout));
            }
            OriginReply::Delayed(delay, response) => {
                self.advance(delay);
                response
            }
            OriginReply::Refuse => {
                return Err(FetchError::Unreachable(format!(
                    "connection refused by {authority}"
                )));
            }
        };
        Ok(response.map(|bytes| {
            if bytes.is_empty() {
                Body::Empty
            } else {
                Body::Stream(bytes)
            }
        }))
    }

    async fn read_body(&self, body: Body<Bytes>, limit: usize) -> Result<Bytes, FetchError> {
        let bytes = match body {
            Body::Empty => Bytes::new(),
            Body::Full(bytes) | Body::Stream(bytes) => bytes,
        };
        if bytes.len() > limit {
            return Err(FetchError::TooLarge(limit));
        }
        Ok(bytes)
    }
}

impl RateLimitStore for MemoryPlatform {
    async fn rate_limit(
        &self,
        object: &str,
        call: &LimitCall,
    ) -> Result<LimitReply, PlatformError> {
        self.limiter_calls.set(self.limiter_calls.get() + 1);
        if let Some(reason) = self.limiter_failure.borrow().as_ref() {
            return Err(PlatformError(reason.clone()));
        }
        let now = self.now.get();
        let mut limiters = self.limiters.borrow_mut();
        let limiter = limiters.entry(object.to_owned()).or_default();
        Ok(limiter.apply(now, call).0)
    }
}

impl Secrets for MemoryPlatform {
    fn secret(&self, name: &str) -> Option<String> {
        self.secrets.borrow().get(name).cloned()
    }
}

impl LogSink for MemoryPlatform {
    fn log(&self, event: &Event) {
        if self.keep_events.get() {
            self.events.borrow_mut().push(event.clone());
        } else {
            std::hint::black_box(event.to_json_line());
        }
    }
}

impl RequestIds for MemoryPlatform {
    fn new_request_id(&self) -> String {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        format!("req-{id:08}")
    }
}
