//! The engine of one node: keeps each resource converging to what it should be (online or
//! offline), in dependency order and as parallel as the graph allows, applies the restart policy,
//! records persistent state, and turns host facts into states and events.

use crate::deps::{self, Dependencies};
use crate::events::{EventKind, Events};
use crate::model::{self, EngineError, GROUP_COMMON, GroupDoc, Policy, ResourceDoc, TypeDoc, keys};
use halo_cluster::{ClusterDb, Compare, Op, Request, Response};
use halo_host::client::{HostEvent, HostManager, OpenSpec};
use halo_host::protocol::{Cause, FromHost, ResourceId};
use resapi::{GroupState, LogLevel, OfflineFlags, ResourceState, Status};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// How long a delete waits for the resource to go offline first.
const DELETE_OFFLINE_TIMEOUT: Duration = Duration::from_secs(300);

/// What the operator wants of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Desired {
    /// Online.
    Online,
    /// Offline.
    Offline,
}

/// An operation's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum OpStatus {
    /// Still going (the API answers 202 and ERROR_IO_PENDING).
    Pending,
    /// Reached its goal.
    Succeeded,
    /// Ended without reaching it.
    Failed {
        /// The code.
        code: u32,
        /// Its name and a reason.
        message: String,
    },
}

#[derive(Debug, Clone)]
struct Operation {
    resources: Vec<String>,
    goal: ResourceState,
    status: watch::Sender<OpStatus>,
    finished: bool,
}

/// One resource as the engine runs it.
#[derive(Debug)]
struct Rt {
    doc: ResourceDoc,
    policy: Policy,
    ty: TypeDoc,
    state: ResourceState,
    status: Status,
    desired: Desired,
    /// An online/offline was sent and has not finished.
    busy: bool,
    open: Opened,
    /// Failures within the restart window.
    failures: VecDeque<Instant>,
    /// Not before this instant (RestartDelay, RetryPeriodOnFailure).
    wait_until: Option<Instant>,
    /// Restarts exhausted, no retry left: waits for an operator.
    blocked: bool,
    locked: bool,
    /// Flags for the next offline the engine sends.
    offline_flags: OfflineFlags,
    /// The operator failed it: the terminate that follows counts as a failure.
    fail_requested: bool,
    /// The next offline skips the graceful path (FORCE_WITH_TERMINATION).
    terminate_next: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opened {
    Closed,
    Opening,
    Open,
}

#[derive(Default)]
struct Runtime {
    types: BTreeMap<String, TypeDoc>,
    groups: BTreeMap<String, GroupDoc>,
    resources: BTreeMap<String, Rt>,
    by_id: HashMap<ResourceId, String>,
    group_states: BTreeMap<String, GroupState>,
    ops: BTreeMap<u64, Operation>,
    next_op: u64,
    /// The last resource id handed out (the engine is the only writer, so ids come from here).
    last_id: u64,
    shutting_down: bool,
}

/// A resource as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceView {
    /// Its name.
    pub name: String,
    /// Its group.
    pub group: String,
    /// Its type.
    pub type_name: String,
    /// Its state's name (`Online`, `OnlinePending`, …).
    pub state: String,
    /// The Win32 status recorded with the state.
    pub status: u32,
    /// That status's name and number.
    pub status_text: String,
    /// What it should be.
    pub desired: Desired,
    /// The node that owns it.
    pub owner: String,
    /// Common properties as set.
    pub common: BTreeMap<String, String>,
    /// Private properties.
    pub private: BTreeMap<String, String>,
    /// Its dependency expression.
    pub dependencies: String,
    /// Locked mode.
    pub locked: bool,
}

/// A group as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct GroupView {
    /// Its name.
    pub name: String,
    /// Its derived state's name.
    pub state: String,
    /// The node that owns it.
    pub owner: String,
    /// Its resources.
    pub resources: Vec<String>,
    /// Common properties as set.
    pub common: BTreeMap<String, String>,
}

fn lock(m: &Mutex<Runtime>) -> MutexGuard<'_, Runtime> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The engine.
pub struct Engine {
    node: String,
    db: Arc<ClusterDb>,
    hosts: HostManager,
    rt: Mutex<Runtime>,
    /// Configuration changes that read, check and write (dependencies, properties, deletes,
    /// persistent state) take it exclusively, so checks and writes cannot interleave; creations
    /// (guarded in the database by "must not exist") share it.
    config: tokio::sync::RwLock<()>,
    events: Events,
    me: Weak<Engine>,
}

fn fmt_err(status: Status, message: impl Into<String>) -> EngineError {
    EngineError::new(status, message)
}

fn db_err(e: halo_cluster::ClusterError) -> EngineError {
    // Consensus trouble means no quorum; anything else is the database itself failing.
    let status = match e {
        halo_cluster::ClusterError::Raft(_) => Status::ERROR_CLUSTER_NO_QUORUM,
        _ => Status::ERROR_INVALID_DATA,
    };
    fmt_err(status, format!("cluster database: {e}"))
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>, EngineError> {
    serde_json::to_vec(v).map_err(|e| fmt_err(Status::ERROR_INVALID_DATA, e.to_string()))
}

impl Engine {
    /// Loads every object from the database, starts following the hosts' facts, and brings
    /// online what was online (PersistentState) when the node stopped.
    pub async fn start(
        node: &str,
        db: Arc<ClusterDb>,
        hosts: HostManager,
        mut facts: mpsc::UnboundedReceiver<HostEvent>,
    ) -> Result<Arc<Engine>, EngineError> {
        let engine = Arc::new_cyclic(|me| Engine {
            node: node.to_string(),
            db,
            hosts,
            rt: Mutex::new(Runtime::default()),
            config: tokio::sync::RwLock::new(()),
            events: Events::default(),
            me: me.clone(),
        });
        engine.load().await?;
        let weak = Arc::downgrade(&engine);
        tokio::spawn(async move {
            while let Some(fact) = facts.recv().await {
                let Some(e) = weak.upgrade() else { return };
                e.on_host(fact);
            }
        });
        engine.events.emit(EventKind::NodeState { node: node.to_string(), state: "Up".into() });
        engine.reconcile();
        Ok(engine)
    }

    /// The event stream.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    async fn load(&self) -> Result<(), EngineError> {
        for ty in model::builtin_types() {
            if self.db.get(&keys::type_(&ty.name)).map_err(db_err)?.is_none() {
                self.db.put(&keys::type_(&ty.name), json(&ty)?).await.map_err(db_err)?;
            }
        }
        let parse = |what: &str, bytes: &[u8]| -> Result<serde_json::Value, EngineError> {
            serde_json::from_slice(bytes).map_err(|e| fmt_err(Status::ERROR_INVALID_DATA, format!("{what}: {e}")))
        };
        let mut rt = lock(&self.rt);
        for (k, r) in self.db.list("type/").map_err(db_err)? {
            let ty: TypeDoc = serde_json::from_value(parse(&k, &r.value)?)
                .map_err(|e| fmt_err(Status::ERROR_INVALID_DATA, e.to_string()))?;
            rt.types.insert(ty.name.clone(), ty);
        }
        for (k, r) in self.db.list("group/").map_err(db_err)? {
            let g: GroupDoc = serde_json::from_value(parse(&k, &r.value)?)
                .map_err(|e| fmt_err(Status::ERROR_INVALID_DATA, e.to_string()))?;
            rt.groups.insert(g.name.clone(), g);
        }
        for (k, r) in self.db.list("resource/").map_err(db_err)? {
            let doc: ResourceDoc = serde_json::from_value(parse(&k, &r.value)?)
                .map_err(|e| fmt_err(Status::ERROR_INVALID_DATA, e.to_string()))?;
            let Some(ty) = rt.types.get(&doc.type_name).cloned() else {
                return Err(fmt_err(
                    Status::ERROR_CLUSTER_RESOURCE_TYPE_NOT_FOUND,
                    format!("{k}: type {} is missing", doc.type_name),
                ));
            };
            let policy = doc.policy(&ty)?;
            let desired = if policy.persistent { Desired::Online } else { Desired::Offline };
            rt.by_id.insert(doc.id, doc.name.clone());
            rt.last_id = rt.last_id.max(doc.id);
            rt.resources.insert(doc.name.clone(), Rt::new(doc, policy, ty, desired));
        }
        let groups: Vec<String> = rt.groups.keys().cloned().collect();
        for g in groups {
            let state = derive_group(&rt, &g);
            rt.group_states.insert(g, state);
        }
        Ok(())
    }

    // ---- configuration ----

    /// Creates a group.
    pub async fn create_group(&self, name: &str, common: BTreeMap<String, String>) -> Result<(), EngineError> {
        let _config = self.config.read().await;
        model::check_name("group", name)?;
        model::verify(&format!("group {name}"), &GROUP_COMMON, &common)?;
        let doc = GroupDoc { name: name.into(), common };
        self.create(&keys::group(name), json(&doc)?, "group", name).await?;
        let mut rt = lock(&self.rt);
        rt.groups.insert(name.into(), doc);
        rt.group_states.insert(name.into(), GroupState::Offline);
        drop(rt);
        self.events.emit(EventKind::Added { object: "group".into(), name: name.into() });
        // One node owns every group until clustering lands.
        self.events.emit(EventKind::Owner { group: name.into(), node: self.node.clone() });
        Ok(())
    }

    async fn create(&self, key: &str, value: Vec<u8>, kind: &str, name: &str) -> Result<(), EngineError> {
        let request = Request {
            compare: vec![Compare { key: key.into(), revision: None }],
            ops: vec![Op::Put { key: key.into(), value }],
        };
        match self.db.write(request).await.map_err(db_err)? {
            Response::Applied { .. } => Ok(()),
            Response::Conflict { .. } => {
                Err(fmt_err(Status::ERROR_OBJECT_ALREADY_EXISTS, format!("{kind} {name} already exists")))
            }
        }
    }

    /// Sets a group's common properties (validated against §6.2).
    pub async fn set_group_properties(&self, name: &str, common: BTreeMap<String, String>) -> Result<(), EngineError> {
        let _config = self.config.write().await;
        let mut doc = lock(&self.rt)
            .groups
            .get(name)
            .cloned()
            .ok_or_else(|| fmt_err(Status::ERROR_GROUP_NOT_FOUND, format!("no group {name}")))?;
        let changed: Vec<String> = common.keys().cloned().collect();
        doc.common.extend(common);
        model::verify(&format!("group {name}"), &GROUP_COMMON, &doc.common)?;
        self.db.put(&keys::group(name), json(&doc)?).await.map_err(db_err)?;
        lock(&self.rt).groups.insert(name.into(), doc);
        self.events.emit(EventKind::Property { object: "group".into(), name: name.into(), properties: changed });
        Ok(())
    }

    /// Declares a resource type served by a native plug-in: `path` is its `.so`, `type_name` the
    /// name its `Startup` expects (default: the type's own name).
    pub async fn create_native_type(
        &self,
        name: &str,
        path: &str,
        type_name: Option<&str>,
        common: BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        let _config = self.config.read().await;
        model::check_name("resource type", name)?;
        model::verify(&format!("type {name}"), &model::TYPE_COMMON, &common)?;
        let file = std::path::Path::new(path);
        if !file.is_absolute() || !file.is_file() {
            return Err(fmt_err(
                Status::ERROR_FILE_NOT_FOUND,
                format!("plug-in {path:?}: give the absolute path of an existing .so"),
            ));
        }
        let doc = TypeDoc {
            name: name.into(),
            spec: halo_host::protocol::TypeSpec::Native {
                path: path.into(),
                type_name: type_name.unwrap_or(name).into(),
            },
            common,
        };
        self.create(&keys::type_(name), json(&doc)?, "resource type", name).await?;
        lock(&self.rt).types.insert(name.into(), doc);
        self.events.emit(EventKind::Added { object: "type".into(), name: name.into() });
        Ok(())
    }

    /// Removes a resource type no resource uses (the built-in ones stay).
    pub async fn delete_type(&self, name: &str) -> Result<(), EngineError> {
        let _config = self.config.write().await;
        {
            let rt = lock(&self.rt);
            if !rt.types.contains_key(name) {
                return Err(fmt_err(Status::ERROR_CLUSTER_RESOURCE_TYPE_NOT_FOUND, format!("no resource type {name}")));
            }
            if model::builtin_types().iter().any(|t| t.name == name) {
                return Err(fmt_err(Status::ERROR_INVALID_PARAMETER, format!("{name} is built in")));
            }
            if let Some(r) = rt.resources.values().find(|r| r.doc.type_name == name) {
                return Err(fmt_err(
                    Status::ERROR_CLUSTER_RESOURCE_TYPE_BUSY,
                    format!("{} is of type {name}", r.doc.name),
                ));
            }
        }
        self.db
            .write(Request { compare: vec![], ops: vec![Op::Delete { key: keys::type_(name) }] })
            .await
            .map_err(db_err)?;
        lock(&self.rt).types.remove(name);
        self.events.emit(EventKind::Deleted { object: "type".into(), name: name.into() });
        Ok(())
    }

    /// Deletes an empty group.
    pub async fn delete_group(&self, name: &str) -> Result<(), EngineError> {
        let _config = self.config.write().await;
        {
            let rt = lock(&self.rt);
            if !rt.groups.contains_key(name) {
                return Err(fmt_err(Status::ERROR_GROUP_NOT_FOUND, format!("no group {name}")));
            }
            let members: Vec<&str> =
                rt.resources.values().filter(|r| r.doc.group == name).map(|r| r.doc.name.as_str()).collect();
            if !members.is_empty() {
                return Err(fmt_err(
                    Status::ERROR_INVALID_STATE,
                    format!("group {name} still holds {}; delete them first", members.join(", ")),
                ));
            }
        }
        self.db
            .write(Request { compare: vec![], ops: vec![Op::Delete { key: keys::group(name) }] })
            .await
            .map_err(db_err)?;
        let mut rt = lock(&self.rt);
        rt.groups.remove(name);
        rt.group_states.remove(name);
        drop(rt);
        self.events.emit(EventKind::Deleted { object: "group".into(), name: name.into() });
        Ok(())
    }

    /// Creates a resource in a group.
    pub async fn create_resource(
        &self,
        name: &str,
        group: &str,
        type_name: &str,
        common: BTreeMap<String, String>,
        private: BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        self.create_resource_with(name, group, type_name, common, private, "").await
    }

    /// Creates a resource with its dependencies in one write: if either is refused, nothing is
    /// created.
    pub async fn create_resource_with(
        &self,
        name: &str,
        group: &str,
        type_name: &str,
        common: BTreeMap<String, String>,
        private: BTreeMap<String, String>,
        dependencies: &str,
    ) -> Result<(), EngineError> {
        let _config = self.config.read().await;
        model::check_name("resource", name)?;
        let deps = Dependencies::parse(dependencies)
            .map_err(|e| fmt_err(e.status, format!("dependencies of {name}: {}", e.message)))?;
        let ty = {
            let rt = lock(&self.rt);
            if !rt.groups.contains_key(group) {
                return Err(fmt_err(Status::ERROR_GROUP_NOT_FOUND, format!("no group {group}")));
            }
            let mut group_of: BTreeMap<String, String> =
                rt.resources.values().map(|r| (r.doc.name.clone(), r.doc.group.clone())).collect();
            group_of.insert(name.to_string(), group.to_string());
            // Nothing depends on a new resource yet, so no cycle can pass through it.
            deps::check(name, group, &deps, &group_of, &BTreeMap::new()).map_err(|e| fmt_err(e.status, e.message))?;
            rt.types.get(type_name).cloned().ok_or_else(|| {
                let known: Vec<&str> = rt.types.keys().map(String::as_str).collect();
                fmt_err(
                    Status::ERROR_CLUSTER_RESOURCE_TYPE_NOT_FOUND,
                    format!("no resource type {type_name}; known: {}", known.join(", ")),
                )
            })?
        };
        let id = {
            let mut rt = lock(&self.rt);
            rt.last_id += 1;
            rt.last_id
        };
        let doc = ResourceDoc {
            id,
            name: name.into(),
            group: group.into(),
            type_name: type_name.into(),
            common,
            private,
            dependencies: deps,
        };
        let policy = doc.policy(&ty)?;
        self.create(&keys::resource(name), json(&doc)?, "resource", name).await?;
        let mut rt = lock(&self.rt);
        rt.by_id.insert(id, name.into());
        rt.resources.insert(name.into(), Rt::new(doc, policy, ty, Desired::Offline));
        drop(rt);
        self.events.emit(EventKind::Added { object: "resource".into(), name: name.into() });
        Ok(())
    }

    fn resource_doc(&self, name: &str) -> Result<ResourceDoc, EngineError> {
        lock(&self.rt)
            .resources
            .get(name)
            .map(|r| r.doc.clone())
            .ok_or_else(|| fmt_err(Status::ERROR_RESOURCE_NOT_FOUND, format!("no resource {name}")))
    }

    async fn save_resource(&self, doc: &ResourceDoc) -> Result<(), EngineError> {
        self.db.put(&keys::resource(&doc.name), json(doc)?).await.map_err(db_err)?;
        Ok(())
    }

    /// Sets common and private properties (validated; private ones reach the host at once and
    /// the resource type at its next online).
    pub async fn set_properties(
        &self,
        name: &str,
        common: BTreeMap<String, String>,
        private: BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        let _config = self.config.write().await;
        let mut doc = self.resource_doc(name)?;
        let ty = lock(&self.rt)
            .types
            .get(&doc.type_name)
            .cloned()
            .ok_or_else(|| fmt_err(Status::ERROR_CLUSTER_RESOURCE_TYPE_NOT_FOUND, doc.type_name.clone()))?;
        let changed: Vec<String> = common.keys().chain(private.keys()).cloned().collect();
        doc.common.extend(common);
        doc.private.extend(private);
        let policy = doc.policy(&ty)?;
        self.save_resource(&doc).await?;
        {
            let mut rt = lock(&self.rt);
            if let Some(r) = rt.resources.get_mut(name) {
                r.doc = doc.clone();
                r.policy = policy;
                if r.open == Opened::Open {
                    let _ = self.hosts.update(doc.id, &model::to_list(&doc.private), policy.timeouts);
                }
            }
        }
        self.events.emit(EventKind::Property { object: "resource".into(), name: name.into(), properties: changed });
        Ok(())
    }

    /// Replaces a resource's dependencies with an expression (§7).
    pub async fn set_dependencies(&self, name: &str, expression: &str) -> Result<(), EngineError> {
        let _config = self.config.write().await;
        let deps = Dependencies::parse(expression)
            .map_err(|e| fmt_err(e.status, format!("dependencies of {name}: {}", e.message)))?;
        let mut doc = self.resource_doc(name)?;
        {
            let rt = lock(&self.rt);
            let group_of: BTreeMap<String, String> =
                rt.resources.values().map(|r| (r.doc.name.clone(), r.doc.group.clone())).collect();
            let existing: BTreeMap<String, Dependencies> =
                rt.resources.values().map(|r| (r.doc.name.clone(), r.doc.dependencies.clone())).collect();
            deps::check(name, &doc.group, &deps, &group_of, &existing).map_err(|e| fmt_err(e.status, e.message))?;
        }
        doc.dependencies = deps;
        self.save_resource(&doc).await?;
        if let Some(r) = lock(&self.rt).resources.get_mut(name) {
            r.doc = doc;
        }
        self.events.emit(EventKind::Property {
            object: "resource".into(),
            name: name.into(),
            properties: vec!["Dependencies".into()],
        });
        self.reconcile();
        Ok(())
    }

    /// Deletes a resource nothing depends on, taking it offline first if it is up.
    pub async fn delete_resource(&self, name: &str, force: bool) -> Result<(), EngineError> {
        let _config = self.config.write().await;
        let (id, open) = {
            let rt = lock(&self.rt);
            let r = rt
                .resources
                .get(name)
                .ok_or_else(|| fmt_err(Status::ERROR_RESOURCE_NOT_FOUND, format!("no resource {name}")))?;
            if let Some(d) = rt.resources.values().find(|o| o.doc.dependencies.names().contains(name)) {
                return Err(fmt_err(
                    Status::ERROR_DEPENDENT_RESOURCE_EXISTS,
                    format!("{} depends on {name}", d.doc.name),
                ));
            }
            if r.locked && !force {
                return Err(fmt_err(
                    Status::ERROR_CLUSTER_RESOURCE_LOCKED_STATUS,
                    format!("{name} is in locked mode; force to delete"),
                ));
            }
            (r.doc.id, r.open != Opened::Closed)
        };
        // A resource still up is taken offline first (forced past locked mode when asked), and
        // its persistent state is left alone: it is about to disappear.
        let up = {
            let rt = lock(&self.rt);
            rt.resources
                .get(name)
                .is_some_and(|r| !matches!(r.state, ResourceState::Offline | ResourceState::Failed) || r.busy)
        };
        if up {
            let flags = if force { OfflineFlags::IGNORE_RESOURCE_STATUS } else { OfflineFlags::empty() };
            let op = self.offline_resource(name, flags, false).await?;
            match self.wait(op, DELETE_OFFLINE_TIMEOUT).await? {
                OpStatus::Succeeded => {}
                other => {
                    return Err(fmt_err(
                        Status::ERROR_RESOURCE_ONLINE,
                        format!("{name} did not go offline for deletion: {other:?}"),
                    ));
                }
            }
        }
        self.db
            .write(Request { compare: vec![], ops: vec![Op::Delete { key: keys::resource(name) }] })
            .await
            .map_err(db_err)?;
        if open {
            let _ = self.hosts.close(id);
        }
        let mut rt = lock(&self.rt);
        rt.resources.remove(name);
        rt.by_id.remove(&id);
        drop(rt);
        self.events.emit(EventKind::Deleted { object: "resource".into(), name: name.into() });
        self.refresh_groups(None);
        Ok(())
    }

    // ---- operations ----

    /// Brings a resource online (with what it depends on); returns the operation id.
    pub async fn online_resource(&self, name: &str, update_persistent: bool) -> Result<u64, EngineError> {
        let targets = {
            let rt = lock(&self.rt);
            if !rt.resources.contains_key(name) {
                return Err(fmt_err(Status::ERROR_RESOURCE_NOT_FOUND, format!("no resource {name}")));
            }
            closure(&rt, name, |r| r.doc.dependencies.names().into_iter().map(str::to_string).collect())
        };
        self.request(targets, Desired::Online, OfflineFlags::empty(), update_persistent).await
    }

    /// Takes a resource offline (with what depends on it); returns the operation id.
    pub async fn offline_resource(
        &self,
        name: &str,
        flags: OfflineFlags,
        update_persistent: bool,
    ) -> Result<u64, EngineError> {
        let targets = {
            let rt = lock(&self.rt);
            if !rt.resources.contains_key(name) {
                return Err(fmt_err(Status::ERROR_RESOURCE_NOT_FOUND, format!("no resource {name}")));
            }
            closure(&rt, name, |r| dependents(&rt, &r.doc.name))
        };
        self.request(targets, Desired::Offline, flags, update_persistent).await
    }

    /// OfflineClusterResourceEx with FORCE_WITH_TERMINATION: straight to Terminate.
    pub async fn terminate_resource(&self, name: &str, update_persistent: bool) -> Result<u64, EngineError> {
        let set = |on: bool| {
            if let Some(r) = lock(&self.rt).resources.get_mut(name) {
                r.terminate_next = on;
            }
        };
        set(true);
        let op = self.offline_resource(name, OfflineFlags::IGNORE_RESOURCE_STATUS, update_persistent).await;
        if op.is_err() {
            set(false);
        }
        op
    }

    /// Brings every resource of a group online.
    pub async fn online_group(&self, group: &str, update_persistent: bool) -> Result<u64, EngineError> {
        let targets = self.members(group)?;
        self.request(targets, Desired::Online, OfflineFlags::empty(), update_persistent).await
    }

    /// Takes every resource of a group offline.
    pub async fn offline_group(
        &self,
        group: &str,
        flags: OfflineFlags,
        update_persistent: bool,
    ) -> Result<u64, EngineError> {
        let targets = self.members(group)?;
        self.request(targets, Desired::Offline, flags, update_persistent).await
    }

    fn members(&self, group: &str) -> Result<Vec<String>, EngineError> {
        let rt = lock(&self.rt);
        if !rt.groups.contains_key(group) {
            return Err(fmt_err(Status::ERROR_GROUP_NOT_FOUND, format!("no group {group}")));
        }
        Ok(rt.resources.values().filter(|r| r.doc.group == group).map(|r| r.doc.name.clone()).collect())
    }

    async fn request(
        &self,
        targets: Vec<String>,
        desired: Desired,
        flags: OfflineFlags,
        update_persistent: bool,
    ) -> Result<u64, EngineError> {
        {
            let rt = lock(&self.rt);
            if rt.shutting_down && desired == Desired::Online {
                return Err(fmt_err(Status::ERROR_CLUSTER_SHUTTING_DOWN, "the node is shutting down"));
            }
            if desired == Desired::Offline
                && !flags.contains(OfflineFlags::IGNORE_RESOURCE_STATUS)
                && let Some(r) = targets
                    .iter()
                    .filter_map(|n| rt.resources.get(n))
                    .find(|r| r.locked && r.state == ResourceState::Online)
            {
                return Err(fmt_err(
                    Status::ERROR_CLUSTER_RESOURCE_LOCKED_STATUS,
                    format!("{} is in locked mode; use IGNORE_RESOURCE_STATUS to force it", r.doc.name),
                ));
            }
        }
        let _config = if update_persistent { Some(self.config.write().await) } else { None };
        if update_persistent {
            let docs: Vec<ResourceDoc> = {
                let rt = lock(&self.rt);
                targets.iter().filter_map(|n| rt.resources.get(n)).map(|r| r.doc.clone()).collect()
            };
            let value = if desired == Desired::Online { "true" } else { "false" };
            let mut ops = Vec::new();
            let mut changed = Vec::new();
            for mut doc in docs {
                if doc.common.get("PersistentState").map(String::as_str) != Some(value) {
                    doc.common.insert("PersistentState".into(), value.into());
                    ops.push(Op::Put { key: keys::resource(&doc.name), value: json(&doc)? });
                    changed.push(doc);
                }
            }
            if !ops.is_empty() {
                self.db.write(Request { compare: vec![], ops }).await.map_err(db_err)?;
            }
            // Memory follows the database only once the write is durable.
            let mut rt = lock(&self.rt);
            for doc in changed {
                if let Some(r) = rt.resources.get_mut(&doc.name) {
                    r.policy.persistent = desired == Desired::Online;
                    r.doc = doc;
                }
            }
        }
        let goal = if desired == Desired::Online { ResourceState::Online } else { ResourceState::Offline };
        let id = {
            let mut rt = lock(&self.rt);
            for n in &targets {
                if let Some(r) = rt.resources.get_mut(n) {
                    r.desired = desired;
                    r.offline_flags = flags;
                    // An operator's request clears what the failure policy decided.
                    r.blocked = false;
                    r.wait_until = None;
                    r.failures.clear();
                }
            }
            rt.next_op += 1;
            let id = rt.next_op;
            rt.ops.insert(
                id,
                Operation { resources: targets, goal, status: watch::channel(OpStatus::Pending).0, finished: false },
            );
            id
        };
        self.reconcile();
        // Settles it at once if everything already is as asked.
        self.refresh_groups(None);
        Ok(id)
    }

    /// Waits for an operation to end (or `timeout` to pass); returns its status then.
    pub async fn wait(&self, op: u64, timeout: Duration) -> Result<OpStatus, EngineError> {
        let mut rx = lock(&self.rt)
            .ops
            .get(&op)
            .map(|o| o.status.subscribe())
            .ok_or_else(|| fmt_err(Status::ERROR_INVALID_PARAMETER, format!("no operation {op}")))?;
        let _ = tokio::time::timeout(timeout, rx.wait_for(|s| *s != OpStatus::Pending)).await;
        let status = rx.borrow().clone();
        Ok(status)
    }

    /// An operation's status now.
    pub fn operation(&self, op: u64) -> Option<OpStatus> {
        lock(&self.rt).ops.get(&op).map(|o| o.status.borrow().clone())
    }

    /// FailClusterResource: terminates an online resource and treats it as failed, so the
    /// restart policy runs (a way to test recovery).
    pub fn fail_resource(&self, name: &str) -> Result<(), EngineError> {
        let id = {
            let mut rt = lock(&self.rt);
            let r = rt
                .resources
                .get_mut(name)
                .ok_or_else(|| fmt_err(Status::ERROR_RESOURCE_NOT_FOUND, format!("no resource {name}")))?;
            if r.state != ResourceState::Online {
                return Err(fmt_err(Status::ERROR_RESOURCE_NOT_ONLINE, format!("{name} is {}", r.state)));
            }
            r.fail_requested = true;
            r.doc.id
        };
        self.hosts.terminate(id).map_err(|e| {
            if let Some(r) = lock(&self.rt).resources.get_mut(name) {
                r.fail_requested = false;
            }
            fmt_err(e.status, e.message)
        })
    }

    // ---- facts ----

    fn on_host(&self, event: HostEvent) {
        match event {
            HostEvent::Fact(FromHost::State { id, state, status, cause, .. }) => {
                let Ok(state) = ResourceState::from_raw(state) else { return };
                self.on_state(id, state, Status(status), cause);
            }
            HostEvent::Fact(FromHost::Closed { id }) => {
                if let Some(r) = lock(&self.rt).by_id_mut(id) {
                    r.open = Opened::Closed;
                }
            }
            HostEvent::Fact(FromHost::LockedMode { id, locked, .. }) => {
                let mut rt = lock(&self.rt);
                if let Some(r) = rt.by_id_mut(id) {
                    r.locked = locked;
                    // Locked mode is a StatusInformation bit (CLUSTER_RESOURCE_STATUS_LOCKED_MODE).
                    self.events.emit(EventKind::Property {
                        object: "resource".into(),
                        name: r.doc.name.clone(),
                        properties: vec!["StatusInformation".into()],
                    });
                }
            }
            HostEvent::Fact(FromHost::Log { id, level, message }) => {
                let name = lock(&self.rt).by_id.get(&id).cloned().unwrap_or_else(|| format!("#{id}"));
                let level = LogLevel::from_raw(level).map(|l| l.to_string()).unwrap_or_else(|_| level.to_string());
                self.events.emit(EventKind::Log { resource: name, level, message });
            }
            // Each resource of a dead host also arrives as a Failed state with cause HostDied,
            // which marks it closed (see on_state).
            HostEvent::HostDied { .. } => {}
            HostEvent::Fact(FromHost::Rejected { id, status, message }) => {
                // The host refused a request outright: nothing is in flight any more.
                let mut rt = lock(&self.rt);
                if let Some(r) = rt.by_id_mut(id) {
                    r.busy = false;
                    if status == Status::ERROR_RESOURCE_NOT_FOUND.0 {
                        r.open = Opened::Closed;
                    }
                    let name = r.doc.name.clone();
                    drop(rt);
                    self.events.emit(EventKind::Log { resource: name, level: "Error".into(), message });
                    self.reconcile();
                }
            }
            HostEvent::Fact(_) => {}
        }
    }

    /// Reconciles again at `at` (a restart delay or retry period ending).
    fn wake_at(&self, at: Option<Instant>) {
        let Some(at) = at else { return };
        let weak = self.me.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            if let Some(e) = weak.upgrade() {
                e.reconcile();
            }
        });
    }

    fn on_state(&self, id: ResourceId, state: ResourceState, status: Status, cause: Cause) {
        let group = {
            let mut rt = lock(&self.rt);
            let Some(name) = rt.by_id.get(&id).cloned() else { return };
            let Some(r) = rt.resources.get_mut(&name) else { return };
            let mut state = state;
            let mut status = status;
            if r.fail_requested && !state.is_pending() {
                // The operator's FailClusterResource: the terminate it caused counts as a failure.
                r.fail_requested = false;
                state = ResourceState::Failed;
                status = Status::ERROR_RESOURCE_FAILED;
            }
            if !state.is_pending() {
                r.busy = false;
                r.terminate_next = false;
            }
            if cause == Cause::HostDied {
                r.open = Opened::Closed;
            }
            r.state = state;
            r.status = status;
            if state == ResourceState::Failed && r.desired == Desired::Online {
                apply_failure_policy(r);
                self.wake_at(r.wait_until);
            }
            self.events.emit(EventKind::ResourceState {
                resource: name.clone(),
                group: r.doc.group.clone(),
                state: state.to_string(),
                status: status.0,
                cause: format!("{cause:?}"),
            });
            r.doc.group.clone()
        };
        self.refresh_groups(Some(&group));
        self.reconcile();
    }

    /// Recomputes group states (emitting changes) and settles finished operations. `only`: the
    /// one group that can have changed, when known (keeps an event O(group), not O(cluster)).
    fn refresh_groups(&self, only: Option<&str>) {
        let mut rt = lock(&self.rt);
        let groups: Vec<String> = match only {
            Some(g) => vec![g.to_string()],
            None => rt.groups.keys().cloned().collect(),
        };
        for g in groups {
            if !rt.groups.contains_key(&g) {
                continue;
            }
            let state = derive_group(&rt, &g);
            if rt.group_states.insert(g.clone(), state) != Some(state) {
                self.events.emit(EventKind::GroupState { group: g, state: state.to_string() });
            }
        }
        let rt = &mut *rt;
        for op in rt.ops.values_mut().filter(|o| !o.finished) {
            let members: Vec<&Rt> = op.resources.iter().filter_map(|n| rt.resources.get(n)).collect();
            let reached = members.iter().all(|r| r.state == op.goal && !r.busy);
            let failed = members.iter().find(|r| r.state == ResourceState::Failed && r.blocked);
            let outcome = if reached {
                Some(OpStatus::Succeeded)
            } else {
                failed.map(|r| OpStatus::Failed {
                    code: r.status.0,
                    message: format!("{} failed: {}", r.doc.name, r.status),
                })
            };
            if let Some(o) = outcome {
                op.status.send_replace(o);
                op.finished = true;
            }
        }
        // Operations stay readable for a while; past 10,000 the oldest are dropped (their
        // waiters then read Pending).
        while rt.ops.len() > 10_000 {
            if let Some(first) = rt.ops.keys().next().copied() {
                rt.ops.remove(&first);
            }
        }
    }

    // ---- convergence ----

    /// Sends whatever online/offline calls bring resources closer to what they should be:
    /// dependencies first on the way up, dependents first on the way down, everything else in
    /// parallel.
    pub fn reconcile(&self) {
        let mut opens = Vec::new();
        let mut settled = Vec::new();
        {
            let mut rt = lock(&self.rt);
            let now = Instant::now();
            let names: Vec<String> = rt.resources.keys().cloned().collect();
            for name in names {
                let Some(r) = rt.resources.get(&name) else { continue };
                if r.busy || r.open == Opened::Opening {
                    continue;
                }
                let deps_ok = r
                    .doc
                    .dependencies
                    .satisfied(|d| rt.resources.get(d).is_some_and(|x| x.state == ResourceState::Online));
                let up = r.desired == Desired::Online && deps_ok && !r.blocked && r.wait_until.is_none_or(|t| t <= now);
                match (r.state, up) {
                    (ResourceState::Offline | ResourceState::Failed, true) => {
                        if r.open == Opened::Open {
                            let id = r.doc.id;
                            if self.hosts.online(id, 0, Vec::new()).is_ok()
                                && let Some(r) = rt.resources.get_mut(&name)
                            {
                                r.busy = true;
                                r.wait_until = None;
                            }
                        } else {
                            opens.push(r.open_spec());
                            if let Some(r) = rt.resources.get_mut(&name) {
                                r.open = Opened::Opening;
                            }
                        }
                    }
                    (ResourceState::Online, false) if r.desired == Desired::Offline || !deps_ok => {
                        // Dependents go first.
                        let waiting = dependents(&rt, &name).iter().any(|d| {
                            rt.resources
                                .get(d)
                                .is_some_and(|x| x.state != ResourceState::Offline && x.state != ResourceState::Failed)
                        });
                        if !waiting {
                            // Taken down for a dependency that went away: it comes back when the
                            // dependency does, so its persistent state must not change.
                            let flags = if r.desired == Desired::Online {
                                OfflineFlags::DO_NOT_UPDATE_PERSISTENT_STATE
                            } else {
                                r.offline_flags
                            };
                            let id = r.doc.id;
                            let sent = if r.terminate_next {
                                self.hosts.terminate(id)
                            } else {
                                self.hosts.offline(id, None, flags.bits(), Vec::new())
                            };
                            if sent.is_ok()
                                && let Some(r) = rt.resources.get_mut(&name)
                            {
                                r.busy = true;
                                r.terminate_next = false;
                            }
                        }
                    }
                    (ResourceState::Failed, false) if r.desired == Desired::Offline => {
                        // Already terminated by its host: an offline request just records it.
                        if let Some(r) = rt.resources.get_mut(&name) {
                            r.state = ResourceState::Offline;
                            r.status = Status::ERROR_SUCCESS;
                            settled.push((name.clone(), r.doc.group.clone()));
                        }
                    }
                    _ => {}
                }
            }
        }
        for (name, group) in settled {
            self.events.emit(EventKind::ResourceState {
                resource: name,
                group: group.clone(),
                state: ResourceState::Offline.to_string(),
                status: 0,
                cause: "Operator".into(),
            });
            self.refresh_groups(Some(&group));
        }
        for spec in opens {
            let Some(engine) = self.me.upgrade() else { return };
            tokio::spawn(async move {
                let id = spec.id;
                let result = engine.hosts.open(spec).await;
                {
                    let mut rt = lock(&engine.rt);
                    let Some(name) = rt.by_id.get(&id).cloned() else { return };
                    let Some(r) = rt.resources.get_mut(&name) else { return };
                    match &result {
                        Ok(()) => {
                            r.open = Opened::Open;
                            // Properties set while it was opening reach the host now.
                            let _ = engine.hosts.update(id, &model::to_list(&r.doc.private), r.policy.timeouts);
                        }
                        Err(e) => {
                            r.open = Opened::Closed;
                            r.state = ResourceState::Failed;
                            r.status = e.status;
                            let host_trouble = matches!(
                                e.status,
                                Status::ERROR_RESMON_CREATE_FAILED
                                    | Status::ERROR_RESMON_INVALID_STATE
                                    | Status::ERROR_EXCEPTION_IN_RESOURCE_CALL
                                    | Status::ERROR_RESOURCE_CALL_TIMED_OUT
                            );
                            if host_trouble && r.desired == Desired::Online {
                                // The host, not the resource, failed: the restart policy retries.
                                apply_failure_policy(r);
                                engine.wake_at(r.wait_until);
                            } else {
                                // Its configuration is refused: restarts would not help.
                                r.blocked = true;
                            }
                        }
                    }
                }
                if let Err(e) = result {
                    let (name, group_of_failed) = {
                        let rt = lock(&engine.rt);
                        let name = rt.by_id.get(&id).cloned().unwrap_or_default();
                        let group = rt.resources.get(&name).map(|r| r.doc.group.clone()).unwrap_or_default();
                        (name, group)
                    };
                    engine.events.emit(EventKind::Log {
                        resource: name.clone(),
                        level: "Error".into(),
                        message: e.message.clone(),
                    });
                    engine.events.emit(EventKind::ResourceState {
                        resource: name,
                        group: group_of_failed.clone(),
                        state: ResourceState::Failed.to_string(),
                        status: e.status.0,
                        cause: "OpenFailed".into(),
                    });
                    engine.refresh_groups(Some(&group_of_failed));
                }
                engine.reconcile();
            });
        }
    }

    // ---- views ----

    /// Every resource.
    pub fn resources(&self) -> Vec<ResourceView> {
        let rt = lock(&self.rt);
        rt.resources.values().map(|r| self.view(r)).collect()
    }

    /// One resource.
    pub fn resource(&self, name: &str) -> Result<ResourceView, EngineError> {
        let rt = lock(&self.rt);
        rt.resources
            .get(name)
            .map(|r| self.view(r))
            .ok_or_else(|| fmt_err(Status::ERROR_RESOURCE_NOT_FOUND, format!("no resource {name}")))
    }

    fn view(&self, r: &Rt) -> ResourceView {
        ResourceView {
            name: r.doc.name.clone(),
            group: r.doc.group.clone(),
            type_name: r.doc.type_name.clone(),
            state: r.state.to_string(),
            status: r.status.0,
            status_text: r.status.to_string(),
            desired: r.desired,
            owner: self.node.clone(),
            common: r.doc.common.clone(),
            private: r.doc.private.clone(),
            dependencies: r.doc.dependencies.to_string(),
            locked: r.locked,
        }
    }

    /// Every group.
    pub fn groups(&self) -> Vec<GroupView> {
        let rt = lock(&self.rt);
        rt.groups.values().map(|g| self.group_view(&rt, g)).collect()
    }

    /// One group.
    pub fn group(&self, name: &str) -> Result<GroupView, EngineError> {
        let rt = lock(&self.rt);
        rt.groups
            .get(name)
            .map(|g| self.group_view(&rt, g))
            .ok_or_else(|| fmt_err(Status::ERROR_GROUP_NOT_FOUND, format!("no group {name}")))
    }

    fn group_view(&self, rt: &Runtime, g: &GroupDoc) -> GroupView {
        GroupView {
            name: g.name.clone(),
            state: rt.group_states.get(&g.name).copied().unwrap_or(GroupState::Unknown).to_string(),
            owner: self.node.clone(),
            resources: rt.resources.values().filter(|r| r.doc.group == g.name).map(|r| r.doc.name.clone()).collect(),
            common: g.common.clone(),
        }
    }

    /// Every resource type.
    pub fn types(&self) -> Vec<TypeDoc> {
        lock(&self.rt).types.values().cloned().collect()
    }

    /// Stops consensus and releases the data directory (after `shutdown`).
    pub async fn stop(&self) -> Result<(), EngineError> {
        self.db.shutdown().await.map_err(db_err)
    }

    /// Takes every group offline without recording it as persistent state (shutdown), and
    /// waits up to `timeout` for them.
    pub async fn shutdown(&self, timeout: Duration) -> Result<OpStatus, EngineError> {
        let targets: Vec<String> = lock(&self.rt).resources.keys().cloned().collect();
        lock(&self.rt).shutting_down = true;
        let op = self.request(targets, Desired::Offline, OfflineFlags::DO_NOT_UPDATE_PERSISTENT_STATE, false).await?;
        self.wait(op, timeout).await
    }
}

impl Runtime {
    /// The resource the host knows by `id`.
    fn by_id_mut(&mut self, id: ResourceId) -> Option<&mut Rt> {
        let name = self.by_id.get(&id)?;
        self.resources.get_mut(name)
    }
}

impl Rt {
    fn new(doc: ResourceDoc, policy: Policy, ty: TypeDoc, desired: Desired) -> Rt {
        Rt {
            doc,
            policy,
            ty,
            state: ResourceState::Offline,
            status: Status::ERROR_SUCCESS,
            desired,
            busy: false,
            open: Opened::Closed,
            failures: VecDeque::new(),
            wait_until: None,
            blocked: false,
            locked: false,
            offline_flags: OfflineFlags::empty(),
            fail_requested: false,
            terminate_next: false,
        }
    }

    fn open_spec(&self) -> OpenSpec {
        OpenSpec {
            id: self.doc.id,
            name: self.doc.name.clone(),
            type_spec: self.ty.spec.clone(),
            properties: model::to_list(&self.doc.private),
            flags: 0,
            timeouts: self.policy.timeouts,
            separate_monitor: self.policy.separate_monitor,
        }
    }
}

/// §5: restart after RestartDelay while failures within RestartPeriod stay within
/// RestartThreshold; then RestartAction decides: 1 stays failed; 2 fails the group over, which on
/// one node means staying failed until RetryPeriodOnFailure.
fn apply_failure_policy(r: &mut Rt) {
    let p = r.policy;
    if p.restart_action == 0 {
        r.blocked = true;
        return;
    }
    let now = Instant::now();
    let period = Duration::from_millis(p.restart_period_ms.into());
    while r.failures.front().is_some_and(|t| now.duration_since(*t) > period) {
        r.failures.pop_front();
    }
    r.failures.push_back(now);
    if r.failures.len() <= p.restart_threshold as usize {
        r.wait_until = Some(now + Duration::from_millis(p.restart_delay_ms.into()));
    } else if p.restart_action == 2 && p.retry_period_ms != model::UNSET {
        r.failures.clear();
        r.wait_until = Some(now + Duration::from_millis(p.retry_period_ms.into()));
    } else {
        r.blocked = true;
    }
}

/// `start` and everything `next` reaches from it.
fn closure(rt: &Runtime, start: &str, next: impl Fn(&Rt) -> Vec<String>) -> Vec<String> {
    let mut out = vec![start.to_string()];
    let mut i = 0;
    while i < out.len() {
        if let Some(r) = rt.resources.get(&out[i]) {
            for n in next(r) {
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
        i += 1;
    }
    out
}

/// The resources whose expressions name `name`.
fn dependents(rt: &Runtime, name: &str) -> Vec<String> {
    rt.resources.values().filter(|r| r.doc.dependencies.names().contains(name)).map(|r| r.doc.name.clone()).collect()
}

/// §3.3: Failed > Pending > Online > PartialOnline > Offline.
fn derive_group(rt: &Runtime, group: &str) -> GroupState {
    let states: Vec<ResourceState> = rt.resources.values().filter(|r| r.doc.group == group).map(|r| r.state).collect();
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

/// What a control call produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControlOutput {
    /// The status (`ERROR_MORE_DATA` with `bytes_returned` = the size needed).
    pub status: u32,
    /// The output bytes.
    pub output: Vec<u8>,
    /// Bytes written, or needed.
    pub bytes_returned: u32,
}

fn reply(data: &[u8], size: u32) -> ControlOutput {
    let needed = u32::try_from(data.len()).unwrap_or(u32::MAX);
    if needed > size {
        ControlOutput { status: Status::ERROR_MORE_DATA.0, output: Vec::new(), bytes_returned: needed }
    } else {
        ControlOutput { status: Status::ERROR_SUCCESS.0, output: data.to_vec(), bytes_returned: needed }
    }
}

fn status_only(status: Status) -> ControlOutput {
    ControlOutput { status: status.0, output: Vec::new(), bytes_returned: 0 }
}

/// A property list's values as the text the engine stores.
fn list_to_text(input: &[u8]) -> Result<BTreeMap<String, String>, EngineError> {
    let list = resapi::PropertyList::decode(input).map_err(|e| fmt_err(e.status(), e.to_string()))?;
    list.iter()
        .map(|p| {
            let text = p.value().and_then(resapi::ValueData::to_text).ok_or_else(|| {
                fmt_err(Status::ERROR_INVALID_DATA, format!("property {}: binary values are not stored", p.name))
            })?;
            Ok((p.name.clone(), text))
        })
        .collect()
}

/// The effective common properties (defaults filled in), typed as the table declares them.
fn common_list(common: &BTreeMap<String, String>) -> Result<resapi::PropertyList, EngineError> {
    use resapi::{PropertyKind, ValueData};
    let parsed = model::verify("resource", &model::RESOURCE_COMMON, common)?;
    let mut list = resapi::PropertyList::new();
    for item in model::RESOURCE_COMMON.items {
        let value = match item.kind {
            PropertyKind::Dword { .. } => parsed.dword(item.name).map(ValueData::Dword),
            PropertyKind::Bool { .. } => Some(ValueData::Dword(u32::from(parsed.flag(item.name)))),
            PropertyKind::Sz { .. } => parsed.string(item.name).map(|s| ValueData::Sz(s.to_string())),
            PropertyKind::MultiSz => Some(ValueData::MultiSz(parsed.strings(item.name).to_vec())),
        };
        if let Some(v) = value {
            list.set(item.name, v);
        }
    }
    Ok(list)
}

impl Engine {
    /// ResourceControl: the resource type first; `ERROR_INVALID_FUNCTION` from it (or a resource
    /// not open in a host) gets the engine's default handling of the common codes.
    pub async fn control(
        &self,
        name: &str,
        code: u32,
        input: Vec<u8>,
        output_size: u32,
    ) -> Result<ControlOutput, EngineError> {
        use resapi::control::codes::*;
        let code = resapi::ControlCode(code);
        if code.is_internal() {
            return Err(fmt_err(
                Status::ERROR_INVALID_PARAMETER,
                format!("{code} is internal: only the cluster sends it"),
            ));
        }
        let (id, open, doc, online) = {
            let rt = lock(&self.rt);
            let r = rt
                .resources
                .get(name)
                .ok_or_else(|| fmt_err(Status::ERROR_RESOURCE_NOT_FOUND, format!("no resource {name}")))?;
            (r.doc.id, r.open == Opened::Open, r.doc.clone(), r.state == ResourceState::Online)
        };
        if open {
            let r = self
                .hosts
                .control(id, code.0, input.clone(), output_size)
                .await
                .map_err(|e| fmt_err(e.status, e.message))?;
            if r.status != Status::ERROR_INVALID_FUNCTION {
                return Ok(ControlOutput { status: r.status.0, output: r.output, bytes_returned: r.bytes_returned });
            }
        }
        let encode = |l: &resapi::PropertyList| l.encode().map_err(|e| fmt_err(e.status(), e.to_string()));
        Ok(match code {
            c if c == CLUSCTL_RESOURCE_GET_CHARACTERISTICS || c == CLUSCTL_RESOURCE_GET_FLAGS => {
                reply(&0u32.to_le_bytes(), output_size)
            }
            c if c == CLUSCTL_RESOURCE_GET_COMMON_PROPERTIES => {
                reply(&encode(&common_list(&doc.common)?)?, output_size)
            }
            c if c == CLUSCTL_RESOURCE_GET_PRIVATE_PROPERTIES => {
                reply(&encode(&model::to_list(&doc.private))?, output_size)
            }
            c if c == CLUSCTL_RESOURCE_GET_RO_COMMON_PROPERTIES || c == CLUSCTL_RESOURCE_GET_RO_PRIVATE_PROPERTIES => {
                reply(&encode(&resapi::PropertyList::new())?, output_size)
            }
            c if c == CLUSCTL_RESOURCE_VALIDATE_COMMON_PROPERTIES => {
                let mut merged = doc.common.clone();
                merged.extend(list_to_text(&input)?);
                let ty = lock(&self.rt).types.get(&doc.type_name).cloned();
                let candidate = ResourceDoc { common: merged, ..doc.clone() };
                match ty.map(|t| candidate.policy(&t)) {
                    Some(Ok(_)) => status_only(Status::ERROR_SUCCESS),
                    Some(Err(e)) => status_only(e.status),
                    None => status_only(Status::ERROR_CLUSTER_RESOURCE_TYPE_NOT_FOUND),
                }
            }
            c if c == CLUSCTL_RESOURCE_VALIDATE_PRIVATE_PROPERTIES => {
                list_to_text(&input)?;
                status_only(Status::ERROR_SUCCESS)
            }
            c if c == CLUSCTL_RESOURCE_SET_COMMON_PROPERTIES => {
                self.set_properties(name, list_to_text(&input)?, BTreeMap::new()).await?;
                status_only(Status::ERROR_SUCCESS)
            }
            c if c == CLUSCTL_RESOURCE_SET_PRIVATE_PROPERTIES => {
                self.set_properties(name, BTreeMap::new(), list_to_text(&input)?).await?;
                // The type reads them at its next online.
                status_only(if online { Status::ERROR_RESOURCE_PROPERTIES_STORED } else { Status::ERROR_SUCCESS })
            }
            _ => status_only(Status::ERROR_INVALID_FUNCTION),
        })
    }
}
