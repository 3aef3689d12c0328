//! The request path as routing sees it: normalised once, then split into
//! segments.
//!
//! Normalisation follows RFC 3986 section 6.2.2: percent-encoded unreserved
//! characters are decoded (`%7Eu` and `~u` are the same path) and the hex of
//! every other escape is upper-cased, so an encoding trick cannot slip a
//! request past a route that guards it. Dot segments (`.`, `..`, their
//! encoded forms, and `..;x`, which servlet containers read as `..`) and
//! malformed escapes are refused rather than guessed at;
//! browsers and the Workers URL parser have resolved honest ones already.
//! The normalised form is also what goes upstream, so the gateway and the
//! service agree on which path was asked for.

use std::fmt;
use std::ops::Range;

/// Why a request path was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path must start with '/'")]
    NotAbsolute,
    #[error("the path contains a malformed percent-escape")]
    BadEscape,
    #[error("the path contains a character that is not allowed in a URL path")]
    BadCharacter,
    #[error("the path contains a '.' or '..' segment")]
    DotSegment,
    #[error(
        "the path contains an encoded '/' or '\\' (%2F, %5C), which services may read as a separator"
    )]
    EscapedSeparator,
}

/// A normalised request path and its segment boundaries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestPath {
    normalized: String,
    segments: Vec<Range<usize>>,
}

impl RequestPath {
    /// Normalise and split a raw path (no query string). `/` has no segments;
    /// `/a/` has two, `a` and an empty one.
    pub fn parse(raw: &str) -> Result<RequestPath, PathError> {
        if !raw.starts_with('/') {
            return Err(PathError::NotAbsolute);
        }
        let normalized = normalize_escapes(raw)?;
        let mut segments = Vec::new();
        if normalized.len() > 1 {
            let mut start = 1;
            for (at, byte) in normalized.bytes().enumerate().skip(1) {
                if byte == b'/' {
                    segments.push(start..at);
                    start = at + 1;
                }
            }
            segments.push(start..normalized.len());
        }
        let path = RequestPath {
            normalized,
            segments,
        };
        // `..;x` is `..` to servlet containers, which drop `;` parameters.
        let dot = |s: &str| {
            let name = s.split(';').next().unwrap_or(s);
            name == "." || name == ".."
        };
        if path.segments().any(dot) {
            return Err(PathError::DotSegment);
        }
        Ok(path)
    }

    /// Whether a segment holds an encoded `/` or `\`: one segment here,
    /// but two to a service (or proxy) that decodes before splitting.
    pub fn has_escaped_separator(&self) -> bool {
        // One pass over the (short) path rather than two substring searches.
        self.normalized
            .as_bytes()
            .windows(3)
            .any(|w| w == b"%2F" || w == b"%5C")
    }

    /// The whole normalised path.
    pub fn as_str(&self) -> &str {
        &self.normalized
    }

    /// Number of segments.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// Whether this is the root path `/`.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Segment `index`, or `""` past the end.
    pub fn segment(&self, index: usize) -> &str {
        self.segments
            .get(index)
            .map_or("", |range| &self.normalized[range.clone()])
    }

    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.segments
            .iter()
            .map(|range| &self.normalized[range.clone()])
    }

    /// The path from segment `index` on, with its leading `/`; `/` when
    /// nothing is left.
    pub fn suffix_from(&self, index: usize) -> &str {
        match self.segments.get(index) {
            Some(range) => &self.normalized[range.start - 1..],
            None => "/",
        }
    }

    /// The path before segment `index`, without the `/` that starts it:
    /// what [`suffix_from`](Self::suffix_from) leaves out. The whole path
    /// (less a final `/`) when it has no segment `index`.
    pub fn prefix_before(&self, index: usize) -> &str {
        match self.segments.get(index) {
            Some(range) => self
                .normalized
                .get(..range.start.saturating_sub(1))
                .unwrap_or(""),
            None => self.normalized.trim_end_matches('/'),
        }
    }

    /// The segments from `index` on, joined with `/` and without a leading
    /// one, or `None` when there are none (which differs from one empty
    /// segment: `/a` versus `/a/`).
    pub fn tail_from(&self, index: usize) -> Option<&str> {
        self.segments
            .get(index)
            .map(|range| &self.normalized[range.start..])
    }
}

impl fmt::Display for RequestPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized)
    }
}

/// RFC 3986 unreserved characters: safe to decode wherever they appear.
pub(crate) fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Characters allowed unescaped in a path segment (`pchar` less `%`).
pub(crate) fn is_segment_char(byte: u8) -> bool {
    is_unreserved(byte)
        || matches!(
            byte,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

/// Decode escaped unreserved characters and upper-case the hex of the rest;
/// refuse anything that is not a `pchar` or `/`.
pub(crate) fn normalize_escapes(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        if byte == b'%' {
            let high = bytes.get(at + 1).and_then(|b| hex_value(*b));
            let low = bytes.get(at + 2).and_then(|b| hex_value(*b));
            let (Some(high), Some(low)) = (high, low) else {
                return Err(PathError::BadEscape);
            };
            let decoded = high * 16 + low;
            if is_unreserved(decoded) {
                out.push(char::from(decoded));
            } else {
                out.push('%');
                for digit in [high, low] {
                    let hex = HEX_UPPER.get(usize::from(digit)).copied().unwrap_or(b'0');
                    out.push(char::from(hex));
                }
            }
            at += 3;
            continue;
        }
        if byte == b'/' || is_segment_char(byte) {
            out.push(char::from(byte));
            at += 1;
            continue;
        }
        return Err(PathError::BadCharacter);
    }
    Ok(out)
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(raw: &str) -> Vec<String> {
        RequestPath::parse(raw)
            .unwrap()
            .segments()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn root_has_no_segments_and_trailing_slash_adds_an_empty_one() {
        assert!(segments("/").is_empty());
        assert_eq!(segments("/a"), ["a"]);
        assert_eq!(segments("/a/"), ["a", ""]);
        assert_eq!(segments("/a//b"), ["a", "", "b"]);
    }

    #[test]
    fn escaped_unreserved_characters_are_decoded_and_others_upper_cased() {
        let path = RequestPath::parse("/api/%75sers/%7e%2fx%2F").unwrap();
        assert_eq!(path.as_str(), "/api/users/~%2Fx%2F");
        assert_eq!(path.segment(2), "~%2Fx%2F");
    }

    #[test]
    fn dot_segments_and_bad_escapes_are_refused() {
        assert_eq!(RequestPath::parse("/a/../b"), Err(PathError::DotSegment));
        assert_eq!(
            RequestPath::parse("/a/%2e%2E/b"),
            Err(PathError::DotSegment)
        );
        assert_eq!(RequestPath::parse("/a/."), Err(PathError::DotSegment));
        assert_eq!(RequestPath::parse("/a%zz"), Err(PathError::BadEscape));
        assert_eq!(RequestPath::parse("/a%4"), Err(PathError::BadEscape));
        assert_eq!(RequestPath::parse("/a b"), Err(PathError::BadCharacter));
        assert_eq!(RequestPath::parse("a"), Err(PathError::NotAbsolute));
    }

    #[test]
    fn suffix_and_tail_distinguish_no_segment_from_an_empty_one() {
        let path = RequestPath::parse("/api/users/42/x").unwrap();
        assert_eq!(path.suffix_from(2), "/42/x");
        assert_eq!(path.suffix_from(4), "/");
        assert_eq!(path.tail_from(2), Some("42/x"));
        assert_eq!(path.tail_from(4), None);
        let trailing = RequestPath::parse("/api/").unwrap();
        assert_eq!(trailing.tail_from(1), Some(""));
    }
}
