//! Shared helpers for the native behaviour tests: a gateway on the
//! in-memory platform with a fake clock, and an echo origin like the one in
//! `fixtures/origin/`.

#![allow(dead_code)] // each test binary uses a different subset

pub mod tokens;

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response};
use portico::Body;
use portico::auth::api_key::{self, KeyRecord};
use portico::config::CONFIG_KEY;
use portico::gateway::{Gateway, Inbound};
use portico::platform::KvNamespace;
use portico::platform::memory::{MemoryPlatform, OriginReply, RecordedRequest};
use serde_json::{Value, json};

pub fn fixture(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An origin that answers with a JSON echo of the request, honouring the
/// fixture server's `delay_ms`, `status` and `location` query parameters.
pub fn echo_origin(name: &'static str) -> impl Fn(&RecordedRequest) -> OriginReply {
    move |request| {
        let query = request.uri.query().unwrap_or("");
        let param = |key: &str| {
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_owned())
        };
        let headers: serde_json::Map<String, Value> = request
            .headers
            .keys()
            .map(|name| {
                let values: Vec<&str> = request
                    .headers
                    .get_all(name)
                    .iter()
                    .map(|v| v.to_str().unwrap_or("?"))
                    .collect();
                (name.as_str().to_owned(), Value::from(values.join(", ")))
            })
            .collect();
        let body = json!({
            "service": name,
            "method": request.method.as_str(),
            "path": request.uri.path(),
            "query": query,
            "headers": headers,
            "body": String::from_utf8_lossy(&request.body),
        });
        let status = param("status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(200u16);
        let mut builder = Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .header("connection", "keep-alive, x-origin-secret")
            .header("keep-alive", "timeout=5")
            .header("x-origin-secret", "hop-only");
        if let Some(location) = param("location") {
            builder = builder.header("location", location);
        }
        let response = builder
            .body(Bytes::from(body.to_string()))
            .expect("valid test response");
        match param("delay_ms").and_then(|d| d.parse().ok()) {
            Some(ms) => OriginReply::Delayed(Duration::from_millis(ms), response),
            None => OriginReply::Respond(response),
        }
    }
}

/// A gateway with `config` in KV and echo origins for the demo services.
pub struct Harness {
    pub platform: MemoryPlatform,
    pub gateway: Gateway,
}

impl Harness {
    pub fn with_config(config: &str) -> Harness {
        let platform = MemoryPlatform::new();
        platform.kv_put(KvNamespace::Config, CONFIG_KEY, config);
        platform.add_origin("127.0.0.1:9101", echo_origin("users"));
        platform.add_origin("127.0.0.1:9102", echo_origin("orders"));
        Harness {
            platform,
            gateway: Gateway::new(),
        }
    }

    pub fn basic() -> Harness {
        Harness::with_config(&fixture("config/basic.json"))
    }

    pub fn send(&self, request: Request<Body<Bytes>>) -> Response<Body<Bytes>> {
        self.send_from(request, Some("203.0.113.9".parse().expect("ip")))
    }

    pub fn send_from(
        &self,
        request: Request<Body<Bytes>>,
        client_ip: Option<std::net::IpAddr>,
    ) -> Response<Body<Bytes>> {
        futures::executor::block_on(
            self.gateway
                .handle(&self.platform, Inbound::new(request, client_ip)),
        )
    }

    /// The access-log lines written so far, oldest first.
    pub fn access_logs(&self) -> Vec<portico::observe::events::AccessLog> {
        self.platform
            .events()
            .into_iter()
            .filter_map(|event| match event {
                portico::observe::events::Event::Request(log) => Some(log),
                _ => None,
            })
            .collect()
    }

    pub fn get(&self, url: &str) -> Response<Body<Bytes>> {
        self.send(request(Method::GET, url, &[]))
    }

    /// Store a new API key for consumer `name`, made from `seed`, with
    /// its record edited by `edit`; returns (id, key).
    pub fn store_key(
        &self,
        seed: u8,
        name: &str,
        edit: impl FnOnce(&mut KeyRecord),
    ) -> (String, String) {
        let (id, key) = api_key::generate(&[seed; 38]);
        let mut record = KeyRecord::new(&id, &key, name, 0);
        edit(&mut record);
        self.put_key(&record);
        (id, key)
    }

    /// Store (or replace) a key record.
    pub fn put_key(&self, record: &KeyRecord) {
        self.platform.kv_put(
            KvNamespace::Keys,
            &api_key::kv_key(&record.id),
            &serde_json::to_string(record).expect("a record serialises"),
        );
    }
}

pub fn request(method: Method, url: &str, headers: &[(&str, &str)]) -> Request<Body<Bytes>> {
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::Empty).expect("valid test request")
}

pub fn body_bytes(response: &Response<Body<Bytes>>) -> Bytes {
    match response.body() {
        Body::Empty => Bytes::new(),
        Body::Full(bytes) | Body::Stream(bytes) => bytes.clone(),
    }
}

pub fn body_json(response: &Response<Body<Bytes>>) -> Value {
    serde_json::from_slice(&body_bytes(response)).expect("JSON body")
}

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The demo config with `auth` and routes replaced, for auth tests: the
/// users service (`127.0.0.1:9101`) behind each route.
pub fn auth_config(auth: Value, routes: Value) -> String {
    json!({
        "version": 1,
        "auth": auth,
        "services": { "users": { "url": "http://127.0.0.1:9101", "timeout_ms": 5000 } },
        "routes": routes,
    })
    .to_string()
}

/// The last request that reached an upstream.
pub fn last_upstream(harness: &Harness) -> RecordedRequest {
    harness
        .platform
        .sent()
        .last()
        .cloned()
        .expect("a request went upstream")
}

/// Every `WWW-Authenticate` value of a response.
pub fn challenges(response: &Response<Body<Bytes>>) -> Vec<String> {
    response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap_or("?").to_owned())
        .collect()
}

impl Harness {
    /// Serve requests together, with fake time passing for all of them at
    /// once (see `MemoryPlatform::use_virtual_time`): the clock moves to
    /// the next pending wait whenever every request is waiting.
    pub fn send_together(&self, requests: Vec<Request<Body<Bytes>>>) -> Vec<Response<Body<Bytes>>> {
        use std::future::Future;
        use std::task::{Context, Poll};
        self.platform.use_virtual_time();
        let client_ip = Some("203.0.113.9".parse().expect("ip"));
        let mut all = Box::pin(futures::future::join_all(requests.into_iter().map(
            |request| {
                self.gateway
                    .handle(&self.platform, Inbound::new(request, client_ip))
            },
        )));
        let waker = futures::task::noop_waker();
        let mut context = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(responses) = all.as_mut().poll(&mut context) {
                self.platform.run_background();
                return responses;
            }
            if !self.platform.advance_to_next_timer() {
                // Work made ready without time passing (a channel, say):
                // one more turn, then it must have moved.
                if let Poll::Ready(responses) = all.as_mut().poll(&mut context) {
                    self.platform.run_background();
                    return responses;
                }
                assert!(
                    self.platform.advance_to_next_timer(),
                    "the requests are stuck"
                );
            }
        }
    }

    /// One request with fake time passing concurrently inside it.
    pub fn send_timed(&self, request: Request<Body<Bytes>>) -> Response<Body<Bytes>> {
        self.send_together(vec![request])
            .pop()
            .expect("one response")
    }
}
