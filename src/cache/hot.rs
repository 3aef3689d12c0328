//! The isolate's own copies of small entries it has just served from the
//! data centre's cache, or just read from the origin to store, so that
//! the next hits of a hot key cost no cache lookup at all (the lookup is
//! I/O, and on a busy key most of a hit's time), and a miss that arrives
//! while a store is under way needs no second trip to the origin.
//!
//! A copy answers for [`HOLD`]; then one request looks the entry up again
//! (and renews the copy), while the others go on with the copy for at
//! most [`GRACE`] more, so a hot key never sends a burst of lookups to the
//! cache. A copy is never used past the entry's own freshness, so
//! stale-while-revalidate, stale-if-error and expiry all go through the
//! data centre's cache as before. A purge reaches these copies in the
//! isolate that handles it at once (a URL's copy is dropped, and a route's
//! new epoch changes every key), and in the other isolates of the data
//! centre within [`HOLD`] + [`GRACE`]. Only bodies of at most
//! [`MAX_BYTES`] are kept, and at most [`MAX_ENTRIES`] of them.

use std::cell::Cell;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::entry::{Meta, State};
use crate::body::Body;
use crate::platform::UnixMillis;
use crate::ttl_cache::TtlCache;

/// How long an isolate answers from its copy before looking again.
pub const HOLD: Duration = Duration::from_secs(1);
/// How much longer the copy answers while one request looks again.
pub const GRACE: Duration = Duration::from_secs(1);
/// The largest body kept.
pub const MAX_BYTES: usize = 64 * 1024;
/// How many copies an isolate keeps (the oldest goes first).
pub const MAX_ENTRIES: usize = 128;

/// One copy: the entry's record and its response as the client gets it,
/// but for `Age`.
#[derive(Clone, Debug)]
pub struct HotEntry {
    meta: Meta,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    /// Until when the copy answers on its own.
    held_until: UnixMillis,
    /// Whether a request is looking the entry up again.
    renewing: Cell<bool>,
}

/// What [`HotEntries::answer`] says.
pub enum Hot<S> {
    /// The response, with its remaining freshness (`ttl`, seconds).
    Answer(http::Response<Body<S>>, i64),
    /// No copy to answer with: look the entry up.
    Lookup,
}

#[derive(Debug)]
pub struct HotEntries {
    entries: TtlCache<String, std::rc::Rc<HotEntry>>,
}

impl Default for HotEntries {
    fn default() -> Self {
        HotEntries {
            entries: TtlCache::new(MAX_ENTRIES),
        }
    }
}

impl HotEntries {
    /// Keep a copy of the entry under `key`, read from the cache at `now`
    /// (its headers as [`super::entry::from_storage`] gave them back).
    /// Bodies over [`MAX_BYTES`] and entries no longer fresh are not kept.
    pub fn keep(
        &mut self,
        key: &str,
        now: UnixMillis,
        meta: Meta,
        status: StatusCode,
        headers: &HeaderMap,
        body: Bytes,
    ) {
        let State::Fresh { ttl } = meta.state(now) else {
            return;
        };
        if body.len() > MAX_BYTES || ttl <= 0 {
            return;
        }
        let fresh_for = Duration::from_secs(u64::try_from(ttl).unwrap_or(0));
        let held_until = now.plus(HOLD.min(fresh_for));
        let entry = HotEntry {
            meta,
            status,
            headers: headers.clone(),
            body,
            held_until,
            renewing: Cell::new(false),
        };
        self.entries.insert(
            key.to_owned(),
            std::rc::Rc::new(entry),
            held_until.plus(GRACE),
        );
    }

    /// The response for `key` at `now` from the copy, while it is held
    /// and the entry fresh. Once the hold is over, the first request asked
    /// is told to look the entry up; the others are answered from the copy
    /// meanwhile, for [`GRACE`] at most.
    pub fn answer<S>(&mut self, key: &str, now: UnixMillis) -> Hot<S> {
        let Some(entry) = self.entries.get(&key.to_owned(), now) else {
            return Hot::Lookup;
        };
        let State::Fresh { ttl } = entry.meta.state(now) else {
            return Hot::Lookup;
        };
        if now >= entry.held_until && !entry.renewing.replace(true) {
            return Hot::Lookup;
        }
        let mut response = http::Response::new(Body::Full(entry.body.clone()));
        *response.status_mut() = entry.status;
        *response.headers_mut() = entry.headers.clone();
        response
            .headers_mut()
            .insert(header::AGE, HeaderValue::from(entry.meta.age(now)));
        Hot::Answer(response, ttl)
    }

    /// Forget the copy under `key` (a purge of its URL, or a lookup that
    /// found the entry gone or no longer fresh).
    pub fn forget(&mut self, key: &str) {
        self.entries.remove(&key.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::entry::Lifetime;

    fn meta(fresh_secs: u64) -> Meta {
        let lifetime = Lifetime {
            fresh: Duration::from_secs(fresh_secs),
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
        };
        Meta::new(UnixMillis(0), lifetime, &HeaderMap::new())
    }

    fn keep(hot: &mut HotEntries, at: u64, fresh_secs: u64, body: Bytes) {
        let (status, headers) = (StatusCode::OK, HeaderMap::new());
        hot.keep(
            "k",
            UnixMillis(at),
            meta(fresh_secs),
            status,
            &headers,
            body,
        );
    }

    fn kept(fresh_secs: u64) -> HotEntries {
        let mut hot = HotEntries::default();
        keep(&mut hot, 0, fresh_secs, Bytes::from_static(b"body"));
        hot
    }

    fn answers(hot: &mut HotEntries, at: u64) -> bool {
        matches!(hot.answer::<()>("k", UnixMillis(at)), Hot::Answer(..))
    }

    #[test]
    fn after_the_hold_one_request_looks_again_while_the_rest_use_the_copy_for_the_grace() {
        let mut hot = kept(30);
        assert!(answers(&mut hot, 999));
        assert!(
            !answers(&mut hot, 1_000),
            "the first after the hold looks again"
        );
        assert!(
            answers(&mut hot, 1_001),
            "the others meanwhile use the copy"
        );
        assert!(answers(&mut hot, 1_999));
        assert!(!answers(&mut hot, 2_000), "past the grace nobody does");
    }

    #[test]
    fn a_renewed_copy_is_held_again_and_a_forgotten_one_is_gone() {
        let mut hot = kept(30);
        assert!(!answers(&mut hot, 1_000));
        keep(&mut hot, 1_000, 30, Bytes::from_static(b"body"));
        assert!(answers(&mut hot, 1_999));
        assert!(!answers(&mut hot, 2_000));
        hot.forget("k");
        assert!(!answers(&mut hot, 2_001), "forgotten: every request looks");
    }

    #[test]
    fn a_copy_never_answers_past_the_entrys_freshness_or_holds_a_large_body() {
        let mut hot = kept(1);
        assert!(answers(&mut hot, 500));
        assert!(!answers(&mut hot, 1_000));
        assert!(!answers(&mut hot, 1_001), "stale: not from the copy");

        let mut big = HotEntries::default();
        keep(&mut big, 0, 30, Bytes::from(vec![0u8; MAX_BYTES + 1]));
        assert!(!answers(&mut big, 1));
    }
}
