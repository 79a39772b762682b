//! The change feed into the view: every applied transaction, in revision order, whoever wrote it.
//! Events about objects (added, deleted, properties) come from here, so they describe what the
//! database holds rather than what this node meant to write.

use super::view::{Group, ID_COUNTER, Opened};
use super::{Call, Core, Desired, HostCall, Ready};
use crate::events::EventKind;
use crate::model::{GroupDoc, NodeStateDoc, OwnerDoc, ResourceDoc, TypeDoc, keys};
use halo_cluster::{Op, Record};
use resapi::GroupState;
use std::collections::{BTreeMap, BTreeSet};

/// Names of the keys that differ between two property maps.
fn changed_keys(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<String> {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter().filter(|k| old.get(*k) != new.get(*k)).cloned().collect()
}

/// A node state's name, as WSFC's CLUSTER_NODE_STATE spells it.
pub fn node_state_name(doc: &NodeStateDoc) -> &'static str {
    match (doc.up, doc.paused) {
        (true, false) => "Up",
        (true, true) => "Paused",
        (false, _) => "Down",
    }
}

impl Core {
    /// The whole database: the first view, or a fresh one after the feed was lost.
    pub(super) fn on_loaded(&mut self, revision: u64, records: BTreeMap<String, Record>, ready: &mut Ready) {
        if !self.loaded {
            self.loaded = true;
            let mut sorted: Vec<(String, Record)> = records.into_iter().collect();
            // Types first, then groups, then resources: each needs the one before.
            sorted.sort_by_key(|(k, _)| (!k.starts_with("type/"), !k.starts_with("group/"), k.clone()));
            for (key, record) in sorted {
                self.apply_put(&key, record.revision, &record.value, true, ready);
            }
            self.view.revision = revision;
            let names: Vec<String> = self.view.resources.keys().cloned().collect();
            for n in names {
                self.touch(&n);
            }
            return;
        }
        // Turn the difference into ops, as if the missed changes had arrived.
        let mut ops: Vec<(u64, Op)> = Vec::new();
        for (key, record) in &records {
            if self.view.revision_of(key) != Some(record.revision) {
                ops.push((record.revision, Op::Put { key: key.clone(), value: record.value.clone() }));
            }
        }
        let known: Vec<String> = self
            .view
            .types
            .keys()
            .map(|n| format!("type/{n}"))
            .chain(self.view.groups.keys().map(|n| format!("group/{n}")))
            .chain(self.view.resources.keys().map(|n| format!("resource/{n}")))
            .chain(self.view.owners.keys().map(|n| keys::owner(n)))
            .chain(self.view.node_states.keys().map(|n| keys::node_state(n)))
            .chain(self.view.nodes.keys().map(|n| keys::node(n)))
            .collect();
        for key in known.into_iter().filter(|k| !records.contains_key(k)) {
            ops.push((revision, Op::Delete { key }));
        }
        // Deletes of resources before their groups; puts of groups before their resources.
        ops.sort_by_key(|(_, op)| match op {
            Op::Put { key, .. } => (1, !key.starts_with("type/"), !key.starts_with("group/")),
            Op::Delete { key } => (0, key.starts_with("type/"), key.starts_with("group/")),
        });
        for (rev, op) in ops {
            self.apply_op(rev, op, ready);
        }
        self.view.revision = revision;
        self.release_waiting_writes(ready);
    }

    /// One applied log entry.
    pub(super) fn on_change(&mut self, revision: u64, ops: Vec<Op>, ready: &mut Ready) {
        if revision <= self.view.revision {
            return;
        }
        for op in ops {
            self.apply_op(revision, op, ready);
        }
        self.view.revision = revision;
        self.release_waiting_writes(ready);
    }

    fn apply_op(&mut self, revision: u64, op: Op, ready: &mut Ready) {
        match op {
            Op::Put { key, value } => self.apply_put(&key, revision, &value, false, ready),
            Op::Delete { key } => self.apply_delete(&key, ready),
        }
    }

    fn bad_document(&self, key: &str, e: &dyn std::fmt::Display, ready: &mut Ready) {
        ready.events.push(EventKind::Log {
            resource: String::new(),
            level: "Error".into(),
            message: format!("cluster database key {key}: unreadable document ignored: {e}"),
        });
    }

    fn apply_put(&mut self, key: &str, revision: u64, value: &[u8], initial: bool, ready: &mut Ready) {
        if key == keys::CLUSTER_PROPERTIES {
            match serde_json::from_slice::<crate::model::ClusterProperties>(value) {
                Ok(p) => {
                    self.view.cluster = Some((revision, p));
                    if !initial {
                        let properties = vec!["HeartbeatInterval".into(), "HeartbeatThreshold".into()];
                        ready.events.push(EventKind::Property {
                            object: "cluster".into(),
                            name: String::new(),
                            properties,
                        });
                    }
                }
                Err(e) => self.bad_document(key, &e, ready),
            }
            return;
        }
        if key == ID_COUNTER {
            match std::str::from_utf8(value).ok().and_then(|t| t.trim().parse::<u64>().ok()) {
                Some(v) => self.view.id_counter = Some((revision, v)),
                None => self.bad_document(key, &"not a number", ready),
            }
            return;
        }
        let Some((kind, name)) = key.split_once('/') else { return };
        match kind {
            "type" => match serde_json::from_slice::<TypeDoc>(value) {
                Ok(doc) => {
                    if self.view.types.insert(name.to_string(), (revision, doc)).is_none() && !initial {
                        ready.events.push(EventKind::Added { object: "type".into(), name: name.into() });
                    }
                }
                Err(e) => self.bad_document(key, &e, ready),
            },
            "group" => match serde_json::from_slice::<GroupDoc>(value) {
                Ok(doc) => self.put_group(name, revision, doc, initial, ready),
                Err(e) => self.bad_document(key, &e, ready),
            },
            "resource" => match serde_json::from_slice::<ResourceDoc>(value) {
                Ok(doc) if doc.name == name => self.put_resource(revision, doc, initial, ready),
                Ok(doc) => self.bad_document(key, &format!("it names itself {}", doc.name), ready),
                Err(e) => self.bad_document(key, &e, ready),
            },
            "owner" => match serde_json::from_slice::<OwnerDoc>(value) {
                Ok(doc) => self.put_owner(name, revision, doc, initial, ready),
                Err(e) => self.bad_document(key, &e, ready),
            },
            "node-state" => match serde_json::from_slice::<NodeStateDoc>(value) {
                Ok(doc) => {
                    let old = self.view.node_states.insert(name.to_string(), (revision, doc.clone()));
                    if old.map(|(_, o)| o) != Some(doc.clone()) {
                        ready
                            .events
                            .push(EventKind::NodeState { node: name.into(), state: node_state_name(&doc).into() });
                        if name == self.node && doc.drain && !initial {
                            self.drain(ready);
                        }
                        if name != self.node && doc.up && !doc.paused && !initial {
                            self.fail_back(name, doc.failback, ready);
                        }
                    }
                }
                Err(e) => self.bad_document(key, &e, ready),
            },
            "node" => match serde_json::from_slice::<halo_cluster::NodeRecord>(value) {
                Ok(doc) => {
                    if self.view.nodes.insert(name.to_string(), (revision, doc)).is_none() && !initial {
                        ready.events.push(EventKind::Added { object: "node".into(), name: name.into() });
                    }
                }
                Err(e) => self.bad_document(key, &e, ready),
            },
            _ => {}
        }
    }

    /// A group's ownership record changed: who runs it, or a move began or ended.
    fn put_owner(&mut self, group: &str, revision: u64, doc: OwnerDoc, initial: bool, ready: &mut Ready) {
        let old = self.view.owners.insert(group.to_string(), (revision, doc.clone()));
        self.handing.remove(group);
        let was_here = old.as_ref().is_some_and(|(_, o)| o.node == self.node);
        if doc.node == self.node && !was_here {
            self.to_open.extend(self.view.groups.get(group).into_iter().flat_map(|g| g.members.iter().cloned()));
        }
        if doc.node == self.node && !was_here && !initial {
            // Arrived (a move, a failover): what should run follows the persistent state, and
            // the restart policy starts from zero here. A group of Priority 0 ("no auto start")
            // comes online after a failover only when asked; a planned move restores its state.
            let planned = old.as_ref().and_then(|(_, o)| o.moving.as_ref()).is_some_and(|m| m.reason != "failover");
            let auto = planned || self.view.auto_start(group);
            let members: Vec<String> =
                self.view.groups.get(group).map(|g| g.members.iter().cloned().collect()).unwrap_or_default();
            for m in &members {
                if let Some(r) = self.view.resources.get_mut(m) {
                    r.desired = if r.policy.persistent && auto { Desired::Online } else { Desired::Offline };
                    r.restart.clear();
                }
            }
        }
        if old.as_ref().is_none_or(|(_, o)| o.node != doc.node) {
            ready.events.push(EventKind::Owner { group: group.into(), node: doc.node.clone(), epoch: revision });
        }
        // The phases of a move, as the record goes through them: the source takes the group
        // down (offline, or returning after a failed move), then hands it over (online on the
        // destination), or the move is cancelled.
        let before = old.as_ref().map(|(_, o)| o);
        let phase = match (before.and_then(|o| o.moving.as_ref()), &doc.moving) {
            (prev, Some(m)) if prev != Some(m) => {
                let phase = if m.reason == "return" { "returning" } else { "offline" };
                Some((doc.node.clone(), m.to.clone(), phase, m.reason.clone()))
            }
            (Some(m), None) if before.is_some_and(|o| o.node != doc.node) => {
                Some((before.map(|o| o.node.clone()).unwrap_or_default(), doc.node.clone(), "online", m.reason.clone()))
            }
            (Some(m), None) => Some((doc.node.clone(), m.to.clone(), "cancelled", m.reason.clone())),
            _ => None,
        };
        if let Some((from, to, phase, reason)) = phase {
            ready.events.push(EventKind::Move { group: group.into(), from, to, phase: phase.into(), reason });
        }
        self.touch_group(group);
    }

    fn put_group(&mut self, name: &str, revision: u64, doc: GroupDoc, initial: bool, ready: &mut Ready) {
        match self.view.groups.get_mut(name) {
            Some(g) => {
                let properties = changed_keys(&g.doc.common, &doc.common);
                g.doc = doc;
                g.revision = revision;
                if !properties.is_empty() {
                    ready.events.push(EventKind::Property { object: "group".into(), name: name.into(), properties });
                }
            }
            None => {
                let members =
                    self.view.resources.values().filter(|r| r.doc.group == name).map(|r| r.doc.name.clone()).collect();
                let group = Group { doc, revision, state: GroupState::Offline, members };
                self.view.groups.insert(name.to_string(), group);
                self.dirty_groups.insert(name.to_string());
                if !initial {
                    ready.events.push(EventKind::Added { object: "group".into(), name: name.into() });
                }
            }
        }
    }

    fn put_resource(&mut self, revision: u64, doc: ResourceDoc, initial: bool, ready: &mut Ready) {
        let name = doc.name.clone();
        // New, loaded at the node's start, or changed (a refused open may work now).
        self.to_open.insert(name.clone());
        // Another object under the same name (deleted and created again while the feed was lost):
        // the old one goes as a delete would take it, so nothing of it keeps running.
        if let Some(old) = self.view.resources.get(&name)
            && (old.doc.id != doc.id || old.doc.group != doc.group || old.doc.type_name != doc.type_name)
        {
            self.apply_delete(&crate::model::keys::resource(&name), ready);
        }
        let problem = match self.view.resources.get(&name) {
            None => {
                let doc_group = doc.group.clone();
                let problem = self.view.insert_resource(doc, revision, Desired::Offline);
                // At start, what was online when the node stopped comes back.
                // Unless its group's Priority is 0 ("no auto start", as in WSFC).
                let auto = self.view.auto_start(&doc_group);
                if initial
                    && auto
                    && let Some(r) = self.view.resources.get_mut(&name)
                    && r.policy.persistent
                {
                    r.desired = Desired::Online;
                }
                if !initial {
                    ready.events.push(EventKind::Added { object: "resource".into(), name: name.clone() });
                }
                problem
            }
            Some(old) => {
                let mut properties = changed_keys(&old.doc.common, &doc.common);
                properties.extend(changed_keys(&old.doc.private, &doc.private));
                if old.doc.dependencies != doc.dependencies {
                    properties.push("Dependencies".into());
                }
                // What it depended on may now be free to go offline.
                let before: Vec<String> = old.doc.dependencies.names().into_iter().map(str::to_string).collect();
                let problem = self.view.update_resource(doc, revision);
                for d in before {
                    self.touch(&d);
                }
                // The host hears of new private properties and timeouts at once; the type reads
                // them at its next online.
                if let Some(r) = self.view.resources.get_mut(&name)
                    && r.open == Opened::Open
                    && let Some(call) = r.update_for_host()
                {
                    ready.calls.push(HostCall { id: r.doc.id, resource: name.clone(), call });
                }
                if !properties.is_empty() {
                    ready.events.push(EventKind::Property {
                        object: "resource".into(),
                        name: name.clone(),
                        properties,
                    });
                }
                problem
            }
        };
        if let Some(message) = problem {
            ready.events.push(EventKind::Log { resource: name.clone(), level: "Warning".into(), message });
        }
        self.touch(&name);
    }

    fn apply_delete(&mut self, key: &str, ready: &mut Ready) {
        if key == keys::CLUSTER_PROPERTIES {
            self.view.cluster = None;
            return;
        }
        if key == ID_COUNTER {
            self.view.id_counter = None;
            return;
        }
        let Some((kind, name)) = key.split_once('/') else { return };
        match kind {
            "type" if self.view.types.remove(name).is_some() => {
                ready.events.push(EventKind::Deleted { object: "type".into(), name: name.into() });
            }
            "group" if self.view.groups.remove(name).is_some() => {
                ready.events.push(EventKind::Deleted { object: "group".into(), name: name.into() });
            }
            "owner" if self.view.owners.remove(name).is_some() => self.touch_group(name),
            "node-state" => {
                self.view.node_states.remove(name);
            }
            "node" if self.view.nodes.remove(name).is_some() => {
                ready.events.push(EventKind::Deleted { object: "node".into(), name: name.into() });
            }
            "resource" => {
                let dependents: Vec<String> = self.view.dependents_of(name).cloned().collect();
                self.to_open.remove(name);
                let Some(r) = self.view.remove_resource(name) else { return };
                if r.open == Opened::Open {
                    // Deleted elsewhere while up here: nothing of it may keep running.
                    if r.is_active() {
                        ready.calls.push(HostCall { id: r.doc.id, resource: name.into(), call: Call::Terminate });
                    }
                    ready.calls.push(HostCall { id: r.doc.id, resource: name.into(), call: Call::Close });
                }
                self.dirty_groups.insert(r.doc.group.clone());
                self.ops.touched(name);
                self.waiting.remove(name);
                // Its dependents may have to go down; what it depended on may now go offline.
                let dependencies: Vec<String> = r.doc.dependencies.names().into_iter().map(str::to_string).collect();
                for d in dependents.iter().chain(&dependencies) {
                    self.touch(d);
                }
                ready.events.push(EventKind::Deleted { object: "resource".into(), name: name.into() });
            }
            _ => {}
        }
    }
}
