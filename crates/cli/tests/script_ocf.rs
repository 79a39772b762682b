//! The `script` and `ocf` types through a real host, against a real script and the real
//! `ocf:heartbeat:Dummy` and `ocf:pacemaker:Dummy` agents (Debian `resource-agents`,
//! `pacemaker-resource-agents`; `.ci/run` installs them).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

mod common;

use common::{manager, spec};
use halo_host::client::HostEvent;
use halo_host::protocol::{Cause, FromHost, Timeouts, TypeSpec};
use resapi::{PropertyList, ResourceState, Status, ValueData};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn write_script(dir: &Path, body: &str) -> String {
    let path = dir.join("resource.sh");
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

fn epoch_input(epoch: u64) -> Vec<u8> {
    PropertyList::new().with("Epoch", ValueData::ULargeInteger(epoch)).encode().unwrap()
}

#[tokio::test]
async fn a_script_sees_its_entry_points_properties_destination_flags_and_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record");
    let state = dir.path().join("up");
    let script = write_script(
        dir.path(),
        &format!(
            r#"echo "$1 name=$HALO_RESOURCE_NAME port=$HALO_PROP_Port dest=$HALO_DESTINATION_NODE flags=$HALO_OFFLINE_FLAGS$HALO_ONLINE_FLAGS names=$HALO_OFFLINE_FLAG_NAMES$HALO_ONLINE_FLAG_NAMES epoch=$HALO_EPOCH" >> {record}
case "$1" in
  online) touch {state} ;;
  offline) rm -f {state} ;;
  looks-alive|is-alive) test -f {state} ;;
esac"#,
            record = record.display(),
            state = state.display()
        ),
    );
    let (m, mut ev) = manager();
    m.open(spec(1, TypeSpec::Script, &[("ScriptPath", script.as_str()), ("Port", "8080")])).await.unwrap();
    m.online(1, 0x2, epoch_input(7)).unwrap();
    ev.state(1, ResourceState::Online).await;
    m.offline(1, Some("node-b".into()), 0x41, epoch_input(7)).unwrap();
    ev.state(1, ResourceState::Offline).await;
    let lines = std::fs::read_to_string(&record).unwrap();
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines[0], "open name=dummy-1 port=8080 dest= flags= names= epoch=");
    assert_eq!(lines[1], "online name=dummy-1 port=8080 dest= flags=0x2 names=IGNORE_RESOURCE_STATUS epoch=7");
    let offline = lines.iter().find(|l| l.starts_with("offline")).unwrap();
    assert_eq!(
        *offline,
        "offline name=dummy-1 port=8080 dest=node-b flags=0x41 names=IGNORE_RESOURCE_STATUS|DO_NOT_UPDATE_PERSISTENT_STATE epoch=7"
    );
}

#[tokio::test]
async fn a_failing_script_fails_with_its_exit_code_and_a_missing_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(dir.path(), r#"[ "$1" = online ] && { echo "disk not mounted" >&2; exit 3; }; exit 0"#);
    let (m, mut ev) = manager();
    m.open(spec(1, TypeSpec::Script, &[("ScriptPath", script.as_str())])).await.unwrap();
    m.online(1, 0, vec![]).unwrap();
    ev.state(1, ResourceState::Failed).await;
    let code = ev.seen.iter().find_map(|(_, e)| match e {
        HostEvent::Fact(FromHost::State { id: 1, state: 4, application_code, .. }) => Some(*application_code),
        _ => None,
    });
    assert_eq!(code, Some(3));
    assert!(ev.logs(1).iter().any(|l| l.contains("disk not mounted")), "{:?}", ev.logs(1));
    let err = m.open(spec(2, TypeSpec::Script, &[("ScriptPath", "/nonexistent/script")])).await.unwrap_err();
    assert_eq!(err.status, Status::ERROR_FILE_NOT_FOUND);
}

#[tokio::test]
async fn heartbeat_dummy_starts_is_monitored_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("dummy.state");
    let (m, mut ev) = manager();
    let mut s = spec(1, TypeSpec::Ocf, &[("Agent", "heartbeat:Dummy"), ("state", state.to_str().unwrap())]);
    s.timeouts = Timeouts { looks_alive_ms: 50, is_alive_ms: 600_000, ..s.timeouts };
    m.open(s.clone()).await.unwrap();
    m.online(1, 0, vec![]).unwrap();
    ev.state(1, ResourceState::Online).await;
    assert!(state.exists(), "start created the state file");
    // Remove the state: the next monitor says "not running" with its reason, and the resource fails.
    std::fs::remove_file(&state).unwrap();
    let (_, cause) = ev.state(1, ResourceState::Failed).await;
    assert_eq!(cause, Cause::HealthCheck);
    assert!(ev.logs(1).iter().any(|l| l.contains("No process state file found")), "{:?}", ev.logs(1));

    // A clean start and stop.
    m.open(spec(2, TypeSpec::Ocf, &[("Agent", "heartbeat:Dummy"), ("state", state.to_str().unwrap())])).await.unwrap();
    m.online(2, 0, vec![]).unwrap();
    ev.state(2, ResourceState::Online).await;
    m.offline(2, None, 0, vec![]).unwrap();
    ev.state(2, ResourceState::Offline).await;
    assert!(!state.exists(), "stop removed the state file");
}

#[tokio::test]
async fn pacemaker_dummy_receives_reskeys_and_the_offline_destination() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("pm.state");
    let envfile = dir.path().join("env");
    let (m, mut ev) = manager();
    let props = [
        ("Agent", "pacemaker:Dummy"),
        ("state", state.to_str().unwrap()),
        ("envfile", envfile.to_str().unwrap()),
        ("fake", "hello"),
    ];
    m.open(spec(1, TypeSpec::Ocf, &props)).await.unwrap();
    m.online(1, 0, vec![]).unwrap();
    ev.state(1, ResourceState::Online).await;
    m.offline(1, Some("node-c".into()), 0x40, vec![]).unwrap();
    ev.state(1, ResourceState::Offline).await;
    let env = std::fs::read_to_string(&envfile).unwrap();
    for expected in [
        "OCF_RESKEY_fake=hello",
        "OCF_RESOURCE_PROVIDER=pacemaker",
        "OCF_RESOURCE_TYPE=Dummy",
        "OCF_RESOURCE_INSTANCE=dummy-1",
        "HALO_DESTINATION_NODE=node-c",
        "HALO_OFFLINE_FLAGS=0x40",
        "HALO_OFFLINE_FLAG_NAMES=DO_NOT_UPDATE_PERSISTENT_STATE",
    ] {
        assert!(env.contains(expected), "{expected} missing from the agent's environment:\n{env}");
    }
}

#[tokio::test]
async fn ocf_parameters_are_checked_against_meta_data() {
    let (m, _ev) = manager();
    let err = m.open(spec(1, TypeSpec::Ocf, &[("Agent", "heartbeat:Dummy"), ("colour", "blue")])).await.unwrap_err();
    assert_eq!(err.status, Status::ERROR_INVALID_PARAMETER);
    // IPaddr2 requires "ip"; it is only validated here, never started.
    let err = m.open(spec(2, TypeSpec::Ocf, &[("Agent", "heartbeat:IPaddr2")])).await.unwrap_err();
    assert_eq!(err.status, Status::ERROR_INVALID_PARAMETER);
    let err = m.open(spec(3, TypeSpec::Ocf, &[("Agent", "heartbeat:NoSuchAgent")])).await.unwrap_err();
    assert_eq!(err.status, Status::ERROR_FILE_NOT_FOUND);
    let err = m.open(spec(4, TypeSpec::Ocf, &[("Agent", "../../bin/sh")])).await.unwrap_err();
    assert_eq!(err.status, Status::ERROR_INVALID_PARAMETER);
}

/// Running, as opposed to gone or a zombie nobody reaped.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
}

fn pid_in(path: &Path) -> i32 {
    std::fs::read_to_string(path).unwrap().trim().parse().unwrap()
}

/// Starts resource 1 from `spec`, checks that the daemon whose pid `pidfile` names survives the
/// start and passes a monitor, then that offline ends it.
async fn daemon_survives_start_and_ends_with_stop(spec: halo_host::client::OpenSpec, pidfile: &Path) {
    let (m, mut ev) = manager();
    m.open(spec).await.unwrap();
    m.online(1, 0, vec![]).unwrap();
    ev.state(1, ResourceState::Online).await;
    let daemon = pid_in(pidfile);
    assert!(alive(daemon), "the daemon did not survive its start");
    m.check(1, true).unwrap();
    let alive_now = ev.until("a monitor", |e| matches!(e, HostEvent::Fact(FromHost::Checked { id: 1, .. }))).await;
    assert!(matches!(alive_now, HostEvent::Fact(FromHost::Checked { alive: true, .. })), "{:?}", ev.logs(1));
    assert!(alive(daemon));
    m.offline(1, None, 0, vec![]).unwrap();
    let (status, _) = ev.state(1, ResourceState::Offline).await;
    assert_eq!(Status(status), Status::ERROR_SUCCESS, "{:?}", ev.logs(1));
    assert!(!alive(daemon), "the daemon outlived its stop");
}

#[tokio::test]
async fn heartbeat_anything_keeps_its_nohup_daemon_until_stop() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("anything.pid");
    let props = [
        ("Agent", "heartbeat:anything"),
        ("binfile", "/bin/sleep"),
        ("cmdline_options", "1000"),
        ("pidfile", pidfile.to_str().unwrap()),
        ("logfile", "/dev/null"),
    ];
    daemon_survives_start_and_ends_with_stop(spec(1, TypeSpec::Ocf, &props), &pidfile).await;
}

#[tokio::test]
async fn an_agent_backgrounding_its_daemon_keeps_it_until_stop() {
    let dir = tempfile::tempdir().unwrap();
    let root = common::daemon_agent(dir.path());
    let pidfile = dir.path().join("daemon.pid");
    let props = [("Agent", "halotest:daemon"), ("OcfRoot", root.as_str()), ("pidfile", pidfile.to_str().unwrap())];
    daemon_survives_start_and_ends_with_stop(spec(1, TypeSpec::Ocf, &props), &pidfile).await;
}

#[tokio::test]
async fn a_script_starting_a_nohup_daemon_keeps_it_until_offline() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("script.pid");
    // The daemon inherits the script's stderr: the online must not wait for it to close.
    let script = write_script(
        dir.path(),
        &format!(
            r#"pidfile={pidfile}
case "$1" in
  online) nohup sleep 1000 >/dev/null & echo $! > "$pidfile" ;;
  offline) kill "$(cat "$pidfile")" ;;
  looks-alive|is-alive) kill -0 "$(cat "$pidfile")" ;;
esac"#,
            pidfile = pidfile.display()
        ),
    );
    daemon_survives_start_and_ends_with_stop(spec(1, TypeSpec::Script, &[("ScriptPath", script.as_str())]), &pidfile)
        .await;
}
