//! What a leg keeps of its JSON answer, in this order: `take` a
//! sub-document, keep only the `allow`ed fields or drop the `deny`ed ones
//! (dotted paths, applied to every element of an array), then `rename`
//! fields (dotted paths both sides: a rename can move a field).

use serde_json::{Map, Value};

/// A leg's shaping rules, checked at load.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    pub take: Option<Vec<String>>,
    pub allow: Vec<Vec<String>>,
    pub deny: Vec<Vec<String>>,
    pub rename: Vec<(Vec<String>, Vec<String>)>,
}

impl Shape {
    /// Apply the rules; `Err` when `take` names nothing.
    pub fn apply(&self, value: Value) -> Result<Value, String> {
        let mut value = match &self.take {
            Some(path) => {
                take(value, path).ok_or_else(|| format!("the answer has no {}", path.join(".")))?
            }
            None => value,
        };
        if !self.allow.is_empty() {
            value = each(value, &|item| allow(item, &self.allow));
        }
        if !self.deny.is_empty() {
            value = each(value, &|mut item| {
                for path in &self.deny {
                    remove(&mut item, path);
                }
                item
            });
        }
        if !self.rename.is_empty() {
            value = each(value, &|mut item| {
                for (from, to) in &self.rename {
                    if let Some(moved) = remove(&mut item, from) {
                        insert(&mut item, to, moved);
                    }
                }
                item
            });
        }
        Ok(value)
    }
}

/// Apply `rule` to a value, or to each element of an array.
fn each(value: Value, rule: &dyn Fn(Value) -> Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(rule).collect()),
        other => rule(other),
    }
}

fn take(value: Value, path: &[String]) -> Option<Value> {
    path.iter().try_fold(value, |value, key| match value {
        Value::Object(mut map) => map.remove(key),
        _ => None,
    })
}

/// Only the listed paths, with the objects that hold them.
fn allow(value: Value, paths: &[Vec<String>]) -> Value {
    let Value::Object(source) = value else {
        return value;
    };
    let mut kept = Map::new();
    for path in paths {
        let Some((first, rest)) = path.split_first() else {
            continue;
        };
        let Some(found) = source.get(first) else {
            continue;
        };
        if rest.is_empty() {
            kept.insert(first.clone(), found.clone());
            continue;
        }
        let nested = allow(found.clone(), &[rest.to_vec()]);
        match (kept.get_mut(first), nested) {
            (Some(Value::Object(existing)), Value::Object(more)) => existing.extend(more),
            (_, nested) => {
                kept.insert(first.clone(), nested);
            }
        }
    }
    Value::Object(kept)
}

fn remove(value: &mut Value, path: &[String]) -> Option<Value> {
    let (last, parents) = path.split_last()?;
    let mut current = value;
    for key in parents {
        current = current.get_mut(key.as_str())?;
    }
    current.as_object_mut()?.remove(last)
}

fn insert(value: &mut Value, path: &[String], moved: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = value;
    for key in parents {
        let Value::Object(map) = current else {
            return;
        };
        current = map
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if let Value::Object(map) = current {
        map.insert(last.clone(), moved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(text: &str) -> Vec<String> {
        text.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn take_then_allow_keeps_only_the_listed_fields_of_each_element() {
        let shape = Shape {
            take: Some(path("data.orders")),
            allow: vec![path("id"), path("total.amount")],
            ..Shape::default()
        };
        let answer = json!({ "data": { "orders": [
            { "id": 1, "secret": "x", "total": { "amount": 5, "card": "4111" } },
            { "id": 2, "total": { "amount": 7 } }
        ] } });
        assert_eq!(
            shape.apply(answer).unwrap(),
            json!([{ "id": 1, "total": { "amount": 5 } }, { "id": 2, "total": { "amount": 7 } }])
        );
        assert!(shape.apply(json!({ "data": {} })).is_err());
    }

    #[test]
    fn deny_and_rename_edit_in_place() {
        let shape = Shape {
            deny: vec![path("password"), path("profile.ssn")],
            rename: vec![(path("name"), path("profile.display_name"))],
            ..Shape::default()
        };
        let answer =
            json!({ "name": "Ada", "password": "p", "profile": { "ssn": "1", "age": 36 } });
        assert_eq!(
            shape.apply(answer).unwrap(),
            json!({ "profile": { "age": 36, "display_name": "Ada" } })
        );
    }
}
