//! Reading `Cache-Control` (RFC 9111 section 5.2): the directives the
//! gateway acts on, from however many header lines carry them.
//!
//! Unknown directives are ignored and a malformed delta-seconds value is
//! treated as absent, as caches do; nothing here fails.

use std::time::Duration;

use http::HeaderMap;
use http::header::CACHE_CONTROL;

/// The directives of a `Cache-Control` field the gateway understands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheControl {
    pub max_age: Option<Duration>,
    pub s_maxage: Option<Duration>,
    pub no_store: bool,
    pub no_cache: bool,
    pub private: bool,
    pub public: bool,
    pub must_revalidate: bool,
    pub stale_while_revalidate: Option<Duration>,
    pub stale_if_error: Option<Duration>,
}

impl CacheControl {
    /// The directives of every `Cache-Control` line in `headers`.
    pub fn from_headers(headers: &HeaderMap) -> CacheControl {
        let mut parsed = CacheControl::default();
        for value in headers.get_all(CACHE_CONTROL) {
            if let Ok(text) = value.to_str() {
                parsed.add(text);
            }
        }
        parsed
    }

    /// The directives of one field value.
    pub fn parse(text: &str) -> CacheControl {
        let mut parsed = CacheControl::default();
        parsed.add(text);
        parsed
    }

    fn add(&mut self, text: &str) {
        for directive in text.split(',') {
            let directive = directive.trim();
            let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
            let seconds = || {
                value
                    .trim()
                    .trim_matches('"')
                    .parse::<u64>()
                    .ok()
                    .map(Duration::from_secs)
            };
            let name = name.trim();
            if name.eq_ignore_ascii_case("max-age") {
                self.max_age = seconds();
            } else if name.eq_ignore_ascii_case("s-maxage") {
                self.s_maxage = seconds();
            } else if name.eq_ignore_ascii_case("no-store") {
                self.no_store = true;
            } else if name.eq_ignore_ascii_case("no-cache") {
                self.no_cache = true;
            } else if name.eq_ignore_ascii_case("private") {
                self.private = true;
            } else if name.eq_ignore_ascii_case("public") {
                self.public = true;
            } else if name.eq_ignore_ascii_case("must-revalidate") {
                self.must_revalidate = true;
            } else if name.eq_ignore_ascii_case("stale-while-revalidate") {
                self.stale_while_revalidate = seconds();
            } else if name.eq_ignore_ascii_case("stale-if-error") {
                self.stale_if_error = seconds();
            }
        }
    }

    /// How long a private cache (one client's, or one key's) may reuse the
    /// response without asking again: zero for `no-store`/`no-cache`.
    pub fn freshness(&self) -> Option<Duration> {
        if self.no_store || self.no_cache {
            return Some(Duration::ZERO);
        }
        self.max_age
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_whatever_the_case_and_quoting() {
        let seconds = |s| Some(Duration::from_secs(s));
        assert_eq!(
            CacheControl::parse("public, max-age=600").freshness(),
            seconds(600)
        );
        assert_eq!(
            CacheControl::parse("Max-Age=\"30\"").freshness(),
            seconds(30)
        );
        assert_eq!(CacheControl::parse("no-store").freshness(), seconds(0));
        assert_eq!(
            CacheControl::parse("max-age=60, no-cache").freshness(),
            seconds(0)
        );
        assert_eq!(CacheControl::parse("public").freshness(), None);
        assert_eq!(CacheControl::parse("max-age=x").freshness(), None);
    }

    #[test]
    fn shared_cache_directives_are_read() {
        let parsed = CacheControl::parse(
            "s-maxage=120, private, stale-while-revalidate=30, stale-if-error=600",
        );
        assert_eq!(parsed.s_maxage, Some(Duration::from_secs(120)));
        assert!(parsed.private);
        assert_eq!(parsed.stale_while_revalidate, Some(Duration::from_secs(30)));
        assert_eq!(parsed.stale_if_error, Some(Duration::from_secs(600)));
    }

    #[test]
    fn directives_from_several_lines_combine() {
        let mut headers = HeaderMap::new();
        headers.append(CACHE_CONTROL, "max-age=10".parse().unwrap());
        headers.append(CACHE_CONTROL, "must-revalidate".parse().unwrap());
        let parsed = CacheControl::from_headers(&headers);
        assert_eq!(parsed.max_age, Some(Duration::from_secs(10)));
        assert!(parsed.must_revalidate);
    }
}
