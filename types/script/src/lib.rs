//! # halo-type-script — an executable called with the entry point's name (WSFC Generic Script)
//!
//! The script named by `ScriptPath` is run as `SCRIPT ENTRY` where ENTRY is `open`, `online`,
//! `offline`, `terminate`, `looks-alive`, `is-alive` or `close`, with this environment:
//!
//! | variable | value |
//! |---|---|
//! | `HALO_ENTRY_POINT` | the entry point, as in argv[1] |
//! | `HALO_RESOURCE_NAME` | the resource's name |
//! | `HALO_PROP_<Name>` | each private property other than `ScriptPath`/`TimeoutMs`, as text |
//! | `HALO_ONLINE_FLAGS`, `HALO_ONLINE_FLAG_NAMES` | online: the `CLUS_RESDLL_ONLINE_*` flags, number and names |
//! | `HALO_OFFLINE_FLAGS`, `HALO_OFFLINE_FLAG_NAMES` | offline: the `CLUS_RESDLL_OFFLINE_*` flags |
//! | `HALO_DESTINATION_NODE` | offline as part of a move: where the group goes |
//! | `HALO_EPOCH` | the ownership epoch, when the node passes one |
//!
//! Exit status 0 is success (alive, for the health checks); anything else is failure, recorded
//! as the application-specific error code. `online` and `offline` run on a worker (the entry
//! point returns `ERROR_IO_PENDING`), so PendingTimeout bounds them; the others must finish within
//! `TimeoutMs`. What the script leaves running in the background (a daemon started by `online`)
//! is not killed when it exits, only on a timeout or terminate; it belongs to the resource's
//! containment and ends when the resource goes offline or fails, or its host dies.

use halo_type_exec::{Keep, Scope, epoch, operation_env, run};
use resapi::{
    Callbacks, LogLevel, OfflineFlags, OnlineFlags, OpenRequest, Parameters, PendingWorker, PropertyList, Resource,
    ResourceState, ResourceStatusEx, ResourceType, Status, ValueData,
};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Properties the type itself reads; every other property goes to the script.
pub const SCRIPT_PATH: &str = "ScriptPath";
/// How long the synchronous entry points may run, in ms (default 60000).
pub const TIMEOUT_MS: &str = "TimeoutMs";
const DEFAULT_TIMEOUT_MS: u32 = 60_000;

/// The `script` resource type.
#[derive(Debug, Default)]
pub struct ScriptType;

#[derive(Debug, Clone)]
struct Config {
    /// The resource's containment: everything the script starts can be killed as a whole.
    scope: Scope,
    path: String,
    timeout: Duration,
    env: Vec<(String, String)>,
}

impl Config {
    fn read(scope: Scope, name: &str, list: &PropertyList) -> Result<Config, (Status, String)> {
        let invalid = |m: String| (Status::ERROR_INVALID_PARAMETER, m);
        let path = list
            .get_str(SCRIPT_PATH)
            .ok_or_else(|| invalid(format!("property {SCRIPT_PATH:?} is required (the executable to run)")))?
            .to_string();
        let meta = std::fs::metadata(&path)
            .map_err(|e| (Status::ERROR_FILE_NOT_FOUND, format!("{SCRIPT_PATH} {path}: {e}")))?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err((Status::ERROR_ACCESS_DENIED, format!("{SCRIPT_PATH} {path} is not an executable file")));
        }
        let timeout_ms = match list.get(TIMEOUT_MS) {
            None => DEFAULT_TIMEOUT_MS,
            Some(v) => v
                .as_dword()
                .or_else(|| v.as_str().and_then(resapi::parse_u32))
                .filter(|t| *t >= 10)
                .ok_or_else(|| invalid(format!("property {TIMEOUT_MS:?}: expected milliseconds, at least 10")))?,
        };
        let mut env = vec![("HALO_RESOURCE_NAME".to_string(), name.to_string())];
        for p in list.iter() {
            if p.name.eq_ignore_ascii_case(SCRIPT_PATH) || p.name.eq_ignore_ascii_case(TIMEOUT_MS) {
                continue;
            }
            if p.name.is_empty() || !p.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(invalid(format!(
                    "property {:?}: names passed to a script may hold only letters, digits and _",
                    p.name
                )));
            }
            let text = p
                .value()
                .and_then(ValueData::to_text)
                .ok_or_else(|| invalid(format!("property {:?}: binary values cannot be passed to a script", p.name)))?;
            env.push((format!("HALO_PROP_{}", p.name), text));
        }
        Ok(Config { scope, path, timeout: Duration::from_millis(timeout_ms.into()), env })
    }

    /// Runs the script for `entry`; returns its exit code (None: killed or timed out).
    fn call(
        &self,
        entry: &str,
        extra: &[(String, String)],
        timeout: Duration,
        callbacks: &Callbacks,
        cancelled: impl FnMut() -> bool,
    ) -> Option<i32> {
        let mut command = Command::new(&self.path);
        command.arg(entry).env("HALO_ENTRY_POINT", entry).envs(self.env.iter().cloned()).envs(extra.iter().cloned());
        match run(self.scope, &mut command, Keep::Stderr, timeout, cancelled) {
            Ok(out) => {
                if out.timed_out {
                    callbacks.log_event(LogLevel::Error, &format!("{} {entry}: killed after {timeout:?}", self.path));
                }
                if out.code != Some(0) && !out.stderr.trim().is_empty() {
                    let last = out.stderr.trim().lines().last().unwrap_or_default();
                    callbacks.log_event(LogLevel::Warning, &format!("{} {entry}: {last}", self.path));
                }
                out.code
            }
            Err(e) => {
                callbacks.log_event(LogLevel::Error, &format!("cannot run {} {entry}: {e}", self.path));
                None
            }
        }
    }
}

impl ResourceType for ScriptType {
    fn open(&self, request: OpenRequest) -> Result<Box<dyn Resource>, Status> {
        let fail = |(status, message): (Status, String)| {
            request.callbacks.log_event(LogLevel::Error, &format!("script {}: {message}", request.name));
            status
        };
        let scope = Scope::resource(request.callbacks.handle().0);
        let config = Config::read(scope, &request.name, &request.parameters.snapshot()).map_err(fail)?;
        let flags = vec![("HALO_OPEN_FLAGS".to_string(), format!("{:#x}", request.flags.bits()))];
        match config.call("open", &flags, config.timeout, &request.callbacks, || false) {
            Some(0) => {}
            code => return Err(fail((Status::ERROR_RESOURCE_FAILED, format!("open exited with {code:?}")))),
        }
        Ok(Box::new(Script {
            name: request.name,
            callbacks: request.callbacks,
            parameters: request.parameters,
            config: Mutex::new(config),
            worker: PendingWorker::default(),
        }))
    }
}

struct Script {
    name: String,
    callbacks: Callbacks,
    parameters: Parameters,
    config: Mutex<Config>,
    worker: PendingWorker,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Script {
    fn refresh(&self) -> Result<Config, Status> {
        let scope = lock(&self.config).scope; // not held across the match, which locks again
        match Config::read(scope, &self.name, &self.parameters.snapshot()) {
            Ok(c) => {
                *lock(&self.config) = c.clone();
                Ok(c)
            }
            Err((status, message)) => {
                self.callbacks.log_event(LogLevel::Error, &message);
                Err(status)
            }
        }
    }

    /// Runs `entry` on a worker and reports `done` on exit 0, `failed` otherwise.
    fn pending(
        &self,
        entry: &'static str,
        extra: Vec<(String, String)>,
        done: ResourceState,
        failed: ResourceState,
    ) -> Status {
        let config = match self.refresh() {
            Ok(c) => c,
            Err(status) => return status,
        };
        let callbacks = self.callbacks.clone();
        // No time limit of its own: PendingTimeout bounds it, and terminate kills it.
        self.worker.start("script-op", move |ctx| {
            let code = config
                .call(entry, &extra, Duration::from_secs(u64::from(u32::MAX)), &callbacks, || ctx.check_terminate());
            if ctx.check_terminate() {
                return 1;
            }
            let mut status = ResourceStatusEx::new(if code == Some(0) { done } else { failed }, 1);
            if let Some(c) = code.filter(|c| *c != 0) {
                status.application_specific_error_code = u32::try_from(c).unwrap_or(u32::MAX);
            }
            callbacks.set_resource_status_ex(status);
            0
        })
    }

    fn check(&self, entry: &str) -> bool {
        let config = lock(&self.config).clone();
        config.call(entry, &[], config.timeout, &self.callbacks, || false) == Some(0)
    }
}

impl Resource for Script {
    fn online_v2(&self, flags: OnlineFlags, input: &[u8]) -> Status {
        let mut extra = operation_env("ONLINE", None, flags.bits(), &flags.names());
        extra.extend(epoch(input).map(|e| ("HALO_EPOCH".to_string(), e.to_string())));
        self.pending("online", extra, ResourceState::Online, ResourceState::Failed)
    }

    fn offline_v2(&self, destination: Option<&str>, flags: OfflineFlags, input: &[u8]) -> Status {
        let mut extra = operation_env("OFFLINE", destination, flags.bits(), &flags.names());
        extra.extend(epoch(input).map(|e| ("HALO_EPOCH".to_string(), e.to_string())));
        self.pending("offline", extra, ResourceState::Offline, ResourceState::Failed)
    }

    fn terminate(&self) {
        // Kill a running online/offline first, then let the script clean up.
        self.worker.stop();
        if !self.check("terminate") {
            self.callbacks.log_event(LogLevel::Warning, "terminate did not exit 0");
        }
    }

    fn looks_alive(&self) -> bool {
        self.check("looks-alive")
    }

    fn is_alive(&self) -> bool {
        self.check("is-alive")
    }

    fn close(&self) {
        self.worker.stop();
        if !self.check("close") {
            self.callbacks.log_event(LogLevel::Warning, "close did not exit 0");
        }
    }
}

/// Keeps the documentation's claim honest: every entry point name the script may receive.
pub const ENTRY_POINTS: [&str; 7] = ["open", "online", "offline", "terminate", "looks-alive", "is-alive", "close"];
