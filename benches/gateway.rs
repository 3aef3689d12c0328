//! The gateway's own CPU per request, natively: the whole pipeline on the
//! in-memory platform (routing only, warm API key with a rate-limit
//! decision, JWT cached and not), route matching on large tables, the
//! rate-limit decision itself, choosing a target among 100 for each
//! balancing algorithm, and XML <-> JSON of a 10 KB document.
//! `cargo bench`, or `make bench`.

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::hint::black_box;

    use criterion::{BenchmarkId, Criterion};
    use http::Method;
    use portico::bench::BenchGateway;
    use portico::routing::{MethodSet, PathPattern, RequestPath, RouteSpec, RouteTable};
    use portico::transform::xml::XmlOptions;
    use portico::transform::{Format, rewrite_body};
    use serde_json::Value;

    fn fixture(path: &str) -> String {
        let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(path);
        std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
    }

    fn gateway() -> (BenchGateway, String, Value) {
        let gateway = BenchGateway::new(&fixture("config/bench.json"));
        let demo_key: Value = serde_json::from_str(&fixture("auth/demo-api-key.json")).unwrap();
        let record = &demo_key["record"];
        gateway.put_key(
            &format!("key:{}", record["id"].as_str().unwrap()),
            &record.to_string(),
        );
        let key = demo_key["key"].as_str().unwrap().to_owned();
        let tokens: Value = serde_json::from_str(&fixture("bench/tokens.json")).unwrap();
        (gateway, key, tokens)
    }

    pub fn pipeline(c: &mut Criterion) {
        let (gateway, key, tokens) = gateway();
        let mut group = c.benchmark_group("pipeline");
        group.bench_function("route_only", |b| {
            b.iter(|| {
                assert_eq!(
                    gateway.request("GET", "http://gw/route/users/42?x=1", &[]),
                    200
                )
            });
        });
        group.bench_function("api_key_warm", |b| {
            b.iter(|| {
                assert_eq!(
                    gateway.request("GET", "http://gw/apikey/x", &[("x-api-key", &key)]),
                    200
                )
            });
        });
        for alg in ["HS256", "RS256", "PS256", "ES256", "EdDSA"] {
            let bearer = format!("Bearer {}", tokens[alg].as_str().unwrap());
            group.bench_with_input(BenchmarkId::new("jwt_cached", alg), &bearer, |b, bearer| {
                b.iter(|| {
                    assert_eq!(
                        gateway.request("GET", "http://gw/jwt/x", &[("authorization", bearer)]),
                        200
                    )
                });
            });
            group.bench_with_input(
                BenchmarkId::new("jwt_uncached", alg),
                &bearer,
                |b, bearer| {
                    b.iter(|| {
                        gateway.clear_token_cache();
                        assert_eq!(
                            gateway.request("GET", "http://gw/jwt/x", &[("authorization", bearer)]),
                            200
                        );
                    });
                },
            );
        }
        group.finish();
    }

    pub fn rate_limit_decision(c: &mut Criterion) {
        use portico::ratelimit::algorithm::{Algorithm, Quota};
        let mut group = c.benchmark_group("rate_limit_decide");
        for algorithm in [
            Algorithm::TokenBucket,
            Algorithm::Gcra,
            Algorithm::FixedWindow,
        ] {
            let quota = Quota {
                algorithm,
                limit: 1_000_000,
                period_ms: 60_000,
                burst: 1_000_000,
            };
            let (_, state) = quota.decide(None, 1_000, 1);
            group.bench_function(algorithm.as_str(), |b| {
                let mut now = 1_000u64;
                b.iter(|| {
                    now += 1;
                    black_box(quota.decide(state.as_ref(), black_box(now), 1))
                });
            });
        }
        group.finish();
    }

    /// One choice (and the end of its lease) among 100 targets, each
    /// healthy, with the isolate's state warm: what a balanced service adds
    /// to a request before its first try.
    pub fn target_choice(c: &mut Criterion) {
        use portico::config::Config;
        use portico::platform::UnixMillis;
        use portico::platform::memory::MemoryPlatform;
        use portico::upstream::{Balancers, ChoiceInput};
        use serde_json::json;

        let mut group = c.benchmark_group("upstream_choose_100_targets");
        let targets: Vec<serde_json::Value> = (0..100)
            .map(|i| json!({ "url": format!("http://10.0.{}.{}:8080", i / 250, i % 250), "weight": 1 + i % 3 }))
            .collect();
        for (name, extra) in [
            ("round_robin", json!({})),
            ("random", json!({ "algorithm": "random" })),
            ("least_request", json!({ "algorithm": "least_request" })),
            (
                "consistent_hash",
                json!({ "algorithm": "consistent_hash", "hash_on": "ip" }),
            ),
        ] {
            let mut service = json!({ "targets": targets, "health": { "passive": {} } });
            service
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let config = Config::from_json(
                &json!({ "version": 1, "services": { "s": service },
                         "routes": [{ "id": "r", "path": "/*", "service": "s" }] })
                .to_string(),
            )
            .unwrap();
            let upstream = &config.services[0].upstream;
            let balancers = Balancers::default();
            let platform = MemoryPlatform::new();
            let mut key = 0u64;
            group.bench_function(name, |b| {
                b.iter(|| {
                    key = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let input = ChoiceInput {
                        balancers: &balancers,
                        config: &config,
                        random: &platform,
                        now: UnixMillis(1_767_225_600_000),
                        key: Some(key),
                        location: None,
                        avoid: None,
                    };
                    let chosen = upstream.choose(&input).unwrap();
                    black_box(chosen.origin);
                });
            });
        }
        group.finish();
    }

    pub fn route_matching(c: &mut Criterion) {
        let mut group = c.benchmark_group("route_find");
        for size in [10usize, 1_000, 10_000] {
            let specs: Vec<RouteSpec> = (0..size)
                .map(|i| RouteSpec {
                    id: format!("svc-{i}"),
                    hosts: Vec::new(),
                    path: PathPattern::parse(&format!("/api/svc{i}/items/:id")).unwrap(),
                    methods: MethodSet::Any,
                })
                .collect();
            let table = RouteTable::build(specs.into_iter().map(|spec| (spec, ()))).unwrap();
            let path = RequestPath::parse(&format!("/api/svc{}/items/42", size - 1)).unwrap();
            group.bench_with_input(BenchmarkId::from_parameter(size), &path, |b, path| {
                b.iter(|| {
                    black_box(table.find(&Method::GET, Some("api.example.com"), black_box(path)))
                });
            });
        }
        group.finish();
    }

    /// An order of about 10 KB: attributes, repeated elements, nesting,
    /// escaped text; as XML and as the JSON it maps to.
    fn order_documents() -> (String, Value) {
        let mut xml = String::from(
            r#"<?xml version="1.0" encoding="UTF-8"?><order id="7" xmlns:a="urn:audit"><status>shipped</status>"#,
        );
        let mut index = 0;
        while xml.len() < 10 * 1024 {
            xml.push_str(&format!(
                r#"<item sku="SKU-{index}"><name>Item {index} &amp; co</name><price currency="EUR">{index}.90</price><qty>2</qty><tags><tag>a</tag><tag>b</tag></tags></item>"#
            ));
            index += 1;
        }
        xml.push_str("<a:trail>batch 42</a:trail></order>");
        let options = XmlOptions::default();
        let (_, json) = portico::transform::xml::to_json(xml.as_bytes(), &options).unwrap();
        (xml, json)
    }

    pub fn transformation(c: &mut Criterion) {
        let (xml, json) = order_documents();
        let json_text = serde_json::to_vec(&json).unwrap();
        let options = XmlOptions {
            root: "order".to_owned(),
            ..XmlOptions::default()
        };
        let mut group = c.benchmark_group("transform_10kb");
        group.throughput(criterion::Throughput::Bytes(xml.len() as u64));
        group.bench_function("xml_to_json", |b| {
            b.iter(|| {
                black_box(
                    rewrite_body(
                        black_box(xml.as_bytes()),
                        Format::Xml,
                        &[],
                        Format::Json,
                        &options,
                    )
                    .unwrap(),
                )
            });
        });
        group.bench_function("json_to_xml", |b| {
            b.iter(|| {
                black_box(
                    rewrite_body(
                        black_box(&json_text),
                        Format::Json,
                        &[],
                        Format::Xml,
                        &options,
                    )
                    .unwrap(),
                )
            });
        });
        group.finish();
    }
}

#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_group!(
    benches,
    native::pipeline,
    native::route_matching,
    native::rate_limit_decision,
    native::target_choice,
    native::transformation
);
#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_main!(benches);

#[cfg(target_arch = "wasm32")]
fn main() {}
