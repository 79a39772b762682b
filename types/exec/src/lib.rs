//! # halo-type-exec — child processes for resource types
//!
//! What `process`, `script` and `ocf` share: starting a program in a process group of its own (so
//! that stopping it stops everything it started), signalling and killing that group, and running
//! a program to completion within a time limit while keeping the end of its output.
//!
//! Every child belongs to a [`Scope`]: a resource's children are contained (a cgroup v2 per
//! resource, or their recorded process groups), so that everything a resource started can be
//! killed as a whole, even after the host that started it died; see [`contain`].
//!
//! This crate owns process mechanics only; it must not interpret what a program's exit means.

pub mod contain;

pub use contain::Scope;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use resapi::Status;
use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::str::FromStr;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The Win32 status for a failure to start a program.
pub fn spawn_status(error: &io::Error) -> Status {
    match error.kind() {
        io::ErrorKind::NotFound => Status::ERROR_FILE_NOT_FOUND,
        io::ErrorKind::PermissionDenied => Status::ERROR_ACCESS_DENIED,
        _ => Status::ERROR_RESOURCE_FAILED,
    }
}

/// Parses a signal name (`SIGTERM`, `TERM`, any case) or number.
pub fn parse_signal(text: &str) -> Result<Signal, String> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| format!("{n} is not a signal number"));
    }
    let upper = t.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    Signal::from_str(&name).map_err(|_| format!("{text:?} is not a signal name (e.g. SIGTERM, SIGINT, SIGHUP)"))
}

/// A child that leads its own process group.
#[derive(Debug)]
pub struct Group {
    child: Child,
}

impl Group {
    /// Starts `command` as the leader of a new process group, contained in `scope`.
    pub fn spawn(scope: Scope, command: &mut Command) -> io::Result<Group> {
        let placement = scope.prepare(command);
        let child = command.process_group(0).spawn()?;
        scope.started(placement, child.id());
        Ok(Group { child })
    }

    /// The leader's pid (also the group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Has the leader exited? (Reaps it if so.)
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends `signal` to the whole group. A group that is already gone is not an error.
    pub fn signal(&self, signal: Signal) {
        let pgid = Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(i32::MAX));
        // ESRCH (already gone) is the expected failure; EPERM cannot happen for our own group.
        let _ = killpg(pgid, signal);
    }

    /// Waits up to `timeout` for the leader to exit.
    pub fn wait_for(&mut self, timeout: Duration, mut keep_waiting: impl FnMut() -> bool) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.exited() {
                return Some(s);
            }
            if Instant::now() >= deadline || !keep_waiting() {
                return None;
            }
            // No portable way to wait on a child with a timeout; 5 ms keeps stops prompt.
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILL to the whole group, reaps the leader, and waits (up to a second) until no member
    /// of the group is still running: "stopped" must mean stopped.
    pub fn kill(&mut self) -> ExitStatus {
        self.signal(Signal::SIGKILL);
        let status = self.child.wait().unwrap_or_else(|_| ExitStatus::from_raw(9));
        let deadline = Instant::now() + Duration::from_secs(1);
        while group_running(self.child.id()) && Instant::now() < deadline {
            // SIGKILL is delivered asynchronously and nothing signals its completion for processes
            // that are not our children.
            thread::sleep(Duration::from_millis(2));
        }
        status
    }
}

/// The `HALO_*` environment that tells a program why an operation happens: the destination node
/// of a move and the flags, as a number and as names.
pub fn operation_env(
    prefix: &str,
    destination: Option<&str>,
    flags_bits: u32,
    flag_names: &[&str],
) -> Vec<(String, String)> {
    let mut env = vec![
        (format!("HALO_{prefix}_FLAGS"), format!("{flags_bits:#x}")),
        (format!("HALO_{prefix}_FLAG_NAMES"), flag_names.join("|")),
    ];
    if let Some(d) = destination {
        env.push(("HALO_DESTINATION_NODE".to_string(), d.to_string()));
    }
    env
}

/// The ownership epoch the node passes in an online/offline input buffer (a property list with
/// a DWORD or ULARGE_INTEGER `Epoch`), if there is one.
pub fn epoch(input: &[u8]) -> Option<u64> {
    let list = resapi::PropertyList::decode(input).ok()?;
    match list.get("Epoch")? {
        resapi::ValueData::ULargeInteger(e) => Some(*e),
        other => other.as_dword().map(u64::from),
    }
}

/// Is any process of group `pgid` still running (not a zombie)? Reads /proc.
pub fn group_running(pgid: u32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else { return false };
    let pgid = pgid.to_string();
    dir.flatten().any(|entry| {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else { return false };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
        // After the parenthesised command: state, ppid, pgrp, …
        let mut fields = stat.rsplit_once(") ").map(|(_, rest)| rest.split_whitespace()).into_iter().flatten();
        let state = fields.next();
        let pgrp = fields.nth(1);
        pgrp == Some(pgid.as_str()) && state != Some("Z")
    })
}

/// What a program run to completion produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    /// Its exit code, or `None` if a signal ended it (including the timeout's SIGKILL).
    pub code: Option<i32>,
    /// It ran past the time limit and was killed.
    pub timed_out: bool,
    /// Standard output (the last 64 KiB).
    pub stdout: String,
    /// Standard error (the last 64 KiB).
    pub stderr: String,
}

const OUTPUT_KEEP: usize = 64 * 1024;

/// Reads a pipe to its end on a thread; the text arrives on the returned channel.
fn drain(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            kept.extend_from_slice(&buf[..n]);
            if kept.len() > 2 * OUTPUT_KEEP {
                kept.drain(..kept.len() - OUTPUT_KEEP);
            }
        }
        let start = kept.len().saturating_sub(OUTPUT_KEEP);
        let _ = tx.send(String::from_utf8_lossy(&kept[start..]).into_owned());
    });
    rx
}

/// How long to wait for a program's pipes to close after its group was killed: a daemon it
/// started in another session may hold them open for ever.
const PIPE_GRACE: Duration = Duration::from_secs(1);

/// Which of a program's outputs to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Standard output and standard error.
    Both,
    /// Standard error only (standard output is discarded, sparing a thread per run).
    Stderr,
}

/// Runs `command` in its own process group, contained in `scope`, to completion, killing the
/// group after `timeout`. `cancelled` is polled (every 50 ms) while waiting: returning true kills
/// the group at once.
pub fn run(
    scope: Scope,
    command: &mut Command,
    keep: Keep,
    timeout: Duration,
    mut cancelled: impl FnMut() -> bool,
) -> io::Result<RunOutput> {
    let stdout = if keep == Keep::Both { Stdio::piped() } else { Stdio::null() };
    command.stdin(Stdio::null()).stdout(stdout).stderr(Stdio::piped());
    let Group { mut child } = Group::spawn(scope, command)?;
    let group = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let out = child.stdout.take().map(drain);
    let err = child.stderr.take().map(drain);
    // A thread blocks in wait() so that the exit is seen the moment it happens.
    let (exited_tx, exited) = mpsc::channel();
    thread::spawn(move || {
        let _ = exited_tx.send(child.wait());
    });
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || cancelled() {
            timed_out = left.is_zero();
            let _ = killpg(group, Signal::SIGKILL);
            break exited.recv().ok().and_then(Result::ok);
        }
        match exited.recv_timeout(left.min(Duration::from_millis(50))) {
            Ok(status) => break status.ok(),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break None,
        }
    };
    // Descendants that outlive the leader would hold the pipes open.
    let _ = killpg(group, Signal::SIGKILL);
    let stdout = out.and_then(|rx| rx.recv_timeout(PIPE_GRACE).ok()).unwrap_or_default();
    let stderr = err.and_then(|rx| rx.recv_timeout(PIPE_GRACE).ok()).unwrap_or_default();
    Ok(RunOutput { code: status.and_then(|s| s.code()), timed_out, stdout, stderr })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_and_number() {
        assert_eq!(parse_signal("SIGTERM"), Ok(Signal::SIGTERM));
        assert_eq!(parse_signal("int"), Ok(Signal::SIGINT));
        assert_eq!(parse_signal("9"), Ok(Signal::SIGKILL));
        assert!(parse_signal("SIGNOPE").unwrap_err().contains("SIGNOPE"));
    }

    #[test]
    fn run_keeps_output_and_kills_on_timeout() {
        let out = run(
            Scope::NONE,
            Command::new("/bin/sh").args(["-c", "echo hi; echo oops >&2; exit 3"]),
            Keep::Both,
            Duration::from_secs(60),
            || false,
        )
        .unwrap();
        assert_eq!(
            (out.code, out.timed_out, out.stdout.as_str(), out.stderr.as_str()),
            (Some(3), false, "hi\n", "oops\n")
        );
        // A grandchild holding the pipes is killed with its group.
        let started = Instant::now();
        let out = run(
            Scope::NONE,
            Command::new("/bin/sh").args(["-c", "sleep 600 & sleep 600"]),
            Keep::Stderr,
            Duration::from_millis(100),
            || false,
        )
        .unwrap();
        assert!(out.timed_out && out.code.is_none());
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn kill_leaves_no_member_running() {
        let mut group =
            Group::spawn(Scope::NONE, Command::new("/bin/sh").args(["-c", "sleep 600 & sleep 600 & wait"])).unwrap();
        let pgid = group.pid();
        group.kill();
        assert!(!group_running(pgid));
    }

    #[test]
    fn missing_programs_map_to_file_not_found() {
        let err = Group::spawn(Scope::NONE, &mut Command::new("/nonexistent/program")).unwrap_err();
        assert_eq!(spawn_status(&err), Status::ERROR_FILE_NOT_FOUND);
    }
}
