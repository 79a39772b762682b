//! openraft's log and state machine, stored in one redb file.
//!
//! The log table holds serialized entries by index; the meta table the vote, the last purged and
//! the committed log ids; the state machine is the `kv` table (key → (revision, value)) plus its
//! applied log id and membership, written in the same transaction as the data they describe.

// openraft's storage traits fix the error type (StorageError, ~224 bytes); the helpers share it.
#![allow(clippy::result_large_err)]

use crate::encoding::{decode, encode};
use crate::feed::Feed;
use crate::health::Health;
use crate::{Change, Op, Record, Request, Response, TypeConfig};
use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, LogState, RaftLogReader, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership, Vote,
};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

type NodeId = u64;
type StResult<T> = Result<T, StorageError<NodeId>>;

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");
pub(crate) const KV: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("kv");
const SM_META: TableDefinition<&str, &[u8]> = TableDefinition::new("sm_meta");

fn rerr<E: std::error::Error + 'static>(e: E) -> StorageError<NodeId> {
    StorageIOError::<NodeId>::read(&e).into()
}

#[cfg(test)]
fn werr<E: std::error::Error + 'static>(e: E) -> StorageError<NodeId> {
    StorageIOError::<NodeId>::write(&e).into()
}

/// Reads a table, treating "never created" as empty.
macro_rules! open_or_empty {
    ($txn:expr, $table:expr, $empty:expr) => {
        match $txn.open_table($table) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok($empty),
            Err(e) => return Err(rerr(e)),
        }
    };
}

/// Counts commits, to measure what a write costs on disk.
#[derive(Default)]
pub(crate) struct Stats {
    /// Commits that were flushed to disk before returning.
    pub(crate) durable_commits: AtomicU64,
    /// Every commit.
    pub(crate) commits: AtomicU64,
}

/// Whether a commit must be on disk when it returns.
///
/// Only the log append (the point a write is acknowledged at) and the rare Raft-safety records
/// (vote, truncate, purge, snapshots) are durable. Saving the committed index and applying
/// entries to the state machine are not, because a crash can lose them without losing anything
/// acknowledged:
///
/// - every applied entry is in the durable log, and redb recovers to its last durable commit,
///   where the state machine's data and its last-applied id (one transaction) still agree;
/// - on start-up openraft re-applies the log from that last-applied id up to the saved committed
///   index, and whatever lies beyond is committed again by the (next) leader and applied then;
///   apply is deterministic, so every key gets back the same value and revision;
/// - log entries are purged only after a durable snapshot covering them, and a durable redb
///   commit also makes every earlier non-durable one durable, so the state machine never falls
///   behind the purged log.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flush {
    Durable,
    Lazy,
}

/// Commits `txn` with the given durability, counting it.
fn commit(mut txn: redb::WriteTransaction, flush: Flush, stats: &Stats, health: &Health) -> StResult<()> {
    if flush == Flush::Lazy {
        txn.set_durability(redb::Durability::None).map_err(|e| health.write_error(e))?;
    }
    txn.commit().map_err(|e| health.write_error(e))?;
    stats.commits.fetch_add(1, Ordering::Relaxed);
    if flush == Flush::Durable {
        stats.durable_commits.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

#[derive(Clone)]
pub(crate) struct LogStore {
    pub(crate) db: Arc<Database>,
    pub(crate) stats: Arc<Stats>,
    /// Where a fatal storage failure is recorded, and the data directory checked.
    pub(crate) health: Arc<Health>,
}

impl LogStore {
    fn get_meta<T: for<'a> Deserialize<'a>>(&self, key: &str) -> StResult<Option<T>> {
        let txn = self.db.begin_read().map_err(rerr)?;
        let t = open_or_empty!(txn, META, None);
        match t.get(key).map_err(rerr)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(rerr)?)),
            None => Ok(None),
        }
    }

    fn put_meta<T: Serialize>(&self, key: &str, v: &T, flush: Flush) -> StResult<()> {
        let bytes = serde_json::to_vec(v).map_err(|e| self.health.write_error(e))?;
        let txn = self.db.begin_write().map_err(|e| self.health.write_error(e))?;
        {
            let mut t = txn.open_table(META).map_err(|e| self.health.write_error(e))?;
            t.insert(key, bytes.as_slice()).map_err(|e| self.health.write_error(e))?;
        }
        commit(txn, flush, &self.stats, &self.health)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> StResult<Vec<Entry<TypeConfig>>> {
        let txn = self.db.begin_read().map_err(rerr)?;
        let t = open_or_empty!(txn, LOG, Vec::new());
        let start = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => x.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let mut out = Vec::new();
        for item in t.range(start..).map_err(rerr)? {
            let (k, v) = item.map_err(rerr)?;
            if !range.contains(&k.value()) {
                break;
            }
            out.push(decode(v.value()).map_err(rerr)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> StResult<LogState<TypeConfig>> {
        // One read transaction, so last_purged and the log's last entry describe the same state.
        let txn = self.db.begin_read().map_err(rerr)?;
        let last_purged_log_id: Option<LogId<NodeId>> = match txn.open_table(META) {
            Ok(t) => match t.get("last_purged").map_err(rerr)? {
                Some(v) => Some(serde_json::from_slice(v.value()).map_err(rerr)?),
                None => None,
            },
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(rerr(e)),
        };
        let last = match txn.open_table(LOG) {
            Ok(t) => match t.last().map_err(rerr)? {
                Some((_, v)) => Some(decode::<Entry<TypeConfig>>(v.value()).map_err(rerr)?.log_id),
                None => None,
            },
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(rerr(e)),
        };
        Ok(LogState { last_purged_log_id, last_log_id: last.or(last_purged_log_id) })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StResult<()> {
        self.put_meta("vote", vote, Flush::Durable)
    }

    async fn read_vote(&mut self) -> StResult<Option<Vote<NodeId>>> {
        self.get_meta("vote")
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StResult<()> {
        // Lazy: losing it in a crash only means re-committing entries the durable log holds.
        self.put_meta("committed", &committed, Flush::Lazy)
    }

    async fn read_committed(&mut self) -> StResult<Option<LogId<NodeId>>> {
        Ok(self.get_meta::<Option<LogId<NodeId>>>("committed")?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        // Every write batch passes here: never acknowledge one into a removed directory.
        if let Err(fatal) = self.health.check() {
            return Err(StorageIOError::<NodeId>::write(&fatal.error()).into());
        }
        let txn = self.db.begin_write().map_err(|e| self.health.write_error(e))?;
        {
            let mut t = txn.open_table(LOG).map_err(|e| self.health.write_error(e))?;
            for e in entries {
                let bytes = encode(&e).map_err(|e| self.health.write_error(e))?;
                t.insert(e.log_id.index, bytes.as_slice()).map_err(|e| self.health.write_error(e))?;
            }
        }
        commit(txn, Flush::Durable, &self.stats, &self.health)?;
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StResult<()> {
        let txn = self.db.begin_write().map_err(|e| self.health.write_error(e))?;
        {
            let mut t = txn.open_table(LOG).map_err(|e| self.health.write_error(e))?;
            t.retain_in(log_id.index.., |_, _| false).map_err(|e| self.health.write_error(e))?;
        }
        commit(txn, Flush::Durable, &self.stats, &self.health)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StResult<()> {
        // One transaction: a crash between recording last_purged and removing the entries would
        // otherwise leave a log state that contradicts itself.
        let bytes = serde_json::to_vec(&log_id).map_err(|e| self.health.write_error(e))?;
        let txn = self.db.begin_write().map_err(|e| self.health.write_error(e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.health.write_error(e))?;
            meta.insert("last_purged", bytes.as_slice()).map_err(|e| self.health.write_error(e))?;
            let mut t = txn.open_table(LOG).map_err(|e| self.health.write_error(e))?;
            t.retain_in(..=log_id.index, |_, _| false).map_err(|e| self.health.write_error(e))?;
        }
        commit(txn, Flush::Durable, &self.stats, &self.health)
    }
}

#[derive(Serialize, Deserialize, Default, Clone)]
struct SmMeta {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotBlob {
    meta: SnapshotMeta<NodeId, BasicNode>,
    #[serde(with = "crate::encoding::base64_bytes")]
    data: Vec<u8>,
}

#[derive(Clone)]
pub(crate) struct StateMachine {
    pub(crate) db: Arc<Database>,
    /// Where every applied entry is published, after its commit.
    pub(crate) feed: Arc<Feed>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) health: Arc<Health>,
}

impl StateMachine {
    fn meta(&self) -> StResult<SmMeta> {
        let txn = self.db.begin_read().map_err(rerr)?;
        meta_in(&txn)
    }
}

fn meta_in(txn: &redb::ReadTransaction) -> StResult<SmMeta> {
    let t = open_or_empty!(txn, SM_META, SmMeta::default());
    match t.get("meta").map_err(rerr)? {
        Some(v) => serde_json::from_slice(v.value()).map_err(rerr),
        None => Ok(SmMeta::default()),
    }
}

/// The applied revision (0 if none) and every record, read in one transaction so they agree.
pub(crate) fn snapshot(db: &Database) -> StResult<(u64, BTreeMap<String, Record>)> {
    let txn = db.begin_read().map_err(rerr)?;
    let applied = meta_in(&txn)?.last_applied.map_or(0, |l| l.index);
    Ok((applied, dump_in(&txn)?))
}

/// The applied revision (0 if none).
pub(crate) fn applied(db: &Database) -> StResult<u64> {
    let txn = db.begin_read().map_err(rerr)?;
    Ok(meta_in(&txn)?.last_applied.map_or(0, |l| l.index))
}

fn dump_in(txn: &redb::ReadTransaction) -> StResult<BTreeMap<String, Record>> {
    let t = open_or_empty!(txn, KV, BTreeMap::new());
    let mut out = BTreeMap::new();
    for item in t.iter().map_err(rerr)? {
        let (k, v) = item.map_err(rerr)?;
        let (revision, value) = v.value();
        out.insert(k.value().to_string(), Record { revision, value: value.to_vec() });
    }
    Ok(out)
}

/// Applies one transaction inside the write transaction `kv`; the ops of an applied one are
/// appended to `applied_ops` for the change feed.
fn apply_request(
    kv: &mut redb::Table<&str, (u64, &[u8])>,
    request: &Request,
    revision: u64,
    applied_ops: &mut Vec<Op>,
    health: &Health,
) -> StResult<Response> {
    for c in &request.compare {
        let actual = kv.get(c.key.as_str()).map_err(|e| health.write_error(e))?.map(|v| v.value().0);
        if actual != c.revision {
            return Ok(Response::Conflict { key: c.key.clone(), expected: c.revision, actual });
        }
    }
    for op in &request.ops {
        match op {
            crate::Op::Put { key, value } => {
                kv.insert(key.as_str(), (revision, value.as_slice())).map_err(|e| health.write_error(e))?;
            }
            crate::Op::Delete { key } => {
                kv.remove(key.as_str()).map_err(|e| health.write_error(e))?;
            }
        }
    }
    applied_ops.extend(request.ops.iter().cloned());
    Ok(Response::Applied { revision })
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> StResult<Snapshot<TypeConfig>> {
        // One read transaction: the data and the log id it claims to be at must agree.
        let (meta, records) = {
            let txn = self.db.begin_read().map_err(rerr)?;
            (meta_in(&txn)?, dump_in(&txn)?)
        };
        let data = serde_json::to_vec(&records).map_err(rerr)?;
        let snapshot_id = match &meta.last_applied {
            Some(l) => format!("{}-{}", l.leader_id, l.index),
            None => "empty".to_string(),
        };
        let smeta = SnapshotMeta { last_log_id: meta.last_applied, last_membership: meta.membership, snapshot_id };
        let blob = encode(&SnapshotBlob { meta: smeta.clone(), data: data.clone() })
            .map_err(|e| self.health.write_error(e))?;
        let txn = self.db.begin_write().map_err(|e| self.health.write_error(e))?;
        {
            let mut t = txn.open_table(SM_META).map_err(|e| self.health.write_error(e))?;
            t.insert("snapshot", blob.as_slice()).map_err(|e| self.health.write_error(e))?;
        }
        commit(txn, Flush::Durable, &self.stats, &self.health)?;
        Ok(Snapshot { meta: smeta, snapshot: Box::new(Cursor::new(data)) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> StResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>)> {
        let m = self.meta()?;
        Ok((m.last_applied, m.membership))
    }

    async fn apply<I>(&mut self, entries: I) -> StResult<Vec<Vec<Response>>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut meta = self.meta()?;
        let mut responses = Vec::new();
        let mut changes = Vec::new();
        let txn = self.db.begin_write().map_err(|e| self.health.write_error(e))?;
        {
            let mut kv = txn.open_table(KV).map_err(|e| self.health.write_error(e))?;
            for e in entries {
                meta.last_applied = Some(e.log_id);
                let mut ops = Vec::new();
                match e.payload {
                    EntryPayload::Blank => responses.push(Vec::new()),
                    EntryPayload::Normal(batch) => {
                        let mut answers = Vec::with_capacity(batch.0.len());
                        for request in &batch.0 {
                            answers.push(apply_request(&mut kv, request, e.log_id.index, &mut ops, &self.health)?);
                        }
                        responses.push(answers);
                    }
                    EntryPayload::Membership(m) => {
                        meta.membership = StoredMembership::new(Some(e.log_id), m);
                        responses.push(Vec::new());
                    }
                }
                changes.push(Change { revision: e.log_id.index, ops });
            }
            let mut mt = txn.open_table(SM_META).map_err(|e| self.health.write_error(e))?;
            let bytes = serde_json::to_vec(&meta).map_err(|e| self.health.write_error(e))?;
            mt.insert("meta", bytes.as_slice()).map_err(|e| self.health.write_error(e))?;
        }
        // Lazy: after a crash openraft re-applies these entries from the durable log.
        commit(txn, Flush::Lazy, &self.stats, &self.health)?;
        // Only now: a watcher must never see a change the database does not hold.
        for change in changes {
            self.feed.publish(change);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> StResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StResult<()> {
        let data = snapshot.into_inner();
        let records: BTreeMap<String, Record> = serde_json::from_slice(&data).map_err(rerr)?;
        let smeta = SmMeta { last_applied: meta.last_log_id, membership: meta.last_membership.clone() };
        let blob = encode(&SnapshotBlob { meta: meta.clone(), data }).map_err(|e| self.health.write_error(e))?;
        let txn = self.db.begin_write().map_err(|e| self.health.write_error(e))?;
        {
            txn.delete_table(KV).map_err(|e| self.health.write_error(e))?;
            let mut kv = txn.open_table(KV).map_err(|e| self.health.write_error(e))?;
            for (k, r) in &records {
                kv.insert(k.as_str(), (r.revision, r.value.as_slice())).map_err(|e| self.health.write_error(e))?;
            }
            let mut mt = txn.open_table(SM_META).map_err(|e| self.health.write_error(e))?;
            mt.insert("meta", serde_json::to_vec(&smeta).map_err(|e| self.health.write_error(e))?.as_slice())
                .map_err(|e| self.health.write_error(e))?;
            mt.insert("snapshot", blob.as_slice()).map_err(|e| self.health.write_error(e))?;
        }
        commit(txn, Flush::Durable, &self.stats, &self.health)?;
        // The data jumped; the feed's history no longer connects to it.
        self.feed.reset(meta.last_log_id.map_or(0, |l| l.index));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StResult<Option<Snapshot<TypeConfig>>> {
        let txn = self.db.begin_read().map_err(rerr)?;
        let t = open_or_empty!(txn, SM_META, None);
        match t.get("snapshot").map_err(rerr)? {
            Some(v) => {
                let b: SnapshotBlob = decode(v.value()).map_err(rerr)?;
                Ok(Some(Snapshot { meta: b.meta, snapshot: Box::new(Cursor::new(b.data)) }))
            }
            None => Ok(None),
        }
    }
}

/// Checks a copy of a database file, in memory, before the real file is opened: redb writes to the
/// file it opens (its header on every open, a repair after a crash), and trusts a cleanly closed
/// file without verifying it, so damage found only after opening the real file would leave it
/// changed. Here redb opens the copy (recovering it if the node crashed), verifies every page's
/// checksum, and halo decodes everything it will read at start-up. Returns why the file is
/// unusable.
pub(crate) fn verify_image(bytes: Vec<u8>) -> Result<(), String> {
    use redb::StorageBackend;
    let backend = Image(Arc::new(redb::backends::InMemoryBackend::new()));
    backend.set_len(bytes.len() as u64).map_err(|e| e.to_string())?;
    backend.write(0, &bytes).map_err(|e| e.to_string())?;
    drop(bytes);
    // redb may panic on a damaged file instead of returning an error; on a copy that is just
    // another way of saying "damaged".
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<(), String> {
        // A cleanly closed file must open as it is: redb's read-only open takes the recorded
        // commit and refuses a damaged commit slot instead of falling back to the older one.
        let clean = match Database::builder().open_read_only_with_backend(backend.clone()) {
            Ok(_) => true,
            // Not closed cleanly (the node crashed): redb recovers it on open.
            Err(redb::DatabaseError::RepairAborted) => false,
            Err(e) => return Err(format!("the file is damaged: {e}")),
        };
        // A recovery that has to drop the last commit because its pages do not verify would lose
        // an acknowledged write (or hide damage): refuse it rather than roll back silently. redb
        // reports progress 0.3 only on that path.
        let rolled_back = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = rolled_back.clone();
        let mut builder = Database::builder();
        builder.set_repair_callback(move |session| {
            if session.progress() > 0.0 && session.progress() < 0.5 {
                seen.store(true, Ordering::Relaxed);
                session.abort();
            }
        });
        let mut db = match builder.create_with_backend(backend) {
            Ok(db) => db,
            Err(_) if rolled_back.load(Ordering::Relaxed) => {
                return Err("the file is damaged: its last commit does not verify".into());
            }
            Err(e) => return Err(format!("the file is damaged: {e}")),
        };
        if !clean {
            tracing::warn!("the cluster database was not closed cleanly; redb recovers it");
        }
        match db.check_integrity() {
            Ok(true) => {}
            Ok(false) => return Err("the file is damaged: redb's integrity check failed".into()),
            Err(e) => return Err(format!("the file is damaged: {e}")),
        }
        decode_all(&db).map_err(|e| format!("the file is damaged: {e}"))
    }));
    checked.unwrap_or_else(|_| Err("the file is damaged: redb could not read it".into()))
}

/// The in-memory copy, shared so a read-only open can look at it before the recovering one.
#[derive(Debug, Clone)]
struct Image(Arc<redb::backends::InMemoryBackend>);

impl redb::StorageBackend for Image {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.0.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.0.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.0.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.0.write(offset, data)
    }
}

/// Reads and decodes every table halo stores.
fn decode_all(db: &Database) -> StResult<()> {
    let txn = db.begin_read().map_err(rerr)?;
    meta_in(&txn)?;
    dump_in(&txn)?;
    match txn.open_table(META) {
        Ok(t) => {
            for item in t.iter().map_err(rerr)? {
                let (k, v) = item.map_err(rerr)?;
                match k.value() {
                    "vote" => drop(serde_json::from_slice::<Vote<NodeId>>(v.value()).map_err(rerr)?),
                    "committed" => drop(serde_json::from_slice::<Option<LogId<NodeId>>>(v.value()).map_err(rerr)?),
                    "last_purged" => drop(serde_json::from_slice::<LogId<NodeId>>(v.value()).map_err(rerr)?),
                    _ => {}
                }
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(rerr(e)),
    }
    match txn.open_table(LOG) {
        Ok(t) => {
            for item in t.iter().map_err(rerr)? {
                let (_, v) = item.map_err(rerr)?;
                drop(decode::<Entry<TypeConfig>>(v.value()).map_err(rerr)?);
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(rerr(e)),
    }
    let t = open_or_empty!(txn, SM_META, ());
    if let Some(v) = t.get("snapshot").map_err(rerr)? {
        drop(decode::<SnapshotBlob>(v.value()).map_err(rerr)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use openraft::testing::{StoreBuilder, Suite};

    /// A fresh log store and state machine on a redb file in a temporary directory (the guard).
    struct Builder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
        async fn build(&self) -> StResult<(tempfile::TempDir, LogStore, StateMachine)> {
            use std::os::unix::fs::MetadataExt;
            let dir = tempfile::tempdir().map_err(werr)?;
            let db = Arc::new(Database::create(dir.path().join("cluster.redb")).map_err(werr)?);
            let lock = dir.path().join("lock");
            let m = std::fs::File::create(&lock).and_then(|f| f.metadata()).map_err(werr)?;
            let health = Arc::new(Health::new(dir.path(), &lock, (m.dev(), m.ino())));
            let feed = Feed::new(0, crate::feed::HISTORY);
            let stats = Arc::new(Stats::default());
            let log = LogStore { db: db.clone(), stats: stats.clone(), health: health.clone() };
            Ok((dir, log, StateMachine { db, feed, stats, health }))
        }
    }

    #[test]
    fn the_redb_store_passes_openraft_storage_suite() {
        Suite::test_all(Builder).unwrap();
    }
}
