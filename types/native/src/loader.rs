//! Loading a plug-in, negotiating its table version, validating the table, and wrapping it as a
//! [`ResourceType`] whose instances are [`Resource`]s.

use crate::abi::{self, CLRES_VERSION_V1_00, CLRES_VERSION_V2_00, FunctionTable, V1Functions, V2Functions, WideKey};
use crate::callbacks::{self, CALLBACK_TABLE, CALLBACK_TABLE_WIDE};
use crate::parameters::ParametersHandle;
use crate::wide::{self, Direction, Shape};
use nix::errno::Errno;
use resapi::{
    ControlCode, ControlResult, OfflineFlags, OnlineFlags, OpenRequest, QuorumLost, Resource, ResourceType, Status,
};
use std::borrow::Cow;
use std::ffi::{CString, c_char, c_void};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// The oldest table version halo accepts (`MinVersionSupported`).
pub const MIN_VERSION: u32 = CLRES_VERSION_V1_00;
/// The newest table version halo accepts (`MaxVersionSupported`).
pub const MAX_VERSION: u32 = CLRES_VERSION_V2_00;

/// Why a plug-in could not be loaded or started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The shared object could not be opened.
    #[error("cannot load plug-in {path}: {reason}")]
    Open {
        /// The plug-in's path.
        path: PathBuf,
        /// What the dynamic loader said.
        reason: String,
    },
    /// It exports neither `StartupEx` nor `Startup`.
    #[error("plug-in {path} exports neither StartupEx nor Startup")]
    NoStartup {
        /// The plug-in's path.
        path: PathBuf,
    },
    /// A type name holds a NUL byte.
    #[error("resource type name {0:?} contains a NUL byte")]
    InvalidName(String),
    /// The plug-in was built with the Windows-style headers for a `WCHAR` width halo cannot
    /// convert to (halo supports 4-byte `wchar_t` on 64-bit targets).
    #[error("plug-in {path} uses {size}-byte wide characters; halo supports 4-byte wchar_t on 64-bit targets")]
    WideCharSize {
        /// The plug-in's path.
        path: PathBuf,
        /// Its `sizeof(WCHAR)`.
        size: u32,
    },
    /// `Startup`/`StartupEx` returned an error.
    #[error("plug-in {path} refused to start type {type_name:?}: {status}")]
    StartupFailed {
        /// The plug-in's path.
        path: PathBuf,
        /// The type it was asked to serve.
        type_name: String,
        /// What it returned.
        status: Status,
    },
    /// Startup succeeded but gave no table.
    #[error("plug-in {path} returned success from Startup but no function table")]
    NullTable {
        /// The plug-in's path.
        path: PathBuf,
    },
    /// The table's version is outside what halo supports.
    #[error(
        "plug-in {path} returned table version {version:#x}; halo supports {MIN_VERSION:#x} (CLRES_VERSION_V1_00) to \
         {MAX_VERSION:#x} (CLRES_VERSION_V2_00)"
    )]
    RevisionMismatch {
        /// The plug-in's path.
        path: PathBuf,
        /// The version it returned.
        version: u32,
    },
    /// `TableSize` does not match the version's function-table size.
    #[error("plug-in {path}: TableSize is {table_size} but sizeof(CLRES_V{major}_FUNCTIONS) is {expected}")]
    TableSize {
        /// The plug-in's path.
        path: PathBuf,
        /// The table's major version (1 or 2).
        major: u32,
        /// The size it declared.
        table_size: u32,
        /// The size of that version's table.
        expected: usize,
    },
    /// A mandatory entry point is NULL.
    #[error("plug-in {path}: mandatory entry point {entry} is NULL in its V{major} table")]
    NullEntry {
        /// The plug-in's path.
        path: PathBuf,
        /// The table's major version (1 or 2).
        major: u32,
        /// The member that is NULL.
        entry: &'static str,
    },
}

impl LoadError {
    /// The Win32 code for this error.
    pub fn status(&self) -> Status {
        match self {
            LoadError::Open { .. } => Status::ERROR_MOD_NOT_FOUND,
            LoadError::NoStartup { .. } => Status::ERROR_PROC_NOT_FOUND,
            LoadError::InvalidName(_) => Status::ERROR_INVALID_PARAMETER,
            LoadError::WideCharSize { .. } => Status::ERROR_NOT_SUPPORTED,
            LoadError::StartupFailed { status, .. } => *status,
            LoadError::RevisionMismatch { .. } => Status::ERROR_REVISION_MISMATCH,
            LoadError::NullTable { .. } | LoadError::TableSize { .. } | LoadError::NullEntry { .. } => {
                Status::ERROR_INVALID_DATA
            }
        }
    }
}

/// A loaded plug-in (`.so`). Shared by every type it serves and every resource opened from them,
/// so it stays loaded while any of them exists.
#[derive(Debug)]
pub struct NativeLibrary {
    path: PathBuf,
    library: libloading::Library,
    wide: bool,
}

/// The symbol `include/compat/resapi.h` makes a plug-in export: its `sizeof(WCHAR)`.
const WIDE_MARKER: &[u8] = b"HaloResApiWideStrings\0";

impl NativeLibrary {
    /// Loads the shared object at `path`, and learns from `HaloResApiWideStrings` whether it
    /// was built with the Windows-style headers (wide strings; see `include/compat/resapi.h`).
    pub fn load(path: impl AsRef<Path>) -> Result<Arc<Self>, LoadError> {
        let path = path.as_ref().to_path_buf();
        // SAFETY: loading runs the plug-in's initialisers; trusting plug-in code is the point of
        // the `native` type, and the host process isolates the node daemon from it.
        let library = unsafe { libloading::Library::new(&path) }
            .map_err(|e| LoadError::Open { path: path.clone(), reason: e.to_string() })?;
        // SAFETY: the marker, when present, is a `const DWORD` the header defines.
        let marker = unsafe { library.get::<*const u32>(WIDE_MARKER) }.ok().map(|symbol| *symbol);
        let wide = match marker {
            None => false,
            Some(address) if address.is_null() => false,
            Some(address) => {
                // SAFETY: a non-null address of the exported DWORD.
                let size = unsafe { address.read_unaligned() };
                // RESOURCE_HANDLE is a pointer for these plug-ins and a u64 for halo.
                if size != wide::WCHAR_SIZE || size_of::<usize>() != size_of::<u64>() {
                    return Err(LoadError::WideCharSize { path, size });
                }
                true
            }
        };
        Ok(Arc::new(NativeLibrary { path, library, wide }))
    }

    /// The plug-in's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the plug-in was built with the Windows-style headers (`wchar_t` strings).
    pub fn is_wide(&self) -> bool {
        self.wide
    }
}

/// A string as the plug-in reads it: UTF-8 for narrow plug-ins, UTF-32 for wide ones.
#[derive(Debug)]
enum PluginString {
    Narrow(CString),
    Wide(Vec<u32>),
}

impl PluginString {
    fn new(text: &str, wide: bool) -> Option<Self> {
        if wide {
            (!text.contains('\0')).then(|| PluginString::Wide(wide::to_wide(text)))
        } else {
            CString::new(text).ok().map(PluginString::Narrow)
        }
    }

    /// The pointer to pass; the entry-point types use `char *` for both kinds.
    fn as_ptr(&self) -> *const c_char {
        match self {
            PluginString::Narrow(s) => s.as_ptr(),
            PluginString::Wide(w) => w.as_ptr().cast::<c_char>(),
        }
    }
}

/// A resource type served by a native plug-in.
pub struct NativeResourceType {
    library: Arc<NativeLibrary>,
    started: OnceLock<Result<Started, LoadError>>,
}

struct Started {
    type_name: PluginString,
    version: u32,
    calls: Calls,
    wide: bool,
}

impl std::fmt::Debug for NativeResourceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeResourceType").field("library", &self.library.path).finish_non_exhaustive()
    }
}

impl NativeResourceType {
    /// A type served by `library`; call [`ResourceType::startup`] (or [`Self::start`]) before
    /// opening resources.
    pub fn new(library: Arc<NativeLibrary>) -> Self {
        NativeResourceType { library, started: OnceLock::new() }
    }

    /// Runs the plug-in's `StartupEx` (or `Startup`) for `type_name` and validates the table it
    /// returns. Idempotent: later calls return the first outcome.
    pub fn start(&self, type_name: &str) -> Result<(), LoadError> {
        match self.started.get_or_init(|| start(&self.library, type_name)) {
            Ok(_) => Ok(()),
            Err(e) => Err(e.clone()),
        }
    }

    /// The negotiated table version (0x100 or 0x200), once started.
    pub fn version(&self) -> Option<u32> {
        match self.started.get() {
            Some(Ok(s)) => Some(s.version),
            _ => None,
        }
    }

    fn started(&self) -> Result<&Started, Status> {
        match self.started.get() {
            Some(Ok(s)) => Ok(s),
            Some(Err(e)) => Err(e.status()),
            None => Err(Status::ERROR_RESMON_INVALID_STATE),
        }
    }
}

fn start(library: &NativeLibrary, type_name: &str) -> Result<Started, LoadError> {
    let path = library.path.clone();
    let wide = library.wide;
    let c_type = PluginString::new(type_name, wide).ok_or_else(|| LoadError::InvalidName(type_name.to_string()))?;
    let (callback_table, log_event): (&'static abi::CallbackTable, abi::LogEventFn) = if wide {
        (&CALLBACK_TABLE_WIDE, callbacks::halo_native_log_event_wide)
    } else {
        (&CALLBACK_TABLE, callbacks::halo_native_log_event)
    };
    let mut table: *const FunctionTable = ptr::null();
    // SAFETY: the symbols have the signatures of PSTARTUP_EX_ROUTINE / PSTARTUP_ROUTINE, per the
    // header the plug-in was built against (for wide plug-ins the strings are wchar_t).
    let status = unsafe {
        if let Ok(startup_ex) = library.library.get::<abi::StartupExFn>(b"StartupEx\0") {
            startup_ex(c_type.as_ptr(), MIN_VERSION, MAX_VERSION, callback_table, &mut table)
        } else if let Ok(startup) = library.library.get::<abi::StartupFn>(b"Startup\0") {
            startup(c_type.as_ptr(), MIN_VERSION, MAX_VERSION, callbacks::set_resource_status, log_event, &mut table)
        } else {
            return Err(LoadError::NoStartup { path });
        }
    };
    if status != Status::ERROR_SUCCESS.0 {
        return Err(LoadError::StartupFailed { path, type_name: type_name.to_string(), status: Status(status) });
    }
    if table.is_null() {
        return Err(LoadError::NullTable { path });
    }
    // SAFETY: non-null; TableSize and Version are the only fields with fixed offsets, read first.
    let (table_size, version) = unsafe { ((*table).table_size, (*table).version) };
    let calls = match version {
        CLRES_VERSION_V1_00 => {
            check_size(&path, 1, table_size, size_of::<V1Functions>())?;
            // SAFETY: the plug-in declared a V1 table of the right size.
            Calls::v1(unsafe { ptr::addr_of!((*table).functions.v1).read() })
        }
        CLRES_VERSION_V2_00 => {
            check_size(&path, 2, table_size, size_of::<V2Functions>())?;
            // SAFETY: the plug-in declared a V2 table of the right size.
            Calls::v2(unsafe { ptr::addr_of!((*table).functions.v2).read() })
        }
        version => return Err(LoadError::RevisionMismatch { path, version }),
    };
    let calls = calls.map_err(|entry| LoadError::NullEntry { path, major: version >> 8, entry })?;
    Ok(Started { type_name: c_type, version, calls, wide })
}

fn check_size(path: &Path, major: u32, table_size: u32, expected: usize) -> Result<(), LoadError> {
    if table_size as usize == expected {
        Ok(())
    } else {
        Err(LoadError::TableSize { path: path.to_path_buf(), major, table_size, expected })
    }
}

/// The entry points of either version, with every mandatory one checked non-NULL at startup.
#[derive(Clone, Copy)]
struct Calls {
    close: abi::CloseFn,
    terminate: abi::TerminateFn,
    looks_alive: abi::AliveFn,
    is_alive: abi::AliveFn,
    resource_control: abi::ResourceControlFn,
    resource_type_control: abi::TypeControlFn,
    arbitrate: Option<abi::ArbitrateFn>,
    release: Option<abi::ReleaseFn>,
    versioned: Versioned,
}

#[derive(Clone, Copy)]
enum Versioned {
    V1 { open: abi::OpenFn, online: abi::OnlineFn, offline: abi::OfflineFn },
    V2 { open: abi::OpenV2Fn, online: abi::OnlineV2Fn, offline: abi::OfflineV2Fn, cancel: abi::CancelFn },
}

/// A mandatory member, or the name of the one that is NULL.
fn required<T>(f: Option<T>, name: &'static str) -> Result<T, &'static str> {
    f.ok_or(name)
}

impl Calls {
    fn v1(f: V1Functions) -> Result<Calls, &'static str> {
        Ok(Calls {
            versioned: Versioned::V1 {
                open: required(f.open, "Open")?,
                online: required(f.online, "Online")?,
                offline: required(f.offline, "Offline")?,
            },
            close: required(f.close, "Close")?,
            terminate: required(f.terminate, "Terminate")?,
            looks_alive: required(f.looks_alive, "LooksAlive")?,
            is_alive: required(f.is_alive, "IsAlive")?,
            resource_control: required(f.resource_control, "ResourceControl")?,
            resource_type_control: required(f.resource_type_control, "ResourceTypeControl")?,
            arbitrate: f.arbitrate,
            release: f.release,
        })
    }

    fn v2(f: V2Functions) -> Result<Calls, &'static str> {
        Ok(Calls {
            versioned: Versioned::V2 {
                open: required(f.open, "OpenV2")?,
                online: required(f.online, "OnlineV2")?,
                offline: required(f.offline, "OfflineV2")?,
                cancel: required(f.cancel, "Cancel")?,
            },
            close: required(f.close, "Close")?,
            terminate: required(f.terminate, "Terminate")?,
            looks_alive: required(f.looks_alive, "LooksAlive")?,
            is_alive: required(f.is_alive, "IsAlive")?,
            resource_control: required(f.resource_control, "ResourceControl")?,
            resource_type_control: required(f.resource_type_control, "ResourceTypeControl")?,
            arbitrate: f.arbitrate,
            release: f.release,
        })
    }
}

/// Clamps a buffer length to a DWORD; a buffer over 4 GiB cannot cross the ABI.
fn dword_len(len: usize) -> Result<u32, Status> {
    u32::try_from(len).map_err(|_| Status::ERROR_INVALID_PARAMETER)
}

/// Calls a control routine and checks what it claims to have written.
fn control_call(
    output: &mut [u8],
    input: &[u8],
    call: impl Fn(*mut c_void, u32, *mut c_void, u32, *mut u32) -> u32,
) -> ControlResult {
    let (Ok(in_len), out_len) = (dword_len(input.len()), u32::try_from(output.len()).unwrap_or(u32::MAX)) else {
        return ControlResult::status(Status::ERROR_INVALID_PARAMETER);
    };
    let mut returned = 0u32;
    let in_ptr = if input.is_empty() { ptr::null_mut() } else { input.as_ptr().cast_mut().cast::<c_void>() };
    let out_ptr = if output.is_empty() { ptr::null_mut() } else { output.as_mut_ptr().cast::<c_void>() };
    let status = Status(call(in_ptr, in_len, out_ptr, out_len, &mut returned));
    let returned = returned as usize;
    if status == Status::ERROR_SUCCESS && returned > output.len() {
        // The plug-in claims to have written past the buffer: refuse to trust its output.
        return ControlResult::status(Status::ERROR_INVALID_DATA);
    }
    ControlResult { status, bytes_returned: returned }
}

/// The largest output fetched from a wide plug-in to learn its converted size.
const MAX_CONVERTED_OUTPUT: usize = 64 << 20;

/// A control call to a wide plug-in: buffers that carry strings are converted (see
/// `include/compat/resapi.h`); sizes reported to the caller are those of the converted output.
fn wide_control_call(
    code: u32,
    output: &mut [u8],
    input: &[u8],
    call: impl Fn(*mut c_void, u32, *mut c_void, u32, *mut u32) -> u32,
) -> ControlResult {
    let input = match wide::convert(wide::input_shape(code), Direction::ToPlugin, input) {
        Ok(i) => i,
        Err(_) => return ControlResult::status(Status::ERROR_INVALID_PARAMETER),
    };
    let shape = wide::output_shape(code);
    if shape == Shape::Opaque {
        return control_call(output, &input, call);
    }
    // The plug-in's form is at most twice the wire form (4-byte against 2-byte characters).
    let mut scratch = vec![0u8; output.len().saturating_mul(2).min(u32::MAX as usize)];
    let mut result = control_call(&mut scratch, &input, &call);
    if result.status == Status::ERROR_MORE_DATA && result.bytes_returned > MAX_CONVERTED_OUTPUT {
        // Too large to fetch just to measure: the plug-in's size bounds the converted one.
        return result;
    }
    if result.status == Status::ERROR_MORE_DATA && result.bytes_returned > scratch.len() {
        // Fetch it all to learn the converted size; GET-style codes are safe to repeat.
        scratch = vec![0u8; result.bytes_returned];
        result = control_call(&mut scratch, &input, &call);
    }
    if result.status != Status::ERROR_SUCCESS {
        return result;
    }
    let converted = match wide::convert(shape, Direction::FromPlugin, &scratch[..result.bytes_returned]) {
        Ok(c) => c,
        Err(_) => return ControlResult::status(Status::ERROR_INVALID_DATA),
    };
    ControlResult::reply(&converted, output)
}

impl ResourceType for NativeResourceType {
    fn startup(&self, type_name: &str) -> Result<(), Status> {
        self.start(type_name).map_err(|e| e.status())
    }

    fn open(&self, request: OpenRequest) -> Result<Box<dyn Resource>, Status> {
        let started = self.started()?;
        let calls = started.calls;
        let name = PluginString::new(&request.name, started.wide).ok_or(Status::ERROR_INVALID_PARAMETER)?;
        let mut parameters = ParametersHandle::new(request.parameters);
        // A wide plug-in's Open receives an HKEY: the resource's key, over the same parameters.
        let mut key =
            started.wide.then(|| Box::new(WideKey { parameters: parameters.as_raw(), kind: abi::HALO_KEY_RESOURCE }));
        let key_ptr = match key.as_mut() {
            Some(k) => (&mut **k as *mut WideKey).cast::<c_void>(),
            None => parameters.as_raw(),
        };
        let handle = callbacks::register(request.callbacks);
        Errno::clear();
        // SAFETY: entry points were checked at startup; the name, the parameters handle and the
        // key outlive the call (the last two live as long as the resource).
        let resid = unsafe {
            match calls.versioned {
                Versioned::V1 { open, .. } => open(name.as_ptr(), key_ptr, handle),
                Versioned::V2 { open, .. } => open(name.as_ptr(), key_ptr, handle, request.flags.bits()),
            }
        };
        if resid.is_null() {
            let last_error = Errno::last_raw();
            callbacks::unregister(handle);
            // A plug-in that fails Open without SetLastError still fails it.
            return Err(if last_error > 0 { Status(last_error as u32) } else { Status::ERROR_RESOURCE_NOT_AVAILABLE });
        }
        Ok(Box::new(NativeResource {
            _library: self.library.clone(),
            calls,
            resid,
            handle,
            _parameters: parameters,
            _key: key,
            wide: started.wide,
            closed: AtomicBool::new(false),
        }))
    }

    fn type_control(&self, code: ControlCode, input: &[u8], output: &mut [u8]) -> ControlResult {
        let started = match self.started() {
            Ok(s) => s,
            Err(status) => return ControlResult::status(status),
        };
        let control = started.calls.resource_type_control;
        let call = |i, il, o, ol, r| {
            // SAFETY: buffers and lengths describe live slices; the type name is a plug-in string.
            unsafe { control(started.type_name.as_ptr(), code.0, i, il, o, ol, r) }
        };
        if started.wide { wide_control_call(code.0, output, input, call) } else { control_call(output, input, call) }
    }
}

/// One resource opened through a plug-in.
pub struct NativeResource {
    _library: Arc<NativeLibrary>,
    calls: Calls,
    resid: abi::Resid,
    handle: abi::RawHandle,
    _parameters: Box<ParametersHandle>,
    _key: Option<Box<WideKey>>,
    wide: bool,
    closed: AtomicBool,
}

// SAFETY: the plug-in's RESID is used only through its entry points, which the contract requires
// to be callable from any host thread (serialized by the host, except Terminate, which plug-ins
// must make safe to run concurrently).
unsafe impl Send for NativeResource {}
// SAFETY: as above.
unsafe impl Sync for NativeResource {}

impl NativeResource {
    /// The handle halo gave the plug-in for this resource.
    pub fn raw_handle(&self) -> u64 {
        self.handle
    }

    /// OnlineV2/OfflineV2's InBuffer as the plug-in reads it: a wide plug-in gets a property
    /// list in its own form; bytes that are not a property list pass unchanged.
    fn in_buffer<'a>(&self, input: &'a [u8]) -> Cow<'a, [u8]> {
        if !self.wide || input.is_empty() {
            return Cow::Borrowed(input);
        }
        wide::convert(Shape::PropertyList, Direction::ToPlugin, input).unwrap_or(Cow::Borrowed(input))
    }
}

impl Resource for NativeResource {
    fn online_v2(&self, flags: OnlineFlags, input: &[u8]) -> Status {
        let input = self.in_buffer(input);
        let mut event: abi::Handle = ptr::null_mut();
        let Ok(len) = dword_len(input.len()) else { return Status::ERROR_INVALID_PARAMETER };
        let input_ptr = if input.is_empty() { ptr::null_mut() } else { input.as_ptr().cast_mut() };
        // SAFETY: entry points checked at startup; `input` outlives the call.
        Status(unsafe {
            match self.calls.versioned {
                Versioned::V1 { online, .. } => online(self.resid, &mut event),
                Versioned::V2 { online, .. } => online(self.resid, &mut event, flags.bits(), input_ptr, len, 0),
            }
        })
    }

    fn offline_v2(&self, destination: Option<&str>, flags: OfflineFlags, input: &[u8]) -> Status {
        let input = self.in_buffer(input);
        let Ok(len) = dword_len(input.len()) else { return Status::ERROR_INVALID_PARAMETER };
        let destination = match destination.map(|d| PluginString::new(d, self.wide)) {
            None => None,
            Some(Some(d)) => Some(d),
            Some(None) => return Status::ERROR_INVALID_PARAMETER,
        };
        let dest_ptr = destination.as_ref().map_or(ptr::null(), |d| d.as_ptr());
        let input_ptr = if input.is_empty() { ptr::null_mut() } else { input.as_ptr().cast_mut() };
        // SAFETY: entry points checked at startup; the strings and `input` outlive the call.
        Status(unsafe {
            match self.calls.versioned {
                Versioned::V1 { offline, .. } => offline(self.resid),
                Versioned::V2 { offline, .. } => offline(self.resid, dest_ptr, flags.bits(), input_ptr, len, 0),
            }
        })
    }

    fn terminate(&self) {
        // SAFETY: entry point checked at startup.
        unsafe { (self.calls.terminate)(self.resid) }
    }

    fn looks_alive(&self) -> bool {
        // SAFETY: entry point checked at startup.
        unsafe { (self.calls.looks_alive)(self.resid) != 0 }
    }

    fn is_alive(&self) -> bool {
        // SAFETY: entry point checked at startup.
        unsafe { (self.calls.is_alive)(self.resid) != 0 }
    }

    fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        // SAFETY: entry point checked at startup; called once.
        unsafe { (self.calls.close)(self.resid) };
        callbacks::unregister(self.handle);
    }

    fn arbitrate(&self, lost: QuorumLost) -> Status {
        let Some(arbitrate) = self.calls.arbitrate else { return Status::ERROR_NOT_QUORUM_CAPABLE };
        callbacks::set_quorum_lost(self.handle, Some(lost));
        // SAFETY: non-NULL entry point; the callback looks the handle up in the registry.
        Status(unsafe { arbitrate(self.resid, Some(callbacks::quorum_lost)) })
    }

    fn release(&self) -> Status {
        let Some(release) = self.calls.release else { return Status::ERROR_NOT_QUORUM_CAPABLE };
        // SAFETY: non-NULL entry point.
        let status = Status(unsafe { release(self.resid) });
        callbacks::set_quorum_lost(self.handle, None);
        status
    }

    fn resource_control(&self, code: ControlCode, input: &[u8], output: &mut [u8]) -> ControlResult {
        let control = self.calls.resource_control;
        let call = |i, il, o, ol, r| {
            // SAFETY: buffers and lengths describe live slices.
            unsafe { control(self.resid, code.0, i, il, o, ol, r) }
        };
        if self.wide { wide_control_call(code.0, output, input, call) } else { control_call(output, input, call) }
    }

    fn cancel(&self) -> Status {
        match self.calls.versioned {
            // SAFETY: entry point checked at startup.
            Versioned::V2 { cancel, .. } => Status(unsafe { cancel(self.resid, 0) }),
            Versioned::V1 { .. } => Status::ERROR_INVALID_FUNCTION,
        }
    }
}

impl Drop for NativeResource {
    fn drop(&mut self) {
        // The monitor always closes what it opened.
        self.close();
    }
}
