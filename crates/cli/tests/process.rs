//! The `process` type through a real host: a real server with an HTTP probe, a missing command,
//! a program that ignores its stop signal, one that dies by itself, and the parent killed with
//! SIGKILL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

mod common;

use common::{manager, spec};
use halo_host::client::HostEvent;
use halo_host::protocol::{self, Cause, FromHost, Timeouts, ToHost, TypeSpec};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use resapi::{PropertyList, ResourceState, Status, ValueData};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port held for the whole test: bound with SO_REUSEPORT but never listening, so no
/// other program can take it, only a server that also sets SO_REUSEPORT can bind it beside this
/// socket, and connections reach that server alone (a socket that does not listen gets none).
fn reserved_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseport(true).unwrap();
    socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
    let port = socket.local_addr().unwrap().port();
    (socket, port)
}

/// A web server on a given port that binds with SO_REUSEPORT (see `reserved_port`) and logs each
/// request to stderr.
const WEB_SERVER: &str = "import http.server as h, socket, sys
class S(h.ThreadingHTTPServer):
    def server_bind(self):
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()
S(('127.0.0.1', int(sys.argv[1])), h.SimpleHTTPRequestHandler).serve_forever()";

/// Running, as opposed to gone or a zombie waiting for init to reap it.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

fn read_pid(path: &std::path::Path) -> i32 {
    std::fs::read_to_string(path).unwrap().trim().parse().unwrap()
}

#[tokio::test]
async fn a_web_server_comes_online_when_its_probe_passes_and_stops_on_offline() {
    let (m, mut ev) = manager();
    let (_held, port) = reserved_port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("out.log");
    let url = format!("http://127.0.0.1:{port}/");
    let props = [
        ("Command", "python3"),
        ("WorkingDirectory", dir.path().to_str().unwrap()),
        ("OutputFile", log.to_str().unwrap()),
        ("ProbeHttp", url.as_str()),
    ];
    let mut s = spec(1, TypeSpec::Process, &props);
    s.properties.set("Arguments", ValueData::MultiSz(vec!["-c".into(), WEB_SERVER.into(), port.to_string()]));
    m.open(s).await.unwrap();
    m.online(1, 0, vec![]).unwrap();
    ev.state(1, ResourceState::Online).await;
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok(), "the server answers once online");
    m.offline(1, Some("node-b".into()), 0x40, vec![]).unwrap();
    ev.state(1, ResourceState::Offline).await;
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "the server is gone after offline");
    assert!(std::fs::read_to_string(&log).unwrap().contains("GET / HTTP/1.0"), "the probe's request was logged");
}

#[tokio::test]
async fn a_missing_command_fails_with_a_clear_error() {
    let (m, mut ev) = manager();
    m.open(spec(1, TypeSpec::Process, &[("Command", "/nonexistent/halo-test-daemon")])).await.unwrap();
    m.online(1, 0, vec![]).unwrap();
    let (status, cause) = ev.state(1, ResourceState::Failed).await;
    assert_eq!((Status(status), cause), (Status::ERROR_FILE_NOT_FOUND, Cause::CallFailed));
    assert!(ev.logs(1).iter().any(|l| l.contains("/nonexistent/halo-test-daemon")), "{:?}", ev.logs(1));
    // Bad properties are refused at open, naming the property.
    let err = m.open(spec(2, TypeSpec::Process, &[("Command", "true"), ("StopSignal", "SIGNOPE")])).await.unwrap_err();
    assert_eq!(err.status, Status::ERROR_INVALID_PARAMETER);
    ev.until(
        "the reason",
        |e| matches!(e, HostEvent::Fact(FromHost::Log { id: 2, message, .. }) if message.contains("StopSignal")),
    )
    .await;
}

#[tokio::test]
async fn a_program_ignoring_its_stop_signal_is_killed_with_its_group() {
    let (m, mut ev) = manager();
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    // The leader ignores SIGTERM and leaves a child behind in its group.
    let script = format!("trap '' TERM; sleep 600 & echo $$ $! > {}; wait", pids.display());
    let probe = format!("test -s {}", pids.display());
    let props =
        [("Command", "/bin/sh"), ("Arguments", "-c"), ("StopTimeoutMs", "300"), ("ProbeCommand", probe.as_str())];
    let mut s = spec(1, TypeSpec::Process, &props);
    s.properties.set("Arguments", ValueData::MultiSz(vec!["-c".into(), script]));
    m.open(s).await.unwrap();
    m.online(1, 0, vec![]).unwrap();
    ev.state(1, ResourceState::Online).await;
    let text = std::fs::read_to_string(&pids).unwrap();
    let group: Vec<i32> = text.split_whitespace().map(|p| p.parse().unwrap()).collect();
    assert!(group.iter().all(|p| alive(*p)));
    m.offline(1, None, 0, vec![]).unwrap();
    ev.state(1, ResourceState::Offline).await;
    for p in group {
        assert!(!alive(p), "pid {p} survived the stop");
    }
}

#[tokio::test]
async fn a_program_that_dies_fails_the_resource() {
    let (m, mut ev) = manager();
    let mut s = spec(1, TypeSpec::Process, &[("Command", "/bin/sh")]);
    s.properties.set("Arguments", ValueData::MultiSz(vec!["-c".into(), "read _".into()]));
    s.timeouts = Timeouts { looks_alive_ms: 20, is_alive_ms: 60_000, ..s.timeouts };
    m.open(s).await.unwrap();
    m.online(1, 0, vec![]).unwrap();
    ev.state(1, ResourceState::Online).await;
    // stdin is /dev/null: `read` returns at once and the program exits.
    let (_, cause) = ev.state(1, ResourceState::Failed).await;
    assert_eq!(cause, Cause::HealthCheck);
}

#[test]
fn killing_the_parent_stops_every_resource_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let (read_end, write_end) = std::io::pipe().unwrap();
    let mut host = Command::new(env!("CARGO_BIN_EXE_halo"))
        .arg("host")
        .stdin(Stdio::from(read_end))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_host = write_end;
    let mut from_host = host.stdout.take().unwrap();
    let mut properties = PropertyList::new()
        .with("Command", ValueData::Sz("/bin/sh".into()))
        .with("ProbeCommand", ValueData::Sz(format!("test -s {}", pidfile.display())));
    properties.set(
        "Arguments",
        ValueData::MultiSz(vec!["-c".into(), format!("echo $$ > {}; exec sleep 600", pidfile.display())]),
    );
    for request in [
        ToHost::Hello { version: protocol::PROTOCOL_VERSION, cgroup: None },
        ToHost::Open {
            id: 1,
            name: "sleeper".into(),
            type_spec: TypeSpec::Process,
            properties: properties.encode().unwrap(),
            flags: 0,
            timeouts: Timeouts::default(),
        },
        ToHost::Online { id: 1, flags: 0, input: vec![] },
    ] {
        protocol::write_frame(&mut to_host, &request).unwrap();
    }
    loop {
        match protocol::read_frame::<FromHost>(&mut from_host).unwrap() {
            FromHost::State { state, .. } if state == ResourceState::Online.raw() => break,
            FromHost::State { state, .. } if state == ResourceState::Failed.raw() => panic!("the process failed"),
            _ => {}
        }
    }
    let pid = read_pid(&pidfile);
    assert!(alive(pid));

    // The "parent": a process holding the only write end of the host's stdin, killed with SIGKILL.
    let mut parent = Command::new("sleep").arg("600").stdout(Stdio::from(to_host)).spawn().unwrap();
    kill(Pid::from_raw(parent.id() as i32), Signal::SIGKILL).unwrap();
    let killed = Instant::now();
    parent.wait().unwrap();
    let status = host.wait().unwrap();
    let elapsed = killed.elapsed();
    assert!(status.success(), "the host exits cleanly once everything is stopped: {status}");
    assert!(!alive(pid), "the resource's process outlived its host");
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
}
