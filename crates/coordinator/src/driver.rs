//! The coordinator's driver: one loop feeding the core the change feed, the node's leadership,
//! leadership confirmations, heartbeats from the peer channel and timer expiries, and doing
//! what it decides (writes, heartbeat answers).

use crate::Message;
use crate::core::{CONFIRM_WINDOW, Coordinator, Grant, Input, Ready, Time};
use halo_cluster::transport::Refusal;
use halo_cluster::{AppHandler, ClusterDb, ClusterError, Response, peer::BoxFuture};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// How often a leader asks a quorum to confirm it still leads.
pub const CONFIRM_EVERY: Duration = Duration::from_millis(100);

enum Event {
    Heartbeat { node: String, reply: oneshot::Sender<Grant> },
    Confirmed { started: Instant },
    Written { write: u64, applied: Option<u64> },
}

/// Answers the peer channel's app messages by handing them to the loop.
struct Handler {
    events: mpsc::UnboundedSender<Event>,
}

impl AppHandler for Handler {
    fn handle(&self, body: Vec<u8>) -> BoxFuture<Result<Vec<u8>, Refusal>> {
        let events = self.events.clone();
        Box::pin(async move {
            let message: Message = serde_json::from_slice(&body)
                .map_err(|e| Refusal::Failed(format!("a malformed coordinator message: {e}")))?;
            match message {
                Message::Heartbeat { node } => {
                    let (tx, rx) = oneshot::channel();
                    events
                        .send(Event::Heartbeat { node, reply: tx })
                        .map_err(|_| Refusal::Failed("the coordinator has stopped".into()))?;
                    let grant = rx.await.map_err(|_| Refusal::Failed("the coordinator has stopped".into()))?;
                    serde_json::to_vec(&grant).map_err(|e| Refusal::Failed(e.to_string()))
                }
            }
        })
    }
}

/// Starts the coordinator of this node: it answers heartbeats from now on, and acts while the
/// node leads. It stops when the database's change feed ends.
pub fn start(db: Arc<ClusterDb>) -> Result<(), ClusterError> {
    let (events, events_rx) = mpsc::unbounded_channel();
    db.set_app_handler(Arc::new(Handler { events: events.clone() }));
    let snapshot = db.snapshot()?;
    let feed = db.watch(snapshot.revision)?;
    let origin = Instant::now();
    let mut core = Coordinator::new();
    let first = core.step(Duration::ZERO, Input::Loaded { revision: snapshot.revision, records: snapshot.records });
    let driver = Driver { db, core, origin, events, replies: HashMap::new(), next_token: 0, wake: None };
    tokio::spawn(driver.run(first, feed, events_rx));
    Ok(())
}

struct Driver {
    db: Arc<ClusterDb>,
    core: Coordinator,
    origin: Instant,
    events: mpsc::UnboundedSender<Event>,
    replies: HashMap<u64, oneshot::Sender<Grant>>,
    next_token: u64,
    wake: Option<Time>,
}

impl Driver {
    fn now(&self) -> Time {
        self.origin.elapsed()
    }

    async fn run(mut self, first: Ready, mut feed: halo_cluster::Watch, mut events: mpsc::UnboundedReceiver<Event>) {
        self.execute(first);
        let mut metrics = self.db.raft().metrics();
        let me = self.db.node_id();
        let mut leading = (false, 0);
        let mut confirming: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            // The term too: a leader deposed and re-elected between two looks is a new leader.
            let now_leading = {
                let m = metrics.borrow_and_update();
                (m.state.is_leader() && m.current_leader == Some(me), m.current_term)
            };
            if now_leading != leading && (now_leading.0 || leading.0) {
                leading = now_leading;
                let (leading, term) = leading;
                tracing::info!(leading, term, "coordinator leadership changed");
                if let Some(task) = confirming.take() {
                    task.abort();
                }
                if leading {
                    confirming = Some(tokio::spawn(confirm(self.db.clone(), self.events.clone())));
                }
                let ready = self.core.step(self.now(), Input::Leadership { leading, term });
                self.execute(ready);
            }
            let wake = self.wake.map(|w| self.origin + w);
            let input = tokio::select! {
                changed = metrics.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    continue;
                }
                change = feed.next() => match change {
                    Ok(c) => Input::Change { revision: c.revision, ops: c.ops },
                    Err(ClusterError::Lagged | ClusterError::Compacted { .. }) => {
                        let Ok(snapshot) = self.db.snapshot() else { break };
                        let Ok(watch) = self.db.watch(snapshot.revision) else { break };
                        feed = watch;
                        Input::Loaded { revision: snapshot.revision, records: snapshot.records }
                    }
                    Err(_) => break,
                },
                Some(event) = events.recv() => match event {
                    Event::Heartbeat { node, reply } => {
                        self.next_token += 1;
                        self.replies.insert(self.next_token, reply);
                        Input::Heartbeat { token: self.next_token, node }
                    }
                    Event::Confirmed { started } => Input::Confirmed { started: started.saturating_duration_since(self.origin) },
                    Event::Written { write, applied } => Input::Written { write, applied },
                },
                _ = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => Input::Tick,
            };
            self.core.set_wall_clock(halo_engine::driver::unix_seconds());
            let ready = self.core.step(self.now(), input);
            self.execute(ready);
        }
        if let Some(task) = confirming {
            task.abort();
        }
    }

    fn execute(&mut self, ready: Ready) {
        for note in ready.notes {
            tracing::info!("{note}");
        }
        for (token, grant) in ready.grants {
            if let Some(reply) = self.replies.remove(&token) {
                let _ = reply.send(grant);
            }
        }
        for (write, request) in ready.writes {
            let db = self.db.clone();
            let back = self.events.clone();
            tokio::spawn(async move {
                // Only through this node's leadership: a deposed coordinator's decision must not
                // reach the log by way of its successor.
                let applied = match db.write_as_leader(request).await {
                    Ok(Response::Applied { revision }) => Some(revision),
                    Ok(Response::Conflict { .. }) => None,
                    Err(e) => {
                        tracing::warn!(error = %e, "a coordinator write failed");
                        None
                    }
                };
                let _ = back.send(Event::Written { write, applied });
            });
        }
        self.wake = ready.wake;
    }
}

/// While this node leads: asks a quorum to confirm it, every [`CONFIRM_EVERY`], and reports
/// each confirmed round with the instant it began.
async fn confirm(db: Arc<ClusterDb>, events: mpsc::UnboundedSender<Event>) {
    loop {
        let started = Instant::now();
        if let Ok(Ok(_)) = tokio::time::timeout(CONFIRM_WINDOW, db.raft().ensure_linearizable()).await
            && events.send(Event::Confirmed { started }).is_err()
        {
            return;
        }
        tokio::time::sleep_until(started + CONFIRM_EVERY).await;
    }
}
