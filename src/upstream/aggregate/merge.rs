//! Merging leg results into one document.

use serde_json::{Map, Value};

use super::MergeMode;

/// The merged document of `(leg name, result)` pairs in leg order.
pub fn merge(mode: MergeMode, results: Vec<(String, Value)>) -> Value {
    match mode {
        MergeMode::Named => Value::Object(results.into_iter().collect()),
        MergeMode::Array => Value::Array(results.into_iter().map(|(_, value)| value).collect()),
        MergeMode::Deep => {
            let mut merged = Value::Object(Map::new());
            for (name, value) in results {
                match value {
                    Value::Object(_) => deep_merge(&mut merged, value),
                    // What is not an object has no keys to merge: it keeps
                    // its leg's name.
                    other => {
                        deep_merge(&mut merged, Value::Object(Map::from_iter([(name, other)])))
                    }
                }
            }
            merged
        }
    }
}

/// Merge `from` into `into`: objects key by key, anything else replaced.
fn deep_merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(into), Value::Object(from)) => {
            for (key, value) in from {
                match into.get_mut(&key) {
                    Some(existing) => deep_merge(existing, value),
                    None => {
                        into.insert(key, value);
                    }
                }
            }
        }
        (into, from) => *into = from,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn results() -> Vec<(String, Value)> {
        vec![
            (
                "user".to_owned(),
                json!({ "id": 1, "profile": { "name": "Ada" } }),
            ),
            (
                "orders".to_owned(),
                json!({ "profile": { "orders": 3 }, "id": 2 }),
            ),
            ("flags".to_owned(), json!([1, 2])),
        ]
    }

    #[test]
    fn each_mode_merges_as_documented() {
        assert_eq!(
            merge(MergeMode::Named, results()),
            json!({ "user": { "id": 1, "profile": { "name": "Ada" } }, "orders": { "profile": { "orders": 3 }, "id": 2 }, "flags": [1, 2] })
        );
        assert_eq!(
            merge(MergeMode::Deep, results()),
            json!({ "id": 2, "profile": { "name": "Ada", "orders": 3 }, "flags": [1, 2] })
        );
        assert_eq!(merge(MergeMode::Array, results())[2], json!([1, 2]));
    }
}
