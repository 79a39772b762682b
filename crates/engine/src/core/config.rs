//! Configuration commands: checked against the view, then written as guarded transactions.
//!
//! Every transaction compares the revisions of the keys its check read, so a check and its write
//! cannot be separated by another writer: when a guard fails, the command is checked again once
//! the feed has delivered the write that beat it (a few times at most). A reply is sent only when
//! the view holds the write, so a caller reads what it wrote. Resource ids come from a counter in
//! the database, reserved in blocks so that concurrent creates do not contend for it.

use super::Time;
use super::view::ID_COUNTER;
use super::{Answer, Command, Core, Desired, Ready, Target, Token, WriteId};
use crate::deps::{self, Dependencies};
use crate::events::EventKind;
use crate::model::{self, EngineError, GROUP_COMMON, GroupDoc, ResourceDoc, TYPE_COMMON, TypeDoc, keys};
use halo_cluster::{Compare, Op, Request, Response};
use resapi::{OfflineFlags, Status};
use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;

/// How many times a command is checked again after losing a race.
const MAX_ATTEMPTS: u32 = 8;

/// Resource ids reserved per write of the counter.
const ID_BLOCK: u64 = 1024;

/// What a write was for.
#[derive(Debug, Clone)]
enum Job {
    /// An operator's command.
    Command { token: Token, command: Command, answer: Answer },
    /// PersistentState of these resources follows an operator's online or offline.
    Persist { names: Vec<String>, online: bool },
    /// A block of resource ids from `from`.
    Reserve { from: u64 },
}

/// What a check decided.
enum Plan {
    /// Write this.
    Write(Request),
    /// Nothing to write; answer now.
    Nothing,
    /// The command waits (for ids, or for its resource to go offline).
    Waits,
}

/// A guard that failed: the key, the revision the check had read, and the one the database had.
#[derive(Debug)]
struct Retry {
    key: String,
    expected: Option<u64>,
    actual: Option<u64>,
}

impl Retry {
    /// Whether the view has moved past what the failed check read: it no longer holds the key at
    /// the revision the check assumed, or it has reached the revision that beat it. (Waiting for
    /// the exact winning revision is not enough: the key may have moved on again before the
    /// write's answer came back, and the view would never show that revision.)
    fn caught_up(&self, view: &super::view::View) -> bool {
        view.revision_of(&self.key) != self.expected || self.actual.is_some_and(|r| view.revision >= r)
    }
}

/// How long a PersistentState write that failed (no quorum, a lost leader) waits before it is
/// tried again.
pub(super) const PERSIST_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Writes in flight and what waits for the feed.
#[derive(Debug, Default)]
pub(super) struct Config {
    writes: BTreeMap<WriteId, (Job, u32)>,
    /// Resources whose PersistentState write failed, and when to try again (None: one retry
    /// period after the step that learns of it). An acknowledged online or offline is not
    /// forgotten for want of a leader: it is written once the cluster takes writes again.
    persist_retry: Vec<(Option<Time>, Vec<String>)>,
    /// Replies sent once the view reaches a revision.
    awaiting: Vec<(u64, Token, Answer)>,
    /// Jobs whose guard on a key failed, to check again once the view has caught up with the
    /// write that beat them.
    retries: Vec<(Retry, Job, u32)>,
    /// Ids reserved and not yet given out.
    ids: Range<u64>,
    /// A reservation is in flight.
    reserving: bool,
    /// Creates waiting for ids.
    waiting_for_ids: Vec<(Token, Command, Answer, u32)>,
    /// Creates in flight: resource → (group, type). A delete of the group or type waits its turn.
    /// Keyed by the create's token: two creates of one name each own their entry.
    creating: BTreeMap<Token, (String, String, String)>,
    /// Jobs whose group turn was handed to them, to run (iteratively, not recursively).
    handed: VecDeque<(Job, u32)>,
    /// The operator's latest PersistentState for each resource: a write of an older one (still
    /// in flight, or retried) must not win over it.
    persist_intent: BTreeMap<String, bool>,
    /// PersistentState writes in flight per resource: while one is, the view does not show the
    /// value that will be stored, so a newer intent is written regardless of what the view says.
    persist_inflight: BTreeMap<String, u32>,
    /// Dependency changes and deletes guard every resource of their group, so two of them in one
    /// group at once would only make each other retry: they take turns, per group. The command
    /// holding the turn (by its token), and the ones waiting for it.
    turns: BTreeMap<String, (Token, VecDeque<(Job, u32)>)>,
}

fn json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, EngineError> {
    serde_json::to_vec(v).map_err(|e| EngineError::new(Status::ERROR_INVALID_DATA, e.to_string()))
}

/// Private properties as the type will read them: names a person can type, values its table
/// accepts, what it requires present.
fn check_private(ty: &TypeDoc, private: &BTreeMap<String, String>) -> Result<(), EngineError> {
    if let Some(bad) = private.keys().find(|n| n.is_empty() || n.len() > 255 || n.chars().any(char::is_control)) {
        return Err(EngineError::new(
            Status::ERROR_INVALID_PARAMETER,
            format!("private property name {bad:?}: use 1 to 255 characters, none of them control characters"),
        ));
    }
    halo_host::properties::check_private(&ty.spec, &model::to_list(private))
        .map_err(|e| EngineError::new(e.status, format!("type {}: {}", ty.name, e.message)))
}

fn put(key: String, value: Vec<u8>) -> Op {
    Op::Put { key, value }
}

fn guard(key: String, revision: Option<u64>) -> Compare {
    Compare { key, revision }
}

impl Core {
    /// Starts a configuration command; its reply follows when the view holds its write.
    pub(super) fn config_command(&mut self, token: Token, command: Command, ready: &mut Ready) {
        self.run_job(Job::Command { token, command, answer: Answer::Done }, 0, ready);
    }

    /// Like [`Core::config_command`], answering `answer` on success (control codes that set
    /// properties answer with their own status).
    pub(super) fn config_command_answering(
        &mut self,
        token: Token,
        command: Command,
        answer: Answer,
        ready: &mut Ready,
    ) {
        self.run_job(Job::Command { token, command, answer }, 0, ready);
    }

    /// Tries again the PersistentState writes that failed and are due; returns when the next
    /// one is.
    pub(super) fn retry_persists(&mut self, now: Time, ready: &mut Ready) -> Option<Time> {
        let mut next = None;
        for (at, names) in std::mem::take(&mut self.config.persist_retry) {
            let at = at.unwrap_or(now + PERSIST_RETRY);
            if at > now {
                next = Some(next.map_or(at, |n: Time| n.min(at)));
                self.config.persist_retry.push((Some(at), names));
                continue;
            }
            // Written as the operator last asked (a later operation may have changed it).
            for online in [true, false] {
                let these: Vec<String> = names
                    .iter()
                    .filter(|n| {
                        self.config.persist_intent.get(*n) == Some(&online) && self.view.resources.contains_key(*n)
                    })
                    .cloned()
                    .collect();
                if !these.is_empty() {
                    self.run_job(Job::Persist { names: these, online }, 0, ready);
                }
            }
        }
        next
    }

    /// Records PersistentState for `names` (an operator's online or offline).
    pub(super) fn persist(&mut self, names: &[String], online: bool, ready: &mut Ready) {
        for n in names {
            self.config.persist_intent.insert(n.clone(), online);
        }
        self.run_job(Job::Persist { names: names.to_vec(), online }, 0, ready);
    }

    /// The group whose turn a job must take, if it is one that takes turns.
    fn turn_group(&self, job: &Job) -> Option<(String, Token)> {
        let Job::Command {
            token,
            command: Command::SetDependencies { name, .. } | Command::DeleteResource { name, .. },
            ..
        } = job
        else {
            return None;
        };
        self.view.resources.get(name).map(|r| (r.doc.group.clone(), *token))
    }

    fn run_job(&mut self, job: Job, attempts: u32, ready: &mut Ready) {
        if let Some((group, token)) = self.turn_group(&job) {
            match self.config.turns.get_mut(&group) {
                Some((holder, waiting)) if *holder != token => {
                    waiting.push_back((job, attempts));
                    return;
                }
                Some(_) => {}
                None => {
                    self.config.turns.insert(group, (token, VecDeque::new()));
                }
            }
        }
        let plan = match &job {
            Job::Command { token, command, answer } => self.plan(*token, command, answer, attempts, ready),
            Job::Persist { names, online } => match self.plan_persist(names, *online) {
                Ok((Plan::Write(request), planned)) => {
                    for n in &planned {
                        *self.config.persist_inflight.entry(n.clone()).or_default() += 1;
                    }
                    let write = self.write(request, ready);
                    self.config.writes.insert(write, (Job::Persist { names: planned, online: *online }, attempts));
                    return;
                }
                Ok((plan, _)) => Ok(plan),
                Err(e) => Err(e),
            },
            Job::Reserve { .. } => {
                let from = self.view.next_free_id();
                let request = Request {
                    compare: vec![guard(ID_COUNTER.into(), self.view.revision_of(ID_COUNTER))],
                    ops: vec![put(ID_COUNTER.into(), (from + ID_BLOCK).to_string().into_bytes())],
                };
                let write = self.write(request, ready);
                self.config.writes.insert(write, (Job::Reserve { from }, attempts));
                return;
            }
        };
        // A create is in flight from its check until the view holds it or it failed.
        if let Job::Command { token, command: Command::CreateResource { name, group, type_name, .. }, .. } = &job {
            if matches!(plan, Ok(Plan::Write(_) | Plan::Waits)) {
                self.config.creating.insert(*token, (name.clone(), group.clone(), type_name.clone()));
            } else {
                self.config.creating.remove(token);
            }
        }
        match (plan, job) {
            (Ok(Plan::Write(request)), job) => {
                let write = self.write(request, ready);
                self.config.writes.insert(write, (job, attempts));
            }
            (Ok(Plan::Nothing), Job::Command { token, answer, .. }) => ready.replies.push((token, Ok(answer))),
            // A delete waiting for its resource's offline gives its turn back meanwhile.
            (Ok(Plan::Waits), Job::Command { token, .. }) => self.end_turn(token),
            (Ok(_), _) => {}
            (Err(e), Job::Command { token, .. }) => ready.replies.push((token, Err(e))),
            (Err(e), _) => ready.events.push(EventKind::Log {
                resource: String::new(),
                level: "Error".into(),
                message: format!("recording persistent state: {e}"),
            }),
        }
    }

    /// The write for the resources whose latest intent is still `online` (an older one is left
    /// to the newer job) and whose stored value differs, or may differ once writes in flight
    /// land; with the names it covers.
    fn plan_persist(&self, names: &[String], online: bool) -> Result<(Plan, Vec<String>), EngineError> {
        let value = if online { "true" } else { "false" };
        let mut request = Request::default();
        let mut planned = Vec::new();
        let current = |n: &String| self.config.persist_intent.get(n) == Some(&online);
        for r in names.iter().filter(|n| current(n)).filter_map(|n| self.view.resources.get(n)) {
            let in_flight = self.config.persist_inflight.get(&r.doc.name).is_some_and(|c| *c > 0);
            if in_flight || r.doc.common.get("PersistentState").map(String::as_str) != Some(value) {
                planned.push(r.doc.name.clone());
                let mut doc = r.doc.clone();
                doc.common.insert("PersistentState".into(), value.into());
                request.compare.push(guard(keys::resource(&doc.name), Some(r.revision)));
                request.ops.push(put(keys::resource(&doc.name), json(&doc)?));
            }
        }
        Ok((if request.ops.is_empty() { Plan::Nothing } else { Plan::Write(request) }, planned))
    }

    fn plan(
        &mut self,
        token: Token,
        command: &Command,
        answer: &Answer,
        attempts: u32,
        ready: &mut Ready,
    ) -> Result<Plan, EngineError> {
        let v = &self.view;
        match command {
            Command::CreateGroup { name, common } => {
                model::check_name("group", name)?;
                model::verify(&format!("group {name}"), &GROUP_COMMON, common)?;
                if v.groups.contains_key(name) {
                    return Err(EngineError::new(
                        Status::ERROR_OBJECT_ALREADY_EXISTS,
                        format!("group {name} already exists"),
                    ));
                }
                let doc = GroupDoc { name: name.clone(), common: common.clone() };
                let key = keys::group(name);
                // A new group belongs to the node it was created on, as in WSFC: its ownership
                // record is written with it, so it has an owner (and an epoch) from the start.
                let owner = keys::owner(name);
                Ok(Plan::Write(Request {
                    compare: vec![guard(key.clone(), None), guard(owner.clone(), None)],
                    ops: vec![put(key, json(&doc)?), put(owner, json(&model::OwnerDoc::on(&self.node))?)],
                }))
            }
            Command::SetGroupProperties { name, common } => {
                let g = v.group(name)?;
                let mut doc = g.doc.clone();
                doc.common.extend(common.clone());
                model::verify(&format!("group {name}"), &GROUP_COMMON, &doc.common)?;
                let key = keys::group(name);
                Ok(Plan::Write(Request {
                    compare: vec![guard(key.clone(), Some(g.revision))],
                    ops: vec![put(key, json(&doc)?)],
                }))
            }
            Command::DeleteGroup { name } => {
                let g = v.group(name)?;
                let mut members: Vec<&str> = g.members.iter().map(String::as_str).collect();
                members
                    .extend(self.config.creating.values().filter(|(_, gr, _)| gr == name).map(|(r, _, _)| r.as_str()));
                if !members.is_empty() {
                    return Err(EngineError::new(
                        Status::ERROR_INVALID_STATE,
                        format!("group {name} still holds {}; delete them first", members.join(", ")),
                    ));
                }
                let key = keys::group(name);
                Ok(Plan::Write(Request {
                    compare: vec![guard(key.clone(), Some(g.revision))],
                    ops: vec![Op::Delete { key }, Op::Delete { key: keys::owner(name) }],
                }))
            }
            Command::Move { group, to, flags, reason } => {
                Ok(self.plan_move(group, to.as_deref(), *flags, reason)?.map_or(Plan::Nothing, Plan::Write))
            }
            Command::CancelMove { group } => Ok(self.plan_cancel(group)?.map_or(Plan::Nothing, Plan::Write)),
            Command::SetClusterProperties { common } => {
                let mut props = v.cluster.map(|(_, p)| p).unwrap_or_default();
                for (name, value) in common {
                    let parsed = value.trim().parse::<u32>().map_err(|_| {
                        EngineError::new(
                            Status::ERROR_INVALID_PARAMETER,
                            format!("{name} must be a whole number, not {value:?}"),
                        )
                    })?;
                    match name.as_str() {
                        "HeartbeatInterval" => props.heartbeat_interval = parsed,
                        "HeartbeatThreshold" => props.heartbeat_threshold = parsed,
                        other => {
                            return Err(EngineError::new(
                                Status::ERROR_INVALID_PARAMETER,
                                format!(
                                    "unknown cluster property {other}; the properties are HeartbeatInterval and HeartbeatThreshold"
                                ),
                            ));
                        }
                    }
                }
                props.check()?;
                let key = keys::CLUSTER_PROPERTIES.to_string();
                let revision = v.cluster.map(|(r, _)| r);
                Ok(Plan::Write(Request {
                    compare: vec![guard(key.clone(), revision)],
                    ops: vec![put(key, json(&props)?)],
                }))
            }
            Command::SetNodePaused { node, paused, drain, failback } => {
                if !v.nodes.contains_key(node) {
                    return Err(EngineError::new(
                        Status::ERROR_CLUSTER_NODE_NOT_FOUND,
                        format!("no node named {node} is in the cluster"),
                    ));
                }
                let (revision, state) =
                    v.node_states.get(node).cloned().map_or((None, Default::default()), |(r, s)| (Some(r), s));
                let next = model::NodeStateDoc {
                    paused: *paused,
                    drain: *paused && *drain,
                    failback: !*paused && *failback,
                    ..state
                };
                let key = keys::node_state(node);
                Ok(Plan::Write(Request {
                    compare: vec![guard(key.clone(), revision)],
                    ops: vec![put(key, json(&next)?)],
                }))
            }
            Command::CreateNativeType { name, path, type_name, common } => {
                model::check_name("resource type", name)?;
                model::verify(&format!("type {name}"), &TYPE_COMMON, common)?;
                if v.types.contains_key(name) {
                    return Err(EngineError::new(
                        Status::ERROR_OBJECT_ALREADY_EXISTS,
                        format!("resource type {name} already exists"),
                    ));
                }
                let doc = TypeDoc {
                    name: name.clone(),
                    spec: halo_host::protocol::TypeSpec::Native { path: path.clone(), type_name: type_name.clone() },
                    common: common.clone(),
                };
                let key = keys::type_(name);
                Ok(Plan::Write(Request { compare: vec![guard(key.clone(), None)], ops: vec![put(key, json(&doc)?)] }))
            }
            Command::DeleteType { name } => {
                let (revision, _) = v.types.get(name).ok_or_else(|| {
                    EngineError::new(Status::ERROR_CLUSTER_RESOURCE_TYPE_NOT_FOUND, format!("no resource type {name}"))
                })?;
                if model::builtin_types().iter().any(|t| &t.name == name) {
                    return Err(EngineError::new(Status::ERROR_INVALID_PARAMETER, format!("{name} is built in")));
                }
                let user = v.resources.values().find(|r| &r.doc.type_name == name).map(|r| r.doc.name.clone());
                let user = user
                    .or_else(|| self.config.creating.values().find(|(_, _, t)| t == name).map(|(r, _, _)| r.clone()));
                if let Some(r) = user {
                    return Err(EngineError::new(
                        Status::ERROR_CLUSTER_RESOURCE_TYPE_BUSY,
                        format!("{r} is of type {name}"),
                    ));
                }
                let key = keys::type_(name);
                Ok(Plan::Write(Request {
                    compare: vec![guard(key.clone(), Some(*revision))],
                    ops: vec![Op::Delete { key }],
                }))
            }
            Command::CreateResource { name, group, type_name, common, private, dependencies } => {
                model::check_name("resource", name)?;
                let deps = Dependencies::parse(dependencies)
                    .map_err(|e| EngineError::new(e.status, format!("dependencies of {name}: {}", e.message)))?;
                let g = v.group(group)?;
                let (type_revision, ty) = v.types.get(type_name).ok_or_else(|| {
                    let known: Vec<&str> = v.types.keys().map(String::as_str).collect();
                    EngineError::new(
                        Status::ERROR_CLUSTER_RESOURCE_TYPE_NOT_FOUND,
                        format!("no resource type {type_name}; known: {}", known.join(", ")),
                    )
                })?;
                if v.resources.contains_key(name) {
                    return Err(EngineError::new(
                        Status::ERROR_OBJECT_ALREADY_EXISTS,
                        format!("resource {name} already exists"),
                    ));
                }
                let mut group_of: BTreeMap<String, String> =
                    v.resources.values().map(|r| (r.doc.name.clone(), r.doc.group.clone())).collect();
                group_of.insert(name.clone(), group.clone());
                // Nothing depends on a new resource yet, so no cycle can pass through it.
                deps::check(name, group, &deps, &group_of, &BTreeMap::new())
                    .map_err(|e| EngineError::new(e.status, e.message))?;
                let mut doc = ResourceDoc {
                    id: 0,
                    name: name.clone(),
                    group: group.clone(),
                    type_name: type_name.clone(),
                    common: common.clone(),
                    private: private.clone(),
                    dependencies: deps,
                };
                doc.policy(ty)?;
                check_private(ty, &doc.private)?;
                let mut compare = vec![
                    guard(keys::resource(name), None),
                    guard(keys::group(group), Some(g.revision)),
                    guard(keys::type_(type_name), Some(*type_revision)),
                ];
                for d in doc.dependencies.names() {
                    compare.push(guard(keys::resource(d), v.revision_of(&keys::resource(d))));
                }
                let Some(id) = self.config.ids.next() else {
                    self.config.waiting_for_ids.push((token, command.clone(), answer.clone(), attempts));
                    if !self.config.reserving {
                        self.config.reserving = true;
                        self.run_job(Job::Reserve { from: 0 }, 0, ready);
                    }
                    return Ok(Plan::Waits);
                };
                doc.id = id;
                Ok(Plan::Write(Request { compare, ops: vec![put(keys::resource(name), json(&doc)?)] }))
            }
            Command::SetProperties { name, common, private, unset } => {
                let r = v.resource(name)?;
                let (_, ty) = v.types.get(&r.doc.type_name).ok_or_else(|| {
                    EngineError::new(
                        Status::ERROR_CLUSTER_RESOURCE_TYPE_NOT_FOUND,
                        format!("no resource type {}", r.doc.type_name),
                    )
                })?;
                let mut doc = r.doc.clone();
                doc.common.extend(common.clone());
                doc.private.extend(private.clone());
                for n in unset {
                    if doc.private.remove(n).is_none() {
                        return Err(EngineError::new(
                            Status::ERROR_INVALID_PARAMETER,
                            format!("{name} has no private property {n:?}"),
                        ));
                    }
                }
                doc.policy(ty)?;
                check_private(ty, &doc.private)?;
                let key = keys::resource(name);
                Ok(Plan::Write(Request {
                    compare: vec![guard(key.clone(), Some(r.revision))],
                    ops: vec![put(key, json(&doc)?)],
                }))
            }
            Command::SetDependencies { name, expression } => {
                let deps = Dependencies::parse(expression)
                    .map_err(|e| EngineError::new(e.status, format!("dependencies of {name}: {}", e.message)))?;
                let r = v.resource(name)?;
                let group_of: BTreeMap<String, String> =
                    v.resources.values().map(|r| (r.doc.name.clone(), r.doc.group.clone())).collect();
                let existing: BTreeMap<String, Dependencies> =
                    v.resources.values().map(|r| (r.doc.name.clone(), r.doc.dependencies.clone())).collect();
                deps::check(name, &r.doc.group, &deps, &group_of, &existing)
                    .map_err(|e| EngineError::new(e.status, e.message))?;
                let mut doc = r.doc.clone();
                doc.dependencies = deps;
                // Cycles form within a group: the whole group's expressions must be as checked.
                let mut compare = self.group_guards(&doc.group);
                for d in doc.dependencies.names() {
                    compare.push(guard(keys::resource(d), v.revision_of(&keys::resource(d))));
                }
                Ok(Plan::Write(Request { compare, ops: vec![put(keys::resource(name), json(&doc)?)] }))
            }
            Command::DeleteResource { name, force } => {
                let r = v.resource(name)?;
                if let Some(d) = v.dependents_of(name).next() {
                    return Err(EngineError::new(
                        Status::ERROR_DEPENDENT_RESOURCE_EXISTS,
                        format!("{d} depends on {name}"),
                    ));
                }
                if r.locked && !force {
                    return Err(EngineError::new(
                        Status::ERROR_CLUSTER_RESOURCE_LOCKED_STATUS,
                        format!("{name} is in locked mode; force to delete"),
                    ));
                }
                if r.is_active() {
                    // Taken offline first (forced past locked mode when asked); its persistent
                    // state is left alone: it is about to disappear.
                    let flags = if *force { OfflineFlags::IGNORE_RESOURCE_STATUS } else { OfflineFlags::empty() };
                    let targets = self.view.closure(name, |v, r| v.dependents_of(&r.doc.name).cloned().collect());
                    let op = self.start_operation(targets, Desired::Offline, flags, ready);
                    self.delete_after(op, token, name.clone(), *force);
                    return Ok(Plan::Waits);
                }
                // A dependency added meanwhile anywhere in the group would be left dangling.
                let group = r.doc.group.clone();
                Ok(Plan::Write(Request {
                    compare: self.group_guards(&group),
                    ops: vec![Op::Delete { key: keys::resource(name) }],
                }))
            }
            Command::Online { .. }
            | Command::Offline { .. }
            | Command::Fail { .. }
            | Command::Control { .. }
            | Command::TypeControl { .. }
            | Command::Shutdown => Err(EngineError::new(Status::ERROR_INVALID_FUNCTION, "not a configuration command")),
        }
    }

    /// Guards on every resource of a group, as the view has them.
    fn group_guards(&self, group: &str) -> Vec<Compare> {
        self.view
            .groups
            .get(group)
            .into_iter()
            .flat_map(|g| g.members.iter())
            .filter_map(|n| self.view.resources.get(n))
            .map(|r| guard(keys::resource(&r.doc.name), Some(r.revision)))
            .collect()
    }

    /// The outcome of a write the core asked for.
    pub(super) fn on_written(&mut self, write: WriteId, result: Result<Response, EngineError>, ready: &mut Ready) {
        let Some((job, attempts)) = self.config.writes.remove(&write) else { return };
        if let Job::Persist { names, .. } = &job {
            for n in names {
                if let Some(c) = self.config.persist_inflight.get_mut(n) {
                    *c = c.saturating_sub(1);
                    if *c == 0 {
                        self.config.persist_inflight.remove(n);
                    }
                }
            }
        }
        // A create counts as in flight until the view holds it (see release_waiting_writes), or
        // until its write failed or lost (a retry checks it again and counts it again).
        if let (Job::Command { token, .. }, false) = (&job, matches!(result, Ok(Response::Applied { .. }))) {
            self.config.creating.remove(token);
        }
        match (result, job) {
            (Ok(Response::Applied { .. }), Job::Reserve { from }) => {
                self.config.reserving = false;
                self.config.ids = from..from + ID_BLOCK;
                for (token, command, answer, attempts) in std::mem::take(&mut self.config.waiting_for_ids) {
                    self.run_job(Job::Command { token, command, answer }, attempts, ready);
                }
            }
            (Ok(Response::Applied { revision }), Job::Command { token, answer, .. }) => {
                self.config.awaiting.push((revision, token, answer));
                self.release_waiting_writes(ready);
            }
            (Ok(Response::Applied { .. }), Job::Persist { .. }) => {}
            (Ok(Response::Conflict { key, expected, actual }), job) if attempts + 1 < MAX_ATTEMPTS => {
                self.config.retries.push((Retry { key, expected, actual }, job, attempts + 1));
                self.release_waiting_writes(ready);
            }
            (Ok(Response::Conflict { key, .. }), job) => {
                let e = EngineError::new(
                    Status::ERROR_INVALID_STATE,
                    format!("{key} kept changing while this request was checked; try again"),
                );
                self.job_failed(job, e, ready);
            }
            (Err(e), job) => self.job_failed(job, e, ready),
        }
    }

    fn job_failed(&mut self, job: Job, e: EngineError, ready: &mut Ready) {
        match job {
            Job::Command { token, .. } => ready.replies.push((token, Err(e))),
            Job::Reserve { .. } => {
                self.config.reserving = false;
                for (token, ..) in std::mem::take(&mut self.config.waiting_for_ids) {
                    self.config.creating.remove(&token);
                    ready.replies.push((token, Err(e.clone())));
                }
            }
            Job::Persist { names, .. } => {
                ready.events.push(EventKind::Log {
                    resource: String::new(),
                    level: "Warning".into(),
                    message: format!("recording persistent state of {}: {e}; retrying", names.join(", ")),
                });
                self.config.persist_retry.push((None, names));
            }
        }
    }

    /// The command holding a group's turn is done: the next one waiting takes it, and is run by
    /// [`Core::end_answered_turns`] (a loop, so that a long queue does not recurse).
    fn end_turn(&mut self, token: Token) {
        let Some(group) = self.config.turns.iter().find(|(_, (holder, _))| *holder == token).map(|(g, _)| g.clone())
        else {
            return;
        };
        let Some((_, mut waiting)) = self.config.turns.remove(&group) else { return };
        if let Some((job, attempts)) = waiting.pop_front() {
            if let Job::Command { token: next, .. } = &job {
                self.config.turns.insert(group, (*next, waiting));
            }
            self.config.handed.push_back((job, attempts));
        }
    }

    /// Gives back the turns of the commands answered in this step, and runs the jobs they pass
    /// to, until no turn changes hands.
    pub(super) fn end_answered_turns(&mut self, ready: &mut Ready) {
        let mut seen = 0;
        loop {
            while seen < ready.replies.len() {
                let token = ready.replies[seen].0;
                seen += 1;
                self.end_turn(token);
            }
            let Some((job, attempts)) = self.config.handed.pop_front() else { return };
            self.run_job(job, attempts, ready);
        }
    }

    /// Sends the replies whose writes the view now holds, and checks again the jobs whose race
    /// the view now shows.
    pub(super) fn release_waiting_writes(&mut self, ready: &mut Ready) {
        let revision = self.view.revision;
        let (due, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.config.awaiting).into_iter().partition(|(r, ..)| *r <= revision);
        self.config.awaiting = later;
        for (_, token, answer) in due {
            self.config.creating.remove(&token);
            ready.replies.push((token, Ok(answer)));
        }
        let (due, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.config.retries).into_iter().partition(|(r, ..)| r.caught_up(&self.view));
        self.config.retries = later;
        for (_, job, attempts) in due {
            self.run_job(job, attempts, ready);
        }
    }

    /// Commands: configuration goes through [`Core::config_command`], the rest is answered here.
    pub(super) fn command(&mut self, token: Token, command: Command, ready: &mut Ready) {
        let reply = match command {
            Command::Online { target, update_persistent, input } => {
                let result = self.operate(&target, Desired::Online, OfflineFlags::empty(), update_persistent, ready);
                if result.is_ok() {
                    self.give_input(&target, input);
                }
                result.map(Answer::Operation)
            }
            Command::Offline { target, flags, update_persistent, terminate, input } => {
                if !input.is_empty() {
                    self.give_input(&target, input);
                }
                if terminate
                    && let Target::Resource(name) = &target
                    && let Some(r) = self.view.resources.get_mut(name)
                {
                    r.terminate_next = true;
                }
                let result = self.operate(&target, Desired::Offline, flags, update_persistent, ready);
                if result.is_err()
                    && terminate
                    && let Target::Resource(name) = &target
                    && let Some(r) = self.view.resources.get_mut(name)
                {
                    r.terminate_next = false;
                }
                result.map(Answer::Operation)
            }
            Command::Shutdown => {
                self.shutting_down = true;
                let targets: Vec<String> = self.view.resources.keys().cloned().collect();
                Ok(Answer::Operation(self.start_operation(
                    targets,
                    Desired::Offline,
                    OfflineFlags::DO_NOT_UPDATE_PERSISTENT_STATE,
                    ready,
                )))
            }
            Command::Fail { name } => self.fail(&name, ready),
            Command::Control { name, code, input, output_size } => {
                return self.control(token, &name, code, input, output_size, ready);
            }
            Command::TypeControl { name, code, input, output_size } => {
                return self.type_control(token, &name, code, input, output_size, ready);
            }
            config => return self.config_command(token, config, ready),
        };
        ready.replies.push((token, reply));
    }
}
