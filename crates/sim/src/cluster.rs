//! The cluster simulation: three nodes, each running the engine's real decision core and the
//! coordinator's real decision core, over a modelled database (one log, consensus abstracted to
//! "a write commits when its writer reaches a leader that reaches a majority"), a modelled
//! network ([`crate::net`]: delays, loss, partitions, one-way cuts), modelled hosts that run
//! resources and enforce the lease deadline on their own, and the heartbeat agent's rules.
//! Faults: node crashes and restarts, freezes (SIGSTOP) past the lease, minority and majority
//! partitions, one-way cuts, message loss, and the leader (the coordinator) crashing in the
//! middle of a move.
//!
//! The checker asserts, as the run goes: a group never runs on two nodes at an overlapping
//! instant (a resource counts as running from the moment its online is called until its offline
//! or terminate has finished, its host enforced the lease, or its node crashed); epochs seen by
//! onlines never go backwards. At the end, after every fault has healed: every group is Online on
//! its owner, and on no other node, within the settle bound.

use crate::Violation;
use crate::net::Net;
use crate::rng::SimRng;
use halo_cluster::{Change, Request, Response};
use halo_coordinator::core::{Coordinator, Grant, Input as CoordInput};
use halo_engine::core::{Call, Command, Core, Input, Target};
use halo_engine::model::EngineError;
use halo_host::client::HostEvent;
use halo_host::protocol::{Cause, FromHost, ResourceId};
use resapi::{GroupMoveFlags, ResourceState, Status};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

const NODES: [&str; 3] = ["n1", "n2", "n3"];
const GROUPS: usize = 3;
const RESOURCES_PER_GROUP: usize = 2;
/// The engine stops its groups this long before the lease ends (as the real driver).
const STOP_MARGIN: Duration = halo_engine::driver::DEFAULT_STOP_MARGIN;
const HEARTBEAT: Duration = Duration::from_millis(200);
const CONFIRM_EVERY: Duration = Duration::from_millis(100);
const RAFT_CHECK: Duration = Duration::from_millis(50);
/// How long after the faults heal every group must be back.
pub const SETTLE: Duration = Duration::from_secs(15);

/// How a cluster run is sized.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// How long faults go on.
    pub chaos: Duration,
    /// Faults injected during it (about).
    pub faults: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig { chaos: Duration::from_secs(20), faults: 12 }
    }
}

/// What a cluster run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterSummary {
    /// The seed.
    pub seed: u64,
    /// Faults injected.
    pub faults: u64,
    /// Moves asked for.
    pub moves: u64,
    /// Ownership changes seen (moves, failovers, returns).
    pub owner_changes: u64,
    /// Leader elections.
    pub elections: u64,
    /// Onlines of resources.
    pub onlines: u64,
    /// Events processed.
    pub events: u64,
}

#[derive(Debug, Clone)]
enum Fault {
    Crash(usize),
    Restart(usize),
    Freeze(usize),
    Thaw(usize),
    Isolate(usize),
    CutOneWay(usize, usize),
    Heal,
    Lossy(bool),
    Move(usize),
    /// Crash whichever node leads now (restarted later): the coordinator lost mid-move.
    CrashLeader(Duration),
}

#[derive(Debug)]
enum Ev {
    Engine { node: usize, inc: u64, input: Input },
    Coord { node: usize, inc: u64, input: CoordInput },
    Commit { node: usize, inc: u64, engine: bool, write: u64, request: Request },
    HostDone { node: usize, inc: u64, id: ResourceId, op: u64, online: bool },
    HostDeadline { node: usize, inc: u64 },
    Heartbeat { node: usize, inc: u64 },
    HbArrive { from: usize, inc: u64, to: usize, sent: Duration },
    Granted { node: usize, inc: u64, sent: Duration, grant: Grant },
    Confirm,
    RaftCheck,
    Feed { node: usize },
    EngineTick { node: usize, inc: u64, generation: u64 },
    CoordTick { node: usize, inc: u64, generation: u64 },
    Fault(Fault),
    Setup(usize),
    Final,
}

#[derive(Debug, Default)]
struct HostRes {
    group: String,
    running: bool,
    op: u64,
}

struct Node {
    name: String,
    alive: bool,
    frozen: bool,
    inc: u64,
    core: Core,
    coord: Coordinator,
    thinks_leading: bool,
    feed_pos: u64,
    lease: Option<(Duration, u64)>,
    engine_gen: u64,
    coord_gen: u64,
    inbox: Vec<Ev>,
    host: BTreeMap<ResourceId, HostRes>,
}

struct Sim {
    seed: u64,
    now: Duration,
    seq: u64,
    queue: BTreeMap<(Duration, u64), Ev>,
    rng: SimRng,
    net: Net,
    log: Vec<Change>,
    db: crate::db::Db,
    nodes: Vec<Node>,
    leader: Option<usize>,
    election_at: Option<Duration>,
    running: BTreeMap<String, BTreeMap<usize, usize>>,
    max_epoch: BTreeMap<String, u64>,
    summary: ClusterSummary,
    recent: VecDeque<String>,
}

fn node_core(name: &str) -> (Core, Coordinator) {
    (Core::new(name), Coordinator::new())
}

/// Runs the cluster schedule of `seed`.
pub fn run_cluster(seed: u64, config: &ClusterConfig) -> Result<ClusterSummary, Violation> {
    let db = crate::db::Db::with_builtin_types().map_err(|e| Violation {
        seed,
        at: Duration::ZERO,
        what: format!("setting up the database model: {e}"),
        recent: Vec::new(),
        cluster: true,
    })?;
    let nodes = NODES
        .iter()
        .map(|n| {
            let (core, coord) = node_core(n);
            Node {
                name: n.to_string(),
                alive: true,
                frozen: false,
                inc: 0,
                core,
                coord,
                thinks_leading: false,
                feed_pos: 0,
                lease: None,
                engine_gen: 0,
                coord_gen: 0,
                inbox: Vec::new(),
                host: BTreeMap::new(),
            }
        })
        .collect();
    let mut sim = Sim {
        seed,
        now: Duration::ZERO,
        seq: 0,
        queue: BTreeMap::new(),
        rng: SimRng::new(seed, 11),
        net: Net::new(SimRng::new(seed, 12), 1, 8),
        log: db.log().to_vec(),
        db,
        nodes,
        leader: None,
        election_at: None,
        running: BTreeMap::new(),
        max_epoch: BTreeMap::new(),
        summary: ClusterSummary { seed, ..ClusterSummary::default() },
        recent: VecDeque::new(),
    };
    sim.boot_all();
    sim.schedule_faults(config);
    sim.run()
}

impl Sim {
    fn at(&mut self, when: Duration, ev: Ev) {
        self.seq += 1;
        self.queue.insert((when.max(self.now), self.seq), ev);
    }

    fn note(&mut self, line: String) {
        if self.recent.len() == 60 {
            self.recent.pop_front();
        }
        self.recent.push_back(format!("{:>9.3}s {line}", self.now.as_secs_f64()));
    }

    fn violation(&self, what: String) -> Violation {
        Violation { seed: self.seed, at: self.now, what, recent: self.recent.iter().cloned().collect(), cluster: true }
    }

    fn boot_all(&mut self) {
        let (revision, records) = self.db.snapshot();
        for i in 0..self.nodes.len() {
            let n = &mut self.nodes[i];
            n.feed_pos = revision;
            let _ = n.core.step(Duration::ZERO, Input::Loaded { revision, records: records.clone() });
            let _ = n.coord.step(Duration::ZERO, CoordInput::Loaded { revision, records: records.clone() });
            self.at(Duration::from_millis(10 * i as u64), Ev::Heartbeat { node: i, inc: 0 });
        }
        // Registry and states, as joins would write them.
        let mut ops = Vec::new();
        for (i, n) in NODES.iter().enumerate() {
            let rec = halo_cluster::NodeRecord {
                id: i as u64 + 1,
                name: n.to_string(),
                peer_addr: String::new(),
                api_addr: String::new(),
            };
            ops.push(halo_cluster::Op::Put {
                key: halo_engine::model::keys::node(n),
                value: serde_json::to_vec(&rec).unwrap_or_default(),
            });
        }
        self.commit_now(Request { compare: vec![], ops });
        self.leader = Some(0);
        self.summary.elections += 1;
        self.at(
            Duration::ZERO,
            Ev::Coord {
                node: 0,
                inc: 0,
                input: CoordInput::Leadership { leading: true, term: self.summary.elections },
            },
        );
        self.nodes[0].thinks_leading = true;
        self.at(Duration::ZERO, Ev::Confirm);
        self.at(Duration::ZERO, Ev::RaftCheck);
        for step in 0..3 {
            self.at(Duration::from_millis(500 + 300 * step as u64), Ev::Setup(step));
        }
    }

    fn schedule_faults(&mut self, config: &ClusterConfig) {
        let start = Duration::from_secs(3);
        let span = config.chaos.saturating_sub(start).as_millis().max(1) as u64;
        for _ in 0..config.faults {
            let t = start + Duration::from_millis(self.rng.between(0, span));
            let node = self.rng.index(NODES.len());
            let length = self.rng.ms(300, 3_000);
            match self.rng.weighted(&[3, 3, 3, 1, 1, 4, 2]) {
                0 => {
                    self.at(t, Ev::Fault(Fault::Crash(node)));
                    self.at(t + length, Ev::Fault(Fault::Restart(node)));
                }
                1 => {
                    self.at(t, Ev::Fault(Fault::Freeze(node)));
                    self.at(t + length, Ev::Fault(Fault::Thaw(node)));
                }
                2 => {
                    self.at(t, Ev::Fault(Fault::Isolate(node)));
                    self.at(t + length, Ev::Fault(Fault::Heal));
                }
                3 => {
                    let other = (node + 1 + self.rng.index(NODES.len() - 1)) % NODES.len();
                    self.at(t, Ev::Fault(Fault::CutOneWay(node, other)));
                    self.at(t + length, Ev::Fault(Fault::Heal));
                }
                4 => {
                    self.at(t, Ev::Fault(Fault::Lossy(true)));
                    self.at(t + length, Ev::Fault(Fault::Lossy(false)));
                }
                5 => {
                    let g = self.rng.index(GROUPS);
                    self.at(t, Ev::Fault(Fault::Move(g)));
                }
                _ => {
                    // A move, and the coordinator lost while it is under way.
                    let g = self.rng.index(GROUPS);
                    self.at(t, Ev::Fault(Fault::Move(g)));
                    let after = self.rng.ms(1, 60);
                    self.at(t + after, Ev::Fault(Fault::CrashLeader(length)));
                }
            }
        }
        // Everything heals at the end of the chaos; then the settle bound runs.
        self.at(config.chaos, Ev::Fault(Fault::Heal));
        self.at(config.chaos, Ev::Fault(Fault::Lossy(false)));
        for i in 0..NODES.len() {
            self.at(config.chaos, Ev::Fault(Fault::Thaw(i)));
            self.at(config.chaos, Ev::Fault(Fault::Restart(i)));
        }
        self.at(config.chaos + SETTLE, Ev::Final);
    }

    fn run(mut self) -> Result<ClusterSummary, Violation> {
        while let Some(((t, _), ev)) = self.queue.pop_first() {
            self.now = t;
            self.summary.events += 1;
            if self.summary.events > 2_000_000 {
                return Err(self.violation("the run does not settle (over 2,000,000 events)".into()));
            }
            if let Ev::Final = ev {
                self.final_check()?;
                return Ok(self.summary);
            }
            self.handle(ev)?;
        }
        Err(self.violation("the queue ran dry before the final check".into()))
    }

    /// A node that can take this event now (alive, same incarnation); a frozen one keeps it.
    fn deliverable(&mut self, node: usize, inc: u64, ev: Ev) -> Option<Ev> {
        let n = &mut self.nodes[node];
        if !n.alive || n.inc != inc {
            return None;
        }
        if n.frozen {
            n.inbox.push(ev);
            return None;
        }
        Some(ev)
    }

    fn handle(&mut self, ev: Ev) -> Result<(), Violation> {
        match ev {
            Ev::Engine { node, inc, .. }
            | Ev::Coord { node, inc, .. }
            | Ev::EngineTick { node, inc, .. }
            | Ev::CoordTick { node, inc, .. }
            | Ev::Granted { node, inc, .. } => {
                let Some(ev) = self.deliverable(node, inc, ev) else { return Ok(()) };
                match ev {
                    Ev::Engine { node, input, .. } => self.step_engine(node, input)?,
                    Ev::Coord { node, input, .. } => self.step_coord(node, input),
                    Ev::EngineTick { node, generation, .. } if generation == self.nodes[node].engine_gen => {
                        self.step_engine(node, Input::Tick)?
                    }
                    Ev::CoordTick { node, generation, .. } if generation == self.nodes[node].coord_gen => {
                        self.step_coord(node, CoordInput::Tick)
                    }
                    Ev::Granted { node, sent, grant, .. } => self.granted(node, sent, grant)?,
                    _ => {}
                }
            }
            Ev::Commit { node, inc, engine, write, request } => self.commit(node, inc, engine, write, request)?,
            Ev::HostDone { node, inc, id, op, online } => self.host_done(node, inc, id, op, online)?,
            Ev::HostDeadline { node, inc } => self.host_deadline(node, inc)?,
            Ev::Heartbeat { node, inc } => self.heartbeat(node, inc),
            Ev::HbArrive { from, inc, to, sent } => self.hb_arrive(from, inc, to, sent),
            Ev::Confirm => {
                if let Some(l) = self.leader.filter(|l| self.valid_leader(*l)) {
                    let inc = self.nodes[l].inc;
                    self.at(self.now, Ev::Coord { node: l, inc, input: CoordInput::Confirmed { started: self.now } });
                }
                self.at(self.now + CONFIRM_EVERY, Ev::Confirm);
            }
            Ev::RaftCheck => self.raft_check(),
            Ev::Feed { node } => self.feed(node)?,
            Ev::Fault(f) => self.fault(f)?,
            Ev::Setup(step) => self.setup(step)?,
            Ev::Final => {}
        }
        Ok(())
    }

    fn has_quorum(&self, i: usize) -> bool {
        let n = &self.nodes[i];
        if !n.alive || n.frozen {
            return false;
        }
        let reach = (0..self.nodes.len())
            .filter(|j| {
                let m = &self.nodes[*j];
                m.alive && !m.frozen && self.net.connected(&n.name, &m.name) && self.net.connected(&m.name, &n.name)
            })
            .count();
        reach * 2 > self.nodes.len()
    }

    fn valid_leader(&self, l: usize) -> bool {
        self.has_quorum(l)
    }

    fn raft_check(&mut self) {
        if let Some(l) = self.leader
            && !self.valid_leader(l)
        {
            self.note(format!("leader {} lost", self.nodes[l].name));
            self.leader = None;
            self.election_at = Some(self.now + self.rng.ms(150, 300));
        }
        if self.leader.is_none() && self.election_at.is_none() {
            self.election_at = Some(self.now + self.rng.ms(150, 300));
        }
        if self.leader.is_none() && self.election_at.is_some_and(|t| t <= self.now) {
            // The most up-to-date node that reaches a majority wins.
            let best = (0..self.nodes.len())
                .filter(|i| self.has_quorum(*i))
                .max_by_key(|i| (self.nodes[*i].feed_pos, usize::MAX - i));
            if let Some(l) = best {
                self.leader = Some(l);
                self.election_at = None;
                self.summary.elections += 1;
                self.note(format!("{} elected", self.nodes[l].name));
                self.nodes[l].thinks_leading = true;
                let inc = self.nodes[l].inc;
                self.at(
                    self.now,
                    Ev::Coord {
                        node: l,
                        inc,
                        input: CoordInput::Leadership { leading: true, term: self.summary.elections },
                    },
                );
            } else {
                self.election_at = Some(self.now + self.rng.ms(150, 300));
            }
        }
        // A deposed leader learns of it once it reaches the others again.
        for i in 0..self.nodes.len() {
            if self.nodes[i].thinks_leading && Some(i) != self.leader && self.has_quorum(i) {
                self.nodes[i].thinks_leading = false;
                let inc = self.nodes[i].inc;
                self.at(
                    self.now,
                    Ev::Coord {
                        node: i,
                        inc,
                        input: CoordInput::Leadership { leading: false, term: self.summary.elections },
                    },
                );
            }
            if self.nodes[i].feed_pos < self.db.revision() {
                self.at(self.now, Ev::Feed { node: i });
            }
        }
        self.at(self.now + RAFT_CHECK, Ev::RaftCheck);
    }

    /// Whether `i` reaches the leader both ways (or is it).
    fn reaches_leader(&self, i: usize) -> bool {
        match self.leader {
            Some(l) if self.valid_leader(l) => {
                l == i
                    || (self.net.connected(&self.nodes[i].name, &self.nodes[l].name)
                        && self.net.connected(&self.nodes[l].name, &self.nodes[i].name))
            }
            _ => false,
        }
    }

    fn feed(&mut self, i: usize) -> Result<(), Violation> {
        if !self.nodes[i].alive || self.nodes[i].frozen || !self.reaches_leader(i) {
            return Ok(());
        }
        while self.nodes[i].feed_pos < self.db.revision() {
            let pos = self.nodes[i].feed_pos;
            let Some(change) = self.log.iter().find(|c| c.revision > pos).cloned() else { break };
            self.nodes[i].feed_pos = change.revision;
            self.step_coord(i, CoordInput::Change { revision: change.revision, ops: change.ops.clone() });
            self.step_engine(i, Input::Change { revision: change.revision, ops: change.ops })?;
        }
        Ok(())
    }

    fn commit_now(&mut self, request: Request) -> Response {
        let (response, change) = self.db.apply(&request);
        self.log.push(change);
        for i in 0..self.nodes.len() {
            let d = self.rng.ms(1, 10);
            self.at(self.now + d, Ev::Feed { node: i });
        }
        response
    }

    fn commit(&mut self, node: usize, inc: u64, engine: bool, write: u64, request: Request) -> Result<(), Violation> {
        // The coordinator's writes commit only through its own leadership (`write_as_leader`);
        // the engine's are forwarded to whichever node leads.
        let ok = self.nodes[node].alive
            && self.nodes[node].inc == inc
            && if engine { self.reaches_leader(node) } else { self.leader == Some(node) && self.valid_leader(node) };
        if !ok {
            let answer_at = self.now + Duration::from_millis(200);
            if engine {
                let err = EngineError::new(Status::ERROR_CLUSTER_NO_QUORUM, "no quorum");
                self.at(answer_at, Ev::Engine { node, inc, input: Input::Written { write, result: Err(err) } });
            } else {
                self.at(answer_at, Ev::Coord { node, inc, input: CoordInput::Written { write, applied: None } });
            }
            return Ok(());
        }
        let response = self.commit_now(request);
        let owner_change =
            |o: &halo_cluster::Op| matches!(o, halo_cluster::Op::Put { key, .. } if key.starts_with("owner/"));
        if self.log.last().is_some_and(|c| c.ops.iter().any(owner_change)) {
            self.summary.owner_changes += 1;
        }
        let answer_at = self.now + self.rng.ms(1, 5);
        if engine {
            self.at(answer_at, Ev::Engine { node, inc, input: Input::Written { write, result: Ok(response) } });
        } else {
            let applied = match response {
                Response::Applied { revision } => Some(revision),
                Response::Conflict { .. } => None,
            };
            self.at(answer_at, Ev::Coord { node, inc, input: CoordInput::Written { write, applied } });
        }
        Ok(())
    }

    /// The wall clock the cores see: half an hour per simulated second, so that FailoverPeriod
    /// (6 h) slides within a run and FailoverThreshold is met and recovered from.
    fn wall_clock(&self) -> u64 {
        1_800_000_000 + self.now.as_millis() as u64 * 1800 / 1000
    }

    fn step_coord(&mut self, i: usize, input: CoordInput) {
        let now = self.now;
        let wall = self.wall_clock();
        self.nodes[i].coord.set_wall_clock(wall);
        let ready = self.nodes[i].coord.step(now, input);
        let inc = self.nodes[i].inc;
        for note in ready.notes {
            self.note(format!("{} coordinator: {note}", self.nodes[i].name));
        }
        for (token, grant) in ready.grants {
            // The token is the heartbeat's sender index and send time, packed.
            let (from, sent_ms) = ((token >> 40) as usize, token & ((1 << 40) - 1));
            if from < self.nodes.len()
                && let Some(t) = self.net.deliver(&self.nodes[i].name.clone(), &self.nodes[from].name.clone(), now)
            {
                let finc = self.nodes[from].inc;
                self.at(t, Ev::Granted { node: from, inc: finc, sent: Duration::from_millis(sent_ms), grant });
            }
        }
        for (write, request) in ready.writes {
            let d = self.rng.ms(2, 8);
            self.at(now + d, Ev::Commit { node: i, inc, engine: false, write, request });
        }
        if let Some(w) = ready.wake {
            self.nodes[i].coord_gen += 1;
            let generation = self.nodes[i].coord_gen;
            self.at(w, Ev::CoordTick { node: i, inc, generation });
        }
    }

    fn step_engine(&mut self, i: usize, input: Input) -> Result<(), Violation> {
        let now = self.now;
        let wall = self.wall_clock();
        self.nodes[i].core.set_wall_clock(wall);
        let ready = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.nodes[i].core.step(now, input)))
            .map_err(|_| self.violation(format!("the engine core of {} panicked", self.nodes[i].name)))?;
        let inc = self.nodes[i].inc;
        for call in ready.calls {
            self.host_call(i, call)?;
        }
        for (write, request) in ready.writes {
            let d = self.rng.ms(2, 8);
            self.at(now + d, Ev::Commit { node: i, inc, engine: true, write, request });
        }
        if let Some(w) = ready.wake {
            self.nodes[i].engine_gen += 1;
            let generation = self.nodes[i].engine_gen;
            self.at(w, Ev::EngineTick { node: i, inc, generation });
        }
        Ok(())
    }

    fn fact(&mut self, i: usize, id: ResourceId, state: ResourceState, cause: Cause, after: Duration) {
        let inc = self.nodes[i].inc;
        let fact =
            FromHost::State { id, state: state.raw(), checkpoint: 0, status: 0, application_code: 0, flags: 0, cause };
        self.at(self.now + after, Ev::Engine { node: i, inc, input: Input::Host(HostEvent::Fact(fact)) });
    }

    fn start_running(&mut self, i: usize, group: &str) -> Result<(), Violation> {
        let on = self.running.entry(group.to_string()).or_default();
        if let Some(other) = on.keys().find(|n| **n != i) {
            let other = self.nodes[*other].name.clone();
            let me = self.nodes[i].name.clone();
            return Err(self.violation(format!("group {group} starts on {me} while it runs on {other}")));
        }
        *on.entry(i).or_default() += 1;
        Ok(())
    }

    fn stop_running(&mut self, i: usize, group: &str) {
        if let Some(on) = self.running.get_mut(group)
            && let Some(c) = on.get_mut(&i)
        {
            *c -= 1;
            if *c == 0 {
                on.remove(&i);
            }
        }
    }

    fn host_call(&mut self, i: usize, call: halo_engine::core::HostCall) -> Result<(), Violation> {
        let id = call.id;
        let inc = self.nodes[i].inc;
        match call.call {
            Call::Open(_) => {
                let group = self.nodes[i].core.group_of(&call.resource).unwrap_or_default();
                self.nodes[i].host.insert(id, HostRes { group, running: false, op: 0 });
                self.at(
                    self.now + Duration::from_millis(1),
                    Ev::Engine { node: i, inc, input: Input::Opened { id, result: Ok(()) } },
                );
            }
            Call::Online { input, .. } => {
                let group = self.nodes[i].host.get(&id).map(|r| r.group.clone()).unwrap_or_default();
                let epoch = resapi::epoch(&input);
                if let Some(e) = epoch {
                    let max = self.max_epoch.entry(group.clone()).or_default();
                    if e < *max {
                        let what = format!("group {group} brought online at epoch {e} after epoch {max}");
                        return Err(self.violation(what));
                    }
                    *max = e;
                }
                let was = self.nodes[i].host.get(&id).is_some_and(|r| r.running);
                if !was {
                    self.start_running(i, &group)?;
                }
                self.summary.onlines += 1;
                if let Some(r) = self.nodes[i].host.get_mut(&id) {
                    r.running = true;
                    r.op += 1;
                    let op = r.op;
                    let d = self.rng.ms(5, 40);
                    self.at(self.now + d, Ev::HostDone { node: i, inc, id, op, online: true });
                }
            }
            Call::Offline { .. } => {
                if let Some(r) = self.nodes[i].host.get_mut(&id) {
                    r.op += 1;
                    let op = r.op;
                    let d = self.rng.ms(5, 40);
                    self.at(self.now + d, Ev::HostDone { node: i, inc, id, op, online: false });
                }
            }
            Call::Terminate => {
                let stop = self.nodes[i].host.get_mut(&id).map(|r| {
                    r.op += 1;
                    let was = r.running;
                    r.running = false;
                    (was, r.group.clone())
                });
                if let Some((was, group)) = stop {
                    if was {
                        self.stop_running(i, &group);
                    }
                    self.fact(i, id, ResourceState::Offline, Cause::Terminated, Duration::from_millis(1));
                }
            }
            Call::Close => {
                self.nodes[i].host.remove(&id);
            }
            Call::Update { .. } | Call::Control { .. } => {}
        }
        Ok(())
    }

    fn host_done(&mut self, i: usize, inc: u64, id: ResourceId, op: u64, online: bool) -> Result<(), Violation> {
        if self.nodes[i].inc != inc || !self.nodes[i].alive {
            return Ok(());
        }
        let Some(r) = self.nodes[i].host.get_mut(&id) else { return Ok(()) };
        if r.op != op {
            return Ok(());
        }
        if online {
            self.fact(i, id, ResourceState::Online, Cause::Resource, Duration::ZERO);
        } else {
            let was = r.running;
            r.running = false;
            let group = r.group.clone();
            if was {
                self.stop_running(i, &group);
            }
            self.fact(i, id, ResourceState::Offline, Cause::Resource, Duration::ZERO);
        }
        Ok(())
    }

    /// The host's own deadline: the lease's end, whatever the daemon does.
    fn host_deadline(&mut self, i: usize, inc: u64) -> Result<(), Violation> {
        if self.nodes[i].inc != inc || !self.nodes[i].alive {
            return Ok(());
        }
        if self.nodes[i].lease.is_some_and(|(until, _)| until > self.now) {
            return Ok(());
        }
        let ids: Vec<ResourceId> = self.nodes[i].host.iter().filter(|(_, r)| r.running).map(|(id, _)| *id).collect();
        for id in ids {
            let group = match self.nodes[i].host.get_mut(&id) {
                Some(r) => {
                    r.running = false;
                    r.op += 1;
                    r.group.clone()
                }
                None => continue,
            };
            self.stop_running(i, &group);
            self.fact(i, id, ResourceState::Offline, Cause::LeaseExpired, Duration::ZERO);
        }
        Ok(())
    }

    fn heartbeat(&mut self, i: usize, inc: u64) {
        let n = &self.nodes[i];
        if !n.alive || n.inc != inc {
            return;
        }
        if !n.frozen
            && let Some(l) = self.leader
            && let Some(t) = self.net.deliver(&n.name.clone(), &self.nodes[l].name.clone(), self.now)
        {
            self.at(t, Ev::HbArrive { from: i, inc, to: l, sent: self.now });
        }
        // While frozen, no heartbeat leaves; the agent resumes at thaw.
        if !self.nodes[i].frozen {
            self.at(self.now + HEARTBEAT, Ev::Heartbeat { node: i, inc });
        }
    }

    fn hb_arrive(&mut self, from: usize, _inc: u64, to: usize, sent: Duration) {
        let token = ((from as u64) << 40) | (sent.as_millis() as u64 & ((1 << 40) - 1));
        let inc = self.nodes[to].inc;
        let input = CoordInput::Heartbeat { token, node: self.nodes[from].name.clone() };
        if let Some(Ev::Coord { node, input, .. }) = self.deliverable(to, inc, Ev::Coord { node: to, inc, input }) {
            self.step_coord(node, input);
        }
    }

    fn granted(&mut self, i: usize, sent: Duration, grant: Grant) -> Result<(), Violation> {
        let Grant::Lease { lease_ms, revision, .. } = grant else { return Ok(()) };
        let until = sent + Duration::from_millis(lease_ms);
        if self.nodes[i].lease.is_some_and(|(u, _)| u >= until) {
            return Ok(());
        }
        let revision = revision.max(self.nodes[i].lease.map_or(0, |(_, r)| r));
        self.nodes[i].lease = Some((until, revision));
        let inc = self.nodes[i].inc;
        self.at(until, Ev::HostDeadline { node: i, inc });
        self.nodes[i].engine_gen += 1;
        let stop = until.saturating_sub(STOP_MARGIN);
        self.at(stop + Duration::from_millis(1), Ev::Engine { node: i, inc, input: Input::Tick });
        let step_down = stop.saturating_sub(halo_engine::core::ownership::STEP_DOWN_LEAD);
        self.at(step_down + Duration::from_millis(1), Ev::Engine { node: i, inc, input: Input::Tick });
        self.step_engine(i, Input::Lease { until: Some(stop), revision })
    }

    fn setup(&mut self, step: usize) -> Result<(), Violation> {
        for g in 0..GROUPS {
            let node = g % NODES.len();
            let group = format!("g{g}");
            let commands: Vec<Command> = match step {
                0 => vec![Command::CreateGroup { name: group.clone(), common: BTreeMap::new() }],
                1 => (0..RESOURCES_PER_GROUP)
                    .map(|r| Command::CreateResource {
                        name: format!("{group}r{r}"),
                        group: group.clone(),
                        type_name: "dummy".into(),
                        common: BTreeMap::new(),
                        private: BTreeMap::new(),
                        dependencies: if r > 0 { format!("[{group}r0]") } else { String::new() },
                    })
                    .collect(),
                _ => vec![Command::Online {
                    target: Target::Group(group.clone()),
                    update_persistent: true,
                    input: vec![],
                }],
            };
            for command in commands {
                let inc = self.nodes[node].inc;
                self.at(self.now, Ev::Engine { node, inc, input: Input::Command { token: 0, command } });
            }
        }
        Ok(())
    }

    fn owner(&self, group: &str) -> Option<String> {
        let record = self.db.get(&halo_engine::model::keys::owner(group))?;
        let doc: halo_engine::model::OwnerDoc = serde_json::from_slice(&record.value).ok()?;
        Some(doc.node)
    }

    fn fault(&mut self, f: Fault) -> Result<(), Violation> {
        self.note(format!("fault {f:?}"));
        match f {
            Fault::Crash(i) if self.nodes[i].alive => {
                self.summary.faults += 1;
                // The hosts see their daemon gone and stop everything at once.
                let running: Vec<String> =
                    self.nodes[i].host.values().filter(|r| r.running).map(|r| r.group.clone()).collect();
                for g in running {
                    self.stop_running(i, &g);
                }
                // A crashed leader's term ends with it: it restarts as a follower.
                if self.leader == Some(i) {
                    self.leader = None;
                    self.election_at = Some(self.now + self.rng.ms(150, 300));
                }
                let n = &mut self.nodes[i];
                n.alive = false;
                n.frozen = false;
                n.inbox.clear();
                n.host.clear();
                n.lease = None;
                n.inc += 1;
                n.thinks_leading = false;
            }
            Fault::Restart(i) if !self.nodes[i].alive => {
                let (core, coord) = node_core(&self.nodes[i].name.clone());
                let (revision, records) = self.db.snapshot();
                let n = &mut self.nodes[i];
                n.alive = true;
                n.core = core;
                n.coord = coord;
                n.feed_pos = revision;
                let inc = n.inc;
                let _ = n.coord.step(self.now, CoordInput::Loaded { revision, records: records.clone() });
                self.step_engine(i, Input::Loaded { revision, records })?;
                self.at(self.now, Ev::Heartbeat { node: i, inc });
            }
            Fault::Freeze(i) if self.nodes[i].alive && !self.nodes[i].frozen => {
                self.summary.faults += 1;
                self.nodes[i].frozen = true;
            }
            Fault::Thaw(i) if self.nodes[i].frozen => {
                self.nodes[i].frozen = false;
                let inbox = std::mem::take(&mut self.nodes[i].inbox);
                for ev in inbox {
                    self.at(self.now, ev);
                }
                let inc = self.nodes[i].inc;
                self.at(self.now, Ev::Heartbeat { node: i, inc });
            }
            Fault::Isolate(i) => {
                self.summary.faults += 1;
                let me: BTreeSet<String> = [self.nodes[i].name.clone()].into();
                let rest: BTreeSet<String> =
                    self.nodes.iter().filter(|n| n.name != self.nodes[i].name).map(|n| n.name.clone()).collect();
                self.net.partition(vec![me, rest]);
            }
            Fault::CutOneWay(a, b) => {
                self.summary.faults += 1;
                let (a, b) = (self.nodes[a].name.clone(), self.nodes[b].name.clone());
                self.net.cut(&a, &b);
            }
            Fault::CrashLeader(down_for) => {
                if let Some(l) = self.leader {
                    self.fault(Fault::Crash(l))?;
                    self.at(self.now + down_for, Ev::Fault(Fault::Restart(l)));
                }
            }
            Fault::Heal => self.net.heal(),
            Fault::Lossy(on) => self.net.drop = if on { 0.2 } else { 0.0 },
            Fault::Move(g) => {
                let group = format!("g{g}");
                let Some(owner) = self.owner(&group) else { return Ok(()) };
                let Some(i) = self.nodes.iter().position(|n| n.name == owner) else { return Ok(()) };
                self.summary.moves += 1;
                let flags = if self.rng.chance(0.5) {
                    GroupMoveFlags::RETURN_TO_SOURCE_NODE_ON_ERROR
                } else {
                    GroupMoveFlags::empty()
                };
                let inc = self.nodes[i].inc;
                let command = Command::Move { group, to: None, flags, reason: "move".into() };
                self.at(self.now, Ev::Engine { node: i, inc, input: Input::Command { token: 0, command } });
            }
            _ => {}
        }
        Ok(())
    }

    /// After the faults healed and the settle time passed: each group Online on its owner, and
    /// nowhere else.
    fn final_check(&mut self) -> Result<(), Violation> {
        for g in 0..GROUPS {
            let group = format!("g{g}");
            let owner = self.owner(&group).ok_or_else(|| self.violation(format!("group {group} has no owner")))?;
            let i = self
                .nodes
                .iter()
                .position(|n| n.name == owner)
                .ok_or_else(|| self.violation(format!("unknown owner {owner}")))?;
            let view = self.nodes[i].core.group(&group);
            let state = view.as_ref().map(|v| v.state.clone()).unwrap_or_default();
            if state != "Online" {
                let record = self
                    .db
                    .get(&halo_engine::model::keys::owner(&group))
                    .map(|r| String::from_utf8_lossy(&r.value).into_owned());
                let members: Vec<String> = self.nodes[i]
                    .core
                    .resources()
                    .iter()
                    .filter(|r| r.group == group)
                    .map(|r| format!("{}={}/{:?}", r.name, r.state, r.desired))
                    .collect();
                let what = format!(
                    "group {group} is {state} on its owner {owner} {SETTLE:?} after the faults healed (record {record:?}, members {members:?}, lease {:?}, feed {} of {})",
                    self.nodes[i].lease,
                    self.nodes[i].feed_pos,
                    self.db.revision()
                );
                return Err(self.violation(what));
            }
            let on: Vec<usize> = self.running.get(&group).map(|m| m.keys().copied().collect()).unwrap_or_default();
            if on != [i] {
                let names: Vec<&str> = on.iter().map(|n| self.nodes[*n].name.as_str()).collect();
                return Err(self.violation(format!("group {group} runs on {names:?}, its owner is {owner}")));
            }
        }
        Ok(())
    }
}
