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

/// An existing but empty database file is not a new cluster: a truncation (a full disk, a bad
/// restore) must not silently become an empty cluster that overwrites the file.
#[tokio::test]
async fn an_empty_database_file_is_refused_and_left_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.redb");
    std::fs::write(&path, b"").unwrap();
    let err = ClusterDb::open(dir.path(), "127.0.0.1:7480").await.err().expect("an empty file opened");
    assert!(matches!(err, ClusterError::Database { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()) && text.contains("empty"), "{text}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "the empty file was rewritten");
}

/// A database with 50 keys, closed cleanly (`clean`) or copied while the node ran (a crash
/// image, which redb must recover on open). Returns the file's bytes.
async fn database_image(clean: bool) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let db = ClusterDb::open(dir.path(), "127.0.0.1:7480").await.unwrap();
    for i in 0..50 {
        db.put(&format!("k/{i}"), vec![i as u8; 300]).await.unwrap();
    }
    if !clean {
        let bytes = std::fs::read(db.path()).unwrap();
        db.shutdown().await.unwrap();
        return bytes;
    }
    db.shutdown().await.unwrap();
    let path = db.path().to_path_buf();
    drop(db);
    // The consensus tasks release the redb file (and redb writes its clean-shutdown state) as they
    // wind down; wait until a read-only open sees a cleanly closed file.
    for _ in 0..200 {
        if redb::ReadOnlyDatabase::open(&path).is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    std::fs::read(&path).unwrap()
}

/// A bit flipped anywhere (redb's header, the middle, the end) either leaves a database that opens
/// with every key intact, or the open is refused with the file named and its bytes unchanged:
/// never a repaired or rewritten file behind a failed start.
#[tokio::test]
async fn a_bit_flipped_database_opens_intact_or_is_refused_untouched() {
    for clean in [true, false] {
        let image = database_image(clean).await;
        let len = image.len();
        let offsets = [0, 9, 17, 33, 64, 100, 200, 300, 400, 600, 1000, 4096, len / 3, len / 2, len - 200, len - 1];
        // After a crash, a damaged commit slot in redb's header (its first page) looks exactly like
        // a commit torn by the crash, which redb's recovery rolls back by design; only cleanly
        // closed files can be held to "the last commit is there" in the header.
        for offset in offsets.into_iter().filter(|&o| clean || o >= 4096) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("cluster.redb");
            let mut damaged = image.clone();
            damaged[offset] ^= 0x10;
            std::fs::write(&path, &damaged).unwrap();
            let what = format!("clean={clean} offset={offset}/{len}");
            match ClusterDb::open(dir.path(), "127.0.0.1:7480").await {
                Ok(db) => {
                    for i in 0..50 {
                        let r = db.get(&format!("k/{i}")).unwrap().unwrap_or_else(|| panic!("{what}: k/{i} lost"));
                        assert_eq!(r.value, vec![i as u8; 300], "{what}: k/{i} changed");
                    }
                    db.shutdown().await.unwrap();
                }
                Err(err) => {
                    assert!(matches!(err, ClusterError::Database { .. }), "{what}: {err}");
                    assert!(err.to_string().contains(&path.display().to_string()), "{what}: {err}");
                    assert!(
                        std::fs::read(&path).unwrap() == damaged,
                        "{what}: a refused open changed the file ({err})"
                    );
                }
            }
        }
    }
}

/// Removing the data directory under a running node must not leave it acknowledging writes that
/// vanish (and let a second node start on the path): writes fail with DataDirectoryLost and
/// `fatal()` tells the daemon to exit.
#[tokio::test]
async fn a_removed_data_directory_stops_writes_and_is_fatal() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let db = ClusterDb::open(&dir, "127.0.0.1:7480").await.unwrap();
    db.put("before", b"x".to_vec()).await.unwrap();
    let fatal = db.fatal();
    std::fs::remove_dir_all(&dir).unwrap();
    let err = db.put("after", b"y".to_vec()).await.expect_err("a write into a removed directory succeeded");
    assert!(matches!(&err, ClusterError::DataDirectoryLost { path } if path == &dir), "{err}");
    assert!(err.to_string().contains(&dir.display().to_string()), "{err}");
    let fatal = tokio::time::timeout(std::time::Duration::from_secs(5), fatal).await.expect("fatal() never resolved");
    assert!(matches!(fatal, ClusterError::DataDirectoryLost { .. }), "{fatal}");
    db.shutdown().await.unwrap();
}

/// An idle node learns of the loss too (nothing writes, the watchdog checks).
#[tokio::test]
async fn an_idle_node_learns_its_data_directory_was_replaced() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let db = ClusterDb::open(&dir, "127.0.0.1:7480").await.unwrap();
    let fatal = db.fatal();
    std::fs::rename(&dir, parent.path().join("moved")).unwrap();
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("lock"), b"").unwrap();
    let fatal = tokio::time::timeout(std::time::Duration::from_secs(5), fatal).await.expect("fatal() never resolved");
    assert!(matches!(&fatal, ClusterError::DataDirectoryLost { path } if path == &dir), "{fatal}");
    db.shutdown().await.unwrap();
}

/// Unmounts (lazily: the database may still hold its file) when dropped.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A full disk is reported as DiskFull and is fatal (openraft 0.9 stops its core on a storage
/// error), instead of every later write answering a generic error while status looks healthy.
#[tokio::test]
async fn a_full_disk_is_disk_full_and_fatal() {
    let parent = tempfile::tempdir().unwrap();
    let mnt = parent.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mounted =
        std::process::Command::new("mount").args(["-t", "tmpfs", "-o", "size=2M", "tmpfs"]).arg(&mnt).status().unwrap();
    if !mounted.success() {
        eprintln!("skipped: cannot mount a tmpfs to fill (needs root): mount said {mounted}");
        return;
    }
    let _mount = Mount(mnt.clone());
    let dir = mnt.join("data");
    let db = ClusterDb::open(&dir, "127.0.0.1:7480").await.unwrap();
    db.put("before", b"x".to_vec()).await.unwrap();
    let fatal = db.fatal();
    // Take every free block.
    {
        use std::io::Write;
        let mut filler = std::fs::File::create(mnt.join("filler")).unwrap();
        while filler.write_all(&[0; 4096]).is_ok() {}
    }
    let mut err = None;
    for i in 0..20 {
        if let Err(e) = db.put(&format!("big/{i}"), vec![1; 256 * 1024]).await {
            err = Some(e);
            break;
        }
    }
    let err = err.expect("every write on a full disk succeeded");
    assert!(matches!(&err, ClusterError::DiskFull { path } if path == &dir), "{err}");
    assert!(err.to_string().contains("is full"), "{err}");
    let fatal = tokio::time::timeout(std::time::Duration::from_secs(5), fatal).await.expect("fatal() never resolved");
    assert!(matches!(fatal, ClusterError::DiskFull { .. }), "{fatal}");
    // Still refused (not a generic error) afterwards.
    let again = db.put("later", b"y".to_vec()).await.expect_err("a write after a full disk succeeded");
    assert!(matches!(again, ClusterError::DiskFull { .. }), "{again}");
    let _ = db.shutdown().await;
}
