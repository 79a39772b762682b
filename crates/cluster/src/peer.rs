//! The peer channel: [`PeerMessage`]s over mutual TLS, and the [`PeerService`] that answers them.
//!
//! Every connection is TLS 1.3. A client presenting a certificate of this cluster's CA is a
//! member ([`Caller::Member`]) and may send anything, until its certificate is revoked (checked
//! on every message). A client without a certificate ([`Caller::Anonymous`]) may send one
//! [`PeerMessage::Enroll`] with a join token and nothing else; such connections are rate-limited
//! per address and their frames capped at [`MAX_ANONYMOUS_FRAME`]. Certificates of another CA
//! fail the handshake.
//!
//! Framing inside TLS is a 4-byte big-endian length and a JSON body, one request then one reply
//! on a connection at a time; a sender keeps idle connections for reuse (a while shorter than the
//! server keeps them), so steady traffic (Raft's heartbeats, the coordinator's) opens no new
//! sockets. Frames above the limit are refused before they are read. Handshakes, reads and idle
//! connections have timeouts, and a node serves at most [`MAX_CONNECTIONS`] at once.

use crate::transport::{PeerMessage, PeerReply, Refusal, Transport, TransportError};
use crate::{ClusterError, Pending, Request, Response, TypeConfig};
use halo_security::NodeIdentity;
use halo_security::limit::RateLimiter;
use openraft::Raft;
use rustls::{ClientConfig, ServerConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The largest frame a member may send (a snapshot chunk or a large batch of entries).
pub const MAX_FRAME: usize = 64 << 20;

/// The largest frame a connection without a certificate may send (an enrollment).
pub const MAX_ANONYMOUS_FRAME: usize = 64 << 10;

/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a server keeps a member's connection with nothing to read.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a sender reuses an idle connection (well inside [`IDLE_TIMEOUT`], so a pooled
/// connection is never one the server is about to close).
pub const REUSE_FOR: Duration = Duration::from_secs(60);

/// The most peer connections a node serves at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 512;

/// Connections without a certificate, per client address: a burst, then this many a second.
pub const ANONYMOUS_PER_SECOND: u32 = 2;
/// See [`ANONYMOUS_PER_SECOND`].
pub const ANONYMOUS_BURST: u32 = 10;

/// Who sent a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A member: its certificate's subject (the node's name) and fingerprint.
    Member {
        /// The node's name.
        name: String,
        /// The certificate's SHA-256.
        fingerprint: String,
    },
    /// A connection without a certificate: may only enroll.
    Anonymous,
    /// This process (the in-process transport of tests): trusted.
    Local,
}

/// This node's TLS settings for the peer channel, replaced whole when its certificate is
/// renewed (connections already open keep theirs).
#[derive(Default)]
pub struct PeerTls {
    current: RwLock<Option<TlsSet>>,
}

/// One identity and the settings made from it.
#[derive(Clone)]
struct TlsSet {
    identity: NodeIdentity,
    peer_server: Arc<ServerConfig>,
    peer_client: Arc<ClientConfig>,
    api_server: Arc<ServerConfig>,
}

impl PeerTls {
    /// Settings for `identity`.
    pub fn new(identity: &NodeIdentity) -> Result<PeerTls, ClusterError> {
        let tls = PeerTls::default();
        tls.set(identity)?;
        Ok(tls)
    }

    /// Switches to `identity` (a renewed certificate).
    pub fn set(&self, identity: &NodeIdentity) -> Result<(), ClusterError> {
        let security = |e: halo_security::SecurityError| ClusterError::Security(e.to_string());
        let server = halo_security::tls::peer_server(identity).map_err(security)?;
        let client = halo_security::tls::peer_client(identity).map_err(security)?;
        let api = halo_security::tls::api_server(identity).map_err(security)?;
        let set = TlsSet { identity: identity.clone(), peer_server: server, peer_client: client, api_server: api };
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(set);
        Ok(())
    }

    /// The identity in use.
    pub fn identity(&self) -> Option<NodeIdentity> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).as_ref().map(|c| c.identity.clone())
    }

    /// The API's TLS settings, with the same certificate.
    pub fn api_server(&self) -> Option<Arc<ServerConfig>> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).as_ref().map(|c| c.api_server.clone())
    }

    fn server(&self) -> Option<Arc<ServerConfig>> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).as_ref().map(|c| c.peer_server.clone())
    }

    fn client(&self) -> Option<Arc<ClientConfig>> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).as_ref().map(|c| c.peer_client.clone())
    }
}

/// How long connecting to a peer may take before it counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// How long a peer may take to answer before the call counts as failed: long enough for a
/// commit under load, short enough that a frozen peer does not hold the sender.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(3);

/// A boxed future, as [`AppHandler`] returns.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Answers [`PeerMessage::App`]: the messages of a layer above the database (the coordinator's
/// heartbeats, leases and moves). The database only carries them.
pub trait AppHandler: Send + Sync + 'static {
    /// The reply to `body`, or why there is none.
    fn handle(&self, body: Vec<u8>) -> BoxFuture<Result<Vec<u8>, Refusal>>;
}

/// What answers peers on this node: consensus, forwarded writes, membership and the app layer.
/// Cheap to clone; every clone serves the same node.
#[derive(Clone)]
pub struct PeerService {
    pub(crate) raft: Raft<TypeConfig>,
    pub(crate) writes: mpsc::UnboundedSender<Pending>,
    /// Weak: whoever keeps a service (a transport's registry, a connection task) must not keep
    /// the database file open after the database shut down.
    pub(crate) db: std::sync::Weak<redb::Database>,
    pub(crate) app: Arc<RwLock<Option<Arc<dyn AppHandler>>>>,
    pub(crate) transport: Arc<dyn crate::transport::DynTransport>,
    /// When this member last heard from a leader (an AppendEntries), for [`PeerMessage::Ping`].
    pub(crate) leader_heard: Arc<Mutex<Option<std::time::Instant>>>,
}

impl PeerService {
    /// Answers one message from `caller`.
    pub async fn handle(&self, message: PeerMessage, caller: &Caller) -> PeerReply {
        match (caller, &message) {
            (Caller::Anonymous, PeerMessage::Enroll(_)) | (Caller::Local, _) => {}
            (Caller::Anonymous, _) => {
                return PeerReply::Refused(
                    "this needs a node certificate of this cluster; a new node joins with `halo node run --join \
                     ADDR --token TOKEN`"
                        .into(),
                );
            }
            (Caller::Member { name, fingerprint }, _) => {
                if self.is_revoked(fingerprint) {
                    return PeerReply::Refused(format!(
                        "the certificate of {name} (sha256 {fingerprint}) is revoked: the node was evicted; remove its \
                         data directory and join again with a new token"
                    ));
                }
            }
        }
        match message {
            PeerMessage::AppendEntries(rpc) => {
                *self.leader_heard.lock().unwrap_or_else(|p| p.into_inner()) = Some(std::time::Instant::now());
                PeerReply::AppendEntries(self.raft.append_entries(rpc).await)
            }
            PeerMessage::Vote(rpc) => PeerReply::Vote(self.raft.vote(rpc).await),
            PeerMessage::InstallSnapshot(rpc) => PeerReply::InstallSnapshot(self.raft.install_snapshot(rpc).await),
            PeerMessage::Write(request) => PeerReply::Write(self.commit(request).await.map_err(refusal)),
            PeerMessage::Ping => PeerReply::Pong { leader_heard_ms_ago: self.leader_heard_ms_ago() },
            PeerMessage::Enroll(request) => {
                let reply = PeerReply::Enrolled(self.enroll(request.clone()).await.map_err(refusal));
                self.or_forward(reply, PeerMessage::Enroll(request)).await
            }
            PeerMessage::Renew { csr_pem } => PeerReply::Renewed(match caller {
                Caller::Member { name, .. } => self.issue_renewal(name, &csr_pem).await.map_err(refusal),
                _ => Err(Refusal::Failed("only a member renews its certificate, over its own connection".into())),
            }),
            PeerMessage::Join(join) => {
                let reply = PeerReply::Joined(self.join(join.clone()).await.map_err(refusal));
                self.or_forward(reply, PeerMessage::Join(join)).await
            }
            PeerMessage::Promote(promote) => {
                let reply = PeerReply::Promoted(self.promote(promote.clone()).await.map_err(refusal));
                self.or_forward(reply, PeerMessage::Promote(promote)).await
            }
            PeerMessage::Evict { name } => {
                let reply = PeerReply::Evicted(self.evict(&name).await.map_err(refusal));
                self.or_forward(reply, PeerMessage::Evict { name }).await
            }
            PeerMessage::App(body) => {
                let handler = self.app.read().unwrap_or_else(|p| p.into_inner()).clone();
                PeerReply::App(match handler {
                    Some(h) => h.handle(body).await,
                    None => Err(Refusal::Failed("this node is not ready for cluster messages yet".into())),
                })
            }
        }
    }

    /// A membership request refused for not leading goes on to the leader, once (a node that
    /// joins knows one member's address, not who leads).
    async fn or_forward(&self, reply: PeerReply, message: PeerMessage) -> PeerReply {
        let leader_id = match &reply {
            PeerReply::Joined(Err(Refusal::NotLeader { leader_id }))
            | PeerReply::Enrolled(Err(Refusal::NotLeader { leader_id }))
            | PeerReply::Promoted(Err(Refusal::NotLeader { leader_id }))
            | PeerReply::Evicted(Err(Refusal::NotLeader { leader_id })) => *leader_id,
            _ => return reply,
        };
        let metrics = self.raft.metrics().borrow().clone();
        let Some(leader) = leader_id.filter(|l| *l != metrics.id) else { return reply };
        let Some(addr) = metrics.membership_config.membership().get_node(&leader).map(|n| n.addr.clone()) else {
            return reply;
        };
        self.transport.send_boxed(leader, &addr, message).await.unwrap_or(reply)
    }

    /// How long ago this member last heard from a leader: 0 if it leads, `None` if never.
    pub(crate) fn leader_heard_ms_ago(&self) -> Option<u64> {
        if crate::leads(&self.raft).is_ok() {
            return Some(0);
        }
        let heard = *self.leader_heard.lock().unwrap_or_else(|p| p.into_inner());
        heard.map(|t| u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// The database, while it is open.
    pub(crate) fn database(&self) -> Result<Arc<redb::Database>, ClusterError> {
        self.db.upgrade().ok_or(ClusterError::Closed)
    }

    /// Commits `request` here, through the group-commit writer; only a leader can.
    pub(crate) async fn commit(&self, request: Request) -> Result<Response, ClusterError> {
        let (tx, rx) = oneshot::channel();
        self.writes.send((request, tx)).map_err(|_| ClusterError::Closed)?;
        rx.await.map_err(|_| ClusterError::Closed)?
    }
}

/// A refusal as it travels back to the asking node.
fn refusal(e: ClusterError) -> Refusal {
    match e {
        ClusterError::NotLeader { leader_id, .. } => Refusal::NotLeader { leader_id },
        other => Refusal::Failed(other.to_string()),
    }
}

/// Serves peers on `listener` until `stop` turns true (or its sender goes): one task per
/// connection, requests on a connection answered in order.
pub(crate) async fn serve(
    listener: TcpListener,
    service: PeerService,
    tls: Arc<PeerTls>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let anonymous = Arc::new(RateLimiter::new(ANONYMOUS_PER_SECOND, ANONYMOUS_BURST));
    loop {
        let mut stopped = stop.clone();
        // A slot first: at the cap, connections wait in the backlog rather than take descriptors.
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s { Ok(s) => s, Err(_) => return },
            _ = stopped.wait_for(|s| *s) => return,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopped.wait_for(|s| *s) => return,
        };
        let (stream, from) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors and the like: pause rather than spin.
                tracing::warn!(error = %e, "accepting a peer connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (service, tls, anonymous) = (service.clone(), tls.clone(), anonymous.clone());
        let mut stopped = stop.clone();
        tokio::spawn(async move {
            let _slot = slot;
            tokio::select! {
                result = connection(stream, from, service, tls, anonymous) => if let Err(e) = result {
                    tracing::debug!(%from, error = %e, "peer connection ended");
                },
                // Whatever happens to the wait, the connection ends with the database.
                _ = stopped.wait_for(|s| *s) => {}
            }
        });
    }
}

async fn connection(
    stream: TcpStream,
    from: std::net::SocketAddr,
    service: PeerService,
    tls: Arc<PeerTls>,
    anonymous: Arc<RateLimiter>,
) -> std::io::Result<()> {
    let Some(config) = tls.server() else {
        return Err(std::io::Error::other("this node has no certificate yet"));
    };
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsAcceptor::from(config).accept(stream)).await {
        Ok(s) => s?,
        Err(_) => return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no TLS handshake in time")),
    };
    let caller = match stream.get_ref().1.peer_certificates().and_then(|c| c.first()) {
        Some(cert) => match halo_security::tls::cert_info(cert) {
            Ok(info) => Caller::Member { name: info.common_name, fingerprint: info.fingerprint },
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        },
        None if anonymous.allow(from.ip()) => Caller::Anonymous,
        None => return Err(std::io::Error::other("too many connections without a certificate from this address")),
    };
    answer(stream, service, caller).await
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    service: PeerService,
    caller: Caller,
) -> std::io::Result<()> {
    let (limit, idle) = match caller {
        Caller::Anonymous => (MAX_ANONYMOUS_FRAME, HANDSHAKE_TIMEOUT),
        _ => (MAX_FRAME, IDLE_TIMEOUT),
    };
    loop {
        let message: PeerMessage = match tokio::time::timeout(idle, read_frame(&mut stream, limit)).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        };
        let reply = service.handle(message, &caller).await;
        let refused = matches!(reply, PeerReply::Refused(_));
        write_frame(&mut stream, &reply).await?;
        // A refused caller, and any caller without a certificate, gets one answer.
        if refused || caller == Caller::Anonymous {
            let _ = stream.shutdown().await;
            return Ok(());
        }
    }
}

/// Writes one frame.
pub async fn write_frame<S: AsyncWrite + Unpin, T: Serialize>(stream: &mut S, value: &T) -> std::io::Result<()> {
    let body = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    if body.len() > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("a peer message of {} bytes is over the {MAX_FRAME}-byte limit", body.len()),
        ));
    }
    let len = u32::try_from(body.len()).map_err(std::io::Error::other)?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    stream.write_all(&frame).await?;
    stream.flush().await
}

/// Reads one frame; a length over `limit` is refused before anything is allocated.
pub async fn read_frame<S: AsyncRead + Unpin, T: DeserializeOwned>(stream: &mut S, limit: usize) -> std::io::Result<T> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a peer sent a frame of {len} bytes; the limit is {limit}"),
        ));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    serde_json::from_slice(&body)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("a malformed peer message: {e}")))
}

/// Sends one message on a fresh connection without a certificate, to a server that must prove
/// the CA with `ca_fingerprint` (a joining node's enrollment), and reads the reply.
pub async fn send_anonymous(
    addr: &str,
    ca_fingerprint: &str,
    message: &PeerMessage,
) -> Result<PeerReply, ClusterError> {
    let fail = |reason: String| ClusterError::Peer(format!("{addr}: {reason}"));
    let config = halo_security::tls::enroll_client(ca_fingerprint).map_err(|e| fail(e.to_string()))?;
    let name = halo_security::tls::peer_server_name().map_err(|e| fail(e.to_string()))?;
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(s) => s.map_err(|e| fail(e.to_string()))?,
        Err(_) => return Err(fail(format!("no connection within {CONNECT_TIMEOUT:?}"))),
    };
    let mut stream =
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsConnector::from(config).connect(name, stream)).await {
            Ok(s) => s.map_err(|e| fail(format!("TLS: {e}")))?,
            Err(_) => return Err(fail("no TLS handshake in time".into())),
        };
    write_frame(&mut stream, message).await.map_err(|e| fail(e.to_string()))?;
    match tokio::time::timeout(REPLY_TIMEOUT * 10, read_frame(&mut stream, MAX_FRAME)).await {
        Ok(reply) => reply.map_err(|e| fail(e.to_string())),
        Err(_) => Err(fail("no reply in time".into())),
    }
}

type PeerStream = tokio_rustls::client::TlsStream<TcpStream>;

/// The TLS peer channel's sending side, with a pool of idle connections per address.
pub struct TcpTransport {
    idle: Mutex<HashMap<String, Vec<(PeerStream, std::time::Instant)>>>,
    tls: Arc<PeerTls>,
}

impl TcpTransport {
    /// A transport with no connections yet, presenting the certificate `tls` holds.
    pub fn new(tls: Arc<PeerTls>) -> TcpTransport {
        TcpTransport { idle: Mutex::default(), tls }
    }

    fn take_idle(&self, addr: &str) -> Option<PeerStream> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let pool = idle.get_mut(addr)?;
        pool.retain(|(_, since)| since.elapsed() < REUSE_FOR);
        pool.pop().map(|(s, _)| s)
    }

    fn put_idle(&self, addr: &str, stream: PeerStream) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let pool = idle.entry(addr.to_string()).or_default();
        // A handful covers the concurrency between two nodes; more would only hold descriptors.
        if pool.len() < 8 {
            pool.push((stream, std::time::Instant::now()));
        }
    }

    async fn connect_and_send(&self, to: u64, addr: &str, message: &PeerMessage) -> Result<PeerStream, TransportError> {
        let unreachable =
            |reason: String| TransportError::Unreachable { node: to, reason: format!("{addr}: {reason}") };
        let Some(config) = self.tls.client() else {
            return Err(unreachable("this node has no certificate yet".into()));
        };
        let name = halo_security::tls::peer_server_name().map_err(|e| unreachable(e.to_string()))?;
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(_) => return Err(unreachable(format!("no connection within {CONNECT_TIMEOUT:?}"))),
        };
        let _ = stream.set_nodelay(true);
        let mut stream =
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsConnector::from(config).connect(name, stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(unreachable(format!("TLS: {e}"))),
                Err(_) => return Err(unreachable("no TLS handshake in time".into())),
            };
        write_frame(&mut stream, message)
            .await
            .map_err(|e| TransportError::Failed { node: to, reason: format!("{addr}: {e}") })?;
        Ok(stream)
    }
}

impl Transport for TcpTransport {
    async fn send(&self, to: u64, addr: &str, message: PeerMessage) -> Result<PeerReply, TransportError> {
        let failed = |reason: String| TransportError::Failed { node: to, reason: format!("{addr}: {reason}") };
        // A pooled connection may have been closed by the peer meanwhile: one retry on a fresh
        // connection if writing to it fails (nothing was delivered then).
        let mut stream = match self.take_idle(addr) {
            Some(mut s) => match write_frame(&mut s, &message).await {
                Ok(()) => s,
                Err(_) => self.connect_and_send(to, addr, &message).await?,
            },
            None => self.connect_and_send(to, addr, &message).await?,
        };
        let reply = match tokio::time::timeout(REPLY_TIMEOUT, read_frame::<_, PeerReply>(&mut stream, MAX_FRAME)).await
        {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => return Err(failed(e.to_string())),
            Err(_) => return Err(failed(format!("no reply within {REPLY_TIMEOUT:?}"))),
        };
        if !matches!(reply, PeerReply::Refused(_)) {
            self.put_idle(addr, stream);
        }
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connected pair of streams on loopback.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (client.unwrap(), server.unwrap().0)
    }

    #[tokio::test]
    async fn frames_round_trip_and_bad_ones_are_refused_without_reading_them() {
        let (mut a, mut b) = pair().await;
        write_frame(&mut a, &PeerMessage::Evict { name: "n9".into() }).await.unwrap();
        let got: PeerMessage = read_frame(&mut b, MAX_FRAME).await.unwrap();
        assert!(matches!(got, PeerMessage::Evict { name } if name == "n9"));

        // A length over the limit is refused before any allocation of that size.
        a.write_all(&(u32::MAX).to_be_bytes()).await.unwrap();
        let err = read_frame::<_, PeerMessage>(&mut b, MAX_FRAME).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("limit"), "{err}");

        // Not a message: named as malformed.
        let (mut a, mut b) = pair().await;
        let junk = b"{\"Nope\":1}";
        a.write_all(&(junk.len() as u32).to_be_bytes()).await.unwrap();
        a.write_all(junk).await.unwrap();
        let err = read_frame::<_, PeerMessage>(&mut b, MAX_FRAME).await.unwrap_err();
        assert!(err.to_string().contains("malformed peer message"), "{err}");
    }
}
