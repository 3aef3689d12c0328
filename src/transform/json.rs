//! Reshaping JSON documents: keep only listed fields, drop fields, move
//! or rename one, wrap the document under a key, or take a part of it.
//!
//! Paths are dot-separated field names (`user.address.city`). Wherever a
//! path meets an array, it goes on in every element, so `items.price`
//! names the price of each item and a rule on a document that is an array
//! applies to each element. Rules run in the order written. None of them
//! can fail: a path that names nothing leaves the document as it is.
//! Documents come from serde_json (nesting at most 128 deep) or from the
//! XML reader (nesting capped), so recursing over them is bounded.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A dot path of field names, parsed at load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldPath(Vec<String>);

/// Most segments in one path.
pub const MAX_PATH_SEGMENTS: usize = 32;

impl FieldPath {
    /// `a.b.c`: non-empty names separated by dots.
    pub fn parse(text: &str) -> Result<FieldPath, String> {
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return Err(format!(
                "'{text}' is not a path: field names separated by '.', none empty"
            ));
        }
        if segments.len() > MAX_PATH_SEGMENTS {
            return Err(format!(
                "'{text}' has more than {MAX_PATH_SEGMENTS} segments"
            ));
        }
        Ok(FieldPath(segments))
    }

    pub fn segments(&self) -> &[String] {
        &self.0
    }
}

/// One reshaping step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JsonRule {
    /// Keep only these paths (and the objects that lead to them).
    Allow(AllowTree),
    /// Remove these paths.
    Deny(Vec<FieldPath>),
    /// Move the field at `from` to `to` (a rename when only the last name
    /// differs).
    Rename { from: FieldPath, to: FieldPath },
    /// The document becomes `{ key: document }`.
    Wrap(String),
    /// The document becomes the value at the path (`null` if none).
    Take(FieldPath),
}

/// The allowed paths as a tree: a node that is `whole` keeps everything
/// below it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowTree {
    whole: bool,
    children: BTreeMap<String, AllowTree>,
}

impl AllowTree {
    pub fn new(paths: &[FieldPath]) -> AllowTree {
        let mut tree = AllowTree::default();
        for path in paths {
            let mut node = &mut tree;
            for segment in path.segments() {
                node = node.children.entry(segment.clone()).or_default();
            }
            node.whole = true;
        }
        tree
    }
}

/// Apply `rules`, in order, to `document`.
pub fn apply(rules: &[JsonRule], mut document: Value) -> Value {
    for rule in rules {
        document = match rule {
            JsonRule::Allow(tree) => allow(document, tree).unwrap_or(Value::Null),
            JsonRule::Deny(paths) => {
                for path in paths {
                    remove(&mut document, path.segments());
                }
                document
            }
            JsonRule::Rename { from, to } => {
                rename(&mut document, from.segments(), to.segments());
                document
            }
            JsonRule::Wrap(key) => {
                let mut wrapper = Map::with_capacity(1);
                wrapper.insert(key.clone(), document);
                Value::Object(wrapper)
            }
            JsonRule::Take(path) => take(document, path.segments()),
        };
    }
    document
}

/// What `tree` keeps of `value`; `None` when nothing (a scalar where the
/// tree goes on into fields).
fn allow(value: Value, tree: &AllowTree) -> Option<Value> {
    if tree.whole {
        return Some(value);
    }
    match value {
        Value::Object(fields) => {
            let mut kept = Map::new();
            for (key, field) in fields {
                if let Some(node) = tree.children.get(&key)
                    && let Some(field) = allow(field, node)
                {
                    kept.insert(key, field);
                }
            }
            Some(Value::Object(kept))
        }
        Value::Array(items) => Some(Value::Array(
            items
                .into_iter()
                .filter_map(|item| allow(item, tree))
                .collect(),
        )),
        _ => None,
    }
}

fn remove(value: &mut Value, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    match value {
        Value::Array(items) => {
            for item in items {
                remove(item, path);
            }
        }
        Value::Object(fields) if rest.is_empty() => {
            fields.shift_remove(first);
        }
        Value::Object(fields) => {
            if let Some(field) = fields.get_mut(first) {
                remove(field, rest);
            }
        }
        _ => {}
    }
}

/// Move `from` to `to`. Both are followed together as far as they agree
/// (through arrays, element by element); what differs is followed
/// through objects only.
fn rename(value: &mut Value, from: &[String], to: &[String]) {
    let shared = from
        .iter()
        .zip(to)
        .take_while(|(a, b)| a == b)
        .count()
        .min(from.len().saturating_sub(1))
        .min(to.len().saturating_sub(1));
    let (Some(prefix), Some(from_rest), Some(to_rest)) =
        (from.get(..shared), from.get(shared..), to.get(shared..))
    else {
        return;
    };
    each_object(value, prefix, &mut |fields| {
        if let Some(moved) = take_field(fields, from_rest)
            && let Err(moved) = put_field(fields, to_rest, moved)
        {
            // `to` runs into something that is not an object: put it back.
            let _restored = put_field(fields, from_rest, moved);
        }
    });
}

/// Call `f` on every object `path` leads to, through arrays.
fn each_object(value: &mut Value, path: &[String], f: &mut dyn FnMut(&mut Map<String, Value>)) {
    match value {
        Value::Array(items) => {
            for item in items {
                each_object(item, path, f);
            }
        }
        Value::Object(fields) => match path.split_first() {
            None => f(fields),
            Some((first, rest)) => {
                if let Some(field) = fields.get_mut(first) {
                    each_object(field, rest, f);
                }
            }
        },
        _ => {}
    }
}

fn take_field(fields: &mut Map<String, Value>, path: &[String]) -> Option<Value> {
    match path {
        [] => None,
        [last] => fields.shift_remove(last),
        [first, rest @ ..] => match fields.get_mut(first) {
            Some(Value::Object(inner)) => take_field(inner, rest),
            _ => None,
        },
    }
}

fn put_field(fields: &mut Map<String, Value>, path: &[String], value: Value) -> Result<(), Value> {
    match path {
        [] => Err(value),
        [last] => {
            fields.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let inner = fields
                .entry(first.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            match inner {
                Value::Object(inner) => put_field(inner, rest, value),
                _ => Err(value),
            }
        }
    }
}

fn take(value: Value, path: &[String]) -> Value {
    let Some((first, rest)) = path.split_first() else {
        return value;
    };
    match value {
        Value::Object(mut fields) => match fields.shift_remove(first) {
            Some(field) => take(field, rest),
            None => Value::Null,
        },
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|item| take(item, path)).collect())
        }
        _ => Value::Null,
    }
}
