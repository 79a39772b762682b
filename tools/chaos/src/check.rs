//! The checker: reads a run directory (`witness.log` and `history.jsonl`) and decides, without
//! trusting anything halo says about itself except the final reads, whether anything unsafe
//! happened. `halo-chaos check DIR` runs it alone.
//!
//! Violations:
//! - `overlap`: two nodes ran a group's witness at overlapping instants. A witness runs on a
//!   node from the start of its online to the end of the offline or terminate that follows (or
//!   until the node was crashed, or its marker process was seen gone);
//! - `marker_overlap`: marker processes of one group were seen alive on two nodes at once;
//! - `epoch`: an online's epoch lower than an earlier online's, the same epoch on another node,
//!   an offline's epoch lower than its online's, or an online without an epoch;
//! - `recovery`: a group not online again within the bound after every fault healed, or not
//!   online on the owner every node names at the end;
//! - `lost_write`: the final value of a configuration key is neither the last acknowledged write
//!   to it nor a write whose outcome is unknown (a Jepsen-style register check);
//! - `stray_process`: at the end, a marker process runs on a node that does not own its group
//!   (or a group Online has none on its owner);
//! - `not_converged`: the cluster did not settle (every node Up, owners agreed) at the end.

use crate::history::{Event, MarkerSeen};
use crate::schedule::{KEYS, Op, witness_resource};
use crate::witness::{self, Line};
use anyhow::{Result, anyhow};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One violation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Which rule.
    pub kind: String,
    /// The group concerned.
    pub group: String,
    /// What happened, with times in seconds from the start of the run.
    pub detail: String,
}

/// Successes and failures of one kind of operation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Count {
    /// Acknowledged (exit status 0).
    pub ok: u64,
    /// Refused, failed or timed out.
    pub failed: u64,
}

/// What the checker prints.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// The run directory.
    pub dir: String,
    /// The seed.
    pub seed: u64,
    /// netns or loopback.
    pub mode: String,
    /// What the machine allowed (and so which faults the schedule could hold).
    pub caps: crate::schedule::Caps,
    /// Nodes.
    pub nodes: usize,
    /// Faulty period, seconds.
    pub duration_s: f64,
    /// Faults begun, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Faults that could not be injected (every node busy, or the injection failed).
    pub faults_not_injected: u64,
    /// Client operations, by kind (the final onlines and resumes included).
    pub operations: BTreeMap<String, Count>,
    /// Witness onlines.
    pub onlines: u64,
    /// Ownership changes after a crash, a lost lease or a failure.
    pub failovers: u64,
    /// Ownership changes by a move (offline with a destination, then online there).
    pub moves: u64,
    /// Per group, the longest time it was wanted online but online nowhere, ms (after its
    /// first online; operator offlines excluded).
    pub longest_unavailability_ms: BTreeMap<String, u64>,
    /// Per group, how long after the heal it was online again (0: it already was), ms.
    pub recovery_after_heal_ms: BTreeMap<String, u64>,
    /// Daemons that exited by themselves (a full disk, a crash of the daemon).
    pub unexpected_exits: u64,
    /// Panics in the nodes' logs (not violations of the rules above, but bugs).
    pub panics: Vec<String>,
    /// Every violation.
    pub violations: Vec<Violation>,
    /// How many (must be 0).
    pub violation_count: usize,
}

/// A time in the run, in seconds from its start, for messages.
struct Clock(u64);

impl Clock {
    fn at(&self, t: u64) -> String {
        format!("+{:.3}s", (t as f64 - self.0 as f64) / 1e9)
    }
}

/// How a witness interval ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Close {
    /// An offline; with the destination of a move; `operator`: asked for by a client (no
    /// destination, and it updates the persistent state), rather than a lost lease or a stop.
    Offline {
        dest: Option<String>,
        operator: bool,
    },
    Terminate,
    Crash,
    MarkerGone,
    /// A new online on the same node, with no close in between.
    Superseded,
}

/// A witness online on one node: from its online's start to the end of its close.
#[derive(Debug, Clone)]
struct Interval {
    node: String,
    start: u64,
    /// When its online ended (successfully): from then on it was available.
    up: Option<u64>,
    epoch: Option<u64>,
    pid: Option<i32>,
    /// An offline or terminate has begun.
    closing: bool,
    marker_gone: Option<u64>,
    end: Option<(u64, Close)>,
}

impl Interval {
    fn end_or(&self, last: u64) -> u64 {
        self.end.as_ref().map_or(last, |(t, _)| *t)
    }
}

/// Something that happened to a group's witness on a node, in time order.
enum Happening<'a> {
    Line(&'a Line),
    Crash(&'a str),
    MarkerGone(i32),
}

/// The witness intervals of every group, from the log, crashes and marker deaths.
fn intervals(
    lines: &[Line],
    events: &[Event],
    violations: &mut Vec<Violation>,
    clock: &Clock,
) -> BTreeMap<String, Vec<Interval>> {
    let mut timeline: Vec<(u64, Happening)> = lines.iter().map(|l| (l.t, Happening::Line(l))).collect();
    for e in events {
        match e {
            Event::Crash { t, node } => timeline.push((*t, Happening::Crash(node))),
            Event::Marker { marker, gone_seen: Some(g), .. } => timeline.push((*g, Happening::MarkerGone(marker.pid))),
            _ => {}
        }
    }
    timeline.sort_by_key(|(t, _)| *t);
    // Open intervals by (group, node), closed ones by group.
    let mut open: BTreeMap<(String, String), Interval> = BTreeMap::new();
    let mut done: BTreeMap<String, Vec<Interval>> = BTreeMap::new();
    let mut close = |open: &mut BTreeMap<(String, String), Interval>, key: &(String, String), t: u64, how: Close| {
        if let Some(mut i) = open.remove(key) {
            i.end = Some((t, how));
            done.entry(key.0.clone()).or_default().push(i);
        }
    };
    for (t, h) in &timeline {
        match h {
            Happening::Line(l) => {
                let key = (l.group.clone(), l.node.clone());
                match (l.action.as_str(), l.phase.as_str()) {
                    ("online", "begin") => {
                        if let Some(prev) = open.get(&key) {
                            let at = prev.marker_gone.unwrap_or(*t);
                            close(&mut open, &key, at, Close::Superseded);
                        }
                        open.insert(
                            key,
                            Interval {
                                node: l.node.clone(),
                                start: *t,
                                up: None,
                                epoch: l.epoch,
                                pid: None,
                                closing: false,
                                marker_gone: None,
                                end: None,
                            },
                        );
                    }
                    ("online", "end") => {
                        if let Some(i) = open.get_mut(&key) {
                            i.pid = l.pid;
                            if l.ok {
                                i.up = Some(*t);
                            }
                        }
                    }
                    ("offline" | "terminate", "begin") => {
                        if let Some(i) = open.get_mut(&key) {
                            i.closing = true;
                            if let (Some(on), Some(off)) = (i.epoch, l.epoch)
                                && off < on
                            {
                                violations.push(Violation {
                                    kind: "epoch".into(),
                                    group: l.group.clone(),
                                    detail: format!(
                                        "{} on {} at {} carried epoch {off}, below its online's {on}",
                                        l.action,
                                        l.node,
                                        clock.at(*t)
                                    ),
                                });
                            }
                        }
                    }
                    ("offline", "end") => {
                        let operator = l.dest.is_none() && !l.flags.contains("DO_NOT_UPDATE_PERSISTENT_STATE");
                        close(&mut open, &key, *t, Close::Offline { dest: l.dest.clone(), operator })
                    }
                    ("terminate", "end") => close(&mut open, &key, *t, Close::Terminate),
                    _ => {}
                }
            }
            Happening::Crash(node) => {
                let keys: Vec<_> = open.keys().filter(|(_, n)| n == node).cloned().collect();
                for k in keys {
                    close(&mut open, &k, *t, Close::Crash);
                }
            }
            Happening::MarkerGone(pid) => {
                let key = open.iter().find(|(_, i)| i.pid == Some(*pid)).map(|(k, _)| k.clone());
                if let Some(k) = key {
                    let closing = open.get(&k).is_some_and(|i| i.closing);
                    if closing {
                        // The offline or terminate that killed it ends the interval.
                        if let Some(i) = open.get_mut(&k) {
                            i.marker_gone = Some(*t);
                        }
                    } else {
                        close(&mut open, &k, *t, Close::MarkerGone);
                    }
                }
            }
        }
    }
    for ((group, _), mut i) in open {
        // An offline or terminate that began but never ended: its marker's death ends it.
        if let Some(g) = i.marker_gone {
            i.end = Some((g, Close::MarkerGone));
        }
        done.entry(group).or_default().push(i);
    }
    for list in done.values_mut() {
        list.sort_by_key(|i| i.start);
    }
    done
}

fn describe(i: &Interval, clock: &Clock) -> String {
    let end = match &i.end {
        Some((t, how)) => format!("{} ({how:?})", clock.at(*t)),
        None => "still running".into(),
    };
    format!("{} epoch {:?} from {} to {end}", i.node, i.epoch, clock.at(i.start))
}

/// Checks the run in `dir`.
pub fn check(dir: &Path) -> Result<Summary> {
    let events = crate::history::read(&dir.join("history.jsonl"))?;
    let lines = witness::read(&dir.join(witness::LOG))?;
    let mut s = evaluate(&events, &lines)?;
    s.dir = dir.display().to_string();
    s.panics = panics(&dir.join("logs"));
    Ok(s)
}

/// Each group's witness intervals, in words: where it ran, with which epoch, from when to when
/// and how it ended (`halo-chaos check --timeline`).
pub fn timeline(dir: &Path) -> Result<String> {
    let events = crate::history::read(&dir.join("history.jsonl"))?;
    let lines = witness::read(&dir.join(witness::LOG))?;
    let begin = events.iter().find_map(|e| match e {
        Event::Begin { t } => Some(*t),
        _ => None,
    });
    let start = events.iter().find_map(|e| match e {
        Event::Start { t, .. } => Some(*t),
        _ => None,
    });
    let clock = Clock(begin.or(start).unwrap_or(0));
    let mut out = String::new();
    for (group, list) in intervals(&lines, &events, &mut Vec::new(), &clock) {
        out.push_str(&format!("{group}:\n"));
        for i in list {
            let up = i.up.map_or_else(|| "never up".to_string(), |u| format!("up {}", clock.at(u)));
            out.push_str(&format!("  {} ({up})\n", describe(&i, &clock)));
        }
    }
    Ok(out)
}

/// Lines of the nodes' logs that report a panic.
fn panics(logs: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(logs) else { return Vec::new() };
    let mut found = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        found.extend(text.lines().filter(|l| l.contains("panicked at")).map(|l| format!("{name}: {l}")));
    }
    found.sort();
    found
}

/// The checker proper, on parsed inputs.
pub fn evaluate(events: &[Event], lines: &[Line]) -> Result<Summary> {
    let Some(Event::Start { t: t0, seed, mode, nodes, groups, duration_ms, heal_bound_ms, caps, .. }) =
        events.iter().find(|e| matches!(e, Event::Start { .. }))
    else {
        return Err(anyhow!("the history has no start"));
    };
    // Times are told from the schedule's time 0, once the cluster is formed.
    let zero = events.iter().find_map(|e| match e {
        Event::Begin { t } => Some(*t),
        _ => None,
    });
    let clock = Clock(zero.unwrap_or(*t0));
    let mut s = Summary {
        seed: *seed,
        mode: mode.clone(),
        caps: *caps,
        nodes: nodes.len(),
        duration_s: *duration_ms as f64 / 1e3,
        ..Summary::default()
    };
    let mut v: Vec<Violation> = Vec::new();
    let last = events
        .iter()
        .map(|e| match e {
            Event::End { t } | Event::Final { t, .. } => *t,
            _ => 0,
        })
        .chain(lines.iter().map(|l| l.t))
        .max()
        .unwrap_or(*t0);

    for e in events {
        match e {
            Event::Fault { fault, phase, .. } if phase == "begin" => *s.faults.entry(fault.clone()).or_default() += 1,
            Event::Fault { phase, .. } if phase == "skipped" || phase == "failed" => s.faults_not_injected += 1,
            Event::Exit { .. } => s.unexpected_exits += 1,
            Event::Op { op, ok, .. } => {
                let name = match op {
                    Op::Move { .. } => "move",
                    Op::Online { .. } => "online",
                    Op::Offline { .. } => "offline",
                    Op::Drain { .. } => "drain",
                    Op::Resume { .. } => "resume",
                    Op::Write { .. } => "write",
                };
                let c = s.operations.entry(name.into()).or_default();
                if *ok {
                    c.ok += 1;
                } else {
                    c.failed += 1;
                }
            }
            _ => {}
        }
    }

    // 1. No two nodes at once, from the witness's own records.
    let by_group = intervals(lines, events, &mut v, &clock);
    for (group, list) in &by_group {
        for (k, a) in list.iter().enumerate() {
            for b in &list[k + 1..] {
                if a.node != b.node && b.start < a.end_or(last) && a.start < b.end_or(last) {
                    v.push(Violation {
                        kind: "overlap".into(),
                        group: group.clone(),
                        detail: format!("{} overlaps {}", describe(a, &clock), describe(b, &clock)),
                    });
                }
            }
        }
    }
    // ... and from the marker processes seen alive.
    let markers: Vec<(&MarkerSeen, u64, u64)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Marker { marker, first_seen, last_seen, .. } => Some((marker, *first_seen, *last_seen)),
            _ => None,
        })
        .collect();
    for (k, (a, a0, a1)) in markers.iter().enumerate() {
        for (b, b0, b1) in &markers[k + 1..] {
            if a.group == b.group && a.node != b.node && a0 <= b1 && b0 <= a1 {
                v.push(Violation {
                    kind: "marker_overlap".into(),
                    group: a.group.clone(),
                    detail: format!(
                        "marker {} on {} (epoch {}, seen {}..{}) and marker {} on {} (epoch {}, seen {}..{}) alive at once",
                        a.pid,
                        a.node,
                        a.epoch,
                        clock.at(*a0),
                        clock.at(*a1),
                        b.pid,
                        b.node,
                        b.epoch,
                        clock.at(*b0),
                        clock.at(*b1)
                    ),
                });
            }
        }
    }

    // 2. Epochs never go backwards, and a new owner has a new one.
    let mut onlines: Vec<&Line> = lines.iter().filter(|l| l.action == "online" && l.phase == "begin").collect();
    onlines.sort_by_key(|l| l.t);
    s.onlines = onlines.len() as u64;
    let mut latest: BTreeMap<&str, (&str, u64)> = BTreeMap::new();
    for l in onlines {
        let Some(epoch) = l.epoch else {
            v.push(Violation {
                kind: "epoch".into(),
                group: l.group.clone(),
                detail: format!("online on {} at {} without an epoch", l.node, clock.at(l.t)),
            });
            continue;
        };
        if let Some((node, before)) = latest.get(l.group.as_str()) {
            if epoch < *before {
                v.push(Violation {
                    kind: "epoch".into(),
                    group: l.group.clone(),
                    detail: format!(
                        "online on {} at {} with epoch {epoch}, after an online on {node} with epoch {before}",
                        l.node,
                        clock.at(l.t)
                    ),
                });
            } else if epoch == *before && *node != l.node {
                v.push(Violation {
                    kind: "epoch".into(),
                    group: l.group.clone(),
                    detail: format!(
                        "online on {} at {} with epoch {epoch}, the epoch {node} had: a new owner needs a new epoch",
                        l.node,
                        clock.at(l.t)
                    ),
                });
            }
        }
        latest.insert(&l.group, (&l.node, epoch));
    }

    // 3. Moves, failovers and unavailability.
    for (group, list) in &by_group {
        let mut worst = 0u64;
        // The end of the last availability, unless an operator took the group offline.
        let mut since: Option<u64> = None;
        let mut previous: Option<&Interval> = None;
        for i in list {
            if let Some(p) = previous
                && p.node != i.node
            {
                match &p.end {
                    Some((_, Close::Offline { dest: Some(_), .. })) => s.moves += 1,
                    _ => s.failovers += 1,
                }
            }
            if let Some(up) = i.up {
                if let Some(from) = since {
                    worst = worst.max(up.saturating_sub(from));
                }
                since = match &i.end {
                    Some((_, Close::Offline { operator: true, .. })) => None,
                    Some((t, _)) => Some(*t),
                    None => None,
                };
            }
            previous = Some(i);
        }
        if let Some(from) = since {
            worst = worst.max(last.saturating_sub(from));
        }
        s.longest_unavailability_ms.insert(group.clone(), worst / 1_000_000);
    }

    // 4. Back online within the bound, on the owner the nodes name, and only there.
    let healed = events.iter().find_map(|e| match e {
        Event::Healed { t } => Some(*t),
        _ => None,
    });
    let fin = events.iter().find_map(|e| match e {
        Event::Final { converged, owners, states, config, config_agreed, markers, notes, .. } => {
            Some((converged, owners, states, config, config_agreed, markers, notes))
        }
        _ => None,
    });
    let Some((converged, owners, states, config, config_agreed, end_markers, notes)) = fin else {
        v.push(Violation {
            kind: "not_converged".into(),
            group: String::new(),
            detail: "the run did not reach its final reads (see the runner's output)".into(),
        });
        s.violation_count = v.len();
        s.violations = v;
        return Ok(s);
    };
    if !converged {
        v.push(Violation { kind: "not_converged".into(), group: String::new(), detail: notes.join("; ") });
    }
    let healed = healed.unwrap_or(last);
    for g in groups {
        let running: Vec<&Interval> =
            by_group.get(g).map(|l| l.iter().filter(|i| i.end.is_none()).collect()).unwrap_or_default();
        let owner = owners.get(g);
        let state = states.get(g).map_or("unknown", String::as_str);
        let here: Vec<&MarkerSeen> = end_markers.iter().filter(|m| &m.group == g).collect();
        if owner.is_none() {
            // The nodes named no owner (reported as not converged): only what runs can be judged.
            if running.len() > 1 || here.len() > 1 {
                v.push(Violation {
                    kind: "stray_process".into(),
                    group: g.clone(),
                    detail: format!(
                        "at the end the witness runs on [{}] with {} marker processes",
                        running.iter().map(|i| describe(i, &clock)).collect::<Vec<_>>().join("; "),
                        here.len()
                    ),
                });
            }
            continue;
        }
        match running.as_slice() {
            [one] if Some(&one.node) == owner && one.up.is_some() => {
                let up = one.up.unwrap_or(0);
                let took = up.saturating_sub(healed);
                s.recovery_after_heal_ms.insert(g.clone(), took / 1_000_000);
                if took > heal_bound_ms.saturating_mul(1_000_000) {
                    v.push(Violation {
                        kind: "recovery".into(),
                        group: g.clone(),
                        detail: format!(
                            "online again on {} only {:.1} s after the heal (bound {:.1} s)",
                            one.node,
                            took as f64 / 1e9,
                            *heal_bound_ms as f64 / 1e3
                        ),
                    });
                }
            }
            _ => v.push(Violation {
                kind: "recovery".into(),
                group: g.clone(),
                detail: format!(
                    "at the end the witness runs on [{}], the nodes name owner {owner:?}, state {state}",
                    running.iter().map(|i| describe(i, &clock)).collect::<Vec<_>>().join("; ")
                ),
            }),
        }
        // 5. What runs at the end runs on the owner, and something runs there.
        for m in &here {
            if Some(&m.node) != owner {
                v.push(Violation {
                    kind: "stray_process".into(),
                    group: g.clone(),
                    detail: format!(
                        "marker {} (epoch {}) still runs on {}, which does not own {g} (owner {owner:?})",
                        m.pid, m.epoch, m.node
                    ),
                });
            }
        }
        if state == "Online" && !here.iter().any(|m| Some(&m.node) == owner) {
            v.push(Violation {
                kind: "stray_process".into(),
                group: g.clone(),
                detail: format!("{g} is Online on {owner:?} but no witness process runs there"),
            });
        }
        if here.len() > 1 {
            v.push(Violation {
                kind: "stray_process".into(),
                group: g.clone(),
                detail: format!("{} witness processes run at the end", here.len()),
            });
        }
    }

    // 6. Every acknowledged write is there (or a later one whose outcome is unknown).
    if !config_agreed {
        v.push(Violation {
            kind: "lost_write".into(),
            group: String::new(),
            detail: format!("the nodes did not agree on the configuration at the end: {}", notes.join("; ")),
        });
    } else {
        // (group, key) → its writes: (sent at, value, acknowledged).
        type Writes<'a> = BTreeMap<(String, String), Vec<(u64, &'a str, bool)>>;
        let mut writes: Writes = BTreeMap::new();
        for e in events {
            if let Event::Op { op: Op::Write { group, key, value }, ok, start, .. } = e {
                writes.entry((group.clone(), key.clone())).or_default().push((*start, value, *ok));
            }
        }
        for g in groups {
            for key in KEYS {
                let list = writes.get(&(g.clone(), key.to_string())).cloned().unwrap_or_default();
                let fin = config.get(&witness_resource(g)).and_then(|c| c.get(key)).map(String::as_str);
                let acked = list.iter().filter(|w| w.2).max_by_key(|w| w.0);
                let allowed = match fin {
                    None => acked.is_none(),
                    Some(f) => Some(f) == acked.map(|w| w.1) || list.iter().any(|w| !w.2 && w.1 == f),
                };
                if !allowed {
                    let detail = match (fin, acked) {
                        (Some(f), _) if !list.iter().any(|w| w.1 == f) => {
                            format!("{key} holds {f:?}, a value no client wrote")
                        }
                        (_, Some(a)) => format!(
                            "{key} holds {fin:?}, but {:?} was acknowledged at {} and nothing unacknowledged holds {fin:?}",
                            a.1,
                            clock.at(a.0)
                        ),
                        _ => format!("{key} holds {fin:?}"),
                    };
                    v.push(Violation { kind: "lost_write".into(), group: g.clone(), detail });
                }
            }
        }
    }
    // 7. The persistent state the acknowledged onlines and offlines left (a register per group:
    // the last acknowledged one wins, or one whose outcome is unknown).
    match events.iter().find_map(|e| match e {
        Event::Persistent { states, agreed, note, .. } => Some((states, agreed, note)),
        _ => None,
    }) {
        None => {}
        Some((_, false, note)) => v.push(Violation {
            kind: "not_converged".into(),
            group: String::new(),
            detail: format!("the nodes did not agree on PersistentState after the heal: {note}"),
        }),
        Some((states, true, _)) => {
            for g in groups {
                let held = states.get(&witness_resource(g)).map(String::as_str);
                // The groups were brought online (acknowledged) before the clients started.
                let mut ops: Vec<(u64, u64, &str, bool, &str)> = vec![(0, 0, "true", true, "online")];
                for e in events {
                    if let Event::Op { client, op, ok, start, end, .. } = e
                        && client != "final"
                    {
                        match op {
                            Op::Online { group } if group == g => ops.push((*start, *end, "true", *ok, "online")),
                            Op::Offline { group } if group == g => ops.push((*start, *end, "false", *ok, "offline")),
                            _ => {}
                        }
                    }
                }
                let last_start = ops.iter().filter(|o| o.3).map(|o| o.0).max().unwrap_or(0);
                // An acknowledged operation may be the last to take effect unless another
                // acknowledged one began after it ended; one not acknowledged, at any time.
                let allowed = |o: &&(u64, u64, &str, bool, &str)| !o.3 || o.1 >= last_start;
                if !ops.iter().filter(allowed).any(|o| Some(o.2) == held) {
                    let last = ops.iter().filter(|o| o.3).max_by_key(|o| o.1);
                    v.push(Violation {
                        kind: "lost_write".into(),
                        group: g.clone(),
                        detail: format!(
                            "PersistentState of {} is {held:?} after the heal, but the {} acknowledged at {} says {:?} \
                             and nothing unacknowledged wrote {held:?}",
                            witness_resource(g),
                            last.map_or("", |o| o.4),
                            last.map_or_else(String::new, |o| clock.at(o.1)),
                            last.map_or("", |o| o.2),
                        ),
                    });
                }
            }
        }
    }
    s.violation_count = v.len();
    s.violations = v;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn line(node: &str, action: &str, phase: &str, t: u64, epoch: u64) -> Line {
        Line {
            node: node.into(),
            group: "g1".into(),
            resource: "w-g1".into(),
            action: action.into(),
            phase: phase.into(),
            t,
            epoch: Some(epoch),
            pid: None,
            dest: None,
            flags: String::new(),
            ok: true,
        }
    }

    fn start() -> Event {
        Event::Start {
            t: 0,
            run: "r".into(),
            seed: 1,
            mode: "loopback".into(),
            nodes: vec!["n1".into(), "n2".into()],
            groups: vec!["g1".into()],
            duration_ms: 10_000,
            heal_bound_ms: 30_000,
            caps: Default::default(),
            wall_ms: 0,
        }
    }

    fn fin(owner: &str, value: Option<&str>) -> Event {
        let config = value.map(|v| BTreeMap::from([("Chaos0".to_string(), v.to_string())])).unwrap_or_default();
        Event::Final {
            t: 20 * S,
            converged: true,
            owners: BTreeMap::from([("g1".into(), owner.into())]),
            states: BTreeMap::from([("g1".into(), "Online".into())]),
            config: BTreeMap::from([("w-g1".into(), config)]),
            config_agreed: true,
            markers: vec![MarkerSeen { pid: 7, node: owner.into(), group: "g1".into(), epoch: "5".into() }],
            notes: Vec::new(),
        }
    }

    fn write(value: &str, start: u64, ok: bool) -> Event {
        Event::Op {
            client: "writer".into(),
            start,
            end: start + S / 10,
            via: "n1".into(),
            op: Op::Write { group: "g1".into(), key: "Chaos0".into(), value: value.into() },
            ok,
            timed_out: false,
            error: String::new(),
        }
    }

    fn kinds(s: &Summary) -> Vec<&str> {
        s.violations.iter().map(|v| v.kind.as_str()).collect()
    }

    /// A clean history: n1 runs g1, moves it to n2 (offline there first), n2 runs it to the end.
    fn clean() -> (Vec<Event>, Vec<Line>) {
        let mut off = line("n1", "offline", "end", 4 * S, 4);
        off.dest = Some("n2".into());
        let lines = vec![
            line("n1", "online", "begin", S, 3),
            line("n1", "online", "end", S + 10, 3),
            line("n1", "offline", "begin", 3 * S, 4),
            off,
            line("n2", "online", "begin", 5 * S, 5),
            line("n2", "online", "end", 5 * S + 10, 5),
        ];
        let events = vec![start(), write("a", 2 * S, true), Event::Healed { t: 10 * S }, fin("n2", Some("a"))];
        (events, lines)
    }

    #[test]
    fn a_clean_history_passes_and_counts_the_move() {
        let (events, lines) = clean();
        let s = evaluate(&events, &lines).unwrap();
        assert!(s.violations.is_empty(), "{:?}", s.violations);
        assert_eq!((s.moves, s.failovers, s.onlines), (1, 0, 2));
        assert_eq!(s.longest_unavailability_ms["g1"], 1000);
        assert_eq!(s.recovery_after_heal_ms["g1"], 0);
    }

    #[test]
    fn two_nodes_online_at_once_is_a_violation() {
        let (events, mut lines) = clean();
        // n2 starts before n1's offline ended.
        lines[4].t = 3 * S + S / 2;
        let s = evaluate(&events, &lines).unwrap();
        assert_eq!(kinds(&s), ["overlap"]);
        // A crash of n1 before n2 starts ends n1's interval: no overlap.
        let (mut events, mut lines) = clean();
        lines.truncate(2);
        lines.push(line("n2", "online", "begin", 5 * S, 5));
        lines.push(line("n2", "online", "end", 5 * S + 10, 5));
        events.insert(1, Event::Crash { t: 4 * S, node: "n1".into() });
        let s = evaluate(&events, &lines).unwrap();
        assert!(s.violations.is_empty(), "{:?}", s.violations);
        assert_eq!((s.moves, s.failovers), (0, 1));
        // Without the crash, n1 never stopped.
        events.remove(1);
        assert!(kinds(&evaluate(&events, &lines).unwrap()).contains(&"overlap"));
    }

    #[test]
    fn epochs_going_backwards_or_repeating_on_a_new_owner_are_violations() {
        let (events, mut lines) = clean();
        lines[4].epoch = Some(2);
        assert_eq!(kinds(&evaluate(&events, &lines).unwrap()), ["epoch"]);
        lines[4].epoch = Some(3);
        assert_eq!(kinds(&evaluate(&events, &lines).unwrap()), ["epoch"]);
        lines[4].epoch = None;
        assert_eq!(kinds(&evaluate(&events, &lines).unwrap()), ["epoch"]);
    }

    #[test]
    fn a_lost_acknowledged_write_is_a_violation_and_an_unknown_one_may_win() {
        let (mut events, lines) = clean();
        events.insert(2, write("b", 3 * S, true));
        // "b" was acknowledged after "a": the final "a" lost it.
        assert_eq!(kinds(&evaluate(&events, &lines).unwrap()), ["lost_write"]);
        // Unacknowledged, "b" may or may not have happened.
        events[2] = write("b", 3 * S, false);
        assert!(evaluate(&events, &lines).unwrap().violations.is_empty());
        let last = events.len() - 1;
        events[last] = fin("n2", Some("b"));
        assert!(evaluate(&events, &lines).unwrap().violations.is_empty());
        // A value nobody wrote, or nothing at all after an acknowledged write.
        events[last] = fin("n2", Some("zzz"));
        assert_eq!(kinds(&evaluate(&events, &lines).unwrap()), ["lost_write"]);
        events[last] = fin("n2", None);
        assert_eq!(kinds(&evaluate(&events, &lines).unwrap()), ["lost_write"]);
    }

    #[test]
    fn a_stray_process_or_a_slow_recovery_is_a_violation() {
        let (mut events, lines) = clean();
        let last = events.len() - 1;
        if let Event::Final { markers, .. } = &mut events[last] {
            markers.push(MarkerSeen { pid: 8, node: "n1".into(), group: "g1".into(), epoch: "3".into() });
        }
        assert_eq!(kinds(&evaluate(&events, &lines).unwrap()), ["stray_process", "stray_process"]);
        let (mut events, mut lines) = clean();
        lines[4].t = 50 * S;
        lines[5].t = 50 * S;
        events[2] = Event::Healed { t: 10 * S };
        assert_eq!(kinds(&evaluate(&events, &lines).unwrap()), ["recovery"]);
    }

    #[test]
    fn markers_alive_on_two_nodes_at_once_are_a_violation() {
        let (mut events, lines) = clean();
        let m = |pid, node: &str, a, b| Event::Marker {
            marker: MarkerSeen { pid, node: node.into(), group: "g1".into(), epoch: "1".into() },
            first_seen: a,
            last_seen: b,
            gone_seen: Some(b + 1),
        };
        events.push(m(1, "n1", S, 3 * S));
        events.push(m(2, "n2", 5 * S, 9 * S));
        assert!(evaluate(&events, &lines).unwrap().violations.is_empty());
        events.push(m(3, "n1", 8 * S, 10 * S));
        assert_eq!(kinds(&evaluate(&events, &lines).unwrap()), ["marker_overlap"]);
    }

    #[test]
    fn an_acknowledged_online_must_leave_its_persistent_state() {
        let op = |op: Op, start: u64, ok: bool| Event::Op {
            client: "ops1".into(),
            start,
            end: start + S / 10,
            via: "n1".into(),
            op,
            ok,
            timed_out: false,
            error: String::new(),
        };
        let persistent = |v: &str| Event::Persistent {
            t: 11 * S,
            states: BTreeMap::from([("w-g1".to_string(), v.to_string())]),
            agreed: true,
            note: String::new(),
        };
        let (mut events, lines) = clean();
        events.push(op(Op::Offline { group: "g1".into() }, 6 * S, true));
        events.push(op(Op::Online { group: "g1".into() }, 7 * S, true));
        events.push(persistent("true"));
        assert!(evaluate(&events, &lines).unwrap().violations.is_empty());
        // The acknowledged online is lost.
        let last = events.len() - 1;
        events[last] = persistent("false");
        assert_eq!(kinds(&evaluate(&events, &lines).unwrap()), ["lost_write"]);
        // Not acknowledged, the online may not have happened.
        events[last - 1] = op(Op::Online { group: "g1".into() }, 7 * S, false);
        assert!(evaluate(&events, &lines).unwrap().violations.is_empty());
        // Two acknowledged ones at once: either may be last.
        events[last - 1] = op(Op::Online { group: "g1".into() }, 6 * S + S / 20, true);
        assert!(evaluate(&events, &lines).unwrap().violations.is_empty());
    }

    #[test]
    fn history_lines_round_trip() {
        let (events, _) = clean();
        for e in events {
            let text = serde_json::to_string(&e).unwrap();
            let back: Event = serde_json::from_str(&text).unwrap();
            assert_eq!(serde_json::to_string(&back).unwrap(), text);
        }
    }
}
