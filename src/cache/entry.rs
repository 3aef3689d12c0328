//! Cache entries: whether an upstream response may be stored, for how
//! long, and how old a stored one is now.
//!
//! Never stored: a status the policy does not list (206 never), a
//! response with `Set-Cookie`, `Vary: *` or a `Vary` naming a request
//! header that is not in the key (it could differ between requests
//! sharing the entry), and, when the origin is honoured, `no-store`,
//! `private` or `no-cache`. Freshness is the origin's `s-maxage`, else
//! `max-age`, else `Expires` (when honoured), else the policy's `ttl`.
//!
//! The Cache API keeps an entry as long as its `Cache-Control` says, and
//! knows nothing of stale-while-revalidate or stale-if-error. So a stored
//! response carries a `Cache-Control` for its whole servable life (fresh
//! plus the longer stale window), the origin's own `Cache-Control` aside,
//! and the gateway's freshness record; all three are put back or removed
//! when the entry is served.

use std::time::{Duration, UNIX_EPOCH};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::CachePolicy;
use crate::http::CacheControl;
use crate::platform::UnixMillis;

/// The gateway's record of an entry: `STORED_MS FRESH_S SWR_S SIE_S AGE_S`.
pub const META: HeaderName = HeaderName::from_static("x-portico-cache");
/// The origin's `Cache-Control`, kept aside while the entry is stored.
pub const ORIGIN_CACHE_CONTROL: HeaderName =
    HeaderName::from_static("x-portico-cache-origin-cache-control");

/// How long an entry is fresh, and servable after that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime {
    pub fresh: Duration,
    pub stale_while_revalidate: Duration,
    pub stale_if_error: Duration,
}

/// Whether to store an upstream response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storability {
    Store(Lifetime),
    /// Why not (for the log and `Cache-Status`).
    Skip(&'static str),
}

/// Decide whether an upstream response to a GET may be stored.
pub fn storability(policy: &CachePolicy, status: u16, headers: &HeaderMap) -> Storability {
    if status == 206 || policy.statuses.binary_search(&status).is_err() {
        return Storability::Skip("status");
    }
    if headers.contains_key(header::SET_COOKIE) {
        return Storability::Skip("set-cookie");
    }
    if !vary_is_keyed(policy, headers) {
        return Storability::Skip("vary");
    }
    if let Some(length) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && length > u64::try_from(policy.max_body_bytes).unwrap_or(u64::MAX)
    {
        return Storability::Skip("too-large");
    }
    let lifetime = if policy.honor_origin {
        let directives = CacheControl::from_headers(headers);
        if directives.no_store || directives.private || directives.no_cache {
            return Storability::Skip("origin-cache-control");
        }
        Lifetime {
            fresh: directives
                .s_maxage
                .or(directives.max_age)
                .or_else(|| expires_in(headers))
                .unwrap_or(policy.ttl),
            stale_while_revalidate: directives
                .stale_while_revalidate
                .unwrap_or(policy.stale_while_revalidate),
            stale_if_error: directives.stale_if_error.unwrap_or(policy.stale_if_error),
        }
    } else {
        Lifetime {
            fresh: policy.ttl,
            stale_while_revalidate: policy.stale_while_revalidate,
            stale_if_error: policy.stale_if_error,
        }
    };
    if lifetime.fresh.is_zero()
        && lifetime.stale_while_revalidate.is_zero()
        && lifetime.stale_if_error.is_zero()
    {
        return Storability::Skip("ttl-zero");
    }
    Storability::Store(lifetime)
}

/// Every request header named in `Vary` is part of the key (or is
/// `Accept-Encoding`, which the platform's cache handles itself).
fn vary_is_keyed(policy: &CachePolicy, headers: &HeaderMap) -> bool {
    headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .all(|name| {
            name != "*"
                && (name.eq_ignore_ascii_case("accept-encoding")
                    || policy
                        .vary_headers
                        .iter()
                        .any(|keyed| keyed.as_str().eq_ignore_ascii_case(name)))
        })
}

/// Freshness from `Expires` (against `Date`, when the origin sent one).
fn expires_in(headers: &HeaderMap) -> Option<Duration> {
    let date = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
    };
    // An unparseable Expires means "already expired" (RFC 9111 5.3).
    let expires = match headers.get(header::EXPIRES) {
        None => return None,
        Some(_) => date(header::EXPIRES).unwrap_or(UNIX_EPOCH),
    };
    let base = date(header::DATE)?;
    Some(expires.duration_since(base).unwrap_or(Duration::ZERO))
}

/// The gateway's record of a stored entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub stored_at: UnixMillis,
    pub lifetime: Lifetime,
    /// The origin's `Age` when it was stored, in seconds.
    pub origin_age: u64,
}

/// Where an entry stands now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Serve it; `ttl` seconds of freshness left.
    Fresh { ttl: i64 },
    /// Serve it and refresh it in the background; `ttl` is negative.
    StaleWhileRevalidate { ttl: i64 },
    /// Ask the origin; serve it only if the origin fails.
    StaleIfError { ttl: i64 },
    /// Of no use.
    Expired,
}

impl Meta {
    pub fn new(stored_at: UnixMillis, lifetime: Lifetime, headers: &HeaderMap) -> Meta {
        let origin_age = headers
            .get(header::AGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        Meta {
            stored_at,
            lifetime,
            origin_age,
        }
    }

    /// How old the response is now, in seconds (RFC 9111 4.2.3).
    pub fn age(&self, now: UnixMillis) -> u64 {
        self.origin_age
            .saturating_add(now.since(self.stored_at).as_secs())
    }

    pub fn state(&self, now: UnixMillis) -> State {
        let age = i64::try_from(self.age(now)).unwrap_or(i64::MAX);
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let ttl = secs(self.lifetime.fresh).saturating_sub(age);
        if ttl > 0 {
            State::Fresh { ttl }
        } else if -ttl < secs(self.lifetime.stale_while_revalidate) {
            State::StaleWhileRevalidate { ttl }
        } else if -ttl < secs(self.lifetime.stale_if_error) {
            State::StaleIfError { ttl }
        } else {
            State::Expired
        }
    }

    /// How long the platform's cache should keep the entry.
    fn storage_seconds(&self) -> u64 {
        let stale = self
            .lifetime
            .stale_while_revalidate
            .max(self.lifetime.stale_if_error);
        self.lifetime
            .fresh
            .saturating_add(stale)
            .as_secs()
            .saturating_sub(self.origin_age)
            .max(1)
    }

    fn read(headers: &HeaderMap) -> Option<Meta> {
        let text = headers.get(META)?.to_str().ok()?;
        let mut numbers = text.split(' ').map(|n| n.parse::<u64>().ok());
        let mut next = || numbers.next().flatten();
        Some(Meta {
            stored_at: UnixMillis(next()?),
            lifetime: Lifetime {
                fresh: Duration::from_secs(next()?),
                stale_while_revalidate: Duration::from_secs(next()?),
                stale_if_error: Duration::from_secs(next()?),
            },
            origin_age: next()?,
        })
    }
}

/// Headers as stored: the record, the storage lifetime, the origin's
/// `Cache-Control` aside.
pub fn for_storage(meta: &Meta, headers: &mut HeaderMap) {
    let origin = headers.remove(header::CACHE_CONTROL);
    if let Some(origin) = origin {
        headers.insert(ORIGIN_CACHE_CONTROL, origin);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&format!("public, max-age={}", meta.storage_seconds()))
            .unwrap_or(HeaderValue::from_static("no-store")),
    );
    let record = format!(
        "{} {} {} {} {}",
        meta.stored_at.0,
        meta.lifetime.fresh.as_secs(),
        meta.lifetime.stale_while_revalidate.as_secs(),
        meta.lifetime.stale_if_error.as_secs(),
        meta.origin_age
    );
    if let Ok(value) = HeaderValue::from_str(&record) {
        headers.insert(META, value);
    }
    headers.remove(header::AGE);
    headers.remove(header::SET_COOKIE);
}

/// The record of a stored response, its headers put back as the origin
/// sent them, with `Age` as of `now`. `None` for anything the gateway did
/// not store itself.
pub fn from_storage(headers: &mut HeaderMap, now: UnixMillis) -> Option<Meta> {
    let meta = Meta::read(headers)?;
    headers.remove(META);
    // The platform's own word on the lookup; Cache-Status says it for us.
    headers.remove("cf-cache-status");
    headers.remove(header::CACHE_CONTROL);
    if let Some(origin) = headers.remove(ORIGIN_CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, origin);
    }
    headers.insert(header::AGE, HeaderValue::from(meta.age(now)));
    Some(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::QueryKey;

    fn policy(honor_origin: bool) -> CachePolicy {
        CachePolicy {
            ttl: Duration::from_secs(30),
            honor_origin,
            statuses: crate::cache::DEFAULT_STATUSES.to_vec(),
            stale_while_revalidate: Duration::from_secs(10),
            stale_if_error: Duration::from_secs(60),
            max_body_bytes: 100,
            vary_headers: vec![HeaderName::from_static("accept-language")],
            query: QueryKey::AllBut(vec![]),
            shared: false,
            generation: 1,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn fresh(storability: Storability) -> u64 {
        match storability {
            Storability::Store(lifetime) => lifetime.fresh.as_secs(),
            Storability::Skip(why) => panic!("skipped: {why}"),
        }
    }

    #[test]
    fn s_maxage_beats_max_age_beats_expires_beats_the_policy() {
        let p = policy(true);
        assert_eq!(
            fresh(storability(
                &p,
                200,
                &headers(&[("cache-control", "max-age=60, s-maxage=120")])
            )),
            120
        );
        assert_eq!(
            fresh(storability(
                &p,
                200,
                &headers(&[("cache-control", "max-age=60")])
            )),
            60
        );
        let dated = headers(&[
            ("date", "Thu, 01 Jan 2026 00:00:00 GMT"),
            ("expires", "Thu, 01 Jan 2026 00:05:00 GMT"),
        ]);
        assert_eq!(fresh(storability(&p, 200, &dated)), 300);
        assert_eq!(fresh(storability(&p, 200, &HeaderMap::new())), 30);
        assert_eq!(
            fresh(storability(
                &policy(false),
                200,
                &headers(&[("cache-control", "max-age=600")])
            )),
            30
        );
    }

    #[test]
    fn what_must_never_be_stored_is_not() {
        let p = policy(true);
        for (status, pairs, why) in [
            (206, vec![], "status"),
            (500, vec![], "status"),
            (200, vec![("set-cookie", "s=1")], "set-cookie"),
            (200, vec![("vary", "*")], "vary"),
            (200, vec![("vary", "Authorization")], "vary"),
            (
                200,
                vec![("cache-control", "private, max-age=60")],
                "origin-cache-control",
            ),
            (
                200,
                vec![("cache-control", "no-store")],
                "origin-cache-control",
            ),
            (
                200,
                vec![("cache-control", "no-cache")],
                "origin-cache-control",
            ),
            (200, vec![("content-length", "101")], "too-large"),
        ] {
            assert_eq!(
                storability(&p, status, &headers(&pairs)),
                Storability::Skip(why),
                "{status} {pairs:?}"
            );
        }
        assert!(matches!(
            storability(
                &p,
                200,
                &headers(&[("vary", "Accept-Language, accept-encoding")])
            ),
            Storability::Store(_)
        ));
        assert!(matches!(
            storability(&policy(false), 200, &headers(&[("set-cookie", "s=1")])),
            Storability::Skip("set-cookie")
        ));
    }

    #[test]
    fn an_entry_is_fresh_then_stale_then_expired() {
        let start = UnixMillis(1_000_000);
        let meta = Meta::new(
            start,
            Lifetime {
                fresh: Duration::from_secs(30),
                stale_while_revalidate: Duration::from_secs(10),
                stale_if_error: Duration::from_secs(60),
            },
            &headers(&[("age", "5")]),
        );
        let at = |s: u64| meta.state(start.plus(Duration::from_secs(s)));
        assert_eq!(at(0), State::Fresh { ttl: 25 });
        assert_eq!(at(24), State::Fresh { ttl: 1 });
        assert_eq!(at(25), State::StaleWhileRevalidate { ttl: 0 });
        assert_eq!(at(34), State::StaleWhileRevalidate { ttl: -9 });
        assert_eq!(at(35), State::StaleIfError { ttl: -10 });
        assert_eq!(at(84), State::StaleIfError { ttl: -59 });
        assert_eq!(at(85), State::Expired);
    }

    #[test]
    fn a_stored_response_round_trips_with_its_own_cache_control_and_age() {
        let start = UnixMillis(1_767_225_600_000);
        let mut stored = headers(&[("cache-control", "public, max-age=30"), ("etag", "\"v1\"")]);
        let meta = Meta::new(
            start,
            Lifetime {
                fresh: Duration::from_secs(30),
                stale_while_revalidate: Duration::from_secs(30),
                stale_if_error: Duration::ZERO,
            },
            &stored,
        );
        for_storage(&meta, &mut stored);
        assert_eq!(stored["cache-control"], "public, max-age=60");
        let mut served = stored.clone();
        let read = from_storage(&mut served, start.plus(Duration::from_secs(12))).unwrap();
        assert_eq!(read, meta);
        assert_eq!(served["cache-control"], "public, max-age=30");
        assert_eq!(served["age"], "12");
        assert!(!served.contains_key(META) && !served.contains_key(ORIGIN_CACHE_CONTROL));
        assert_eq!(from_storage(&mut headers(&[("etag", "x")]), start), None);
    }
}
