//! What members say to each other, and the seam that carries it. Members talk through the
//! [`Transport`] trait only, so the TCP peer channel ([`crate::peer::TcpTransport`]), an
//! in-process [`Loopback`] for tests and the [`Unconnected`] of a node without peers are
//! interchangeable. A transport only carries messages; what a message means is
//! [`crate::peer::PeerService`]'s business, on the receiving side.

use crate::peer::PeerService;
use crate::{Request, Response, TypeConfig};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// What nodes say to each other: consensus RPCs, writes forwarded to the leader, membership
/// requests, and the messages of the layers above (heartbeats, leases, moves) as opaque bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum PeerMessage {
    /// Replicate log entries (or a heartbeat, with none).
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Ask for a vote.
    Vote(VoteRequest<u64>),
    /// One chunk of a snapshot.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A transaction written on a follower, for the leader to commit.
    Write(Request),
    /// A new node, without a certificate yet, asks for one with a join token (the only message
    /// a connection without a certificate may send).
    Enroll(crate::access::EnrollRequest),
    /// A member asks for a new certificate for its own name (rotation).
    Renew {
        /// The request for the new key (PEM).
        csr_pem: String,
    },
    /// A node asks to join (or, known by name, to rejoin): the leader gives it its node id.
    Join(crate::membership::JoinRequest),
    /// A node that opened its database with the id [`PeerMessage::Join`] gave asks to become a
    /// member: learner first, voter when it has caught up and there are fewer than
    /// [`crate::membership::MAX_VOTERS`].
    Promote(crate::membership::PromoteRequest),
    /// Remove the named node from the cluster.
    Evict {
        /// The node's name.
        name: String,
    },
    /// A message of a layer above the database (see [`crate::peer::AppHandler`]).
    App(Vec<u8>),
    /// "Would you vote in an election now?": answered [`PeerReply::Pong`] (see
    /// `guard_elections`).
    Ping,
}

/// Why a request to a peer was refused, as it travels back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// The receiver is not the leader (and knows this one, if any).
    #[error("not the leader")]
    NotLeader {
        /// The leader, if known.
        leader_id: Option<u64>,
    },
    /// Anything else, said in words.
    #[error("{0}")]
    Failed(String),
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
    /// To [`PeerMessage::Write`].
    Write(Result<Response, Refusal>),
    /// To [`PeerMessage::Enroll`]: the node's certificate and the CA.
    Enrolled(Result<crate::access::EnrollReply, Refusal>),
    /// To [`PeerMessage::Renew`]: the new certificate (PEM).
    Renewed(Result<String, Refusal>),
    /// To any message its sender may not send: no certificate, or a revoked one. The
    /// connection is closed after it.
    Refused(String),
    /// To [`PeerMessage::Join`]: the node id.
    Joined(Result<u64, Refusal>),
    /// To [`PeerMessage::Promote`]: whether the node is a voter.
    Promoted(Result<bool, Refusal>),
    /// To [`PeerMessage::Evict`].
    Evicted(Result<(), Refusal>),
    /// To [`PeerMessage::App`].
    App(Result<Vec<u8>, Refusal>),
    /// To [`PeerMessage::Ping`]: how long ago the receiver last heard from a leader (0: it
    /// leads; `None`: never).
    Pong {
        /// Milliseconds.
        leader_heard_ms_ago: Option<u64>,
    },
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
            PeerReply::Write(r) => PeerReply::Write(r.clone()),
            PeerReply::Joined(r) => PeerReply::Joined(r.clone()),
            PeerReply::Enrolled(r) => PeerReply::Enrolled(r.clone()),
            PeerReply::Renewed(r) => PeerReply::Renewed(r.clone()),
            PeerReply::Refused(m) => PeerReply::Refused(m.clone()),
            PeerReply::Promoted(r) => PeerReply::Promoted(r.clone()),
            PeerReply::Evicted(r) => PeerReply::Evicted(r.clone()),
            PeerReply::App(r) => PeerReply::App(r.clone()),
            PeerReply::Pong { leader_heard_ms_ago } => PeerReply::Pong { leader_heard_ms_ago: *leader_heard_ms_ago },
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
    /// Sends `message` to node `to`, whose peer address is `addr`, and waits for its reply.
    fn send(
        &self,
        to: u64,
        addr: &str,
        message: PeerMessage,
    ) -> impl Future<Output = Result<PeerReply, TransportError>> + Send;
}

/// A [`Transport`] behind a pointer (its futures boxed), so that a database can keep whichever
/// transport it was opened with without being generic over it.
pub(crate) trait DynTransport: Send + Sync + 'static {
    fn send_boxed<'a>(
        &'a self,
        to: u64,
        addr: &'a str,
        message: PeerMessage,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<PeerReply, TransportError>> + Send + 'a>>;
}

impl<T: Transport> DynTransport for T {
    fn send_boxed<'a>(
        &'a self,
        to: u64,
        addr: &'a str,
        message: PeerMessage,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<PeerReply, TransportError>> + Send + 'a>> {
        Box::pin(self.send(to, addr, message))
    }
}

/// In-process transport: each member registers its [`PeerService`] under its node id; `send`
/// calls it directly. For tests of several members in one process.
#[derive(Clone, Default)]
pub struct Loopback {
    members: Arc<Mutex<HashMap<u64, PeerService>>>,
}

impl Loopback {
    /// Makes `node_id` reachable, answering through `service` (see [`crate::ClusterDb::service`]).
    pub fn register(&self, node_id: u64, service: PeerService) {
        self.lock().insert(node_id, service);
    }

    /// Makes `node_id` unreachable (as if it went down or was cut off).
    pub fn unregister(&self, node_id: u64) {
        self.lock().remove(&node_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, PeerService>> {
        // The map is always whole between inserts and removes; a panic elsewhere cannot tear it.
        self.members.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Transport for Loopback {
    async fn send(&self, to: u64, _addr: &str, message: PeerMessage) -> Result<PeerReply, TransportError> {
        let service = self.lock().get(&to).cloned();
        let Some(service) = service else {
            return Err(TransportError::Unreachable { node: to, reason: "not registered with the loopback".into() });
        };
        Ok(service.handle(message, &crate::peer::Caller::Local).await)
    }
}

/// A transport that reaches no one: every peer is unreachable (a database opened on its own,
/// as [`crate::ClusterDb::open`] does).
#[derive(Debug, Clone, Copy, Default)]
pub struct Unconnected;

impl Transport for Unconnected {
    async fn send(&self, to: u64, _addr: &str, _message: PeerMessage) -> Result<PeerReply, TransportError> {
        Err(TransportError::Unreachable { node: to, reason: "no node-to-node transport on this node".into() })
    }
}
