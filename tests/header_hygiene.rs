//! Headers between client, gateway and upstream: hop-by-hop headers never
//! cross, forwarding headers describe the real client, and client-sent
//! copies of them are not believed unless the operator says so.

mod common;

use common::{Harness, fixture, header, request};
use http::{HeaderMap, Method};

fn upstream_headers(harness: &Harness) -> HeaderMap {
    harness
        .platform
        .sent()
        .last()
        .expect("a request went upstream")
        .headers
        .clone()
}

#[test]
fn hop_by_hop_headers_are_removed_towards_the_upstream() {
    let harness = Harness::basic();
    harness.send(request(
        Method::GET,
        "http://gw.example/api/users/1",
        &[
            ("connection", "keep-alive, x-hop-secret"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("x-hop-secret", "only for the next hop"),
            ("x-end-to-end", "stays"),
        ],
    ));
    let sent = upstream_headers(&harness);
    for gone in [
        "connection",
        "keep-alive",
        "te",
        "upgrade",
        "proxy-authorization",
        "x-hop-secret",
        "host",
    ] {
        assert!(!sent.contains_key(gone), "{gone} was forwarded");
    }
    assert_eq!(header(&sent, "x-end-to-end"), Some("stays"));
}

#[test]
fn hop_by_hop_headers_are_removed_towards_the_client() {
    let harness = Harness::basic();
    let response = harness.get("http://gw.example/api/users/1");
    let headers = response.headers();
    // The echo origin sends Connection: keep-alive, x-origin-secret.
    for gone in ["connection", "keep-alive", "x-origin-secret"] {
        assert!(!headers.contains_key(gone), "{gone} reached the client");
    }
    assert_eq!(header(headers, "content-type"), Some("application/json"));
}

#[test]
fn forwarding_headers_describe_the_real_client() {
    let harness = Harness::basic();
    harness.send(request(
        Method::GET,
        "https://api.example.com:8443/api/users/1",
        &[],
    ));
    let sent = upstream_headers(&harness);
    assert_eq!(header(&sent, "x-forwarded-for"), Some("203.0.113.9"));
    assert_eq!(header(&sent, "x-forwarded-proto"), Some("https"));
    assert_eq!(
        header(&sent, "x-forwarded-host"),
        Some("api.example.com:8443")
    );
}

#[test]
fn spoofed_forwarding_headers_from_the_client_are_dropped() {
    let harness = Harness::basic();
    harness.send(request(
        Method::GET,
        "http://gw.example/api/users/1",
        &[
            ("x-forwarded-for", "10.0.0.1, 6.6.6.6"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "admin.internal"),
            ("x-forwarded-port", "443"),
            ("x-forwarded-prefix", "/admin"),
            ("forwarded", "for=6.6.6.6;proto=https"),
            ("x-real-ip", "6.6.6.6"),
        ],
    ));
    let sent = upstream_headers(&harness);
    assert_eq!(header(&sent, "x-forwarded-for"), Some("203.0.113.9"));
    assert_eq!(header(&sent, "x-forwarded-proto"), Some("http"));
    assert_eq!(header(&sent, "x-forwarded-host"), Some("gw.example"));
    for gone in [
        "x-forwarded-port",
        "x-forwarded-prefix",
        "forwarded",
        "x-real-ip",
    ] {
        assert!(!sent.contains_key(gone), "{gone} was forwarded");
    }
}

/// A gateway whose config trusts client-sent forwarding headers.
fn trusting_forwarded_headers() -> Harness {
    let config = fixture("config/basic.json").replace(
        r#""config_refresh_seconds": 5"#,
        r#""config_refresh_seconds": 5, "trust_forwarded_headers": true"#,
    );
    Harness::with_config(&config)
}

#[test]
fn trusted_forwarding_headers_are_kept_and_extended() {
    let harness = trusting_forwarded_headers();
    harness.send(request(
        Method::GET,
        "http://gw.example/api/users/1",
        &[
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "public.example.com"),
        ],
    ));
    let sent = upstream_headers(&harness);
    assert_eq!(
        header(&sent, "x-forwarded-for"),
        Some("198.51.100.1, 203.0.113.9")
    );
    assert_eq!(header(&sent, "x-forwarded-proto"), Some("https"));
    assert_eq!(
        header(&sent, "x-forwarded-host"),
        Some("public.example.com")
    );
}

#[test]
fn a_trusted_chain_keeps_every_line_in_order_unless_connection_names_it() {
    let harness = trusting_forwarded_headers();
    harness.send(request(
        Method::GET,
        "http://gw.example/api/users/1",
        &[
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-for", " 198.51.100.2 "),
            ("x-multi", "one"),
            ("x-multi", "two"),
            ("connection", "close"),
        ],
    ));
    let sent = upstream_headers(&harness);
    assert_eq!(
        header(&sent, "x-forwarded-for"),
        Some("198.51.100.1, 198.51.100.2, 203.0.113.9")
    );
    let multi: Vec<_> = sent.get_all("x-multi").iter().collect();
    assert_eq!(multi, ["one", "two"]);
    assert!(!sent.contains_key("connection"));

    harness.send(request(
        Method::GET,
        "http://gw.example/api/users/1",
        &[
            ("x-forwarded-for", "198.51.100.1"),
            ("connection", "X-Forwarded-For"),
        ],
    ));
    let sent = upstream_headers(&harness);
    assert_eq!(header(&sent, "x-forwarded-for"), Some("203.0.113.9"));
}

#[test]
fn without_a_known_client_address_no_forwarded_for_is_invented() {
    let harness = Harness::basic();
    harness.send_from(
        request(
            Method::GET,
            "http://gw.example/api/users/1",
            &[("x-forwarded-for", "6.6.6.6")],
        ),
        None,
    );
    assert!(!upstream_headers(&harness).contains_key("x-forwarded-for"));
}

#[test]
fn the_request_id_header_name_is_configurable() {
    let config = fixture("config/basic.json").replace(
        r#""config_refresh_seconds": 5"#,
        r#""config_refresh_seconds": 5, "request_id_header": "X-Correlation-Id""#,
    );
    let harness = Harness::with_config(&config);
    let response = harness.send(request(
        Method::GET,
        "http://gw.example/api/users/1",
        &[("x-correlation-id", "corr-1")],
    ));
    assert_eq!(
        header(response.headers(), "x-correlation-id"),
        Some("corr-1")
    );
    assert_eq!(
        header(&upstream_headers(&harness), "x-correlation-id"),
        Some("corr-1")
    );
    assert!(!response.headers().contains_key("x-request-id"));
}

#[test]
fn client_headers_with_underscores_never_reach_the_service() {
    let harness = Harness::basic();
    harness.send(request(
        Method::GET,
        "http://gw.example/api/users/1",
        &[
            // Many servers (CGI, WSGI, Rack, PHP) read `_` as `-`: each of
            // these would stand in for a header the gateway owns.
            ("X_Portico_Roles", "admin"),
            ("x_portico_consumer", "root"),
            ("X_Forwarded_For", "6.6.6.6"),
            ("x_real_ip", "6.6.6.6"),
            ("X_Request_Id", "forged"),
            ("x_http_method_override", "DELETE"),
            ("x_custom_thing", "harmless but dropped too"),
            ("x-custom-thing", "stays"),
        ],
    ));
    let sent = upstream_headers(&harness);
    let underscored: Vec<&str> = sent
        .keys()
        .map(|name| name.as_str())
        .filter(|name| name.contains('_'))
        .collect();
    assert!(underscored.is_empty(), "forwarded: {underscored:?}");
    assert_eq!(header(&sent, "x-custom-thing"), Some("stays"));
    assert_eq!(header(&sent, "x-forwarded-for"), Some("203.0.113.9"));
}

/// Headers that ask a service to undo a decision the gateway made: which
/// method, which path, which client.
const OVERRIDES: [(&str, &str); 8] = [
    ("x-http-method-override", "DELETE"),
    ("x-method-override", "DELETE"),
    ("x-http-method", "DELETE"),
    ("x-original-url", "/admin/users"),
    ("x-rewrite-url", "/admin/users"),
    ("true-client-ip", "10.0.0.1"),
    ("x-client-ip", "10.0.0.1"),
    ("x-cluster-client-ip", "10.0.0.1"),
];

#[test]
fn method_override_original_url_and_client_ip_claims_are_stripped_by_default() {
    let harness = Harness::basic();
    let mut headers = OVERRIDES.to_vec();
    headers.push(("x-custom-thing", "stays"));
    harness.send(request(
        Method::GET,
        "http://gw.example/api/users/1",
        &headers,
    ));
    let sent = upstream_headers(&harness);
    for (gone, _) in OVERRIDES {
        assert!(!sent.contains_key(gone), "{gone} was forwarded");
    }
    assert_eq!(header(&sent, "x-custom-thing"), Some("stays"));
}

#[test]
fn the_stripped_request_headers_are_configurable() {
    let config = fixture("config/basic.json").replace(
        r#""config_refresh_seconds": 5"#,
        r#""config_refresh_seconds": 5, "strip_request_headers": ["X-Debug-Token"]"#,
    );
    let harness = Harness::with_config(&config);
    harness.send(request(
        Method::GET,
        "http://gw.example/api/users/1",
        &[("x-debug-token", "t"), ("x-http-method-override", "PATCH")],
    ));
    let sent = upstream_headers(&harness);
    assert!(!sent.contains_key("x-debug-token"));
    assert_eq!(
        header(&sent, "x-http-method-override"),
        Some("PATCH"),
        "a list of its own replaces the default"
    );
}

#[test]
fn the_client_address_comes_from_the_header_the_config_trusts() {
    let config = |setting: Option<&str>| {
        let mut config = serde_json::json!({ "version": 1,
            "services": { "s": { "url": "http://127.0.0.1:9101" } },
            "routes": [ { "id": "r", "path": "/*", "service": "s" } ] });
        if let Some(header) = setting {
            config["settings"] = serde_json::json!({ "client_ip_header": header });
        }
        config.to_string()
    };
    let forwarded_for = |harness: &Harness, headers: &[(&str, &str)]| {
        let response =
            harness.send_from(request(Method::GET, "http://gw.example/x", headers), None);
        common::body_json(&response)["headers"]["x-forwarded-for"]
            .as_str()
            .map(str::to_owned)
    };
    let cloudflare = Harness::with_config(&config(None));
    assert_eq!(
        forwarded_for(&cloudflare, &[("cf-connecting-ip", "198.51.100.7")]).as_deref(),
        Some("198.51.100.7"),
        "by default, CF-Connecting-IP (which Cloudflare sets)"
    );
    let behind_proxy = Harness::with_config(&config(Some("x-client-address")));
    assert_eq!(
        forwarded_for(
            &behind_proxy,
            &[
                ("x-client-address", "2001:db8::1"),
                ("cf-connecting-ip", "6.6.6.6")
            ]
        )
        .as_deref(),
        Some("2001:db8::1")
    );
    let unknown = Harness::with_config(&config(Some("")));
    assert_eq!(
        forwarded_for(&unknown, &[("cf-connecting-ip", "6.6.6.6")]),
        None,
        "no header is trusted"
    );
}
