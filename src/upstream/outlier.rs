//! Passive health (outlier detection, as Envoy calls it): what real
//! requests say about a target, per isolate, with no coordination.
//!
//! A target that fails `consecutive_failures` requests in a row (no
//! connection, no answer in time, 502, 503 or 504) is ejected: it takes no
//! requests for a while, `base_ejection` the first time and twice as long
//! on each ejection after that, up to `max_ejection`. When the time is up
//! it is half-open: one request is let through as a trial, and its outcome
//! decides (back in, or ejected again for longer). A target that stays in
//! for `max_ejection` starts from `base_ejection` again. No more than
//! `max_ejected_percent` of a service's targets are ejected at once (at
//! least one may be), so an outage of the service itself cannot empty it.
//!
//! Pure state over time: the caller brings the clock and says what
//! happened; nothing here does I/O.

use std::time::Duration;

use crate::platform::UnixMillis;

/// A service's outlier detection settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassiveHealth {
    pub consecutive_failures: u32,
    pub base_ejection: Duration,
    pub max_ejection: Duration,
    /// 1 to 100.
    pub max_ejected_percent: u32,
}

impl PassiveHealth {
    /// How many of `targets` may be ejected at once (at least one).
    pub fn max_ejected(&self, targets: usize) -> usize {
        (targets.saturating_mul(self.max_ejected_percent as usize) / 100).max(1)
    }

    /// How long the `ejections`-th ejection in a row lasts.
    pub fn ejection_time(&self, ejections: u32) -> Duration {
        let doublings = ejections.saturating_sub(1).min(30);
        self.base_ejection
            .saturating_mul(1 << doublings)
            .min(self.max_ejection)
    }
}

/// Whether a target may take a request now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Availability {
    /// In service.
    Open,
    /// Ejected until then.
    Ejected { until: UnixMillis },
    /// Its ejection is over: the next request is its trial.
    HalfOpen,
    /// Its trial request is under way; nothing else goes there meanwhile.
    TrialInFlight,
}

/// A change worth telling operators about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthChange {
    /// Taken out of service for `for_ms`; `ejections` in a row so far.
    Ejected { for_ms: u64, ejections: u32 },
    /// Back in service: a trial request succeeded.
    Restored,
    /// Back in service: the scheduled health check saw it answer.
    RestoredByCheck,
}

/// One target's outlier state in one isolate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outlier {
    /// Failures since the last success.
    failures: u32,
    /// Ejections in a row (reset after `max_ejection` in service).
    ejections: u32,
    /// When the current ejection began.
    ejected_at: Option<UnixMillis>,
    /// Set while ejected or half-open.
    until: Option<UnixMillis>,
    trial: bool,
    restored_at: Option<UnixMillis>,
}

impl Outlier {
    pub fn availability(&self, now: UnixMillis) -> Availability {
        match self.until {
            None => Availability::Open,
            Some(until) if now < until => Availability::Ejected { until },
            Some(_) if self.trial => Availability::TrialInFlight,
            Some(_) => Availability::HalfOpen,
        }
    }

    /// Whether it counts as ejected (ejected, or half-open awaiting its
    /// trial) for the service's share of ejected targets.
    pub fn is_out(&self) -> bool {
        self.until.is_some()
    }

    /// When its ejection ends, if it is ejected.
    pub fn ejected_until(&self) -> Option<UnixMillis> {
        self.until
    }

    /// A half-open target's trial request is being sent.
    pub fn start_trial(&mut self) {
        self.trial = true;
    }

    /// The trial request ended without an outcome (it was cancelled); the
    /// next request is the trial instead.
    pub fn abandon_trial(&mut self) {
        self.trial = false;
    }

    /// Record a request's outcome. `was_trial`: it was this target's trial;
    /// `may_eject`: the service is under its share of ejected targets.
    pub fn record(
        &mut self,
        failed: bool,
        was_trial: bool,
        may_eject: bool,
        now: UnixMillis,
        policy: &PassiveHealth,
    ) -> Option<HealthChange> {
        if was_trial {
            self.trial = false;
        }
        if !failed {
            self.failures = 0;
            if was_trial && self.until.is_some() {
                self.restore(now);
                return Some(HealthChange::Restored);
            }
            return None;
        }
        self.failures = self.failures.saturating_add(1);
        let eject = if self.until.is_some() {
            // Already out: only its own trial failing extends that.
            was_trial
        } else {
            self.failures >= policy.consecutive_failures && may_eject
        };
        if !eject {
            return None;
        }
        if self
            .restored_at
            .is_some_and(|at| now.since(at) >= policy.max_ejection)
        {
            self.ejections = 0;
        }
        self.ejections = self.ejections.saturating_add(1);
        let time = policy.ejection_time(self.ejections);
        self.failures = 0;
        self.ejected_at = Some(now);
        self.until = Some(now.plus(time));
        Some(HealthChange::Ejected {
            for_ms: u64::try_from(time.as_millis()).unwrap_or(u64::MAX),
            ejections: self.ejections,
        })
    }

    /// The scheduled health check saw the target answer at `checked_at`:
    /// an ejection that began before then ends now.
    pub fn checked_up(&mut self, checked_at: UnixMillis, now: UnixMillis) -> Option<HealthChange> {
        match self.ejected_at {
            Some(at) if self.until.is_some() && at <= checked_at => {
                self.restore(now);
                Some(HealthChange::RestoredByCheck)
            }
            _ => None,
        }
    }

    fn restore(&mut self, now: UnixMillis) {
        self.until = None;
        self.ejected_at = None;
        self.trial = false;
        self.failures = 0;
        self.restored_at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PassiveHealth {
        PassiveHealth {
            consecutive_failures: 3,
            base_ejection: Duration::from_secs(10),
            max_ejection: Duration::from_secs(60),
            max_ejected_percent: 50,
        }
    }

    const T0: UnixMillis = UnixMillis(1_000_000);

    fn at(seconds: u64) -> UnixMillis {
        T0.plus(Duration::from_secs(seconds))
    }

    #[test]
    fn consecutive_failures_eject_and_a_success_resets_the_count() {
        let mut outlier = Outlier::default();
        let p = policy();
        assert_eq!(outlier.record(true, false, true, T0, &p), None);
        assert_eq!(outlier.record(true, false, true, T0, &p), None);
        assert_eq!(outlier.record(false, false, true, T0, &p), None);
        assert_eq!(outlier.record(true, false, true, T0, &p), None);
        assert_eq!(outlier.record(true, false, true, T0, &p), None);
        assert_eq!(
            outlier.record(true, false, true, T0, &p),
            Some(HealthChange::Ejected {
                for_ms: 10_000,
                ejections: 1
            })
        );
        assert_eq!(
            outlier.availability(at(9)),
            Availability::Ejected { until: at(10) }
        );
        assert_eq!(outlier.availability(at(10)), Availability::HalfOpen);
    }

    #[test]
    fn one_trial_at_a_time_decides_and_each_failed_trial_doubles_the_ejection() {
        let mut outlier = Outlier::default();
        let p = policy();
        for _ in 0..3 {
            outlier.record(true, false, true, T0, &p);
        }
        outlier.start_trial();
        assert_eq!(outlier.availability(at(10)), Availability::TrialInFlight);
        assert_eq!(
            outlier.record(true, true, true, at(10), &p),
            Some(HealthChange::Ejected {
                for_ms: 20_000,
                ejections: 2
            })
        );
        assert_eq!(
            outlier.availability(at(29)),
            Availability::Ejected { until: at(30) }
        );
        outlier.start_trial();
        assert_eq!(
            outlier.record(true, true, true, at(30), &p),
            Some(HealthChange::Ejected {
                for_ms: 40_000,
                ejections: 3
            })
        );
        outlier.start_trial();
        assert_eq!(
            outlier.record(true, true, true, at(70), &p),
            Some(HealthChange::Ejected {
                for_ms: 60_000,
                ejections: 4
            }),
            "capped at max_ejection"
        );
        outlier.start_trial();
        assert_eq!(
            outlier.record(false, true, true, at(130), &p),
            Some(HealthChange::Restored)
        );
        assert_eq!(outlier.availability(at(130)), Availability::Open);
    }

    #[test]
    fn an_abandoned_trial_leaves_the_target_half_open() {
        let mut outlier = Outlier::default();
        let p = policy();
        for _ in 0..3 {
            outlier.record(true, false, true, T0, &p);
        }
        outlier.start_trial();
        outlier.abandon_trial();
        assert_eq!(outlier.availability(at(11)), Availability::HalfOpen);
    }

    #[test]
    fn requests_already_in_flight_neither_restore_nor_extend_an_ejection() {
        let mut outlier = Outlier::default();
        let p = policy();
        for _ in 0..3 {
            outlier.record(true, false, true, T0, &p);
        }
        assert_eq!(outlier.record(false, false, true, at(1), &p), None);
        assert_eq!(outlier.record(true, false, true, at(1), &p), None);
        assert_eq!(
            outlier.availability(at(1)),
            Availability::Ejected { until: at(10) }
        );
    }

    #[test]
    fn over_the_share_of_ejected_targets_a_failing_target_stays_in() {
        let mut outlier = Outlier::default();
        let p = policy();
        for _ in 0..5 {
            assert_eq!(outlier.record(true, false, false, T0, &p), None);
        }
        assert_eq!(outlier.availability(T0), Availability::Open);
        assert!(matches!(
            outlier.record(true, false, true, T0, &p),
            Some(HealthChange::Ejected { .. })
        ));
    }

    #[test]
    fn a_target_long_back_in_service_starts_from_the_base_ejection_again() {
        let mut outlier = Outlier::default();
        let p = policy();
        for _ in 0..3 {
            outlier.record(true, false, true, T0, &p);
        }
        outlier.start_trial();
        outlier.record(false, true, true, at(10), &p);
        for _ in 0..3 {
            outlier.record(true, false, true, at(100), &p);
        }
        assert_eq!(
            outlier.availability(at(100)),
            Availability::Ejected { until: at(110) }
        );
    }

    #[test]
    fn a_passing_health_check_after_the_ejection_lifts_it() {
        let mut outlier = Outlier::default();
        let p = policy();
        for _ in 0..3 {
            outlier.record(true, false, true, at(5), &p);
        }
        assert_eq!(outlier.checked_up(at(4), at(6)), None, "an older check");
        assert_eq!(
            outlier.checked_up(at(6), at(7)),
            Some(HealthChange::RestoredByCheck)
        );
        assert_eq!(outlier.availability(at(7)), Availability::Open);
    }

    #[test]
    fn the_share_of_ejected_targets_allows_at_least_one() {
        let p = policy();
        assert_eq!(p.max_ejected(1), 1);
        assert_eq!(p.max_ejected(3), 1);
        assert_eq!(p.max_ejected(4), 2);
        assert_eq!(
            PassiveHealth {
                max_ejected_percent: 100,
                ..p
            }
            .max_ejected(3),
            3
        );
    }
}
