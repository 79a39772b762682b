//! Shared by the host tests: a manager running the real `halo host`, and an event log that
//! tests await.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

use halo_host::client::{HostCommand, HostEvent, HostManager, OpenSpec};
use halo_host::protocol::{Cause, FromHost, ResourceId, Timeouts, TypeSpec};
use resapi::{PropertyList, ResourceState, ValueData};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

pub fn manager() -> (HostManager, Events) {
    let command = HostCommand { program: env!("CARGO_BIN_EXE_halo").into(), args: vec!["host".into()] };
    let (m, rx) = HostManager::new(command);
    (m, Events { rx, seen: Vec::new(), taken: Vec::new() })
}

/// Every event received so far, and a way to await the next ones.
pub struct Events {
    pub rx: UnboundedReceiver<HostEvent>,
    pub seen: Vec<(Instant, HostEvent)>,
    /// Indexes into `seen` that `until` already returned.
    taken: Vec<usize>,
}

impl Events {
    /// The first event matching `done` that no earlier call returned — already received or
    /// awaited now (a generous bound guards a hung test). Events from different resources may
    /// arrive in any order, so earlier ones are searched first.
    pub async fn until(&mut self, what: &str, done: impl Fn(&HostEvent) -> bool) -> HostEvent {
        if let Some(i) = (0..self.seen.len()).find(|i| !self.taken.contains(i) && done(&self.seen[*i].1)) {
            self.taken.push(i);
            return self.seen[i].1.clone();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(e)) => {
                    self.seen.push((Instant::now(), e.clone()));
                    if done(&e) {
                        self.taken.push(self.seen.len() - 1);
                        return e;
                    }
                }
                _ => panic!("no event {what}; seen: {:#?}", self.seen.iter().map(|(_, e)| e).collect::<Vec<_>>()),
            }
        }
    }

    /// The next event to arrive before `deadline` (recorded in `seen`), or None once it passes.
    pub async fn next_before(&mut self, deadline: tokio::time::Instant) -> Option<HostEvent> {
        match tokio::time::timeout_at(deadline, self.rx.recv()).await {
            Ok(Some(e)) => {
                self.seen.push((Instant::now(), e.clone()));
                Some(e)
            }
            Ok(None) => panic!("the host manager stopped sending events"),
            Err(_) => None,
        }
    }

    pub async fn state(&mut self, id: ResourceId, want: ResourceState) -> (u32, Cause) {
        match self.until(&format!("{want} of {id}"), |e| is_state(e, id, want)).await {
            HostEvent::Fact(FromHost::State { status, cause, .. }) => (status, cause),
            _ => unreachable!(),
        }
    }

    pub fn states(&self, id: ResourceId) -> Vec<(ResourceState, u32)> {
        self.seen
            .iter()
            .filter_map(|(_, e)| match e {
                HostEvent::Fact(FromHost::State { id: i, state, checkpoint, .. }) if *i == id => {
                    Some((ResourceState::from_raw(*state).unwrap(), *checkpoint))
                }
                _ => None,
            })
            .collect()
    }

    pub fn logs(&self, id: ResourceId) -> Vec<String> {
        self.seen
            .iter()
            .filter_map(|(_, e)| match e {
                HostEvent::Fact(FromHost::Log { id: i, message, .. }) if *i == id => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn when(&self, matches: impl Fn(&HostEvent) -> bool) -> Instant {
        self.seen.iter().find(|(_, e)| matches(e)).map(|(t, _)| *t).expect("event seen")
    }
}

pub fn is_state(e: &HostEvent, id: ResourceId, want: ResourceState) -> bool {
    matches!(e, HostEvent::Fact(FromHost::State { id: i, state, .. }) if *i == id && *state == want.raw())
}

pub fn timeouts() -> Timeouts {
    Timeouts::default()
}

pub fn dummy(id: ResourceId, props: &[(&str, &str)], timeouts: Timeouts) -> OpenSpec {
    let mut list = PropertyList::new();
    for (k, v) in props {
        list.set(k, ValueData::Sz(v.to_string()));
    }
    OpenSpec {
        id,
        name: format!("dummy-{id}"),
        type_spec: TypeSpec::Dummy,
        properties: list,
        flags: 0,
        timeouts,
        separate_monitor: false,
    }
}

/// A spec for any type, with string properties.
pub fn spec(id: ResourceId, type_spec: TypeSpec, props: &[(&str, &str)]) -> OpenSpec {
    OpenSpec { type_spec, ..dummy(id, props, timeouts()) }
}

/// Compiles the C sample plug-in into `dir`; returns the .so path.
pub fn compile_sample(dir: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = dir.join("libhalo_sample.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(cc)
        .args(["-shared", "-fPIC", "-pthread", "-I"])
        .arg(root.join("include"))
        .arg(root.join("examples/native/sample_resource.c"))
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    out.display().to_string()
}

/// A marker no other test shares, for counting the processes one test started.
pub fn unique_mark(what: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("halo-{what}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Live (not zombie) processes named `comm` whose environment holds `mark`.
pub fn count_marked(comm: &str, mark: &str) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    dir.flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
        .filter(|e| {
            let p = e.path();
            let live = std::fs::read_to_string(p.join("stat"))
                .ok()
                .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
                .unwrap_or(false);
            let named = std::fs::read_to_string(p.join("comm")).is_ok_and(|c| c.trim() == comm);
            let marked = std::fs::read(p.join("environ")).is_ok_and(|env| {
                env.split(|b| *b == 0).any(|var| var.windows(mark.len()).any(|w| w == mark.as_bytes()))
            });
            live && named && marked
        })
        .count()
}

/// Waits until `count_marked` reaches `n` (processes start and die asynchronously and nothing
/// can be awaited for a foreign process, so /proc is polled against a deadline).
pub fn wait_marked(comm: &str, mark: &str, n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let c = count_marked(comm, mark);
        if c == n || Instant::now() >= deadline {
            return c;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An OCF root holding `halotest:daemon`, an agent whose daemon is `sleep 1000` started in the
/// background with a pidfile (as real agents start theirs); monitor checks the pid, stop kills it.
pub fn daemon_agent(dir: &Path) -> String {
    let agents = dir.join("resource.d/halotest");
    std::fs::create_dir_all(&agents).unwrap();
    let path = agents.join("daemon");
    std::fs::write(
        &path,
        r#"#!/bin/sh
pidfile="$OCF_RESKEY_pidfile"
# A zombie is not running (nothing may reap orphans where PID 1 does not).
running() {
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    [ -n "$pid" ] && [ -r /proc/$pid/stat ] || return 1
    [ "$(cut -d' ' -f3 /proc/$pid/stat)" != Z ]
}
case "$1" in
meta-data) cat <<'XML'
<?xml version="1.0"?>
<resource-agent name="daemon" version="1.0"><version>1.1</version>
<parameters>
<parameter name="pidfile" required="1"><content type="string"/></parameter>
<parameter name="mark"><content type="string"/></parameter>
</parameters>
<actions><action name="start" timeout="20s"/><action name="stop" timeout="20s"/>
<action name="monitor" timeout="20s" interval="10s"/><action name="meta-data" timeout="5s"/></actions>
</resource-agent>
XML
    exit 0 ;;
start) running && exit 0; sleep 1000 & echo $! > "$pidfile"; exit 0 ;;
stop) running && kill "$(cat "$pidfile")"; rm -f "$pidfile"; exit 0 ;;
monitor) running && exit 0; exit 7 ;;
*) exit 3 ;;
esac
"#,
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir.display().to_string()
}

/// Polls `check` (a condition on other processes, which cannot be awaited) until it holds, and
/// fails the test naming `what` after `limit`.
pub fn until<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Running, as opposed to gone or a zombie waiting to be reaped.
pub fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z"))
}

/// The `Arguments` of a `process` resource running `/bin/sh` that logs each start to `log`
/// ("<Unix ns> <pid>", read back with [`starts`]) and then sleeps.
pub fn logged_sleeper_arguments(log: &Path) -> String {
    format!("Arguments=-c 'echo \"$(date +%s%N) $$\" >> {}; exec sleep 600'", log.display())
}

/// The starts [`logged_sleeper_arguments`] logged: (Unix ns, pid), oldest first.
pub fn starts(log: &Path) -> Vec<(u128, i32)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut p = l.split(' ');
            Some((p.next()?.parse().ok()?, p.next()?.parse().ok()?))
        })
        .collect()
}
