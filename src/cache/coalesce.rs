//! Miss coalescing: while one request for a key is at the origin, others
//! for the same key in the same isolate wait for it instead of going too,
//! and share its response if it is one the cache may store. Otherwise
//! (the origin failed, or the response is private to its request) each
//! waiter goes to the origin itself.
//!
//! What is shared is the stored copy (head and buffered body), never a
//! stream: on Workers a body belongs to the request that fetched it. The
//! waiters are woken through [`Wakeups`], each in its own request
//! context, and none waits longer than its limit.
//!
//! The leader holds a [`Lead`]; dropping it without sharing (an error, a
//! cancelled request) releases the waiters, so none waits longer than the
//! leader's own request.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use crate::platform::{Waiting, Wakeup, Wakeups};

/// A shared response, type-erased so the isolate's state does not depend
/// on the platform's body type.
pub type Shared = Box<dyn Any>;

/// Where a waiter finds what it was given (`None`: go yourself).
type Slot = Rc<RefCell<Option<Shared>>>;

type Waiters = Vec<(Slot, Wakeup)>;

/// The keys of one isolate with a request at the origin.
#[derive(Default)]
pub struct Coalescer {
    in_flight: RefCell<HashMap<String, Waiters>>,
}

/// This request's part.
pub enum Turn {
    /// Go to the origin; share the response through the lead.
    Lead(Lead),
    /// Wait for the leader's response.
    Follow(Follow),
}

/// A request waiting for the leader.
pub struct Follow {
    slot: Slot,
    woken: Waiting,
}

impl Follow {
    /// The leader's shared response, or `None` (nothing shared, or not
    /// within the wait's limit): go to the origin yourself.
    pub async fn shared(self) -> Option<Shared> {
        self.woken.await;
        self.slot.borrow_mut().take()
    }
}

/// The right, and duty, to answer a key's waiters.
pub struct Lead {
    coalescer: Rc<Coalescer>,
    key: String,
}

impl Coalescer {
    /// Lead for `key`, or wait behind the request that does, for at most
    /// `limit`.
    pub fn join(self: &Rc<Self>, key: &str, platform: &impl Wakeups, limit: Duration) -> Turn {
        let mut in_flight = self.in_flight.borrow_mut();
        match in_flight.get_mut(key) {
            Some(waiters) => {
                let (wakeup, woken) = platform.wakeup(limit);
                let slot = Slot::default();
                waiters.push((Rc::clone(&slot), wakeup));
                Turn::Follow(Follow { slot, woken })
            }
            None => {
                in_flight.insert(key.to_owned(), Vec::new());
                Turn::Lead(Lead {
                    coalescer: Rc::clone(self),
                    key: key.to_owned(),
                })
            }
        }
    }

    /// How many keys have a request at the origin.
    pub fn in_flight(&self) -> usize {
        self.in_flight.borrow().len()
    }
}

impl Lead {
    /// How many requests wait for this one.
    pub fn waiting(&self) -> usize {
        self.coalescer
            .in_flight
            .borrow()
            .get(&self.key)
            .map_or(0, Vec::len)
    }

    /// Answer every waiter with a response made by `share` (one call per
    /// waiter), and end the lead.
    pub fn share(self, mut share: impl FnMut() -> Option<Shared>) {
        for (slot, wakeup) in self.take() {
            // A waiter that gave up holds its slot no more: nothing to do.
            if Rc::strong_count(&slot) > 1 {
                *slot.borrow_mut() = share();
                wakeup.wake();
            }
        }
    }

    fn take(&self) -> Waiters {
        self.coalescer
            .in_flight
            .borrow_mut()
            .remove(&self.key)
            .unwrap_or_default()
    }
}

impl Drop for Lead {
    /// Unshared: every waiter goes to the origin itself.
    fn drop(&mut self) {
        for (_, wakeup) in self.take() {
            wakeup.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::memory::MemoryPlatform;
    use futures::FutureExt;

    const LIMIT: Duration = Duration::from_secs(5);

    #[test]
    fn the_first_leads_and_the_others_get_what_it_shares() {
        let platform = MemoryPlatform::new();
        let coalescer = Rc::new(Coalescer::default());
        let Turn::Lead(lead) = coalescer.join("k", &platform, LIMIT) else {
            panic!("the first request leads");
        };
        let followers: Vec<_> = (0..3)
            .map(|_| match coalescer.join("k", &platform, LIMIT) {
                Turn::Follow(follow) => follow,
                Turn::Lead(_) => panic!("only one leads"),
            })
            .collect();
        assert!(matches!(
            coalescer.join("other", &platform, LIMIT),
            Turn::Lead(_)
        ));
        assert_eq!(lead.waiting(), 3);
        lead.share(|| Some(Box::new(7u32) as Shared));
        for follower in followers {
            let shared = follower.shared().now_or_never().unwrap().unwrap();
            assert_eq!(shared.downcast_ref::<u32>(), Some(&7));
        }
        assert_eq!(coalescer.in_flight(), 0);
    }

    #[test]
    fn a_lead_dropped_unshared_sends_the_waiters_to_the_origin() {
        let platform = MemoryPlatform::new();
        let coalescer = Rc::new(Coalescer::default());
        let lead = coalescer.join("k", &platform, LIMIT);
        let Turn::Follow(follower) = coalescer.join("k", &platform, LIMIT) else {
            panic!("second request follows");
        };
        drop(lead);
        assert!(follower.shared().now_or_never().unwrap().is_none());
        assert!(
            matches!(coalescer.join("k", &platform, LIMIT), Turn::Lead(_)),
            "the key is free again"
        );
    }
}
