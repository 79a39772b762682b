//! The decision core, scenario by scenario: each step names the input and the exact host calls,
//! writes, replies and operation outcomes it must produce, with time advanced by hand. No
//! process, no database, no runtime: the harness plays the database (applying the core's writes
//! and feeding the changes back) and the hosts (the facts are written out in each scenario).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

use halo_cluster::{Op, Record, Response};
use halo_engine::core::{Answer, Command, Core, Input, OpStatus, Ready, Target};
use halo_engine::deps::Dependencies;
use halo_engine::events::EventKind;
use halo_engine::model::{GroupDoc, OwnerDoc, ResourceDoc, builtin_types, keys};
use halo_host::client::HostEvent;
use halo_host::protocol::{Cause, FromHost};
use resapi::{OfflineFlags, ResourceState, Status};
use std::collections::BTreeMap;
use std::time::Duration;

/// A resource of the starting configuration: name, common properties, dependency expression.
type Spec<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

struct Harness {
    core: Core,
    now: Duration,
    token: u64,
    /// The database as the harness plays it.
    revision: u64,
    records: BTreeMap<String, Record>,
    ids: BTreeMap<String, u64>,
}

fn text(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn calls(r: &Ready) -> Vec<String> {
    r.calls.iter().map(ToString::to_string).collect()
}

impl Harness {
    /// One group `g` with these resources (all dummies), loaded into a fresh core.
    fn new(resources: &[Spec]) -> Harness {
        let mut h = Harness {
            core: Core::new("n1"),
            now: Duration::ZERO,
            token: 0,
            revision: 0,
            records: BTreeMap::new(),
            ids: BTreeMap::new(),
        };
        for ty in builtin_types() {
            h.put(&keys::type_(&ty.name), serde_json::to_vec(&ty).unwrap());
        }
        h.put(&keys::group("g"), serde_json::to_vec(&GroupDoc { name: "g".into(), common: BTreeMap::new() }).unwrap());
        h.put(&keys::owner("g"), serde_json::to_vec(&OwnerDoc::on("n1")).unwrap());
        for (i, (name, common, deps)) in resources.iter().enumerate() {
            let doc = ResourceDoc {
                id: i as u64 + 1,
                name: name.to_string(),
                group: "g".into(),
                type_name: "dummy".into(),
                common: text(common),
                private: BTreeMap::new(),
                dependencies: Dependencies::parse(deps).unwrap(),
            };
            h.ids.insert(name.to_string(), doc.id);
            h.put(&keys::resource(name), serde_json::to_vec(&doc).unwrap());
        }
        h.load();
        h
    }

    fn put(&mut self, key: &str, value: Vec<u8>) {
        self.revision += 1;
        self.records.insert(key.into(), Record { revision: self.revision, value });
    }

    /// A fresh core over the database as it is (a node restart).
    fn load(&mut self) -> Ready {
        self.core = Core::new("n1");
        // The node holds its ownership lease for longer than any scenario runs.
        let _ = self.core.step(self.now, Input::Lease { until: Some(Duration::from_secs(1 << 40)), revision: 0 });
        let input = Input::Loaded { revision: self.revision, records: self.records.clone() };
        self.step(input)
    }

    fn at_ms(&mut self, ms: u64) -> &mut Self {
        self.now = Duration::from_millis(ms);
        self
    }

    /// Steps the core; writes it asks for are applied at once and fed back (answer, then feed),
    /// and everything that follows is gathered into one Ready.
    fn step(&mut self, input: Input) -> Ready {
        let mut ready = self.core.step(self.now, input);
        let writes = std::mem::take(&mut ready.writes);
        if !writes.is_empty() {
            let more = self.apply_writes(writes);
            ready.merge(more);
        }
        ready
    }

    /// Applies writes in order (each answered, then fed back), and the writes that follow.
    fn apply_writes(&mut self, mut writes: Vec<(u64, halo_cluster::Request)>) -> Ready {
        let mut ready = Ready::default();
        while !writes.is_empty() {
            for (write, request) in std::mem::take(&mut writes) {
                let conflict =
                    request.compare.iter().find(|c| self.records.get(&c.key).map(|r| r.revision) != c.revision);
                let response = match conflict {
                    Some(c) => Response::Conflict {
                        key: c.key.clone(),
                        expected: c.revision,
                        actual: self.records.get(&c.key).map(|r| r.revision),
                    },
                    None => {
                        self.revision += 1;
                        for op in &request.ops {
                            match op {
                                Op::Put { key, value } => {
                                    self.records
                                        .insert(key.clone(), Record { revision: self.revision, value: value.clone() });
                                }
                                Op::Delete { key } => {
                                    self.records.remove(key);
                                }
                            }
                        }
                        Response::Applied { revision: self.revision }
                    }
                };
                let applied = matches!(response, Response::Applied { .. });
                let mut more = self.core.step(self.now, Input::Written { write, result: Ok(response) });
                if applied {
                    let change = Input::Change { revision: self.revision, ops: request.ops.clone() };
                    let after = self.core.step(self.now, change);
                    more.merge(after);
                }
                writes.extend(std::mem::take(&mut more.writes));
                ready.merge(more);
            }
        }
        ready
    }

    fn command(&mut self, command: Command) -> Ready {
        self.token += 1;
        self.step(Input::Command { token: self.token, command })
    }

    fn state(&mut self, name: &str, state: ResourceState, cause: Cause) -> Ready {
        self.report(name, state, Status::ERROR_SUCCESS, cause)
    }

    /// A state report from the host, with its status.
    fn report(&mut self, name: &str, state: ResourceState, status: Status, cause: Cause) -> Ready {
        let fact = FromHost::State {
            id: self.ids[name],
            state: state as i32,
            checkpoint: 0,
            status: status.0,
            application_code: 0,
            flags: 0,
            cause,
        };
        self.step(Input::Host(HostEvent::Fact(fact)))
    }

    fn opened(&mut self, name: &str) -> Ready {
        self.step(Input::Opened { id: self.ids[name], result: Ok(()) })
    }

    fn tick(&mut self) -> Ready {
        self.step(Input::Tick)
    }

    fn view_state(&self, name: &str) -> String {
        self.core.resource(name).unwrap().state
    }

    fn persistent(&self, name: &str) -> Option<String> {
        let r = self.records.get(&keys::resource(name))?;
        let doc: ResourceDoc = serde_json::from_slice(&r.value).unwrap();
        doc.common.get("PersistentState").cloned()
    }

    /// Opens, then reports Online, each named resource in turn, checking the calls on the way.
    fn bring_online(&mut self, names: &[&str]) {
        for n in names {
            assert_eq!(calls(&self.opened(n)), [format!("online {n} flags=0x0")]);
            self.state(n, ResourceState::Online, Cause::Resource);
        }
    }
}

fn online(name: &str, persistent: bool) -> Command {
    Command::Online { target: Target::Resource(name.into()), update_persistent: persistent, input: vec![] }
}

fn offline(name: &str, flags: OfflineFlags, persistent: bool) -> Command {
    Command::Offline {
        target: Target::Resource(name.into()),
        flags,
        update_persistent: persistent,
        terminate: false,
        input: vec![],
    }
}

fn op_of(r: &Ready) -> u64 {
    match r.replies.as_slice() {
        [(_, Ok(Answer::Operation(id)))] => *id,
        other => panic!("expected one operation reply, got {other:?}"),
    }
}

const OFF_PLAIN: &str = "flags=0x0";
const OFF_KEEP: &str = "flags=0x40 (DO_NOT_UPDATE_PERSISTENT_STATE)";

#[test]
fn dependencies_come_up_first_and_go_down_last() {
    let mut h = Harness::new(&[("db", &[], ""), ("app", &[], "[db]"), ("web", &[], "[app]")]);
    let r = h.command(online("web", false));
    let op = op_of(&r);
    // Every resource has been opening since the node started (WSFC opens them then).
    assert!(calls(&r).is_empty());
    assert!(calls(&h.opened("web")).is_empty() && calls(&h.opened("app")).is_empty(), "they wait for db");
    assert_eq!(calls(&h.opened("db")), ["online db flags=0x0"], "only the bottom of the chain starts");
    for (name, next) in [("db", Some("online app flags=0x0")), ("app", Some("online web flags=0x0")), ("web", None)] {
        let r = h.state(name, ResourceState::Online, Cause::Resource);
        assert_eq!(calls(&r), next.map(|c| vec![c.to_string()]).unwrap_or_default());
        if next.is_none() {
            assert_eq!(r.operations, [(op, OpStatus::Succeeded)]);
        } else {
            assert!(r.operations.is_empty());
        }
    }
    // Down: dependents first.
    let r = h.command(offline("db", OfflineFlags::empty(), false));
    let op = op_of(&r);
    assert_eq!(calls(&r), [format!("offline web to=- {OFF_PLAIN}")]);
    assert_eq!(
        calls(&h.state("web", ResourceState::Offline, Cause::Resource)),
        [format!("offline app to=- {OFF_PLAIN}")]
    );
    assert_eq!(
        calls(&h.state("app", ResourceState::Offline, Cause::Resource)),
        [format!("offline db to=- {OFF_PLAIN}")]
    );
    let r = h.state("db", ResourceState::Offline, Cause::Resource);
    assert_eq!(r.operations, [(op, OpStatus::Succeeded)]);
    assert!(r.calls.is_empty());
}

#[test]
fn independent_resources_start_in_parallel_and_an_or_needs_one() {
    let mut h = Harness::new(&[("a", &[], ""), ("b", &[], ""), ("c", &[], "([a] or [b])")]);
    let r = h.command(Command::Online { target: Target::Group("g".into()), update_persistent: false, input: vec![] });
    assert!(calls(&r).is_empty(), "opening since the node started");
    assert!(calls(&h.opened("c")).is_empty(), "c waits for a or b");
    assert_eq!(calls(&h.opened("a")), ["online a flags=0x0"]);
    assert_eq!(calls(&h.opened("b")), ["online b flags=0x0"]);
    // One side of the OR is enough.
    assert_eq!(calls(&h.state("b", ResourceState::Online, Cause::Resource)), ["online c flags=0x0"]);
}

#[test]
fn a_lost_dependency_takes_its_dependents_down_keeping_their_persistent_state() {
    let mut h = Harness::new(&[("db", &[("RestartDelay", "1000")], ""), ("app", &[], "[db]")]);
    h.command(online("app", false));
    h.bring_online(&["db", "app"]);
    h.at_ms(5_000);
    let r = h.state("db", ResourceState::Failed, Cause::HealthCheck);
    assert_eq!(calls(&r), [format!("offline app to=- {OFF_KEEP}")]);
    assert_eq!(r.wake, Some(Duration::from_millis(6_000)));
    h.state("app", ResourceState::Offline, Cause::Resource);
    assert!(calls(&h.at_ms(5_999).tick()).is_empty());
    assert_eq!(calls(&h.at_ms(6_000).tick()), ["online db flags=0x0"]);
    // app comes back with it.
    assert_eq!(calls(&h.state("db", ResourceState::Online, Cause::Resource)), ["online app flags=0x0"]);
}

#[test]
fn restart_threshold_period_delay_then_retry_period() {
    let common: &[(&str, &str)] = &[
        ("RestartThreshold", "1"),
        ("RestartPeriod", "60000"),
        ("RestartDelay", "1000"),
        ("RetryPeriodOnFailure", "120000"),
    ];
    let mut h = Harness::new(&[("r", common, "")]);
    let op = op_of(&h.command(online("r", false)));
    h.bring_online(&["r"]);
    // First failure: within the threshold, restarted after RestartDelay.
    let r = h.at_ms(10_000).state("r", ResourceState::Failed, Cause::HealthCheck);
    assert!(r.calls.is_empty());
    assert_eq!(r.wake, Some(Duration::from_millis(11_000)));
    assert!(h.at_ms(10_999).tick().calls.is_empty());
    assert_eq!(calls(&h.at_ms(11_000).tick()), ["online r flags=0x0"]);
    h.state("r", ResourceState::Online, Cause::Resource);
    // Second failure within RestartPeriod: RestartAction 2 on one node waits RetryPeriodOnFailure.
    let r = h.at_ms(20_000).state("r", ResourceState::Failed, Cause::HealthCheck);
    assert_eq!(r.wake, Some(Duration::from_millis(140_000)));
    assert!(r.operations.is_empty(), "the earlier operation already ended: {:?}", r.operations);
    assert!(h.at_ms(139_999).tick().calls.is_empty());
    assert_eq!(calls(&h.at_ms(140_000).tick()), ["online r flags=0x0"]);
    let _ = op;
}

#[test]
fn restart_actions_zero_and_one() {
    let mut h = Harness::new(&[
        ("never", &[("RestartAction", "0")], ""),
        ("once", &[("RestartAction", "1"), ("RestartThreshold", "0")], ""),
    ]);
    let op = op_of(&h.command(Command::Online {
        target: Target::Group("g".into()),
        update_persistent: false,
        input: vec![],
    }));
    h.bring_online(&["never", "once"]);
    let r = h.at_ms(1_000).state("never", ResourceState::Failed, Cause::HealthCheck);
    assert!(r.calls.is_empty() && r.wake.is_none(), "RestartAction 0 never restarts");
    let r = h.state("once", ResourceState::Failed, Cause::HealthCheck);
    assert!(r.calls.is_empty() && r.wake.is_none(), "RestartAction 1 with threshold 0 stays failed");
    assert!(h.at_ms(10_000_000).tick().calls.is_empty());
    assert_eq!(h.view_state("never"), "Failed");
    let _ = op;
    // An operator's online starts afresh.
    let r = h.command(online("never", false));
    assert_eq!(calls(&r), ["online never flags=0x0"]);
}

#[test]
fn an_online_operation_fails_when_restarts_are_exhausted() {
    let mut h = Harness::new(&[("r", &[("RestartAction", "1"), ("RestartThreshold", "0")], "")]);
    let op = op_of(&h.command(online("r", false)));
    assert_eq!(calls(&h.opened("r")), ["online r flags=0x0"]);
    let r = h.report("r", ResourceState::Failed, Status::ERROR_RESOURCE_CALL_TIMED_OUT, Cause::PendingTimeout);
    assert_eq!(
        r.operations,
        [(
            op,
            OpStatus::Failed { code: 5910, message: format!("r failed: {}", Status::ERROR_RESOURCE_CALL_TIMED_OUT) }
        )]
    );
}

#[test]
fn locked_mode_refuses_an_offline_unless_forced() {
    let mut h = Harness::new(&[("vm", &[], "")]);
    h.command(online("vm", false));
    h.bring_online(&["vm"]);
    let r = h.step(Input::Host(HostEvent::Fact(FromHost::LockedMode { id: 1, locked: true, reason: 0 })));
    assert!(matches!(&r.events[..], [EventKind::Property { properties, .. }] if properties == &["StatusInformation"]));
    let r = h.command(offline("vm", OfflineFlags::empty(), false));
    assert!(matches!(&r.replies[..], [(_, Err(e))] if e.status == Status::ERROR_CLUSTER_RESOURCE_LOCKED_STATUS));
    assert!(r.calls.is_empty());
    let r = h.command(offline("vm", OfflineFlags::IGNORE_RESOURCE_STATUS, false));
    assert_eq!(calls(&r), ["offline vm to=- flags=0x1 (IGNORE_RESOURCE_STATUS)"]);
}

#[test]
fn persistent_state_is_recorded_and_restored_in_dependency_order() {
    let mut h = Harness::new(&[("db", &[], ""), ("app", &[], "[db]"), ("spare", &[], "")]);
    let r = h.command(online("app", true));
    assert!(calls(&r).is_empty(), "opening since the node started");
    assert_eq!((h.persistent("app").as_deref(), h.persistent("db").as_deref()), (Some("true"), Some("true")));
    assert_eq!(h.persistent("spare"), None);
    h.bring_online(&["db", "app"]);
    // The shutdown offline keeps the persistent state and says so to the resources.
    let r = h.command(Command::Shutdown);
    assert_eq!(calls(&r), [format!("offline app to=- {OFF_KEEP}")]);
    // Each is closed once it is down, as at a node's shutdown on Windows.
    assert_eq!(
        calls(&h.state("app", ResourceState::Offline, Cause::Resource)),
        ["close app".to_string(), format!("offline db to=- {OFF_KEEP}")]
    );
    assert_eq!(calls(&h.state("db", ResourceState::Offline, Cause::Resource)), ["close db"]);
    // An open answered during the shutdown is closed at once.
    assert_eq!(calls(&h.opened("spare")), ["close spare"]);
    assert_eq!(h.persistent("app").as_deref(), Some("true"));
    // Onlines are refused while stopping.
    let r = h.command(online("spare", false));
    assert!(matches!(&r.replies[..], [(_, Err(e))] if e.status == Status::ERROR_CLUSTER_SHUTTING_DOWN));
    // A restart brings back what was online, bottom-up; the idle resource stays offline.
    let r = h.load();
    assert_eq!(calls(&r), ["open app", "open db", "open spare"], "every resource opens at the node's start");
    h.bring_online(&["db", "app"]);
    assert_eq!(h.view_state("spare"), "Offline");
    // An operator's offline records it.
    h.command(offline("db", OfflineFlags::empty(), true));
    assert_eq!((h.persistent("app").as_deref(), h.persistent("db").as_deref()), (Some("false"), Some("false")));
}

#[test]
fn force_with_termination_reaches_a_resource_still_coming_online() {
    let mut h = Harness::new(&[("r", &[], "")]);
    h.command(online("r", false));
    assert_eq!(calls(&h.opened("r")), ["online r flags=0x0"]);
    h.state("r", ResourceState::OnlinePending, Cause::Resource);
    let terminate = Command::Offline {
        target: Target::Resource("r".into()),
        flags: OfflineFlags::IGNORE_RESOURCE_STATUS,
        update_persistent: false,
        terminate: true,
        input: vec![],
    };
    let r = h.command(terminate.clone());
    let op = op_of(&r);
    assert_eq!(calls(&r), ["terminate r"]);
    let r = h.state("r", ResourceState::Offline, Cause::Terminated);
    assert_eq!(r.operations, [(op, OpStatus::Succeeded)]);
    // And an online one goes straight to Terminate, not OfflineV2.
    h.command(online("r", false));
    h.state("r", ResourceState::Online, Cause::Resource);
    assert_eq!(calls(&h.command(terminate)), ["terminate r"]);
}

#[test]
fn an_overtaken_operation_ends_aborted() {
    let mut h = Harness::new(&[("r", &[], "")]);
    h.command(online("r", false));
    h.bring_online(&["r"]);
    let first = op_of(&h.command(offline("r", OfflineFlags::empty(), false)));
    let r = h.command(online("r", false));
    let second = op_of(&r);
    assert!(
        matches!(&r.operations[..], [(id, OpStatus::Failed { code: 995, .. })] if *id == first),
        "{:?}",
        r.operations
    );
    let r = h.state("r", ResourceState::Offline, Cause::Resource);
    assert_eq!(calls(&r), ["online r flags=0x0"]);
    let r = h.state("r", ResourceState::Online, Cause::Resource);
    assert_eq!(r.operations, [(second, OpStatus::Succeeded)]);
}

#[test]
fn deleting_an_online_resource_takes_it_offline_then_closes_it() {
    let mut h = Harness::new(&[("r", &[], "")]);
    h.command(online("r", false));
    h.bring_online(&["r"]);
    let r = h.command(Command::DeleteResource { name: "r".into(), force: false });
    assert_eq!(calls(&r), [format!("offline r to=- {OFF_PLAIN}")]);
    assert!(r.replies.is_empty(), "the delete waits for the offline");
    let r = h.state("r", ResourceState::Offline, Cause::Resource);
    assert_eq!(calls(&r), ["close r"]);
    assert!(matches!(&r.replies[..], [(_, Ok(Answer::Done))]), "{:?}", r.replies);
    assert!(r.events.contains(&EventKind::Deleted { object: "resource".into(), name: "r".into() }));
    assert!(h.core.resource("r").is_none());
    assert!(!h.records.contains_key(&keys::resource("r")));
}

#[test]
fn failing_a_resource_runs_the_restart_policy() {
    let mut h = Harness::new(&[("r", &[("RestartDelay", "0")], "")]);
    h.command(online("r", false));
    h.bring_online(&["r"]);
    assert_eq!(calls(&h.command(Command::Fail { name: "r".into() })), ["terminate r"]);
    // The terminate's Offline counts as a failure, and RestartDelay 0 restarts at once.
    let r = h.state("r", ResourceState::Offline, Cause::Terminated);
    assert_eq!(calls(&r), ["online r flags=0x0"]);
    assert_eq!(h.view_state("r"), "Failed");
}

#[test]
fn configuration_is_checked_and_ids_come_from_the_database() {
    let mut h = Harness::new(&[("a", &[], "")]);
    let r = h.command(Command::CreateResource {
        name: "b".into(),
        group: "g".into(),
        type_name: "dummy".into(),
        common: BTreeMap::new(),
        private: BTreeMap::new(),
        dependencies: "[a]".into(),
    });
    assert!(matches!(&r.replies[..], [(_, Ok(Answer::Done))]), "{:?}", r.replies);
    // The id is past every id in use, and the counter now reserves a block beyond it.
    let b: ResourceDoc = serde_json::from_slice(&h.records[&keys::resource("b")].value).unwrap();
    assert_eq!(b.id, 2);
    assert_eq!(h.records["counter/resource-id"].value, b"1026");
    let cycle = h.command(Command::SetDependencies { name: "a".into(), expression: "[b]".into() });
    assert!(matches!(&cycle.replies[..], [(_, Err(e))] if e.status == Status::ERROR_CIRCULAR_DEPENDENCY));
    let dup = h.command(Command::CreateGroup { name: "g".into(), common: BTreeMap::new() });
    assert!(matches!(&dup.replies[..], [(_, Err(e))] if e.status == Status::ERROR_OBJECT_ALREADY_EXISTS));
    let busy = h.command(Command::DeleteResource { name: "a".into(), force: false });
    assert!(matches!(&busy.replies[..], [(_, Err(e))] if e.status == Status::ERROR_DEPENDENT_RESOURCE_EXISTS));
}

#[test]
fn a_write_that_loses_a_race_is_checked_again_after_the_feed_catches_up() {
    let mut h = Harness::new(&[("a", &[], "")]);
    // Another node changes `a` behind the core's back: the core's guard on `a` fails, it waits
    // for the feed, then checks again and succeeds.
    h.token += 1;
    let mut r = h.core.step(
        h.now,
        Input::Command {
            token: h.token,
            command: Command::SetProperties {
                name: "a".into(),
                common: text(&[("RestartDelay", "7")]),
                private: BTreeMap::new(),
                unset: Vec::new(),
            },
        },
    );
    let (write, _) = r.writes.remove(0);
    let mut other: ResourceDoc = serde_json::from_slice(&h.records[&keys::resource("a")].value).unwrap();
    other.common.insert("Description".into(), "changed elsewhere".into());
    h.put(&keys::resource("a"), serde_json::to_vec(&other).unwrap());
    let value = h.records[&keys::resource("a")].value.clone();
    let conflict = Response::Conflict { key: keys::resource("a"), expected: Some(3), actual: Some(h.revision) };
    let r = h.step(Input::Written { write, result: Ok(conflict) });
    assert!(r.replies.is_empty() && r.writes.is_empty(), "it waits for the feed");
    let r = h.step(Input::Change { revision: h.revision, ops: vec![Op::Put { key: keys::resource("a"), value }] });
    assert!(matches!(&r.replies[..], [(_, Ok(Answer::Done))]), "{:?}", r.replies);
    let a = h.core.resource("a").unwrap();
    assert_eq!(a.common.get("RestartDelay").map(String::as_str), Some("7"));
    assert_eq!(a.common.get("Description").map(String::as_str), Some("changed elsewhere"));
}

#[test]
fn changes_written_by_others_reach_the_view_and_the_events() {
    let mut h = Harness::new(&[]);
    let doc = GroupDoc { name: "other".into(), common: BTreeMap::new() };
    let value = serde_json::to_vec(&doc).unwrap();
    let r = h.step(Input::Change { revision: 100, ops: vec![Op::Put { key: keys::group("other"), value }] });
    assert!(r.events.contains(&EventKind::Added { object: "group".into(), name: "other".into() }));
    assert!(h.core.group("other").is_some());
    assert_eq!(h.core.revision(), 100);
    // An old change (already seen) is ignored.
    let r = h.step(Input::Change { revision: 50, ops: vec![Op::Delete { key: keys::group("other") }] });
    assert!(r.events.is_empty());
    assert!(h.core.group("other").is_some());
}

#[test]
fn a_delete_waiting_for_its_offline_blocks_no_other_configuration() {
    let mut h = Harness::new(&[("r", &[], "")]);
    h.command(online("r", false));
    h.bring_online(&["r"]);
    let r = h.command(Command::DeleteResource { name: "r".into(), force: false });
    assert!(r.replies.is_empty());
    // The resource is still going offline; an unrelated write goes through at once.
    let r = h.command(Command::CreateGroup { name: "other".into(), common: BTreeMap::new() });
    assert!(matches!(&r.replies[..], [(_, Ok(Answer::Done))]), "{:?}", r.replies);
}

#[test]
fn a_group_cannot_be_deleted_while_a_resource_is_being_created_in_it() {
    let mut h = Harness::new(&[]);
    h.token += 1;
    let create = Command::CreateResource {
        name: "late".into(),
        group: "g".into(),
        type_name: "dummy".into(),
        common: BTreeMap::new(),
        private: BTreeMap::new(),
        dependencies: String::new(),
    };
    // The create (waiting for its id block, then its write) is in flight, not yet in the view.
    let r = h.core.step(h.now, Input::Command { token: h.token, command: create });
    assert_eq!(r.writes.len(), 1, "an id block is reserved first");
    let r = h.core.step(h.now, Input::Command { token: 99, command: Command::DeleteGroup { name: "g".into() } });
    assert!(
        matches!(&r.replies[..], [(99, Err(e))] if e.status == Status::ERROR_INVALID_STATE && e.message.contains("late")),
        "{:?}",
        r.replies
    );
}

#[test]
fn private_properties_are_checked_against_the_type_when_written() {
    let mut h = Harness::new(&[("r", &[], "")]);
    let set = |private: &[(&str, &str)], unset: &[&str]| Command::SetProperties {
        name: "r".into(),
        common: BTreeMap::new(),
        private: text(private),
        unset: unset.iter().map(|s| s.to_string()).collect(),
    };
    let refused = |r: &Ready, status: Status, needle: &str| {
        assert!(
            matches!(&r.replies[..], [(_, Err(e))] if e.status == status && e.message.contains(needle)),
            "{:?}",
            r.replies
        );
        assert!(r.writes.is_empty());
    };
    let r = h.command(set(&[("OnlineDelayMS_typo", "5")], &[]));
    refused(&r, Status::ERROR_INVALID_PARAMETER, "OnlineDelayMS_typo");
    let r = h.command(set(&[("OnlineDelayMs", "86400001")], &[]));
    refused(&r, Status::ERROR_CLUSTER_PARAMETER_OUT_OF_BOUNDS, "OnlineDelayMs");
    let r = h.command(set(&[("bad\u{1}name", "1")], &[]));
    refused(&r, Status::ERROR_INVALID_PARAMETER, "control characters");
    let r = h.command(set(&[("OnlineDelayMs", "5")], &[]));
    assert!(matches!(&r.replies[..], [(_, Ok(Answer::Done))]), "{:?}", r.replies);
    assert_eq!(h.core.resource("r").unwrap().private.get("OnlineDelayMs").map(String::as_str), Some("5"));
    // Removed again: the type's default applies.
    let r = h.command(set(&[], &["OnlineDelayMs"]));
    assert!(matches!(&r.replies[..], [(_, Ok(Answer::Done))]), "{:?}", r.replies);
    assert!(h.core.resource("r").unwrap().private.is_empty());
    let r = h.command(set(&[], &["OnlineDelayMs"]));
    refused(&r, Status::ERROR_INVALID_PARAMETER, "no private property");
    // A process needs its Command from the start.
    let create = Command::CreateResource {
        name: "p".into(),
        group: "g".into(),
        type_name: "process".into(),
        common: BTreeMap::new(),
        private: BTreeMap::new(),
        dependencies: String::new(),
    };
    refused(&h.command(create), Status::ERROR_INVALID_PARAMETER, "Command");
}

#[test]
fn resources_stopped_by_an_expired_lease_are_not_failures_and_come_back_with_the_lease() {
    let mut h = Harness::new(&[("r", &[("RestartDelay", "2000"), ("RestartThreshold", "1")], "")]);
    h.command(online("r", false));
    h.bring_online(&["r"]);
    let fact =
        |h: &mut Harness| h.report("r", ResourceState::Offline, Status::ERROR_CLUSTER_NO_QUORUM, Cause::LeaseExpired);
    // The lease (held again here) lets it come straight back; however often it happens, no
    // restart is counted and no RestartDelay or retry period applies.
    for at in [1_000, 2_000, 3_000, 4_000] {
        let r = fact(h.at_ms(at));
        assert_eq!(calls(&r), ["online r flags=0x0"], "at {at} ms");
        assert_eq!(r.wake, None);
        h.state("r", ResourceState::Online, Cause::Resource);
    }
}

#[test]
fn dependency_changes_in_one_group_take_turns_instead_of_failing_each_other() {
    // A chain of 60, wired by 60 dependency changes sent at once (as `apply` does).
    let names: Vec<String> = (0..60).map(|i| format!("c{i}")).collect();
    let specs: Vec<Spec> = names.iter().map(|n| (n.as_str(), &[][..], "")).collect();
    let mut h = Harness::new(&specs);
    let mut writes = Vec::new();
    let mut replies = Vec::new();
    for i in 1..60 {
        let command = Command::SetDependencies { name: format!("c{i}"), expression: format!("[c{}]", i - 1) };
        let mut r = h.core.step(h.now, Input::Command { token: 1000 + i, command });
        writes.append(&mut r.writes);
        replies.append(&mut r.replies);
    }
    assert_eq!(writes.len(), 1, "one change of the group at a time");
    let r = h.apply_writes(writes);
    replies.extend(r.replies);
    assert_eq!(replies.len(), 59);
    assert!(replies.iter().all(|(_, r)| matches!(r, Ok(Answer::Done))), "{replies:?}");
    assert_eq!(h.core.resource("c59").unwrap().dependencies, "[c58]");
}

#[test]
fn a_host_death_during_an_open_counts_once_whichever_report_comes_first() {
    // Found by the simulator (seed 371): a host dies while an open is in flight; the core hears
    // the open's error and a Failed/HostDied fact, in either order.
    let died = FromHost::State {
        id: 1,
        state: ResourceState::Failed as i32,
        checkpoint: 0,
        status: Status::ERROR_RESMON_INVALID_STATE.0,
        application_code: 0,
        flags: 0,
        cause: Cause::HostDied,
    };
    let open_failed = || Input::Opened {
        id: 1,
        result: Err(halo_host::client::HostError {
            status: Status::ERROR_RESMON_INVALID_STATE,
            message: "host died during open".into(),
        }),
    };
    for fact_first in [true, false] {
        let mut h = Harness::new(&[("r", &[("RestartDelay", "0")], "")]);
        // Its open has been in flight since the node started.
        assert!(calls(&h.command(online("r", false))).is_empty());
        let mut seen = Vec::new();
        if fact_first {
            seen.extend(calls(&h.step(Input::Host(HostEvent::Fact(died.clone())))));
            seen.extend(calls(&h.step(open_failed())));
        } else {
            seen.extend(calls(&h.step(open_failed())));
            seen.extend(calls(&h.step(Input::Host(HostEvent::Fact(died.clone())))));
        }
        // Exactly one new open, and the second report does not open it a third time.
        assert_eq!(seen, ["open r"], "fact first: {fact_first}");
        assert_eq!(calls(&h.opened("r")), ["online r flags=0x0"], "fact first: {fact_first}");
    }
}

#[test]
fn an_offline_terminates_a_resource_still_coming_online() {
    let mut h = Harness::new(&[("r", &[("PendingTimeout", "180000")], "")]);
    h.command(online("r", false));
    assert_eq!(calls(&h.opened("r")), ["online r flags=0x0"]);
    // The offline arrives before the first pending report: nothing can be sent yet.
    let op = op_of(&h.command(offline("r", OfflineFlags::empty(), false)));
    let r = h.state("r", ResourceState::OnlinePending, Cause::Resource);
    assert_eq!(calls(&r), ["terminate r"]);
    // Later reports of the pending online do not send it again.
    assert!(calls(&h.state("r", ResourceState::OnlinePending, Cause::Resource)).is_empty());
    let r = h.state("r", ResourceState::Offline, Cause::Terminated);
    assert_eq!(r.operations, [(op, OpStatus::Succeeded)]);
}

#[test]
fn a_lost_race_answered_after_the_key_moved_on_again_is_still_checked_again() {
    // The write's conflict names the revision that beat it, but by the time the answer comes
    // back the key has been written once more: the view never holds that exact revision.
    let mut h = Harness::new(&[("a", &[], "")]);
    let before = h.records[&keys::resource("a")].revision;
    h.token += 1;
    let set = Command::SetProperties {
        name: "a".into(),
        common: text(&[("RestartDelay", "7")]),
        private: BTreeMap::new(),
        unset: Vec::new(),
    };
    let mut r = h.core.step(h.now, Input::Command { token: h.token, command: set });
    let (write, _) = r.writes.remove(0);
    let changed = |h: &mut Harness, description: &str| {
        let mut doc: ResourceDoc = serde_json::from_slice(&h.records[&keys::resource("a")].value).unwrap();
        doc.common.insert("Description".into(), description.into());
        let value = serde_json::to_vec(&doc).unwrap();
        h.put(&keys::resource("a"), value.clone());
        h.step(Input::Change { revision: h.revision, ops: vec![Op::Put { key: keys::resource("a"), value }] });
        h.revision
    };
    let first = changed(&mut h, "one");
    changed(&mut h, "two");
    let conflict = Response::Conflict { key: keys::resource("a"), expected: Some(before), actual: Some(first) };
    let r = h.step(Input::Written { write, result: Ok(conflict) });
    assert!(matches!(&r.replies[..], [(_, Ok(Answer::Done))]), "the command must not wait for ever: {:?}", r.replies);
    let a = h.core.resource("a").unwrap();
    assert_eq!(a.common.get("RestartDelay").map(String::as_str), Some("7"));
    assert_eq!(a.common.get("Description").map(String::as_str), Some("two"));
}

#[test]
fn a_dependency_left_waiting_goes_offline_when_its_dependent_drops_it() {
    // Found in review: x waited for d (its dependent) to go offline; d's dependencies changed
    // meanwhile, and nothing looked at x again.
    let mut h = Harness::new(&[("x", &[], ""), ("d", &[], "[x]")]);
    h.command(online("d", false));
    h.bring_online(&["x", "d"]);
    let op = op_of(&h.command(offline("x", OfflineFlags::empty(), false)));
    // x no longer has to wait for d: it goes at once.
    let r = h.command(Command::SetDependencies { name: "d".into(), expression: String::new() });
    assert_eq!(calls(&r), [format!("offline x to=- {OFF_PLAIN}")]);
    h.state("d", ResourceState::Offline, Cause::Resource);
    let r = h.state("x", ResourceState::Offline, Cause::Resource);
    assert_eq!(r.operations, [(op, OpStatus::Succeeded)]);
}

#[test]
fn the_last_persistent_state_asked_for_wins_over_a_write_still_in_flight() {
    // Found in review: offline (write of "false" in flight), then online: the view still said
    // "true", so the online wrote nothing and "false" landed last.
    let mut h = Harness::new(&[("r", &[("PersistentState", "true")], "")]);
    h.token += 1;
    let mut first =
        h.core.step(h.now, Input::Command { token: h.token, command: offline("r", OfflineFlags::empty(), true) });
    let held = std::mem::take(&mut first.writes);
    assert_eq!(held.len(), 1);
    h.token += 1;
    let mut second = h.core.step(h.now, Input::Command { token: h.token, command: online("r", true) });
    let mut writes = held;
    writes.append(&mut second.writes);
    assert_eq!(writes.len(), 2, "the online writes too, although the view still shows true");
    h.apply_writes(writes);
    assert_eq!(h.persistent("r").as_deref(), Some("true"));
}

#[test]
fn a_call_refused_because_its_host_is_going_away_waits_for_the_death_report() {
    let mut h = Harness::new(&[("r", &[("RestartDelay", "0")], "")]);
    h.command(online("r", false));
    h.bring_online(&["r"]);
    h.state("r", ResourceState::Failed, Cause::HealthCheck);
    // The restart's online meets a host that is going away.
    let gone =
        halo_host::client::HostError { status: Status::ERROR_RESMON_INVALID_STATE, message: "host 1 is gone".into() };
    let r = h.step(Input::CallFailed { id: 1, call: halo_engine::core::CallKind::Online, error: gone });
    assert!(r.calls.is_empty(), "no retry into the dying host: {:?}", calls(&r));
    // The death report closes it and counts the failure; then it is opened afresh.
    let died = FromHost::State {
        id: 1,
        state: ResourceState::Failed as i32,
        checkpoint: 0,
        status: Status::ERROR_RESMON_INVALID_STATE.0,
        application_code: 0,
        flags: 0,
        cause: Cause::HostDied,
    };
    assert_eq!(calls(&h.step(Input::Host(HostEvent::Fact(died)))), ["open r"]);
}

#[test]
fn a_dependency_added_on_a_resource_going_offline_takes_the_dependent_down_first() {
    // Found in review: d (desired online) was given a dependency on x while x waited to go
    // offline for an earlier dependent; x waited for d, and d had no reason to go.
    let mut h = Harness::new(&[("x", &[], ""), ("y", &[], "[x]"), ("d", &[], "")]);
    h.command(Command::Online { target: Target::Group("g".into()), update_persistent: false, input: vec![] });
    h.bring_online(&["x", "d", "y"]);
    let op = op_of(&h.command(offline("x", OfflineFlags::empty(), false)));
    // d goes down at once, keeping its persistent state, as for a lost dependency.
    let r = h.command(Command::SetDependencies { name: "d".into(), expression: "[x]".into() });
    assert_eq!(calls(&r), [format!("offline d to=- {OFF_KEEP}")]);
    assert!(calls(&h.state("y", ResourceState::Offline, Cause::Resource)).is_empty(), "x still waits for d");
    let r = h.state("d", ResourceState::Offline, Cause::Resource);
    assert_eq!(calls(&r), [format!("offline x to=- {OFF_PLAIN}")]);
    let r = h.state("x", ResourceState::Offline, Cause::Resource);
    assert_eq!(r.operations, [(op, OpStatus::Succeeded)]);
}

#[test]
fn an_embedded_failure_follows_embedded_failure_action() {
    let mut h = Harness::new(&[
        ("vm", &[("RestartDelay", "1000")], ""),
        ("quiet", &[("EmbeddedFailureAction", "1")], ""),
        ("deaf", &[("EmbeddedFailureAction", "0")], ""),
    ]);
    for n in ["vm", "quiet", "deaf"] {
        h.command(online(n, false));
    }
    h.bring_online(&["vm", "quiet", "deaf"]);
    let embedded = |h: &mut Harness, n: &str| {
        let fact = FromHost::FailureSignal { id: h.ids[n], failure_type: resapi::FailureType::Embedded.raw(), code: 7 };
        h.step(Input::Host(HostEvent::Fact(fact)))
    };
    // 2 (Recover, the default): offline with DUE_TO_EMBEDDED_FAILURE, then back after RestartDelay.
    let r = embedded(&mut h, "vm");
    assert_eq!(calls(&r), ["offline vm to=- flags=0x50 (DUE_TO_EMBEDDED_FAILURE|DO_NOT_UPDATE_PERSISTENT_STATE)"]);
    let r = h.at_ms(10).state("vm", ResourceState::Offline, Cause::Resource);
    assert!(r.calls.is_empty() && r.wake == Some(Duration::from_millis(1_000)), "{:?}", calls(&r));
    assert_eq!(calls(&h.at_ms(1_000).tick()), ["online vm flags=0x0"]);
    // 1 (LogOnly): a log line, nothing else; 0 (None): nothing at all.
    let r = embedded(&mut h, "quiet");
    assert!(r.calls.is_empty());
    assert!(r.events.iter().any(|e| matches!(e, EventKind::Log { resource, .. } if resource == "quiet")));
    let r = embedded(&mut h, "deaf");
    assert!(r.calls.is_empty() && r.events.is_empty());
}

/// The group's ownership record, as the harness's database holds it.
fn owner_doc(h: &Harness) -> halo_engine::model::OwnerDoc {
    serde_json::from_slice(&h.records[&keys::owner("g")].value).unwrap()
}

/// Registers `n2` and marks it Up, as its join and the coordinator would.
fn second_node(h: &mut Harness) {
    let record =
        halo_cluster::NodeRecord { id: 2, name: "n2".into(), peer_addr: String::new(), api_addr: String::new() };
    let state = halo_engine::model::NodeStateDoc { up: true, ..Default::default() };
    let ops = vec![
        Op::Put { key: keys::node("n2"), value: serde_json::to_vec(&record).unwrap() },
        Op::Put { key: keys::node_state("n2"), value: serde_json::to_vec(&state).unwrap() },
    ];
    h.apply_writes(vec![(9_999, halo_cluster::Request { compare: vec![], ops })]);
}

#[test]
fn a_move_takes_the_group_offline_toward_its_destination_then_hands_it_over() {
    let mut h = Harness::new(&[("a", &[], ""), ("b", &[], "[a]")]);
    second_node(&mut h);
    h.command(online("b", false));
    h.bring_online(&["a", "b"]);
    let flags = resapi::GroupMoveFlags::RETURN_TO_SOURCE_NODE_ON_ERROR;
    let r = h.command(Command::Move { group: "g".into(), to: Some("n2".into()), flags, reason: "move".into() });
    // Dependents first, each OfflineV2 with the destination and the move's flags.
    assert_eq!(
        calls(&r),
        ["offline b to=n2 flags=0x42 (RETURN_TO_SOURCE_NODE_ON_ERROR|DO_NOT_UPDATE_PERSISTENT_STATE)"]
    );
    let r = h.state("b", ResourceState::Offline, Cause::Resource);
    assert_eq!(
        calls(&r),
        ["offline a to=n2 flags=0x42 (RETURN_TO_SOURCE_NODE_ON_ERROR|DO_NOT_UPDATE_PERSISTENT_STATE)"]
    );
    assert_eq!(owner_doc(&h).node, "n1", "not handed over while a member is up");
    h.state("a", ResourceState::Offline, Cause::Resource);
    let owner = owner_doc(&h);
    assert_eq!((owner.node.as_str(), owner.online_flags, owner.return_to.as_deref()), ("n2", 0x4, Some("n1")));
    // n1 no longer runs it, and a request about it is for n2.
    let r = h.command(online("a", false));
    assert!(matches!(&r.replies[..], [(_, Err(e))] if e.status == Status::ERROR_HOST_NODE_NOT_GROUP_OWNER));
}

#[test]
fn a_deferred_offline_is_retried_under_queue_enabled_and_otherwise_calls_the_move_off() {
    let mut h = Harness::new(&[("a", &[], "")]);
    second_node(&mut h);
    h.command(online("a", false));
    h.bring_online(&["a"]);
    let busy = |h: &mut Harness| {
        h.report("a", ResourceState::Online, Status::ERROR_CLUSTER_RESOURCE_VETOED_CALL, Cause::Resource)
    };
    // QUEUE_ENABLED: asked again a second later, until it goes.
    let queue = resapi::GroupMoveFlags::QUEUE_ENABLED;
    h.command(Command::Move { group: "g".into(), to: Some("n2".into()), flags: queue, reason: "move".into() });
    let r = busy(h.at_ms(100));
    assert!(r.calls.is_empty());
    assert_eq!(r.wake, Some(Duration::from_millis(1_100)));
    let r = h.at_ms(1_100).tick();
    assert_eq!(calls(&r), ["offline a to=n2 flags=0x44 (QUEUE_ENABLED|DO_NOT_UPDATE_PERSISTENT_STATE)"]);
    // Cancelled meanwhile: the group stays here and comes back up.
    let r = h.command(Command::CancelMove { group: "g".into() });
    assert!(owner_doc(&h).moving.is_none(), "{:?}", r.replies);
    let r = busy(h.at_ms(1_200));
    assert!(r.calls.is_empty(), "{:?}", calls(&r));
    assert_eq!(h.view_state("a"), "Online");
    // Without QUEUE_ENABLED a deferral vetoes the move: called off, no failure counted.
    h.command(Command::Move {
        group: "g".into(),
        to: Some("n2".into()),
        flags: Default::default(),
        reason: "move".into(),
    });
    busy(h.at_ms(2_000));
    let owner = owner_doc(&h);
    assert!(owner.moving.is_none() && owner.node == "n1", "{owner:?}");
    assert_eq!(h.view_state("a"), "Online");
}

#[test]
fn an_operators_in_buffer_reaches_the_next_online_and_offline_unchanged_and_once() {
    use halo_engine::core::Call;
    let input_of = |r: &Ready| -> Vec<u8> {
        match r.calls.as_slice() {
            [c] => match &c.call {
                Call::Online { input, .. } | Call::Offline { input, .. } => input.clone(),
                other => panic!("expected an online or offline, got {other:?}"),
            },
            other => panic!("expected one call, got {other:?}"),
        }
    };
    let mut h = Harness::new(&[("r", &[], "")]);
    let given = resapi::PropertyList::new()
        .with("Mode", resapi::ValueData::Dword(7))
        .with("Reason", resapi::ValueData::Sz("maintenance".into()))
        .encode()
        .unwrap();
    h.command(Command::Online { target: Target::Resource("r".into()), update_persistent: false, input: given.clone() });
    assert_eq!(input_of(&h.opened("r")), given, "OnlineV2 gets the operator's InBuffer as sent");
    h.state("r", ResourceState::Online, Cause::Resource);
    // An offline with its own InBuffer.
    let other = resapi::PropertyList::new().with("Drain", resapi::ValueData::Dword(1)).encode().unwrap();
    let off = Command::Offline {
        target: Target::Resource("r".into()),
        flags: OfflineFlags::empty(),
        update_persistent: false,
        terminate: false,
        input: other.clone(),
    };
    assert_eq!(input_of(&h.command(off)), other);
    h.state("r", ResourceState::Offline, Cause::Resource);
    // Used once: the next online carries halo's own (the epoch), not a stale operator buffer.
    let next = input_of(&h.command(online("r", false)));
    let list = resapi::PropertyList::decode(&next).unwrap();
    assert!(list.get(resapi::EPOCH_PROPERTY).is_some() && list.get("Mode").is_none(), "{list:?}");
}

#[test]
fn a_resource_is_open_while_its_group_is_here_so_control_codes_reach_it_offline() {
    use resapi::control::codes::CLUSCTL_RESOURCE_GET_CHARACTERISTICS;
    let mut h = Harness::new(&[("r", &[], "")]);
    second_node(&mut h);
    // Opened at the node's start, though it is to stay offline.
    assert!(calls(&h.opened("r")).is_empty());
    assert_eq!(h.view_state("r"), "Offline");
    // A control code now goes to the resource type, not to the cluster's default handling.
    let control = Command::Control {
        name: "r".into(),
        code: CLUSCTL_RESOURCE_GET_CHARACTERISTICS.0,
        input: vec![],
        output_size: 64,
    };
    assert_eq!(calls(&h.command(control)), ["control r 0x1000005"]);
    // A resource created now opens at once.
    let create = Command::CreateResource {
        name: "s".into(),
        group: "g".into(),
        type_name: "dummy".into(),
        common: BTreeMap::new(),
        private: BTreeMap::new(),
        dependencies: String::new(),
    };
    assert_eq!(calls(&h.command(create)), ["open s"]);
    let s = serde_json::from_slice::<ResourceDoc>(&h.records[&keys::resource("s")].value).unwrap().id;
    // Its type refuses to open it: it stays offline (not failed), and is not asked again...
    let refused = halo_host::client::HostError { status: Status::ERROR_INVALID_PARAMETER, message: "bad".into() };
    let r = h.step(Input::Opened { id: s, result: Err(refused) });
    assert!(r.calls.is_empty());
    assert_eq!(h.view_state("s"), "Offline");
    assert!(calls(&h.tick()).is_empty());
    // ...until its properties change.
    let set = Command::SetProperties {
        name: "s".into(),
        common: text(&[("Description", "fixed")]),
        private: BTreeMap::new(),
        unset: vec![],
    };
    assert_eq!(calls(&h.command(set)), ["open s"]);
    h.step(Input::Opened { id: s, result: Ok(()) });
    // The group moves to n2: each resource is closed here once it is down.
    let r = h.command(Command::Move {
        group: "g".into(),
        to: Some("n2".into()),
        flags: Default::default(),
        reason: "m".into(),
    });
    let mut closed = calls(&r);
    closed.sort();
    assert_eq!(closed, ["close r", "close s"]);
    assert_eq!(owner_doc(&h).node, "n2");
}

#[test]
fn a_persistent_state_write_that_fails_is_written_again_once_the_cluster_takes_writes() {
    let mut h = Harness::new(&[("r", &[], "")]);
    // The online is accepted, but its PersistentState write fails (the leader was lost).
    let ready = h.core.step(h.now, Input::Command { token: 9_999, command: online("r", true) });
    let write = ready.writes.first().map(|(w, _)| *w).expect("a persistent-state write");
    let lost = halo_engine::model::EngineError::new(Status::ERROR_CLUSTER_NO_QUORUM, "no leader");
    let failed = h.core.step(h.now, Input::Written { write, result: Err(lost) });
    assert!(failed.writes.is_empty(), "not at once");
    assert_eq!(failed.wake, Some(h.now + Duration::from_secs(1)), "it asks to be woken for the retry");
    assert_eq!(h.persistent("r"), None);
    // A second later it is written again, as the operator asked.
    h.at_ms(1_000);
    h.tick();
    assert_eq!(h.persistent("r").as_deref(), Some("true"));
}
