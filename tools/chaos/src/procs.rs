//! Processes: the monotonic clock, /proc scans, commands run with a hard time limit, and entering
//! a node's network namespace.

use anyhow::{Context, Result, anyhow};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

/// CLOCK_MONOTONIC in ns: the one clock every node and the witness share (a node restarted in a
/// time namespace corrects for its offset itself).
pub fn mono_ns() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(t) => {
            let ns = i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec());
            u64::try_from(ns).unwrap_or(0)
        }
        Err(_) => 0,
    }
}

/// Pids of every process, as /proc lists them.
pub fn all_pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten().filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok())).collect()
}

/// Whether `pid` runs: it exists and is not a zombie waiting to be reaped.
pub fn live(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// The arguments of `pid`.
pub fn cmdline(pid: i32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect())
}

/// Whether the environment of `pid` holds every one of `vars` (`NAME=value`).
pub fn environ_has(pid: i32, vars: &[String]) -> bool {
    let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else { return false };
    vars.iter().all(|v| env.split(|b| *b == 0).any(|e| e == v.as_bytes()))
}

/// Live processes whose environment holds every one of `vars`.
pub fn pids_with_env(vars: &[String]) -> Vec<i32> {
    let me = i32::try_from(std::process::id()).unwrap_or(0);
    all_pids().into_iter().filter(|p| *p != me && environ_has(*p, vars) && live(*p)).collect()
}

/// SIGKILLs every live process whose environment holds `vars` until none is left (a process may
/// fork while it is being killed), for at most `limit`. Returns whether none is left.
pub fn kill_all_with_env(vars: &[String], limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let pids = pids_with_env(vars);
        if pids.is_empty() {
            return true;
        }
        for p in &pids {
            // Thawed first, so that a stopped process is not left stopped if the kill fails.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*p), nix::sys::signal::Signal::SIGCONT);
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*p), nix::sys::signal::Signal::SIGKILL);
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        // Nothing announces another process's death: poll, with the deadline above.
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Makes `cmd` run in the network namespace `netns` (a file under /run/netns), and die with the
/// thread that started it, so that nothing outlives the runner.
pub fn prepare(cmd: &mut Command, netns: Option<&Path>) -> Result<()> {
    let ns = match netns {
        Some(path) => Some(std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?),
        None => None,
    };
    // SAFETY: between fork and exec only setns(2) and prctl(2) run: plain system calls, safe in a
    // forked child of a threaded process; nothing allocates.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(ns) = &ns {
                nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
            }
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
    Ok(())
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Its exit status, None if it was killed (time limit, or a signal).
    pub code: Option<i32>,
    /// Killed at the time limit.
    pub timed_out: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Outcome {
    /// Exit status 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// The last line of its error output (or what stopped it).
    pub fn error(&self) -> String {
        if self.timed_out {
            return "killed at the time limit".into();
        }
        let last = self.stderr.trim().lines().last().unwrap_or("").to_string();
        if last.is_empty() { format!("exit status {:?}", self.code) } else { last }
    }
}

/// Runs `cmd` to its end, SIGKILLing it after `limit` (a client stuck on a frozen node must not
/// stall the run).
pub fn run_limited(cmd: &mut Command, limit: Duration) -> Result<Outcome> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("starting {:?}", cmd.get_program()))?;
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).map_err(|_| anyhow!("pid out of range"))?);
    let mut out = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let mut err = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let (tx, rx) = std::sync::mpsc::channel::<std::io::Result<ExitStatus>>();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let mut timed_out = false;
    let status = match rx.recv_timeout(limit) {
        Ok(s) => s,
        Err(_) => {
            timed_out = true;
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            rx.recv().map_err(|_| anyhow!("lost the wait of {pid}"))?
        }
    };
    let status = status.context("waiting for a command")?;
    let stdout = reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    Ok(Outcome { code: if timed_out { None } else { status.code() }, timed_out, stdout, stderr })
}

/// Runs a command that must succeed quickly (setting up namespaces, links, mounts).
pub fn must(program: &str, args: &[&str]) -> Result<()> {
    let out =
        Command::new(program).args(args).stdin(Stdio::null()).output().with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        return Err(anyhow!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

/// Whether `program` is on PATH.
pub fn installed(program: &str) -> bool {
    std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file())).unwrap_or(false)
}

/// The effective uid is root.
pub fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_past_its_limit_is_killed_and_says_so() {
        let out = run_limited(Command::new("sleep").arg("30"), Duration::from_millis(200)).unwrap();
        assert!(out.timed_out && !out.ok(), "{out:?}");
        let out = run_limited(Command::new("sh").args(["-c", "echo hi; echo no >&2; exit 3"]), Duration::from_secs(10))
            .unwrap();
        assert_eq!((out.code, out.stdout.as_str(), out.error().as_str()), (Some(3), "hi\n", "no"));
    }

    #[test]
    fn the_clock_moves_forward() {
        let a = mono_ns();
        let b = mono_ns();
        assert!(a > 0 && b >= a);
    }
}
