//! An in-memory model of the cluster database with the real one's transaction semantics: guards
//! on key revisions ("absent" included), the revision of a write is the index of its log entry,
//! every entry — a conflicting one too, with no ops — becomes one `Change` on the feed, in order.
//! Timing (when the writer hears the answer, when the feed delivers the change) is drawn here so
//! that both orders happen, as they do with openraft.

use crate::rng::SimRng;
use halo_cluster::{Change, Compare, Op, Record, Request, Response};
use halo_engine::model::{self, keys};
use std::collections::BTreeMap;
use std::time::Duration;

/// Why the model could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A built-in type did not serialize.
    #[error("encoding built-in type {name}: {source}")]
    Encode {
        /// The type.
        name: String,
        /// Why.
        source: serde_json::Error,
    },
}

/// The database: records, the last revision, and the log of applied entries.
#[derive(Debug, Clone, Default)]
pub struct Db {
    revision: u64,
    records: BTreeMap<String, Record>,
    log: Vec<Change>,
}

impl Db {
    /// An empty database.
    pub fn new() -> Db {
        Db::default()
    }

    /// A database holding the built-in types, written one guarded put each, as the real driver
    /// writes them before the engine's first `Loaded`.
    pub fn with_builtin_types() -> Result<Db, DbError> {
        let mut db = Db::new();
        for ty in model::builtin_types() {
            let value = serde_json::to_vec(&ty).map_err(|source| DbError::Encode { name: ty.name.clone(), source })?;
            let key = keys::type_(&ty.name);
            db.apply(&Request {
                compare: vec![Compare { key: key.clone(), revision: None }],
                ops: vec![Op::Put { key, value }],
            });
        }
        Ok(db)
    }

    /// Applies one transaction as the next log entry: all ops if every guard holds, none (and a
    /// conflict naming the first failed guard) otherwise. The entry consumes a revision either way.
    pub fn apply(&mut self, request: &Request) -> (Response, Change) {
        self.revision += 1;
        let revision = self.revision;
        let failed = request.compare.iter().find_map(|c| {
            let actual = self.records.get(&c.key).map(|r| r.revision);
            (actual != c.revision).then(|| (c.key.clone(), c.revision, actual))
        });
        let (response, ops) = match failed {
            Some((key, expected, actual)) => (Response::Conflict { key, expected, actual }, Vec::new()),
            None => {
                for op in &request.ops {
                    match op {
                        Op::Put { key, value } => {
                            self.records.insert(key.clone(), Record { revision, value: value.clone() });
                        }
                        Op::Delete { key } => {
                            self.records.remove(key);
                        }
                    }
                }
                (Response::Applied { revision }, request.ops.clone())
            }
        };
        let change = Change { revision, ops };
        self.log.push(change.clone());
        (response, change)
    }

    /// The last applied revision.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// One record.
    pub fn get(&self, key: &str) -> Option<&Record> {
        self.records.get(key)
    }

    /// Every record (what a restarting node reads).
    pub fn snapshot(&self) -> (u64, BTreeMap<String, Record>) {
        (self.revision, self.records.clone())
    }

    /// Every applied entry so far, oldest first.
    pub fn log(&self) -> &[Change] {
        &self.log
    }

    /// Whether `key` was put (with a value `accept` likes) by an entry at or before `revision`.
    pub fn was_put(&self, key: &str, revision: u64, accept: impl Fn(&[u8]) -> bool) -> bool {
        self.log
            .iter()
            .take_while(|c| c.revision <= revision)
            .any(|c| c.ops.iter().any(|op| matches!(op, Op::Put { key: k, value } if k == key && accept(value))))
    }

    /// Whether `key` was deleted by an entry at or before `revision`.
    pub fn was_deleted(&self, key: &str, revision: u64) -> bool {
        self.log
            .iter()
            .take_while(|c| c.revision <= revision)
            .any(|c| c.ops.iter().any(|op| matches!(op, Op::Delete { key: k } if k == key)))
    }
}

/// When the parts of one write happen, relative to its submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteTiming {
    /// The entry is committed and applied.
    pub commit: Duration,
    /// The writer hears the response.
    pub answer: Duration,
    /// The feed delivers the change (never before an earlier change).
    pub feed: Duration,
}

/// Draws write timings; keeps the feed in order.
#[derive(Debug, Clone, Default)]
pub struct Timing {
    /// When the last submitted write commits: the log keeps submission order.
    commit_last: Duration,
    /// When the last change was (or will be) delivered.
    feed_last: Duration,
}

impl Timing {
    /// Times for a write submitted at `now`. The answer and the feed are drawn independently, so
    /// a writer sometimes hears of its write on the feed first, sometimes from the answer first.
    pub fn draw(&mut self, now: Duration, rng: &mut SimRng) -> WriteTiming {
        let commit = (now + rng.ms(0, 20)).max(self.commit_last);
        self.commit_last = commit;
        let answer = commit + rng.ms(0, 15);
        let feed = (commit + rng.ms(0, 15)).max(self.feed_last);
        self.feed_last = feed;
        WriteTiming { commit, answer, feed }
    }

    /// A feed delivery for a change applied at `now` that no writer waits for (a restart's
    /// committed leftovers): after the ones already due.
    pub fn feed_after(&mut self, now: Duration, rng: &mut SimRng) -> Duration {
        let feed = (now + rng.ms(0, 15)).max(self.feed_last);
        self.feed_last = feed;
        feed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, guard: Option<u64>) -> Request {
        Request {
            compare: vec![Compare { key: key.into(), revision: guard }],
            ops: vec![Op::Put { key: key.into(), value: b"v".to_vec() }],
        }
    }

    #[test]
    fn guards_revisions_and_conflicts() {
        let mut db = Db::new();
        let (r, c) = db.apply(&put("a", None));
        assert_eq!(r, Response::Applied { revision: 1 });
        assert_eq!(c.ops.len(), 1);
        // "absent" fails now that it exists; the entry still takes a revision, with no ops.
        let (r, c) = db.apply(&put("a", None));
        assert_eq!(r, Response::Conflict { key: "a".into(), expected: None, actual: Some(1) });
        assert_eq!((c.revision, c.ops.len()), (2, 0));
        let (r, _) = db.apply(&put("a", Some(1)));
        assert_eq!(r, Response::Applied { revision: 3 });
        assert_eq!(db.get("a").map(|r| r.revision), Some(3));
        let (r, _) = db.apply(&Request {
            compare: vec![Compare { key: "a".into(), revision: Some(3) }],
            ops: vec![Op::Delete { key: "a".into() }],
        });
        assert_eq!(r, Response::Applied { revision: 4 });
        assert!(db.get("a").is_none());
        assert!(db.was_put("a", 1, |_| true) && !db.was_deleted("a", 3) && db.was_deleted("a", 4));
        assert_eq!(db.log().iter().map(|c| c.revision).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        assert_eq!(db.snapshot().0, 4);
    }

    #[test]
    fn builtin_types_are_there() {
        let db = Db::with_builtin_types().unwrap();
        for t in model::builtin_types() {
            assert!(db.get(&keys::type_(&t.name)).is_some(), "{}", t.name);
        }
    }

    #[test]
    fn feed_in_order_and_both_orders_occur() {
        let mut rng = SimRng::new(3, 0);
        let mut t = Timing::default();
        let (mut answer_first, mut feed_first, mut last) = (0, 0, Duration::ZERO);
        let mut last_commit = Duration::ZERO;
        for i in 0..200 {
            let w = t.draw(Duration::from_millis(i * 3), &mut rng);
            assert!(w.feed >= last && w.commit <= w.answer && w.commit <= w.feed);
            assert!(w.commit >= last_commit);
            last_commit = w.commit;
            last = w.feed;
            if w.answer < w.feed {
                answer_first += 1;
            } else if w.feed < w.answer {
                feed_first += 1;
            }
        }
        assert!(answer_first > 0 && feed_first > 0, "{answer_first} {feed_first}");
    }
}
