//! Operations: an operator's online or offline of a set of resources, numbered, ending when
//! every resource reached the goal (Succeeded), when one of them failed for good (Failed with its
//! status), or when a later operation asked the opposite of one of its resources (Failed with
//! ERROR_OPERATION_ABORTED) — so no waiter is left on an operation that can no longer end.

use super::view::Opened;
use super::{Answer, Command, Core, Desired, OpStatus, Ready, Target, Token};
use crate::events::EventKind;
use crate::model::EngineError;
use resapi::{OfflineFlags, ResourceState, Status};
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug)]
struct Operation {
    resources: Vec<String>,
    goal: ResourceState,
}

/// The operations in progress.
#[derive(Debug, Default)]
pub(super) struct Operations {
    last: u64,
    pending: BTreeMap<u64, Operation>,
    by_resource: HashMap<String, BTreeSet<u64>>,
    /// Operations to look at when this step ends.
    candidates: BTreeSet<u64>,
    /// Deletes waiting for their resource's offline: operation → (reply, resource, force).
    deletes: BTreeMap<u64, (Token, String, bool)>,
}

impl Operations {
    /// The next operation gets `first`.
    pub(super) fn start_at(&mut self, first: u64) {
        self.last = first.saturating_sub(1);
    }

    /// Marks the operations that name `resource` for settling.
    pub(super) fn touched(&mut self, resource: &str) {
        if let Some(ids) = self.by_resource.get(resource) {
            self.candidates.extend(ids.iter().copied());
        }
    }

    fn end(&mut self, id: u64) -> Option<Operation> {
        let op = self.pending.remove(&id)?;
        for r in &op.resources {
            if let Some(set) = self.by_resource.get_mut(r) {
                set.remove(&id);
                if set.is_empty() {
                    self.by_resource.remove(r);
                }
            }
        }
        Some(op)
    }
}

impl Core {
    /// Online and offline commands: checks them, records persistent state when asked, points the
    /// resources at the goal and starts an operation.
    /// The operator's InBuffer for the next OnlineV2/OfflineV2 of `target` (the named resource,
    /// or every member of the named group); empty: none.
    pub(super) fn give_input(&mut self, target: &Target, input: Vec<u8>) {
        if input.is_empty() {
            return;
        }
        let names: Vec<String> = match target {
            Target::Resource(name) => vec![name.clone()],
            Target::Group(g) => {
                self.view.groups.get(g).map(|g| g.members.iter().cloned().collect()).unwrap_or_default()
            }
        };
        for n in names {
            if let Some(r) = self.view.resources.get_mut(&n) {
                r.operator_input = Some(input.clone());
            }
        }
    }

    pub(super) fn operate(
        &mut self,
        target: &Target,
        desired: Desired,
        flags: OfflineFlags,
        update_persistent: bool,
        ready: &mut Ready,
    ) -> Result<u64, EngineError> {
        let targets = self.targets(target, desired)?;
        let group = match target {
            Target::Resource(name) => self.view.resource(name)?.doc.group.clone(),
            Target::Group(name) => name.clone(),
        };
        match self.view.owners.get(&group) {
            None => {
                return Err(EngineError::new(
                    Status::ERROR_GROUP_NOT_AVAILABLE,
                    format!("group {group} has no owner yet (the coordinator places it)"),
                ));
            }
            Some((_, o)) if o.node != self.node => return Err(super::ownership::not_owner(&group, &o.node)),
            Some((_, o)) if desired == Desired::Online && o.moving.is_some() => {
                return Err(EngineError::new(
                    Status::ERROR_CLUSTER_GROUP_MOVING,
                    format!("group {group} is moving; wait for the move or cancel it"),
                ));
            }
            Some(_) => {}
        }
        if self.shutting_down && desired == Desired::Online {
            return Err(EngineError::new(Status::ERROR_CLUSTER_SHUTTING_DOWN, "the node is shutting down"));
        }
        if desired == Desired::Offline
            && !flags.contains(OfflineFlags::IGNORE_RESOURCE_STATUS)
            && let Some(r) = targets
                .iter()
                .filter_map(|n| self.view.resources.get(n))
                .find(|r| r.locked && r.state == ResourceState::Online)
        {
            return Err(EngineError::new(
                Status::ERROR_CLUSTER_RESOURCE_LOCKED_STATUS,
                format!("{} is in locked mode; use IGNORE_RESOURCE_STATUS to force it", r.doc.name),
            ));
        }
        if update_persistent {
            self.persist(&targets, desired == Desired::Online, ready);
        }
        Ok(self.start_operation(targets, desired, flags, ready))
    }

    fn targets(&self, target: &Target, desired: Desired) -> Result<Vec<String>, EngineError> {
        match target {
            Target::Resource(name) => {
                self.view.resource(name)?;
                Ok(match desired {
                    Desired::Online => self
                        .view
                        .closure(name, |_, r| r.doc.dependencies.names().into_iter().map(str::to_string).collect()),
                    Desired::Offline => self.view.closure(name, |v, r| v.dependents_of(&r.doc.name).cloned().collect()),
                })
            }
            Target::Group(name) => Ok(self.view.group(name)?.members.iter().cloned().collect()),
        }
    }

    /// Points `targets` at `desired` and numbers the operation; an earlier operation that wanted
    /// the opposite of any of them ends now.
    pub(super) fn start_operation(
        &mut self,
        targets: Vec<String>,
        desired: Desired,
        flags: OfflineFlags,
        ready: &mut Ready,
    ) -> u64 {
        let goal = if desired == Desired::Online { ResourceState::Online } else { ResourceState::Offline };
        self.ops.last += 1;
        let id = self.ops.last;
        let superseded: BTreeSet<u64> = targets
            .iter()
            .filter_map(|n| self.ops.by_resource.get(n))
            .flatten()
            .copied()
            .filter(|o| self.ops.pending.get(o).is_some_and(|op| op.goal != goal))
            .collect();
        for old in superseded {
            self.ops.end(old);
            let status = OpStatus::Failed {
                code: Status::ERROR_OPERATION_ABORTED.0,
                message: format!("{}: superseded by operation {id}", Status::ERROR_OPERATION_ABORTED),
            };
            self.finished(old, status, ready);
        }
        for n in &targets {
            if let Some(r) = self.view.resources.get_mut(n) {
                r.desired = desired;
                r.offline_flags = flags;
                r.open_refused = false;
                // An operator's request clears what the failure policy decided.
                r.restart.clear();
                self.waiting.remove(n);
            }
            self.ops.by_resource.entry(n.clone()).or_default().insert(id);
        }
        for n in &targets {
            self.touch(n);
        }
        self.ops.pending.insert(id, Operation { resources: targets, goal });
        self.ops.candidates.insert(id);
        id
    }

    /// An operation ended: tell its waiters, and go on with a delete that waited for it.
    fn finished(&mut self, id: u64, status: OpStatus, ready: &mut Ready) {
        if let Some((token, name, force)) = self.ops.deletes.remove(&id) {
            match &status {
                OpStatus::Succeeded => self.config_command(token, Command::DeleteResource { name, force }, ready),
                OpStatus::Failed { message, .. } => ready.replies.push((
                    token,
                    Err(EngineError::new(
                        Status::ERROR_RESOURCE_ONLINE,
                        format!("{name} did not go offline for deletion: {message}"),
                    )),
                )),
                OpStatus::Pending => {}
            }
        }
        ready.operations.push((id, status));
    }

    /// A delete of a resource that is up waits for operation `op` to take it offline.
    pub(super) fn delete_after(&mut self, op: u64, token: Token, name: String, force: bool) {
        self.ops.deletes.insert(op, (token, name, force));
    }

    /// Ends the operations whose resources all reached the goal, or one of which failed for good.
    pub(super) fn settle_operations(&mut self, ready: &mut Ready) {
        for id in std::mem::take(&mut self.ops.candidates) {
            let Some(op) = self.ops.pending.get(&id) else { continue };
            let members: Vec<_> = op.resources.iter().filter_map(|n| self.view.resources.get(n)).collect();
            let outcome = if members.iter().all(|r| r.state == op.goal && !r.busy) {
                Some(OpStatus::Succeeded)
            } else {
                members.iter().find(|r| r.state == ResourceState::Failed && r.restart.blocked).map(|r| {
                    OpStatus::Failed { code: r.status.0, message: format!("{} failed: {}", r.doc.name, r.status) }
                })
            };
            if let Some(status) = outcome {
                self.ops.end(id);
                self.finished(id, status, ready);
            }
        }
    }

    /// FailClusterResource: terminates an online resource and counts it as failed, so the restart
    /// policy runs.
    pub(super) fn fail(&mut self, name: &str, ready: &mut Ready) -> Result<Answer, EngineError> {
        let r = self.view.resources.get_mut(name).ok_or_else(|| EngineError::no_resource(name))?;
        if r.state != ResourceState::Online || r.open != Opened::Open {
            return Err(EngineError::new(Status::ERROR_RESOURCE_NOT_ONLINE, format!("{name} is {}", r.state)));
        }
        r.fail_requested = true;
        // Nothing else is sent to it until the terminate's outcome (an offline asked meanwhile
        // would run beside it, and its end be taken for the terminate's).
        r.busy = true;
        r.terminating = true;
        ready.calls.push(super::HostCall { id: r.doc.id, resource: name.to_string(), call: super::Call::Terminate });
        Ok(Answer::Done)
    }

    /// Records a resource's new state and what follows from it.
    pub(super) fn set_state(
        &mut self,
        name: &str,
        state: ResourceState,
        status: Status,
        cause: &str,
        ready: &mut Ready,
    ) {
        let Some(r) = self.view.resources.get_mut(name) else { return };
        r.state = state;
        r.status = status;
        ready.events.push(EventKind::ResourceState {
            resource: name.to_string(),
            group: r.doc.group.clone(),
            state: state.to_string(),
            status: status.0,
            cause: cause.to_string(),
        });
        self.ops.touched(name);
        self.touch(name);
    }
}
