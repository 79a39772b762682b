//! A complete resource type written in Rust against the contract, driven the way the host drives
//! it: open → online (pending, checkpoints from a worker) → offline_v2 → close, and terminate
//! cancelling a pending online. README's "write a resource type (Rust)" points here.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

use resapi::{
    Callbacks, ExitState, FailureType, LogLevel, Monitor, OfflineFlags, OnlineFlags, OpenFlags, OpenRequest,
    Parameters, PendingWorker, PropertyList, Resource, ResourceHandle, ResourceState, ResourceStatusEx, ResourceType,
    Status, ValueData,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

// ---- the resource type ----

/// Warms a cache in `Steps` steps before it is online.
struct CacheType;

struct Cache {
    callbacks: Callbacks,
    parameters: Parameters,
    online: Arc<AtomicBool>,
    worker: PendingWorker,
    last_offline: Mutex<Option<(Option<String>, OfflineFlags)>>,
}

impl ResourceType for CacheType {
    fn open(&self, request: OpenRequest) -> Result<Box<dyn Resource>, Status> {
        if request.parameters.with(|p| p.get_dword("Steps")).is_none() {
            return Err(Status::ERROR_INVALID_PARAMETER);
        }
        Ok(Box::new(Cache {
            callbacks: request.callbacks,
            parameters: request.parameters,
            online: Arc::new(AtomicBool::new(false)),
            worker: PendingWorker::default(),
            last_offline: Mutex::new(None),
        }))
    }
}

impl Cache {
    fn stop_worker(&self) {
        self.worker.stop();
    }
}

impl Resource for Cache {
    fn online_v2(&self, _flags: OnlineFlags, _input: &[u8]) -> Status {
        let steps = self.parameters.with(|p| p.get_dword("Steps")).unwrap_or(1);
        let (callbacks, online) = (self.callbacks.clone(), self.online.clone());
        self.worker.start("cache-online", move |ctx| {
            for checkpoint in 1..=steps {
                if ctx.check_terminate() {
                    return 1;
                }
                let report = ResourceStatusEx::new(ResourceState::OnlinePending, checkpoint);
                if callbacks.set_resource_status_ex(report) == ExitState::Terminate {
                    return 1;
                }
            }
            online.store(true, Ordering::SeqCst);
            callbacks.set_resource_status_ex(ResourceStatusEx::new(ResourceState::Online, steps + 1));
            0
        })
    }

    fn offline_v2(&self, destination: Option<&str>, flags: OfflineFlags, _input: &[u8]) -> Status {
        self.stop_worker();
        self.online.store(false, Ordering::SeqCst);
        *self.last_offline.lock().unwrap() = Some((destination.map(str::to_string), flags));
        self.callbacks.log_event(LogLevel::Information, &format!("offline to {destination:?} with {flags}"));
        Status::ERROR_SUCCESS
    }

    fn terminate(&self) {
        self.stop_worker();
        self.online.store(false, Ordering::SeqCst);
    }

    fn looks_alive(&self) -> bool {
        self.online.load(Ordering::SeqCst)
    }

    fn is_alive(&self) -> bool {
        self.online.load(Ordering::SeqCst)
    }
}

// ---- a recording monitor, standing in for the host ----

#[derive(Default)]
struct Host {
    reports: Mutex<Vec<ResourceStatusEx>>,
    logs: Mutex<Vec<String>>,
    changed: Condvar,
    terminated: AtomicBool,
}

impl Monitor for Host {
    fn set_resource_status_ex(&self, _h: ResourceHandle, status: ResourceStatusEx) -> ExitState {
        self.reports.lock().unwrap().push(status);
        self.changed.notify_all();
        if self.terminated.load(Ordering::SeqCst) { ExitState::Terminate } else { ExitState::Continue }
    }
    fn log_event(&self, _h: ResourceHandle, _level: LogLevel, message: &str) {
        self.logs.lock().unwrap().push(message.to_string());
    }
    fn set_resource_locked_mode(&self, _h: ResourceHandle, _locked: bool, _reason: u32) {}
    fn signal_failure(&self, _h: ResourceHandle, _failure: FailureType, _code: u32) {}
    fn set_in_memory_node_local_properties(&self, _h: ResourceHandle, _p: PropertyList) -> Status {
        Status::ERROR_SUCCESS
    }
}

fn open(host: &Arc<Host>, steps: u32) -> Box<dyn Resource> {
    CacheType
        .open(OpenRequest {
            name: "cache".into(),
            parameters: Parameters::new(PropertyList::new().with("Steps", ValueData::Dword(steps))),
            callbacks: Callbacks::new(ResourceHandle(1), host.clone()),
            flags: OpenFlags::empty(),
        })
        .unwrap()
}

#[test]
fn pending_online_reports_increasing_checkpoints_then_online() {
    let host = Arc::new(Host::default());
    let cache = open(&host, 3);
    assert_eq!(cache.online_v2(OnlineFlags::empty(), &[]), Status::ERROR_IO_PENDING);
    let reports = host.reports.lock().unwrap();
    let reports = host
        .changed
        .wait_timeout_while(reports, Duration::from_secs(60), |r| {
            r.last().is_none_or(|s| s.state != ResourceState::Online)
        })
        .unwrap()
        .0
        .clone();
    let seen: Vec<_> = reports.iter().map(|s| (s.state, s.checkpoint)).collect();
    assert_eq!(
        seen,
        [
            (ResourceState::OnlinePending, 1),
            (ResourceState::OnlinePending, 2),
            (ResourceState::OnlinePending, 3),
            (ResourceState::Online, 4)
        ]
    );
    assert!(cache.is_alive());

    let flags = OfflineFlags::from_raw(0x40).unwrap();
    assert_eq!(cache.offline_v2(Some("node-2"), flags, &[]), Status::ERROR_SUCCESS);
    assert!(!cache.looks_alive());
    assert_eq!(
        host.logs.lock().unwrap().last().map(String::as_str),
        Some("offline to Some(\"node-2\") with 0x40 (DO_NOT_UPDATE_PERSISTENT_STATE)")
    );
    cache.close();
}

#[test]
fn terminate_cancels_a_pending_online() {
    let host = Arc::new(Host::default());
    host.terminated.store(true, Ordering::SeqCst);
    let cache = open(&host, 1_000_000);
    assert_eq!(cache.online_v2(OnlineFlags::empty(), &[]), Status::ERROR_IO_PENDING);
    cache.terminate();
    assert!(host.reports.lock().unwrap().len() <= 1, "the worker stopped on ExitState::Terminate");
    assert!(!cache.is_alive());
}

#[test]
fn open_refuses_missing_properties() {
    let host = Arc::new(Host::default());
    let err = CacheType
        .open(OpenRequest {
            name: "cache".into(),
            parameters: Parameters::default(),
            callbacks: Callbacks::new(ResourceHandle(2), host),
            flags: OpenFlags::empty(),
        })
        .err();
    assert_eq!(err, Some(Status::ERROR_INVALID_PARAMETER));
}
