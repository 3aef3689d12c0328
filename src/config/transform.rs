//! Checking a route's `transform`: header and query rules with their
//! templates parsed against the route's path pattern, JSON rules with
//! their paths parsed, XML options and caps. Whatever the request path
//! would otherwise have to refuse or guess is refused here, at its path.

use http::HeaderName;
use http::header;

use super::error::Issues;
use super::wire::{
    FormatName, HeaderRuleDocument, JsonRuleDocument, MissingName, TransformDocument,
};
use super::{Settings, UNDERSCORE_RULE};
use crate::auth::RouteAuth;
use crate::cache::{CachePolicy, QueryKey};
use crate::routing::PathPattern;
use crate::transform::headers::{Action, HeaderRule, QueryRule};
use crate::transform::json::{AllowTree, FieldPath, JsonRule};
use crate::transform::template::{Missing, Source, Template};
use crate::transform::xml::{DEFAULT_MAX_ATTRIBUTES, DEFAULT_MAX_DEPTH, XmlOptions, is_xml_name};
use crate::transform::{
    DEFAULT_MAX_BODY_BYTES, Format, RequestRules, ResponseRules, RouteTransform,
};

/// Bodies are read into memory to be transformed; a Workers isolate has
/// 128 MB.
const MAX_BODY_BYTES: u64 = 32 * 1024 * 1024;
const MAX_DEPTH: u64 = 256;
const MAX_ATTRIBUTES: u64 = 1024;

/// What a route's transform rules are checked against.
pub(super) struct RouteFacts<'a> {
    pub pattern: &'a PathPattern,
    pub auth: Option<&'a RouteAuth>,
    pub cache: Option<&'a CachePolicy>,
    pub settings: &'a Settings,
    pub identity_prefix: &'a str,
}

pub(super) fn check_transform(
    document: &TransformDocument,
    facts: &RouteFacts<'_>,
    at: &str,
    issues: &mut Issues,
) -> Option<RouteTransform> {
    let before = issues.len();
    let at = format!("{at}.transform");
    let origin = match document.origin_format {
        None | Some(FormatName::Json) => Format::Json,
        Some(FormatName::Xml) => Format::Xml,
    };
    let negotiate = document.negotiate.unwrap_or(false);
    let xml = check_xml(document, origin, negotiate, &at, issues);
    let max_body_bytes = match document.max_body_bytes {
        None => DEFAULT_MAX_BODY_BYTES,
        Some(bytes) if (1..=MAX_BODY_BYTES).contains(&bytes) => {
            usize::try_from(bytes).unwrap_or(DEFAULT_MAX_BODY_BYTES)
        }
        Some(_) => {
            issues.push(
                format!("{at}.max_body_bytes"),
                format!("must be between 1 and {MAX_BODY_BYTES} (bodies are read into memory to be transformed)"),
            );
            DEFAULT_MAX_BODY_BYTES
        }
    };
    let mut request = RequestRules::default();
    if let Some(side) = &document.request {
        let at = format!("{at}.request");
        request.headers = header_rules(
            side.headers.as_deref(),
            Side::Request,
            facts,
            &format!("{at}.headers"),
            issues,
        );
        request.query = query_rules(side.query.as_deref(), facts, &format!("{at}.query"), issues);
        request.body = side
            .body
            .as_ref()
            .map(|rules| json_rules(rules, &format!("{at}.body"), issues));
    }
    let mut response = ResponseRules::default();
    if let Some(side) = &document.response {
        let at = format!("{at}.response");
        response.headers = header_rules(
            side.headers.as_deref(),
            Side::Response,
            facts,
            &format!("{at}.headers"),
            issues,
        );
        response.body = side
            .body
            .as_ref()
            .map(|rules| json_rules(rules, &format!("{at}.body"), issues));
    }
    if issues.len() != before {
        return None;
    }
    Some(RouteTransform {
        request,
        response,
        origin,
        negotiate,
        xml,
        max_body_bytes,
    })
}

fn check_xml(
    document: &TransformDocument,
    origin: Format,
    negotiate: bool,
    at: &str,
    issues: &mut Issues,
) -> XmlOptions {
    let mut options = XmlOptions::default();
    let Some(xml) = &document.xml else {
        if origin == Format::Xml || negotiate {
            issues.push(
                format!("{at}.xml.root"),
                "name the root element of the XML the gateway writes (an XML origin or 'negotiate' needs it)",
            );
        }
        return options;
    };
    match &xml.root {
        Some(root) if is_xml_name(root) => options.root.clone_from(root),
        Some(root) => issues.push(format!("{at}.xml.root"), format!("'{root}' is not an XML element name")),
        None if origin == Format::Xml || negotiate => issues.push(
            format!("{at}.xml.root"),
            "name the root element of the XML the gateway writes (an XML origin or 'negotiate' needs it)",
        ),
        None => {}
    }
    for (index, name) in xml.always_array.iter().flatten().enumerate() {
        if !is_xml_name(name) {
            issues.push(
                format!("{at}.xml.always_array[{index}]"),
                format!("'{name}' is not an XML element name"),
            );
        } else if !options.always_array.insert(name.clone()) {
            issues.push(
                format!("{at}.xml.always_array[{index}]"),
                format!("'{name}' is listed twice"),
            );
        }
    }
    options.infer_types = xml.infer_types.unwrap_or(false);
    let mut bounded = |value: Option<u64>, default: usize, max: u64, name: &str| match value {
        None => default,
        Some(value) if (1..=max).contains(&value) => usize::try_from(value).unwrap_or(default),
        Some(value) => {
            issues.push(
                format!("{at}.xml.{name}"),
                format!("must be between 1 and {max}, got {value}"),
            );
            default
        }
    };
    options.max_depth = bounded(xml.max_depth, DEFAULT_MAX_DEPTH, MAX_DEPTH, "max_depth");
    options.max_attributes = bounded(
        xml.max_attributes,
        DEFAULT_MAX_ATTRIBUTES,
        MAX_ATTRIBUTES,
        "max_attributes",
    );
    options
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Request,
    Response,
}

/// What a rule document asks for, before its names and template are
/// checked.
enum Op {
    Set,
    Add,
    Append,
    Remove,
    Rename(String),
}

impl Op {
    /// The action, given the parsed template (for the ops that take one)
    /// and the checked new name (for `rename`).
    fn action<N>(self, template: Option<Template>, to: Option<N>) -> Option<Action<N>> {
        Some(match self {
            Op::Set => Action::Set(template?),
            Op::Add => Action::Add(template?),
            Op::Append => Action::Append(template?),
            Op::Remove => Action::Remove,
            Op::Rename(_) => Action::Rename(to?),
        })
    }
}

/// The one operation of a rule document, with the name it acts on and
/// its value template's text.
fn action_of(
    rule: &HeaderRuleDocument,
    at: &str,
    issues: &mut Issues,
) -> Option<(String, Op, Option<String>)> {
    let listed: Vec<(&str, &String)> = [
        ("set", &rule.set),
        ("add", &rule.add),
        ("append", &rule.append),
        ("remove", &rule.remove),
        ("rename", &rule.rename),
    ]
    .into_iter()
    .filter_map(|(op, name)| name.as_ref().map(|name| (op, name)))
    .collect();
    let [(op, name)] = listed.as_slice() else {
        issues.push(
            at.to_owned(),
            "give exactly one of 'set', 'add', 'append', 'remove' or 'rename'",
        );
        return None;
    };
    let needs_value = matches!(*op, "set" | "add" | "append");
    match (&rule.value, needs_value) {
        (None, true) => {
            issues.push(format!("{at}.value"), format!("'{op}' needs a 'value'"));
            return None;
        }
        (Some(_), false) => {
            issues.push(format!("{at}.value"), format!("'{op}' takes no 'value'"));
            return None;
        }
        _ => {}
    }
    if rule.if_missing.is_some() && !needs_value {
        issues.push(
            format!("{at}.if_missing"),
            format!("'{op}' has no value that could be missing"),
        );
        return None;
    }
    let operation = match (*op, &rule.to) {
        ("rename", Some(to)) => Op::Rename(to.clone()),
        ("rename", None) => {
            issues.push(format!("{at}.to"), "'rename' needs the new name in 'to'");
            return None;
        }
        (_, Some(_)) => {
            issues.push(format!("{at}.to"), format!("'{op}' takes no 'to'"));
            return None;
        }
        ("remove", None) => Op::Remove,
        ("set", None) => Op::Set,
        ("add", None) => Op::Add,
        _ => Op::Append,
    };
    Some(((*name).clone(), operation, rule.value.clone()))
}

fn missing_of(rule: &HeaderRuleDocument) -> Missing {
    match rule.if_missing {
        None | Some(MissingName::Remove) => Missing::Remove,
        Some(MissingName::Empty) => Missing::Empty,
    }
}

fn header_rules(
    documents: Option<&[HeaderRuleDocument]>,
    side: Side,
    facts: &RouteFacts<'_>,
    at: &str,
    issues: &mut Issues,
) -> Vec<HeaderRule> {
    let mut rules = Vec::new();
    for (index, document) in documents.into_iter().flatten().enumerate() {
        let at = format!("{at}[{index}]");
        let Some((name, op, value)) = action_of(document, &at, issues) else {
            continue;
        };
        let Some(name) = header_name(&name, side, facts, &at, issues) else {
            continue;
        };
        let to = match &op {
            Op::Rename(to) => match header_name(to, side, facts, &format!("{at}.to"), issues) {
                Some(to) => Some(to),
                None => continue,
            },
            _ => None,
        };
        let template =
            value.and_then(|v| template(&v, side, facts, &format!("{at}.value"), issues));
        let Some(action) = op.action(template, to) else {
            continue;
        };
        rules.push(HeaderRule {
            name,
            action,
            missing: missing_of(document),
        });
    }
    rules
}

fn query_rules(
    documents: Option<&[HeaderRuleDocument]>,
    facts: &RouteFacts<'_>,
    at: &str,
    issues: &mut Issues,
) -> Vec<QueryRule> {
    let mut rules = Vec::new();
    for (index, document) in documents.into_iter().flatten().enumerate() {
        let at = format!("{at}[{index}]");
        let Some((name, op, value)) = action_of(document, &at, issues) else {
            continue;
        };
        if name.is_empty() || matches!(&op, Op::Rename(to) if to.is_empty()) {
            issues.push(at, "query parameter names must not be empty");
            continue;
        }
        let credential = facts
            .auth
            .filter(|auth| !auth.forward_credentials)
            .and_then(|auth| auth.api_key.as_ref())
            .and_then(|source| source.query.as_deref());
        if credential.is_some_and(|q| q == name || matches!(&op, Op::Rename(to) if to == q)) {
            issues.push(
                at,
                format!("'{name}' carries the route's API key, which never goes upstream"),
            );
            continue;
        }
        let to = match &op {
            Op::Rename(to) => Some(to.clone()),
            _ => None,
        };
        let template =
            value.and_then(|v| template(&v, Side::Request, facts, &format!("{at}.value"), issues));
        let Some(action) = op.action(template, to) else {
            continue;
        };
        rules.push(QueryRule {
            name,
            action,
            missing: missing_of(document),
        });
    }
    rules
}

/// A header name a rule may change on this side.
fn header_name(
    text: &str,
    side: Side,
    facts: &RouteFacts<'_>,
    at: &str,
    issues: &mut Issues,
) -> Option<HeaderName> {
    let Ok(name) = HeaderName::from_bytes(text.as_bytes()) else {
        issues.push(at.to_owned(), format!("'{text}' is not a header name"));
        return None;
    };
    if name.as_str().contains('_') {
        issues.push(at.to_owned(), UNDERSCORE_RULE);
        return None;
    }
    let managed = crate::http::is_hop_by_hop(&name)
        || name == header::CONTENT_LENGTH
        || name == facts.settings.request_id_header
        || name == crate::observe::trace::TRACEPARENT;
    let managed = managed
        || match side {
            Side::Request => {
                name == header::HOST
                    || name.as_str().starts_with(facts.identity_prefix)
                    || matches!(
                        name.as_str(),
                        "x-forwarded-for" | "x-forwarded-proto" | "x-forwarded-host"
                    )
            }
            Side::Response => name.as_str() == "cache-status",
        };
    if managed {
        issues.push(
            at.to_owned(),
            format!("'{text}' is a header the gateway manages itself"),
        );
        return None;
    }
    if side == Side::Request && is_credential(&name, facts) {
        issues.push(
            at.to_owned(),
            format!("'{text}' carries the caller's credentials, which this route does not forward"),
        );
        return None;
    }
    Some(name)
}

/// Whether `name` carries a credential the route keeps from its service.
fn is_credential(name: &HeaderName, facts: &RouteFacts<'_>) -> bool {
    let Some(auth) = facts.auth.filter(|auth| !auth.forward_credentials) else {
        return false;
    };
    *name == header::AUTHORIZATION
        || auth
            .api_key
            .as_ref()
            .is_some_and(|source| source.header == *name)
}

fn template(
    text: &str,
    side: Side,
    facts: &RouteFacts<'_>,
    at: &str,
    issues: &mut Issues,
) -> Option<Template> {
    let template = match Template::parse(text, facts.pattern) {
        Ok(template) => template,
        Err(e) => {
            issues.push(at.to_owned(), format!("'{text}': {e}"));
            return None;
        }
    };
    for source in template.sources() {
        if let Some(reason) = refused_source(source, side, facts) {
            issues.push(at.to_owned(), reason);
            return None;
        }
    }
    Some(template)
}

/// Why a template on this route may not read `source`, if it may not.
fn refused_source(source: &Source, side: Side, facts: &RouteFacts<'_>) -> Option<String> {
    if source.is_identity() && facts.auth.is_none() {
        return Some("the route has no 'auth', so there is never an identity to read".to_owned());
    }
    if let Source::Header(name) = source
        && is_credential(name, facts)
    {
        return Some(format!(
            "'{name}' carries the caller's credentials, which this route does not forward"
        ));
    }
    if let Source::Query(name) = source
        && let Some(auth) = facts.auth.filter(|auth| !auth.forward_credentials)
        && auth.api_key.as_ref().and_then(|s| s.query.as_deref()) == Some(name.as_str())
    {
        return Some(format!(
            "'{name}' carries the route's API key, which never goes upstream"
        ));
    }
    // Request rules on a cached route shape what is stored for every
    // request that shares the key: they may read only what the key holds.
    let cache = facts.cache.filter(|_| side == Side::Request)?;
    let outside = match source {
        Source::ClientIp | Source::ClientHost | Source::ClientScheme => true,
        s if s.is_geo() => true,
        Source::Header(name) => !cache.vary_headers.contains(name),
        Source::Query(name) => match &cache.query {
            QueryKey::AllBut(ignored) => ignored.contains(name),
            QueryKey::Only(kept) => !kept.contains(name),
        },
        s if s.is_identity() => cache.shared,
        _ => false,
    };
    outside.then(|| {
        "the route caches its responses, and this value is not part of the cache key: one caller's stored response would be served to others (use a header listed in cache.vary_headers, a query parameter in the key, path parameters or, unless shared, the identity)".to_owned()
    })
}

fn json_rules(documents: &[JsonRuleDocument], at: &str, issues: &mut Issues) -> Vec<JsonRule> {
    let mut rules = Vec::new();
    for (index, document) in documents.iter().enumerate() {
        let at = format!("{at}[{index}]");
        let given = [
            document.allow.is_some(),
            document.deny.is_some(),
            document.rename.is_some(),
            document.wrap.is_some(),
            document.take.is_some(),
        ]
        .iter()
        .filter(|given| **given)
        .count();
        if given != 1 {
            issues.push(
                at,
                "give exactly one of 'allow', 'deny', 'rename', 'wrap' or 'take'",
            );
            continue;
        }
        if document.to.is_some() && document.rename.is_none() {
            issues.push(format!("{at}.to"), "only 'rename' takes 'to'");
            continue;
        }
        let mut path =
            |text: &str, at: String| FieldPath::parse(text).map_err(|e| issues.push(at, e)).ok();
        let rule = if let Some(paths) = document.allow.as_ref().or(document.deny.as_ref()) {
            let field = if document.allow.is_some() {
                "allow"
            } else {
                "deny"
            };
            if paths.is_empty() {
                issues.push(format!("{at}.{field}"), "list at least one path");
                continue;
            }
            let parsed: Vec<Option<FieldPath>> = paths
                .iter()
                .enumerate()
                .map(|(i, text)| path(text, format!("{at}.{field}[{i}]")))
                .collect();
            let Some(parsed) = parsed.into_iter().collect::<Option<Vec<_>>>() else {
                continue;
            };
            if document.allow.is_some() {
                JsonRule::Allow(AllowTree::new(&parsed))
            } else {
                JsonRule::Deny(parsed)
            }
        } else if let Some(from) = &document.rename {
            let Some(to) = &document.to else {
                issues.push(format!("{at}.to"), "'rename' needs the new path in 'to'");
                continue;
            };
            match (
                path(from, format!("{at}.rename")),
                path(to, format!("{at}.to")),
            ) {
                (Some(from), Some(to)) => JsonRule::Rename { from, to },
                _ => continue,
            }
        } else if let Some(key) = &document.wrap {
            if key.is_empty() {
                issues.push(format!("{at}.wrap"), "the key must not be empty");
                continue;
            }
            JsonRule::Wrap(key.clone())
        } else if let Some(text) = &document.take {
            match path(text, format!("{at}.take")) {
                Some(taken) => JsonRule::Take(taken),
                None => continue,
            }
        } else {
            continue;
        };
        rules.push(rule);
    }
    rules
}

/// Whether any template of `transform` reads the runtime's geo data.
pub(super) fn needs_geo(transform: &RouteTransform) -> bool {
    let templates = transform
        .request
        .headers
        .iter()
        .filter_map(|rule| rule.action.template())
        .chain(
            transform
                .request
                .query
                .iter()
                .filter_map(|rule| rule.action.template()),
        )
        .chain(
            transform
                .response
                .headers
                .iter()
                .filter_map(|rule| rule.action.template()),
        );
    templates
        .flat_map(|template| template.sources())
        .any(Source::is_geo)
}
