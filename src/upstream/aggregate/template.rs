//! Leg path templates: `/users/{params.id}/orders?limit={query.limit}` or,
//! for a chained leg, `/teams/{user.body.team_id}`.
//!
//! Sources: `params.NAME` (a capture of the route's path pattern),
//! `identity.sub|consumer|key_id|issuer`, `query.NAME` (the client's query
//! parameter), and `LEG.body.PATH` (a value in another leg's JSON answer,
//! which makes this leg wait for that one). Every value is
//! percent-encoded for its place (a path segment before `?`, a query
//! component after it), so no value can add a segment, climb with `..`
//! or start a new parameter. A value that is missing fails the leg,
//! unless it is written optional (`{query.page?}`): then it renders empty.

use std::fmt::Write;

use serde_json::Value;

use crate::auth::Identity;

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// A value; `optional` (written `{name?}`) renders empty when missing.
    Value {
        source: Source,
        optional: bool,
    },
}

/// Where a value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Param(String),
    Identity(IdentityField),
    Query(String),
    /// Another leg's answer (by name), and the dotted path in it.
    Leg {
        leg: String,
        path: Vec<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityField {
    Subject,
    Consumer,
    KeyId,
    Issuer,
}

/// What a request offers a template.
pub struct Values<'a> {
    pub params: &'a [(&'a str, Option<&'a str>)],
    pub identity: Option<&'a Identity>,
    pub query: Option<&'a str>,
    /// Answers of finished legs, by name.
    pub legs: &'a [(&'a str, &'a Value)],
}

impl Template {
    /// Parse `text`; `param_names` are the route's captures. Leg sources
    /// are checked by the caller (they need every leg's name).
    pub fn parse(text: &str, param_names: &[&str]) -> Result<Template, String> {
        if !text.starts_with('/') {
            return Err("must start with '/'".to_owned());
        }
        if text.contains('#') {
            return Err("must not contain '#'".to_owned());
        }
        let mut parts = Vec::new();
        let mut rest = text;
        let mut in_query = false;
        while !rest.is_empty() {
            let Some(open) = rest.find('{') else {
                literal(&mut parts, rest, &mut in_query)?;
                break;
            };
            let (before, after) = rest.split_at(open);
            literal(&mut parts, before, &mut in_query)?;
            let after = after.get(1..).unwrap_or("");
            let close = after
                .find('}')
                .ok_or_else(|| "has an unclosed '{'".to_owned())?;
            let (name, tail) = after.split_at(close);
            let (name, optional) = match name.strip_suffix('?') {
                Some(name) => (name, true),
                None => (name, false),
            };
            parts.push(Part::Value {
                source: source(name, param_names)?,
                optional,
            });
            rest = tail.get(1..).unwrap_or("");
        }
        Ok(Template { parts })
    }

    /// The legs whose answers this template reads.
    pub fn legs(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Value {
                source: Source::Leg { leg, .. },
                ..
            } => Some(leg.as_str()),
            _ => None,
        })
    }

    /// The path and query for a request; `Err` names a missing value.
    pub fn render(&self, values: &Values<'_>) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Value { source, optional } => match lookup(source, values) {
                    Ok(value) => encode(&mut out, &value),
                    Err(_) if *optional => {}
                    Err(missing) => return Err(missing),
                },
            }
        }
        Ok(out)
    }
}

fn literal(parts: &mut Vec<Part>, text: &str, in_query: &mut bool) -> Result<(), String> {
    if text.is_empty() {
        return Ok(());
    }
    if text.contains('}') {
        return Err("has a '}' without its '{'".to_owned());
    }
    if !text
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'<' && b != b'>' && b != b'\\')
    {
        return Err("characters outside a URL must be percent-encoded".to_owned());
    }
    if text.contains('?') {
        if *in_query || text.matches('?').count() > 1 {
            return Err("has more than one '?'".to_owned());
        }
        *in_query = true;
    }
    parts.push(Part::Literal(text.to_owned()));
    Ok(())
}

fn source(name: &str, param_names: &[&str]) -> Result<Source, String> {
    let mut words = name.split('.');
    let first = words.next().unwrap_or("");
    let second = words.next();
    let rest: Vec<String> = words.map(str::to_owned).collect();
    match (first, second) {
        ("params", Some(param)) if rest.is_empty() => {
            if param_names.contains(&param) {
                Ok(Source::Param(param.to_owned()))
            } else {
                Err(format!(
                    "'{{{name}}}': the route's path has no parameter '{param}'"
                ))
            }
        }
        ("identity", Some(field)) if rest.is_empty() => Ok(Source::Identity(match field {
            "sub" => IdentityField::Subject,
            "consumer" => IdentityField::Consumer,
            "key_id" => IdentityField::KeyId,
            "issuer" => IdentityField::Issuer,
            other => {
                return Err(format!(
                    "'{{{name}}}': '{other}' is not one of sub, consumer, key_id, issuer"
                ));
            }
        })),
        ("query", Some(param)) if rest.is_empty() && !param.is_empty() => {
            Ok(Source::Query(param.to_owned()))
        }
        (leg, Some("body"))
            if !leg.is_empty() && !rest.is_empty() && rest.iter().all(|p| !p.is_empty()) =>
        {
            Ok(Source::Leg {
                leg: leg.to_owned(),
                path: rest,
            })
        }
        _ => Err(format!(
            "'{{{name}}}' is not params.NAME, identity.FIELD, query.NAME or LEG.body.PATH"
        )),
    }
}

fn lookup(source: &Source, values: &Values<'_>) -> Result<String, String> {
    let missing = || format!("no value for {}", describe(source));
    match source {
        Source::Param(name) => values
            .params
            .iter()
            .find(|(param, _)| param == name)
            .and_then(|(_, value)| *value)
            .map(str::to_owned)
            .ok_or_else(missing),
        Source::Identity(field) => {
            let identity = values.identity.ok_or_else(missing)?;
            match field {
                IdentityField::Subject => identity.subject.clone(),
                IdentityField::Consumer => identity.consumer.clone(),
                IdentityField::KeyId => identity.key_id.clone(),
                IdentityField::Issuer => identity.issuer.clone(),
            }
            .ok_or_else(missing)
        }
        Source::Query(name) => values
            .query
            .and_then(|query| {
                form_urlencoded::parse(query.as_bytes())
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| value.into_owned())
            })
            .ok_or_else(missing),
        Source::Leg { leg, path } => {
            let body = values
                .legs
                .iter()
                .find(|(name, _)| name == leg)
                .map(|(_, body)| *body)
                .ok_or_else(missing)?;
            let value = path
                .iter()
                .try_fold(body, |value, key| value.get(key.as_str()))
                .ok_or_else(missing)?;
            match value {
                Value::String(text) => Ok(text.clone()),
                Value::Number(number) => Ok(number.to_string()),
                Value::Bool(flag) => Ok(flag.to_string()),
                _ => Err(format!(
                    "{} is not a string, number or boolean",
                    describe(source)
                )),
            }
        }
    }
}

fn describe(source: &Source) -> String {
    match source {
        Source::Param(name) => format!("params.{name}"),
        Source::Identity(field) => format!("identity.{field:?}").to_lowercase(),
        Source::Query(name) => format!("query.{name}"),
        Source::Leg { leg, path } => format!("{leg}.body.{}", path.join(".")),
    }
}

/// Percent-encode everything but unreserved characters (RFC 3986), so a
/// value stays one path segment or one query component.
fn encode(out: &mut String, value: &str) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    // "." and ".." alone are segments with a meaning: never let a value be one.
    if value == "." || value == ".." {
        let dots = value.len();
        out.truncate(out.len() - dots);
        out.push_str(if dots == 1 { "%2E" } else { "%2E%2E" });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(template: &str, legs: &[(&str, &Value)]) -> Result<String, String> {
        let identity = Identity {
            subject: Some("alice/../admin".to_owned()),
            ..Identity::default()
        };
        Template::parse(template, &["id"])?.render(&Values {
            params: &[("id", Some("42"))],
            identity: Some(&identity),
            query: Some("limit=5&q=a%26b"),
            legs,
        })
    }

    #[test]
    fn values_fill_in_encoded_for_their_place() {
        assert_eq!(render("/users/{params.id}", &[]).unwrap(), "/users/42");
        assert_eq!(
            render("/u/{identity.sub}?q={query.q}&limit={query.limit}", &[]).unwrap(),
            "/u/alice%2F..%2Fadmin?q=a%26b&limit=5"
        );
        let user = json!({ "team": { "id": ".." } });
        assert_eq!(
            render("/teams/{user.body.team.id}", &[("user", &user)]).unwrap(),
            "/teams/%2E%2E"
        );
        let numbered = json!({ "team_id": 7, "ok": true });
        assert_eq!(
            render("/teams/{user.body.team_id}", &[("user", &numbered)]).unwrap(),
            "/teams/7"
        );
    }

    #[test]
    fn a_missing_value_fails_the_render_with_its_name() {
        let empty = json!({});
        assert_eq!(
            render("/x/{query.nope}", &[]).unwrap_err(),
            "no value for query.nope"
        );
        assert_eq!(
            render("/teams/{user.body.team_id}", &[("user", &empty)]).unwrap_err(),
            "no value for user.body.team_id"
        );
        assert!(render("/x/{user.body.team}", &[("user", &json!({ "team": {} }))]).is_err());
    }

    #[test]
    fn bad_templates_are_refused() {
        for bad in [
            "users",
            "/x/{params.nope}",
            "/x/{identity.email}",
            "/x/{oops",
            "/x/{}",
            "/x/{a.b}",
            "/x?a=1?b",
            "/x y",
            "/x/{user.body}",
        ] {
            assert!(Template::parse(bad, &["id"]).is_err(), "{bad}");
        }
        let chained = Template::parse("/t/{user.body.team_id}?u={other.body.id}", &[]).unwrap();
        assert_eq!(chained.legs().collect::<Vec<_>>(), ["user", "other"]);
    }
}
