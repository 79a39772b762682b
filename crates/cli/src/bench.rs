//! `halo bench host`: the resource host's figures, printed as JSON. Benchmarks, not tests: they
//! report what they measure against the targets and never fail on a number.

use anyhow::{Context, Result, anyhow, bail};
use halo_host::client::{HostCommand, HostEvent, HostManager, OpenSpec};
use halo_host::protocol::{FromHost, ResourceId, Timeouts, TypeSpec};
use resapi::{PropertyList, ResourceState, ValueData};
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

/// What to measure, and how much.
#[derive(Debug, Clone, clap::Args)]
pub struct HostBench {
    /// Round trips of one entry-point call (ResourceControl on a dummy).
    #[arg(long, default_value_t = 2000)]
    pub calls: usize,
    /// Dummy resources one host polls.
    #[arg(long, default_value_t = 10_000)]
    pub resources: usize,
    /// LooksAlivePollInterval of the polled resources, in milliseconds.
    #[arg(long, default_value_t = 5_000)]
    pub looks_alive_ms: u32,
    /// IsAlivePollInterval of the polled resources, in milliseconds (shorter than the 60 s
    /// default so that several periods fit in a short run).
    #[arg(long, default_value_t = 10_000)]
    pub is_alive_ms: u32,
    /// IsAlive periods the polling CPU is measured over (at least 2).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(2..))]
    pub is_alive_periods: u32,
    /// start+monitor+stop cycles of ocf:heartbeat:Dummy, each run directly and through the host.
    #[arg(long, default_value_t = 30)]
    pub ocf_iterations: usize,
}

struct Bench {
    manager: HostManager,
    events: UnboundedReceiver<HostEvent>,
}

impl Bench {
    async fn until(&mut self, what: &str, mut done: impl FnMut(&HostEvent) -> bool) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) if done(&e) => return Ok(()),
                Ok(Some(HostEvent::HostDied { reason, .. })) => bail!("a host died while waiting for {what}: {reason}"),
                Ok(Some(_)) => {}
                _ => bail!("no {what} within 600 s"),
            }
        }
    }

    async fn state(&mut self, id: ResourceId, want: ResourceState) -> Result<()> {
        self.until(&format!("{want} of resource {id}"), |e| state_is(e, id, want)).await
    }
}

fn state_is(e: &HostEvent, id: ResourceId, want: ResourceState) -> bool {
    matches!(e, HostEvent::Fact(FromHost::State { id: i, state, .. }) if *i == id && *state == want.raw())
}

fn spec(id: ResourceId, type_spec: TypeSpec, properties: PropertyList, timeouts: Timeouts) -> OpenSpec {
    OpenSpec { id, name: format!("bench-{id}"), type_spec, properties, flags: 0, timeouts, separate_monitor: false }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The spread of a set of samples: p50, p90, min, max and how many.
fn spread(mut samples: Vec<f64>) -> serde_json::Value {
    samples.sort_by(f64::total_cmp);
    serde_json::json!({
        "p50": percentile(&samples, 0.5),
        "p90": percentile(&samples, 0.9),
        "min": samples.first().copied().unwrap_or(0.0),
        "max": samples.last().copied().unwrap_or(0.0),
        "samples": samples.len(),
    })
}

/// (utime + stime) in seconds, and resident set size in bytes, of a process.
fn usage(pid: u32) -> Result<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).context("reading the host's /proc stat")?;
    let fields: Vec<&str> = stat.rsplit_once(") ").map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    // Fields after the command: state is index 0, utime 11, stime 12, rss (pages) 21.
    let num = |i: usize| -> Result<u64> {
        fields.get(i).and_then(|f| f.parse().ok()).ok_or_else(|| anyhow!("unexpected /proc/{pid}/stat layout"))
    };
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok().flatten().unwrap_or(4096) as u64;
    Ok(((num(11)? + num(12)?) as f64 / ticks, num(21)? * page))
}

/// Runs a benchmark to its end and prints its report as JSON.
fn print_report(measure: impl std::future::Future<Output = Result<serde_json::Value>>) -> Result<()> {
    let report = tokio::runtime::Runtime::new()?.block_on(measure)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

impl HostBench {
    /// Runs every measurement and prints one JSON document.
    pub fn run(&self) -> Result<()> {
        print_report(self.measure())
    }

    async fn measure(&self) -> Result<serde_json::Value> {
        let command = HostCommand::current_exe().context("locating the halo binary")?;
        let (manager, events) = HostManager::new(command);
        let mut b = Bench { manager, events };
        let round_trip = self.round_trip(&mut b).await?;
        // Before the polling load, so that its thousands of resources do not share the CPU.
        let ocf = self.ocf(&mut b).await?;
        let polling = self.polling(&mut b).await?;
        Ok(serde_json::json!({
            "benchmark": "host",
            "entry_point_round_trip": round_trip,
            "polling": polling,
            "ocf_heartbeat_dummy": ocf,
        }))
    }

    async fn round_trip(&self, b: &mut Bench) -> Result<serde_json::Value> {
        let id = 1;
        b.manager.open(spec(id, TypeSpec::Dummy, PropertyList::new(), Timeouts::default())).await?;
        let mut samples = Vec::with_capacity(self.calls);
        for _ in 0..self.calls {
            let t = Instant::now();
            b.manager.control(id, resapi::control::codes::CLUSCTL_RESOURCE_GET_CHARACTERISTICS.0, vec![], 64).await?;
            samples.push(t.elapsed().as_secs_f64() * 1e6);
        }
        samples.sort_by(f64::total_cmp);
        Ok(serde_json::json!({
            "call": "ResourceControl on dummy, parent -> host -> parent",
            "calls": self.calls,
            "p50_us": percentile(&samples, 0.5),
            "p99_us": percentile(&samples, 0.99),
        }))
    }

    async fn polling(&self, b: &mut Bench) -> Result<serde_json::Value> {
        let t = Timeouts { looks_alive_ms: self.looks_alive_ms, is_alive_ms: self.is_alive_ms, ..Timeouts::default() };
        let is_alive = Duration::from_millis(self.is_alive_ms.into());
        // The shared host: the round-trip resource is its only other tenant.
        let shared_first = 2_000_000;
        b.manager.open(spec(shared_first, TypeSpec::Dummy, PropertyList::new(), t)).await?;
        let shared_pid = b.manager.host_pid(shared_first).ok_or_else(|| anyhow!("no shared host"))?;
        let (_, rss_idle) = usage(shared_pid)?;
        let ids: Vec<ResourceId> = (shared_first..shared_first + self.resources.max(1) as u64).collect();
        for id in &ids[1..] {
            b.manager.open(spec(*id, TypeSpec::Dummy, PropertyList::new(), t)).await?;
        }
        let (_, rss_open) = usage(shared_pid)?;
        // A resource's polls run a period after it came online: onlines spread evenly over one
        // IsAlive period spread the polls too, instead of every resource polled at one instant.
        let mut waiting: HashSet<ResourceId> = ids.iter().copied().collect();
        let spread_start = tokio::time::Instant::now();
        for (i, id) in ids.iter().enumerate() {
            let at = spread_start + is_alive.mul_f64(i as f64 / ids.len() as f64);
            tokio::time::sleep_until(at).await;
            b.manager.online(*id, 0, vec![])?;
        }
        b.until("every resource online", |e| {
            if let HostEvent::Fact(FromHost::State { id, state, .. }) = e
                && *state == ResourceState::Online.raw()
            {
                waiting.remove(id);
            }
            waiting.is_empty()
        })
        .await?;
        let spread_s = spread_start.elapsed().as_secs_f64();
        let (_, rss_online) = usage(shared_pid)?;
        let (cpu0, _) = usage(shared_pid)?;
        let start = Instant::now();
        let mut unhealthy = 0usize;
        let window = is_alive * self.is_alive_periods;
        let deadline = tokio::time::Instant::now() + window;
        // Drain events meanwhile: a failure here would invalidate the figure.
        while let Ok(e) = tokio::time::timeout_at(deadline, b.events.recv()).await {
            if matches!(e, Some(HostEvent::Fact(FromHost::Unhealthy { .. }))) {
                unhealthy += 1;
            }
        }
        let (cpu1, _) = usage(shared_pid)?;
        let elapsed = start.elapsed().as_secs_f64();
        let resources = ids.len() as f64;
        Ok(serde_json::json!({
            "resources": ids.len(),
            "looks_alive_ms": t.looks_alive_ms,
            "is_alive_ms": t.is_alive_ms,
            "is_alive_ms_default": Timeouts::default().is_alive_ms,
            "poll_start_spread": format!(
                "onlines spread evenly over one IsAlive period ({} ms, all online after {spread_s:.1} s), so each resource's polls start at its own offset",
                t.is_alive_ms
            ),
            "is_alive_periods_measured": self.is_alive_periods,
            "measured_s": elapsed,
            "host_cpu_percent_of_one_core": 100.0 * (cpu1 - cpu0) / elapsed,
            "target_cpu_percent": 2.0,
            "unhealthy_reports": unhealthy,
            "host_rss_idle_bytes": rss_idle,
            "host_rss_open_bytes": rss_open,
            "host_rss_online_bytes": rss_online,
            "bytes_per_open_resource": (rss_open.saturating_sub(rss_idle)) as f64 / resources,
            "bytes_per_online_resource": (rss_online.saturating_sub(rss_idle)) as f64 / resources,
            "target_bytes_per_resource": 4096,
        }))
    }

    /// One start+monitor+stop cycle of ocf:heartbeat:Dummy run directly; its time in ms.
    fn ocf_direct(agent: &Path, state: &str) -> Result<f64> {
        let t = Instant::now();
        for action in ["start", "monitor", "stop"] {
            let ok = Command::new(agent)
                .arg(action)
                .env("OCF_ROOT", OCF_ROOT)
                .env("OCF_RESOURCE_INSTANCE", "bench")
                .env("OCF_RESKEY_state", state)
                .env("OCF_RESKEY_CRM_meta_interval", "10000")
                .status()?
                .success();
            if !ok {
                bail!("ocf:heartbeat:Dummy {action} failed when run directly");
            }
        }
        Ok(t.elapsed().as_secs_f64() * 1e3)
    }

    /// The same cycle through the host: online, LooksAlive (monitor), offline; its time in ms.
    async fn ocf_through_host(b: &mut Bench, id: ResourceId) -> Result<f64> {
        let t = Instant::now();
        b.manager.online(id, 0, vec![])?;
        b.state(id, ResourceState::Online).await?;
        b.manager.check(id, false)?;
        let mut alive = None;
        b.until("the monitor's answer", |e| match e {
            HostEvent::Fact(FromHost::Checked { id: i, alive: a, .. }) if *i == id => {
                alive = Some(*a);
                true
            }
            _ => false,
        })
        .await?;
        if alive != Some(true) {
            bail!("monitor through the host said not running");
        }
        b.manager.offline(id, None, 0, vec![])?;
        b.state(id, ResourceState::Offline).await?;
        Ok(t.elapsed().as_secs_f64() * 1e3)
    }

    async fn ocf(&self, b: &mut Bench) -> Result<serde_json::Value> {
        let agent = Path::new(OCF_ROOT).join("resource.d/heartbeat/Dummy");
        if !agent.is_file() {
            return Ok(
                serde_json::json!({ "skipped": format!("{} is not installed (Debian package resource-agents)", agent.display()) }),
            );
        }
        let dir = tempdir::Dir(std::env::temp_dir().join(format!("halo-bench-{}", std::process::id())));
        std::fs::create_dir_all(&dir.0)?;
        let state = dir.0.join("dummy.state").display().to_string();
        let props = PropertyList::new()
            .with("Agent", ValueData::Sz("heartbeat:Dummy".into()))
            .with("state", ValueData::Sz(state.clone()));
        let id = 3_000_000;
        let t = Timeouts { looks_alive_ms: 3_600_000, is_alive_ms: 3_600_000, ..Timeouts::default() };
        // A host of its own, started for this resource alone.
        b.manager.open(OpenSpec { separate_monitor: true, ..spec(id, TypeSpec::Ocf, props, t) }).await?;
        // Interleaved, so both ways see the same machine; each pair gives one overhead sample.
        let (mut direct, mut through, mut added) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..self.ocf_iterations {
            let d = Self::ocf_direct(&agent, &state)?;
            let h = Self::ocf_through_host(b, id).await?;
            direct.push(d);
            through.push(h);
            added.push(h - d);
        }
        b.manager.close(id)?;
        Ok(serde_json::json!({
            "cycle": "start + monitor (LooksAlive) + stop",
            "host": "a fresh host holding only this resource",
            "direct_ms": spread(direct),
            "through_host_ms": spread(through),
            "added_ms_per_pair": spread(added),
            "target_added_ms": 2.0,
        }))
    }
}

/// Where Debian installs OCF agents.
const OCF_ROOT: &str = "/usr/lib/ocf";

/// `halo bench node`: a real daemon, driven through its API.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeBench {
    /// Dummy resources to apply and bring online.
    #[arg(long, default_value_t = 1000)]
    pub resources: usize,
    /// Groups they are spread over.
    #[arg(long, default_value_t = 100)]
    pub groups: usize,
    /// ocf:heartbeat:Dummy resources to apply and bring online.
    #[arg(long, default_value_t = 200)]
    pub ocf_resources: usize,
    /// Seconds of sequential status reads.
    #[arg(long, default_value_t = 3)]
    pub status_seconds: u64,
    /// Dependency chains for the shutdown measurement (one group each).
    #[arg(long, default_value_t = 10)]
    pub chains: usize,
    /// Resources in each chain: each depends on the one before.
    #[arg(long, default_value_t = 60)]
    pub chain_depth: usize,
}

struct Daemon {
    child: std::process::Child,
    endpoint: String,
    _dir: tempdir::Dir,
}

/// A scratch directory removed on drop (the bench cannot use dev-dependencies).
mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGTERM: let it take the groups offline and stop its hosts.
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(i32::MAX));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

fn start_daemon() -> Result<Daemon> {
    use std::io::BufRead;
    static DAEMONS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = DAEMONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("halo-bench-node-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let dir = tempdir::Dir(dir);
    let child = Command::new(std::env::current_exe()?)
        .args(["node", "run", "--name", "bench", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.0.join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let mut daemon = Daemon { child, endpoint: String::new(), _dir: dir };
    // The daemon binds port 0 and says which port it got: "halo node bench listening on URL".
    let stdout = daemon.child.stdout.take().ok_or_else(|| anyhow!("no daemon stdout"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        // Keep reading so that a later print never meets a closed pipe.
        lines.for_each(drop);
    });
    let line = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Some(line)) => line.context("reading the daemon's output")?,
        Ok(None) => bail!("the daemon exited before listening"),
        Err(_) => bail!("the daemon did not say where it listens within 60 s"),
    };
    daemon.endpoint = match line.split_once(" listening on ") {
        Some((_, url)) => url.trim().to_string(),
        None => bail!("the daemon did not start: {line:?}"),
    };
    Ok(daemon)
}

/// Resident memory of a process and all its descendants, in bytes.
fn tree_rss(root: u32) -> Result<u64> {
    let mut total = usage(root)?.1;
    let Ok(dir) = std::fs::read_dir("/proc") else { return Ok(total) };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let ppid =
            stat.rsplit_once(") ").and_then(|(_, r)| r.split_whitespace().nth(1)).and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(root) {
            total += tree_rss(pid)?;
        }
    }
    Ok(total)
}

impl NodeBench {
    /// Runs every measurement and prints one JSON document.
    pub fn run(&self) -> Result<()> {
        print_report(self.measure())
    }

    async fn wait_online(client: &crate::client::Client, names: &HashSet<String>) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let status = client.get("/v1/status").await?;
            let online = status["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["state"] == "Online" && r["name"].as_str().is_some_and(|n| names.contains(n)))
                .count();
            if online == names.len() {
                return Ok(());
            }
            if let Some(failed) = status["resources"].as_array().into_iter().flatten().find(|r| r["state"] == "Failed")
            {
                bail!("{} failed: {}", failed["name"], failed["status_text"]);
            }
            if Instant::now() > deadline {
                bail!("only {online} of {} online after 600 s", names.len());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn apply_and_online(
        &self,
        client: &crate::client::Client,
        config: &crate::apply::Config,
        names: &HashSet<String>,
    ) -> Result<(f64, f64)> {
        let t = Instant::now();
        crate::apply::apply_quietly(client, config).await?;
        let applied = t.elapsed().as_secs_f64();
        Self::wait_online(client, names).await?;
        Ok((applied, t.elapsed().as_secs_f64()))
    }

    async fn measure(&self) -> Result<serde_json::Value> {
        use crate::apply::{Config, GroupConfig, ResourceConfig};
        let daemon = start_daemon()?;
        let client = crate::client::Client::new(&daemon.endpoint, crate::client::Output::Json)?;
        let (_, rss_empty) = usage(daemon.child.id())?;

        let mut config = Config::default();
        let mut names = HashSet::new();
        for g in 0..self.groups {
            config.groups.push(GroupConfig {
                name: format!("g{g}"),
                online: Some(true),
                properties: Default::default(),
            });
        }
        for r in 0..self.resources {
            let name = format!("d{r}");
            names.insert(name.clone());
            config.resources.push(ResourceConfig {
                name,
                group: format!("g{}", r % self.groups.max(1)),
                type_name: "dummy".into(),
                depends: String::new(),
                properties: Default::default(),
                private: Default::default(),
            });
        }
        let (dummy_apply_s, dummy_total_s) = self.apply_and_online(&client, &config, &names).await?;
        // Let polls settle, then measure memory with every resource online and idle.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss_idle = tree_rss(daemon.child.id())?;

        let t = Instant::now();
        let mut reads = 0u64;
        while t.elapsed() < Duration::from_secs(self.status_seconds) {
            client.get("/v1/status").await?;
            reads += 1;
        }
        let reads_per_s = reads as f64 / t.elapsed().as_secs_f64();

        let ocf = if Path::new(OCF_ROOT).join("resource.d/heartbeat/Dummy").is_file() {
            let states = daemon._dir.0.join("ocf-state");
            std::fs::create_dir_all(&states)?;
            let mut config = Config::default();
            let mut names = HashSet::new();
            let groups = (self.ocf_resources / 10).max(1);
            for g in 0..groups {
                config.groups.push(GroupConfig {
                    name: format!("o{g}"),
                    online: Some(true),
                    properties: Default::default(),
                });
            }
            for r in 0..self.ocf_resources {
                let name = format!("ocf{r}");
                names.insert(name.clone());
                let mut private = std::collections::BTreeMap::new();
                private.insert("Agent".to_string(), toml::Value::String("heartbeat:Dummy".into()));
                private.insert(
                    "state".to_string(),
                    toml::Value::String(states.join(format!("{name}.state")).display().to_string()),
                );
                config.resources.push(ResourceConfig {
                    name,
                    group: format!("o{}", r % groups),
                    type_name: "ocf".into(),
                    depends: String::new(),
                    properties: Default::default(),
                    private,
                });
            }
            let (apply_s, total_s) = self.apply_and_online(&client, &config, &names).await?;
            serde_json::json!({
                "resources": self.ocf_resources,
                "apply_s": apply_s,
                "apply_to_all_online_s": total_s,
                "target_s": 3.0,
            })
        } else {
            serde_json::json!({ "skipped": "resource-agents is not installed" })
        };

        Ok(serde_json::json!({
            "benchmark": "node",
            "dummy": {
                "resources": self.resources,
                "groups": self.groups,
                "apply_s": dummy_apply_s,
                "apply_to_all_online_s": dummy_total_s,
                "target_s": 1.0,
            },
            "status_reads_per_s": { "resources": self.resources, "reads_per_s": reads_per_s, "sequential": true },
            "memory": {
                "daemon_rss_empty_bytes": rss_empty,
                "daemon_and_hosts_rss_idle_bytes": rss_idle,
                "with_resources_online": self.resources,
                "target_bytes": 40 * 1024 * 1024,
            },
            "ocf_heartbeat_dummy": ocf,
            "chain_shutdown": self.chain_shutdown().await?,
        }))
    }

    /// Chains of dummies, each depending on the one before, brought online (bottom-up, one
    /// level at a time), then the daemon is stopped with SIGTERM: every chain goes offline
    /// top-down before it exits. The work per event must follow what changed, not the number
    /// of resources.
    async fn chain_shutdown(&self) -> Result<serde_json::Value> {
        use crate::apply::{Config, GroupConfig, ResourceConfig};
        let mut daemon = start_daemon()?;
        let client = crate::client::Client::new(&daemon.endpoint, crate::client::Output::Json)?;
        let mut config = Config::default();
        let mut names = HashSet::new();
        for c in 0..self.chains {
            config.groups.push(GroupConfig {
                name: format!("chain{c}"),
                online: Some(true),
                properties: Default::default(),
            });
            for i in 0..self.chain_depth {
                let name = format!("c{c}-{i}");
                names.insert(name.clone());
                config.resources.push(ResourceConfig {
                    name,
                    group: format!("chain{c}"),
                    type_name: "dummy".into(),
                    depends: if i == 0 { String::new() } else { format!("[c{c}-{}]", i - 1) },
                    properties: Default::default(),
                    private: Default::default(),
                });
            }
        }
        let (_, online_s) = self.apply_and_online(&client, &config, &names).await?;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(daemon.child.id())?);
        let t = Instant::now();
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
        let status = daemon.child.wait()?;
        let shutdown_s = t.elapsed().as_secs_f64();
        if !status.success() {
            bail!("the daemon exited with {status} during shutdown");
        }
        Ok(serde_json::json!({
            "chains": self.chains,
            "depth": self.chain_depth,
            "resources": self.chains * self.chain_depth,
            "apply_to_all_online_s": online_s,
            "sigterm_to_exit_s": shutdown_s,
            "target_s": 2.0,
        }))
    }
}
