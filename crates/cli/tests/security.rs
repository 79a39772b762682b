//! The API's defences, end to end against a real `halo node run`: each refused request is
//! answered with its error and changes nothing; accepted writes are audited with who made them;
//! secrets never reach the log; off loopback the API is HTTPS only; and thousands of silent
//! connections neither lock clients out nor stop the node from replacing a dead host.
//!
//! (Refusals on the peer channel — another CA, a replayed or expired join, an evicted node, a
//! fuzzed handshake — are tested against real sockets in `crates/cluster/tests/peer.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

mod common;

use common::{logged_sleeper_arguments, running, starts, until};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const HALO: &str = env!("CARGO_BIN_EXE_halo");

struct Node {
    child: Child,
    /// As printed: `http://127.0.0.1:PORT`, or `https://0.0.0.0:PORT` off loopback.
    printed: String,
    /// Where a client on this machine reaches it.
    endpoint: String,
}

impl Node {
    fn start(dir: &Path, listen: &str) -> Node {
        let log = std::fs::File::create(dir.join("node.log")).unwrap();
        let mut child = Command::new(HALO)
            .args(["node", "run", "--name", "n1", "--listen", listen, "--data-dir"])
            .arg(dir.join("data"))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        std::thread::spawn(move || for _ in lines {});
        let printed = first.split_once(" listening on ").map(|(_, e)| e.trim().to_string()).unwrap();
        let endpoint = printed.replace("0.0.0.0", "127.0.0.1");
        Node { child, printed, endpoint }
    }

    fn cli_with(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        Command::new(HALO).arg("--endpoint").arg(&self.endpoint).envs(env.iter().copied()).args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli_with(&[], args);
        assert!(out.status.success(), "halo {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// A new API token with `role` (made by the local administrator).
    fn token(&self, name: &str, role: &str, ttl: Option<&str>) -> (String, String) {
        let mut args = vec!["token", "create", "--name", name, "--role", role];
        if let Some(t) = ttl {
            args.extend(["--ttl", t]);
        }
        let v = self.json(&args);
        (v["token"].as_str().unwrap().to_string(), v["info"]["id"].as_str().unwrap().to_string())
    }

    fn address(&self) -> String {
        self.endpoint.split_once("://").unwrap().1.to_string()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One raw HTTP/1.1 request; the status and body of the answer.
fn raw(address: &str, request: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}

/// A request as a client sends it: `headers` are extra header lines.
fn request(node: &Node, method: &str, path: &str, headers: &[String], body: &str) -> (u16, Value) {
    let address = node.address();
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !headers.iter().any(|h| h.to_ascii_lowercase().starts_with("host:")) {
        head.push_str(&format!("Host: {address}\r\n"));
    }
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    let (code, body) = raw(&address, &format!("{head}\r\n{body}"));
    (code, serde_json::from_str(&body).unwrap_or_else(|_| json!({ "raw": body })))
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

const JSON: &str = "Content-Type: application/json";

/// A request that must be refused: method, path, header lines, body, HTTP status, ERROR_*.
type Refused<'a> = (&'a str, &'a str, Vec<String>, &'a str, u16, &'a str);

#[test]
fn refused_requests_change_nothing_and_accepted_writes_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), "127.0.0.1:0");
    node.ok(&["group", "create", "g"]);
    node.ok(&["resource", "create", "r", "--group", "g", "--type", "dummy"]);
    let (viewer, _) = node.token("vera", "viewer", None);
    let (operator, _) = node.token("otto", "operator", None);
    let (admin, admin_id) = node.token("ada", "admin", None);
    let before = node.json(&["status"]);

    let group = r#"{"name":"intruder"}"#;
    let process = r#"{"name":"p","group":"g","type":"process","private":{"Command":"/bin/sh"}}"#;
    let refused: Vec<Refused> = vec![
        // No credentials, a malformed token, one of the right form that does not exist.
        ("POST", "/v1/groups", vec![JSON.into()], group, 401, "ERROR_NOT_AUTHENTICATED"),
        ("GET", "/v1/status", vec![], "", 401, "ERROR_NOT_AUTHENTICATED"),
        ("POST", "/v1/groups", vec![JSON.into(), bearer("nonsense")], group, 401, "ERROR_NOT_AUTHENTICATED"),
        (
            "POST",
            "/v1/groups",
            vec![JSON.into(), bearer("halo_0123456789_abcdefghijklmnopqrstuvwxyz012345")],
            group,
            401,
            "ERROR_NOT_AUTHENTICATED",
        ),
        // Roles: a viewer reads only; an operator runs but does not configure, and never
        // creates a resource that runs commands.
        ("POST", "/v1/groups", vec![JSON.into(), bearer(&viewer)], group, 403, "ERROR_ACCESS_DENIED"),
        ("POST", "/v1/groups/g/online", vec![bearer(&viewer)], "", 403, "ERROR_ACCESS_DENIED"),
        ("GET", "/v1/tokens", vec![bearer(&operator)], "", 403, "ERROR_ACCESS_DENIED"),
        ("POST", "/v1/resources", vec![JSON.into(), bearer(&operator)], process, 403, "ERROR_ACCESS_DENIED"),
        (
            "POST",
            "/v1/types",
            vec![JSON.into(), bearer(&operator)],
            r#"{"name":"t","path":"/tmp/x.so"}"#,
            403,
            "ERROR_ACCESS_DENIED",
        ),
        // A write control code is configuration.
        (
            "POST",
            "/v1/resources/r/control",
            vec![JSON.into(), bearer(&operator)],
            r#"{"code":"CLUSCTL_RESOURCE_SET_COMMON_PROPERTIES"}"#,
            403,
            "ERROR_ACCESS_DENIED",
        ),
        // CSRF: a form post from a web page (text/plain, foreign Origin) — with a stolen token
        // even, the origin and the media type are each refused.
        (
            "POST",
            "/v1/groups/g/offline",
            vec!["Content-Type: text/plain".into(), "Origin: http://evil.example".into()],
            "x",
            403,
            "ERROR_ACCESS_DENIED",
        ),
        (
            "POST",
            "/v1/groups/g/offline",
            vec!["Content-Type: text/plain".into(), "Origin: http://evil.example".into(), bearer(&admin)],
            "x",
            403,
            "ERROR_ACCESS_DENIED",
        ),
        (
            "POST",
            "/v1/groups/g/offline",
            vec!["Content-Type: text/plain".into(), bearer(&admin)],
            "x",
            415,
            "ERROR_INVALID_PARAMETER",
        ),
        // DNS rebinding: the page's own name in Host.
        ("GET", "/v1/status", vec!["Host: evil.example:80".into(), bearer(&admin)], "", 403, "ERROR_ACCESS_DENIED"),
    ];
    for (method, path, headers, body, status, error) in refused {
        let (got, answer) = request(&node, method, path, &headers, body);
        assert_eq!((got, answer["error"].as_str().unwrap_or("")), (status, error), "{method} {path}: {answer}");
        assert!(!answer["message"].as_str().unwrap_or("").is_empty(), "{answer}");
    }
    let (_, answer) = request(&node, "GET", "/v1/status", &[], "");
    assert!(answer["message"].as_str().unwrap().contains("Bearer"), "401 says what is needed: {answer}");

    // An expired token and a deleted one are refused like unknown ones.
    let (brief, _) = node.token("brief", "admin", Some("1s"));
    until("the one-second token expires", Duration::from_secs(10), || {
        let (code, answer) = request(&node, "GET", "/v1/status", &[bearer(&brief)], "");
        (code == 401).then_some(answer["message"].as_str().unwrap_or("").contains("expired")).filter(|e| *e)
    });
    node.ok(&["token", "delete", &admin_id]);
    let (code, _) = request(&node, "GET", "/v1/status", &[bearer(&admin)], "");
    assert_eq!(code, 401);

    // Nothing changed.
    let mut after = node.json(&["status"]);
    after["event_seq"] = before["event_seq"].clone();
    assert_eq!(before, after);

    // What is allowed works, and each accepted write is in the audit log with its author.
    let (code, _) = request(&node, "POST", "/v1/groups/g/online", &[bearer(&operator)], "");
    assert_eq!(code, 202);
    let (code, _) = request(&node, "GET", "/v1/groups/g", &[bearer(&viewer)], "");
    assert_eq!(code, 200);
    let audit = node.json(&["audit", "--limit", "100"]);
    let actions: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["who"].as_str().unwrap().to_string(), e["action"].as_str().unwrap().to_string()))
        .collect();
    assert!(actions.iter().any(|(who, a)| who.starts_with("otto (token ") && a == "POST /v1/groups/g/online"));
    assert!(actions.iter().any(|(who, a)| who.starts_with("local administrator") && a == "POST /v1/groups"));
    assert!(actions.iter().all(|(_, a)| !a.contains("intruder") && a != "POST /v1/types"), "{actions:?}");
    assert!(audit.as_array().unwrap().iter().all(|e| e["status"].as_u64().unwrap() < 300));

    // No secret ever reaches the log or the event stream.
    let log = std::fs::read_to_string(dir.path().join("node.log")).unwrap();
    let events = node.ok(&["--output", "json", "events"]);
    for token in [&viewer, &operator, &admin, &brief] {
        let secret = secret_of(token);
        assert!(!log.contains(secret) && !events.contains(secret), "a token's secret was written out");
    }
    let local = std::fs::read_dir("/run/halo").ok().into_iter().flatten().chain(
        std::env::var_os("XDG_RUNTIME_DIR")
            .and_then(|d| std::fs::read_dir(Path::new(&d).join("halo")).ok())
            .into_iter()
            .flatten(),
    );
    for file in local.flatten() {
        let text = std::fs::read_to_string(file.path()).unwrap_or_default();
        let credential: Value = serde_json::from_str(&text).unwrap_or_default();
        if let Some(token) = credential["token"].as_str() {
            assert!(!log.contains(secret_of(token)), "the local credential was logged");
        }
    }
}

/// The secret part of an API token (`halo_<10-digit id>_<secret>`).
fn secret_of(token: &str) -> &str {
    &token["halo_0123456789_".len()..]
}

#[test]
fn off_loopback_the_api_is_https_only() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), "0.0.0.0:0");
    assert!(node.printed.starts_with("https://0.0.0.0:"), "{}", node.printed);
    // The CLI on this machine finds the CA and the token by itself.
    let me = node.json(&["whoami"]);
    assert_eq!(me["role"], "admin");
    // Plain HTTP to the TLS port is told so, and served nothing.
    let (code, body) = raw(&node.address(), &format!("GET /v1/status HTTP/1.1\r\nHost: {}\r\n\r\n", node.address()));
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("speaks HTTPS"), "{body}");
    // A client that does not trust the cluster CA cannot talk to it.
    let out = node.cli_with(
        &[("HALO_TOKEN", "halo_0123456789_abcdefghijklmnopqrstuvwxyz012345"), ("HALO_CA", "/dev/null")],
        &["status"],
    );
    assert!(!out.status.success());
    // With the CA (from the data directory) and a token, a remote-style client works.
    let (token, _) = node.token("remote", "viewer", None);
    let ca = dir.path().join("data/tls/ca.pem");
    let out =
        node.cli_with(&[("HALO_TOKEN", &token), ("HALO_CA", ca.to_str().unwrap())], &["--output", "json", "whoami"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("remote (token"));
}

/// The daemon's `halo host` children.
fn hosts_of(daemon: u32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid =
                stat.rsplit_once(") ").and_then(|(_, r)| r.split(' ').nth(1)).and_then(|p| p.parse::<u32>().ok());
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            ppid == Some(daemon) && cmdline.split(|b| *b == 0).any(|a| a == b"host")
        })
        .collect()
}

#[test]
fn silent_connections_by_the_thousand_neither_lock_clients_out_nor_stop_host_replacement() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), "127.0.0.1:0");
    let log = dir.path().join("starts");
    node.ok(&["group", "create", "g"]);
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
        &logged_sleeper_arguments(&log),
    ]);
    node.ok(&["resource", "online", "sleeper", "--wait"]);
    let first = starts(&log).last().unwrap().1;
    let peer = node.json(&["node", "list"])[0]["peer"].as_str().unwrap().to_string();

    // 3,000 connections that say nothing (more than the API's cap of 1,024) and 600 on the peer
    // port (more than its 512), plus some that start a request and never finish it.
    let wanted = 3000usize.min(usize::try_from(hard).unwrap_or(usize::MAX).saturating_sub(400));
    let mut silent = Vec::new();
    for i in 0..wanted {
        if let Ok(mut s) = std::net::TcpStream::connect(node.address()) {
            if i % 10 == 0 {
                let _ = s.write_all(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n");
            }
            silent.push(s);
        }
    }
    for _ in 0..600 {
        if let Ok(s) = std::net::TcpStream::connect(&peer) {
            silent.push(s);
        }
    }
    assert!(silent.len() > 1024, "only {} connections were opened", silent.len());

    // Clients are still served at once.
    let started = std::time::Instant::now();
    let status = node.json(&["status"]);
    assert_eq!(status["resources"][0]["state"], "Online");
    assert!(started.elapsed() < Duration::from_secs(5), "status took {:?} during the flood", started.elapsed());

    // A host killed now is replaced: its resource fails and restarts in a new host.
    let hosts = hosts_of(node.child.id());
    assert!(!hosts.is_empty(), "no host process found");
    for pid in &hosts {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    }
    until("the resource restarted in a new host", Duration::from_secs(30), || {
        let again = starts(&log).last().map(|s| s.1).filter(|pid| *pid != first && running(*pid))?;
        let state = node.json(&["resource", "show", "sleeper"])["state"].clone();
        (state == "Online").then_some(again)
    });
    assert!(hosts_of(node.child.id()).iter().all(|h| !hosts.contains(h)), "the new host is a new process");
    drop(silent);
}
