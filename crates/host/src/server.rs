//! The host process (`halo host`): reads requests from its parent, runs resource-type code on
//! worker threads, and enforces the contract's rules in one place:
//!
//! - entry points of one resource run one at a time (a queue per resource); only Terminate runs
//!   beside them, on its own threads;
//! - `ERROR_IO_PENDING` makes the host set OnlinePending/OfflinePending; a report counts only with
//!   a strictly larger checkpoint; PendingTimeout is the longest gap between counted reports, after
//!   which the host terminates the resource (Failed for online, Offline for offline, with
//!   `ERROR_RESOURCE_CALL_TIMED_OUT`); after a terminate the callbacks answer `Terminate`;
//! - an online error terminates and fails the resource, an offline error terminates it offline;
//! - while online, LooksAlive and IsAlive are polled from one timer queue; LooksAlive false
//!   escalates to IsAlive at once; IsAlive false fails and terminates; SignalFailure asks IsAlive;
//! - a call running past DeadlockTimeout is reported so the parent kills this process;
//! - the processes each resource starts are contained (its cgroup under the one the parent named
//!   in Hello, or its recorded process groups) and killed once it is offline or failed;
//! - when the parent goes away, or its lease is not renewed in time, every resource is
//!   terminated.

use crate::protocol::{self, Cause, FrameError, FromHost, PROTOCOL_VERSION, ResourceId, Timeouts, ToHost, TypeSpec};
use crate::scheduler::{Scheduler, Timer};
use halo_type_dummy::DummyType;
use halo_type_exec::Scope;
use halo_type_native::{NativeLibrary, NativeResourceType};
use halo_type_ocf::OcfType;
use halo_type_process::ProcessType;
use halo_type_script::ScriptType;
use resapi::{
    Callbacks, ControlCode, ExitState, FailureType, LogLevel, Monitor, OfflineFlags, OnlineFlags, OpenFlags,
    OpenRequest, Parameters, PropertyList, Resource, ResourceHandle, ResourceState, ResourceStatusEx, ResourceType,
    Status,
};
use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, RwLock, Weak};
use std::thread;
use std::time::{Duration, Instant};

/// Threads running entry points other than Terminate. A hung call holds one until the parent
/// kills the host, so there are enough to keep the others moving meanwhile.
const CALL_THREADS: usize = 16;
/// Threads running Terminate, apart from the others so that a busy resource can be stopped.
const TERMINATE_THREADS: usize = 4;
/// How often the calls in flight are checked against their DeadlockTimeout: a hung call is
/// reported at most this long after its deadline. One recurring check instead of a timer per
/// call keeps the timer queue small (a timer per call meant ~650,000 stale entries at 10,000 resources).
const DEADLOCK_CHECK: Duration = Duration::from_millis(250);
/// How late a health poll may run so that polls due close together share one wake-up of the
/// timer thread and one of a call thread (a 32nd of shorter periods, so short polls stay close).
const POLL_SLACK: Duration = Duration::from_millis(10);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A fixed set of threads taking tasks from one queue. Tasks are plain values (no boxed closure
/// per call), a batch is queued under one lock, and at most one sleeping thread is on its way at
/// a time: a futex wake per health poll was most of the host's CPU.
///
/// Whoever leaves tasks queued (a push, or a thread taking one of several) wakes a helper unless
/// one is already coming, so a task waits behind a slow or hung call only while every thread is
/// busy; a batch of quick calls is run by the few threads that arrive while it lasts.
struct Pool<T> {
    shared: Arc<PoolShared<T>>,
}

struct PoolShared<T> {
    queue: Mutex<PoolQueue<T>>,
    ready: Condvar,
}

struct PoolQueue<T> {
    tasks: VecDeque<T>,
    /// Threads waiting on `ready`: with none, a notify would be a wasted system call.
    sleeping: usize,
    /// A thread was notified and has not taken the lock yet: it will take the next task.
    waking: bool,
    closed: bool,
}

impl<T> PoolQueue<T> {
    fn wake_helper(&mut self, ready: &Condvar) {
        if !self.tasks.is_empty() && self.sleeping > 0 && !self.waking {
            self.waking = true;
            ready.notify_one();
        }
    }
}

impl<T: Send + 'static> Pool<T> {
    fn new() -> Pool<T> {
        let queue = PoolQueue { tasks: VecDeque::new(), sleeping: 0, waking: false, closed: false };
        Pool { shared: Arc::new(PoolShared { queue: Mutex::new(queue), ready: Condvar::new() }) }
    }

    /// Starts `threads` threads; `run` gets the thread's index (below `threads`) and a task.
    fn start(&self, name: &str, threads: usize, run: impl Fn(usize, T) + Send + Sync + 'static) -> std::io::Result<()> {
        let run = Arc::new(run);
        for i in 0..threads {
            let (shared, run) = (self.shared.clone(), run.clone());
            thread::Builder::new().name(format!("{name}-{i}")).spawn(move || shared.work(i, &*run))?;
        }
        Ok(())
    }

    fn run(&self, task: T) {
        self.run_all(std::iter::once(task));
    }

    fn run_all(&self, tasks: impl IntoIterator<Item = T>) {
        let mut q = lock(&self.shared.queue);
        q.tasks.extend(tasks);
        q.wake_helper(&self.shared.ready);
    }
}

impl<T> PoolShared<T> {
    fn work(&self, index: usize, run: &dyn Fn(usize, T)) {
        let mut q = lock(&self.queue);
        loop {
            if let Some(task) = q.tasks.pop_front() {
                // More waiting: a helper, so that a long task here does not hold them up.
                q.wake_helper(&self.ready);
                drop(q);
                run(index, task);
                q = lock(&self.queue);
            } else if q.closed {
                return;
            } else {
                q.sleeping += 1;
                q = self.ready.wait(q).unwrap_or_else(|p| p.into_inner());
                q.sleeping -= 1;
                // Whether notified or not, a thread is here now; a spurious wake-up at worst lets
                // a second helper be woken.
                q.waking = false;
            }
        }
    }
}

impl<T> Drop for Pool<T> {
    fn drop(&mut self) {
        // Idle threads end; threads stuck in hung calls stay until the process exits.
        lock(&self.shared.queue).closed = true;
        self.shared.ready.notify_all();
    }
}

/// A terminate for a terminator thread: the resource and the final state to record.
struct TerminateTask {
    slot: Arc<Slot>,
    end: ResourceState,
    status: Status,
    cause: Cause,
}

/// The work a resource's queue holds.
enum Call {
    Open { type_spec: TypeSpec, flags: u32 },
    Online { flags: u32, input: Vec<u8> },
    Offline { destination: Option<String>, flags: u32, input: Vec<u8> },
    LooksAlive { generation: u64 },
    IsAlive { generation: u64 },
    Control { call: u64, code: u32, input: Vec<u8>, output_size: u32 },
    Check { is_alive: bool },
    Cancel,
    Close,
}

impl Call {
    fn entry_point(&self) -> &'static str {
        match self {
            Call::Open { .. } => "open",
            Call::Online { .. } => "online",
            Call::Offline { .. } => "offline",
            Call::LooksAlive { .. } => "looks-alive",
            Call::IsAlive { .. } => "is-alive",
            Call::Control { .. } => "control",
            Call::Check { is_alive: true } => "is-alive",
            Call::Check { is_alive: false } => "looks-alive",
            Call::Cancel => "cancel",
            Call::Close => "close",
        }
    }
}

/// Which operation is in progress, from its call until its final state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Online,
    Offline,
}

#[derive(Debug)]
struct Life {
    state: ResourceState,
    op: Option<Op>,
    /// The last counted checkpoint of the operation in progress.
    checkpoint: Option<u32>,
    /// Counts accepted reports, so a pending timer knows whether one came after it.
    report_seq: u64,
    /// Bumped whenever timers armed earlier must be ignored.
    generation: u64,
    /// Set by Terminate until the next operation starts: callbacks answer `Terminate`.
    terminated: bool,
    /// The application-specific code of the last counted report.
    application_code: u32,
    /// The `CLUSRESDLL_STATUS_*` flags of the last counted report.
    status_flags: u32,
    /// A terminate is running or about to.
    terminating: bool,
    closing: bool,
}

struct Slot {
    id: ResourceId,
    name: String,
    resource: OnceLock<Box<dyn Resource>>,
    parameters: Parameters,
    timeouts: Mutex<Timeouts>,
    queue: Mutex<(VecDeque<Call>, bool)>,
    life: Mutex<Life>,
    /// Signalled when a terminate finishes.
    terminated_cv: Condvar,
}

impl Slot {
    fn timeouts(&self) -> Timeouts {
        *lock(&self.timeouts)
    }
}

/// An entry-point call running on a call thread.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    id: ResourceId,
    entry: &'static str,
    started: Instant,
    deadline: Instant,
    /// Reported as a deadlock already: once is enough, the parent kills the host.
    reported: bool,
}

/// Everything the host process holds.
enum Outgoing {
    Fact(FromHost),
    /// Answered once everything before it is written.
    Flushed(mpsc::Sender<()>),
    Stop,
}

struct Host {
    facts: Mutex<mpsc::Sender<Outgoing>>,
    slots: RwLock<HashMap<ResourceId, Arc<Slot>>>,
    types: Mutex<HashMap<String, Arc<dyn ResourceType>>>,
    libraries: Mutex<HashMap<String, Arc<NativeLibrary>>>,
    /// Resources whose queue needs draining.
    calls: Pool<Arc<Slot>>,
    terminators: Pool<TerminateTask>,
    scheduler: OnceLock<Arc<Scheduler>>,
    /// The call each call thread runs, by thread index.
    in_flight: Box<[Mutex<Option<InFlight>>]>,
    lease: Mutex<(u64, Option<Instant>)>,
    me: Weak<Host>,
}

impl Host {
    fn send(&self, fact: FromHost) {
        // The writer thread ends only when the parent is gone; then there is no one to tell.
        let _ = lock(&self.facts).send(Outgoing::Fact(fact));
    }

    fn slot(&self, id: ResourceId) -> Option<Arc<Slot>> {
        self.slots.read().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }

    fn schedule(&self, when: Instant, timer: Timer) {
        if let Some(s) = self.scheduler.get() {
            s.at(when, timer);
        }
    }

    fn schedule_coarse(&self, when: Instant, slack: Duration, timer: Timer) {
        if let Some(s) = self.scheduler.get() {
            s.at_coarse(when, slack, timer);
        }
    }

    fn reject(&self, id: ResourceId, status: Status, message: String) {
        self.send(FromHost::Rejected { id, status: status.0, message });
    }

    fn state_fact(&self, slot: &Slot, life: &Life, status: Status, cause: Cause) {
        self.send(FromHost::State {
            id: slot.id,
            state: life.state.raw(),
            checkpoint: life.checkpoint.unwrap_or(0),
            status: status.0,
            application_code: life.application_code,
            flags: life.status_flags,
            cause,
        });
    }

    // ---- requests ----

    fn handle(&self, request: ToHost) {
        match request {
            ToHost::Hello { .. } => {}
            ToHost::Open { id, name, type_spec, properties, flags, timeouts } => {
                let properties = match PropertyList::decode(&properties) {
                    Ok(p) => p,
                    Err(e) => return self.send(FromHost::Opened { id, status: e.status().0, message: e.to_string() }),
                };
                let slot = Arc::new(Slot {
                    id,
                    name,
                    resource: OnceLock::new(),
                    parameters: Parameters::new(properties),
                    timeouts: Mutex::new(timeouts),
                    queue: Mutex::new((VecDeque::new(), false)),
                    life: Mutex::new(Life {
                        state: ResourceState::Offline,
                        op: None,
                        checkpoint: None,
                        report_seq: 0,
                        generation: 0,
                        terminated: false,
                        application_code: 0,
                        status_flags: 0,
                        terminating: false,
                        closing: false,
                    }),
                    terminated_cv: Condvar::new(),
                });
                {
                    let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
                    if slots.contains_key(&id) {
                        drop(slots);
                        return self.send(FromHost::Opened {
                            id,
                            status: Status::ERROR_INVALID_STATE.0,
                            message: format!("resource {id} is already open in this host"),
                        });
                    }
                    slots.insert(id, slot.clone());
                }
                self.enqueue(&slot, Call::Open { type_spec, flags });
            }
            ToHost::Online { id, flags, input } => {
                self.with_open(id, |slot| self.enqueue(slot, Call::Online { flags, input }))
            }
            ToHost::Offline { id, destination, flags, input } => {
                self.with_open(id, |slot| self.enqueue(slot, Call::Offline { destination, flags, input }))
            }
            ToHost::Terminate { id } => {
                self.with_open(id, |slot| self.terminate(slot, Cause::Terminated, Status::ERROR_SUCCESS))
            }
            ToHost::Control { id, call, code, input, output_size } => match self.slot(id) {
                Some(slot) if !lock(&slot.life).closing => {
                    self.enqueue(&slot, Call::Control { call, code, input, output_size })
                }
                // The caller waits for this call's answer: give it one.
                _ => self.send(FromHost::ControlDone {
                    call,
                    status: Status::ERROR_RESOURCE_NOT_FOUND.0,
                    output: Vec::new(),
                    bytes_returned: 0,
                }),
            },
            ToHost::Cancel { id } => self.with_open(id, |slot| self.enqueue(slot, Call::Cancel)),
            ToHost::Check { id, is_alive } => self.with_open(id, |slot| self.enqueue(slot, Call::Check { is_alive })),
            ToHost::Update { id, properties, timeouts } => {
                self.with_open(id, |slot| match PropertyList::decode(&properties) {
                    Ok(p) => {
                        slot.parameters.replace(p);
                        *lock(&slot.timeouts) = timeouts;
                    }
                    Err(e) => self.reject(id, e.status(), e.to_string()),
                })
            }
            ToHost::Close { id } => self.with_open(id, |slot| {
                lock(&slot.life).closing = true;
                self.enqueue(slot, Call::Close)
            }),
            ToHost::Lease { duration_ms } => {
                let deadline = Instant::now() + Duration::from_millis(duration_ms);
                let renewal = {
                    let mut lease = lock(&self.lease);
                    lease.0 += 1;
                    lease.1 = Some(deadline);
                    lease.0
                };
                self.schedule(deadline, Timer::Lease { renewal });
            }
        }
    }

    fn with_open(&self, id: ResourceId, f: impl FnOnce(&Arc<Slot>)) {
        match self.slot(id) {
            Some(slot) if !lock(&slot.life).closing => f(&slot),
            Some(_) => self.reject(id, Status::ERROR_INVALID_STATE, format!("resource {id} is closing")),
            None => {
                self.reject(id, Status::ERROR_RESOURCE_NOT_FOUND, format!("resource {id} is not open in this host"))
            }
        }
    }

    // ---- the per-resource queue ----

    fn enqueue(&self, slot: &Arc<Slot>, call: Call) {
        if Self::push_call(slot, call) {
            self.calls.run(slot.clone());
        }
    }

    /// Queues a call; true when no drain of this resource is running or queued, so the caller
    /// must start one.
    fn push_call(slot: &Slot, call: Call) -> bool {
        let mut q = lock(&slot.queue);
        q.0.push_back(call);
        !std::mem::replace(&mut q.1, true)
    }

    /// Runs the resource's queued calls on call thread `thread`.
    fn drain(&self, slot: &Arc<Slot>, thread: usize) {
        loop {
            let call = {
                let mut q = lock(&slot.queue);
                match q.0.pop_front() {
                    Some(c) => c,
                    None => {
                        q.1 = false;
                        return;
                    }
                }
            };
            self.run_call(slot, call, thread);
        }
    }

    fn run_call(&self, slot: &Arc<Slot>, call: Call, thread: usize) {
        let entry = call.entry_point();
        let started = Instant::now();
        let deadline = started + ms(slot.timeouts().deadlock_ms);
        // Only the deadlock check reads another thread's cell, so the lock is uncontended.
        let cell = self.in_flight.get(thread);
        if let Some(cell) = cell {
            *lock(cell) = Some(InFlight { id: slot.id, entry, started, deadline, reported: false });
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| self.execute(slot, call)));
        if let Some(cell) = cell {
            *lock(cell) = None;
        }
        if outcome.is_err() {
            // An exception escaping an entry point takes the monitor down (WSFC: RHS terminates);
            // the parent sees the exit and recovers every resource this host held.
            self.send(FromHost::Crashed { id: slot.id, entry_point: entry.to_string() });
            let (tx, rx) = mpsc::channel();
            let _ = lock(&self.facts).send(Outgoing::Flushed(tx));
            // Wait (briefly) until the writer has written the fact, then go.
            let _ = rx.recv_timeout(Duration::from_secs(1));
            std::process::abort();
        }
    }

    fn execute(&self, slot: &Arc<Slot>, call: Call) {
        if let Call::Open { type_spec, flags } = call {
            return self.open(slot, type_spec, flags);
        }
        let Some(resource) = slot.resource.get() else {
            // Open failed: nothing else can run. Close still forgets the slot.
            if matches!(call, Call::Close) {
                self.forget(slot);
            }
            return;
        };
        match call {
            Call::Open { .. } => {}
            Call::Online { flags, input } => {
                let flags = match OnlineFlags::from_raw(flags) {
                    Ok(f) => f,
                    Err(e) => return self.reject(slot.id, e.status(), e.to_string()),
                };
                self.begin(slot, Op::Online);
                let status = resource.online_v2(flags, &input);
                self.returned(slot, Op::Online, status);
            }
            Call::Offline { destination, flags, input } => {
                let flags = match OfflineFlags::from_raw(flags) {
                    Ok(f) => f,
                    Err(e) => return self.reject(slot.id, e.status(), e.to_string()),
                };
                self.begin(slot, Op::Offline);
                let status = resource.offline_v2(destination.as_deref(), flags, &input);
                self.returned(slot, Op::Offline, status);
            }
            Call::LooksAlive { generation } => {
                if !self.still_online(slot, generation) {
                    return;
                }
                if resource.looks_alive() {
                    self.arm_poll(slot, generation, false);
                } else {
                    self.send(FromHost::Unhealthy { id: slot.id, check: "looks_alive".into() });
                    self.check_is_alive(slot, resource.as_ref(), generation);
                }
            }
            Call::IsAlive { generation } => {
                if self.still_online(slot, generation) {
                    self.check_is_alive(slot, resource.as_ref(), generation);
                }
            }
            Call::Control { call, code, input, output_size } => {
                // Bytes travel as JSON numbers (up to 4 characters each): keep the frame in bounds.
                let mut output = vec![0u8; (output_size as usize).min(protocol::MAX_FRAME / 5)];
                let r = resource.resource_control(ControlCode(code), &input, &mut output);
                let written = if r.status.is_success() { r.bytes_returned.min(output.len()) } else { 0 };
                output.truncate(written);
                self.send(FromHost::ControlDone {
                    call,
                    status: r.status.0,
                    output,
                    bytes_returned: u32::try_from(r.bytes_returned).unwrap_or(u32::MAX),
                });
            }
            Call::Check { is_alive } => {
                // Reported, not acted on: the regular polls decide failures.
                let alive = if is_alive { resource.is_alive() } else { resource.looks_alive() };
                let check = if is_alive { "is_alive" } else { "looks_alive" };
                self.send(FromHost::Checked { id: slot.id, check: check.into(), alive });
            }
            Call::Cancel => {
                let status = resource.cancel();
                if status.is_error() && status != Status::ERROR_INVALID_FUNCTION {
                    self.log(slot, LogLevel::Warning, &format!("cancel returned {status}"));
                }
            }
            Call::Close => {
                // Terminates first if needed, and never closes while a terminate still runs.
                self.stop_now(slot, Cause::Terminated, Status::ERROR_SUCCESS);
                resource.close();
                self.forget(slot);
            }
        }
    }

    fn forget(&self, slot: &Slot) {
        self.slots.write().unwrap_or_else(|p| p.into_inner()).remove(&slot.id);
        self.send(FromHost::Closed { id: slot.id });
    }

    fn log(&self, slot: &Slot, level: LogLevel, message: &str) {
        self.send(FromHost::Log { id: slot.id, level: level.raw(), message: message.to_string() });
    }

    fn open(&self, slot: &Arc<Slot>, type_spec: TypeSpec, flags: u32) {
        let result = OpenFlags::from_raw(flags).map_err(|e| (e.status(), e.to_string())).and_then(|flags| {
            let ty = self.resource_type(&type_spec)?;
            let monitor: Arc<dyn Monitor> = Arc::new(HostMonitor { host: self.me.clone() });
            ty.open(OpenRequest {
                name: slot.name.clone(),
                parameters: slot.parameters.clone(),
                callbacks: Callbacks::new(ResourceHandle(slot.id), monitor),
                flags,
            })
            .map_err(|s| (s, format!("open of {} failed: {s}", slot.name)))
        });
        match result {
            Ok(resource) => {
                let _ = slot.resource.set(resource);
                self.send(FromHost::Opened { id: slot.id, status: 0, message: String::new() });
            }
            Err((status, message)) => {
                // An open may have started processes (a script's `open`): none may outlive it.
                Scope::resource(slot.id).empty();
                self.slots.write().unwrap_or_else(|p| p.into_inner()).remove(&slot.id);
                self.send(FromHost::Opened { id: slot.id, status: status.0, message });
            }
        }
    }

    /// The type object for a spec, started once per host (WSFC: Startup once per type and monitor).
    fn resource_type(&self, spec: &TypeSpec) -> Result<Arc<dyn ResourceType>, (Status, String)> {
        let key = match spec {
            TypeSpec::Dummy => "dummy".to_string(),
            TypeSpec::Process => "process".to_string(),
            TypeSpec::Script => "script".to_string(),
            TypeSpec::Ocf => "ocf".to_string(),
            TypeSpec::Native { path, type_name } => format!("native:{path}:{type_name}"),
        };
        let mut types = lock(&self.types);
        if let Some(t) = types.get(&key) {
            return Ok(t.clone());
        }
        let ty: Arc<dyn ResourceType> = match spec {
            TypeSpec::Dummy => Arc::new(DummyType),
            TypeSpec::Process => Arc::new(ProcessType),
            TypeSpec::Script => Arc::new(ScriptType),
            TypeSpec::Ocf => Arc::new(OcfType::default()),
            TypeSpec::Native { path, type_name } => {
                let library = {
                    let mut libraries = lock(&self.libraries);
                    match libraries.get(path) {
                        Some(l) => l.clone(),
                        None => {
                            let l = NativeLibrary::load(path).map_err(|e| (e.status(), e.to_string()))?;
                            libraries.insert(path.clone(), l.clone());
                            l
                        }
                    }
                };
                let ty = NativeResourceType::new(library);
                ty.start(type_name).map_err(|e| (e.status(), e.to_string()))?;
                Arc::new(ty)
            }
        };
        types.insert(key, ty.clone());
        Ok(ty)
    }

    // ---- the pending protocol ----

    fn begin(&self, slot: &Slot, op: Op) {
        let mut life = lock(&slot.life);
        life.op = Some(op);
        life.checkpoint = None;
        life.application_code = 0;
        life.status_flags = 0;
        life.terminated = false;
        life.generation += 1;
    }

    fn returned(&self, slot: &Arc<Slot>, op: Op, status: Status) {
        let (pending, done) = match op {
            Op::Online => (ResourceState::OnlinePending, ResourceState::Online),
            Op::Offline => (ResourceState::OfflinePending, ResourceState::Offline),
        };
        if status.is_pending() {
            let mut life = lock(&slot.life);
            if life.op != Some(op) || life.terminating {
                return; // A report already finished it, or it is being terminated.
            }
            if life.state != pending {
                life.state = pending;
                self.state_fact(slot, &life, Status::ERROR_IO_PENDING, Cause::Resource);
            }
            let (generation, report_seq) = (life.generation, life.report_seq);
            drop(life);
            self.arm_pending(slot, generation, report_seq);
        } else if status.is_success() {
            let mut life = lock(&slot.life);
            if life.op != Some(op) || life.terminating {
                return; // A report already finished it, or it is being terminated.
            }
            self.finish(slot, &mut life, done, Status::ERROR_SUCCESS, Cause::Resource);
        } else {
            // An online error fails the resource; an offline error leaves it offline. Either way
            // it is terminated first.
            let end_cause = Cause::CallFailed;
            self.log(slot, LogLevel::Error, &format!("{} {} returned {status}; terminating", slot.name, op_name(op)));
            self.terminate_then(
                slot,
                if op == Op::Online { ResourceState::Failed } else { ResourceState::Offline },
                status,
                end_cause,
            );
        }
    }

    /// Records a final state; arms health polls when online. Offline or Failed, nothing the
    /// resource started may keep running: whatever is left of it is killed before the fact
    /// goes out (so the next online cannot meet a straggler).
    fn finish(&self, slot: &Slot, life: &mut Life, state: ResourceState, status: Status, cause: Cause) {
        if state != ResourceState::Online && !Scope::resource(slot.id).empty() {
            self.log(slot, LogLevel::Error, "processes of the resource survived SIGKILL for 5 s");
        }
        life.state = state;
        life.op = None;
        life.generation += 1;
        let generation = life.generation;
        self.state_fact(slot, life, status, cause);
        if state == ResourceState::Online {
            self.arm_poll(slot, generation, false);
            self.arm_poll(slot, generation, true);
        }
    }

    fn arm_pending(&self, slot: &Slot, generation: u64, report_seq: u64) {
        let when = Instant::now() + ms(slot.timeouts().pending_ms);
        self.schedule(when, Timer::Pending { id: slot.id, generation, report_seq });
    }

    /// SetResourceStatusEx from the resource.
    fn report(&self, id: ResourceId, status: ResourceStatusEx) -> ExitState {
        let Some(slot) = self.slot(id) else { return ExitState::Terminate };
        let mut life = lock(&slot.life);
        if life.terminated || life.terminating {
            return ExitState::Terminate;
        }
        let Some(op) = life.op else {
            drop(life);
            self.log(
                &slot,
                LogLevel::Warning,
                &format!("status report {:?} ignored: no operation is pending", status.state),
            );
            return ExitState::Continue;
        };
        if life.checkpoint.is_some_and(|last| status.checkpoint <= last) {
            return ExitState::Continue; // Not a new report.
        }
        let (pending, done) = match op {
            Op::Online => (ResourceState::OnlinePending, ResourceState::Online),
            Op::Offline => (ResourceState::OfflinePending, ResourceState::Offline),
        };
        life.checkpoint = Some(status.checkpoint);
        life.application_code = status.application_specific_error_code;
        life.status_flags = status.flags.bits();
        life.report_seq += 1;
        match status.state {
            s if s == pending || s == ResourceState::Pending => {
                life.state = pending;
                self.state_fact(&slot, &life, Status::ERROR_IO_PENDING, Cause::Resource);
                let (generation, seq) = (life.generation, life.report_seq);
                drop(life);
                self.arm_pending(&slot, generation, seq);
            }
            s if s == done => self.finish(&slot, &mut life, done, Status::ERROR_SUCCESS, Cause::Resource),
            // A pending offline answered "Online" with a CLUSRESDLL_STATUS_OFFLINE_* reason: the
            // resource defers (or vetoes) going offline, and stays up. The engine decides what
            // follows (a queued move retries, any other move is called off).
            ResourceState::Online if op == Op::Offline && status.flags.intersects(OFFLINE_DEFERRALS) => {
                self.finish(
                    &slot,
                    &mut life,
                    ResourceState::Online,
                    Status::ERROR_CLUSTER_RESOURCE_VETOED_CALL,
                    Cause::Resource,
                );
            }
            ResourceState::Failed => {
                drop(life);
                self.terminate_then(&slot, ResourceState::Failed, Status::ERROR_RESOURCE_FAILED, Cause::Resource);
            }
            other => {
                drop(life);
                self.log(
                    &slot,
                    LogLevel::Warning,
                    &format!("status report {other} ignored while {} is pending", op_name(op)),
                );
            }
        }
        ExitState::Continue
    }

    // ---- terminate ----

    /// Terminates on a terminator thread, then records `end`.
    fn terminate_then(&self, slot: &Arc<Slot>, end: ResourceState, status: Status, cause: Cause) {
        {
            let mut life = lock(&slot.life);
            if life.terminating {
                return;
            }
            life.terminating = true;
            life.terminated = true;
            life.generation += 1;
            life.state = end; // Polls and reports stop counting now; the fact follows the terminate.
        }
        self.terminators.run(TerminateTask { slot: slot.clone(), end, status, cause });
    }

    fn finish_terminate(&self, slot: &Slot, end: ResourceState, status: Status, cause: Cause) {
        if let Some(r) = slot.resource.get() {
            r.terminate();
        }
        let mut life = lock(&slot.life);
        life.terminating = false;
        life.op = None;
        self.finish(slot, &mut life, end, status, cause);
        drop(life);
        slot.terminated_cv.notify_all();
    }

    /// Waits until no terminate of this resource is running.
    fn wait_terminated<'a>(&self, slot: &'a Slot) -> MutexGuard<'a, Life> {
        let mut life = lock(&slot.life);
        while life.terminating {
            life = match slot.terminated_cv.wait(life) {
                Ok(l) => l,
                Err(p) => p.into_inner(),
            };
        }
        life
    }

    /// Terminate requested by the parent (or by close): runs beside any call.
    fn terminate(&self, slot: &Arc<Slot>, cause: Cause, status: Status) {
        let end = if lock(&slot.life).state == ResourceState::Failed {
            ResourceState::Failed
        } else {
            ResourceState::Offline
        };
        self.terminate_then(slot, end, status, cause);
    }

    /// Terminates on the calling thread (close, shutdown); one already running is waited for
    /// instead of started twice.
    fn stop_now(&self, slot: &Slot, cause: Cause, status: Status) {
        {
            let mut life = self.wait_terminated(slot);
            if matches!(life.state, ResourceState::Offline | ResourceState::Failed) && life.op.is_none() {
                return;
            }
            life.terminating = true;
            life.terminated = true;
            life.generation += 1;
        }
        let end = ResourceState::Offline;
        self.finish_terminate(slot, end, status, cause);
    }

    // ---- health ----

    fn still_online(&self, slot: &Slot, generation: u64) -> bool {
        let life = lock(&slot.life);
        life.state == ResourceState::Online && life.generation == generation && !life.terminating
    }

    fn arm_poll(&self, slot: &Slot, generation: u64, is_alive: bool) {
        let t = slot.timeouts();
        let (period, timer) = if is_alive {
            (t.is_alive_ms, Timer::IsAlive { id: slot.id, generation })
        } else {
            (t.looks_alive_ms, Timer::LooksAlive { id: slot.id, generation })
        };
        let period = ms(period);
        self.schedule_coarse(Instant::now() + period, POLL_SLACK.min(period / 32), timer);
    }

    fn check_is_alive(&self, slot: &Arc<Slot>, resource: &dyn Resource, generation: u64) {
        if resource.is_alive() {
            self.arm_poll(slot, generation, true);
        } else {
            self.send(FromHost::Unhealthy { id: slot.id, check: "is_alive".into() });
            self.terminate_then(slot, ResourceState::Failed, Status::ERROR_RESOURCE_FAILED, Cause::HealthCheck);
        }
    }

    // ---- timers ----

    /// Timers due at once: the polls among them reach the call threads as one batch.
    fn fire_all(&self, due: &[Timer]) {
        let mut drains = Vec::new();
        for &timer in due {
            match timer {
                Timer::LooksAlive { id, generation } | Timer::IsAlive { id, generation } => {
                    let Some(slot) = self.slot(id) else { continue };
                    if !self.still_online(&slot, generation) {
                        continue;
                    }
                    let call = if matches!(timer, Timer::LooksAlive { .. }) {
                        Call::LooksAlive { generation }
                    } else {
                        Call::IsAlive { generation }
                    };
                    if Self::push_call(&slot, call) {
                        drains.push(slot);
                    }
                }
                other => self.fire(other),
            }
        }
        self.calls.run_all(drains);
    }

    /// A timer other than a poll.
    fn fire(&self, timer: Timer) {
        match timer {
            // Batched by fire_all.
            Timer::LooksAlive { .. } | Timer::IsAlive { .. } => self.fire_all(&[timer]),
            Timer::Pending { id, generation, report_seq } => {
                let Some(slot) = self.slot(id) else { return };
                let op = {
                    let life = lock(&slot.life);
                    if life.generation != generation || life.report_seq != report_seq || life.terminating {
                        return;
                    }
                    life.op
                };
                let Some(op) = op else { return };
                self.log(
                    &slot,
                    LogLevel::Error,
                    &format!("{} {}: no status report within PendingTimeout; terminating", slot.name, op_name(op)),
                );
                let end = if op == Op::Online { ResourceState::Failed } else { ResourceState::Offline };
                self.terminate_then(&slot, end, Status::ERROR_RESOURCE_CALL_TIMED_OUT, Cause::PendingTimeout);
            }
            Timer::DeadlockCheck => {
                let now = Instant::now();
                for cell in self.in_flight.iter() {
                    let hung = {
                        let mut call = lock(cell);
                        match call.as_mut() {
                            Some(c) if !c.reported && c.deadline <= now => {
                                c.reported = true;
                                Some(*c)
                            }
                            _ => None,
                        }
                    };
                    if let Some(c) = hung {
                        self.send(FromHost::Deadlock {
                            id: c.id,
                            entry_point: c.entry.to_string(),
                            elapsed_ms: u64::try_from(now.duration_since(c.started).as_millis()).unwrap_or(u64::MAX),
                        });
                    }
                }
                self.schedule(now + DEADLOCK_CHECK, Timer::DeadlockCheck);
            }
            Timer::Heartbeat => {
                self.send(FromHost::Heartbeat);
                self.schedule(Instant::now() + Duration::from_millis(protocol::HEARTBEAT_MS), Timer::Heartbeat);
            }
            Timer::Lease { renewal } => {
                let expired = {
                    let mut lease = lock(&self.lease);
                    let expired = lease.0 == renewal && lease.1.is_some_and(|d| d <= Instant::now());
                    if expired {
                        lease.1 = None;
                    }
                    expired
                };
                if expired {
                    // Not on the timer thread: deadlock and pending timers must keep firing.
                    let host = self.me.clone();
                    let spawned = thread::Builder::new().name("halo-host-lease".into()).spawn(move || {
                        if let Some(h) = host.upgrade() {
                            h.terminate_all(Cause::LeaseExpired, Status::ERROR_CLUSTER_NO_QUORUM);
                        }
                    });
                    if spawned.is_err() {
                        self.terminate_all(Cause::LeaseExpired, Status::ERROR_CLUSTER_NO_QUORUM);
                    }
                }
            }
        }
    }

    /// Terminates every resource that is not offline, in parallel, and waits for all of them.
    fn terminate_all(&self, cause: Cause, status: Status) {
        let slots: Vec<Arc<Slot>> = self.slots.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        let (done_tx, done_rx) = mpsc::channel();
        let mut waiting = 0;
        for slot in slots {
            let idle = {
                let life = lock(&slot.life);
                matches!(life.state, ResourceState::Offline | ResourceState::Failed)
                    && life.op.is_none()
                    && !life.terminating
            };
            if slot.resource.get().is_none() || idle {
                continue;
            }
            waiting += 1;
            let (host, done_tx) = (self.me.clone(), done_tx.clone());
            // Plain threads, not the pools: their threads may all be stuck in hung calls.
            let spawned = thread::Builder::new().name("halo-host-stop".into()).spawn(move || {
                if let Some(host) = host.upgrade() {
                    host.stop_now(&slot, cause, status);
                }
                let _ = done_tx.send(());
            });
            if spawned.is_err() {
                waiting -= 1;
            }
        }
        drop(done_tx);
        for _ in 0..waiting {
            if done_rx.recv().is_err() {
                break;
            }
        }
    }
}

fn ms(v: u32) -> Duration {
    Duration::from_millis(v.into())
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Online => "online",
        Op::Offline => "offline",
    }
}

/// The callbacks every resource in this host reports through.
struct HostMonitor {
    host: Weak<Host>,
}

impl Monitor for HostMonitor {
    fn set_resource_status_ex(&self, handle: ResourceHandle, status: ResourceStatusEx) -> ExitState {
        match self.host.upgrade() {
            Some(h) => h.report(handle.0, status),
            None => ExitState::Terminate,
        }
    }

    fn log_event(&self, handle: ResourceHandle, level: LogLevel, message: &str) {
        if let Some(h) = self.host.upgrade() {
            h.send(FromHost::Log { id: handle.0, level: level.raw(), message: message.to_string() });
        }
    }

    fn set_resource_locked_mode(&self, handle: ResourceHandle, locked: bool, reason: u32) {
        if let Some(h) = self.host.upgrade() {
            h.send(FromHost::LockedMode { id: handle.0, locked, reason });
        }
    }

    fn signal_failure(&self, handle: ResourceHandle, failure: FailureType, code: u32) {
        let Some(h) = self.host.upgrade() else { return };
        h.send(FromHost::FailureSignal { id: handle.0, failure_type: failure.raw(), code });
        // Confirm with IsAlive, through the queue like any call.
        if let Some(slot) = h.slot(handle.0) {
            let generation = lock(&slot.life).generation;
            h.enqueue(&slot, Call::IsAlive { generation });
        }
    }

    fn set_in_memory_node_local_properties(&self, handle: ResourceHandle, properties: PropertyList) -> Status {
        let Some(h) = self.host.upgrade() else { return Status::ERROR_INVALID_STATE };
        h.send(FromHost::Log {
            id: handle.0,
            level: LogLevel::Information.raw(),
            message: format!("node-local properties: {} published", properties.len()),
        });
        Status::ERROR_SUCCESS
    }
}

/// The `CLUSRESDLL_STATUS_*` reasons with which a resource defers an offline.
const OFFLINE_DEFERRALS: resapi::StatusFlags = resapi::StatusFlags::OFFLINE_BUSY
    .union(resapi::StatusFlags::OFFLINE_SOURCE_THROTTLED)
    .union(resapi::StatusFlags::OFFLINE_DESTINATION_THROTTLED)
    .union(resapi::StatusFlags::OFFLINE_DESTINATION_REJECTED);

/// Why the host stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The parent spoke another protocol version.
    #[error("parent speaks protocol version {0}, this host speaks {PROTOCOL_VERSION}")]
    Version(u32),
    /// The first frame was not Hello.
    #[error("the parent's first message was not Hello")]
    NoHello,
    /// A frame could not be read.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A thread could not be started.
    #[error("cannot start host threads: {0}")]
    Threads(#[from] std::io::Error),
}

/// Runs a host: requests from `input`, facts to `output`. Returns when the parent closes
/// `input` (after terminating every resource) or on a protocol error.
pub fn serve(mut input: impl Read, output: impl Write + Send + 'static) -> Result<(), ServeError> {
    let cgroup = match protocol::read_frame::<ToHost>(&mut input)? {
        ToHost::Hello { version, cgroup } if version == protocol::PROTOCOL_VERSION => cgroup,
        ToHost::Hello { version, .. } => return Err(ServeError::Version(version)),
        _ => return Err(ServeError::NoHello),
    };
    let (facts_tx, facts_rx) = mpsc::channel::<Outgoing>();
    let writer = thread::Builder::new().name("halo-host-writer".into()).spawn(move || {
        let mut output = std::io::BufWriter::new(output);
        for message in facts_rx {
            match message {
                Outgoing::Fact(fact) => {
                    if write_fact(&mut output, fact).is_err() {
                        return; // The parent is gone; the reader sees it too.
                    }
                }
                Outgoing::Flushed(done) => {
                    let _ = done.send(());
                }
                Outgoing::Stop => return,
            }
        }
    })?;
    let host = Arc::new_cyclic(|me| Host {
        facts: Mutex::new(facts_tx),
        slots: RwLock::new(HashMap::new()),
        types: Mutex::new(HashMap::new()),
        libraries: Mutex::new(HashMap::new()),
        calls: Pool::new(),
        terminators: Pool::new(),
        scheduler: OnceLock::new(),
        in_flight: (0..CALL_THREADS).map(|_| Mutex::new(None)).collect(),
        lease: Mutex::new((0, None)),
        me: me.clone(),
    });
    let weak = Arc::downgrade(&host);
    // Before any resource opens: their processes must be killable as a whole from the start.
    halo_type_exec::contain::contain(cgroup.map(Into::into), {
        let host = weak.clone();
        move |id, pgid| {
            if let Some(h) = host.upgrade() {
                h.send(FromHost::ProcessGroup { id, pgid });
            }
        }
    });
    host.calls.start("halo-host-call", CALL_THREADS, {
        let host = weak.clone();
        move |thread, slot| {
            if let Some(h) = host.upgrade() {
                h.drain(&slot, thread);
            }
        }
    })?;
    host.terminators.start("halo-host-term", TERMINATE_THREADS, {
        let host = weak.clone();
        move |_, t: TerminateTask| {
            if let Some(h) = host.upgrade() {
                h.finish_terminate(&t.slot, t.end, t.status, t.cause);
            }
        }
    })?;
    let scheduler = Scheduler::start(move |due| {
        if let Some(h) = weak.upgrade() {
            h.fire_all(due);
        }
    })?;
    let _ = host.scheduler.set(scheduler.clone());
    host.send(FromHost::Hello { version: protocol::PROTOCOL_VERSION, pid: std::process::id() });
    host.schedule(Instant::now() + Duration::from_millis(protocol::HEARTBEAT_MS), Timer::Heartbeat);
    host.schedule(Instant::now() + DEADLOCK_CHECK, Timer::DeadlockCheck);

    let result = loop {
        match protocol::read_frame::<ToHost>(&mut input) {
            Ok(request) => host.handle(request),
            Err(FrameError::Closed) => break Ok(()),
            Err(e) => break Err(ServeError::Frame(e)),
        }
    };
    // The parent is gone (or spoke garbage): nothing may keep running without it.
    host.terminate_all(Cause::Terminated, Status::ERROR_SUCCESS);
    scheduler.stop();
    // Threads stuck in hung calls may keep the host alive: stop the writer explicitly, and let the
    // caller exit the process.
    let _ = lock(&host.facts).send(Outgoing::Stop);
    let _ = writer.join();
    result
}

/// Writes a fact; one over the frame limit is replaced by what tells the parent so: a waiting
/// control call gets its answer (an error), anything else a `Rejected` naming the size and the
/// limit, so that nothing waits for a fact that was never sent.
fn write_fact(output: &mut impl Write, fact: FromHost) -> Result<(), FrameError> {
    let n = match protocol::write_frame(output, &fact) {
        Err(FrameError::TooLarge(n)) => n,
        other => return other,
    };
    let message = format!("a {n}-byte fact exceeds the {}-byte frame limit", protocol::MAX_FRAME);
    tracing::error!(bytes = n, "a fact over the frame limit was replaced by an error");
    let replacement = match fact {
        FromHost::ControlDone { call, .. } => FromHost::ControlDone {
            call,
            status: Status::ERROR_INSUFFICIENT_BUFFER.0,
            output: Vec::new(),
            bytes_returned: 0,
        },
        other => FromHost::Rejected { id: fact_id(&other), status: Status::ERROR_INVALID_DATA.0, message },
    };
    protocol::write_frame(output, &replacement)
}

/// The resource a fact is about (0 for the host's own facts).
fn fact_id(fact: &FromHost) -> ResourceId {
    match fact {
        FromHost::Opened { id, .. }
        | FromHost::State { id, .. }
        | FromHost::Unhealthy { id, .. }
        | FromHost::Checked { id, .. }
        | FromHost::Log { id, .. }
        | FromHost::LockedMode { id, .. }
        | FromHost::FailureSignal { id, .. }
        | FromHost::Closed { id }
        | FromHost::Deadlock { id, .. }
        | FromHost::Crashed { id, .. }
        | FromHost::ProcessGroup { id, .. }
        | FromHost::Rejected { id, .. } => *id,
        FromHost::Hello { .. } | FromHost::ControlDone { .. } | FromHost::Heartbeat => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fact_over_the_frame_limit_becomes_an_error_the_parent_sees() {
        let huge = "x".repeat(protocol::MAX_FRAME + 1);
        let mut out = Vec::new();
        write_fact(&mut out, FromHost::Log { id: 7, level: 3, message: huge }).unwrap();
        match protocol::read_frame::<FromHost>(&mut out.as_slice()).unwrap() {
            FromHost::Rejected { id: 7, message, .. } => assert!(message.contains("frame limit"), "{message}"),
            other => panic!("{other:?}"),
        }
        let mut out = Vec::new();
        let answer =
            FromHost::ControlDone { call: 9, status: 0, output: vec![255; protocol::MAX_FRAME], bytes_returned: 1 };
        write_fact(&mut out, answer).unwrap();
        let replaced = protocol::read_frame::<FromHost>(&mut out.as_slice()).unwrap();
        assert!(matches!(replaced, FromHost::ControlDone { call: 9, status: 122, .. }), "{replaced:?}");
    }

    /// The pool wakes one helper at a time: a task that blocks must still not hold up the tasks
    /// queued behind it while other threads are free.
    #[test]
    fn a_blocked_task_does_not_hold_up_the_rest_of_its_batch() {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let (done_tx, done_rx) = mpsc::channel::<u32>();
        let done_tx = Mutex::new(done_tx);
        let pool = Pool::new();
        pool.start("test-pool", 3, move |_, task: u32| {
            if task == 0 {
                let _ = lock(&release_rx).recv();
            }
            let _ = lock(&done_tx).send(task);
        })
        .unwrap();
        // Only threads woken by the policy under test may take the tasks: wait for all to sleep.
        let deadline = Instant::now() + Duration::from_secs(10);
        while lock(&pool.shared.queue).sleeping < 3 {
            assert!(Instant::now() < deadline, "pool threads did not start");
            thread::yield_now();
        }
        pool.run_all(0..6);
        let mut done: Vec<u32> = (1..6).map(|_| done_rx.recv_timeout(Duration::from_secs(10)).unwrap()).collect();
        done.sort_unstable();
        assert_eq!(done, [1, 2, 3, 4, 5]);
        // A later single task gets a thread too, with task 0 still blocked.
        pool.run(6);
        assert_eq!(done_rx.recv_timeout(Duration::from_secs(10)).unwrap(), 6);
        release_tx.send(()).unwrap();
        assert_eq!(done_rx.recv_timeout(Duration::from_secs(10)).unwrap(), 0);
    }
}
