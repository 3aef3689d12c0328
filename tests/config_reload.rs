//! The per-isolate config cache, on a fake clock: KV is read once per
//! refresh interval, edits take effect after it, and a refused or unreadable
//! document never replaces the last good one.

mod common;

use std::time::Duration;

use common::{Harness, body_json, fixture};
use http::StatusCode;
use portico::config::CONFIG_KEY;
use portico::observe::events::Event;
use portico::platform::KvNamespace;

const REFRESH: Duration = Duration::from_secs(5); // demo.json's config_refresh_seconds

fn with_extra_route(path: &str) -> String {
    let mut config: serde_json::Value =
        serde_json::from_str(&fixture("config/basic.json")).unwrap();
    config["routes"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "id": "extra", "path": path, "service": "orders"
        }));
    config.to_string()
}

#[test]
fn no_config_in_kv_gives_503_not_configured() {
    let harness = Harness::basic();
    harness.platform.kv_delete(KvNamespace::Config, CONFIG_KEY);
    let response = harness.get("http://gw.example/api/users/1");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body_json(&response)["type"],
        "urn:portico:problem:not-configured"
    );
    assert!(harness.platform.events().contains(&Event::ConfigMissing {
        kept_previous: false
    }));
}

#[test]
fn a_config_that_vanishes_from_kv_leaves_the_last_good_one_serving() {
    let harness = Harness::basic();
    assert_eq!(
        harness.get("http://gw.example/api/users/1").status(),
        StatusCode::OK
    );
    harness.platform.kv_delete(KvNamespace::Config, CONFIG_KEY);
    harness.platform.advance(REFRESH);
    assert_eq!(
        harness.get("http://gw.example/api/users/1").status(),
        StatusCode::OK
    );
    assert!(harness.platform.events().contains(&Event::ConfigMissing {
        kept_previous: true
    }));
    // A document that comes back is read again.
    harness
        .platform
        .kv_put(KvNamespace::Config, CONFIG_KEY, &with_extra_route("/extra"));
    harness.platform.advance(REFRESH);
    assert_eq!(
        harness.get("http://gw.example/extra").status(),
        StatusCode::OK
    );
}

#[test]
fn kv_is_read_once_per_refresh_interval() {
    let harness = Harness::basic();
    for _ in 0..10 {
        assert_eq!(
            harness.get("http://gw.example/api/users/1").status(),
            StatusCode::OK
        );
    }
    assert_eq!(harness.platform.kv_reads(), 1);
    harness.platform.advance(REFRESH - Duration::from_millis(1));
    harness.get("http://gw.example/api/users/1");
    assert_eq!(harness.platform.kv_reads(), 1);
    harness.platform.advance(Duration::from_millis(1));
    harness.get("http://gw.example/api/users/1");
    assert_eq!(harness.platform.kv_reads(), 2);
}

#[test]
fn an_edited_config_takes_effect_after_the_refresh_interval() {
    let harness = Harness::basic();
    assert_eq!(
        harness.get("http://gw.example/new/x").status(),
        StatusCode::NOT_FOUND
    );
    harness
        .platform
        .kv_put(KvNamespace::Config, CONFIG_KEY, &with_extra_route("/new/*"));
    assert_eq!(
        harness.get("http://gw.example/new/x").status(),
        StatusCode::NOT_FOUND
    );
    harness.platform.advance(REFRESH);
    let response = harness.get("http://gw.example/new/x");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(&response)["service"], "orders");
}

#[test]
fn a_refused_config_keeps_the_last_good_one_serving() {
    let harness = Harness::basic();
    assert_eq!(
        harness.get("http://gw.example/api/users/1").status(),
        StatusCode::OK
    );
    harness.platform.kv_put(
        KvNamespace::Config,
        CONFIG_KEY,
        r#"{"version": 1, "routes": "#,
    );
    harness.platform.advance(REFRESH);
    assert_eq!(
        harness.get("http://gw.example/api/users/1").status(),
        StatusCode::OK
    );
    let refused = harness.platform.events().into_iter().find_map(|e| match e {
        Event::ConfigRefused {
            kept_previous,
            errors,
        } => Some((kept_previous, errors)),
        _ => None,
    });
    let (kept_previous, errors) = refused.expect("refusal logged");
    assert!(kept_previous);
    assert!(
        errors[0].starts_with("routes: EOF while parsing"),
        "{errors:?}"
    );

    // A later good edit still gets through.
    harness.platform.kv_put(
        KvNamespace::Config,
        CONFIG_KEY,
        &with_extra_route("/later/*"),
    );
    harness.platform.advance(REFRESH);
    assert_eq!(
        harness.get("http://gw.example/later").status(),
        StatusCode::OK
    );
}

#[test]
fn a_refused_config_with_nothing_to_fall_back_on_gives_503() {
    let harness = Harness::with_config(r#"{"version": 9, "services": {}, "routes": []}"#);
    let response = harness.get("http://gw.example/api/users/1");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body_json(&response)["detail"]
            .as_str()
            .unwrap()
            .contains("refused")
    );
}

#[test]
fn a_failing_kv_read_keeps_the_last_good_config() {
    let harness = Harness::basic();
    harness.get("http://gw.example/api/users/1");
    harness.platform.fail_kv(Some("KV is having a bad day"));
    harness.platform.advance(REFRESH);
    assert_eq!(
        harness.get("http://gw.example/api/users/1").status(),
        StatusCode::OK
    );
    assert!(harness.platform.events().iter().any(|e| matches!(
        e,
        Event::ConfigReadFailed {
            kept_previous: true,
            ..
        }
    )));

    let cold = Harness::basic();
    cold.platform.fail_kv(Some("down"));
    assert_eq!(
        cold.get("http://gw.example/api/users/1").status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    cold.platform.fail_kv(None);
    assert_eq!(
        cold.get("http://gw.example/api/users/1").status(),
        StatusCode::OK,
        "recovers"
    );
}

#[test]
fn an_unchanged_document_is_not_parsed_again() {
    let harness = Harness::basic();
    harness.get("http://gw.example/api/users/1");
    harness.platform.advance(REFRESH);
    harness.get("http://gw.example/api/users/1");
    let loads = harness
        .platform
        .events()
        .iter()
        .filter(|e| matches!(e, Event::ConfigLoaded { .. }))
        .count();
    assert_eq!(harness.platform.kv_reads(), 2);
    assert_eq!(loads, 1);
}

#[test]
fn a_clock_going_backwards_does_not_force_rereads() {
    let harness = Harness::basic();
    harness.get("http://gw.example/api/users/1");
    let now = portico::platform::Clock::now(&harness.platform);
    harness
        .platform
        .set_now(portico::platform::UnixMillis(now.0 - 60_000));
    harness.get("http://gw.example/api/users/1");
    assert_eq!(harness.platform.kv_reads(), 1);
}
