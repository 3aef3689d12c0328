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
    entries: HashMap<K, (V, UnixMillis)>,
    order: VecDeque<K>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        TtlCache {
            capacity: capacity.max(1),
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The value under `key` if it has not expired at `now`.
    pub fn get(&mut self, key: &K, now: UnixMillis) -> Option<V> {
        match self.entries.get(key) {
            Some((value, expires)) if now < *expires => Some(value.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Remember `value` until `expires`.
    pub fn insert(&mut self, key: K, value: V, expires: UnixMillis) {
        if self.entries.insert(key.clone(), (value, expires)).is_none() {
            self.order.push_back(key);
        }
        while self.entries.len() > self.capacity {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.entries.remove(&oldest);
                }
                None => break,
            }
        }
        // Keys removed by expiry linger in `order`; drop them when it grows.
        if self.order.len() > self.capacity * 2 {
            let entries = &self.entries;
            self.order.retain(|k| entries.contains_key(k));
        }
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
    fn reinserting_updates_in_place() {
        let mut cache = TtlCache::new(2);
        cache.insert(1, "a", UnixMillis(10));
        cache.insert(1, "b", UnixMillis(20));
        assert_eq!(cache.get(&1, UnixMillis(15)), Some("b"));
        assert_eq!(cache.len(), 1);
    }
}
