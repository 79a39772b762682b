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

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use resapi::Status;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
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
    resapi::epoch(input)
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

/// One output pipe of a program being run, and what was read from it.
struct Output {
    file: File,
    kept: Vec<u8>,
    open: bool,
}

impl Output {
    fn new(fd: OwnedFd) -> Output {
        Output { file: File::from(fd), kept: Vec::new(), open: true }
    }

    /// Reads once; false at the end of the stream, or when nothing is there (non-blocking).
    fn read_some(&mut self) -> bool {
        let mut buf = [0u8; 8192];
        match self.file.read(&mut buf) {
            Ok(0) => {
                self.open = false;
                false
            }
            Ok(n) => {
                self.kept.extend_from_slice(&buf[..n]);
                if self.kept.len() > 2 * OUTPUT_KEEP {
                    self.kept.drain(..self.kept.len() - OUTPUT_KEEP);
                }
                true
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
            Err(e) => {
                if e.kind() != io::ErrorKind::WouldBlock {
                    self.open = false;
                }
                false
            }
        }
    }

    /// What is in the pipe now, without waiting for its end: a daemon the program left behind
    /// may hold it open for ever.
    fn read_rest(&mut self) {
        if !self.open {
            return;
        }
        if fcntl(self.file.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).is_err() {
            return;
        }
        while self.read_some() {}
    }

    fn text(&self) -> String {
        let start = self.kept.len().saturating_sub(OUTPUT_KEEP);
        String::from_utf8_lossy(&self.kept[start..]).into_owned()
    }
}

/// Which of a program's outputs to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Standard output and standard error.
    Both,
    /// Standard error only (standard output is discarded).
    Stderr,
}

/// Runs `command` in its own process group, contained in `scope`, until it exits, and keeps the
/// end of its output. Only on `timeout`, or when `cancelled` (polled every 50 ms) returns true,
/// is its group killed: what it started in the background and left running (an agent's daemon)
/// is left alone, as Pacemaker's executor does, and its output is read until the program itself
/// exits, not until every holder of the pipes closes them. The resource's containment ends such
/// daemons when the resource stops.
pub fn run(
    scope: Scope,
    command: &mut Command,
    keep: Keep,
    timeout: Duration,
    mut cancelled: impl FnMut() -> bool,
) -> io::Result<RunOutput> {
    let stdout = if keep == Keep::Both { Stdio::piped() } else { Stdio::null() };
    command.stdin(Stdio::null()).stdout(stdout).stderr(Stdio::piped());
    // The exit must wake the wait below at once: a thread blocks in wait(), then closes this.
    // Close-on-exec, or the program (and its daemons) would hold the signal open.
    let (exit_seen, exit_signal) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let Group { mut child } = Group::spawn(scope, command)?;
    let group = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let mut out = child.stdout.take().map(|p| Output::new(p.into()));
    let mut err = child.stderr.take().map(|p| Output::new(p.into()));
    let (exited_tx, exited) = mpsc::channel();
    thread::spawn(move || {
        let _ = exited_tx.send(child.wait());
        drop(exit_signal);
    });
    let deadline = Instant::now() + timeout;
    let (mut timed_out, mut killed) = (false, false);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if !killed && (left.is_zero() || cancelled()) {
            timed_out = left.is_zero();
            killed = true;
            let _ = killpg(group, Signal::SIGKILL);
        }
        let wait = if killed { CANCEL_POLL } else { left.min(CANCEL_POLL) };
        let wait = PollTimeout::from(u16::try_from(wait.as_millis()).unwrap_or(u16::MAX));
        let (exit_ready, out_ready, err_ready) = {
            let mut fds = vec![PollFd::new(exit_seen.as_fd(), PollFlags::POLLIN)];
            let out_at = open_fd(&out).map(|fd| {
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
                fds.len() - 1
            });
            let err_at = open_fd(&err).map(|fd| {
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
                fds.len() - 1
            });
            match poll(&mut fds, wait) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            let ready = |i: Option<usize>| i.and_then(|i| fds[i].any()).unwrap_or(false);
            (ready(Some(0)), ready(out_at), ready(err_at))
        };
        if out_ready && let Some(o) = out.as_mut() {
            o.read_some();
        }
        if err_ready && let Some(e) = err.as_mut() {
            e.read_some();
        }
        if exit_ready {
            break;
        }
    }
    let status = exited.recv().ok().and_then(Result::ok);
    // What the program wrote before it exited is in the pipes by now.
    out.iter_mut().chain(err.iter_mut()).for_each(Output::read_rest);
    Ok(RunOutput {
        code: status.and_then(|s| s.code()),
        timed_out,
        stdout: out.map(|o| o.text()).unwrap_or_default(),
        stderr: err.map(|e| e.text()).unwrap_or_default(),
    })
}

fn open_fd(output: &Option<Output>) -> Option<std::os::fd::BorrowedFd<'_>> {
    output.as_ref().filter(|o| o.open).map(|o| o.file.as_fd())
}

/// How often `run` asks whether it was cancelled.
const CANCEL_POLL: Duration = Duration::from_millis(50);

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
        // On timeout, the group is killed, a grandchild holding the pipes with it.
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
    fn a_daemon_left_behind_survives_and_does_not_hold_up_the_run() {
        let started = Instant::now();
        // The daemon keeps both pipes open: the run must end when the program exits anyway.
        let out = run(
            Scope::NONE,
            Command::new("/bin/sh").args(["-c", "sleep 600 & echo $!; echo bye >&2"]),
            Keep::Both,
            Duration::from_secs(60),
            || false,
        )
        .unwrap();
        assert!(started.elapsed() < Duration::from_secs(30), "waited {:?}", started.elapsed());
        assert_eq!((out.code, out.timed_out, out.stderr.as_str()), (Some(0), false, "bye\n"));
        let daemon: i32 = out.stdout.trim().parse().unwrap();
        let running = std::fs::read_to_string(format!("/proc/{daemon}/stat"))
            .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')));
        let _ = nix::sys::signal::kill(Pid::from_raw(daemon), Signal::SIGKILL);
        assert!(running, "the daemon was killed when the program exited");
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
