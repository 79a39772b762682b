//! Members over the real TCP peer channel, on loopback: a node forms a cluster, two join through
//! whichever member they are told of, writes made anywhere reach the leader, a restarted member
//! rejoins from its data directory, and an evicted node leaves the membership and the registry.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

use halo_cluster::{BootOptions, ClusterDb};
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(10);

async fn boot(dir: &Path, name: &str, join: Option<String>) -> (ClusterDb, String) {
    let peers = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = peers.local_addr().unwrap().to_string();
    let options = BootOptions { name: name.into(), api_addr: format!("api-of-{name}"), join };
    (ClusterDb::boot(dir, peers, options).await.unwrap(), addr)
}

async fn voters(db: &ClusterDb, n: usize) {
    db.raft()
        .wait(Some(WAIT))
        .metrics(|m| m.membership_config.membership().voter_ids().count() == n, "the voters")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_form_join_forward_rejoin_and_evict_over_tcp() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, a_addr) = boot(dirs[0].path(), "a", None).await;
    assert!(a.is_leader());
    let (b, _) = boot(dirs[1].path(), "b", Some(a_addr.clone())).await;
    // c knows only b, a follower: b passes the request on to the leader.
    let (b_addr, _) = b.members()[&b.node_id()].clone();
    let (c, _) = boot(dirs[2].path(), "c", Some(b_addr)).await;
    voters(&a, 3).await;
    let mut ids: Vec<(String, u64, String)> =
        a.nodes().unwrap().into_iter().map(|n| (n.name, n.id, n.api_addr)).collect();
    ids.sort();
    assert_eq!(
        ids,
        [("a".into(), 1, "api-of-a".into()), ("b".into(), 2, "api-of-b".into()), ("c".into(), 3, "api-of-c".into())]
    );

    // A write on a follower is committed by the leader and visible on the follower at once.
    let revision = c.put("k", b"v".to_vec()).await.unwrap();
    assert_eq!(c.get("k").unwrap().unwrap().revision, revision);

    // c restarts with its directory (and a new port): it rejoins as itself, with its new address.
    c.shutdown().await.unwrap();
    drop(c);
    let (c, c_addr) = boot(dirs[2].path(), "c", None).await;
    assert_eq!(c.node_id(), 3);
    a.raft()
        .wait(Some(WAIT))
        .metrics(
            |m| m.membership_config.membership().get_node(&3).is_some_and(|n| n.addr == c_addr),
            "c's new address is recorded",
        )
        .await
        .unwrap();
    let revision = a.put("k2", b"v".to_vec()).await.unwrap();
    c.raft().wait(Some(WAIT)).applied_index_at_least(Some(revision), "c catches up").await.unwrap();

    // A directory belongs to its node.
    let peers = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = BootOptions { name: "x".into(), api_addr: String::new(), join: None };
    c.shutdown().await.unwrap();
    drop(c);
    let err = ClusterDb::boot(dirs[2].path(), peers, options).await.err().unwrap();
    assert!(err.to_string().contains("belongs to node \"c\""), "{err}");

    // Evicting c (asked on b, a follower) removes it from the membership and the registry.
    b.evict("c").await.unwrap();
    voters(&a, 2).await;
    a.raft()
        .wait(Some(WAIT))
        .metrics(|m| m.membership_config.membership().get_node(&3).is_none(), "c is gone")
        .await
        .unwrap();
    assert!(a.nodes().unwrap().iter().all(|n| n.name != "c"));
    let err = b.evict("nobody").await.unwrap_err();
    assert_eq!(err.to_string(), "no node named \"nobody\" is in the cluster");
    b.shutdown().await.unwrap();
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_directory_from_before_clusters_boots_as_node_1() {
    let dir = tempfile::tempdir().unwrap();
    // As an older halo left it: a one-member database, no node.json, no node registry.
    let old = ClusterDb::open(dir.path(), "127.0.0.1:7480").await.unwrap();
    let revision = old.put("group/web", b"{}".to_vec()).await.unwrap();
    old.shutdown().await.unwrap();
    drop(old);
    let (db, addr) = boot(dir.path(), "legacy", None).await;
    assert_eq!(db.node_id(), 1);
    assert_eq!(db.get("group/web").unwrap().map(|r| r.revision), Some(revision));
    // It registers itself and records its peer address once it leads again.
    db.raft()
        .wait(Some(WAIT))
        .metrics(|m| m.membership_config.membership().get_node(&1).is_some_and(|n| n.addr == addr), "the new address")
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while db.nodes().unwrap().iter().all(|n| n.name != "legacy") {
        assert!(tokio::time::Instant::now() < deadline, "never registered");
        // The registration is a write the background rejoin makes; the feed says when.
        let mut watch = db.watch(db.snapshot().unwrap().revision).unwrap();
        let _ = tokio::time::timeout(Duration::from_millis(500), watch.next()).await;
    }
    db.shutdown().await.unwrap();
}
