//! Win32-style status codes, as resource entry points and the cluster API return them.

use std::fmt;

/// A Win32 status code (`DWORD`): what an entry point returns and what the cluster reports.
///
/// `ERROR_SUCCESS` (0) is success, `ERROR_IO_PENDING` (997) means "accepted, finishing
/// asynchronously", anything else is an error. Codes without a named constant are still valid
/// values: they print as `error N`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Status(pub u32);

macro_rules! status_codes {
    ($($(#[$doc:meta])* $name:ident = $value:expr;)*) => {
        impl Status {
            $($(#[$doc])* pub const $name: Status = Status($value);)*

            /// Every named code, in declaration order, as `(name, code)`.
            pub const ALL: &'static [(&'static str, Status)] = &[$((stringify!($name), Status($value)),)*];

            /// The symbolic name (`ERROR_IO_PENDING`), or `None` for a code halo does not name.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }

            /// Looks a code up by its symbolic name, with or without the `ERROR_` prefix,
            /// ignoring ASCII case.
            pub fn from_name(name: &str) -> Option<Status> {
                let wanted = name.trim();
                Self::ALL.iter().find_map(|(n, code)| {
                    let bare = n.strip_prefix("ERROR_").unwrap_or(n);
                    (n.eq_ignore_ascii_case(wanted) || bare.eq_ignore_ascii_case(wanted)).then_some(*code)
                })
            }
        }
    };
}

status_codes! {
    /// The call succeeded.
    ERROR_SUCCESS = 0;
    /// Incorrect function. From a resource's control routine: "monitor, apply the default handling".
    ERROR_INVALID_FUNCTION = 1;
    /// A named item (for halo: a private property a plug-in asked for) does not exist.
    ERROR_FILE_NOT_FOUND = 2;
    /// Access is denied (a program that may not be executed, a file that may not be written).
    ERROR_ACCESS_DENIED = 5;
    /// Not enough memory.
    ERROR_NOT_ENOUGH_MEMORY = 8;
    /// The data is invalid (malformed property list, bad plug-in table, …).
    ERROR_INVALID_DATA = 13;
    /// The request is not supported.
    ERROR_NOT_SUPPORTED = 50;
    /// A parameter is incorrect (unknown flag bits, out-of-range value, …).
    ERROR_INVALID_PARAMETER = 87;
    /// There is not enough space on the disk (the cluster database could not write).
    ERROR_DISK_FULL = 112;
    /// The call is not implemented by this resource type.
    ERROR_CALL_NOT_IMPLEMENTED = 120;
    /// The data area passed is too small.
    ERROR_INSUFFICIENT_BUFFER = 122;
    /// The dependency would create a cycle (winerror.h: "Circular service dependency was
    /// specified").
    ERROR_CIRCULAR_DEPENDENCY = 1059;
    /// The plug-in (shared object) could not be loaded.
    ERROR_MOD_NOT_FOUND = 126;
    /// The plug-in does not export the required entry point.
    ERROR_PROC_NOT_FOUND = 127;
    /// The output buffer is too small; `bytes_returned` holds the size needed.
    ERROR_MORE_DATA = 234;
    /// The operation was cancelled.
    ERROR_OPERATION_ABORTED = 995;
    /// Accepted; the operation continues asynchronously (pending).
    ERROR_IO_PENDING = 997;
    /// The operation could not be completed; retry it (the API: too many requests, wait for
    /// `Retry-After`).
    ERROR_RETRY = 1237;
    /// The caller has not been authenticated (the API: no credentials, or ones it refused).
    ERROR_NOT_AUTHENTICATED = 1244;
    /// The plug-in and halo share no table version.
    ERROR_REVISION_MISMATCH = 1306;
    /// Another resource depends on this one.
    ERROR_DEPENDENT_RESOURCE_EXISTS = 5001;
    /// The dependency was not found.
    ERROR_DEPENDENCY_NOT_FOUND = 5002;
    /// The dependency already exists.
    ERROR_DEPENDENCY_ALREADY_EXISTS = 5003;
    /// The resource is not online.
    ERROR_RESOURCE_NOT_ONLINE = 5004;
    /// No node is available to host the resource.
    ERROR_HOST_NODE_NOT_AVAILABLE = 5005;
    /// The resource is not available.
    ERROR_RESOURCE_NOT_AVAILABLE = 5006;
    /// The resource was not found.
    ERROR_RESOURCE_NOT_FOUND = 5007;
    /// The group is not available.
    ERROR_GROUP_NOT_AVAILABLE = 5012;
    /// The group was not found.
    ERROR_GROUP_NOT_FOUND = 5013;
    /// The group is not online.
    ERROR_GROUP_NOT_ONLINE = 5014;
    /// The object already exists.
    ERROR_OBJECT_ALREADY_EXISTS = 5010;
    /// The node does not own the group (the request must go to its owner).
    ERROR_HOST_NODE_NOT_GROUP_OWNER = 5016;
    /// The resource monitor (host) could not be created.
    ERROR_RESMON_CREATE_FAILED = 5017;
    /// The resource monitor (host) could not bring the resource online.
    ERROR_RESMON_ONLINE_FAILED = 5018;
    /// The resource is online.
    ERROR_RESOURCE_ONLINE = 5019;
    /// The resource is the quorum resource.
    ERROR_QUORUM_RESOURCE = 5020;
    /// The resource type cannot be a quorum resource.
    ERROR_NOT_QUORUM_CAPABLE = 5021;
    /// The cluster is shutting down.
    ERROR_CLUSTER_SHUTTING_DOWN = 5022;
    /// The object is in a state that does not allow the request.
    ERROR_INVALID_STATE = 5023;
    /// Properties were stored and take effect at the next online.
    ERROR_RESOURCE_PROPERTIES_STORED = 5024;
    /// The resource is a core cluster resource.
    ERROR_CORE_RESOURCE = 5026;
    /// The node is not available.
    ERROR_NODE_NOT_AVAILABLE = 5036;
    /// No node is available.
    ERROR_ALL_NODES_NOT_AVAILABLE = 5037;
    /// The resource failed.
    ERROR_RESOURCE_FAILED = 5038;
    /// No node of that name is in the cluster.
    ERROR_CLUSTER_NODE_NOT_FOUND = 5042;
    /// The node is down.
    ERROR_CLUSTER_NODE_DOWN = 5050;
    /// The dependency is not allowed (different groups, or self).
    ERROR_DEPENDENCY_NOT_ALLOWED = 5069;
    /// The node is paused.
    ERROR_CLUSTER_NODE_PAUSED = 5070;
    /// The node cannot host the resource.
    ERROR_NODE_CANT_HOST_RESOURCE = 5071;
    /// The resource type was not found.
    ERROR_CLUSTER_RESOURCE_TYPE_NOT_FOUND = 5078;
    /// The resource type is not supported by the plug-in.
    ERROR_CLUSTER_RESTYPE_NOT_SUPPORTED = 5079;
    /// The resource (type) name was not recognised by the plug-in.
    ERROR_CLUSTER_RESNAME_NOT_FOUND = 5080;
    /// The owner is not in the preferred list.
    ERROR_CLUSTER_OWNER_NOT_IN_PREFLIST = 5082;
    /// The resource monitor (host) is in an invalid state.
    ERROR_RESMON_INVALID_STATE = 5084;
    /// The property cannot be changed.
    ERROR_RESOURCE_PROPERTY_UNCHANGEABLE = 5089;
    /// The group is moving.
    ERROR_CLUSTER_GROUP_MOVING = 5908;
    /// The resource type is busy.
    ERROR_CLUSTER_RESOURCE_TYPE_BUSY = 5909;
    /// A resource call did not complete in time (PendingTimeout or DeadlockTimeout).
    ERROR_RESOURCE_CALL_TIMED_OUT = 5910;
    /// A parameter is out of bounds.
    ERROR_CLUSTER_PARAMETER_OUT_OF_BOUNDS = 5913;
    /// The cluster has no quorum.
    ERROR_CLUSTER_NO_QUORUM = 5925;
    /// The dependency tree is too complex.
    ERROR_DEPENDENCY_TREE_TOO_COMPLEX = 5929;
    /// A resource entry point crashed (exception, signal, panic).
    ERROR_EXCEPTION_IN_RESOURCE_CALL = 5930;
    /// The resource host failed to initialise.
    ERROR_CLUSTER_RHS_FAILED_INITIALIZATION = 5931;
    /// The resource provider failed.
    ERROR_CLUSTER_RESOURCE_PROVIDER_FAILED = 5942;
    /// The resource cannot come online on any node.
    ERROR_CLUSTER_RESOURCE_CONFIGURATION_ERROR = 5943;
    /// The group is busy.
    ERROR_CLUSTER_GROUP_BUSY = 5944;
    /// A resource vetoed the move: incompatible nodes.
    ERROR_CLUSTER_RESOURCE_VETOED_MOVE_INCOMPATIBLE_NODES = 5953;
    /// A resource vetoed the call.
    ERROR_CLUSTER_RESOURCE_VETOED_CALL = 5955;
    /// The resource host lacks system resources.
    ERROR_RESMON_SYSTEM_RESOURCES_LACKING = 5956;
    /// A resource vetoed the move: not enough resources on the destination.
    ERROR_CLUSTER_RESOURCE_VETOED_MOVE_NOT_ENOUGH_RESOURCES_ON_DESTINATION = 5957;
    /// A resource vetoed the move: not enough resources on the source.
    ERROR_CLUSTER_RESOURCE_VETOED_MOVE_NOT_ENOUGH_RESOURCES_ON_SOURCE = 5958;
    /// The group operation was queued.
    ERROR_CLUSTER_GROUP_QUEUED = 5959;
    /// A resource is in locked mode; retry with IGNORE_RESOURCE_STATUS to force it.
    ERROR_CLUSTER_RESOURCE_LOCKED_STATUS = 5960;
    /// The node is being drained.
    ERROR_CLUSTER_NODE_DRAIN_IN_PROGRESS = 5962;
    /// The resource is in maintenance mode.
    ERROR_CLUSTER_RESOURCE_IS_IN_MAINTENANCE_MODE = 5970;
    /// An affinity rule conflicts.
    ERROR_CLUSTER_AFFINITY_CONFLICT = 5971;
}

impl Status {
    /// True for `ERROR_SUCCESS` only.
    pub fn is_success(self) -> bool {
        self == Status::ERROR_SUCCESS
    }

    /// True for `ERROR_IO_PENDING`: the work goes on in a worker, which reports through
    /// `set_resource_status_ex`.
    pub fn is_pending(self) -> bool {
        self == Status::ERROR_IO_PENDING
    }

    /// True for anything but success and pending.
    pub fn is_error(self) -> bool {
        !self.is_success() && !self.is_pending()
    }

    /// The raw code.
    pub fn code(self) -> u32 {
        self.0
    }
}

impl From<u32> for Status {
    fn from(code: u32) -> Self {
        Status(code)
    }
}

impl From<Status> for u32 {
    fn from(status: Status) -> Self {
        status.0
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({})", self.0),
            None => write!(f, "error {}", self.0),
        }
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Status {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_prints_name_and_number() {
        assert_eq!(Status::ERROR_IO_PENDING.to_string(), "ERROR_IO_PENDING (997)");
        assert_eq!(Status(424_242).to_string(), "error 424242");
    }

    #[test]
    fn success_pending_error_are_disjoint() {
        assert!(Status::ERROR_SUCCESS.is_success() && !Status::ERROR_SUCCESS.is_pending());
        assert!(Status::ERROR_IO_PENDING.is_pending() && !Status::ERROR_IO_PENDING.is_success());
        assert!(Status::ERROR_RESOURCE_FAILED.is_error());
        assert!(!Status::ERROR_IO_PENDING.is_error());
    }

    #[test]
    fn names_are_unique_and_resolvable() {
        for (name, code) in Status::ALL {
            assert_eq!(code.name(), Some(*name), "{name} maps back to itself");
            assert_eq!(Status::from_name(name), Some(*code));
        }
        assert_eq!(
            Status::from_name("cluster_resource_locked_status"),
            Some(Status::ERROR_CLUSTER_RESOURCE_LOCKED_STATUS)
        );
        assert_eq!(Status::from_name("NO_SUCH_THING"), None);
    }
}
