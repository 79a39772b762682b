//! Enumerations with the exact numbers of `clusapi.h` / `resapi.h`, each with a checked
//! conversion from its raw integer.

use crate::Status;
use std::fmt;

/// A raw integer that is not a value of the enumeration it was converted to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{enum_name}: {value} is not a valid value (allowed: {allowed})")]
pub struct InvalidValue {
    /// The enumeration (`ResourceState`, …).
    pub enum_name: &'static str,
    /// The value that was refused.
    pub value: i64,
    /// The valid values, as `Name N` separated by commas.
    pub allowed: String,
}

impl InvalidValue {
    /// The Win32 code this error maps to: `ERROR_INVALID_PARAMETER` (87).
    pub fn status(&self) -> Status {
        Status::ERROR_INVALID_PARAMETER
    }
}

macro_rules! int_enum {
    (
        $(#[$meta:meta])*
        $name:ident: $repr:ty {
            $($(#[$vdoc:meta])* $variant:ident = $value:expr,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr($repr)]
        pub enum $name {
            $($(#[$vdoc])* $variant = $value,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The raw integer.
            pub fn raw(self) -> $repr {
                self as $repr
            }

            /// The variant's name (`OnlinePending`).
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => stringify!($variant),)*
                }
            }

            /// Converts a raw integer, refusing values the enumeration does not define.
            pub fn from_raw(value: $repr) -> Result<Self, InvalidValue> {
                match value {
                    $(v if v == $value => Ok($name::$variant),)*
                    other => Err(InvalidValue {
                        enum_name: stringify!($name),
                        value: i64::from(other),
                        allowed: Self::ALL
                            .iter()
                            .map(|v| format!("{} {}", v.name(), v.raw()))
                            .collect::<Vec<_>>()
                            .join(", "),
                    }),
                }
            }

            /// Looks a variant up by name, ignoring ASCII case.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.name().eq_ignore_ascii_case(name.trim()))
            }
        }

        impl TryFrom<$repr> for $name {
            type Error = InvalidValue;
            fn try_from(value: $repr) -> Result<Self, InvalidValue> {
                Self::from_raw(value)
            }
        }

        impl From<$name> for $repr {
            fn from(value: $name) -> $repr {
                value.raw()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

int_enum! {
    /// `CLUSTER_RESOURCE_STATE`: the state of one resource.
    ResourceState: i32 {
        /// The state cannot be determined (`ClusterResourceStateUnknown`).
        Unknown = -1,
        /// The state is inherited.
        Inherited = 0,
        /// The resource is initializing.
        Initializing = 1,
        /// The resource is online and available.
        Online = 2,
        /// The resource is offline.
        Offline = 3,
        /// The resource failed.
        Failed = 4,
        /// Reportable by a resource: it cannot come online on any node.
        CannotComeOnlineOnAnyNode = 126,
        /// Reportable by a resource: it cannot come online on this node.
        CannotComeOnlineOnThisNode = 127,
        /// The resource is coming online or going offline.
        Pending = 128,
        /// Online was accepted and is in progress.
        OnlinePending = 129,
        /// Offline was accepted and is in progress.
        OfflinePending = 130,
    }
}

impl ResourceState {
    /// True for the pending states (128, 129, 130).
    pub fn is_pending(self) -> bool {
        matches!(self, Self::Pending | Self::OnlinePending | Self::OfflinePending)
    }
}

int_enum! {
    /// `CLUSTER_GROUP_STATE`: the state of a group, derived from its resources.
    GroupState: i32 {
        /// The state cannot be determined.
        Unknown = -1,
        /// Every resource is online.
        Online = 0,
        /// Every resource is offline, or the group is empty.
        Offline = 1,
        /// At least one resource failed.
        Failed = 2,
        /// At least one resource is online, none pending or failed.
        PartialOnline = 3,
        /// At least one resource is pending, none failed.
        Pending = 4,
    }
}

int_enum! {
    /// `CLUSTER_NODE_STATE`.
    NodeState: i32 {
        /// The state cannot be determined.
        Unknown = -1,
        /// The node is up and taking work.
        Up = 0,
        /// The node is down.
        Down = 1,
        /// The node runs but takes no new cluster work.
        Paused = 2,
        /// The node is joining the cluster.
        Joining = 3,
    }
}

int_enum! {
    /// The `RestartAction` resource property.
    RestartAction: u32 {
        /// A failed resource stays failed.
        DontRestart = 0,
        /// Restart; when restarts are exhausted, stay failed without failing the group over.
        RestartNoNotify = 1,
        /// Restart; when restarts are exhausted, fail the group over (the default).
        RestartNotify = 2,
    }
}

int_enum! {
    /// `FAILURE_TYPE`, given to `SignalFailure`.
    FailureType: u32 {
        /// A general failure.
        General = 0,
        /// An embedded failure (something inside the resource, e.g. a VM's guest).
        Embedded = 1,
        /// The network was lost.
        NetworkLoss = 2,
    }
}

int_enum! {
    /// `RESOURCE_EXIT_STATE`, returned by `SetResourceStatus[Ex]`.
    ExitState: u32 {
        /// Keep working.
        Continue = 0,
        /// The resource was terminated: abandon the operation and stop every worker at once.
        Terminate = 1,
        /// Sentinel (`ResourceExitStateMax`); never returned by halo.
        Max = 2,
    }
}

int_enum! {
    /// `LOG_LEVEL`, given to `LogEvent`.
    LogLevel: u32 {
        /// Information.
        Information = 0,
        /// Warning.
        Warning = 1,
        /// Error.
        Error = 2,
        /// Severe error.
        Severe = 3,
    }
}

int_enum! {
    /// The `EmbeddedFailureAction` resource property.
    EmbeddedFailureAction: u32 {
        /// Ignore embedded failures.
        None = 0,
        /// Log embedded failures only.
        LogOnly = 1,
        /// Recover from embedded failures (restart/failover).
        Recover = 2,
    }
}

int_enum! {
    /// `RESOURCE_APPLICATION_STATE`, given to `SetInternalState`.
    ApplicationState: u32 {
        /// Unknown.
        Unknown = 1,
        /// The OS inside the resource sends heartbeats.
        OsHeartBeat = 2,
        /// The application is ready.
        Ready = 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_and_others_are_refused() {
        for s in ResourceState::ALL {
            assert_eq!(ResourceState::from_raw(s.raw()).ok(), Some(*s));
        }
        let err = ResourceState::from_raw(5).unwrap_err();
        assert_eq!(err.value, 5);
        assert!(err.to_string().contains("OnlinePending 129"), "{err}");
        assert!(GroupState::from_raw(5).is_err());
        assert!(RestartAction::from_raw(3).is_err());
        assert!(ExitState::from_raw(3).is_err());
    }

    #[test]
    fn pending_states() {
        let pending: Vec<_> = ResourceState::ALL.iter().filter(|s| s.is_pending()).map(|s| s.raw()).collect();
        assert_eq!(pending, [128, 129, 130]);
    }
}
