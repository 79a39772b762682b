//! The coordinator's decision core: plain data and pure functions, `step(now, input) -> Ready`.
//!
//! It decides three things, and only while this node leads the cluster:
//!
//! - **Leases.** Every node sends a heartbeat every `HeartbeatInterval`; the answer grants it an
//!   ownership lease of `HeartbeatInterval × HeartbeatThreshold`, counted by the node from the
//!   moment it *sent* the heartbeat. A grant is given only within [`CONFIRM_WINDOW`] of a
//!   confirmation that this node still leads (a quorum answered it), so a deposed leader cut off
//!   from the majority stops granting at once.
//! - **Node states.** A node not heard from for the lease's length is Down; heard from again, it
//!   is Up. Changes are written to `node-state/<name>` (so every node's view has them).
//! - **Failover of lost nodes.** A group whose owner is Down (or evicted) is given to the node
//!   placement picks — but only once the owner's lease has **certainly** ended: after the last
//!   grant plus the lease, stretched by [`CLOCK_DRIFT`], plus [`SLACK`]. A coordinator new to
//!   leadership does not know what its predecessor granted, so it first waits one full lease
//!   (plus the confirmation window) from the moment it began to lead.
//!
//! Safety argument, in short: a node runs a group only while its ownership record names it and
//! it holds a lease (the engine and, at the lease's end, its hosts enforce both). The record is
//! given to another node only by (a) the owner itself, after taking the group down (a move), or
//! (b) this coordinator, after the owner's lease has ended by the owner's own clock (which ran
//! from a heartbeat sent before the grant, and drifts by at most [`CLOCK_DRIFT`]). A deposed
//! coordinator's last grant was made within [`CONFIRM_WINDOW`] of a quorum answering it, which
//! is before the next leader was elected; the next leader waits a lease plus that window. So
//! no two nodes hold a lease *and* the record of one group at the same instant.

use halo_cluster::{Compare, NodeRecord, Op, Record, Request};
use halo_engine::model::{self, ClusterProperties, GroupDoc, NodeStateDoc, OwnerDoc, ResourceDoc, keys};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Monotonic time since an origin the driver chooses.
pub type Time = Duration;

/// How recent a confirmation of leadership must be for a grant.
pub const CONFIRM_WINDOW: Duration = Duration::from_millis(300);

/// The most two nodes' clocks may run apart in rate (1%: crystal oscillators are within 0.01%).
pub const CLOCK_DRIFT: u32 = 100;

/// Added to every "certainly expired": scheduling delay of the engine that must stop its groups.
pub const SLACK: Duration = Duration::from_millis(50);

/// A heartbeat's answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Grant {
    /// The node holds its lease for this long from when it sent the heartbeat.
    Lease {
        /// The lease, ms.
        lease_ms: u64,
        /// How often to send heartbeats, ms.
        interval_ms: u64,
        /// The revision the node's view must reach before the lease counts (every ownership
        /// change the coordinator had made by then).
        revision: u64,
    },
    /// No lease: why.
    Refused(String),
}

/// What the coordinator is told.
#[derive(Debug, Clone)]
pub enum Input {
    /// The whole database at `revision` (at start, and after the feed was lost).
    Loaded { revision: u64, records: BTreeMap<String, Record> },
    /// One applied log entry.
    Change { revision: u64, ops: Vec<Op> },
    /// This node began (`true`) or stopped leading, in Raft term `term`. Leading again in
    /// another term is a new leadership (a deposed leader may be re-elected before it noticed
    /// it had lost the office): what it knew of leases is forgotten and it waits a full lease
    /// again.
    Leadership { leading: bool, term: u64 },
    /// A quorum confirmed this node's leadership, in a round that began at `started`.
    Confirmed { started: Time },
    /// A node's heartbeat; the answer goes back with `token`.
    Heartbeat { token: u64, node: String },
    /// The outcome of a write: the revision it was applied at, if it was.
    Written { write: u64, applied: Option<u64> },
    /// Time passed.
    Tick,
}

/// What one step decided.
#[derive(Debug, Default)]
pub struct Ready {
    /// Transactions to write (answer: [`Input::Written`]).
    pub writes: Vec<(u64, Request)>,
    /// Heartbeat answers.
    pub grants: Vec<(u64, Grant)>,
    /// When to step again at the latest.
    pub wake: Option<Time>,
    /// What happened, for the log: failovers and node state changes.
    pub notes: Vec<String>,
}

/// A write this coordinator made, until its change is in the view.
#[derive(Debug, Clone)]
struct Inflight {
    /// The key it writes.
    key: String,
    /// For a failover: the node it takes the group from.
    from: Option<String>,
    /// The revision it was applied at, once known.
    applied: Option<u64>,
}

#[derive(Debug, Default, Clone)]
struct NodeEntry {
    record: Option<NodeRecord>,
    state: Option<(u64, NodeStateDoc)>,
    last_heard: Option<Time>,
    last_grant: Option<Time>,
}

/// The coordinator of one node (active only while the node leads).
#[derive(Debug, Default)]
pub struct Coordinator {
    props: ClusterProperties,
    nodes: BTreeMap<String, NodeEntry>,
    groups: BTreeMap<String, GroupDoc>,
    /// Resource → (its group, its PossibleOwners).
    resources: BTreeMap<String, (String, Vec<String>)>,
    owners: BTreeMap<String, (u64, OwnerDoc)>,
    leading_since: Option<Time>,
    /// The Raft term of the current leadership.
    term: u64,
    /// The wall clock (Unix seconds), for FailoverPeriod.
    wall_clock: u64,
    /// Groups whose failover FailoverThreshold refused (said once).
    refused: BTreeSet<String>,
    confirmed: Option<Time>,
    /// Writes in flight, until the feed shows them (or they fail).
    inflight: BTreeMap<u64, Inflight>,
    /// The latest revision this coordinator knows of (its feed, or its own applied writes).
    revision: u64,
    /// The revision its view (the feed) has reached.
    view_revision: u64,
    next_write: u64,
}

impl Coordinator {
    /// A coordinator that knows nothing yet and does not lead.
    pub fn new() -> Coordinator {
        Coordinator { next_write: 1, ..Coordinator::default() }
    }

    /// Tells the core the wall clock (Unix seconds); the driver does before each step.
    pub fn set_wall_clock(&mut self, unix_s: u64) {
        self.wall_clock = unix_s;
    }

    /// The lease a grant gives.
    fn lease(&self) -> Duration {
        self.props.lease()
    }

    /// When a lease granted at `granted` has certainly ended, on any clock.
    fn certainly_over(&self, granted: Time) -> Time {
        let lease = self.lease();
        granted + lease + lease / CLOCK_DRIFT + SLACK
    }

    /// Takes one input at `now`.
    pub fn step(&mut self, now: Time, input: Input) -> Ready {
        let mut ready = Ready::default();
        match input {
            Input::Loaded { revision, records } => {
                *self = Coordinator {
                    revision: self.revision.max(revision),
                    view_revision: revision,
                    leading_since: self.leading_since,
                    term: self.term,
                    wall_clock: self.wall_clock,
                    confirmed: self.confirmed,
                    next_write: self.next_write,
                    nodes: self
                        .nodes
                        .iter()
                        .map(|(n, e)| {
                            (
                                n.clone(),
                                NodeEntry { last_heard: e.last_heard, last_grant: e.last_grant, ..Default::default() },
                            )
                        })
                        .collect(),
                    ..Coordinator::default()
                };
                for (key, record) in records {
                    self.put(&key, record.revision, &record.value);
                }
            }
            Input::Change { revision, ops } => {
                self.revision = self.revision.max(revision);
                self.view_revision = self.view_revision.max(revision);
                // A write of its own stays in flight until the view holds it, so that it is not
                // made twice from a view that does not show it yet.
                self.inflight.retain(|_, w| w.applied.is_none_or(|a| a > revision));
                for op in ops {
                    match op {
                        Op::Put { key, value } => self.put(&key, revision, &value),
                        Op::Delete { key } => self.delete(&key),
                    }
                }
            }
            Input::Leadership { leading, term } => {
                if leading && (self.leading_since.is_none() || term != self.term) {
                    self.term = term;
                    self.leading_since = Some(now);
                    self.confirmed = None;
                    // What this node heard while not leading says nothing of the leases the
                    // previous coordinator granted.
                    for e in self.nodes.values_mut() {
                        e.last_heard = None;
                        e.last_grant = None;
                    }
                } else if !leading {
                    self.leading_since = None;
                    self.confirmed = None;
                }
            }
            Input::Confirmed { started } => {
                if self.leading_since.is_some_and(|since| started >= since) {
                    self.confirmed = Some(self.confirmed.map_or(started, |c| c.max(started)));
                }
            }
            Input::Heartbeat { token, node } => {
                let grant = self.heartbeat(now, &node);
                ready.grants.push((token, grant));
            }
            Input::Written { write, applied } => match applied {
                // Applied: it ends when the feed brings it.
                Some(r) if r > self.view_revision => {
                    if let Some(w) = self.inflight.get_mut(&write) {
                        w.applied = Some(r);
                    }
                    self.revision = self.revision.max(r);
                }
                // Refused, failed, or already in the view: the key may be written again.
                _ => {
                    self.inflight.remove(&write);
                }
            },
            Input::Tick => {}
        }
        if self.leading_since.is_some() {
            // Decisions need the same fresh confirmation as grants: a leader deposed without
            // knowing it stops deciding within the window.
            if self.confirmed_at(now) {
                self.node_states(now, &mut ready);
                self.fail_over(now, &mut ready);
            }
            ready.wake = self.next_wake(now);
        }
        ready
    }

    /// Whether a quorum confirmed this node's leadership (in its current term) within
    /// [`CONFIRM_WINDOW`] of `now`.
    fn confirmed_at(&self, now: Time) -> bool {
        match (self.leading_since, self.confirmed) {
            (Some(since), Some(c)) => c >= since && now.saturating_sub(c) <= CONFIRM_WINDOW,
            _ => false,
        }
    }

    fn heartbeat(&mut self, now: Time, node: &str) -> Grant {
        if self.leading_since.is_none() {
            return Grant::Refused("this node does not lead the cluster".into());
        }
        let Some(entry) = self.nodes.get_mut(node).filter(|e| e.record.is_some()) else {
            return Grant::Refused(format!("node {node} is not in the cluster"));
        };
        entry.last_heard = Some(now);
        if !self.confirmed_at(now) {
            return Grant::Refused("leadership not confirmed by a quorum yet".into());
        }
        // A node whose groups are being given away gets no lease until that write is applied
        // (and its revision is in the grant).
        if self.inflight.values().any(|w| w.applied.is_none() && w.from.as_deref() == Some(node)) {
            return Grant::Refused(format!("groups of {node} are being failed over"));
        }
        let Some(entry) = self.nodes.get_mut(node) else {
            return Grant::Refused(format!("node {node} is not in the cluster"));
        };
        entry.last_grant = Some(now);
        Grant::Lease {
            lease_ms: u64::try_from(self.lease().as_millis()).unwrap_or(u64::MAX),
            interval_ms: u64::from(self.props.heartbeat_interval),
            revision: self.revision,
        }
    }

    /// Whether `node` counts as alive at `now` (heard from within the lease; a coordinator new
    /// to leadership gives every node one lease to be heard).
    fn alive(&self, now: Time, entry: &NodeEntry) -> bool {
        let window = self.lease();
        match entry.last_heard {
            Some(t) => now.saturating_sub(t) <= window,
            None => self.leading_since.is_some_and(|s| now.saturating_sub(s) <= window),
        }
    }

    fn node_states(&mut self, now: Time, ready: &mut Ready) {
        let mut writes = Vec::new();
        for (name, entry) in &self.nodes {
            if entry.record.is_none() {
                continue;
            }
            let key = keys::node_state(name);
            if self.inflight.values().any(|w| w.key == key) {
                continue;
            }
            // A node never heard from and with nothing recorded is still joining.
            if entry.state.is_none() && entry.last_heard.is_none() {
                continue;
            }
            let alive = self.alive(now, entry);
            let (revision, state) = entry.state.clone().map_or((None, NodeStateDoc::default()), |(r, s)| (Some(r), s));
            if entry.state.is_some() && state.up == alive {
                continue;
            }
            // Without a heard heartbeat, a new coordinator records nothing yet.
            if entry.last_heard.is_none() && alive {
                continue;
            }
            let next = NodeStateDoc { up: alive, ..state };
            ready.notes.push(format!("node {name} is {}", if alive { "Up" } else { "Down" }));
            writes.push((key, revision, next));
        }
        for (key, revision, doc) in writes {
            if let Ok(value) = serde_json::to_vec(&doc) {
                self.write(
                    key.clone(),
                    None,
                    Request {
                        compare: vec![Compare { key: key.clone(), revision }],
                        ops: vec![Op::Put { key, value }],
                    },
                    ready,
                );
            }
        }
    }

    /// When the owner of a group is lost, the group goes elsewhere once its lease is over.
    fn fail_over(&mut self, now: Time, ready: &mut Ready) {
        let Some(since) = self.leading_since else { return };
        // Every step (each heartbeat) comes here: in the common case, every owner alive, leave
        // before sorting and copying anything.
        let owner_alive = |g: &String| {
            self.owners
                .get(g)
                .and_then(|(_, o)| self.nodes.get(&o.node))
                .is_some_and(|e| e.record.is_some() && self.alive(now, e))
        };
        if self.groups.keys().all(owner_alive) {
            return;
        }
        // What a predecessor may have granted is over by then.
        let inherited_over = self.certainly_over(since) + CONFIRM_WINDOW;
        let mut order: Vec<(u32, String)> = self
            .groups
            .iter()
            .map(|(name, g)| (g.common.get("Priority").and_then(|p| p.parse().ok()).unwrap_or(2000u32), name.clone()))
            .collect();
        // Higher priority first.
        order.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let mut placed: Vec<(String, String, Vec<String>)> = self.placed();
        for (_, group) in order {
            let key = keys::owner(&group);
            if self.inflight.values().any(|w| w.key == key) {
                continue;
            }
            let owner = self.owners.get(&group).cloned();
            let lost = match &owner {
                // A group without a record (written by hand, or by an older halo) is placed, once
                // every live node has had a lease's time to be heard (so that its preferred
                // owners count).
                None => (now >= since + self.lease()).then_some(None),
                Some((revision, o)) => {
                    let entry = self.nodes.get(&o.node);
                    let registered = entry.is_some_and(|e| e.record.is_some());
                    let alive = entry.is_some_and(|e| self.alive(now, e));
                    if registered && alive {
                        None
                    } else {
                        // Down or evicted: its lease is over once the last one this coordinator
                        // granted is, and whatever a predecessor granted too.
                        let over = entry
                            .and_then(|e| e.last_grant)
                            .map_or(inherited_over, |g| self.certainly_over(g).max(inherited_over));
                        (now >= over).then_some(Some(*revision))
                    }
                }
            };
            let Some(revision) = lost else { continue };
            let Some(doc) = self.groups.get(&group).cloned() else { continue };
            let from = owner.as_ref().map(|(_, o)| o.node.clone()).unwrap_or_default();
            let possible = self.possible_owners(&group);
            let nodes = self.node_states_for_placement(now);
            let mine: Vec<(String, String, Vec<String>)> =
                placed.iter().filter(|(g, _, _)| *g != group).cloned().collect();
            let Some(to) = halo_engine::placement::choose(&doc, possible.as_ref(), &nodes, &mine, &[from.as_str()])
            else {
                continue;
            };
            let earlier = owner.as_ref().map(|(_, o)| o.failovers.clone()).unwrap_or_default();
            let registered = self.nodes.values().filter(|e| e.record.is_some()).count();
            let (allowed, failovers) = model::failover_allowed(&doc, &earlier, self.wall_clock, registered);
            if owner.is_some() && !allowed {
                if self.refused.insert(group.clone()) {
                    ready.notes.push(format!(
                        "group {group}: node {from} is lost, but the group has failed over FailoverThreshold times within FailoverPeriod; it stays failed"
                    ));
                }
                continue;
            }
            ready.notes.push(format!("group {group}: node {from} is lost, failing over to {to}"));
            // The lost node stepped its groups down for lost connectivity (or died): the next node
            // brings them online with the matching flag.
            let next = OwnerDoc {
                failovers: if owner.is_some() { failovers } else { Vec::new() },
                online_flags: if owner.is_some() { resapi::OnlineFlags::IGNORE_NETWORK_CONNECTIVITY.bits() } else { 0 },
                ..OwnerDoc::on(&to)
            };
            if let Ok(value) = serde_json::to_vec(&next) {
                self.write(
                    key.clone(),
                    Some(from.clone()),
                    Request {
                        compare: vec![Compare { key: key.clone(), revision }],
                        ops: vec![Op::Put { key, value }],
                    },
                    ready,
                );
            }
            let classes = model::names_in(doc.common.get("AntiAffinityClassNames"));
            placed.retain(|(g, _, _)| *g != group);
            placed.push((group.clone(), to, classes));
        }
    }

    fn placed(&self) -> Vec<(String, String, Vec<String>)> {
        self.owners
            .iter()
            .map(|(g, (_, o))| {
                let classes = self
                    .groups
                    .get(g)
                    .map(|d| model::names_in(d.common.get("AntiAffinityClassNames")))
                    .unwrap_or_default();
                (g.clone(), o.moving.as_ref().map_or(o.node.clone(), |m| m.to.clone()), classes)
            })
            .collect()
    }

    /// Node states as placement needs them: alive by this coordinator's reckoning, paused as
    /// recorded.
    fn node_states_for_placement(&self, now: Time) -> BTreeMap<String, NodeStateDoc> {
        self.nodes
            .iter()
            .filter(|(_, e)| e.record.is_some())
            .map(|(n, e)| {
                let paused = e.state.as_ref().is_some_and(|(_, s)| s.paused);
                (
                    n.clone(),
                    NodeStateDoc { up: e.last_heard.is_some() && self.alive(now, e), paused, ..Default::default() },
                )
            })
            .collect()
    }

    fn possible_owners(&self, group: &str) -> Option<BTreeSet<String>> {
        let mut possible: Option<BTreeSet<String>> = None;
        for (g, names) in self.resources.values() {
            if g != group || names.is_empty() {
                continue;
            }
            let names: BTreeSet<String> = names.iter().cloned().collect();
            possible = Some(match possible {
                Some(p) => p.intersection(&names).cloned().collect(),
                None => names,
            });
        }
        possible
    }

    fn next_wake(&self, now: Time) -> Option<Time> {
        // Node states and failovers change only with time passing a threshold; looking again
        // every half interval keeps detection within that of its bound.
        Some(now + Duration::from_millis(u64::from(self.props.heartbeat_interval) / 2).max(Duration::from_millis(10)))
    }

    fn write(&mut self, key: String, from: Option<String>, request: Request, ready: &mut Ready) {
        let id = self.next_write;
        self.next_write += 1;
        self.inflight.insert(id, Inflight { key, from, applied: None });
        ready.writes.push((id, request));
    }

    fn put(&mut self, key: &str, revision: u64, value: &[u8]) {
        if key == keys::CLUSTER_PROPERTIES {
            if let Ok(p) = serde_json::from_slice::<ClusterProperties>(value)
                && p.check().is_ok()
            {
                self.props = p;
            }
            return;
        }
        let Some((kind, name)) = key.split_once('/') else { return };
        match kind {
            "node" => {
                if let Ok(r) = serde_json::from_slice::<NodeRecord>(value) {
                    self.nodes.entry(name.to_string()).or_default().record = Some(r);
                }
            }
            "node-state" => {
                if let Ok(s) = serde_json::from_slice::<NodeStateDoc>(value) {
                    self.nodes.entry(name.to_string()).or_default().state = Some((revision, s));
                }
            }
            "group" => {
                if let Ok(g) = serde_json::from_slice::<GroupDoc>(value) {
                    self.groups.insert(name.to_string(), g);
                }
            }
            "resource" => {
                if let Ok(r) = serde_json::from_slice::<ResourceDoc>(value) {
                    let possible = model::names_in(r.common.get("PossibleOwners"));
                    self.resources.insert(name.to_string(), (r.group, possible));
                }
            }
            "owner" => {
                if let Ok(o) = serde_json::from_slice::<OwnerDoc>(value) {
                    self.owners.insert(name.to_string(), (revision, o));
                }
            }
            _ => {}
        }
    }

    fn delete(&mut self, key: &str) {
        if key == keys::CLUSTER_PROPERTIES {
            self.props = ClusterProperties::default();
            return;
        }
        let Some((kind, name)) = key.split_once('/') else { return };
        match kind {
            "node" => {
                if let Some(e) = self.nodes.get_mut(name) {
                    e.record = None;
                }
            }
            "node-state" => {
                if let Some(e) = self.nodes.get_mut(name) {
                    e.state = None;
                }
            }
            "group" => {
                self.groups.remove(name);
            }
            "resource" => {
                self.resources.remove(name);
            }
            "owner" => {
                self.owners.remove(name);
            }
            _ => {}
        }
    }
}
