//! Who belongs to the cluster: the node registry (`node/<name>` → [`NodeRecord`]) and the Raft
//! membership, changed together and only by the leader.
//!
//! Joining takes two requests. [`PeerMessage::Join`](crate::transport::PeerMessage::Join) gives
//! the node its id (a new one from `counter/node-id`, or the one it already has if its name is
//! registered: a rejoin). The node then opens its database with that id, serves peers, and sends
//! [`PeerMessage::Promote`](crate::transport::PeerMessage::Promote): the leader adds it as a
//! learner, waits until it has caught up, and makes it a voter while there are fewer than
//! [`MAX_VOTERS`]. Both are idempotent, so a node restarting with its data directory simply
//! promotes itself again (which also records a changed address).

use crate::peer::PeerService;
use crate::{ClusterError, Compare, Op, Request, Response};
use openraft::{BasicNode, ChangeMembers};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The most voting members: beyond that, nodes join as non-voting members (learners). Seven
/// voters tolerate three failures; more would only slow every commit.
pub const MAX_VOTERS: usize = 7;

/// The key prefix of the node registry.
pub const NODES: &str = "node/";

/// The key holding the next node id to give out.
pub const NODE_ID_COUNTER: &str = "counter/node-id";

/// The key of a node's registry record.
pub fn node_key(name: &str) -> String {
    format!("{NODES}{name}")
}

/// A registered node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Its Raft id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Where peers reach it.
    pub peer_addr: String,
    /// Where its HTTP API listens.
    pub api_addr: String,
}

/// What a joining node says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// Its name (unique in the cluster).
    pub name: String,
    /// Its peer address.
    pub peer_addr: String,
    /// Its API address.
    pub api_addr: String,
}

/// A node asking to be a member, with the id it was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromoteRequest {
    /// Its id.
    pub id: u64,
    /// Its name, peer and API addresses (as now: they may have changed since it joined).
    pub node: JoinRequest,
}

fn raft_error(e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Raft(e.to_string())
}

/// How long a membership change waits for another one in progress to finish.
const CHANGE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// What a membership change does.
enum Change {
    Membership(ChangeMembers<u64, BasicNode>, bool),
    Learner(u64, BasicNode),
}

impl PeerService {
    fn read_record(&self, key: &str) -> Result<Option<crate::Record>, ClusterError> {
        let db = self.database()?;
        crate::read_key(&db, key)
    }

    /// Makes a membership change; one change at a time is allowed, so a change that meets
    /// another in progress (two nodes joining at once) waits for it and tries again.
    async fn change(&self, change: Change) -> Result<(), ClusterError> {
        use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
        let deadline = tokio::time::Instant::now() + CHANGE_DEADLINE;
        let mut metrics = self.raft.metrics();
        loop {
            let result = match &change {
                Change::Membership(changes, retain) => self.raft.change_membership(changes.clone(), *retain).await,
                Change::Learner(id, node) => self.raft.add_learner(*id, node.clone(), true).await,
            };
            match result {
                Ok(_) => return Ok(()),
                Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                    ChangeMembershipError::InProgress(_),
                ))) if tokio::time::Instant::now() < deadline => {
                    // The change in progress ends with a metrics update.
                    let _ = tokio::time::timeout(std::time::Duration::from_millis(100), metrics.changed()).await;
                }
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                    return Err(ClusterError::NotLeader { leader_id: f.leader_id, leader_addr: None });
                }
                Err(e) => return Err(raft_error(e)),
            }
        }
    }

    /// This node leads, or the caller learns who does.
    fn ensure_leader(&self) -> Result<(), ClusterError> {
        crate::leads(&self.raft)
    }

    /// Registers (or re-registers) a node and gives its id.
    pub(crate) async fn join(&self, join: JoinRequest) -> Result<u64, ClusterError> {
        self.register(&join, None).await
    }

    /// Registers `join` under its name: a registered name keeps its id (its addresses are
    /// updated); a new one gets `want` (the first node registering itself) or the next free id.
    async fn register(&self, join: &JoinRequest, want: Option<u64>) -> Result<u64, ClusterError> {
        self.ensure_leader()?;
        crate::check_node_name(&join.name)?;
        self.check_enrolled(&join.name)?;
        let key = node_key(&join.name);
        loop {
            let existing = self.read_record(&key)?;
            if let Some(record) = &existing {
                let node: NodeRecord =
                    serde_json::from_slice(&record.value).map_err(|e| ClusterError::Read(e.to_string()))?;
                if node.peer_addr == join.peer_addr && node.api_addr == join.api_addr {
                    return Ok(node.id);
                }
                let updated = NodeRecord { peer_addr: join.peer_addr.clone(), api_addr: join.api_addr.clone(), ..node };
                let request = Request {
                    compare: vec![Compare { key: key.clone(), revision: Some(record.revision) }],
                    ops: vec![Op::Put { key: key.clone(), value: encode(&updated)? }],
                };
                if let Response::Applied { .. } = self.commit(request).await? {
                    return Ok(updated.id);
                }
                continue;
            }
            let counter = self.read_record(NODE_ID_COUNTER)?;
            let next = match &counter {
                Some(r) => decode_u64(&r.value)?,
                None => crate::FIRST_NODE_ID + 1,
            };
            let id = want.unwrap_or(next);
            if want.is_some() && self.registered()?.iter().any(|n| n.id == id) {
                return Err(ClusterError::Raft(format!("node id {id} belongs to another registered node")));
            }
            let node = NodeRecord {
                id,
                name: join.name.clone(),
                peer_addr: join.peer_addr.clone(),
                api_addr: join.api_addr.clone(),
            };
            let request = Request {
                compare: vec![
                    Compare { key: key.clone(), revision: None },
                    Compare { key: NODE_ID_COUNTER.into(), revision: counter.as_ref().map(|r| r.revision) },
                ],
                ops: vec![
                    Op::Put { key: key.clone(), value: encode(&node)? },
                    Op::Put { key: NODE_ID_COUNTER.into(), value: next.max(id + 1).to_string().into_bytes() },
                ],
            };
            if let Response::Applied { .. } = self.commit(request).await? {
                tracing::info!(node = %join.name, id, peer = %join.peer_addr, "node registered");
                return Ok(id);
            }
        }
    }

    /// Makes a registered node a member: learner, then voter if there is room.
    pub(crate) async fn promote(&self, promote: PromoteRequest) -> Result<bool, ClusterError> {
        self.ensure_leader()?;
        let registered = self.register(&promote.node, Some(promote.id)).await?;
        if registered != promote.id {
            return Err(ClusterError::Raft(format!(
                "node {} is registered with id {registered}, not {}; remove its data directory to join as a new node",
                promote.node.name, promote.id
            )));
        }
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let addr = promote.node.peer_addr.clone();
        let known = membership.get_node(&promote.id).map(|n| n.addr.clone());
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        if known.as_deref() != Some(addr.as_str()) {
            if known.is_some() {
                let nodes = BTreeMap::from([(promote.id, BasicNode { addr: addr.clone() })]);
                self.change(Change::Membership(ChangeMembers::SetNodes(nodes), true)).await?;
            } else {
                // Blocking: returns once the learner has caught up, so that making it a voter
                // does not stall commits while it replays the log.
                self.change(Change::Learner(promote.id, BasicNode { addr: addr.clone() })).await?;
            }
            tracing::info!(node = %promote.node.name, id = promote.id, %addr, "node is a member");
        }
        if voters.contains(&promote.id) {
            return Ok(true);
        }
        if voters.len() >= MAX_VOTERS {
            return Ok(false);
        }
        self.change(Change::Membership(ChangeMembers::AddVoterIds(BTreeSet::from([promote.id])), true)).await?;
        tracing::info!(node = %promote.node.name, id = promote.id, "node is a voter");
        Ok(true)
    }

    fn registered(&self) -> Result<Vec<NodeRecord>, ClusterError> {
        crate::list_keys(&*self.database()?, NODES)?
            .into_iter()
            .map(|(_, r)| serde_json::from_slice(&r.value).map_err(|e| ClusterError::Read(e.to_string())))
            .collect()
    }

    /// Removes a node from the membership and the registry.
    pub(crate) async fn evict(&self, name: &str) -> Result<(), ClusterError> {
        self.ensure_leader()?;
        let key = node_key(name);
        let Some(record) = self.read_record(&key)? else {
            return Err(ClusterError::UnknownNode(name.to_string()));
        };
        let node: NodeRecord = serde_json::from_slice(&record.value).map_err(|e| ClusterError::Read(e.to_string()))?;
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let ids = BTreeSet::from([node.id]);
        if membership.voter_ids().any(|v| v == node.id) {
            if membership.voter_ids().count() == 1 {
                return Err(ClusterError::Raft(format!(
                    "{name} is the only voter; a cluster cannot evict its last voter"
                )));
            }
            self.change(Change::Membership(ChangeMembers::RemoveVoters(ids.clone()), true)).await?;
        }
        if membership.get_node(&node.id).is_some() {
            self.change(Change::Membership(ChangeMembers::RemoveNodes(ids), false)).await?;
        }
        // Its certificates go first: from then on no member answers it, whatever it still holds.
        self.revoke_node(name).await?;
        self.commit(Request { compare: vec![], ops: vec![Op::Delete { key }] }).await?;
        tracing::info!(node = %name, id = node.id, "node evicted");
        Ok(())
    }
}

fn encode(node: &NodeRecord) -> Result<Vec<u8>, ClusterError> {
    serde_json::to_vec(node).map_err(|e| ClusterError::Raft(e.to_string()))
}

fn decode_u64(bytes: &[u8]) -> Result<u64, ClusterError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| ClusterError::Read(format!("{NODE_ID_COUNTER} does not hold a number")))
}
