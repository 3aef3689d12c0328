//! The balancing algorithms, as pure functions over the targets that may
//! take a request (healthy, in the preferred region, not the one just
//! tried) and the state they keep.
//!
//! Each returns the index of the chosen target, or `None` when given no
//! candidates. None of them looks at health or regions (that is decided
//! before, in [`super::balanced`]) or draws randomness itself: draws come
//! in as numbers, so every algorithm can be tested with fixed ones.

use super::hash::Ring;

/// A target that may take the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Its position in the service's target list.
    pub index: u32,
    pub weight: u32,
}

/// nginx's smooth weighted round robin: every candidate gains its weight,
/// the one with most is chosen and loses the candidates' total. Over any
/// stretch each target is chosen in proportion to its weight, and a heavy
/// target's turns are spread out (5:1:1 goes a a b a c a a), never
/// bunched. `current` holds each target's running score, by index.
pub fn smooth_round_robin(candidates: &[Candidate], current: &mut [i64]) -> Option<u32> {
    let mut total: i64 = 0;
    let mut best: Option<(u32, i64)> = None;
    for candidate in candidates {
        let Some(score) = current.get_mut(candidate.index as usize) else {
            continue;
        };
        let weight = i64::from(candidate.weight);
        *score = score.saturating_add(weight);
        total = total.saturating_add(weight);
        if best.is_none_or(|(_, top)| *score > top) {
            best = Some((candidate.index, *score));
        }
    }
    let (chosen, _) = best?;
    if let Some(score) = current.get_mut(chosen as usize) {
        *score = score.saturating_sub(total);
    }
    Some(chosen)
}

/// A candidate drawn at random in proportion to its weight.
pub fn weighted_random(candidates: &[Candidate], draw: u64) -> Option<u32> {
    let total: u64 = candidates.iter().map(|c| u64::from(c.weight)).sum();
    let mut point = draw.checked_rem(total)?;
    for candidate in candidates {
        let weight = u64::from(candidate.weight);
        if point < weight {
            return Some(candidate.index);
        }
        point -= weight;
    }
    candidates.last().map(|c| c.index)
}

/// The power of two choices (as linkerd and Envoy balance by load): two
/// different candidates drawn at random, and the one with fewer requests
/// in flight per unit of weight wins (the first drawn on a tie). It avoids
/// the busiest target without the herding that always choosing the least
/// loaded one causes among isolates that cannot see each other's load.
pub fn power_of_two_choices(
    candidates: &[Candidate],
    in_flight: impl Fn(u32) -> u32,
    draws: (u64, u64),
) -> Option<u32> {
    let count = candidates.len() as u64;
    let first_at = draws.0.checked_rem(count)?;
    let first = *candidates.get(first_at as usize)?;
    let Some(second_at) = draws.1.checked_rem(count - 1) else {
        return Some(first.index);
    };
    let second_at = if second_at >= first_at {
        second_at + 1
    } else {
        second_at
    };
    let second = *candidates.get(second_at as usize)?;
    // load / weight, compared without division: (l1+1)/w1 <= (l2+1)/w2.
    let cost = |c: Candidate, other: Candidate| {
        (u64::from(in_flight(c.index)) + 1) * u64::from(other.weight)
    };
    if cost(first, second) <= cost(second, first) {
        Some(first.index)
    } else {
        Some(second.index)
    }
}

/// The first candidate on the ring at or after `key`. `candidates` are in
/// index order.
pub fn on_ring(ring: &Ring, key: u64, candidates: &[Candidate]) -> Option<u32> {
    ring.walk(key).find(|index| {
        candidates
            .binary_search_by_key(index, |candidate| candidate.index)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates(weights: &[u32]) -> Vec<Candidate> {
        weights
            .iter()
            .enumerate()
            .map(|(index, &weight)| Candidate {
                index: index as u32,
                weight,
            })
            .collect()
    }

    #[test]
    fn smooth_round_robin_spreads_a_heavy_targets_turns() {
        let all = candidates(&[5, 1, 1]);
        let mut current = vec![0; 3];
        let order: Vec<u32> = (0..7)
            .map(|_| smooth_round_robin(&all, &mut current).unwrap())
            .collect();
        assert_eq!(order, [0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(current, [0, 0, 0], "back where it started after a cycle");
    }

    #[test]
    fn smooth_round_robin_shares_turns_exactly_by_weight() {
        let all = candidates(&[1, 2, 3]);
        let mut current = vec![0; 3];
        let mut counts = [0; 3];
        for _ in 0..600 {
            counts[smooth_round_robin(&all, &mut current).unwrap() as usize] += 1;
        }
        assert_eq!(counts, [100, 200, 300]);
    }

    #[test]
    fn smooth_round_robin_skips_targets_that_are_not_candidates() {
        let mut current = vec![0; 3];
        let some = [candidates(&[1, 1, 1])[0], candidates(&[1, 1, 1])[2]];
        let order: Vec<u32> = (0..4)
            .map(|_| smooth_round_robin(&some, &mut current).unwrap())
            .collect();
        assert_eq!(order, [0, 2, 0, 2]);
        assert_eq!(smooth_round_robin(&[], &mut current), None);
    }

    #[test]
    fn weighted_random_maps_draws_onto_weights() {
        let all = candidates(&[1, 3]);
        let picks: Vec<u32> = (0..4)
            .map(|draw| weighted_random(&all, draw).unwrap())
            .collect();
        assert_eq!(picks, [0, 1, 1, 1]);
        assert_eq!(weighted_random(&[], 5), None);
    }

    #[test]
    fn two_choices_never_pick_the_busiest_of_several() {
        let all = candidates(&[1, 1, 1, 1]);
        let loads = [9, 0, 1, 2];
        for a in 0..4 {
            for b in 0..3 {
                let chosen = power_of_two_choices(&all, |i| loads[i as usize], (a, b)).unwrap();
                assert_ne!(chosen, 0);
            }
        }
    }

    #[test]
    fn two_choices_weigh_load_by_weight() {
        // Target 1 has twice the weight: 3 in flight there costs (3+1)/2 = 2,
        // less than (2+1)/1 = 3 on target 0.
        let all = candidates(&[1, 2]);
        let loads = [2, 3];
        assert_eq!(
            power_of_two_choices(&all, |i| loads[i as usize], (0, 0)),
            Some(1)
        );
        assert_eq!(power_of_two_choices(&all[..1], |_| 5, (7, 7)), Some(0));
        assert_eq!(power_of_two_choices(&[], |_| 0, (0, 0)), None);
    }

    #[test]
    fn the_ring_skips_targets_that_are_not_candidates() {
        let labels = ["a", "b", "c"];
        let ring = Ring::build(labels.iter().map(|l| (*l, 1)));
        let all = candidates(&[1, 1, 1]);
        for key in 0..200u64 {
            let key = super::super::hash::hash_bytes(&key.to_le_bytes());
            let owner = on_ring(&ring, key, &all).unwrap();
            let others: Vec<Candidate> = all.iter().copied().filter(|c| c.index != owner).collect();
            let next = on_ring(&ring, key, &others).unwrap();
            assert_ne!(next, owner);
            assert_eq!(
                Some(next),
                ring.walk(key).find(|i| *i != owner),
                "the next target clockwise"
            );
        }
        assert_eq!(on_ring(&ring, 1, &[]), None);
    }
}
