//! Which route wins: tables built in code, requests looked up, winners
//! asserted. The precedence itself is documented in `routing::table`.

use http::Method;
use portico::routing::{
    HostPattern, Lookup, MethodSet, PathPattern, RequestPath, RouteSpec, RouteTable,
};

fn spec(id: &str, path: &str, methods: &[&str], hosts: &[&str]) -> RouteSpec {
    RouteSpec {
        id: id.to_owned(),
        hosts: hosts
            .iter()
            .map(|h| HostPattern::parse(h).unwrap())
            .collect(),
        path: PathPattern::parse(path).unwrap(),
        methods: if methods.is_empty() {
            MethodSet::Any
        } else {
            MethodSet::parse(methods).unwrap()
        },
    }
}

/// A table whose routes carry their own ids, so a lookup names its winner.
type Table = RouteTable<String>;

fn winner(table: &Table, method: &str, host: Option<&str>, path: &str) -> String {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    match table.find(&method, host, &RequestPath::parse(path).unwrap()) {
        Lookup::Found(id) => id.clone(),
        Lookup::MethodNotAllowed { allow } => format!(
            "405 {}",
            allow
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(",")
        ),
        Lookup::NotFound => "404".to_owned(),
    }
}

fn with_ids(specs: Vec<RouteSpec>) -> impl Iterator<Item = (RouteSpec, String)> {
    specs.into_iter().map(|spec| {
        let id = spec.id.clone();
        (spec, id)
    })
}

fn table(specs: Vec<RouteSpec>) -> Table {
    RouteTable::build(with_ids(specs)).expect("no ties")
}

#[test]
fn precedence_table() {
    let routes = table(vec![
        spec("catch-all", "/*", &[], &[]),
        spec("users-prefix", "/api/users/*", &[], &[]),
        spec("user-by-id", "/api/users/:id", &["GET", "PUT"], &[]),
        spec("user-me", "/api/users/me", &[], &[]),
        spec("user-orders", "/api/users/:id/orders", &["GET"], &[]),
        spec("exact-users", "/api/users", &["GET"], &[]),
        spec("files", "/files/*path", &["GET"], &[]),
        spec("admin-users", "/api/users/*", &[], &["admin.example.com"]),
        spec(
            "tenant-users",
            "/api/users/*",
            &[],
            &["*.tenants.example.com"],
        ),
        spec(
            "deep-tenant",
            "/api/users/*",
            &[],
            &["*.eu.tenants.example.com"],
        ),
        spec("root", "/", &["GET"], &[]),
    ]);
    let cases: &[(&str, Option<&str>, &str, &str)] = &[
        // literal beats parameter beats wildcard
        ("GET", None, "/api/users/me", "user-me"),
        ("GET", None, "/api/users/42", "user-by-id"),
        ("GET", None, "/api/users/42/orders", "user-orders"),
        ("GET", None, "/api/users/42/x", "users-prefix"),
        // the end of a pattern beats a wildcard; whole segments only
        ("GET", None, "/api/users", "exact-users"),
        ("POST", None, "/api/users", "users-prefix"),
        ("GET", None, "/api/users/", "users-prefix"),
        ("GET", None, "/api/usersX", "catch-all"),
        ("GET", None, "/", "root"),
        ("POST", None, "/", "catch-all"),
        // a method mismatch falls through to the next most specific route
        ("DELETE", None, "/api/users/42", "users-prefix"),
        ("HEAD", None, "/api/users/42", "user-by-id"),
        // hosts: exact beats the longest wildcard suffix beats no condition
        (
            "GET",
            Some("admin.example.com"),
            "/api/users/42",
            "admin-users",
        ),
        (
            "GET",
            Some("a.tenants.example.com"),
            "/api/users/42",
            "tenant-users",
        ),
        (
            "GET",
            Some("a.eu.tenants.example.com"),
            "/api/users/42",
            "deep-tenant",
        ),
        (
            "GET",
            Some("tenants.example.com"),
            "/api/users/42",
            "user-by-id",
        ),
        ("GET", Some("admin.example.com"), "/other", "catch-all"),
        // wildcard captures several segments
        ("GET", None, "/files/a/b/c.txt", "files"),
        ("POST", None, "/files/a", "catch-all"),
    ];
    for (method, host, path, expected) in cases {
        assert_eq!(
            &winner(&routes, method, *host, path),
            expected,
            "{method} {host:?} {path}"
        );
    }
}

#[test]
fn listed_method_beats_any_which_beats_head_from_get() {
    let routes = table(vec![
        spec("get", "/r", &["GET"], &[]),
        spec("head", "/r", &["HEAD"], &[]),
        spec("any", "/r", &[], &[]),
        spec("only-get", "/s", &["GET"], &[]),
        spec("any-s", "/s", &[], &[]),
    ]);
    assert_eq!(winner(&routes, "GET", None, "/r"), "get");
    assert_eq!(winner(&routes, "HEAD", None, "/r"), "head");
    assert_eq!(winner(&routes, "POST", None, "/r"), "any");
    assert_eq!(winner(&routes, "HEAD", None, "/s"), "any-s");
}

#[test]
fn method_not_allowed_lists_every_method_of_matching_routes() {
    let routes = table(vec![
        spec("read", "/orders/:id", &["GET"], &[]),
        spec("write", "/orders/:id", &["PUT", "DELETE"], &[]),
        spec("create", "/orders/*", &["POST"], &[]),
        spec("other", "/other", &[], &[]),
    ]);
    assert_eq!(
        winner(&routes, "PATCH", None, "/orders/1"),
        "405 DELETE,GET,HEAD,POST,PUT"
    );
    assert_eq!(winner(&routes, "GET", None, "/nothing"), "404");
}

#[test]
fn a_parameter_never_matches_an_empty_segment() {
    let routes = table(vec![spec("by-id", "/users/:id", &[], &[])]);
    assert_eq!(winner(&routes, "GET", None, "/users/"), "404");
    assert_eq!(winner(&routes, "GET", None, "/users//"), "404");
    assert_eq!(winner(&routes, "GET", None, "/users/x"), "by-id");
}

#[test]
fn encoded_unreserved_characters_cannot_dodge_a_route() {
    let routes = table(vec![
        spec("admin", "/admin/*", &[], &[]),
        spec("public", "/*", &[], &[]),
    ]);
    assert_eq!(winner(&routes, "GET", None, "/%61dmin/users"), "admin");
    assert_eq!(winner(&routes, "GET", None, "/ADMIN/users"), "public");
}

#[test]
fn ties_are_refused_with_both_routes_named() {
    let conflicts = Table::build(with_ids(vec![
        spec("a", "/x/:id", &["GET"], &[]),
        spec("b", "/x/:other", &["POST", "GET"], &[]),
        spec("c", "/x/:id", &["PUT"], &[]),
    ]))
    .unwrap_err();
    assert_eq!(conflicts.len(), 1);
    assert_eq!((conflicts[0].first, conflicts[0].second), (0, 1));
}

#[test]
fn ten_thousand_routes_still_find_the_most_specific() {
    let mut specs: Vec<RouteSpec> = (0..10_000)
        .map(|i| spec(&format!("svc-{i}"), &format!("/svc{i}/items/:id"), &[], &[]))
        .collect();
    specs.push(spec("svc-7777-special", "/svc7777/items/special", &[], &[]));
    let routes = table(specs);
    assert_eq!(winner(&routes, "GET", None, "/svc9999/items/1"), "svc-9999");
    assert_eq!(
        winner(&routes, "GET", None, "/svc7777/items/special"),
        "svc-7777-special"
    );
    assert_eq!(winner(&routes, "GET", None, "/svc10000/items/1"), "404");
}
