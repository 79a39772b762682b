//! `halo node run`: the node daemon — cluster database, engine, hosts and the HTTP API.

use anyhow::{Context, Result};
use halo_cluster::{BootOptions, ClusterDb};
use halo_engine::{Engine, OpStatus};
use halo_host::client::{HostCommand, HostManager};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long a shutdown waits for groups to go offline.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(120);

/// Options of `halo node run`.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeRun {
    /// Where the cluster database and the lock live.
    #[arg(long, default_value = "./halo-data")]
    pub data_dir: PathBuf,
    /// This node's name (default: the host name).
    #[arg(long)]
    pub name: Option<String>,
    /// Address of the HTTP API (loopback unless told otherwise); port 0 takes a free port, and
    /// the line printed at start-up names the address actually bound. On loopback the API is
    /// plain HTTP; on any other address it is HTTPS with the node's certificate (the cluster
    /// CA's). Either way every request needs a token.
    #[arg(long, default_value = "127.0.0.1:7480")]
    pub listen: SocketAddr,
    /// More names (DNS names or IP addresses) clients reach the API at: added to the node's
    /// certificate and to the Host names the API answers to. Repeatable.
    #[arg(long = "api-name")]
    pub api_names: Vec<String>,
    /// Address other nodes reach this one at (the peer channel: consensus, heartbeats, leases).
    /// Port 0 takes a free port (fine for a single node; give a fixed one in a cluster).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub peer_listen: SocketAddr,
    /// The peer address of any member of a running cluster, to join it. Not needed to restart
    /// a member: its data directory knows its cluster.
    #[arg(long)]
    pub join: Option<String>,
    /// The join token (`halo node token create` on a member), for a new node joining with
    /// --join. Also read from HALO_JOIN_TOKEN (which keeps it out of the process list).
    #[arg(long, env = "HALO_JOIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A configuration to apply once the node is up (as `halo apply -f`).
    #[arg(long)]
    pub apply: Option<PathBuf>,
}

impl NodeRun {
    /// Runs the daemon until SIGTERM or SIGINT, then takes every group offline (keeping their
    /// persistent state) and exits.
    pub fn run(&self) -> Result<()> {
        tracing_subscriber::fmt()
            .with_env_filter(
                // openraft's core logs every unanswered leadership confirmation as an error
                // (ten a second while a node is down); the coordinator's own logs say what matters.
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info,openraft=warn,openraft::core::raft_core=off".into()),
            )
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
        tokio::runtime::Runtime::new()?.block_on(self.serve())
    }

    async fn serve(&self) -> Result<()> {
        let name = match &self.name {
            Some(n) => n.clone(),
            None => nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "node-1".into()),
        };
        halo_engine::model::check_name("node", &name).map_err(|e| anyhow::anyhow!("{e}"))?;
        raise_file_limit();
        // Bound first: with port 0 the kernel picks the port, and only the bound address is
        // worth recording, printing and applying to.
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .with_context(|| format!("cannot listen on {}", self.listen))?;
        let address =
            listener.local_addr().with_context(|| format!("reading the address bound for {}", self.listen))?;
        let peers = tokio::net::TcpListener::bind(self.peer_listen)
            .await
            .with_context(|| format!("cannot listen for peers on {}", self.peer_listen))?;
        let peer_address =
            peers.local_addr().with_context(|| format!("reading the address bound for {}", self.peer_listen))?;
        // Loopback is this machine's own; anything else is the network: HTTPS only.
        let tls = !address.ip().is_loopback();
        let names = certificate_names(address, peer_address, &name, &self.api_names);
        let advertised = advertised(address, peer_address);
        let scheme = if tls { "https" } else { "http" };
        let boot = BootOptions {
            name: name.clone(),
            api_addr: if tls { format!("https://{advertised}") } else { advertised.to_string() },
            join: self.join.clone(),
            token: self.token.clone(),
            tls_names: names.clone(),
        };
        let db = Arc::new(ClusterDb::boot(&self.data_dir, peers, boot).await?);
        halo_cluster::access::keep_certificate(&db, self.data_dir.clone(), name.clone(), names.clone());
        tracing::info!(path = %db.path().display(), id = db.node_id(), "cluster database open");
        // A lost data directory or a full disk ends the database for good: the daemon exits
        // non-zero so its supervisor restarts it, rather than run on answering errors.
        let fatal = db.fatal();
        // The coordinator acts while this node leads; the agent holds this node's ownership
        // lease, under which the engine runs groups (and which the hosts enforce at its end).
        halo_coordinator::driver::start(db.clone())?;
        let lease = halo_coordinator::agent::start(&db, &name);
        let (hosts, facts) = HostManager::new(HostCommand::current_exe().context("locating the halo binary")?);
        let options = halo_engine::driver::Options::leased(lease);
        let engine =
            Engine::start_with(&name, db.clone(), hosts, facts, options).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        // The local administrator's credential: valid here at once, and cluster-wide once the
        // database has it (a request redirected to another node carries it there).
        let local = halo_security::token::ApiToken::generate()?;
        let endpoints = local_endpoints(scheme, address);
        let ca_pem = if tls { db.tls().identity().map(|i| i.ca_pem) } else { None };
        let credential_files = crate::credentials::write_local(&endpoints, &local.reveal(), ca_pem.as_deref())
            .context("writing the local credential")?;
        register_local_token(&db, &name, &local);
        let access = Arc::new(halo_api::auth::Access::new(
            db.clone(),
            &name,
            Some(halo_api::auth::LocalCredential {
                id: local.id.clone(),
                hash: halo_security::token::hash_secret(&local.secret),
            }),
            allowed_hosts(address, &names),
        ));
        tracing::info!(node = %name, listen = %address, peers = %peer_address, "halo node running");
        println!("halo node {name} listening on {scheme}://{address}");
        println!("halo node {name} peers on {peer_address}");
        if let Some(file) = self.apply.clone() {
            let endpoint = endpoints.first().cloned().unwrap_or_default();
            tokio::spawn(async move {
                if let Err(e) = crate::apply::apply_file(&endpoint, &file, false, false).await {
                    eprintln!("halo: applying {}: {e:#}", file.display());
                }
            });
        }
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let tls_source: Option<halo_api::serve::TlsSource> = tls.then(|| {
            let peer_tls = db.tls().clone();
            Arc::new(move || peer_tls.api_server()) as halo_api::serve::TlsSource
        });
        let server = tokio::spawn(halo_api::serve::serve(
            listener,
            tls_source,
            halo_api::router(engine.clone(), access),
            halo_api::serve::Limits::default(),
            async move {
                let _ = stop_rx.await;
            },
        ));
        let mut signals = Signals::new();
        tokio::select! {
            () = signals.next() => {}
            error = fatal => {
                tracing::error!(%error, "the cluster database failed; exiting");
                return Err(anyhow::anyhow!("{error}"));
            }
        }
        // A planned stop moves the groups to other nodes first (as WSFC does when its service
        // stops): a move, not a failover, so FailoverThreshold is not spent on maintenance.
        tokio::select! {
            () = move_groups_away(&engine, SHUTDOWN_MOVE_TIMEOUT) => {}
            () = signals.next() => {
                tracing::warn!("second signal: stopping now without waiting for groups");
                std::process::exit(EXIT_FORCED);
            }
        }
        tracing::info!("shutting down: taking every group still here offline");
        tokio::select! {
            result = engine.shutdown(SHUTDOWN_TIMEOUT) => match result {
                Ok(OpStatus::Succeeded) => tracing::info!("every group is offline"),
                Ok(other) => tracing::warn!(?other, "shutdown did not complete cleanly"),
                Err(e) => tracing::error!(%e, "shutdown failed"),
            },
            () = signals.next() => {
                // The hosts see the daemon go and stop their resources themselves; the
                // persistent state is untouched, so the next start brings the groups back.
                tracing::warn!("second signal: stopping now without waiting for groups");
                std::process::exit(EXIT_FORCED);
            }
        }
        // Open event streams never end by themselves: give requests a moment, then go.
        let _ = stop_tx.send(());
        if tokio::time::timeout(Duration::from_secs(2), server).await.is_err() {
            tracing::info!("closing the connections still open");
        }
        for file in credential_files {
            let _ = std::fs::remove_file(file);
        }
        engine.stop().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }
}

/// Raises the soft limit on open files to the hard one: a node holds a socket per client and
/// peer and pipes per host, and the usual soft limit (1024) is the first thing a flood of
/// connections would exhaust.
fn raise_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!(error = %e, soft, hard, "cannot raise the open-file limit");
    }
}

/// The address other nodes send clients to: the API's own, or, when it listens on every
/// address, the one peers reach this node at.
fn advertised(api: SocketAddr, peer: SocketAddr) -> SocketAddr {
    if api.ip().is_unspecified() && !peer.ip().is_unspecified() { SocketAddr::new(peer.ip(), api.port()) } else { api }
}

/// The names the node's certificate carries (besides the peer name): the node's name and host
/// name, loopback, the API's and peers' addresses (every local address when listening on all),
/// and `extra`.
fn certificate_names(api: SocketAddr, peer: SocketAddr, name: &str, extra: &[String]) -> Vec<String> {
    let mut names = vec![name.to_string(), "localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    if let Ok(host) = nix::unistd::gethostname()
        && let Ok(host) = host.into_string()
        && !host.is_empty()
    {
        names.push(host);
    }
    for ip in [api.ip(), peer.ip()] {
        if ip.is_unspecified() {
            if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
                for a in addrs {
                    let ip = a.address.and_then(|s| {
                        s.as_sockaddr_in()
                            .map(|v4| std::net::IpAddr::V4(v4.ip()))
                            .or_else(|| s.as_sockaddr_in6().map(|v6| std::net::IpAddr::V6(v6.ip())))
                    });
                    if let Some(ip) = ip {
                        names.push(ip.to_string());
                    }
                }
            }
        } else {
            names.push(ip.to_string());
        }
    }
    names.extend(extra.iter().cloned());
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(n.to_ascii_lowercase()));
    names
}

/// The `Host` values the API answers to: each certificate name with the API's port.
fn allowed_hosts(api: SocketAddr, names: &[String]) -> Vec<String> {
    names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]:{}", api.port()),
            _ => format!("{n}:{}", api.port()),
        })
        .collect()
}

/// The endpoints a client on this machine may use for the API.
fn local_endpoints(scheme: &str, api: SocketAddr) -> Vec<String> {
    let mut endpoints = vec![format!("{scheme}://{api}")];
    if api.ip().is_unspecified() {
        endpoints.push(format!("{scheme}://127.0.0.1:{}", api.port()));
    }
    endpoints
}

/// Stores the local credential in the cluster database (replacing this node's previous one),
/// retrying until a leader takes it.
fn register_local_token(db: &Arc<ClusterDb>, name: &str, token: &halo_security::token::ApiToken) {
    let weak = Arc::downgrade(db);
    let (name, token) = (name.to_string(), token.clone());
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(100);
        loop {
            let Some(db) = weak.upgrade() else { return };
            let holder = format!("local administrator of {name}");
            match db.replace_api_token(&token, &holder, halo_security::Role::Admin, &format!("node {name}")).await {
                Ok(()) => return,
                Err(e) => tracing::debug!(error = %e, "the local credential is not in the cluster database yet"),
            }
            drop(db);
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    });
}

/// How long a stopping node waits for its groups to move to other nodes before it takes the
/// rest offline.
pub const SHUTDOWN_MOVE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a stopping node waits for the cluster to accept one move before it stops asking.
pub const MOVE_ACCEPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Moves every group this node owns to the node placement picks, and waits (at most `limit`)
/// until none is left here or moving. Groups no other node can take stay (and are then taken
/// offline by the shutdown).
async fn move_groups_away(engine: &Engine, limit: Duration) {
    let me = engine.node().to_string();
    let mine = |e: &Engine| e.groups().into_iter().filter(|g| g.owner == me).collect::<Vec<_>>();
    let deadline = tokio::time::Instant::now() + limit;
    let mut moving = 0;
    for g in mine(engine) {
        // A move is a write through the leader: with no leader, or one that does not answer
        // (the rest of the cluster is stopping too), the groups stay and go offline here.
        if engine.leader_id().is_none() {
            tracing::warn!("no leader to move groups through; taking them offline here");
            break;
        }
        let asked = engine.move_group(&g.name, None, resapi::GroupMoveFlags::empty(), "shutdown");
        let within = (tokio::time::Instant::now() + MOVE_ACCEPT_TIMEOUT).min(deadline);
        match tokio::time::timeout_at(within, asked).await {
            Ok(Ok(())) => moving += 1,
            Ok(Err(e)) => tracing::info!(group = %g.name, error = %e, "group stays for the shutdown"),
            Err(_) => {
                tracing::warn!(group = %g.name, "the cluster did not take a move in time; taking the rest offline here");
                break;
            }
        }
    }
    if moving == 0 {
        return;
    }
    tracing::info!(groups = moving, "shutting down: moving groups to other nodes");
    let (_, mut events) = engine.events().subscribe(u64::MAX);
    // Done when nothing owned here is still moving away.
    while mine(engine).iter().any(|g| g.moving_to.is_some()) {
        // A hand-over needs a leader to commit it: when the rest of the cluster is stopping too
        // and none is left, waiting longer cannot help.
        if engine.leader_id().is_none() {
            tracing::warn!("no leader to hand groups over to; taking the rest offline");
            return;
        }
        let next = (tokio::time::Instant::now() + Duration::from_millis(500)).min(deadline);
        match tokio::time::timeout_at(next, events.recv()).await {
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Err(_) if tokio::time::Instant::now() < deadline => {}
            Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) | Err(_) => {
                tracing::warn!("groups did not finish moving in time; taking the rest offline");
                return;
            }
        }
    }
}

/// The exit status of a daemon stopped by a second signal during its shutdown (128 + SIGTERM's
/// number, as a shell reports a process that SIGTERM ended).
pub const EXIT_FORCED: i32 = 143;

/// SIGTERM and SIGINT, registered once so that a second one during the shutdown is seen too.
struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(term), Ok(int)) => Signals { term: Some(term), int: Some(int) },
            (term, int) => {
                tracing::warn!("cannot handle SIGTERM and SIGINT; the daemon runs until killed");
                Signals { term: term.ok(), int: int.ok() }
            }
        }
    }

    /// The next SIGTERM or SIGINT. Without handlers the daemon runs until killed; hosts still
    /// stop with it.
    async fn next(&mut self) {
        async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            () = recv(&mut self.term) => {}
            () = recv(&mut self.int) => {}
        }
    }
}
