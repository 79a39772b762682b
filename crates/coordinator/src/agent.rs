//! The heartbeat agent of one node: sends the leader a heartbeat every `HeartbeatInterval` and
//! publishes the ownership lease the answers grant. The lease runs from the moment the heartbeat
//! was *sent*, on this node's clock, so it ends no later than the coordinator believes.

use crate::Message;
use crate::core::Grant;
use halo_cluster::ClusterDb;
use halo_engine::driver::{Lease, LeaseWatch};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The interval used until the coordinator says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(200);

/// Starts the agent of node `node`; the lease it holds is published on the returned watch. It
/// stops when the database is dropped.
pub fn start(db: &Arc<ClusterDb>, node: &str) -> LeaseWatch {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(run(Arc::downgrade(db), node.to_string(), tx));
    rx
}

async fn run(db: std::sync::Weak<ClusterDb>, node: String, lease: watch::Sender<Option<Lease>>) {
    let mut interval = DEFAULT_INTERVAL;
    let body = match serde_json::to_vec(&Message::Heartbeat { node: node.clone() }) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a heartbeat; this node will hold no lease");
            return;
        }
    };
    let mut refused_said = false;
    loop {
        let sent = Instant::now();
        let Some(db) = db.upgrade() else { return };
        let answer = tokio::time::timeout(interval * 2, heartbeat(&db, body.clone())).await;
        drop(db);
        match answer {
            Ok(Ok(Grant::Lease { lease_ms, interval_ms, revision })) => {
                let until = sent + Duration::from_millis(lease_ms);
                lease.send_if_modified(|held| {
                    if held.is_none_or(|h| h.until < until) {
                        *held = Some(Lease { until, revision: revision.max(held.map_or(0, |h| h.revision)) });
                        true
                    } else {
                        false
                    }
                });
                interval = Duration::from_millis(interval_ms.max(10));
                refused_said = false;
            }
            Ok(Ok(Grant::Refused(why))) => {
                if !refused_said {
                    tracing::info!(reason = %why, "no ownership lease granted");
                    refused_said = true;
                }
            }
            Ok(Err(e)) => {
                if !refused_said {
                    tracing::info!(error = %e, "heartbeat not answered");
                    refused_said = true;
                }
            }
            Err(_) => tracing::debug!("heartbeat timed out"),
        }
        // Without a lease, ask again soon: a coordinator that just took office grants once a
        // quorum has confirmed it, which takes a round trip, not an interval.
        let holding = lease.borrow().is_some_and(|l| l.until > Instant::now());
        let next = if holding { interval } else { interval.min(Duration::from_millis(25)) };
        tokio::time::sleep_until(sent + next).await;
    }
}

async fn heartbeat(db: &ClusterDb, body: Vec<u8>) -> Result<Grant, String> {
    let Some((leader, _)) = db.leader() else { return Err("no leader is known".into()) };
    let reply = db.send_app(leader, body).await.map_err(|e| e.to_string())?;
    serde_json::from_slice(&reply).map_err(|e| format!("a malformed answer: {e}"))
}
