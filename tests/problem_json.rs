//! Every error the gateway answers itself is RFC 9457 problem+json with a
//! stable type, a title, the status and the request id.

mod common;

use common::{Harness, body_json, header, request};
use http::{Method, StatusCode};
use portico::problem::ProblemType;

fn assert_problem(response: &http::Response<portico::Body<bytes::Bytes>>, kind: ProblemType) {
    assert_eq!(response.status(), kind.status);
    assert_eq!(
        header(response.headers(), "content-type"),
        Some("application/problem+json")
    );
    assert_eq!(
        header(response.headers(), "cache-control"),
        Some("no-store")
    );
    let body = body_json(response);
    let object = body.as_object().expect("a JSON object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["detail", "request_id", "status", "title", "type"]);
    assert_eq!(body["type"], format!("urn:portico:problem:{}", kind.slug));
    assert_eq!(body["title"], kind.title);
    assert_eq!(body["status"], kind.status.as_u16());
    assert_eq!(
        body["request_id"],
        header(response.headers(), "x-request-id").expect("request id header")
    );
}

#[test]
fn not_found_is_a_problem() {
    let harness = Harness::basic();
    assert_problem(
        &harness.get("http://gw.example/nothing/here"),
        ProblemType::ROUTE_NOT_FOUND,
    );
}

#[test]
fn method_not_allowed_is_a_problem_with_allow() {
    let harness = Harness::basic();
    let response = harness.send(request(
        Method::PATCH,
        "http://gw.example/api/orders/1",
        &[],
    ));
    assert_problem(&response, ProblemType::METHOD_NOT_ALLOWED);
    assert_eq!(header(response.headers(), "allow"), Some("GET, HEAD, POST"));
    assert_eq!(
        body_json(&response)["detail"],
        "This route accepts: GET, HEAD, POST."
    );
}

#[test]
fn upstream_failures_are_problems() {
    let harness = Harness::basic();
    assert_problem(
        &harness.get("http://gw.example/api/orders/1?delay_ms=5000"),
        ProblemType::UPSTREAM_TIMEOUT,
    );
    harness.platform.add_origin("127.0.0.1:9101", |_| {
        portico::platform::memory::OriginReply::Refuse
    });
    assert_problem(
        &harness.get("http://gw.example/api/users/1"),
        ProblemType::UPSTREAM_UNREACHABLE,
    );
}

#[test]
fn unconfigured_and_bad_requests_are_problems() {
    let harness = Harness::with_config("not json at all");
    assert_problem(
        &harness.get("http://gw.example/"),
        ProblemType::NOT_CONFIGURED,
    );
    let harness = Harness::basic();
    assert_problem(
        &harness.get("http://gw.example/a/%2E%2E/b"),
        ProblemType::BAD_REQUEST,
    );
}

#[test]
fn problem_types_are_stable_and_distinct() {
    let slugs: Vec<&str> = ProblemType::ALL.iter().map(|k| k.slug).collect();
    assert_eq!(
        slugs,
        [
            "not-configured",
            "bad-request",
            "route-not-found",
            "method-not-allowed",
            "unauthorized",
            "forbidden",
            "auth-unavailable",
            "rate-limited",
            "rate-limit-unavailable",
            "upstream-unreachable",
            "upstream-timeout",
            "no-healthy-upstream",
            "invalid-body",
            "body-too-large",
            "unsupported-media-type",
            "upstream-invalid-body",
            "internal-error",
            "aggregate-failed",
            "aggregate-timeout",
            "aggregate-leg-failed",
            "upgrade-not-allowed",
            "origin-not-allowed",
            "upstream-invalid-response",
        ]
    );
    let docs = common::fixture("../docs/problems.md");
    for kind in ProblemType::ALL {
        assert!(
            docs.contains(&kind.uri()),
            "docs/problems.md lacks {}",
            kind.uri()
        );
    }
    assert_eq!(
        StatusCode::from_u16(503).unwrap(),
        ProblemType::NOT_CONFIGURED.status
    );
}
