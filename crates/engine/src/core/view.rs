//! The engine's view of the cluster database — resource types, groups, resources, the id
//! counter — built only from what the change feed delivers, whoever wrote it, plus the runtime
//! state of each resource on this node. Indices (group members, dependents, ids) are kept here
//! so that one change costs work in proportion to what it touches.

use super::restart::Restart;
use super::{Desired, GroupView, ResourceView, Time};
use crate::model::{EngineError, GroupDoc, NodeStateDoc, OwnerDoc, Policy, ResourceDoc, TypeDoc};
use halo_host::protocol::ResourceId;
use halo_host::protocol::{Timeouts, TypeSpec};
use resapi::{GroupState, OfflineFlags, ResourceState, Status};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The key that holds the next free resource id (ids are reserved from it in blocks).
pub const ID_COUNTER: &str = "counter/resource-id";

/// Whether a resource is open in a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// Not open anywhere.
    Closed,
    /// An open was sent and has not been answered.
    Opening,
    /// Open in a host.
    Open,
}

/// One resource: its document and what this node knows and wants of it.
#[derive(Debug, Clone)]
pub struct Res {
    /// The document, as of `revision`.
    pub doc: ResourceDoc,
    /// The revision of the document.
    pub revision: u64,
    /// The policy resolved from the document and its type.
    pub policy: Policy,
    /// Its state as its host reported it.
    pub state: ResourceState,
    /// The status recorded with the state.
    pub status: Status,
    /// What it should be.
    pub desired: Desired,
    /// An online, offline or terminate was sent and has not finished.
    pub busy: bool,
    /// Open in a host?
    pub open: Opened,
    /// The private properties and timeouts the host last received (open or update).
    pub host_sees: Option<(BTreeMap<String, String>, Timeouts)>,
    /// The failure policy's decisions.
    pub restart: Restart,
    /// Locked mode (SetResourceLockedMode).
    pub locked: bool,
    /// Flags for the next offline the engine sends.
    pub offline_flags: OfflineFlags,
    /// The operator's InBuffer for the next OnlineV2 or OfflineV2 (used once).
    pub operator_input: Option<Vec<u8>>,
    /// Its type refused to open it while it was to stay offline: not opened again for that
    /// until its properties change or it is asked online.
    pub open_refused: bool,
    /// Its host said it does not hold it while it was open here: the host died, and the report
    /// of that death is still to come. No open just to have it open until then, and if it is
    /// opened again meanwhile (to come online), that report is about the old host.
    pub host_lost: bool,
    /// A report of its host's death came while an open was in flight (and was left to the
    /// open's answer).
    pub death_reported_in_open: bool,
    /// The operator failed it: the terminate that follows counts as a failure.
    pub fail_requested: bool,
    /// The next offline skips the graceful path (FORCE_WITH_TERMINATION).
    pub terminate_next: bool,
    /// A Terminate was sent and its outcome has not arrived.
    pub terminating: bool,
    /// A call was refused because its host is going away; the death report is awaited.
    pub host_gone: bool,
    /// The group's epoch when this node last brought it online: the first online of an epoch
    /// carries the flags the move that brought the group here asked for.
    pub online_epoch: u64,
    /// A queued move's next offline, after the resource deferred the last one.
    pub offline_not_before: Option<Time>,
}

impl Res {
    fn new(doc: ResourceDoc, revision: u64, policy: Policy, desired: Desired) -> Res {
        Res {
            doc,
            revision,
            policy,
            state: ResourceState::Offline,
            status: Status::ERROR_SUCCESS,
            desired,
            busy: false,
            open: Opened::Closed,
            host_sees: None,
            operator_input: None,
            open_refused: false,
            host_lost: false,
            death_reported_in_open: false,
            restart: Restart::default(),
            locked: false,
            offline_flags: OfflineFlags::empty(),
            fail_requested: false,
            terminate_next: false,
            terminating: false,
            host_gone: false,
            online_epoch: 0,
            offline_not_before: None,
        }
    }

    /// What the host must see: the private properties and the timeouts.
    pub fn host_config(&self) -> (BTreeMap<String, String>, Timeouts) {
        (self.doc.private.clone(), self.policy.timeouts)
    }

    /// An Update call if the host sees something else than the document says.
    pub fn update_for_host(&mut self) -> Option<super::Call> {
        let config = self.host_config();
        if self.host_sees.as_ref() == Some(&config) {
            return None;
        }
        let call = super::Call::Update { properties: crate::model::to_list(&config.0), timeouts: config.1 };
        self.host_sees = Some(config);
        Some(call)
    }

    /// Up, or on its way somewhere: anything but a settled Offline or Failed.
    pub fn is_active(&self) -> bool {
        self.busy || !matches!(self.state, ResourceState::Offline | ResourceState::Failed)
    }
}

/// One group.
#[derive(Debug, Clone)]
pub struct Group {
    /// The document.
    pub doc: GroupDoc,
    /// Its revision.
    pub revision: u64,
    /// The derived state, as last published.
    pub state: GroupState,
    /// Its resources.
    pub members: BTreeSet<String>,
}

/// The view.
#[derive(Debug, Default)]
pub struct View {
    /// The revision of the last change applied.
    pub revision: u64,
    /// Resource types and their revisions.
    pub types: BTreeMap<String, (u64, TypeDoc)>,
    /// Groups.
    pub groups: BTreeMap<String, Group>,
    /// Resources.
    pub resources: BTreeMap<String, Res>,
    /// Resource names by host id.
    pub by_id: HashMap<ResourceId, String>,
    /// For each name, the resources whose dependency expressions name it.
    pub dependents: HashMap<String, BTreeSet<String>>,
    /// The id counter: its revision and value (the next free id), when the key exists.
    pub id_counter: Option<(u64, u64)>,
    /// Ownership records: group → (revision = epoch, record).
    pub owners: BTreeMap<String, (u64, OwnerDoc)>,
    /// Registered nodes: name → (revision, record).
    pub nodes: BTreeMap<String, (u64, halo_cluster::NodeRecord)>,
    /// Recorded node states: name → (revision, state).
    pub node_states: BTreeMap<String, (u64, NodeStateDoc)>,
    /// The cluster's properties and their revision, when set.
    pub cluster: Option<(u64, crate::model::ClusterProperties)>,
}

/// The policy of a document, with its type's poll intervals. A document that does not verify
/// (written by something that skipped validation) runs with the defaults, and says why.
pub fn resolve_policy(doc: &ResourceDoc, types: &BTreeMap<String, (u64, TypeDoc)>) -> (Policy, Option<String>) {
    let bare_type = TypeDoc { name: doc.type_name.clone(), spec: TypeSpec::Dummy, common: BTreeMap::new() };
    let ty = types.get(&doc.type_name).map(|(_, t)| t).unwrap_or(&bare_type);
    match doc.policy(ty) {
        Ok(p) => (p, None),
        Err(e) => (Policy::DEFAULT, Some(format!("{e}; it runs with the default policy"))),
    }
}

impl View {
    /// The revision a key has in the view (`None`: absent), for transaction guards.
    pub fn revision_of(&self, key: &str) -> Option<u64> {
        if key == ID_COUNTER {
            return self.id_counter.map(|(r, _)| r);
        }
        if key == crate::model::keys::CLUSTER_PROPERTIES {
            return self.cluster.map(|(r, _)| r);
        }
        let (kind, name) = key.split_once('/')?;
        match kind {
            "type" => self.types.get(name).map(|(r, _)| *r),
            "group" => self.groups.get(name).map(|g| g.revision),
            "resource" => self.resources.get(name).map(|r| r.revision),
            "owner" => self.owners.get(name).map(|(r, _)| *r),
            "node-state" => self.node_states.get(name).map(|(r, _)| *r),
            "node" => self.nodes.get(name).map(|(r, _)| *r),
            _ => None,
        }
    }

    /// A resource, or ERROR_RESOURCE_NOT_FOUND naming it.
    pub fn resource(&self, name: &str) -> Result<&Res, EngineError> {
        self.resources.get(name).ok_or_else(|| EngineError::no_resource(name))
    }

    /// A group, or ERROR_GROUP_NOT_FOUND naming it.
    pub fn group(&self, name: &str) -> Result<&Group, EngineError> {
        self.groups.get(name).ok_or_else(|| EngineError::no_group(name))
    }

    /// The resource the host knows by `id`.
    pub fn by_id_mut(&mut self, id: ResourceId) -> Option<&mut Res> {
        let name = self.by_id.get(&id)?;
        self.resources.get_mut(name)
    }

    /// Adds or replaces a resource, keeping the indices.
    pub fn insert_resource(&mut self, doc: ResourceDoc, revision: u64, desired: Desired) -> Option<String> {
        let (policy, problem) = resolve_policy(&doc, &self.types);
        let name = doc.name.clone();
        self.by_id.insert(doc.id, name.clone());
        for d in doc.dependencies.names() {
            self.dependents.entry(d.to_string()).or_default().insert(name.clone());
        }
        if let Some(g) = self.groups.get_mut(&doc.group) {
            g.members.insert(name.clone());
        }
        self.resources.insert(name, Res::new(doc, revision, policy, desired));
        problem
    }

    /// Replaces a resource's document (same name), keeping the runtime state and the indices.
    pub fn update_resource(&mut self, doc: ResourceDoc, revision: u64) -> Option<String> {
        let (policy, problem) = resolve_policy(&doc, &self.types);
        let Some(r) = self.resources.get_mut(&doc.name) else { return problem };
        let old_deps = std::mem::replace(&mut r.doc, doc.clone()).dependencies;
        r.revision = revision;
        r.policy = policy;
        // New properties may make a refused open work.
        r.open_refused = false;
        if old_deps != doc.dependencies {
            for d in old_deps.names() {
                if let Some(set) = self.dependents.get_mut(d) {
                    set.remove(&doc.name);
                }
            }
            for d in doc.dependencies.names() {
                self.dependents.entry(d.to_string()).or_default().insert(doc.name.clone());
            }
        }
        problem
    }

    /// Removes a resource and its index entries.
    pub fn remove_resource(&mut self, name: &str) -> Option<Res> {
        let r = self.resources.remove(name)?;
        self.by_id.remove(&r.doc.id);
        for d in r.doc.dependencies.names() {
            if let Some(set) = self.dependents.get_mut(d) {
                set.remove(name);
            }
        }
        if let Some(g) = self.groups.get_mut(&r.doc.group) {
            g.members.remove(name);
        }
        Some(r)
    }

    /// The resources whose expressions name `name`.
    pub fn dependents_of(&self, name: &str) -> impl Iterator<Item = &String> {
        self.dependents.get(name).into_iter().flatten()
    }

    /// Whether every dependency of `r` is online and meant to stay so: a dependency on its way
    /// offline waits for its dependents, so they must not stay (or come) up on it.
    pub fn dependencies_online(&self, r: &Res) -> bool {
        r.doc.dependencies.satisfied(|d| {
            self.resources.get(d).is_some_and(|x| x.state == ResourceState::Online && x.desired == Desired::Online)
        })
    }

    /// The next free resource id: the counter, or past every id in use when there is none yet.
    pub fn next_free_id(&self) -> u64 {
        let used = self.resources.values().map(|r| r.doc.id).max().unwrap_or(0);
        self.id_counter.map(|(_, v)| v).unwrap_or(0).max(used + 1)
    }

    /// `start` and everything `next` reaches from it.
    pub fn closure(&self, start: &str, next: impl Fn(&View, &Res) -> Vec<String>) -> Vec<String> {
        let mut out = vec![start.to_string()];
        let mut seen: BTreeSet<String> = out.iter().cloned().collect();
        let mut i = 0;
        while i < out.len() {
            if let Some(r) = self.resources.get(&out[i]) {
                for n in next(self, r) {
                    if seen.insert(n.clone()) {
                        out.push(n);
                    }
                }
            }
            i += 1;
        }
        out
    }

    /// A group's state from its members': Failed > Pending > Online > PartialOnline > Offline.
    pub fn derive_group(&self, group: &str) -> GroupState {
        let Some(g) = self.groups.get(group) else { return GroupState::Unknown };
        let states: Vec<ResourceState> =
            g.members.iter().filter_map(|n| self.resources.get(n)).map(|r| r.state).collect();
        if states.contains(&ResourceState::Failed) {
            GroupState::Failed
        } else if states.iter().any(|s| s.is_pending()) {
            GroupState::Pending
        } else if !states.is_empty() && states.iter().all(|s| *s == ResourceState::Online) {
            GroupState::Online
        } else if states.contains(&ResourceState::Online) {
            GroupState::PartialOnline
        } else {
            GroupState::Offline
        }
    }

    /// The node that owns `group` (empty if it has no ownership record).
    pub fn owner_of(&self, group: &str) -> &str {
        self.owners.get(group).map_or("", |(_, o)| o.node.as_str())
    }

    /// A group's epoch: the revision of its ownership record.
    pub fn epoch_of(&self, group: &str) -> u64 {
        self.owners.get(group).map_or(0, |(r, _)| *r)
    }

    /// Whether `group` comes online by itself (node start, failover): not when its Priority is
    /// 0, WSFC's "no auto start".
    pub fn auto_start(&self, group: &str) -> bool {
        self.groups.get(group).and_then(|g| g.doc.common.get("Priority")).and_then(|p| resapi::parse_u32(p)) != Some(0)
    }

    /// The nodes every member of `group` may run on; `None`: any node.
    pub fn possible_owners(&self, group: &str) -> Option<BTreeSet<String>> {
        let g = self.groups.get(group)?;
        let mut possible: Option<BTreeSet<String>> = None;
        for r in g.members.iter().filter_map(|n| self.resources.get(n)) {
            let names: BTreeSet<String> =
                crate::model::names_in(r.doc.common.get("PossibleOwners")).into_iter().collect();
            if names.is_empty() {
                continue;
            }
            possible = Some(match possible {
                Some(p) => p.intersection(&names).cloned().collect(),
                None => names,
            });
        }
        possible
    }

    /// Where placement would put `group` now, never on a node in `exclude` (see
    /// [`crate::placement`]).
    pub fn place(&self, group: &str, exclude: &[&str]) -> Option<String> {
        let g = self.groups.get(group)?;
        let nodes: BTreeMap<String, NodeStateDoc> = self
            .nodes
            .keys()
            .map(|n| (n.clone(), self.node_states.get(n).map(|(_, s)| s.clone()).unwrap_or_default()))
            .collect();
        let placed: Vec<(String, String, Vec<String>)> = self
            .owners
            .iter()
            .filter(|(name, _)| name.as_str() != group)
            .map(|(name, (_, o))| {
                let classes = self
                    .groups
                    .get(name)
                    .map(|g| crate::model::names_in(g.doc.common.get("AntiAffinityClassNames")))
                    .unwrap_or_default();
                (name.clone(), o.moving.as_ref().map_or(o.node.clone(), |m| m.to.clone()), classes)
            })
            .collect();
        crate::placement::choose(&g.doc, self.possible_owners(group).as_ref(), &nodes, &placed, exclude)
    }

    /// A resource as the API shows it.
    pub fn resource_view(&self, r: &Res, node: &str) -> ResourceView {
        // A node knows the state only of what runs on it: of a group another node owns, it can
        // say nothing unless something of it is still active here.
        let elsewhere = self.owners.get(&r.doc.group).is_some_and(|(_, o)| o.node != node);
        let state = if elsewhere && !r.is_active() { "Unknown".to_string() } else { r.state.to_string() };
        ResourceView {
            name: r.doc.name.clone(),
            group: r.doc.group.clone(),
            type_name: r.doc.type_name.clone(),
            state,
            status: r.status.0,
            status_text: r.status.to_string(),
            desired: r.desired,
            owner: self.owners.get(&r.doc.group).map_or(node, |(_, o)| o.node.as_str()).to_string(),
            epoch: self.epoch_of(&r.doc.group),
            common: r.doc.common.clone(),
            private: r.doc.private.clone(),
            dependencies: r.doc.dependencies.to_string(),
            locked: r.locked,
        }
    }

    /// A group as the API shows it.
    pub fn group_view(&self, g: &Group, node: &str) -> GroupView {
        let elsewhere = self.owners.get(&g.doc.name).is_some_and(|(_, o)| o.node != node);
        let state =
            if elsewhere && g.state == GroupState::Offline { "Unknown".to_string() } else { g.state.to_string() };
        GroupView {
            name: g.doc.name.clone(),
            state,
            owner: self.owners.get(&g.doc.name).map_or(node, |(_, o)| o.node.as_str()).to_string(),
            epoch: self.epoch_of(&g.doc.name),
            moving_to: self.owners.get(&g.doc.name).and_then(|(_, o)| o.moving.as_ref().map(|m| m.to.clone())),
            resources: g.members.iter().cloned().collect(),
            common: g.doc.common.clone(),
        }
    }

    /// When the earliest restart delay or retry period ends.
    pub fn next_restart(&self, waiting: &BTreeSet<String>) -> Option<Time> {
        waiting
            .iter()
            .filter_map(|n| self.resources.get(n))
            .filter_map(|r| match (r.restart.wait_until, r.offline_not_before) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            })
            .min()
    }
}
