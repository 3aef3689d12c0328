//! Consistent hashing: the ring a `consistent_hash` service maps request
//! keys onto, built once per config.
//!
//! Each target owns points on a 64-bit ring in proportion to its weight;
//! a key belongs to the first point at or after its hash, walking on
//! (wrapping round) past targets that cannot take the request. Adding or
//! removing one target of `n` therefore moves only the keys whose nearest
//! point changes: about `1/n` of them, and only to or from that target.
//!
//! The hash is FNV-1a with a final avalanche (the 64-bit finaliser of
//! MurmurHash3): stable across builds, platforms and releases, which a
//! hash ring must be, and cheap on short keys. It is not keyed, so a
//! client that picks its own key (a header) picks its target; that is the
//! point of hashing on it, not a weakness.

/// Points per target of average weight: enough that targets' shares of
/// the ring stay within a few percent of their weights.
const POINTS_PER_TARGET: u64 = 128;

/// The hash of a request key (or of a point's label).
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    avalanche(hash)
}

fn avalanche(mut hash: u64) -> u64 {
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

/// The ring: points sorted by position, each naming a target by index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ring {
    points: Vec<(u64, u32)>,
}

impl Ring {
    /// A ring over targets given as (stable label, weight), in target
    /// order. A target's points depend only on its label and its share of
    /// the total weight, so the others' points stay put when one is added
    /// or removed.
    pub fn build<'a>(targets: impl IntoIterator<Item = (&'a str, u32)>) -> Ring {
        let targets: Vec<(&str, u32)> = targets.into_iter().collect();
        let count = targets.len() as u64;
        let total: u64 = targets.iter().map(|(_, weight)| u64::from(*weight)).sum();
        let mut points = Vec::new();
        for (index, (label, weight)) in targets.iter().enumerate() {
            let Ok(index) = u32::try_from(index) else {
                break;
            };
            let share = (POINTS_PER_TARGET * count * u64::from(*weight))
                .checked_div(total)
                .unwrap_or(0)
                .max(1);
            let mut name = Vec::with_capacity(label.len() + 8);
            for replica in 0..share {
                name.clear();
                name.extend_from_slice(label.as_bytes());
                name.push(b'#');
                name.extend_from_slice(replica.to_string().as_bytes());
                points.push((hash_bytes(&name), index));
            }
        }
        points.sort_unstable();
        Ring { points }
    }

    /// Target indices in ring order from `key`'s position, wrapping round
    /// once (a target may appear more than once).
    pub fn walk(&self, key: u64) -> impl Iterator<Item = u32> + '_ {
        let start = self.points.partition_point(|(point, _)| *point < key);
        let (before, after) = self.points.split_at(start.min(self.points.len()));
        after.iter().chain(before).map(|(_, target)| *target)
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(ring: &Ring, key: u64) -> u32 {
        ring.walk(key).next().unwrap()
    }

    fn labels(count: usize) -> Vec<String> {
        (0..count)
            .map(|i| format!("http://10.0.0.{i}:8080"))
            .collect()
    }

    #[test]
    fn the_hash_is_stable_across_builds() {
        // Changing it would move every key of every running ring.
        assert_eq!(hash_bytes(b""), 0xefd0_1f60_ba99_2926);
        assert_eq!(hash_bytes(b"tenant-42"), hash_bytes(b"tenant-42"));
        assert_ne!(hash_bytes(b"tenant-42"), hash_bytes(b"tenant-43"));
    }

    #[test]
    fn adding_a_target_moves_about_one_key_in_n_and_only_to_it() {
        let before_labels = labels(10);
        let after_labels = labels(11);
        let before = Ring::build(before_labels.iter().map(|l| (l.as_str(), 1)));
        let after = Ring::build(after_labels.iter().map(|l| (l.as_str(), 1)));
        let keys = 20_000u64;
        let mut moved = 0;
        for key in 0..keys {
            let hash = hash_bytes(&key.to_le_bytes());
            let (old, new) = (owner(&before, hash), owner(&after, hash));
            if old != new {
                moved += 1;
                assert_eq!(new, 10, "a key moved between two old targets");
            }
        }
        let share = moved as f64 / keys as f64;
        assert!((0.06..0.13).contains(&share), "{share} of keys moved");
    }

    #[test]
    fn removing_a_target_moves_only_its_keys() {
        let all = labels(8);
        let before = Ring::build(all.iter().map(|l| (l.as_str(), 1)));
        // Target 3 removed: the others keep their labels (indices shift).
        let kept: Vec<&String> = all.iter().filter(|l| !l.ends_with(".3:8080")).collect();
        let after = Ring::build(kept.iter().map(|l| (l.as_str(), 1)));
        let mut moved = 0;
        for key in 0..10_000u64 {
            let hash = hash_bytes(&key.to_le_bytes());
            let old = &all[owner(&before, hash) as usize];
            let new = kept[owner(&after, hash) as usize];
            if old != new {
                assert!(old.ends_with(".3:8080"), "{old} lost a key it kept");
                moved += 1;
            }
        }
        let share = moved as f64 / 10_000.0;
        assert!((0.08..0.18).contains(&share), "{share} of keys moved");
    }

    #[test]
    fn weights_set_each_targets_share_of_keys() {
        let all = labels(3);
        let ring = Ring::build(all.iter().zip([1, 2, 1]).map(|(l, w)| (l.as_str(), w)));
        let mut counts = [0u32; 3];
        for key in 0..40_000u64 {
            counts[owner(&ring, hash_bytes(&key.to_le_bytes())) as usize] += 1;
        }
        let share = f64::from(counts[1]) / 40_000.0;
        assert!((0.42..0.58).contains(&share), "{counts:?}");
    }

    #[test]
    fn a_walk_visits_every_point_once_from_any_key() {
        let all = labels(3);
        let ring = Ring::build(all.iter().map(|l| (l.as_str(), 1)));
        assert_eq!(ring.walk(u64::MAX).count(), ring.points.len());
        assert_eq!(ring.walk(0).count(), ring.points.len());
        assert!(Ring::build(std::iter::empty()).walk(7).next().is_none());
    }
}
