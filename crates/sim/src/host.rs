//! A model of one node's resource hosts, following the real host's contract (`halo host` and the
//! `HostManager` in `crates/host`): opens answered after a delay (sometimes with an error); one
//! online or offline at a time, returning at once, slowly, or `ERROR_IO_PENDING` followed by
//! reports with strictly increasing checkpoints; PendingTimeout terminates (Failed for an online,
//! Offline for an offline, `ERROR_RESOURCE_CALL_TIMED_OUT`); an online error terminates and
//! fails, an offline error terminates offline; a failed health check terminates and fails;
//! Terminate ends Offline (Failed if it was Failed); a host that dies reports each of its
//! resources Failed with cause HostDied and forgets them, so later calls fail to deliver with
//! `ERROR_RESOURCE_NOT_FOUND`.
//!
//! This model is the single source of truth for what really runs on the node; the engine learns
//! of it only through the facts it sends, after small delays, in order.

use crate::rng::SimRng;
use halo_engine::core::Token;
use halo_host::client::{ControlReply, HostError, HostEvent, OpenSpec};
use halo_host::protocol::{Cause, FromHost, ResourceId, Timeouts};
use resapi::{ResourceState, Status};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// Time, as the core sees it.
pub type Time = Duration;

/// How resource code behaves when called: probabilities, drawn per call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Behaviour {
    /// An open is refused.
    pub open_fail: f64,
    /// An online or offline returns an error.
    pub fail: f64,
    /// An online or offline goes pending and never reports again (PendingTimeout ends it).
    pub hang: f64,
    /// An entry point takes seconds to return.
    pub slow: f64,
    /// An online or offline returns `ERROR_IO_PENDING` and reports later.
    pub pending: f64,
    /// A pending online ends with a Failed report.
    pub report_failed: f64,
}

impl Behaviour {
    /// Resource code that always works (the quiet phase): pending half the time, never failing.
    pub const CALM: Behaviour =
        Behaviour { open_fail: 0.0, fail: 0.0, hang: 0.0, slow: 0.0, pending: 0.5, report_failed: 0.0 };
}

/// What the host model asks the simulator to do.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Deliver a fact to the engine.
    Fact(HostEvent),
    /// Deliver an open's outcome to the engine.
    Opened { id: ResourceId, result: Result<(), HostError> },
    /// Deliver a control call's answer to the engine.
    Controlled { token: Token, result: Result<ControlReply, HostError> },
    /// Call [`HostModel::fire`] with this timer.
    Timer(Timer),
}

/// Effects with the time each is due.
pub type Outbox = Vec<(Time, Effect)>;

/// A host-internal timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    /// The node incarnation it belongs to: a restarted node forgets its old timers.
    incarnation: u64,
    /// What it is for.
    kind: TimerKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TimerKind {
    OpenDone { id: ResourceId, generation: u64, result: Result<(), Status> },
    Step { id: ResourceId, generation: u64 },
    PendingTimeout { id: ResourceId, generation: u64, report_seq: u64 },
    TerminateDone { id: ResourceId, generation: u64, end: ResourceState, status: Status, cause: Cause },
    CloseRun { id: ResourceId, generation: u64 },
    ControlDone { call: u64 },
}

/// Which host process holds a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HostKey {
    /// The node's shared host.
    Shared,
    /// A host of its own (SeparateMonitor).
    Own(ResourceId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Online,
    Offline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The entry point returns.
    Return(Outcome),
    /// A status report while pending.
    Report(Report),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    Pending,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Report {
    Pending,
    Done,
    Failed,
}

#[derive(Debug, Clone)]
struct HRes {
    name: String,
    host: HostKey,
    opened: bool,
    state: ResourceState,
    op: Option<Op>,
    /// The running entry point has returned (only a pending operation remains).
    returned: bool,
    terminating: bool,
    closing: bool,
    checkpoint: u32,
    report_seq: u64,
    generation: u64,
    timeouts: Timeouts,
    script: VecDeque<(Duration, Step)>,
}

impl HRes {
    fn busy(&self) -> bool {
        self.op.is_some() || self.terminating
    }
}

/// What the model says of one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceFacts {
    /// Its name.
    pub name: String,
    /// The open has been answered.
    pub opened: bool,
    /// The state the host holds.
    pub state: ResourceState,
    /// An online or offline is in progress (its entry point runs, or it is pending).
    pub in_call: bool,
    /// A terminate is in progress.
    pub terminating: bool,
    /// Close was asked for.
    pub closing: bool,
    /// Its code runs: up, pending, or being stopped.
    pub running: bool,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Resources that reached Online.
    pub onlines: u64,
    /// Host processes that died.
    pub crashes: u64,
    /// PendingTimeouts that fired.
    pub timeouts: u64,
}

/// The hosts of one node.
#[derive(Debug, Clone)]
pub struct HostModel {
    incarnation: u64,
    resources: BTreeMap<ResourceId, HRes>,
    controls: BTreeMap<u64, (ResourceId, Token)>,
    next_gen: u64,
    next_call: u64,
    /// When the last fact is delivered: the fact channel keeps its order.
    facts_last: Time,
    /// How resource code behaves now.
    pub behaviour: Behaviour,
    /// Counters.
    pub stats: HostStats,
}

/// What failing resource code returns (ERROR_GEN_FAILURE).
const GEN_FAILURE: Status = Status(31);

fn herr(status: Status, message: impl Into<String>) -> HostError {
    HostError { status, message: message.into() }
}

fn not_open(id: ResourceId) -> HostError {
    herr(Status::ERROR_RESOURCE_NOT_FOUND, format!("resource {id} is not open"))
}

impl HostModel {
    /// A node's hosts, holding nothing.
    pub fn new(behaviour: Behaviour) -> HostModel {
        HostModel {
            incarnation: 0,
            resources: BTreeMap::new(),
            controls: BTreeMap::new(),
            next_gen: 1,
            next_call: 1,
            facts_last: Duration::ZERO,
            behaviour,
            stats: HostStats::default(),
        }
    }

    // ---- queries ----

    /// What the model holds of `id` (`None`: not known to any host).
    pub fn resource(&self, id: ResourceId) -> Option<ResourceFacts> {
        self.resources.get(&id).map(|r| ResourceFacts {
            name: r.name.clone(),
            opened: r.opened,
            state: r.state,
            in_call: r.op.is_some(),
            terminating: r.terminating,
            closing: r.closing,
            running: r.busy() || !matches!(r.state, ResourceState::Offline | ResourceState::Failed),
        })
    }

    /// Every resource the hosts hold, by id.
    pub fn resources(&self) -> impl Iterator<Item = (ResourceId, ResourceFacts)> + '_ {
        self.resources.keys().filter_map(|id| self.resource(*id).map(|f| (*id, f)))
    }

    /// The host processes alive now (those holding something).
    pub fn hosts(&self) -> Vec<HostKey> {
        let mut keys: Vec<HostKey> = self.resources.values().map(|r| r.host).collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Nothing is in progress: no op, terminate, open, close or control call.
    pub fn quiescent(&self) -> bool {
        self.controls.is_empty() && self.resources.values().all(|r| r.opened && !r.busy() && !r.closing)
    }

    /// Whether a timer still has work to do (a stale one is ignored when it fires).
    pub fn live(&self, timer: &Timer) -> bool {
        if timer.incarnation != self.incarnation {
            return false;
        }
        let current =
            |id: &ResourceId, generation: &u64| self.resources.get(id).is_some_and(|r| r.generation == *generation);
        match &timer.kind {
            TimerKind::OpenDone { id, generation, .. }
            | TimerKind::Step { id, generation }
            | TimerKind::TerminateDone { id, generation, .. } => current(id, generation),
            TimerKind::PendingTimeout { id, generation, report_seq } => {
                current(id, generation) && self.resources.get(id).is_some_and(|r| r.report_seq == *report_seq)
            }
            TimerKind::CloseRun { id, .. } => self.resources.contains_key(id),
            TimerKind::ControlDone { call } => self.controls.contains_key(call),
        }
    }

    // ---- calls from the engine ----

    /// Open (its answer arrives as [`Effect::Opened`]).
    pub fn open(&mut self, now: Time, spec: OpenSpec, rng: &mut SimRng, out: &mut Outbox) {
        let id = spec.id;
        let at = now + rng.ms(1, 30);
        if self.resources.contains_key(&id) {
            let e = herr(Status::ERROR_INVALID_STATE, format!("resource {id} is already open"));
            out.push((at, Effect::Opened { id, result: Err(e) }));
            return;
        }
        let generation = self.next_generation();
        let host = if spec.separate_monitor { HostKey::Own(id) } else { HostKey::Shared };
        let result = if rng.chance(self.behaviour.open_fail) {
            // Host trouble is retried by the engine; a refused configuration is not.
            Err(if rng.chance(0.5) { Status::ERROR_RESMON_CREATE_FAILED } else { Status::ERROR_INVALID_PARAMETER })
        } else {
            Ok(())
        };
        let at = if rng.chance(self.behaviour.slow) { now + rng.ms(500, 4000) } else { at };
        self.resources.insert(
            id,
            HRes {
                name: spec.name,
                host,
                opened: false,
                state: ResourceState::Offline,
                op: None,
                returned: true,
                terminating: false,
                closing: false,
                checkpoint: 0,
                report_seq: 0,
                generation,
                timeouts: spec.timeouts,
                script: VecDeque::new(),
            },
        );
        self.timer(at, TimerKind::OpenDone { id, generation, result }, out);
    }

    /// OnlineV2.
    pub fn online(&mut self, now: Time, id: ResourceId, rng: &mut SimRng, out: &mut Outbox) -> Result<(), HostError> {
        self.begin(now, id, Op::Online, rng, out)
    }

    /// OfflineV2.
    pub fn offline(&mut self, now: Time, id: ResourceId, rng: &mut SimRng, out: &mut Outbox) -> Result<(), HostError> {
        self.begin(now, id, Op::Offline, rng, out)
    }

    /// Terminate: runs beside anything else; ends Offline (Failed if it was Failed).
    pub fn terminate(
        &mut self,
        now: Time,
        id: ResourceId,
        rng: &mut SimRng,
        out: &mut Outbox,
    ) -> Result<(), HostError> {
        let Some(r) = self.resources.get(&id) else { return Err(not_open(id)) };
        if r.closing {
            self.reject(now, id, rng, out);
            return Ok(());
        }
        let end = if r.state == ResourceState::Failed { ResourceState::Failed } else { ResourceState::Offline };
        self.terminate_then(now, id, end, Status::ERROR_SUCCESS, Cause::Terminated, rng, out);
        Ok(())
    }

    /// New timeouts (the properties themselves do not matter to the model).
    pub fn update(
        &mut self,
        now: Time,
        id: ResourceId,
        timeouts: Timeouts,
        rng: &mut SimRng,
        out: &mut Outbox,
    ) -> Result<(), HostError> {
        let Some(r) = self.resources.get_mut(&id) else { return Err(not_open(id)) };
        if r.closing {
            self.reject(now, id, rng, out);
        } else {
            r.timeouts = timeouts;
        }
        Ok(())
    }

    /// Close: after whatever entry point runs, terminate if needed, then forget it.
    pub fn close(&mut self, now: Time, id: ResourceId, rng: &mut SimRng, out: &mut Outbox) -> Result<(), HostError> {
        let Some(r) = self.resources.get_mut(&id) else { return Err(not_open(id)) };
        if r.closing {
            self.reject(now, id, rng, out);
            return Ok(());
        }
        r.closing = true;
        let generation = r.generation;
        let at = now + rng.ms(1, 10);
        self.timer(at, TimerKind::CloseRun { id, generation }, out);
        Ok(())
    }

    /// ResourceControl: the model's types handle no code, so the engine's defaults answer.
    pub fn control(&mut self, now: Time, id: ResourceId, token: Token, rng: &mut SimRng, out: &mut Outbox) {
        let at = now + rng.ms(1, 20);
        match self.resources.get(&id) {
            None => out.push((at, Effect::Controlled { token, result: Err(not_open(id)) })),
            Some(r) if r.closing => {
                let reply =
                    ControlReply { status: Status::ERROR_RESOURCE_NOT_FOUND, output: Vec::new(), bytes_returned: 0 };
                out.push((at, Effect::Controlled { token, result: Ok(reply) }));
            }
            Some(_) => {
                let call = self.next_call;
                self.next_call += 1;
                self.controls.insert(call, (id, token));
                self.timer(at, TimerKind::ControlDone { call }, out);
            }
        }
    }

    // ---- faults ----

    /// IsAlive returns false for the resource named `name`, if it is online and idle.
    pub fn health_check_fails(&mut self, now: Time, name: &str, rng: &mut SimRng, out: &mut Outbox) -> bool {
        let Some(id) = self
            .resources
            .iter()
            .find(|(_, r)| r.name == name && r.state == ResourceState::Online && !r.busy() && !r.closing)
            .map(|(id, _)| *id)
        else {
            return false;
        };
        self.terminate_then(
            now,
            id,
            ResourceState::Failed,
            Status::ERROR_RESOURCE_FAILED,
            Cause::HealthCheck,
            rng,
            out,
        );
        true
    }

    /// The host process `key` dies: each resource it held is reported Failed (HostDied) and
    /// forgotten; opens and control calls waiting on it fail.
    pub fn crash(&mut self, now: Time, key: HostKey, rng: &mut SimRng, out: &mut Outbox) {
        let ids: Vec<ResourceId> = self.resources.iter().filter(|(_, r)| r.host == key).map(|(id, _)| *id).collect();
        if ids.is_empty() {
            return;
        }
        self.stats.crashes += 1;
        let status = Status::ERROR_EXCEPTION_IN_RESOURCE_CALL;
        for id in &ids {
            if let Some(r) = self.resources.remove(id)
                && !r.opened
            {
                let at = now + rng.ms(1, 10);
                out.push((at, Effect::Opened { id: *id, result: Err(herr(status, "host died during open")) }));
            }
        }
        let dead: Vec<u64> = self.controls.iter().filter(|(_, (id, _))| ids.contains(id)).map(|(c, _)| *c).collect();
        for call in dead {
            if let Some((_, token)) = self.controls.remove(&call) {
                let e = herr(Status::ERROR_RESMON_INVALID_STATE, "host died during the control call");
                out.push((now + rng.ms(1, 10), Effect::Controlled { token, result: Err(e) }));
            }
        }
        for id in &ids {
            let fact = FromHost::State {
                id: *id,
                state: ResourceState::Failed.raw(),
                checkpoint: 0,
                status: status.0,
                application_code: 0,
                flags: 0,
                cause: Cause::HostDied,
            };
            self.fact(now, HostEvent::Fact(fact), rng, out);
        }
        let died = HostEvent::HostDied { host: 0, pid: 0, reason: format!("{key:?} crashed"), resources: ids };
        self.fact(now, died, rng, out);
    }

    /// The node goes away: every host dies with it and stops its resources; nobody hears of it
    /// (the engine that would have is gone too). Old timers are void from now on.
    pub fn node_died(&mut self) {
        self.incarnation += 1;
        self.resources.clear();
        self.controls.clear();
    }

    // ---- time ----

    /// A timer of this model is due.
    pub fn fire(&mut self, now: Time, timer: Timer, rng: &mut SimRng, out: &mut Outbox) {
        if timer.incarnation != self.incarnation {
            return;
        }
        match timer.kind {
            TimerKind::OpenDone { id, generation, result } => {
                let Some(r) = self.resources.get_mut(&id).filter(|r| r.generation == generation && !r.opened) else {
                    return;
                };
                let result = match result {
                    Ok(()) => {
                        r.opened = true;
                        Ok(())
                    }
                    Err(status) => {
                        self.resources.remove(&id);
                        Err(herr(status, "the resource type refused the open"))
                    }
                };
                out.push((now, Effect::Opened { id, result }));
            }
            TimerKind::Step { id, generation } => self.step(now, id, generation, rng, out),
            TimerKind::PendingTimeout { id, generation, report_seq } => {
                let Some(r) = self.resources.get(&id) else { return };
                if r.generation != generation || r.report_seq != report_seq || r.terminating {
                    return;
                }
                let Some(op) = r.op else { return };
                self.stats.timeouts += 1;
                let end = if op == Op::Online { ResourceState::Failed } else { ResourceState::Offline };
                let status = Status::ERROR_RESOURCE_CALL_TIMED_OUT;
                self.terminate_then(now, id, end, status, Cause::PendingTimeout, rng, out);
            }
            TimerKind::TerminateDone { id, generation, end, status, cause } => {
                let Some(r) = self.resources.get_mut(&id).filter(|r| r.generation == generation) else { return };
                r.terminating = false;
                r.op = None;
                r.returned = true;
                self.finish(now, id, end, status, cause, rng, out);
            }
            TimerKind::CloseRun { id, generation: _ } => {
                let Some(r) = self.resources.get(&id) else { return };
                if !r.returned || r.terminating {
                    // The entry point that runs (or the terminate) finishes first.
                    let at = now + Duration::from_millis(50);
                    let generation = r.generation;
                    self.timer(at, TimerKind::CloseRun { id, generation }, out);
                    return;
                }
                if r.op.is_some() || !matches!(r.state, ResourceState::Offline | ResourceState::Failed) {
                    self.bump(id);
                    if let Some(r) = self.resources.get_mut(&id) {
                        r.op = None;
                    }
                    self.finish(now, id, ResourceState::Offline, Status::ERROR_SUCCESS, Cause::Terminated, rng, out);
                }
                self.resources.remove(&id);
                self.fact(now, HostEvent::Fact(FromHost::Closed { id }), rng, out);
            }
            TimerKind::ControlDone { call } => {
                let Some((_, token)) = self.controls.remove(&call) else { return };
                let reply =
                    ControlReply { status: Status::ERROR_INVALID_FUNCTION, output: Vec::new(), bytes_returned: 0 };
                out.push((now, Effect::Controlled { token, result: Ok(reply) }));
            }
        }
    }

    // ---- inside the host ----

    fn next_generation(&mut self) -> u64 {
        self.next_gen += 1;
        self.next_gen
    }

    /// Voids the resource's timers.
    fn bump(&mut self, id: ResourceId) -> u64 {
        let generation = self.next_generation();
        if let Some(r) = self.resources.get_mut(&id) {
            r.generation = generation;
        }
        generation
    }

    fn timer(&self, at: Time, kind: TimerKind, out: &mut Outbox) {
        out.push((at, Effect::Timer(Timer { incarnation: self.incarnation, kind })));
    }

    fn fact(&mut self, now: Time, event: HostEvent, rng: &mut SimRng, out: &mut Outbox) {
        let at = (now + rng.ms(0, 10)).max(self.facts_last);
        self.facts_last = at;
        out.push((at, Effect::Fact(event)));
    }

    fn state_fact(
        &mut self,
        now: Time,
        id: ResourceId,
        status: Status,
        cause: Cause,
        rng: &mut SimRng,
        out: &mut Outbox,
    ) {
        let Some(r) = self.resources.get(&id) else { return };
        let fact = FromHost::State {
            id,
            state: r.state.raw(),
            checkpoint: r.checkpoint,
            status: status.0,
            application_code: 0,
            flags: 0,
            cause,
        };
        self.fact(now, HostEvent::Fact(fact), rng, out);
    }

    fn reject(&mut self, now: Time, id: ResourceId, rng: &mut SimRng, out: &mut Outbox) {
        let fact = FromHost::Rejected {
            id,
            status: Status::ERROR_INVALID_STATE.0,
            message: format!("resource {id} is closing"),
        };
        self.fact(now, HostEvent::Fact(fact), rng, out);
    }

    /// Starts an online or offline: draws how the resource code will behave and plays it out.
    fn begin(
        &mut self,
        now: Time,
        id: ResourceId,
        op: Op,
        rng: &mut SimRng,
        out: &mut Outbox,
    ) -> Result<(), HostError> {
        let b = self.behaviour;
        let Some(r) = self.resources.get(&id) else { return Err(not_open(id)) };
        if r.closing {
            self.reject(now, id, rng, out);
            return Ok(());
        }
        if !r.opened || r.busy() {
            // During a terminate the real host runs the call beside it and drops its outcome
            // (the terminate's state wins); anything else the checker has already reported.
            return Ok(());
        }
        let pending_ms = u64::from(r.timeouts.pending_ms);
        let call_ms = if rng.chance(b.slow) { rng.between(500, 5000) } else { rng.between(1, 30) };
        let mut script = VecDeque::new();
        if rng.chance(b.fail) {
            script.push_back((Duration::from_millis(call_ms), Step::Return(Outcome::Error)));
        } else if rng.chance(b.hang) {
            script.push_back((Duration::from_millis(call_ms), Step::Return(Outcome::Pending)));
        } else if rng.chance(b.pending) {
            script.push_back((Duration::from_millis(call_ms), Step::Return(Outcome::Pending)));
            // Reports come within PendingTimeout of each other (as timeouts stand now).
            let gap_max = (pending_ms * 7 / 10).clamp(1, 2000);
            for _ in 0..rng.between(0, 3) {
                script.push_back((rng.ms(1, gap_max), Step::Report(Report::Pending)));
            }
            let last = if op == Op::Online && rng.chance(b.report_failed) { Report::Failed } else { Report::Done };
            script.push_back((rng.ms(1, gap_max), Step::Report(last)));
        } else {
            script.push_back((Duration::from_millis(call_ms), Step::Return(Outcome::Success)));
        }
        let generation = self.bump(id);
        let Some(r) = self.resources.get_mut(&id) else { return Ok(()) };
        r.op = Some(op);
        r.returned = false;
        r.checkpoint = 0;
        r.script = script;
        let first = r.script.front().map(|(d, _)| *d).unwrap_or_default();
        self.timer(now + first, TimerKind::Step { id, generation }, out);
        Ok(())
    }

    /// The next step of an operation's script.
    fn step(&mut self, now: Time, id: ResourceId, generation: u64, rng: &mut SimRng, out: &mut Outbox) {
        let Some(r) = self.resources.get_mut(&id).filter(|r| r.generation == generation && !r.terminating) else {
            return;
        };
        let Some(op) = r.op else { return };
        let Some((_, step)) = r.script.pop_front() else { return };
        let (pending, done) = match op {
            Op::Online => (ResourceState::OnlinePending, ResourceState::Online),
            Op::Offline => (ResourceState::OfflinePending, ResourceState::Offline),
        };
        let next = r.script.front().map(|(d, _)| *d);
        match step {
            Step::Return(Outcome::Success) => {
                r.returned = true;
                self.finish(now, id, done, Status::ERROR_SUCCESS, Cause::Resource, rng, out);
                if let Some(r) = self.resources.get_mut(&id) {
                    r.op = None;
                }
            }
            Step::Return(Outcome::Error) => {
                r.returned = true;
                let end = if op == Op::Online { ResourceState::Failed } else { ResourceState::Offline };
                self.terminate_then(now, id, end, GEN_FAILURE, Cause::CallFailed, rng, out);
            }
            Step::Return(Outcome::Pending) | Step::Report(Report::Pending) => {
                r.returned = true;
                if matches!(step, Step::Report(_)) {
                    // Reports carry strictly increasing checkpoints.
                    r.checkpoint += 1;
                    r.report_seq += 1;
                }
                let report = matches!(step, Step::Report(_));
                let changed = r.state != pending;
                r.state = pending;
                let (seq, pending_ms) = (r.report_seq, u64::from(r.timeouts.pending_ms));
                if changed || report {
                    self.state_fact(now, id, Status::ERROR_IO_PENDING, Cause::Resource, rng, out);
                }
                self.timer(
                    now + Duration::from_millis(pending_ms),
                    TimerKind::PendingTimeout { id, generation, report_seq: seq },
                    out,
                );
                if let Some(d) = next {
                    self.timer(now + d, TimerKind::Step { id, generation }, out);
                }
            }
            Step::Report(Report::Done) => {
                r.checkpoint += 1;
                r.op = None;
                self.finish(now, id, done, Status::ERROR_SUCCESS, Cause::Resource, rng, out);
            }
            Step::Report(Report::Failed) => {
                r.checkpoint += 1;
                self.terminate_then(
                    now,
                    id,
                    ResourceState::Failed,
                    Status::ERROR_RESOURCE_FAILED,
                    Cause::Resource,
                    rng,
                    out,
                );
            }
        }
    }

    /// Records a final state and tells the engine.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        now: Time,
        id: ResourceId,
        state: ResourceState,
        status: Status,
        cause: Cause,
        rng: &mut SimRng,
        out: &mut Outbox,
    ) {
        self.bump(id);
        let Some(r) = self.resources.get_mut(&id) else { return };
        r.state = state;
        r.script.clear();
        if state == ResourceState::Online {
            self.stats.onlines += 1;
        }
        self.state_fact(now, id, status, cause, rng, out);
    }

    /// Terminates on a terminator thread, then records `end` (a terminate already running wins).
    #[allow(clippy::too_many_arguments)]
    fn terminate_then(
        &mut self,
        now: Time,
        id: ResourceId,
        end: ResourceState,
        status: Status,
        cause: Cause,
        rng: &mut SimRng,
        out: &mut Outbox,
    ) {
        if self.resources.get(&id).is_none_or(|r| r.terminating) {
            return;
        }
        let generation = self.bump(id);
        let Some(r) = self.resources.get_mut(&id) else { return };
        r.terminating = true;
        r.script.clear();
        let at = now + rng.ms(1, 20);
        self.timer(at, TimerKind::TerminateDone { id, generation, end, status, cause }, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use resapi::PropertyList;

    const ID: ResourceId = 7;

    fn spec(pending_ms: u32) -> OpenSpec {
        OpenSpec {
            id: ID,
            name: "r".into(),
            type_spec: halo_host::protocol::TypeSpec::Dummy,
            properties: PropertyList::new(),
            flags: 0,
            timeouts: Timeouts { pending_ms, ..Timeouts::default() },
            separate_monitor: false,
        }
    }

    /// What reached the engine, in delivery order.
    #[derive(Debug, PartialEq)]
    enum Seen {
        State(ResourceState, u32, u32, Cause),
        Opened(bool),
        Closed,
        Died,
        Other,
    }

    /// Runs the model's timers until none is left; returns what the engine would hear.
    fn drain(m: &mut HostModel, rng: &mut SimRng, out: Outbox) -> Vec<Seen> {
        let mut queue: Vec<(Time, usize, Effect)> = out.into_iter().enumerate().map(|(i, (t, e))| (t, i, e)).collect();
        let mut seen: Vec<(Time, usize, Seen)> = Vec::new();
        let mut n = queue.len();
        while !queue.is_empty() {
            queue.sort_by_key(|(t, i, _)| (*t, *i));
            let (t, i, e) = queue.remove(0);
            match e {
                Effect::Timer(timer) => {
                    let mut more = Vec::new();
                    m.fire(t, timer, rng, &mut more);
                    for (t2, e2) in more {
                        n += 1;
                        queue.push((t2, n, e2));
                    }
                }
                Effect::Fact(HostEvent::Fact(FromHost::State { state, checkpoint, status, cause, .. })) => {
                    let s = ResourceState::from_raw(state).unwrap_or(ResourceState::Unknown);
                    seen.push((t, i, Seen::State(s, checkpoint, status, cause)));
                }
                Effect::Fact(HostEvent::Fact(FromHost::Closed { .. })) => seen.push((t, i, Seen::Closed)),
                Effect::Fact(HostEvent::HostDied { .. }) => seen.push((t, i, Seen::Died)),
                Effect::Opened { result, .. } => seen.push((t, i, Seen::Opened(result.is_ok()))),
                _ => seen.push((t, i, Seen::Other)),
            }
        }
        seen.sort_by_key(|(t, i, _)| (*t, *i));
        seen.into_iter().map(|(_, _, s)| s).collect()
    }

    fn opened(behaviour: Behaviour, pending_ms: u32) -> (HostModel, SimRng) {
        let mut m = HostModel::new(behaviour);
        let mut rng = SimRng::new(1, 0);
        let mut out = Vec::new();
        m.open(Duration::ZERO, spec(pending_ms), &mut rng, &mut out);
        assert_eq!(drain(&mut m, &mut rng, out), vec![Seen::Opened(true)]);
        (m, rng)
    }

    fn never() -> Behaviour {
        Behaviour { open_fail: 0.0, fail: 0.0, hang: 0.0, slow: 0.0, pending: 0.0, report_failed: 0.0 }
    }

    fn last_state(seen: &[Seen]) -> Option<&Seen> {
        seen.iter().rev().find(|s| matches!(s, Seen::State(..)))
    }

    #[test]
    fn online_then_offline() {
        let (mut m, mut rng) = opened(never(), 1000);
        let mut out = Vec::new();
        m.online(Duration::from_secs(1), ID, &mut rng, &mut out).unwrap();
        assert!(m.resource(ID).unwrap().in_call);
        let seen = drain(&mut m, &mut rng, out);
        assert_eq!(seen, vec![Seen::State(ResourceState::Online, 0, 0, Cause::Resource)]);
        assert!(m.resource(ID).unwrap().running && m.quiescent());
        let mut out = Vec::new();
        m.offline(Duration::from_secs(2), ID, &mut rng, &mut out).unwrap();
        let seen = drain(&mut m, &mut rng, out);
        assert_eq!(seen, vec![Seen::State(ResourceState::Offline, 0, 0, Cause::Resource)]);
    }

    #[test]
    fn pending_reports_have_increasing_checkpoints() {
        let (mut m, mut rng) = opened(Behaviour { pending: 1.0, ..never() }, 1000);
        for round in 0..20 {
            let mut out = Vec::new();
            m.online(Duration::from_secs(10 * round), ID, &mut rng, &mut out).unwrap();
            let seen = drain(&mut m, &mut rng, out);
            let mut last = None;
            for s in &seen {
                if let Seen::State(ResourceState::OnlinePending, cp, status, _) = s {
                    assert!(last.is_none_or(|l| *cp > l), "{seen:?}");
                    assert_eq!(*status, Status::ERROR_IO_PENDING.0);
                    last = Some(*cp);
                }
            }
            assert!(matches!(seen.first(), Some(Seen::State(ResourceState::OnlinePending, 0, ..))), "{seen:?}");
            assert!(matches!(last_state(&seen), Some(Seen::State(ResourceState::Online, ..))), "{seen:?}");
            let mut out = Vec::new();
            m.offline(Duration::from_secs(10 * round + 5), ID, &mut rng, &mut out).unwrap();
            drain(&mut m, &mut rng, out);
        }
    }

    #[test]
    fn hangs_end_at_pending_timeout() {
        let (mut m, mut rng) = opened(Behaviour { hang: 1.0, ..never() }, 300);
        let mut out = Vec::new();
        m.online(Duration::ZERO, ID, &mut rng, &mut out).unwrap();
        let seen = drain(&mut m, &mut rng, out);
        let timed_out = Status::ERROR_RESOURCE_CALL_TIMED_OUT.0;
        assert_eq!(last_state(&seen), Some(&Seen::State(ResourceState::Failed, 0, timed_out, Cause::PendingTimeout)));
        assert_eq!(m.stats.timeouts, 1);
        // A hung offline ends Offline, not Failed.
        let mut out = Vec::new();
        m.offline(Duration::from_secs(5), ID, &mut rng, &mut out).unwrap();
        let seen = drain(&mut m, &mut rng, out);
        assert_eq!(last_state(&seen), Some(&Seen::State(ResourceState::Offline, 0, timed_out, Cause::PendingTimeout)));
    }

    #[test]
    fn call_errors_terminate() {
        let (mut m, mut rng) = opened(Behaviour { fail: 1.0, ..never() }, 1000);
        let mut out = Vec::new();
        m.online(Duration::ZERO, ID, &mut rng, &mut out).unwrap();
        let seen = drain(&mut m, &mut rng, out);
        assert_eq!(last_state(&seen), Some(&Seen::State(ResourceState::Failed, 0, GEN_FAILURE.0, Cause::CallFailed)));
        let mut out = Vec::new();
        m.offline(Duration::from_secs(1), ID, &mut rng, &mut out).unwrap();
        let seen = drain(&mut m, &mut rng, out);
        assert_eq!(last_state(&seen), Some(&Seen::State(ResourceState::Offline, 0, GEN_FAILURE.0, Cause::CallFailed)));
    }

    #[test]
    fn health_check_and_terminate() {
        let (mut m, mut rng) = opened(never(), 1000);
        let mut out = Vec::new();
        m.online(Duration::ZERO, ID, &mut rng, &mut out).unwrap();
        drain(&mut m, &mut rng, out);
        let mut out = Vec::new();
        assert!(m.health_check_fails(Duration::from_secs(1), "r", &mut rng, &mut out));
        let seen = drain(&mut m, &mut rng, out);
        let failed = Status::ERROR_RESOURCE_FAILED.0;
        assert_eq!(seen, vec![Seen::State(ResourceState::Failed, 0, failed, Cause::HealthCheck)]);
        // Terminate of a Failed resource keeps it Failed; of anything else, Offline.
        let mut out = Vec::new();
        m.terminate(Duration::from_secs(2), ID, &mut rng, &mut out).unwrap();
        let seen = drain(&mut m, &mut rng, out);
        assert_eq!(seen, vec![Seen::State(ResourceState::Failed, 0, 0, Cause::Terminated)]);
        let mut out = Vec::new();
        m.online(Duration::from_secs(3), ID, &mut rng, &mut out).unwrap();
        drain(&mut m, &mut rng, out);
        let mut out = Vec::new();
        m.terminate(Duration::from_secs(4), ID, &mut rng, &mut out).unwrap();
        let seen = drain(&mut m, &mut rng, out);
        assert_eq!(seen, vec![Seen::State(ResourceState::Offline, 0, 0, Cause::Terminated)]);
    }

    #[test]
    fn a_dead_host_fails_its_resources_and_forgets_them() {
        let (mut m, mut rng) = opened(never(), 1000);
        let mut out = Vec::new();
        m.online(Duration::ZERO, ID, &mut rng, &mut out).unwrap();
        drain(&mut m, &mut rng, out);
        let mut out = Vec::new();
        m.crash(Duration::from_secs(1), HostKey::Shared, &mut rng, &mut out);
        let seen = drain(&mut m, &mut rng, out);
        let status = Status::ERROR_EXCEPTION_IN_RESOURCE_CALL.0;
        assert_eq!(seen, vec![Seen::State(ResourceState::Failed, 0, status, Cause::HostDied), Seen::Died]);
        assert!(m.resource(ID).is_none());
        let mut out = Vec::new();
        let err = m.online(Duration::from_secs(2), ID, &mut rng, &mut out).unwrap_err();
        assert_eq!(err.status, Status::ERROR_RESOURCE_NOT_FOUND);
        assert_eq!(m.stats.crashes, 1);
    }

    #[test]
    fn close_stops_then_forgets() {
        let (mut m, mut rng) = opened(never(), 1000);
        let mut out = Vec::new();
        m.online(Duration::ZERO, ID, &mut rng, &mut out).unwrap();
        drain(&mut m, &mut rng, out);
        let mut out = Vec::new();
        m.close(Duration::from_secs(1), ID, &mut rng, &mut out).unwrap();
        let seen = drain(&mut m, &mut rng, out);
        assert_eq!(seen, vec![Seen::State(ResourceState::Offline, 0, 0, Cause::Terminated), Seen::Closed]);
        assert!(m.resource(ID).is_none());
    }

    #[test]
    fn a_restarted_node_forgets_everything() {
        let (mut m, mut rng) = opened(Behaviour { hang: 1.0, ..never() }, 300);
        let mut out = Vec::new();
        m.online(Duration::ZERO, ID, &mut rng, &mut out).unwrap();
        m.node_died();
        assert!(m.resource(ID).is_none());
        // The old timers are void: nothing reaches the engine.
        assert!(drain(&mut m, &mut rng, out).is_empty());
    }
}
