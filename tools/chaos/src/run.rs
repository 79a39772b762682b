//! `halo-chaos run`: starts the cluster, creates the witness groups, runs the clients and the
//! seeded faults for the run's duration, heals everything, waits for the cluster to settle,
//! records what it settled in, removes everything, and runs the checker.

use crate::cluster::{Cluster, NodeAddr, Topology};
use crate::disk::{self, Disks};
use crate::history::{Event, History, MarkerSeen};
use crate::net::Net;
use crate::procs::{installed, mono_ns, root};
use crate::schedule::{
    Caps, Episode, Fault, KEYS, KINDS, Op, Planned, Schedule, Target, describe_fault, node_name, plan, witness_resource,
};
use crate::witness;

/// The common property an operator's online or offline records.
const PERSISTENT: &str = "PersistentState";

/// Each witness resource's properties as read: resource → property → value.
type Config = BTreeMap<String, BTreeMap<String, String>>;
use anyhow::{Context, Result, anyhow, bail};
use nix::sys::signal::Signal;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Options of `halo-chaos run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The seed (default: one from the clock, printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// How long faults and clients run: a number with ms, s, m or h.
    #[arg(long, default_value = "60s", value_parser = crate::parse_duration)]
    pub duration: Duration,
    /// Nodes (3 or 5; at most a minority is faulty at once).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(3..=5))]
    pub nodes: u8,
    /// Witness groups.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=9))]
    pub groups: u8,
    /// The `halo` binary (default: HALO_BIN, then the `halo` beside this program).
    #[arg(long)]
    pub halo: Option<PathBuf>,
    /// The run directory, kept afterwards (default: a new one under the temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// How soon after every fault is healed each group must be online again.
    #[arg(long, default_value = "30s", value_parser = crate::parse_duration)]
    pub heal_bound: Duration,
    /// Loopback even as root: no namespaces, partitions, full disks or clock jumps.
    #[arg(long)]
    pub loopback: bool,
    /// Fault kinds to leave out, comma-separated: kill, crash, stop, pause, coordinator_kill,
    /// isolate, cut, one_way, flaky, disk_full, clock_jump (the schedule changes with it).
    #[arg(long, value_delimiter = ',')]
    pub skip: Vec<String>,
    /// Print the schedule and stop.
    #[arg(long)]
    pub dry_run: bool,
}

/// Set by SIGINT or SIGTERM: the run stops, removes what it made, and fails.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

fn catch_signals() {
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(on_signal),
        nix::sys::signal::SaFlags::empty(),
        nix::sys::signal::SigSet::empty(),
    );
    for s in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        if let Err(e) = unsafe { nix::sys::signal::sigaction(s, &action) } {
            eprintln!("halo-chaos: cannot catch {s}: {e}; an interrupted run may leave namespaces behind");
        }
    }
}

/// What this machine allows, and why not the rest.
fn capabilities(loopback: bool) -> (Caps, Vec<String>) {
    let mut notes = Vec::new();
    let is_root = root();
    let netns = is_root && !loopback && installed("ip");
    if !is_root {
        notes.push("not root: the nodes run on loopback, without partitions, full disks or clock jumps".into());
    } else if loopback {
        notes.push("--loopback: no partitions, full disks or clock jumps".into());
    } else if !netns {
        notes.push("`ip` (iproute2) is not installed: loopback, without partitions".into());
    }
    let clock = netns && installed("unshare") && Path::new("/proc/self/ns/time").exists();
    if clock {
        notes.push(
            "clock jumps: a node is restarted in a new time namespace with its monotonic clock moved ahead; the \
             machine's wall clock is never stepped (it is shared with everything else on the machine)"
                .into(),
        );
    } else if netns {
        notes.push("no time namespaces (`unshare --time`): no clock jumps".into());
    }
    (Caps { netns, disk: netns, clock }, notes)
}

/// Runs `halo-chaos run`; returns whether the checker found no violation.
pub fn run(args: &RunArgs) -> Result<bool> {
    let seed = args.seed.unwrap_or_else(|| mono_ns() ^ u64::from(std::process::id()).rotate_left(32));
    let (caps, notes) = capabilities(args.loopback);
    let nodes = usize::from(args.nodes);
    let duration_ms = u64::try_from(args.duration.as_millis()).unwrap_or(u64::MAX);
    if let Some(bad) = args.skip.iter().find(|k| !KINDS.contains(&k.as_str())) {
        bail!("--skip {bad}: not a fault kind (one of {})", KINDS.join(", "));
    }
    let schedule = plan(seed, nodes, usize::from(args.groups), duration_ms, caps, &args.skip);
    for n in &notes {
        println!("halo-chaos: {n}");
    }
    print!("{}", schedule.describe());
    let skip = if args.skip.is_empty() { String::new() } else { format!(" --skip {}", args.skip.join(",")) };
    println!(
        "replay: halo-chaos run --seed {seed} --duration {duration_ms}ms --nodes {nodes} --groups {}{skip}{}",
        args.groups,
        if args.loopback { " --loopback" } else { "" }
    );
    if args.dry_run {
        return Ok(true);
    }
    catch_signals();
    let halo = match (&args.halo, std::env::var_os("HALO_BIN").filter(|h| !h.is_empty())) {
        (Some(h), _) => h.clone(),
        (None, Some(h)) => PathBuf::from(h),
        (None, None) => std::env::current_exe()?.parent().ok_or_else(|| anyhow!("no directory"))?.join("halo"),
    };
    if !halo.is_file() {
        bail!("{} not found: build it (cargo build -p halo) or give --halo / HALO_BIN", halo.display());
    }
    let halo = std::fs::canonicalize(&halo)?;
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let count = RUNS.fetch_add(1, Ordering::SeqCst);
    let run_id = format!("hc{}x{count}", std::process::id());
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("halo-chaos-{seed}-{run_id}")),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = std::fs::canonicalize(&dir)?;
    if dir.join("history.jsonl").exists() {
        bail!("{} holds a run already: give a new --dir", dir.display());
    }
    println!("halo-chaos: run {run_id} in {}", dir.display());
    std::fs::write(dir.join("schedule.json"), serde_json::to_vec_pretty(&schedule)?)?;
    let history = History::create(&dir.join("history.jsonl"))?;
    history.record(&Event::Start {
        t: mono_ns(),
        run: run_id.clone(),
        seed,
        mode: if caps.netns { "netns".into() } else { "loopback".into() },
        nodes: (0..nodes).map(node_name).collect(),
        groups: schedule.groups.clone(),
        duration_ms,
        heal_bound_ms: u64::try_from(args.heal_bound.as_millis()).unwrap_or(u64::MAX),
        caps,
        wall_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0)),
    });
    // A /24 of its own, so that the nodes' local credential files (named by address) never
    // collide with another run's or another test's.
    let k = (std::process::id() as usize * 8 + count as usize) % 32_512;
    let subnet = (u8::try_from(128 + k / 256).unwrap_or(200), u8::try_from(k % 256).unwrap_or(0));
    let outcome = execute(&schedule, &dir, &run_id, &halo, &history, args.heal_bound, subnet);
    history.record(&Event::End { t: mono_ns() });
    if let Err(e) = &outcome {
        eprintln!("halo-chaos: the run failed: {e:#}");
    }
    let summary = crate::check::check(&dir)?;
    let text = serde_json::to_string_pretty(&summary)?;
    std::fs::write(dir.join("summary.json"), &text)?;
    println!("{text}");
    outcome?;
    Ok(summary.violation_count == 0)
}

/// Everything the run made, dropped in reverse: processes, then namespaces, then mounts.
fn execute(
    schedule: &Schedule,
    dir: &Path,
    run_id: &str,
    halo: &Path,
    history: &History,
    bound: Duration,
    subnet: (u8, u8),
) -> Result<()> {
    let nodes = schedule.nodes;
    let mut disks = Disks::default();
    let net = if schedule.caps.netns { Some(Net::create(run_id, nodes, subnet)?) } else { None };
    let mut addrs = Vec::new();
    for i in 0..nodes {
        let name = node_name(i);
        let (listen, peer, netns) = match &net {
            Some(net) => (format!("{}:7480", net.addr(i)), format!("{}:7481", net.addr(i)), Some(net.ns_file(i))),
            None => ("127.0.0.1:0".to_string(), "127.0.0.1:0".to_string(), None),
        };
        let disk = dir.join(format!("disk-{name}"));
        if schedule.caps.disk && !schedule.skipped.iter().any(|k| k == "disk_full") {
            disks.mount(&disk, 256)?;
        }
        let data = disk.join("data");
        addrs.push(NodeAddr { name, listen, peer, endpoint: String::new(), netns, data });
    }
    let topo = Topology {
        halo: halo.to_path_buf(),
        run: run_id.to_string(),
        nodes: addrs,
        config_home: dir.join("cli-config"),
    };
    let mut cluster = Cluster::new(topo, &dir.join("logs"))?;
    let script = witness::write_script(dir, &std::env::current_exe()?)?;
    form(&mut cluster, schedule, &script)?;
    let mut runner = Runner {
        cluster,
        net,
        history: history.clone(),
        t0: Instant::now(),
        held: vec![false; nodes],
        restart_at: vec![None; nodes],
        exited: BTreeSet::new(),
        active: BTreeMap::new(),
    };
    let topo = Arc::new(runner.cluster.topo.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let observer = {
        let (run, history, stop) = (run_id.to_string(), history.clone(), stop.clone());
        std::thread::spawn(move || observe(&run, &history, &stop))
    };
    let t0 = Instant::now();
    runner.t0 = t0;
    history.record(&Event::Begin { t: mono_ns() });
    // Two operation clients (the planned operations dealt out in turn, so that one stuck on a
    // frozen node does not hold up the rest) and one writer.
    let plans = [
        ("ops1", schedule.ops.iter().step_by(2).cloned().collect::<Vec<_>>()),
        ("ops2", schedule.ops.iter().skip(1).step_by(2).cloned().collect()),
        ("writer", schedule.writes.clone()),
    ];
    let end = t0 + Duration::from_millis(schedule.duration_ms);
    let clients: Vec<_> = plans
        .into_iter()
        .map(|(name, plan)| {
            let (topo, history) = (topo.clone(), history.clone());
            std::thread::spawn(move || client(name, &topo, &plan, t0, end, &history))
        })
        .collect();
    let faults = runner.faults(schedule);
    // The clients end with their plans (or at once when interrupted).
    for c in clients {
        let _ = c.join();
    }
    let settled = faults.and_then(|()| runner.settle(schedule, &topo, bound));
    stop.store(true, Ordering::SeqCst);
    let _ = observer.join();
    runner.cluster.kill_everything();
    // The data directories of nodes that exited by themselves are evidence: kept.
    for &i in &runner.exited {
        let n = &runner.cluster.topo.nodes[i];
        let to = dir.join("kept").join(format!("{}-data", n.name));
        match copy_dir(&n.data, &to) {
            Ok(()) => {
                println!("halo-chaos: {} exited by itself; its data directory is kept in {}", n.name, to.display())
            }
            Err(e) => eprintln!("halo-chaos: keeping the data directory of {}: {e}", n.name),
        }
    }
    drop(runner);
    drop(disks);
    settled
}

/// Starts the nodes (n1 forms the cluster, the others join it) and creates the witness groups,
/// each through a different node so that their owners differ, and brings them online.
fn form(cluster: &mut Cluster, schedule: &Schedule, script: &Path) -> Result<()> {
    let nodes = schedule.nodes;
    let long = Duration::from_secs(60);
    cluster.start(0, None, true, 0)?;
    let uses = (nodes - 1).to_string();
    let out = cluster.topo.cli(0, false, &["node", "token", "create", "--uses", &uses], long)?;
    if !out.ok() {
        bail!("creating a join token: {}", out.error());
    }
    let token = out.stdout.trim().to_string();
    let peer = cluster.topo.nodes[0].peer.clone();
    for i in 1..nodes {
        cluster.start(i, Some((&peer, &token)), true, 0)?;
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        interrupted()?;
        let up = cluster.topo.json(0, &["node", "list"], Duration::from_secs(10)).is_some_and(|list| {
            list.as_array().into_iter().flatten().filter(|n| n["state"] == "Up" && n["role"] == "voter").count()
                == nodes
        });
        if up {
            break;
        }
        if Instant::now() > deadline {
            bail!("the cluster did not have {nodes} Up voters within 90 s");
        }
        // The cluster's state can only be polled.
        std::thread::sleep(Duration::from_millis(200));
    }
    let script = format!("ScriptPath={}", script.display());
    for (k, g) in schedule.groups.iter().enumerate() {
        let via = k % nodes;
        let r = witness_resource(g);
        let group_prop = format!("{}={g}", witness::GROUP_PROPERTY);
        // Failovers are what the run is for: no FailoverThreshold stops them.
        for args in [
            vec!["group", "create", g.as_str(), "--set", "FailoverThreshold=1000000"],
            vec!["resource", "create", &r, "--group", g, "--type", "script", "--set", &script, "--set", &group_prop],
            vec!["group", "online", g, "--wait", "--timeout", "60s"],
        ] {
            let out = cluster.topo.cli(via, false, &args, long)?;
            if !out.ok() {
                bail!("halo {}: {}", args.join(" "), out.error());
            }
        }
    }
    println!("halo-chaos: {nodes} nodes up, groups {} online", schedule.groups.join(", "));
    Ok(())
}

/// Watches the marker processes every 200 ms; records each one's life once it is gone (and
/// those still running when told to stop).
fn observe(run: &str, history: &History, stop: &AtomicBool) {
    let mut seen: BTreeMap<i32, (MarkerSeen, u64, u64)> = BTreeMap::new();
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        let mut now_seen = BTreeSet::new();
        for m in witness::markers(run) {
            // Stamped one by one, after each was read: a marker seen at t was alive at t.
            let t = mono_ns();
            now_seen.insert(m.pid);
            seen.entry(m.pid).and_modify(|e| e.2 = t).or_insert((m, t, t));
        }
        let t = mono_ns();
        let gone: Vec<i32> = seen.keys().filter(|p| !now_seen.contains(p)).copied().collect();
        for pid in gone {
            if let Some((marker, first_seen, last_seen)) = seen.remove(&pid) {
                history.record(&Event::Marker { marker, first_seen, last_seen, gone_seen: Some(t) });
            }
        }
        if stopping {
            for (_, (marker, first_seen, last_seen)) in std::mem::take(&mut seen) {
                history.record(&Event::Marker { marker, first_seen, last_seen, gone_seen: None });
            }
            return;
        }
        // Other processes' lives can only be sampled.
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The CLI arguments of an operation, and how long it may take.
fn op_args(op: &Op) -> (Vec<String>, Duration) {
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let wait = ["--wait", "--timeout", "10s"];
    match op {
        Op::Move { group, to } => {
            let mut a = s(&["group", "move", group]);
            if let Some(n) = to {
                a.extend(s(&["--node", &node_name(*n)]));
            }
            a.extend(s(&wait));
            (a, Duration::from_secs(15))
        }
        Op::Online { group } => ([s(&["group", "online", group]), s(&wait)].concat(), Duration::from_secs(15)),
        Op::Offline { group } => ([s(&["group", "offline", group]), s(&wait)].concat(), Duration::from_secs(15)),
        Op::Drain { node } => (s(&["node", "pause", &node_name(*node), "--drain"]), Duration::from_secs(10)),
        Op::Resume { node } => (s(&["node", "resume", &node_name(*node)]), Duration::from_secs(10)),
        Op::Write { group, key, value } => {
            (s(&["resource", "set", &witness_resource(group), &format!("{key}={value}")]), Duration::from_secs(10))
        }
    }
}

/// Sends `op` through node `via` and records it with its outcome.
fn perform(name: &str, topo: &Topology, via: usize, op: &Op, history: &History) -> bool {
    let (args, limit) = op_args(op);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let start = mono_ns();
    let out = topo.cli(via, true, &args, limit);
    let end = mono_ns();
    let (ok, timed_out, error) = match &out {
        Ok(o) => (o.ok(), o.timed_out, if o.ok() { String::new() } else { o.error() }),
        Err(e) => (false, false, format!("{e:#}")),
    };
    history.record(&Event::Op {
        client: name.to_string(),
        start,
        end,
        via: node_name(via),
        op: op.clone(),
        ok,
        timed_out,
        error,
    });
    ok
}

/// A client: its planned operations, each at its time (or as soon as the one before ends), none
/// after `end` (a client held up by a frozen node skips what it is too late for).
fn client(name: &str, topo: &Topology, plan: &[Planned], t0: Instant, end: Instant, history: &History) {
    for p in plan {
        if Instant::now() >= end {
            return;
        }
        let due = t0 + Duration::from_millis(p.at_ms);
        loop {
            if INTERRUPTED.load(Ordering::SeqCst) {
                return;
            }
            let now = Instant::now();
            if now >= due {
                break;
            }
            // A planned time, not an event: wait for it (in steps, to notice an interrupt).
            std::thread::sleep((due - now).min(Duration::from_millis(100)));
        }
        perform(name, topo, p.via, &p.op, history);
    }
}

/// A fault in progress: the nodes it hit.
struct Active {
    episode: Episode,
    nodes: Vec<usize>,
}

struct Runner {
    cluster: Cluster,
    net: Option<Net>,
    history: History,
    t0: Instant,
    /// Nodes a fault keeps down until it heals.
    held: Vec<bool>,
    /// When a node that exited by itself is started again.
    restart_at: Vec<Option<Instant>>,
    /// Nodes that exited by themselves at least once.
    exited: BTreeSet<usize>,
    active: BTreeMap<usize, Active>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Heal,
    Flip(bool),
    Begin,
}

impl Runner {
    fn names(&self, nodes: &[usize]) -> Vec<String> {
        nodes.iter().map(|i| node_name(*i)).collect()
    }

    /// Runs the schedule's faults, supervising the nodes in between.
    fn faults(&mut self, schedule: &Schedule) -> Result<()> {
        let mut steps: Vec<(u64, Step, usize)> = Vec::new();
        for e in &schedule.episodes {
            steps.push((e.at_ms, Step::Begin, e.id));
            steps.push((e.at_ms + e.duration_ms, Step::Heal, e.id));
            if let Fault::Flaky { flips, .. } = &e.fault {
                for (k, f) in flips.iter().enumerate() {
                    steps.push((e.at_ms + f, Step::Flip(k % 2 == 1), e.id));
                }
            }
        }
        steps.sort();
        for (at, step, id) in steps {
            self.until(self.t0 + Duration::from_millis(at))?;
            let Some(episode) = schedule.episodes.get(id) else { continue };
            match step {
                Step::Begin => self.begin(episode, schedule),
                Step::Flip(up) => {
                    if let (Some(a), Some(net)) = (self.active.get(&id), self.net.as_mut()) {
                        for &i in &a.nodes {
                            let _ = net.link(i, up);
                        }
                    }
                }
                Step::Heal => self.heal(id),
            }
        }
        self.until(self.t0 + Duration::from_millis(schedule.duration_ms))
    }

    /// Supervises until `due`: reaps daemons that exited, starts again those that may be.
    fn until(&mut self, due: Instant) -> Result<()> {
        loop {
            interrupted()?;
            self.supervise();
            let now = Instant::now();
            if now >= due {
                return Ok(());
            }
            // Nodes are child processes polled with a bound; the due time is a plan, not an event.
            std::thread::sleep((due - now).min(Duration::from_millis(50)));
        }
    }

    fn supervise(&mut self) {
        for (i, status) in self.cluster.reap() {
            if self.held[i] {
                // Killed or stopped by a fault, which starts it again when it heals.
                continue;
            }
            let node = node_name(i);
            if self.exited.insert(i) {
                eprintln!("halo-chaos: node {node} exited by itself: {status} (see logs/{node}.log)");
            }
            self.history.record(&Event::Exit { t: mono_ns(), node, status });
            self.restart_at[i] = Some(Instant::now() + Duration::from_secs(2));
        }
        for i in 0..self.held.len() {
            if let Some(at) = self.restart_at[i]
                && Instant::now() >= at
                && !self.held[i]
            {
                self.restart_at[i] = None;
                self.restart(i, 0);
            }
        }
    }

    fn restart(&mut self, i: usize, offset_s: u64) {
        if self.cluster.running(i) {
            return;
        }
        match self.cluster.start(i, None, false, offset_s) {
            Ok(()) => self.history.record(&Event::Restart { t: mono_ns(), node: node_name(i), offset_s }),
            Err(e) => {
                eprintln!("halo-chaos: restarting {}: {e:#}", node_name(i));
                self.restart_at[i] = Some(Instant::now() + Duration::from_secs(2));
            }
        }
    }

    /// The node a target names now; one already hit by another fault is replaced by the next
    /// free one (None: every node is busy).
    fn resolve(&self, target: &Target, fallback: usize) -> Option<usize> {
        let n = self.held.len();
        let busy: BTreeSet<usize> = self.active.values().flat_map(|a| a.nodes.iter().copied()).collect();
        let wanted = match target {
            Target::Node(i) => Some(*i),
            Target::Leader => self.ask(|via| {
                let list = self.cluster.topo.json(via, &["node", "list"], Duration::from_secs(3))?;
                let name = list.as_array()?.iter().find(|n| n["leader"] == true)?["name"].as_str()?.to_string();
                self.cluster.topo.index(&name)
            }),
            Target::OwnerOf(g) => self.ask(|via| {
                let group = self.cluster.topo.json(via, &["group", "show", g], Duration::from_secs(3))?;
                self.cluster.topo.index(group["owner"].as_str()?)
            }),
        };
        let first = wanted.unwrap_or(fallback % n);
        (0..n).map(|k| (first + k) % n).find(|i| !busy.contains(i))
    }

    /// The first answer of `f` through a node that runs and is not frozen.
    fn ask<T>(&self, f: impl Fn(usize) -> Option<T>) -> Option<T> {
        (0..self.held.len()).filter(|i| self.cluster.running(*i) && !self.cluster.frozen[*i]).find_map(f)
    }

    fn begin(&mut self, e: &Episode, schedule: &Schedule) {
        let n = schedule.nodes;
        let target = e.fault.target().map(|t| self.resolve(t, e.id));
        let nodes = match (&e.fault, target) {
            (Fault::Cut { a, b }, _) | (Fault::OneWay { from: a, to: b }, _) => vec![*a, *b],
            (_, Some(Some(i))) => vec![i],
            _ => Vec::new(),
        };
        if nodes.is_empty() || nodes.iter().any(|i| *i >= n) {
            self.history.record(&Event::Fault {
                t: mono_ns(),
                id: e.id,
                fault: e.fault.kind().into(),
                phase: "skipped".into(),
                nodes: Vec::new(),
                what: "every node is busy with another fault".into(),
            });
            return;
        }
        let i = nodes[0];
        let result = match &e.fault {
            Fault::Kill { .. } => {
                self.held[i] = true;
                self.cluster.kill(i);
                Ok(String::new())
            }
            Fault::Crash { .. } | Fault::ClockJump { .. } => {
                self.held[i] = true;
                self.crash(i)
            }
            Fault::Stop { .. } => {
                self.held[i] = true;
                let _ = self.cluster.signal(i, Signal::SIGCONT);
                self.cluster.signal(i, Signal::SIGTERM).map(|()| String::new())
            }
            Fault::Pause { .. } => self.cluster.signal(i, Signal::SIGSTOP).map(|()| String::new()),
            Fault::Isolate { .. } | Fault::Flaky { .. } => match (&e.fault, self.net.as_mut()) {
                (Fault::Isolate { .. }, Some(net)) => net.link(i, false).map(|()| String::new()),
                (_, Some(_)) => Ok(String::new()),
                (_, None) => Err(anyhow!("no namespaces")),
            },
            Fault::Cut { a, b } => match self.net.as_mut() {
                Some(net) => net.cut(*a, *b, true).and_then(|()| net.cut(*b, *a, true)).map(|()| String::new()),
                None => Err(anyhow!("no namespaces")),
            },
            Fault::OneWay { from, to } => match self.net.as_mut() {
                Some(net) => net.cut(*from, *to, true).map(|()| String::new()),
                None => Err(anyhow!("no namespaces")),
            },
            Fault::DiskFull { .. } => {
                let disk = self.cluster.topo.nodes[i].data.parent().map(Path::to_path_buf).unwrap_or_default();
                disk::fill(&disk).map(|bytes| format!(" ({bytes} bytes written)"))
            }
        };
        let what = format!("{} → {}", describe_fault(&e.fault), self.names(&nodes).join(","));
        let (phase, what) = match result {
            Ok(extra) => ("begin", format!("{what}{extra}")),
            Err(err) => ("failed", format!("{what}: {err:#}")),
        };
        println!("halo-chaos: +{:>7.3}s fault {} {phase}: {what}", self.t0.elapsed().as_secs_f64(), e.id);
        self.history.record(&Event::Fault {
            t: mono_ns(),
            id: e.id,
            fault: e.fault.kind().into(),
            phase: phase.into(),
            nodes: self.names(&nodes),
            what,
        });
        if phase == "begin" {
            self.active.insert(e.id, Active { episode: e.clone(), nodes });
        }
    }

    fn crash(&mut self, i: usize) -> Result<String> {
        self.cluster.crash(i)?;
        self.history.record(&Event::Crash { t: mono_ns(), node: node_name(i) });
        Ok(String::new())
    }

    fn heal(&mut self, id: usize) {
        let Some(a) = self.active.remove(&id) else { return };
        let i = a.nodes[0];
        let result: Result<()> = match &a.episode.fault {
            Fault::Kill { .. } | Fault::Crash { .. } | Fault::Stop { .. } | Fault::ClockJump { .. } => {
                if self.cluster.running(i) {
                    // A stop that has not finished moving its groups away: killed.
                    self.cluster.kill(i);
                }
                self.held[i] = false;
                let offset = match a.episode.fault {
                    Fault::ClockJump { offset_s, .. } => offset_s,
                    _ => 0,
                };
                self.restart(i, offset);
                Ok(())
            }
            Fault::Pause { .. } => {
                if self.cluster.running(i) {
                    self.cluster.signal(i, Signal::SIGCONT)
                } else {
                    Ok(())
                }
            }
            Fault::Isolate { .. } | Fault::Flaky { .. } => match self.net.as_mut() {
                Some(net) => net.link(i, true),
                None => Ok(()),
            },
            Fault::Cut { a: x, b: y } => match self.net.as_mut() {
                Some(net) => net.cut(*x, *y, false).and_then(|()| net.cut(*y, *x, false)),
                None => Ok(()),
            },
            Fault::OneWay { from, to } => match self.net.as_mut() {
                Some(net) => net.cut(*from, *to, false),
                None => Ok(()),
            },
            Fault::DiskFull { .. } => {
                if let Some(disk) = self.cluster.topo.nodes[i].data.parent() {
                    disk::unfill(disk);
                }
                Ok(())
            }
        };
        if let Err(e) = &result {
            eprintln!("halo-chaos: healing fault {id}: {e:#}");
        }
        println!("halo-chaos: +{:>7.3}s fault {id} healed", self.t0.elapsed().as_secs_f64());
        self.history.record(&Event::Fault {
            t: mono_ns(),
            id,
            fault: a.episode.fault.kind().into(),
            phase: "heal".into(),
            nodes: self.names(&a.nodes),
            what: match result {
                Ok(()) => String::new(),
                Err(e) => format!("{e:#}"),
            },
        });
    }

    /// Heals everything, brings every node back and every group online, waits (within the
    /// bound) for the cluster to settle, and records what it settled in.
    fn settle(&mut self, schedule: &Schedule, topo: &Topology, bound: Duration) -> Result<()> {
        let ids: Vec<usize> = self.active.keys().copied().collect();
        for id in ids {
            self.heal(id);
        }
        if let Some(net) = self.net.as_mut() {
            net.heal()?;
        }
        for i in 0..schedule.nodes {
            self.held[i] = false;
            if self.cluster.frozen[i] {
                self.cluster.signal(i, Signal::SIGCONT)?;
            }
            self.restart(i, 0);
        }
        let healed = Instant::now();
        self.history.record(&Event::Healed { t: mono_ns() });
        println!("halo-chaos: +{:>7.3}s every fault healed", self.t0.elapsed().as_secs_f64());
        let n = schedule.nodes;
        let deadline = healed + bound;
        // Before anything else changes it: the persistent state the clients' acknowledged
        // onlines and offlines left, as every node holds it.
        let (config, agreed, why) = self.read_config_until(schedule, healed + bound / 2)?;
        let states = config.iter().filter_map(|(r, props)| Some((r.clone(), props.get(PERSISTENT)?.clone()))).collect();
        self.history.record(&Event::Persistent { t: mono_ns(), states, agreed, note: why });
        // What the clients may have left: paused nodes and offline groups.
        let mut online: BTreeSet<String> = BTreeSet::new();
        let mut round = 0;
        while Instant::now() < deadline {
            interrupted()?;
            self.supervise();
            let paused: Option<Vec<usize>> = self.ask(|via| {
                let list = topo.json(via, &["node", "list"], Duration::from_secs(5))?;
                let names = list.as_array()?.iter().filter(|x| x["state"] == "Paused");
                Some(names.filter_map(|x| topo.index(x["name"].as_str()?)).collect())
            });
            for &p in paused.iter().flatten() {
                perform("final", topo, (p + round) % n, &Op::Resume { node: p }, &self.history);
            }
            for (k, g) in schedule.groups.iter().enumerate() {
                if !online.contains(g)
                    && perform("final", topo, (k + round) % n, &Op::Online { group: g.clone() }, &self.history)
                {
                    online.insert(g.clone());
                }
            }
            if paused.is_some_and(|p| p.is_empty()) && online.len() == schedule.groups.len() {
                break;
            }
            round += 1;
            // Nodes still starting refuse at once: try again shortly, within the bound.
            std::thread::sleep(Duration::from_millis(250));
        }
        // Then the cluster must settle: every node Up, every group Online on the owner every
        // node names; read once more after that, the configuration every node holds.
        let mut notes = Vec::new();
        let settle_deadline = deadline.max(Instant::now()) + Duration::from_secs(15);
        let (converged, owners, states) = loop {
            interrupted()?;
            self.supervise();
            let (ok, owners, states, why) = self.observe_state(schedule);
            if ok {
                break (true, owners, states);
            }
            if Instant::now() > settle_deadline {
                notes.push(why);
                break (false, owners, states);
            }
            // The cluster's state can only be polled.
            std::thread::sleep(Duration::from_millis(250));
        };
        let (config, config_agreed, why) = self.read_config_until(schedule, settle_deadline)?;
        if !config_agreed {
            notes.push(why);
        }
        // A marker still being killed by an offline that has not ended would be a false alarm:
        // read them once the groups are settled.
        let markers = witness::markers(&self.cluster.topo.run);
        println!(
            "halo-chaos: +{:>7.3}s settled: {} ({:.1} s after the heal)",
            self.t0.elapsed().as_secs_f64(),
            if converged { "every group online on one owner" } else { "NOT converged" },
            healed.elapsed().as_secs_f64()
        );
        self.history.record(&Event::Final {
            t: mono_ns(),
            converged,
            owners,
            states,
            config,
            config_agreed,
            markers,
            notes,
        });
        Ok(())
    }

    /// Whether every node is Up and every group Online on one owner all nodes name; the owners
    /// the answering nodes (a majority at least) agree on, the states their owners give, and
    /// what is missing, in words.
    fn observe_state(&self, schedule: &Schedule) -> (bool, BTreeMap<String, String>, BTreeMap<String, String>, String) {
        let topo = &self.cluster.topo;
        let n = schedule.nodes;
        let limit = Duration::from_secs(5);
        let mut owners = BTreeMap::new();
        let mut states = BTreeMap::new();
        let mut missing = Vec::new();
        let mut answering = Vec::new();
        for i in 0..n {
            match topo.json(i, &["node", "list"], limit) {
                None => missing.push(format!("{} does not answer", node_name(i))),
                Some(list) => {
                    answering.push(i);
                    let up = list.as_array().into_iter().flatten().filter(|x| x["state"] == "Up").count();
                    if up != n {
                        missing.push(format!("{} sees {up} of {n} nodes Up", node_name(i)));
                    }
                }
            }
        }
        for g in &schedule.groups {
            let mut seen = BTreeSet::new();
            for &i in &answering {
                let owner = topo
                    .json(i, &["group", "show", g], limit)
                    .and_then(|v| v["owner"].as_str().map(str::to_string))
                    .unwrap_or_default();
                seen.insert(owner);
            }
            if seen.len() != 1 || answering.len() * 2 <= n {
                missing.push(format!("the nodes that answer name owners {seen:?} of {g}"));
                continue;
            }
            let owner = seen.into_iter().next().unwrap_or_default();
            let Some(o) = topo.index(&owner) else {
                missing.push(format!("{g} has no owner"));
                continue;
            };
            let state = topo
                .json(o, &["group", "show", g], limit)
                .and_then(|v| v["state"].as_str().map(str::to_string))
                .unwrap_or_default();
            if state != "Online" {
                missing.push(format!("{g} is {state:?} on {owner}"));
            }
            owners.insert(g.clone(), owner);
            states.insert(g.clone(), state);
        }
        (missing.is_empty(), owners, states, missing.join("; "))
    }

    /// Each witness resource's chaos properties (and, under the key `PersistentState`, its
    /// persistent state), read through every node; whether the nodes that answer (a majority at
    /// least) agree.
    fn read_config(&self, schedule: &Schedule) -> (Config, bool, String) {
        let topo = &self.cluster.topo;
        let n = schedule.nodes;
        let mut config = BTreeMap::new();
        for g in &schedule.groups {
            let r = witness_resource(g);
            let answers: Vec<BTreeMap<String, String>> = (0..n)
                .filter_map(|i| {
                    let v = topo.json(i, &["resource", "show", &r], Duration::from_secs(5))?;
                    let mut props: BTreeMap<String, String> = KEYS
                        .iter()
                        .filter_map(|k| v["private"][*k].as_str().map(|val| (k.to_string(), val.to_string())))
                        .collect();
                    if let Some(p) = v["common"][PERSISTENT].as_str() {
                        props.insert(PERSISTENT.into(), p.into());
                    }
                    Some(props)
                })
                .collect();
            let Some(first) = answers.first().cloned() else {
                return (config, false, format!("no node answers for {r}"));
            };
            if answers.len() * 2 <= n || answers.iter().any(|a| *a != first) {
                return (config, false, format!("{} of {n} nodes answer for {r}: {answers:?}", answers.len()));
            }
            config.insert(r, first);
        }
        (config, true, String::new())
    }

    /// [`Runner::read_config`] again and again until the nodes agree or `deadline` passes.
    fn read_config_until(&mut self, schedule: &Schedule, deadline: Instant) -> Result<(Config, bool, String)> {
        loop {
            interrupted()?;
            self.supervise();
            let (config, agreed, why) = self.read_config(schedule);
            if agreed || Instant::now() > deadline {
                return Ok((config, agreed, why));
            }
            // Nodes catching up after a restart can only be polled.
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// Copies the directory `from` to `to` (files and directories), for evidence kept after the
/// tmpfs it lives on is gone.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
