//! What members say to each other, and the seam that carries it. Consensus talks through the
//! [`Transport`] trait only, so the real peer channel, an in-process [`Loopback`] for tests and
//! the single node's [`Unconnected`] are interchangeable.

use crate::TypeConfig;
use openraft::Raft;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// What nodes say to each other. Raft RPCs now; the cluster work adds heartbeats, state reports,
/// lease and move requests as variants.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum PeerMessage {
    /// Replicate log entries (or a heartbeat, with none).
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Ask for a vote.
    Vote(VoteRequest<u64>),
    /// One chunk of a snapshot.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
}

/// The answer to a [`PeerMessage`]: the receiver's response, or the error its Raft returned.
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerReply {
    /// To [`PeerMessage::AppendEntries`].
    AppendEntries(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    /// To [`PeerMessage::Vote`].
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    /// To [`PeerMessage::InstallSnapshot`].
    InstallSnapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
}

impl Clone for PeerReply {
    // openraft's responses are not Clone; rebuild them.
    fn clone(&self) -> Self {
        match self {
            PeerReply::AppendEntries(r) => PeerReply::AppendEntries(match r {
                Ok(AppendEntriesResponse::Success) => Ok(AppendEntriesResponse::Success),
                Ok(AppendEntriesResponse::PartialSuccess(l)) => Ok(AppendEntriesResponse::PartialSuccess(*l)),
                Ok(AppendEntriesResponse::Conflict) => Ok(AppendEntriesResponse::Conflict),
                Ok(AppendEntriesResponse::HigherVote(v)) => Ok(AppendEntriesResponse::HigherVote(*v)),
                Err(e) => Err(e.clone()),
            }),
            PeerReply::Vote(r) => PeerReply::Vote(r.clone()),
            PeerReply::InstallSnapshot(r) => PeerReply::InstallSnapshot(match r {
                Ok(r) => Ok(InstallSnapshotResponse { vote: r.vote }),
                Err(e) => Err(e.clone()),
            }),
        }
    }
}

/// Why a message got no reply.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// The node cannot be reached at all (down, partitioned, unknown); the sender backs off.
    #[error("node {node} is unreachable: {reason}")]
    Unreachable {
        /// The node.
        node: u64,
        /// Why.
        reason: String,
    },
    /// The message may or may not have arrived (a connection broke mid-call, a timeout).
    #[error("talking to node {node}: {reason}")]
    Failed {
        /// The node.
        node: u64,
        /// What went wrong.
        reason: String,
    },
}

/// Carries [`PeerMessage`]s to other members and brings back their replies.
pub trait Transport: Send + Sync + 'static {
    /// Sends `message` to node `to` and waits for its reply.
    fn send(&self, to: u64, message: PeerMessage) -> impl Future<Output = Result<PeerReply, TransportError>> + Send;
}

/// In-process transport: each member registers its Raft under its node id; `send` calls it
/// directly. For tests of several members in one process.
#[derive(Clone, Default)]
pub struct Loopback {
    members: Arc<Mutex<HashMap<u64, Raft<TypeConfig>>>>,
}

impl Loopback {
    /// Makes `node_id` reachable, answering through `raft`.
    pub fn register(&self, node_id: u64, raft: Raft<TypeConfig>) {
        self.lock().insert(node_id, raft);
    }

    /// Makes `node_id` unreachable (as if it went down or was cut off).
    pub fn unregister(&self, node_id: u64) {
        self.lock().remove(&node_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Raft<TypeConfig>>> {
        // The map is always whole between inserts and removes; a panic elsewhere cannot tear it.
        self.members.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Transport for Loopback {
    async fn send(&self, to: u64, message: PeerMessage) -> Result<PeerReply, TransportError> {
        let raft = self.lock().get(&to).cloned();
        let Some(raft) = raft else {
            return Err(TransportError::Unreachable { node: to, reason: "not registered with the loopback".into() });
        };
        Ok(match message {
            PeerMessage::AppendEntries(rpc) => PeerReply::AppendEntries(raft.append_entries(rpc).await),
            PeerMessage::Vote(rpc) => PeerReply::Vote(raft.vote(rpc).await),
            PeerMessage::InstallSnapshot(rpc) => PeerReply::InstallSnapshot(raft.install_snapshot(rpc).await),
        })
    }
}

/// The transport a single node uses until the peer channel exists: every peer is unreachable.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unconnected;

impl Transport for Unconnected {
    async fn send(&self, to: u64, _message: PeerMessage) -> Result<PeerReply, TransportError> {
        Err(TransportError::Unreachable { node: to, reason: "no node-to-node transport on this node".into() })
    }
}
