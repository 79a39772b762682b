//! Serving the API: plain HTTP (loopback) or TLS, with the limits every listener needs.
//!
//! - At most [`Limits::max_connections`] connections. A new one beyond that closes the one
//!   that has been idle longest (no request in progress), so a flood of silent connections
//!   cannot lock clients out; if every connection is busy, the new one is closed.
//! - A connection must complete its first request's headers within
//!   [`Limits::first_request`], and every request's within the same time (hyper's header
//!   timeout); a keep-alive connection idle for [`Limits::idle`] is closed.
//! - TLS handshakes must finish within [`Limits::first_request`]. Plain HTTP sent to the TLS
//!   port gets a 400 saying so, then the connection closes.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// The limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time to finish a TLS handshake and each request's headers.
    pub first_request: Duration,
    /// A keep-alive connection with nothing in progress is closed after this.
    pub idle: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_connections: 1024, first_request: Duration::from_secs(10), idle: Duration::from_secs(30) }
    }
}

/// One served connection, as the table of connections sees it.
struct Slot {
    /// Milliseconds since the listener started, at its last byte in or out.
    last_active: Arc<AtomicU64>,
    /// Requests being answered now.
    in_flight: Arc<AtomicUsize>,
    close: Arc<Notify>,
}

#[derive(Default)]
struct Table {
    next: u64,
    slots: HashMap<u64, Arc<Slot>>,
}

/// Where a TLS listener gets its settings, per connection (a renewed certificate applies to
/// the next connection).
pub type TlsSource = Arc<dyn Fn() -> Option<Arc<rustls::ServerConfig>> + Send + Sync>;

/// Serves `router` on `listener` (TLS with `tls`) until `stop` resolves.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsSource>,
    router: Router,
    limits: Limits,
    stop: impl std::future::Future<Output = ()>,
) {
    let started = Instant::now();
    let table = Arc::new(Mutex::new(Table::default()));
    tokio::pin!(stop);
    loop {
        let (stream, from) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accepting an API connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => return,
        };
        let Some((id, slot)) = admit(&table, &limits, started) else {
            drop(stream);
            continue;
        };
        let (router, table) = (router.clone(), table.clone());
        let tls = tls.as_ref().map(|source| source());
        if tls.as_ref().is_some_and(Option::is_none) {
            tracing::warn!("no TLS certificate to serve the API with; connection refused");
            table.lock().unwrap_or_else(|p| p.into_inner()).slots.remove(&id);
            continue;
        }
        let tls = tls.flatten();
        tokio::spawn(async move {
            connection(stream, from, tls, router, &limits, started, &slot).await;
            table.lock().unwrap_or_else(|p| p.into_inner()).slots.remove(&id);
        });
    }
}

fn now_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A slot for a new connection, closing the longest-idle one at the cap; None if all are busy.
fn admit(table: &Mutex<Table>, limits: &Limits, started: Instant) -> Option<(u64, Arc<Slot>)> {
    let mut table = table.lock().unwrap_or_else(|p| p.into_inner());
    if table.slots.len() >= limits.max_connections {
        let idlest = table
            .slots
            .iter()
            .filter(|(_, s)| s.in_flight.load(Ordering::Relaxed) == 0)
            .min_by_key(|(_, s)| s.last_active.load(Ordering::Relaxed))
            .map(|(id, _)| *id);
        let victim = table.slots.remove(&idlest?)?;
        victim.close.notify_one();
    }
    let id = table.next;
    table.next += 1;
    let slot = Arc::new(Slot {
        last_active: Arc::new(AtomicU64::new(now_ms(started))),
        in_flight: Arc::default(),
        close: Arc::default(),
    });
    table.slots.insert(id, slot.clone());
    Some((id, slot))
}

const PLAIN_HTTP_TO_TLS: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"error\":\"ERROR_INVALID_PARAMETER\",\"code\":87,\"message\":\"this port speaks HTTPS: use https://\"}\n";

async fn connection(
    stream: TcpStream,
    from: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    limits: &Limits,
    started: Instant,
    slot: &Slot,
) {
    let _ = stream.set_nodelay(true);
    let io = Activity { inner: stream, last_active: slot.last_active.clone(), started };
    let served = async {
        match tls {
            None => http(io, from, router, limits, slot).await,
            Some(config) => {
                // A TLS connection starts with a handshake record (0x16); anything else is
                // most likely plain HTTP, which deserves an answer it can read.
                let mut first = [0u8; 1];
                match tokio::time::timeout(limits.first_request, io.inner.peek(&mut first)).await {
                    Ok(Ok(1)) if first[0] == 0x16 => {}
                    Ok(Ok(1)) => {
                        let mut io = io;
                        let _ = io.write_all(PLAIN_HTTP_TO_TLS).await;
                        let _ = io.shutdown().await;
                        return;
                    }
                    _ => return,
                }
                let accepted = tokio_rustls::TlsAcceptor::from(config).accept(io);
                match tokio::time::timeout(limits.first_request, accepted).await {
                    Ok(Ok(io)) => http(io, from, router, limits, slot).await,
                    Ok(Err(e)) => tracing::debug!(%from, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%from, "no TLS handshake in time"),
                }
            }
        }
    };
    // The watchdog: a connection that has not started a request in time, or has been idle
    // too long, is closed; so is one the table gave up for a newer connection.
    let watchdog = async {
        let mut first = true;
        loop {
            let wait = if first { limits.first_request } else { limits.idle };
            tokio::time::sleep(wait / 4).await;
            let idle_for = now_ms(started).saturating_sub(slot.last_active.load(Ordering::Relaxed));
            if slot.in_flight.load(Ordering::Relaxed) > 0 {
                first = false;
                continue;
            }
            if u128::from(idle_for) >= wait.as_millis() {
                return;
            }
        }
    };
    tokio::select! {
        () = served => {}
        () = watchdog => tracing::debug!(%from, "closing an idle API connection"),
        () = slot.close.notified() => tracing::debug!(%from, "closing an idle API connection for a new one"),
    }
}

async fn http<I: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    io: I,
    from: SocketAddr,
    router: Router,
    limits: &Limits,
    slot: &Slot,
) {
    let in_flight = slot.in_flight.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let mut req = req.map(axum::body::Body::new);
        req.extensions_mut().insert(ConnectInfo(from));
        let guard = InFlight::new(in_flight.clone());
        let mut router = router.clone();
        async move {
            let response = tower_service::Service::call(&mut router, req).await;
            drop(guard);
            response
        }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.first_request);
    builder.http2().timer(TokioTimer::new());
    if let Err(e) = builder.serve_connection_with_upgrades(TokioIo::new(io), service).await {
        tracing::debug!(%from, error = %e, "API connection ended");
    }
}

/// Counts a request in progress for as long as it lives.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn new(count: Arc<AtomicUsize>) -> InFlight {
        count.fetch_add(1, Ordering::Relaxed);
        InFlight(count)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A stream that notes when bytes last moved.
struct Activity {
    inner: TcpStream,
    last_active: Arc<AtomicU64>,
    started: Instant,
}

impl Activity {
    fn touch(&self) {
        self.last_active.store(now_ms(self.started), Ordering::Relaxed);
    }
}

impl AsyncRead for Activity {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        result
    }
}

impl AsyncWrite for Activity {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
