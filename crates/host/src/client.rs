//! The parent side: starts host processes, routes requests to the host holding each resource,
//! and turns what hosts say (and their deaths) into one stream of [`HostEvent`]s.
//!
//! One shared host serves every resource by default; a resource opened with `separate_monitor`,
//! or one that hung its host before, gets a host of its own. A host that reports a call stuck past
//! DeadlockTimeout is killed with SIGKILL; a host that dies for any reason has every resource it
//! held reported Failed, and a new shared host replaces it.
//!
//! The manager outlives its hosts, so it owns their resources' containment: a cgroup v2
//! directory (`<cgroup2 mount>/halo/<pid>.<n>`, with `r<id>` per resource) where the kernel has
//! one that is writable, else the process groups hosts report. Before a resource of a dead host
//! is reported Failed (which the engine answers with a restart), everything it started is killed
//! and gone; a closed resource's cgroup is removed.

use crate::protocol::{self, Cause, FromHost, PROTOCOL_VERSION, ResourceId, Timeouts, ToHost, TypeSpec};
use halo_type_exec::contain;
use resapi::{PropertyList, ResourceState, Status};
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot};

/// How long a host may stay silent (heartbeats come every second) before it counts as frozen.
pub const DEFAULT_SILENCE: Duration = Duration::from_secs(10);

/// How long a starting host may take to say Hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Identifies one host process during the parent's life.
pub type HostId = u64;

/// How to start a host process: normally the `halo` binary with the hidden `host` subcommand.
#[derive(Debug, Clone)]
pub struct HostCommand {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
}

impl HostCommand {
    /// The running executable with `host`: the node daemon starts hosts from its own binary.
    pub fn current_exe() -> std::io::Result<Self> {
        Ok(HostCommand { program: std::env::current_exe()?, args: vec!["host".into()] })
    }
}

/// What the engine hears from its hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEvent {
    /// A fact a host sent about one of its resources.
    Fact(FromHost),
    /// A host died or was killed. Each resource it held was also reported Failed, with `status`,
    /// through a `State` fact with cause `HostDied`.
    HostDied {
        /// Which host.
        host: HostId,
        /// Its pid.
        pid: u32,
        /// Why (deadlock in which entry point of which resource, exit status, signal).
        reason: String,
        /// The resources it held.
        resources: Vec<ResourceId>,
    },
}

/// A request the manager could not deliver or that the host refused at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct HostError {
    /// The Win32 code.
    pub status: Status,
    /// What went wrong.
    pub message: String,
}

impl HostError {
    fn new(status: Status, message: impl Into<String>) -> Self {
        HostError { status, message: message.into() }
    }
}

/// Everything `open` needs.
#[derive(Debug, Clone)]
pub struct OpenSpec {
    /// The id every fact about the resource carries.
    pub id: ResourceId,
    /// The resource's name.
    pub name: String,
    /// Its type.
    pub type_spec: TypeSpec,
    /// Its private properties.
    pub properties: PropertyList,
    /// `CLUS_RESDLL_OPEN_*`.
    pub flags: u32,
    /// Timing properties, resolved.
    pub timeouts: Timeouts,
    /// The `SeparateMonitor` property: run it in a host of its own.
    pub separate_monitor: bool,
}

/// A control call's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlReply {
    /// The routine's status.
    pub status: Status,
    /// What it wrote.
    pub output: Vec<u8>,
    /// Bytes written, or needed with `ERROR_MORE_DATA`.
    pub bytes_returned: u32,
}

struct HostProcess {
    pid: u32,
    /// Encoded frames: a request over the frame limit is refused to its caller, never queued.
    to_host: mpsc::UnboundedSender<Vec<u8>>,
    shared: bool,
}

#[derive(Default)]
struct State {
    hosts: HashMap<HostId, HostProcess>,
    shared: Option<HostId>,
    placement: HashMap<ResourceId, HostId>,
    /// Resources that hung a host: they get a host of their own from now on.
    isolated: HashSet<ResourceId>,
    opens: HashMap<ResourceId, oneshot::Sender<Result<(), HostError>>>,
    /// Control calls waiting for their answer, with the host that will give it.
    controls: HashMap<u64, (HostId, oneshot::Sender<ControlReply>)>,
    lease: Option<Duration>,
    /// Without a cgroup: the process groups each resource started, until the host kills them.
    groups: HashMap<ResourceId, Vec<u32>>,
}

struct Inner {
    command: HostCommand,
    /// This manager's cgroup v2 directory for its hosts' resources, when cgroup v2 is usable.
    cgroup: Option<PathBuf>,
    /// A host silent (not even a heartbeat) for this long is frozen: it is killed and replaced.
    silence_ms: AtomicU64,
    state: Mutex<State>,
    events: mpsc::UnboundedSender<HostEvent>,
    next_host: AtomicU64,
    next_call: AtomicU64,
}

/// The parent side of every host on this node.
#[derive(Clone)]
pub struct HostManager {
    inner: Arc<Inner>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl HostManager {
    /// A manager that starts hosts with `command`. Hosts start on demand.
    pub fn new(command: HostCommand) -> (HostManager, mpsc::UnboundedReceiver<HostEvent>) {
        let (events, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            command,
            cgroup: cgroup_root(),
            state: Mutex::new(State::default()),
            events,
            next_host: AtomicU64::new(1),
            next_call: AtomicU64::new(1),
            silence_ms: AtomicU64::new(DEFAULT_SILENCE.as_millis() as u64),
        });
        (HostManager { inner }, rx)
    }

    /// Changes how long a host may stay silent before it is killed as frozen.
    pub fn set_silence_limit(&self, limit: Duration) {
        self.inner.silence_ms.store(u64::try_from(limit.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The pid of the host holding `id`, if it is open.
    pub fn host_pid(&self, id: ResourceId) -> Option<u32> {
        let state = lock(&self.inner.state);
        state.placement.get(&id).and_then(|h| state.hosts.get(h)).map(|p| p.pid)
    }

    /// Opens a resource in the right host, starting it if needed; returns once the host answered.
    pub async fn open(&self, spec: OpenSpec) -> Result<(), HostError> {
        let properties = spec
            .properties
            .encode()
            .map_err(|e| HostError::new(e.status(), format!("properties of {}: {e}", spec.name)))?;
        let separate = spec.separate_monitor || lock(&self.inner.state).isolated.contains(&spec.id);
        let host = self.host_for(separate).await?;
        let (tx, rx) = oneshot::channel();
        {
            let mut state = lock(&self.inner.state);
            if state.placement.contains_key(&spec.id) {
                return Err(HostError::new(
                    Status::ERROR_INVALID_STATE,
                    format!("resource {} is already open", spec.id),
                ));
            }
            state.opens.insert(spec.id, tx);
            state.placement.insert(spec.id, host);
        }
        let open = ToHost::Open {
            id: spec.id,
            name: spec.name,
            type_spec: spec.type_spec,
            properties,
            flags: spec.flags,
            timeouts: spec.timeouts,
        };
        if let Err(e) = self.send_to(host, open) {
            let mut state = lock(&self.inner.state);
            state.opens.remove(&spec.id);
            state.placement.remove(&spec.id);
            return Err(e);
        }
        let result = rx
            .await
            .unwrap_or_else(|_| Err(HostError::new(Status::ERROR_RESMON_INVALID_STATE, "host died during open")));
        if result.is_err() {
            self.forget(spec.id);
            // An open may have started processes (a script's `open`): none may outlive it.
            self.reap(vec![spec.id]).await;
        }
        result
    }

    /// OnlineV2: the outcome arrives as `State` facts.
    pub fn online(&self, id: ResourceId, flags: u32, input: Vec<u8>) -> Result<(), HostError> {
        self.send(id, ToHost::Online { id, flags, input })
    }

    /// OfflineV2 with the destination node of a move.
    pub fn offline(
        &self,
        id: ResourceId,
        destination: Option<String>,
        flags: u32,
        input: Vec<u8>,
    ) -> Result<(), HostError> {
        self.send(id, ToHost::Offline { id, destination, flags, input })
    }

    /// Terminate.
    pub fn terminate(&self, id: ResourceId) -> Result<(), HostError> {
        self.send(id, ToHost::Terminate { id })
    }

    /// Runs LooksAlive (or IsAlive) now; the answer arrives as a `Checked` fact.
    pub fn check(&self, id: ResourceId, is_alive: bool) -> Result<(), HostError> {
        self.send(id, ToHost::Check { id, is_alive })
    }

    /// Cancel the operation in progress.
    pub fn cancel(&self, id: ResourceId) -> Result<(), HostError> {
        self.send(id, ToHost::Cancel { id })
    }

    /// New private properties and timeouts.
    pub fn update(&self, id: ResourceId, properties: &PropertyList, timeouts: Timeouts) -> Result<(), HostError> {
        let properties = properties.encode().map_err(|e| HostError::new(e.status(), e.to_string()))?;
        self.send(id, ToHost::Update { id, properties, timeouts })
    }

    /// Close; a `Closed` fact follows.
    pub fn close(&self, id: ResourceId) -> Result<(), HostError> {
        self.send(id, ToHost::Close { id })
    }

    /// ResourceControl; waits for the answer.
    pub async fn control(
        &self,
        id: ResourceId,
        code: u32,
        input: Vec<u8>,
        output_size: u32,
    ) -> Result<ControlReply, HostError> {
        let call = self.inner.next_call.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let host = {
            let mut state = lock(&self.inner.state);
            let host = state.placement.get(&id).copied().ok_or_else(|| {
                HostError::new(Status::ERROR_RESOURCE_NOT_FOUND, format!("resource {id} is not open"))
            })?;
            state.controls.insert(call, (host, tx));
            host
        };
        if let Err(e) = self.send_to(host, ToHost::Control { id, call, code, input, output_size }) {
            lock(&self.inner.state).controls.remove(&call);
            return Err(e);
        }
        // A host that dies drops the waiter, which ends this wait.
        rx.await.map_err(|_| HostError::new(Status::ERROR_RESMON_INVALID_STATE, "host died during the control call"))
    }

    /// Renews every host's lease for `duration`, and gives new hosts the same.
    pub fn renew_lease(&self, duration: Duration) {
        let mut state = lock(&self.inner.state);
        state.lease = Some(duration);
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        let Ok(frame) = protocol::encode_frame(&ToHost::Lease { duration_ms: ms }) else { return };
        for host in state.hosts.values() {
            let _ = host.to_host.send(frame.clone());
        }
    }

    fn send(&self, id: ResourceId, request: ToHost) -> Result<(), HostError> {
        let host = lock(&self.inner.state).placement.get(&id).copied();
        match host {
            Some(h) => self.send_to(h, request),
            None => Err(HostError::new(Status::ERROR_RESOURCE_NOT_FOUND, format!("resource {id} is not open"))),
        }
    }

    fn send_to(&self, host: HostId, request: ToHost) -> Result<(), HostError> {
        let frame = protocol::encode_frame(&request).map_err(|e| match e {
            protocol::FrameError::TooLarge(n) => HostError::new(
                Status::ERROR_INVALID_PARAMETER,
                format!("a {n}-byte request exceeds the {}-byte frame limit", protocol::MAX_FRAME),
            ),
            other => HostError::new(Status::ERROR_INVALID_DATA, other.to_string()),
        })?;
        let state = lock(&self.inner.state);
        let sent = state.hosts.get(&host).map(|h| h.to_host.send(frame).is_ok());
        match sent {
            Some(true) => Ok(()),
            _ => Err(HostError::new(Status::ERROR_RESMON_INVALID_STATE, format!("host {host} is gone"))),
        }
    }

    /// Forgets a resource's placement; a dedicated host left holding nothing is retired (its
    /// input closes, so it exits).
    fn forget(&self, id: ResourceId) {
        let mut state = lock(&self.inner.state);
        let Some(host) = state.placement.remove(&id) else { return };
        let dedicated = state.hosts.get(&host).is_some_and(|h| !h.shared);
        if dedicated && !state.placement.values().any(|h| *h == host) {
            state.hosts.remove(&host);
        }
    }

    async fn host_for(&self, separate: bool) -> Result<HostId, HostError> {
        if !separate && let Some(h) = lock(&self.inner.state).shared {
            return Ok(h);
        }
        let host = self.spawn(!separate).await?;
        if !separate {
            let mut state = lock(&self.inner.state);
            match state.shared {
                // Another open raced us to it: use theirs, retire ours.
                Some(existing) => {
                    state.hosts.remove(&host);
                    return Ok(existing);
                }
                None => state.shared = Some(host),
            }
        }
        Ok(host)
    }

    /// Boxed with an explicit `Send`: a host's reader task replaces a dead shared host through
    /// here, and the compiler cannot infer `Send` through that cycle on its own.
    fn spawn(&self, shared: bool) -> Pin<Box<dyn Future<Output = Result<HostId, HostError>> + Send + '_>> {
        Box::pin(self.spawn_host(shared))
    }

    async fn spawn_host(&self, shared: bool) -> Result<HostId, HostError> {
        let fail = |e: String| HostError::new(Status::ERROR_RESMON_CREATE_FAILED, e);
        let mut child = Command::new(&self.inner.command.program)
            .args(&self.inner.command.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| fail(format!("cannot start host {:?}: {e}", self.inner.command.program)))?;
        let pid = child.id().unwrap_or(0);
        let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(fail("host started without pipes".into()));
        };
        let cgroup = self.inner.cgroup.as_ref().map(|c| c.display().to_string());
        protocol::tokio_io::write_frame(&mut stdin, &ToHost::Hello { version: PROTOCOL_VERSION, cgroup })
            .await
            .map_err(|e| fail(format!("host {pid}: {e}")))?;
        let hello = tokio::time::timeout(HELLO_TIMEOUT, protocol::tokio_io::read_frame::<FromHost>(&mut stdout))
            .await
            .map_err(|_| fail(format!("host {pid} did not say Hello within {HELLO_TIMEOUT:?}")))?
            .map_err(|e| fail(format!("host {pid}: {e}")))?;
        match hello {
            FromHost::Hello { version, .. } if version == PROTOCOL_VERSION => {}
            other => return Err(fail(format!("host {pid} answered {other:?} instead of Hello v{PROTOCOL_VERSION}"))),
        }
        let id = self.inner.next_host.fetch_add(1, Ordering::Relaxed);
        let (to_host, requests) = mpsc::unbounded_channel();
        {
            let mut state = lock(&self.inner.state);
            if let Some(lease) = state.lease {
                let lease = ToHost::Lease { duration_ms: u64::try_from(lease.as_millis()).unwrap_or(u64::MAX) };
                if let Ok(frame) = protocol::encode_frame(&lease) {
                    let _ = to_host.send(frame);
                }
            }
            state.hosts.insert(id, HostProcess { pid, to_host, shared });
        }
        tokio::spawn(write_requests(stdin, requests));
        tokio::spawn(self.clone().read_facts(id, pid, child, stdout));
        Ok(id)
    }

    /// Reads one host's facts until it dies, then reports the death.
    async fn read_facts(self, host: HostId, pid: u32, mut child: Child, mut stdout: ChildStdout) {
        let mut reason = None;
        loop {
            let silence = Duration::from_millis(self.inner.silence_ms.load(Ordering::Relaxed));
            let frame =
                match tokio::time::timeout(silence, protocol::tokio_io::read_frame::<FromHost>(&mut stdout)).await {
                    Ok(frame) => frame,
                    Err(_) => {
                        // Frozen (SIGSTOP, a stuck machine): nothing it holds is monitored any more.
                        let _ = child.start_kill();
                        reason = Some((
                            format!("host sent nothing, not even a heartbeat, for {silence:?}; killed"),
                            Status::ERROR_RESMON_INVALID_STATE,
                        ));
                        break;
                    }
                };
            match frame {
                Ok(FromHost::Heartbeat) => {}
                Ok(FromHost::Deadlock { id, entry_point, elapsed_ms }) => {
                    // The host cannot recover a thread stuck in resource code: kill it.
                    let _ = child.start_kill();
                    lock(&self.inner.state).isolated.insert(id);
                    reason = Some((
                        format!(
                            "{entry_point} of resource {id} did not return within DeadlockTimeout ({elapsed_ms} ms); host killed"
                        ),
                        Status::ERROR_RESOURCE_CALL_TIMED_OUT,
                    ));
                }
                Ok(FromHost::Crashed { id, entry_point }) => {
                    lock(&self.inner.state).isolated.insert(id);
                    reason = Some((
                        format!("{entry_point} of resource {id} crashed the host"),
                        Status::ERROR_EXCEPTION_IN_RESOURCE_CALL,
                    ));
                }
                Ok(fact) => self.route(fact).await,
                Err(_) => break,
            }
        }
        let exit = child.wait().await;
        let (reason, status) = reason.unwrap_or_else(|| {
            (
                match exit {
                    Ok(s) => format!("host exited: {s}"),
                    Err(e) => format!("host vanished: {e}"),
                },
                Status::ERROR_EXCEPTION_IN_RESOURCE_CALL,
            )
        });
        self.host_died(host, pid, reason, status).await;
    }

    async fn route(&self, fact: FromHost) {
        match fact {
            FromHost::ProcessGroup { id, pgid } => {
                lock(&self.inner.state).groups.entry(id).or_default().push(pgid);
            }
            FromHost::Opened { id, status, message } => {
                let waiter = lock(&self.inner.state).opens.remove(&id);
                let result = if status == 0 { Ok(()) } else { Err(HostError::new(Status(status), message)) };
                if let Some(w) = waiter {
                    let _ = w.send(result);
                }
            }
            FromHost::ControlDone { call, status, output, bytes_returned } => {
                let waiter = lock(&self.inner.state).controls.remove(&call).map(|(_, w)| w);
                if let Some(w) = waiter {
                    let _ = w.send(ControlReply { status: Status(status), output, bytes_returned });
                }
            }
            FromHost::Closed { id } => {
                self.forget(id);
                // Before the engine hears it (and may open the resource again).
                self.reap(vec![id]).await;
                let _ = self.inner.events.send(HostEvent::Fact(FromHost::Closed { id }));
            }
            FromHost::State { id, state, .. }
                if state == ResourceState::Offline.raw() || state == ResourceState::Failed.raw() =>
            {
                // The host killed the resource's groups before saying so: forget them.
                lock(&self.inner.state).groups.remove(&id);
                let _ = self.inner.events.send(HostEvent::Fact(fact));
            }
            other => {
                let _ = self.inner.events.send(HostEvent::Fact(other));
            }
        }
    }

    async fn host_died(&self, host: HostId, pid: u32, reason: String, status: Status) {
        let (resources, was_shared, opens) = {
            let mut state = lock(&self.inner.state);
            let Some(process) = state.hosts.remove(&host) else {
                // Retired after its last resource closed: an expected exit, not a death.
                return;
            };
            let was_shared = process.shared;
            if state.shared == Some(host) {
                state.shared = None;
            }
            let resources: Vec<ResourceId> =
                state.placement.iter().filter(|(_, h)| **h == host).map(|(id, _)| *id).collect();
            for id in &resources {
                state.placement.remove(id);
            }
            let opens: Vec<_> = resources.iter().filter_map(|id| state.opens.remove(id)).collect();
            // Dropping their senders ends the control calls this host will never answer.
            state.controls.retain(|_, (h, _)| *h != host);
            (resources, was_shared, opens)
        };
        let mut sorted = resources.clone();
        sorted.sort_unstable();
        // The engine restarts what is reported Failed: the old copy must be gone first.
        self.reap(sorted.clone()).await;
        for w in opens {
            let _ = w.send(Err(HostError::new(status, reason.clone())));
        }
        for id in &sorted {
            let _ = self.inner.events.send(HostEvent::Fact(FromHost::State {
                id: *id,
                state: ResourceState::Failed.raw(),
                checkpoint: 0,
                status: status.0,
                application_code: 0,
                flags: 0,
                cause: Cause::HostDied,
            }));
        }
        let _ = self.inner.events.send(HostEvent::HostDied { host, pid, reason, resources: sorted });
        if was_shared {
            // Replace the shared host now, so the next open does not wait for it.
            let _ = self.host_for(false).await;
        }
    }
}

impl HostManager {
    /// Kills everything `resources` started (their cgroups, or their recorded process groups),
    /// waits until it is gone, and removes their cgroups.
    async fn reap(&self, resources: Vec<ResourceId>) {
        let root = self.inner.cgroup.clone();
        let work: Vec<(ResourceId, Vec<u32>)> = {
            let mut state = lock(&self.inner.state);
            resources.into_iter().map(|id| (id, state.groups.remove(&id).unwrap_or_default())).collect()
        };
        let reaped = tokio::task::spawn_blocking(move || {
            for (id, groups) in work {
                if !reap_one(root.as_deref(), id, &groups) {
                    tracing::error!(resource = id, "processes of the resource survived SIGKILL");
                }
            }
        });
        if let Err(e) = reaped.await {
            tracing::error!(error = %e, "reaping resources' processes failed");
        }
    }
}

/// Kills what resource `id` left running, waits until it is gone and removes its cgroup.
fn reap_one(root: Option<&Path>, id: ResourceId, groups: &[u32]) -> bool {
    let groups_gone = groups.is_empty() || contain::kill_groups(groups, contain::KILL_LIMIT);
    let cgroup_gone = root.is_none_or(|r| contain::remove_cgroup(&contain::resource_cgroup(r, id)));
    groups_gone && cgroup_gone
}

/// Creates this manager's cgroup v2 directory, `<mount>/halo/<pid>.<n>`; None (process groups
/// are recorded instead) where cgroup v2 is not mounted or not writable. Says which it is.
fn cgroup_root() -> Option<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let Some(mount) = contain::cgroup2_mount() else {
        tracing::warn!("cgroup v2 is not mounted: resources' processes are contained by process group only");
        return None;
    };
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    if n == 0 {
        remove_stale(&mount.join("halo"));
    }
    let dir = mount.join("halo").join(format!("{}.{n}", std::process::id()));
    match std::fs::create_dir_all(&dir) {
        Ok(()) => {
            tracing::info!(cgroup = %dir.display(), "resources' processes are contained by cgroup v2");
            Some(dir)
        }
        Err(e) => {
            tracing::warn!(
                cgroup = %dir.display(), error = %e,
                "cgroup v2 is not writable: resources' processes are contained by process group only"
            );
            None
        }
    }
}

/// Removes the directories of managers whose process is gone (a daemon that exited or was killed
/// never drops its manager), killing whatever is still in them first.
fn remove_stale(halo: &Path) {
    let Ok(dir) = std::fs::read_dir(halo) else { return };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.split_once('.')).map(|(pid, _)| pid) else { continue };
        if !pid.bytes().all(|b| b.is_ascii_digit()) || Path::new("/proc").join(pid).exists() {
            continue;
        }
        remove_tree(&entry.path());
    }
}

/// Kills and removes every resource cgroup under `root`, then `root`.
fn remove_tree(root: &Path) {
    if let Ok(dir) = std::fs::read_dir(root) {
        for entry in dir.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                contain::remove_cgroup(&entry.path());
            }
        }
    }
    if let Err(e) = std::fs::remove_dir(root) {
        tracing::warn!(cgroup = %root.display(), error = %e, "cannot remove a hosts' cgroup");
    }
}

impl Drop for Inner {
    /// The last handle is gone (and with it every host): nothing its resources started may stay.
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        for groups in state.groups.values() {
            contain::kill_groups(groups, contain::KILL_LIMIT);
        }
        if let Some(root) = &self.cgroup {
            remove_tree(root);
        }
    }
}

async fn write_requests(mut stdin: ChildStdin, mut requests: mpsc::UnboundedReceiver<Vec<u8>>) {
    use tokio::io::AsyncWriteExt;
    while let Some(frame) = requests.recv().await {
        if stdin.write_all(&frame).await.is_err() || stdin.flush().await.is_err() {
            return; // The host is gone; its reader reports the death.
        }
    }
}
