//! The engine on a real cluster database and real hosts: dependency order, parallelism, the
//! restart policy, persistent state across a restart, locked mode, and refused configuration.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

use halo_cluster::ClusterDb;
use halo_engine::events::{Event, EventKind};
use halo_engine::{Engine, OpStatus};
use halo_host::client::{HostCommand, HostManager};
use resapi::{OfflineFlags, Status};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::Receiver;

async fn engine(dir: &Path) -> Arc<Engine> {
    let db = Arc::new(ClusterDb::open(dir, "127.0.0.1:0").await.unwrap());
    let command = HostCommand { program: env!("CARGO_BIN_EXE_halo").into(), args: vec!["host".into()] };
    let (hosts, facts) = HostManager::new(command);
    Engine::start("node-1", db, hosts, facts).await.unwrap()
}

fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Events as they come, searchable in order.
struct Watch {
    rx: Receiver<Event>,
    seen: Vec<Event>,
    cursor: usize,
}

impl Watch {
    fn new(e: &Engine) -> Watch {
        let (past, rx) = e.events().subscribe(0);
        Watch { rx, seen: past, cursor: 0 }
    }

    /// Position of the next event after the cursor matching `f`, waiting for it if needed.
    async fn next(&mut self, what: &str, f: impl Fn(&EventKind) -> bool) -> usize {
        loop {
            if let Some(i) = (self.cursor..self.seen.len()).find(|i| f(&self.seen[*i].kind)) {
                self.cursor = i + 1;
                return i;
            }
            match tokio::time::timeout(Duration::from_secs(60), self.rx.recv()).await {
                Ok(Ok(e)) => self.seen.push(e),
                _ => panic!("no {what}; seen {:#?}", self.seen),
            }
        }
    }

    async fn state(&mut self, resource: &str, state: &str) -> usize {
        self.next(
            &format!("{resource} {state}"),
            |k| matches!(k, EventKind::ResourceState { resource: r, state: s, .. } if r == resource && s == state),
        )
        .await
    }

    /// Position of the first such event from the start, waiting for it if needed.
    async fn first(&mut self, resource: &str, state: &str) -> usize {
        self.any(
            &format!("{resource} {state}"),
            |k| matches!(k, EventKind::ResourceState { resource: r, state: s, .. } if r == resource && s == state),
        )
        .await
    }

    /// Waits until the group's latest state event says `want` (the engine derives a group's
    /// state after its resources' events, so reading it at once would race).
    async fn group(&mut self, group: &str, want: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let latest = self.seen.iter().rev().find_map(|e| match &e.kind {
                EventKind::GroupState { group: g, state } if g == group => Some(state.as_str()),
                _ => None,
            });
            if latest == Some(want) {
                return;
            }
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Ok(e)) => self.seen.push(e),
                _ => panic!("group {group} never {want} (latest {latest:?}); seen {:#?}", self.seen),
            }
        }
    }

    /// Position of the first event matching `f` from the start, waiting for it if needed.
    async fn any(&mut self, what: &str, f: impl Fn(&EventKind) -> bool) -> usize {
        loop {
            if let Some(i) = self.seen.iter().position(|e| f(&e.kind)) {
                return i;
            }
            match tokio::time::timeout(Duration::from_secs(60), self.rx.recv()).await {
                Ok(Ok(e)) => self.seen.push(e),
                _ => panic!("no {what}; seen {:#?}", self.seen),
            }
        }
    }
}

#[tokio::test]
async fn dependencies_order_online_and_offline() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path()).await;
    let mut w = Watch::new(&e);
    e.create_group("web", props(&[])).await.unwrap();
    e.create_resource("disk", "web", "dummy", props(&[]), props(&[("OnlineDelayMs", "100")])).await.unwrap();
    e.create_resource("ip", "web", "dummy", props(&[]), props(&[])).await.unwrap();
    e.create_resource("app", "web", "dummy", props(&[]), props(&[])).await.unwrap();
    e.set_dependencies("app", "[disk] and [ip]").await.unwrap();
    let op = e.online_resource("app", true).await.unwrap();
    assert_eq!(e.wait(op, Duration::from_secs(60)).await.unwrap(), OpStatus::Succeeded);
    let app_online = w.state("app", "Online").await;
    assert!(w.first("disk", "Online").await < app_online, "disk before app");
    assert!(w.first("ip", "Online").await < app_online, "ip before app");
    w.group("web", "Online").await;

    // Offline of a dependency takes its dependent down first.
    let op = e.offline_resource("disk", OfflineFlags::empty(), true).await.unwrap();
    assert_eq!(e.wait(op, Duration::from_secs(60)).await.unwrap(), OpStatus::Succeeded);
    let disk_offline = w.state("disk", "Offline").await;
    assert!(w.first("app", "Offline").await < disk_offline, "app before disk");
    assert_eq!(e.resource("ip").unwrap().state, "Online");
    w.group("web", "PartialOnline").await;
}

#[tokio::test]
async fn independent_resources_come_online_in_parallel() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path()).await;
    let mut w = Watch::new(&e);
    e.create_group("g", props(&[])).await.unwrap();
    for r in ["a", "b", "c"] {
        e.create_resource(r, "g", "dummy", props(&[]), props(&[("OnlineDelayMs", "300")])).await.unwrap();
    }
    let op = e.online_group("g", true).await.unwrap();
    assert_eq!(e.wait(op, Duration::from_secs(60)).await.unwrap(), OpStatus::Succeeded);
    let mut first_online = usize::MAX;
    for r in ["a", "b", "c"] {
        first_online = first_online.min(w.first(r, "Online").await);
    }
    for r in ["a", "b", "c"] {
        assert!(w.first(r, "OnlinePending").await < first_online, "{r} started before any finished");
    }
}

#[tokio::test]
async fn failures_restart_until_the_threshold_then_the_action_decides() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path()).await;
    let mut w = Watch::new(&e);
    e.create_group("g", props(&[])).await.unwrap();
    let common = props(&[("RestartThreshold", "1"), ("RestartDelay", "50"), ("RestartAction", "1")]);
    e.create_resource("r", "g", "dummy", common, props(&[])).await.unwrap();
    let op = e.online_resource("r", true).await.unwrap();
    assert_eq!(e.wait(op, Duration::from_secs(60)).await.unwrap(), OpStatus::Succeeded);
    w.state("r", "Online").await;
    e.fail_resource("r").await.unwrap();
    w.state("r", "Failed").await;
    w.state("r", "Online").await; // restarted after RestartDelay
    e.fail_resource("r").await.unwrap();
    w.state("r", "Failed").await;
    // Threshold 1 within the period: exhausted; RestartAction 1 leaves it failed.
    w.group("g", "Failed").await;
    let op = e.online_resource("r", true).await.unwrap();
    assert_eq!(
        e.wait(op, Duration::from_secs(60)).await.unwrap(),
        OpStatus::Succeeded,
        "an operator's online clears it"
    );

    // RestartAction 2 on one node: stays failed until RetryPeriodOnFailure, then tries again.
    let common = props(&[
        ("RestartThreshold", "0"),
        ("RestartAction", "2"),
        ("RestartPeriod", "100"),
        ("RetryPeriodOnFailure", "300"),
    ]);
    e.create_resource("s", "g", "dummy", common, props(&[])).await.unwrap();
    e.online_resource("s", true).await.unwrap();
    w.state("s", "Online").await;
    e.fail_resource("s").await.unwrap();
    let failed = w.state("s", "Failed").await;
    let back = w.state("s", "Online").await;
    let gap = w.seen[back].time_ms - w.seen[failed].time_ms;
    assert!(gap >= 300, "retried after {gap} ms");
}

#[tokio::test]
async fn what_was_online_comes_back_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = engine(dir.path()).await;
        e.create_group("g", props(&[])).await.unwrap();
        e.create_resource("db", "g", "dummy", props(&[]), props(&[])).await.unwrap();
        e.create_resource("app", "g", "dummy", props(&[]), props(&[])).await.unwrap();
        e.create_resource("spare", "g", "dummy", props(&[]), props(&[])).await.unwrap();
        e.set_dependencies("app", "[db]").await.unwrap();
        let op = e.online_resource("app", true).await.unwrap();
        assert_eq!(e.wait(op, Duration::from_secs(60)).await.unwrap(), OpStatus::Succeeded);
        // A shutdown offline keeps the persistent state.
        assert_eq!(e.shutdown(Duration::from_secs(60)).await.unwrap(), OpStatus::Succeeded);
        assert_eq!(e.resource("app").unwrap().state, "Offline");
        e.stop().await.unwrap();
    }
    let e = engine(dir.path()).await;
    let mut w = Watch::new(&e);
    let app = w.state("app", "Online").await;
    assert!(w.first("db", "Online").await < app);
    assert_eq!(e.resource("spare").unwrap().state, "Offline");
}

#[tokio::test]
async fn locked_resources_refuse_offline_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path()).await;
    let mut w = Watch::new(&e);
    e.create_group("g", props(&[])).await.unwrap();
    e.create_resource("vm", "g", "dummy", props(&[]), props(&[("Locked", "true")])).await.unwrap();
    e.online_resource("vm", true).await.unwrap();
    w.state("vm", "Online").await;
    // Locked mode arrives as its own fact, announced as a StatusInformation change.
    w.any("locked mode", |k| matches!(k, EventKind::Property { name, properties, .. } if name == "vm" && properties[0] == "StatusInformation"))
        .await;
    assert!(e.resource("vm").unwrap().locked);
    let err = e.offline_resource("vm", OfflineFlags::empty(), true).await.unwrap_err();
    assert_eq!(err.status, Status::ERROR_CLUSTER_RESOURCE_LOCKED_STATUS);
    let op = e.offline_resource("vm", OfflineFlags::IGNORE_RESOURCE_STATUS, true).await.unwrap();
    assert_eq!(e.wait(op, Duration::from_secs(60)).await.unwrap(), OpStatus::Succeeded);

    // Deleting an online, locked resource: refused, unless forced — then it goes offline first.
    e.online_resource("vm", true).await.unwrap();
    w.state("vm", "Online").await;
    while !e.resource("vm").unwrap().locked {
        w.next("locked mode", |k| matches!(k, EventKind::Property { name, .. } if name == "vm")).await;
    }
    assert_eq!(e.delete_resource("vm", false).await.unwrap_err().status, Status::ERROR_CLUSTER_RESOURCE_LOCKED_STATUS);
    e.delete_resource("vm", true).await.unwrap();
    let offline = w.state("vm", "Offline").await;
    let deleted = w.any("vm deleted", |k| matches!(k, EventKind::Deleted { name, .. } if name == "vm")).await;
    assert!(offline < deleted, "offline before deletion");
    assert!(e.resource("vm").is_err());
}

#[tokio::test]
async fn bad_configuration_is_refused_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path()).await;
    e.create_group("g", props(&[])).await.unwrap();
    e.create_group("h", props(&[])).await.unwrap();
    let code = |r: Result<(), halo_engine::EngineError>| r.unwrap_err().status;
    assert_eq!(code(e.create_group("g", props(&[])).await), Status::ERROR_OBJECT_ALREADY_EXISTS);
    assert_eq!(code(e.create_group("bad name", props(&[])).await), Status::ERROR_INVALID_PARAMETER);
    assert_eq!(
        code(e.create_resource("r", "g", "nosuchtype", props(&[]), props(&[])).await),
        Status::ERROR_CLUSTER_RESOURCE_TYPE_NOT_FOUND
    );
    assert_eq!(
        code(e.create_resource("r", "nogroup", "dummy", props(&[]), props(&[])).await),
        Status::ERROR_GROUP_NOT_FOUND
    );
    assert_eq!(
        code(e.create_resource("r", "g", "dummy", props(&[("PendingTimeout", "1")]), props(&[])).await),
        Status::ERROR_CLUSTER_PARAMETER_OUT_OF_BOUNDS
    );
    e.create_resource("a", "g", "dummy", props(&[]), props(&[])).await.unwrap();
    e.create_resource("b", "g", "dummy", props(&[]), props(&[])).await.unwrap();
    e.create_resource("x", "h", "dummy", props(&[]), props(&[])).await.unwrap();
    // Two changes that would close a cycle between them, at once: exactly one is accepted.
    let (ab, ba) = tokio::join!(e.set_dependencies("a", "[b]"), e.set_dependencies("b", "[a]"));
    assert!(ab.is_ok() != ba.is_ok(), "one of the two must be refused: {ab:?} {ba:?}");
    if ba.is_ok() {
        e.set_dependencies("b", "").await.unwrap();
        e.set_dependencies("a", "[b]").await.unwrap();
    }
    assert_eq!(code(e.set_dependencies("b", "[a]").await), Status::ERROR_CIRCULAR_DEPENDENCY);
    assert_eq!(code(e.set_dependencies("b", "[x]").await), Status::ERROR_DEPENDENCY_NOT_ALLOWED);
    assert_eq!(code(e.set_dependencies("b", "[a] or").await), Status::ERROR_INVALID_PARAMETER);
    assert_eq!(code(e.delete_resource("b", false).await), Status::ERROR_DEPENDENT_RESOURCE_EXISTS);
    assert_eq!(code(e.delete_group("g").await), Status::ERROR_INVALID_STATE);
    // Nothing was lost: the objects are as they were.
    assert_eq!(e.resource("a").unwrap().dependencies, "[b]");
    assert_eq!(e.resources().len(), 3);
    // Private properties its type refuses are refused when written, not at the next online.
    let bad = e.create_resource("bad", "g", "dummy", props(&[]), props(&[("Checkpoints", "many")])).await;
    assert_eq!(code(bad), Status::ERROR_INVALID_PARAMETER);
    assert!(e.resource("bad").is_err());
}

#[tokio::test]
async fn control_codes_get_default_handling_with_more_data_sizing() {
    use resapi::control::codes::*;
    use resapi::{PropertyList, ValueData};
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path()).await;
    e.create_group("g", props(&[])).await.unwrap();
    e.create_resource("r", "g", "dummy", props(&[("RestartThreshold", "7")]), props(&[("OnlineDelayMs", "0")]))
        .await
        .unwrap();

    // GET_COMMON_PROPERTIES: too small a buffer says how much is needed.
    let small = e.control("r", CLUSCTL_RESOURCE_GET_COMMON_PROPERTIES.0, vec![], 8).await.unwrap();
    assert_eq!(small.status, Status::ERROR_MORE_DATA.0);
    assert!(small.bytes_returned > 8 && small.output.is_empty());
    let full = e.control("r", CLUSCTL_RESOURCE_GET_COMMON_PROPERTIES.0, vec![], small.bytes_returned).await.unwrap();
    assert_eq!((full.status, full.bytes_returned as usize), (0, full.output.len()));
    let list = PropertyList::decode(&full.output).unwrap();
    assert_eq!(list.get_dword("RestartThreshold"), Some(7));
    assert_eq!(list.get_dword("RestartAction"), Some(2), "defaults are filled in");

    // VALIDATE checks without storing; SET stores.
    let bad = PropertyList::new().with("RestartAction", ValueData::Dword(9)).encode().unwrap();
    let v = e.control("r", CLUSCTL_RESOURCE_VALIDATE_COMMON_PROPERTIES.0, bad, 0).await.unwrap();
    assert_eq!(v.status, Status::ERROR_CLUSTER_PARAMETER_OUT_OF_BOUNDS.0);
    let good = PropertyList::new().with("RestartDelay", ValueData::Dword(1234)).encode().unwrap();
    assert_eq!(e.control("r", CLUSCTL_RESOURCE_VALIDATE_COMMON_PROPERTIES.0, good.clone(), 0).await.unwrap().status, 0);
    assert!(!e.resource("r").unwrap().common.contains_key("RestartDelay"));
    assert_eq!(e.control("r", CLUSCTL_RESOURCE_SET_COMMON_PROPERTIES.0, good, 0).await.unwrap().status, 0);
    assert_eq!(e.resource("r").unwrap().common["RestartDelay"], "1234");

    // Private properties, characteristics and flags; while online (through the host first).
    e.online_resource("r", true).await.unwrap();
    let mut w = Watch::new(&e);
    w.state("r", "Online").await;
    let private = PropertyList::new().with("CallDelayMs", ValueData::Dword(1)).encode().unwrap();
    let stored = e.control("r", CLUSCTL_RESOURCE_SET_PRIVATE_PROPERTIES.0, private, 0).await.unwrap();
    assert_eq!(stored.status, Status::ERROR_RESOURCE_PROPERTIES_STORED.0, "effective at the next online");
    let got = e.control("r", CLUSCTL_RESOURCE_GET_PRIVATE_PROPERTIES.0, vec![], 4096).await.unwrap();
    assert_eq!(PropertyList::decode(&got.output).unwrap().get_str("CallDelayMs"), Some("1"));
    let chars = e.control("r", CLUSCTL_RESOURCE_GET_CHARACTERISTICS.0, vec![], 4).await.unwrap();
    assert_eq!((chars.status, chars.output), (0, vec![0, 0, 0, 0]));
    assert_eq!(
        e.control("r", CLUSCTL_RESOURCE_GET_FLAGS.0, vec![], 2).await.unwrap().status,
        Status::ERROR_MORE_DATA.0
    );
    assert_eq!(
        e.control("r", CLUSCTL_RESOURCE_GET_CLASS_INFO.0, vec![], 64).await.unwrap().status,
        Status::ERROR_INVALID_FUNCTION.0
    );
    assert_eq!(
        e.control("r", CLUSCTL_RESOURCE_DELETE.0, vec![], 0).await.unwrap_err().status,
        Status::ERROR_INVALID_PARAMETER
    );
    let junk = e.control("r", CLUSCTL_RESOURCE_SET_COMMON_PROPERTIES.0, vec![1, 2, 3], 0).await.unwrap_err();
    assert_eq!(junk.status, Status::ERROR_INVALID_DATA);
}
