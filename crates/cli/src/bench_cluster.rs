//! `halo bench cluster`: failover, move overhead, false failovers under load and drain time, on
//! a cluster of real node processes on loopback. Printed as one JSON document; a benchmark
//! reports against its targets and never fails on a number.

use crate::client::Client;
use crate::local::LocalCluster;
use anyhow::{Result, anyhow, bail};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// What to measure, and how much.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterBench {
    /// Failover trials (SIGKILL of the owner, then the node restarts and rejoins).
    #[arg(long, default_value_t = 20)]
    pub trials: usize,
    /// Planned moves timed.
    #[arg(long, default_value_t = 20)]
    pub moves: usize,
    /// Seconds both cores are kept busy while counting failovers nobody caused.
    #[arg(long, default_value_t = 120)]
    pub load_seconds: u64,
    /// Groups drained from one node to the others.
    #[arg(long, default_value_t = 100)]
    pub drain_groups: usize,
    /// Resources in those groups (spread evenly).
    #[arg(long, default_value_t = 1000)]
    pub drain_resources: usize,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).ceil() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(mut ms: Vec<f64>) -> Value {
    ms.sort_by(f64::total_cmp);
    json!({
        "n": ms.len(),
        "p50_ms": percentile(&ms, 0.5),
        "p99_ms": percentile(&ms, 0.99),
        "min_ms": ms.first().copied().unwrap_or(0.0),
        "max_ms": ms.last().copied().unwrap_or(0.0),
    })
}

async fn group(c: &Client, name: &str) -> Result<Value> {
    c.get(&format!("/v1/groups/{name}")).await
}

/// The group's owner as `c`'s node sees it, and its state as the owner sees it.
async fn owner_state(cluster: &LocalCluster, c: &Client, name: &str) -> Result<(String, String)> {
    let owner = group(c, name).await?["owner"].as_str().unwrap_or("").to_string();
    let Some(node) = cluster.node(&owner).filter(|n| n.running()) else { return Ok((owner, String::new())) };
    let state = group(&node.client()?, name).await?["state"].as_str().unwrap_or("").to_string();
    Ok((owner, state))
}

/// Asks for a move to `to`, again while the asked node's view does not show `to` Up yet (it may
/// have rejoined a moment ago).
async fn move_to(c: &Client, group: &str, to: &str) -> Result<()> {
    let started = Instant::now();
    loop {
        match c.post(&format!("/v1/groups/{group}/move"), json!({ "node": to })).await {
            Ok(_) => return Ok(()),
            Err(e)
                if started.elapsed() < Duration::from_secs(10) && e.to_string().contains("ERROR_CLUSTER_NODE_DOWN") =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn leader(c: &Client) -> Result<String> {
    let nodes = c.get("/v1/nodes").await?;
    nodes
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["leader"] == true)
        .and_then(|n| n["name"].as_str())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no leader"))
}

async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    bail!("{what}: not within {limit:?}")
}

impl ClusterBench {
    /// Runs every measurement and prints one JSON document.
    pub fn run(&self) -> Result<()> {
        let dir = std::env::temp_dir().join(format!("halo-bench-cluster-{}", std::process::id()));
        let mut cluster = LocalCluster::start(&dir, 3, false)?;
        let rt = tokio::runtime::Runtime::new()?;
        let report = rt.block_on(async {
            let failover = self.failover(&mut cluster).await?;
            let moves = self.moves(&cluster).await?;
            let load = self.false_failovers(&cluster).await?;
            let drain = self.drain(&cluster).await?;
            Ok::<Value, anyhow::Error>(json!({
                "nodes": 3,
                "failover_after_sigkill": failover,
                "move_overhead": moves,
                "false_failovers_under_load": load,
                "drain": drain,
                "targets": {
                    "failover_p50_ms": 1000, "failover_p99_ms": 2000, "false_failovers": 0, "move_overhead_p50_ms": 20,
                },
            }))
        })?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        Ok(())
    }

    /// SIGKILL of the group's owner (never the leader: that is a coordinator failover, which
    /// first waits a full lease by design) until the group is Online on another node.
    async fn failover(&self, cluster: &mut LocalCluster) -> Result<Value> {
        let c = cluster.any()?.client()?;
        // Twenty failovers in a row: more than the default FailoverThreshold (nodes - 1 per
        // FailoverPeriod) allows, so the group allows them.
        c.post("/v1/groups", json!({ "name": "fo", "properties": { "FailoverThreshold": 1000 } })).await?;
        c.post("/v1/resources", json!({ "name": "fo-r", "group": "fo", "type": "dummy" })).await?;
        c.post("/v1/groups/fo/online", json!({})).await?;
        let mut samples = Vec::new();
        for _ in 0..self.trials {
            let c = cluster.any()?.client()?;
            wait_until("fo online", Duration::from_secs(30), || async {
                owner_state(cluster, &c, "fo").await.is_ok_and(|(_, s)| s == "Online")
            })
            .await?;
            let lead = leader(&c).await?;
            let (owner, _) = owner_state(cluster, &c, "fo").await?;
            let victim = if owner == lead {
                // Put it on a follower first.
                let to = cluster.nodes.iter().find(|n| n.name != lead && n.running()).map(|n| n.name.clone());
                let to = to.ok_or_else(|| anyhow!("no follower"))?;
                move_to(&c, "fo", &to).await?;
                wait_until("fo moved off the leader", Duration::from_secs(30), || async {
                    owner_state(cluster, &c, "fo").await.is_ok_and(|(o, s)| o == to && s == "Online")
                })
                .await?;
                to
            } else {
                owner
            };
            let index = cluster.index(&victim).ok_or_else(|| anyhow!("no node {victim}"))?;
            let killed = Instant::now();
            cluster.nodes[index].signal(nix::sys::signal::Signal::SIGKILL)?;
            let c = cluster.any()?.client()?;
            wait_until("fo online elsewhere", Duration::from_secs(30), || async {
                owner_state(cluster, &c, "fo").await.is_ok_and(|(o, s)| o != victim && s == "Online")
            })
            .await?;
            samples.push(killed.elapsed().as_secs_f64() * 1e3);
            cluster.restart(index)?;
            let back = cluster.nodes[index].client()?;
            wait_until("the killed node rejoins", Duration::from_secs(60), || async {
                back.get("/v1/nodes")
                    .await
                    .is_ok_and(|n| n.as_array().into_iter().flatten().filter(|n| n["state"] == "Up").count() == 3)
            })
            .await?;
        }
        Ok(summary(samples))
    }

    /// Planned moves of a group of one dummy (whose own offline and online take ~0): the time
    /// from the request to Online on the destination is the move's overhead.
    async fn moves(&self, cluster: &LocalCluster) -> Result<Value> {
        let c = cluster.any()?.client()?;
        let mut samples = Vec::new();
        for _ in 0..self.moves {
            let (owner, _) = owner_state(cluster, &c, "fo").await?;
            let to = cluster.nodes.iter().find(|n| n.name != owner && n.running()).map(|n| n.name.clone());
            let to = to.ok_or_else(|| anyhow!("nowhere to move"))?;
            let dest = cluster.node(&to).ok_or_else(|| anyhow!("no node {to}"))?.client()?;
            let started = Instant::now();
            move_to(&c, "fo", &to).await?;
            wait_until("the move", Duration::from_secs(30), || async {
                group(&dest, "fo").await.is_ok_and(|g| g["owner"] == to.as_str() && g["state"] == "Online")
            })
            .await?;
            samples.push(started.elapsed().as_secs_f64() * 1e3);
        }
        Ok(summary(samples))
    }

    /// Both cores busy for `load_seconds`: any owner change or node going Down is a false
    /// failover.
    async fn false_failovers(&self, cluster: &LocalCluster) -> Result<Value> {
        let c = cluster.any()?.client()?;
        let before = c.get("/v1/status").await?["event_seq"].as_u64().unwrap_or(0);
        let (owner_before, _) = owner_state(cluster, &c, "fo").await?;
        let busy: Vec<std::process::Child> = (0..2)
            .map(|_| std::process::Command::new("sh").args(["-c", "while :; do :; done"]).spawn())
            .collect::<std::io::Result<_>>()?;
        tokio::time::sleep(Duration::from_secs(self.load_seconds)).await;
        for mut b in busy {
            let _ = b.kill();
            let _ = b.wait();
        }
        // Node state and owner events since `before`, from the event history.
        let history = events_after(&cluster.any()?.client()?, before).await?;
        let downs = history.iter().filter(|e| e["kind"] == "node_state" && e["state"] == "Down").count();
        let owners = history.iter().filter(|e| e["kind"] == "owner").count();
        let (owner_after, _) = owner_state(cluster, &c, "fo").await?;
        Ok(json!({
            "seconds": self.load_seconds,
            "busy_loops": 2,
            "nodes_marked_down": downs,
            "ownership_changes": owners,
            "owner_unchanged": owner_before == owner_after,
        }))
    }

    /// `drain_resources` dummies in `drain_groups` groups on one node, then `node pause --drain`
    /// until every group is Online on the others.
    async fn drain(&self, cluster: &LocalCluster) -> Result<Value> {
        let node = cluster.nodes.iter().find(|n| n.running()).ok_or_else(|| anyhow!("no node"))?;
        let c = node.client()?;
        let per = self.drain_resources.div_ceil(self.drain_groups.max(1));
        for g in 0..self.drain_groups {
            let name = format!("d{g}");
            c.post("/v1/groups", json!({ "name": name })).await?;
            for r in 0..per {
                c.post("/v1/resources", json!({ "name": format!("d{g}-r{r}"), "group": name, "type": "dummy" }))
                    .await?;
            }
            c.post(&format!("/v1/groups/{name}/online"), json!({})).await?;
        }
        wait_until("the drain groups online", Duration::from_secs(300), || async {
            all_online_on(&c, self.drain_groups, &node.name).await
        })
        .await?;
        let started = Instant::now();
        c.post(&format!("/v1/nodes/{}/pause", node.name), json!({ "drain": true })).await?;
        let others: Vec<Client> = cluster
            .nodes
            .iter()
            .filter(|n| n.name != node.name && n.running())
            .filter_map(|n| n.client().ok())
            .collect();
        wait_until("every group drained", Duration::from_secs(300), || async {
            let mut online = 0;
            for o in &others {
                if let Ok(groups) = o.get("/v1/status").await {
                    let me = groups["node"].clone();
                    online += groups["groups"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|g| g["name"].as_str().is_some_and(|n| n.starts_with('d')))
                        .filter(|g| g["owner"] == me && g["state"] == "Online")
                        .count();
                }
            }
            online == self.drain_groups
        })
        .await?;
        let took = started.elapsed().as_secs_f64();
        c.post(&format!("/v1/nodes/{}/resume", node.name), json!({})).await?;
        Ok(
            json!({ "groups": self.drain_groups, "resources": per * self.drain_groups, "from": node.name, "seconds": took }),
        )
    }
}

async fn all_online_on(c: &Client, groups: usize, node: &str) -> bool {
    let Ok(status) = c.get("/v1/status").await else { return false };
    status["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| {
            g["name"].as_str().is_some_and(|n| n.starts_with('d')) && g["owner"] == node && g["state"] == "Online"
        })
        .count()
        == groups
}

/// The recorded events after `after`, from the node's history.
async fn events_after(client: &crate::client::Client, after: u64) -> Result<Vec<Value>> {
    use futures_util::StreamExt;
    let resp = client.request(reqwest::Method::GET, &format!("/v1/events?after={after}"), None).await?;
    if !resp.status().is_success() {
        anyhow::bail!("{}: events: HTTP {}", client.endpoint(), resp.status());
    }
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let mut out = Vec::new();
    // The history comes first; stop when nothing more arrives for a moment.
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout(Duration::from_millis(300), stream.next()).await {
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
    for line in buf.lines() {
        if let Some(data) = line.strip_prefix("data:")
            && let Ok(v) = serde_json::from_str::<Value>(data.trim())
        {
            out.push(v);
        }
    }
    Ok(out)
}
