//! Command-line interface of `halo`.
//!
//! Parses arguments and dispatches: the node daemon (`node run`), the hidden `host`, the operator
//! commands (through the HTTP API), `explain`, `bench`, `completions`. It must not hold cluster
//! logic itself: it calls the layers below.

use crate::client::{Client, Output};
use clap::{Parser, Subcommand, ValueEnum};
use resapi::{
    ControlCode, GroupMoveFlags, OfflineFlags, OnlineFlags, OpenFlags, ResourceOfflineFlags, ResourceOnlineFlags,
    ResourceState, Status, StatusFlags,
};
use std::process::ExitCode;

/// halo — a failover cluster for Linux with the WSFC resource contract.
#[derive(Debug, Parser)]
#[command(name = "halo", version, about, long_about = None)]
struct Cli {
    /// The node's API (default: HALO_ENDPOINT, then `endpoint` in ~/.config/halo/config.toml,
    /// then http://127.0.0.1:7480). Credentials come from HALO_TOKEN / HALO_CA, the config file,
    /// or a node on this machine (see `halo token`).
    #[arg(long, global = true)]
    endpoint: Option<String>,
    /// How to print results.
    #[arg(long, global = true, value_enum, default_value = "table")]
    output: Output,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Nodes, groups and resources with their states and owners, in one screen.
    Status,
    /// Nodes.
    Node {
        #[command(subcommand)]
        what: NodeCmd,
    },
    /// The cluster's own properties.
    Cluster {
        #[command(subcommand)]
        what: ClusterCmd,
    },
    /// Groups.
    Group {
        #[command(subcommand)]
        what: GroupCmd,
    },
    /// Resources.
    Resource {
        #[command(subcommand)]
        what: ResourceCmd,
    },
    /// Resource types.
    Type {
        #[command(subcommand)]
        what: TypeCmd,
    },
    /// API tokens (bearer tokens with a role).
    Token {
        #[command(subcommand)]
        what: ApiTokenCmd,
    },
    /// The audit log: every accepted write, who made it and when.
    Audit {
        /// How many of the newest entries.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Who the API takes this client for, and its role.
    Whoami,
    /// The event stream.
    Events {
        /// Keep following new events.
        #[arg(long)]
        follow: bool,
        /// Only events after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: u64,
    },
    /// Converge the cluster to a TOML configuration: prints what it changes, then changes it.
    Apply {
        /// The configuration file.
        #[arg(short = 'f', long = "file")]
        file: std::path::PathBuf,
        /// Print the changes without making them.
        #[arg(long)]
        dry_run: bool,
        /// Also delete the groups and resources the file does not name (printed first).
        #[arg(long)]
        prune: bool,
    },
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Explain a contract number: a status code, a flag set's bits, a state or a control code.
    Explain {
        /// What the value is.
        #[arg(value_enum)]
        kind: ExplainKind,
        /// The value: a number (decimal or 0x hex) or, for codes and flags, a name.
        value: String,
    },
    /// Measure halo and print the figures as JSON.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// A three-node cluster on loopback in one command: a web server moves and fails over
    /// while you watch; Ctrl-C stops and removes everything.
    Demo(crate::demo::Demo),
    /// Run a resource host on stdin/stdout (started by the node daemon, not by hand).
    #[command(hide = true)]
    Host,
    /// The demo's web server (run by `halo demo` as a resource).
    #[command(hide = true)]
    DemoWeb(crate::demo::DemoWeb),
}

#[derive(Debug, Subcommand)]
enum NodeCmd {
    /// Run this machine's node daemon.
    Run(crate::node::NodeRun),
    /// List nodes.
    List,
    /// Show a node.
    Show {
        /// The node.
        name: String,
    },
    /// Pause a node: it takes no groups (PauseClusterNodeEx).
    Pause {
        /// The node.
        name: String,
        /// Also move every group it owns to the nodes placement picks.
        #[arg(long)]
        drain: bool,
    },
    /// Resume a paused node.
    Resume {
        /// The node.
        name: String,
        /// Also bring back the groups that prefer it (PreferredOwners).
        #[arg(long)]
        failback: bool,
    },
    /// Remove a node from the cluster (EvictClusterNode); its groups fail over once its lease
    /// has ended. Its certificate is revoked: it can come back only as a new node, with a token.
    Evict {
        /// The node.
        name: String,
    },
    /// Join tokens: what a new node needs to join (`halo node run --join ADDR --token T`).
    Token {
        #[command(subcommand)]
        what: JoinTokenCmd,
    },
}

#[derive(Debug, Subcommand)]
enum JoinTokenCmd {
    /// Create a join token; it carries the cluster CA's fingerprint, so the joining node can
    /// check whom it talks to. Shown once.
    Create {
        /// How long it stays valid: a number with s, m or h (seconds if none; at most 7 days).
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        ttl: std::time::Duration,
        /// How many nodes may join with it.
        #[arg(long, default_value_t = 1)]
        uses: u32,
    },
    /// List join tokens (never their secrets).
    List,
    /// Delete a join token.
    Delete {
        /// Its id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum ApiTokenCmd {
    /// Create an API token for a person or program; shown once, stored only as a hash.
    Create {
        /// Whose it is.
        #[arg(long)]
        name: String,
        /// viewer reads; operator also runs online, offline, move, pause and resume; admin also
        /// changes configuration.
        #[arg(long, value_parser = ["viewer", "operator", "admin"])]
        role: String,
        /// How long it stays valid: a number with s, m or h (default: until deleted).
        #[arg(long, value_parser = parse_duration)]
        ttl: Option<std::time::Duration>,
    },
    /// List API tokens (never their secrets).
    List,
    /// Delete an API token: refused from then on.
    Delete {
        /// Its id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum ClusterCmd {
    /// Show the cluster's properties, the lease they make and the leader.
    Show,
    /// Renew every node's certificate (a new key each), without downtime.
    RotateCerts {
        /// Wait until every node has its new certificate (at most --timeout).
        #[arg(long)]
        wait: bool,
        /// How long --wait waits.
        #[arg(long, default_value = "60s", value_parser = parse_duration, requires = "wait")]
        timeout: std::time::Duration,
    },
    /// Print the cluster CA certificate (PEM), for clients of an HTTPS endpoint.
    Ca,
    /// Each node's certificate: fingerprint, expiry and generation.
    Certificates,
    /// Set properties, KEY=VALUE: HeartbeatInterval (ms, 50..10000) and HeartbeatThreshold
    /// (2..120); the ownership lease is their product.
    Set {
        /// KEY=VALUE pairs.
        #[arg(required = true)]
        pairs: Vec<String>,
    },
}

#[derive(Debug, clap::Args)]
struct OpArgs {
    /// Wait for the operation to end, showing progress (at most --timeout; then exit 124, the
    /// operation still pending).
    #[arg(long)]
    wait: bool,
    /// How long --wait waits: a number with ms, s, m or h (seconds if none).
    #[arg(long, default_value = "300s", value_parser = parse_duration, requires = "wait")]
    timeout: std::time::Duration,
    /// Client flags, e.g. IGNORE_RESOURCE_STATUS or DO_NOT_UPDATE_PERSISTENT_STATE.
    #[arg(long)]
    flags: Option<String>,
    /// The InBuffer OnlineV2/OfflineV2 receive (as OnlineClusterResourceEx's), one property
    /// per NAME=VALUE (repeatable): a whole number is a DWORD, anything else text.
    #[arg(long = "input", value_name = "NAME=VALUE")]
    input: Vec<String>,
    /// The InBuffer as a property list's bytes, in hexadecimal.
    #[arg(long, value_name = "HEX", conflicts_with = "input")]
    input_hex: Option<String>,
}

impl OpArgs {
    /// The operation's request body.
    fn body(&self) -> anyhow::Result<serde_json::Value> {
        let mut body = serde_json::Map::new();
        if let Some(f) = &self.flags {
            body.insert("flags".into(), f.clone().into());
        }
        if !self.input.is_empty() {
            let typed: serde_json::Map<String, serde_json::Value> = crate::client::pairs(&self.input)?
                .into_iter()
                .map(|(k, v)| (k, v.parse::<u64>().map_or_else(|_| v.clone().into(), Into::into)))
                .collect();
            body.insert("input".into(), typed.into());
        }
        if let Some(hex) = &self.input_hex {
            body.insert("input_hex".into(), hex.clone().into());
        }
        Ok(body.into())
    }
}

#[derive(Debug, Subcommand)]
enum GroupCmd {
    /// Create a group.
    Create {
        /// Its name.
        name: String,
        /// Common properties, KEY=VALUE.
        #[arg(long = "set")]
        set: Vec<String>,
    },
    /// List groups.
    List,
    /// Show a group.
    Show {
        /// The group.
        name: String,
    },
    /// Bring a group online.
    Online {
        /// The group.
        name: String,
        #[command(flatten)]
        op: OpArgs,
    },
    /// Take a group offline.
    Offline {
        /// The group.
        name: String,
        #[command(flatten)]
        op: OpArgs,
    },
    /// Move a group to another node (MoveClusterGroupEx): its resources go offline here with
    /// OfflineV2 (the destination passed), then online there.
    Move {
        /// The group.
        name: String,
        /// The destination (default: the node placement picks).
        #[arg(long)]
        node: Option<String>,
        /// RETURN_TO_SOURCE_NODE_ON_ERROR: come back if it cannot come online there.
        #[arg(long)]
        return_on_error: bool,
        /// QUEUE_ENABLED: a resource that defers its offline is retried until done or cancelled.
        #[arg(long)]
        queue: bool,
        /// IGNORE_RESOURCE_STATUS: move even if a resource is locked.
        #[arg(long)]
        ignore_locked: bool,
        /// HIGH_PRIORITY_START: start on the destination ahead of other work.
        #[arg(long)]
        high_priority: bool,
        /// Wait until the group is settled on its new node (at most --timeout).
        #[arg(long)]
        wait: bool,
        /// How long --wait waits: a number with ms, s, m or h (seconds if none).
        #[arg(long, default_value = "300s", value_parser = parse_duration, requires = "wait")]
        timeout: std::time::Duration,
    },
    /// Cancel a move that has not handed the group over yet (CancelClusterGroupOperation).
    Cancel {
        /// The group.
        name: String,
    },
    /// Delete an empty group.
    Delete {
        /// The group.
        name: String,
    },
    /// Set common properties, KEY=VALUE.
    Set {
        /// The group.
        name: String,
        /// KEY=VALUE pairs.
        #[arg(required = true)]
        pairs: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ResourceCmd {
    /// Create a resource.
    Create {
        /// Its name.
        name: String,
        /// Its group.
        #[arg(long)]
        group: String,
        /// Its type.
        #[arg(long = "type")]
        type_name: String,
        /// Properties, KEY=VALUE (common ones by name, the rest private).
        #[arg(long = "set")]
        set: Vec<String>,
    },
    /// List resources.
    List,
    /// Show a resource.
    Show {
        /// The resource.
        name: String,
    },
    /// Bring a resource (and what it depends on) online.
    Online {
        /// The resource.
        name: String,
        #[command(flatten)]
        op: OpArgs,
    },
    /// Take a resource (and what depends on it) offline.
    Offline {
        /// The resource.
        name: String,
        #[command(flatten)]
        op: OpArgs,
    },
    /// Fail a resource, as its health check would (the restart policy takes over).
    Fail {
        /// The resource.
        name: String,
    },
    /// Delete an offline resource.
    Delete {
        /// The resource.
        name: String,
        /// Even in locked mode.
        #[arg(long)]
        force: bool,
    },
    /// Set properties, KEY=VALUE (common ones by name, the rest private).
    Set {
        /// The resource.
        name: String,
        /// KEY=VALUE pairs.
        #[arg(required = true)]
        pairs: Vec<String>,
    },
    /// Remove private properties, so that the type's defaults apply again.
    Unset {
        /// The resource.
        name: String,
        /// Property names.
        #[arg(required = true)]
        properties: Vec<String>,
    },
    /// Send a control code to a resource (ResourceControl): its type answers, or the cluster's
    /// default handling does.
    Control {
        /// The resource.
        name: String,
        /// The code: a CLUSCTL_RESOURCE_* name or a number (0x… for hexadecimal).
        code: String,
        /// The input buffer, hexadecimal.
        #[arg(long, default_value = "")]
        input_hex: String,
        /// The output buffer's size.
        #[arg(long, default_value_t = 65536)]
        output_size: u32,
    },
    /// Replace dependencies with an expression, e.g. "([ipA] or [ipB]) and [disk]" ("" removes them).
    Depend {
        /// The resource.
        name: String,
        /// The expression.
        expression: String,
    },
}

#[derive(Debug, Subcommand)]
enum TypeCmd {
    /// Declare a resource type served by a native plug-in (.so built against include/halo_resapi.h).
    Create {
        /// Its name.
        name: String,
        /// The plug-in's path.
        #[arg(long)]
        native: std::path::PathBuf,
        /// The type name its Startup expects (default: NAME).
        #[arg(long)]
        type_name: Option<String>,
        /// Common properties, KEY=VALUE.
        #[arg(long = "set")]
        set: Vec<String>,
    },
    /// Remove a type no resource uses.
    Delete {
        /// The type.
        name: String,
    },
    /// List resource types.
    List,
    /// Show a resource type.
    Show {
        /// The type.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum BenchWhat {
    /// The resource host: call round trip, polling CPU and memory, OCF overhead.
    Host(crate::bench::HostBench),
    /// A three-node cluster: failover after SIGKILL (p50/p99), move overhead, false failovers
    /// with both cores busy, and a drain.
    Cluster(crate::bench_cluster::ClusterBench),
    /// A node daemon: apply → online for dummy and OCF resources, status reads, memory.
    Node(crate::bench::NodeBench),
    /// Every benchmark, one report: report.json (every figure) and report.md (the ones that
    /// matter, against their targets).
    All(crate::bench_all::AllBench),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExplainKind {
    /// A Win32 status code (`997`, `ERROR_IO_PENDING`).
    Status,
    /// `CLUS_RESDLL_OFFLINE_*` bits given to OfflineV2.
    OfflineFlags,
    /// `CLUS_RESDLL_ONLINE_*` bits given to OnlineV2.
    OnlineFlags,
    /// `CLUS_RESDLL_OPEN_*` bits given to OpenV2.
    OpenFlags,
    /// `CLUSRESDLL_STATUS_*` bits of RESOURCE_STATUS_EX.
    StatusFlags,
    /// `CLUSAPI_GROUP_MOVE_*` bits.
    MoveFlags,
    /// `CLUSAPI_RESOURCE_ONLINE_*` bits.
    ResourceOnlineFlags,
    /// `CLUSAPI_RESOURCE_OFFLINE_*` bits.
    ResourceOfflineFlags,
    /// A CLUSTER_RESOURCE_STATE number.
    ResourceState,
    /// A 32-bit control code.
    ControlCode,
}

/// A duration as `300`, `300s`, `500ms`, `5m` or `1h`.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let wrong = || format!("{text:?} is not a duration: write a whole number with ms, s, m or h (300s, 5m)");
    let n: u64 = digits.parse().map_err(|_| wrong())?;
    let ms = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => None,
    };
    ms.map(std::time::Duration::from_millis).ok_or_else(wrong)
}

/// The exit status when `--wait` gave up on an operation that is still pending (as timeout(1)).
pub const EXIT_STILL_PENDING: u8 = 124;

/// Lets output into a closed pipe (`halo events | head -1`) end the process quietly, as SIGPIPE
/// does for other commands, instead of a panic in `println!`.
fn quiet_on_closed_pipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: restoring the default action installs no handler, so no code runs in signal context.
    // Nothing in this process relies on SIGPIPE being ignored: sockets are written with
    // MSG_NOSIGNAL.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

/// Parses the arguments and runs the command; errors print their reason and exit non-zero.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    // The daemon, its hosts and the benchmarks (which run daemons) keep SIGPIPE ignored: a
    // reader going away must never kill them.
    if !matches!(cli.command, Some(Command::Host | Command::Node { what: NodeCmd::Run(_) } | Command::Bench { .. })) {
        quiet_on_closed_pipe();
    }
    let result = match cli.command {
        None => {
            use clap::CommandFactory;
            println!("halo {}", env!("CARGO_PKG_VERSION"));
            // Printing help can only fail if stdout is closed; nothing useful to do then.
            let _ = Cli::command().print_help();
            Ok(())
        }
        Some(Command::Host) => {
            let code = match halo_host::server::serve(std::io::stdin().lock(), std::io::stdout()) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("halo host: {e}");
                    1
                }
            };
            // Exit at once: threads stuck in hung resource code must not keep the process alive.
            std::process::exit(code)
        }
        Some(Command::Node { what: NodeCmd::Run(run) }) => run.run(),
        Some(Command::Bench { what: BenchWhat::Host(bench) }) => bench.run(),
        Some(Command::Bench { what: BenchWhat::Node(bench) }) => bench.run(),
        Some(Command::Bench { what: BenchWhat::Cluster(bench) }) => bench.run(),
        Some(Command::Bench { what: BenchWhat::All(bench) }) => bench.run(),
        Some(Command::Demo(demo)) => demo.run(),
        Some(Command::DemoWeb(web)) => web.run(),
        Some(Command::Explain { kind, value }) => {
            explain(kind, &value).map(|t| println!("{t}")).map_err(|e| anyhow::anyhow!(e))
        }
        Some(Command::Completions { shell }) => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "halo", &mut std::io::stdout());
            Ok(())
        }
        Some(command) => match tokio::runtime::Runtime::new() {
            Ok(rt) => crate::credentials::endpoint(cli.endpoint.as_deref())
                .and_then(|endpoint| rt.block_on(remote(&endpoint, cli.output, command))),
            Err(e) => Err(e.into()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<crate::client::StillPending>().is_some() => {
            eprintln!("halo: {e:#}");
            ExitCode::from(EXIT_STILL_PENDING)
        }
        Err(e) => {
            eprintln!("halo: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The commands that talk to a node.
async fn remote(endpoint: &str, output: Output, command: Command) -> anyhow::Result<()> {
    use crate::client::{self, pairs, split_common};
    use serde_json::json;
    let c = Client::new(endpoint, output)?;
    match command {
        Command::Status => c.print(&c.cluster_status().await?, client::status_table),
        Command::Node { what: NodeCmd::List } => c.print(&c.get("/v1/nodes").await?, client::nodes_table),
        Command::Node { what: NodeCmd::Show { name } } => {
            c.print(&c.get(&format!("/v1/nodes/{name}")).await?, client::object_table)
        }
        Command::Cluster { what: ClusterCmd::Show } => c.print(&c.get("/v1/cluster").await?, client::object_table),
        Command::Cluster { what: ClusterCmd::Ca } => {
            let v = c.get("/v1/cluster/ca").await?;
            c.print(&v, |v| v["pem"].as_str().unwrap_or("this cluster has no CA\n").to_string());
        }
        Command::Cluster { what: ClusterCmd::Certificates } => {
            c.print(&c.get("/v1/cluster/certificates").await?, client::certificates_table)
        }
        Command::Cluster { what: ClusterCmd::RotateCerts { wait, timeout } } => {
            let (_, v) = c.post("/v1/cluster/rotate-certs", json!({})).await?;
            let generation = v["generation"].as_u64().unwrap_or(0);
            if wait {
                c.wait_rotated(generation, timeout).await?;
            }
            c.print(&v, |_| format!("certificate generation {generation} asked for; nodes renew theirs\n"));
        }
        Command::Node { what: NodeCmd::Token { what } } => match what {
            JoinTokenCmd::Create { ttl, uses } => {
                let (_, v) = c.post("/v1/join-tokens", json!({ "ttl_seconds": ttl.as_secs(), "uses": uses })).await?;
                c.print(&v, |v| format!("{}\n", v["token"].as_str().unwrap_or("")));
            }
            JoinTokenCmd::List => c.print(&c.get("/v1/join-tokens").await?, client::tokens_table),
            JoinTokenCmd::Delete { id } => {
                c.delete(&format!("/v1/join-tokens/{id}")).await?;
                c.print(&json!({}), |_| format!("deleted join token {id}\n"));
            }
        },
        Command::Token { what } => match what {
            ApiTokenCmd::Create { name, role, ttl } => {
                let body = json!({ "name": name, "role": role, "ttl_seconds": ttl.map(|t| t.as_secs()) });
                let (_, v) = c.post("/v1/tokens", body).await?;
                c.print(&v, |v| format!("{}\n", v["token"].as_str().unwrap_or("")));
            }
            ApiTokenCmd::List => c.print(&c.get("/v1/tokens").await?, client::tokens_table),
            ApiTokenCmd::Delete { id } => {
                c.delete(&format!("/v1/tokens/{id}")).await?;
                c.print(&json!({}), |_| format!("deleted token {id}\n"));
            }
        },
        Command::Audit { limit } => c.print(&c.get(&format!("/v1/audit?limit={limit}")).await?, client::audit_table),
        Command::Whoami => c.print(&c.get("/v1/whoami").await?, client::object_table),
        Command::Cluster { what: ClusterCmd::Set { pairs: kv } } => {
            let v = c.put("/v1/cluster/properties", json!({ "common": pairs(&kv)? })).await?;
            c.print(&v, client::object_table);
        }
        Command::Node { what: NodeCmd::Pause { name, drain } } => {
            let (_, v) = c.post(&format!("/v1/nodes/{name}/pause"), json!({ "drain": drain })).await?;
            c.print(&v, |_| format!("paused node {name}{}\n", if drain { ", draining its groups" } else { "" }));
        }
        Command::Node { what: NodeCmd::Resume { name, failback } } => {
            let (_, v) = c.post(&format!("/v1/nodes/{name}/resume"), json!({ "failback": failback })).await?;
            c.print(&v, |_| format!("resumed node {name}\n"));
        }
        Command::Node { what: NodeCmd::Evict { name } } => {
            c.delete(&format!("/v1/nodes/{name}")).await?;
            c.print(&json!({ "evicted": name }), |_| format!("evicted node {name}\n"));
        }
        Command::Group { what } => match what {
            GroupCmd::Create { name, set } => {
                let (_, v) = c.post("/v1/groups", json!({ "name": name, "properties": pairs(&set)? })).await?;
                c.print(&v, |_| format!("created group {name}\n"));
            }
            GroupCmd::List => c.print(&c.get("/v1/groups").await?, client::groups_table),
            GroupCmd::Show { name } => c.print(&c.get(&format!("/v1/groups/{name}")).await?, client::object_table),
            GroupCmd::Online { name, op } => {
                let members = group_members(&c, &name).await?;
                c.operation(&format!("/v1/groups/{name}/online"), op.body()?, op.wait.then_some(op.timeout), &members)
                    .await?
            }
            GroupCmd::Offline { name, op } => {
                let members = group_members(&c, &name).await?;
                c.operation(&format!("/v1/groups/{name}/offline"), op.body()?, op.wait.then_some(op.timeout), &members)
                    .await?
            }
            GroupCmd::Set { name, pairs: kv } => {
                let v = c.put(&format!("/v1/groups/{name}/properties"), json!({ "common": pairs(&kv)? })).await?;
                c.print(&v, client::object_table);
            }
            GroupCmd::Move { name, node, return_on_error, queue, ignore_locked, high_priority, wait, timeout } => {
                let mut flags = Vec::new();
                for (on, flag) in [
                    (ignore_locked, "IGNORE_RESOURCE_STATUS"),
                    (return_on_error, "RETURN_TO_SOURCE_NODE_ON_ERROR"),
                    (queue, "QUEUE_ENABLED"),
                    (high_priority, "HIGH_PRIORITY_START"),
                ] {
                    if on {
                        flags.push(flag);
                    }
                }
                let body = json!({ "node": node, "flags": flags.join("|") });
                let (_, v) = c.post(&format!("/v1/groups/{name}/move"), body).await?;
                // A move to where the group already is changes nothing: it is "moving" nowhere.
                let to = v
                    .pointer("/group/moving_to")
                    .or_else(|| v.pointer("/group/owner"))
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if wait {
                    c.wait_moved(&name, &to, timeout).await?;
                }
                c.print(&v, |_| format!("move of group {name} to {to} accepted (ERROR_IO_PENDING)\n"));
            }
            GroupCmd::Cancel { name } => {
                let (_, v) = c.post(&format!("/v1/groups/{name}/cancel"), json!({})).await?;
                c.print(&v, |_| format!("move of group {name} cancelled\n"));
            }
            GroupCmd::Delete { name } => {
                c.delete(&format!("/v1/groups/{name}")).await?;
                c.print(&json!({ "deleted": name }), |_| format!("deleted group {name}\n"));
            }
        },
        Command::Resource { what } => match what {
            ResourceCmd::Create { name, group, type_name, set } => {
                let (common, private) = split_common(pairs(&set)?);
                let body = json!({ "name": name, "group": group, "type": type_name, "properties": common, "private": private });
                let (_, v) = c.post("/v1/resources", body).await?;
                c.print(&v, |_| format!("created resource {name}\n"));
            }
            ResourceCmd::List => c.print(&c.get("/v1/resources").await?, client::resources_table),
            ResourceCmd::Show { name } => {
                c.print(&c.get(&format!("/v1/resources/{name}")).await?, client::object_table)
            }
            ResourceCmd::Online { name, op } => {
                c.operation(
                    &format!("/v1/resources/{name}/online"),
                    op.body()?,
                    op.wait.then_some(op.timeout),
                    std::slice::from_ref(&name),
                )
                .await?
            }
            ResourceCmd::Offline { name, op } => {
                c.operation(
                    &format!("/v1/resources/{name}/offline"),
                    op.body()?,
                    op.wait.then_some(op.timeout),
                    std::slice::from_ref(&name),
                )
                .await?
            }
            ResourceCmd::Control { name, code, input_hex, output_size } => {
                let code = match code.parse::<u64>() {
                    Ok(n) => json!(n),
                    Err(_) => json!(code),
                };
                let body = json!({ "code": code, "input_hex": input_hex, "output_size": output_size });
                let (_, v) = c.post(&format!("/v1/resources/{name}/control"), body).await?;
                c.print(&v, client::object_table);
            }
            ResourceCmd::Fail { name } => {
                c.post(&format!("/v1/resources/{name}/fail"), json!({})).await?;
                c.print(&json!({ "failed": name }), |_| {
                    format!("failed resource {name}; the restart policy takes over\n")
                });
            }
            ResourceCmd::Delete { name, force } => {
                c.delete(&format!("/v1/resources/{name}?force={force}")).await?;
                c.print(&json!({ "deleted": name }), |_| format!("deleted resource {name}\n"));
            }
            ResourceCmd::Set { name, pairs: kv } => {
                let (common, private) = split_common(pairs(&kv)?);
                let v = c
                    .put(&format!("/v1/resources/{name}/properties"), json!({ "common": common, "private": private }))
                    .await?;
                c.print(&v, client::object_table);
            }
            ResourceCmd::Unset { name, properties } => {
                let v = c.put(&format!("/v1/resources/{name}/properties"), json!({ "unset": properties })).await?;
                c.print(&v, client::object_table);
            }
            ResourceCmd::Depend { name, expression } => {
                let v =
                    c.put(&format!("/v1/resources/{name}/dependencies"), json!({ "expression": expression })).await?;
                c.print(&v, client::object_table);
            }
        },
        Command::Type { what: TypeCmd::List } => c.print(&c.get("/v1/types").await?, |v| {
            client::table(
                &["NAME", "KIND"],
                v.as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| {
                        vec![t["name"].as_str().unwrap_or("").into(), t["spec"]["kind"].as_str().unwrap_or("").into()]
                    })
                    .collect(),
            )
        }),
        Command::Type { what: TypeCmd::Create { name, native, type_name, set } } => {
            // The daemon loads the plug-in, so it needs the absolute path.
            let path = std::fs::canonicalize(&native).map_err(|e| anyhow::anyhow!("{}: {e}", native.display()))?;
            let body = json!({ "name": name, "path": path, "type_name": type_name, "properties": pairs(&set)? });
            let (_, v) = c.post("/v1/types", body).await?;
            c.print(&v, |_| format!("created resource type {name}\n"));
        }
        Command::Type { what: TypeCmd::Delete { name } } => {
            c.delete(&format!("/v1/types/{name}")).await?;
            c.print(&json!({ "deleted": name }), |_| format!("deleted resource type {name}\n"));
        }
        Command::Type { what: TypeCmd::Show { name } } => {
            c.print(&c.get(&format!("/v1/types/{name}")).await?, client::object_table)
        }
        Command::Events { follow, after } => events(&c, output, follow, after).await?,
        Command::Apply { file, dry_run, prune } => crate::apply::apply_file(endpoint, &file, dry_run, prune).await?,
        Command::Host
        | Command::Demo(_)
        | Command::DemoWeb(_)
        | Command::Explain { .. }
        | Command::Bench { .. }
        | Command::Completions { .. }
        | Command::Node { what: NodeCmd::Run(_) } => {}
    }
    Ok(())
}

async fn group_members(c: &Client, group: &str) -> anyhow::Result<Vec<String>> {
    let g = c.get(&format!("/v1/groups/{group}")).await?;
    Ok(g["resources"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect())
}

/// Prints events (SSE from `/v1/events`); with `follow`, keeps printing new ones.
async fn events(c: &Client, output: Output, follow: bool, after: u64) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    let resp = c.request(reqwest::Method::GET, &format!("/v1/events?after={after}"), None).await?;
    if !resp.status().is_success() {
        let status = resp.status();
        anyhow::bail!("{}: HTTP {status}: {}", c.endpoint(), resp.text().await.unwrap_or_default());
    }
    let mut stream = resp.bytes_stream();
    let mut buffer: Vec<u8> = Vec::new();
    // Without --follow, stop once the history is printed: the stream goes quiet after it.
    let quiet = std::time::Duration::from_millis(300);
    loop {
        let next = if follow {
            stream.next().await
        } else {
            match tokio::time::timeout(quiet, stream.next()).await {
                Ok(n) => n,
                Err(_) => return Ok(()),
            }
        };
        let Some(chunk) = next else { return Ok(()) };
        // Bytes first: a character may be split across chunks.
        buffer.extend_from_slice(&chunk?);
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let raw: Vec<u8> = buffer.drain(..end + 2).collect();
            let block = String::from_utf8_lossy(&raw);
            for line in block.lines() {
                if let Some(data) = line.strip_prefix("data:") {
                    let value: serde_json::Value = serde_json::from_str(data.trim()).unwrap_or_default();
                    match output {
                        Output::Json => println!("{}", value),
                        Output::Table => println!("{}", crate::client::event_line(&value)),
                    }
                }
            }
        }
    }
}

fn explain(kind: ExplainKind, value: &str) -> Result<String, String> {
    let flags = |r: Result<String, resapi::FlagsError>| r.map_err(|e| e.to_string());
    match kind {
        ExplainKind::Status => {
            let status = resapi::parse_u32(value)
                .map(Status)
                .or_else(|| Status::from_name(value))
                .ok_or_else(|| format!("{value:?} is neither a number nor a known ERROR_* name"))?;
            Ok(status.to_string())
        }
        ExplainKind::OfflineFlags => flags(OfflineFlags::parse(value).map(|f| f.to_string())),
        ExplainKind::OnlineFlags => flags(OnlineFlags::parse(value).map(|f| f.to_string())),
        ExplainKind::OpenFlags => flags(OpenFlags::parse(value).map(|f| f.to_string())),
        ExplainKind::StatusFlags => flags(StatusFlags::parse(value).map(|f| f.to_string())),
        ExplainKind::MoveFlags => flags(GroupMoveFlags::parse(value).map(|f| f.to_string())),
        ExplainKind::ResourceOnlineFlags => flags(ResourceOnlineFlags::parse(value).map(|f| f.to_string())),
        ExplainKind::ResourceOfflineFlags => flags(ResourceOfflineFlags::parse(value).map(|f| f.to_string())),
        ExplainKind::ResourceState => {
            let state = match value.trim().parse::<i32>() {
                Ok(raw) => ResourceState::from_raw(raw).map_err(|e| e.to_string())?,
                Err(_) => {
                    ResourceState::from_name(value).ok_or_else(|| format!("{value:?} is not a resource state"))?
                }
            };
            Ok(format!("{state} ({})", state.raw()))
        }
        ExplainKind::ControlCode => {
            let code = resapi::parse_u32(value)
                .map(ControlCode)
                .or_else(|| {
                    resapi::control::codes::ALL
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(value.trim()))
                        .map(|(_, c)| *c)
                })
                .ok_or_else(|| format!("{value:?} is neither a number (decimal or 0x hex) nor a CLUSCTL_* name"))?;
            Ok(format!(
                "{code}: object {}, function {}, access {:?}{}{}{}{}",
                code.object().map_or_else(|| format!("{:#x} (unknown)", code.object_raw()), |o| format!("{o:?}")),
                code.function(),
                code.access(),
                if code.is_global() { ", global" } else { "" },
                if code.is_modify() { ", modify" } else { "" },
                if code.is_user() { ", user-defined" } else { "" },
                if code.is_internal() { ", internal" } else { "" },
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_codes_flags_and_states() {
        assert_eq!(explain(ExplainKind::Status, "997").as_deref(), Ok("ERROR_IO_PENDING (997)"));
        assert_eq!(
            explain(ExplainKind::Status, "ERROR_RESOURCE_FAILED").as_deref(),
            Ok("ERROR_RESOURCE_FAILED (5038)")
        );
        assert_eq!(
            explain(ExplainKind::OfflineFlags, "0x41").as_deref(),
            Ok("0x41 (IGNORE_RESOURCE_STATUS|DO_NOT_UPDATE_PERSISTENT_STATE)")
        );
        assert!(explain(ExplainKind::OfflineFlags, "0x80").unwrap_err().contains("unknown bits 0x80"));
        assert_eq!(explain(ExplainKind::ResourceState, "129").as_deref(), Ok("OnlinePending (129)"));
        assert!(explain(ExplainKind::ControlCode, "0x01400086").unwrap().starts_with("CLUSCTL_RESOURCE_SET_PRIVATE"));
    }

    #[test]
    fn durations_take_units_and_refuse_the_rest() {
        use std::time::Duration;
        assert_eq!(parse_duration("300"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "s", "-1s", "1.5s", "2 days", "99999999999999999999h"] {
            assert!(parse_duration(bad).unwrap_err().contains("is not a duration"), "{bad}");
        }
    }
}
