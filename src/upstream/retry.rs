//! Retry policies: which failures are tried again, how often, how long to
//! wait in between, and the budget that keeps retries from multiplying an
//! outage. Pure rules and arithmetic; the tries themselves are made in
//! [`super::attempts`].
//!
//! A retry is only ever made for a method that may be repeated (RFC 9110
//! idempotent methods, unless the config opts in to all), only within the
//! route's timeout (which covers every try and every wait), and only while
//! the service's retry budget in this isolate allows: at most `min_retries`
//! plus `ratio` of the requests of the current 10-second window.

use std::time::Duration;

use http::Method;

use crate::platform::{FetchError, UnixMillis};

/// How long a retry budget counts requests and retries before starting
/// afresh.
pub const BUDGET_WINDOW: Duration = Duration::from_secs(10);

/// A service's (or route's) retry policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    pub on: RetryOn,
    /// Each try's timeout; `None`: whatever is left of the route's.
    pub per_try_timeout: Option<Duration>,
    pub backoff: Backoff,
    pub methods: RetryMethods,
    /// Request bodies up to this size are kept to send again; a request
    /// with a larger body (or one of unknown length) is tried once.
    pub max_body_bytes: usize,
    /// `None`: retries are not budgeted (only the always-safe retry).
    pub budget: Option<BudgetPolicy>,
}

/// Which failures are worth another try.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetryOn {
    /// No connection, or it was lost before a response.
    pub connect_error: bool,
    /// No response within the try's timeout.
    pub timeout: bool,
    /// Responses with these statuses (sorted).
    pub statuses: Vec<u16>,
}

/// Which methods may be sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryMethods {
    /// GET, HEAD, OPTIONS and TRACE without a body.
    Safe,
    /// RFC 9110's idempotent methods: the safe ones, PUT and DELETE.
    Idempotent,
    /// Any method (the config opted in: the service copes with repeats).
    Any,
}

/// Jittered exponential backoff: before retry `n`, a wait drawn evenly
/// from zero to `base * 2^(n-1)`, capped at `max` ("full jitter", so
/// isolates that failed together do not retry together).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

/// Retries allowed per window: `min_retries` plus `ratio` of requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetPolicy {
    /// The ratio in millionths (0.2 is 200 000).
    pub ratio_millionths: u32,
    pub min_retries: u32,
}

/// How one try ended, as far as retries and health care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryOutcome {
    Answered(u16),
    Unreachable,
    TimedOut,
    /// The client's body passed the route's limit: the client's doing,
    /// never retried and never held against the target.
    BodyRefused,
}

impl TryOutcome {
    pub fn of<T>(result: &Result<http::Response<T>, FetchError>) -> TryOutcome {
        match result {
            Ok(response) => TryOutcome::Answered(response.status().as_u16()),
            Err(FetchError::Timeout(_)) => TryOutcome::TimedOut,
            Err(FetchError::Unreachable(_) | FetchError::TooLarge(_)) => TryOutcome::Unreachable,
            Err(FetchError::RequestBodyTooLarge(_)) => TryOutcome::BodyRefused,
        }
    }

    /// Whether it counts against the target's health: no connection, no
    /// answer in time, or a gateway error (502, 503, 504). Other answers,
    /// 500 included, are the application's, not the target's health.
    pub fn is_target_failure(self) -> bool {
        match self {
            TryOutcome::Answered(status) => matches!(status, 502..=504),
            TryOutcome::Unreachable | TryOutcome::TimedOut => true,
            TryOutcome::BodyRefused => false,
        }
    }
}

/// What every upstream gets without a policy of its own: one more try
/// of a safe request without a body that got no connection at all.
pub static FLOOR: RetryPolicy = RetryPolicy {
    attempts: 2,
    on: RetryOn {
        connect_error: true,
        timeout: false,
        statuses: Vec::new(),
    },
    per_try_timeout: None,
    backoff: Backoff {
        base: Duration::ZERO,
        max: Duration::ZERO,
    },
    methods: RetryMethods::Safe,
    max_body_bytes: 0,
    budget: None,
};

impl RetryPolicy {
    /// Whether requests with this method may be tried more than once.
    pub fn allows(&self, method: &Method) -> bool {
        let safe = matches!(
            *method,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
        );
        match self.methods {
            RetryMethods::Safe => safe,
            RetryMethods::Idempotent => safe || *method == Method::PUT || *method == Method::DELETE,
            RetryMethods::Any => true,
        }
    }

    /// Whether a try that ended so is worth another.
    pub fn retries_on(&self, outcome: TryOutcome) -> bool {
        match outcome {
            TryOutcome::Unreachable => self.on.connect_error,
            TryOutcome::TimedOut => self.on.timeout,
            TryOutcome::Answered(status) => self.on.statuses.binary_search(&status).is_ok(),
            TryOutcome::BodyRefused => false,
        }
    }
}

impl Backoff {
    /// The wait before retry `retry` (1 for the first), from a random draw.
    pub fn delay(&self, retry: u32, draw: u64) -> Duration {
        let doublings = retry.saturating_sub(1).min(30);
        let cap = self.base.saturating_mul(1 << doublings).min(self.max);
        let cap_ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(draw.checked_rem(cap_ms.saturating_add(1)).unwrap_or(0))
    }
}

/// A service's retry budget in one isolate: requests and retries of the
/// current window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetryBudget {
    window_start: UnixMillis,
    requests: u64,
    retries: u64,
}

impl RetryBudget {
    /// A request arrived (counted once, however many tries it takes).
    pub fn record_request(&mut self, now: UnixMillis) {
        self.roll(now);
        self.requests = self.requests.saturating_add(1);
    }

    /// Take one retry from the budget, if it has one left.
    pub fn try_spend(&mut self, now: UnixMillis, policy: &BudgetPolicy) -> bool {
        self.roll(now);
        let earned = self
            .requests
            .saturating_mul(u64::from(policy.ratio_millionths))
            / 1_000_000;
        if self.retries < earned.saturating_add(u64::from(policy.min_retries)) {
            self.retries += 1;
            true
        } else {
            false
        }
    }

    fn roll(&mut self, now: UnixMillis) {
        if now.since(self.window_start) >= BUDGET_WINDOW || now < self.window_start {
            *self = RetryBudget {
                window_start: now,
                requests: 0,
                retries: 0,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            on: RetryOn {
                connect_error: true,
                timeout: false,
                statuses: vec![502, 503, 504],
            },
            per_try_timeout: None,
            backoff: Backoff {
                base: Duration::from_millis(25),
                max: Duration::from_millis(250),
            },
            methods: RetryMethods::Idempotent,
            max_body_bytes: 1024,
            budget: None,
        }
    }

    #[test]
    fn only_idempotent_methods_unless_the_policy_opts_in() {
        let idempotent = policy();
        for method in [Method::GET, Method::HEAD, Method::PUT, Method::DELETE] {
            assert!(idempotent.allows(&method), "{method}");
        }
        assert!(!idempotent.allows(&Method::POST));
        assert!(!idempotent.allows(&Method::PATCH));
        let any = RetryPolicy {
            methods: RetryMethods::Any,
            ..policy()
        };
        assert!(any.allows(&Method::POST));
        let floor = &FLOOR;
        assert!(floor.allows(&Method::GET) && !floor.allows(&Method::PUT));
    }

    #[test]
    fn only_the_listed_failures_are_retried() {
        let p = policy();
        assert!(p.retries_on(TryOutcome::Unreachable));
        assert!(!p.retries_on(TryOutcome::TimedOut));
        assert!(p.retries_on(TryOutcome::Answered(503)));
        assert!(!p.retries_on(TryOutcome::Answered(500)));
        assert!(!p.retries_on(TryOutcome::Answered(200)));
    }

    #[test]
    fn gateway_errors_count_against_a_target_and_application_errors_do_not() {
        assert!(TryOutcome::Unreachable.is_target_failure());
        assert!(TryOutcome::TimedOut.is_target_failure());
        assert!(TryOutcome::Answered(503).is_target_failure());
        assert!(!TryOutcome::Answered(500).is_target_failure());
        assert!(!TryOutcome::Answered(404).is_target_failure());
    }

    #[test]
    fn backoff_is_jittered_below_a_doubling_capped_ceiling() {
        let backoff = policy().backoff;
        assert_eq!(backoff.delay(1, 25), Duration::from_millis(25));
        assert_eq!(backoff.delay(1, 26), Duration::ZERO);
        assert_eq!(backoff.delay(2, 50), Duration::from_millis(50));
        assert_eq!(backoff.delay(3, 99), Duration::from_millis(99));
        assert_eq!(backoff.delay(10, 250), Duration::from_millis(250));
        assert_eq!(backoff.delay(10, 251), Duration::ZERO);
        for draw in 0..1000 {
            assert!(backoff.delay(4, draw) <= Duration::from_millis(200));
        }
        let none = FLOOR.backoff;
        assert_eq!(none.delay(1, 12345), Duration::ZERO);
    }

    #[test]
    fn the_budget_allows_min_retries_plus_a_share_of_requests_per_window() {
        let budget_policy = BudgetPolicy {
            ratio_millionths: 200_000,
            min_retries: 2,
        };
        let mut budget = RetryBudget::default();
        let t0 = UnixMillis(1_000_000);
        for _ in 0..10 {
            budget.record_request(t0);
        }
        let granted = (0..10)
            .filter(|_| budget.try_spend(t0, &budget_policy))
            .count();
        assert_eq!(granted, 4, "2 + 20% of 10");
        let later = t0.plus(BUDGET_WINDOW);
        assert!(budget.try_spend(later, &budget_policy), "a new window");
        assert!(budget.try_spend(later, &budget_policy));
        assert!(!budget.try_spend(later, &budget_policy));
    }
}
