//! Conditional requests answered from the cache (RFC 9110 13.1): a client
//! that already holds the stored representation gets `304 Not Modified`
//! instead of the body.
//!
//! `If-None-Match` decides when present (weak comparison of entity tags,
//! or `*`); otherwise `If-Modified-Since` against `Last-Modified`.

use http::header::{self, HeaderMap, HeaderName};

/// Whether `request`'s preconditions say the client's copy of `response`
/// is current.
pub fn not_modified(request: &HeaderMap, response: &HeaderMap) -> bool {
    if request.contains_key(header::IF_NONE_MATCH) {
        let Some(etag) = response.get(header::ETAG).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let stored = opaque(etag);
        return request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .any(|tag| tag == "*" || opaque(tag) == stored);
    }
    let date = |headers: &HeaderMap, name| {
        headers
            .get(name)
            .and_then(|v: &http::HeaderValue| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
    };
    match (
        date(request, header::IF_MODIFIED_SINCE),
        date(response, header::LAST_MODIFIED),
    ) {
        (Some(since), Some(modified)) => modified <= since,
        _ => false,
    }
}

/// An entity tag without its weakness marker, for weak comparison.
fn opaque(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

/// The headers a 304 carries: those that describe the stored
/// representation's validators and caching, none about its content.
pub fn not_modified_headers(response: &HeaderMap) -> HeaderMap {
    const KEPT: [HeaderName; 7] = [
        header::CACHE_CONTROL,
        header::CONTENT_LOCATION,
        header::DATE,
        header::ETAG,
        header::EXPIRES,
        header::LAST_MODIFIED,
        header::VARY,
    ];
    let mut headers = HeaderMap::new();
    for name in KEPT.iter().chain([&header::AGE]) {
        for value in response.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn entity_tags_compare_weakly_and_star_matches_anything() {
        let stored = map(&[("etag", "\"v2\"")]);
        assert!(not_modified(
            &map(&[("if-none-match", "\"v1\", W/\"v2\"")]),
            &stored
        ));
        assert!(not_modified(&map(&[("if-none-match", "*")]), &stored));
        assert!(!not_modified(&map(&[("if-none-match", "\"v1\"")]), &stored));
        assert!(!not_modified(
            &map(&[("if-none-match", "\"v2\"")]),
            &HeaderMap::new()
        ));
    }

    #[test]
    fn if_modified_since_counts_only_without_if_none_match() {
        let stored = map(&[
            ("last-modified", "Thu, 01 Jan 2026 00:00:00 GMT"),
            ("etag", "\"v2\""),
        ]);
        assert!(not_modified(
            &map(&[("if-modified-since", "Thu, 01 Jan 2026 00:00:00 GMT")]),
            &stored
        ));
        assert!(!not_modified(
            &map(&[("if-modified-since", "Wed, 31 Dec 2025 23:59:59 GMT")]),
            &stored
        ));
        assert!(!not_modified(
            &map(&[
                ("if-modified-since", "Fri, 02 Jan 2026 00:00:00 GMT"),
                ("if-none-match", "\"v1\"")
            ]),
            &stored
        ));
        assert!(!not_modified(
            &map(&[("if-modified-since", "garbage")]),
            &stored
        ));
    }

    #[test]
    fn a_304_keeps_validators_and_drops_content_headers() {
        let stored = map(&[
            ("etag", "\"v2\""),
            ("content-type", "application/json"),
            ("content-length", "12"),
            ("cache-control", "max-age=30"),
            ("age", "3"),
        ]);
        let kept = not_modified_headers(&stored);
        assert!(
            kept.contains_key("etag")
                && kept.contains_key("cache-control")
                && kept.contains_key("age")
        );
        assert!(!kept.contains_key("content-type") && !kept.contains_key("content-length"));
    }
}
