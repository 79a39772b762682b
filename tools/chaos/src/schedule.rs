//! The seeded schedule: which fault starts when and for how long, and what the clients do. It is
//! a pure function of the seed and the run's shape (nodes, groups, duration, and what this
//! machine can do), so the same seed gives the same schedule; targets such as "the leader" or
//! "the owner of g1" are named here and resolved when the fault starts.

use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// What this machine lets the runner do; part of the schedule's input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caps {
    /// Network namespaces (root): partitions, one-way cuts, flapping links.
    pub netns: bool,
    /// A tmpfs per data directory (root): a full disk.
    pub disk: bool,
    /// Time namespaces (root and `unshare`): a node restarted with its monotonic clock moved.
    pub clock: bool,
}

/// Which node a fault hits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Node `n<i+1>`.
    Node(usize),
    /// Whichever node leads (hosts the coordinator) when the fault starts.
    Leader,
    /// Whichever node owns this group when the fault starts.
    OwnerOf(String),
}

/// One fault; it lasts for its episode's duration and is then healed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// SIGKILL of the node's daemon alone (its hosts stop what they run); restarted at the end.
    Kill { target: Target },
    /// SIGKILL of every process of the node at once, as a power cut; restarted at the end.
    Crash { target: Target },
    /// SIGTERM: a planned stop that moves the groups away first; restarted at the end.
    Stop { target: Target },
    /// SIGSTOP of the daemon; SIGCONT at the end.
    Pause { target: Target },
    /// The node's link to the bridge down: it reaches no one and no one reaches it.
    Isolate { target: Target },
    /// Nothing passes between two nodes, either way; each still reaches the others.
    Cut { a: usize, b: usize },
    /// Packets from `from` to `to` are dropped; packets from `to` still arrive.
    OneWay { from: usize, to: usize },
    /// The node's link goes down and up again at these offsets from the start (ms).
    Flaky { target: Target, flips: Vec<u64> },
    /// The node's data directory (a small tmpfs of its own) filled to the last byte.
    DiskFull { target: Target },
    /// SIGKILL of every process, then a restart in a new time namespace whose monotonic and
    /// boot clocks are `offset_s` ahead of the machine's.
    ClockJump { target: Target, offset_s: u64 },
}

impl Fault {
    /// The name the summary counts it under.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Kill { target: Target::Leader } | Fault::Crash { target: Target::Leader } => "coordinator_kill",
            Fault::Kill { .. } => "kill",
            Fault::Crash { .. } => "crash",
            Fault::Stop { .. } => "stop",
            Fault::Pause { .. } => "pause",
            Fault::Isolate { .. } => "isolate",
            Fault::Cut { .. } => "cut",
            Fault::OneWay { .. } => "one_way",
            Fault::Flaky { .. } => "flaky",
            Fault::DiskFull { .. } => "disk_full",
            Fault::ClockJump { .. } => "clock_jump",
        }
    }

    /// The node it hits, for faults on one node.
    pub fn target(&self) -> Option<&Target> {
        match self {
            Fault::Kill { target }
            | Fault::Crash { target }
            | Fault::Stop { target }
            | Fault::Pause { target }
            | Fault::Isolate { target }
            | Fault::Flaky { target, .. }
            | Fault::DiskFull { target }
            | Fault::ClockJump { target, .. } => Some(target),
            Fault::Cut { .. } | Fault::OneWay { .. } => None,
        }
    }
}

/// A fault, from `at_ms` for `duration_ms` after the start of the faulty period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Episode {
    /// Its number in the schedule.
    pub id: usize,
    /// When it starts, in ms from the start.
    pub at_ms: u64,
    /// How long it lasts before it is healed.
    pub duration_ms: u64,
    /// What it is.
    pub fault: Fault,
}

/// What a client asks of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// `group move G [--node N] --wait`.
    Move { group: String, to: Option<usize> },
    /// `group online G --wait`.
    Online { group: String },
    /// `group offline G --wait`.
    Offline { group: String },
    /// `node pause N --drain`.
    Drain { node: usize },
    /// `node resume N`.
    Resume { node: usize },
    /// `resource set w-G KEY=VALUE`: VALUE is written once in the whole run.
    Write { group: String, key: String, value: String },
}

/// An operation at `at_ms`, sent to node `via`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planned {
    /// When, in ms from the start (later if the client is still busy with the one before).
    pub at_ms: u64,
    /// The node whose API receives it.
    pub via: usize,
    /// What.
    pub op: Op,
}

/// The whole schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// The seed it was made from.
    pub seed: u64,
    /// How many nodes.
    pub nodes: usize,
    /// The witness groups, `g1`...
    pub groups: Vec<String>,
    /// How long faults and clients run, in ms.
    pub duration_ms: u64,
    /// What the machine allowed.
    pub caps: Caps,
    /// Fault kinds left out on request.
    pub skipped: Vec<String>,
    /// The faults, by start time.
    pub episodes: Vec<Episode>,
    /// Operations of the operations client, by time.
    pub ops: Vec<Planned>,
    /// Configuration writes of the writing client, by time.
    pub writes: Vec<Planned>,
}

/// The fault kinds, as [`Fault::kind`] names them (and `--skip` takes them).
pub const KINDS: [&str; 11] = [
    "kill",
    "crash",
    "stop",
    "pause",
    "coordinator_kill",
    "isolate",
    "cut",
    "one_way",
    "flaky",
    "disk_full",
    "clock_jump",
];

/// The configuration keys the writer cycles through, on each group's witness resource.
pub const KEYS: [&str; 4] = ["Chaos0", "Chaos1", "Chaos2", "Chaos3"];

/// The name of node `i`.
pub fn node_name(i: usize) -> String {
    format!("n{}", i + 1)
}

/// The witness resource of group `g`.
pub fn witness_resource(group: &str) -> String {
    format!("w-{group}")
}

/// Makes the schedule for `seed`, without the fault kinds in `skip`.
pub fn plan(seed: u64, nodes: usize, groups: usize, duration_ms: u64, caps: Caps, skip: &[String]) -> Schedule {
    let groups: Vec<String> = (1..=groups).map(|g| format!("g{g}")).collect();
    // Separate streams, so that the faults of a seed do not change when the clients do.
    let episodes = faults(&mut Rng::new(seed ^ 0x6661_756c_7473), nodes, &groups, duration_ms, caps, skip);
    let ops = operations(&mut Rng::new(seed ^ 0x6f70_6572_6174_6f72), nodes, &groups, duration_ms);
    let writes = writes(&mut Rng::new(seed ^ 0x7772_6974_6573), seed, nodes, &groups, duration_ms);
    Schedule { seed, nodes, groups, duration_ms, caps, skipped: skip.to_vec(), episodes, ops, writes }
}

fn target(rng: &mut Rng, nodes: usize, groups: &[String]) -> Target {
    match rng.weighted(&[40, 20, 40]) {
        0 => Target::OwnerOf(groups[rng.index(groups.len())].clone()),
        1 => Target::Leader,
        _ => Target::Node(rng.index(nodes)),
    }
}

fn two(rng: &mut Rng, nodes: usize) -> (usize, usize) {
    let a = rng.index(nodes);
    let b = (a + 1 + rng.index(nodes - 1)) % nodes;
    (a, b)
}

fn faults(
    rng: &mut Rng,
    nodes: usize,
    groups: &[String],
    duration_ms: u64,
    caps: Caps,
    skip: &[String],
) -> Vec<Episode> {
    // At most a minority of the nodes is faulty at once: one of three, two of five.
    let slots = ((nodes - 1) / 2).max(1);
    let mut weights = [10, 10, 6, 12, 8, 0, 0, 0, 0, 0, 0];
    if caps.netns {
        weights[5..9].copy_from_slice(&[10, 6, 6, 6]);
    }
    if caps.disk {
        weights[9] = 5;
    }
    if caps.clock {
        weights[10] = 5;
    }
    for (w, kind) in weights.iter_mut().zip(KINDS) {
        if skip.iter().any(|s| s == kind) {
            *w = 0;
        }
    }
    if weights.iter().all(|w| *w == 0) {
        return Vec::new();
    }
    let mut episodes = Vec::new();
    let mut busy_until: Vec<u64> = Vec::new();
    // The cluster settles first; the last fault ends a little before the clients stop.
    let mut at = 3000;
    let end = duration_ms.saturating_sub(1500);
    while at + 500 < end {
        busy_until.retain(|u| *u > at);
        if busy_until.len() >= slots {
            at = busy_until.iter().copied().min().unwrap_or(at) + rng.between(300, 1500);
            continue;
        }
        let fault = match rng.weighted(&weights) {
            0 => Fault::Kill { target: target(rng, nodes, groups) },
            1 => Fault::Crash { target: target(rng, nodes, groups) },
            2 => Fault::Stop { target: target(rng, nodes, groups) },
            3 => Fault::Pause { target: target(rng, nodes, groups) },
            4 => {
                if rng.percent(50) {
                    Fault::Kill { target: Target::Leader }
                } else {
                    Fault::Crash { target: Target::Leader }
                }
            }
            5 => Fault::Isolate { target: target(rng, nodes, groups) },
            6 => {
                let (a, b) = two(rng, nodes);
                Fault::Cut { a, b }
            }
            7 => {
                let (from, to) = two(rng, nodes);
                Fault::OneWay { from, to }
            }
            8 => Fault::Flaky { target: target(rng, nodes, groups), flips: Vec::new() },
            9 => Fault::DiskFull { target: target(rng, nodes, groups) },
            _ => Fault::ClockJump { target: target(rng, nodes, groups), offset_s: rng.between(60, 30 * 86_400) },
        };
        if skip.iter().any(|s| s == fault.kind()) {
            // A kill or crash that happened to aim at the leader, with coordinator kills left out.
            continue;
        }
        let (lo, hi) = match fault {
            Fault::Pause { .. } => (200, 3000),
            Fault::Isolate { .. } => (500, 6000),
            Fault::Cut { .. } | Fault::OneWay { .. } => (1000, 6000),
            Fault::Flaky { .. } => (2000, 6000),
            Fault::DiskFull { .. } => (1500, 5000),
            _ => (500, 4000),
        };
        let duration_ms = rng.between(lo, hi).min(end - at);
        let fault = match fault {
            Fault::Flaky { target, .. } => {
                let mut flips = Vec::new();
                let mut t = 0;
                loop {
                    t += rng.between(100, 600);
                    if t >= duration_ms {
                        break;
                    }
                    flips.push(t);
                }
                Fault::Flaky { target, flips }
            }
            f => f,
        };
        episodes.push(Episode { id: episodes.len(), at_ms: at, duration_ms, fault });
        busy_until.push(at + duration_ms);
        at += if slots > 1 { rng.between(500, 3000) } else { duration_ms + rng.between(1000, 4000) };
    }
    episodes
}

fn operations(rng: &mut Rng, nodes: usize, groups: &[String], duration_ms: u64) -> Vec<Planned> {
    let mut ops = Vec::new();
    let mut at = 1500;
    let end = duration_ms.saturating_sub(500);
    while at < end {
        let via = rng.index(nodes);
        let group = groups[rng.index(groups.len())].clone();
        let later = at + rng.between(1000, 5000);
        match rng.weighted(&[25, 15, 10, 10, 10]) {
            0 => ops.push(Planned { at_ms: at, via, op: Op::Move { group, to: Some(rng.index(nodes)) } }),
            1 => ops.push(Planned { at_ms: at, via, op: Op::Move { group, to: None } }),
            2 => ops.push(Planned { at_ms: at, via, op: Op::Online { group } }),
            3 => {
                ops.push(Planned { at_ms: at, via, op: Op::Offline { group: group.clone() } });
                ops.push(Planned { at_ms: later.min(end), via: rng.index(nodes), op: Op::Online { group } });
            }
            _ => {
                let node = rng.index(nodes);
                ops.push(Planned { at_ms: at, via, op: Op::Drain { node } });
                ops.push(Planned { at_ms: later.min(end), via: rng.index(nodes), op: Op::Resume { node } });
            }
        }
        at += rng.between(300, 2500);
    }
    ops.sort_by_key(|p| p.at_ms);
    ops
}

fn writes(rng: &mut Rng, seed: u64, nodes: usize, groups: &[String], duration_ms: u64) -> Vec<Planned> {
    let mut writes = Vec::new();
    let mut at = 1000;
    while at < duration_ms {
        let group = groups[rng.index(groups.len())].clone();
        let key = KEYS[rng.index(KEYS.len())].to_string();
        let value = format!("s{seed}-w{}", writes.len());
        writes.push(Planned { at_ms: at, via: rng.index(nodes), op: Op::Write { group, key, value } });
        at += rng.between(100, 800);
    }
    writes
}

fn describe_target(t: &Target) -> String {
    match t {
        Target::Node(i) => node_name(*i),
        Target::Leader => "the leader".into(),
        Target::OwnerOf(g) => format!("the owner of {g}"),
    }
}

/// A fault in words.
pub fn describe_fault(f: &Fault) -> String {
    match f {
        Fault::Kill { target } => format!("SIGKILL the daemon of {}", describe_target(target)),
        Fault::Crash { target } => format!("crash {} (SIGKILL every process)", describe_target(target)),
        Fault::Stop { target } => format!("stop {} (SIGTERM)", describe_target(target)),
        Fault::Pause { target } => format!("SIGSTOP the daemon of {}", describe_target(target)),
        Fault::Isolate { target } => format!("isolate {}", describe_target(target)),
        Fault::Cut { a, b } => format!("cut {} <-> {}", node_name(*a), node_name(*b)),
        Fault::OneWay { from, to } => format!("drop {} -> {} (one way)", node_name(*from), node_name(*to)),
        Fault::Flaky { target, flips } => {
            format!("flap the link of {} ({} flips)", describe_target(target), flips.len())
        }
        Fault::DiskFull { target } => format!("fill the disk of {}", describe_target(target)),
        Fault::ClockJump { target, offset_s } => {
            format!("crash {}, its monotonic clock {offset_s} s ahead after", describe_target(target))
        }
    }
}

/// An operation in words.
pub fn describe_op(p: &Planned) -> String {
    let what = match &p.op {
        Op::Move { group, to: Some(n) } => format!("move {group} to {}", node_name(*n)),
        Op::Move { group, to: None } => format!("move {group} (placement picks)"),
        Op::Online { group } => format!("online {group}"),
        Op::Offline { group } => format!("offline {group}"),
        Op::Drain { node } => format!("drain {}", node_name(*node)),
        Op::Resume { node } => format!("resume {}", node_name(*node)),
        Op::Write { group, key, value } => format!("set {} {key}={value}", witness_resource(group)),
    };
    format!("{what} via {}", node_name(p.via))
}

impl Schedule {
    /// The schedule in words: faults and operations (writes summarised).
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "schedule of seed {}: {} nodes, groups {}, {:.1} s; netns {}, disk {}, clock {}{}",
            self.seed,
            self.nodes,
            self.groups.join(","),
            self.duration_ms as f64 / 1e3,
            self.caps.netns,
            self.caps.disk,
            self.caps.clock,
            if self.skipped.is_empty() { String::new() } else { format!("; without {}", self.skipped.join(",")) }
        );
        let mut lines: Vec<(u64, String)> = self
            .episodes
            .iter()
            .map(|e| {
                let text = format!(
                    "fault {:>3}: {}, healed after {:.1} s",
                    e.id,
                    describe_fault(&e.fault),
                    e.duration_ms as f64 / 1e3
                );
                (e.at_ms, text)
            })
            .collect();
        lines.extend(self.ops.iter().map(|p| (p.at_ms, format!("client   : {}", describe_op(p)))));
        lines.sort_by_key(|(t, _)| *t);
        for (t, text) in lines {
            let _ = writeln!(s, "  +{:>8.3}s  {text}", t as f64 / 1e3);
        }
        let _ = writeln!(
            s,
            "  and {} configuration writes (unique values on {} of each group's witness)",
            self.writes.len(),
            KEYS.join(", ")
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Caps = Caps { netns: true, disk: true, clock: true };

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let a = plan(42, 3, 3, 60_000, ALL, &[]);
        assert_eq!(a, plan(42, 3, 3, 60_000, ALL, &[]));
        assert_ne!(a.episodes, plan(43, 3, 3, 60_000, ALL, &[]).episodes);
        assert!(!a.episodes.is_empty() && !a.ops.is_empty() && !a.writes.is_empty());
        assert_eq!(a.describe(), plan(42, 3, 3, 60_000, ALL, &[]).describe());
    }

    #[test]
    fn faults_stay_within_the_run_and_a_minority() {
        for seed in 0..200 {
            for nodes in [3, 5] {
                let s = plan(seed, nodes, 3, 40_000, ALL, &[]);
                let slots = (nodes - 1) / 2;
                for e in &s.episodes {
                    assert!(e.at_ms >= 3000 && e.at_ms + e.duration_ms <= 40_000, "{e:?}");
                    let overlapping =
                        s.episodes.iter().filter(|o| o.at_ms <= e.at_ms && e.at_ms < o.at_ms + o.duration_ms).count();
                    assert!(overlapping <= slots, "seed {seed}: {overlapping} faults at once");
                    if let Fault::Cut { a, b } | Fault::OneWay { from: a, to: b } = e.fault {
                        assert!(a != b && a < nodes && b < nodes);
                    }
                }
                let values: std::collections::BTreeSet<_> = s
                    .writes
                    .iter()
                    .filter_map(|w| match &w.op {
                        Op::Write { value, .. } => Some(value.clone()),
                        _ => None,
                    })
                    .collect();
                assert_eq!(values.len(), s.writes.len(), "every written value is unique");
            }
        }
    }

    #[test]
    fn skipped_kinds_are_left_out() {
        let skip = vec!["disk_full".to_string(), "coordinator_kill".to_string()];
        for seed in 0..100 {
            for e in plan(seed, 3, 3, 60_000, ALL, &skip).episodes {
                assert!(!skip.iter().any(|k| k == e.fault.kind()), "{:?}", e.fault);
            }
        }
        let only: Vec<String> = KINDS.iter().filter(|k| **k != "pause").map(|k| k.to_string()).collect();
        let s = plan(1, 3, 3, 60_000, ALL, &only);
        assert!(!s.episodes.is_empty() && s.episodes.iter().all(|e| e.fault.kind() == "pause"));
    }

    #[test]
    fn without_root_there_are_no_network_disk_or_clock_faults() {
        let none = Caps { netns: false, disk: false, clock: false };
        for seed in 0..100 {
            for e in plan(seed, 3, 2, 60_000, none, &[]).episodes {
                assert!(
                    matches!(e.fault.kind(), "kill" | "crash" | "stop" | "pause" | "coordinator_kill"),
                    "{:?}",
                    e.fault
                );
            }
        }
    }
}
