//! Coalescing: at most one call in flight per rate-limit object per
//! isolate; requests for that object that arrive meanwhile wait and then
//! go together, as one batch, in the next call.
//!
//! Under load this turns one Durable Object round trip per request into
//! one per batch, without giving up exactness: the object applies the
//! batch's calls one after the other, in the order the requests arrived,
//! exactly as if each had made its own call (so a limit of `k` admits the
//! first `k` of `n`, never more). A lone request pays nothing: with no call
//! in flight it calls at once.
//!
//! The request whose call is in flight leads: when its answer is back it
//! hands the waiting calls, as a batch, to the first of them, which makes
//! the next call for all and answers the others. Every call is made by a
//! request that is itself waiting for it, in its own context (waiters are
//! woken through [`Wakeups`]), so no work outlives its requests. A leader
//! that is dropped hands the waiting calls on, and the calls of its own
//! batch get an error (the failure policy applies; they are never admitted
//! unchecked). A waiter gives up after [`WAIT_LIMIT`] with an error too.
//!
//! A leader can also vanish without being dropped: a runtime may cancel a
//! request whose client went away (Cloudflare does), and its future is
//! then neither run nor dropped, with its call never answered. So a call
//! in flight for longer than any live one can be ([`ABANDONED_AFTER`])
//! counts as abandoned: the next request for that object leads in its
//! place, with the calls that were waiting ahead of its own, instead of
//! waiting behind it until every waiter times out.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use super::object::{LimitCall, LimitReply};
use crate::platform::{Clock, PlatformError, RateLimitStore, Wakeup, Wakeups};

/// How long a request waits for the calls ahead of it: its leader's call
/// and the batch call it goes in, each bounded by the store's own timeout.
pub const WAIT_LIMIT: Duration = Duration::from_secs(5);

/// How long a call may be in flight before it counts as abandoned. Longer
/// than the store's own timeout for a call (2 s on Workers), so a live
/// leader is never taken for gone; shorter than [`WAIT_LIMIT`], so the
/// calls waiting behind a vanished one are still answered.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(3);

/// The calls in flight, per object name.
#[derive(Debug, Default)]
pub struct Coalescer {
    /// An entry means a call for that object is in flight.
    objects: RefCell<HashMap<String, InFlight>>,
    /// Numbers each leadership, so a leader that was taken for abandoned
    /// and comes back leaves its successor's entry alone.
    leaderships: Cell<u64>,
}

#[derive(Debug)]
struct InFlight {
    /// Which leadership the call in flight belongs to.
    leadership: u64,
    /// When that leadership began.
    since: u64,
    /// The calls waiting for the next call.
    waiting: Vec<Waiter>,
}

/// Where a waiting request finds what it was handed.
type Slot = Rc<RefCell<Option<Handoff>>>;

#[derive(Debug)]
struct Waiter {
    call: LimitCall,
    slot: Slot,
    wakeup: Wakeup,
}

impl Waiter {
    /// Whether the request still waits (it holds the other end of its slot).
    fn listening(&self) -> bool {
        Rc::strong_count(&self.slot) > 1
    }
}

#[derive(Debug)]
enum Handoff {
    /// The object's answer to this call.
    Reply(Result<LimitReply, PlatformError>),
    /// Make the next call, as this leadership: this call (handed back)
    /// first, then these.
    Lead(LimitCall, Vec<Waiter>, u64),
}

impl Coalescer {
    /// Apply `call` in `object`, in one round trip shared with whatever
    /// other calls for that object are waiting.
    pub async fn call<P: Clock + RateLimitStore + Wakeups>(
        &self,
        platform: &P,
        object: &str,
        call: LimitCall,
    ) -> Result<LimitReply, PlatformError> {
        let now = platform.now().0;
        let queued = {
            let mut objects = self.objects.borrow_mut();
            match objects.get_mut(object) {
                None => {
                    let leadership = self.next_leadership();
                    objects.insert(
                        object.to_owned(),
                        InFlight {
                            leadership,
                            since: now,
                            waiting: Vec::new(),
                        },
                    );
                    Err((call, Vec::new(), leadership, false))
                }
                Some(in_flight) if is_abandoned(in_flight.since, now) => {
                    // Lead in the vanished leader's place, for the calls
                    // still waiting (the rest have given up), which came
                    // first and so go first.
                    let leadership = self.next_leadership();
                    in_flight.leadership = leadership;
                    in_flight.since = now;
                    let waiting = std::mem::take(&mut in_flight.waiting);
                    let followers = waiting.into_iter().filter(Waiter::listening).collect();
                    Err((call, followers, leadership, true))
                }
                Some(in_flight) => {
                    let (wakeup, woken) = platform.wakeup(WAIT_LIMIT);
                    let slot = Slot::default();
                    in_flight.waiting.push(Waiter {
                        call,
                        slot: Rc::clone(&slot),
                        wakeup,
                    });
                    Ok((slot, woken))
                }
            }
        };
        let (call, followers, leadership, own_last) = match queued {
            Err(lead) => lead,
            Ok((slot, woken)) => {
                woken.await;
                let handed = slot.borrow_mut().take();
                match handed {
                    Some(Handoff::Reply(reply)) => return reply,
                    Some(Handoff::Lead(call, followers, leadership)) => {
                        (call, followers, leadership, false)
                    }
                    None => {
                        return Err(PlatformError(format!(
                            "no rate-limit answer within {WAIT_LIMIT:?} of waiting for the calls ahead"
                        )));
                    }
                }
            }
        };
        let own_at = if own_last { followers.len() } else { 0 };
        let mut calls = Vec::with_capacity(1 + followers.len());
        let mut lead = Lead {
            coalescer: self,
            clock: platform,
            object,
            leadership,
            own_at,
            followers: Vec::with_capacity(followers.len()),
        };
        for Waiter { call, slot, wakeup } in followers {
            calls.push(call);
            lead.followers.push((slot, wakeup));
        }
        calls.insert(own_at, call);
        lead.run(platform, &calls).await
    }

    /// How many objects have a call in flight (for tests).
    pub fn in_flight(&self) -> usize {
        self.objects.borrow().len()
    }

    fn next_leadership(&self) -> u64 {
        let leadership = self.leaderships.get().wrapping_add(1);
        self.leaderships.set(leadership);
        leadership
    }
}

/// Whether a call in flight since `since` has outlived any live call.
fn is_abandoned(since: u64, now: u64) -> bool {
    u128::from(now.saturating_sub(since)) > ABANDONED_AFTER.as_millis()
}

/// The request whose call is in flight. Dropped (done or abandoned), it
/// passes the waiting calls on.
struct Lead<'a> {
    coalescer: &'a Coalescer,
    clock: &'a dyn Clock,
    object: &'a str,
    leadership: u64,
    /// Where this request's own call is in the batch.
    own_at: usize,
    /// The requests whose calls went with this one, in batch order, to
    /// answer.
    followers: Vec<(Slot, Wakeup)>,
}

impl Lead<'_> {
    async fn run<P: RateLimitStore>(
        &mut self,
        platform: &P,
        calls: &[LimitCall],
    ) -> Result<LimitReply, PlatformError> {
        let replies = platform
            .rate_limit(self.object, calls)
            .await
            .and_then(|replies| {
                if replies.len() == calls.len() {
                    Ok(replies)
                } else {
                    Err(PlatformError(format!(
                        "the rate-limit object gave {} answers to {} calls",
                        replies.len(),
                        calls.len()
                    )))
                }
            });
        match replies {
            Ok(mut replies) => {
                // As many replies as calls (checked above), so it is there.
                let own = (self.own_at < replies.len()).then(|| replies.remove(self.own_at));
                for ((slot, wakeup), reply) in self.followers.drain(..).zip(replies) {
                    *slot.borrow_mut() = Some(Handoff::Reply(Ok(reply)));
                    wakeup.wake();
                }
                own.ok_or_else(|| PlatformError("the rate-limit object gave no answer".to_owned()))
            }
            Err(error) => {
                for (slot, wakeup) in self.followers.drain(..) {
                    *slot.borrow_mut() = Some(Handoff::Reply(Err(error.clone())));
                    wakeup.wake();
                }
                Err(error)
            }
        }
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        // Calls sent with an abandoned one get no answer: say so.
        for (slot, wakeup) in self.followers.drain(..) {
            *slot.borrow_mut() = Some(Handoff::Reply(Err(PlatformError(
                "the coalesced rate-limit call was abandoned".to_owned(),
            ))));
            wakeup.wake();
        }
        let mut objects = self.coalescer.objects.borrow_mut();
        let Some(in_flight) = objects.get_mut(self.object) else {
            return;
        };
        if in_flight.leadership != self.leadership {
            // Taken for abandoned meanwhile: the entry is another's now.
            return;
        }
        let mut waiting = std::mem::take(&mut in_flight.waiting).into_iter();
        // The first waiter still listening leads the rest.
        while let Some(next) = waiting.next() {
            if next.listening() {
                let leadership = self.coalescer.next_leadership();
                in_flight.leadership = leadership;
                in_flight.since = self.clock.now().0;
                let Waiter { call, slot, wakeup } = next;
                *slot.borrow_mut() = Some(Handoff::Lead(call, waiting.collect(), leadership));
                wakeup.wake();
                return;
            }
        }
        objects.remove(self.object);
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;
    use crate::platform::memory::{Gate, MemoryPlatform};
    use crate::ratelimit::object::Check;
    use crate::ratelimit::{Algorithm, Quota};

    fn take_one(limit: u64) -> LimitCall {
        LimitCall {
            checks: vec![Check {
                state_key: "plan".to_owned(),
                quota: Quota {
                    algorithm: Algorithm::FixedWindow,
                    limit,
                    period_ms: 60_000,
                    burst: limit,
                },
                cost: 1,
                lease: None,
            }],
            peek: false,
        }
    }

    type Call<'a> = Pin<Box<dyn Future<Output = Result<LimitReply, PlatformError>> + 'a>>;

    fn poll_once(call: &mut Call<'_>) -> Poll<Result<LimitReply, PlatformError>> {
        let waker = futures::task::noop_waker();
        call.as_mut().poll(&mut Context::from_waker(&waker))
    }

    fn allowed(reply: Result<LimitReply, PlatformError>) -> bool {
        reply.expect("answered").decisions[0].allowed
    }

    #[test]
    fn calls_waiting_behind_one_in_flight_go_together_and_are_decided_in_order() {
        let platform = MemoryPlatform::new();
        let gate = Gate::new();
        platform.hold_limiters(Some(gate.clone()));
        let coalescer = Coalescer::default();
        let mut calls: Vec<Call<'_>> = (0..8)
            .map(|_| Box::pin(coalescer.call(&platform, "object", take_one(3))) as Call<'_>)
            .collect();
        for call in &mut calls {
            assert!(poll_once(call).is_pending());
        }
        assert_eq!(platform.limiter_calls(), 1, "the others wait for it");
        gate.open();
        let verdicts: Vec<bool> = calls
            .into_iter()
            .map(|call| allowed(futures::executor::block_on(call)))
            .collect();
        assert_eq!(
            verdicts,
            [true, true, true, false, false, false, false, false]
        );
        assert_eq!(platform.limiter_calls(), 2, "one call, then one batch");
        assert_eq!(coalescer.in_flight(), 0);
    }

    #[test]
    fn a_lone_call_goes_at_once_and_objects_do_not_wait_for_each_other() {
        let platform = MemoryPlatform::new();
        let coalescer = Coalescer::default();
        for object in ["a", "b", "a"] {
            let reply = futures::executor::block_on(coalescer.call(&platform, object, take_one(5)));
            assert!(allowed(reply));
        }
        assert_eq!(platform.limiter_calls(), 3);
        assert_eq!(coalescer.in_flight(), 0);
    }

    #[test]
    fn a_dropped_leader_hands_the_waiting_calls_on() {
        let platform = MemoryPlatform::new();
        let gate = Gate::new();
        platform.hold_limiters(Some(gate.clone()));
        let coalescer = Coalescer::default();
        let mut leader: Call<'_> = Box::pin(coalescer.call(&platform, "object", take_one(5)));
        let mut second: Call<'_> = Box::pin(coalescer.call(&platform, "object", take_one(5)));
        let mut third: Call<'_> = Box::pin(coalescer.call(&platform, "object", take_one(5)));
        assert!(poll_once(&mut leader).is_pending());
        assert!(poll_once(&mut second).is_pending());
        assert!(poll_once(&mut third).is_pending());
        drop(leader);
        gate.open();
        assert!(allowed(futures::executor::block_on(second)));
        assert!(allowed(futures::executor::block_on(third)));
        assert_eq!(platform.limiter_calls(), 2);
        assert_eq!(coalescer.in_flight(), 0);
    }

    #[test]
    fn a_leader_that_vanished_is_led_past_and_cannot_disturb_its_successor() {
        let platform = MemoryPlatform::new();
        let gate = Gate::new();
        platform.hold_limiters(Some(gate.clone()));
        let coalescer = Coalescer::default();
        // The leader's call is in flight, and it is never run again (as a
        // request the runtime cancelled): not done, not dropped.
        let mut vanished: Call<'_> = Box::pin(coalescer.call(&platform, "object", take_one(5)));
        let mut waiting: Call<'_> = Box::pin(coalescer.call(&platform, "object", take_one(5)));
        assert!(poll_once(&mut vanished).is_pending());
        assert!(poll_once(&mut waiting).is_pending());
        platform.advance(ABANDONED_AFTER);
        let mut early: Call<'_> = Box::pin(coalescer.call(&platform, "object", take_one(5)));
        assert!(poll_once(&mut early).is_pending());
        assert_eq!(platform.limiter_calls(), 1, "not yet taken for abandoned");
        platform.advance(Duration::from_millis(1));
        let mut next: Call<'_> = Box::pin(coalescer.call(&platform, "object", take_one(5)));
        assert!(poll_once(&mut next).is_pending());
        assert_eq!(
            platform.limiter_calls(),
            2,
            "the next request leads at once"
        );
        gate.open();
        assert!(allowed(futures::executor::block_on(next)));
        assert!(
            allowed(futures::executor::block_on(waiting)),
            "answered by the new leader's batch"
        );
        // `early` queued behind the vanished leader before it counted as
        // abandoned; the new leader took it along.
        assert!(allowed(futures::executor::block_on(early)));
        assert_eq!(platform.limiter_calls(), 2);
        assert_eq!(coalescer.in_flight(), 0);
        // Back after all, the old leader gets its own answer and leaves the
        // entries alone.
        let mut again: Call<'_> = Box::pin(coalescer.call(&platform, "object", take_one(5)));
        platform.hold_limiters(Some(Gate::new()));
        assert!(poll_once(&mut again).is_pending());
        assert!(allowed(futures::executor::block_on(vanished)));
        assert_eq!(
            coalescer.in_flight(),
            1,
            "the call now in flight is untouched"
        );
        drop(again);
        assert_eq!(coalescer.in_flight(), 0);
    }

    #[test]
    fn leading_past_a_vanished_leader_keeps_the_order_the_calls_came_in() {
        let platform = MemoryPlatform::new();
        let gate = Gate::new();
        platform.hold_limiters(Some(gate.clone()));
        let coalescer = Coalescer::default();
        let mut vanished: Call<'_> = Box::pin(coalescer.call(&platform, "object", take_one(1)));
        let mut waiting: Call<'_> = Box::pin(coalescer.call(&platform, "object", take_one(1)));
        assert!(poll_once(&mut vanished).is_pending());
        assert!(poll_once(&mut waiting).is_pending());
        platform.advance(ABANDONED_AFTER + Duration::from_millis(1));
        let mut next: Call<'_> = Box::pin(coalescer.call(&platform, "object", take_one(1)));
        assert!(poll_once(&mut next).is_pending());
        gate.open();
        assert!(
            !allowed(futures::executor::block_on(next)),
            "the one unit goes to the call that waited first"
        );
        assert!(allowed(futures::executor::block_on(waiting)));
    }

    #[test]
    fn a_failed_batch_fails_every_call_in_it() {
        let platform = MemoryPlatform::new();
        let gate = Gate::new();
        platform.hold_limiters(Some(gate.clone()));
        platform.fail_limiters(Some("object unreachable"));
        let coalescer = Coalescer::default();
        let mut calls: Vec<Call<'_>> = (0..3)
            .map(|_| Box::pin(coalescer.call(&platform, "object", take_one(5))) as Call<'_>)
            .collect();
        for call in &mut calls {
            assert!(poll_once(call).is_pending());
        }
        gate.open();
        for call in calls {
            let error = futures::executor::block_on(call).expect_err("failed");
            assert_eq!(error.0, "object unreachable");
        }
        assert_eq!(coalescer.in_flight(), 0);
    }
}
