//! What an isolate remembers about rate limits between requests.
//!
//! - A deny cache: a limit key that was refused stays refused here until
//!   its retry time, without asking its object again, so an abusive client
//!   costs its object one call per retry period, not one per request.
//!   This never admits anything the object would refuse; it only answers
//!   a refusal the object already gave.
//! - Leases: for policies that lease, units the object already charged and
//!   handed to this isolate, spent here without a call until they run out
//!   or their time is up. Leasing never admits more than the quota (every
//!   leased unit was charged first); what it costs is that units leased to
//!   one isolate and left unspent are lost for the others: at most the
//!   lease size per isolate per lease period. That is the bound on how far
//!   a leased policy may refuse what the exact one would admit.
//! - Client networks over their failed-authentication budget, until their
//!   retry time: their credentials are not checked again here (no KV read,
//!   no signature check, no introspection call) until then.
//! - The object calls in flight ([`Coalescer`]): a request for an object
//!   that already has a call on its way waits and goes in the next one,
//!   together with every other request that arrived meanwhile.
//! - A breaker per object: after an object failed, calls to it are
//!   skipped for a short back-off and the route's failure policy applies at
//!   once, so an overloaded object is never retried in a tight loop.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use super::algorithm::Decision;
use super::coalesce::Coalescer;
use super::{LimitKey, PolicyResult};
use crate::platform::UnixMillis;
use crate::ttl_cache::TtlCache;

const DENY_CACHE_ENTRIES: usize = 10_000;
/// How long the store is left alone after it failed.
pub const BREAKER_BACKOFF: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct LocalLimits {
    /// The refusal and when it was given.
    denied: RefCell<TtlCache<LimitKey, (Decision, UnixMillis)>>,
    /// Objects that failed, until their back-off ends.
    broken: RefCell<TtlCache<String, ()>>,
    /// Units on hand and the object's last word.
    leases: RefCell<HashMap<LimitKey, Leased>>,
    /// Client networks out of failed-authentication attempts, until when.
    failed_auth: RefCell<TtlCache<IpAddr, UnixMillis>>,
    /// Object calls in flight, which later requests for the same object
    /// join instead of making their own.
    pub in_flight: Coalescer,
}

#[derive(Clone, Copy, Debug)]
struct Leased {
    units: u64,
    expires: UnixMillis,
    /// The object's decision when it granted them.
    decision: Decision,
}

impl Default for LocalLimits {
    fn default() -> Self {
        LocalLimits {
            denied: RefCell::new(TtlCache::new(DENY_CACHE_ENTRIES)),
            broken: RefCell::new(TtlCache::new(DENY_CACHE_ENTRIES)),
            leases: RefCell::new(HashMap::new()),
            failed_auth: RefCell::new(TtlCache::new(DENY_CACHE_ENTRIES)),
            in_flight: Coalescer::default(),
        }
    }
}

impl LocalLimits {
    /// A refusal still in force for this key, with its times brought up to `now`.
    pub fn denied(&self, key: &LimitKey, now: UnixMillis) -> Option<Decision> {
        let (decision, at) = self.denied.borrow_mut().get(key, now)?;
        let elapsed = u64::try_from(now.since(at).as_millis()).unwrap_or(u64::MAX);
        Some(Decision {
            reset_after_ms: decision.reset_after_ms.saturating_sub(elapsed),
            retry_after_ms: decision.retry_after_ms.map(|r| r.saturating_sub(elapsed)),
            ..decision
        })
    }

    /// Remember the refusals among `results` until their retry time.
    pub fn remember<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k LimitKey>,
        results: &[PolicyResult],
        now: UnixMillis,
    ) {
        for (key, result) in keys.into_iter().zip(results) {
            if result.decision.allowed {
                continue;
            }
            let wait = result
                .decision
                .retry_after_ms
                .unwrap_or(result.decision.reset_after_ms);
            if wait == 0 {
                continue;
            }
            self.denied.borrow_mut().insert(
                key.clone(),
                (result.decision, now),
                now.plus(Duration::from_millis(wait)),
            );
        }
    }

    /// Whether leased units cover `cost` for every key in `wanted`.
    pub fn leases_cover<'k>(
        &self,
        wanted: impl IntoIterator<Item = (&'k LimitKey, u64)>,
        now: UnixMillis,
    ) -> bool {
        let leases = self.leases.borrow();
        wanted.into_iter().all(|(key, cost)| {
            leases
                .get(key)
                .is_some_and(|lease| now < lease.expires && lease.units >= cost)
        })
    }

    /// Spend `cost` leased units; the decision to report (the object's
    /// remaining count plus what this isolate still holds).
    pub fn spend_lease(&self, key: &LimitKey, cost: u64) -> Option<Decision> {
        let mut leases = self.leases.borrow_mut();
        let lease = leases.get_mut(key)?;
        lease.units = lease.units.checked_sub(cost)?;
        Some(Decision {
            remaining: lease.decision.remaining.saturating_add(lease.units),
            ..lease.decision
        })
    }

    /// Keep `units` granted beyond the request's own cost until `ttl` ends.
    pub fn store_lease(
        &self,
        key: LimitKey,
        units: u64,
        decision: Decision,
        now: UnixMillis,
        ttl: Duration,
    ) {
        let mut leases = self.leases.borrow_mut();
        if leases.len() >= DENY_CACHE_ENTRIES {
            leases.retain(|_, lease| now < lease.expires);
        }
        if units == 0 {
            leases.remove(&key);
            return;
        }
        leases.insert(
            key,
            Leased {
                units,
                expires: now.plus(ttl),
                decision,
            },
        );
    }

    /// How long `network` is still out of failed-authentication attempts,
    /// if it is.
    pub fn failed_auth_blocked(&self, network: IpAddr, now: UnixMillis) -> Option<Duration> {
        let until = self.failed_auth.borrow_mut().get(&network, now)?;
        Some(until.since(now))
    }

    /// Note that `network` is out of failed-authentication attempts until
    /// `until`.
    pub fn block_failed_auth(&self, network: IpAddr, until: UnixMillis) {
        self.failed_auth.borrow_mut().insert(network, until, until);
    }

    /// Whether `object` failed within the back-off.
    pub fn is_broken(&self, object: &str, now: UnixMillis) -> bool {
        self.broken
            .borrow_mut()
            .get(&object.to_owned(), now)
            .is_some()
    }

    /// Note that `object` failed.
    pub fn trip(&self, object: &str, now: UnixMillis) {
        self.broken
            .borrow_mut()
            .insert(object.to_owned(), (), now.plus(BREAKER_BACKOFF));
    }
}
