//! Response caching at the edge, in the data centre's cache (the Cache API
//! on Workers), made safe for authenticated APIs.
//!
//! - [`key`]: which requests share an entry. On a route with
//!   authentication the caller is part of the key (hashed) unless the
//!   policy says the responses are `shared`; the host, normalised path,
//!   sorted query and configured request headers are too. Nothing else
//!   can change what is stored.
//! - [`entry`]: whether an upstream response may be stored and for how
//!   long (the policy, and the origin's `Cache-Control` when honoured),
//!   the freshness kept beside the entry, and how old an entry is now:
//!   fresh, stale but servable while it is refreshed, stale but servable
//!   when the origin fails, or expired.
//! - [`conditional`]: `If-None-Match` and `If-Modified-Since` answered
//!   from an entry with 304.
//! - [`status`]: the `Cache-Status` field (RFC 9211) and the log's word.
//! - [`hot`]: an isolate's own short-lived copies of small entries it
//!   just served, so a hot key's next hits need no cache lookup.
//! - [`coalesce`]: concurrent misses for one key in one isolate make one
//!   upstream request; the others share its response.
//!
//! The phase that uses them is [`crate::phases::cache`]. Authentication,
//! authorisation and rate limits run before any lookup, so a hit never
//! skips them. Nothing here does I/O.

use std::time::Duration;

use http::HeaderName;

pub mod coalesce;
pub mod conditional;
pub mod entry;
pub mod hot;
pub mod key;
pub mod status;

/// Which query parameters are part of the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryKey {
    /// Every parameter, sorted, less these (tracking parameters, say).
    AllBut(Vec<String>),
    /// Only these, sorted.
    Only(Vec<String>),
}

/// A route's caching policy, checked at load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachePolicy {
    /// Freshness when the origin says nothing (or is not honoured).
    pub ttl: Duration,
    /// Use the origin's `Cache-Control` (`s-maxage`, `max-age`, `no-store`,
    /// `private`, `no-cache`, `stale-while-revalidate`, `stale-if-error`)
    /// and `Expires`.
    pub honor_origin: bool,
    /// Statuses that may be stored, sorted.
    pub statuses: Vec<u16>,
    /// How long past freshness an entry is served at once while one
    /// background request refreshes it.
    pub stale_while_revalidate: Duration,
    /// How long past freshness an entry is served when the origin fails.
    pub stale_if_error: Duration,
    /// Larger responses pass through and are not stored.
    pub max_body_bytes: usize,
    /// Request headers the responses vary on: part of the key.
    pub vary_headers: Vec<HeaderName>,
    pub query: QueryKey,
    /// On a route with authentication: every caller gets the same entry.
    pub shared: bool,
    /// Part of every key: bumping it (a config push) retires every entry
    /// of the route, everywhere.
    pub generation: u64,
}

/// The statuses stored unless a policy lists its own (RFC 9110's
/// heuristically cacheable ones, less 206, 300, 308, 405, 414, 501).
pub const DEFAULT_STATUSES: [u16; 6] = [200, 203, 204, 301, 404, 410];
