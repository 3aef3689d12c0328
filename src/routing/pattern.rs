//! Route path patterns: literal segments, `:name` parameters and an
//! optional trailing `*` or `*name` wildcard.
//!
//! A wildcard matches zero or more whole segments, so `/api/users/*`
//! matches `/api/users` and `/api/users/42/orders` but never
//! `/api/usersX`. Patterns are parsed once at config load; matching never
//! allocates.

use std::fmt;

use super::path::{PathError, RequestPath, is_segment_char, normalize_escapes};

/// One segment of a pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Must equal the request segment (after normalisation).
    Literal(String),
    /// Matches any one non-empty segment and captures it.
    Param(String),
}

/// A parsed path pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathPattern {
    source: String,
    segments: Vec<Segment>,
    /// `Some(name)` for a trailing wildcard (`Some(None)` when unnamed).
    tail: Option<Option<String>>,
}

/// Why a pattern is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("must start with '/'")]
    NotAbsolute,
    #[error("segment {0} is empty (no '//' and no trailing '/')")]
    EmptySegment(usize),
    #[error("segment {0}: '*' is only allowed as the whole last segment")]
    MisplacedWildcard(usize),
    #[error(
        "segment {0}: parameter names start with a letter or '_' and hold only letters, digits and '_'"
    )]
    BadName(usize),
    #[error("parameter '{0}' appears twice")]
    DuplicateName(String),
    #[error("segment {0}: '.' and '..' segments are not allowed")]
    DotSegment(usize),
    #[error("segment {0}: characters outside a URL path segment must be percent-encoded ({1})")]
    BadLiteral(usize, PathError),
}

impl PathPattern {
    pub fn parse(source: &str) -> Result<PathPattern, PatternError> {
        let Some(rest) = source.strip_prefix('/') else {
            return Err(PatternError::NotAbsolute);
        };
        let mut segments = Vec::new();
        let mut tail = None;
        let mut names: Vec<&str> = Vec::new();
        if !rest.is_empty() {
            let parts: Vec<&str> = rest.split('/').collect();
            let last = parts.len() - 1;
            for (index, part) in parts.into_iter().enumerate() {
                let position = index + 1;
                if part.is_empty() {
                    return Err(PatternError::EmptySegment(position));
                }
                if let Some(name) = part.strip_prefix('*') {
                    if index != last {
                        return Err(PatternError::MisplacedWildcard(position));
                    }
                    if name.is_empty() {
                        tail = Some(None);
                    } else {
                        check_name(name, position, &mut names)?;
                        tail = Some(Some(name.to_owned()));
                    }
                } else if let Some(name) = part.strip_prefix(':') {
                    check_name(name, position, &mut names)?;
                    segments.push(Segment::Param(name.to_owned()));
                } else {
                    if part.contains('*') {
                        return Err(PatternError::MisplacedWildcard(position));
                    }
                    let literal = normalize_escapes(part)
                        .map_err(|e| PatternError::BadLiteral(position, e))?;
                    if literal == "." || literal == ".." {
                        return Err(PatternError::DotSegment(position));
                    }
                    segments.push(Segment::Literal(literal));
                }
            }
        }
        Ok(PathPattern {
            source: source.to_owned(),
            segments,
            tail,
        })
    }

    /// The pattern as written in the config.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Whether the pattern ends in a wildcard.
    pub fn has_tail(&self) -> bool {
        self.tail.is_some()
    }

    /// The names of every capture: parameters, then the wildcard's.
    pub fn capture_names(&self) -> Vec<&str> {
        self.segments
            .iter()
            .filter_map(|segment| match segment {
                Segment::Param(name) => Some(name.as_str()),
                Segment::Literal(_) => None,
            })
            .chain(self.tail_name())
            .collect()
    }

    /// The wildcard's name, if it has one.
    pub fn tail_name(&self) -> Option<&str> {
        self.tail.as_ref().and_then(|name| name.as_deref())
    }

    /// Whether `path` matches this pattern.
    pub fn matches(&self, path: &RequestPath) -> bool {
        let fixed = self.segments.len();
        let length_ok = if self.has_tail() {
            path.len() >= fixed
        } else {
            path.len() == fixed
        };
        length_ok
            && self
                .segments
                .iter()
                .enumerate()
                .all(|(index, segment)| match segment {
                    Segment::Literal(literal) => path.segment(index) == literal,
                    Segment::Param(_) => !path.segment(index).is_empty(),
                })
    }

    /// The captured parameters of a path this pattern matched, in pattern
    /// order, raw (still percent-encoded). The wildcard, when named, comes
    /// last with the rest of the path (`None` when no segment was left).
    pub fn captures<'p>(&'p self, path: &'p RequestPath) -> Vec<(&'p str, Option<&'p str>)> {
        let mut captures: Vec<(&str, Option<&str>)> = self
            .segments
            .iter()
            .enumerate()
            .filter_map(|(index, segment)| match segment {
                Segment::Param(name) => Some((name.as_str(), Some(path.segment(index)))),
                Segment::Literal(_) => None,
            })
            .collect();
        if let Some(name) = self.tail_name() {
            captures.push((name, path.tail_from(self.segments.len())));
        }
        captures
    }

    /// The segment position of parameter `name`, if the pattern has it.
    pub fn param_position(&self, name: &str) -> Option<usize> {
        self.segments
            .iter()
            .position(|segment| matches!(segment, Segment::Param(p) if p == name))
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn check_name<'a>(
    name: &'a str,
    position: usize,
    seen: &mut Vec<&'a str>,
) -> Result<(), PatternError> {
    if !is_param_name(name) {
        return Err(PatternError::BadName(position));
    }
    if seen.contains(&name) {
        return Err(PatternError::DuplicateName(name.to_owned()));
    }
    seen.push(name);
    Ok(())
}

/// Parameter names: an identifier, so templates can name them unambiguously.
pub(crate) fn is_param_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `text` is made only of characters a literal segment may hold.
pub(crate) fn is_literal_text(text: &str) -> bool {
    text.bytes().all(|b| b == b'%' || is_segment_char(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(raw: &str) -> RequestPath {
        RequestPath::parse(raw).unwrap()
    }

    #[test]
    fn wildcard_matches_whole_segments_only() {
        let pattern = PathPattern::parse("/api/users/*").unwrap();
        assert!(pattern.matches(&path("/api/users")));
        assert!(pattern.matches(&path("/api/users/")));
        assert!(pattern.matches(&path("/api/users/42/orders")));
        assert!(!pattern.matches(&path("/api/usersX")));
        assert!(!pattern.matches(&path("/api")));
    }

    #[test]
    fn params_match_one_non_empty_segment() {
        let pattern = PathPattern::parse("/users/:id").unwrap();
        assert!(pattern.matches(&path("/users/42")));
        assert!(!pattern.matches(&path("/users/")));
        assert!(!pattern.matches(&path("/users/42/x")));
        assert_eq!(
            pattern.captures(&path("/users/a%2Fb")),
            vec![("id", Some("a%2Fb"))]
        );
    }

    #[test]
    fn literals_are_normalised_like_requests() {
        let pattern = PathPattern::parse("/caf%c3%a9/%7euser").unwrap();
        assert!(pattern.matches(&path("/caf%C3%A9/~user")));
    }

    #[test]
    fn malformed_patterns_are_refused_with_the_segment() {
        assert_eq!(PathPattern::parse("api"), Err(PatternError::NotAbsolute));
        assert_eq!(
            PathPattern::parse("/a//b"),
            Err(PatternError::EmptySegment(2))
        );
        assert_eq!(
            PathPattern::parse("/a/"),
            Err(PatternError::EmptySegment(2))
        );
        assert_eq!(
            PathPattern::parse("/*/a"),
            Err(PatternError::MisplacedWildcard(1))
        );
        assert_eq!(
            PathPattern::parse("/a*"),
            Err(PatternError::MisplacedWildcard(1))
        );
        assert_eq!(PathPattern::parse("/:1d"), Err(PatternError::BadName(1)));
        assert_eq!(
            PathPattern::parse("/:id/:id"),
            Err(PatternError::DuplicateName("id".into()))
        );
        assert_eq!(
            PathPattern::parse("/a/.."),
            Err(PatternError::DotSegment(2))
        );
        assert!(matches!(
            PathPattern::parse("/a b"),
            Err(PatternError::BadLiteral(1, _))
        ));
    }
}
