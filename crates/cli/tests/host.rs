//! The resource host as a real process (`halo host`), driven through the parent-side API: every
//! rule it enforces, and its faults (hang, crash, lease, parent gone).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

mod common;

use common::{Events, dummy, is_state, manager, timeouts};
use halo_host::client::{HostEvent, HostManager, OpenSpec};
use halo_host::protocol::{Cause, FromHost, ResourceId, Timeouts};
use resapi::{ResourceState, Status};
use std::time::{Duration, Instant};

#[tokio::test]
async fn pending_online_counts_each_checkpoint_once() {
    let (m, mut ev) = manager();
    m.open(dummy(1, &[("Checkpoints", "3"), ("OnlineDelayMs", "40"), ("RepeatCheckpoints", "true")], timeouts()))
        .await
        .unwrap();
    m.online(1, 0, vec![]).unwrap();
    ev.state(1, ResourceState::Online).await;
    let states = ev.states(1);
    let pending: Vec<u32> =
        states.iter().filter(|(s, _)| *s == ResourceState::OnlinePending).map(|(_, c)| *c).filter(|c| *c > 0).collect();
    assert_eq!(pending, [1, 2, 3], "each repeated report counted once: {states:?}");
    assert_eq!(states.last(), Some(&(ResourceState::Online, 4)));
}

#[tokio::test]
async fn open_with_bad_properties_is_refused_with_the_reason() {
    let (m, mut ev) = manager();
    let err = m.open(dummy(1, &[("Checkpoints", "lots")], timeouts())).await.unwrap_err();
    assert_eq!(err.status, Status::ERROR_INVALID_PARAMETER);
    let err = m.open(dummy(2, &[("HangIn", "everywhere")], timeouts())).await.unwrap_err();
    assert_eq!(err.status, Status::ERROR_INVALID_PARAMETER);
    let err = m.open(dummy(3, &[("Colour", "blue")], timeouts())).await.unwrap_err();
    assert_eq!(err.status, Status::ERROR_INVALID_PARAMETER);
    // Nothing is left open after a failed open.
    assert!(m.online(1, 0, vec![]).is_err());
    // Unknown flag bits are refused before any call.
    m.open(dummy(4, &[], timeouts())).await.unwrap();
    m.online(4, 0x80, vec![]).unwrap();
    ev.until(
        "the rejection of flags 0x80",
        |e| matches!(e, HostEvent::Fact(FromHost::Rejected { id: 4, status: 87, message }) if message.contains("0x80")),
    )
    .await;
}

#[tokio::test]
async fn entry_points_are_serialized_but_terminate_is_not() {
    let (m, mut ev) = manager();
    // Every entry point takes 30 ms; the dummy logs any overlap.
    m.open(dummy(1, &[("CallDelayMs", "30")], Timeouts { looks_alive_ms: 10, ..timeouts() })).await.unwrap();
    m.online(1, 0, vec![]).unwrap();
    let controls = futures_join(&m, 1, 4).await;
    assert!(controls.iter().all(|s| *s == Status::ERROR_INVALID_FUNCTION));
    m.offline(1, Some("node-b".into()), 0x40, vec![]).unwrap();
    ev.state(1, ResourceState::Offline).await;
    assert!(ev.logs(1).iter().all(|l| !l.contains("concurrent")), "{:?}", ev.logs(1));

    // An online that never returns: Terminate must still run and finish beside it.
    m.open(dummy(2, &[("HangIn", "online")], timeouts())).await.unwrap();
    m.online(2, 0, vec![]).unwrap();
    m.terminate(2).unwrap();
    let (_, cause) = ev.state(2, ResourceState::Offline).await;
    assert_eq!(cause, Cause::Terminated);
}

/// Sends `n` control calls at once and returns their statuses.
async fn futures_join(m: &HostManager, id: ResourceId, n: usize) -> Vec<Status> {
    let mut handles = Vec::new();
    for _ in 0..n {
        let m = m.clone();
        handles.push(tokio::spawn(async move { m.control(id, 0x0100_0011, vec![], 64).await.unwrap().status }));
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn pending_timeout_terminates_after_the_gap_not_before() {
    let (m, mut ev) = manager();
    let pending_ms = 400;
    let t = Timeouts { pending_ms, ..timeouts() };
    m.open(dummy(1, &[("Checkpoints", "5"), ("OnlineDelayMs", "300"), ("StallAfterCheckpoint", "2")], t))
        .await
        .unwrap();
    m.online(1, 0, vec![]).unwrap();
    let (status, cause) = ev.state(1, ResourceState::Failed).await;
    assert_eq!((Status(status), cause), (Status::ERROR_RESOURCE_CALL_TIMED_OUT, Cause::PendingTimeout));
    let last_report = ev.when(|e| matches!(e, HostEvent::Fact(FromHost::State { id: 1, checkpoint: 2, .. })));
    let failed = ev.when(|e| is_state(e, 1, ResourceState::Failed));
    assert!(
        failed - last_report >= Duration::from_millis(pending_ms.into()),
        "terminated {:?} after the last report",
        failed - last_report
    );
    assert!(ev.logs(1).iter().any(|l| l.contains("PendingTimeout")));

    // Offline: the same rule ends in Offline.
    m.open(dummy(2, &[], t)).await.unwrap();
    m.online(2, 0, vec![]).unwrap();
    ev.state(2, ResourceState::Online).await;
    let stall = dummy(2, &[("Checkpoints", "4"), ("OfflineDelayMs", "300"), ("StallAfterCheckpoint", "1")], t);
    m.update(2, &stall.properties, t).unwrap();
    m.offline(2, None, 0, vec![]).unwrap();
    let (status, cause) = ev.state(2, ResourceState::Offline).await;
    assert_eq!((Status(status), cause), (Status::ERROR_RESOURCE_CALL_TIMED_OUT, Cause::PendingTimeout));
}

#[tokio::test]
async fn after_terminate_status_reports_are_answered_terminate() {
    let (m, mut ev) = manager();
    let t = Timeouts { pending_ms: 150, ..timeouts() };
    // The worker reports every 100 ms forever; IgnoreTerminate keeps it running after terminate.
    m.open(dummy(1, &[("Checkpoints", "1000"), ("OnlineDelayMs", "100000"), ("IgnoreTerminate", "true")], t))
        .await
        .unwrap();
    m.online(1, 0, vec![]).unwrap();
    ev.until("a checkpoint", |e| matches!(e, HostEvent::Fact(FromHost::State { id: 1, checkpoint: 1, .. }))).await;
    m.terminate(1).unwrap();
    ev.state(1, ResourceState::Offline).await;
    ev.until("the worker told to stop", |e| {
        matches!(e, HostEvent::Fact(FromHost::Log { id: 1, message, .. }) if message.contains("answered Terminate"))
    })
    .await;
}

#[tokio::test]
async fn online_error_fails_and_offline_error_ends_offline() {
    let (m, mut ev) = manager();
    m.open(dummy(1, &[("FailOnline", "true")], timeouts())).await.unwrap();
    m.online(1, 0, vec![]).unwrap();
    let (status, cause) = ev.state(1, ResourceState::Failed).await;
    assert_eq!((Status(status), cause), (Status::ERROR_RESOURCE_FAILED, Cause::CallFailed));

    m.open(dummy(2, &[("FailOffline", "true")], timeouts())).await.unwrap();
    m.online(2, 0, vec![]).unwrap();
    ev.state(2, ResourceState::Online).await;
    m.offline(2, None, 0, vec![]).unwrap();
    let (status, cause) = ev.state(2, ResourceState::Offline).await;
    assert_eq!((Status(status), cause), (Status::ERROR_RESOURCE_FAILED, Cause::CallFailed));
}

#[tokio::test]
async fn looks_alive_false_escalates_to_is_alive_and_fails() {
    let (m, mut ev) = manager();
    // IsAlive alone would not run for a minute: only the escalation can fail it in time.
    let t = Timeouts { looks_alive_ms: 50, is_alive_ms: 60_000, ..timeouts() };
    m.open(dummy(1, &[("FailHealthAfterMs", "200")], t)).await.unwrap();
    m.online(1, 0, vec![]).unwrap();
    let (_, cause) = ev.state(1, ResourceState::Failed).await;
    assert_eq!(cause, Cause::HealthCheck);
    let checks: Vec<String> = ev
        .seen
        .iter()
        .filter_map(|(_, e)| match e {
            HostEvent::Fact(FromHost::Unhealthy { id: 1, check }) => Some(check.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(checks, ["looks_alive", "is_alive"]);
}

#[tokio::test]
async fn signal_failure_is_confirmed_by_is_alive() {
    let (m, mut ev) = manager();
    let t = Timeouts { looks_alive_ms: 60_000, is_alive_ms: 60_000, ..timeouts() };
    m.open(dummy(1, &[("SignalFailureAfterMs", "100")], t)).await.unwrap();
    m.online(1, 0, vec![]).unwrap();
    let (_, cause) = ev.state(1, ResourceState::Failed).await;
    assert_eq!(cause, Cause::HealthCheck);
    assert!(ev.seen.iter().any(|(_, e)| matches!(e, HostEvent::Fact(FromHost::FailureSignal { id: 1, .. }))));
}

#[tokio::test]
async fn a_hung_entry_point_gets_its_host_killed_and_replaced() {
    let (m, mut ev) = manager();
    let deadlock_ms = 1000;
    let t = Timeouts { deadlock_ms, ..timeouts() };
    m.open(dummy(1, &[], t)).await.unwrap(); // shares the host with the culprit
    m.open(dummy(2, &[("HangIn", "online")], t)).await.unwrap();
    m.open(OpenSpec { separate_monitor: true, ..dummy(3, &[], t) }).await.unwrap(); // its own host
    let shared_pid = m.host_pid(2).unwrap();
    let other_pid = m.host_pid(3).unwrap();
    assert_ne!(shared_pid, other_pid);
    m.online(1, 0, vec![]).unwrap();
    m.online(3, 0, vec![]).unwrap();
    ev.state(1, ResourceState::Online).await;
    ev.state(3, ResourceState::Online).await;

    let sent = Instant::now();
    m.online(2, 0, vec![]).unwrap();
    // A control call queued behind the hung online ends when the host is killed.
    let waiting = {
        let m = m.clone();
        tokio::spawn(async move { m.control(2, 0x0100_0011, vec![], 8).await })
    };
    let died = ev.until("the hung host's death", |e| matches!(e, HostEvent::HostDied { .. })).await;
    assert!(waiting.await.unwrap().is_err(), "the control call did not outlive its host");
    let elapsed = sent.elapsed();
    assert!(elapsed < Duration::from_millis(u64::from(deadlock_ms) + 1000), "handled after {elapsed:?}");
    let HostEvent::HostDied { pid, reason, resources, .. } = died else { unreachable!() };
    assert_eq!(pid, shared_pid);
    assert_eq!(resources, [1, 2]);
    assert!(reason.contains("online of resource 2"), "{reason}");
    for id in [1, 2] {
        let (status, cause) = match ev.seen.iter().find(|(_, e)| is_state(e, id, ResourceState::Failed)) {
            Some((_, HostEvent::Fact(FromHost::State { status, cause, .. }))) => (*status, *cause),
            _ => panic!("resource {id} not reported Failed"),
        };
        assert_eq!((Status(status), cause), (Status::ERROR_RESOURCE_CALL_TIMED_OUT, Cause::HostDied));
    }
    // The other host is untouched and still answers.
    assert_eq!(m.host_pid(3), Some(other_pid));
    assert_eq!(m.control(3, 0x0100_0011, vec![], 8).await.unwrap().status, Status::ERROR_INVALID_FUNCTION);
    // Re-opened, the culprit gets a host of its own; an innocent one goes to the new shared host.
    m.open(dummy(2, &[], t)).await.unwrap();
    m.open(dummy(4, &[], t)).await.unwrap();
    let (culprit, innocent) = (m.host_pid(2).unwrap(), m.host_pid(4).unwrap());
    assert!(culprit != innocent && culprit != shared_pid && innocent != shared_pid && innocent != other_pid);
}

async fn crash_with(how: &str) -> (HostManager, common::Events) {
    let (m, mut ev) = manager();
    m.open(dummy(1, &[], timeouts())).await.unwrap();
    m.open(dummy(2, &[("CrashIn", "online"), ("CrashWith", how)], timeouts())).await.unwrap();
    m.open(OpenSpec { separate_monitor: true, ..dummy(3, &[], timeouts()) }).await.unwrap();
    m.online(3, 0, vec![]).unwrap();
    ev.state(3, ResourceState::Online).await;
    let other_pid = m.host_pid(3).unwrap();
    m.online(2, 0, vec![]).unwrap();
    let HostEvent::HostDied { resources, reason, .. } =
        ev.until("the crash", |e| matches!(e, HostEvent::HostDied { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(resources, [1, 2], "{reason}");
    assert!(ev.seen.iter().any(|(_, e)| is_state(e, 1, ResourceState::Failed)));
    assert!(ev.seen.iter().any(|(_, e)| is_state(e, 2, ResourceState::Failed)));
    assert!(!ev.seen.iter().any(|(_, e)| is_state(e, 3, ResourceState::Failed)));
    assert_eq!(m.host_pid(3), Some(other_pid));
    // A new shared host takes new work.
    m.open(dummy(5, &[], timeouts())).await.unwrap();
    m.online(5, 0, vec![]).unwrap();
    ev.state(5, ResourceState::Online).await;
    (m, ev)
}

#[tokio::test]
async fn a_segfaulting_resource_takes_only_its_host_down() {
    crash_with("segfault").await;
}

#[tokio::test]
async fn a_panicking_resource_takes_only_its_host_down_and_is_isolated() {
    let (m, ev) = crash_with("panic").await;
    let died = ev.seen.iter().find_map(|(_, e)| match e {
        HostEvent::HostDied { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(died.as_deref(), Some("online of resource 2 crashed the host"));
    m.open(dummy(2, &[], timeouts())).await.unwrap();
    assert_ne!(m.host_pid(2), m.host_pid(5), "the culprit runs in a host of its own");
}

/// The lease the lease tests grant, and how long they watch: several leases.
const LEASE: Duration = Duration::from_secs(1);
const LEASE_WINDOW: Duration = Duration::from_secs(5);

/// Resource 1 Online and resource 2 in a long online (OnlinePending, a report every second),
/// before any lease is granted.
async fn two_resources_for_a_lease() -> (HostManager, Events) {
    let (m, mut ev) = manager();
    m.open(dummy(1, &[], timeouts())).await.unwrap();
    m.open(dummy(2, &[("Checkpoints", "1000"), ("OnlineDelayMs", "1000000")], timeouts())).await.unwrap();
    m.online(1, 0, vec![]).unwrap();
    m.online(2, 0, vec![]).unwrap();
    ev.state(1, ResourceState::Online).await;
    ev.state(2, ResourceState::OnlinePending).await;
    (m, ev)
}

/// What a lease window saw.
struct LeaseWindow {
    start: Instant,
    last_renewal: Instant,
    /// Every state fact that moved resource 1 away from Online or resource 2 away from
    /// OnlinePending: (when, id, state, status, cause).
    changes: Vec<(Instant, ResourceId, ResourceState, Status, Cause)>,
}

/// Grants the lease, then reads every event that arrives for `LEASE_WINDOW`, renewing the lease
/// every `LEASE / 20` if `renew` is set and never again otherwise.
async fn lease_window(m: &HostManager, ev: &mut Events, renew: bool) -> LeaseWindow {
    let holding = [(1, ResourceState::Online), (2, ResourceState::OnlinePending)];
    let start = Instant::now();
    m.renew_lease(LEASE);
    let mut last_renewal = start;
    let deadline = tokio::time::Instant::now() + LEASE_WINDOW;
    let mut renewals = tokio::time::interval(LEASE / 20);
    renewals.tick().await; // the first tick is immediate: the grant above
    let mut changes = Vec::new();
    loop {
        tokio::select! {
            _ = renewals.tick(), if renew => {
                last_renewal = Instant::now();
                m.renew_lease(LEASE);
            }
            e = ev.next_before(deadline) => match e {
                None => break,
                Some(HostEvent::Fact(FromHost::State { id, state, status, cause, .. }))
                    if holding.iter().any(|(i, held)| *i == id && held.raw() != state) =>
                {
                    let state = ResourceState::from_raw(state).unwrap();
                    changes.push((Instant::now(), id, state, Status(status), cause));
                }
                Some(HostEvent::HostDied { reason, .. }) => panic!("the host died during the window: {reason}"),
                Some(_) => {}
            },
        }
    }
    LeaseWindow { start, last_renewal, changes }
}

#[tokio::test]
async fn a_renewed_lease_holds() {
    let (m, mut ev) = two_resources_for_a_lease().await;
    let w = lease_window(&m, &mut ev, true).await;
    assert!(w.changes.is_empty(), "resources stopped under a renewed lease: {:?}", w.changes);
    // The window really listened: the pending online kept reporting through it.
    let reports = ev.seen.iter().filter(|(t, e)| *t >= w.start && is_state(e, 2, ResourceState::OnlinePending)).count();
    assert!(reports >= 2, "{reports} reports from the pending online in {LEASE_WINDOW:?}");
}

#[tokio::test]
async fn an_expired_lease_terminates_every_resource() {
    let (m, mut ev) = two_resources_for_a_lease().await;
    // The same window, but the lease is granted once and never renewed.
    let w = lease_window(&m, &mut ev, false).await;
    let mut stopped: Vec<ResourceId> = w.changes.iter().map(|c| c.1).collect();
    stopped.sort();
    assert_eq!(stopped, [1, 2], "{:?}", w.changes);
    for (when, id, state, status, cause) in &w.changes {
        assert_eq!(
            (*state, *status, *cause),
            (ResourceState::Offline, Status::ERROR_CLUSTER_NO_QUORUM, Cause::LeaseExpired),
            "resource {id}"
        );
        let after = *when - w.last_renewal;
        assert!(after >= LEASE, "resource {id} stopped {after:?} after the renewal, inside its lease");
    }
}

#[tokio::test]
async fn a_frozen_host_is_killed_and_its_resources_fail() {
    let (m, mut ev) = manager();
    m.set_silence_limit(Duration::from_millis(2500));
    m.open(dummy(1, &[], timeouts())).await.unwrap();
    m.open(OpenSpec { separate_monitor: true, ..dummy(2, &[], timeouts()) }).await.unwrap();
    m.online(1, 0, vec![]).unwrap();
    m.online(2, 0, vec![]).unwrap();
    ev.state(1, ResourceState::Online).await;
    ev.state(2, ResourceState::Online).await;
    let frozen = m.host_pid(1).unwrap();
    let other = m.host_pid(2).unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(frozen as i32), nix::sys::signal::Signal::SIGSTOP).unwrap();
    let HostEvent::HostDied { pid, reason, resources, .. } =
        ev.until("the frozen host's death", |e| matches!(e, HostEvent::HostDied { .. })).await
    else {
        unreachable!()
    };
    assert_eq!((pid, resources), (frozen, vec![1]));
    assert!(reason.contains("heartbeat"), "{reason}");
    let (_, cause) = ev.state(1, ResourceState::Failed).await;
    assert_eq!(cause, Cause::HostDied);
    // The host that kept its heartbeat is untouched.
    assert_eq!(m.host_pid(2), Some(other));
    assert_eq!(m.control(2, 0x0100_0011, vec![], 8).await.unwrap().status, Status::ERROR_INVALID_FUNCTION);
}

/// How a host dies in the one-copy tests.
#[derive(Debug, Clone, Copy)]
enum Death {
    /// SIGKILL from outside.
    Killed,
    /// SIGSTOP: the parent kills it after its silence limit.
    Frozen,
    /// Another resource's online hangs past DeadlockTimeout: the parent kills the host.
    Deadlock,
}

/// What the resource that must run exactly once is.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A `process` resource running `sleep 1000`.
    Process,
    /// An OCF agent whose daemon is `sleep 1000`, started in the background.
    OcfDaemon,
}

/// Starts a resource whose processes are `sleep`s marked in their environment, kills its host
/// the way `death` says, restarts it as the engine would on the Failed report, and checks that
/// exactly one copy runs afterwards, and none after offline.
async fn exactly_one_copy_after(death: Death, kind: Kind) {
    let (m, mut ev) = manager();
    m.set_silence_limit(Duration::from_millis(1500));
    let mark = common::unique_mark("onecopy");
    let dir = tempfile::tempdir().unwrap();
    let t = Timeouts { deadlock_ms: 1000, ..timeouts() };
    let spec = match kind {
        Kind::Process => {
            let env = format!("HALO_TEST_MARK={mark}");
            let props = [("Command", "sleep"), ("Arguments", "1000"), ("Environment", env.as_str())];
            OpenSpec { timeouts: t, ..common::spec(1, halo_host::protocol::TypeSpec::Process, &props) }
        }
        Kind::OcfDaemon => {
            let root = common::daemon_agent(dir.path());
            let pidfile = dir.path().join("daemon.pid");
            let props = [
                ("Agent", "halotest:daemon"),
                ("OcfRoot", root.as_str()),
                ("pidfile", pidfile.to_str().unwrap()),
                ("mark", mark.as_str()),
            ];
            OpenSpec { timeouts: t, ..common::spec(1, halo_host::protocol::TypeSpec::Ocf, &props) }
        }
    };
    m.open(spec.clone()).await.unwrap();
    m.online(1, 0, vec![]).unwrap();
    ev.state(1, ResourceState::Online).await;
    assert_eq!(common::wait_marked("sleep", &mark, 1), 1, "{kind:?} did not start its daemon");
    let host = nix::unistd::Pid::from_raw(m.host_pid(1).unwrap() as i32);
    match death {
        Death::Killed => nix::sys::signal::kill(host, nix::sys::signal::Signal::SIGKILL).unwrap(),
        Death::Frozen => nix::sys::signal::kill(host, nix::sys::signal::Signal::SIGSTOP).unwrap(),
        Death::Deadlock => {
            m.open(dummy(2, &[("HangIn", "online")], t)).await.unwrap();
            m.online(2, 0, vec![]).unwrap();
        }
    }
    let (_, cause) = ev.state(1, ResourceState::Failed).await;
    assert_eq!(cause, Cause::HostDied);
    // The engine restarts on this report: by now nothing the old host started may run.
    assert_eq!(common::count_marked("sleep", &mark), 0, "{kind:?} outlived its host ({death:?})");
    m.open(spec).await.unwrap();
    m.online(1, 0, vec![]).unwrap();
    ev.state(1, ResourceState::Online).await;
    assert_eq!(common::wait_marked("sleep", &mark, 1), 1, "{kind:?} after a restart ({death:?})");
    m.offline(1, None, 0, vec![]).unwrap();
    ev.state(1, ResourceState::Offline).await;
    assert_eq!(common::count_marked("sleep", &mark), 0, "{kind:?} outlived its offline");
}

#[tokio::test]
async fn one_copy_of_a_process_after_its_host_is_killed() {
    exactly_one_copy_after(Death::Killed, Kind::Process).await;
}

#[tokio::test]
async fn one_copy_of_a_process_after_its_host_froze() {
    exactly_one_copy_after(Death::Frozen, Kind::Process).await;
}

#[tokio::test]
async fn one_copy_of_a_process_after_its_host_deadlocked() {
    exactly_one_copy_after(Death::Deadlock, Kind::Process).await;
}

#[tokio::test]
async fn one_copy_of_an_ocf_daemon_after_its_host_is_killed() {
    exactly_one_copy_after(Death::Killed, Kind::OcfDaemon).await;
}

#[tokio::test]
async fn one_copy_of_an_ocf_daemon_after_its_host_froze() {
    exactly_one_copy_after(Death::Frozen, Kind::OcfDaemon).await;
}

#[tokio::test]
async fn one_copy_of_an_ocf_daemon_after_its_host_deadlocked() {
    exactly_one_copy_after(Death::Deadlock, Kind::OcfDaemon).await;
}

#[tokio::test]
async fn a_control_call_over_the_frame_limit_fails_instead_of_hanging() {
    let (m, _ev) = manager();
    m.open(dummy(1, &[], timeouts())).await.unwrap();
    // 255 travels as "255,": this input is about 20 MB framed, over the 16 MiB limit.
    let input = vec![255u8; 5 * 1024 * 1024];
    let call = tokio::time::timeout(Duration::from_secs(30), m.control(1, 0x0100_0011, input, 8)).await;
    let err = call.expect("the control call hung").unwrap_err();
    assert!(err.message.contains("limit"), "{err}");
    // The host is still there and answers.
    assert_eq!(m.control(1, 0x0100_0011, vec![], 8).await.unwrap().status, Status::ERROR_INVALID_FUNCTION);
}
