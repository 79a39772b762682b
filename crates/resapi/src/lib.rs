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
