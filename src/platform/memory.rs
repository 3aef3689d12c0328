//! An in-memory platform with a fake clock: the seam's second
//! implementation, for native tests, benchmarks and the CLI.
//!
//! Time only moves when a test moves it; origins are closures keyed by
//! `host:port`; every outbound request, log event, metrics point and cache
//! operation is recorded so tests can assert on them. Background work is
//! queued and runs when a test calls [`MemoryPlatform::run_background`].
//! Nothing here may touch the network or the real clock.
//!
//! The platform is a handle: clones share one state, as every request of a
//! Workers isolate shares one runtime.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;

use super::{
    Background, Bodies, BodyPair, Clock, FetchError, FetchOptions, HttpClient, KvNamespace,
    KvStore, LogSink, MetricsSink, PlatformError, PublicJwk, Randomness, RateLimitStore,
    RequestBodyLimit, ResponseCache, Secrets, SignatureChecks, Timer, UnixMillis, Waiting, Wakeup,
    Wakeups,
};
use crate::body::Body;
use crate::observe::events::Event;
use crate::observe::metrics::MetricsPoint;
use crate::ratelimit::object::{LimitCall, LimitReply, LimiterObject, Sweep};

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
    /// Answer once the test opens the gate: the request stays in flight
    /// until then, so others can arrive meanwhile.
    Gated(Gate, http::Response<Bytes>),
    /// Send the status and headers at once, then never the body: reading
    /// it waits forever (an origin that stalls mid-answer).
    StalledBody(http::Response<Bytes>),
    /// Answer at once with a body of no declared length (HTTP/1.1
    /// chunked). Every other reply declares its body's length, as an HTTP
    /// origin does when it has the whole body to send.
    Chunked(http::Response<Bytes>),
}

/// A latch a test opens to let gated origin replies go.
#[derive(Clone, Debug, Default)]
pub struct Gate(Rc<GateState>);

#[derive(Debug, Default)]
struct GateState {
    open: Cell<bool>,
    waiting: RefCell<Vec<Waker>>,
}

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Let every waiting (and future) reply through.
    pub fn open(&self) {
        self.0.open.set(true);
        for waker in self.0.waiting.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// How many replies wait at the gate.
    pub fn waiting(&self) -> usize {
        self.0.waiting.borrow().len()
    }

    fn opened(&self) -> impl Future<Output = ()> + '_ {
        futures::future::poll_fn(move |context| {
            if self.0.open.get() {
                Poll::Ready(())
            } else {
                self.0.waiting.borrow_mut().push(context.waker().clone());
                Poll::Pending
            }
        })
    }
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
type Work = Pin<Box<dyn Future<Output = ()>>>;

/// The in-memory platform. Single-threaded, like a Workers isolate.
#[derive(Clone, Default)]
pub struct MemoryPlatform {
    state: Rc<State>,
}

struct State {
    now: Cell<u64>,
    kv: RefCell<HashMap<(KvNamespace, String), String>>,
    kv_failure: RefCell<Option<String>>,
    kv_reads: Cell<usize>,
    kv_writes: Cell<usize>,
    slept: RefCell<Vec<Duration>>,
    /// Bodies of [`OriginReply::StalledBody`] answers, known by their
    /// bytes' address: reading one never ends.
    stalled: RefCell<Vec<Bytes>>,
    origins: RefCell<HashMap<String, OriginHandler>>,
    sent: RefCell<Vec<RecordedRequest>>,
    events: RefCell<Vec<Event>>,
    metrics: RefCell<Vec<MetricsPoint>>,
    next_id: Cell<u64>,
    random: Cell<u64>,
    secrets: RefCell<HashMap<String, String>>,
    keep_events: Cell<bool>,
    limiters: RefCell<HashMap<String, LimiterObject>>,
    limiter_failure: RefCell<Option<String>>,
    limiter_calls: Cell<usize>,
    limiter_gate: RefCell<Option<Gate>>,
    cache: RefCell<HashMap<String, http::Response<Bytes>>>,
    cache_failure: RefCell<Option<String>>,
    cache_put_gate: RefCell<Option<Gate>>,
    background: RefCell<Vec<Work>>,
    virtual_time: Cell<bool>,
    timers: RefCell<Vec<(u64, Waker)>>,
    /// What the runtime's own signature check answers (`None`: it has
    /// none, as natively), and the checks it was asked for.
    signature_verdict: Cell<Option<bool>>,
    signature_checks: RefCell<Vec<(String, PublicJwk)>>,
}

impl Default for State {
    fn default() -> Self {
        State {
            // 2026-01-01T00:00:00Z
            now: Cell::new(1_767_225_600_000),
            kv: RefCell::default(),
            kv_failure: RefCell::default(),
            kv_reads: Cell::new(0),
            kv_writes: Cell::new(0),
            slept: RefCell::default(),
            stalled: RefCell::default(),
            origins: RefCell::default(),
            sent: RefCell::default(),
            events: RefCell::default(),
            metrics: RefCell::default(),
            next_id: Cell::new(1),
            random: Cell::new(0x9e37_79b9_7f4a_7c15),
            secrets: RefCell::default(),
            keep_events: Cell::new(true),
            limiters: RefCell::default(),
            limiter_failure: RefCell::default(),
            limiter_calls: Cell::new(0),
            limiter_gate: RefCell::default(),
            cache: RefCell::default(),
            cache_failure: RefCell::default(),
            cache_put_gate: RefCell::default(),
            background: RefCell::default(),
            virtual_time: Cell::new(false),
            timers: RefCell::default(),
            signature_verdict: Cell::new(None),
            signature_checks: RefCell::default(),
        }
    }
}

impl MemoryPlatform {
    /// A platform whose clock reads 2026-01-01T00:00:00Z.
    pub fn new() -> Self {
        Self::default()
    }

    /// Move the fake clock forward.
    pub fn advance(&self, by: Duration) {
        let millis = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.state
            .now
            .set(self.state.now.get().saturating_add(millis));
    }

    /// Set the fake clock, backwards if a test wants to see that.
    pub fn set_now(&self, now: UnixMillis) {
        self.state.now.set(now.0);
    }

    pub fn kv_put(&self, namespace: KvNamespace, key: &str, value: &str) {
        self.state
            .kv
            .borrow_mut()
            .insert((namespace, key.to_owned()), value.to_owned());
    }

    pub fn kv_delete(&self, namespace: KvNamespace, key: &str) {
        self.state
            .kv
            .borrow_mut()
            .remove(&(namespace, key.to_owned()));
    }

    /// Make every KV read fail with `reason` (or succeed again with `None`).
    pub fn fail_kv(&self, reason: Option<&str>) {
        *self.state.kv_failure.borrow_mut() = reason.map(str::to_owned);
    }

    /// How many KV reads the gateway has made.
    pub fn kv_reads(&self) -> usize {
        self.state.kv_reads.get()
    }

    /// How many KV writes the gateway has made.
    pub fn kv_writes(&self) -> usize {
        self.state.kv_writes.get()
    }

    /// The value under `key`, as a test sees it.
    pub fn kv_get(&self, namespace: KvNamespace, key: &str) -> Option<String> {
        self.state
            .kv
            .borrow()
            .get(&(namespace, key.to_owned()))
            .cloned()
    }

    /// Every wait the gateway asked for (retry backoffs), oldest first.
    pub fn slept(&self) -> Vec<Duration> {
        self.state.slept.borrow().clone()
    }

    /// Stop serving `authority`: its connections are refused from now on.
    pub fn remove_origin(&self, authority: &str) {
        self.state.origins.borrow_mut().remove(authority);
    }

    /// Serve requests for `authority` (`host:port`, as in the URL) with `handler`.
    pub fn add_origin(
        &self,
        authority: &str,
        handler: impl Fn(&RecordedRequest) -> OriginReply + 'static,
    ) {
        self.state
            .origins
            .borrow_mut()
            .insert(authority.to_owned(), Rc::new(handler));
    }

    /// Set a Worker secret.
    pub fn set_secret(&self, name: &str, value: &str) {
        self.state
            .secrets
            .borrow_mut()
            .insert(name.to_owned(), value.to_owned());
    }

    /// Outbound requests sent so far, oldest first.
    pub fn sent(&self) -> Vec<RecordedRequest> {
        self.state.sent.borrow().clone()
    }

    /// Make every rate-limit object call fail with `reason` (or work again).
    pub fn fail_limiters(&self, reason: Option<&str>) {
        *self.state.limiter_failure.borrow_mut() = reason.map(str::to_owned);
    }

    /// Hold every rate-limit object call at `gate` until it opens (or let
    /// them through at once again), so calls can be in flight together.
    pub fn hold_limiters(&self, gate: Option<Gate>) {
        *self.state.limiter_gate.borrow_mut() = gate;
    }

    /// Act as a runtime with a signature check of its own that answers
    /// `verdict` for every key (`None`: no such check, the default).
    pub fn answer_signatures(&self, verdict: Option<bool>) {
        self.state.signature_verdict.set(verdict);
    }

    /// The signature checks asked of the runtime: algorithm and key.
    pub fn signature_checks(&self) -> Vec<(String, PublicJwk)> {
        self.state.signature_checks.borrow().clone()
    }

    /// How many rate-limit object calls (round trips) the gateway has made.
    pub fn limiter_calls(&self) -> usize {
        self.state.limiter_calls.get()
    }

    /// Fire every rate-limit object's cleanup alarm at the fake clock's
    /// now, as the Workers adapter's alarm does: an object whose states all
    /// stopped mattering is emptied (and here removed). Returns the names
    /// of the objects emptied.
    pub fn sweep_idle_limiters(&self) -> Vec<String> {
        let now = self.state.now.get();
        let mut emptied = Vec::new();
        self.state.limiters.borrow_mut().retain(|name, limiter| {
            let cleared = limiter.sweep(now) == Sweep::Cleared;
            if cleared {
                emptied.push(name.clone());
            }
            !cleared
        });
        emptied.sort();
        emptied
    }

    /// The names of the rate-limit objects created so far.
    pub fn object_names(&self) -> Vec<String> {
        self.state.limiters.borrow().keys().cloned().collect()
    }

    /// Serialise log events as the Workers adapter does, then drop them
    /// instead of keeping them (for benchmarks).
    pub fn discard_events(&self) {
        self.state.keep_events.set(false);
    }

    /// Log events emitted so far, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.state.events.borrow().clone()
    }

    /// Metrics points recorded so far, oldest first.
    pub fn metrics(&self) -> Vec<MetricsPoint> {
        self.state.metrics.borrow().clone()
    }

    /// Make every cache operation fail with `reason` (or work again).
    pub fn fail_cache(&self, reason: Option<&str>) {
        *self.state.cache_failure.borrow_mut() = reason.map(str::to_owned);
    }

    /// Hold every response cache store at `gate` until it opens (or let
    /// them through at once again), so a store can be under way while
    /// requests arrive.
    pub fn hold_cache_puts(&self, gate: Option<Gate>) {
        *self.state.cache_put_gate.borrow_mut() = gate;
    }

    /// The keys the response cache holds.
    pub fn cache_keys(&self) -> Vec<String> {
        self.state.cache.borrow().keys().cloned().collect()
    }

    /// Background work queued and not yet run.
    pub fn pending_background(&self) -> usize {
        self.state.background.borrow().len()
    }

    /// Run queued background work, including work it queues. Everything
    /// on this platform completes without waiting, so each task finishes
    /// in one go, but for work held at a test's [`Gate`]: that stays
    /// queued for a later call. Returns how many tasks ran.
    pub fn run_background(&self) -> usize {
        let mut ran = 0;
        let mut held = Vec::new();
        loop {
            let batch: Vec<Work> = self.state.background.borrow_mut().drain(..).collect();
            if batch.is_empty() {
                self.state.background.borrow_mut().extend(held);
                return ran;
            }
            for mut work in batch {
                if (&mut work).now_or_never().is_none() {
                    held.push(work);
                }
                ran += 1;
            }
        }
    }

    /// Let fake time pass concurrently: from now on a delayed origin reply
    /// waits for the clock instead of moving it, and a test drives the
    /// clock with [`MemoryPlatform::advance_to_next_timer`] whenever every
    /// request is waiting. Without it (the default) a delay moves the
    /// clock at once, which is simpler for requests made one at a time.
    pub fn use_virtual_time(&self) {
        self.state.virtual_time.set(true);
    }

    /// Move the clock to the earliest pending wait and wake what waits
    /// for it. Returns false when nothing waits.
    pub fn advance_to_next_timer(&self) -> bool {
        let next = self
            .state
            .timers
            .borrow()
            .iter()
            .map(|(deadline, _)| *deadline)
            .min();
        let Some(next) = next else {
            return false;
        };
        if next > self.state.now.get() {
            self.state.now.set(next);
        }
        let due: Vec<Waker> = {
            let mut timers = self.state.timers.borrow_mut();
            let (due, later): (Vec<_>, Vec<_>) = timers.drain(..).partition(|(d, _)| *d <= next);
            *timers = later;
            due.into_iter().map(|(_, waker)| waker).collect()
        };
        for waker in due {
            waker.wake();
        }
        true
    }

    /// Wait `delay` of fake time (see [`MemoryPlatform::use_virtual_time`]).
    async fn wait(&self, delay: Duration) {
        if !self.state.virtual_time.get() {
            self.advance(delay);
            return;
        }
        let deadline = self
            .state
            .now
            .get()
            .saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
        futures::future::poll_fn(|context| {
            if self.state.now.get() >= deadline {
                Poll::Ready(())
            } else {
                self.state
                    .timers
                    .borrow_mut()
                    .push((deadline, context.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }

    fn cache_check(&self) -> Result<(), PlatformError> {
        match self.state.cache_failure.borrow().as_ref() {
            Some(reason) => Err(PlatformError(reason.clone())),
            None => Ok(()),
        }
    }
}

fn bytes_of(body: Body<Bytes>) -> Bytes {
    match body {
        Body::Empty => Bytes::new(),
        Body::Full(bytes) | Body::Stream(bytes) => bytes,
    }
}

fn stream_of(bytes: Bytes) -> Body<Bytes> {
    if bytes.is_empty() {
        Body::Empty
    } else {
        Body::Stream(bytes)
    }
}

impl Clock for MemoryPlatform {
    fn now(&self) -> UnixMillis {
        UnixMillis(self.state.now.get())
    }
}

impl KvStore for MemoryPlatform {
    async fn get_text(
        &self,
        namespace: KvNamespace,
        key: &str,
    ) -> Result<Option<String>, PlatformError> {
        self.state.kv_reads.set(self.state.kv_reads.get() + 1);
        if let Some(reason) = self.state.kv_failure.borrow().as_ref() {
            return Err(PlatformError(reason.clone()));
        }
        Ok(self
            .state
            .kv
            .borrow()
            .get(&(namespace, key.to_owned()))
            .cloned())
    }

    async fn put_text(
        &self,
        namespace: KvNamespace,
        key: &str,
        value: &str,
    ) -> Result<(), PlatformError> {
        self.state.kv_writes.set(self.state.kv_writes.get() + 1);
        if let Some(reason) = self.state.kv_failure.borrow().as_ref() {
            return Err(PlatformError(reason.clone()));
        }
        self.kv_put(namespace, key, value);
        Ok(())
    }
}

impl Timer for MemoryPlatform {
    async fn sleep(&self, duration: Duration) {
        self.state.slept.borrow_mut().push(duration);
        self.wait(duration).await;
    }
}

impl Bodies for MemoryPlatform {
    type Stream = Bytes;

    async fn read_body(&self, body: Body<Bytes>, limit: usize) -> Result<Bytes, FetchError> {
        let bytes = bytes_of(body);
        let stalled = self
            .state
            .stalled
            .borrow()
            .iter()
            .any(|body| body.as_ptr() == bytes.as_ptr() && body.len() == bytes.len());
        if stalled {
            return futures::future::pending().await;
        }
        if bytes.len() > limit {
            return Err(FetchError::TooLarge(limit));
        }
        Ok(bytes)
    }

    fn tee_body(&self, body: Body<Bytes>) -> Result<BodyPair<Bytes>, PlatformError> {
        Ok(match body {
            Body::Empty => (Body::Empty, Body::Empty),
            Body::Full(bytes) => (Body::Full(bytes.clone()), Body::Full(bytes)),
            Body::Stream(bytes) => (Body::Stream(bytes.clone()), Body::Stream(bytes)),
        })
    }
}

impl HttpClient for MemoryPlatform {
    async fn fetch(
        &self,
        request: http::Request<Body<Bytes>>,
        options: FetchOptions,
    ) -> Result<http::Response<Body<Bytes>>, FetchError> {
        let (parts, body) = request.into_parts();
        let mut body = bytes_of(body);
        // A streamed body over its limit: the origin got the bytes up to
        // it, then the request was abandoned.
        let over_limit = parts
            .extensions
            .get::<RequestBodyLimit>()
            .map(|limit| limit.0)
            .filter(|limit| u64::try_from(body.len()).unwrap_or(u64::MAX) > *limit);
        if let Some(limit) = over_limit {
            body.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        }
        let recorded = RecordedRequest {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
            timeout: options.timeout,
        };
        self.state.sent.borrow_mut().push(recorded.clone());
        if let Some(limit) = over_limit {
            return Err(FetchError::RequestBodyTooLarge(limit));
        }

        let authority = recorded
            .uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let handler = self.state.origins.borrow().get(&authority).cloned();
        let Some(handler) = handler else {
            return Err(FetchError::Unreachable(format!(
                "connection refused by {authority}"
            )));
        };
        let mut declared = true;
        let mut response = match handler(&recorded) {
            OriginReply::Respond(response) => response,
            OriginReply::Chunked(response) => {
                declared = false;
                response
            }
            OriginReply::Delayed(delay, _) if delay >= options.timeout => {
                self.wait(options.timeout).await;
                return Err(FetchError::Timeout(options.timeout));
            }
            OriginReply::Delayed(delay, response) => {
                self.wait(delay).await;
                response
            }
            OriginReply::Refuse => {
                return Err(FetchError::Unreachable(format!(
                    "connection refused by {authority}"
                )));
            }
            OriginReply::Gated(gate, response) => {
                gate.opened().await;
                response
            }
            OriginReply::StalledBody(response) => {
                // A copy of its own, so no other body shares its address.
                let response = response.map(|body| Bytes::from(body.to_vec()));
                self.state
                    .stalled
                    .borrow_mut()
                    .push(response.body().clone());
                declared = false;
                response
            }
        };
        let status = response.status();
        let bodiless = recorded.method == http::Method::HEAD
            || status.is_informational()
            || status == http::StatusCode::NO_CONTENT
            || status == http::StatusCode::NOT_MODIFIED;
        if declared && !bodiless {
            let length = http::HeaderValue::from(response.body().len());
            response
                .headers_mut()
                .entry(http::header::CONTENT_LENGTH)
                .or_insert(length);
        }
        Ok(response.map(stream_of))
    }
}

impl ResponseCache for MemoryPlatform {
    async fn cache_match(
        &self,
        key: &str,
    ) -> Result<Option<http::Response<Body<Bytes>>>, PlatformError> {
        self.cache_check()?;
        Ok(self
            .state
            .cache
            .borrow()
            .get(key)
            .map(|stored| stored.clone().map(stream_of)))
    }

    async fn cache_put(
        &self,
        key: &str,
        response: http::Response<Body<Bytes>>,
    ) -> Result<(), PlatformError> {
        let gate = self.state.cache_put_gate.borrow().clone();
        if let Some(gate) = gate {
            gate.opened().await;
        }
        self.cache_check()?;
        self.state
            .cache
            .borrow_mut()
            .insert(key.to_owned(), response.map(bytes_of));
        Ok(())
    }

    async fn cache_delete(&self, key: &str) -> Result<bool, PlatformError> {
        self.cache_check()?;
        Ok(self.state.cache.borrow_mut().remove(key).is_some())
    }
}

impl Background for MemoryPlatform {
    fn wait_until(&self, work: impl Future<Output = ()> + 'static) {
        self.state.background.borrow_mut().push(Box::pin(work));
    }
}

impl RateLimitStore for MemoryPlatform {
    async fn rate_limit(
        &self,
        object: &str,
        calls: &[LimitCall],
    ) -> Result<Vec<LimitReply>, PlatformError> {
        self.state
            .limiter_calls
            .set(self.state.limiter_calls.get() + 1);
        let gate = self.state.limiter_gate.borrow().clone();
        if let Some(gate) = gate {
            gate.opened().await;
        }
        if let Some(reason) = self.state.limiter_failure.borrow().as_ref() {
            return Err(PlatformError(reason.clone()));
        }
        let now = self.state.now.get();
        let mut limiters = self.state.limiters.borrow_mut();
        let limiter = limiters.entry(object.to_owned()).or_default();
        Ok(limiter.apply_all(now, calls).0)
    }
}

/// Natively there is no crypto of the runtime's: the core's own check
/// decides, unless a test set a verdict.
impl SignatureChecks for MemoryPlatform {
    async fn check_signature(
        &self,
        alg: &str,
        key: &PublicJwk,
        _signed: &[u8],
        _signature: &[u8],
    ) -> Option<bool> {
        let verdict = self.state.signature_verdict.get()?;
        self.state
            .signature_checks
            .borrow_mut()
            .push((alg.to_owned(), key.clone()));
        Some(verdict)
    }
}

/// One thread, one context: a wake-up is a channel. The limit is not
/// enforced (the fake clock only moves when a test moves it).
impl Wakeups for MemoryPlatform {
    fn wakeup(&self, _limit: Duration) -> (Wakeup, Waiting) {
        let (given, woken) = futures::channel::oneshot::channel::<()>();
        (
            Wakeup::new(move || {
                let _ = given.send(());
            }),
            Box::pin(async move { woken.await.is_ok() }),
        )
    }
}

impl Secrets for MemoryPlatform {
    fn secret(&self, name: &str) -> Option<String> {
        self.state.secrets.borrow().get(name).cloned()
    }
}

impl LogSink for MemoryPlatform {
    fn log(&self, event: &Event) {
        if self.state.keep_events.get() {
            self.state.events.borrow_mut().push(event.clone());
        } else {
            std::hint::black_box(event.to_json_line());
        }
    }
}

impl MetricsSink for MemoryPlatform {
    fn wants_metrics(&self) -> bool {
        self.state.keep_events.get()
    }

    fn record(&self, point: &MetricsPoint) {
        if self.state.keep_events.get() {
            self.state.metrics.borrow_mut().push(point.clone());
        }
    }
}

impl Randomness for MemoryPlatform {
    fn new_request_id(&self) -> String {
        let id = self.state.next_id.get();
        self.state.next_id.set(id + 1);
        format!("req-{id:08}")
    }

    /// Deterministic (xorshift64*), so tests can repeat a run exactly.
    fn fill_random(&self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            let mut x = self.state.random.get();
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.state.random.set(x);
            let word = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            for (byte, source) in chunk.iter_mut().zip(word) {
                *byte = source;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_platform() {
        let platform = MemoryPlatform::new();
        let clone = platform.clone();
        clone.advance(Duration::from_secs(5));
        clone.kv_put(KvNamespace::Config, "k", "v");
        assert_eq!(platform.now(), clone.now());
        assert_eq!(platform.kv_reads(), 0);
        let read = platform.get_text(KvNamespace::Config, "k").now_or_never();
        assert_eq!(read, Some(Ok(Some("v".to_owned()))));
    }

    #[test]
    fn kv_writes_are_read_back_and_sleeping_moves_the_fake_clock() {
        let platform = MemoryPlatform::new();
        let put = platform
            .put_text(KvNamespace::Config, "health", "{}")
            .now_or_never();
        assert_eq!(put, Some(Ok(())));
        assert_eq!(platform.kv_writes(), 1);
        assert_eq!(
            platform.kv_get(KvNamespace::Config, "health").as_deref(),
            Some("{}")
        );
        let before = platform.now();
        assert_eq!(
            platform.sleep(Duration::from_millis(40)).now_or_never(),
            Some(())
        );
        assert_eq!(platform.now().millis_since(before), 40);
        assert_eq!(platform.slept(), [Duration::from_millis(40)]);
        platform.fail_kv(Some("KV down"));
        assert!(matches!(
            platform
                .put_text(KvNamespace::Config, "health", "{}")
                .now_or_never(),
            Some(Err(_))
        ));
    }

    #[test]
    fn the_cache_stores_matches_and_deletes_by_key_and_can_fail() {
        let platform = MemoryPlatform::new();
        let response = http::Response::builder()
            .header("etag", "\"1\"")
            .body(Body::Stream(Bytes::from_static(b"body")))
            .unwrap();
        let put = platform
            .cache_put("https://cache.key/a", response)
            .now_or_never();
        assert_eq!(put, Some(Ok(())));
        assert_eq!(platform.cache_keys(), ["https://cache.key/a"]);
        let hit = platform
            .cache_match("https://cache.key/a")
            .now_or_never()
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(hit.headers()["etag"], "\"1\"");
        assert!(matches!(hit.body(), Body::Stream(b) if b == "body"));
        let miss = platform.cache_match("https://cache.key/b").now_or_never();
        assert!(matches!(miss, Some(Ok(None))));
        assert_eq!(
            platform.cache_delete("https://cache.key/a").now_or_never(),
            Some(Ok(true))
        );
        platform.fail_cache(Some("cache down"));
        assert!(matches!(
            platform.cache_match("https://cache.key/a").now_or_never(),
            Some(Err(_))
        ));
    }

    #[test]
    fn a_teed_body_gives_every_byte_to_both_readers() {
        let platform = MemoryPlatform::new();
        let (a, b) = platform
            .tee_body(Body::Stream(Bytes::from_static(b"stream")))
            .unwrap();
        for body in [a, b] {
            let read = platform.read_body(body, 6).now_or_never();
            assert_eq!(read, Some(Ok(Bytes::from_static(b"stream"))));
        }
        let too_long = platform.read_body(Body::full("seven!!"), 6).now_or_never();
        assert_eq!(too_long, Some(Err(FetchError::TooLarge(6))));
    }

    #[test]
    fn background_work_runs_when_the_test_says_and_may_queue_more() {
        let platform = MemoryPlatform::new();
        let done = Rc::new(Cell::new(0));
        let (inner, counter) = (platform.clone(), Rc::clone(&done));
        platform.wait_until(async move {
            counter.set(counter.get() + 1);
            let again = Rc::clone(&counter);
            inner.wait_until(async move { again.set(again.get() + 10) });
        });
        assert_eq!(platform.pending_background(), 1);
        assert_eq!(done.get(), 0, "nothing runs before the response is out");
        assert_eq!(platform.run_background(), 2);
        assert_eq!(done.get(), 11);
    }
}
