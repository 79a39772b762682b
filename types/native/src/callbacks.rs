//! The callback table given to plug-ins, and the registry that maps the `RESOURCE_HANDLE` a
//! plug-in passes back to the [`Callbacks`] of that resource.
//!
//! Handles are never pointers: a plug-in that calls back after `Close` (a stray worker) finds no
//! entry, and its status reports are answered with `ResourceExitStateTerminate`.

use crate::abi::{self, CallbackTable, RawHandle};
use resapi::{
    Callbacks, ExitState, FailureType, LogLevel, PropertyList, QuorumLost, ResourceState, ResourceStatusEx, Status,
    StatusFlags,
};
use std::collections::HashMap;
use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, RwLock};

struct Entry {
    callbacks: Callbacks,
    quorum_lost: Option<QuorumLost>,
}

fn registry() -> &'static RwLock<HashMap<RawHandle, Entry>> {
    static REGISTRY: OnceLock<RwLock<HashMap<RawHandle, Entry>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

/// Registers a resource's callbacks; returns the raw handle to give the plug-in.
pub(crate) fn register(callbacks: Callbacks) -> RawHandle {
    let handle = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
    let mut map = registry().write().unwrap_or_else(|p| p.into_inner());
    map.insert(handle, Entry { callbacks, quorum_lost: None });
    handle
}

/// Forgets a handle (after `Close`).
pub(crate) fn unregister(handle: RawHandle) {
    registry().write().unwrap_or_else(|p| p.into_inner()).remove(&handle);
}

/// Remembers the lost-quorum callback given to `Arbitrate`.
pub(crate) fn set_quorum_lost(handle: RawHandle, lost: Option<QuorumLost>) {
    if let Some(entry) = registry().write().unwrap_or_else(|p| p.into_inner()).get_mut(&handle) {
        entry.quorum_lost = lost;
    }
}

fn callbacks_of(handle: RawHandle) -> Option<Callbacks> {
    registry().read().unwrap_or_else(|p| p.into_inner()).get(&handle).map(|e| e.callbacks.clone())
}

/// Runs host code called from C; a panic must not unwind into the plug-in.
fn guarded<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

fn text(ptr: *const c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: the plug-in passes a NUL-terminated string, per the header.
    unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned()
}

fn report(handle: RawHandle, state: i32, checkpoint: u32, code: u32, flags: u32) -> u32 {
    guarded(ExitState::Continue.raw(), || {
        let Some(callbacks) = callbacks_of(handle) else {
            return ExitState::Terminate.raw();
        };
        let state = match ResourceState::from_raw(state) {
            Ok(s) => s,
            Err(e) => {
                callbacks.log_event(LogLevel::Error, &format!("SetResourceStatusEx ignored: {e}"));
                return ExitState::Continue.raw();
            }
        };
        // Unknown bits are kept out rather than refusing the whole report.
        let flags = StatusFlags::from_bits_truncate(flags);
        let status = ResourceStatusEx { state, checkpoint, application_specific_error_code: code, flags };
        callbacks.set_resource_status_ex(status).raw()
    })
}

unsafe extern "C" fn set_resource_status_ex(handle: RawHandle, status: *mut abi::ResourceStatusEx) -> u32 {
    if status.is_null() {
        return ExitState::Continue.raw();
    }
    // SAFETY: non-null and, per the header, a RESOURCE_STATUS_EX.
    let s = unsafe { status.read() };
    report(handle, s.resource_state, s.check_point, s.application_specific_error_code, s.flags)
}

/// The V1 `SetResourceStatus` given to `Startup`.
pub(crate) unsafe extern "C" fn set_resource_status(handle: RawHandle, status: *mut abi::ResourceStatus) -> u32 {
    if status.is_null() {
        return ExitState::Continue.raw();
    }
    // SAFETY: non-null and, per the header, a RESOURCE_STATUS.
    let s = unsafe { status.read() };
    report(handle, s.resource_state, s.check_point, 0, 0)
}

/// Called by `halo_native_log_event` (log_event.c) with the formatted message.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn halo_native_log_message(handle: RawHandle, level: u32, message: *const c_char) {
    let message = text(message);
    guarded((), || {
        let level = LogLevel::from_raw(level).unwrap_or(LogLevel::Information);
        if let Some(callbacks) = callbacks_of(handle) {
            callbacks.log_event(level, &message);
        }
    })
}

unsafe extern "C" {
    /// The variadic `LogEvent` (log_event.c).
    pub(crate) fn halo_native_log_event(handle: RawHandle, level: u32, format: *const c_char, ...);
    /// The variadic `LogEvent` of wide plug-ins: a `wchar_t` format with FormatMessage inserts
    /// (log_event.c). Declared with the narrow pointer type so both share the table's type.
    pub(crate) fn halo_native_log_event_wide(handle: RawHandle, level: u32, format: *const c_char, ...);
}

unsafe extern "C" fn set_resource_locked_mode(handle: RawHandle, enabled: i32, reason: u32) -> u32 {
    guarded(Status::ERROR_INVALID_STATE.0, || match callbacks_of(handle) {
        Some(c) => {
            c.set_resource_locked_mode(enabled != 0, reason);
            Status::ERROR_SUCCESS.0
        }
        None => Status::ERROR_RESOURCE_NOT_FOUND.0,
    })
}

unsafe extern "C" fn set_resource_locked_mode_ex(handle: RawHandle, enabled: i32, reason: u32, _flags: u32) -> u32 {
    // SAFETY: same contract as SetResourceLockedMode; the move-queue flag has no meaning until
    // halo queues moves.
    unsafe { set_resource_locked_mode(handle, enabled, reason) }
}

unsafe extern "C" fn signal_failure(handle: RawHandle, failure: u32, code: u32) -> u32 {
    guarded(Status::ERROR_INVALID_STATE.0, || match callbacks_of(handle) {
        Some(c) => match FailureType::from_raw(failure) {
            Ok(f) => {
                c.signal_failure(f, code);
                Status::ERROR_SUCCESS.0
            }
            Err(_) => Status::ERROR_INVALID_PARAMETER.0,
        },
        None => Status::ERROR_RESOURCE_NOT_FOUND.0,
    })
}

unsafe extern "C" fn set_in_memory_properties(handle: RawHandle, buffer: *mut u8, size: u32) -> u32 {
    let bytes: &[u8] = if buffer.is_null() || size == 0 {
        &[]
    } else {
        // SAFETY: the plug-in passes `size` readable bytes, per the header.
        unsafe { std::slice::from_raw_parts(buffer, size as usize) }
    };
    guarded(Status::ERROR_INVALID_STATE.0, || {
        let Some(c) = callbacks_of(handle) else { return Status::ERROR_RESOURCE_NOT_FOUND.0 };
        match PropertyList::decode(bytes) {
            Ok(list) => c.set_in_memory_node_local_properties(list).0,
            Err(e) => {
                c.log_event(LogLevel::Error, &format!("SetResourceInMemoryNodeLocalProperties: {e}"));
                e.status().0
            }
        }
    })
}

/// End/Extend*ControlCall: halo negotiates V2 (synchronous control), so no asynchronous control
/// call can exist and every context is unknown.
unsafe extern "C" fn no_such_control_call(_context: i64, _value: u32) -> u32 {
    Status::ERROR_INVALID_PARAMETER.0
}

unsafe extern "C" fn raise_res_type_notification(_type: *const c_char, _payload: *const u8, _size: u32) -> u32 {
    Status::ERROR_NOT_SUPPORTED.0
}

unsafe extern "C" fn change_resource_process_for_dumps(_h: RawHandle, _n: *const c_char, _p: u32, _a: i32) -> u32 {
    Status::ERROR_NOT_SUPPORTED.0
}

unsafe extern "C" fn change_res_type_process_for_dumps(_t: *const c_char, _n: *const c_char, _p: u32, _a: i32) -> u32 {
    Status::ERROR_NOT_SUPPORTED.0
}

unsafe extern "C" fn set_internal_state(_h: RawHandle, _state: u32, _active: i32) -> u32 {
    Status::ERROR_NOT_SUPPORTED.0
}

unsafe extern "C" fn request_dump(_h: RawHandle, _in_call: i32, _delay: u32) -> u32 {
    Status::ERROR_NOT_SUPPORTED.0
}

unsafe extern "C" fn set_wpr_policy(_h: RawHandle, _flags: u32) -> u32 {
    Status::ERROR_NOT_SUPPORTED.0
}

unsafe extern "C" fn arm_wpr_watchdog(_h: RawHandle, _timeout: u64) -> u32 {
    Status::ERROR_NOT_SUPPORTED.0
}

/// The `PQUORUM_RESOURCE_LOST` given to `Arbitrate`.
pub(crate) unsafe extern "C" fn quorum_lost(handle: RawHandle) {
    let lost = registry().read().unwrap_or_else(|p| p.into_inner()).get(&handle).and_then(|e| e.quorum_lost.clone());
    if let Some(lost) = lost {
        guarded((), || lost());
    }
}

/// The table every narrow plug-in's `StartupEx` receives.
pub(crate) static CALLBACK_TABLE: CallbackTable = callback_table(halo_native_log_event);

/// The table every wide plug-in's `StartupEx` receives: only `LogEvent` differs.
pub(crate) static CALLBACK_TABLE_WIDE: CallbackTable = callback_table(halo_native_log_event_wide);

const fn callback_table(log_event: abi::LogEventFn) -> CallbackTable {
    CallbackTable {
        log_event: Some(log_event),
        set_resource_status_ex: Some(set_resource_status_ex),
        set_resource_locked_mode: Some(set_resource_locked_mode),
        signal_failure: Some(signal_failure),
        set_resource_in_memory_node_local_properties: Some(set_in_memory_properties),
        end_control_call: Some(no_such_control_call),
        end_type_control_call: Some(no_such_control_call),
        extend_control_call: Some(no_such_control_call),
        extend_type_control_call: Some(no_such_control_call),
        raise_res_type_notification: Some(raise_res_type_notification),
        change_resource_process_for_dumps: Some(change_resource_process_for_dumps),
        change_res_type_process_for_dumps: Some(change_res_type_process_for_dumps),
        set_internal_state: Some(set_internal_state),
        set_resource_locked_mode_ex: Some(set_resource_locked_mode_ex),
        request_dump: Some(request_dump),
        set_resource_wpr_policy: Some(set_wpr_policy),
        arm_wpr_watchdog_for_current_resource_call: Some(arm_wpr_watchdog),
    }
}
