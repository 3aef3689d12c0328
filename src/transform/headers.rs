//! Header and query rules: add, set, append, remove, rename.
//!
//! - `set` replaces every value with the template's;
//! - `add` sets only when there is no value yet;
//! - `append` adds one more value;
//! - `remove` removes every value;
//! - `rename` moves every value to another name, replacing what that
//!   name had (nothing happens when the old name has no value).
//!
//! When a template's reference is missing, the rule's [`Missing`] choice
//! decides: `remove` skips the rule (and a `set` removes what was there),
//! `empty` renders the reference as empty text. Rendered values never
//! carry a control character, so no rule can split a header.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::template::{Missing, Template, TemplateInput};

/// What a rule does to its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action<N> {
    Set(Template),
    Add(Template),
    Append(Template),
    Remove,
    Rename(N),
}

/// A rule over headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderRule {
    pub name: HeaderName,
    pub action: Action<HeaderName>,
    pub missing: Missing,
}

/// A rule over query parameters (names compared decoded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryRule {
    pub name: String,
    pub action: Action<String>,
    pub missing: Missing,
}

impl<N> Action<N> {
    pub fn template(&self) -> Option<&Template> {
        match self {
            Action::Set(t) | Action::Add(t) | Action::Append(t) => Some(t),
            Action::Remove | Action::Rename(_) => None,
        }
    }
}

/// Apply header rules, in order.
pub fn apply_headers(rules: &[HeaderRule], headers: &mut HeaderMap, input: &TemplateInput<'_>) {
    for rule in rules {
        let rendered = || {
            rule.action
                .template()
                .and_then(|t| t.render(input, rule.missing))
                .and_then(|v| HeaderValue::from_str(&v).ok())
        };
        match &rule.action {
            Action::Set(_) => match rendered() {
                Some(value) => {
                    headers.insert(&rule.name, value);
                }
                None => {
                    headers.remove(&rule.name);
                }
            },
            Action::Add(_) => {
                if !headers.contains_key(&rule.name)
                    && let Some(value) = rendered()
                {
                    headers.insert(&rule.name, value);
                }
            }
            Action::Append(_) => {
                if let Some(value) = rendered() {
                    headers.append(&rule.name, value);
                }
            }
            Action::Remove => {
                headers.remove(&rule.name);
            }
            Action::Rename(to) => {
                let values: Vec<HeaderValue> = match headers.entry(&rule.name) {
                    http::header::Entry::Occupied(entry) => entry.remove_entry_mult().1.collect(),
                    http::header::Entry::Vacant(_) => Vec::new(),
                };
                if !values.is_empty() {
                    headers.remove(to);
                    for value in values {
                        headers.append(to, value);
                    }
                }
            }
        }
    }
}

/// Apply query rules, in order, to a raw query string; the query to send
/// (`None` when nothing is left). Parameters no rule touches keep their
/// encoding as the client wrote it.
pub fn apply_query(
    rules: &[QueryRule],
    query: Option<&str>,
    input: &TemplateInput<'_>,
) -> Option<String> {
    let mut pairs: Vec<(String, String)> = query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => (name.to_owned(), format!("={value}")),
            None => (pair.to_owned(), String::new()),
        })
        .collect();
    let named = |raw: &str, name: &str| decode(raw) == name;
    for rule in rules {
        let rendered = || {
            rule.action
                .template()
                .and_then(|t| t.render(input, rule.missing))
        };
        match &rule.action {
            Action::Set(_) => {
                pairs.retain(|(raw, _)| !named(raw, &rule.name));
                if let Some(value) = rendered() {
                    pairs.push(encoded(&rule.name, &value));
                }
            }
            Action::Add(_) => {
                if !pairs.iter().any(|(raw, _)| named(raw, &rule.name))
                    && let Some(value) = rendered()
                {
                    pairs.push(encoded(&rule.name, &value));
                }
            }
            Action::Append(_) => {
                if let Some(value) = rendered() {
                    pairs.push(encoded(&rule.name, &value));
                }
            }
            Action::Remove => pairs.retain(|(raw, _)| !named(raw, &rule.name)),
            Action::Rename(to) => {
                if pairs.iter().any(|(raw, _)| named(raw, &rule.name)) {
                    pairs.retain(|(raw, _)| !named(raw, to));
                    let new_name: String = form_urlencoded::byte_serialize(to.as_bytes()).collect();
                    for (raw, _) in pairs.iter_mut() {
                        if named(raw, &rule.name) {
                            raw.clone_from(&new_name);
                        }
                    }
                }
            }
        }
    }
    if pairs.is_empty() {
        return None;
    }
    let mut out = String::new();
    for (index, (name, value)) in pairs.iter().enumerate() {
        if index > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push_str(value);
    }
    Some(out)
}

fn decode(raw: &str) -> String {
    form_urlencoded::parse(raw.as_bytes())
        .next()
        .map(|(name, _)| name.into_owned())
        .unwrap_or_default()
}

fn encoded(name: &str, value: &str) -> (String, String) {
    let name: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
    let value: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
    (name, format!("={value}"))
}
