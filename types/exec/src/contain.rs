//! Containment: every process a resource starts goes where halo can kill it as a whole, even
//! after the host that started it has died (a failover cluster must never run two copies).
//!
//! - **cgroup v2** (preferred; systemd's `KillMode=control-group`): the parent side owns a
//!   directory for its hosts (`<cgroup2 mount>/halo/<pid>.<n>`), and each resource's children are
//!   placed in `<that>/r<resource id>` before they exec, so a double fork, `setsid` or `nohup`
//!   cannot leave it. Killing uses `cgroup.kill` where the kernel has it (5.14+), else SIGKILL to
//!   every pid in `cgroup.procs` until it is empty.
//! - **process groups** (fallback, where cgroup v2 is not mounted or not writable): the process
//!   group of each child is recorded, and reported to the parent through the hook given to
//!   [`contain`], and those groups are killed. A daemon that leaves its group (`setsid`) escapes
//!   this fallback, and a recorded group id could in principle be reused once its group is gone.

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How long a kill may take before it is reported as incomplete.
pub const KILL_LIMIT: Duration = Duration::from_secs(5);

/// Where cgroup v2 is mounted, from `/proc/self/mountinfo` (`/sys/fs/cgroup` on a pure-v2
/// system, `/sys/fs/cgroup/unified` in the hybrid layout).
pub fn cgroup2_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        // id parent major:minor root mount-point options [optional fields] - fstype source options
        let (left, right) = line.split_once(" - ")?;
        if right.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        left.split_whitespace().nth(4).map(|p| PathBuf::from(unescape_mount(p)))
    })
}

/// mountinfo writes space, tab, newline and backslash as octal escapes (`\040`).
fn unescape_mount(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal =
            bytes.get(i + 1..i + 4).filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                out.push(d.iter().fold(0u8, |n, b| n.wrapping_mul(8).wrapping_add(b - b'0')));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn cgroup_pids(dir: &Path) -> io::Result<Vec<i32>> {
    let text = std::fs::read_to_string(dir.join("cgroup.procs"))?;
    Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// Kills every process in the cgroup `dir` and waits, up to `limit`, until it holds none. A
/// missing directory is empty. Returns whether it is empty.
pub fn kill_cgroup(dir: &Path, limit: Duration) -> bool {
    if !dir.is_dir() {
        return true;
    }
    // cgroup.kill kills atomically, forks included; without it, every pid is killed until none
    // is left (a process forking meanwhile is caught by the next round).
    let atomic = std::fs::write(dir.join("cgroup.kill"), "1").is_ok();
    let deadline = Instant::now() + limit;
    loop {
        let pids = match cgroup_pids(dir) {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return true,
            Err(_) => return false,
        };
        if pids.is_empty() {
            return true;
        }
        if !atomic {
            for pid in pids {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        if Instant::now() >= deadline {
            return false;
        }
        // SIGKILL completes asynchronously and nothing signals it for foreign processes.
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Kills what is left in the cgroup `dir`, then removes it. Returns whether it is gone.
pub fn remove_cgroup(dir: &Path) -> bool {
    kill_cgroup(dir, KILL_LIMIT);
    match std::fs::remove_dir(dir) {
        Ok(()) => true,
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    }
}

/// SIGKILLs every process group in `groups` that still runs and waits, up to `limit`, until none
/// of their members does. Returns whether they are all gone.
pub fn kill_groups(groups: &[u32], limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    for g in groups {
        if let Ok(pgid) = i32::try_from(*g) {
            // ESRCH: already gone.
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }
    loop {
        let left = groups.iter().any(|g| crate::group_running(*g));
        if !left {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        // As above: nothing signals the death of a process that is not our child.
        std::thread::sleep(Duration::from_millis(2));
    }
}

type GroupHook = Box<dyn Fn(u64, u32) + Send + Sync>;

/// What the host set up for this process.
struct Setup {
    /// The parent's directory for this host's resources, when cgroup v2 is in use.
    root: Option<PathBuf>,
    /// Tells the parent a group a resource started (the fallback's record outlives the host).
    report_group: GroupHook,
}

static SETUP: OnceLock<Setup> = OnceLock::new();
/// The fallback's record: process groups each resource started, until they are killed.
static GROUPS: Mutex<BTreeMap<u64, Vec<u32>>> = Mutex::new(BTreeMap::new());

fn groups() -> MutexGuard<'static, BTreeMap<u64, Vec<u32>>> {
    GROUPS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sets up containment for this process (the host calls it once, before opening resources):
/// resources' children go in `<cgroup_root>/r<id>`, or, without a root, have their process group
/// recorded and passed to `report_group(resource id, pgid)`. False if it was set up already.
pub fn contain(cgroup_root: Option<PathBuf>, report_group: impl Fn(u64, u32) + Send + Sync + 'static) -> bool {
    SETUP.set(Setup { root: cgroup_root, report_group: Box::new(report_group) }).is_ok()
}

/// The cgroup of resource `id` under `root`.
pub fn resource_cgroup(root: &Path, id: u64) -> PathBuf {
    root.join(format!("r{id}"))
}

/// Whose child processes these are: a resource's (contained), or no one's (the type's own
/// helpers, such as reading an agent's meta-data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    resource: Option<u64>,
}

/// How a child was placed, for [`Scope::started`].
pub(crate) enum Placement {
    Cgroup,
    Group,
}

impl Scope {
    /// Not a resource's: not contained.
    pub const NONE: Scope = Scope { resource: None };

    /// The processes of resource `id` (its `ResourceHandle`).
    pub const fn resource(id: u64) -> Scope {
        Scope { resource: Some(id) }
    }

    fn cgroup(&self) -> Option<PathBuf> {
        let root = SETUP.get()?.root.as_ref()?;
        Some(resource_cgroup(root, self.resource?))
    }

    /// Arranges for the child of `command` to join this scope's cgroup before it execs.
    pub(crate) fn prepare(&self, command: &mut Command) -> Placement {
        let Some(dir) = self.cgroup() else { return Placement::Group };
        if let Err(e) = std::fs::create_dir(&dir)
            && e.kind() != io::ErrorKind::AlreadyExists
        {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot create the resource's cgroup; recording process groups instead");
            return Placement::Group;
        }
        let Ok(procs) = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes()) else {
            return Placement::Group;
        };
        // Runs between fork and exec, so it makes only async-signal-safe calls (open, write,
        // close) on a path prepared before the fork, and allocates nothing.
        let join = move || {
            // SAFETY: a valid NUL-terminated path and a one-byte buffer that outlive the calls.
            let fd = unsafe { nix::libc::open(procs.as_ptr(), nix::libc::O_WRONLY | nix::libc::O_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // "0" moves the writing process itself.
            // SAFETY: as above.
            let written = unsafe { nix::libc::write(fd, b"0".as_ptr().cast(), 1) };
            let error = io::Error::last_os_error();
            // SAFETY: fd is ours and open.
            unsafe { nix::libc::close(fd) };
            if written == 1 { Ok(()) } else { Err(error) }
        };
        // SAFETY: `join` is async-signal-safe (see above).
        unsafe { command.pre_exec(join) };
        Placement::Cgroup
    }

    /// Records a child started in a process group of its own, when it is not in a cgroup.
    pub(crate) fn started(&self, placement: Placement, pgid: u32) {
        let (Placement::Group, Some(id)) = (placement, self.resource) else { return };
        groups().entry(id).or_default().push(pgid);
        if let Some(setup) = SETUP.get() {
            (setup.report_group)(id, pgid);
        }
    }

    /// Kills every process this resource started (and still runs), and waits until they are
    /// gone: after an offline or a terminate, nothing of the resource may keep running. The
    /// cgroup itself stays until the resource is closed. Returns whether everything is gone.
    pub fn empty(&self) -> bool {
        let Some(id) = self.resource else { return true };
        let recorded = groups().remove(&id).unwrap_or_default();
        let groups_gone = recorded.is_empty() || kill_groups(&recorded, KILL_LIMIT);
        let cgroup_empty = self.cgroup().is_none_or(|dir| kill_cgroup(&dir, KILL_LIMIT));
        groups_gone && cgroup_empty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape_mount(r"/sys/fs/cgroup/unified"), "/sys/fs/cgroup/unified");
        assert_eq!(unescape_mount(r"/mnt/a\040b\134c"), r"/mnt/a b\c");
    }
}
