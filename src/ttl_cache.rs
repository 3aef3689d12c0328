//! A small per-isolate cache with a time to live per entry and a bound on
//! its size: API-key records, verified tokens, introspection results,
//! rate-limit refusals.
//!
//! Entries expire by the platform clock; when full, the oldest insertion
//! goes first. [`LookupCache`] keeps what a lookup found apart from what it
//! did not find, so a flood of unknown keys cannot push out known ones. It never holds plaintext credentials: callers key it on ids
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

    /// Drop `key`'s entry (its place in the order is skipped from now on).
    pub fn remove(&mut self, key: &K) {
        self.entries.remove(key);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The results of lookups that may find nothing (API-key records,
/// introspection results): what was found in one cache, what was not in
/// another of its own size. A client can make up unknown keys without
/// end; each of them costs a lookup, but none of them can evict an entry
/// that a real caller needs.
#[derive(Debug)]
pub struct LookupCache<K, V> {
    found: TtlCache<K, V>,
    not_found: TtlCache<K, ()>,
}

impl<K: Eq + Hash + Clone, V: Clone> LookupCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        LookupCache {
            found: TtlCache::new(capacity),
            not_found: TtlCache::new(capacity),
        }
    }

    /// `Some(Some(value))` for a value found, `Some(None)` for a lookup
    /// known to find nothing, `None` when there is nothing remembered.
    pub fn get(&mut self, key: &K, now: UnixMillis) -> Option<Option<V>> {
        if let Some(value) = self.found.get(key, now) {
            return Some(Some(value));
        }
        self.not_found.get(key, now).map(|()| None)
    }

    /// Remember what a lookup of `key` found (or that it found nothing)
    /// until `expires`.
    pub fn insert(&mut self, key: K, value: Option<V>, expires: UnixMillis) {
        match value {
            Some(value) => self.found.insert(key, value, expires),
            None => self.not_found.insert(key, (), expires),
        }
    }

    pub fn clear(&mut self) {
        self.found.clear();
        self.not_found.clear();
    }

    /// Entries found and entries not found.
    pub fn len(&self) -> (usize, usize) {
        (self.found.len(), self.not_found.len())
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

    #[test]
    fn a_flood_of_unknown_keys_does_not_evict_known_ones() {
        let mut cache = LookupCache::new(2);
        cache.insert("alice", Some(1), UnixMillis(1_000));
        cache.insert("bob", Some(2), UnixMillis(1_000));
        for unknown in 0..100 {
            cache.insert(
                format!("nobody-{unknown}").leak() as &str,
                None,
                UnixMillis(1_000),
            );
        }
        assert_eq!(cache.get(&"alice", UnixMillis(0)), Some(Some(1)));
        assert_eq!(cache.get(&"bob", UnixMillis(0)), Some(Some(2)));
        assert_eq!(cache.get(&"nobody-99", UnixMillis(0)), Some(None));
        assert_eq!(cache.get(&"nobody-0", UnixMillis(0)), None);
        assert_eq!(cache.len(), (2, 2));
    }
}
