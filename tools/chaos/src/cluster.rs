//! The cluster under test: real `halo node run` processes, each in its node's network namespace
//! (or on loopback), with `HALO_CHAOS_RUN` and `HALO_CHAOS_NODE` in their environment so that
//! every process of a node (daemon, hosts, scripts, witnesses' markers) can be found and killed
//! at once. Operator commands go through the `halo` CLI, run in the namespace of the node they
//! are sent to. Every process is killed when the value is dropped.

use crate::procs::{Outcome, kill_all_with_env, prepare, run_limited};
use crate::witness::{ENV_NODE, ENV_OFFSET, ENV_RUN};
use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Where a node listens and keeps its data.
#[derive(Debug, Clone)]
pub struct NodeAddr {
    /// `n1`...
    pub name: String,
    /// `--listen`.
    pub listen: String,
    /// `--peer-listen`.
    pub peer: String,
    /// Its API, as it printed it.
    pub endpoint: String,
    /// Its network namespace's file, as root.
    pub netns: Option<PathBuf>,
    /// `--data-dir`.
    pub data: PathBuf,
}

/// What clients need to reach the nodes; fixed once every node has started.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The `halo` binary.
    pub halo: PathBuf,
    /// The run's id.
    pub run: String,
    /// The nodes.
    pub nodes: Vec<NodeAddr>,
    /// An empty configuration directory for the CLI, so that no user's config file interferes.
    pub config_home: PathBuf,
}

impl Topology {
    /// Runs `halo --endpoint <node via> [--output json] ARGS` in that node's namespace, killed
    /// after `limit`.
    pub fn cli(&self, via: usize, json: bool, args: &[&str], limit: Duration) -> Result<Outcome> {
        let n = self.nodes.get(via).ok_or_else(|| anyhow!("no node {via}"))?;
        let mut cmd = Command::new(&self.halo);
        cmd.args(["--endpoint", &n.endpoint]);
        if json {
            cmd.args(["--output", "json"]);
        }
        cmd.args(args)
            .env("XDG_CONFIG_HOME", &self.config_home)
            .env_remove("HALO_TOKEN")
            .env_remove("HALO_CA")
            .env_remove("HALO_ENDPOINT");
        prepare(&mut cmd, n.netns.as_deref())?;
        run_limited(&mut cmd, limit)
    }

    /// The JSON a read command answers through node `via`, if it answers.
    pub fn json(&self, via: usize, args: &[&str], limit: Duration) -> Option<Value> {
        let out = self.cli(via, true, args, limit).ok()?;
        if !out.ok() {
            return None;
        }
        serde_json::from_str(&out.stdout).ok()
    }

    /// The index of node `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }
}

/// The node processes.
pub struct Cluster {
    /// Addresses and the CLI.
    pub topo: Topology,
    children: Vec<Option<Child>>,
    /// Nodes whose daemon is stopped with SIGSTOP.
    pub frozen: Vec<bool>,
    /// Each node's monotonic clock offset (seconds) in its current life.
    pub offsets: Vec<u64>,
    logs: PathBuf,
    /// The local credential files the nodes write, removed at the end.
    credentials: Vec<PathBuf>,
    /// Every daemon started: their resource cgroups (`<cgroup2>/halo/<pid>.<n>`) are removed at
    /// the end (a daemon killed with SIGKILL cannot remove its own).
    daemons: Vec<u32>,
}

impl Cluster {
    /// A cluster of `addrs` not started yet.
    pub fn new(topo: Topology, logs: &Path) -> Result<Cluster> {
        std::fs::create_dir_all(logs)?;
        std::fs::create_dir_all(&topo.config_home)?;
        let n = topo.nodes.len();
        Ok(Cluster {
            topo,
            children: (0..n).map(|_| None).collect(),
            frozen: vec![false; n],
            offsets: vec![0; n],
            logs: logs.to_path_buf(),
            credentials: Vec::new(),
            daemons: Vec::new(),
        })
    }

    fn env(&self, i: usize) -> Vec<String> {
        vec![format!("{ENV_RUN}={}", self.topo.run), format!("{ENV_NODE}={}", self.topo.nodes[i].name)]
    }

    /// Starts node `i` (joining through `join` with a token the first time); with `banner`,
    /// waits for the addresses it prints and records them. `offset_s` > 0 starts it in a new
    /// time namespace whose monotonic clock is that far ahead.
    pub fn start(&mut self, i: usize, join: Option<(&str, &str)>, banner: bool, offset_s: u64) -> Result<()> {
        if self.children[i].is_some() {
            bail!("node {} is running", self.topo.nodes[i].name);
        }
        let n = self.topo.nodes[i].clone();
        let mut cmd = if offset_s > 0 {
            let mut c = Command::new("unshare");
            let off = offset_s.to_string();
            c.args(["--time", "--monotonic", &off, "--boottime", &off, "--"]).arg(&self.topo.halo);
            c
        } else {
            Command::new(&self.topo.halo)
        };
        cmd.args(["node", "run", "--name", &n.name, "--listen", &n.listen, "--peer-listen", &n.peer, "--data-dir"])
            .arg(&n.data)
            .env(ENV_RUN, &self.topo.run)
            .env(ENV_NODE, &n.name)
            .env(ENV_OFFSET, offset_s.to_string())
            .env_remove("HALO_JOIN_TOKEN");
        if let Some((peer, token)) = join {
            cmd.args(["--join", peer]).env("HALO_JOIN_TOKEN", token);
        }
        let log_path = self.logs.join(format!("{}.log", n.name));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        prepare(&mut cmd, n.netns.as_deref())?;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting node {}", n.name))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout from node {}", n.name))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = std::io::BufReader::new(stdout).lines();
            let mut endpoint = None;
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if let Some((_, url)) = line.split_once(" listening on ") {
                    endpoint = Some(url.trim().to_string());
                } else if let Some((_, peer)) = line.split_once(" peers on ") {
                    let _ = tx.send(endpoint.take().map(|e| (e, peer.trim().to_string())));
                    break;
                }
            }
            // Keep reading so that a later print never meets a closed pipe.
            lines.for_each(drop);
        });
        self.offsets[i] = offset_s;
        self.frozen[i] = false;
        if banner {
            match rx.recv_timeout(Duration::from_secs(90)) {
                Ok(Some((endpoint, peer))) => {
                    let listen = endpoint.split_once("://").map_or(endpoint.as_str(), |(_, a)| a).to_string();
                    let node = &mut self.topo.nodes[i];
                    node.endpoint = endpoint;
                    node.listen = listen;
                    node.peer = peer;
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let said = std::fs::read_to_string(&log_path).unwrap_or_default();
                    let tail: Vec<&str> = said.lines().rev().take(5).collect();
                    bail!("node {} did not start: {}", n.name, tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
                }
            }
        }
        if let Some(file) = credential_file(&self.topo.nodes[i].endpoint)
            && !self.credentials.contains(&file)
        {
            self.credentials.push(file);
        }
        self.daemons.push(child.id());
        self.children[i] = Some(child);
        Ok(())
    }

    /// Whether node `i`'s daemon is running (it may be frozen).
    pub fn running(&self, i: usize) -> bool {
        self.children[i].is_some()
    }

    fn pid(&self, i: usize) -> Option<nix::unistd::Pid> {
        let child = self.children[i].as_ref()?;
        i32::try_from(child.id()).ok().map(nix::unistd::Pid::from_raw)
    }

    /// Sends `signal` to node `i`'s daemon.
    pub fn signal(&mut self, i: usize, signal: nix::sys::signal::Signal) -> Result<()> {
        let pid = self.pid(i).ok_or_else(|| anyhow!("node {} is not running", self.topo.nodes[i].name))?;
        nix::sys::signal::kill(pid, signal).with_context(|| format!("{signal} to {}", self.topo.nodes[i].name))?;
        match signal {
            nix::sys::signal::Signal::SIGSTOP => self.frozen[i] = true,
            nix::sys::signal::Signal::SIGCONT => self.frozen[i] = false,
            _ => {}
        }
        Ok(())
    }

    /// SIGKILLs node `i`'s daemon alone and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.frozen[i] = false;
    }

    /// SIGKILLs every process of node `i` (daemon, hosts, scripts, markers) and returns once
    /// none is left.
    pub fn crash(&mut self, i: usize) -> Result<()> {
        let env = self.env(i);
        if let Some(pid) = self.pid(i) {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
        let gone = kill_all_with_env(&env, Duration::from_secs(10));
        self.kill(i);
        if !gone {
            bail!("processes of node {} survived SIGKILL for 10 s", self.topo.nodes[i].name);
        }
        Ok(())
    }

    /// Reaps daemons that exited; returns them with their status.
    pub fn reap(&mut self) -> Vec<(usize, String)> {
        let mut exited = Vec::new();
        for (i, slot) in self.children.iter_mut().enumerate() {
            if let Some(child) = slot
                && let Ok(Some(status)) = child.try_wait()
            {
                exited.push((i, status.to_string()));
                *slot = None;
                self.frozen[i] = false;
            }
        }
        exited
    }

    /// Kills every process of every node.
    pub fn kill_everything(&mut self) {
        let run = format!("{ENV_RUN}={}", self.topo.run);
        for i in 0..self.children.len() {
            if let Some(pid) = self.pid(i) {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
            }
        }
        if !kill_all_with_env(std::slice::from_ref(&run), Duration::from_secs(10)) {
            eprintln!("halo-chaos: some processes of run {} survived SIGKILL", self.topo.run);
        }
        for i in 0..self.children.len() {
            self.kill(i);
        }
        for file in self.credentials.drain(..) {
            let _ = std::fs::remove_file(file);
        }
        remove_cgroups(&std::mem::take(&mut self.daemons));
    }
}

/// Removes the (empty, once every process is gone) resource cgroups of these daemons.
fn remove_cgroups(daemons: &[u32]) {
    let Some(root) = cgroup2_mount().map(|m| m.join("halo")) else { return };
    let Ok(entries) = std::fs::read_dir(&root) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours =
            name.split_once('.').and_then(|(pid, _)| pid.parse::<u32>().ok()).is_some_and(|p| daemons.contains(&p));
        if !ours {
            continue;
        }
        if let Ok(inner) = std::fs::read_dir(entry.path()) {
            for r in inner.flatten() {
                if r.file_type().is_ok_and(|t| t.is_dir()) {
                    let _ = std::fs::remove_dir(r.path());
                }
            }
        }
        let _ = std::fs::remove_dir(entry.path());
    }
}

/// Where cgroup v2 is mounted, from /proc/self/mountinfo.
fn cgroup2_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (right.split_whitespace().next()? == "cgroup2").then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
    })
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_everything();
    }
}

/// The local credential file a node writes for `endpoint` (as the CLI's credentials module
/// names it), to be removed once the node is gone.
fn credential_file(endpoint: &str) -> Option<PathBuf> {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let (host, port) = rest.split('/').next()?.rsplit_once(':')?;
    let dir = if nix::unistd::geteuid().is_root() {
        PathBuf::from("/run/halo")
    } else if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR").filter(|r| !r.is_empty()) {
        PathBuf::from(run).join("halo")
    } else {
        std::env::temp_dir().join(format!("halo-{}", nix::unistd::geteuid()))
    };
    Some(dir.join(format!("api-{}-{port}.json", host.trim_start_matches('[').trim_end_matches(']'))))
}
