//! The cluster database on disk: transactions, revisions, restart, the data-directory lock, and
//! damaged files reported instead of reset.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

use halo_cluster::{ClusterDb, ClusterError, Compare, Op, Request, Response};

fn put(key: &str, value: &str) -> Op {
    Op::Put { key: key.into(), value: value.as_bytes().to_vec() }
}

#[tokio::test]
async fn transactions_apply_atomically_with_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let db = ClusterDb::open(dir.path(), "127.0.0.1:7480").await.unwrap();
    let r1 = db.put("group/web", b"{}".to_vec()).await.unwrap();
    let r2 = db.put("group/db", b"{}".to_vec()).await.unwrap();
    assert!(r2 > r1);
    assert_eq!(db.get("group/web").unwrap().unwrap().revision, r1);
    let keys: Vec<String> = db.list("group/").unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["group/db", "group/web"]);
    assert!(db.list("resource/").unwrap().is_empty());

    // A failed guard changes nothing, not even the ops before it in the list.
    let conflict = db
        .write(Request {
            compare: vec![Compare { key: "group/web".into(), revision: Some(r1 + 100) }],
            ops: vec![put("group/web", "changed"), Op::Delete { key: "group/db".into() }],
        })
        .await
        .unwrap();
    assert_eq!(conflict, Response::Conflict { key: "group/web".into(), expected: Some(r1 + 100), actual: Some(r1) });
    assert_eq!(db.get("group/web").unwrap().unwrap().value, b"{}");
    assert!(db.get("group/db").unwrap().is_some());

    // "Must not exist" guards creation.
    let create =
        |key: &str| Request { compare: vec![Compare { key: key.into(), revision: None }], ops: vec![put(key, "new")] };
    assert!(matches!(db.write(create("group/new")).await.unwrap(), Response::Applied { .. }));
    assert!(matches!(db.write(create("group/new")).await.unwrap(), Response::Conflict { actual: Some(_), .. }));
    db.shutdown().await.unwrap();
}

#[tokio::test]
async fn data_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let db = ClusterDb::open(dir.path(), "127.0.0.1:7480").await.unwrap();
        let r = db.put("persistent/web", b"online".to_vec()).await.unwrap();
        db.shutdown().await.unwrap();
        r
    };
    let db = ClusterDb::open(dir.path(), "127.0.0.1:7480").await.unwrap();
    let record = db.get("persistent/web").unwrap().unwrap();
    assert_eq!((record.revision, record.value.as_slice()), (first, b"online".as_slice()));
    assert!(db.put("persistent/db", b"offline".to_vec()).await.unwrap() > first);
    db.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_second_node_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = ClusterDb::open(dir.path(), "127.0.0.1:7480").await.unwrap();
    let err = ClusterDb::open(dir.path(), "127.0.0.1:7481").await.err().unwrap();
    assert!(matches!(err, ClusterError::Locked(_)), "{err}");
    assert!(err.to_string().contains("in use by another halo node"), "{err}");
    db.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_damaged_database_is_reported_and_left_alone() {
    for damage in ["garbage", "truncated"] {
        let dir = tempfile::tempdir().unwrap();
        let path = {
            let db = ClusterDb::open(dir.path(), "127.0.0.1:7480").await.unwrap();
            for i in 0..50 {
                db.put(&format!("k/{i}"), vec![7; 512]).await.unwrap();
            }
            db.shutdown().await.unwrap();
            db.path().to_path_buf()
        };
        let bytes = std::fs::read(&path).unwrap();
        let damaged = match damage {
            "garbage" => bytes.iter().map(|b| b ^ 0x5A).collect::<Vec<u8>>(),
            _ => bytes[..bytes.len() / 2].to_vec(),
        };
        std::fs::write(&path, &damaged).unwrap();
        let err = ClusterDb::open(dir.path(), "127.0.0.1:7480").await.err();
        let err = err.unwrap_or_else(|| panic!("a {damage} database opened"));
        assert!(matches!(err, ClusterError::Database { .. }), "{damage}: {err}");
        assert!(err.to_string().contains("cluster.redb"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), damaged, "{damage}: the file must be left as it was");
    }
}
