//! `#[repr(C)]` mirrors of `include/halo_resapi.h`. Field order and types must match the header
//! exactly; `tests/abi_layout.rs` compiles a C program that prints the header's sizes and offsets
//! and compares them with these.

#![allow(missing_docs)]

use std::ffi::{c_char, c_void};

/// The plug-in's per-resource pointer.
pub type Resid = *mut c_void;
/// halo's handle for a resource (`RESOURCE_HANDLE`).
pub type RawHandle = u64;
/// `HANDLE` (an event handle halo does not wait on).
pub type Handle = *mut c_void;

pub const CLRES_VERSION_V1_00: u32 = 0x100;
pub const CLRES_VERSION_V2_00: u32 = 0x200;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ResourceStatus {
    pub resource_state: i32,
    pub check_point: u32,
    pub wait_hint: u32,
    pub event_handle: Handle,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ResourceStatusEx {
    pub resource_state: i32,
    pub check_point: u32,
    pub event_handle: Handle,
    pub application_specific_error_code: u32,
    pub flags: u32,
    pub wait_hint: u32,
}

/// `struct HALO_PARAMETERS_`: the table pointer comes first; halo's data follows.
pub type Parameters = *mut c_void;

#[repr(C)]
pub struct ParametersTable {
    pub version: u32,
    pub get_string: Option<unsafe extern "C" fn(Parameters, *const c_char, *mut c_char, *mut u32) -> u32>,
    pub get_dword: Option<unsafe extern "C" fn(Parameters, *const c_char, *mut u32) -> u32>,
    pub get_property_list: Option<unsafe extern "C" fn(Parameters, *mut c_void, u32, *mut u32) -> u32>,
    // Version 2: registry semantics over wide (`wchar_t`, UTF-32) names and data.
    pub query_value_w: Option<unsafe extern "C" fn(Parameters, *const u32, *mut u32, *mut u8, *mut u32) -> u32>,
    pub set_value_w: Option<unsafe extern "C" fn(Parameters, *const u32, u32, *const u8, u32) -> u32>,
    pub delete_value_w: Option<unsafe extern "C" fn(Parameters, *const u32) -> u32>,
    pub enum_value_w:
        Option<unsafe extern "C" fn(Parameters, u32, *mut u32, *mut u32, *mut u32, *mut u8, *mut u32) -> u32>,
}

pub const HALO_PARAMETERS_VERSION_2: u32 = 2;

/// `struct HKEY__` of `include/compat/clusapi.h`: the key a wide plug-in's Open receives.
#[repr(C)]
pub struct WideKey {
    pub parameters: Parameters,
    pub kind: u32,
}

/// `HALO_KEY_RESOURCE`: the resource's own key, owned by halo.
pub const HALO_KEY_RESOURCE: u32 = 0;

pub type LogEventFn = unsafe extern "C" fn(RawHandle, u32, *const c_char, ...);
pub type SetResourceStatusFn = unsafe extern "C" fn(RawHandle, *mut ResourceStatus) -> u32;
pub type SetResourceStatusExFn = unsafe extern "C" fn(RawHandle, *mut ResourceStatusEx) -> u32;
pub type SetLockedModeFn = unsafe extern "C" fn(RawHandle, i32, u32) -> u32;
pub type SignalFailureFn = unsafe extern "C" fn(RawHandle, u32, u32) -> u32;
pub type SetInMemoryPropertiesFn = unsafe extern "C" fn(RawHandle, *mut u8, u32) -> u32;
pub type ControlCallFn = unsafe extern "C" fn(i64, u32) -> u32;
pub type RaiseNotificationFn = unsafe extern "C" fn(*const c_char, *const u8, u32) -> u32;
pub type ResourceProcessForDumpsFn = unsafe extern "C" fn(RawHandle, *const c_char, u32, i32) -> u32;
pub type TypeProcessForDumpsFn = unsafe extern "C" fn(*const c_char, *const c_char, u32, i32) -> u32;
pub type SetInternalStateFn = unsafe extern "C" fn(RawHandle, u32, i32) -> u32;
pub type SetLockedModeExFn = unsafe extern "C" fn(RawHandle, i32, u32, u32) -> u32;
pub type RequestDumpFn = unsafe extern "C" fn(RawHandle, i32, u32) -> u32;
pub type SetWprPolicyFn = unsafe extern "C" fn(RawHandle, u32) -> u32;
pub type ArmWprWatchdogFn = unsafe extern "C" fn(RawHandle, u64) -> u32;
pub type QuorumLostFn = unsafe extern "C" fn(RawHandle);

#[repr(C)]
pub struct CallbackTable {
    pub log_event: Option<LogEventFn>,
    pub set_resource_status_ex: Option<SetResourceStatusExFn>,
    pub set_resource_locked_mode: Option<SetLockedModeFn>,
    pub signal_failure: Option<SignalFailureFn>,
    pub set_resource_in_memory_node_local_properties: Option<SetInMemoryPropertiesFn>,
    pub end_control_call: Option<ControlCallFn>,
    pub end_type_control_call: Option<ControlCallFn>,
    pub extend_control_call: Option<ControlCallFn>,
    pub extend_type_control_call: Option<ControlCallFn>,
    pub raise_res_type_notification: Option<RaiseNotificationFn>,
    pub change_resource_process_for_dumps: Option<ResourceProcessForDumpsFn>,
    pub change_res_type_process_for_dumps: Option<TypeProcessForDumpsFn>,
    pub set_internal_state: Option<SetInternalStateFn>,
    pub set_resource_locked_mode_ex: Option<SetLockedModeExFn>,
    pub request_dump: Option<RequestDumpFn>,
    pub set_resource_wpr_policy: Option<SetWprPolicyFn>,
    pub arm_wpr_watchdog_for_current_resource_call: Option<ArmWprWatchdogFn>,
}

pub type OpenFn = unsafe extern "C" fn(*const c_char, Parameters, RawHandle) -> Resid;
pub type OpenV2Fn = unsafe extern "C" fn(*const c_char, Parameters, RawHandle, u32) -> Resid;
pub type CloseFn = unsafe extern "C" fn(Resid);
pub type OnlineFn = unsafe extern "C" fn(Resid, *mut Handle) -> u32;
pub type OnlineV2Fn = unsafe extern "C" fn(Resid, *mut Handle, u32, *mut u8, u32, u32) -> u32;
pub type OfflineFn = unsafe extern "C" fn(Resid) -> u32;
pub type OfflineV2Fn = unsafe extern "C" fn(Resid, *const c_char, u32, *mut u8, u32, u32) -> u32;
pub type TerminateFn = unsafe extern "C" fn(Resid);
pub type AliveFn = unsafe extern "C" fn(Resid) -> i32;
pub type ArbitrateFn = unsafe extern "C" fn(Resid, Option<QuorumLostFn>) -> u32;
pub type ReleaseFn = unsafe extern "C" fn(Resid) -> u32;
pub type ResourceControlFn = unsafe extern "C" fn(Resid, u32, *mut c_void, u32, *mut c_void, u32, *mut u32) -> u32;
pub type TypeControlFn = unsafe extern "C" fn(*const c_char, u32, *mut c_void, u32, *mut c_void, u32, *mut u32) -> u32;
pub type CancelFn = unsafe extern "C" fn(Resid, u32) -> u32;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct V1Functions {
    pub open: Option<OpenFn>,
    pub close: Option<CloseFn>,
    pub online: Option<OnlineFn>,
    pub offline: Option<OfflineFn>,
    pub terminate: Option<TerminateFn>,
    pub looks_alive: Option<AliveFn>,
    pub is_alive: Option<AliveFn>,
    pub arbitrate: Option<ArbitrateFn>,
    pub release: Option<ReleaseFn>,
    pub resource_control: Option<ResourceControlFn>,
    pub resource_type_control: Option<TypeControlFn>,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct V2Functions {
    pub open: Option<OpenV2Fn>,
    pub close: Option<CloseFn>,
    pub online: Option<OnlineV2Fn>,
    pub offline: Option<OfflineV2Fn>,
    pub terminate: Option<TerminateFn>,
    pub looks_alive: Option<AliveFn>,
    pub is_alive: Option<AliveFn>,
    pub arbitrate: Option<ArbitrateFn>,
    pub release: Option<ReleaseFn>,
    pub resource_control: Option<ResourceControlFn>,
    pub resource_type_control: Option<TypeControlFn>,
    pub cancel: Option<CancelFn>,
}

#[repr(C)]
pub union FunctionUnion {
    pub v1: V1Functions,
    pub v2: V2Functions,
}

/// `CLRES_FUNCTION_TABLE`.
#[repr(C)]
pub struct FunctionTable {
    pub table_size: u32,
    pub version: u32,
    pub functions: FunctionUnion,
}

pub type StartupFn =
    unsafe extern "C" fn(*const c_char, u32, u32, SetResourceStatusFn, LogEventFn, *mut *const FunctionTable) -> u32;
pub type StartupExFn =
    unsafe extern "C" fn(*const c_char, u32, u32, *const CallbackTable, *mut *const FunctionTable) -> u32;
