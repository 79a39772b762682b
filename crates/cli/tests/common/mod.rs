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
