//! The decision core of the engine: plain data and pure functions.
//!
//! [`Core::step`] takes the time and one [`Input`] — an operator command, a host fact, a change
//! from the cluster database's feed, the outcome of something the core asked for, or a timer
//! expiry — and returns a [`Ready`]: the calls to send to hosts, the transactions to write, the
//! events to publish, the replies and operation outcomes to deliver, and when to wake it next.
//! It reads no clock, spawns nothing and does no I/O, so the same code runs under the real
//! driver (`crate::driver`) and in the simulator, and its tests assert exact actions with time
//! advanced by hand.
//!
//! The core learns of the database only through the change feed: its view is what the feed has
//! delivered, so writes made by another node (or by hand) are seen exactly like its own.
//! Configuration commands are checked against the view and become guarded transactions; a
//! transaction whose guard fails is checked again once the feed has caught up.

mod config;
mod control;
mod convergence;
mod facts;
mod feed;
mod operations;
pub mod ownership;
pub mod restart;
pub mod view;

use crate::events::EventKind;
use crate::model::EngineError;
use halo_cluster::{Op, Record, Request, Response};
use halo_host::client::{ControlReply, HostError, HostEvent, OpenSpec};
use halo_host::protocol::{ResourceId, Timeouts};
use resapi::{OfflineFlags, PropertyList};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

pub use control::ControlOutput;
use view::View;

/// Time as the core sees it: monotonic, since an origin the driver chooses.
pub type Time = Duration;

/// Identifies a command, so that its reply finds the caller.
pub type Token = u64;

/// Identifies a database write the core asked for.
pub type WriteId = u64;

/// What the operator wants of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Desired {
    /// Online.
    Online,
    /// Offline.
    Offline,
}

/// An operation's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum OpStatus {
    /// Still going (the API answers 202 and ERROR_IO_PENDING).
    Pending,
    /// Reached its goal.
    Succeeded,
    /// Ended without reaching it.
    Failed {
        /// The code.
        code: u32,
        /// Its name and a reason.
        message: String,
    },
}

/// A resource as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceView {
    /// Its name.
    pub name: String,
    /// Its group.
    pub group: String,
    /// Its type.
    pub type_name: String,
    /// Its state's name (`Online`, `OnlinePending`, …).
    pub state: String,
    /// The Win32 status recorded with the state.
    pub status: u32,
    /// That status's name and number.
    pub status_text: String,
    /// What it should be.
    pub desired: Desired,
    /// The node that owns its group.
    pub owner: String,
    /// Its group's epoch (the revision of the group's ownership record).
    pub epoch: u64,
    /// Common properties as set.
    pub common: BTreeMap<String, String>,
    /// Private properties.
    pub private: BTreeMap<String, String>,
    /// Its dependency expression.
    pub dependencies: String,
    /// Locked mode.
    pub locked: bool,
}

/// A group as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct GroupView {
    /// Its name.
    pub name: String,
    /// Its derived state's name.
    pub state: String,
    /// The node that owns it.
    pub owner: String,
    /// Its epoch: the revision of its ownership record.
    pub epoch: u64,
    /// Where it is moving, while a move is in progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moving_to: Option<String>,
    /// Its resources.
    pub resources: Vec<String>,
    /// Common properties as set.
    pub common: BTreeMap<String, String>,
}

/// What a set of resources an operation names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One resource (with what it depends on for an online, what depends on it for an offline).
    Resource(String),
    /// Every resource of a group.
    Group(String),
}

/// An operator's command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Creates a group.
    CreateGroup { name: String, common: BTreeMap<String, String> },
    /// Sets a group's common properties.
    SetGroupProperties { name: String, common: BTreeMap<String, String> },
    /// Deletes an empty group.
    DeleteGroup { name: String },
    /// Declares a native resource type (`path`: its `.so`; `type_name`: what its Startup expects).
    CreateNativeType { name: String, path: String, type_name: String, common: BTreeMap<String, String> },
    /// Removes a resource type no resource uses.
    DeleteType { name: String },
    /// Creates a resource with its dependencies, in one write.
    CreateResource {
        name: String,
        group: String,
        type_name: String,
        common: BTreeMap<String, String>,
        private: BTreeMap<String, String>,
        dependencies: String,
    },
    /// Sets common and private properties, and removes the private ones named in `unset`.
    SetProperties {
        name: String,
        common: BTreeMap<String, String>,
        private: BTreeMap<String, String>,
        unset: Vec<String>,
    },
    /// Replaces a resource's dependency expression.
    SetDependencies { name: String, expression: String },
    /// Deletes a resource nothing depends on, taking it offline first.
    DeleteResource { name: String, force: bool },
    /// Brings resources online; `input`: the operator's InBuffer (a property list) for the
    /// named resource's (or each group member's) next OnlineV2, passed unchanged; empty: halo's
    /// own (the group's epoch).
    Online { target: Target, update_persistent: bool, input: Vec<u8> },
    /// Takes resources offline; `terminate`: FORCE_WITH_TERMINATION; `input` as for
    /// [`Command::Online`], for OfflineV2.
    Offline { target: Target, flags: OfflineFlags, update_persistent: bool, terminate: bool, input: Vec<u8> },
    /// FailClusterResource.
    Fail { name: String },
    /// ResourceControl.
    Control { name: String, code: u32, input: Vec<u8>, output_size: u32 },
    /// A control code for the resource's type only, without the cluster's default handling:
    /// answered `ERROR_INVALID_FUNCTION` when the resource is not open here or its type does
    /// not handle the code (how property changes reach a type: VALIDATE, then SET).
    TypeControl { name: String, code: u32, input: Vec<u8>, output_size: u32 },
    /// Takes everything offline, keeping persistent state, and refuses onlines from now on.
    Shutdown,
    /// MoveClusterGroupEx: moves a group this node owns to `to` (`None`: where placement
    /// says).
    Move { group: String, to: Option<String>, flags: resapi::GroupMoveFlags, reason: String },
    /// CancelClusterGroupOperation: stops a move that has not handed the group over yet; the
    /// group returns to its persistent state here.
    CancelMove { group: String },
    /// PauseClusterNodeEx / ResumeClusterNodeEx: a paused node takes no groups; with `drain`,
    /// it moves away every group it owns.
    SetNodePaused { node: String, paused: bool, drain: bool, failback: bool },
    /// Sets the cluster's properties (HeartbeatInterval, HeartbeatThreshold).
    SetClusterProperties { common: BTreeMap<String, String> },
}

/// What the core is told.
#[derive(Debug, Clone)]
pub enum Input {
    /// An operator's command; its reply carries `token`.
    Command { token: Token, command: Command },
    /// A fact from the hosts.
    Host(HostEvent),
    /// The whole database at `revision` (at start, and after the feed was lost).
    Loaded { revision: u64, records: BTreeMap<String, Record> },
    /// One applied log entry from the change feed.
    Change { revision: u64, ops: Vec<Op> },
    /// The outcome of a write from [`Ready::writes`].
    Written { write: WriteId, result: Result<Response, EngineError> },
    /// The outcome of an open from [`Ready::calls`].
    Opened { id: ResourceId, result: Result<(), HostError> },
    /// A call from [`Ready::calls`] could not be delivered.
    CallFailed { id: ResourceId, call: CallKind, error: HostError },
    /// The answer to a control call from [`Ready::calls`].
    Controlled { token: Token, result: Result<ControlReply, HostError> },
    /// The ownership lease this node holds now runs until `until` (`None`: it holds none).
    /// Groups run here only while it holds one. The driver steps the core (with any input, a
    /// [`Input::Tick`] at least) when `until` passes.
    Lease { until: Option<Time>, revision: u64 },
    /// Time passed (the wake-up asked for, or any other reason to look again).
    Tick,
}

/// Which call failed (for [`Input::CallFailed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// OnlineV2.
    Online,
    /// OfflineV2.
    Offline,
    /// Terminate.
    Terminate,
    /// New properties, Close or anything else.
    Other,
}

/// A call for a host.
#[derive(Debug, Clone)]
pub struct HostCall {
    /// The resource's id.
    pub id: ResourceId,
    /// Its name, for logs and tests.
    pub resource: String,
    /// The call.
    pub call: Call,
}

/// The calls the core makes.
#[derive(Debug, Clone)]
pub enum Call {
    /// Open it in a host (answer: [`Input::Opened`]).
    Open(OpenSpec),
    /// OnlineV2.
    Online { flags: u32, input: Vec<u8> },
    /// OfflineV2, with the destination node of a move.
    Offline { destination: Option<String>, flags: OfflineFlags, input: Vec<u8> },
    /// Terminate.
    Terminate,
    /// New private properties and timeouts.
    Update { properties: PropertyList, timeouts: Timeouts },
    /// Close.
    Close,
    /// ResourceControl (answer: [`Input::Controlled`]).
    Control { token: Token, code: u32, input: Vec<u8>, output_size: u32 },
}

impl fmt::Display for HostCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.resource;
        match &self.call {
            Call::Open(_) => write!(f, "open {r}"),
            Call::Online { flags, .. } => write!(f, "online {r} flags={flags:#x}"),
            Call::Offline { destination, flags, .. } => {
                write!(f, "offline {r} to={} flags={flags}", destination.as_deref().unwrap_or("-"))
            }
            Call::Terminate => write!(f, "terminate {r}"),
            Call::Update { .. } => write!(f, "update {r}"),
            Call::Close => write!(f, "close {r}"),
            Call::Control { code, .. } => write!(f, "control {r} {code:#x}"),
        }
    }
}

/// A successful reply to a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Done (configuration commands, FailClusterResource).
    Done,
    /// Started as this operation.
    Operation(u64),
    /// A control call's output.
    Control(ControlOutput),
}

/// What one step decided.
#[derive(Debug, Default)]
pub struct Ready {
    /// Calls for hosts, in order.
    pub calls: Vec<HostCall>,
    /// Transactions to write (answer: [`Input::Written`]).
    pub writes: Vec<(WriteId, Request)>,
    /// Events to publish, in order.
    pub events: Vec<EventKind>,
    /// Replies to commands.
    pub replies: Vec<(Token, Result<Answer, EngineError>)>,
    /// Operations whose status changed (a new operation is Pending until it appears here).
    pub operations: Vec<(u64, OpStatus)>,
    /// When to step again with [`Input::Tick`] at the latest.
    pub wake: Option<Time>,
}

impl Ready {
    /// Appends what a later step decided; its wake-up wins, since it was computed last.
    pub fn merge(&mut self, later: Ready) {
        self.calls.extend(later.calls);
        self.writes.extend(later.writes);
        self.events.extend(later.events);
        self.replies.extend(later.replies);
        self.operations.extend(later.operations);
        self.wake = later.wake;
    }
}

/// The decision core of one node's engine.
#[derive(Debug)]
pub struct Core {
    /// This node's name.
    node: String,
    /// What the feed has delivered, and each resource's runtime state.
    view: View,
    /// Whether the first [`Input::Loaded`] has arrived.
    loaded: bool,
    /// Operations in progress.
    ops: operations::Operations,
    /// Configuration writes in flight, and what waits for the feed.
    config: config::Config,
    /// Control calls waiting for a host's answer.
    controls: BTreeMap<Token, control::PendingControl>,
    /// Resources to reconsider at the end of this step.
    dirty: BTreeSet<String>,
    /// Groups whose derived state may have changed.
    dirty_groups: BTreeSet<String>,
    /// Resources waiting for a restart delay or retry period.
    waiting: BTreeSet<String>,
    /// Refuses onlines (the node is stopping).
    shutting_down: bool,
    /// Resources to open while they stay offline, once their group runs here: those of the
    /// node's start, new ones, changed ones, and those of a group that arrived (see
    /// `open_or_close`). A resource closed by a host's death is not among them: it is opened
    /// again when it is to come online.
    to_open: BTreeSet<String>,
    /// Until when this node holds its ownership lease.
    lease_until: Option<Time>,
    /// The newest grant, until the view reaches its revision: (until, revision).
    lease_pending: Option<(Time, u64)>,
    /// Where the lease stood when last looked at.
    lease_phase: ownership::LeasePhase,
    /// The wall clock (Unix seconds) as the driver last said, for FailoverPeriod (hours long,
    /// and counted across nodes).
    wall_clock: u64,
    /// Groups whose ownership write (hand-over, return, failover) is in flight, with its id.
    handing: BTreeMap<String, WriteId>,
    /// Groups that came online here after arriving, with the epoch they arrived at: a move's
    /// return-on-error no longer applies to them.
    settled: BTreeMap<String, u64>,
    /// The next write id.
    next_write: WriteId,
}

impl Core {
    /// A core for node `node`, knowing nothing yet: the first input should be
    /// [`Input::Loaded`].
    pub fn new(node: &str) -> Core {
        Core {
            node: node.to_string(),
            view: View::default(),
            loaded: false,
            ops: operations::Operations::default(),
            config: config::Config::default(),
            controls: BTreeMap::new(),
            dirty: BTreeSet::new(),
            dirty_groups: BTreeSet::new(),
            waiting: BTreeSet::new(),
            shutting_down: false,
            to_open: BTreeSet::new(),
            lease_until: None,
            lease_pending: None,
            lease_phase: ownership::LeasePhase::Lost,
            wall_clock: 0,
            handing: BTreeMap::new(),
            settled: BTreeMap::new(),
            next_write: 1,
        }
    }

    /// Numbers operations from `first` on (the driver passes a number that grows across
    /// restarts, so that an operation id is never given out twice by one node).
    pub fn numbering_operations_from(mut self, first: u64) -> Core {
        self.ops.start_at(first);
        self
    }

    /// Tells the core the wall clock (Unix seconds); the driver does before each step.
    pub fn set_wall_clock(&mut self, unix_s: u64) {
        self.wall_clock = unix_s;
    }

    /// Takes one input at `now` and says what to do about it.
    pub fn step(&mut self, now: Time, input: Input) -> Ready {
        let mut ready = Ready::default();
        match input {
            Input::Command { token, command } => self.command(token, command, &mut ready),
            Input::Host(event) => self.on_host(now, event, &mut ready),
            Input::Loaded { revision, records } => self.on_loaded(revision, records, &mut ready),
            Input::Change { revision, ops } => self.on_change(revision, ops, &mut ready),
            Input::Written { write, result } => {
                self.on_ownership_written(write, matches!(result, Ok(Response::Applied { .. })));
                self.on_written(write, result, &mut ready)
            }
            Input::Opened { id, result } => self.on_opened(now, id, result, &mut ready),
            Input::CallFailed { id, call, error } => self.on_call_failed(now, id, call, error, &mut ready),
            Input::Controlled { token, result } => self.on_controlled(token, result, &mut ready),
            Input::Lease { until, revision } => self.on_lease(now, until, revision),
            Input::Tick => {}
        }
        self.finish(now, &mut ready);
        ready
    }

    /// Work every step ends with: start what the due timers allow, converge what changed,
    /// publish group states, settle operations, and say when to wake.
    fn finish(&mut self, now: Time, ready: &mut Ready) {
        self.check_lease(now);
        let due: Vec<String> = self
            .waiting
            .iter()
            .filter(|n| self.view.resources.get(*n).is_none_or(|r| r.restart.wait_until.is_none_or(|t| t <= now)))
            .cloned()
            .collect();
        for n in due {
            self.waiting.remove(&n);
            self.dirty.insert(n);
        }
        self.end_answered_turns(ready);
        self.converge(now, ready);
        self.publish_groups(ready);
        self.settle_operations(ready);
        self.end_answered_turns(ready);
        // Settling can start deletes and retries, which may change more.
        self.converge(now, ready);
        self.publish_groups(ready);
        let persist = self.retry_persists(now, ready);
        // The lease's end is the driver's to wake for (it knows the lease; see Input::Lease).
        let restart = self.view.next_restart(&self.waiting);
        ready.wake = match (restart, persist) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// Marks a resource and its neighbours for convergence: its dependents may come up or must go
    /// down; what it depends on may now go down.
    fn touch(&mut self, name: &str) {
        let Some(r) = self.view.resources.get(name) else { return };
        self.dirty_groups.insert(r.doc.group.clone());
        for d in r.doc.dependencies.names() {
            self.dirty.insert(d.to_string());
        }
        let dependents: Vec<String> = self.view.dependents_of(name).cloned().collect();
        self.dirty.extend(dependents);
        self.dirty.insert(name.to_string());
    }

    /// Marks every member of a group for convergence.
    fn touch_group(&mut self, group: &str) {
        self.dirty_groups.insert(group.to_string());
        let members: Vec<String> =
            self.view.groups.get(group).map(|g| g.members.iter().cloned().collect()).unwrap_or_default();
        for m in members {
            self.dirty.insert(m);
        }
    }

    fn publish_groups(&mut self, ready: &mut Ready) {
        for g in std::mem::take(&mut self.dirty_groups) {
            let state = self.view.derive_group(&g);
            if let Some(group) = self.view.groups.get_mut(&g)
                && group.state != state
            {
                group.state = state;
                ready.events.push(EventKind::GroupState { group: g.clone(), state: state.to_string() });
            }
            self.ownership_duties(&g, ready);
        }
    }

    fn write(&mut self, request: Request, ready: &mut Ready) -> WriteId {
        let id = self.next_write;
        self.next_write += 1;
        ready.writes.push((id, request));
        id
    }

    // ---- reads, for the API ----

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The revision of the last change the view holds.
    pub fn revision(&self) -> u64 {
        self.view.revision
    }

    /// Every resource.
    pub fn resources(&self) -> Vec<ResourceView> {
        self.view.resources.values().map(|r| self.view.resource_view(r, &self.node)).collect()
    }

    /// One resource.
    pub fn resource(&self, name: &str) -> Option<ResourceView> {
        self.view.resources.get(name).map(|r| self.view.resource_view(r, &self.node))
    }

    /// Every group.
    pub fn groups(&self) -> Vec<GroupView> {
        self.view.groups.values().map(|g| self.view.group_view(g, &self.node)).collect()
    }

    /// One group.
    pub fn group(&self, name: &str) -> Option<GroupView> {
        self.view.groups.get(name).map(|g| self.view.group_view(g, &self.node))
    }

    /// The node that owns `group` (`None`: no such group or no ownership record).
    pub fn owner_of(&self, group: &str) -> Option<String> {
        self.view.groups.get(group)?;
        self.view.owners.get(group).map(|(_, o)| o.node.clone())
    }

    /// The group of resource `name`.
    pub fn group_of(&self, name: &str) -> Option<String> {
        self.view.resources.get(name).map(|r| r.doc.group.clone())
    }

    /// The cluster's properties (the defaults until set).
    pub fn cluster_properties(&self) -> crate::model::ClusterProperties {
        self.view.cluster.map(|(_, p)| p).unwrap_or_default()
    }

    /// Every registered node with its recorded state: (name, record, state name).
    pub fn nodes(&self) -> Vec<(halo_cluster::NodeRecord, String)> {
        self.view
            .nodes
            .iter()
            .map(|(name, (_, record))| {
                let state = self.view.node_states.get(name).map(|(_, s)| s.clone()).unwrap_or_default();
                (record.clone(), feed::node_state_name(&state).to_string())
            })
            .collect()
    }

    /// Every resource type.
    pub fn types(&self) -> Vec<crate::model::TypeDoc> {
        self.view.types.values().map(|(_, t)| t.clone()).collect()
    }
}
