//! The invariant checker. It watches what the core is given and what it decides, keeps its own
//! record of the facts delivered and of the documents the feed delivered (never peeking into
//! the core's internals for a judgement), and says what went wrong. Each check returns the
//! violation's description; the runner adds the seed and the replay command.

use crate::db::Db;
use crate::host::HostModel;
use halo_cluster::{Op, Record};
use halo_engine::core::{Answer, Call, Command, Core, HostCall, OpStatus, Token};
use halo_engine::deps::Dependencies;
use halo_engine::model::{EngineError, GroupDoc, ResourceDoc, keys};
use halo_host::client::HostEvent;
use halo_host::protocol::{FromHost, ResourceId};
use resapi::{ResourceState, Status};
use std::collections::{BTreeMap, BTreeSet};

/// The result of one check: `Err` describes a violation.
pub type Check = Result<(), String>;

/// Tracks, per group, the nodes where any of its resources runs; two at once is the violation
/// halo exists to prevent.
#[derive(Debug, Default, Clone)]
pub struct Placement {
    running: BTreeMap<String, BTreeSet<String>>,
}

impl Placement {
    /// Records the groups running on `node` now and checks that none runs on another node too.
    pub fn observe(&mut self, node: &str, groups: BTreeSet<String>) -> Check {
        self.running.insert(node.to_string(), groups);
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for (n, groups) in &self.running {
            for g in groups {
                if let Some(other) = seen.insert(g, n) {
                    return Err(format!("group {g} runs on {other} and on {n} at the same instant"));
                }
            }
        }
        Ok(())
    }
}

/// What the checker knows.
#[derive(Debug, Default)]
pub struct Checker {
    /// The latest state delivered to the current core, per resource.
    delivered: BTreeMap<ResourceId, ResourceState>,
    /// Resource documents as the current core's feed delivered them.
    docs: BTreeMap<String, ResourceDoc>,
    /// Every resource's group as last seen (kept after deletes: a deleted resource may still run).
    group_of: BTreeMap<String, String>,
    /// Commands waiting for their reply.
    outstanding: BTreeMap<Token, Command>,
    /// Operations that ended, of the current core.
    ended: BTreeSet<u64>,
    /// Group placement across nodes.
    pub placement: Placement,
    /// Commands whose reply was lost with a restarted core.
    pub lost_to_restart: u64,
}

fn resource_doc(value: &[u8]) -> Option<ResourceDoc> {
    serde_json::from_slice(value).ok()
}

impl Checker {
    /// A checker that has seen nothing.
    pub fn new() -> Checker {
        Checker::default()
    }

    // ---- what the core is given ----

    /// The core loads the database.
    pub fn on_loaded(&mut self, records: &BTreeMap<String, Record>) {
        self.docs.clear();
        for (key, record) in records {
            if key.starts_with("resource/")
                && let Some(doc) = resource_doc(&record.value)
            {
                self.group_of.insert(doc.name.clone(), doc.group.clone());
                self.docs.insert(doc.name.clone(), doc);
            }
        }
    }

    /// The core receives a change from the feed.
    pub fn on_change(&mut self, ops: &[Op]) {
        for op in ops {
            match op {
                Op::Put { key, value } => {
                    if let Some(name) = key.strip_prefix("resource/")
                        && let Some(doc) = resource_doc(value)
                    {
                        self.group_of.insert(name.to_string(), doc.group.clone());
                        self.docs.insert(name.to_string(), doc);
                    }
                }
                Op::Delete { key } => {
                    if let Some(name) = key.strip_prefix("resource/") {
                        self.docs.remove(name);
                    }
                }
            }
        }
    }

    /// The core receives a host fact.
    pub fn on_fact(&mut self, event: &HostEvent) {
        if let HostEvent::Fact(FromHost::State { id, state, .. }) = event
            && let Ok(state) = ResourceState::from_raw(*state)
        {
            self.delivered.insert(*id, state);
        }
    }

    /// The core is dropped and a new one starts: it has heard nothing yet, and the replies the
    /// old one owed are lost, as an API caller's would be.
    pub fn on_restart(&mut self) {
        self.delivered.clear();
        self.ended.clear();
        self.lost_to_restart += self.outstanding.len() as u64;
        self.outstanding.clear();
    }

    /// An operator command goes to the core.
    pub fn on_command(&mut self, token: Token, command: &Command) {
        self.outstanding.insert(token, command.clone());
    }

    // ---- what the core decides ----

    /// A call the core makes, checked against the host model before the model executes it.
    pub fn before_call(&self, call: &HostCall, hosts: &HostModel) -> Check {
        let id = call.id;
        let held = hosts.resource(id);
        match &call.call {
            Call::Open(_) => {
                if let Some(h) = held {
                    return Err(format!(
                        "open of {} (#{id}) while the host already holds it (opened: {}, state {})",
                        call.resource, h.opened, h.state
                    ));
                }
            }
            Call::Online { .. } | Call::Offline { .. } => {
                if let Some(h) = &held {
                    if !h.opened {
                        return Err(format!("{call} while its open is still in progress"));
                    }
                    // Terminate may run beside anything; the others one at a time.
                    if h.in_call {
                        return Err(format!("{call} while a call of it is in flight (host state {})", h.state));
                    }
                }
                if matches!(call.call, Call::Online { .. }) {
                    self.dependencies_online(&call.resource)?;
                }
            }
            Call::Terminate | Call::Update { .. } | Call::Close | Call::Control { .. } => {
                if let Some(h) = held
                    && !h.opened
                    && !matches!(call.call, Call::Control { .. })
                {
                    return Err(format!("{call} while its open is still in progress"));
                }
            }
        }
        Ok(())
    }

    /// Every OR-group of the resource's dependency expression (as the feed gave it to the core)
    /// has a member whose latest delivered state is Online.
    fn dependencies_online(&self, name: &str) -> Check {
        let Some(doc) = self.docs.get(name) else {
            return Err(format!("online {name}: the feed never delivered such a resource"));
        };
        let online =
            |d: &str| self.docs.get(d).is_some_and(|x| self.delivered.get(&x.id) == Some(&ResourceState::Online));
        for any in &doc.dependencies.all_of {
            if !any.iter().any(|d| online(d)) {
                let states: Vec<String> = any
                    .iter()
                    .map(|d| {
                        let s = self.docs.get(d).and_then(|x| self.delivered.get(&x.id));
                        format!("{d}={}", s.map(|s| s.to_string()).unwrap_or_else(|| "unknown".into()))
                    })
                    .collect();
                return Err(format!(
                    "online {name} before its dependencies: none of ({}) is online",
                    states.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// A reply to a command: exactly one per command, and consistent with the database up to
    /// the revision the core's view holds.
    pub fn on_reply(&mut self, token: Token, reply: &Result<Answer, EngineError>, db: &Db, revision: u64) -> Check {
        let Some(command) = self.outstanding.remove(&token) else {
            return Err(format!("reply to command {token}, which has no reply outstanding: {reply:?}"));
        };
        let answer = match reply {
            Ok(a) => a,
            Err(_) => return Ok(()),
        };
        let fits = |key: String, accept: &dyn Fn(&[u8]) -> bool| db.was_put(&key, revision, accept);
        let ok = match &command {
            Command::CreateGroup { name, .. } => fits(keys::group(name), &|_| true),
            Command::SetGroupProperties { name, common } => fits(keys::group(name), &|v| {
                serde_json::from_slice::<GroupDoc>(v)
                    .is_ok_and(|d| common.iter().all(|(k, val)| d.common.get(k) == Some(val)))
            }),
            Command::CreateResource { name, group, type_name, .. } => fits(keys::resource(name), &|v| {
                resource_doc(v).is_some_and(|d| &d.group == group && &d.type_name == type_name)
            }),
            Command::SetProperties { name, common, private, unset } => fits(keys::resource(name), &|v| {
                resource_doc(v).is_some_and(|d| {
                    common.iter().all(|(k, val)| d.common.get(k) == Some(val))
                        && private.iter().all(|(k, val)| d.private.get(k) == Some(val))
                        && unset.iter().all(|k| !d.private.contains_key(k))
                })
            }),
            Command::SetDependencies { name, expression } => {
                let wanted = Dependencies::parse(expression).ok();
                fits(keys::resource(name), &|v| {
                    resource_doc(v).is_some_and(|d| Some(&d.dependencies) == wanted.as_ref())
                })
            }
            Command::DeleteResource { name, .. } => db.was_deleted(&keys::resource(name), revision),
            Command::DeleteGroup { name } => db.was_deleted(&keys::group(name), revision),
            Command::DeleteType { name } => db.was_deleted(&keys::type_(name), revision),
            Command::CreateNativeType { name, .. } => fits(keys::type_(name), &|_| true),
            Command::Online { .. } | Command::Offline { .. } | Command::Shutdown => {
                matches!(answer, Answer::Operation(_))
            }
            Command::Fail { .. } => matches!(answer, Answer::Done),
            Command::Move { group, .. } | Command::CancelMove { group } => fits(keys::owner(group), &|_| true),
            Command::SetNodePaused { node, .. } => fits(keys::node_state(node), &|_| true),
            Command::SetClusterProperties { .. } => fits(keys::CLUSTER_PROPERTIES.to_string(), &|_| true),
            Command::Control { .. } | Command::TypeControl { .. } => matches!(answer, Answer::Control(_)),
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "command {token} {command:?} answered {answer:?}, but the database up to revision {revision} disagrees"
            ))
        }
    }

    /// An operation's status: once ended, it stays ended.
    pub fn on_operation(&mut self, id: u64, status: &OpStatus) -> Check {
        if self.ended.contains(&id) {
            return Err(format!("operation {id} ended twice (now {status:?})"));
        }
        if *status != OpStatus::Pending {
            self.ended.insert(id);
        }
        Ok(())
    }

    /// The groups with a resource running on `node`, from the host model.
    pub fn running_groups(&self, hosts: &HostModel) -> BTreeSet<String> {
        hosts
            .resources()
            .filter(|(_, f)| f.running)
            .map(|(_, f)| self.group_of.get(&f.name).cloned().unwrap_or_else(|| format!("?{}", f.name)))
            .collect()
    }

    // ---- when things have settled ----

    /// Every command was answered.
    pub fn all_answered(&self) -> Check {
        match self.outstanding.iter().next() {
            None => Ok(()),
            Some((token, command)) => {
                Err(format!("{} command(s) never answered, first {token}: {command:?}", self.outstanding.len()))
            }
        }
    }
}

/// The core's view of each resource equals the host model's: the same state for a resource a
/// host holds, Offline or Failed for one no host holds; and no host runs a resource the core
/// does not know. Call it once the feed has delivered everything (the ids come from `db`).
pub fn views_agree(core: &Core, hosts: &HostModel, db: &Db) -> Check {
    let ids: BTreeMap<String, ResourceId> = docs_of(db).into_values().map(|d| (d.name, d.id)).collect();
    let mut known = BTreeSet::new();
    for r in core.resources() {
        let id = ids.get(&r.name).copied();
        known.insert(id);
        match id.and_then(|id| hosts.resource(id)) {
            // Offline and Failed are both "stopped": the core records an operator's offline of a
            // failed resource without a host call, and FailClusterResource turns the terminate's
            // Offline into Failed; the host keeps its own last word.
            Some(h) if stopped(&h.state.to_string()) && stopped(&r.state) => {}
            Some(h) if h.state.to_string() != r.state => {
                return Err(format!("{}: the core says {}, its host says {}", r.name, r.state, h.state));
            }
            None if !stopped(&r.state) => {
                return Err(format!("{}: the core says {}, but no host holds it", r.name, r.state));
            }
            _ => {}
        }
    }
    for (id, f) in hosts.resources() {
        if f.running && !known.contains(&Some(id)) {
            return Err(format!("{} (#{id}) runs ({}) but the core does not know it", f.name, f.state));
        }
    }
    Ok(())
}

fn stopped(state: &str) -> bool {
    matches!(state, "Offline" | "Failed")
}

/// The resource documents the database holds, by name.
fn docs_of(db: &Db) -> BTreeMap<String, ResourceDoc> {
    let (_, records) = db.snapshot();
    records
        .iter()
        .filter(|(k, _)| k.starts_with("resource/"))
        .filter_map(|(_, r)| resource_doc(&r.value))
        .map(|d| (d.name.clone(), d))
        .collect()
}

/// After a restart and a quiet phase: every resource whose stored PersistentState is true is
/// Online in its host, unless the core says it Failed for good or its dependencies cannot hold;
/// nothing else runs; nothing is online whose dependency expression does not hold.
pub fn persistent_state_restored(core: &Core, hosts: &HostModel, db: &Db) -> Check {
    let (_, records) = db.snapshot();
    let docs = docs_of(db);
    let types: BTreeMap<String, halo_engine::model::TypeDoc> = records
        .iter()
        .filter(|(k, _)| k.starts_with("type/"))
        .filter_map(|(_, r)| serde_json::from_slice::<halo_engine::model::TypeDoc>(&r.value).ok())
        .map(|t| (t.name.clone(), t))
        .collect();
    let host_state = |name: &str| -> ResourceState {
        docs.get(name).and_then(|d| hosts.resource(d.id)).map(|h| h.state).unwrap_or(ResourceState::Offline)
    };
    for (name, doc) in &docs {
        // The core runs a document that does not verify with the default policy (not persistent).
        let persistent = types.get(&doc.type_name).and_then(|t| doc.policy(t).ok()).is_some_and(|p| p.persistent);
        let deps_hold = doc.dependencies.satisfied(|d| host_state(d) == ResourceState::Online);
        let state = host_state(name);
        let core_state = core.resource(name).map(|r| r.state).unwrap_or_default();
        if state == ResourceState::Online && !deps_hold {
            return Err(format!("{name} is online but its dependencies {} do not hold", doc.dependencies));
        }
        if persistent && deps_hold && state != ResourceState::Online && core_state != "Failed" {
            return Err(format!(
                "{name} has PersistentState true but is {state} after the restart (the core says {core_state})"
            ));
        }
        if !persistent && state != ResourceState::Offline && state != ResourceState::Failed {
            return Err(format!("{name} has PersistentState false but is {state} after the restart"));
        }
        if core_state == "Failed"
            && let Some(r) = core.resource(name)
            && r.status == Status::ERROR_SUCCESS.0
        {
            return Err(format!("{name} is Failed with status ERROR_SUCCESS"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn two_nodes_running_one_group_is_caught() {
        let mut p = Placement::default();
        assert!(p.observe("n1", groups(&["web"])).is_ok());
        assert!(p.observe("n2", groups(&["db"])).is_ok());
        let err = p.observe("n2", groups(&["db", "web"])).unwrap_err();
        assert!(err.contains("web") && err.contains("n1") && err.contains("n2"), "{err}");
        // Once n1 lets go, n2 may run it.
        assert!(p.observe("n1", groups(&[])).is_ok());
        assert!(p.observe("n2", groups(&["db", "web"])).is_ok());
    }

    #[test]
    fn unknown_and_double_replies_are_caught() {
        let mut c = Checker::new();
        let db = Db::new();
        c.on_command(1, &Command::Fail { name: "r".into() });
        assert!(c.on_reply(1, &Ok(Answer::Done), &db, 0).is_ok());
        assert!(c.on_reply(1, &Ok(Answer::Done), &db, 0).is_err());
        // A create answered Ok must be in the database.
        c.on_command(2, &Command::CreateGroup { name: "g".into(), common: BTreeMap::new() });
        assert!(c.on_reply(2, &Ok(Answer::Done), &db, 0).unwrap_err().contains("disagrees"));
    }

    #[test]
    fn operations_end_once() {
        let mut c = Checker::new();
        assert!(c.on_operation(1, &OpStatus::Pending).is_ok());
        assert!(c.on_operation(1, &OpStatus::Succeeded).is_ok());
        assert!(c.on_operation(1, &OpStatus::Succeeded).is_err());
    }
}
