//! Seeded randomness. Every random choice of a run comes from a [`SimRng`] derived from the run's
//! seed, so one seed gives one run on any machine: ChaCha8 is portable and specified, unlike the
//! standard library's hashers or `thread_rng`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// A seeded random stream with the few helpers the models need.
#[derive(Debug, Clone)]
pub struct SimRng {
    inner: ChaCha8Rng,
}

impl SimRng {
    /// The stream for `seed`, on `stream` (independent streams of one seed, so that the schedule
    /// does not shift when a model draws one more number).
    pub fn new(seed: u64, stream: u64) -> SimRng {
        let mut inner = ChaCha8Rng::seed_from_u64(seed);
        inner.set_stream(stream);
        SimRng { inner }
    }

    /// True with probability `p` (0 never draws true, 1 always).
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (p >= 1.0 || self.inner.random_bool(p))
    }

    /// A whole number in `lo..=hi` (`lo` if the range is empty).
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo { lo } else { self.inner.random_range(lo..=hi) }
    }

    /// A duration of `lo..=hi` milliseconds.
    pub fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.between(lo, hi))
    }

    /// An index below `len` (0 when `len` is 0: callers check emptiness first).
    pub fn index(&mut self, len: usize) -> usize {
        if len <= 1 { 0 } else { self.inner.random_range(0..len) }
    }

    /// One element of a slice, or `None` for an empty one.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() { None } else { items.get(self.index(items.len())) }
    }

    /// An index chosen with the given weights (the last one if all weights are 0).
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        if total == 0 {
            return weights.len().saturating_sub(1);
        }
        let mut x = self.between(0, total - 1);
        for (i, w) in weights.iter().enumerate() {
            let w = u64::from(*w);
            if x < w {
                return i;
            }
            x -= w;
        }
        weights.len().saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_streams_differ() {
        let draw = |seed, stream| {
            let mut r = SimRng::new(seed, stream);
            (0..16).map(|_| r.between(0, 1_000_000)).collect::<Vec<_>>()
        };
        assert_eq!(draw(7, 0), draw(7, 0));
        assert_ne!(draw(7, 0), draw(7, 1));
        assert_ne!(draw(7, 0), draw(8, 0));
    }

    #[test]
    fn helpers_stay_in_bounds() {
        let mut r = SimRng::new(1, 0);
        for _ in 0..1000 {
            assert!((3..=9).contains(&r.between(3, 9)));
            assert!(r.index(5) < 5);
            assert_eq!(r.weighted(&[0, 5, 0]), 1);
        }
        assert_eq!(r.between(4, 2), 4);
        assert!(!r.chance(0.0));
        assert!(r.chance(1.0));
        assert_eq!(r.pick::<u8>(&[]), None);
    }
}
