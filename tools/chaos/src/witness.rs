//! The witness resource: a `script` resource whose script (`witness.sh` in the run directory)
//! runs `halo-chaos witness`. Each online, offline and terminate appends a `begin` line before it
//! acts and an `end` line after, with CLOCK_MONOTONIC (node, group, epoch, action, destination),
//! to `witness.log` in the run directory: outside every node's data directory, opened with
//! O_APPEND so that lines of concurrent calls never mix.
//!
//! An online leaves a marker process running (`halo-chaos hold RUN NODE GROUP EPOCH`, which only
//! waits) until the offline or terminate kills it; the health checks look for it. So what runs
//! can be checked too: at any time, no two nodes may run a marker of one group, and at the end
//! the only marker of a group runs on its owner.

use crate::history::MarkerSeen;
use crate::procs::{cmdline, live, mono_ns};
use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The witness log's file name in the run directory.
pub const LOG: &str = "witness.log";
/// The private property of each witness resource that names its group.
pub const GROUP_PROPERTY: &str = "WitnessGroup";
/// Environment of every process of a node: the run's id.
pub const ENV_RUN: &str = "HALO_CHAOS_RUN";
/// Environment of every process of a node: the node's name.
pub const ENV_NODE: &str = "HALO_CHAOS_NODE";
/// Environment of every process of a node: how far its monotonic clock is ahead (seconds).
pub const ENV_OFFSET: &str = "HALO_CHAOS_MONO_OFFSET";

/// One line of the witness log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// The node the call ran on.
    pub node: String,
    /// The group of the witness.
    pub group: String,
    /// The witness resource.
    pub resource: String,
    /// `online`, `offline` or `terminate`.
    pub action: String,
    /// `begin` (before it acts) or `end` (after).
    pub phase: String,
    /// CLOCK_MONOTONIC of the machine, ns.
    pub t: u64,
    /// HALO_EPOCH, when the node passed one.
    pub epoch: Option<u64>,
    /// The marker process (online end: started; offline/terminate end: killed).
    pub pid: Option<i32>,
    /// HALO_DESTINATION_NODE: an offline that is part of a move.
    pub dest: Option<String>,
    /// The flag names the call received.
    pub flags: String,
    /// The action did what it should.
    pub ok: bool,
}

/// Reads a witness log (a line cut short by a kill at the wrong moment is skipped).
pub fn read(path: &Path) -> Result<Vec<Line>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(anyhow!("reading {}: {e}", path.display())),
    };
    Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
}

/// Writes `witness.sh` into `dir`: it runs `exe witness --dir DIR ENTRY`.
pub fn write_script(dir: &Path, exe: &Path) -> Result<PathBuf> {
    let quote = |p: &Path| -> Result<String> {
        let s = p.display().to_string();
        if s.contains('\'') {
            bail!("{s}: a path with a single quote cannot go into the witness script");
        }
        Ok(format!("'{s}'"))
    };
    let path = dir.join("witness.sh");
    std::fs::write(&path, format!("#!/bin/sh\nexec {} witness --dir {} \"$@\"\n", quote(exe)?, quote(dir)?))
        .with_context(|| format!("writing {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `halo-chaos witness ENTRY`: what the script runs. Returns the exit status.
pub fn main(dir: &Path, entry: &str) -> Result<i32> {
    let offset_ns = env(ENV_OFFSET).and_then(|o| o.parse::<u64>().ok()).unwrap_or(0).saturating_mul(1_000_000_000);
    // The node's clock may run ahead of the machine's (a time namespace): the log uses the
    // machine's.
    let now = || mono_ns().saturating_sub(offset_ns);
    let start = now();
    let node = env(ENV_NODE).ok_or_else(|| anyhow!("{ENV_NODE} is not set: not run by a chaos node"))?;
    let run = env(ENV_RUN).ok_or_else(|| anyhow!("{ENV_RUN} is not set: not run by a chaos node"))?;
    let group = env(&format!("HALO_PROP_{GROUP_PROPERTY}"))
        .ok_or_else(|| anyhow!("the witness resource has no {GROUP_PROPERTY} property"))?;
    let state = dir.join("state").join(&node);
    let pidfile = state.join(format!("{group}.pid"));
    let mut line = Line {
        node: node.clone(),
        group: group.clone(),
        resource: env("HALO_RESOURCE_NAME").unwrap_or_default(),
        action: entry.to_string(),
        phase: "begin".into(),
        t: start,
        epoch: env("HALO_EPOCH").and_then(|e| e.parse().ok()),
        pid: None,
        dest: env("HALO_DESTINATION_NODE"),
        flags: env("HALO_ONLINE_FLAG_NAMES").or_else(|| env("HALO_OFFLINE_FLAG_NAMES")).unwrap_or_default(),
        ok: true,
    };
    match entry {
        "online" => {
            append(dir, &line)?;
            std::fs::create_dir_all(&state)?;
            let epoch = line.epoch.map_or_else(|| "-".to_string(), |e| e.to_string());
            let spawned = std::process::Command::new(std::env::current_exe()?)
                .args(["hold", &run, &node, &group, &epoch])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn();
            match spawned {
                Ok(child) => {
                    let pid = i32::try_from(child.id()).unwrap_or(0);
                    let tmp = state.join(format!("{group}.pid.tmp"));
                    std::fs::write(&tmp, pid.to_string())?;
                    std::fs::rename(&tmp, &pidfile)?;
                    line.pid = Some(pid);
                }
                Err(_) => line.ok = false,
            }
            line.phase = "end".into();
            line.t = now();
            append(dir, &line)?;
            Ok(if line.ok { 0 } else { 1 })
        }
        "offline" | "terminate" => {
            append(dir, &line)?;
            if let Some(pid) = marker_pid(&pidfile, &run, &node, &group) {
                line.pid = Some(pid);
                line.ok = kill_and_wait(pid, Duration::from_secs(5));
            }
            let _ = std::fs::remove_file(&pidfile);
            line.phase = "end".into();
            line.t = now();
            append(dir, &line)?;
            Ok(if line.ok { 0 } else { 1 })
        }
        "looks-alive" | "is-alive" => Ok(if marker_pid(&pidfile, &run, &node, &group).is_some() { 0 } else { 1 }),
        _ => Ok(0),
    }
}

/// The marker named by `pidfile`, if it runs and is this node's marker of this group.
fn marker_pid(pidfile: &Path, run: &str, node: &str, group: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    let args = cmdline(pid)?;
    let ours = args.get(1..5).is_some_and(|a| a[0] == "hold" && a[1] == run && a[2] == node && a[3] == group);
    (ours && live(pid)).then_some(pid)
}

fn kill_and_wait(pid: i32, limit: Duration) -> bool {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    let deadline = Instant::now() + limit;
    // Another process's death cannot be awaited (the marker is not our child): poll, bounded.
    while live(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

fn append(dir: &Path, line: &Line) -> Result<()> {
    let mut bytes = serde_json::to_vec(line)?;
    bytes.push(b'\n');
    let path = dir.join(LOG);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    // One write of a short line with O_APPEND: never interleaved with another process's.
    file.write_all(&bytes).with_context(|| format!("appending to {}", path.display()))?;
    Ok(())
}

/// `halo-chaos hold ...`: the marker process; it waits until it is killed.
pub fn hold() -> ! {
    loop {
        nix::unistd::pause();
    }
}

/// The marker processes of run `run` now running.
pub fn markers(run: &str) -> Vec<MarkerSeen> {
    crate::procs::all_pids()
        .into_iter()
        .filter_map(|pid| {
            let args = cmdline(pid)?;
            if args.len() < 6 || args[1] != "hold" || args[2] != run || !live(pid) {
                return None;
            }
            Some(MarkerSeen { pid, node: args[3].clone(), group: args[4].clone(), epoch: args[5].clone() })
        })
        .collect()
}
