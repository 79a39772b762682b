//! Three real `halo node run` processes on loopback: they form a cluster, a move carries its
//! destination and flags to the resource, SIGKILL of the owner fails the group over, and an
//! owner frozen with SIGSTOP has its resource stopped by its host before any other node starts
//! it, then rejoins cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

mod common;

use common::{logged_sleeper_arguments, running, starts, until};

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const HALO: &str = env!("CARGO_BIN_EXE_halo");

struct Node {
    name: String,
    child: Child,
    endpoint: String,
    peer: String,
}

impl Node {
    /// Starts `name`; with `join`, it joins through that peer address with that join token.
    fn start(dir: &Path, name: &str, join: Option<(&str, &str)>) -> Node {
        let data = dir.join(name);
        let mut cmd = Command::new(HALO);
        cmd.args([
            "node",
            "run",
            "--name",
            name,
            "--listen",
            "127.0.0.1:0",
            "--peer-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data);
        if let Some((peer, token)) = join {
            cmd.args(["--join", peer, "--token", token]);
        }
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let mut child = cmd.stdout(Stdio::piped()).stderr(log).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut endpoint = String::new();
        let mut peer = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.split_once("listening on ").map(|(_, r)| r.to_string()) {
                endpoint = rest;
            } else if let Some(rest) = line.split_once("peers on ").map(|(_, r)| r.to_string()) {
                peer = rest;
                break;
            }
        }
        assert!(!endpoint.is_empty() && !peer.is_empty(), "node {name} did not start; see {name}.log");
        // Keep draining stdout so the daemon never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Node { name: name.into(), child, endpoint, peer }
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(HALO).arg("--endpoint").arg(&self.endpoint).args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "halo {args:?} on {} failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.pid(), nix::sys::signal::Signal::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn three(dir: &Path) -> Vec<Node> {
    let first = Node::start(dir, "n1", None);
    let peer = first.peer.clone();
    let token = first.ok(&["node", "token", "create", "--uses", "2"]).trim().to_string();
    let mut nodes = vec![first];
    nodes.push(Node::start(dir, "n2", Some((&peer, &token))));
    nodes.push(Node::start(dir, "n3", Some((&peer, &token))));
    until("three voters, all Up", Duration::from_secs(30), || {
        let list = nodes[0].json(&["node", "list"]);
        let up = list.as_array()?.iter().filter(|n| n["state"] == "Up" && n["role"] == "voter").count();
        (up == 3).then_some(())
    });
    nodes
}

/// The group's owner and epoch as node `n` sees them.
fn owner(n: &Node, group: &str) -> (String, u64) {
    let g = n.json(&["group", "show", group]);
    (g["owner"].as_str().unwrap_or("").to_string(), g["epoch"].as_u64().unwrap_or(0))
}

/// A script resource that appends each call, with its destination, flags and epoch, to `record`.
fn recording_script(dir: &Path, record: &Path) -> String {
    let path = dir.join("recorder.sh");
    let state = dir.join("recorder.up");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\necho \"$1 dest=$HALO_DESTINATION_NODE flags=$HALO_OFFLINE_FLAGS$HALO_ONLINE_FLAGS names=$HALO_OFFLINE_FLAG_NAMES$HALO_ONLINE_FLAG_NAMES epoch=$HALO_EPOCH\" >> {record}\ncase \"$1\" in\n  online) touch {state} ;;\n  offline|terminate) rm -f {state} ;;\n  looks-alive|is-alive) test -f {state} ;;\nesac\n",
            record = record.display(),
            state = state.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

/// Group `g`, created through `node` (which therefore owns it), holding `rec`: a
/// [`recording_script`] resource. Returns the record's path.
fn recorded_group(node: &Node, dir: &Path) -> PathBuf {
    let record = dir.join("record");
    let script = recording_script(dir, &record);
    node.ok(&["group", "create", "g"]);
    node.ok(&[
        "resource",
        "create",
        "rec",
        "--group",
        "g",
        "--type",
        "script",
        "--set",
        &format!("ScriptPath={script}"),
    ]);
    record
}

fn lines_after(record: &Path, skip: usize) -> Vec<String> {
    std::fs::read_to_string(record).unwrap_or_default().lines().skip(skip).map(str::to_string).collect()
}

#[test]
fn a_move_carries_its_destination_and_flags_and_the_epoch_grows() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = three(dir.path());
    // Created through n2: the group belongs to n2.
    let record = recorded_group(&nodes[1], dir.path());
    // Asked of n1, answered by the owner (the request is redirected there).
    nodes[0].ok(&["group", "online", "g", "--wait"]);
    let (first_owner, epoch0) = owner(&nodes[0], "g");
    assert_eq!(first_owner, "n2");

    // Move to n3, coming back on error.
    let seen = lines_after(&record, 0).len();
    nodes[0].ok(&["group", "move", "g", "--node", "n3", "--return-on-error", "--wait", "--timeout", "30s"]);
    let (to, epoch1) = owner(&nodes[0], "g");
    assert_eq!(to, "n3");
    assert!(epoch1 > epoch0, "the epoch grows with the move: {epoch0} -> {epoch1}");
    let calls = lines_after(&record, seen);
    let epoch_of = |line: &str| line.rsplit_once("epoch=").and_then(|(_, e)| e.parse::<u64>().ok()).unwrap();
    let offline = calls.iter().find(|l| l.starts_with("offline")).expect("an offline on the source");
    assert!(
        offline.starts_with(
            "offline dest=n3 flags=0x42 names=RETURN_TO_SOURCE_NODE_ON_ERROR|DO_NOT_UPDATE_PERSISTENT_STATE epoch="
        ),
        "{offline}"
    );
    // The source goes down at the epoch of the record that started the move; the destination
    // comes up at the epoch of the record that handed the group over.
    assert!(epoch0 < epoch_of(offline) && epoch_of(offline) < epoch1, "{epoch0} {offline} {epoch1}");
    let online = calls.iter().find(|l| l.starts_with("online")).expect("an online on the destination");
    assert_eq!(*online, format!("online dest= flags=0x4 names=RETURN_TO_SOURCE_NODE_ON_ERROR epoch={epoch1}"));

    // Placement picks the destination; QUEUE_ENABLED and IGNORE_RESOURCE_STATUS reach the DLL.
    let seen = lines_after(&record, 0).len();
    let accepted = nodes[2].json(&["group", "move", "g", "--queue", "--ignore-locked"]);
    let to = accepted["group"]["moving_to"].as_str().unwrap().to_string();
    assert_ne!(to, "n3");
    until("the group settles on its new owner", Duration::from_secs(30), || {
        let calls = lines_after(&record, seen);
        calls.iter().any(|l| l.starts_with("online")).then_some(())
    });
    let calls = lines_after(&record, seen);
    assert!(
        calls.iter().any(|l| l.starts_with(&format!(
            "offline dest={to} flags=0x45 names=IGNORE_RESOURCE_STATUS|QUEUE_ENABLED|DO_NOT_UPDATE_PERSISTENT_STATE"
        ))),
        "{calls:?}"
    );
    assert!(calls.iter().any(|l| l.starts_with("online dest= flags=0x2 names=IGNORE_RESOURCE_STATUS")), "{calls:?}");

    // A bad destination is refused and changes nothing.
    let out = nodes[0].cli(&["group", "move", "g", "--node", "nowhere"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERROR_CLUSTER_NODE_NOT_FOUND"), "{out:?}");
    assert_eq!(owner(&nodes[0], "g").0, to);
}

#[test]
fn the_owners_death_fails_the_group_over_and_no_two_nodes_run_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = three(dir.path());
    let mark = common::unique_mark("failover");
    nodes[0].ok(&["group", "create", "g"]);
    nodes[0].ok(&[
        "resource",
        "create",
        "sleeper",
        "--group",
        "g",
        "--type",
        "process",
        "--set",
        "Command=/bin/sleep",
        "--set",
        "Arguments=600",
        "--set",
        &format!("Environment=MARK={mark}"),
    ]);
    nodes[0].ok(&["group", "online", "g", "--wait"]);
    assert_eq!(common::wait_marked("sleep", &mark, 1), 1);
    let (_, epoch0) = owner(&nodes[1], "g");

    // SIGKILL of the owner (n1, which also leads): the others elect a leader, wait out n1's
    // lease, and start the group on one of them — never while n1's copy could still run.
    let killed = Instant::now();
    nix::sys::signal::kill(nodes[0].pid(), nix::sys::signal::Signal::SIGKILL).unwrap();
    let _ = nodes[0].child.wait();
    let mut most = 0;
    let new_owner = until("the group online elsewhere", Duration::from_secs(30), || {
        most = most.max(common::count_marked("sleep", &mark));
        let (o, _) = owner(&nodes[1], "g");
        if o == "n1" {
            return None;
        }
        let on = nodes.iter().find(|n| n.name == o)?;
        let g = on.json(&["group", "show", "g"]);
        (g["state"] == "Online").then_some(o)
    });
    let took = killed.elapsed();
    assert!(most <= 1, "two copies ran at once");
    assert_eq!(common::count_marked("sleep", &mark), 1);
    let (_, epoch1) = owner(&nodes[1], "g");
    assert!(epoch1 > epoch0);
    eprintln!("failover to {new_owner} took {took:?}");
    let list = nodes[1].json(&["node", "list"]);
    let n1 = list.as_array().unwrap().iter().find(|n| n["name"] == "n1").unwrap();
    assert_eq!(n1["state"], "Down");
}

#[test]
fn a_frozen_owner_stops_its_group_before_another_node_starts_it_and_rejoins() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = three(dir.path());
    let log = dir.path().join("starts");
    nodes[1].ok(&["group", "create", "g"]);
    let arguments = logged_sleeper_arguments(&log);
    nodes[1].ok(&[
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
    nodes[1].ok(&["group", "online", "g", "--wait"]);
    // Online means started; the first line follows as soon as the shell runs.
    let (_, first) = until("the first start is logged", Duration::from_secs(10), || starts(&log).first().copied());
    assert!(running(first));

    // SIGSTOP the owner's daemon: its host (a separate process) stops the resource when the
    // lease ends; only after that may another node start it.
    nix::sys::signal::kill(nodes[1].pid(), nix::sys::signal::Signal::SIGSTOP).unwrap();
    let frozen = Instant::now();
    let stopped_at = until("the frozen owner's host stops the resource", Duration::from_secs(10), || {
        (!running(first)).then(std::time::SystemTime::now)
    });
    let (second, _) = until("another node starts the group", Duration::from_secs(30), || starts(&log).get(1).copied());
    let stopped_ns = stopped_at.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    assert!(second > stopped_ns, "the second copy started before the first had stopped");
    eprintln!("stopped {:?} after the freeze", frozen.elapsed());

    // Thawed, n2 learns it no longer owns the group, runs nothing of it, and is Up again.
    nix::sys::signal::kill(nodes[1].pid(), nix::sys::signal::Signal::SIGCONT).unwrap();
    until("n2 is Up again", Duration::from_secs(30), || {
        let list = nodes[0].json(&["node", "list"]);
        list.as_array()?.iter().any(|n| n["name"] == "n2" && n["state"] == "Up").then_some(())
    });
    // Its view catches up with the records written while it was frozen.
    until("n2 learns the group's new owner", Duration::from_secs(30), || {
        (owner(&nodes[1], "g").0 != "n2").then_some(())
    });
    assert!(!running(first));
    assert_eq!(starts(&log).len(), 2, "started exactly twice: once per owner");
}

#[test]
fn a_drained_node_gives_its_groups_away_and_failback_brings_them_home() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = three(dir.path());
    for g in ["a", "b", "c"] {
        nodes[0].ok(&["group", "create", g, "--set", "PreferredOwners=n1"]);
        nodes[0].ok(&["resource", "create", &format!("{g}-r"), "--group", g, "--type", "dummy"]);
        nodes[0].ok(&["group", "online", g, "--wait"]);
    }
    let settled_on = |g: &str, want: &dyn Fn(&str) -> bool| {
        let (o, _) = owner(&nodes[1], g);
        let n = nodes.iter().find(|n| n.name == o)?;
        (want(&o) && n.json(&["group", "show", g])["state"] == "Online").then_some(())
    };

    nodes[1].ok(&["node", "pause", "n1", "--drain"]);
    for g in ["a", "b", "c"] {
        until(&format!("group {g} drained off n1"), Duration::from_secs(30), || settled_on(g, &|o| o != "n1"));
    }
    let list = nodes[2].json(&["node", "list"]);
    assert!(list.as_array().unwrap().iter().any(|n| n["name"] == "n1" && n["state"] == "Paused"), "{list}");
    // A paused node takes no group.
    let out = nodes[1].cli(&["group", "move", "a", "--node", "n1"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERROR_CLUSTER_NODE_PAUSED"), "{out:?}");

    // Resumed with failback: the groups that prefer n1 come home.
    nodes[2].ok(&["node", "resume", "n1", "--failback"]);
    for g in ["a", "b", "c"] {
        until(&format!("group {g} back on n1"), Duration::from_secs(30), || settled_on(g, &|o| o == "n1"));
    }

    // The heartbeat timing is a cluster property, checked against its range.
    nodes[1].ok(&["cluster", "set", "HeartbeatInterval=250"]);
    let cluster = nodes[0].json(&["cluster", "show"]);
    assert_eq!(
        (cluster["properties"]["HeartbeatInterval"].clone(), cluster["lease_ms"].clone()),
        (250.into(), 1000.into())
    );
    let out = nodes[0].cli(&["cluster", "set", "HeartbeatThreshold=1"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERROR_CLUSTER_PARAMETER_OUT_OF_BOUNDS"), "{out:?}");
}

#[test]
fn a_node_stopped_with_sigterm_moves_its_groups_away_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = three(dir.path());
    let record = recorded_group(&nodes[2], dir.path());
    nodes[2].ok(&["group", "online", "g", "--wait"]);
    let seen = lines_after(&record, 0).len();
    // A planned stop: a move (OfflineV2 with a destination), not a failover after the lease.
    nix::sys::signal::kill(nodes[2].pid(), nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = nodes[2].child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let calls = lines_after(&record, seen);
    let offline = calls.iter().find(|l| l.starts_with("offline")).expect("an offline on the stopping node");
    assert!(offline.starts_with("offline dest=n") && offline.contains("flags=0x40"), "{offline}");
    let (to, _) = owner(&nodes[0], "g");
    assert!(to == "n1" || to == "n2", "{to}");
    until("the group online on its new node", Duration::from_secs(30), || {
        let n = nodes.iter().find(|n| n.name == to)?;
        (n.json(&["group", "show", "g"])["state"] == "Online").then_some(())
    });
}

/// The messages of the `log` events `n` recorded.
fn logged(n: &Node) -> Vec<String> {
    let out = n.ok(&["--output", "json", "events"]);
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == "log")
        .map(|e| format!("{} {}", e["resource"].as_str().unwrap_or(""), e["message"].as_str().unwrap_or("")))
        .collect()
}

#[test]
fn a_windows_style_dll_is_opened_offline_checks_its_properties_gets_its_in_buffer_and_moves() {
    let dir = tempfile::tempdir().unwrap();
    // The DLL's source, built unchanged against the Windows headers.
    let so = dir.path().join("libdemo_service.so");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cc = Command::new("cc")
        .args(["-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-pthread", "-I"])
        .arg(root.join("include/compat"))
        .arg("-o")
        .arg(&so)
        .arg(root.join("examples/windows-style/demo_service.c"))
        .output()
        .unwrap();
    assert!(cc.status.success(), "{}", String::from_utf8_lossy(&cc.stderr));
    let nodes = three(dir.path());
    let n1 = &nodes[0];
    n1.ok(&["type", "create", "demo", "--native", so.to_str().unwrap(), "--type-name", "Halo Demo Service"]);
    n1.ok(&["group", "create", "g"]);
    n1.ok(&[
        "resource",
        "create",
        "svc",
        "--group",
        "g",
        "--type",
        "demo",
        "--set",
        "ServiceName=web",
        "--set",
        "Port=8081",
    ]);

    // Open while offline, as on Windows: a control code reaches the DLL (CLUS_CHAR_NOT_PREEMPTABLE, 0x4000),
    // not the cluster's default answer (no characteristics).
    let chars = n1.json(&["resource", "control", "svc", "CLUSCTL_RESOURCE_GET_CHARACTERISTICS"]);
    assert_eq!((chars["status"].as_str(), chars["output_hex"].as_str()), (Some("ERROR_SUCCESS"), Some("00400000")));
    assert!(logged(n1).iter().any(|l| l.contains("Open: resource 'svc' is ready")), "{:?}", logged(n1));

    // Its properties go through the DLL: VALIDATE refuses what its table or its own rule refuses,
    // naming its error, and nothing is stored.
    for bad in ["ServiceName=has space", "Port=70000"] {
        let out = n1.cli(&["resource", "set", "svc", bad]);
        assert!(!out.status.success(), "{bad} was accepted");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("refused the properties") && said.contains("ERROR_"), "{said}");
    }
    let shown = n1.json(&["resource", "show", "svc"]);
    assert_eq!(
        (shown["private"]["ServiceName"].as_str(), shown["private"]["Port"].as_str()),
        (Some("web"), Some("8081"))
    );
    n1.ok(&["resource", "set", "svc", "Port=8082"]);

    // Online with an InBuffer: it reaches OnlineV2 as sent (the DLL logs the Epoch it carries),
    // after the DLL's worker reported its checkpoints.
    let input = resapi::PropertyList::new().with("Epoch", resapi::ValueData::ULargeInteger(4242)).encode().unwrap();
    let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
    n1.ok(&["resource", "online", "svc", "--input-hex", &hex, "--wait"]);
    assert!(logged(n1).iter().any(|l| l.contains("ownership epoch 4242")), "{:?}", logged(n1));
    let status = n1.json(&["resource", "control", "svc", "0x01800004", "--output-size", "512"]);
    assert_eq!(status["status"], "ERROR_SUCCESS", "{status}");

    // A move: OfflineV2 gets the destination; the DLL is closed here and opened and online there.
    n1.ok(&["group", "move", "g", "--node", "n2", "--wait"]);
    let here = logged(n1);
    assert!(here.iter().any(|l| l.contains("Offline: destination n2")), "{here:?}");
    assert!(here.iter().any(|l| l.contains("Close: svc")), "{here:?}");
    let there = nodes[1].json(&["resource", "show", "svc"]);
    assert_eq!(there["state"], "Online");
    assert!(logged(&nodes[1]).iter().any(|l| l.contains("Online: web serves on port 8082")), "{:?}", logged(&nodes[1]));
}
