//! Shared by the native-type tests: compiling C with the system compiler, and a monitor that
//! records every callback so tests can await them.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use resapi::{
    Callbacks, ExitState, FailureType, LogLevel, Monitor, Parameters, PropertyList, ResourceHandle, ResourceStatusEx,
    Status,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Compiles C sources with `$CC` (default `cc`) against `include/`; `shared` builds a `.so`.
pub fn compile(sources: &[PathBuf], defines: &[&str], output: &Path, shared: bool) -> PathBuf {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let mut cmd = Command::new(&cc);
    cmd.arg("-Wall").arg("-Wextra").arg("-pthread").arg("-I").arg(repo_root().join("include"));
    if shared {
        cmd.arg("-shared").arg("-fPIC");
    }
    cmd.args(defines).args(sources).arg("-o").arg(output);
    let result = cmd.output().unwrap_or_else(|e| panic!("cannot run the C compiler {cc:?}: {e}"));
    assert!(
        result.status.success(),
        "{cc} failed for {sources:?} {defines:?}:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    output.to_path_buf()
}

/// Compiles C against the Windows-style headers with exactly the documented build line,
/// `cc -Wall -Wextra -Werror [-shared -fPIC] -I include/compat`: nothing halo-specific added.
pub fn compile_compat(sources: &[PathBuf], output: &Path, shared: bool) -> PathBuf {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let mut cmd = Command::new(&cc);
    cmd.arg("-Wall").arg("-Wextra").arg("-Werror");
    if shared {
        cmd.arg("-shared").arg("-fPIC");
    }
    cmd.arg("-I").arg(repo_root().join("include/compat")).args(sources).arg("-o").arg(output);
    let result = cmd.output().unwrap_or_else(|e| panic!("cannot run the C compiler {cc:?}: {e}"));
    assert!(result.status.success(), "{cc} failed for {sources:?}:\n{}", String::from_utf8_lossy(&result.stderr));
    output.to_path_buf()
}

/// One callback a resource made.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Status(ResourceStatusEx),
    Log(LogLevel, String),
    Locked(bool, u32),
    Failure(FailureType, u32),
    NodeLocal(PropertyList),
}

/// A monitor that records callbacks and can pretend the resource was terminated.
#[derive(Default)]
pub struct Recorder {
    events: Mutex<Vec<Event>>,
    changed: Condvar,
    pub terminated: AtomicBool,
}

impl Recorder {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn callbacks(self: &Arc<Self>, handle: u64) -> Callbacks {
        Callbacks::new(ResourceHandle(handle), self.clone())
    }

    fn push(&self, event: Event) {
        self.events.lock().unwrap().push(event);
        self.changed.notify_all();
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// Waits until `done` holds for the recorded events (a generous bound guards a hung test).
    pub fn wait_for(&self, done: impl Fn(&[Event]) -> bool) -> Vec<Event> {
        let guard = self.events.lock().unwrap();
        let (guard, timeout) = self.changed.wait_timeout_while(guard, Duration::from_secs(60), |e| !done(e)).unwrap();
        assert!(!timeout.timed_out(), "timed out waiting; events so far: {:?}", *guard);
        guard.clone()
    }
}

impl Monitor for Recorder {
    fn set_resource_status_ex(&self, _handle: ResourceHandle, status: ResourceStatusEx) -> ExitState {
        self.push(Event::Status(status));
        if self.terminated.load(Ordering::SeqCst) { ExitState::Terminate } else { ExitState::Continue }
    }
    fn log_event(&self, _handle: ResourceHandle, level: LogLevel, message: &str) {
        self.push(Event::Log(level, message.to_string()));
    }
    fn set_resource_locked_mode(&self, _handle: ResourceHandle, locked: bool, reason: u32) {
        self.push(Event::Locked(locked, reason));
    }
    fn signal_failure(&self, _handle: ResourceHandle, failure: FailureType, code: u32) {
        self.push(Event::Failure(failure, code));
    }
    fn set_in_memory_node_local_properties(&self, _handle: ResourceHandle, properties: PropertyList) -> Status {
        self.push(Event::NodeLocal(properties));
        Status::ERROR_SUCCESS
    }
}

pub fn parameters(list: PropertyList) -> Parameters {
    Parameters::new(list)
}
