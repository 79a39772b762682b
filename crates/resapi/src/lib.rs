//! # halo-resapi — the resource contract
//!
//! The Rust face of the Windows Failover Cluster resource-DLL API (`resapi.h`), kept faithful in
//! names, numbers and semantics: the flags, states and status codes with their exact values,
//! control codes and property lists in their wire format, and the traits a resource type
//! implements ([`ResourceType`], [`Resource`]) with the callbacks it is given ([`Callbacks`]).
//!
//! This crate owns the contract only. It must not run anything: no async runtime, no processes,
//! no I/O. The host enforces the rules described here; resource types implement them.

#![warn(missing_docs)]

pub mod control;
mod flags;
pub mod property_table;
pub mod proplist;
mod resource;
mod state;
mod status;
mod worker;

pub use control::{ControlAccess, ControlCode, ControlObject};
pub use flags::{
    Characteristics, FlagsError, GroupMoveFlags, GroupOfflineFlags, GroupOnlineFlags, OfflineFlags, OfflineReason,
    OnlineFlags, OpenFlags, ResourceFlags, ResourceOfflineFlags, ResourceOnlineFlags, ResourceStatusInformation,
    StatusFlags,
};
pub use property_table::{Parsed, ParsedProperties, PropertyError, PropertyItem, PropertyKind, PropertyTable};
pub use proplist::{DecodeError, EncodeError, Property, PropertyList, Value, ValueData};
pub use resource::{
    Callbacks, ControlResult, Monitor, OpenRequest, Parameters, QuorumLost, Resource, ResourceHandle, ResourceStatusEx,
    ResourceType,
};
pub use state::{
    ApplicationState, EmbeddedFailureAction, ExitState, FailureType, GroupState, InvalidValue, LogLevel, NodeState,
    ResourceState, RestartAction,
};
pub use status::Status;
pub use worker::{PendingWorker, Worker, WorkerContext, WorkerExit, terminate_workers};

/// The name of the property that carries the ownership epoch in OnlineV2/OfflineV2 input
/// buffers (a halo extension; see [`epoch`]).
pub const EPOCH_PROPERTY: &str = "Epoch";

/// The ownership epoch halo passes in the input buffer of `online_v2` and `offline_v2`: a
/// property list holding the ULARGE_INTEGER (or DWORD) `Epoch`, the revision of the group's
/// ownership record. It only grows, so a resource that guards an external system can keep the
/// highest it has seen and refuse a caller with an older one. `None` when the buffer holds none.
pub fn epoch(input: &[u8]) -> Option<u64> {
    let list = PropertyList::decode(input).ok()?;
    match list.get(EPOCH_PROPERTY)? {
        ValueData::ULargeInteger(e) => Some(*e),
        other => other.as_dword().map(u64::from),
    }
}

/// `0xFFFFFFFF` in a poll-interval or retry property: "use the type's value" / "never".
pub const USE_TYPE_VALUE: u32 = u32::MAX;

/// Parses a u32 written in decimal or with a `0x` prefix in hexadecimal.
pub fn parse_u32(text: &str) -> Option<u32> {
    let text = text.trim();
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod epoch_tests {
    use super::*;

    #[test]
    fn the_epoch_is_read_from_an_input_buffer() {
        let input = PropertyList::new().with(EPOCH_PROPERTY, ValueData::ULargeInteger(42)).encode().unwrap_or_default();
        assert_eq!(epoch(&input), Some(42));
        let dword = PropertyList::new().with(EPOCH_PROPERTY, ValueData::Dword(7)).encode().unwrap_or_default();
        assert_eq!(epoch(&dword), Some(7));
        assert_eq!(epoch(&[]), None);
        assert_eq!(epoch(b"not a property list"), None);
        let other = PropertyList::new().with("Other", ValueData::Dword(1)).encode().unwrap_or_default();
        assert_eq!(epoch(&other), None);
    }
}
