//! Where awaited promises leave their outcomes: one slot per await, with
//! the waker of the task waiting on it. The Workers adapter keeps one
//! table per instance and settles slots from a single callback, so that
//! awaiting a promise allocates nothing on the wasm side
//! (`platform::workers::settle`). Platform-neutral, tested natively.
//!
//! A slot is reused only once both sides are done with it: its outcome
//! was taken, or its future was dropped and its promise has settled.

use std::task::{Poll, Waker};

enum Slot<T> {
    Free,
    Waiting(Option<Waker>),
    Settled(T),
    /// Its future was dropped first: freed when the promise settles.
    Abandoned,
}

/// The table of slots.
pub struct Slots<T> {
    entries: Vec<Slot<T>>,
    free: Vec<u32>,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            entries: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Slots<T> {
    /// A slot for a new await.
    pub fn take(&mut self) -> u32 {
        if let Some(slot) = self.free.pop()
            && let Some(entry) = self.entries.get_mut(slot as usize)
        {
            *entry = Slot::Waiting(None);
            return slot;
        }
        self.entries.push(Slot::Waiting(None));
        u32::try_from(self.entries.len() - 1).unwrap_or(u32::MAX)
    }

    /// The promise of `slot` settled with `outcome`: the waker to wake, if
    /// a task is waiting. An abandoned slot is freed; anything else (a
    /// slot settled twice, or never taken) is ignored.
    pub fn settle(&mut self, slot: u32, outcome: T) -> Option<Waker> {
        let entry = self.entries.get_mut(slot as usize)?;
        match std::mem::replace(entry, Slot::Free) {
            Slot::Waiting(waker) => {
                *entry = Slot::Settled(outcome);
                waker
            }
            Slot::Abandoned => {
                self.free.push(slot);
                None
            }
            other => {
                *entry = other;
                None
            }
        }
    }

    /// The outcome of `slot` if its promise has settled (the slot is then
    /// free), else keep `waker` to wake. `Ready(None)`: no such await.
    pub fn poll(&mut self, slot: u32, waker: &Waker) -> Poll<Option<T>> {
        let Some(entry) = self.entries.get_mut(slot as usize) else {
            return Poll::Ready(None);
        };
        match entry {
            Slot::Waiting(kept) => {
                if !kept.as_ref().is_some_and(|kept| kept.will_wake(waker)) {
                    *kept = Some(waker.clone());
                }
                Poll::Pending
            }
            Slot::Settled(_) => match std::mem::replace(entry, Slot::Free) {
                Slot::Settled(outcome) => {
                    self.free.push(slot);
                    Poll::Ready(Some(outcome))
                }
                _ => Poll::Ready(None),
            },
            Slot::Free | Slot::Abandoned => Poll::Ready(None),
        }
    }

    /// The future of `slot` was dropped before taking its outcome.
    pub fn abandon(&mut self, slot: u32) {
        let Some(entry) = self.entries.get_mut(slot as usize) else {
            return;
        };
        match entry {
            Slot::Waiting(_) => *entry = Slot::Abandoned,
            Slot::Settled(_) => {
                *entry = Slot::Free;
                self.free.push(slot);
            }
            Slot::Free | Slot::Abandoned => {}
        }
    }

    /// How many slots are taken (waiting, settled or abandoned).
    #[cfg(test)]
    fn in_use(&self) -> usize {
        self.entries
            .iter()
            .filter(|entry| !matches!(entry, Slot::Free))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count::default());
        (Arc::clone(&count), Waker::from(count))
    }

    #[test]
    fn an_outcome_before_the_first_poll_is_there_when_polled() {
        let mut slots = Slots::default();
        let slot = slots.take();
        assert!(slots.settle(slot, "value").is_none(), "nobody to wake yet");
        let (_, waker) = waker();
        assert_eq!(slots.poll(slot, &waker), Poll::Ready(Some("value")));
        assert_eq!(slots.in_use(), 0);
    }

    #[test]
    fn a_waiting_task_is_woken_by_the_outcome() {
        let mut slots = Slots::default();
        let slot = slots.take();
        let (count, waker) = waker();
        assert_eq!(slots.poll(slot, &waker), Poll::Pending);
        slots
            .settle(slot, 7)
            .expect("the waiting task's waker")
            .wake();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(slots.poll(slot, &waker), Poll::Ready(Some(7)));
    }

    #[test]
    fn an_abandoned_slot_is_reused_only_after_its_promise_settles() {
        let mut slots = Slots::default();
        let abandoned = slots.take();
        slots.abandon(abandoned);
        let other = slots.take();
        assert_ne!(other, abandoned, "still owed a settlement");
        assert!(slots.settle(abandoned, 1).is_none());
        assert_eq!(slots.take(), abandoned, "free once settled");
        // The late settlement of the first use never reaches the second.
        let (_, waker) = waker();
        assert_eq!(slots.poll(abandoned, &waker), Poll::Pending);
    }

    #[test]
    fn a_slot_dropped_after_its_outcome_is_free_at_once() {
        let mut slots = Slots::default();
        let slot = slots.take();
        slots.settle(slot, 1);
        slots.abandon(slot);
        assert_eq!(slots.in_use(), 0);
        assert_eq!(slots.take(), slot);
    }

    #[test]
    fn a_second_settlement_and_unknown_slots_change_nothing() {
        let mut slots = Slots::default();
        let slot = slots.take();
        slots.settle(slot, 1);
        assert!(slots.settle(slot, 2).is_none());
        assert!(slots.settle(99, 3).is_none());
        let (_, waker) = waker();
        assert_eq!(slots.poll(99, &waker), Poll::Ready(None));
        assert_eq!(slots.poll(slot, &waker), Poll::Ready(Some(1)));
        // Taken: polling again finds nothing, and frees nothing twice.
        assert_eq!(slots.poll(slot, &waker), Poll::Ready(None));
        assert_eq!(slots.take(), slot);
        assert_ne!(slots.take(), slot);
    }
}
