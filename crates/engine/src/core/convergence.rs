//! Convergence: the calls that bring resources closer to what they should be. Dependencies come
//! online first and go offline last; everything else moves in parallel. Only resources marked
//! dirty in this step are looked at, so the work follows what changed, not the cluster's size.

use super::view::Opened;
use super::{Call, Core, Desired, HostCall, Ready, Time};
use crate::model;
use resapi::{OfflineFlags, ResourceState, Status};

impl Core {
    /// Converges every dirty resource.
    pub(super) fn converge(&mut self, now: Time, ready: &mut Ready) {
        while let Some(name) = self.dirty.pop_first() {
            self.converge_one(now, &name, ready);
        }
    }

    fn converge_one(&mut self, now: Time, name: &str, ready: &mut Ready) {
        let Some(r) = self.view.resources.get(name) else { return };
        if r.open == Opened::Opening || r.host_gone {
            return;
        }
        let id = r.doc.id;
        // Its group may run here: owned here, not moving away, and the lease held.
        let here = self.runs_here(&r.doc.group);
        if r.busy {
            // An offline (forced or not) reaches a resource that is still coming online at once,
            // with Terminate: there is nothing to take offline gracefully yet, and waiting could
            // last PendingTimeout.
            // So does a lost lease to a resource still going offline.
            let lost = self.lease_lost() && r.state == ResourceState::OfflinePending;
            if ((r.desired == Desired::Offline || !here) && r.state == ResourceState::OnlinePending || lost)
                && !r.terminating
            {
                ready.calls.push(HostCall { id, resource: name.to_string(), call: Call::Terminate });
                if let Some(r) = self.view.resources.get_mut(name) {
                    r.terminate_next = false;
                    r.terminating = true;
                }
            }
            return;
        }
        let deps_ok = self.view.dependencies_online(r);
        let up = here && r.desired == Desired::Online && deps_ok && r.restart.allows(now);
        if !up && self.open_or_close(name, here, ready) {
            return;
        }
        let Some(r) = self.view.resources.get(name) else { return };
        if here && r.desired == Desired::Online && r.restart.wait_until.is_some_and(|t| t > now) {
            self.waiting.insert(name.to_string());
        }
        match (r.state, up) {
            (ResourceState::Offline | ResourceState::Failed, true) => {
                let call = if r.open == Opened::Open {
                    let input = r.operator_input.clone().unwrap_or_else(|| self.epoch_input(&r.doc.group));
                    Call::Online { flags: self.arrival_flags(r), input }
                } else {
                    self.to_open.remove(name);
                    Call::Open(self.open_spec(r))
                };
                if matches!(call, Call::Open(_)) && !self.view.types.contains_key(&r.doc.type_name) {
                    let status = Status::ERROR_CLUSTER_RESOURCE_TYPE_NOT_FOUND;
                    if let Some(r) = self.view.resources.get_mut(name) {
                        r.restart.blocked = true;
                    }
                    self.set_state(name, ResourceState::Failed, status, "OpenFailed", ready);
                    return;
                }
                let epoch = self.view.epoch_of(&r.doc.group);
                if let Some(r) = self.view.resources.get_mut(name) {
                    if matches!(call, Call::Open(_)) {
                        r.open = Opened::Opening;
                        r.host_sees = Some(r.host_config());
                    } else {
                        r.busy = true;
                        r.restart.wait_until = None;
                        r.online_epoch = epoch;
                        r.operator_input = None;
                    }
                }
                ready.calls.push(HostCall { id, resource: name.to_string(), call });
            }
            (ResourceState::Online, false) if r.desired == Desired::Offline || !deps_ok || !here => {
                // A queued move waits before asking a deferring resource again.
                if r.offline_not_before.is_some_and(|t| t > now) {
                    self.waiting.insert(name.to_string());
                    return;
                }
                // Dependents go first.
                let waiting = self.view.dependents_of(name).any(|d| {
                    self.view
                        .resources
                        .get(d)
                        .is_some_and(|x| !matches!(x.state, ResourceState::Offline | ResourceState::Failed))
                });
                if waiting {
                    return;
                }
                // Taken down for a dependency that went away: it comes back when the dependency
                // does, so its persistent state must not change.
                let flags = if r.desired == Desired::Online {
                    OfflineFlags::DO_NOT_UPDATE_PERSISTENT_STATE
                } else {
                    r.offline_flags
                };
                let call = if !here {
                    match self.leaving(&r.doc.group) {
                        // A move: OfflineV2 toward the destination, with the move's flags; the
                        // persistent state stays as it is, for the destination to restore.
                        Some(m) => Call::Offline {
                            destination: Some(m.to.clone()),
                            flags: OfflineFlags::from_bits_truncate(m.offline_flags)
                                | OfflineFlags::DO_NOT_UPDATE_PERSISTENT_STATE,
                            input: self.epoch_input(&r.doc.group),
                        },
                        // No renewal of the lease for most of it: the node is probably cut off.
                        // It steps down gracefully while the lease lasts (WSFC's offline for
                        // lost network connectivity); the lease's end terminates what is left.
                        None if self.stepping_down() => Call::Offline {
                            destination: None,
                            flags: OfflineFlags::IGNORE_NETWORK_CONNECTIVITY
                                | OfflineFlags::DO_NOT_UPDATE_PERSISTENT_STATE,
                            input: self.epoch_input(&r.doc.group),
                        },
                        // The lease is lost or the group is someone else's: nothing of it may
                        // keep running here, and there is no time for a graceful offline.
                        None => Call::Terminate,
                    }
                } else if r.terminate_next {
                    Call::Terminate
                } else {
                    let input = r.operator_input.clone().unwrap_or_else(|| self.epoch_input(&r.doc.group));
                    Call::Offline { destination: None, flags, input }
                };
                if let Some(r) = self.view.resources.get_mut(name) {
                    r.operator_input = None;
                    r.busy = true;
                    r.terminate_next = false;
                    r.offline_not_before = None;
                }
                ready.calls.push(HostCall { id, resource: name.to_string(), call });
            }
            (ResourceState::Failed, false) if r.desired == Desired::Offline => {
                // Already terminated by its host: an offline just records it.
                self.set_state(name, ResourceState::Offline, Status::ERROR_SUCCESS, "Operator", ready);
            }
            _ => {}
        }
    }

    /// What an Open of `r` sends its host.
    fn open_spec(&self, r: &super::view::Res) -> halo_host::client::OpenSpec {
        halo_host::client::OpenSpec {
            id: r.doc.id,
            name: r.doc.name.clone(),
            type_spec: self
                .view
                .types
                .get(&r.doc.type_name)
                .map(|(_, t)| t.spec.clone())
                .unwrap_or(halo_host::protocol::TypeSpec::Dummy),
            properties: model::to_list(&r.doc.private),
            flags: 0,
            timeouts: r.policy.timeouts,
            separate_monitor: r.policy.separate_monitor,
        }
    }

    /// A resource that is not to come online now is open exactly where its group runs, as
    /// WSFC opens a resource when it is created and when its node starts: control codes (and
    /// property validation) reach its type while it is offline. It is closed once it is down
    /// and its group belongs to another node, and when the node shuts down. Returns whether it
    /// made a call.
    fn open_or_close(&mut self, name: &str, here: bool, ready: &mut Ready) -> bool {
        let Some(r) = self.view.resources.get(name) else { return false };
        let down = !r.busy && matches!(r.state, ResourceState::Offline | ResourceState::Failed);
        let elsewhere = self.view.owners.get(&r.doc.group).is_some_and(|(_, o)| o.node != self.node);
        let id = r.doc.id;
        if r.open == Opened::Closed
            && here
            && down
            && !r.host_lost
            && !self.shutting_down
            && !r.open_refused
            && self.to_open.contains(name)
            && self.view.types.contains_key(&r.doc.type_name)
        {
            let call = Call::Open(self.open_spec(r));
            self.to_open.remove(name);
            if let Some(r) = self.view.resources.get_mut(name) {
                r.open = Opened::Opening;
                r.host_sees = Some(r.host_config());
            }
            ready.calls.push(HostCall { id, resource: name.to_string(), call });
            return true;
        }
        if r.open == Opened::Open && down && (elsewhere || self.shutting_down) {
            if let Some(r) = self.view.resources.get_mut(name) {
                r.open = Opened::Closed;
                r.host_sees = None;
            }
            ready.calls.push(HostCall { id, resource: name.to_string(), call: Call::Close });
            return true;
        }
        false
    }
}
