//! Failures after which the database must stop taking writes and the node must exit, so that a
//! supervisor restarts it on a sound directory: the data directory removed or replaced under the
//! running node, or a storage error (a full disk) that stops openraft's core for good.

use crate::ClusterError;
use openraft::{StorageError, StorageIOError};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use tokio::sync::watch;

/// A failure that ends this database's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fatal {
    /// The lock file is gone or is another file: the directory was removed or replaced.
    DataDirectoryLost(PathBuf),
    /// A write failed for lack of space.
    DiskFull(PathBuf),
    /// Any other storage failure that stopped consensus.
    Storage(String),
}

impl Fatal {
    pub(crate) fn error(&self) -> ClusterError {
        match self {
            Fatal::DataDirectoryLost(path) => ClusterError::DataDirectoryLost { path: path.clone() },
            Fatal::DiskFull(path) => ClusterError::DiskFull { path: path.clone() },
            Fatal::Storage(reason) => ClusterError::Raft(format!("storage failed, consensus stopped: {reason}")),
        }
    }
}

/// Watches the data directory and records the first fatal failure.
pub(crate) struct Health {
    data_dir: PathBuf,
    lock_path: PathBuf,
    /// (device, inode) of the lock file this node holds.
    lock_id: (u64, u64),
    state: watch::Sender<Option<Fatal>>,
}

impl Health {
    pub(crate) fn new(data_dir: &Path, lock_path: &Path, lock_id: (u64, u64)) -> Health {
        Health {
            data_dir: data_dir.to_path_buf(),
            lock_path: lock_path.to_path_buf(),
            lock_id,
            state: watch::Sender::new(None),
        }
    }

    /// The first fatal failure, if any.
    pub(crate) fn fatal(&self) -> Option<Fatal> {
        self.state.borrow().clone()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Option<Fatal>> {
        self.state.subscribe()
    }

    /// Records `fatal` unless a failure is already recorded (the first one is the cause).
    pub(crate) fn fail(&self, fatal: Fatal) {
        self.state.send_if_modified(|state| {
            if state.is_some() {
                return false;
            }
            tracing::error!(error = %fatal.error(), "the cluster database stops taking writes");
            *state = Some(fatal);
            true
        });
    }

    /// Fails (and returns the failure) if a failure is recorded or the lock file is no longer the
    /// one this node locked: writes into a removed directory would answer success and vanish, and
    /// a second node could start on the path.
    pub(crate) fn check(&self) -> Result<(), Fatal> {
        if let Some(fatal) = self.fatal() {
            return Err(fatal);
        }
        let same = std::fs::metadata(&self.lock_path).is_ok_and(|m| (m.dev(), m.ino()) == self.lock_id);
        if !same {
            let fatal = Fatal::DataDirectoryLost(self.data_dir.clone());
            self.fail(fatal.clone());
            return Err(fatal);
        }
        Ok(())
    }

    /// A storage write error for openraft; a full disk is recorded as fatal (openraft stops its
    /// core on any storage error, and redb must be reopened after a failed write anyway).
    pub(crate) fn write_error<E: std::error::Error + 'static>(&self, e: E) -> StorageError<u64> {
        if is_disk_full(&e) {
            self.fail(Fatal::DiskFull(self.data_dir.clone()));
        }
        StorageIOError::<u64>::write(&e).into()
    }
}

/// Whether the error is redb's (or an I/O) error for a full disk (ENOSPC) or quota (EDQUOT).
/// redb's error types carry no `source()` chain, so each one that can wrap an I/O error is
/// looked into.
fn is_disk_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let storage = if let Some(s) = e.downcast_ref::<redb::StorageError>() {
        Some(s)
    } else if let Some(redb::CommitError::Storage(s)) = e.downcast_ref::<redb::CommitError>() {
        Some(s)
    } else if let Some(redb::TransactionError::Storage(s)) = e.downcast_ref::<redb::TransactionError>() {
        Some(s)
    } else if let Some(redb::TableError::Storage(s)) = e.downcast_ref::<redb::TableError>() {
        Some(s)
    } else {
        None
    };
    let io = match (storage, e.downcast_ref::<redb::Error>()) {
        (Some(redb::StorageError::Io(io)), _) | (None, Some(redb::Error::Io(io))) => Some(io),
        _ => e.downcast_ref::<std::io::Error>(),
    };
    io.is_some_and(|io| {
        io.kind() == std::io::ErrorKind::StorageFull
            || io.raw_os_error() == Some(nix::libc::ENOSPC)
            || io.raw_os_error() == Some(nix::libc::EDQUOT)
    })
}
