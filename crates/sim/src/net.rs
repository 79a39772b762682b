//! A simulated network between nodes, for the cluster runs ([`crate::cluster`]): each
//! message is dropped with some probability or delivered after a delay drawn from a range, and
//! partitions (sides that cannot reach each other) and one-way cuts block it.

use crate::rng::SimRng;
use std::collections::BTreeSet;
use std::time::Duration;

/// A node's name.
pub type NodeName = String;

/// How messages travel.
#[derive(Debug, Clone)]
pub struct Net {
    rng: SimRng,
    /// Probability that a message is lost.
    pub drop: f64,
    /// Shortest delay, ms.
    pub delay_min_ms: u64,
    /// Longest delay, ms.
    pub delay_max_ms: u64,
    /// Each set is one side of a partition: nodes on different sides cannot talk. A node in no
    /// set talks to every node that is in no set either.
    sides: Vec<BTreeSet<NodeName>>,
    /// One-way cuts: (from, to) pairs that are blocked.
    cuts: BTreeSet<(NodeName, NodeName)>,
}

impl Net {
    /// A network that loses nothing and delays by `delay_min_ms..=delay_max_ms`.
    pub fn new(rng: SimRng, delay_min_ms: u64, delay_max_ms: u64) -> Net {
        Net { rng, drop: 0.0, delay_min_ms, delay_max_ms, sides: Vec::new(), cuts: BTreeSet::new() }
    }

    /// Splits the nodes into sides that cannot reach each other (replaces any earlier partition).
    pub fn partition(&mut self, sides: Vec<BTreeSet<NodeName>>) {
        self.sides = sides;
    }

    /// Blocks messages from `from` to `to` (not the other way).
    pub fn cut(&mut self, from: &str, to: &str) {
        self.cuts.insert((from.to_string(), to.to_string()));
    }

    /// Ends every partition and cut.
    pub fn heal(&mut self) {
        self.sides.clear();
        self.cuts.clear();
    }

    /// Whether `from` can reach `to` at all now.
    pub fn connected(&self, from: &str, to: &str) -> bool {
        if from == to {
            return true;
        }
        if self.cuts.contains(&(from.to_string(), to.to_string())) {
            return false;
        }
        let side = |n: &str| self.sides.iter().position(|s| s.contains(n));
        side(from) == side(to)
    }

    /// When a message sent at `now` arrives, or `None` if it is lost or blocked.
    pub fn deliver(&mut self, from: &str, to: &str, now: Duration) -> Option<Duration> {
        if !self.connected(from, to) {
            return None;
        }
        if from != to && self.rng.chance(self.drop) {
            return None;
        }
        Some(now + self.rng.ms(self.delay_min_ms, self.delay_max_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<NodeName> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn delays_stay_in_range_and_are_seeded() {
        let run = || {
            let mut net = Net::new(SimRng::new(5, 9), 2, 40);
            (0..50).map(|i| net.deliver("a", "b", Duration::from_millis(i))).collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        for (i, t) in a.iter().enumerate() {
            let t = t.unwrap();
            let sent = Duration::from_millis(i as u64);
            assert!(t >= sent + Duration::from_millis(2) && t <= sent + Duration::from_millis(40));
        }
    }

    #[test]
    fn drops_some_not_all() {
        let mut net = Net::new(SimRng::new(1, 0), 1, 1);
        net.drop = 0.3;
        let lost = (0..1000).filter(|_| net.deliver("a", "b", Duration::ZERO).is_none()).count();
        assert!((200..400).contains(&lost), "{lost}");
        // A node always reaches itself.
        assert!(net.deliver("a", "a", Duration::ZERO).is_some());
    }

    #[test]
    fn partitions_and_one_way_cuts() {
        let mut net = Net::new(SimRng::new(2, 0), 1, 5);
        net.partition(vec![set(&["a"]), set(&["b", "c"])]);
        assert!(net.deliver("a", "b", Duration::ZERO).is_none());
        assert!(net.deliver("b", "a", Duration::ZERO).is_none());
        assert!(net.deliver("b", "c", Duration::ZERO).is_some());
        // A node named in no side is with the other unnamed ones.
        assert!(!net.connected("d", "a") && net.connected("d", "e"));
        net.heal();
        net.cut("a", "b");
        assert!(net.deliver("a", "b", Duration::ZERO).is_none());
        assert!(net.deliver("b", "a", Duration::ZERO).is_some());
        net.heal();
        assert!(net.connected("a", "b"));
    }
}
