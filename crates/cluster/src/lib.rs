//! # halo-cluster — the cluster database
//!
//! A replicated, transactional key-value store of documents: the configuration, ownership and
//! persistent state of the cluster. Consensus is openraft (a one-member cluster on a single node;
//! adding nodes adds members), storage is one redb file in the node's data directory. Writes are
//! transactions with compare-on-revision guards (like etcd's); every key carries the revision (log
//! index) of its last write.
//!
//! This crate knows nothing of resources or groups: it stores bytes under keys. It must not
//! validate documents (the engine does, before writing) and must never reset or repair a
//! database silently: a locked or unreadable data directory is an error that names the file.
//!
//! Members talk through the [`transport::Transport`] seam: a single node uses
//! [`transport::Unconnected`], tests of several members in one process [`transport::Loopback`].
//!
//! It owns the change feed too: every applied log entry is published as a [`Change`], so a
//! reader takes a [`Snapshot`] and then [`ClusterDb::watch`]es from its revision, missing
//! nothing and seeing nothing twice.

pub mod access;
mod boot;
mod encoding;
mod feed;
mod health;
pub mod membership;
mod network;
pub mod peer;
mod store;
pub mod transport;

pub use boot::{BootOptions, JOIN_DEADLINE};
pub use feed::Watch;
pub use membership::{JoinRequest, NodeRecord, PromoteRequest};
pub use peer::{AppHandler, Caller, PeerService, PeerTls, TcpTransport};
use transport::{DynTransport, PeerMessage, PeerReply, Refusal, TransportError};

use nix::fcntl::{Flock, FlockArg};
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, Config, Raft, ServerState};
use redb::{Database, ReadableDatabase};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Cursor;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The node id of the member that forms a new cluster.
pub const FIRST_NODE_ID: u64 = 1;

/// One key's stored value and the revision (log index) that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The log index of the write that set this value.
    pub revision: u64,
    /// The value.
    #[serde(with = "encoding::base64_bytes")]
    pub value: Vec<u8>,
}

/// A guard: the key's current revision must be `revision` (`None`: the key must not exist).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    /// The key.
    pub key: String,
    /// The revision it must have, or `None` for "absent".
    pub revision: Option<u64>,
}

/// One change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Set a key.
    Put {
        /// The key.
        key: String,
        /// The value.
        #[serde(with = "encoding::base64_bytes")]
        value: Vec<u8>,
    },
    /// Remove a key (absent is fine).
    Delete {
        /// The key.
        key: String,
    },
}

/// A transaction: if every guard holds, every op is applied, atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Guards.
    pub compare: Vec<Compare>,
    /// Changes.
    pub ops: Vec<Op>,
}

/// A transaction's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Applied at this revision.
    Applied {
        /// The log index of the write.
        revision: u64,
    },
    /// A guard failed; nothing changed.
    Conflict {
        /// The key whose guard failed.
        key: String,
        /// The revision the guard wanted.
        expected: Option<u64>,
        /// The revision the key has.
        actual: Option<u64>,
    },
}

/// One log entry as applied to the state machine, delivered in revision order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The log index of the entry (the revision every key it wrote now carries).
    pub revision: u64,
    /// The ops of every transaction in the entry that was applied (guards held), in order.
    /// Empty for blank and membership entries and for entries whose transactions all conflicted.
    pub ops: Vec<Op>,
}

/// Everything the database holds, as of one revision.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The last applied log index, 0 if none.
    pub revision: u64,
    /// Every key and its record.
    pub records: BTreeMap<String, Record>,
}

/// How many redb commits this node's storage has made since it opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// Commits flushed to disk before returning (each one an fsync).
    pub durable_commits: u64,
    /// Every commit, durable or not.
    pub commits: u64,
}

/// What one log entry carries: transactions committed together (group commit), each applied on
/// its own, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch(pub Vec<Request>);

openraft::declare_raft_types!(
    /// halo's Raft types.
    pub TypeConfig:
        D = Batch,
        R = Vec<Response>,
        NodeId = u64,
        Node = BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// What can go wrong with the cluster database.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Another process holds the data directory.
    #[error("data directory {0} is in use by another halo node (lock held on {0}/lock)")]
    Locked(PathBuf),
    /// The data directory or a file in it could not be used.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The database file could not be opened: corrupt, truncated, or not a halo database. It is
    /// left untouched.
    #[error("cannot open the cluster database {path}: {reason} (the file was left as it is)")]
    Database {
        /// The file.
        path: PathBuf,
        /// What redb said.
        reason: String,
    },
    /// Reading the database failed.
    #[error("reading the cluster database: {0}")]
    Read(String),
    /// Consensus failed (the node is shutting down, or storage failed).
    #[error("consensus: {0}")]
    Raft(String),
    /// A watch asked for changes older than the change history keeps.
    #[error("changes after revision {requested} are no longer kept; the oldest a watch can start after is {oldest}")]
    Compacted {
        /// The revision the watch was to start after.
        requested: u64,
        /// The oldest revision a watch can start after now.
        oldest: u64,
    },
    /// A watcher fell behind the change history (or a snapshot replaced the data): re-read a
    /// snapshot and watch again from its revision.
    #[error("the watcher fell behind the change history; re-read a snapshot")]
    Lagged,
    /// The database shut down.
    #[error("the cluster database is shut down")]
    Closed,
    /// The data directory was removed or replaced while the node ran (its lock file is gone or is
    /// another file): the database takes no more writes, and the node must restart.
    #[error(
        "the data directory {path} was removed or replaced while the node ran; the cluster database takes no more writes (restart the node)"
    )]
    DataDirectoryLost {
        /// The data directory.
        path: PathBuf,
    },
    /// A write failed because the disk (or quota) holding the data directory is full. Consensus
    /// stopped with it: the node must restart once space is free.
    #[error(
        "the disk holding {path} is full; the cluster database takes no more writes until the node restarts with space free"
    )]
    DiskFull {
        /// The data directory.
        path: PathBuf,
    },
    /// No node of that name is registered.
    #[error("no node named {0:?} is in the cluster")]
    UnknownNode(String),
    /// A node name that is not allowed.
    #[error("invalid node name {0:?}: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit")]
    InvalidNodeName(String),
    /// This node's data directory belongs to another node.
    #[error(
        "the data directory {path} belongs to node {owner:?}, not {name:?}; use --name {owner} or another directory"
    )]
    WrongNode {
        /// The directory.
        path: PathBuf,
        /// The node it belongs to.
        owner: String,
        /// The name given.
        name: String,
    },
    /// A peer could not be reached or answered with an error.
    #[error("{0}")]
    Peer(String),
    /// A credential (token, certificate) was refused: said why, never with the secret.
    #[error("refused: {0}")]
    Denied(String),
    /// No token of that id.
    #[error("{0}")]
    UnknownToken(String),
    /// Certificates or TLS settings could not be made or read.
    #[error("{0}")]
    Security(String),
    /// This node cannot write: another member leads (or no leader is known yet).
    #[error("not the leader; {}", leader_text(*.leader_id, .leader_addr.as_deref()))]
    NotLeader {
        /// The leader's node id, if known.
        leader_id: Option<u64>,
        /// The leader's address, if known.
        leader_addr: Option<String>,
    },
}

/// Node names: what DNS labels and file names both accept.
pub fn check_node_name(name: &str) -> Result<(), ClusterError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric());
    if ok { Ok(()) } else { Err(ClusterError::InvalidNodeName(name.to_string())) }
}

fn leader_text(id: Option<u64>, addr: Option<&str>) -> String {
    match (id, addr) {
        (Some(id), Some(addr)) => format!("the leader is node {id} at {addr}"),
        (Some(id), None) => format!("the leader is node {id}"),
        (None, _) => "no leader is known".to_string(),
    }
}

impl ClusterError {
    /// A copy for each waiter of a failed batch (`io::Error` is not `Clone`, but a batch never
    /// fails with one).
    fn duplicate(&self) -> ClusterError {
        match self {
            ClusterError::NotLeader { leader_id, leader_addr } => {
                ClusterError::NotLeader { leader_id: *leader_id, leader_addr: leader_addr.clone() }
            }
            ClusterError::DataDirectoryLost { path } => ClusterError::DataDirectoryLost { path: path.clone() },
            ClusterError::DiskFull { path } => ClusterError::DiskFull { path: path.clone() },
            ClusterError::Raft(reason) => ClusterError::Raft(reason.clone()),
            other => ClusterError::Raft(other.to_string()),
        }
    }
}

/// Transactions waiting for the writer, each with where to send its outcome.
pub(crate) type Pending = (Request, oneshot::Sender<Result<Response, ClusterError>>);

/// The most transactions one log entry carries.
const MAX_BATCH: usize = 512;

/// Group commit: takes every transaction waiting (up to [`MAX_BATCH`]) into one log entry.
async fn commit_batches(
    raft: Raft<TypeConfig>,
    health: Arc<health::Health>,
    mut queue: mpsc::UnboundedReceiver<Pending>,
) {
    while let Some(first) = queue.recv().await {
        let mut pending = vec![first];
        while pending.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(p) => pending.push(p),
                Err(_) => break,
            }
        }
        let (requests, replies): (Vec<Request>, Vec<_>) = pending.into_iter().unzip();
        // Checked here too (the log store checks every append) so the writer learns why, not
        // just that consensus stopped.
        if let Err(fatal) = health.check() {
            for reply in replies {
                let _ = reply.send(Err(fatal.error()));
            }
            continue;
        }
        match raft.client_write(Batch(requests)).await {
            Ok(r) => {
                let mut responses = r.data.into_iter();
                for reply in replies {
                    let outcome = responses.next().ok_or_else(|| {
                        ClusterError::Raft("the state machine answered fewer transactions than it got".into())
                    });
                    let _ = reply.send(outcome);
                }
            }
            Err(e) => {
                if let RaftError::Fatal(
                    f @ (openraft::error::Fatal::StorageError(_) | openraft::error::Fatal::Panicked),
                ) = &e
                {
                    // openraft 0.9 stops its core for good on a storage error: nothing but a
                    // restart brings this node back.
                    health.fail(health::Fatal::Storage(f.to_string()));
                }
                // The recorded cause (a full disk, a lost directory) says more than "stopped".
                let error = health.fatal().map_or_else(|| write_error(e), |f| f.error());
                for reply in replies {
                    let _ = reply.send(Err(error.duplicate()));
                }
            }
        }
    }
}

/// What a failed `client_write` means to the caller: "not the leader" keeps who the leader is, so
/// the caller can send the write there.
fn write_error(e: RaftError<u64, ClientWriteError<u64, BasicNode>>) -> ClusterError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            ClusterError::NotLeader { leader_id: f.leader_id, leader_addr: f.leader_node.map(|n| n.addr) }
        }
        other => ClusterError::Raft(other.to_string()),
    }
}

/// What an operator can do about a database file halo refuses.
const HOW_TO_PROCEED: &str =
    "the file was left untouched; restore it from a backup, or remove it to start a new, empty cluster";

/// Opens the database file at `path`. Only a missing file starts a new cluster; anything else must
/// be a database that checks out, and a file that does not is refused without a byte changed.
fn open_database(path: &Path) -> Result<Database, ClusterError> {
    let refuse = |reason: String| ClusterError::Database { path: path.to_path_buf(), reason };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(path = %path.display(), "no cluster database yet: creating a new one");
            return Database::create(path).map_err(|e| refuse(e.to_string()));
        }
        Err(source) => return Err(ClusterError::Io { path: path.to_path_buf(), source }),
        // redb would initialize an empty file as a new database: a truncated file (a full disk, a
        // failed restore) would silently become an empty cluster.
        Ok(m) if m.len() == 0 => {
            return Err(refuse(format!("the file is empty (0 bytes), not a cluster database; {HOW_TO_PROCEED}")));
        }
        Ok(_) => {}
    }
    let bytes = std::fs::read(path).map_err(|source| ClusterError::Io { path: path.to_path_buf(), source })?;
    if let Err(reason) = store::verify_image(bytes) {
        return Err(refuse(format!("{reason}; {HOW_TO_PROCEED}")));
    }
    // The image checked out, so the real open (which writes redb's header, and repeats any crash
    // recovery the check did) works on a sound file.
    Database::open(path).map_err(|e| refuse(format!("{e}; {HOW_TO_PROCEED}")))
}

/// The cluster database of this node.
pub struct ClusterDb {
    node_id: u64,
    /// When this member last heard from a leader (see [`PeerService`]).
    leader_heard: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    /// Turns true when the database shuts down: the peer server and its connections end.
    stop_serving: tokio::sync::watch::Sender<bool>,
    transport: Arc<dyn DynTransport>,
    /// The peer channel's TLS settings (empty for a database without the peer channel).
    tls: Arc<PeerTls>,
    app: Arc<std::sync::RwLock<Option<Arc<dyn AppHandler>>>>,
    raft: Raft<TypeConfig>,
    writes: mpsc::UnboundedSender<Pending>,
    db: Arc<Database>,
    feed: Arc<feed::Feed>,
    stats: Arc<store::Stats>,
    path: PathBuf,
    health: Arc<health::Health>,
    /// Checks the data directory every second, so an idle node learns of its loss too.
    watchdog: tokio::task::JoinHandle<()>,
    _lock: Flock<File>,
}

impl ClusterDb {
    /// Opens (or creates) the database in `data_dir`, forms a one-member cluster on first use,
    /// and waits until this node leads it. `address` is the node's API address, recorded in the
    /// membership. A second process on the same directory is refused.
    pub async fn open(data_dir: &Path, address: &str) -> Result<ClusterDb, ClusterError> {
        let db = ClusterDb::open_with(data_dir, FIRST_NODE_ID, transport::Unconnected).await?;
        db.form(BTreeMap::from([(FIRST_NODE_ID, address.to_string())])).await?;
        db.raft
            .wait(Some(Duration::from_secs(30)))
            .state(ServerState::Leader, "this node leads its one-member cluster")
            .await
            .map_err(|e| ClusterError::Raft(e.to_string()))?;
        Ok(db)
    }

    /// Opens (or creates) the database in `data_dir` as member `node_id`, talking to the other
    /// members through `transport`, and starts consensus; it neither forms a cluster (see
    /// [`ClusterDb::form`]) nor waits for a leader. A second process on the same directory is
    /// refused.
    pub async fn open_with<T: transport::Transport>(
        data_dir: &Path,
        node_id: u64,
        transport: T,
    ) -> Result<ClusterDb, ClusterError> {
        // Only the node's user may look inside: the database holds the CA key and token hashes.
        halo_security::files::private_dir(data_dir).map_err(|e| ClusterError::Security(e.to_string()))?;
        let lock_path = data_dir.join("lock");
        let lock_file = OpenOptions::new()
            .mode(0o600)
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| ClusterError::Io { path: lock_path.clone(), source })?;
        let lock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock)
            .map_err(|_| ClusterError::Locked(data_dir.to_path_buf()))?;
        let lock_meta = lock.metadata().map_err(|source| ClusterError::Io { path: lock_path.clone(), source })?;
        let health = Arc::new(health::Health::new(
            data_dir,
            &lock_path,
            (std::os::unix::fs::MetadataExt::dev(&lock_meta), std::os::unix::fs::MetadataExt::ino(&lock_meta)),
        ));
        let path = data_dir.join("cluster.redb");
        let db = Arc::new(open_database(&path)?);
        halo_security::files::restrict(&path).map_err(|e| ClusterError::Security(e.to_string()))?;
        // The feed starts where the stored state machine is; entries openraft re-applies on
        // start-up are published from there.
        let applied = store::applied(&db).map_err(|e| ClusterError::Read(e.to_string()))?;
        let feed = feed::Feed::new(applied, feed::HISTORY);
        let stats = Arc::new(store::Stats::default());
        let transport = Arc::new(transport);
        let config = Config {
            cluster_name: "halo".into(),
            // Elections must end well inside one ownership lease (800 ms by default), so that a
            // leader change — a frozen node waking up with a higher term forces one — does not
            // cost the other nodes their leases.
            heartbeat_interval: 50,
            election_timeout_min: 150,
            election_timeout_max: 300,
            ..Default::default()
        }
        .validate()
        .map_err(|e| ClusterError::Raft(e.to_string()))?;
        let raft = Raft::<TypeConfig>::new(
            node_id,
            Arc::new(config),
            network::Network { transport: transport.clone() },
            store::LogStore { db: db.clone(), stats: stats.clone(), health: health.clone() },
            store::StateMachine { db: db.clone(), feed: feed.clone(), stats: stats.clone(), health: health.clone() },
        )
        .await
        .map_err(|e| ClusterError::Raft(e.to_string()))?;
        let (writes, queue) = mpsc::unbounded_channel();
        tokio::spawn(commit_batches(raft.clone(), health.clone(), queue));
        let watchdog = tokio::spawn(watch_directory(Arc::downgrade(&health)));
        let stop_serving = tokio::sync::watch::Sender::new(false);
        let leader_heard = Arc::default();
        tokio::spawn(guard_elections(raft.clone(), transport.clone(), node_id, stop_serving.subscribe()));
        Ok(ClusterDb {
            node_id,
            leader_heard,
            stop_serving,
            transport,
            tls: Arc::default(),
            app: Arc::default(),
            raft,
            writes,
            db,
            feed,
            stats,
            path,
            health,
            watchdog,
            _lock: lock,
        })
    }

    /// Forms a cluster of `members` (node id → address) unless this node already belongs to
    /// one. Call it on one member, once every member is open and reachable.
    pub async fn form(&self, members: BTreeMap<u64, String>) -> Result<(), ClusterError> {
        let initialized = self.raft.is_initialized().await.map_err(|e| ClusterError::Raft(e.to_string()))?;
        if initialized {
            return Ok(());
        }
        let members: BTreeMap<u64, BasicNode> =
            members.into_iter().map(|(id, addr)| (id, BasicNode { addr })).collect();
        match self.raft.initialize(members).await {
            Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(ClusterError::Raft(e.to_string())),
        }
    }

    /// This member's consensus handle: what a transport delivers peers' messages to (see
    /// [`transport::Loopback::register`]) and where membership and metrics are read.
    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This member's node id.
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// What answers peers on this node: serve it with [`peer::serve`], or register it with a
    /// [`transport::Loopback`].
    pub fn service(&self) -> PeerService {
        PeerService {
            raft: self.raft.clone(),
            writes: self.writes.clone(),
            db: Arc::downgrade(&self.db),
            app: self.app.clone(),
            transport: self.transport.clone(),
            leader_heard: self.leader_heard.clone(),
        }
    }

    /// Serves peers on `listener` (the TCP peer channel) until the database shuts down.
    pub fn serve_peers(&self, listener: tokio::net::TcpListener) {
        tokio::spawn(peer::serve(listener, self.service(), self.tls.clone(), self.stop_serving.subscribe()));
    }

    /// The peer channel's TLS settings: what this node presents and trusts.
    pub fn tls(&self) -> &Arc<PeerTls> {
        &self.tls
    }

    /// Sets what answers [`PeerMessage::App`] on this node.
    pub fn set_app_handler(&self, handler: Arc<dyn AppHandler>) {
        *self.app.write().unwrap_or_else(|p| p.into_inner()) = Some(handler);
    }

    /// The leader as this node knows it: its id and peer address.
    pub fn leader(&self) -> Option<(u64, String)> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let id = metrics.current_leader?;
        let addr = metrics.membership_config.membership().get_node(&id).map(|n| n.addr.clone())?;
        Some((id, addr))
    }

    /// Whether this node leads right now (as far as it knows).
    pub fn is_leader(&self) -> bool {
        leads(&self.raft).is_ok()
    }

    /// The members: node id → (peer address, voter?).
    pub fn members(&self) -> BTreeMap<u64, (String, bool)> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let membership = metrics.membership_config.membership();
        let voters: std::collections::BTreeSet<u64> = membership.voter_ids().collect();
        membership.nodes().map(|(id, n)| (*id, (n.addr.clone(), voters.contains(id)))).collect()
    }

    /// The node registry, as this node has applied it.
    pub fn nodes(&self) -> Result<Vec<NodeRecord>, ClusterError> {
        list_keys(&self.db, membership::NODES)?
            .into_iter()
            .map(|(_, r)| serde_json::from_slice(&r.value).map_err(|e| ClusterError::Read(e.to_string())))
            .collect()
    }

    /// Sends a message of the layer above to member `to` and returns its answer.
    pub async fn send_app(&self, to: u64, body: Vec<u8>) -> Result<Vec<u8>, ClusterError> {
        if to == self.node_id {
            let handler = self.app.read().unwrap_or_else(|p| p.into_inner()).clone();
            let Some(handler) = handler else { return Err(ClusterError::Peer("no handler on this node yet".into())) };
            return handler.handle(body).await.map_err(|e| ClusterError::Peer(e.to_string()));
        }
        let addr = self
            .members()
            .get(&to)
            .map(|(a, _)| a.clone())
            .ok_or_else(|| ClusterError::Peer(format!("node {to} is not a member")))?;
        match self.transport.send_boxed(to, &addr, PeerMessage::App(body)).await {
            Ok(PeerReply::App(Ok(reply))) => Ok(reply),
            Ok(PeerReply::App(Err(e))) => Err(ClusterError::Peer(e.to_string())),
            Ok(_) => Err(ClusterError::Peer(format!("node {to} answered with a reply of another kind"))),
            Err(e) => Err(ClusterError::Peer(e.to_string())),
        }
    }

    /// Removes node `name` from the cluster (through the leader).
    pub async fn evict(&self, name: &str) -> Result<(), ClusterError> {
        let service = self.service();
        self.through_leader(
            || async { service.evict(name).await },
            PeerMessage::Evict { name: name.to_string() },
            |reply| match reply {
                PeerReply::Evicted(r) => Some(r),
                _ => None,
            },
        )
        .await
    }

    /// Commits a transaction through consensus; returns once it is durable and applied (here
    /// too, when another member leads and the write was sent there). Transactions submitted at
    /// the same time share one log entry and one disk flush.
    pub async fn write(&self, request: Request) -> Result<Response, ClusterError> {
        if let Some(fatal) = self.health.fatal() {
            return Err(fatal.error());
        }
        let service = self.service();
        let response = self
            .through_leader(
                || async { service.commit(request.clone()).await },
                PeerMessage::Write(request.clone()),
                |reply| match reply {
                    PeerReply::Write(r) => Some(r),
                    _ => None,
                },
            )
            .await?;
        if let Response::Applied { revision } = response {
            // Applied on the leader: wait until this node has applied it too, so that a read
            // (or the change feed) here after the write sees it.
            self.raft
                .wait(Some(FORWARD_DEADLINE))
                .applied_index_at_least(Some(revision), "the forwarded write is applied here")
                .await
                .map_err(|e| ClusterError::Raft(e.to_string()))?;
        }
        Ok(response)
    }

    /// Commits a transaction only through this node's own leadership: never forwarded. A
    /// decision made by a leader (the coordinator's) must not be carried out by a successor that
    /// did not make it; a deposed leader's write fails here ([`ClusterError::NotLeader`]).
    pub async fn write_as_leader(&self, request: Request) -> Result<Response, ClusterError> {
        if let Some(fatal) = self.health.fatal() {
            return Err(fatal.error());
        }
        self.service().commit(request).await
    }

    /// Runs `here` if this node leads; otherwise sends `message` to the leader, waiting (within
    /// [`FORWARD_DEADLINE`]) through elections and leader changes. A request whose delivery
    /// broke midway is not repeated: its outcome is unknown, and the caller is told so.
    async fn through_leader<T, F, Fut>(
        &self,
        here: F,
        message: PeerMessage,
        unpack: impl Fn(PeerReply) -> Option<Result<T, Refusal>>,
    ) -> Result<T, ClusterError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, ClusterError>>,
    {
        let deadline = tokio::time::Instant::now() + FORWARD_DEADLINE;
        let mut metrics = self.raft.metrics();
        loop {
            let leader = self.leader();
            let last = match leader {
                Some((id, _)) if id == self.node_id => match here().await {
                    Err(e @ ClusterError::NotLeader { .. }) => e,
                    other => return other,
                },
                Some((id, addr)) => match self.transport.send_boxed(id, &addr, message.clone()).await {
                    Ok(PeerReply::Refused(m)) => return Err(ClusterError::Denied(m)),
                    Ok(reply) => match unpack(reply) {
                        Some(Ok(v)) => return Ok(v),
                        Some(Err(Refusal::NotLeader { leader_id })) => {
                            ClusterError::NotLeader { leader_id, leader_addr: None }
                        }
                        Some(Err(Refusal::Failed(m))) => return Err(ClusterError::Peer(m)),
                        None => {
                            return Err(ClusterError::Peer(format!("node {id} answered with a reply of another kind")));
                        }
                    },
                    Err(TransportError::Unreachable { .. }) => {
                        ClusterError::NotLeader { leader_id: Some(id), leader_addr: Some(addr) }
                    }
                    Err(e @ TransportError::Failed { .. }) => {
                        return Err(ClusterError::Peer(format!(
                            "the leader did not answer, the outcome is unknown: {e}"
                        )));
                    }
                },
                None => ClusterError::NotLeader { leader_id: None, leader_addr: None },
            };
            // Wait for news of the leadership (or a short while: a leader that is unreachable
            // changes nothing in the metrics).
            let wait = deadline.saturating_duration_since(tokio::time::Instant::now()).min(Duration::from_millis(200));
            if wait.is_zero() {
                return Err(last);
            }
            let _ = tokio::time::timeout(wait, metrics.changed()).await;
        }
    }

    /// Puts one key unconditionally.
    pub async fn put(&self, key: &str, value: Vec<u8>) -> Result<u64, ClusterError> {
        match self.write(Request { compare: vec![], ops: vec![Op::Put { key: key.into(), value }] }).await? {
            Response::Applied { revision } => Ok(revision),
            Response::Conflict { key, .. } => Err(ClusterError::Raft(format!("unexpected conflict on {key}"))),
        }
    }

    /// One key, as this node has applied it.
    pub fn get(&self, key: &str) -> Result<Option<Record>, ClusterError> {
        read_key(&self.db, key)
    }

    /// Every key starting with `prefix`, in key order.
    pub fn list(&self, prefix: &str) -> Result<Vec<(String, Record)>, ClusterError> {
        list_keys(&self.db, prefix)
    }

    /// Every key and the revision they are at, read in one redb read transaction (data and
    /// last-applied agree).
    pub fn snapshot(&self) -> Result<Snapshot, ClusterError> {
        let (revision, records) = store::snapshot(&self.db).map_err(|e| ClusterError::Read(e.to_string()))?;
        Ok(Snapshot { revision, records })
    }

    /// Changes with revision > `after`, in revision order, then every later one as it is applied
    /// (by this node's writes or replicated from others: the state machine feeds it, not
    /// [`ClusterDb::write`]). `after` older than the change history is
    /// [`ClusterError::Compacted`]; the revision of a [`ClusterDb::snapshot`] always works, even
    /// if changes were applied since (the history covers them).
    pub fn watch(&self, after: u64) -> Result<Watch, ClusterError> {
        self.feed.watch(after)
    }

    /// How many commits (and durable ones) the storage has made since the database opened.
    pub fn storage_stats(&self) -> StorageStats {
        StorageStats {
            durable_commits: self.stats.durable_commits.load(std::sync::atomic::Ordering::Relaxed),
            commits: self.stats.commits.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Resolves with the first fatal failure: the data directory removed or replaced
    /// ([`ClusterError::DataDirectoryLost`]), a full disk ([`ClusterError::DiskFull`]), or another
    /// storage error that stopped consensus. From then on every write fails; the node should log
    /// it and exit non-zero so a supervisor restarts it. [`ClusterError::Closed`] if the database
    /// is dropped first.
    pub fn fatal(&self) -> impl std::future::Future<Output = ClusterError> + Send + 'static {
        let mut state = self.health.subscribe();
        async move {
            match state.wait_for(Option::is_some).await {
                Ok(fatal) => fatal.as_ref().map_or(ClusterError::Closed, health::Fatal::error),
                Err(_) => ClusterError::Closed,
            }
        }
    }

    /// Stops consensus; the lock is released when the value is dropped.
    pub async fn shutdown(&self) -> Result<(), ClusterError> {
        self.watchdog.abort();
        self.stop_serving.send_replace(true);
        let result = self.raft.shutdown().await.map_err(|e| ClusterError::Raft(e.to_string()));
        self.feed.close();
        // openraft's storage tasks and the peer connections let go of the database a moment
        // after; wait for that (bounded), so that the directory can be opened again at once.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&self.db) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        result
    }
}

/// Whether `raft`'s member leads now (as far as it knows), or who does.
pub(crate) fn leads(raft: &Raft<TypeConfig>) -> Result<(), ClusterError> {
    let metrics = raft.metrics();
    let metrics = metrics.borrow();
    if metrics.state.is_leader() && metrics.current_leader == Some(metrics.id) {
        Ok(())
    } else {
        Err(ClusterError::NotLeader { leader_id: metrics.current_leader, leader_addr: None })
    }
}

/// How often a member checks that it reaches a majority of the voters.
const ELECTION_GUARD_EVERY: Duration = Duration::from_millis(100);

/// A voter that heard from a leader more recently than this would not vote in an election.
const LEADER_SILENCE: Duration = Duration::from_millis(150);

/// openraft 0.9 has no PreVote: a member cut off from the others (or frozen, or whose leader's
/// replication to it is backing off) starts elections it cannot win, and its term grows; that
/// higher term then makes the leader step down, and the cluster spends an election — and, for
/// the coordinator's leases, most of a lease — on nothing. So a member may start elections only
/// while a majority of the voters (itself included) would vote: reachable over the peer channel
/// and silent from any leader for [`LEADER_SILENCE`]. It asks every [`ELECTION_GUARD_EVERY`]: the
/// check PreVote makes.
async fn guard_elections<T: transport::Transport>(
    raft: Raft<TypeConfig>,
    transport: Arc<T>,
    me: u64,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut allowed = true;
    loop {
        tokio::select! {
            () = tokio::time::sleep(ELECTION_GUARD_EVERY) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let voters: Vec<(u64, String)> = {
            let metrics = raft.metrics();
            let metrics = metrics.borrow();
            let membership = metrics.membership_config.membership();
            membership.voter_ids().filter_map(|id| membership.get_node(&id).map(|n| (id, n.addr.clone()))).collect()
        };
        if !voters.iter().any(|(id, _)| *id == me) {
            continue; // Not a voter (yet): it starts no election anyway.
        }
        let silent = |ms: Option<u64>| ms.is_none_or(|ms| ms >= LEADER_SILENCE.as_millis() as u64);
        let mut reached = 1;
        for (id, addr) in voters.iter().filter(|(id, _)| *id != me) {
            let ping = tokio::time::timeout(ELECTION_GUARD_EVERY, transport.send(*id, addr, PeerMessage::Ping));
            if let Ok(Ok(PeerReply::Pong { leader_heard_ms_ago })) = ping.await
                && silent(leader_heard_ms_ago)
            {
                reached += 1;
            }
        }
        let majority = reached * 2 > voters.len();
        if majority != allowed {
            allowed = majority;
            raft.runtime_config().elect(allowed);
            tracing::info!(reached, voters = voters.len(), elections = allowed, "reach of the other voters changed");
        }
    }
}

/// How long a write (or membership request) on a follower keeps trying to reach a leader.
pub const FORWARD_DEADLINE: Duration = Duration::from_secs(5);

/// One key of the state machine.
pub(crate) fn read_key(db: &Database, key: &str) -> Result<Option<Record>, ClusterError> {
    let read = |e: &dyn std::fmt::Display| ClusterError::Read(e.to_string());
    let txn = db.begin_read().map_err(|e| read(&e))?;
    let table = match txn.open_table(store::KV) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(read(&e)),
    };
    let record = table.get(key).map_err(|e| read(&e))?.map(|v| {
        let (revision, value) = v.value();
        Record { revision, value: value.to_vec() }
    });
    Ok(record)
}

/// Every key of the state machine starting with `prefix`, in key order.
pub(crate) fn list_keys(db: &Database, prefix: &str) -> Result<Vec<(String, Record)>, ClusterError> {
    let read = |e: &dyn std::fmt::Display| ClusterError::Read(e.to_string());
    let txn = db.begin_read().map_err(|e| read(&e))?;
    let table = match txn.open_table(store::KV) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(read(&e)),
    };
    let mut out = Vec::new();
    for item in table.range(prefix..).map_err(|e| read(&e))? {
        let (k, v) = item.map_err(|e| read(&e))?;
        let key = k.value();
        if !key.starts_with(prefix) {
            break;
        }
        let (revision, value) = v.value();
        out.push((key.to_string(), Record { revision, value: value.to_vec() }));
    }
    Ok(out)
}

/// Checks the data directory every second until a fatal failure is recorded or the database is
/// dropped.
async fn watch_directory(health: std::sync::Weak<health::Health>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        match health.upgrade() {
            Some(h) if h.check().is_ok() => {}
            _ => return,
        }
    }
}

impl Drop for ClusterDb {
    fn drop(&mut self) {
        // Watchers outlive the database handle; tell them nothing more is coming.
        self.feed.close();
        self.watchdog.abort();
        self.stop_serving.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::error::{Fatal, ForwardToLeader};

    #[test]
    fn forward_to_leader_becomes_not_leader_with_the_leader() {
        let known = RaftError::APIError(ClientWriteError::ForwardToLeader(ForwardToLeader {
            leader_id: Some(2),
            leader_node: Some(BasicNode { addr: "10.0.0.2:7480".into() }),
        }));
        let e = write_error(known);
        assert!(
            matches!(&e, ClusterError::NotLeader { leader_id: Some(2), leader_addr: Some(a) } if a == "10.0.0.2:7480")
        );
        assert_eq!(e.to_string(), "not the leader; the leader is node 2 at 10.0.0.2:7480");
        assert!(matches!(e.duplicate(), ClusterError::NotLeader { leader_id: Some(2), .. }));

        let unknown = RaftError::APIError(ClientWriteError::ForwardToLeader(ForwardToLeader {
            leader_id: None,
            leader_node: None,
        }));
        assert_eq!(write_error(unknown).to_string(), "not the leader; no leader is known");

        let stopped = write_error(RaftError::Fatal(Fatal::Stopped));
        assert!(matches!(stopped, ClusterError::Raft(_)), "{stopped}");
    }
}
