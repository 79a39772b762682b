//! The Rust resource-type API: what a resource type implements ([`ResourceType`], [`Resource`])
//! and what the host gives it back ([`Callbacks`], [`Parameters`]).
//!
//! The host (halo's resource monitor) is the only caller of these traits. It guarantees that the
//! entry points of one resource are never called concurrently, except [`Resource::terminate`],
//! which may arrive while any other entry point but `open`/`close` is running. Implementations
//! therefore take `&self` and lock what they share with `terminate` and with their workers.

use crate::{
    ControlCode, ExitState, FailureType, LogLevel, OfflineFlags, OnlineFlags, OpenFlags, PropertyList, ResourceState,
    Status, StatusFlags,
};
use std::fmt;
use std::sync::{Arc, RwLock};

/// The host's handle for one open resource (`RESOURCE_HANDLE`): only passed back to callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceHandle(pub u64);

impl fmt::Display for ResourceHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// `RESOURCE_STATUS_EX`: what a worker reports through [`Callbacks::set_resource_status_ex`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceStatusEx {
    /// The pending state while work goes on (`OnlinePending`/`OfflinePending`), or the final
    /// state (`Online`, `Offline`, `Failed`).
    pub state: ResourceState,
    /// Strictly greater than the previous report's while pending; the host ignores a report whose
    /// checkpoint did not grow.
    pub checkpoint: u32,
    /// An error code of the application's own, recorded with the state.
    pub application_specific_error_code: u32,
    /// Why the resource defers, vetoes or failed (`CLUSRESDLL_STATUS_*`).
    pub flags: StatusFlags,
}

impl ResourceStatusEx {
    /// A report of `state` at `checkpoint`, with no error code and no flags.
    pub fn new(state: ResourceState, checkpoint: u32) -> Self {
        ResourceStatusEx { state, checkpoint, application_specific_error_code: 0, flags: StatusFlags::empty() }
    }
}

/// What the host does with the callbacks of every resource it runs. The host implements this;
/// resource types use it through [`Callbacks`], which binds it to one resource.
pub trait Monitor: Send + Sync {
    /// `SetResourceStatusEx`. Valid only after an online/offline returned `ERROR_IO_PENDING`.
    /// Returns [`ExitState::Terminate`] once the resource has been terminated: the worker must
    /// then stop at once.
    fn set_resource_status_ex(&self, handle: ResourceHandle, status: ResourceStatusEx) -> ExitState;
    /// `LogEvent`: a line for the cluster log, attributed to the resource.
    fn log_event(&self, handle: ResourceHandle, level: LogLevel, message: &str);
    /// `SetResourceLockedMode`: while locked, offline and moves are refused unless forced.
    fn set_resource_locked_mode(&self, handle: ResourceHandle, locked: bool, reason: u32);
    /// `SignalFailure`: the resource noticed it failed; the host confirms with `is_alive`.
    fn signal_failure(&self, handle: ResourceHandle, failure: FailureType, application_specific_error_code: u32);
    /// `SetResourceInMemoryNodeLocalProperties`: volatile, node-local properties the resource
    /// publishes. Returns the status of the call.
    fn set_in_memory_node_local_properties(&self, handle: ResourceHandle, properties: PropertyList) -> Status;
}

/// The callbacks one resource uses (`CLRES_CALLBACK_FUNCTION_TABLE`, bound to its
/// `RESOURCE_HANDLE`). Cheap to clone; hand clones to worker threads.
#[derive(Clone)]
pub struct Callbacks {
    handle: ResourceHandle,
    monitor: Arc<dyn Monitor>,
}

impl fmt::Debug for Callbacks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callbacks").field("handle", &self.handle).finish_non_exhaustive()
    }
}

impl Callbacks {
    /// Binds a monitor to one resource's handle. Called by the host at open.
    pub fn new(handle: ResourceHandle, monitor: Arc<dyn Monitor>) -> Self {
        Callbacks { handle, monitor }
    }

    /// The resource's handle.
    pub fn handle(&self) -> ResourceHandle {
        self.handle
    }

    /// Reports progress or completion of a pending online/offline. Only call it after the entry
    /// point returned `ERROR_IO_PENDING`. While pending, report the pending state with a
    /// checkpoint one greater than the last; finish by reporting `Online`, `Offline` or `Failed`.
    /// If this returns [`ExitState::Terminate`], the resource was terminated: stop working.
    pub fn set_resource_status_ex(&self, status: ResourceStatusEx) -> ExitState {
        self.monitor.set_resource_status_ex(self.handle, status)
    }

    /// Writes a line to the cluster log as `"<type> <resource>: <message>"`.
    pub fn log_event(&self, level: LogLevel, message: &str) {
        self.monitor.log_event(self.handle, level, message)
    }

    /// Declares (or clears) locked mode: while locked, the cluster refuses to take the resource
    /// offline or move its group unless the operator forces it (`IGNORE_RESOURCE_STATUS`).
    pub fn set_resource_locked_mode(&self, locked: bool, reason: u32) {
        self.monitor.set_resource_locked_mode(self.handle, locked, reason)
    }

    /// Tells the host the resource failed without waiting for the next health poll; the host
    /// calls `is_alive` to confirm and fails the resource if it returns false.
    pub fn signal_failure(&self, failure: FailureType, application_specific_error_code: u32) {
        self.monitor.signal_failure(self.handle, failure, application_specific_error_code)
    }

    /// Publishes volatile node-local properties.
    pub fn set_in_memory_node_local_properties(&self, properties: PropertyList) -> Status {
        self.monitor.set_in_memory_node_local_properties(self.handle, properties)
    }
}

/// A resource's private properties, as the host currently holds them: halo's stand-in for the
/// registry key `Open` receives. Clones share one store, so a resource that keeps its
/// `Parameters` sees values the host stores later (re-read them at online, as a DLL re-reads its
/// key).
#[derive(Debug, Clone, Default)]
pub struct Parameters {
    inner: Arc<RwLock<PropertyList>>,
}

impl Parameters {
    /// A store holding `properties`.
    pub fn new(properties: PropertyList) -> Self {
        Parameters { inner: Arc::new(RwLock::new(properties)) }
    }

    /// A copy of the current properties.
    pub fn snapshot(&self) -> PropertyList {
        match self.inner.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Runs `f` on the current properties without copying them.
    pub fn with<R>(&self, f: impl FnOnce(&PropertyList) -> R) -> R {
        match self.inner.read() {
            Ok(guard) => f(&guard),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    /// Replaces the properties (the host does this after a successful SET_PRIVATE_PROPERTIES).
    pub fn replace(&self, properties: PropertyList) {
        match self.inner.write() {
            Ok(mut guard) => *guard = properties,
            Err(poisoned) => *poisoned.into_inner() = properties,
        }
    }
}

/// What `OpenV2` receives.
#[derive(Debug, Clone)]
pub struct OpenRequest {
    /// The resource's name.
    pub name: String,
    /// Its private properties.
    pub parameters: Parameters,
    /// Its callbacks.
    pub callbacks: Callbacks,
    /// `CLUS_RESDLL_OPEN_*` flags.
    pub flags: OpenFlags,
}

/// What a control routine produced: a status and how many bytes of the output buffer it wrote
/// (or, with `ERROR_MORE_DATA`, how many it needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlResult {
    /// `ERROR_SUCCESS`, `ERROR_MORE_DATA`, `ERROR_INVALID_FUNCTION` (apply the default
    /// handling), `ERROR_RESOURCE_PROPERTIES_STORED`, or an error.
    pub status: Status,
    /// Bytes written, or bytes needed with `ERROR_MORE_DATA`.
    pub bytes_returned: usize,
}

impl ControlResult {
    /// `ERROR_INVALID_FUNCTION`: "I do not handle this code; apply the default handling".
    pub const NOT_HANDLED: ControlResult = ControlResult { status: Status::ERROR_INVALID_FUNCTION, bytes_returned: 0 };

    /// Copies `data` into `output` if it fits (`ERROR_SUCCESS`), else reports the size needed
    /// (`ERROR_MORE_DATA`), as every control routine must.
    pub fn reply(data: &[u8], output: &mut [u8]) -> ControlResult {
        match output.get_mut(..data.len()) {
            Some(dst) => {
                dst.copy_from_slice(data);
                ControlResult { status: Status::ERROR_SUCCESS, bytes_returned: data.len() }
            }
            None => ControlResult { status: Status::ERROR_MORE_DATA, bytes_returned: data.len() },
        }
    }

    /// A status with no output.
    pub fn status(status: Status) -> ControlResult {
        ControlResult { status, bytes_returned: 0 }
    }
}

/// The monitor's lost-quorum callback, given to [`Resource::arbitrate`].
pub type QuorumLost = Arc<dyn Fn() + Send + Sync>;

/// A resource type: the code that can run resources of one kind (a resource DLL's type).
pub trait ResourceType: Send + Sync {
    /// `Startup`: called once per host before the first `open` of this type, with the type's
    /// name. Return an error to refuse to run in this host (`ERROR_REVISION_MISMATCH` for a
    /// version it cannot serve, `ERROR_CLUSTER_RESNAME_NOT_FOUND` for a type it does not know);
    /// the host then fails every `open` of the type with that status.
    fn startup(&self, type_name: &str) -> Result<(), Status> {
        let _ = type_name;
        Ok(())
    }

    /// `OpenV2`: creates the instance for one resource and leaves the entity it manages
    /// offline. Must be quick (under 300 ms): no starting of anything here. On error the host
    /// records the status and the resource cannot be brought online.
    fn open(&self, request: OpenRequest) -> Result<Box<dyn Resource>, Status>;

    /// `ResourceTypeControl`: a control code addressed to the type. Return
    /// [`ControlResult::NOT_HANDLED`] to let the host apply its default handling (properties,
    /// characteristics, flags); use [`ControlResult::reply`] so that a small `output` gets
    /// `ERROR_MORE_DATA` with the size needed.
    fn type_control(&self, code: ControlCode, input: &[u8], output: &mut [u8]) -> ControlResult {
        let _ = (code, input, output);
        ControlResult::NOT_HANDLED
    }
}

/// One open resource instance. See the module docs for the concurrency guarantee.
pub trait Resource: Send + Sync {
    /// `OnlineV2`: bring the entity online.
    ///
    /// Return `ERROR_SUCCESS` if it is online now. For anything slower than 300 ms, start a
    /// worker (see [`crate::Worker`]) and return `ERROR_IO_PENDING`: the host sets the state to
    /// `OnlinePending`, and the worker reports progress with strictly increasing checkpoints no
    /// further apart than `PendingTimeout`, then `Online` (or `Failed`). Any other status fails
    /// the online: the host calls `terminate` and the resource ends `Failed`.
    ///
    /// `input` is an opaque property list the operator or a move passed along (often empty).
    fn online_v2(&self, flags: OnlineFlags, input: &[u8]) -> Status;

    /// `OfflineV2`: take the entity offline gracefully, leaving it so that `destination` (the
    /// node the group is moving to, if this offline is part of a move) can start it.
    ///
    /// `flags` say why (see [`OfflineFlags`]); notably `DO_NOT_UPDATE_PERSISTENT_STATE` means the
    /// resource will come back online elsewhere or later. Return `ERROR_SUCCESS` when offline,
    /// or `ERROR_IO_PENDING` and report `OfflinePending` checkpoints then `Offline` from a worker.
    /// Any other status: the host calls `terminate` and the resource ends `Offline`.
    fn offline_v2(&self, destination: Option<&str>, flags: OfflineFlags, input: &[u8]) -> Status;

    /// `Terminate`: stop now, without grace. Cancels a pending online/offline: after it, the
    /// host answers the worker's status reports with [`ExitState::Terminate`]. Must leave the
    /// entity offline. May run concurrently with any entry point but `close`.
    fn terminate(&self);

    /// `LooksAlive`: a cheap check (a process exists, a socket is open), called every
    /// `LooksAlivePollInterval` while online. `false` makes the host call `is_alive` at once.
    fn looks_alive(&self) -> bool;

    /// `IsAlive`: the thorough check, called every `IsAlivePollInterval` while online (and after a
    /// failed `looks_alive` or a `signal_failure`). `false` fails the resource: the host sets
    /// `Failed` and calls `terminate`. Aim for under 50 ms; run slow probes in the background and
    /// return the last result.
    fn is_alive(&self) -> bool;

    /// `Close`: the resource is being deleted or its host is shutting down. The host has already
    /// terminated it if it was not offline. Free everything; no entry point follows.
    fn close(&self) {}

    /// `Arbitrate`: quorum-capable types only — win ownership, then keep defending it and call
    /// `lost` if it is lost later. Others return `ERROR_NOT_QUORUM_CAPABLE` (the default).
    fn arbitrate(&self, lost: QuorumLost) -> Status {
        let _ = lost;
        Status::ERROR_NOT_QUORUM_CAPABLE
    }

    /// `Release`: quorum-capable types only — stop defending ownership.
    fn release(&self) -> Status {
        Status::ERROR_NOT_QUORUM_CAPABLE
    }

    /// `ResourceControl`: a control code addressed to this resource. Return
    /// [`ControlResult::NOT_HANDLED`] (the default) for the host's default handling.
    fn resource_control(&self, code: ControlCode, input: &[u8], output: &mut [u8]) -> ControlResult {
        let _ = (code, input, output);
        ControlResult::NOT_HANDLED
    }

    /// `Cancel`: cancel the operation in progress. Return `ERROR_SUCCESS` when cancelled,
    /// `ERROR_IO_PENDING` when the cancel completes asynchronously, or
    /// `ERROR_INVALID_FUNCTION` (the default) when the type cannot cancel: the host then waits
    /// for the operation or terminates it.
    fn cancel(&self) -> Status {
        Status::ERROR_INVALID_FUNCTION
    }
}
