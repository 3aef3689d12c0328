//! What path goes upstream: the request path as is, with a prefix
//! stripped, or rebuilt from a template with the captured parameters.
//!
//! Templates name captures in braces: `/v1/users/{id}` or `/v2/{rest}` for
//! a route `/api/users/*rest`. A wildcard placed as the whole last segment
//! (`/{rest}`) disappears, slash included, when it captured nothing, so
//! `/api/users` becomes `/v2` and `/api/users/` becomes `/v2/`. Captured
//! values are inserted exactly as the client encoded them.

use super::path::RequestPath;
use super::pattern::{PathPattern, Segment, is_literal_text};

/// How the upstream path is made from the request path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathTransform {
    /// Forward the (normalised) request path unchanged.
    Keep,
    /// Drop this many leading segments.
    StripPrefix { segments: usize },
    /// Rebuild from a template.
    Template(Template),
}

/// A parsed rewrite template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// A parameter, by its segment position in the route's pattern.
    Param(usize),
    /// The wildcard capture; `own_segment` when written as `/{name}` at the end.
    Tail {
        own_segment: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("must start with '/'")]
    NotAbsolute,
    #[error("must not contain '?' or '#': the query string is always forwarded as it came")]
    QueryOrFragment,
    #[error("has an unclosed or empty '{{…}}'")]
    BadBraces,
    #[error("'{{{0}}}' is not a parameter of the route's path pattern")]
    UnknownName(String),
    #[error("characters outside a URL path must be percent-encoded")]
    BadCharacter,
    #[error("'{0}' is not a leading part of the route's path pattern")]
    NotAPrefix(String),
}

impl PathTransform {
    /// A transform that strips `prefix`, which must be made of the first
    /// segments of `pattern` exactly as written there.
    pub fn strip_prefix(
        prefix: &str,
        pattern: &PathPattern,
    ) -> Result<PathTransform, RewriteError> {
        let not_a_prefix = || RewriteError::NotAPrefix(prefix.to_owned());
        let parsed = PathPattern::parse(prefix).map_err(|_| not_a_prefix())?;
        if parsed.has_tail()
            || pattern.segments().get(..parsed.segments().len()) != Some(parsed.segments())
        {
            return Err(not_a_prefix());
        }
        Ok(PathTransform::StripPrefix {
            segments: parsed.segments().len(),
        })
    }

    /// A transform that rebuilds the path from `template`.
    pub fn template(template: &str, pattern: &PathPattern) -> Result<PathTransform, RewriteError> {
        Template::parse(template, pattern).map(PathTransform::Template)
    }

    /// The upstream path for a request `path` that matched `pattern`.
    pub fn apply(&self, pattern: &PathPattern, path: &RequestPath) -> String {
        match self {
            PathTransform::Keep => path.as_str().to_owned(),
            PathTransform::StripPrefix { segments } => path.suffix_from(*segments).to_owned(),
            PathTransform::Template(template) => template.render(pattern, path),
        }
    }
}

/// Which upstream paths a route can produce, as far as they are fixed:
/// the literal leading segments, and whether anything may follow (`open`)
/// or the path is exactly those segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reach {
    pub segments: Vec<String>,
    pub open: bool,
}

impl Reach {
    /// Whether some upstream path is within both reaches.
    pub fn overlaps(&self, other: &Reach) -> bool {
        let (short, long) = if self.segments.len() <= other.segments.len() {
            (self, other)
        } else {
            (other, self)
        };
        let prefix = short
            .segments
            .iter()
            .zip(&long.segments)
            .all(|(a, b)| a == b);
        prefix && (short.open || short.segments.len() == long.segments.len())
    }
}

impl PathTransform {
    /// The upstream paths this transform can make from requests matching
    /// `pattern` (before any base path).
    pub fn reach(&self, pattern: &PathPattern) -> Reach {
        let from = |skip: usize| {
            let mut segments = Vec::new();
            let mut open = false;
            for segment in pattern.segments().iter().skip(skip) {
                match segment {
                    Segment::Literal(text) if !open => segments.push(text.clone()),
                    _ => open = true,
                }
            }
            Reach {
                segments,
                open: open || pattern.has_tail(),
            }
        };
        match self {
            PathTransform::Keep => from(0),
            PathTransform::StripPrefix { segments } => from(*segments),
            PathTransform::Template(template) => {
                let mut literal = String::new();
                // Where the fixed text stops, and whether on a boundary.
                let mut cut = None;
                for part in &template.parts {
                    match part {
                        Part::Literal(text) if cut.is_none() => literal.push_str(text),
                        Part::Literal(_) => {}
                        Part::Tail { own_segment: true } if cut.is_none() => cut = Some(true),
                        _ if cut.is_none() => cut = Some(literal.ends_with('/')),
                        _ => {}
                    }
                }
                let mut segments: Vec<String> = literal
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                // A segment cut by a placeholder (`/users-{id}`) is not fixed.
                if cut == Some(false) {
                    segments.pop();
                }
                Reach {
                    segments,
                    open: cut.is_some(),
                }
            }
        }
    }
}

impl Template {
    fn parse(template: &str, pattern: &PathPattern) -> Result<Template, RewriteError> {
        if !template.starts_with('/') {
            return Err(RewriteError::NotAbsolute);
        }
        if template.contains(['?', '#']) {
            return Err(RewriteError::QueryOrFragment);
        }
        let mut parts = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            let Some(open) = rest.find('{') else {
                push_literal(&mut parts, rest)?;
                break;
            };
            push_literal(&mut parts, &rest[..open])?;
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or(RewriteError::BadBraces)?;
            let name = &after[..close];
            if name.is_empty() || name.contains('{') {
                return Err(RewriteError::BadBraces);
            }
            rest = &after[close + 1..];
            if let Some(position) = pattern.param_position(name) {
                parts.push(Part::Param(position));
            } else if pattern.tail_name() == Some(name) {
                let own_segment = rest.is_empty()
                    && matches!(parts.last(), Some(Part::Literal(text)) if text.ends_with('/'));
                if own_segment && let Some(Part::Literal(text)) = parts.last_mut() {
                    text.pop();
                    if text.is_empty() {
                        parts.pop();
                    }
                }
                parts.push(Part::Tail { own_segment });
            } else {
                return Err(RewriteError::UnknownName(name.to_owned()));
            }
        }
        Ok(Template { parts })
    }

    fn render(&self, pattern: &PathPattern, path: &RequestPath) -> String {
        let mut out = String::with_capacity(path.as_str().len() + 16);
        let tail = path.tail_from(pattern.segments().len());
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Param(position) => out.push_str(path.segment(*position)),
                Part::Tail { own_segment } => {
                    if let Some(tail) = tail {
                        if *own_segment {
                            out.push('/');
                        }
                        out.push_str(tail);
                    }
                }
            }
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    }
}

fn push_literal(parts: &mut Vec<Part>, text: &str) -> Result<(), RewriteError> {
    if text.contains('}') {
        return Err(RewriteError::BadBraces);
    }
    if !text.split('/').all(is_literal_text) {
        return Err(RewriteError::BadCharacter);
    }
    if !text.is_empty() {
        parts.push(Part::Literal(text.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(
        pattern: &str,
        transform: impl Fn(&PathPattern) -> PathTransform,
        path: &str,
    ) -> String {
        let pattern = PathPattern::parse(pattern).unwrap();
        let transform = transform(&pattern);
        transform.apply(&pattern, &RequestPath::parse(path).unwrap())
    }

    #[test]
    fn reach_is_the_fixed_leading_segments_of_the_upstream_path() {
        let reach = |pattern: &str, transform: &dyn Fn(&PathPattern) -> PathTransform| {
            let pattern = PathPattern::parse(pattern).unwrap();
            transform(&pattern).reach(&pattern)
        };
        let keep = |_: &PathPattern| PathTransform::Keep;
        assert_eq!(
            reach("/api/users/*", &keep),
            Reach {
                segments: vec!["api".into(), "users".into()],
                open: true
            }
        );
        assert_eq!(
            reach("/health", &keep),
            Reach {
                segments: vec!["health".into()],
                open: false
            }
        );
        let strip = |p: &PathPattern| PathTransform::strip_prefix("/api", p).unwrap();
        assert_eq!(
            reach("/api/users/:id", &strip),
            Reach {
                segments: vec!["users".into()],
                open: true
            }
        );
        let rest = |p: &PathPattern| PathTransform::template("/v2/{rest}", p).unwrap();
        assert_eq!(
            reach("/api/*rest", &rest),
            Reach {
                segments: vec!["v2".into()],
                open: true
            }
        );
        let cut = |p: &PathPattern| PathTransform::template("/v2/users-{id}", p).unwrap();
        assert_eq!(
            reach("/u/:id", &cut),
            Reach {
                segments: vec!["v2".into()],
                open: true
            }
        );
        let open = Reach {
            segments: vec!["users".into()],
            open: true,
        };
        assert!(open.overlaps(&Reach {
            segments: vec!["users".into(), "1".into()],
            open: false
        }));
        assert!(!open.overlaps(&Reach {
            segments: vec!["people".into()],
            open: true
        }));
        assert!(
            !Reach {
                segments: vec!["a".into()],
                open: false
            }
            .overlaps(&Reach {
                segments: vec!["a".into(), "b".into()],
                open: false
            })
        );
    }

    #[test]
    fn strip_prefix_drops_whole_segments() {
        let strip = |p: &PathPattern| PathTransform::strip_prefix("/api/users", p).unwrap();
        assert_eq!(apply("/api/users/*", strip, "/api/users/42"), "/42");
        assert_eq!(apply("/api/users/*", strip, "/api/users"), "/");
        assert_eq!(apply("/api/users/*", strip, "/api/users/"), "/");
    }

    #[test]
    fn strip_prefix_must_lead_the_pattern() {
        let pattern = PathPattern::parse("/api/users/*").unwrap();
        assert!(PathTransform::strip_prefix("/api/orders", &pattern).is_err());
        assert!(PathTransform::strip_prefix("/api/users/x", &pattern).is_err());
        assert!(PathTransform::strip_prefix("/api/*", &pattern).is_err());
        assert!(PathTransform::strip_prefix("/api", &pattern).is_ok());
    }

    #[test]
    fn templates_fill_params_and_tail() {
        let t =
            |text: &'static str| move |p: &PathPattern| PathTransform::template(text, p).unwrap();
        assert_eq!(
            apply(
                "/users/:id/orders/:order",
                t("/v1/o/{order}/u/{id}"),
                "/users/7/orders/9"
            ),
            "/v1/o/9/u/7"
        );
        assert_eq!(
            apply("/api/users/*rest", t("/v2/{rest}"), "/api/users/42/x"),
            "/v2/42/x"
        );
        assert_eq!(
            apply("/api/users/*rest", t("/v2/{rest}"), "/api/users"),
            "/v2"
        );
        assert_eq!(
            apply("/api/users/*rest", t("/v2/{rest}"), "/api/users/"),
            "/v2/"
        );
        assert_eq!(apply("/api/users/*rest", t("/{rest}"), "/api/users"), "/");
        assert_eq!(apply("/files/*p", t("/f-{p}"), "/files/a/b"), "/f-a/b");
    }

    #[test]
    fn bad_templates_name_the_reason() {
        let pattern = PathPattern::parse("/users/:id").unwrap();
        let err = |t: &str| PathTransform::template(t, &pattern).unwrap_err();
        assert_eq!(err("v1"), RewriteError::NotAbsolute);
        assert_eq!(err("/v1?x=1"), RewriteError::QueryOrFragment);
        assert_eq!(err("/v1/{id"), RewriteError::BadBraces);
        assert_eq!(err("/v1/{}"), RewriteError::BadBraces);
        assert_eq!(err("/v1/id}"), RewriteError::BadBraces);
        assert_eq!(err("/v1/{user}"), RewriteError::UnknownName("user".into()));
        assert_eq!(err("/v 1"), RewriteError::BadCharacter);
    }
}
