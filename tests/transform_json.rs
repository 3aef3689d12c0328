//! JSON reshaping rules, each on its own and in order: allow and deny
//! with nested paths, through arrays element by element, rename and move,
//! wrap and take.

use portico::transform::json::{AllowTree, FieldPath, JsonRule, apply};
use serde_json::{Value, json};

fn paths(texts: &[&str]) -> Vec<FieldPath> {
    texts.iter().map(|t| FieldPath::parse(t).unwrap()).collect()
}

fn allow(texts: &[&str]) -> JsonRule {
    JsonRule::Allow(AllowTree::new(&paths(texts)))
}

fn deny(texts: &[&str]) -> JsonRule {
    JsonRule::Deny(paths(texts))
}

fn rename(from: &str, to: &str) -> JsonRule {
    JsonRule::Rename {
        from: FieldPath::parse(from).unwrap(),
        to: FieldPath::parse(to).unwrap(),
    }
}

fn take(path: &str) -> JsonRule {
    JsonRule::Take(FieldPath::parse(path).unwrap())
}

fn user() -> Value {
    json!({
        "id": 7,
        "name": "Ada",
        "password": "hunter2",
        "address": { "city": "Paris", "street": "Rue X", "geo": { "lat": 1, "lon": 2 } },
        "orders": [
            { "id": 1, "total": 10, "card": "4111" },
            { "id": 2, "total": 20, "card": "5500" }
        ]
    })
}

#[test]
fn allow_keeps_only_listed_paths_through_objects_and_arrays() {
    assert_eq!(
        apply(&[allow(&["id", "address.city", "orders.total"])], user()),
        json!({ "id": 7, "address": { "city": "Paris" }, "orders": [{ "total": 10 }, { "total": 20 }] })
    );
    assert_eq!(
        apply(&[allow(&["address"])], user()),
        json!({ "address": { "city": "Paris", "street": "Rue X", "geo": { "lat": 1, "lon": 2 } } }),
        "a listed object keeps everything below it"
    );
    assert_eq!(
        apply(&[allow(&["name.first"])], user()),
        json!({}),
        "a path through a string keeps nothing of it"
    );
}

#[test]
fn deny_removes_listed_paths_in_every_element() {
    assert_eq!(
        apply(
            &[deny(&[
                "password",
                "orders.card",
                "address.geo.lat",
                "nothing.here"
            ])],
            user()
        ),
        json!({
            "id": 7, "name": "Ada",
            "address": { "city": "Paris", "street": "Rue X", "geo": { "lon": 2 } },
            "orders": [{ "id": 1, "total": 10 }, { "id": 2, "total": 20 }]
        })
    );
}

#[test]
fn rules_on_an_array_document_apply_to_each_element() {
    let list = json!([{ "id": 1, "secret": "a" }, { "id": 2, "secret": "b" }, "odd"]);
    assert_eq!(
        apply(&[deny(&["secret"])], list.clone()),
        json!([{ "id": 1 }, { "id": 2 }, "odd"])
    );
    assert_eq!(
        apply(&[allow(&["id"])], list.clone()),
        json!([{ "id": 1 }, { "id": 2 }])
    );
    assert_eq!(
        apply(&[rename("id", "key")], list),
        json!([{ "secret": "a", "key": 1 }, { "secret": "b", "key": 2 }, "odd"])
    );
}

#[test]
fn rename_renames_in_place_and_moves_across_objects() {
    assert_eq!(
        apply(
            &[rename("name", "full_name")],
            json!({ "name": "Ada", "id": 1 })
        ),
        json!({ "id": 1, "full_name": "Ada" })
    );
    assert_eq!(
        apply(&[rename("address.city", "city")], user())["city"],
        "Paris"
    );
    assert_eq!(
        apply(&[rename("id", "meta.ids.user")], json!({ "id": 7 })),
        json!({ "meta": { "ids": { "user": 7 } } }),
        "missing objects on the way are made"
    );
    assert_eq!(
        apply(&[rename("orders.card", "orders.payment.card")], user())["orders"][1],
        json!({ "id": 2, "total": 20, "payment": { "card": "5500" } }),
        "within each element of an array"
    );
    assert_eq!(
        apply(&[rename("absent", "x")], json!({ "a": 1 })),
        json!({ "a": 1 }),
        "nothing to move, nothing done"
    );
    assert_eq!(
        apply(&[rename("a", "b.c")], json!({ "a": 1, "b": "text" })),
        json!({ "a": 1, "b": "text" }),
        "a move into a non-object is undone, never lost"
    );
}

#[test]
fn wrap_and_take() {
    assert_eq!(
        apply(&[JsonRule::Wrap("data".to_owned())], json!([1])),
        json!({ "data": [1] })
    );
    assert_eq!(
        apply(&[take("address.geo")], user()),
        json!({ "lat": 1, "lon": 2 })
    );
    assert_eq!(
        apply(&[take("orders.id")], user()),
        json!([1, 2]),
        "through an array, from each element"
    );
    assert_eq!(apply(&[take("missing")], user()), Value::Null);
    assert_eq!(
        apply(
            &[take("result"), JsonRule::Wrap("items".to_owned())],
            json!({ "result": [1, 2], "meta": {} })
        ),
        json!({ "items": [1, 2] }),
        "rules run in order"
    );
}

#[test]
fn paths_are_checked() {
    assert!(FieldPath::parse("a.b").is_ok());
    assert!(FieldPath::parse("").is_err());
    assert!(FieldPath::parse("a..b").is_err());
    assert!(FieldPath::parse(".a").is_err());
    assert!(FieldPath::parse(&vec!["a"; 33].join(".")).is_err());
}
