//! The driver with a real cluster database and a model of the hosts (no processes): the view
//! follows the change feed, including writes made straight to the database, and ids and
//! persistent state live in the database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

use halo_cluster::{ClusterDb, Compare, Op, Request};
use halo_engine::events::{Event, EventKind};
use halo_engine::model::{GroupDoc, OwnerDoc, ResourceDoc, keys};
use halo_engine::seams::Hosts;
use halo_engine::{Engine, OpStatus};
use halo_host::client::{ControlReply, HostError, HostEvent, OpenSpec};
use halo_host::protocol::{Cause, FromHost, ResourceId, Timeouts};
use resapi::{PropertyList, ResourceState, Status};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// Hosts that do at once what they are asked and report it.
#[derive(Clone)]
struct InstantHosts(mpsc::UnboundedSender<HostEvent>);

impl InstantHosts {
    fn report(&self, id: ResourceId, state: ResourceState, cause: Cause) {
        let fact =
            FromHost::State { id, state: state as i32, checkpoint: 0, status: 0, application_code: 0, flags: 0, cause };
        let _ = self.0.send(HostEvent::Fact(fact));
    }
}

impl Hosts for InstantHosts {
    async fn open(&self, _spec: OpenSpec) -> Result<(), HostError> {
        Ok(())
    }
    fn online(&self, id: ResourceId, _flags: u32, _input: Vec<u8>) -> Result<(), HostError> {
        self.report(id, ResourceState::Online, Cause::Resource);
        Ok(())
    }
    fn offline(&self, id: ResourceId, _d: Option<String>, _flags: u32, _input: Vec<u8>) -> Result<(), HostError> {
        self.report(id, ResourceState::Offline, Cause::Resource);
        Ok(())
    }
    fn terminate(&self, id: ResourceId) -> Result<(), HostError> {
        self.report(id, ResourceState::Offline, Cause::Terminated);
        Ok(())
    }
    fn update(&self, _id: ResourceId, _p: &PropertyList, _t: Timeouts) -> Result<(), HostError> {
        Ok(())
    }
    fn close(&self, id: ResourceId) -> Result<(), HostError> {
        let _ = self.0.send(HostEvent::Fact(FromHost::Closed { id }));
        Ok(())
    }
    async fn control(&self, _id: ResourceId, _c: u32, _i: Vec<u8>, _s: u32) -> Result<ControlReply, HostError> {
        Ok(ControlReply { status: Status::ERROR_INVALID_FUNCTION, output: Vec::new(), bytes_returned: 0 })
    }
    fn renew_lease(&self, _duration: Duration) {}
}

async fn start(dir: &std::path::Path) -> (Arc<Engine>, Arc<ClusterDb>) {
    let db = Arc::new(ClusterDb::open(dir, "127.0.0.1:0").await.unwrap());
    let (tx, facts) = mpsc::unbounded_channel();
    let engine = Engine::start("n1", db.clone(), InstantHosts(tx), facts).await.unwrap();
    (engine, db)
}

async fn next_matching(rx: &mut broadcast::Receiver<Event>, what: impl Fn(&EventKind) -> bool) -> EventKind {
    let wait = async {
        loop {
            let e = rx.recv().await.unwrap();
            if what(&e.kind) {
                return e.kind;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait).await.expect("the event never came")
}

fn put(key: String, value: Vec<u8>) -> Request {
    Request { compare: vec![Compare { key: key.clone(), revision: None }], ops: vec![Op::Put { key, value }] }
}

#[tokio::test]
async fn writes_made_straight_to_the_database_reach_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, db) = start(dir.path()).await;
    let (_, mut rx) = engine.events().subscribe(u64::MAX);
    // As another node (or an operator with the database in hand) would write them.
    let group = GroupDoc { name: "far".into(), common: BTreeMap::new() };
    db.write(put(keys::group("far"), serde_json::to_vec(&group).unwrap())).await.unwrap();
    db.write(put(keys::owner("far"), serde_json::to_vec(&OwnerDoc::on("n1")).unwrap())).await.unwrap();
    let doc = ResourceDoc {
        id: 9_000,
        name: "remote".into(),
        group: "far".into(),
        type_name: "dummy".into(),
        common: BTreeMap::new(),
        private: BTreeMap::new(),
        dependencies: Default::default(),
    };
    db.write(put(keys::resource("remote"), serde_json::to_vec(&doc).unwrap())).await.unwrap();
    next_matching(&mut rx, |k| matches!(k, EventKind::Added { name, .. } if name == "remote")).await;
    assert_eq!(engine.group("far").unwrap().resources, ["remote"]);
    // And it runs like any other.
    let op = engine.online_resource("remote", false).await.unwrap();
    assert_eq!(engine.wait(op, Duration::from_secs(30)).await.unwrap(), OpStatus::Succeeded);
    assert_eq!(engine.resource("remote").unwrap().state, "Online");
    // New ids start past the one written by hand, from the database's counter.
    engine.create_resource("local", "far", "dummy", BTreeMap::new(), BTreeMap::new()).await.unwrap();
    let local: ResourceDoc = serde_json::from_slice(&db.get(&keys::resource("local")).unwrap().unwrap().value).unwrap();
    assert_eq!(local.id, 9_001);
    // A delete written elsewhere stops it here.
    db.write(Request { compare: vec![], ops: vec![Op::Delete { key: keys::resource("remote") }] }).await.unwrap();
    next_matching(&mut rx, |k| matches!(k, EventKind::Deleted { name, .. } if name == "remote")).await;
    assert!(engine.resource("remote").is_err());
    engine.stop().await.unwrap();
}

#[tokio::test]
async fn a_reply_comes_after_the_view_holds_the_write_and_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (engine, _db) = start(dir.path()).await;
        engine.create_group("g", BTreeMap::new()).await.unwrap();
        // Read-your-writes: the reply means the view has it.
        assert!(engine.group("g").is_ok());
        engine.create_resource_with("a", "g", "dummy", BTreeMap::new(), BTreeMap::new(), "").await.unwrap();
        engine.create_resource_with("b", "g", "dummy", BTreeMap::new(), BTreeMap::new(), "[a]").await.unwrap();
        assert_eq!(engine.resource("b").unwrap().dependencies, "[a]");
        let op = engine.online_resource("b", true).await.unwrap();
        assert_eq!(engine.wait(op, Duration::from_secs(30)).await.unwrap(), OpStatus::Succeeded);
        assert_eq!(engine.shutdown(Duration::from_secs(30)).await.unwrap(), OpStatus::Succeeded);
        engine.stop().await.unwrap();
    }
    let (engine, _db) = start(dir.path()).await;
    let (_, mut rx) = engine.events().subscribe(0);
    next_matching(
        &mut rx,
        |k| matches!(k, EventKind::ResourceState { resource, state, .. } if resource == "b" && state == "Online"),
    )
    .await;
    assert_eq!(engine.resource("a").unwrap().state, "Online");
    engine.stop().await.unwrap();
}

#[tokio::test]
async fn concurrent_creates_share_the_id_block_and_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, db) = start(dir.path()).await;
    engine.create_group("g", BTreeMap::new()).await.unwrap();
    let creates = (0..64).map(|i| {
        let e = engine.clone();
        async move { e.create_resource(&format!("r{i}"), "g", "dummy", BTreeMap::new(), BTreeMap::new()).await }
    });
    for result in futures_util::future::join_all(creates).await {
        result.unwrap();
    }
    let mut ids: Vec<u64> = db
        .list("resource/")
        .unwrap()
        .into_iter()
        .map(|(_, r)| serde_json::from_slice::<ResourceDoc>(&r.value).unwrap().id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 64, "every resource has its own id");
    engine.stop().await.unwrap();
}

#[tokio::test]
async fn operation_ids_and_event_numbers_keep_increasing_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (first_op, last_event) = {
        let (engine, _db) = start(dir.path()).await;
        engine.create_group("g", BTreeMap::new()).await.unwrap();
        let op = engine.online_group("g", false).await.unwrap();
        let last = engine.events().last_seq();
        engine.stop().await.unwrap();
        (op, last)
    };
    let (engine, _db) = start(dir.path()).await;
    let op = engine.online_group("g", false).await.unwrap();
    assert!(op > first_op, "operation {op} after a restart, {first_op} before");
    let (past, _) = engine.events().subscribe(0);
    assert!(past.iter().all(|e| e.seq > last_event), "event numbers went back: {} <= {last_event}", past[0].seq);
    engine.stop().await.unwrap();
}
