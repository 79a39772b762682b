//! The run's history (`history.jsonl` in the run directory): what the runner did and saw, and
//! every client operation with its outcome, one JSON object a line, each stamped with
//! CLOCK_MONOTONIC. The checker reads it beside the witness log.

use crate::schedule::{Caps, Op};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A marker process (what a witness online leaves running), as the runner saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkerSeen {
    /// Its pid.
    pub pid: i32,
    /// The node whose witness started it.
    pub node: String,
    /// Its group.
    pub group: String,
    /// The epoch its online received.
    pub epoch: String,
}

/// One line of the history.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// The run's shape.
    Start {
        t: u64,
        run: String,
        seed: u64,
        mode: String,
        nodes: Vec<String>,
        groups: Vec<String>,
        duration_ms: u64,
        heal_bound_ms: u64,
        /// What the machine allowed.
        #[serde(default)]
        caps: Caps,
        /// The wall clock at `t` (ms since the Unix epoch), to find times in the nodes' logs.
        #[serde(default)]
        wall_ms: u64,
    },
    /// The cluster is formed: faults and clients start (the schedule's time 0).
    Begin { t: u64 },
    /// A fault began or was healed.
    Fault { t: u64, id: usize, fault: String, phase: String, nodes: Vec<String>, what: String },
    /// Every process of `node` was SIGKILLed and is gone: whatever it ran stopped by `t`.
    Crash { t: u64, node: String },
    /// A node's daemon exited without being told to.
    Exit { t: u64, node: String, status: String },
    /// A node's daemon was started again (`offset_s`: its monotonic clock's lead).
    Restart { t: u64, node: String, offset_s: u64 },
    /// A client operation, from the moment it was sent to its answer (`ok`: acknowledged).
    Op {
        client: String,
        start: u64,
        end: u64,
        via: String,
        #[serde(flatten)]
        op: Op,
        ok: bool,
        timed_out: bool,
        error: String,
    },
    /// A marker process seen from `first_seen` to `last_seen`, and seen gone at `gone_seen`.
    Marker {
        #[serde(flatten)]
        marker: MarkerSeen,
        first_seen: u64,
        last_seen: u64,
        gone_seen: Option<u64>,
    },
    /// Every fault healed, every node started again.
    Healed { t: u64 },
    /// Each witness resource's PersistentState once healed, before the final onlines, as the
    /// nodes that answer agree on it (`agreed`), else what they said (`note`).
    Persistent { t: u64, states: BTreeMap<String, String>, agreed: bool, note: String },
    /// The state the cluster settled in.
    Final {
        t: u64,
        /// Every group Online on one owner all nodes agree on, every node Up.
        converged: bool,
        /// Each group's owner, as every node agrees (missing if they did not).
        owners: BTreeMap<String, String>,
        /// Each group's state, as its owner says.
        states: BTreeMap<String, String>,
        /// Each witness resource's chaos properties, as every node agrees.
        config: BTreeMap<String, BTreeMap<String, String>>,
        /// Whether every node answered the same configuration.
        config_agreed: bool,
        /// The marker processes running at the end.
        markers: Vec<MarkerSeen>,
        /// What could not be established, in words.
        notes: Vec<String>,
    },
    /// The run ended; everything it started is gone.
    End { t: u64 },
}

/// An append-only history file shared by the runner's threads.
#[derive(Clone)]
pub struct History(Arc<Mutex<std::fs::File>>);

impl History {
    /// Creates `path`.
    pub fn create(path: &Path) -> Result<History> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        Ok(History(Arc::new(Mutex::new(file))))
    }

    /// Appends `event` (one write, so lines never interleave).
    pub fn record(&self, event: &Event) {
        let Ok(mut line) = serde_json::to_vec(event) else { return };
        line.push(b'\n');
        let mut file = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = file.write_all(&line) {
            eprintln!("halo-chaos: cannot write the history: {e}");
        }
    }
}

/// Reads a history file.
pub fn read(path: &Path) -> Result<Vec<Event>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{} line {}: {l}", path.display(), i + 1)))
        .collect()
}
