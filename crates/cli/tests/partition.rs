//! A minority partition, in network namespaces this test creates for itself: three nodes, each in
//! its own namespace, joined by a bridge in a fourth. Cutting the owner's link isolates it: it
//! loses its lease and stops its group, and only then does the majority start the group. Healed,
//! the node rejoins and runs nothing of it. Namespaces need root: the test says so and skips
//! without it (CI runs as root).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{logged_sleeper_arguments, running, starts, until};

const HALO: &str = env!("CARGO_BIN_EXE_halo");

/// The namespaces: `<p>hub` with the bridge, `<p>n1`..`<p>n3` with one node each.
struct Net {
    prefix: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Net {
    fn new(nodes: usize) -> Net {
        let prefix = format!("halo{}", std::process::id());
        let net = Net { prefix };
        let hub = net.ns("hub");
        ip(&["netns", "add", &hub]);
        ip(&["netns", "exec", &hub, "ip", "link", "add", "br0", "type", "bridge"]);
        ip(&["netns", "exec", &hub, "ip", "link", "set", "br0", "up"]);
        for i in 1..=nodes {
            let ns = net.ns(&format!("n{i}"));
            let (inner, outer) = ("v0".to_string(), format!("h{i}"));
            ip(&["netns", "add", &ns]);
            ip(&[
                "netns", "exec", &ns, "ip", "link", "add", &inner, "type", "veth", "peer", "name", &outer, "netns",
                &hub,
            ]);
            ip(&["netns", "exec", &hub, "ip", "link", "set", &outer, "master", "br0", "up"]);
            ip(&["netns", "exec", &ns, "ip", "addr", "add", &format!("10.77.0.{i}/24"), "dev", &inner]);
            ip(&["netns", "exec", &ns, "ip", "link", "set", &inner, "up"]);
            ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
        }
        net
    }

    fn ns(&self, what: &str) -> String {
        format!("{}{what}", self.prefix)
    }

    /// Cuts (or restores) node `i`'s link to the bridge.
    fn link(&self, i: usize, up: bool) {
        ip(&["netns", "exec", &self.ns("hub"), "ip", "link", "set", &format!("h{i}"), if up { "up" } else { "down" }]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for what in ["n1", "n2", "n3", "hub"] {
            let _ = Command::new("ip").args(["netns", "del", &self.ns(what)]).output();
        }
    }
}

struct Node {
    ns: String,
    endpoint: String,
    child: Child,
}

impl Node {
    /// Starts node `i`; with `join`, it joins n1 with that join token.
    fn start(net: &Net, dir: &Path, i: usize, join: Option<&str>) -> Node {
        let ns = net.ns(&format!("n{i}"));
        let addr = format!("10.77.0.{i}");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns, HALO, "node", "run", "--name", &format!("n{i}")])
            .args(["--listen", &format!("{addr}:7480"), "--peer-listen", &format!("{addr}:7481"), "--data-dir"])
            .arg(dir.join(format!("n{i}")));
        if let Some(token) = join {
            cmd.args(["--join", "10.77.0.1:7481", "--token", token]);
        }
        let log = std::fs::File::create(dir.join(format!("n{i}.log"))).unwrap();
        let mut child = cmd.stdout(Stdio::piped()).stderr(log).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        // Not loopback: the API is HTTPS (the CLI finds the node's CA and token by itself).
        let endpoint = first.split_once("listening on ").map(|(_, e)| e.trim().to_string());
        assert_eq!(endpoint.as_deref(), Some(format!("https://{addr}:7480").as_str()), "node n{i}: {first}");
        std::thread::spawn(move || for _ in lines {});
        Node { ns, endpoint: endpoint.unwrap_or_default(), child }
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns, HALO, "--endpoint", &self.endpoint])
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "halo {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Option<Value> {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        let out = self.cli(&all);
        out.status.success().then(|| serde_json::from_slice(&out.stdout).ok()).flatten()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // `ip netns exec` replaces itself with halo: the child is the daemon.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_minority_stops_its_groups_and_the_majority_takes_them() {
    // The effective uid, as /proc/self/status gives it.
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        .unwrap_or(false);
    if !root {
        eprintln!("skipped: network namespaces need root (CI runs as root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let net = Net::new(3);
    let mut nodes = vec![Node::start(&net, dir.path(), 1, None)];
    let token = nodes[0].ok(&["node", "token", "create", "--uses", "2"]).trim().to_string();
    nodes.push(Node::start(&net, dir.path(), 2, Some(&token)));
    nodes.push(Node::start(&net, dir.path(), 3, Some(&token)));
    until("three Up voters", Duration::from_secs(60), || {
        let list = nodes[0].json(&["node", "list"])?;
        (list.as_array()?.iter().filter(|n| n["state"] == "Up" && n["role"] == "voter").count() == 3).then_some(())
    });

    // The group lives on n3, which the partition will cut off.
    let log = dir.path().join("starts");
    let arguments = logged_sleeper_arguments(&log);
    nodes[2].ok(&["group", "create", "g"]);
    nodes[2].ok(&[
        "resource",
        "create",
        "sleeper",
        "--group",
        "g",
        "--type",
        "process",
        "--set",
        "Command=/bin/sh",
        "--set",
        &arguments,
    ]);
    nodes[2].ok(&["group", "online", "g", "--wait"]);
    let (_, first) = until("the first start", Duration::from_secs(10), || starts(&log).first().copied());

    net.link(3, false);
    let cut = Instant::now();
    let stopped = until("the minority stops its copy", Duration::from_secs(10), || {
        (!running(first)).then(std::time::SystemTime::now)
    });
    let (started_ns, second) =
        until("the majority starts the group", Duration::from_secs(30), || starts(&log).get(1).copied());
    let stopped_ns = stopped.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    assert!(started_ns > stopped_ns, "the majority started the group before the minority had stopped it");
    eprintln!(
        "minority stopped {:?} after the cut; the majority took over",
        stopped.elapsed().map(|e| cut.elapsed() - e)
    );
    let owner = until("the majority records the new owner", Duration::from_secs(10), || {
        let g = nodes[0].json(&["group", "show", "g"])?;
        let o = g["owner"].as_str()?.to_string();
        (o != "n3").then_some(o)
    });
    assert!(owner == "n1" || owner == "n2");

    // Healed: n3 rejoins, learns it lost the group, and runs nothing of it.
    net.link(3, true);
    until("n3 is Up again", Duration::from_secs(30), || {
        let list = nodes[0].json(&["node", "list"])?;
        list.as_array()?.iter().any(|n| n["name"] == "n3" && n["state"] == "Up").then_some(())
    });
    until("n3 knows the new owner", Duration::from_secs(30), || {
        let g = nodes[2].json(&["group", "show", "g"])?;
        (g["owner"] == owner.as_str()).then_some(())
    });
    assert!(running(second));
    assert_eq!(starts(&log).len(), 2, "started once on each side, never again");
}
