//! The event stream (WSFC's cluster notifications): every state, property, membership and ownership change, numbered.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::broadcast;

/// How many past events are kept for late subscribers.
pub const HISTORY: usize = 4096;

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// A resource's state changed (`CLUSTER_CHANGE_RESOURCE_STATE`).
    ResourceState {
        /// The resource.
        resource: String,
        /// Its group.
        group: String,
        /// The new state's name.
        state: String,
        /// The Win32 status recorded with it.
        status: u32,
        /// Who decided (resource, host, policy, operator).
        cause: String,
    },
    /// A group's derived state changed.
    GroupState {
        /// The group.
        group: String,
        /// The new state's name.
        state: String,
    },
    /// An object was created.
    Added {
        /// `type`, `group` or `resource`.
        object: String,
        /// Its name.
        name: String,
    },
    /// An object was deleted.
    Deleted {
        /// `type`, `group` or `resource`.
        object: String,
        /// Its name.
        name: String,
    },
    /// Properties changed (common, private, dependencies, persistent state).
    Property {
        /// `group` or `resource`.
        object: String,
        /// Its name.
        name: String,
        /// Which properties.
        properties: Vec<String>,
    },
    /// A node's state changed.
    NodeState {
        /// The node.
        node: String,
        /// The new state's name.
        state: String,
    },
    /// A group's owner changed.
    Owner {
        /// The group.
        group: String,
        /// The node that owns it now.
        node: String,
        /// The group's new epoch.
        epoch: u64,
    },
    /// A phase of a group's move: `offline` (the source takes it down toward `to`), `online`
    /// (the destination owns it and brings it up), `returning` (back to the source after an
    /// error), `cancelled`.
    Move {
        /// The group.
        group: String,
        /// The source.
        from: String,
        /// The destination.
        to: String,
        /// The phase.
        phase: String,
        /// Why it moves: `move`, `failover`, `drain`, `return`, `node-lost`.
        reason: String,
    },
    /// A resource wrote to the cluster log.
    Log {
        /// The resource.
        resource: String,
        /// `LOG_LEVEL` name.
        level: String,
        /// The line.
        message: String,
    },
}

/// One numbered event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Strictly increasing within a node's life.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// What changed.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Publishes events to subscribers and keeps the recent ones.
pub struct Events {
    tx: broadcast::Sender<Event>,
    history: Mutex<(u64, VecDeque<Event>)>,
}

impl Default for Events {
    fn default() -> Self {
        Events::numbered_after(0)
    }
}

impl Events {
    /// A stream whose first event is numbered `last + 1`.
    pub fn numbered_after(last: u64) -> Self {
        Events { tx: broadcast::channel(HISTORY).0, history: Mutex::new((last, VecDeque::new())) }
    }

    /// Numbers and publishes an event.
    pub fn emit(&self, kind: EventKind) {
        let time_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        h.0 += 1;
        let event = Event { seq: h.0, time_ms, kind };
        if h.1.len() == HISTORY {
            h.1.pop_front();
        }
        h.1.push_back(event.clone());
        // Sent under the lock so that subscribers see sequence order; no receiver is fine.
        let _ = self.tx.send(event);
    }

    /// Events after `seq` still in history, and a receiver for what follows them.
    pub fn subscribe(&self, after: u64) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let past = h.1.iter().filter(|e| e.seq > after).cloned().collect();
        (past, self.tx.subscribe())
    }

    /// The last sequence number given out.
    pub fn last_seq(&self) -> u64 {
        self.history.lock().unwrap_or_else(|p| p.into_inner()).0
    }
}
