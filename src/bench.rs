//! A gateway on the in-memory platform for measuring the core's own cost
//! per request, natively (criterion, `benches/`) and as wasm in V8
//! (`make bench`'s wasm harness, through the `wasm-bench` feature).
//!
//! The upstream answers at once and the clock does not move, so what is
//! measured is routing, authentication, header work and logging: the
//! gateway's CPU, without network or runtime overhead. Never used by the
//! Worker itself.

use bytes::Bytes;
use futures::FutureExt;

use crate::body::Body;
use crate::gateway::{Gateway, Inbound};
use crate::platform::KvNamespace;
use crate::platform::memory::{MemoryPlatform, OriginReply};

/// Where the bench upstream lives; bench configs point services here.
pub const ORIGIN: &str = "127.0.0.1:9101";

/// A gateway, its in-memory platform, and an upstream that always says 200.
pub struct BenchGateway {
    platform: MemoryPlatform,
    gateway: Gateway,
}

impl BenchGateway {
    /// A gateway serving `config` (a configuration document).
    pub fn new(config: &str) -> BenchGateway {
        let platform = MemoryPlatform::new();
        platform.discard_events();
        platform.kv_put(KvNamespace::Config, crate::config::CONFIG_KEY, config);
        let document = Bytes::from(leg_document());
        platform.add_origin(ORIGIN, move |request| {
            // Aggregate legs (paths under /leg) get a JSON document of
            // about 1 KB to merge; everything else an empty object.
            let body = if request.uri.path().starts_with("/leg") {
                document.clone()
            } else {
                Bytes::from_static(b"{}")
            };
            OriginReply::Respond(http::Response::new(body))
        });
        BenchGateway {
            platform,
            gateway: Gateway::new(),
        }
    }

    pub fn put_key(&self, kv_key: &str, value: &str) {
        self.platform.kv_put(KvNamespace::Keys, kv_key, value);
    }

    pub fn set_secret(&self, name: &str, value: &str) {
        self.platform.set_secret(name, value);
    }

    /// Forget verified tokens, so the next request verifies its signature.
    pub fn clear_token_cache(&self) {
        self.gateway.auth_state().tokens.borrow_mut().clear();
    }

    /// Serve one request; returns its status (0 if it did not complete at
    /// once, which the in-memory platform never causes).
    pub fn request(&self, method: &str, url: &str, headers: &[(&str, &str)]) -> u16 {
        let mut builder = http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let Ok(request) = builder.body(Body::Empty) else {
            return 0;
        };
        let inbound = Inbound::new(request, None);
        let status = self
            .gateway
            .handle(&self.platform, inbound)
            .now_or_never()
            .map_or(0, |response| response.status().as_u16());
        // Work the Worker would leave to waitUntil (cache stores).
        self.platform.run_background();
        status
    }
}

/// A JSON document of about 1 KB, as a service might answer.
fn leg_document() -> String {
    let items: Vec<String> = (0..12)
        .map(|i| {
            format!(
                r#"{{"id":{i},"sku":"SKU-{i:05}","name":"Item number {i}","price":{}.99,"tags":["a","b"]}}"#,
                10 + i
            )
        })
        .collect();
    // Shaped like the echo origin's answers (`service`, `path`, `headers`),
    // so the bench config's legs keep the same fields in both harnesses.
    format!(
        r#"{{"service":"bench","path":"/leg","headers":{{"items":[{}]}},"total":12}}"#,
        items.join(",")
    )
}

#[cfg(feature = "wasm-bench")]
mod wasm {
    //! The same, exported to JavaScript for the wasm harness.
    use wasm_bindgen::prelude::wasm_bindgen;

    #[wasm_bindgen]
    pub struct WasmBenchGateway(super::BenchGateway);

    #[wasm_bindgen]
    impl WasmBenchGateway {
        #[wasm_bindgen(constructor)]
        pub fn new(config: &str) -> WasmBenchGateway {
            WasmBenchGateway(super::BenchGateway::new(config))
        }

        pub fn put_key(&self, kv_key: &str, value: &str) {
            self.0.put_key(kv_key, value);
        }

        pub fn set_secret(&self, name: &str, value: &str) {
            self.0.set_secret(name, value);
        }

        pub fn clear_token_cache(&self) {
            self.0.clear_token_cache();
        }

        /// Serve `iterations` identical requests (one header at most);
        /// returns the last status. `uncached` clears the token cache
        /// before each one.
        pub fn run(
            &self,
            method: &str,
            url: &str,
            header_name: &str,
            header_value: &str,
            iterations: u32,
            uncached: bool,
        ) -> u16 {
            let headers: Vec<(&str, &str)> = if header_name.is_empty() {
                Vec::new()
            } else {
                vec![(header_name, header_value)]
            };
            let mut status = 0;
            for _ in 0..iterations {
                if uncached {
                    self.0.clear_token_cache();
                }
                status = self.0.request(method, url, &headers);
            }
            status
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_config_answers_200_on_its_routes_without_credentials() {
        let config = include_str!("../fixtures/config/bench.json")
            .replace("http://127.0.0.1:9101", &format!("http://{ORIGIN}"));
        let bench = BenchGateway::new(&config);
        for url in [
            "http://bench.local/route/x",
            "http://bench.local/cached/x",
            "http://bench.local/aggregate/x",
        ] {
            assert_eq!(bench.request("GET", url, &[]), 200, "{url}");
        }
    }
}
