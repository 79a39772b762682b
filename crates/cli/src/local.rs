//! A cluster of `halo node run` child processes on loopback, for `halo demo` and
//! `halo bench cluster`: each node in its own data directory under one scratch directory, the
//! first forming the cluster and the others joining it. Everything is stopped and removed when
//! the value is dropped.

use crate::client::{Client, Output};
use anyhow::{Context, Result, anyhow, bail};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One node process.
pub struct LocalNode {
    /// Its name.
    pub name: String,
    /// Its API, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Its peer address.
    pub peer: String,
    child: Option<Child>,
}

impl LocalNode {
    /// A client for its API.
    pub fn client(&self) -> Result<Client> {
        Client::new(&self.endpoint, Output::Json)
    }

    /// Whether its process runs.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// Sends `signal` to its process; SIGKILL also reaps it.
    pub fn signal(&mut self, signal: nix::sys::signal::Signal) -> Result<()> {
        let Some(child) = self.child.as_mut() else { bail!("node {} is not running", self.name) };
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).map_err(|_| anyhow!("pid out of range"))?);
        nix::sys::signal::kill(pid, signal).with_context(|| format!("signalling node {}", self.name))?;
        if signal == nix::sys::signal::Signal::SIGKILL {
            let _ = child.wait();
            self.child = None;
        }
        Ok(())
    }
}

/// The cluster.
pub struct LocalCluster {
    /// Its nodes, `n1` first.
    pub nodes: Vec<LocalNode>,
    dir: PathBuf,
    keep: bool,
}

impl LocalCluster {
    /// Starts `count` nodes under `dir` (created) and waits until every one is an Up voter.
    pub fn start(dir: &Path, count: usize, keep: bool) -> Result<LocalCluster> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut cluster = LocalCluster { nodes: Vec::new(), dir: dir.to_path_buf(), keep };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        for i in 1..=count {
            // Each node after the first joins n1 with a join token of its own.
            let join = match cluster.nodes.first() {
                Some(first) => {
                    let client = first.client()?;
                    let (_, v) =
                        rt.block_on(client.post("/v1/join-tokens", serde_json::json!({ "ttl_seconds": 600 })))?;
                    let token = v["token"].as_str().ok_or_else(|| anyhow!("no join token in {v}"))?.to_string();
                    Some((first.peer.clone(), token))
                }
                None => None,
            };
            let node = spawn(dir, &format!("n{i}"), join.as_ref().map(|(p, t)| (p.as_str(), t.as_str())), None, None)?;
            cluster.nodes.push(node);
        }
        // At most seven voters; nodes beyond them are learners.
        cluster.wait_up(count.min(7), Duration::from_secs(60))?;
        Ok(cluster)
    }

    /// Restarts a node that was killed, with its data directory, on the ports it had.
    pub fn restart(&mut self, index: usize) -> Result<()> {
        let node = &self.nodes[index];
        if node.running() {
            bail!("node {} is running", node.name);
        }
        let listen = node.endpoint.split_once("://").map_or(node.endpoint.as_str(), |(_, a)| a).to_string();
        let again = spawn(&self.dir, &node.name.clone(), None, Some(&listen), Some(&node.peer.clone()))?;
        self.nodes[index] = again;
        Ok(())
    }

    /// Waits until `voters` nodes are Up voters, as the first running node sees it.
    pub fn wait_up(&self, voters: usize, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        // One small runtime for the whole wait (it runs outside any runtime).
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        loop {
            if let Some(node) = self.nodes.iter().find(|n| n.running())
                && let Ok(list) =
                    rt.block_on(async { Client::new(&node.endpoint, Output::Json)?.get("/v1/nodes").await })
            {
                let up = list
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|n| n["state"] == "Up" && n["role"] == "voter")
                    .count();
                if up >= voters {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "the cluster did not have {voters} Up voters within {limit:?}; logs are in {}",
                    self.dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&LocalNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The index of the node called `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Any running node.
    pub fn any(&self) -> Result<&LocalNode> {
        self.nodes.iter().find(|n| n.running()).ok_or_else(|| anyhow!("no node is running"))
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                // SIGTERM: each takes its groups offline and stops its hosts.
                if let Ok(pid) = i32::try_from(child.id()) {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
                }
                let _ = child.wait();
            }
        }
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn spawn(
    dir: &Path,
    name: &str,
    join: Option<(&str, &str)>,
    listen: Option<&str>,
    peer: Option<&str>,
) -> Result<LocalNode> {
    let data = dir.join(name);
    let log = dir.join(format!("{name}.log"));
    let mut cmd = Command::new(std::env::current_exe().context("locating the halo binary")?);
    cmd.args(["node", "run", "--name", name, "--listen", listen.unwrap_or("127.0.0.1:0")])
        .args(["--peer-listen", peer.unwrap_or("127.0.0.1:0"), "--data-dir"])
        .arg(&data);
    if let Some((peer, token)) = join {
        cmd.args(["--join", peer]).env("HALO_JOIN_TOKEN", token);
    }
    let stderr = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    // A node must not outlive the demo or benchmark that started it, even one killed with
    // SIGKILL: the kernel sends it SIGTERM then (and it takes its groups offline).
    // SAFETY: between fork and exec only prctl(2), which is async-signal-safe, runs.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM).map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(stderr).spawn().context("starting a node")?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout from node {name}"))?;
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
    match rx.recv_timeout(Duration::from_secs(90)) {
        Ok(Some((endpoint, peer))) => Ok(LocalNode { name: name.into(), endpoint, peer, child: Some(child) }),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            bail!("node {name} did not start:\n{}", said.lines().rev().take(5).collect::<Vec<_>>().join("\n"))
        }
    }
}
