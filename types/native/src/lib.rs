//! # halo-type-native — C and C++ plug-ins through the `resapi.h`-shaped ABI
//!
//! Loads a resource-type plug-in (`.so`) built against `include/halo_resapi.h`, negotiates its
//! table version (`StartupEx`, else `Startup`; V1 or V2), validates the table it returns
//! (version, `TableSize`, no NULL mandatory entry), and wraps it as a [`resapi::ResourceType`]
//! whose instances are [`resapi::Resource`]s. Plug-in callbacks (`SetResourceStatusEx`,
//! `LogEvent`, …) reach the [`resapi::Callbacks`] the host gave at open.
//!
//! This crate owns the ABI bridge only. It must not enforce the contract's timing or
//! serialization rules: the host does that, and runs this code in its own process so that a
//! crashing plug-in never takes the node daemon down.

mod abi;
mod callbacks;
mod loader;
mod parameters;
mod wide;

pub use loader::{LoadError, MAX_VERSION, MIN_VERSION, NativeLibrary, NativeResource, NativeResourceType};

/// Sizes and offsets of the `#[repr(C)]` mirrors, for the layout test against the C header.
#[doc(hidden)]
pub mod layout {
    use crate::abi::*;
    use std::mem::offset_of;

    /// `(name, value)` pairs in the format the C layout probe prints.
    pub fn facts() -> Vec<(&'static str, usize)> {
        vec![
            ("sizeof(RESOURCE_STATUS)", size_of::<ResourceStatus>()),
            ("offsetof(RESOURCE_STATUS, CheckPoint)", offset_of!(ResourceStatus, check_point)),
            ("offsetof(RESOURCE_STATUS, WaitHint)", offset_of!(ResourceStatus, wait_hint)),
            ("offsetof(RESOURCE_STATUS, EventHandle)", offset_of!(ResourceStatus, event_handle)),
            ("sizeof(RESOURCE_STATUS_EX)", size_of::<ResourceStatusEx>()),
            ("offsetof(RESOURCE_STATUS_EX, CheckPoint)", offset_of!(ResourceStatusEx, check_point)),
            ("offsetof(RESOURCE_STATUS_EX, EventHandle)", offset_of!(ResourceStatusEx, event_handle)),
            (
                "offsetof(RESOURCE_STATUS_EX, ApplicationSpecificErrorCode)",
                offset_of!(ResourceStatusEx, application_specific_error_code),
            ),
            ("offsetof(RESOURCE_STATUS_EX, Flags)", offset_of!(ResourceStatusEx, flags)),
            ("offsetof(RESOURCE_STATUS_EX, WaitHint)", offset_of!(ResourceStatusEx, wait_hint)),
            ("sizeof(CLRES_V1_FUNCTIONS)", size_of::<V1Functions>()),
            ("sizeof(CLRES_V2_FUNCTIONS)", size_of::<V2Functions>()),
            ("offsetof(CLRES_V2_FUNCTIONS, Offline)", offset_of!(V2Functions, offline)),
            ("offsetof(CLRES_V2_FUNCTIONS, Cancel)", offset_of!(V2Functions, cancel)),
            ("sizeof(CLRES_FUNCTION_TABLE)", size_of::<FunctionTable>()),
            ("offsetof(CLRES_FUNCTION_TABLE, Version)", offset_of!(FunctionTable, version)),
            ("offsetof(CLRES_FUNCTION_TABLE, V1Functions)", offset_of!(FunctionTable, functions)),
            ("sizeof(CLRES_CALLBACK_FUNCTION_TABLE)", size_of::<CallbackTable>()),
            ("offsetof(CLRES_CALLBACK_FUNCTION_TABLE, SignalFailure)", offset_of!(CallbackTable, signal_failure)),
            (
                "offsetof(CLRES_CALLBACK_FUNCTION_TABLE, SetResourceLockedModeEx)",
                offset_of!(CallbackTable, set_resource_locked_mode_ex),
            ),
            ("sizeof(HALO_PARAMETERS_TABLE)", size_of::<ParametersTable>()),
            ("offsetof(HALO_PARAMETERS_TABLE, GetPropertyList)", offset_of!(ParametersTable, get_property_list)),
            ("offsetof(HALO_PARAMETERS_TABLE, QueryValueW)", offset_of!(ParametersTable, query_value_w)),
            ("offsetof(HALO_PARAMETERS_TABLE, EnumValueW)", offset_of!(ParametersTable, enum_value_w)),
        ]
    }
}
