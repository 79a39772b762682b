//! The event loop: one queue of timed events (ordered by time, then by when they were queued, so
//! equal times keep a fixed order), the core stepped with each input exactly as the real driver
//! steps it, and what the core decides carried out against the models — calls that cannot be
//! delivered go straight back as `CallFailed`, as in `halo_engine::driver`.

use crate::checker::{self, Checker};
use crate::db::{Db, Timing, WriteTiming};
use crate::host::{Behaviour, Effect, HostKey, HostModel, Outbox, Timer};
use crate::rng::SimRng;
use crate::schedule::{self, Action};
use crate::{SimConfig, Summary, Violation};
use halo_cluster::{Request, Response};
use halo_engine::core::{Call, CallKind, Core, Input, Ready, WriteId};
use halo_host::client::HostEvent;
use halo_host::protocol::FromHost;
use resapi::ResourceState;
use std::collections::{BTreeMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

/// The node's name (these runs have one node; [`crate::cluster`] runs three).
const NODE: &str = "n1";
/// Trace lines kept for a violation's report.
const RECENT: usize = 40;
/// Steps at one instant beyond which the core is taken to loop without letting time pass.
const SAME_INSTANT_LIMIT: u64 = 20_000;

#[derive(Debug)]
enum Event {
    /// A scheduled command or fault.
    Action(Action),
    /// An input for the core of incarnation `incarnation` (a restarted core never sees the old
    /// one's mail).
    Deliver { incarnation: u64, input: Input },
    /// A write reaches the log.
    Commit { write: u64 },
    /// A host-internal timer.
    Host(Timer),
    /// The core's wake-up.
    Tick { generation: u64 },
    /// Faults stop; resource code behaves from now on.
    Calm,
    /// The quiet time is over: check the running core, then restart the node.
    Settle,
}

#[derive(Debug)]
struct PendingWrite {
    incarnation: u64,
    id: WriteId,
    request: Request,
    timing: WriteTiming,
}

pub(crate) struct Sim {
    seed: u64,
    config: SimConfig,
    now: Duration,
    end: Duration,
    queue: BTreeMap<(Duration, u64), Event>,
    seq: u64,
    rng: SimRng,
    db: Db,
    timing: Timing,
    hosts: HostModel,
    core: Core,
    incarnation: u64,
    checker: Checker,
    next_token: u64,
    wake: Option<Duration>,
    tick_gen: u64,
    writes: BTreeMap<u64, PendingWrite>,
    next_write: u64,
    summary: Summary,
    recent: VecDeque<String>,
    instant: (Duration, u64),
}

fn fnv(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

fn describe(input: &Input) -> String {
    match input {
        Input::Command { token, command } => format!("command {token} {command:?}"),
        Input::Host(HostEvent::Fact(FromHost::State { id, state, checkpoint, status, cause, .. })) => {
            let state = ResourceState::from_raw(*state).map(|s| s.to_string()).unwrap_or_else(|_| state.to_string());
            format!("fact #{id} {state} checkpoint={checkpoint} status={status} {cause:?}")
        }
        Input::Host(e) => format!("host {e:?}"),
        Input::Loaded { revision, records } => format!("loaded revision={revision} keys={}", records.len()),
        Input::Lease { until, revision } => format!("lease until={until:?} revision={revision}"),
        Input::Change { revision, ops } => {
            let keys: Vec<String> = ops
                .iter()
                .map(|op| match op {
                    halo_cluster::Op::Put { key, .. } => format!("put {key}"),
                    halo_cluster::Op::Delete { key } => format!("delete {key}"),
                })
                .collect();
            format!("change revision={revision} [{}]", keys.join(", "))
        }
        Input::Written { write, result } => format!("written {write} {result:?}"),
        Input::Opened { id, result } => format!("opened #{id} {result:?}"),
        Input::CallFailed { id, call, error } => format!("call failed #{id} {call:?}: {error}"),
        Input::Controlled { token, result } => {
            format!("controlled {token} {}", if result.is_ok() { "ok" } else { "error" })
        }
        Input::Tick => "tick".into(),
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}

impl Sim {
    pub(crate) fn new(seed: u64, config: &SimConfig) -> Result<Sim, Violation> {
        let schedule = schedule::generate(seed, config.actions, config.chaos);
        let db = Db::with_builtin_types().map_err(|e| Violation {
            seed,
            at: Duration::ZERO,
            what: format!("setting up the database model: {e}"),
            recent: Vec::new(),
            cluster: false,
        })?;
        let mut sim = Sim {
            seed,
            config: config.clone(),
            now: Duration::ZERO,
            end: config.chaos + config.settle + config.quiet,
            queue: BTreeMap::new(),
            seq: 0,
            rng: SimRng::new(seed, 2),
            db,
            timing: Timing::default(),
            hosts: HostModel::new(schedule.behaviour),
            core: Core::new(NODE),
            incarnation: 0,
            checker: Checker::new(),
            next_token: 0,
            wake: None,
            tick_gen: 0,
            writes: BTreeMap::new(),
            next_write: 0,
            summary: Summary { seed, ..Summary::default() },
            recent: VecDeque::new(),
            instant: (Duration::ZERO, 0),
        };
        for (at, action) in schedule.actions {
            sim.schedule(at, Event::Action(action));
        }
        sim.schedule(config.chaos, Event::Calm);
        sim.schedule(config.chaos + config.settle, Event::Settle);
        Ok(sim)
    }

    pub(crate) fn run(mut self) -> Result<Summary, Violation> {
        self.boot()?;
        while let Some(((at, _), event)) = self.queue.pop_first() {
            if at > self.end {
                break;
            }
            self.now = at;
            self.handle(event)?;
            let groups = self.checker.running_groups(&self.hosts);
            self.checker.placement.observe(NODE, groups).map_err(|e| self.violation(e))?;
        }
        self.now = self.end;
        self.trace("end".into());
        self.settled("the quiet phase after the final restart")?;
        checker::persistent_state_restored(&self.core, &self.hosts, &self.db).map_err(|e| self.violation(e))?;
        self.summary.simulated = self.now;
        self.summary.host_crashes = self.hosts.stats.crashes;
        self.summary.pending_timeouts = self.hosts.stats.timeouts;
        self.summary.onlines = self.hosts.stats.onlines;
        self.summary.replies_lost = self.checker.lost_to_restart;
        Ok(self.summary)
    }

    // ---- plumbing ----

    fn schedule(&mut self, at: Duration, event: Event) {
        self.seq += 1;
        self.queue.insert((at, self.seq), event);
    }

    fn violation(&self, what: String) -> Violation {
        // A traced run (a replay) reports its whole trace, an untraced one its last steps.
        let recent = if self.config.trace { self.summary.trace.clone() } else { self.recent.iter().cloned().collect() };
        Violation { seed: self.seed, at: self.now, what, recent, cluster: false }
    }

    fn trace(&mut self, line: String) {
        let ms = u64::try_from(self.now.as_millis()).unwrap_or(u64::MAX);
        self.summary.trace_hash =
            fnv(fnv(self.summary.trace_hash ^ 0xcbf2_9ce4_8422_2325, &ms.to_le_bytes()), line.as_bytes());
        let line = format!("{:>10.3}s {line}", self.now.as_secs_f64());
        if self.config.trace {
            self.summary.trace.push(line.clone());
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(line);
    }

    fn apply_effects(&mut self, out: Outbox) {
        for (at, effect) in out {
            let incarnation = self.incarnation;
            let event = match effect {
                Effect::Fact(event) => Event::Deliver { incarnation, input: Input::Host(event) },
                Effect::Opened { id, result } => Event::Deliver { incarnation, input: Input::Opened { id, result } },
                Effect::Controlled { token, result } => {
                    Event::Deliver { incarnation, input: Input::Controlled { token, result } }
                }
                Effect::Timer(timer) => Event::Host(timer),
            };
            self.schedule(at, event);
        }
    }

    // ---- events ----

    fn handle(&mut self, event: Event) -> Result<(), Violation> {
        match event {
            Event::Action(action) => self.action(action),
            Event::Deliver { incarnation, input } => {
                if incarnation != self.incarnation {
                    return Ok(());
                }
                match &input {
                    Input::Host(event) => self.checker.on_fact(event),
                    Input::Change { ops, .. } => self.checker.on_change(ops),
                    _ => {}
                }
                self.step(input)
            }
            Event::Commit { write } => {
                let Some(w) = self.writes.remove(&write) else { return Ok(()) };
                let (response, change) = self.db.apply(&w.request);
                self.count_write(&response, &w.timing);
                self.trace(format!("commit write {} -> {response:?}", w.id));
                let written = Input::Written { write: w.id, result: Ok(response) };
                self.schedule(w.timing.answer, Event::Deliver { incarnation: w.incarnation, input: written });
                let change = Input::Change { revision: change.revision, ops: change.ops };
                self.schedule(w.timing.feed, Event::Deliver { incarnation: self.incarnation, input: change });
                Ok(())
            }
            Event::Host(timer) => {
                let mut out = Vec::new();
                self.hosts.fire(self.now, timer, &mut self.rng, &mut out);
                self.apply_effects(out);
                Ok(())
            }
            Event::Tick { generation } => {
                if generation != self.tick_gen {
                    return Ok(());
                }
                self.wake = None;
                self.step(Input::Tick)
            }
            Event::Calm => {
                self.trace("calm: faults stop".into());
                self.hosts.behaviour = Behaviour::CALM;
                Ok(())
            }
            Event::Settle => {
                self.settled("the quiet phase")?;
                checker::views_agree(&self.core, &self.hosts, &self.db).map_err(|e| self.violation(e))?;
                self.restart()
            }
        }
    }

    fn count_write(&mut self, response: &Response, timing: &WriteTiming) {
        self.summary.writes += 1;
        if matches!(response, Response::Conflict { .. }) {
            self.summary.conflicts += 1;
        }
        if timing.answer < timing.feed {
            self.summary.answer_first += 1;
        } else if timing.feed < timing.answer {
            self.summary.feed_first += 1;
        }
    }

    fn action(&mut self, action: Action) -> Result<(), Violation> {
        self.trace(format!("action {action:?}"));
        if action.is_fault() {
            self.summary.faults += 1;
        }
        match action {
            Action::Command(command) => {
                self.next_token += 1;
                let token = self.next_token;
                self.summary.commands += 1;
                self.checker.on_command(token, &command);
                self.step(Input::Command { token, command })
            }
            Action::HostCrash { shared } => {
                let hosts = self.hosts.hosts();
                let own = hosts.iter().find(|k| matches!(k, HostKey::Own(_))).copied();
                let key = if shared { HostKey::Shared } else { own.unwrap_or(HostKey::Shared) };
                let mut out = Vec::new();
                self.hosts.crash(self.now, key, &mut self.rng, &mut out);
                self.apply_effects(out);
                Ok(())
            }
            Action::HealthFail { resource } => {
                let mut out = Vec::new();
                self.hosts.health_check_fails(self.now, &resource, &mut self.rng, &mut out);
                self.apply_effects(out);
                Ok(())
            }
            Action::Restart => self.restart(),
        }
    }

    /// The node daemon dies and starts again: writes not yet in the log make it or not, every
    /// host process dies with the daemon (stopping its resources, telling nobody), and a new
    /// core starts from the database, as `Engine::start` does.
    fn restart(&mut self) -> Result<(), Violation> {
        self.summary.restarts += 1;
        self.trace("restart".into());
        for (_, w) in std::mem::take(&mut self.writes) {
            if self.rng.chance(0.5) {
                let (response, _) = self.db.apply(&w.request);
                self.count_write(&response, &w.timing);
            }
        }
        self.hosts.node_died();
        self.incarnation += 1;
        self.checker.on_restart();
        self.tick_gen += 1;
        self.wake = None;
        self.core = Core::new(NODE);
        self.boot()
    }

    fn boot(&mut self) -> Result<(), Violation> {
        let (revision, records) = self.db.snapshot();
        self.checker.on_loaded(&records);
        // One node, its own coordinator: it holds its ownership lease for the whole run.
        self.step(Input::Lease { until: Some(self.end + Duration::from_secs(3600)), revision: 0 })?;
        self.step(Input::Loaded { revision, records })
    }

    /// Nothing is in flight any more and every command has its reply.
    fn settled(&self, phase: &str) -> Result<(), Violation> {
        let busy = self.queue.values().find(|e| match e {
            Event::Deliver { incarnation, .. } => *incarnation == self.incarnation,
            Event::Host(timer) => self.hosts.live(timer),
            Event::Commit { .. } => true,
            _ => false,
        });
        if let Some(e) = busy {
            return Err(self.violation(format!("still busy at the end of {phase}: {e:?}")));
        }
        if !self.hosts.quiescent() {
            return Err(self.violation(format!("a host still works at the end of {phase}")));
        }
        self.checker.all_answered().map_err(|e| self.violation(e))
    }

    // ---- the core ----

    fn step(&mut self, input: Input) -> Result<(), Violation> {
        let ready = self.step_core(input)?;
        self.execute(ready)
    }

    fn step_core(&mut self, input: Input) -> Result<Ready, Violation> {
        self.summary.steps += 1;
        if self.summary.steps > self.config.max_steps {
            return Err(
                self.violation(format!("more than {} core steps: the core does not settle", self.config.max_steps))
            );
        }
        if self.instant.0 == self.now {
            self.instant.1 += 1;
            if self.instant.1 > SAME_INSTANT_LIMIT {
                return Err(self.violation(format!("{SAME_INSTANT_LIMIT} steps at one instant: the core loops")));
            }
        } else {
            self.instant = (self.now, 1);
        }
        self.trace(format!("in {}", describe(&input)));
        let now = self.now;
        let core = &mut self.core;
        catch_unwind(AssertUnwindSafe(|| core.step(now, input)))
            .map_err(|p| self.violation(format!("the core panicked: {}", panic_text(p.as_ref()))))
    }

    /// Carries out a Ready; undeliverable calls go back into the core at once, as the driver does.
    fn execute(&mut self, ready: Ready) -> Result<(), Violation> {
        let mut ready = ready;
        loop {
            let failed = self.execute_once(ready)?;
            if failed.is_empty() {
                return Ok(());
            }
            let mut next = Ready::default();
            for input in failed {
                let r = self.step_core(input)?;
                next.merge(r);
            }
            ready = next;
        }
    }

    fn execute_once(&mut self, ready: Ready) -> Result<Vec<Input>, Violation> {
        let now = self.now;
        let mut failed = Vec::new();
        for call in ready.calls {
            self.summary.calls += 1;
            self.trace(format!("call {call}"));
            self.checker.before_call(&call, &self.hosts).map_err(|e| self.violation(e))?;
            let id = call.id;
            let mut out = Vec::new();
            let (hosts, rng) = (&mut self.hosts, &mut self.rng);
            let result = match call.call {
                Call::Open(spec) => {
                    hosts.open(now, spec, rng, &mut out);
                    Ok(())
                }
                Call::Online { .. } => hosts.online(now, id, rng, &mut out).map_err(|e| (CallKind::Online, e)),
                Call::Offline { .. } => hosts.offline(now, id, rng, &mut out).map_err(|e| (CallKind::Offline, e)),
                Call::Terminate => hosts.terminate(now, id, rng, &mut out).map_err(|e| (CallKind::Terminate, e)),
                Call::Update { timeouts, .. } => {
                    hosts.update(now, id, timeouts, rng, &mut out).map_err(|e| (CallKind::Other, e))
                }
                Call::Close => hosts.close(now, id, rng, &mut out).map_err(|e| (CallKind::Other, e)),
                Call::Control { token, .. } => {
                    hosts.control(now, id, token, rng, &mut out);
                    Ok(())
                }
            };
            self.apply_effects(out);
            if let Err((call, error)) = result {
                failed.push(Input::CallFailed { id, call, error });
            }
        }
        for (id, request) in ready.writes {
            let timing = self.timing.draw(now, &mut self.rng);
            self.next_write += 1;
            let n = self.next_write;
            self.writes.insert(n, PendingWrite { incarnation: self.incarnation, id, request, timing });
            self.schedule(timing.commit, Event::Commit { write: n });
        }
        for (token, reply) in ready.replies {
            match &reply {
                Ok(_) => self.summary.replies_ok += 1,
                Err(_) => self.summary.replies_err += 1,
            }
            self.trace(format!("reply {token} {reply:?}"));
            let revision = self.core.revision();
            self.checker.on_reply(token, &reply, &self.db, revision).map_err(|e| self.violation(e))?;
        }
        for (id, status) in ready.operations {
            self.checker.on_operation(id, &status).map_err(|e| self.violation(e))?;
        }
        if ready.wake != self.wake {
            self.tick_gen += 1;
            self.wake = ready.wake;
            if let Some(at) = ready.wake {
                let generation = self.tick_gen;
                self.schedule(at.max(now), Event::Tick { generation });
            }
        }
        Ok(failed)
    }
}
