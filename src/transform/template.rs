//! Value templates for header and query rules: literal text with
//! references, `${source.name}`, parsed once when the config is loaded
//! (like the rewrite template, [`crate::routing::PathTransform`]).
//!
//! | reference | value |
//! |---|---|
//! | `${params.NAME}` | a path parameter or the wildcard of the route's pattern, percent-decoded |
//! | `${identity.consumer}`, `.key_id`, `.sub`, `.issuer`, `.method` | the verified caller |
//! | `${identity.roles}`, `${identity.scopes}` | comma- and space-separated |
//! | `${identity.claims.PATH}` | a token claim (dot path); numbers and booleans as JSON text |
//! | `${header.NAME}` | a request header as the client sent it (values joined with `, `) |
//! | `${query.NAME}` | a query parameter as the client sent it, decoded |
//! | `${client.ip}`, `${client.host}`, `${client.scheme}` | the connection |
//! | `${cf.colo}`, `${cf.country}`, `${cf.continent}` | where the runtime says the request came in |
//! | `${request.id}`, `${request.method}`, `${request.path}` | the request |
//!
//! A reference without a value (no such header, an unauthenticated
//! caller) is *missing*; so is a value with a control character (CR, LF,
//! NUL, ...): such a value never reaches a header. What a missing value
//! does is the rule's choice ([`Missing`]).

use http::{HeaderMap, HeaderName, Method};
use serde_json::Value;

use crate::auth::Identity;
use crate::pipeline::context::ClientInfo;
use crate::routing::{PathPattern, RequestPath};

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Ref(Source),
}

/// Where a reference takes its value from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A parameter, by its segment position in the route's pattern.
    Param(usize),
    /// The wildcard capture.
    Tail,
    Consumer,
    KeyId,
    Subject,
    Issuer,
    AuthMethod,
    Roles,
    Scopes,
    Claim(Vec<String>),
    Header(HeaderName),
    Query(String),
    ClientIp,
    ClientHost,
    ClientScheme,
    Colo,
    Country,
    Continent,
    RequestId,
    Method,
    Path,
}

impl Source {
    pub fn is_identity(&self) -> bool {
        matches!(
            self,
            Source::Consumer
                | Source::KeyId
                | Source::Subject
                | Source::Issuer
                | Source::AuthMethod
                | Source::Roles
                | Source::Scopes
                | Source::Claim(_)
        )
    }

    /// Whether the value comes from the runtime's geo data.
    pub fn is_geo(&self) -> bool {
        matches!(self, Source::Colo | Source::Country | Source::Continent)
    }
}

/// What a missing value does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Missing {
    /// The rule does nothing and a `set` removes what was there.
    #[default]
    Remove,
    /// The reference renders as the empty string.
    Empty,
}

/// Everything a template may read, for one request.
pub struct TemplateInput<'a> {
    pub pattern: &'a PathPattern,
    pub path: &'a RequestPath,
    pub identity: Option<&'a Identity>,
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
    pub client: &'a ClientInfo,
    pub request_id: &'a str,
    pub method: &'a Method,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("has an unclosed or empty '${{…}}'")]
    BadBraces,
    #[error(
        "'${{{0}}}' is not a known reference (params., identity., header., query., client., cf., request.)"
    )]
    UnknownSource(String),
    #[error("'${{{0}}}' is not a parameter of the route's path pattern")]
    UnknownParam(String),
    #[error("'{0}' is not a header name")]
    BadHeader(String),
    #[error("contains a control character; header values never may")]
    ControlCharacter,
}

impl Template {
    /// Parse `text` for a route whose path pattern is `pattern`.
    pub fn parse(text: &str, pattern: &PathPattern) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("${") {
            let (literal, after) = rest.split_at(open);
            push_literal(&mut parts, literal)?;
            let after = after.get(2..).unwrap_or_default();
            let close = after.find('}').ok_or(TemplateError::BadBraces)?;
            let (reference, tail) = after.split_at(close);
            if reference.is_empty() {
                return Err(TemplateError::BadBraces);
            }
            parts.push(Part::Ref(source(reference, pattern)?));
            rest = tail.get(1..).unwrap_or_default();
        }
        push_literal(&mut parts, rest)?;
        Ok(Template { parts })
    }

    /// Every reference in the template.
    pub fn sources(&self) -> impl Iterator<Item = &Source> {
        self.parts.iter().filter_map(|part| match part {
            Part::Ref(source) => Some(source),
            Part::Literal(_) => None,
        })
    }

    /// The rendered value; `None` when a reference is missing and the rule
    /// says [`Missing::Remove`].
    pub fn render(&self, input: &TemplateInput<'_>, missing: Missing) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Ref(source) => match value(source, input).filter(|v| header_safe(v)) {
                    Some(value) => out.push_str(&value),
                    None if missing == Missing::Empty => {}
                    None => return None,
                },
            }
        }
        Some(out)
    }
}

fn push_literal(parts: &mut Vec<Part>, text: &str) -> Result<(), TemplateError> {
    if !header_safe(text) {
        return Err(TemplateError::ControlCharacter);
    }
    if !text.is_empty() {
        parts.push(Part::Literal(text.to_owned()));
    }
    Ok(())
}

/// Whether `text` may be (part of) a header value: no control characters
/// but tab, so never CR or LF.
pub fn header_safe(text: &str) -> bool {
    !text
        .chars()
        .any(|c| (c.is_control() && c != '\t') || c == '\u{7f}')
}

fn source(reference: &str, pattern: &PathPattern) -> Result<Source, TemplateError> {
    let unknown = || TemplateError::UnknownSource(reference.to_owned());
    let (kind, name) = reference.split_once('.').ok_or_else(unknown)?;
    if name.is_empty() {
        return Err(unknown());
    }
    Ok(match kind {
        "params" => {
            if let Some(position) = pattern.param_position(name) {
                Source::Param(position)
            } else if pattern.tail_name() == Some(name) {
                Source::Tail
            } else {
                return Err(TemplateError::UnknownParam(reference.to_owned()));
            }
        }
        "identity" => match name {
            "consumer" => Source::Consumer,
            "key_id" => Source::KeyId,
            "sub" | "subject" => Source::Subject,
            "issuer" => Source::Issuer,
            "method" => Source::AuthMethod,
            "roles" => Source::Roles,
            "scopes" => Source::Scopes,
            _ => match name.strip_prefix("claims.") {
                Some(path) if !path.split('.').any(str::is_empty) => {
                    Source::Claim(path.split('.').map(str::to_owned).collect())
                }
                _ => return Err(unknown()),
            },
        },
        "header" => Source::Header(
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| TemplateError::BadHeader(name.to_owned()))?,
        ),
        "query" => Source::Query(name.to_owned()),
        "client" => match name {
            "ip" => Source::ClientIp,
            "host" => Source::ClientHost,
            "scheme" => Source::ClientScheme,
            _ => return Err(unknown()),
        },
        "cf" => match name {
            "colo" => Source::Colo,
            "country" => Source::Country,
            "continent" => Source::Continent,
            _ => return Err(unknown()),
        },
        "request" => match name {
            "id" => Source::RequestId,
            "method" => Source::Method,
            "path" => Source::Path,
            _ => return Err(unknown()),
        },
        _ => return Err(unknown()),
    })
}

fn value(source: &Source, input: &TemplateInput<'_>) -> Option<String> {
    let identity = || input.identity;
    let text = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    match source {
        Source::Param(position) => Some(percent_decode(input.path.segment(*position))),
        Source::Tail => input
            .path
            .tail_from(input.pattern.segments().len())
            .map(percent_decode),
        Source::Consumer => text(&identity()?.consumer),
        Source::KeyId => text(&identity()?.key_id),
        Source::Subject => text(&identity()?.subject),
        Source::Issuer => text(&identity()?.issuer),
        Source::AuthMethod => identity()?.method.map(|m| m.as_str().to_owned()),
        Source::Roles => Some(identity()?.roles.join(",")).filter(|v| !v.is_empty()),
        Source::Scopes => Some(identity()?.scopes.join(" ")).filter(|v| !v.is_empty()),
        Source::Claim(path) => claim(identity()?, path),
        Source::Header(name) => {
            let values: Vec<&str> = input
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            (!values.is_empty()).then(|| values.join(", "))
        }
        Source::Query(name) => form_urlencoded::parse(input.query?.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned()),
        Source::ClientIp => input.client.ip.map(|ip| ip.to_string()),
        Source::ClientHost => input.client.host.clone(),
        Source::ClientScheme => input.client.scheme.clone(),
        Source::Colo => input.client.colo.clone(),
        Source::Country => input.client.country.clone(),
        Source::Continent => input.client.continent.clone(),
        Source::RequestId => Some(input.request_id.to_owned()),
        Source::Method => Some(input.method.as_str().to_owned()),
        Source::Path => Some(input.path.as_str().to_owned()),
    }
}

/// A claim's value: strings as they are, numbers and booleans as JSON
/// text, arrays of those comma-separated; objects and `null` are missing.
fn claim(identity: &Identity, path: &[String]) -> Option<String> {
    let (first, rest) = path.split_first()?;
    let mut value = identity.claims.as_ref()?.get(first)?;
    for name in rest {
        value = value.get(name)?;
    }
    let scalar = |value: &Value| match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match value {
        Value::Array(items) => {
            let items: Option<Vec<String>> = items.iter().map(scalar).collect();
            Some(items?.join(","))
        }
        other => scalar(other),
    }
}

/// Decode `%XX` escapes (as a path parameter was written); bytes that do
/// not make UTF-8 are replaced.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        let escaped = (byte == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(decoded) => {
                out.push(decoded);
                i += 3;
            }
            None => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
