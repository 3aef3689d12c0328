//! The rate-limit algorithms: pure, exact integer arithmetic over (stored
//! state, now, quota, cost), returning a decision and the state to store
//! if the request is admitted.
//!
//! Time is in milliseconds. Fractional rates (3 per second) are kept exact
//! by scaling: token-bucket levels are stored as tokens x period, GCRA
//! arrival times as milliseconds x limit, so no rounding ever admits an
//! extra request. A clock that goes backwards is treated as standing
//! still: it can never refill a bucket or open a new window.
//!
//! | algorithm | state | admits |
//! |---|---|---|
//! | token bucket | level, last refill | up to `burst` at once, refilled at `limit` per `period` |
//! | GCRA (leaky bucket) | theoretical arrival time | the same, as a virtual schedule |
//! | fixed window | window start, count | `limit` per calendar-aligned `period` |
//! | sliding log | admitted (time, cost) entries | `limit` in any `period`, exactly |

use serde::{Deserialize, Serialize};

/// Which algorithm a policy uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    TokenBucket,
    Gcra,
    FixedWindow,
    SlidingLog,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::TokenBucket => "token_bucket",
            Algorithm::Gcra => "gcra",
            Algorithm::FixedWindow => "fixed_window",
            Algorithm::SlidingLog => "sliding_log",
        }
    }
}

/// The quota a policy enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Quota {
    pub algorithm: Algorithm,
    /// Requests (cost units) per period.
    pub limit: u64,
    pub period_ms: u64,
    /// Bucket capacity for token bucket and GCRA (defaults to `limit`).
    pub burst: u64,
}

/// The state an algorithm keeps between requests. (Externally tagged: an
/// internally tagged enum would buffer its fields and lose the u128s.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    TokenBucket { level: u128, updated_ms: u64 },
    Gcra { tat: u128 },
    FixedWindow { window_start_ms: u64, used: u64 },
    SlidingLog { entries: Vec<(u64, u64)> },
}

/// The verdict on one request under one quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u64,
    /// What is left after this request (if admitted) or now (if not).
    pub remaining: u64,
    /// Milliseconds until the quota is fully available again.
    pub reset_after_ms: u64,
    /// When denied: milliseconds until a request of this cost could pass;
    /// `None` when it never can (the cost exceeds the capacity).
    pub retry_after_ms: Option<u64>,
}

fn ceil_div(a: u128, b: u128) -> u64 {
    if b == 0 {
        return 0;
    }
    u64::try_from(a.div_ceil(b)).unwrap_or(u64::MAX)
}

fn floor_div(a: u128, b: u128) -> u64 {
    if b == 0 {
        return 0;
    }
    u64::try_from(a / b).unwrap_or(u64::MAX)
}

impl Quota {
    /// Decide on a request of `cost` at `now`. Returns the decision and,
    /// when admitted, the state to store. A denied request changes nothing.
    pub fn decide(&self, state: Option<&State>, now: u64, cost: u64) -> (Decision, Option<State>) {
        match self.algorithm {
            Algorithm::TokenBucket => self.token_bucket(state, now, cost),
            Algorithm::Gcra => self.gcra(state, now, cost),
            Algorithm::FixedWindow => self.fixed_window(state, now, cost),
            Algorithm::SlidingLog => self.sliding_log(state, now, cost),
        }
    }

    /// The time from which `state` decides every request exactly as no
    /// state would (a full bucket, an empty schedule, a window or log that
    /// has run out): from then on the stored state can be dropped without
    /// changing any decision, which is how idle rate-limit objects clean up
    /// their storage. `u64::MAX` (never) for a quota that never refills.
    pub fn idle_at(&self, state: &State) -> u64 {
        match state {
            State::TokenBucket { level, updated_ms } => {
                let period = u128::from(self.period_ms);
                let capacity = u128::from(self.burst) * period;
                if self.limit == 0 {
                    return if *level >= capacity {
                        *updated_ms
                    } else {
                        u64::MAX
                    };
                }
                let missing = capacity.saturating_sub(*level);
                updated_ms.saturating_add(ceil_div(missing, u128::from(self.limit)))
            }
            State::Gcra { tat } => {
                if self.limit == 0 {
                    return if *tat == 0 { 0 } else { u64::MAX };
                }
                ceil_div(*tat, u128::from(self.limit))
            }
            State::FixedWindow {
                window_start_ms, ..
            } => window_start_ms.saturating_add(self.period_ms.max(1)),
            State::SlidingLog { entries } => entries
                .iter()
                .map(|(at, _)| at.saturating_add(self.period_ms))
                .max()
                .unwrap_or(0),
        }
    }

    fn token_bucket(
        &self,
        state: Option<&State>,
        now: u64,
        cost: u64,
    ) -> (Decision, Option<State>) {
        let period = u128::from(self.period_ms);
        let rate = u128::from(self.limit); // scaled tokens gained per ms
        let capacity = u128::from(self.burst) * period;
        let (level, updated) = match state {
            Some(State::TokenBucket { level, updated_ms }) => (*level, *updated_ms),
            _ => (capacity, now),
        };
        let now = now.max(updated);
        let level = capacity.min(level + u128::from(now - updated) * rate);
        let need = u128::from(cost) * period;
        if need <= level {
            let left = level - need;
            let decision = Decision {
                allowed: true,
                limit: self.limit,
                remaining: floor_div(left, period),
                reset_after_ms: ceil_div(capacity - left, rate),
                retry_after_ms: None,
            };
            (
                decision,
                Some(State::TokenBucket {
                    level: left,
                    updated_ms: now,
                }),
            )
        } else {
            let decision = Decision {
                allowed: false,
                limit: self.limit,
                remaining: floor_div(level, period),
                reset_after_ms: ceil_div(capacity - level, rate),
                retry_after_ms: (need <= capacity).then(|| ceil_div(need - level, rate)),
            };
            (decision, None)
        }
    }

    fn gcra(&self, state: Option<&State>, now: u64, cost: u64) -> (Decision, Option<State>) {
        let limit = u128::from(self.limit);
        let interval = u128::from(self.period_ms); // emission interval, scaled by limit
        let tolerance = u128::from(self.burst) * interval;
        let now_scaled = u128::from(now) * limit;
        let tat = match state {
            Some(State::Gcra { tat }) => (*tat).max(now_scaled),
            _ => now_scaled,
        };
        let new_tat = tat + u128::from(cost) * interval;
        if new_tat - now_scaled <= tolerance {
            let ahead = new_tat - now_scaled;
            let decision = Decision {
                allowed: true,
                limit: self.limit,
                remaining: floor_div(tolerance - ahead, interval),
                reset_after_ms: ceil_div(ahead, limit),
                retry_after_ms: None,
            };
            (decision, Some(State::Gcra { tat: new_tat }))
        } else {
            let ahead = tat - now_scaled;
            let decision = Decision {
                allowed: false,
                limit: self.limit,
                remaining: floor_div(tolerance.saturating_sub(ahead), interval),
                reset_after_ms: ceil_div(ahead, limit),
                retry_after_ms: (u128::from(cost) * interval <= tolerance)
                    .then(|| ceil_div(new_tat - now_scaled - tolerance, limit)),
            };
            (decision, None)
        }
    }

    fn fixed_window(
        &self,
        state: Option<&State>,
        now: u64,
        cost: u64,
    ) -> (Decision, Option<State>) {
        let period = self.period_ms.max(1);
        let (stored_start, stored_used) = match state {
            Some(State::FixedWindow {
                window_start_ms,
                used,
            }) => (*window_start_ms, *used),
            _ => (0, 0),
        };
        let now = now.max(stored_start);
        let start = now - now % period;
        let used = if start == stored_start {
            stored_used
        } else {
            0
        };
        let reset_after_ms = start + period - now;
        if used.saturating_add(cost) <= self.limit {
            let used = used + cost;
            let decision = Decision {
                allowed: true,
                limit: self.limit,
                remaining: self.limit - used,
                reset_after_ms,
                retry_after_ms: None,
            };
            (
                decision,
                Some(State::FixedWindow {
                    window_start_ms: start,
                    used,
                }),
            )
        } else {
            let decision = Decision {
                allowed: false,
                limit: self.limit,
                remaining: self.limit.saturating_sub(used),
                reset_after_ms,
                retry_after_ms: (cost <= self.limit).then_some(reset_after_ms),
            };
            (decision, None)
        }
    }

    fn sliding_log(&self, state: Option<&State>, now: u64, cost: u64) -> (Decision, Option<State>) {
        let period = self.period_ms;
        let mut entries: Vec<(u64, u64)> = match state {
            Some(State::SlidingLog { entries }) => entries.clone(),
            _ => Vec::new(),
        };
        let now = entries.last().map_or(now, |(at, _)| now.max(*at));
        entries.retain(|(at, _)| at + period > now);
        let used: u64 = entries.iter().map(|(_, c)| *c).sum();
        if used.saturating_add(cost) <= self.limit {
            entries.push((now, cost));
            let used = used + cost;
            let reset_after_ms = entries.last().map_or(0, |(at, _)| at + period - now);
            let decision = Decision {
                allowed: true,
                limit: self.limit,
                remaining: self.limit - used,
                reset_after_ms,
                retry_after_ms: None,
            };
            (decision, Some(State::SlidingLog { entries }))
        } else {
            // Wait until enough of the oldest entries have left the window.
            let mut freed = 0;
            let mut retry = None;
            if cost <= self.limit {
                for (at, c) in &entries {
                    freed += c;
                    if used - freed + cost <= self.limit {
                        retry = Some(at + period - now);
                        break;
                    }
                }
            }
            let decision = Decision {
                allowed: false,
                limit: self.limit,
                remaining: self.limit.saturating_sub(used),
                reset_after_ms: entries.last().map_or(0, |(at, _)| at + period - now),
                retry_after_ms: retry,
            };
            (decision, None)
        }
    }
}
