//! The driver: one loop that feeds the core and does what it decides.
//!
//! It `select!`s over commands from the [`Engine`] handle, host facts, the cluster database's
//! change feed, the outcomes of what it started (opens, writes, control calls) and the core's
//! wake-up time; steps the core with each; and executes the [`Ready`] through the seams. The core
//! sits behind a mutex only so that the API can read views; the loop holds it for the pure step
//! alone, never across I/O. The hosts' lease is renewed from this loop, so it holds only while
//! the engine is really running.

use crate::core::{Answer, Call, CallKind, Command, Core, Input, OpStatus, Ready, Target, Token};
use crate::events::Events;
use crate::model::{self, EngineError, TypeDoc, keys};
use crate::seams::{Clock, Hosts, TokioClock};
use crate::{ControlOutput, GroupView, ResourceView};
use halo_cluster::{ClusterDb, ClusterError, Compare, Op, Request, Watch};
use halo_host::client::HostEvent;
use resapi::{OfflineFlags, Status};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// The longest lease a host is given at once: even under a lease that does not end (an engine
/// embedded without a cluster), a host whose engine stops renewing stops its resources.
pub const MAX_HOST_LEASE: Duration = Duration::from_secs(5);
/// How often the driver re-tells the hosts when the lease ends, even without news of it.
pub const HOST_LEASE_RENEWAL: Duration = Duration::from_secs(1);
/// How long before the ownership lease ends the engine takes its groups down, so that they are
/// down before the hosts' deadline (the lease's end) and well before any other node may start
/// them.
pub const DEFAULT_STOP_MARGIN: Duration = Duration::from_millis(50);
/// Finished operations kept readable; pending ones are never dropped.
const FINISHED_OPERATIONS_KEPT: usize = 10_000;

/// An ownership lease, as the coordinator granted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// When it ends, on this node's clock.
    pub until: tokio::time::Instant,
    /// The database revision the coordinator had reached when it granted it: the lease counts
    /// only once this node's view has caught up with it, so that a node waking from a freeze
    /// does not run groups its stale view still calls its own.
    pub revision: u64,
}

/// The ownership lease as the engine receives it (`None` while none is held). The cluster's
/// coordinator grants it (see the `halo-coordinator` crate).
pub type LeaseWatch = watch::Receiver<Option<Lease>>;

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The ownership lease: groups this node owns run only while it holds one, and the hosts
    /// stop every resource when it ends.
    pub lease: LeaseWatch,
    /// How long before the lease ends the engine stops its groups.
    pub stop_margin: Duration,
}

impl Options {
    /// An engine on its own, outside a cluster (embedding, tests, benchmarks): it holds a
    /// lease that does not end, so whatever its groups' records give it runs. The hosts still
    /// get [`MAX_HOST_LEASE`] at a time, renewed from the loop.
    pub fn standalone() -> Options {
        let forever = tokio::time::Instant::now() + Duration::from_secs(100 * 365 * 86_400);
        let (tx, lease) = watch::channel(Some(Lease { until: forever, revision: 0 }));
        // The sender may go: the receiver keeps the last value.
        drop(tx);
        Options { lease, stop_margin: DEFAULT_STOP_MARGIN }
    }

    /// An engine in a cluster, holding the leases `lease` reports.
    pub fn leased(lease: LeaseWatch) -> Options {
        Options { lease, stop_margin: DEFAULT_STOP_MARGIN }
    }
}

type Reply = oneshot::Sender<Result<Answer, EngineError>>;

/// Operation statuses for readers and waiters.
#[derive(Default)]
struct OperationTable {
    statuses: BTreeMap<u64, watch::Sender<OpStatus>>,
}

impl OperationTable {
    fn entry(&mut self, id: u64) -> &watch::Sender<OpStatus> {
        self.statuses.entry(id).or_insert_with(|| watch::channel(OpStatus::Pending).0)
    }

    /// Drops the oldest finished operations past the limit; a pending one stays until it ends.
    fn trim(&mut self) {
        if self.statuses.len() <= FINISHED_OPERATIONS_KEPT {
            return;
        }
        let excess = self.statuses.len() - FINISHED_OPERATIONS_KEPT;
        let old: Vec<u64> = self
            .statuses
            .iter()
            .filter(|(_, s)| *s.borrow() != OpStatus::Pending)
            .map(|(id, _)| *id)
            .take(excess)
            .collect();
        for id in old {
            self.statuses.remove(&id);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A database error as the engine reports it.
pub fn db_err(e: ClusterError) -> EngineError {
    // Consensus trouble means no quorum; anything else is the database itself failing.
    let status = match e {
        ClusterError::Raft(_) | ClusterError::NotLeader { .. } => Status::ERROR_CLUSTER_NO_QUORUM,
        ClusterError::DiskFull { .. } => Status::ERROR_DISK_FULL,
        ClusterError::Closed | ClusterError::DataDirectoryLost { .. } => Status::ERROR_CLUSTER_SHUTTING_DOWN,
        _ => Status::ERROR_INVALID_DATA,
    };
    EngineError::new(status, format!("cluster database: {e}"))
}

/// The engine of one node: a handle on the loop that runs it.
pub struct Engine {
    node: String,
    core: Arc<Mutex<Core>>,
    commands: mpsc::UnboundedSender<(Command, Reply)>,
    operations: Arc<Mutex<OperationTable>>,
    events: Arc<Events>,
    db: Arc<ClusterDb>,
    /// The revision the view holds.
    revision: watch::Receiver<u64>,
    /// The loop, until `stop` has waited for it.
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Engine {
    /// Loads every object from the database, starts following the hosts' facts and the change
    /// feed, and brings online what was online (PersistentState) when the node stopped.
    pub async fn start<H: Hosts>(
        node: &str,
        db: Arc<ClusterDb>,
        hosts: H,
        facts: mpsc::UnboundedReceiver<HostEvent>,
    ) -> Result<Arc<Engine>, EngineError> {
        Self::start_with(node, db, hosts, facts, Options::standalone()).await
    }

    /// [`Engine::start`] with options.
    pub async fn start_with<H: Hosts>(
        node: &str,
        db: Arc<ClusterDb>,
        hosts: H,
        facts: mpsc::UnboundedReceiver<HostEvent>,
        options: Options,
    ) -> Result<Arc<Engine>, EngineError> {
        ensure_builtin_types(&db).await?;
        let snapshot = db.snapshot().map_err(db_err)?;
        let feed = db.watch(snapshot.revision).map_err(db_err)?;
        let clock = TokioClock::new();
        // Event and operation numbers start from the start time in microseconds, so they keep
        // increasing across restarts of the node (unless its clock steps back past them).
        let base = numbering_base();
        let events = Arc::new(Events::numbered_after(base));
        let mut core = Core::new(node).numbering_operations_from(base + 1);
        let mut first =
            core.step(clock.now(), Input::Loaded { revision: snapshot.revision, records: snapshot.records });
        let lease = *options.lease.borrow();
        first.merge(core.step(clock.now(), lease_input(&clock, lease, options.stop_margin)));
        let core = Arc::new(Mutex::new(core));
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let operations = Arc::new(Mutex::new(OperationTable::default()));
        let (internal, internal_rx) = mpsc::unbounded_channel();
        let mut driver = Driver {
            core: core.clone(),
            hosts,
            clock,
            db: db.clone(),
            events: events.clone(),
            operations: operations.clone(),
            replies: HashMap::new(),
            internal,
            wake: None,
            options,
            revision: watch::Sender::new(snapshot.revision),
        };
        driver.execute(first);
        let revision = driver.revision.subscribe();
        let task = Mutex::new(Some(tokio::spawn(driver.run(commands_rx, facts, feed, internal_rx))));
        Ok(Arc::new(Engine { node: node.to_string(), core, commands, operations, events, db, revision, task }))
    }

    async fn ask(&self, command: Command) -> Result<Answer, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send((command, tx))
            .map_err(|_| EngineError::new(Status::ERROR_CLUSTER_SHUTTING_DOWN, "the engine has stopped"))?;
        rx.await.map_err(|_| EngineError::new(Status::ERROR_CLUSTER_SHUTTING_DOWN, "the engine has stopped"))?
    }

    async fn done(&self, command: Command) -> Result<(), EngineError> {
        self.ask(command).await.map(|_| ())
    }

    async fn operation_of(&self, command: Command) -> Result<u64, EngineError> {
        match self.ask(command).await? {
            Answer::Operation(id) => Ok(id),
            other => Err(EngineError::new(Status::ERROR_INVALID_DATA, format!("unexpected answer {other:?}"))),
        }
    }

    /// The event stream.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    // ---- configuration ----

    /// Creates a group.
    pub async fn create_group(&self, name: &str, common: BTreeMap<String, String>) -> Result<(), EngineError> {
        self.done(Command::CreateGroup { name: name.into(), common }).await
    }

    /// Sets a group's common properties.
    pub async fn set_group_properties(&self, name: &str, common: BTreeMap<String, String>) -> Result<(), EngineError> {
        self.done(Command::SetGroupProperties { name: name.into(), common }).await
    }

    /// Declares a resource type served by a native plug-in: `path` is its `.so`, `type_name` the
    /// name its `Startup` expects (default: the type's own name).
    pub async fn create_native_type(
        &self,
        name: &str,
        path: &str,
        type_name: Option<&str>,
        common: BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        let file = std::path::Path::new(path);
        if !file.is_absolute() || !file.is_file() {
            return Err(EngineError::new(
                Status::ERROR_FILE_NOT_FOUND,
                format!("plug-in {path:?}: give the absolute path of an existing .so"),
            ));
        }
        let type_name = type_name.unwrap_or(name).to_string();
        self.done(Command::CreateNativeType { name: name.into(), path: path.into(), type_name, common }).await
    }

    /// Removes a resource type no resource uses (the built-in ones stay).
    pub async fn delete_type(&self, name: &str) -> Result<(), EngineError> {
        self.done(Command::DeleteType { name: name.into() }).await
    }

    /// Deletes an empty group.
    pub async fn delete_group(&self, name: &str) -> Result<(), EngineError> {
        self.done(Command::DeleteGroup { name: name.into() }).await
    }

    /// Creates a resource in a group.
    pub async fn create_resource(
        &self,
        name: &str,
        group: &str,
        type_name: &str,
        common: BTreeMap<String, String>,
        private: BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        self.create_resource_with(name, group, type_name, common, private, "").await
    }

    /// Creates a resource with its dependencies in one write: if either is refused, nothing is
    /// created.
    pub async fn create_resource_with(
        &self,
        name: &str,
        group: &str,
        type_name: &str,
        common: BTreeMap<String, String>,
        private: BTreeMap<String, String>,
        dependencies: &str,
    ) -> Result<(), EngineError> {
        self.done(Command::CreateResource {
            name: name.into(),
            group: group.into(),
            type_name: type_name.into(),
            common,
            private,
            dependencies: dependencies.into(),
        })
        .await
    }

    /// Sets common and private properties (validated; private ones reach the host at once and
    /// the resource type at its next online).
    pub async fn set_properties(
        &self,
        name: &str,
        common: BTreeMap<String, String>,
        private: BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        self.change_properties(name, common, private, Vec::new()).await
    }

    /// Sets common and private properties and removes the private ones named in `unset`, in
    /// one write: if any of it is refused, nothing changes.
    ///
    /// As SetClusterResourceProperties does on Windows, the resource's type sees the change
    /// first when the resource is open on this node: `CLUSCTL_RESOURCE_VALIDATE_COMMON_PROPERTIES`
    /// and `…_VALIDATE_PRIVATE_PROPERTIES` with the new values; a refusal refuses the write, names
    /// the type's error, and stores nothing (`ERROR_INVALID_FUNCTION`, "not handled", leaves
    /// the check to the cluster's own, the default handling). Once stored, the type gets
    /// `…_SET_COMMON_PROPERTIES` / `…_SET_PRIVATE_PROPERTIES` so that it can apply them.
    pub async fn change_properties(
        &self,
        name: &str,
        common: BTreeMap<String, String>,
        private: BTreeMap<String, String>,
        unset: Vec<String>,
    ) -> Result<(), EngineError> {
        use resapi::control::codes::{
            CLUSCTL_RESOURCE_SET_COMMON_PROPERTIES, CLUSCTL_RESOURCE_SET_PRIVATE_PROPERTIES,
            CLUSCTL_RESOURCE_VALIDATE_COMMON_PROPERTIES, CLUSCTL_RESOURCE_VALIDATE_PRIVATE_PROPERTIES,
        };
        let lists = [
            (CLUSCTL_RESOURCE_VALIDATE_COMMON_PROPERTIES, CLUSCTL_RESOURCE_SET_COMMON_PROPERTIES, &common),
            (CLUSCTL_RESOURCE_VALIDATE_PRIVATE_PROPERTIES, CLUSCTL_RESOURCE_SET_PRIVATE_PROPERTIES, &private),
        ];
        let encode = |values: &BTreeMap<String, String>| {
            crate::model::to_list(values).encode().map_err(|e| EngineError::new(e.status(), e.to_string()))
        };
        for (validate, _, values) in &lists {
            if values.is_empty() {
                continue;
            }
            let out = self.type_control(name, validate.0, encode(values)?).await?;
            let status = Status(out.status);
            if status != Status::ERROR_SUCCESS && status != Status::ERROR_INVALID_FUNCTION {
                return Err(EngineError::new(
                    status,
                    format!("the resource type of {name} refused the properties ({validate}): {status}"),
                ));
            }
        }
        self.done(Command::SetProperties {
            name: name.into(),
            common: common.clone(),
            private: private.clone(),
            unset,
        })
        .await?;
        for (_, set, values) in &lists {
            if values.is_empty() {
                continue;
            }
            // Stored already: what the type answers now is its own affair, logged if it failed.
            let out = self.type_control(name, set.0, encode(values)?).await?;
            let status = Status(out.status);
            if !matches!(
                status,
                Status::ERROR_SUCCESS | Status::ERROR_INVALID_FUNCTION | Status::ERROR_RESOURCE_PROPERTIES_STORED
            ) {
                tracing::warn!(resource = name, %set, %status, "the resource type did not apply stored properties");
            }
        }
        Ok(())
    }

    /// A control code for the resource's type only (no default handling).
    async fn type_control(&self, name: &str, code: u32, input: Vec<u8>) -> Result<ControlOutput, EngineError> {
        let command = Command::TypeControl { name: name.into(), code, input, output_size: 64 * 1024 };
        match self.ask(command).await? {
            Answer::Control(out) => Ok(out),
            other => Err(EngineError::new(Status::ERROR_INVALID_DATA, format!("unexpected answer {other:?}"))),
        }
    }

    /// Replaces a resource's dependencies with an expression.
    pub async fn set_dependencies(&self, name: &str, expression: &str) -> Result<(), EngineError> {
        self.done(Command::SetDependencies { name: name.into(), expression: expression.into() }).await
    }

    /// Deletes a resource nothing depends on, taking it offline first if it is up.
    pub async fn delete_resource(&self, name: &str, force: bool) -> Result<(), EngineError> {
        self.done(Command::DeleteResource { name: name.into(), force }).await
    }

    // ---- operations ----

    /// Brings a resource online (with what it depends on); returns the operation id.
    pub async fn online_resource(&self, name: &str, update_persistent: bool) -> Result<u64, EngineError> {
        self.online(Target::Resource(name.into()), update_persistent, Vec::new()).await
    }

    /// Brings resources online (OnlineClusterResourceEx / OnlineClusterGroupEx): `input` is the
    /// InBuffer (a property list) the named resource, or each member of the named group, gets
    /// in its OnlineV2, unchanged; empty: halo's own (the group's epoch).
    pub async fn online(&self, target: Target, update_persistent: bool, input: Vec<u8>) -> Result<u64, EngineError> {
        self.operation_of(Command::Online { target, update_persistent, input }).await
    }

    /// Takes a resource offline (with what depends on it); returns the operation id.
    pub async fn offline_resource(
        &self,
        name: &str,
        flags: OfflineFlags,
        update_persistent: bool,
    ) -> Result<u64, EngineError> {
        self.offline(Target::Resource(name.into()), flags, update_persistent, false, Vec::new()).await
    }

    /// Takes resources offline (OfflineClusterResourceEx / OfflineClusterGroupEx); `terminate`:
    /// FORCE_WITH_TERMINATION; `input` as for [`Engine::online`], for OfflineV2.
    pub async fn offline(
        &self,
        target: Target,
        flags: OfflineFlags,
        update_persistent: bool,
        terminate: bool,
        input: Vec<u8>,
    ) -> Result<u64, EngineError> {
        self.operation_of(Command::Offline { target, flags, update_persistent, terminate, input }).await
    }

    /// OfflineClusterResourceEx with FORCE_WITH_TERMINATION: straight to Terminate.
    pub async fn terminate_resource(&self, name: &str, update_persistent: bool) -> Result<u64, EngineError> {
        let flags = OfflineFlags::IGNORE_RESOURCE_STATUS;
        self.offline(Target::Resource(name.into()), flags, update_persistent, true, Vec::new()).await
    }

    /// Brings every resource of a group online.
    pub async fn online_group(&self, group: &str, update_persistent: bool) -> Result<u64, EngineError> {
        self.online(Target::Group(group.into()), update_persistent, Vec::new()).await
    }

    /// Takes every resource of a group offline.
    pub async fn offline_group(
        &self,
        group: &str,
        flags: OfflineFlags,
        update_persistent: bool,
    ) -> Result<u64, EngineError> {
        self.offline(Target::Group(group.into()), flags, update_persistent, false, Vec::new()).await
    }

    /// Waits for an operation to end (or `timeout` to pass); returns its status then.
    pub async fn wait(&self, op: u64, timeout: Duration) -> Result<OpStatus, EngineError> {
        let mut rx = lock(&self.operations)
            .statuses
            .get(&op)
            .map(|s| s.subscribe())
            .ok_or_else(|| EngineError::new(Status::ERROR_INVALID_PARAMETER, format!("no operation {op}")))?;
        let _ = tokio::time::timeout(timeout, rx.wait_for(|s| *s != OpStatus::Pending)).await;
        let status = rx.borrow().clone();
        Ok(status)
    }

    /// An operation's status now.
    pub fn operation(&self, op: u64) -> Option<OpStatus> {
        lock(&self.operations).statuses.get(&op).map(|s| s.borrow().clone())
    }

    /// FailClusterResource: terminates an online resource and treats it as failed, so the
    /// restart policy runs (a way to test recovery).
    pub async fn fail_resource(&self, name: &str) -> Result<(), EngineError> {
        self.done(Command::Fail { name: name.into() }).await
    }

    /// MoveClusterGroupEx: starts moving `group` to `to` (`None`: the node placement picks).
    /// Returns once the move is recorded (WSFC's ERROR_IO_PENDING: accepted); the source then
    /// takes the group offline toward the destination, which brings it online. A rejection
    /// changed nothing.
    pub async fn move_group(
        &self,
        group: &str,
        to: Option<&str>,
        flags: resapi::GroupMoveFlags,
        reason: &str,
    ) -> Result<(), EngineError> {
        self.done(Command::Move { group: group.into(), to: to.map(str::to_string), flags, reason: reason.into() }).await
    }

    /// Pauses node `node` (it takes no groups); with `drain`, it moves away every group it owns.
    pub async fn pause_node(&self, node: &str, drain: bool) -> Result<(), EngineError> {
        self.done(Command::SetNodePaused { node: node.into(), paused: true, drain, failback: false }).await
    }

    /// Sets the cluster's properties (HeartbeatInterval, HeartbeatThreshold).
    pub async fn set_cluster_properties(&self, common: BTreeMap<String, String>) -> Result<(), EngineError> {
        self.done(Command::SetClusterProperties { common }).await
    }

    /// The cluster's properties.
    pub fn cluster_properties(&self) -> crate::model::ClusterProperties {
        lock(&self.core).cluster_properties()
    }

    /// Resumes a paused node; with `failback`, the groups that prefer it come back to it.
    pub async fn resume_node(&self, node: &str, failback: bool) -> Result<(), EngineError> {
        self.done(Command::SetNodePaused { node: node.into(), paused: false, drain: false, failback }).await
    }

    /// Evicts node `node` from the cluster (its membership and its registry record). Groups it
    /// owned are failed over by the coordinator once its lease has ended.
    pub async fn evict_node(&self, node: &str) -> Result<(), EngineError> {
        self.db.evict(node).await.map_err(|e| match e {
            ClusterError::UnknownNode(_) => EngineError::new(
                Status::ERROR_CLUSTER_NODE_NOT_FOUND,
                format!("no node named {node} is in the cluster"),
            ),
            other => db_err(other),
        })
    }

    /// Waits until the view holds every change the leader had committed when this was called
    /// (a linearizable read: `?consistent`). Only the leader can answer; a follower gets
    /// [`ClusterError::NotLeader`] with the leader's id.
    pub async fn catch_up(&self, timeout: Duration) -> Result<(), EngineError> {
        let read = self.db.raft().ensure_linearizable().await.map_err(|e| {
            EngineError::new(Status::ERROR_CLUSTER_NO_QUORUM, format!("cannot confirm a consistent read: {e}"))
        })?;
        let wanted = read.map_or(0, |l| l.index);
        let mut revision = self.revision.clone();
        tokio::time::timeout(timeout, revision.wait_for(|r| *r >= wanted))
            .await
            .map_err(|_| EngineError::new(Status::ERROR_CLUSTER_NO_QUORUM, "the view did not catch up in time"))?
            .map_err(|_| EngineError::new(Status::ERROR_CLUSTER_SHUTTING_DOWN, "the engine has stopped"))?;
        Ok(())
    }

    /// CancelClusterGroupOperation: stops a move that has not handed the group over yet.
    pub async fn cancel_move(&self, group: &str) -> Result<(), EngineError> {
        self.done(Command::CancelMove { group: group.into() }).await
    }

    /// The node that owns `group`.
    pub fn owner_of(&self, group: &str) -> Result<String, EngineError> {
        lock(&self.core).owner_of(group).ok_or_else(|| EngineError::no_group(group))
    }

    /// The group of resource `name`.
    pub fn group_of(&self, name: &str) -> Result<String, EngineError> {
        lock(&self.core).group_of(name).ok_or_else(|| EngineError::no_resource(name))
    }

    /// Every registered node with its recorded state's name.
    pub fn nodes(&self) -> Vec<(halo_cluster::NodeRecord, String)> {
        lock(&self.core).nodes()
    }

    /// The Raft members: node id → (peer address, voter?).
    pub fn members(&self) -> BTreeMap<u64, (String, bool)> {
        self.db.members()
    }

    /// The leader's node id, as this node knows it.
    pub fn leader_id(&self) -> Option<u64> {
        self.db.leader().map(|(id, _)| id)
    }

    /// Whether this node leads the cluster.
    pub fn leads(&self) -> bool {
        self.db.is_leader()
    }

    /// ResourceControl: the resource type first; `ERROR_INVALID_FUNCTION` from it (or a resource
    /// not open in a host) gets the default handling of the common codes.
    pub async fn control(
        &self,
        name: &str,
        code: u32,
        input: Vec<u8>,
        output_size: u32,
    ) -> Result<ControlOutput, EngineError> {
        match self.ask(Command::Control { name: name.into(), code, input, output_size }).await? {
            Answer::Control(out) => Ok(out),
            other => Err(EngineError::new(Status::ERROR_INVALID_DATA, format!("unexpected answer {other:?}"))),
        }
    }

    // ---- views ----

    /// Every resource.
    pub fn resources(&self) -> Vec<ResourceView> {
        lock(&self.core).resources()
    }

    /// One resource.
    pub fn resource(&self, name: &str) -> Result<ResourceView, EngineError> {
        lock(&self.core).resource(name).ok_or_else(|| EngineError::no_resource(name))
    }

    /// Every group.
    pub fn groups(&self) -> Vec<GroupView> {
        lock(&self.core).groups()
    }

    /// One group.
    pub fn group(&self, name: &str) -> Result<GroupView, EngineError> {
        lock(&self.core).group(name).ok_or_else(|| EngineError::no_group(name))
    }

    /// Every resource type.
    pub fn types(&self) -> Vec<TypeDoc> {
        lock(&self.core).types()
    }

    /// Takes every group offline without recording it as persistent state (shutdown), and
    /// waits up to `timeout` for them.
    pub async fn shutdown(&self, timeout: Duration) -> Result<OpStatus, EngineError> {
        let op = self.operation_of(Command::Shutdown).await?;
        self.wait(op, timeout).await
    }

    /// Stops consensus, which ends the change feed and with it the loop; returns once the loop
    /// has let go of the database (the data directory is released when the last handle goes).
    pub async fn stop(&self) -> Result<(), EngineError> {
        self.db.shutdown().await.map_err(db_err)?;
        let task = lock(&self.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        Ok(())
    }
}

/// The next moment the core must look at a lease ending at `until`: when it starts to step its
/// groups down, then when it must stop them (never later than an hour from now: a lease that
/// does not end is looked at hourly).
fn stop_at(until: Option<tokio::time::Instant>, margin: Duration) -> Option<tokio::time::Instant> {
    let now = tokio::time::Instant::now();
    let cap = now + Duration::from_secs(3600);
    let until = until?;
    let stop = until.checked_sub(margin).unwrap_or(until);
    let step_down = stop.checked_sub(crate::core::ownership::STEP_DOWN_LEAD).unwrap_or(stop);
    // A millisecond late, so that the core's clock has certainly passed the moment it was given.
    let next = [step_down, stop].into_iter().find(|t| *t >= now).unwrap_or(stop);
    Some((next + Duration::from_millis(1)).min(cap))
}

/// The core's input for a lease.
fn lease_input<C: Clock>(clock: &C, lease: Option<Lease>, margin: Duration) -> Input {
    Input::Lease { until: core_time(clock, lease.map(|l| l.until), margin), revision: lease.map_or(0, |l| l.revision) }
}

/// The core's time for the lease's end, `margin` early (`None`: no lease).
fn core_time<C: Clock>(clock: &C, until: Option<tokio::time::Instant>, margin: Duration) -> Option<Duration> {
    let until = until?;
    let now = tokio::time::Instant::now();
    let core_now = clock.now();
    Some(if until >= now {
        (core_now + (until - now)).saturating_sub(margin)
    } else {
        core_now.saturating_sub(now - until).saturating_sub(margin)
    })
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Microseconds since the Unix epoch: a number no earlier start of this node handed out.
fn numbering_base() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2))
        .unwrap_or(0)
}

/// Writes the built-in types a database lacks (a new database, or one from an older halo).
async fn ensure_builtin_types(db: &ClusterDb) -> Result<(), EngineError> {
    for ty in model::builtin_types() {
        if db.get(&keys::type_(&ty.name)).map_err(db_err)?.is_none() {
            let value =
                serde_json::to_vec(&ty).map_err(|e| EngineError::new(Status::ERROR_INVALID_DATA, e.to_string()))?;
            let key = keys::type_(&ty.name);
            // Guarded: another node may be writing it at the same time.
            let request = Request {
                compare: vec![Compare { key: key.clone(), revision: None }],
                ops: vec![Op::Put { key, value }],
            };
            db.write(request).await.map_err(db_err)?;
        }
    }
    Ok(())
}

struct Driver<H: Hosts, C: Clock> {
    core: Arc<Mutex<Core>>,
    hosts: H,
    clock: C,
    db: Arc<ClusterDb>,
    events: Arc<Events>,
    operations: Arc<Mutex<OperationTable>>,
    replies: HashMap<Token, Reply>,
    /// Outcomes of what the driver started, back into the loop.
    internal: mpsc::UnboundedSender<Input>,
    wake: Option<Duration>,
    options: Options,
    /// The revision the view holds, for consistent reads.
    revision: watch::Sender<u64>,
}

impl<H: Hosts, C: Clock> Driver<H, C> {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<(Command, Reply)>,
        mut facts: mpsc::UnboundedReceiver<HostEvent>,
        mut feed: Watch,
        mut internal: mpsc::UnboundedReceiver<Input>,
    ) {
        let mut next_token: Token = 0;
        let mut renewal = tokio::time::interval(HOST_LEASE_RENEWAL);
        renewal.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut lease = self.options.lease.clone();
        let mut lease_open = true;
        let mut lease_stop = stop_at(lease.borrow().map(|l| l.until), self.options.stop_margin);
        loop {
            // A far wake-up (a lease that does not end) is looked at hourly instead.
            let wake = self.wake.map(|w| self.clock.deadline(w.min(self.clock.now() + Duration::from_secs(3600))));
            let input = tokio::select! {
                Some(input) = internal.recv() => input,
                Some(event) = facts.recv() => Input::Host(event),
                change = feed.next() => match change {
                    Ok(c) => Input::Change { revision: c.revision, ops: c.ops },
                    Err(ClusterError::Lagged | ClusterError::Compacted { .. }) => match self.resync() {
                        Some((input, watch)) => {
                            feed = watch;
                            input
                        }
                        None => break,
                    },
                    Err(e) => {
                        tracing::info!(%e, "the change feed ended; the engine stops");
                        break;
                    }
                },
                command = commands.recv() => match command {
                    Some((command, reply)) => {
                        next_token += 1;
                        self.replies.insert(next_token, reply);
                        Input::Command { token: next_token, command }
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(wake.unwrap_or_else(tokio::time::Instant::now)), if wake.is_some() => Input::Tick,
                // The lease runs out (less the stop margin) with no renewal: the core stops the
                // groups here.
                _ = tokio::time::sleep_until(lease_stop.unwrap_or_else(tokio::time::Instant::now)), if lease_stop.is_some() => {
                    let current = lease.borrow().map(|l| l.until);
                    let fired = lease_stop.take();
                    // After the step-down, the stop comes next.
                    lease_stop = stop_at(current, self.options.stop_margin).filter(|n| Some(*n) > fired);
                    Input::Tick
                }
                changed = lease.changed(), if lease_open => {
                    if changed.is_err() {
                        // The lease's source is gone: its last word stands until it ends.
                        lease_open = false;
                        continue;
                    }
                    let granted = *lease.borrow_and_update();
                    lease_stop = stop_at(granted.map(|l| l.until), self.options.stop_margin);
                    self.renew_hosts(granted.map(|l| l.until));
                    lease_input(&self.clock, granted, self.options.stop_margin)
                }
                _ = renewal.tick() => {
                    let until = lease.borrow().map(|l| l.until);
                    self.renew_hosts(until);
                    continue;
                }
            };
            let (ready, revision) = {
                let mut core = lock(&self.core);
                core.set_wall_clock(unix_seconds());
                let ready = core.step(self.clock.now(), input);
                (ready, core.revision())
            };
            self.revision.send_if_modified(|r| std::mem::replace(r, revision) != revision);
            self.execute(ready);
        }
    }

    /// Tells the hosts when the lease ends (at most [`MAX_HOST_LEASE`] ahead). Without a lease
    /// nothing is said, and the hosts' last deadline stands.
    fn renew_hosts(&self, until: Option<tokio::time::Instant>) {
        let Some(until) = until else { return };
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if !left.is_zero() {
            self.hosts.renew_lease(left.min(MAX_HOST_LEASE));
        }
    }

    /// The feed fell behind: read the database again and watch from there.
    fn resync(&self) -> Option<(Input, Watch)> {
        let snapshot = match self.db.snapshot() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(%e, "re-reading the cluster database failed; the engine stops");
                return None;
            }
        };
        match self.db.watch(snapshot.revision) {
            Ok(watch) => Some((Input::Loaded { revision: snapshot.revision, records: snapshot.records }, watch)),
            Err(e) => {
                tracing::error!(%e, "following the cluster database failed; the engine stops");
                None
            }
        }
    }

    /// Does what the core decided. Undeliverable calls go back into the core through the loop,
    /// like any other outcome, so that a host refusing every call cannot spin here and starve
    /// the loop (and the lease it renews).
    fn execute(&mut self, ready: Ready) {
        for input in self.execute_once(ready) {
            let _ = self.internal.send(input);
        }
    }

    fn execute_once(&mut self, ready: Ready) -> Vec<Input> {
        let mut failed = Vec::new();
        for call in ready.calls {
            let id = call.id;
            let outcome = match call.call {
                Call::Open(spec) => {
                    let hosts = self.hosts.clone();
                    let back = self.internal.clone();
                    tokio::spawn(async move {
                        let result = hosts.open(spec).await;
                        let _ = back.send(Input::Opened { id, result });
                    });
                    Ok(())
                }
                Call::Online { flags, input } => self.hosts.online(id, flags, input).map_err(|e| (CallKind::Online, e)),
                Call::Offline { destination, flags, input } => {
                    self.hosts.offline(id, destination, flags.bits(), input).map_err(|e| (CallKind::Offline, e))
                }
                Call::Terminate => self.hosts.terminate(id).map_err(|e| (CallKind::Terminate, e)),
                Call::Update { properties, timeouts } => {
                    self.hosts.update(id, &properties, timeouts).map_err(|e| (CallKind::Other, e))
                }
                Call::Close => self.hosts.close(id).map_err(|e| (CallKind::Other, e)),
                Call::Control { token, code, input, output_size } => {
                    let hosts = self.hosts.clone();
                    let back = self.internal.clone();
                    tokio::spawn(async move {
                        let result = hosts.control(id, code, input, output_size).await;
                        let _ = back.send(Input::Controlled { token, result });
                    });
                    Ok(())
                }
            };
            if let Err((call, error)) = outcome {
                failed.push(Input::CallFailed { id, call, error });
            }
        }
        for (write, request) in ready.writes {
            let db = self.db.clone();
            let back = self.internal.clone();
            tokio::spawn(async move {
                let result = db.write(request).await.map_err(db_err);
                let _ = back.send(Input::Written { write, result });
            });
        }
        for kind in ready.events {
            self.events.emit(kind);
        }
        {
            let mut table = lock(&self.operations);
            // A new operation is readable before its id reaches the caller.
            for (_, reply) in &ready.replies {
                if let Ok(Answer::Operation(id)) = reply {
                    table.entry(*id);
                }
            }
            for (id, status) in ready.operations {
                table.entry(id).send_replace(status);
            }
            table.trim();
        }
        for (token, reply) in ready.replies {
            if let Some(tx) = self.replies.remove(&token) {
                let _ = tx.send(reply);
            }
        }
        self.wake = ready.wake;
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_finished_operations_are_dropped_past_the_limit() {
        let mut table = OperationTable::default();
        // The oldest operation is still going; every later one has ended.
        table.entry(1);
        for id in 2..=(FINISHED_OPERATIONS_KEPT as u64 + 10) {
            table.entry(id).send_replace(OpStatus::Succeeded);
        }
        table.trim();
        assert_eq!(table.statuses.len(), FINISHED_OPERATIONS_KEPT);
        assert!(table.statuses.contains_key(&1), "a pending operation must stay readable");
        assert!(!table.statuses.contains_key(&2), "the oldest finished ones go first");
    }
}
