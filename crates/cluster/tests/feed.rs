//! The change feed: every applied log entry, once, in revision order, from a snapshot's revision
//! on; across restarts; and an honest error when the history does not reach back far enough.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

use halo_cluster::{Change, ClusterDb, ClusterError, Compare, Op, Request, Response, Watch};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

fn put(key: &str, value: &[u8]) -> Op {
    Op::Put { key: key.into(), value: value.to_vec() }
}

async fn next(w: &mut Watch) -> Change {
    tokio::time::timeout(Duration::from_secs(10), w.next()).await.expect("no change within 10 s").unwrap()
}

#[tokio::test]
async fn a_watch_from_zero_sees_the_initial_entries_then_a_put() {
    let dir = tempfile::tempdir().unwrap();
    let db = ClusterDb::open(dir.path(), "127.0.0.1:7480").await.unwrap();
    let mut w = db.watch(0).unwrap();
    let revision = db.put("group/web", b"{}".to_vec()).await.unwrap();
    let mut seen = Vec::new();
    loop {
        let change = next(&mut w).await;
        assert_eq!(change.revision, seen.len() as u64 + 1, "revisions are contiguous from 1");
        seen.push(change.clone());
        if change.revision == revision {
            break;
        }
    }
    // Forming the cluster writes entries with no ops (membership, the leader's blank entry).
    assert!(seen.len() >= 2, "{seen:?}");
    assert!(seen[..seen.len() - 1].iter().all(|c| c.ops.is_empty()), "{seen:?}");
    assert_eq!(seen.last().unwrap().ops, vec![put("group/web", b"{}")]);
    db.shutdown().await.unwrap();
    assert!(matches!(w.next().await, Err(ClusterError::Closed)));
}

#[tokio::test]
async fn a_write_is_seen_by_a_watcher_created_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = ClusterDb::open(dir.path(), "127.0.0.1:7480").await.unwrap();
    let start = db.snapshot().unwrap().revision;
    let mut w = db.watch(start).unwrap();
    let response = db
        .write(Request {
            compare: vec![Compare { key: "a".into(), revision: None }],
            ops: vec![put("a", b"1"), put("b", b"2"), Op::Delete { key: "c".into() }],
        })
        .await
        .unwrap();
    let Response::Applied { revision } = response else { panic!("{response:?}") };
    let change = next(&mut w).await;
    assert_eq!(change, Change { revision, ops: vec![put("a", b"1"), put("b", b"2"), Op::Delete { key: "c".into() }] });
    db.shutdown().await.unwrap();
}

/// Eight writers, fifty writes each, half of them guarded so some conflict; a reader that took a
/// snapshot while they ran must reach exactly the database's final state by applying the feed,
/// seeing each applied write once, in increasing revision order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_then_watch_misses_nothing_and_repeats_nothing_under_concurrent_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(ClusterDb::open(dir.path(), "127.0.0.1:7480").await.unwrap());
    db.put("shared", b"0".to_vec()).await.unwrap();

    let writers: Vec<_> = (0..8)
        .map(|t| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut applied = Vec::new();
                for i in 0..50 {
                    let request = if i % 2 == 0 {
                        Request { compare: vec![], ops: vec![put(&format!("w{t}/{i}"), b"x")] }
                    } else {
                        // Guarded on a revision every writer races for: most of these conflict.
                        let current = db.get("shared").unwrap().map(|r| r.revision);
                        Request {
                            compare: vec![Compare { key: "shared".into(), revision: current }],
                            ops: vec![put("shared", format!("{t}/{i}").as_bytes())],
                        }
                    };
                    if let Response::Applied { revision } = db.write(request.clone()).await.unwrap() {
                        applied.push((revision, request.ops));
                    }
                }
                applied
            })
        })
        .collect();

    // Start reading while the writers run.
    tokio::task::yield_now().await;
    let snapshot = db.snapshot().unwrap();
    let mut w = db.watch(snapshot.revision).unwrap();

    let mut applied: BTreeMap<u64, Vec<Vec<Op>>> = BTreeMap::new();
    for writer in writers {
        for (revision, ops) in writer.await.unwrap() {
            applied.entry(revision).or_default().push(ops);
        }
    }
    let last = db.snapshot().unwrap();

    let mut state: BTreeMap<String, Vec<u8>> =
        snapshot.records.iter().map(|(k, r)| (k.clone(), r.value.clone())).collect();
    let mut revision = snapshot.revision;
    while revision < last.revision {
        let change = next(&mut w).await;
        assert_eq!(change.revision, revision + 1, "each entry once, in order");
        revision = change.revision;
        // The entry's ops are exactly its applied transactions' ops (the batch's order is the
        // queue's, so compare as sets); conflicts and blank entries contribute nothing.
        let sorted = |mut ops: Vec<Op>| {
            ops.sort_by_key(|op| format!("{op:?}"));
            ops
        };
        let expected = applied.get(&revision).map(|txns| txns.concat()).unwrap_or_default();
        assert_eq!(sorted(change.ops.clone()), sorted(expected), "revision {revision}");
        for op in change.ops {
            match op {
                Op::Put { key, value } => {
                    state.insert(key, value);
                }
                Op::Delete { key } => {
                    state.remove(&key);
                }
            }
        }
    }
    let expected: BTreeMap<String, Vec<u8>> = last.records.into_iter().map(|(k, r)| (k, r.value)).collect();
    assert_eq!(state, expected);
    // Every unguarded write landed; only guarded ones conflicted.
    let unguarded = applied.values().flatten().filter(|ops| !matches!(&ops[0], Op::Put { key, .. } if key == "shared"));
    assert_eq!(unguarded.count(), 8 * 25);
    db.shutdown().await.unwrap();
}

#[tokio::test]
async fn revisions_continue_after_a_reopen_and_older_ones_are_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let db = ClusterDb::open(dir.path(), "127.0.0.1:7480").await.unwrap();
        let r = db.put("k", b"1".to_vec()).await.unwrap();
        db.shutdown().await.unwrap();
        r
    };
    let db = ClusterDb::open(dir.path(), "127.0.0.1:7480").await.unwrap();
    let snapshot = db.snapshot().unwrap();
    assert!(snapshot.revision >= before, "the stored applied revision is where reading starts");
    assert_eq!(snapshot.records["k"].revision, before);
    // The history starts at this process's start; what came before is only in the snapshot.
    match db.watch(0) {
        Err(ClusterError::Compacted { requested: 0, oldest }) => assert!(oldest >= before, "{oldest}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
    let mut w = db.watch(snapshot.revision).unwrap();
    let r = db.put("k", b"2".to_vec()).await.unwrap();
    let change = next(&mut w).await;
    assert_eq!(change, Change { revision: r, ops: vec![put("k", b"2")] });
    db.shutdown().await.unwrap();
}
