//! Aggregated routes on the in-memory platform with fake time that passes
//! for concurrent work: legs run in parallel (the slowest sets the pace),
//! queue beyond six, chain in dependency order; partial and required
//! failures, merge modes, field shaping, identity, and every config
//! refusal.

mod common;

use bytes::Bytes;
use common::{Harness, auth_config, body_json, header, request};
use http::{Method, StatusCode};
use portico::config::Config;
use portico::observe::events::AccessLog;
use portico::platform::memory::OriginReply;
use serde_json::{Value, json};

fn harness(aggregate: Value) -> Harness {
    let mut config: Value = serde_json::from_str(&auth_config(
        json!({}),
        json!([
            { "id": "dashboard", "path": "/dashboard/:id", "methods": ["GET"], "aggregate": aggregate },
            { "id": "mine", "path": "/mine", "methods": ["GET"], "auth": { "api_key": {} },
              "aggregate": { "legs": [
                  { "name": "me", "service": "users", "path": "/users/{identity.consumer}" } ] } }
        ]),
    ))
    .unwrap();
    // A service nothing answers for.
    config["services"]["down"] = json!({ "url": "http://127.0.0.1:9109" });
    config["log"] = json!({ "sample_rate": 1 });
    Harness::with_config(&config.to_string())
}

fn leg(name: &str, path: &str) -> Value {
    json!({ "name": name, "service": "users", "path": path })
}

fn last_log(harness: &Harness) -> AccessLog {
    harness.access_logs().pop().expect("an access log")
}

fn dashboard(harness: &Harness, path: &str) -> http::Response<portico::Body<Bytes>> {
    harness.send_timed(request(
        Method::GET,
        &format!("http://gw.example{path}"),
        &[],
    ))
}

#[test]
fn legs_run_in_parallel_so_the_slowest_sets_the_pace() {
    let harness = harness(json!({ "legs": [
        leg("a", "/a/{params.id}?delay_ms=200"),
        leg("b", "/b?delay_ms=300"),
        leg("c", "/c?delay_ms=400"),
    ] }));
    let response = dashboard(&harness, "/dashboard/42");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(response.headers(), "portico-aggregate"),
        Some("complete")
    );
    let body = body_json(&response);
    assert_eq!(body["a"]["path"], "/a/42");
    assert_eq!(body["c"]["path"], "/c");
    let log = last_log(&harness);
    assert_eq!(
        log.timings_ms.upstream,
        Some(400),
        "not 900: the legs overlapped"
    );
    assert_eq!(log.attempts.len(), 3);
}

#[test]
fn more_than_six_legs_wait_for_a_free_place() {
    let legs: Vec<Value> = (0..8)
        .map(|i| leg(&format!("leg{i}"), "/x?delay_ms=100"))
        .collect();
    let harness = harness(json!({ "legs": legs }));
    let response = dashboard(&harness, "/dashboard/1");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(&response).as_object().unwrap().len(), 8);
    assert_eq!(
        last_log(&harness).timings_ms.upstream,
        Some(200),
        "six, then two"
    );
}

#[test]
fn a_chained_leg_runs_when_its_input_is_ready() {
    let harness = harness(json!({ "legs": [
        leg("team", "/teams/{user.body.query}?delay_ms=100"),
        leg("user", "/users/{params.id}?team_id=7&delay_ms=100"),
        leg("other", "/other?delay_ms=150"),
    ] }));
    let response = dashboard(&harness, "/dashboard/9");
    assert_eq!(response.status(), StatusCode::OK);
    let body = body_json(&response);
    // The echo's `query` field of the user leg feeds the team leg's path.
    assert_eq!(body["team"]["path"], "/teams/team_id%3D7%26delay_ms%3D100");
    assert_eq!(
        last_log(&harness).timings_ms.upstream,
        Some(200),
        "chain 100+100, beside 150"
    );
    let order: Vec<String> = harness
        .platform
        .sent()
        .iter()
        .map(|r| r.uri.path().to_owned())
        .collect();
    assert_eq!(
        order.last().map(String::as_str),
        Some("/teams/team_id%3D7%26delay_ms%3D100")
    );
}

#[test]
fn an_optional_leg_that_fails_leaves_a_problem_in_its_slot() {
    let harness = harness(json!({ "legs": [
        leg("user", "/users/{params.id}"),
        { "name": "orders", "service": "down", "path": "/orders", "required": false },
        { "name": "slow", "service": "users", "path": "/x?delay_ms=5000", "timeout_ms": 100, "required": false },
    ] }));
    let response = dashboard(&harness, "/dashboard/1");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(response.headers(), "portico-aggregate"),
        Some("partial; failed=orders,slow")
    );
    let body = body_json(&response);
    assert_eq!(body["user"]["path"], "/users/1");
    assert_eq!(
        body["orders"]["type"],
        "urn:portico:problem:aggregate-leg-failed"
    );
    assert_eq!(body["orders"]["leg"], "orders");
    assert_eq!(body["slow"]["status"], 504);
    let text = body.to_string();
    assert!(
        !text.contains("127.0.0.1") && !text.contains("9109"),
        "{text}"
    );
}

#[test]
fn a_required_leg_that_fails_fails_the_call_and_names_it() {
    let failing = harness(
        json!({ "legs": [ leg("user", "/users/1"), { "name": "orders", "service": "down", "path": "/orders" } ] }),
    );
    let response = dashboard(&failing, "/dashboard/1");
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let problem = body_json(&response);
    assert_eq!(problem["type"], "urn:portico:problem:aggregate-failed");
    assert_eq!(problem["legs"][0]["leg"], "orders");
    assert!(!problem.to_string().contains("127.0.0.1"));

    let slow = harness(
        json!({ "legs": [ { "name": "user", "service": "users", "path": "/u?delay_ms=900", "timeout_ms": 300 } ] }),
    );
    let response = dashboard(&slow, "/dashboard/1");
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        body_json(&response)["type"],
        "urn:portico:problem:aggregate-timeout"
    );
    assert_eq!(last_log(&slow).timings_ms.upstream, Some(300));
}

#[test]
fn the_deadline_bounds_the_whole_call() {
    let harness = harness(json!({ "deadline_ms": 250, "legs": [
        leg("first", "/a?delay_ms=200"),
        { "name": "second", "service": "users", "path": "/b/{first.body.method}?delay_ms=200", "required": false },
    ] }));
    let response = dashboard(&harness, "/dashboard/1");
    assert_eq!(
        header(response.headers(), "portico-aggregate"),
        Some("partial; failed=second")
    );
    assert_eq!(last_log(&harness).timings_ms.upstream, Some(250));
}

/// The echo origin, except that `/stuck` sends its headers and then stalls.
fn stalling_origin(harness: &Harness) {
    let echo = common::echo_origin("users");
    harness
        .platform
        .add_origin("127.0.0.1:9101", move |request| {
            if request.uri.path() == "/stuck" {
                let mut response = http::Response::new(Bytes::from_static(b"{\"partial\": "));
                response
                    .headers_mut()
                    .insert("content-type", "application/json".parse().unwrap());
                OriginReply::StalledBody(response)
            } else {
                echo(request)
            }
        });
}

#[test]
fn a_leg_whose_body_stalls_times_out_within_its_time() {
    let harness = harness(json!({ "legs": [
        leg("user", "/users/1?delay_ms=100"),
        { "name": "stuck", "service": "users", "path": "/stuck", "timeout_ms": 300, "required": false },
    ] }));
    stalling_origin(&harness);
    let response = dashboard(&harness, "/dashboard/1");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(response.headers(), "portico-aggregate"),
        Some("partial; failed=stuck")
    );
    let body = body_json(&response);
    assert_eq!(body["user"]["path"], "/users/1");
    assert_eq!(
        body["stuck"]["detail"],
        "The service did not answer in time."
    );
    assert_eq!(
        last_log(&harness).timings_ms.upstream,
        Some(300),
        "the headers came at once; the leg's time covers its body too"
    );
}

#[test]
fn a_required_leg_whose_body_stalls_ends_the_call_at_the_deadline() {
    let harness = harness(json!({ "deadline_ms": 250, "legs": [
        leg("user", "/users/1"),
        { "name": "stuck", "service": "users", "path": "/stuck" },
    ] }));
    stalling_origin(&harness);
    let response = dashboard(&harness, "/dashboard/1");
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(
        body_json(&response)["detail"]
            .as_str()
            .unwrap()
            .contains("stuck")
    );
    assert_eq!(last_log(&harness).timings_ms.upstream, Some(250));
}

#[test]
fn a_leg_that_does_not_answer_json_is_reported_not_a_crash() {
    let harness = harness(
        json!({ "legs": [ leg("user", "/users/1"), { "name": "html", "service": "users", "path": "/page", "required": false } ] }),
    );
    harness.platform.add_origin("127.0.0.1:9101", |request| {
        let body = if request.uri.path() == "/page" {
            "<html>"
        } else {
            "{\"ok\":true}"
        };
        OriginReply::Respond(http::Response::new(Bytes::from(body)))
    });
    let response = dashboard(&harness, "/dashboard/1");
    assert_eq!(response.status(), StatusCode::OK);
    let body = body_json(&response);
    assert_eq!(body["user"]["ok"], true);
    assert!(
        body["html"]["detail"]
            .as_str()
            .unwrap()
            .contains("not JSON")
    );
}

#[test]
fn a_leg_that_got_no_response_is_sent_once_more_the_same() {
    let harness = harness(json!({ "legs": [ leg("user", "/users/1") ] }));
    let refused = std::cell::Cell::new(false);
    harness.platform.add_origin("127.0.0.1:9101", move |_| {
        if !refused.replace(true) {
            return OriginReply::Refuse;
        }
        OriginReply::Respond(http::Response::new(Bytes::from_static(b"{\"ok\":true}")))
    });
    let response = dashboard(&harness, "/dashboard/1");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(&response)["user"]["ok"], true);
    // The second try is the same request: URL and every header.
    let sent = harness.platform.sent();
    assert_eq!(sent.len(), 2, "one retry");
    assert_eq!(sent[0].uri, sent[1].uri);
    assert_eq!(sent[0].headers, sent[1].headers);
    assert!(sent[1].headers.contains_key("traceparent"));
}

#[test]
fn merge_modes_and_field_shaping_apply_as_configured() {
    let shaped = harness(json!({ "merge": "deep", "legs": [
        { "name": "user", "service": "users", "path": "/users/1", "allow": ["method", "path"], "rename": { "path": "user_path" } },
        { "name": "extra", "service": "users", "path": "/extra", "take": "headers", "deny": ["x-request-id", "traceparent", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"] },
    ] }));
    let body = body_json(&dashboard(&shaped, "/dashboard/1"));
    assert_eq!(body["user_path"], "/users/1");
    assert_eq!(body["method"], "GET");
    assert!(body.get("query").is_none() && body.get("x-request-id").is_none());

    let listed = harness(json!({ "merge": "array", "legs": [ leg("a", "/a"), leg("b", "/b") ] }));
    let body = body_json(&dashboard(&listed, "/dashboard/1"));
    assert_eq!(body[0]["path"], "/a");
    assert_eq!(body[1]["path"], "/b");
}

#[test]
fn legs_carry_the_callers_verified_identity_and_no_credential() {
    let harness = harness(json!({ "legs": [ leg("a", "/a") ] }));
    let (_, key) = harness.store_key(5, "acme", |_| {});
    let response = harness.send_timed(request(
        Method::GET,
        "http://gw.example/mine",
        &[("x-api-key", &key)],
    ));
    assert_eq!(response.status(), StatusCode::OK);
    let me = &body_json(&response)["me"];
    assert_eq!(me["path"], "/users/acme");
    assert_eq!(me["headers"]["x-portico-consumer"], "acme");
    assert!(me["headers"].get("x-api-key").is_none());
    let unauthenticated = harness.send_timed(request(Method::GET, "http://gw.example/mine", &[]));
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    assert!(
        harness.platform.sent().len() == 1,
        "no leg ran for the refused call"
    );
}

#[test]
fn aggregates_that_cannot_work_are_refused_with_their_paths() {
    let config = |route: Value| {
        json!({ "version": 1,
                "services": { "users": { "url": "http://127.0.0.1:9101" } },
                "routes": [ route ] })
        .to_string()
    };
    let aggregate =
        |aggregate: Value| json!({ "id": "r", "path": "/r/:id", "aggregate": aggregate });
    let too_many: Vec<Value> = (0..21).map(|i| leg(&format!("l{i}"), "/x")).collect();
    let cases = [
        (
            aggregate(json!({ "legs": [ leg("a", "/a/{b.body.x}"), leg("b", "/b/{a.body.y}") ] })),
            "routes[0].aggregate.legs",
            "cycle",
        ),
        (
            aggregate(json!({ "legs": [ leg("a", "/a/{nobody.body.x}") ] })),
            "routes[0].aggregate.legs[0].path",
            "no leg named",
        ),
        (
            aggregate(json!({ "legs": [ leg("a", "/a/{a.body.x}") ] })),
            "routes[0].aggregate.legs[0].path",
            "its own answer",
        ),
        (
            aggregate(json!({ "legs": too_many })),
            "routes[0].aggregate.legs",
            "1 to 20",
        ),
        (
            aggregate(json!({ "legs": [ { "name": "a", "service": "nope", "path": "/a" } ] })),
            "routes[0].aggregate.legs[0].service",
            "no usable service",
        ),
        (
            aggregate(json!({ "legs": [ leg("a", "/a/{params.nope}") ] })),
            "routes[0].aggregate.legs[0].path",
            "no parameter",
        ),
        (
            aggregate(json!({ "legs": [ leg("a", "/a"), leg("a", "/b") ] })),
            "routes[0].aggregate.legs[1].name",
            "earlier leg",
        ),
        (
            aggregate(
                json!({ "legs": [ { "name": "a", "service": "users", "path": "/a", "allow": ["x"], "deny": ["y"] } ] }),
            ),
            "routes[0].aggregate.legs[0]",
            "not both",
        ),
        (
            aggregate(json!({ "merge": "zip", "legs": [ leg("a", "/a") ] })),
            "routes[0].aggregate.merge",
            "unknown variant",
        ),
        (
            json!({ "id": "r", "path": "/r", "service": "users", "aggregate": { "legs": [ leg("a", "/a") ] } }),
            "routes[0]",
            "exactly one",
        ),
        (
            json!({ "id": "r", "path": "/r" }),
            "routes[0]",
            "exactly one",
        ),
    ];
    for (route, path, words) in cases {
        let error = Config::from_json(&config(route.clone())).unwrap_err();
        assert!(
            error
                .issues
                .iter()
                .any(|issue| issue.path == path && issue.reason.contains(words)),
            "{route}: expected '{words}' at {path}, got {error}"
        );
    }
}

#[test]
fn a_cached_leg_costs_no_call_while_it_is_fresh() {
    let harness = harness(json!({ "legs": [
        { "name": "user", "service": "users", "path": "/users/{params.id}", "cache": { "ttl_seconds": 60 } },
        leg("live", "/live"),
    ] }));
    let first = dashboard(&harness, "/dashboard/1");
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(harness.platform.sent().len(), 2);
    let second = dashboard(&harness, "/dashboard/1");
    assert_eq!(body_json(&second)["user"], body_json(&first)["user"]);
    let paths: Vec<String> = harness
        .platform
        .sent()
        .iter()
        .map(|r| r.uri.path().to_owned())
        .collect();
    assert_eq!(
        paths,
        ["/users/1", "/live", "/live"],
        "the user leg came from the cache"
    );
    dashboard(&harness, "/dashboard/2");
    assert_eq!(
        harness.platform.sent().len(),
        5,
        "another id, another entry"
    );
    harness.platform.advance(std::time::Duration::from_secs(61));
    dashboard(&harness, "/dashboard/1");
    assert_eq!(harness.platform.sent().len(), 7, "expired: asked again");
}

#[test]
fn purging_the_aggregate_route_retires_its_cached_legs() {
    let mut config: Value = serde_json::from_str(&auth_config(
        json!({}),
        json!([
            { "id": "dashboard", "path": "/dashboard/:id", "methods": ["GET"], "aggregate": { "legs": [
                { "name": "user", "service": "users", "path": "/users/{params.id}", "cache": { "ttl_seconds": 300 } } ] } },
            { "id": "plain", "path": "/plain/:id", "methods": ["GET"], "aggregate": { "legs": [
                { "name": "user", "service": "users", "path": "/users/{params.id}" } ] } }
        ]),
    ))
    .unwrap();
    config["admin"] = json!({ "token_secret": "ADMIN_TOKEN" });
    let harness = Harness::with_config(&config.to_string());
    harness.platform.set_secret("ADMIN_TOKEN", "admin-secret");
    let purge = |route: &str| {
        harness.send(request(
            Method::DELETE,
            &format!("http://gw.example/__portico/cache/routes/{route}"),
            &[("authorization", "Bearer admin-secret")],
        ))
    };
    dashboard(&harness, "/dashboard/1");
    dashboard(&harness, "/dashboard/1");
    assert_eq!(
        harness.platform.sent().len(),
        1,
        "the second came from the cache"
    );
    assert_eq!(purge("dashboard").status(), StatusCode::OK);
    dashboard(&harness, "/dashboard/1");
    assert_eq!(harness.platform.sent().len(), 2, "purged: asked again");
    dashboard(&harness, "/dashboard/1");
    assert_eq!(harness.platform.sent().len(), 2, "and stored again");
    assert_eq!(
        purge("plain").status(),
        StatusCode::NOT_FOUND,
        "an aggregate that caches nothing has nothing to purge"
    );
}

#[test]
fn a_leg_cache_that_contradicts_itself_is_refused() {
    let error = Config::from_json(
        &json!({ "version": 1,
                 "services": { "users": { "url": "http://127.0.0.1:9101" } },
                 "routes": [ { "id": "r", "path": "/r", "aggregate": { "legs": [
                     { "name": "a", "service": "users", "method": "POST", "path": "/a", "cache": {} } ] } } ] })
        .to_string(),
    )
    .unwrap_err();
    assert!(
        error
            .issues
            .iter()
            .any(|issue| issue.path == "routes[0].aggregate.legs[0].cache"),
        "{error}"
    );
}

#[test]
fn a_leg_answer_over_its_cap_fails_that_leg() {
    // Each echo answer is a few hundred bytes.
    let harness = harness(json!({ "max_leg_bytes": 64, "legs": [
        { "name": "small", "service": "users", "path": "/s", "required": false },
    ] }));
    let response = dashboard(&harness, "/dashboard/1");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(response.headers(), "portico-aggregate"),
        Some("partial; failed=small")
    );
    let slot = &body_json(&response)["small"];
    assert_eq!(slot["type"], "urn:portico:problem:aggregate-leg-failed");
    assert!(
        slot["detail"].as_str().unwrap_or("").contains("64 bytes"),
        "{slot}"
    );

    let required = harness_with_leg_cap(64);
    let response = dashboard(&required, "/dashboard/1");
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(body_json(&response)["legs"][0]["leg"], "user");
}

fn harness_with_leg_cap(bytes: u64) -> Harness {
    harness(json!({ "max_leg_bytes": bytes, "legs": [ leg("user", "/u") ] }))
}

#[test]
fn a_merged_document_over_its_cap_is_a_502_without_the_document() {
    let harness = harness(json!({ "max_response_bytes": 300, "legs": [
        leg("a", "/a"), leg("b", "/b"),
    ] }));
    let response = dashboard(&harness, "/dashboard/1");
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let problem = body_json(&response);
    assert!(
        problem["type"]
            .as_str()
            .unwrap_or("")
            .starts_with("urn:portico:problem:")
    );
    assert!(problem.get("a").is_none() && problem.get("b").is_none());
    assert!(!problem.to_string().contains("127.0.0.1"), "{problem}");
    let one = harness_with_leg_cap(4096);
    assert_eq!(
        dashboard(&one, "/dashboard/1").status(),
        StatusCode::OK,
        "within the caps it answers"
    );
}

#[test]
fn the_config_sets_how_many_legs_an_aggregate_may_list() {
    let config = |settings: Value, legs: usize| {
        let legs: Vec<Value> = (0..legs).map(|i| leg(&format!("l{i}"), "/x")).collect();
        json!({ "version": 1, "settings": settings,
                "services": { "users": { "url": "http://127.0.0.1:9101" } },
                "routes": [ { "id": "r", "path": "/r", "aggregate": { "legs": legs } } ] })
        .to_string()
    };
    assert!(Config::from_json(&config(json!({}), 20)).is_ok());
    assert!(Config::from_json(&config(json!({ "max_aggregate_legs": 3 }), 3)).is_ok());
    let error = Config::from_json(&config(json!({ "max_aggregate_legs": 3 }), 4)).unwrap_err();
    assert!(
        error
            .issues
            .iter()
            .any(|issue| issue.path == "routes[0].aggregate.legs"
                && issue
                    .reason
                    .contains("1 to 3 legs (settings.max_aggregate_legs), got 4")),
        "{error}"
    );
    for bad in [json!(0), json!(21), json!(-1)] {
        let error =
            Config::from_json(&config(json!({ "max_aggregate_legs": bad }), 1)).unwrap_err();
        assert!(
            error
                .issues
                .iter()
                .any(|issue| issue.path.starts_with("settings")),
            "{bad}: {error}"
        );
    }
}
