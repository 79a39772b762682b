//! The peer channel: [`PeerMessage`]s over TCP, and the [`PeerService`] that answers them.
//!
//! Framing is a 4-byte big-endian length and a JSON body, one request then one reply on a
//! connection at a time; a sender keeps idle connections for reuse, so steady traffic (Raft's
//! heartbeats, the coordinator's) opens no new sockets. Frames above [`MAX_FRAME`] are refused
//! before they are read. Mutual TLS (the security work) wraps the stream, not this protocol.

use crate::transport::{PeerMessage, PeerReply, Refusal, Transport, TransportError};
use crate::{ClusterError, Pending, Request, Response, TypeConfig};
use openraft::Raft;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// The largest frame either side accepts (a snapshot chunk or a large batch of entries).
pub const MAX_FRAME: usize = 64 << 20;

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
    /// Answers one message.
    pub async fn handle(&self, message: PeerMessage) -> PeerReply {
        match message {
            PeerMessage::AppendEntries(rpc) => {
                *self.leader_heard.lock().unwrap_or_else(|p| p.into_inner()) = Some(std::time::Instant::now());
                PeerReply::AppendEntries(self.raft.append_entries(rpc).await)
            }
            PeerMessage::Vote(rpc) => PeerReply::Vote(self.raft.vote(rpc).await),
            PeerMessage::InstallSnapshot(rpc) => PeerReply::InstallSnapshot(self.raft.install_snapshot(rpc).await),
            PeerMessage::Write(request) => PeerReply::Write(self.commit(request).await.map_err(refusal)),
            PeerMessage::Ping => PeerReply::Pong { leader_heard_ms_ago: self.leader_heard_ms_ago() },
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
pub(crate) async fn serve(listener: TcpListener, service: PeerService, stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let mut stopped = stop.clone();
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
        let service = service.clone();
        let mut stopped = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                result = answer(stream, service) => if let Err(e) = result {
                    tracing::debug!(%from, error = %e, "peer connection ended");
                },
                // Whatever happens to the wait, the connection ends with the database.
                _ = stopped.wait_for(|s| *s) => {}
            }
        });
    }
}

async fn answer(mut stream: TcpStream, service: PeerService) -> std::io::Result<()> {
    loop {
        let message: PeerMessage = match read_frame(&mut stream).await {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let reply = service.handle(message).await;
        write_frame(&mut stream, &reply).await?;
    }
}

/// Writes one frame.
pub async fn write_frame<T: Serialize>(stream: &mut TcpStream, value: &T) -> std::io::Result<()> {
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
    stream.write_all(&frame).await
}

/// Reads one frame; a length over [`MAX_FRAME`] is refused before anything is allocated.
pub async fn read_frame<T: DeserializeOwned>(stream: &mut TcpStream) -> std::io::Result<T> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a peer sent a frame of {len} bytes; the limit is {MAX_FRAME}"),
        ));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    serde_json::from_slice(&body)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("a malformed peer message: {e}")))
}

/// The TCP peer channel's sending side, with a pool of idle connections per address.
#[derive(Default)]
pub struct TcpTransport {
    idle: Mutex<HashMap<String, Vec<TcpStream>>>,
}

impl TcpTransport {
    /// A transport with no connections yet.
    pub fn new() -> TcpTransport {
        TcpTransport::default()
    }

    fn take_idle(&self, addr: &str) -> Option<TcpStream> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).get_mut(addr).and_then(Vec::pop)
    }

    fn put_idle(&self, addr: &str, stream: TcpStream) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let pool = idle.entry(addr.to_string()).or_default();
        // A handful covers the concurrency between two nodes; more would only hold descriptors.
        if pool.len() < 8 {
            pool.push(stream);
        }
    }

    async fn connect_and_send(&self, to: u64, addr: &str, message: &PeerMessage) -> Result<TcpStream, TransportError> {
        let unreachable =
            |reason: String| TransportError::Unreachable { node: to, reason: format!("{addr}: {reason}") };
        let mut stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(_) => return Err(unreachable(format!("no connection within {CONNECT_TIMEOUT:?}"))),
        };
        let _ = stream.set_nodelay(true);
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
        let reply = match tokio::time::timeout(REPLY_TIMEOUT, read_frame::<PeerReply>(&mut stream)).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => return Err(failed(e.to_string())),
            Err(_) => return Err(failed(format!("no reply within {REPLY_TIMEOUT:?}"))),
        };
        self.put_idle(addr, stream);
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
        let got: PeerMessage = read_frame(&mut b).await.unwrap();
        assert!(matches!(got, PeerMessage::Evict { name } if name == "n9"));

        // A length over the limit is refused before any allocation of that size.
        a.write_all(&(u32::MAX).to_be_bytes()).await.unwrap();
        let err = read_frame::<PeerMessage>(&mut b).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("limit"), "{err}");

        // Not a message: named as malformed.
        let (mut a, mut b) = pair().await;
        let junk = b"{\"Nope\":1}";
        a.write_all(&(junk.len() as u32).to_be_bytes()).await.unwrap();
        a.write_all(junk).await.unwrap();
        let err = read_frame::<PeerMessage>(&mut b).await.unwrap_err();
        assert!(err.to_string().contains("malformed peer message"), "{err}");
    }
}
