//! openraft's network, over any [`Transport`]: each RPC becomes a [`PeerMessage`], each
//! [`PeerReply`] the RPC's result. An unreachable peer is reported as openraft's `Unreachable`, so
//! openraft backs off instead of retrying at once.

use crate::TypeConfig;
use crate::transport::{PeerMessage, PeerReply, Transport, TransportError};
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::{BasicNode, RaftNetwork, RaftNetworkFactory};
use std::sync::Arc;

type NodeId = u64;

/// Creates a client per peer, all sharing one transport.
pub(crate) struct Network<T> {
    pub(crate) transport: Arc<T>,
}

/// The client for one peer.
pub(crate) struct Peer<T> {
    target: NodeId,
    addr: String,
    transport: Arc<T>,
}

/// A reply of the wrong kind: the peer speaks a different protocol.
#[derive(Debug, thiserror::Error)]
#[error("node {node} answered {what} with a reply of another kind")]
struct Mismatched {
    node: NodeId,
    what: &'static str,
}

impl<T: Transport> Peer<T> {
    /// Sends one message; transport failures become the RPC error openraft expects.
    async fn call<E: std::error::Error>(
        &self,
        message: PeerMessage,
    ) -> Result<PeerReply, RPCError<NodeId, BasicNode, E>> {
        self.transport.send(self.target, &self.addr, message).await.map_err(|e| match e {
            TransportError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(&e)),
            TransportError::Failed { .. } => RPCError::Network(NetworkError::new(&e)),
        })
    }

    fn mismatched<E: std::error::Error>(&self, what: &'static str) -> RPCError<NodeId, BasicNode, E> {
        RPCError::Network(NetworkError::new(&Mismatched { node: self.target, what }))
    }

    fn remote<E: std::error::Error>(&self, e: E) -> RPCError<NodeId, BasicNode, E> {
        RPCError::RemoteError(RemoteError::new(self.target, e))
    }
}

impl<T: Transport> RaftNetworkFactory<TypeConfig> for Network<T> {
    type Network = Peer<T>;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer<T> {
        Peer { target, addr: node.addr.clone(), transport: self.transport.clone() }
    }
}

impl<T: Transport> RaftNetwork<TypeConfig> for Peer<T> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self.call(PeerMessage::AppendEntries(rpc)).await? {
            PeerReply::AppendEntries(r) => r.map_err(|e| self.remote(e)),
            _ => Err(self.mismatched("append-entries")),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        match self.call(PeerMessage::InstallSnapshot(rpc)).await? {
            PeerReply::InstallSnapshot(r) => r.map_err(|e| self.remote(e)),
            _ => Err(self.mismatched("install-snapshot")),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self.call(PeerMessage::Vote(rpc)).await? {
            PeerReply::Vote(r) => r.map_err(|e| self.remote(e)),
            _ => Err(self.mismatched("vote")),
        }
    }
}
