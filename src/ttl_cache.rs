//! A small per-isolate cache with a time to live per entry and a bound on
//! its size: API-key records, verified tokens, introspection results,
//! rate-limit refusals.
//!
//! Entries expire by the platform clock; when full, the oldest insertion
//! goes first. It never holds plaintext credentials: callers key it on ids
//! or hashes.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use crate::platform::UnixMillis;

#[derive(Debug)]
pub struct TtlCache<K, V> {
    capacity: usize,
    entries: HashMap<K, Entry<V>>,
    /// Insertions, oldest first, each with the number it was given. An
    /// item whose entry is gone, or now holds a later insertion of the same
    /// key, is stale: eviction skips it and compaction drops it, so a key
    /// that expires and comes back is aged from its new insertion only.
    order: VecDeque<(K, u64)>,
    /// The number the next insertion gets.
    next_insertion: u64,
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    expires: UnixMillis,
    insertion: u64,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        TtlCache {
            capacity: capacity.max(1),
            entries: HashMap::new(),
            order: VecDeque::new(),
            next_insertion: 0,
        }
    }

    /// The value under `key` if it has not expired at `now`.
    pub fn get(&mut self, key: &K, now: UnixMillis) -> Option<V> {
        match self.entries.get(key) {
            Some(entry) if now < entry.expires => Some(entry.value.clone()),
            Some(_) => {
                // Its place in `order` goes stale; eviction and compaction
                // know it by its insertion number.
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Remember `value` until `expires`. A key still present keeps its
    /// place in the eviction order; one that is absent (never seen, evicted
    /// or expired) goes to the back.
    pub fn insert(&mut self, key: K, value: V, expires: UnixMillis) {
        if let Some(entry) = self.entries.get_mut(&key) {
            entry.value = value;
            entry.expires = expires;
            return;
        }
        let insertion = self.next_insertion;
        self.next_insertion = self.next_insertion.wrapping_add(1);
        self.entries.insert(
            key.clone(),
            Entry {
                value,
                expires,
                insertion,
            },
        );
        self.order.push_back((key, insertion));
        while self.entries.len() > self.capacity {
            let Some((oldest, insertion)) = self.order.pop_front() else {
                break;
            };
            if self.is_current(&oldest, insertion) {
                self.entries.remove(&oldest);
            }
        }
        // Stale items (keys that expired) linger in `order`; drop them
        // when it grows, so it stays within twice the capacity.
        if self.order.len() > self.capacity.saturating_mul(2) {
            let entries = &self.entries;
            self.order.retain(|(key, insertion)| {
                entries
                    .get(key)
                    .is_some_and(|entry| entry.insertion == *insertion)
            });
        }
    }

    /// Whether `insertion` is the one `key`'s entry holds now.
    fn is_current(&self, key: &K, insertion: u64) -> bool {
        self.entries
            .get(key)
            .is_some_and(|entry| entry.insertion == insertion)
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_at_their_time() {
        let mut cache = TtlCache::new(10);
        cache.insert("a", 1, UnixMillis(100));
        assert_eq!(cache.get(&"a", UnixMillis(99)), Some(1));
        assert_eq!(cache.get(&"a", UnixMillis(100)), None);
        assert!(cache.is_empty());
    }

    #[test]
    fn the_oldest_insertion_goes_first_when_full() {
        let mut cache = TtlCache::new(2);
        cache.insert(1, "one", UnixMillis(1_000));
        cache.insert(2, "two", UnixMillis(1_000));
        cache.insert(3, "three", UnixMillis(1_000));
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&1, UnixMillis(0)), None);
        assert_eq!(cache.get(&3, UnixMillis(0)), Some("three"));
    }

    #[test]
    fn a_key_expired_by_get_and_inserted_again_is_evicted_by_its_new_age() {
        let mut cache = TtlCache::new(2);
        cache.insert("a", 1, UnixMillis(10));
        cache.insert("b", 2, UnixMillis(100));
        assert_eq!(cache.get(&"a", UnixMillis(10)), None, "a expired");
        cache.insert("c", 3, UnixMillis(100));
        cache.insert("a", 4, UnixMillis(100));
        // "b" is now the oldest live insertion; "a" is the newest.
        assert_eq!(cache.get(&"a", UnixMillis(20)), Some(4));
        assert_eq!(cache.get(&"c", UnixMillis(20)), Some(3));
        assert_eq!(cache.get(&"b", UnixMillis(20)), None);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn the_eviction_order_stays_bounded_when_a_key_keeps_expiring() {
        let mut cache = TtlCache::new(2);
        for round in 0..1_000 {
            cache.insert("a", round, UnixMillis(round + 1));
            assert!(
                cache.order.len() <= 2 * 2 + 1,
                "round {round}: {} keys in the order",
                cache.order.len()
            );
            assert_eq!(cache.get(&"a", UnixMillis(round + 1)), None);
        }
    }

    #[test]
    fn reinserting_updates_in_place() {
        let mut cache = TtlCache::new(2);
        cache.insert(1, "a", UnixMillis(10));
        cache.insert(1, "b", UnixMillis(20));
        assert_eq!(cache.get(&1, UnixMillis(15)), Some("b"));
        assert_eq!(cache.len(), 1);
    }
}
