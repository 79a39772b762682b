//! `halo demo`: a three-node cluster on loopback in one command. It runs a web server as a
//! `process` resource behind an HTTP probe, with a `script` witness that records every call it
//! receives; moves the group and shows the destination and flags the witness saw; kills the
//! owner and says how long the failover took; then runs until Ctrl-C and removes everything.

use crate::client::Client;
use crate::local::LocalCluster;
use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// Options of `halo demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct Demo {
    /// Nodes to start.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=7))]
    pub nodes: u32,
    /// Port of the demo web server (it runs on whichever node owns the group).
    #[arg(long, default_value_t = 8480)]
    pub web_port: u16,
    /// Keep the nodes' data directories and logs after Ctrl-C.
    #[arg(long)]
    pub keep: bool,
}

/// `halo demo-web`: the demo's web server (a hidden command: the demo runs it as a resource).
#[derive(Debug, Clone, clap::Args)]
pub struct DemoWeb {
    /// Where to listen.
    #[arg(long)]
    pub listen: std::net::SocketAddr,
}

impl DemoWeb {
    /// Serves "halo demo" until killed.
    pub fn run(&self) -> Result<()> {
        let listen = self.listen;
        tokio::runtime::Runtime::new()?.block_on(async move {
            let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
            let app = axum::Router::new().route(
                "/",
                axum::routing::get(|| async { format!("hello from the halo demo, pid {}\n", std::process::id()) }),
            );
            axum::serve(listener, app).await.context("serving")
        })
    }
}

fn step(text: &str) {
    println!("\n== {text}");
}

impl Demo {
    /// Runs the demo until Ctrl-C.
    pub fn run(&self) -> Result<()> {
        let dir = std::env::temp_dir().join(format!("halo-demo-{}", std::process::id()));
        step(&format!("starting {} nodes on loopback (data and logs in {})", self.nodes, dir.display()));
        let mut cluster = LocalCluster::start(&dir, self.nodes as usize, self.keep)?;
        for n in &cluster.nodes {
            println!("   {}  api {}  peers {}", n.name, n.endpoint, n.peer);
        }
        let rt = tokio::runtime::Runtime::new()?;
        let result = rt.block_on(self.show(&mut cluster, &dir));
        if let Err(e) = &result {
            eprintln!("halo demo: {e:#}");
        }
        step("cleaning up: stopping every node");
        drop(cluster);
        result
    }

    async fn show(&self, cluster: &mut LocalCluster, dir: &Path) -> Result<()> {
        let c = cluster.any()?.client()?;
        let record = dir.join("witness.log");
        let witness = write_witness(dir, &record)?;
        let exe = std::env::current_exe()?.display().to_string();
        let url = format!("http://127.0.0.1:{}/", self.web_port);
        step("creating group web: a web server (process, HTTP probe) and a witness script");
        c.post("/v1/groups", json!({ "name": "web", "properties": { "PersistentState": true } })).await?;
        c.post(
            "/v1/resources",
            json!({ "name": "witness", "group": "web", "type": "script", "private": { "ScriptPath": witness } }),
        )
        .await?;
        c.post(
            "/v1/resources",
            json!({
                "name": "www", "group": "web", "type": "process",
                "properties": { "LooksAlivePollInterval": 500, "IsAlivePollInterval": 1000 },
                "private": {
                    "Command": exe, "Arguments": format!("demo-web --listen 127.0.0.1:{}", self.web_port),
                    "ProbeHttp": url,
                },
                "dependencies": "[witness]",
            }),
        )
        .await?;
        let (_, accepted) = c.post("/v1/groups/web/online", json!({})).await?;
        let owner_endpoint = accepted["endpoint"].as_str().unwrap_or(&cluster.any()?.endpoint).to_string();
        follow(&owner_endpoint, &accepted).await?;
        let owner = owner_of(&c).await?;
        println!("   web is Online on {owner}; {url} answers: {}", fetch(&url).await.unwrap_or_else(|e| e.to_string()));

        step("moving web with RETURN_TO_SOURCE_NODE_ON_ERROR (placement picks the destination)");
        let seen = lines(&record).len();
        let (_, moved) = c.post("/v1/groups/web/move", json!({ "flags": "RETURN_TO_SOURCE_NODE_ON_ERROR" })).await?;
        let to = moved.pointer("/group/moving_to").and_then(Value::as_str).unwrap_or("?").to_string();
        let started = Instant::now();
        wait_online_on(cluster, &c, &to, Duration::from_secs(60)).await?;
        println!("   moved {owner} -> {to} in {:.0} ms; the witness received:", started.elapsed().as_secs_f64() * 1e3);
        for l in lines(&record).iter().skip(seen) {
            println!("     {l}");
        }

        step(&format!("killing the owner, {to}, with SIGKILL"));
        let seen = lines(&record).len();
        let index = cluster.index(&to).ok_or_else(|| anyhow!("no node {to}"))?;
        let killed = Instant::now();
        cluster.nodes[index].signal(nix::sys::signal::Signal::SIGKILL)?;
        let c = cluster.any()?.client()?;
        let new_owner = loop {
            if killed.elapsed() > Duration::from_secs(60) {
                bail!("web did not come back within 60 s");
            }
            let o = owner_of(&c).await.unwrap_or_default();
            if o != to && !o.is_empty() && state_on(cluster, &o).await.as_deref() == Some("Online") {
                break o;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        println!(
            "   web is Online on {new_owner} {:.0} ms after the kill; {url} answers: {}",
            killed.elapsed().as_secs_f64() * 1e3,
            fetch(&url).await.unwrap_or_else(|e| e.to_string())
        );
        for l in lines(&record).iter().skip(seen) {
            println!("     {l}");
        }
        step(&format!("restarting {to}: it rejoins with its data directory"));
        cluster.restart(index)?;
        println!("   {to} is back at {}", cluster.nodes[index].endpoint);
        step("the cluster runs; try: halo --endpoint <api> status | group move web | node pause nX --drain");
        println!("   press Ctrl-C to stop everything");
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("waiting for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
            _ = term.recv() => {}
        }
        Ok(())
    }
}

async fn owner_of(c: &Client) -> Result<String> {
    let g = c.get("/v1/groups/web").await?;
    Ok(g["owner"].as_str().unwrap_or("").to_string())
}

async fn state_on(cluster: &LocalCluster, node: &str) -> Option<String> {
    let n = cluster.node(node)?;
    let g = n.client().ok()?.get("/v1/groups/web").await.ok()?;
    g["state"].as_str().map(str::to_string)
}

async fn wait_online_on(cluster: &LocalCluster, c: &Client, node: &str, limit: Duration) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if owner_of(c).await? == node && state_on(cluster, node).await.as_deref() == Some("Online") {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bail!("web was not Online on {node} within {limit:?}")
}

async fn follow(endpoint: &str, accepted: &Value) -> Result<()> {
    let op = accepted["operation"].as_u64().ok_or_else(|| anyhow!("no operation in {accepted}"))?;
    let c = Client::new(endpoint, crate::client::Output::Json)?;
    let r = c.get(&format!("/v1/operations/{op}?wait=60")).await?;
    match r.pointer("/result/status").and_then(Value::as_str) {
        Some("succeeded") => Ok(()),
        other => bail!("bringing web online: {other:?}: {r}"),
    }
}

async fn fetch(url: &str) -> Result<String> {
    let body = reqwest::get(url).await?.text().await?;
    Ok(body.trim().to_string())
}

fn lines(record: &Path) -> Vec<String> {
    std::fs::read_to_string(record).unwrap_or_default().lines().map(str::to_string).collect()
}

fn write_witness(dir: &Path, record: &Path) -> Result<String> {
    let path = dir.join("witness.sh");
    let up = dir.join("witness.up");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\ncase \"$1\" in\n  online|offline|terminate) echo \"$1 destination=${{HALO_DESTINATION_NODE:--}} flags=${{HALO_OFFLINE_FLAGS}}${{HALO_ONLINE_FLAGS}} ${{HALO_OFFLINE_FLAG_NAMES}}${{HALO_ONLINE_FLAG_NAMES}} epoch=$HALO_EPOCH\" >> {record} ;;\nesac\ncase \"$1\" in\n  online) touch {up} ;;\n  offline|terminate) rm -f {up} ;;\n  looks-alive|is-alive) test -f {up} ;;\nesac\n",
            record = record.display(),
            up = up.display()
        ),
    )?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path.display().to_string())
}
