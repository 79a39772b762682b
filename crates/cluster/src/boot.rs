//! Starting a member: forming a new cluster, joining one, or rejoining with a data directory that
//! already belongs to one.
//!
//! The data directory remembers who the node is (`node.json`: its id and name), written once the
//! database is open under the directory's lock. A directory without it but with a database is a
//! single node from before clusters: node 1.

use crate::membership::{JoinRequest, PromoteRequest};
use crate::peer::{PeerTls, TcpTransport};
use crate::transport::{PeerMessage, PeerReply, Refusal, Transport};
use crate::{ClusterDb, ClusterError, FIRST_NODE_ID};
use halo_security::{ClusterCa, NodeIdentity};
use openraft::ServerState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How a node starts.
#[derive(Debug, Clone)]
pub struct BootOptions {
    /// Its name.
    pub name: String,
    /// Its API address (recorded in the node registry).
    pub api_addr: String,
    /// The peer address of any member of the cluster to join; `None` forms a new cluster (or
    /// restarts a member, whose directory knows its cluster).
    pub join: Option<String>,
    /// The join token (`halo node token create`), needed to join.
    pub token: Option<String>,
    /// The DNS names and IP addresses the node's certificate names besides its peer name (where
    /// its API answers).
    pub tls_names: Vec<String>,
}

/// How long a node waits for the cluster to take it in before giving up at start-up.
pub const JOIN_DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug, Serialize, Deserialize)]
struct Identity {
    id: u64,
    name: String,
}

fn read_identity(dir: &Path) -> Result<Option<Identity>, ClusterError> {
    let path = dir.join("node.json");
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| ClusterError::Database {
            path: path.clone(),
            reason: format!("{e}; the file says which node this directory belongs to, and was left untouched"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ClusterError::Io { path, source }),
    }
}

/// Writes `node.json` whole or not at all (0600, a temporary file renamed over it, synced).
fn write_identity(dir: &Path, identity: &Identity) -> Result<(), ClusterError> {
    let bytes = serde_json::to_vec_pretty(identity).map_err(|e| ClusterError::Raft(e.to_string()))?;
    halo_security::files::write_private(&dir.join("node.json"), &bytes)
        .map_err(|e| ClusterError::Security(e.to_string()))
}

impl ClusterDb {
    /// Starts this node's member of the cluster: opens the database in `data_dir`, serves peers
    /// on `peers`, and forms, joins or rejoins the cluster as the directory and `options` say.
    /// Returns once this node is a member (a new cluster: once it leads it). A node restarting
    /// into a cluster it cannot reach yet starts anyway and keeps asking in the background.
    pub async fn boot(data_dir: &Path, peers: TcpListener, options: BootOptions) -> Result<ClusterDb, ClusterError> {
        crate::check_node_name(&options.name)?;
        let peer_addr =
            peers.local_addr().map_err(|source| ClusterError::Io { path: data_dir.into(), source })?.to_string();
        let me = JoinRequest {
            name: options.name.clone(),
            peer_addr: peer_addr.clone(),
            api_addr: options.api_addr.clone(),
        };
        let identity = read_identity(data_dir)?;
        let security = |e: halo_security::SecurityError| ClusterError::Security(e.to_string());
        let certificate = NodeIdentity::load(data_dir).map_err(security)?;
        let tls = Arc::new(PeerTls::default());
        match (&certificate, &identity, &options.join) {
            (Some(certificate), _, _) => tls.set(certificate)?,
            (None, None, Some(addr)) => tls.set(&enroll(data_dir, addr, &options).await?)?,
            // Forming, or restarting without certificates: settled once the database is open.
            (None, _, _) => {}
        }
        let transport = TcpTransport::new(tls.clone());
        let (id, fresh_join) = match (&identity, &options.join) {
            (Some(identity), _) => (identity.id, false),
            (None, None) => (FIRST_NODE_ID, false),
            (None, Some(addr)) => (ask_to_join(&transport, addr, &me).await?, true),
        };
        // Opened (and locked) before anything else is said of the directory: a second process
        // on it hears that it is in use.
        let mut db = ClusterDb::open_with(data_dir, id, transport).await?;
        db.tls = tls;
        if let Some(identity) = &identity
            && identity.name != options.name
        {
            return Err(ClusterError::WrongNode {
                path: data_dir.to_path_buf(),
                owner: identity.name.clone(),
                name: options.name.clone(),
            });
        }
        if identity.is_none() {
            write_identity(data_dir, &Identity { id, name: options.name.clone() })?;
        }
        let initialized = db.raft.is_initialized().await.map_err(|e| ClusterError::Raft(e.to_string()))?;
        // A node without a certificate that is not joining makes its own: from a new CA when it
        // forms a cluster (or is a single node from before certificates), from the CA in its
        // database when it is the only member. Recorded in the database once it leads.
        let mut own_ca = None;
        if db.tls.identity().is_none() {
            let alone = !initialized || db.members().keys().all(|m| *m == id);
            if !alone {
                return Err(ClusterError::Security(format!(
                    "{} has no node certificate (tls/ is missing) but belongs to a cluster of several nodes; evict \
                     this node, remove its data directory and join it again with a token",
                    data_dir.display()
                )));
            }
            let ca = match (db.get(crate::access::CA_CERT)?, db.get(crate::access::CA_KEY)?) {
                (Some(cert), Some(key)) => {
                    ClusterCa::from_pem(&String::from_utf8_lossy(&cert.value), &String::from_utf8_lossy(&key.value))
                }
                _ => ClusterCa::generate(&options.name),
            }
            .map_err(security)?;
            let (key_pem, csr) =
                halo_security::ca::node_key_and_request(&options.name, &options.tls_names).map_err(security)?;
            let cert = ca.issue(&options.name, &csr).map_err(security)?;
            let certificate = NodeIdentity { ca_pem: ca.cert_pem().to_string(), cert_pem: cert.pem, key_pem };
            certificate.save(data_dir).map_err(security)?;
            db.tls.set(&certificate)?;
            own_ca = Some((ca, certificate));
        }
        db.serve_peers(peers);
        let promote = PromoteRequest { id, node: me };
        if !initialized && !fresh_join && options.join.is_none() {
            // A new cluster of one.
            db.form(BTreeMap::from([(id, peer_addr)])).await?;
            db.raft
                .wait(Some(Duration::from_secs(30)))
                .state(ServerState::Leader, "this node leads its new cluster")
                .await
                .map_err(|e| ClusterError::Raft(e.to_string()))?;
            if let Some((ca, certificate)) = &own_ca {
                db.install_ca(ca, &options.name, certificate).await?;
            }
            db.promote(&promote, options.join.as_deref()).await?;
            tracing::info!(node = %options.name, "formed a new cluster");
        } else if fresh_join || !initialized {
            // Joining: not a member until promoted, so wait for it.
            tokio::time::timeout(JOIN_DEADLINE, db.promote(&promote, options.join.as_deref())).await.map_err(
                |_| ClusterError::Peer(format!("the cluster did not take this node in within {JOIN_DEADLINE:?}")),
            )??;
            tracing::info!(node = %options.name, id, "joined the cluster");
        } else {
            if let Some((ca, certificate)) = &own_ca {
                // The only member: it leads as soon as its election ends.
                db.raft
                    .wait(Some(Duration::from_secs(30)))
                    .state(ServerState::Leader, "this node leads its cluster of one")
                    .await
                    .map_err(|e| ClusterError::Raft(e.to_string()))?;
                db.install_ca(ca, &options.name, certificate).await?;
            }
            // Restarting as a member: it serves at once; recording a changed address (and
            // finishing a join cut short) goes on until a leader answers.
            let join = options.join.clone();
            let service_db = db.rejoiner();
            tokio::spawn(async move {
                if let Err(e) = service_db.promote(&promote, join.as_deref()).await {
                    tracing::warn!(error = %e, "could not confirm membership with the leader");
                }
            });
        }
        Ok(db)
    }

    /// What a background rejoin needs: a handle that sends through this node's transport.
    fn rejoiner(&self) -> Rejoiner {
        Rejoiner {
            service: self.service(),
            transport: self.transport.clone(),
            raft: self.raft.clone(),
            node_id: self.node_id,
            stop: self.stop_serving.subscribe(),
        }
    }

    /// Asks the leader (through `join` or any member this node knows) to make it a member,
    /// until one answers.
    async fn promote(&self, promote: &PromoteRequest, join: Option<&str>) -> Result<bool, ClusterError> {
        self.rejoiner().promote(promote, join).await
    }
}

/// Sends [`PeerMessage::Promote`] until it is answered.
struct Rejoiner {
    service: crate::PeerService,
    transport: std::sync::Arc<dyn crate::transport::DynTransport>,
    raft: openraft::Raft<crate::TypeConfig>,
    node_id: u64,
    /// Turns true when the database shuts down: asking stops with it.
    stop: tokio::sync::watch::Receiver<bool>,
}

impl Rejoiner {
    async fn promote(&self, promote: &PromoteRequest, join: Option<&str>) -> Result<bool, ClusterError> {
        let mut delay = Duration::from_millis(50);
        loop {
            let metrics = self.raft.metrics().borrow().clone();
            if metrics.current_leader == Some(self.node_id) && metrics.state.is_leader() {
                match self.service.promote(promote.clone()).await {
                    Err(ClusterError::NotLeader { .. }) => {}
                    other => return other,
                }
            }
            // Whoever this node knows: the leader first, then the join address, then every member.
            let membership = metrics.membership_config.membership().clone();
            let mut candidates: Vec<String> = Vec::new();
            if let Some(leader) = metrics.current_leader.filter(|l| *l != self.node_id)
                && let Some(node) = membership.get_node(&leader)
            {
                candidates.push(node.addr.clone());
            }
            candidates.extend(join.map(str::to_string));
            candidates.extend(membership.nodes().filter(|(id, _)| **id != self.node_id).map(|(_, n)| n.addr.clone()));
            for addr in candidates {
                match self.transport.send_boxed(0, &addr, PeerMessage::Promote(promote.clone())).await {
                    Ok(PeerReply::Promoted(Ok(voter))) => return Ok(voter),
                    Ok(PeerReply::Promoted(Err(Refusal::Failed(m)))) => return Err(ClusterError::Peer(m)),
                    Ok(PeerReply::Refused(m)) => return Err(ClusterError::Denied(m)),
                    Ok(other) => tracing::debug!(%addr, ?other, "not taken in yet"),
                    Err(e) => tracing::debug!(%addr, error = %e, "member unreachable"),
                }
            }
            let mut stop = self.stop.clone();
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = stop.wait_for(|s| *s) => return Err(ClusterError::Closed),
            }
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }
}

/// Asks the member at `addr` (which forwards to its leader) for this node's id.
async fn ask_to_join(transport: &TcpTransport, addr: &str, me: &JoinRequest) -> Result<u64, ClusterError> {
    let deadline = tokio::time::Instant::now() + JOIN_DEADLINE;
    let mut delay = Duration::from_millis(50);
    loop {
        let outcome = match transport.send(0, addr, PeerMessage::Join(me.clone())).await {
            Ok(PeerReply::Joined(Ok(id))) => return Ok(id),
            Ok(PeerReply::Joined(Err(Refusal::Failed(m)))) => {
                return Err(ClusterError::Peer(format!("{addr} refused: {m}")));
            }
            Ok(PeerReply::Joined(Err(Refusal::NotLeader { .. }))) => format!("{addr} has no leader yet"),
            Ok(PeerReply::Refused(m)) => return Err(ClusterError::Denied(format!("{addr}: {m}"))),
            Ok(_) => return Err(ClusterError::Peer(format!("{addr} answered a join with a reply of another kind"))),
            Err(e) => e.to_string(),
        };
        if tokio::time::Instant::now() + delay > deadline {
            return Err(ClusterError::Peer(format!("cannot join through {addr}: {outcome}")));
        }
        tracing::info!(%addr, reason = %outcome, "waiting to join");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// Gets this node's certificate from the cluster at `addr` with the join token, and stores it.
async fn enroll(data_dir: &Path, addr: &str, options: &BootOptions) -> Result<NodeIdentity, ClusterError> {
    let security = |e: halo_security::SecurityError| ClusterError::Security(e.to_string());
    let Some(text) = &options.token else {
        return Err(ClusterError::Denied(format!(
            "joining {addr} needs a join token: run `halo node token create` on a member and pass it with --token"
        )));
    };
    let token = halo_security::token::JoinToken::parse(text).map_err(security)?;
    let (key_pem, csr_pem) =
        halo_security::ca::node_key_and_request(&options.name, &options.tls_names).map_err(security)?;
    let request = crate::access::EnrollRequest {
        token_id: token.id.clone(),
        token_secret: token.secret.clone(),
        name: options.name.clone(),
        csr_pem,
    };
    let deadline = tokio::time::Instant::now() + JOIN_DEADLINE;
    let mut delay = Duration::from_millis(50);
    loop {
        let outcome =
            match crate::peer::send_anonymous(addr, &token.ca_fingerprint, &PeerMessage::Enroll(request.clone())).await
            {
                Ok(PeerReply::Enrolled(Ok(reply))) => {
                    let fingerprint = halo_security::tls::cert_fingerprint(&reply.ca_pem).map_err(security)?;
                    if fingerprint != token.ca_fingerprint {
                        return Err(ClusterError::Denied(format!(
                            "{addr} answered with a CA other than the one the join token names"
                        )));
                    }
                    let identity = NodeIdentity { ca_pem: reply.ca_pem, cert_pem: reply.cert_pem, key_pem };
                    halo_security::files::private_dir(data_dir).map_err(security)?;
                    identity.save(data_dir).map_err(security)?;
                    tracing::info!(%addr, "enrolled: this node has its certificate");
                    return Ok(identity);
                }
                Ok(PeerReply::Enrolled(Err(Refusal::Failed(m)))) | Ok(PeerReply::Refused(m)) => {
                    return Err(ClusterError::Denied(format!("{addr} refused to enroll this node: {m}")));
                }
                Ok(PeerReply::Enrolled(Err(Refusal::NotLeader { .. }))) => format!("{addr} has no leader yet"),
                Ok(_) => {
                    return Err(ClusterError::Peer(format!(
                        "{addr} answered an enrollment with a reply of another kind"
                    )));
                }
                // A CA other than the token's fails the handshake: no use trying again.
                Err(e) if e.to_string().contains("CA") => return Err(ClusterError::Denied(e.to_string())),
                Err(e) => e.to_string(),
            };
        if tokio::time::Instant::now() + delay > deadline {
            return Err(ClusterError::Peer(format!("cannot enroll through {addr}: {outcome}")));
        }
        tracing::info!(%addr, reason = %outcome, "waiting to enroll");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}
