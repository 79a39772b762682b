//! # halo-type-dummy — an in-memory resource for tests and benchmarks
//!
//! Nothing runs: the resource is a flag in memory. Its private properties choose how it behaves,
//! so that every rule of the host can be exercised: delays, pending with N checkpoints, a stalled
//! pending operation, failing online, failing health after a while, hanging in an entry point,
//! and crashing the process.
//!
//! This crate owns that behaviour only; it must not enforce any rule (the host does).

use nix::sys::signal::{Signal, raise};
use resapi::{
    Callbacks, ExitState, FailureType, LogLevel, OfflineFlags, OnlineFlags, OpenRequest, Parameters, PendingWorker,
    PropertyItem, PropertyTable, Resource, ResourceState, ResourceStatusEx, ResourceType, Status, WorkerContext,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The entry points `HangIn` and `CrashIn` may name.
pub const ENTRY_POINTS: &[&str] =
    &["open", "online", "offline", "terminate", "looks-alive", "is-alive", "control", "close"];

/// The private properties of `dummy`.
pub const PROPERTIES: PropertyTable = PropertyTable {
    items: &[
        PropertyItem::dword("OnlineDelayMs", 0, 0, 86_400_000, "time online takes; >0 makes online pending"),
        PropertyItem::dword("OfflineDelayMs", 0, 0, 86_400_000, "time offline takes; >0 makes offline pending"),
        PropertyItem::dword(
            "Checkpoints",
            0,
            0,
            1_000_000,
            "pending reports (checkpoints 1..N) spread over the delay; >0 makes the operation pending",
        ),
        PropertyItem::dword(
            "StallAfterCheckpoint",
            0,
            0,
            1_000_000,
            "stop reporting after this checkpoint (0 = never): the operation stays pending",
        ),
        PropertyItem::boolean("RepeatCheckpoints", false, "send every pending report twice (the host counts it once)"),
        PropertyItem::boolean(
            "FailOnline",
            false,
            "online fails (ERROR_RESOURCE_FAILED, or a Failed report if pending)",
        ),
        PropertyItem::boolean("FailOffline", false, "offline returns ERROR_RESOURCE_FAILED"),
        PropertyItem::boolean("Locked", false, "once online, declare locked mode (offline must then be forced)"),
        PropertyItem::dword(
            "CallDelayMs",
            0,
            0,
            3_600_000,
            "every entry point but terminate takes this long; entry points found running at once are logged",
        ),
        PropertyItem::boolean(
            "IgnoreTerminate",
            false,
            "terminate leaves the pending worker running; it stops when its next report is answered Terminate",
        ),
        PropertyItem::dword(
            "SignalFailureAfterMs",
            0,
            0,
            u32::MAX,
            "this long after online, turn unhealthy and call SignalFailure (0 = never)",
        ),
        PropertyItem::dword(
            "FailHealthAfterMs",
            0,
            0,
            u32::MAX,
            "LooksAlive and IsAlive turn false this long after online (0 = never)",
        ),
        PropertyItem::string("HangIn", None, "an entry point that never returns (open, online, offline, …)"),
        PropertyItem::string("CrashIn", None, "an entry point that crashes the process (see CrashWith)"),
        PropertyItem::string("CrashWith", Some("abort"), "how CrashIn crashes: abort, segfault or panic"),
    ],
};

/// The `dummy` resource type.
#[derive(Debug, Default)]
pub struct DummyType;

impl ResourceType for DummyType {
    fn open(&self, request: OpenRequest) -> Result<Box<dyn Resource>, Status> {
        let behaviour = Behaviour::read(&request.parameters).inspect_err(|e| {
            request.callbacks.log_event(LogLevel::Error, &format!("dummy {}: {}", request.name, e.0));
        })?;
        behaviour.trip("open");
        Ok(Box::new(Dummy {
            active: Mutex::new(None),
            callbacks: request.callbacks,
            parameters: request.parameters,
            online_since: Arc::new(Mutex::new(None)),
            worker: PendingWorker::default(),
            signaller: PendingWorker::default(),
            behaviour: Mutex::new(behaviour),
        }))
    }
}

/// What the properties asked for, validated.
#[derive(Debug, Clone)]
struct Behaviour {
    online_delay: Duration,
    offline_delay: Duration,
    checkpoints: u32,
    stall_after: u32,
    repeat_checkpoints: bool,
    fail_online: bool,
    fail_offline: bool,
    locked: bool,
    call_delay: Duration,
    ignore_terminate: bool,
    signal_failure_after: Option<Duration>,
    fail_health_after: Option<Duration>,
    hang_in: Option<String>,
    crash_in: Option<String>,
    crash_with: String,
}

struct BehaviourError(String, Status);

impl From<BehaviourError> for Status {
    fn from(e: BehaviourError) -> Status {
        e.1
    }
}

impl Behaviour {
    fn read(parameters: &Parameters) -> Result<Behaviour, BehaviourError> {
        let p = parameters.with(|list| PROPERTIES.verify(list)).map_err(|e| BehaviourError(e.to_string(), e.status))?;
        let entry = |name: &str| -> Result<Option<String>, BehaviourError> {
            match p.string(name) {
                None => Ok(None),
                Some(e) if ENTRY_POINTS.contains(&e) => Ok(Some(e.to_string())),
                Some(e) => Err(BehaviourError(
                    format!("property {name:?}: {e:?} is not an entry point; allowed: {}", ENTRY_POINTS.join(", ")),
                    Status::ERROR_INVALID_PARAMETER,
                )),
            }
        };
        let crash_with = p.string("CrashWith").unwrap_or("abort").to_string();
        if !["abort", "segfault", "panic"].contains(&crash_with.as_str()) {
            return Err(BehaviourError(
                format!("property \"CrashWith\": {crash_with:?} is not one of abort, segfault, panic"),
                Status::ERROR_INVALID_PARAMETER,
            ));
        }
        let ms = |name: &str| Duration::from_millis(u64::from(p.dword(name).unwrap_or(0)));
        Ok(Behaviour {
            online_delay: ms("OnlineDelayMs"),
            offline_delay: ms("OfflineDelayMs"),
            checkpoints: p.dword("Checkpoints").unwrap_or(0),
            stall_after: p.dword("StallAfterCheckpoint").unwrap_or(0),
            repeat_checkpoints: p.flag("RepeatCheckpoints"),
            fail_online: p.flag("FailOnline"),
            fail_offline: p.flag("FailOffline"),
            locked: p.flag("Locked"),
            call_delay: ms("CallDelayMs"),
            ignore_terminate: p.flag("IgnoreTerminate"),
            signal_failure_after: p
                .dword("SignalFailureAfterMs")
                .filter(|v| *v > 0)
                .map(|v| Duration::from_millis(v.into())),
            fail_health_after: p.dword("FailHealthAfterMs").filter(|v| *v > 0).map(|v| Duration::from_millis(v.into())),
            hang_in: entry("HangIn")?,
            crash_in: entry("CrashIn")?,
            crash_with,
        })
    }

    /// Hangs or crashes if asked to in `entry`.
    fn trip(&self, entry: &str) {
        if self.crash_in.as_deref() == Some(entry) {
            match self.crash_with.as_str() {
                "segfault" => {
                    // If raising fails we still must not return normally.
                    let _ = raise(Signal::SIGSEGV);
                    std::process::abort();
                }
                "panic" => panic!("dummy: CrashIn={entry} with CrashWith=panic"),
                _ => std::process::abort(),
            }
        }
        if self.hang_in.as_deref() == Some(entry) {
            loop {
                std::thread::park();
            }
        }
    }
}

struct Dummy {
    /// The entry point running now, to detect a host that breaks serialization.
    active: Mutex<Option<&'static str>>,
    callbacks: Callbacks,
    parameters: Parameters,
    online_since: Arc<Mutex<Option<Instant>>>,
    worker: PendingWorker,
    signaller: PendingWorker,
    behaviour: Mutex<Behaviour>,
}

/// Marks an entry point as running for as long as it lives.
struct Entered<'a> {
    dummy: &'a Dummy,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        *self.dummy.active.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

impl Dummy {
    /// Every entry point but terminate starts here: hang or crash if asked, take `CallDelayMs`,
    /// and log if another entry point is running at the same time.
    fn enter(&self, entry: &'static str) -> Entered<'_> {
        let b = self.behaviour();
        b.trip(entry);
        let previous = self.active.lock().unwrap_or_else(|p| p.into_inner()).replace(entry);
        if let Some(other) = previous {
            self.callbacks.log_event(LogLevel::Error, &format!("concurrent entry points: {entry} while {other} runs"));
        }
        if !b.call_delay.is_zero() {
            std::thread::sleep(b.call_delay);
        }
        Entered { dummy: self }
    }

    /// Properties may have changed since open: re-read them, as a DLL re-reads its key.
    fn refresh(&self) -> Result<(), Status> {
        match Behaviour::read(&self.parameters) {
            Ok(b) => {
                *self.behaviour.lock().unwrap_or_else(|p| p.into_inner()) = b;
                Ok(())
            }
            Err(e) => {
                self.callbacks.log_event(LogLevel::Error, &e.0);
                Err(e.1)
            }
        }
    }

    fn behaviour(&self) -> Behaviour {
        self.behaviour.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn stop_worker(&self) {
        self.worker.stop();
        self.signaller.stop();
    }

    fn set_online(&self, online: bool) {
        *self.online_since.lock().unwrap_or_else(|p| p.into_inner()) = online.then(Instant::now);
    }

    fn healthy(&self) -> bool {
        let since = *self.online_since.lock().unwrap_or_else(|p| p.into_inner());
        match (since, self.behaviour().fail_health_after) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(t), Some(after)) => t.elapsed() < after,
        }
    }

    /// Runs a pending operation on a worker: checkpoints spread over `delay`, then `done`.
    fn pending(&self, pending: ResourceState, delay: Duration, done: ResourceState) -> Status {
        let b = self.behaviour();
        let callbacks = self.callbacks.clone();
        let online_since = self.online_since.clone();
        let steps = b.checkpoints;
        let step = delay / (steps + 1);
        let work = move |ctx: &WorkerContext| -> u32 {
            for checkpoint in 1..=steps {
                if ctx.sleep(step) {
                    return 1;
                }
                let status = ResourceStatusEx::new(pending, checkpoint);
                let repeats = if b.repeat_checkpoints { 2 } else { 1 };
                for _ in 0..repeats {
                    if callbacks.set_resource_status_ex(status) == ExitState::Terminate {
                        callbacks.log_event(LogLevel::Information, "status report answered Terminate; worker stops");
                        return 1;
                    }
                }
                if b.stall_after != 0 && checkpoint >= b.stall_after {
                    // Stalled: report nothing more until terminated.
                    while !ctx.sleep(Duration::from_secs(3600)) {}
                    return 1;
                }
            }
            if ctx.sleep(step) {
                return 1;
            }
            if done == ResourceState::Online {
                *online_since.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            }
            callbacks.set_resource_status_ex(ResourceStatusEx::new(done, steps + 1));
            0
        };
        self.worker.start("dummy-pending", work)
    }

    /// `SignalFailureAfterMs`: a worker that turns the resource unhealthy and signals it.
    fn arm_signal_failure(&self, after: Duration) {
        let (callbacks, online_since) = (self.callbacks.clone(), self.online_since.clone());
        let started = self.signaller.start("dummy-signal", move |ctx| {
            if ctx.sleep(after) {
                return 1;
            }
            *online_since.lock().unwrap_or_else(|p| p.into_inner()) = None;
            callbacks.signal_failure(FailureType::General, 0);
            0
        });
        if started.is_error() {
            self.callbacks.log_event(LogLevel::Error, "cannot start the SignalFailure worker");
        }
    }
}

impl Resource for Dummy {
    fn online_v2(&self, _flags: OnlineFlags, _input: &[u8]) -> Status {
        if let Err(status) = self.refresh() {
            return status;
        }
        let _entered = self.enter("online");
        let b = self.behaviour();
        self.stop_worker();
        if let Some(after) = b.signal_failure_after {
            self.arm_signal_failure(after);
        }
        let is_pending = b.checkpoints > 0 || !b.online_delay.is_zero();
        match (is_pending, b.fail_online) {
            (false, true) => Status::ERROR_RESOURCE_FAILED,
            (false, false) => {
                self.set_online(true);
                if b.locked {
                    self.callbacks.set_resource_locked_mode(true, 0);
                }
                Status::ERROR_SUCCESS
            }
            (true, fail) => {
                let done = if fail { ResourceState::Failed } else { ResourceState::Online };
                self.pending(ResourceState::OnlinePending, b.online_delay, done)
            }
        }
    }

    fn offline_v2(&self, _destination: Option<&str>, _flags: OfflineFlags, _input: &[u8]) -> Status {
        if let Err(status) = self.refresh() {
            return status;
        }
        let _entered = self.enter("offline");
        let b = self.behaviour();
        self.stop_worker();
        self.set_online(false);
        if b.fail_offline {
            Status::ERROR_RESOURCE_FAILED
        } else if b.offline_delay.is_zero() {
            Status::ERROR_SUCCESS
        } else {
            self.pending(ResourceState::OfflinePending, b.offline_delay, ResourceState::Offline)
        }
    }

    fn terminate(&self) {
        let b = self.behaviour();
        b.trip("terminate");
        if !b.ignore_terminate {
            self.stop_worker();
        }
        self.set_online(false);
    }

    fn looks_alive(&self) -> bool {
        let _entered = self.enter("looks-alive");
        self.healthy()
    }

    fn is_alive(&self) -> bool {
        let _entered = self.enter("is-alive");
        self.healthy()
    }

    fn resource_control(&self, code: resapi::ControlCode, input: &[u8], output: &mut [u8]) -> resapi::ControlResult {
        let _ = (code, input, output);
        let _entered = self.enter("control");
        resapi::ControlResult::NOT_HANDLED
    }

    fn close(&self) {
        let _entered = self.enter("close");
        self.stop_worker();
    }
}
