//! `HALO_PARAMETERS`: the handle through which a plug-in reads its private properties, in place
//! of the registry key a Windows DLL receives.

use crate::abi::{HALO_PARAMETERS_VERSION_1, Parameters as RawParameters, ParametersTable};
use resapi::{Parameters, Status, ValueData};
use std::ffi::{CStr, c_char, c_void};

/// The object behind a `HALO_PARAMETERS` pointer. `table` must stay the first field: C reads it
/// as `struct HALO_PARAMETERS_ { const HALO_PARAMETERS_TABLE *Table; }`.
#[repr(C)]
pub(crate) struct ParametersHandle {
    table: *const ParametersTable,
    parameters: Parameters,
}

impl ParametersHandle {
    pub(crate) fn new(parameters: Parameters) -> Box<Self> {
        Box::new(ParametersHandle { table: &PARAMETERS_TABLE, parameters })
    }

    /// The pointer to give the plug-in; valid while the box lives.
    pub(crate) fn as_raw(self: &mut Box<Self>) -> RawParameters {
        (&mut **self as *mut ParametersHandle).cast::<c_void>()
    }
}

static PARAMETERS_TABLE: ParametersTable = ParametersTable {
    version: HALO_PARAMETERS_VERSION_1,
    get_string: Some(get_string),
    get_dword: Some(get_dword),
    get_property_list: Some(get_property_list),
};

/// # Safety
/// `handle` must come from [`ParametersHandle::as_raw`] and still be alive.
unsafe fn parameters<'a>(handle: RawParameters) -> Option<&'a Parameters> {
    // SAFETY: per the function contract.
    unsafe { handle.cast::<ParametersHandle>().as_ref() }.map(|h| &h.parameters)
}

/// # Safety
/// `name` must be NULL or a NUL-terminated string.
unsafe fn name<'a>(name: *const c_char) -> Option<&'a str> {
    if name.is_null() {
        return None;
    }
    // SAFETY: per the function contract.
    unsafe { CStr::from_ptr(name) }.to_str().ok()
}

unsafe extern "C" fn get_string(
    handle: RawParameters,
    name_ptr: *const c_char,
    buffer: *mut c_char,
    size: *mut u32,
) -> u32 {
    // SAFETY: the plug-in passes the handle it was given and a C string, per the header.
    let (Some(params), Some(name)) = (unsafe { parameters(handle) }, unsafe { name(name_ptr) }) else {
        return Status::ERROR_INVALID_PARAMETER.0;
    };
    if size.is_null() {
        return Status::ERROR_INVALID_PARAMETER.0;
    }
    let text = params.with(|list| list.get(name).map(ValueData::to_text));
    let text = match text {
        None => return Status::ERROR_FILE_NOT_FOUND.0,
        Some(None) => return Status::ERROR_INVALID_DATA.0,
        Some(Some(t)) => t,
    };
    let bytes = text.as_bytes();
    let Ok(needed) = u32::try_from(bytes.len() + 1) else { return Status::ERROR_INVALID_DATA.0 };
    // SAFETY: `size` is non-null and points to the buffer's size, per the header.
    let available = unsafe { size.read() };
    // SAFETY: as above.
    unsafe { size.write(needed) };
    if buffer.is_null() || available < needed {
        return Status::ERROR_MORE_DATA.0;
    }
    // SAFETY: `buffer` has `available >= needed` writable bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buffer.cast::<u8>(), bytes.len());
        buffer.add(bytes.len()).write(0);
    }
    Status::ERROR_SUCCESS.0
}

unsafe extern "C" fn get_dword(handle: RawParameters, name_ptr: *const c_char, value: *mut u32) -> u32 {
    // SAFETY: the plug-in passes the handle it was given and a C string, per the header.
    let (Some(params), Some(name)) = (unsafe { parameters(handle) }, unsafe { name(name_ptr) }) else {
        return Status::ERROR_INVALID_PARAMETER.0;
    };
    if value.is_null() {
        return Status::ERROR_INVALID_PARAMETER.0;
    }
    let number = params.with(|list| {
        list.get(name).map(|v| match v {
            ValueData::Long(n) => u32::try_from(*n).ok(),
            other => other.as_dword().or_else(|| other.as_str().and_then(resapi::parse_u32)),
        })
    });
    match number {
        None => Status::ERROR_FILE_NOT_FOUND.0,
        Some(None) => Status::ERROR_INVALID_DATA.0,
        Some(Some(n)) => {
            // SAFETY: `value` is non-null, per the header a DWORD to write.
            unsafe { value.write(n) };
            Status::ERROR_SUCCESS.0
        }
    }
}

unsafe extern "C" fn get_property_list(
    handle: RawParameters,
    buffer: *mut c_void,
    size: u32,
    returned: *mut u32,
) -> u32 {
    // SAFETY: the plug-in passes the handle it was given.
    let Some(params) = (unsafe { parameters(handle) }) else { return Status::ERROR_INVALID_PARAMETER.0 };
    if returned.is_null() {
        return Status::ERROR_INVALID_PARAMETER.0;
    }
    let bytes = match params.with(|list| list.encode()) {
        Ok(b) => b,
        Err(e) => return e.status().0,
    };
    let Ok(needed) = u32::try_from(bytes.len()) else { return Status::ERROR_INVALID_DATA.0 };
    // SAFETY: `returned` is non-null, per the header a DWORD to write.
    unsafe { returned.write(needed) };
    if buffer.is_null() || size < needed {
        return Status::ERROR_MORE_DATA.0;
    }
    // SAFETY: `buffer` has `size >= needed` writable bytes.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), buffer.cast::<u8>(), bytes.len()) };
    Status::ERROR_SUCCESS.0
}
