//! `HALO_PARAMETERS`: the handle through which a plug-in reads its private properties, in place
//! of the registry key a Windows DLL receives. Version 2 of its table adds registry semantics
//! over wide names and data, which `include/compat/clusapi.h` builds `ClusterReg*` on.

use crate::abi::{HALO_PARAMETERS_VERSION_2, Parameters as RawParameters, ParametersTable};
use crate::wide;
use resapi::{Parameters, PropertyList, Status, ValueData};
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
    version: HALO_PARAMETERS_VERSION_2,
    get_string: Some(get_string),
    get_dword: Some(get_dword),
    get_property_list: Some(get_property_list),
    query_value_w: Some(query_value_w),
    set_value_w: Some(set_value_w),
    delete_value_w: Some(delete_value_w),
    enum_value_w: Some(enum_value_w),
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

// ---- Version 2: registry semantics for wide plug-ins ----

/// Registry value types (winnt.h).
const REG_SZ: u32 = 1;
const REG_EXPAND_SZ: u32 = 2;
const REG_BINARY: u32 = 3;
const REG_DWORD: u32 = 4;
const REG_MULTI_SZ: u32 = 7;
const REG_QWORD: u32 = 11;
/// `ERROR_NO_MORE_ITEMS` (winerror.h).
const ERROR_NO_MORE_ITEMS: u32 = 259;

/// UTF-32 bytes (native order) of the strings, each NUL-terminated.
fn wide_bytes<'a>(strings: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    strings.into_iter().flat_map(wide::to_wide).flat_map(u32::to_ne_bytes).collect()
}

/// A value as a registry type and data, the way a Windows DLL reads it from its key.
fn registry_value(data: &ValueData) -> (u32, Vec<u8>) {
    match data {
        ValueData::Sz(s) | ValueData::ExpandedSz(s) => (REG_SZ, wide_bytes([s.as_str()])),
        ValueData::ExpandSz(s) => (REG_EXPAND_SZ, wide_bytes([s.as_str()])),
        ValueData::MultiSz(v) => {
            let mut bytes = wide_bytes(v.iter().map(String::as_str));
            bytes.extend_from_slice(&0u32.to_ne_bytes());
            (REG_MULTI_SZ, bytes)
        }
        ValueData::Dword(n) => (REG_DWORD, n.to_ne_bytes().to_vec()),
        ValueData::Long(n) => (REG_DWORD, n.to_ne_bytes().to_vec()),
        ValueData::Word(n) => (REG_DWORD, u32::from(*n).to_ne_bytes().to_vec()),
        ValueData::ULargeInteger(n) | ValueData::FileTime(n) => (REG_QWORD, n.to_ne_bytes().to_vec()),
        ValueData::LargeInteger(n) => (REG_QWORD, n.to_ne_bytes().to_vec()),
        ValueData::Binary(b) | ValueData::SecurityDescriptor(b) | ValueData::Other { data: b, .. } => {
            (REG_BINARY, b.clone())
        }
        // Nested lists have no registry form: the DLL sees their wire bytes.
        nested @ (ValueData::ValueList(_) | ValueData::PropertyList(_)) => {
            let list = PropertyList::new().with("", nested.clone());
            (REG_BINARY, list.encode().unwrap_or_default())
        }
    }
}

/// The strings in UTF-32 registry data (NUL-separated; an empty string ends a MULTI_SZ).
fn wide_strings(data: &[u8]) -> Vec<String> {
    let units: Vec<u32> = data.chunks_exact(4).map(|u| u32::from_ne_bytes([u[0], u[1], u[2], u[3]])).collect();
    units
        .split(|&u| u == 0)
        .take_while(|s| !s.is_empty())
        .map(|s| s.iter().map(|&u| char::from_u32(u).unwrap_or(char::REPLACEMENT_CHARACTER)).collect())
        .collect()
}

/// Registry data of `value_type` as a property value; `None` if it does not fit the type.
fn from_registry(value_type: u32, data: &[u8]) -> Option<ValueData> {
    let first = || wide_strings(data).into_iter().next().unwrap_or_default();
    Some(match value_type {
        REG_SZ => ValueData::Sz(first()),
        REG_EXPAND_SZ => ValueData::ExpandSz(first()),
        REG_MULTI_SZ => ValueData::MultiSz(wide_strings(data)),
        REG_DWORD => ValueData::Dword(u32::from_ne_bytes(data.try_into().ok()?)),
        REG_QWORD => ValueData::ULargeInteger(u64::from_ne_bytes(data.try_into().ok()?)),
        REG_BINARY => ValueData::Binary(data.to_vec()),
        _ => return None,
    })
}

/// The stored name matching `name` without regard to case, as registry names match.
fn stored_name(list: &PropertyList, name: &str) -> Option<String> {
    let lower = name.to_lowercase();
    list.iter().find(|p| p.name.to_lowercase() == lower).map(|p| p.name.clone())
}

/// Copies registry data out the way RegQueryValueEx does: `data` may be NULL to ask the size.
///
/// # Safety
/// Non-NULL pointers must be valid: `value_type` for a write, `size` for a read and a write,
/// `data` for `*size` bytes.
unsafe fn reply_value(value_type: u32, bytes: &[u8], type_out: *mut u32, data: *mut u8, size: *mut u32) -> u32 {
    let Ok(needed) = u32::try_from(bytes.len()) else { return Status::ERROR_INVALID_DATA.0 };
    if !type_out.is_null() {
        // SAFETY: per the function contract.
        unsafe { type_out.write(value_type) };
    }
    if size.is_null() {
        return if data.is_null() { Status::ERROR_SUCCESS.0 } else { Status::ERROR_INVALID_PARAMETER.0 };
    }
    // SAFETY: per the function contract.
    let available = unsafe { size.read() };
    // SAFETY: as above.
    unsafe { size.write(needed) };
    if data.is_null() {
        return Status::ERROR_SUCCESS.0;
    }
    if available < needed {
        return Status::ERROR_MORE_DATA.0;
    }
    // SAFETY: `data` has `available >= needed` writable bytes.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len()) };
    Status::ERROR_SUCCESS.0
}

unsafe extern "C" fn query_value_w(
    handle: RawParameters,
    name: *const u32,
    value_type: *mut u32,
    data: *mut u8,
    size: *mut u32,
) -> u32 {
    // SAFETY: the plug-in passes the handle it was given and a NUL-terminated wide name.
    let (Some(params), Some(name)) = (unsafe { parameters(handle) }, unsafe { wide::from_wide_ptr(name) }) else {
        return Status::ERROR_FILE_NOT_FOUND.0;
    };
    let found = params.with(|list| stored_name(list, &name).and_then(|n| list.get(&n).map(registry_value)));
    match found {
        // SAFETY: the pointers come from the plug-in with registry semantics, per the header.
        Some((t, bytes)) => unsafe { reply_value(t, &bytes, value_type, data, size) },
        None => Status::ERROR_FILE_NOT_FOUND.0,
    }
}

unsafe extern "C" fn set_value_w(
    handle: RawParameters,
    name: *const u32,
    value_type: u32,
    data: *const u8,
    size: u32,
) -> u32 {
    // SAFETY: the plug-in passes the handle it was given and a NUL-terminated wide name.
    let (Some(params), Some(name)) = (unsafe { parameters(handle) }, unsafe { wide::from_wide_ptr(name) }) else {
        return Status::ERROR_INVALID_PARAMETER.0;
    };
    if name.is_empty() || (data.is_null() && size > 0) {
        return Status::ERROR_INVALID_PARAMETER.0;
    }
    let bytes: &[u8] = if size == 0 {
        &[]
    } else {
        // SAFETY: the plug-in passes `size` readable bytes, per the header.
        unsafe { std::slice::from_raw_parts(data, size as usize) }
    };
    let Some(value) = from_registry(value_type, bytes) else { return Status::ERROR_INVALID_PARAMETER.0 };
    // Read-modify-write of the host's view: a concurrent update from the cluster wins either way.
    let mut list = params.snapshot();
    let key = stored_name(&list, &name).unwrap_or(name);
    list.set(&key, value);
    params.replace(list);
    Status::ERROR_SUCCESS.0
}

unsafe extern "C" fn delete_value_w(handle: RawParameters, name: *const u32) -> u32 {
    // SAFETY: the plug-in passes the handle it was given and a NUL-terminated wide name.
    let (Some(params), Some(name)) = (unsafe { parameters(handle) }, unsafe { wide::from_wide_ptr(name) }) else {
        return Status::ERROR_INVALID_PARAMETER.0;
    };
    let mut list = params.snapshot();
    let Some(key) = stored_name(&list, &name) else { return Status::ERROR_FILE_NOT_FOUND.0 };
    list.remove(&key);
    params.replace(list);
    Status::ERROR_SUCCESS.0
}

unsafe extern "C" fn enum_value_w(
    handle: RawParameters,
    index: u32,
    name: *mut u32,
    name_chars: *mut u32,
    value_type: *mut u32,
    data: *mut u8,
    size: *mut u32,
) -> u32 {
    // SAFETY: the plug-in passes the handle it was given.
    let Some(params) = (unsafe { parameters(handle) }) else { return Status::ERROR_INVALID_PARAMETER.0 };
    if name.is_null() || name_chars.is_null() {
        return Status::ERROR_INVALID_PARAMETER.0;
    }
    let entry =
        params.with(|list| list.iter().nth(index as usize).map(|p| (p.name.clone(), p.value().map(registry_value))));
    let Some((property, value)) = entry else { return ERROR_NO_MORE_ITEMS };
    let wide_name = wide::to_wide(&property);
    let Ok(length) = u32::try_from(wide_name.len() - 1) else { return Status::ERROR_INVALID_DATA.0 };
    // SAFETY: `name_chars` is non-null and holds the buffer's size in characters, per the header.
    let available = unsafe { name_chars.read() };
    if (available as usize) < wide_name.len() {
        // SAFETY: as above.
        unsafe { name_chars.write(length) };
        return Status::ERROR_MORE_DATA.0;
    }
    // SAFETY: `name` has `available >= wide_name.len()` characters; `name_chars` is writable.
    unsafe {
        std::ptr::copy_nonoverlapping(wide_name.as_ptr(), name, wide_name.len());
        name_chars.write(length);
    }
    let (t, bytes) = value.unwrap_or((REG_BINARY, Vec::new()));
    // SAFETY: the pointers come from the plug-in with registry semantics, per the header.
    unsafe { reply_value(t, &bytes, value_type, data, size) }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn registry_values_round_trip() {
        for v in [
            ValueData::Sz("hé".into()),
            ValueData::ExpandSz("%X%".into()),
            ValueData::MultiSz(vec!["a".into(), "bc".into()]),
            ValueData::Dword(7),
            ValueData::ULargeInteger(1 << 40),
            ValueData::Binary(vec![1, 2]),
        ] {
            let (t, bytes) = registry_value(&v);
            assert_eq!(from_registry(t, &bytes), Some(v));
        }
        assert_eq!(from_registry(REG_DWORD, &[1, 2]), None);
        assert_eq!(from_registry(99, &[]), None);
    }
}
