//! The node daemon end to end: a real `halo node run` process driven through the CLI and the
//! HTTP API — round trips, persistent state across SIGTERM and SIGKILL, and a table of bad input
//! each answered with its error while nothing is lost.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

use futures_util::StreamExt;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

mod common;

use common::running;

const HALO: &str = env!("CARGO_BIN_EXE_halo");

struct Node {
    child: Child,
    endpoint: String,
    /// An admin API token, for requests made without the CLI.
    token: String,
}

impl Node {
    /// Starts a daemon on a port the kernel picks and returns once it says where it listens.
    fn start(dir: &Path) -> Node {
        let mut child = Command::new(HALO)
            .args(["node", "run", "--name", "n1", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let endpoint = listening_on(&mut child);
        let mut node = Node { child, endpoint, token: String::new() };
        // The CLI finds the node's local credential by itself; raw requests get a token of their own.
        let created = node.json(&["token", "create", "--name", "tests", "--role", "admin"]);
        node.token = created["token"].as_str().unwrap().to_string();
        node
    }

    /// An HTTP client that sends the token.
    fn http(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {}", self.token).parse().unwrap());
        reqwest::Client::builder().default_headers(headers).build().unwrap()
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(HALO).arg("--endpoint").arg(&self.endpoint).args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "halo {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    fn signal(&mut self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig).unwrap();
        self.child.wait().unwrap();
    }

    /// Waits (through the event stream) until every named resource is in `state`.
    async fn until_all(&self, names: &[&str], state: &str) {
        let url = format!("{}/v1/events?after=0", self.endpoint);
        let resp = self.http().get(url).send().await.unwrap();
        let mut stream = resp.bytes_stream();
        let mut buf = String::new();
        let mut current = std::collections::BTreeMap::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let status: Value =
                serde_json::from_str(&String::from_utf8_lossy(&self.cli(&["--output", "json", "status"]).stdout))
                    .unwrap_or_default();
            for r in status["resources"].as_array().into_iter().flatten() {
                current.insert(
                    r["name"].as_str().unwrap_or("").to_string(),
                    r["state"].as_str().unwrap_or("").to_string(),
                );
            }
            if names.iter().all(|n| current.get(*n).map(String::as_str) == Some(state)) {
                return;
            }
            // Wait for the next event before looking again.
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(Ok(chunk))) => buf.push_str(&String::from_utf8_lossy(&chunk)),
                _ => panic!("{names:?} never all {state}: {current:?}"),
            }
        }
    }
}

/// The endpoint from the daemon's "halo node NAME listening on http://ADDRESS" line, read with a
/// deadline; the rest of its output is drained so that later prints never meet a closed pipe.
/// The exit status of `child`, awaited on a thread, if it exits within `limit`.
fn exit_within(mut child: Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait()));
    rx.recv_timeout(limit).ok().and_then(Result::ok)
}

fn listening_on(child: &mut Child) -> String {
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = stdout.lines();
        let _ = tx.send(lines.next());
        lines.for_each(drop);
    });
    let line = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Some(Ok(line))) => line,
        other => panic!("the daemon never said where it listens: {other:?}"),
    };
    let endpoint = line.split_once(" listening on ").map(|(_, e)| e.trim().to_string());
    let endpoint = endpoint.unwrap_or_else(|| panic!("daemon said {line:?}"));
    assert!(endpoint.starts_with("http://127.0.0.1:") && !endpoint.ends_with(":0"), "daemon said {line:?}");
    endpoint
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POSTs `body` over a raw connection to `endpoint`; returns the HTTP status and the response
/// body.
fn post_raw(node: &Node, path: &str, body: String) -> (u16, String) {
    use std::io::{Read, Write};
    let address = node.endpoint.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        node.token,
        body.len()
    );
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        // The node may close the connection early; that is the point.
        let _ = writer.write_all(head.as_bytes()).and_then(|_| writer.write_all(body.as_bytes()));
    });
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let _ = sender.join();
    let text = String::from_utf8_lossy(&response).into_owned();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, text)
}

/// A `process` resource running `sleep` in group `g`, online; returns its pid.
fn start_sleeper(node: &Node, pidfile: &Path) -> i32 {
    node.ok(&["group", "create", "g"]);
    let args = format!("Arguments=-c 'echo $$ > {}; exec sleep 600'", pidfile.display());
    let probe = format!("ProbeCommand=test -s {}", pidfile.display());
    node.ok(&[
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
        &args,
        "--set",
        &probe,
    ]);
    node.ok(&["group", "online", "g", "--wait"]);
    std::fs::read_to_string(pidfile).unwrap().trim().parse().unwrap()
}

#[tokio::test]
async fn cli_and_api_round_trips_and_persistent_state_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path());
    node.ok(&["group", "create", "web"]);
    node.ok(&["resource", "create", "disk", "--group", "web", "--type", "dummy", "--set", "OnlineDelayMs=50"]);
    node.ok(&["resource", "create", "app", "--group", "web", "--type", "dummy", "--set", "RestartThreshold=5"]);
    node.ok(&["resource", "depend", "app", "[disk]"]);
    node.ok(&["resource", "create", "idle", "--group", "web", "--type", "dummy"]);
    node.ok(&["resource", "online", "app", "--wait"]);
    let status = node.json(&["status"]);
    let state = |s: &Value, n: &str| {
        s["resources"].as_array().unwrap().iter().find(|r| r["name"] == n).unwrap()["state"].clone()
    };
    assert_eq!(
        (state(&status, "app"), state(&status, "disk"), state(&status, "idle")),
        (json!("Online"), json!("Online"), json!("Offline"))
    );
    let app = node.json(&["resource", "show", "app"]);
    assert_eq!((app["common"]["RestartThreshold"].clone(), app["dependencies"].clone()), (json!("5"), json!("[disk]")));
    let table = node.ok(&["status"]);
    assert!(table.contains("GROUPS") && table.contains("web") && table.contains("PartialOnline"), "{table}");
    assert!(node.ok(&["type", "list"]).contains("ocf"));
    assert!(node.ok(&["events"]).contains("app (web) -> Online"));

    // SIGTERM: groups go offline without touching persistent state; the next start restores them.
    node.signal(nix::sys::signal::Signal::SIGTERM);
    let node = Node::start(dir.path());
    node.until_all(&["app", "disk"], "Online").await;
    assert_eq!(state(&node.json(&["status"]), "idle"), json!("Offline"));
    drop(node);

    // SIGKILL: the next start brings them back too.
    let mut node = Node::start(dir.path());
    node.until_all(&["app", "disk"], "Online").await;
    node.signal(nix::sys::signal::Signal::SIGKILL);
    let node = Node::start(dir.path());
    node.until_all(&["app", "disk"], "Online").await;
}

#[tokio::test]
async fn a_killed_daemon_leaves_no_resource_running() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let mut node = Node::start(&dir.path().join("data"));
    let pid = start_sleeper(&node, &pidfile);
    node.signal(nix::sys::signal::Signal::SIGKILL);
    // The host sees its parent gone and stops the process group; the lease is the backstop.
    let gone = (0..500).any(|_| {
        let running = running(pid);
        if running {
            std::thread::sleep(Duration::from_millis(10));
        }
        !running
    });
    assert!(gone, "pid {pid} outlived the daemon by 5 s");
}

#[tokio::test]
async fn bad_input_gets_its_error_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    node.ok(&["group", "create", "g"]);
    node.ok(&["group", "create", "h"]);
    node.ok(&["resource", "create", "a", "--group", "g", "--type", "dummy"]);
    node.ok(&["resource", "create", "b", "--group", "g", "--type", "dummy"]);
    node.ok(&["resource", "create", "x", "--group", "h", "--type", "dummy"]);
    node.ok(&["resource", "depend", "a", "[b]"]);
    let before = node.json(&["status"]);

    let http = node.http();
    let url = |p: &str| format!("{}{p}", node.endpoint);
    let check = |resp: reqwest::Response, http_status: u16, error: &'static str| async move {
        let got = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        assert_eq!((got, body["error"].as_str().unwrap_or("")), (http_status, error), "{body}");
        assert!(!body["message"].as_str().unwrap_or("").is_empty());
    };
    // Each refused with its error: (method, path, body, HTTP status, ERROR_*).
    let cases = [
        ("POST", "/v1/resources/a/offline", json!({ "flags": "0x80" }), 400, "ERROR_INVALID_PARAMETER"),
        (
            "POST",
            "/v1/resources",
            json!({ "name": "n", "group": "g", "type": "nope" }),
            404,
            "ERROR_CLUSTER_RESOURCE_TYPE_NOT_FOUND",
        ),
        ("PUT", "/v1/resources/b/dependencies", json!({ "expression": "[a]" }), 400, "ERROR_CIRCULAR_DEPENDENCY"),
        ("PUT", "/v1/resources/b/dependencies", json!({ "expression": "[x]" }), 400, "ERROR_DEPENDENCY_NOT_ALLOWED"),
        (
            "PUT",
            "/v1/resources/a/properties",
            json!({ "common": { "RestartAction": 7 } }),
            400,
            "ERROR_CLUSTER_PARAMETER_OUT_OF_BOUNDS",
        ),
    ];
    for (method, path, body, status, error) in cases {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        check(http.request(method, url(path)).json(&body).send().await.unwrap(), status, error).await;
    }
    // Malformed JSON.
    check(
        http.post(url("/v1/groups"))
            .header("content-type", "application/json")
            .body("{\"name\": ")
            .send()
            .await
            .unwrap(),
        400,
        "ERROR_INVALID_PARAMETER",
    )
    .await;
    // A 10 MB body: the node answers before the client has finished sending, so read the
    // answer on its own while a thread writes.
    let (code, body) = post_raw(&node, "/v1/groups", format!("{{\"name\": \"{}\"}}", "x".repeat(10 * 1024 * 1024)));
    assert_eq!(code, 413, "{body}");
    assert!(body.contains("ERROR_INSUFFICIENT_BUFFER"), "{body}");
    // Unknown objects and endpoints.
    check(http.get(url("/v1/resources/nope")).send().await.unwrap(), 404, "ERROR_RESOURCE_NOT_FOUND").await;
    // The CLI reports the error's name and fails.
    let out = node.cli(&["resource", "depend", "b", "[a]"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERROR_CIRCULAR_DEPENDENCY (1059)"));
    // A second daemon on the same data directory is refused with a clear error.
    let second = Command::new(HALO)
        .args(["node", "run", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("in use by another halo node"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    // Nothing was lost or changed.
    let mut after = node.json(&["status"]);
    after["event_seq"] = before["event_seq"].clone();
    assert_eq!(before, after);
    let spec: Value = http.get(url("/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
}

#[tokio::test]
async fn apply_converges_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data"));
    let file = dir.path().join("cluster.toml");
    std::fs::write(
        &file,
        r#"
[[group]]
name = "g"
online = true

[[resource]]
name = "db"
group = "g"
type = "dummy"

[[resource]]
name = "app"
group = "g"
type = "dummy"
depends = "[db]"
properties = { RestartThreshold = 4 }
private = { OnlineDelayMs = 10 }
"#,
    )
    .unwrap();
    let first = node.ok(&["apply", "-f", file.to_str().unwrap()]);
    assert!(
        first.contains("+ group g") && first.contains("+ resource db") && first.contains("+ resource app"),
        "{first}"
    );
    assert!(first.contains("> online group g"), "{first}");
    node.until_all(&["db", "app"], "Online").await;
    let second = node.ok(&["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(second.trim(), "no changes");
    // A changed property is reported and applied; nothing else moves.
    std::fs::write(
        &file,
        std::fs::read_to_string(&file).unwrap().replace("RestartThreshold = 4", "RestartThreshold = 6"),
    )
    .unwrap();
    let third = node.ok(&["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(third.trim(), "~ resource app: RestartThreshold = \"6\"");
    assert_eq!(node.json(&["resource", "show", "app"])["common"]["RestartThreshold"], "6");
    // Group properties converge too, and are checked against their range.
    std::fs::write(
        &file,
        std::fs::read_to_string(&file)
            .unwrap()
            .replace("online = true", "online = true\nproperties = { Priority = 3000 }"),
    )
    .unwrap();
    let fourth = node.ok(&["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(fourth.trim(), "~ group g: Priority = \"3000\"");
    let out = node.cli(&["group", "set", "g", "Priority=9999"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERROR_CLUSTER_PARAMETER_OUT_OF_BOUNDS"), "{out:?}");
    assert_eq!(node.json(&["group", "show", "g"])["common"]["Priority"], "3000");
    // A bad file is refused with the reason, before anything changes.
    std::fs::write(&file, "[[group]]\nname = \"x\"\ncolour = \"red\"\n").unwrap();
    let out = node.cli(&["apply", "-f", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("colour"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_example_configuration_parses_and_completions_print() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/halo.toml");
    // A dry run against no node fails only at the network: the file itself must parse.
    let out = Command::new(HALO)
        .args(["--endpoint", "http://127.0.0.1:9", "apply", "--dry-run", "-f"])
        .arg(&example)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach halo"), "{err}");
    let out = Command::new(HALO).args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("_halo"));
}

#[tokio::test]
async fn control_codes_and_forced_termination_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data"));
    node.ok(&["group", "create", "g"]);
    node.ok(&["resource", "create", "r", "--group", "g", "--type", "dummy", "--set", "RestartThreshold=9"]);
    node.ok(&["resource", "online", "r", "--wait"]);
    let control = |body: Value| {
        let url = format!("{}/v1/resources/r/control", node.endpoint);
        let http = node.http();
        async move { http.post(url).json(&body).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let resp = control(json!({ "code": "CLUSCTL_RESOURCE_GET_COMMON_PROPERTIES" })).await;
    assert_eq!(resp["status"], "ERROR_SUCCESS");
    assert_eq!(resp["properties"]["RestartThreshold"], "9");
    let resp = control(json!({ "code": 0x0100_0005u32, "output_size": 1 })).await;
    assert_eq!((resp["status"].clone(), resp["bytes_returned"].clone()), (json!("ERROR_MORE_DATA"), json!(4)));

    // FORCE_WITH_TERMINATION skips the graceful offline.
    node.ok(&["resource", "offline", "r", "--wait", "--flags", "FORCE_WITH_TERMINATION"]);
    let events = node.ok(&["events"]);
    assert!(events.contains("r (g) -> Offline [ERROR_SUCCESS (0)] Terminated"), "{events}");
}

#[tokio::test]
async fn a_frozen_daemon_loses_its_lease_and_its_resources_stop() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let node = Node::start(&dir.path().join("data"));
    let pid = start_sleeper(&node, &pidfile);
    // SIGSTOP: the daemon is alive but silent, so its ownership lease (HeartbeatInterval ×
    // HeartbeatThreshold = 800 ms by default) runs out and the host stops everything on its own —
    // the self-fencing the cluster relies on.
    let daemon = nix::unistd::Pid::from_raw(node.child.id() as i32);
    nix::sys::signal::kill(daemon, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let frozen = std::time::Instant::now();
    let mut stopped_after = None;
    while frozen.elapsed() < Duration::from_secs(15) {
        if !running(pid) {
            stopped_after = Some(frozen.elapsed());
            break;
        }
        // Nothing to await: the process is not ours, and its death is the event.
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(daemon, nix::sys::signal::Signal::SIGCONT).unwrap();
    let after = stopped_after.expect("the resource kept running under a frozen daemon");
    // The lease ran from the last heartbeat before the freeze, so the host's deadline fell
    // within one lease of it (plus the time to kill a process).
    assert!(after <= Duration::from_millis(1500), "stopped after {after:?}: the lease is 800 ms");
    // Thawed, the daemon sees the lease expiry and brings the resource back (it should be online).
    node.until_all(&["sleeper"], "Online").await;
}

#[tokio::test]
async fn a_native_plugin_type_is_declared_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let so = common::compile_sample(dir.path());
    let record = dir.path().join("record");
    let node = Node::start(&dir.path().join("data"));
    node.ok(&[
        "type",
        "create",
        "sample",
        "--native",
        &so,
        "--type-name",
        "halo-sample",
        "--set",
        "LooksAlivePollInterval=1000",
    ]);
    assert!(node.ok(&["type", "list"]).contains("native"));
    node.ok(&["group", "create", "g"]);
    let record_prop = format!("RecordFile={}", record.display());
    node.ok(&[
        "resource",
        "create",
        "s",
        "--group",
        "g",
        "--type",
        "sample",
        "--set",
        &record_prop,
        "--set",
        "Checkpoints=2",
    ]);
    node.ok(&["resource", "online", "s", "--wait"]);
    node.ok(&["resource", "offline", "s", "--wait"]);
    let lines = std::fs::read_to_string(&record).unwrap();
    // The input buffer is the property list carrying the group's epoch (ULARGE_INTEGER "Epoch":
    // 44 bytes), halo's documented extension.
    assert!(lines.contains("online flags=0x0 inbuffer=44 checkpoints=2"), "{lines}");
    assert!(lines.contains("offline destination=(none) flags=0x0"), "{lines}");
    // In use, it cannot go; a missing plug-in is refused up front.
    let out = node.cli(&["type", "delete", "sample"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERROR_CLUSTER_RESOURCE_TYPE_BUSY"), "{out:?}");
    let out = node.cli(&["type", "create", "ghost", "--native", "/nonexistent/libghost.so"]);
    assert!(!out.status.success());
}

/// Sends `method path` with an optional JSON body; returns the status and the body as JSON (or
/// Null with the raw text in the panic message when it is not JSON).
async fn call(node: &Node, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = node.http().request(method, format!("{}{path}", node.endpoint));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let code = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (code, serde_json::from_str(&text).unwrap_or_else(|_| json!({ "not json": text })))
}

/// Asserts an error document with `error` whose message mentions every one of `mentions`.
fn assert_error(got: (u16, Value), http: u16, error: &str, mentions: &[&str]) {
    let (code, body) = got;
    assert_eq!((code, body["error"].as_str().unwrap_or("")), (http, error), "{body}");
    assert!(body["code"].is_u64(), "{body}");
    let message = body["message"].as_str().unwrap_or("");
    for m in mentions {
        assert!(message.contains(m), "{message:?} does not mention {m:?}");
    }
}

#[tokio::test]
async fn unknown_fields_are_refused_and_every_error_is_a_json_document() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    let e = &node;
    node.ok(&["group", "create", "g"]);
    node.ok(&["resource", "create", "r", "--group", "g", "--type", "dummy"]);
    let invalid = "ERROR_INVALID_PARAMETER";
    // Misspelt or unknown fields in every body are refused, naming the field and the allowed ones.
    let bodies = [
        ("POST", "/v1/groups", json!({ "name": "g2", "propertis": { "Priority": 1 } }), "propertis", "properties"),
        (
            "POST",
            "/v1/resources",
            json!({ "name": "r2", "group": "g", "type": "dummy", "depends": "[r]" }),
            "depends",
            "dependencies",
        ),
        ("PUT", "/v1/groups/g/properties", json!({ "commom": { "Priority": 1 } }), "commom", "common"),
        ("PUT", "/v1/resources/r/properties", json!({ "privat": { "X": "1" } }), "privat", "private"),
        ("PUT", "/v1/resources/r/dependencies", json!({ "expresion": "" }), "expresion", "expression"),
        ("POST", "/v1/resources/r/online", json!({ "flag": "0" }), "flag", "flags"),
        ("POST", "/v1/types", json!({ "name": "t", "path": "/x.so", "typename": "t" }), "typename", "type_name"),
        ("POST", "/v1/resources/r/control", json!({ "code": 1, "input": "" }), "input", "input_hex"),
    ];
    for (method, path, body, field, allowed) in bodies {
        assert_error(call(e, method, path, Some(body)).await, 400, invalid, &[field, allowed]);
    }
    assert_error(call(e, "GET", "/v1/groups/g2", None).await, 404, "ERROR_GROUP_NOT_FOUND", &[]);
    assert_error(call(e, "GET", "/v1/resources/r2", None).await, 404, "ERROR_RESOURCE_NOT_FOUND", &[]);
    // Path and query errors, unknown endpoints and wrong methods answer the JSON document too.
    assert_error(call(e, "GET", "/v1/operations/abc", None).await, 400, invalid, &["abc"]);
    assert_error(call(e, "GET", "/v1/operations/1?wait=-1", None).await, 400, invalid, &["wait"]);
    assert_error(call(e, "DELETE", "/v1/resources/r?force=maybe", None).await, 400, invalid, &["force"]);
    assert_error(call(e, "GET", "/v1/nothing", None).await, 404, "ERROR_INVALID_FUNCTION", &["/v1/nothing"]);
    assert_error(call(e, "DELETE", "/v1/status", None).await, 405, "ERROR_INVALID_FUNCTION", &["DELETE", "GET"]);
    assert_error(
        call(e, "PATCH", "/v1/groups", None).await,
        405,
        "ERROR_INVALID_FUNCTION",
        &["PATCH", "GET, HEAD, POST"],
    );
    // Nothing was created by the refused requests.
    assert_eq!(node.json(&["resource", "show", "r"])["dependencies"], "");
}

#[tokio::test]
async fn property_values_are_checked_and_lists_are_multi_strings() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    let e = &node;
    node.ok(&["group", "create", "g"]);
    node.ok(&["resource", "create", "r", "--group", "g", "--type", "dummy"]);
    let invalid = "ERROR_INVALID_PARAMETER";
    // Numbers with spaces around them or a '+' are refused, naming the property and the fix.
    for (path, body, prop, fixed) in [
        ("/v1/resources/r/properties", json!({ "common": { "RestartThreshold": " 5" } }), "RestartThreshold", "\"5\""),
        ("/v1/resources/r/properties", json!({ "private": { "OnlineDelayMs": "+5" } }), "OnlineDelayMs", "\"5\""),
        ("/v1/groups/g/properties", json!({ "common": { "Priority": "3000 " } }), "Priority", "\"3000\""),
    ] {
        assert_error(call(e, "PUT", path, Some(body)).await, 400, invalid, &[prop, fixed]);
    }
    let r = node.json(&["resource", "show", "r"]);
    assert!(r["common"].get("RestartThreshold").is_none() && r["private"].get("OnlineDelayMs").is_none(), "{r}");
    // Text that is not a number keeps its spaces (an OCF resource takes any parameter).
    node.ok(&["resource", "create", "o", "--group", "g", "--type", "ocf", "--set", "Agent=heartbeat:Dummy"]);
    let (code, body) =
        call(e, "PUT", "/v1/resources/o/properties", Some(json!({ "private": { "Note": " a b " } }))).await;
    assert_eq!((code, body["private"]["Note"].clone()), (200, json!(" a b ")), "{body}");
    // A JSON array of strings is a MULTI_SZ, stored as apply stores a TOML array: one per line.
    let (code, body) = call(
        e,
        "PUT",
        "/v1/groups/g/properties",
        Some(json!({ "common": { "AntiAffinityClassNames": ["sql", "web"] } })),
    )
    .await;
    assert_eq!((code, body["common"]["AntiAffinityClassNames"].clone()), (200, json!("sql\nweb")), "{body}");
    let (code, body) = call(
        e,
        "POST",
        "/v1/resources",
        Some(json!({ "name": "m", "group": "g", "type": "ocf", "private": { "Agent": "heartbeat:Dummy", "List": ["a", "b"] } })),
    )
    .await;
    assert_eq!((code, body["private"]["List"].clone()), (201, json!("a\nb")), "{body}");
    // Arrays of anything else, and strings a list cannot hold, are refused with the reason.
    for (value, mentions) in [
        (json!([1, 2]), vec!["AntiAffinityClassNames", "strings"]),
        (json!(["a", ["b"]]), vec!["AntiAffinityClassNames", "strings"]),
        (json!(["a", ""]), vec!["AntiAffinityClassNames", "empty"]),
        (json!(["a\nb"]), vec!["AntiAffinityClassNames", "line"]),
        (json!({ "a": 1 }), vec!["AntiAffinityClassNames", "list of strings"]),
        (json!(-1), vec!["AntiAffinityClassNames", "number"]),
    ] {
        let body = json!({ "common": { "AntiAffinityClassNames": value } });
        assert_error(call(e, "PUT", "/v1/groups/g/properties", Some(body)).await, 400, invalid, &mentions);
    }
    assert_eq!(node.json(&["group", "show", "g"])["common"]["AntiAffinityClassNames"], "sql\nweb");
}

#[tokio::test]
async fn names_must_start_with_a_letter_or_digit() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    let e = &node;
    node.ok(&["group", "create", "g"]);
    let invalid = "ERROR_INVALID_PARAMETER";
    let grammar = "starting with a letter or digit";
    for bad in [".", "..", "-", "--help", "-x", ".hidden", "_x"] {
        let got = call(e, "POST", "/v1/groups", Some(json!({ "name": bad }))).await;
        assert_error(got, 400, invalid, &[&format!("{bad:?}"), grammar]);
        let got = call(e, "POST", "/v1/resources", Some(json!({ "name": bad, "group": "g", "type": "dummy" }))).await;
        assert_error(got, 400, invalid, &[&format!("{bad:?}"), grammar]);
        let got = call(e, "POST", "/v1/types", Some(json!({ "name": bad, "path": "/x.so" }))).await;
        assert_error(got, 400, invalid, &[&format!("{bad:?}"), grammar]);
    }
    // Dots, dashes and underscores after the first character are fine.
    node.ok(&["group", "create", "web-1.a_b"]);
    node.ok(&["group", "create", "9lives"]);
    let groups = node.json(&["group", "list"]);
    assert_eq!(groups.as_array().unwrap().len(), 3, "{groups}");
}

#[tokio::test]
async fn the_cli_reports_errors_that_are_not_json() {
    // A proxy in front of the node answers with text of its own.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for (stream, body) in listener.incoming().zip(["bad gateway from the proxy", ""]) {
            let mut stream = stream.unwrap();
            let _ = stream.read(&mut [0; 4096]);
            let answer = format!(
                "HTTP/1.1 502 Bad Gateway\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    for expected in ["HTTP 502 Bad Gateway: bad gateway from the proxy", "HTTP 502 Bad Gateway (no body)"] {
        let out = Command::new(HALO).args(["--endpoint", &endpoint, "group", "list"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains(expected) && !err.contains("(0)"), "{err}");
    }
}

#[tokio::test]
async fn apply_takes_groups_offline_and_prunes_what_the_file_no_longer_names() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data"));
    let file = dir.path().join("cluster.toml");
    let path = file.to_str().unwrap();
    let group = |name: &str, online: &str| format!("[[group]]\nname = \"{name}\"\n{online}\n");
    let resource = |name: &str, group: &str, depends: &str| {
        format!("[[resource]]\nname = \"{name}\"\ngroup = \"{group}\"\ntype = \"dummy\"\ndepends = \"{depends}\"\n")
    };
    let everything = [
        group("g", "online = true"),
        group("h", ""),
        resource("a", "g", "[b]"),
        resource("b", "g", ""),
        resource("c", "h", ""),
    ];
    std::fs::write(&file, everything.concat()).unwrap();
    node.ok(&["apply", "-f", path]);
    node.until_all(&["a", "b"], "Online").await;

    // online = false takes the online group offline.
    std::fs::write(&file, everything.concat().replace("online = true", "online = false")).unwrap();
    let out = node.ok(&["apply", "-f", path]);
    assert_eq!(out.trim(), "< offline group g");
    node.until_all(&["a", "b"], "Offline").await;
    assert_eq!(node.ok(&["apply", "-f", path]).trim(), "no changes");

    // Without --prune, objects the file no longer names stay; --dry-run --prune only prints them.
    std::fs::write(&file, [group("g", "online = true"), resource("a", "g", "")].concat()).unwrap();
    let out = node.ok(&["apply", "--dry-run", "--prune", "-f", path]);
    for line in ["- resource b", "- resource c", "- group h", "> online group g"] {
        assert!(out.contains(line), "{out}");
    }
    assert_eq!(node.json(&["resource", "list"]).as_array().unwrap().len(), 3);
    let out = node.ok(&["apply", "-f", path]);
    assert!(!out.contains("- "), "{out}");
    node.until_all(&["a", "b"], "Online").await;
    // --prune removes them (online ones too), after printing them.
    let out = node.ok(&["apply", "--prune", "-f", path]);
    for line in ["- resource b", "- resource c", "- group h"] {
        assert!(out.contains(line), "{out}");
    }
    let names =
        |v: Value| v.as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(names(node.json(&["resource", "list"])), ["a"]);
    assert_eq!(names(node.json(&["group", "list"])), ["g"]);
    assert_eq!(node.ok(&["apply", "--prune", "-f", path]).trim(), "no changes");
}

#[tokio::test]
async fn the_same_file_applied_by_several_clients_at_once_succeeds_for_all() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data"));
    let file = dir.path().join("cluster.toml");
    let mut text = String::from("[[group]]\nname = \"g\"\nonline = true\nproperties = { Priority = 3000 }\n");
    for i in 0..6 {
        let depends = if i == 0 { String::new() } else { format!("[r{}]", i - 1) };
        text.push_str(&format!(
            "[[resource]]\nname = \"r{i}\"\ngroup = \"g\"\ntype = \"dummy\"\ndepends = \"{depends}\"\nprivate = {{ OnlineDelayMs = {} }}\n",
            i * 10
        ));
    }
    std::fs::write(&file, text).unwrap();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            Command::new(HALO)
                .args(["--endpoint", &node.endpoint, "apply", "-f"])
                .arg(&file)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Each awaited on a thread, with a deadline: a request the node never answers must fail the
    // test, not hang it.
    let (tx, rx) = std::sync::mpsc::channel();
    for c in clients {
        let tx = tx.clone();
        std::thread::spawn(move || tx.send(c.wait_with_output().unwrap()));
    }
    for _ in 0..4 {
        let out = rx.recv_timeout(Duration::from_secs(60)).expect("an apply never finished");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    node.until_all(&["r0", "r1", "r2", "r3", "r4", "r5"], "Online").await;
    assert_eq!(node.json(&["resource", "show", "r5"])["dependencies"], "[r4]");
    // A different object of the same name is still an error, naming what differs.
    std::fs::write(&file, "[[group]]\nname = \"x\"\n[[resource]]\nname = \"r0\"\ngroup = \"x\"\ntype = \"dummy\"\n")
        .unwrap();
    let out = node.cli(&["apply", "-f", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("resource r0 exists"), "{out:?}");
}

/// Runs `script` with `sh -c`, with HALO set to the binary.
fn sh(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(script).env("HALO", HALO).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

#[tokio::test]
async fn output_into_a_closed_pipe_ends_quietly() {
    // The completions are larger than a pipe holds, so most are written after head has gone.
    let out = sh("\"$HALO\" completions bash | head -1").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !err.contains("panicked"), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);

    // Events: head takes the first line and goes; the next event is written into a closed pipe.
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    node.ok(&["group", "create", "g0"]);
    let child = sh(&format!("\"$HALO\" --endpoint {} events --follow | head -1", node.endpoint)).spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output().unwrap()));
    let mut made = 1;
    let out = loop {
        // Each new group is an event for `halo events` to print, until it notices the pipe.
        if let Ok(out) = rx.try_recv() {
            break out;
        }
        assert!(made < 2000, "halo events never ended");
        node.ok(&["group", "create", &format!("g{made}")]);
        made += 1;
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !err.contains("panicked"), "{err}");
}

#[tokio::test]
async fn a_second_signal_stops_the_daemon_without_waiting_for_groups() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(HALO)
        .args(["node", "run", "--name", "n1", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let node = Node { endpoint: listening_on(&mut child), child, token: String::new() };
    node.ok(&["group", "create", "g"]);
    node.ok(&["resource", "create", "slow", "--group", "g", "--type", "dummy", "--set", "OfflineDelayMs=600000"]);
    node.ok(&["resource", "online", "slow", "--wait"]);
    let pid = nix::unistd::Pid::from_raw(node.child.id() as i32);
    let mut seen = Vec::new();
    let mut until = |what: &str| loop {
        let line = lines.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("no {what:?} in {seen:#?}"));
        seen.push(line.clone());
        if line.contains(what) {
            return;
        }
    };
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    // The first signal is being handled (a second one sent earlier could merge with it).
    until("shutting down");
    let second = std::time::Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    until("second signal: stopping now without waiting for groups");
    let mut node = node;
    let child = std::mem::replace(&mut node.child, Command::new("true").spawn().unwrap());
    let status = exit_within(child, Duration::from_secs(20)).expect("the daemon kept waiting for its groups");
    assert!(!status.success(), "{status:?}");
    assert!(second.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn wait_gives_up_after_its_timeout_and_says_the_operation_is_pending() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    node.ok(&["group", "create", "g"]);
    node.ok(&["resource", "create", "slow", "--group", "g", "--type", "dummy", "--set", "OnlineDelayMs=600000"]);
    let started = std::time::Instant::now();
    let out = node.cli(&["resource", "online", "slow", "--wait", "--timeout", "2s"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(124), "{err}");
    assert!(err.contains("still pending after 2s") && err.contains("operation "), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let out = node.cli(&["resource", "online", "slow", "--wait", "--timeout", "soon"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("soon"), "{out:?}");
}

/// A daemon whose data directory is removed under it exits non-zero, naming the directory, so its
/// supervisor restarts it instead of it acknowledging writes that vanish.
#[test]
fn a_daemon_whose_data_directory_is_removed_exits_with_an_error() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let mut child = Command::new(HALO)
        .args(["node", "run", "--name", "n1", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    listening_on(&mut child);
    let mut stderr = child.stderr.take().unwrap();
    let collected = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    std::fs::remove_dir_all(&dir).unwrap();
    let status =
        exit_within(child, Duration::from_secs(30)).expect("the daemon kept running without its data directory");
    let stderr = collected.join().unwrap();
    assert!(!status.success(), "exited with {status}; stderr: {stderr}");
    assert!(stderr.contains(&format!("data directory {} was removed", dir.display())), "stderr: {stderr}");
}

#[tokio::test]
async fn a_private_property_can_be_removed_again() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    node.ok(&["group", "create", "g"]);
    node.ok(&["resource", "create", "r", "--group", "g", "--type", "dummy", "--set", "OnlineDelayMs=50"]);
    assert_eq!(node.json(&["resource", "show", "r"])["private"]["OnlineDelayMs"], "50");
    node.ok(&["resource", "unset", "r", "OnlineDelayMs"]);
    assert!(node.json(&["resource", "show", "r"])["private"].get("OnlineDelayMs").is_none());
    // Removing one that is not set is refused, naming it.
    let out = node.cli(&["resource", "unset", "r", "OnlineDelayMs"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("OnlineDelayMs"), "{out:?}");
}
