//! Several members in one process, connected through the in-process loopback transport: they
//! form a cluster, replicate writes to every member's change feed, send writes made on followers
//! to the leader, and keep committing with one member gone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

use halo_cluster::transport::Loopback;
use halo_cluster::{Change, ClusterDb, Op, Watch};
use std::collections::BTreeMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

/// Reads `w` until the change at `revision`, and returns it.
async fn change_at(w: &mut Watch, revision: u64) -> Change {
    loop {
        let change = tokio::time::timeout(WAIT, w.next()).await.expect("the change did not arrive").unwrap();
        if change.revision >= revision {
            assert_eq!(change.revision, revision);
            return change;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_replicate_and_survive_losing_one() {
    let loopback = Loopback::default();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut members = BTreeMap::new();
    for (i, dir) in dirs.iter().enumerate() {
        let id = i as u64 + 1;
        let db = ClusterDb::open_with(dir.path(), id, loopback.clone()).await.unwrap();
        loopback.register(id, db.service());
        members.insert(id, db);
    }
    let mut watches: BTreeMap<u64, Watch> = members.iter().map(|(id, db)| (*id, db.watch(0).unwrap())).collect();
    let addresses: BTreeMap<u64, String> = members.keys().map(|id| (*id, format!("10.0.0.{id}:7480"))).collect();
    members[&1].form(addresses).await.unwrap();

    let metrics = members[&1]
        .raft()
        .wait(Some(WAIT))
        .metrics(|m| m.current_leader.is_some(), "a leader is elected")
        .await
        .unwrap();
    let leader = metrics.current_leader.unwrap();
    // Wait until the leader itself knows it leads (node 1's view may come from a heartbeat).
    members[&leader].raft().wait(Some(WAIT)).state(openraft::ServerState::Leader, "the leader leads").await.unwrap();

    let put = Op::Put { key: "group/web".into(), value: b"{}".to_vec() };
    let revision = members[&leader].put("group/web", b"{}".to_vec()).await.unwrap();
    for (id, w) in watches.iter_mut() {
        assert_eq!(change_at(w, revision).await.ops, vec![put.clone()], "member {id}");
    }

    // A write on a follower goes to the leader, and returns once the follower has applied it.
    let follower = *members.keys().find(|id| **id != leader).unwrap();
    let revision = members[&follower].put("x", b"1".to_vec()).await.unwrap();
    assert_eq!(members[&follower].get("x").unwrap().map(|r| (r.revision, r.value)), Some((revision, b"1".to_vec())));

    // One follower goes away: the other two are still a majority.
    loopback.unregister(follower);
    let gone = members.remove(&follower).unwrap();
    gone.shutdown().await.unwrap();
    watches.remove(&follower);
    let revision = members[&leader].put("group/db", b"{}".to_vec()).await.unwrap();
    for (id, w) in watches.iter_mut() {
        let change = change_at(w, revision).await;
        assert_eq!(change.ops, vec![Op::Put { key: "group/db".into(), value: b"{}".to_vec() }], "member {id}");
    }
    for db in members.values() {
        db.shutdown().await.unwrap();
    }
}
