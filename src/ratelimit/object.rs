//! What a rate-limit object does: the single writer for one limit key.
//!
//! One Durable Object per limit key holds the state of every policy that
//! shares that key (a per-second burst and a per-day quota for the same API
//! key, say), so one round trip decides them all, atomically: either every
//! policy admits the request and all are charged, or none is. The object
//! only applies the pure arithmetic of [`super::algorithm`] to its stored
//! state; it uses its own clock, so all isolates are judged by one.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::algorithm::{Decision, Quota, State};

/// One policy to check in an object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Where the object keeps this policy's state (policy name and quota).
    pub state_key: String,
    pub quota: Quota,
    pub cost: u64,
    /// Lease mode: charge up to this many units at once (never fewer than
    /// `cost`, never more than are available) for the isolate to spend
    /// locally.
    #[serde(default)]
    pub lease: Option<u64>,
}

/// A call to an object: check (and, if all pass, charge) these policies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitCall {
    pub checks: Vec<Check>,
    /// Report without charging (for `portico limits show`).
    #[serde(default)]
    pub peek: bool,
}

/// The object's answer: one decision per check, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitReply {
    pub decisions: Vec<Decision>,
    /// Units charged per check when all were admitted (more than the cost
    /// for leases); empty otherwise.
    #[serde(default)]
    pub granted: Vec<u64>,
    /// For a peek: per check, whether the object holds a state for it
    /// (false once idle storage has been emptied); empty otherwise.
    #[serde(default)]
    pub stored: Vec<bool>,
}

/// What a sweep of an object found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sweep {
    /// Every state had stopped mattering and is gone: empty the storage.
    Cleared,
    /// Some state still matters until then.
    Later(u64),
}

/// How long, at least, an object keeps its storage after its last
/// write. A state that stops mattering almost at once (a generous bucket
/// full again a millisecond after a charge) would otherwise have its
/// object emptied and filled again between one call and the next: a
/// delete, a read and a write more per call on a busy key, for nothing.
pub const LINGER_MS: u64 = 10_000;

/// The state of one limit key.
#[derive(Debug, Default)]
pub struct LimiterObject {
    states: HashMap<String, State>,
    /// From when every state written so far (and every stored one the
    /// object was told of) decides as no state would: the object's storage
    /// can then be emptied without changing any decision.
    idle_at: Option<u64>,
}

impl LimiterObject {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the state for `key` is already in memory.
    pub fn has(&self, key: &str) -> bool {
        self.states.contains_key(key)
    }

    /// Put a state loaded from storage.
    pub fn load(&mut self, key: String, state: State) {
        self.states.insert(key, state);
    }

    /// When the object's states stop mattering (see [`Quota::idle_at`]):
    /// the latest of its written states' idle times, and never sooner than
    /// [`LINGER_MS`] after its last write; `None` if it has written nothing
    /// and been told of nothing stored.
    pub fn idle_at(&self) -> Option<u64> {
        self.idle_at
    }

    /// Take into account the idle time an earlier instance of the object
    /// stored (its states may cover policies this instance has not seen).
    pub fn note_idle_at(&mut self, at: u64) {
        self.idle_at = Some(self.idle_at.map_or(at, |known| known.max(at)));
    }

    /// At `now`, forget every state if all of them have stopped mattering,
    /// and say so: the caller then empties the stored copy too. Otherwise
    /// returns when to look again.
    pub fn sweep(&mut self, now: u64) -> Sweep {
        match self.idle_at {
            Some(at) if at > now => Sweep::Later(at),
            _ => {
                self.states.clear();
                self.idle_at = None;
                Sweep::Cleared
            }
        }
    }

    /// Apply `calls` at `now`, one after the other, as separate calls in
    /// that order would be. Returns the replies and the states that changed
    /// (each key once, its latest state), to be written to storage before
    /// the replies are sent.
    pub fn apply_all(
        &mut self,
        now: u64,
        calls: &[LimitCall],
    ) -> (Vec<LimitReply>, Vec<(String, State)>) {
        let mut replies = Vec::with_capacity(calls.len());
        let mut changed: Vec<(String, State)> = Vec::new();
        for call in calls {
            let (reply, states) = self.apply(now, call);
            replies.push(reply);
            for (key, state) in states {
                match changed.iter_mut().find(|(k, _)| *k == key) {
                    Some(slot) => slot.1 = state,
                    None => changed.push((key, state)),
                }
            }
        }
        (replies, changed)
    }

    /// Apply `call` at `now`. Returns the reply and the states that changed
    /// (to be written to storage before the reply is sent).
    pub fn apply(&mut self, now: u64, call: &LimitCall) -> (LimitReply, Vec<(String, State)>) {
        let mut decisions = Vec::with_capacity(call.checks.len());
        let mut next = Vec::with_capacity(call.checks.len());
        let mut charged = Vec::with_capacity(call.checks.len());
        for check in &call.checks {
            let stored = self.states.get(&check.state_key);
            let cost = match (call.peek, check.lease) {
                (true, _) => 0,
                (false, None) => check.cost,
                (false, Some(lease)) => {
                    let available = check.quota.decide(stored, now, 0).0.remaining;
                    available.min(lease).max(check.cost)
                }
            };
            let (decision, state) = check.quota.decide(stored, now, cost);
            decisions.push(decision);
            next.push(state);
            charged.push(cost);
        }
        let all_allowed = decisions.iter().all(|d| d.allowed);
        let mut changed = Vec::new();
        if all_allowed && !call.peek {
            for (check, state) in call.checks.iter().zip(next) {
                if let Some(state) = state {
                    let idle_at = check.quota.idle_at(&state);
                    self.note_idle_at(idle_at.max(now.saturating_add(LINGER_MS)));
                    self.states.insert(check.state_key.clone(), state.clone());
                    changed.push((check.state_key.clone(), state));
                }
            }
        } else if !all_allowed {
            // Admitted by some policies but denied by another: none is
            // charged, so report the admitting ones as they stand.
            for (check, decision) in call.checks.iter().zip(decisions.iter_mut()) {
                if decision.allowed {
                    *decision = check
                        .quota
                        .decide(self.states.get(&check.state_key), now, 0)
                        .0;
                }
            }
        }
        let granted = if all_allowed && !call.peek {
            charged
        } else {
            Vec::new()
        };
        let stored = if call.peek {
            call.checks
                .iter()
                .map(|check| self.states.contains_key(&check.state_key))
                .collect()
        } else {
            Vec::new()
        };
        (
            LimitReply {
                decisions,
                granted,
                stored,
            },
            changed,
        )
    }
}
