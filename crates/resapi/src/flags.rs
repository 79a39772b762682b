//! Flag sets with the exact bit values of `resapi.h` and `clusapi.h`.
//!
//! Every set converts from raw bits with [`from_raw`](OfflineFlags::from_raw), which refuses
//! unknown bits with `ERROR_INVALID_PARAMETER` and a message naming them: a flag halo does not
//! understand is never silently dropped.

use crate::Status;
use std::fmt;

/// A raw value or a name that a flag set does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagsError {
    /// Raw bits outside the set.
    #[error("{set}: unknown bits {unknown:#x} in {raw:#x} (allowed: {allowed})")]
    UnknownBits {
        /// The flag set (`OfflineFlags`, …).
        set: &'static str,
        /// The whole raw value that was refused.
        raw: u32,
        /// The bits that are not defined.
        unknown: u32,
        /// The defined flags, as `NAME 0xVALUE` separated by commas.
        allowed: String,
    },
    /// A flag name the set does not define.
    #[error("{set}: unknown flag {name:?} (allowed: {allowed})")]
    UnknownName {
        /// The flag set (`OfflineFlags`, …).
        set: &'static str,
        /// The name that was given.
        name: String,
        /// The defined flags, as `NAME 0xVALUE` separated by commas.
        allowed: String,
    },
}

impl FlagsError {
    /// The Win32 code this error maps to: always `ERROR_INVALID_PARAMETER` (87).
    pub fn status(&self) -> Status {
        Status::ERROR_INVALID_PARAMETER
    }
}

macro_rules! flag_set {
    (
        $(#[doc = $doc:literal])*
        $name:ident, prefix $prefix:literal {
            $($(#[doc = $fdoc:literal])* $flag:ident = $value:expr;)*
        }
    ) => {
        bitflags::bitflags! {
            $(#[doc = $doc])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
            pub struct $name: u32 {
                $($(#[doc = $fdoc])* const $flag = $value;)*
            }
        }

        impl $name {
            /// The C identifier prefix of these flags in the headers (`CLUS_RESDLL_OFFLINE_`, …).
            pub const C_PREFIX: &'static str = $prefix;

            /// The defined flags, as `NAME 0xVALUE` separated by commas (for error messages).
            pub fn allowed() -> String {
                Self::all()
                    .iter_names()
                    .map(|(n, f)| format!("{n} {:#x}", f.bits()))
                    .collect::<Vec<_>>()
                    .join(", ")
            }

            /// Converts raw bits, refusing any bit this set does not define.
            pub fn from_raw(raw: u32) -> Result<Self, FlagsError> {
                Self::from_bits(raw).ok_or_else(|| FlagsError::UnknownBits {
                    set: stringify!($name),
                    raw,
                    unknown: raw & !Self::all().bits(),
                    allowed: Self::allowed(),
                })
            }

            /// The names of the flags that are set, in bit order (`IGNORE_RESOURCE_STATUS`, …).
            pub fn names(self) -> Vec<&'static str> {
                self.iter_names().map(|(n, _)| n).collect()
            }

            /// Parses `NAME|NAME` (with or without the C prefix, any case), or a number
            /// (`0x41`, `65`); an empty string is no flags.
            pub fn parse(text: &str) -> Result<Self, FlagsError> {
                let text = text.trim();
                if text.is_empty() {
                    return Ok(Self::empty());
                }
                if let Some(raw) = crate::parse_u32(text) {
                    return Self::from_raw(raw);
                }
                let mut flags = Self::empty();
                for part in text.split(['|', ',']) {
                    let part = part.trim();
                    // `get`, not a slice: the prefix's length may fall inside a character.
                    let bare = match part.get(..Self::C_PREFIX.len()) {
                        Some(head) if head.eq_ignore_ascii_case(Self::C_PREFIX) => &part[Self::C_PREFIX.len()..],
                        _ => part,
                    };
                    let found = Self::all()
                        .iter_names()
                        .find(|(n, _)| n.eq_ignore_ascii_case(bare))
                        .map(|(_, f)| f);
                    match found {
                        Some(f) => flags |= f,
                        None => {
                            return Err(FlagsError::UnknownName {
                                set: stringify!($name),
                                name: part.to_string(),
                                allowed: Self::allowed(),
                            })
                        }
                    }
                }
                Ok(flags)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if self.is_empty() {
                    return write!(f, "0x0");
                }
                write!(f, "{:#x} ({})", self.bits(), self.names().join("|"))
            }
        }

        impl TryFrom<u32> for $name {
            type Error = FlagsError;
            fn try_from(raw: u32) -> Result<Self, FlagsError> {
                Self::from_raw(raw)
            }
        }
    };
}

flag_set! {
    /// Flags the monitor passes to `OfflineV2` (`CLUS_RESDLL_OFFLINE_*`): why and how the
    /// resource is being taken offline.
    OfflineFlags, prefix "CLUS_RESDLL_OFFLINE_" {
        /// Proceed even though the resource declared itself locked.
        IGNORE_RESOURCE_STATUS = 0x1;
        /// The move was requested with return-to-source: a failure on the destination brings the
        /// group back here.
        RETURN_TO_SOURCE_NODE_ON_ERROR = 0x2;
        /// If the resource defers the offline, the operation is queued and retried until it
        /// completes or is cancelled.
        QUEUE_ENABLED = 0x4;
        /// This is the return leg of a move that failed on its destination.
        RETURNING_TO_SOURCE_NODE_BECAUSE_OF_ERROR = 0x8;
        /// The resource signalled an embedded failure.
        DUE_TO_EMBEDDED_FAILURE = 0x10;
        /// Proceed even though the node has lost network connectivity.
        IGNORE_NETWORK_CONNECTIVITY = 0x20;
        /// Do not record this offline as the resource's persistent state (a move, failover,
        /// drain or shutdown: the resource comes back online wherever the group lands).
        DO_NOT_UPDATE_PERSISTENT_STATE = 0x40;
    }
}

flag_set! {
    /// Flags the monitor passes to `OnlineV2` (`CLUS_RESDLL_ONLINE_*`).
    OnlineFlags, prefix "CLUS_RESDLL_ONLINE_" {
        /// Re-attach to a resource that is already running (after an error or host recovery).
        RECOVER_MONITOR_STATE = 0x1;
        /// Proceed even though the resource declared itself locked.
        IGNORE_RESOURCE_STATUS = 0x2;
        /// The move was requested with return-to-source.
        RETURN_TO_SOURCE_NODE_ON_ERROR = 0x4;
        /// Restore the resource's status to online.
        RESTORE_ONLINE_STATE = 0x8;
        /// Proceed even though the node has lost network connectivity.
        IGNORE_NETWORK_CONNECTIVITY = 0x10;
    }
}

flag_set! {
    /// Flags passed to `OpenV2` (`CLUS_RESDLL_OPEN_*`).
    OpenFlags, prefix "CLUS_RESDLL_OPEN_" {
        /// The resource is re-opened after its host was recovered; it may already be running.
        RECOVER_MONITOR_STATE = 0x1;
        /// Do not delete the temporary disk (Windows 2016+; kept for value fidelity).
        DONT_DELETE_TEMP_DISK = 0x2;
    }
}

flag_set! {
    /// `RESOURCE_STATUS_EX.Flags` (`CLUSRESDLL_STATUS_*`): why a resource defers, vetoes or
    /// failed an operation.
    StatusFlags, prefix "CLUSRESDLL_STATUS_" {
        /// The resource cannot go offline now.
        OFFLINE_BUSY = 0x1;
        /// The source node is throttling the move.
        OFFLINE_SOURCE_THROTTLED = 0x2;
        /// The destination node is throttling the move.
        OFFLINE_DESTINATION_THROTTLED = 0x4;
        /// The destination node rejected the move.
        OFFLINE_DESTINATION_REJECTED = 0x8;
        /// Not enough memory.
        INSUFFICIENT_MEMORY = 0x10;
        /// Not enough processor.
        INSUFFICIENT_PROCESSOR = 0x20;
        /// Not enough of some other resource.
        INSUFFICIENT_OTHER_RESOURCES = 0x40;
        /// The resource's parameters are invalid.
        INVALID_PARAMETERS = 0x80;
        /// The network is not available.
        NETWORK_NOT_AVAILABLE = 0x100;
        /// Do not collect an error report.
        DO_NOT_COLLECT_WER_REPORT = 0x4000_0000;
        /// Take a dump of the host now.
        DUMP_NOW = 0x8000_0000;
    }
}

flag_set! {
    /// `MoveClusterGroupEx` flags (`CLUSAPI_GROUP_MOVE_*`).
    GroupMoveFlags, prefix "CLUSAPI_GROUP_MOVE_" {
        /// Move even if a resource is locked (terminating it if needed).
        IGNORE_RESOURCE_STATUS = 0x1;
        /// If the group does not reach its persistent state on the target, come back to the source.
        RETURN_TO_SOURCE_NODE_ON_ERROR = 0x2;
        /// If a resource defers, queue the move and retry until done or cancelled.
        QUEUE_ENABLED = 0x4;
        /// Start on the target as soon as possible, bypassing ordering and priority.
        HIGH_PRIORITY_START = 0x8;
        /// Reserved: the move is a failback.
        FAILBACK = 0x10;
        /// Ignore affinity rules.
        IGNORE_AFFINITY_RULE = 0x20;
    }
}

flag_set! {
    /// `OnlineClusterGroupEx` flags (`CLUSAPI_GROUP_ONLINE_*`).
    GroupOnlineFlags, prefix "CLUSAPI_GROUP_ONLINE_" {
        /// Online even if a resource is locked.
        IGNORE_RESOURCE_STATUS = 0x1;
        /// Return only when the operation has completed.
        SYNCHRONOUS = 0x2;
        /// Online on the best possible node rather than the current one.
        BEST_POSSIBLE_NODE = 0x4;
        /// Ignore affinity rules.
        IGNORE_AFFINITY_RULE = 0x8;
    }
}

flag_set! {
    /// `OfflineClusterGroupEx` flags (`CLUSAPI_GROUP_OFFLINE_*`).
    GroupOfflineFlags, prefix "CLUSAPI_GROUP_OFFLINE_" {
        /// Offline even if a resource is locked.
        IGNORE_RESOURCE_STATUS = 0x1;
    }
}

flag_set! {
    /// `OnlineClusterResourceEx` flags (`CLUSAPI_RESOURCE_ONLINE_*`).
    ResourceOnlineFlags, prefix "CLUSAPI_RESOURCE_ONLINE_" {
        /// Online even if the resource is locked.
        IGNORE_RESOURCE_STATUS = 0x1;
        /// Do not record this online as the resource's persistent state.
        DO_NOT_UPDATE_PERSISTENT_STATE = 0x2;
        /// The resource is needed for quorum.
        NECESSARY_FOR_QUORUM = 0x4;
        /// Online on the best possible node.
        BEST_POSSIBLE_NODE = 0x8;
        /// Ignore affinity rules.
        IGNORE_AFFINITY_RULE = 0x20;
    }
}

flag_set! {
    /// `OfflineClusterResourceEx` flags (`CLUSAPI_RESOURCE_OFFLINE_*`).
    ResourceOfflineFlags, prefix "CLUSAPI_RESOURCE_OFFLINE_" {
        /// Offline even if the resource is locked.
        IGNORE_RESOURCE_STATUS = 0x1;
        /// Skip the graceful offline and terminate at once.
        FORCE_WITH_TERMINATION = 0x2;
        /// Do not record this offline as the resource's persistent state.
        DO_NOT_UPDATE_PERSISTENT_STATE = 0x4;
    }
}

flag_set! {
    /// Why a resource is taken offline (`CLUSAPI_RESOURCE_OFFLINE_REASON_*`); 0 is NONE.
    OfflineReason, prefix "CLUSAPI_RESOURCE_OFFLINE_REASON_" {
        /// The reason is unknown.
        UNKNOWN = 0x1;
        /// The group is moving.
        MOVING = 0x2;
        /// An operator asked for it.
        USER_REQUESTED = 0x4;
        /// The resource is being deleted.
        BEING_DELETED = 0x8;
        /// The resource is being restarted.
        BEING_RESTARTED = 0x10;
        /// The group was preempted by a higher-priority one.
        PREEMPTED = 0x20;
        /// The node is shutting down.
        SHUTTING_DOWN = 0x40;
    }
}

flag_set! {
    /// Resource characteristics returned by `CLUSCTL_RESOURCE_GET_CHARACTERISTICS`
    /// (`CLUS_CHAR_*`); 0 is UNKNOWN.
    Characteristics, prefix "CLUS_CHAR_" {
        /// Can be the quorum resource.
        QUORUM = 0x1;
        /// Deleting requires every node.
        DELETE_REQUIRES_ALL_NODES = 0x2;
        /// Local quorum.
        LOCAL_QUORUM = 0x4;
        /// Local quorum (debug).
        LOCAL_QUORUM_DEBUG = 0x8;
        /// Wants the state-change reason.
        REQUIRES_STATE_CHANGE_REASON = 0x10;
        /// Delete is broadcast to every node.
        BROADCAST_DELETE = 0x20;
        /// At most one instance in the cluster.
        SINGLE_CLUSTER_INSTANCE = 0x40;
        /// At most one instance per group.
        SINGLE_GROUP_INSTANCE = 0x80;
        /// May share a group with cluster shared volumes.
        COEXIST_IN_SHARED_VOLUME_GROUP = 0x100;
        /// Provides placement data.
        PLACEMENT_DATA = 0x200;
        /// Supports monitor detach.
        MONITOR_DETACH = 0x400;
        /// Supports monitor re-attach.
        MONITOR_REATTACH = 0x800;
        /// Supports operation context.
        OPERATION_CONTEXT = 0x1000;
        /// Clones.
        CLONES = 0x2000;
        /// Cannot be preempted.
        NOT_PREEMPTABLE = 0x4000;
        /// Wants to hear about a new owner.
        NOTIFY_NEW_OWNER = 0x8000;
        /// Supports the unmonitored state.
        SUPPORTS_UNMONITORED_STATE = 0x10000;
        /// Infrastructure resource.
        INFRASTRUCTURE = 0x20000;
    }
}

flag_set! {
    /// Resource flags returned by `CLUSCTL_RESOURCE_GET_FLAGS` (`CLUS_FLAG_*`).
    ResourceFlags, prefix "CLUS_FLAG_" {
        /// A core cluster resource.
        CORE = 0x1;
    }
}

flag_set! {
    /// Service-maintained resource status bits (`CLUSTER_RESOURCE_STATUS_*`): the resource's
    /// `StatusInformation` common property, set by the cluster service only, never by the resource.
    ResourceStatusInformation, prefix "CLUSTER_RESOURCE_STATUS_" {
        /// The resource is in locked mode.
        LOCKED_MODE = 0x1;
        /// The resource had an embedded failure.
        EMBEDDED_FAILURE = 0x2;
        /// Failed for lack of CPU.
        FAILED_DUE_TO_INSUFFICIENT_CPU = 0x4;
        /// Failed for lack of memory.
        FAILED_DUE_TO_INSUFFICIENT_MEMORY = 0x8;
        /// Failed for lack of generic resources.
        FAILED_DUE_TO_INSUFFICIENT_GENERIC_RESOURCES = 0x10;
        /// A network failure.
        NETWORK_FAILURE = 0x20;
        /// Not monitored.
        UNMONITORED = 0x40;
        /// OS heartbeat.
        OS_HEARTBEAT = 0x80;
        /// The application reported ready.
        APPLICATION_READY = 0x100;
        /// Offline because the local disk is not owned.
        OFFLINE_NOT_LOCAL_DISK_OWNER = 0x200;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_bits_are_refused_with_their_value() {
        let err = OfflineFlags::from_raw(0x41 | 0x80 | 0x1000).unwrap_err();
        assert!(matches!(err, FlagsError::UnknownBits { unknown: 0x1080, raw: 0x10c1, .. }));
        assert_eq!(err.status(), Status::ERROR_INVALID_PARAMETER);
        let text = err.to_string();
        assert!(text.contains("0x1080"), "{text}");
        assert!(text.contains("DO_NOT_UPDATE_PERSISTENT_STATE 0x40"), "{text}");
    }

    #[test]
    fn display_and_names() {
        let f = OfflineFlags::IGNORE_RESOURCE_STATUS | OfflineFlags::DO_NOT_UPDATE_PERSISTENT_STATE;
        assert_eq!(f.to_string(), "0x41 (IGNORE_RESOURCE_STATUS|DO_NOT_UPDATE_PERSISTENT_STATE)");
        assert_eq!(OfflineFlags::empty().to_string(), "0x0");
    }

    #[test]
    fn parse_accepts_names_prefixes_and_numbers() {
        assert_eq!(
            OfflineFlags::parse("CLUS_RESDLL_OFFLINE_QUEUE_ENABLED|ignore_resource_status").ok(),
            Some(OfflineFlags::QUEUE_ENABLED | OfflineFlags::IGNORE_RESOURCE_STATUS)
        );
        assert_eq!(OfflineFlags::parse("0x40").ok(), Some(OfflineFlags::DO_NOT_UPDATE_PERSISTENT_STATE));
        assert_eq!(OfflineFlags::parse("").ok(), Some(OfflineFlags::empty()));
        let err = OfflineFlags::parse("QUEUE_ENABLED|BOGUS").unwrap_err();
        assert!(err.to_string().contains("\"BOGUS\""), "{err}");
        assert!(OfflineFlags::parse("0x100").is_err());
    }
}
