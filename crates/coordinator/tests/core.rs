//! The coordinator's decision core, with time advanced by hand: when a lease is granted, when a
//! node is Down, and when — never earlier — a lost node's group goes elsewhere.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

use halo_cluster::{NodeRecord, Op, Record};
use halo_coordinator::core::{CONFIRM_WINDOW, Coordinator, Grant, Input, Ready};
use halo_engine::model::{GroupDoc, NodeStateDoc, OwnerDoc, keys};
use std::collections::BTreeMap;
use std::time::Duration;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn record(revision: u64, value: &impl serde::Serialize) -> Record {
    Record { revision, value: serde_json::to_vec(value).unwrap() }
}

/// Three registered nodes, all Up, and group `g` owned by `b`.
fn loaded() -> Coordinator {
    let mut records = BTreeMap::new();
    for (i, n) in ["a", "b", "c"].iter().enumerate() {
        let node =
            NodeRecord { id: i as u64 + 1, name: n.to_string(), peer_addr: String::new(), api_addr: String::new() };
        records.insert(keys::node(n), record(1, &node));
        records.insert(keys::node_state(n), record(1, &NodeStateDoc { up: true, ..NodeStateDoc::default() }));
    }
    records.insert(keys::group("g"), record(2, &GroupDoc { name: "g".into(), common: BTreeMap::new() }));
    records.insert(keys::owner("g"), record(3, &OwnerDoc::on("b")));
    let mut c = Coordinator::new();
    c.step(Duration::ZERO, Input::Loaded { revision: 3, records });
    c
}

fn heartbeat(c: &mut Coordinator, now: Duration, node: &str) -> Grant {
    let r = c.step(now, Input::Heartbeat { token: 1, node: node.into() });
    r.grants.into_iter().next().map(|(_, g)| g).unwrap()
}

/// Plays the database: applies every write at once (answer, then the change), and gathers the
/// ownership writes made.
struct Harness {
    c: Coordinator,
    revision: u64,
    moved: Vec<(Duration, String)>,
    states: Vec<(Duration, String)>,
}

impl Harness {
    fn new() -> Harness {
        Harness { c: loaded(), revision: 10, moved: Vec::new(), states: Vec::new() }
    }

    fn step(&mut self, now: Duration, input: Input) -> Vec<Grant> {
        let mut ready = self.c.step(now, input);
        let grants: Vec<Grant> = ready.grants.drain(..).map(|(_, g)| g).collect();
        while !ready.writes.is_empty() {
            let mut more = Ready::default();
            for (write, request) in std::mem::take(&mut ready.writes) {
                self.revision += 1;
                for op in &request.ops {
                    if let Op::Put { key, value } = op {
                        if key.starts_with("owner/") {
                            let o: OwnerDoc = serde_json::from_slice(value).unwrap();
                            self.moved.push((now, o.node));
                        } else if key.starts_with("node-state/") {
                            let s: NodeStateDoc = serde_json::from_slice(value).unwrap();
                            self.states.push((now, format!("{key}={}", if s.up { "Up" } else { "Down" })));
                        }
                    }
                }
                let r = self.c.step(now, Input::Written { write, applied: Some(self.revision) });
                more.writes.extend(r.writes);
                let r = self.c.step(now, Input::Change { revision: self.revision, ops: request.ops });
                more.writes.extend(r.writes);
            }
            ready = more;
        }
        grants
    }

    /// From `from` to `to` in 50 ms steps: leadership confirmed, `alive` nodes heartbeating.
    fn run(&mut self, from: Duration, to: Duration, alive: &[&str]) {
        let mut now = from;
        while now <= to {
            self.step(now, Input::Confirmed { started: now });
            for n in alive {
                self.step(now, Input::Heartbeat { token: 1, node: n.to_string() });
            }
            self.step(now, Input::Tick);
            now += ms(50);
        }
    }
}

/// Leads since `since`, confirmed at `confirmed`.
fn leading(c: &mut Coordinator, since: Duration, confirmed: Duration) {
    c.step(since, Input::Leadership { leading: true, term: 1 });
    c.step(confirmed, Input::Confirmed { started: confirmed });
}

#[test]
fn leases_are_granted_only_while_leadership_is_freshly_confirmed() {
    let mut c = loaded();
    assert!(matches!(heartbeat(&mut c, ms(0), "a"), Grant::Refused(_)), "not leading");
    c.step(ms(0), Input::Leadership { leading: true, term: 1 });
    assert!(matches!(heartbeat(&mut c, ms(10), "a"), Grant::Refused(_)), "not confirmed yet");
    c.step(ms(20), Input::Confirmed { started: ms(20) });
    assert_eq!(heartbeat(&mut c, ms(30), "a"), Grant::Lease { lease_ms: 800, interval_ms: 200, revision: 3 });
    // A confirmation older than the window no longer backs a grant.
    let late = ms(20) + CONFIRM_WINDOW + ms(1);
    assert!(matches!(heartbeat(&mut c, late, "a"), Grant::Refused(_)));
    assert!(matches!(heartbeat(&mut c, ms(40), "nobody"), Grant::Refused(_)), "unknown nodes get nothing");
    c.step(ms(50), Input::Leadership { leading: false, term: 1 });
    assert!(matches!(heartbeat(&mut c, ms(60), "a"), Grant::Refused(_)), "a deposed leader grants nothing");
}

#[test]
fn a_lost_owners_group_moves_only_once_its_lease_has_certainly_ended() {
    let mut h = Harness::new();
    h.step(ms(0), Input::Leadership { leading: true, term: 1 });
    h.run(ms(0), ms(5_000), &["a", "b", "c"]);
    assert!(h.moved.is_empty(), "{:?}", h.moved);
    // b's last grant was at 5 s; then it falls silent.
    h.run(ms(5_050), ms(7_000), &["a", "c"]);
    let (at, to) = h.moved.first().cloned().expect("the group moved");
    let over = ms(5_000) + ms(800) + ms(8) + ms(50);
    assert!(at >= over, "moved at {at:?}, before b's lease certainly ended at {over:?}");
    assert!(at < over + ms(100), "moved late: {at:?}");
    assert!(to == "a" || to == "c");
    assert_eq!(h.moved.len(), 1);
    assert!(h.states.iter().any(|(_, s)| s == "node-state/b=Down"));
    // b speaks again: its lease carries the revision of the failover, which its view must reach.
    h.step(ms(7_050), Input::Confirmed { started: ms(7_050) });
    let grant = h.step(ms(7_050), Input::Heartbeat { token: 1, node: "b".into() });
    assert!(matches!(grant[..], [Grant::Lease { revision, .. }] if revision >= 11), "{grant:?}");
}

#[test]
fn a_node_whose_groups_are_being_failed_over_gets_no_lease_until_that_write_is_applied() {
    let mut c = loaded();
    leading(&mut c, ms(0), ms(0));
    // Nobody heard from: at 2 s the predecessor's leases are over and g leaves b.
    let mut writes = c.step(ms(2_000), Input::Confirmed { started: ms(2_000) }).writes;
    for n in ["a", "c"] {
        writes.extend(c.step(ms(2_000), Input::Heartbeat { token: 1, node: n.into() }).writes);
    }
    writes.extend(c.step(ms(2_000), Input::Tick).writes);
    let write = writes.iter().find(|(_, q)| q.ops.iter().any(|o| matches!(o, Op::Put { key, .. } if key == "owner/g")));
    let (id, _) = write.expect("the failover write");
    assert!(matches!(heartbeat(&mut c, ms(2_010), "b"), Grant::Refused(_)));
    c.step(ms(2_020), Input::Written { write: *id, applied: Some(42) });
    assert!(matches!(heartbeat(&mut c, ms(2_030), "b"), Grant::Lease { revision: 42, .. }));
}

#[test]
fn a_new_coordinator_waits_a_full_lease_before_it_replaces_anything() {
    let mut h = Harness::new();
    // Just elected at 10 s: b (the owner) is silent, but a predecessor may have granted it a
    // lease just before.
    h.step(ms(10_000), Input::Leadership { leading: true, term: 1 });
    h.run(ms(10_000), ms(12_000), &["a", "c"]);
    let (at, _) = h.moved.first().cloned().expect("the group moved");
    let inherited = ms(10_000) + ms(800) + ms(8) + ms(50) + CONFIRM_WINDOW;
    assert!(at >= inherited, "moved at {at:?}, before {inherited:?}");
}

#[test]
fn a_silent_node_is_recorded_down_and_a_node_heard_again_up() {
    let mut h = Harness::new();
    h.step(ms(0), Input::Leadership { leading: true, term: 1 });
    h.run(ms(0), ms(2_000), &["a", "b", "c"]);
    assert!(h.states.is_empty(), "{:?}", h.states);
    h.run(ms(2_050), ms(3_000), &["a", "b"]);
    assert_eq!(h.states.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(), ["node-state/c=Down"]);
    h.run(ms(3_050), ms(3_200), &["a", "b", "c"]);
    assert_eq!(h.states.last().map(|(_, s)| s.as_str()), Some("node-state/c=Up"));
}

#[test]
fn a_group_without_an_ownership_record_is_placed() {
    // A database from before clusters (or a group written by hand): no owner/<group>.
    let mut h = Harness::new();
    let group =
        GroupDoc { name: "old".into(), common: BTreeMap::from([("PreferredOwners".to_string(), "c".to_string())]) };
    let put = Op::Put { key: keys::group("old"), value: serde_json::to_vec(&group).unwrap() };
    h.step(ms(0), Input::Change { revision: 5, ops: vec![put] });
    h.step(ms(0), Input::Leadership { leading: true, term: 1 });
    h.run(ms(0), ms(1_500), &["a", "b", "c"]);
    // Placed once, on its preferred owner, after every node had a lease's time to be heard.
    assert_eq!(h.moved.len(), 1, "{:?}", h.moved);
    assert_eq!(h.moved[0].1, "c");
    assert!(h.moved[0].0 >= ms(800), "{:?}", h.moved);
}
