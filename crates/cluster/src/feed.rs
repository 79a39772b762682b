//! The change feed: every log entry the state machine applies, published after its redb commit,
//! kept in a bounded in-memory history so a watcher can start from any recent revision.
//!
//! The history is contiguous: it holds the changes `base + 1 ..= applied`, one per log index.
//! A watcher is a position in that sequence; it reads the history under the lock, so a change is
//! never missed or seen twice, and it waits on a `Notify` once it has caught up.

use crate::{Change, ClusterError};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// How many changes the history keeps by default.
pub(crate) const HISTORY: usize = 65_536;

struct State {
    /// The newest changes, oldest first; `history[i].revision == base + 1 + i`.
    history: VecDeque<Change>,
    /// The revision just before the oldest change in `history`.
    base: u64,
    /// Bumped whenever the sequence breaks (a snapshot replaced the data): every watcher lags.
    epoch: u64,
    closed: bool,
}

impl State {
    fn applied(&self) -> u64 {
        self.base + self.history.len() as u64
    }
}

/// The feed shared by the state machine (which publishes) and the watchers (which read).
pub(crate) struct Feed {
    state: Mutex<State>,
    capacity: usize,
    notify: Notify,
}

impl Feed {
    /// A feed whose history starts after `applied` (the state machine's stored applied index).
    pub(crate) fn new(applied: u64, capacity: usize) -> Arc<Feed> {
        let state = State { history: VecDeque::new(), base: applied, epoch: 0, closed: false };
        Arc::new(Feed { state: Mutex::new(state), capacity: capacity.max(1), notify: Notify::new() })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock, but a poisoned history is still consistent:
        // every mutation below is a single push/pop or a field store.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Publishes the change of one applied entry. Entries arrive in index order; a gap (which
    /// openraft should never produce) restarts the history and makes every watcher lag rather
    /// than let it skip revisions silently.
    pub(crate) fn publish(&self, change: Change) {
        let mut s = self.lock();
        let applied = s.applied();
        if change.revision <= s.base {
            // At or before where the feed starts: index 0 (the membership entry that forms a
            // cluster, which no watch position precedes and which has no ops), or an entry the
            // stored state already covers. Nothing a watcher could ask for.
            return;
        }
        if change.revision <= applied {
            // Re-applying an entry already published (cannot happen in one process); ignore.
            tracing::warn!(revision = change.revision, applied, "change feed: entry applied twice, ignored");
            return;
        }
        if change.revision != applied + 1 {
            tracing::warn!(revision = change.revision, applied, "change feed: gap in applied entries; watchers lag");
            s.history.clear();
            s.base = change.revision - 1;
            s.epoch += 1;
        }
        s.history.push_back(change);
        while s.history.len() > self.capacity {
            s.history.pop_front();
            s.base += 1;
        }
        drop(s);
        self.notify.notify_waiters();
    }

    /// The data was replaced by a snapshot at `revision`: the history no longer connects to it,
    /// so every watcher lags and must re-read.
    pub(crate) fn reset(&self, revision: u64) {
        let mut s = self.lock();
        s.history.clear();
        s.base = revision;
        s.epoch += 1;
        drop(s);
        self.notify.notify_waiters();
    }

    /// The database is shutting down: watchers get `Closed` once they have read what is there.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_waiters();
    }

    /// A watcher positioned after `after`.
    pub(crate) fn watch(self: &Arc<Self>, after: u64) -> Result<Watch, ClusterError> {
        let s = self.lock();
        if after < s.base {
            return Err(ClusterError::Compacted { requested: after, oldest: s.base });
        }
        Ok(Watch { feed: self.clone(), after, epoch: s.epoch })
    }
}

/// A position in the change feed; [`Watch::next`] yields the changes after it, in order.
pub struct Watch {
    feed: Arc<Feed>,
    after: u64,
    epoch: u64,
}

impl Watch {
    /// The next change. `Err(ClusterError::Lagged)` if this watcher fell so far behind that the
    /// history no longer reaches back to it, or a snapshot replaced the data (re-read a snapshot
    /// and watch again from its revision); `Err(ClusterError::Closed)` once the database shuts
    /// down.
    pub async fn next(&mut self) -> Result<Change, ClusterError> {
        loop {
            // Register for the wake-up before looking, so a publish in between is not missed.
            let notified = self.feed.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let s = self.feed.lock();
                if s.epoch != self.epoch || self.after < s.base {
                    return Err(ClusterError::Lagged);
                }
                let offset = self.after - s.base;
                if let Some(change) = usize::try_from(offset).ok().and_then(|i| s.history.get(i)) {
                    self.after = change.revision;
                    return Ok(change.clone());
                }
                if s.closed {
                    return Err(ClusterError::Closed);
                }
            }
            notified.await;
        }
    }

    /// The revision of the last change this watcher returned (or the one it started after).
    pub fn revision(&self) -> u64 {
        self.after
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn change(revision: u64) -> Change {
        Change { revision, ops: Vec::new() }
    }

    #[tokio::test]
    async fn a_watch_older_than_the_history_is_compacted_and_a_slow_watcher_lags() {
        let feed = Feed::new(10, 4);
        let mut slow = feed.watch(10).unwrap();
        for r in 11..=16 {
            feed.publish(change(r));
        }
        // The history holds 13..=16, so a watch may start after 12 at the earliest.
        assert!(matches!(feed.watch(11), Err(ClusterError::Compacted { requested: 11, oldest: 12 })));
        let mut w = feed.watch(12).unwrap();
        assert_eq!(w.next().await.unwrap().revision, 13);
        assert!(matches!(slow.next().await, Err(ClusterError::Lagged)));
        // A watch at the current revision always works, and waits for the next change.
        let mut current = feed.watch(16).unwrap();
        feed.publish(change(17));
        assert_eq!(current.next().await.unwrap().revision, 17);
    }

    #[tokio::test]
    async fn a_reset_makes_watchers_lag_and_close_ends_them() {
        let feed = Feed::new(0, 8);
        let mut w = feed.watch(0).unwrap();
        feed.publish(change(1));
        feed.reset(40);
        assert!(matches!(w.next().await, Err(ClusterError::Lagged)));
        let mut w = feed.watch(40).unwrap();
        feed.publish(change(41));
        feed.close();
        assert_eq!(w.next().await.unwrap().revision, 41);
        assert!(matches!(w.next().await, Err(ClusterError::Closed)));
    }
}
