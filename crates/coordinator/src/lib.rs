//! # halo-coordinator — leases, node states and failover of lost nodes
//!
//! Every node runs the [`agent`], which sends the leader a heartbeat every `HeartbeatInterval`
//! and publishes the ownership lease each answer grants; the engine runs groups only under that
//! lease. Every node also runs the [`driver`], but its [`core::Coordinator`] acts only while the
//! node leads the Raft cluster: it answers heartbeats, records nodes Up and Down, and gives a lost
//! node's groups to other nodes once their lease has certainly ended.
//!
//! Moves, drains and failovers for exhausted restarts are carried out by the owning node's engine
//! (it takes the group down, then writes the ownership record over); the coordinator steps in only
//! when the owner is gone. It reads and writes the cluster database only, and talks to other
//! nodes only through the database's peer channel: it must never call a host or a resource.

pub mod agent;
pub mod core;
pub mod driver;

use serde::{Deserialize, Serialize};

/// What nodes send the coordinator over the peer channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// "I am alive": the answer is a [`core::Grant`].
    Heartbeat {
        /// The sender's name.
        node: String,
    },
}
