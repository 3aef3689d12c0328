//! The rate-limit algorithms on a fake clock: admission sequences, refill,
//! burst, cost, reset and retry times exactly, and a clock going backwards.

use portico::ratelimit::algorithm::{Algorithm, Decision, Quota, State};
use portico::ratelimit::object::{Check, LINGER_MS, LimitCall, LimiterObject, Sweep};

fn quota(algorithm: Algorithm, limit: u64, period_ms: u64, burst: u64) -> Quota {
    Quota {
        algorithm,
        limit,
        period_ms,
        burst,
    }
}

/// Run requests of `cost` at the given times, keeping state; returns decisions.
fn run(quota: &Quota, times: &[u64], cost: u64) -> (Vec<Decision>, Option<State>) {
    let mut state = None;
    let mut decisions = Vec::new();
    for &now in times {
        let (decision, next) = quota.decide(state.as_ref(), now, cost);
        if let Some(next) = next {
            state = Some(next);
        }
        decisions.push(decision);
    }
    (decisions, state)
}

fn admitted(decisions: &[Decision]) -> Vec<bool> {
    decisions.iter().map(|d| d.allowed).collect()
}

#[test]
fn token_bucket_admits_the_burst_then_refills_at_the_rate() {
    let q = quota(Algorithm::TokenBucket, 5, 1000, 5);
    let (d, state) = run(&q, &[0, 0, 0, 0, 0, 0], 1);
    assert_eq!(admitted(&d), [true, true, true, true, true, false]);
    assert_eq!(d[4].remaining, 0);
    assert_eq!(d[4].reset_after_ms, 1000, "five tokens at 5/s");
    assert_eq!(d[5].retry_after_ms, Some(200));
    // One token back after exactly 200 ms, not before.
    let (early, _) = q.decide(state.as_ref(), 199, 1);
    assert!(!early.allowed);
    assert_eq!(early.retry_after_ms, Some(1));
    let (on_time, _) = q.decide(state.as_ref(), 200, 1);
    assert!(on_time.allowed);
    assert_eq!(on_time.remaining, 0);
}

#[test]
fn token_bucket_burst_can_exceed_the_rate() {
    let q = quota(Algorithm::TokenBucket, 1, 1000, 3);
    let (d, _) = run(&q, &[0, 0, 0, 0, 1000, 1000], 1);
    assert_eq!(admitted(&d), [true, true, true, false, true, false]);
    assert_eq!(d[3].retry_after_ms, Some(1000));
}

#[test]
fn fractional_rates_are_exact() {
    // 3 per second, capacity 1: the bucket is full again 333.33 ms after
    // it was emptied, never rounded in the client's favour.
    let q = quota(Algorithm::TokenBucket, 3, 1000, 1);
    let (d, _) = run(&q, &[0, 333, 334, 666, 667, 668, 1000, 1002], 1);
    assert_eq!(
        admitted(&d),
        [true, false, true, false, false, true, false, true]
    );
    assert_eq!(d[1].retry_after_ms, Some(1));
    assert_eq!(d[4].retry_after_ms, Some(1), "full at 667.33 ms");
}

#[test]
fn cost_above_one_takes_that_many_tokens() {
    let q = quota(Algorithm::TokenBucket, 5, 1000, 5);
    let (d, _) = run(&q, &[0, 0, 0], 2);
    assert_eq!(admitted(&d), [true, true, false]);
    assert_eq!(d[1].remaining, 1);
    assert_eq!(d[2].retry_after_ms, Some(200), "one more token needed");
    let (never, _) = q.decide(None, 0, 6);
    assert!(!never.allowed);
    assert_eq!(
        never.retry_after_ms, None,
        "a cost above the burst can never pass"
    );
}

#[test]
fn gcra_decides_exactly_like_the_token_bucket() {
    let mut seed = 42u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        seed >> 33
    };
    for (limit, period, burst) in [(5, 1000, 5), (3, 1000, 1), (7, 60_000, 10), (100, 1000, 20)] {
        let bucket = quota(Algorithm::TokenBucket, limit, period, burst);
        let gcra = quota(Algorithm::Gcra, limit, period, burst);
        let (mut a, mut b) = (None, None);
        let mut now = 0;
        for _ in 0..2000 {
            now += next() % (period / limit + 1);
            let cost = 1 + next() % 2;
            let (da, na) = bucket.decide(a.as_ref(), now, cost);
            let (db, nb) = gcra.decide(b.as_ref(), now, cost);
            assert_eq!(
                da.allowed, db.allowed,
                "{limit}/{period} burst {burst} at {now}"
            );
            assert_eq!(da.remaining, db.remaining, "remaining at {now}");
            assert_eq!(da.retry_after_ms, db.retry_after_ms, "retry at {now}");
            a = na.or(a);
            b = nb.or(b);
        }
    }
}

#[test]
fn fixed_windows_align_to_the_period() {
    let q = quota(Algorithm::FixedWindow, 3, 1000, 3);
    let (d, _) = run(&q, &[990, 995, 999, 999, 1000, 1001], 1);
    assert_eq!(admitted(&d), [true, true, true, false, true, true]);
    assert_eq!(d[3].retry_after_ms, Some(1));
    assert_eq!(d[3].reset_after_ms, 1);
    assert_eq!(d[4].remaining, 2);
    assert_eq!(d[4].reset_after_ms, 1000);
}

#[test]
fn the_sliding_log_admits_limit_in_any_period() {
    let q = quota(Algorithm::SlidingLog, 3, 1000, 3);
    let (d, state) = run(&q, &[0, 100, 200, 500], 1);
    assert_eq!(admitted(&d), [true, true, true, false]);
    assert_eq!(
        d[3].retry_after_ms,
        Some(500),
        "the request at 0 leaves the window at 1000"
    );
    assert_eq!(d[2].reset_after_ms, 1000);
    let (at_999, _) = q.decide(state.as_ref(), 999, 1);
    assert!(!at_999.allowed);
    let (at_1000, _) = q.decide(state.as_ref(), 1000, 1);
    assert!(at_1000.allowed);
    // cost 2 must wait for two entries to leave
    let (two, _) = q.decide(state.as_ref(), 500, 2);
    assert_eq!(two.retry_after_ms, Some(600));
}

#[test]
fn a_clock_going_backwards_mints_nothing() {
    for algorithm in [
        Algorithm::TokenBucket,
        Algorithm::Gcra,
        Algorithm::FixedWindow,
        Algorithm::SlidingLog,
    ] {
        let q = quota(algorithm, 2, 1000, 2);
        let (d, state) = run(&q, &[5_000, 5_000], 1);
        assert_eq!(admitted(&d), [true, true], "{algorithm:?}");
        for back in [4_999, 4_000, 0] {
            let (decision, _) = q.decide(state.as_ref(), back, 1);
            assert!(
                !decision.allowed,
                "{algorithm:?} admitted at {back} after its clock went back"
            );
        }
    }
}

#[test]
fn several_policies_in_one_object_are_charged_together_or_not_at_all() {
    let mut object = LimiterObject::new();
    let call = LimitCall {
        checks: vec![
            Check {
                state_key: "burst".into(),
                quota: quota(Algorithm::TokenBucket, 2, 1000, 2),
                cost: 1,
                lease: None,
            },
            Check {
                state_key: "daily".into(),
                quota: quota(Algorithm::FixedWindow, 100, 86_400_000, 100),
                cost: 1,
                lease: None,
            },
        ],
        peek: false,
    };
    let allowed =
        |reply: &portico::ratelimit::object::LimitReply| reply.decisions.iter().all(|d| d.allowed);
    assert!(allowed(&object.apply(0, &call).0));
    assert!(allowed(&object.apply(0, &call).0));
    let (denied, changed) = object.apply(0, &call);
    assert!(!denied.decisions[0].allowed);
    assert!(changed.is_empty(), "a refused request changes nothing");
    assert_eq!(
        denied.decisions[1].remaining, 98,
        "the daily quota was not charged for it"
    );
    let peek = LimitCall {
        peek: true,
        ..call.clone()
    };
    let (report, changed) = object.apply(1000, &peek);
    assert!(changed.is_empty());
    assert_eq!(report.decisions[1].remaining, 98);
}

#[test]
fn every_state_survives_storage_as_json() {
    let far_future = 4_102_444_800_000; // 2100, in ms
    for algorithm in [
        Algorithm::TokenBucket,
        Algorithm::Gcra,
        Algorithm::FixedWindow,
        Algorithm::SlidingLog,
    ] {
        let q = quota(algorithm, 1_000_000, 86_400_000, 1_000_000);
        let (_, state) = q.decide(None, far_future, 3);
        let state = state.expect("admitted");
        let stored = serde_json::to_string(&state).unwrap();
        let loaded: State = serde_json::from_str(&stored)
            .unwrap_or_else(|e| panic!("{algorithm:?}: {e}: {stored}"));
        assert_eq!(loaded, state);
    }
}

#[test]
fn a_lease_charges_what_is_available_up_to_its_size() {
    let mut object = LimiterObject::new();
    let check = |lease| LimitCall {
        checks: vec![Check {
            state_key: "hot".into(),
            quota: quota(Algorithm::TokenBucket, 10, 60_000, 10),
            cost: 1,
            lease,
        }],
        peek: false,
    };
    let (reply, _) = object.apply(0, &check(Some(4)));
    assert_eq!(reply.granted, [4]);
    assert_eq!(reply.decisions[0].remaining, 6);
    let (reply, _) = object.apply(0, &check(Some(8)));
    assert_eq!(reply.granted, [6], "only what is left");
    let (reply, _) = object.apply(0, &check(Some(4)));
    assert!(!reply.decisions[0].allowed);
    assert!(reply.granted.is_empty());
}

/// Requests of mixed cost at mixed times, to leave a state behind.
fn worn_state(q: &Quota) -> State {
    let base = 10 * q.period_ms;
    let times = [
        base,
        base + 1,
        base + q.period_ms / 3,
        base + q.period_ms / 2,
    ];
    let (decisions, state) = run(q, &times, 1);
    assert!(decisions[0].allowed, "{q:?}");
    state.expect("admitted")
}

fn decisions_for_costs(q: &Quota, state: Option<&State>, now: u64) -> Vec<Decision> {
    (0..=q.burst.max(q.limit) + 1)
        .map(|cost| q.decide(state, now, cost).0)
        .collect()
}

#[test]
fn from_its_idle_time_a_state_decides_exactly_as_no_state_would() {
    for algorithm in [
        Algorithm::TokenBucket,
        Algorithm::Gcra,
        Algorithm::FixedWindow,
        Algorithm::SlidingLog,
    ] {
        for (limit, period_ms, burst) in [
            (5, 1000, 5),
            (3, 1000, 7),
            (1, 60_000, 1),
            (7, 3_600_000, 2),
        ] {
            let q = quota(algorithm, limit, period_ms, burst);
            let state = worn_state(&q);
            let idle = q.idle_at(&state);
            for now in [idle, idle + 1, idle + period_ms, idle + 10 * period_ms] {
                assert_eq!(
                    decisions_for_costs(&q, Some(&state), now),
                    decisions_for_costs(&q, None, now),
                    "{q:?} at {now}, idle at {idle}"
                );
            }
            assert_ne!(
                decisions_for_costs(&q, Some(&state), idle - 1),
                decisions_for_costs(&q, None, idle - 1),
                "{q:?}: the state still mattered just before {idle}"
            );
        }
    }
}

fn check(state_key: &str, q: Quota) -> Check {
    Check {
        state_key: state_key.into(),
        quota: q,
        cost: 1,
        lease: None,
    }
}

#[test]
fn an_object_is_swept_only_once_every_policy_sharing_it_is_idle() {
    let mut object = LimiterObject::new();
    let call = LimitCall {
        checks: vec![
            check("second", quota(Algorithm::TokenBucket, 2, 1000, 2)),
            check("day", quota(Algorithm::FixedWindow, 100, 86_400_000, 100)),
        ],
        peek: false,
    };
    assert_eq!(object.sweep(0), Sweep::Cleared, "an unused object is empty");
    object.apply(1000, &call);
    assert_eq!(object.idle_at(), Some(86_400_000), "the day's window ends");
    assert_eq!(
        object.sweep(2000),
        Sweep::Later(86_400_000),
        "the per-second bucket is full again, the daily count still matters"
    );
    let peek = LimitCall {
        peek: true,
        ..call.clone()
    };
    let (report, _) = object.apply(2000, &peek);
    assert_eq!(report.decisions[1].remaining, 99);
    assert_eq!(report.stored, [true, true]);
    assert_eq!(object.sweep(86_400_000), Sweep::Cleared);
    let (report, _) = object.apply(86_400_000, &peek);
    assert_eq!(report.stored, [false, false]);
    assert_eq!(report.decisions[1].remaining, 100);
    assert_eq!(object.idle_at(), None);
}

#[test]
fn a_busy_object_keeps_its_storage_between_calls_even_when_each_state_is_soon_idle() {
    // A billion a second: the bucket is full again a millisecond after a
    // charge, yet an object charged a moment ago is not emptied.
    let mut object = LimiterObject::new();
    let call = LimitCall {
        checks: vec![check(
            "generous",
            quota(Algorithm::TokenBucket, 1_000_000_000, 1000, 1_000_000_000),
        )],
        peek: false,
    };
    object.apply(1000, &call);
    assert_eq!(object.sweep(1002), Sweep::Later(1000 + LINGER_MS));
    object.apply(5000, &call);
    assert_eq!(
        object.sweep(1000 + LINGER_MS),
        Sweep::Later(5000 + LINGER_MS),
        "each write moves the linger on"
    );
    assert_eq!(object.sweep(5000 + LINGER_MS), Sweep::Cleared);
}

#[test]
fn an_idle_time_an_earlier_instance_stored_holds_off_the_sweep() {
    // A restarted object knows only the states it was asked about; the
    // stored idle time covers the others.
    let mut object = LimiterObject::new();
    object.note_idle_at(86_400_000);
    object.apply(
        0,
        &LimitCall {
            checks: vec![check("second", quota(Algorithm::TokenBucket, 2, 1000, 2))],
            peek: false,
        },
    );
    assert_eq!(object.sweep(1000), Sweep::Later(86_400_000));
    object.note_idle_at(5);
    assert_eq!(
        object.idle_at(),
        Some(86_400_000),
        "idle times only move on"
    );
}

#[test]
fn a_quota_that_never_refills_is_never_idle_while_it_holds_a_charge() {
    let q = quota(Algorithm::TokenBucket, 0, 1000, 3);
    let (decision, state) = q.decide(None, 0, 1);
    assert!(decision.allowed, "the burst is there to spend");
    assert_eq!(q.idle_at(&state.expect("charged")), u64::MAX);
}
