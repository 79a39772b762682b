//! Facts from the hosts — state reports, opens, calls that could not be delivered — turned into
//! states, failure-policy decisions and events.

use super::view::Opened;
use super::{CallKind, Core, Desired, Ready, Time};
use crate::events::EventKind;
use halo_host::client::{HostError, HostEvent};
use halo_host::protocol::{Cause, FromHost, ResourceId};
use resapi::{LogLevel, ResourceState, Status};

impl Core {
    pub(super) fn on_host(&mut self, now: Time, event: HostEvent, ready: &mut Ready) {
        match event {
            HostEvent::Fact(FromHost::State { id, state, status, cause, .. }) => {
                let Ok(state) = ResourceState::from_raw(state) else { return };
                self.on_state(now, id, state, Status(status), cause, ready);
                if state == ResourceState::Online && Status(status) == Status::ERROR_CLUSTER_RESOURCE_VETOED_CALL {
                    self.offline_deferred(now, id, ready);
                }
            }
            HostEvent::Fact(FromHost::Closed { id }) => {
                if let Some(r) = self.view.by_id_mut(id) {
                    r.open = Opened::Closed;
                }
            }
            HostEvent::Fact(FromHost::FailureSignal { id, failure_type, code })
                if failure_type == resapi::FailureType::Embedded.raw() =>
            {
                self.on_embedded_failure(now, id, code, ready);
            }
            HostEvent::Fact(FromHost::LockedMode { id, locked, .. }) => {
                if let Some(r) = self.view.by_id_mut(id) {
                    r.locked = locked;
                    // Locked mode is a StatusInformation bit (CLUSTER_RESOURCE_STATUS_LOCKED_MODE).
                    ready.events.push(EventKind::Property {
                        object: "resource".into(),
                        name: r.doc.name.clone(),
                        properties: vec!["StatusInformation".into()],
                    });
                }
            }
            HostEvent::Fact(FromHost::Log { id, level, message }) => {
                let resource = self.view.by_id.get(&id).cloned().unwrap_or_else(|| format!("#{id}"));
                let level = LogLevel::from_raw(level).map(|l| l.to_string()).unwrap_or_else(|_| level.to_string());
                ready.events.push(EventKind::Log { resource, level, message });
            }
            HostEvent::Fact(FromHost::Rejected { id, status, message }) => {
                // The host refused a request outright: nothing is in flight any more.
                let Some(r) = self.view.by_id_mut(id) else { return };
                r.busy = false;
                r.terminating = false;
                if status == Status::ERROR_RESOURCE_NOT_FOUND.0 {
                    // Believed open: its host died, and that report is still to come.
                    r.host_lost = r.open == Opened::Open;
                    r.open = Opened::Closed;
                }
                let name = r.doc.name.clone();
                ready.events.push(EventKind::Log { resource: name.clone(), level: "Error".into(), message });
                self.ops.touched(&name);
                self.touch(&name);
            }
            // Each resource of a dead host also arrives as a Failed state with cause HostDied.
            HostEvent::HostDied { .. } | HostEvent::Fact(_) => {}
        }
    }

    fn on_state(
        &mut self,
        now: Time,
        id: ResourceId,
        state: ResourceState,
        status: Status,
        cause: Cause,
        ready: &mut Ready,
    ) {
        let Some(r) = self.view.by_id_mut(id) else { return };
        // A host that dies while an open is in flight also fails that open, and the open's
        // answer is the one that counts: its death report belongs to an earlier open (or to
        // this one) and must not close, or count a second failure of, the open now in flight.
        if cause == Cause::HostDied && r.open == Opened::Opening {
            r.host_lost = false;
            r.death_reported_in_open = true;
            return;
        }
        // The death report of a host that had already said it no longer held the resource (see
        // `host_lost`): if the resource was opened again since, it is about the old host.
        if cause == Cause::HostDied && r.host_lost {
            r.host_lost = false;
            if r.open == Opened::Open {
                return;
            }
        }
        let (mut state, mut status) = (state, status);
        if r.fail_requested && !state.is_pending() {
            // The operator's FailClusterResource: the terminate it caused counts as a failure.
            r.fail_requested = false;
            state = ResourceState::Failed;
            status = Status::ERROR_RESOURCE_FAILED;
        }
        // A call that ran beside a Terminate ended (an online finishing as it was terminated):
        // the Terminate's own outcome is still to come, and until it does, nothing else is sent.
        let beside_terminate = r.terminating && !matches!(cause, Cause::Terminated | Cause::HostDied);
        if !state.is_pending() && !beside_terminate {
            r.busy = false;
            r.terminate_next = false;
            r.terminating = false;
        }
        if cause == Cause::HostDied {
            r.open = Opened::Closed;
            r.host_gone = false;
        }
        // The hosts stopped it because this node's ownership lease ended (it was frozen, cut
        // off or overloaded): the node lost the right to run it, the resource did not fail. It
        // comes back when the lease does, if this node still owns its group, or elsewhere after
        // a failover; counting it as a failure would exhaust the restarts of a resource that
        // never failed (the simulator found a group left down for RetryPeriodOnFailure so).
        let name = r.doc.name.clone();
        let group = r.doc.group.clone();
        let mut fail_over = false;
        if state == ResourceState::Failed && r.desired == Desired::Online {
            let policy = r.policy;
            fail_over = r.restart.on_failure(&policy, now);
            if r.restart.wait_until.is_some() {
                self.waiting.insert(name.clone());
            }
        }
        self.set_state(&name, state, status, &format!("{cause:?}"), ready);
        if fail_over {
            self.fail_over(&group, ready);
        }
    }

    /// SignalFailure(EMBEDDED): something inside the resource failed (a VM's guest, say).
    /// EmbeddedFailureAction decides: 0 ignores it, 1 logs it, 2 (the default) recovers — the
    /// resource goes offline with DUE_TO_EMBEDDED_FAILURE, counts one failure, and comes back
    /// under its restart policy (which may fail the group over).
    fn on_embedded_failure(&mut self, now: Time, id: ResourceId, code: u32, ready: &mut Ready) {
        let Some(r) = self.view.by_id_mut(id) else { return };
        let name = r.doc.name.clone();
        let group = r.doc.group.clone();
        let action = r.doc.common.get("EmbeddedFailureAction").and_then(|v| resapi::parse_u32(v)).unwrap_or(2);
        if action == 0 {
            return;
        }
        ready.events.push(EventKind::Log {
            resource: name.clone(),
            level: "Warning".into(),
            message: format!("embedded failure (application code {code}); EmbeddedFailureAction {action}"),
        });
        if action != 2 || r.state != ResourceState::Online || r.busy || r.desired != Desired::Online {
            return;
        }
        let policy = r.policy;
        let fail_over = r.restart.on_failure(&policy, now);
        if r.restart.wait_until.is_some() {
            self.waiting.insert(name.clone());
        }
        r.busy = true;
        let flags =
            resapi::OfflineFlags::DUE_TO_EMBEDDED_FAILURE | resapi::OfflineFlags::DO_NOT_UPDATE_PERSISTENT_STATE;
        let input = self.epoch_input(&group);
        ready.calls.push(super::HostCall {
            id,
            resource: name,
            call: super::Call::Offline { destination: None, flags, input },
        });
        if fail_over {
            self.fail_over(&group, ready);
        }
    }

    pub(super) fn on_opened(&mut self, now: Time, id: ResourceId, result: Result<(), HostError>, ready: &mut Ready) {
        let Some(r) = self.view.by_id_mut(id) else {
            // Deleted while it was opening: close what was opened.
            if result.is_ok() {
                let resource = format!("#{id}");
                ready.calls.push(super::HostCall { id, resource, call: super::Call::Close });
            }
            return;
        };
        let name = r.doc.name.clone();
        // The host died during the open: the report of that death is still to come, unless it
        // came while the open was in flight.
        let death_reported = std::mem::take(&mut r.death_reported_in_open);
        if let Err(e) = &result
            && !death_reported
            && matches!(e.status, Status::ERROR_EXCEPTION_IN_RESOURCE_CALL | Status::ERROR_RESMON_INVALID_STATE)
        {
            r.host_lost = true;
        }
        match result {
            Ok(()) => {
                r.open = Opened::Open;
                self.to_open.remove(&name);
                // Properties set while it was opening reach the host now.
                if let Some(call) = r.update_for_host() {
                    ready.calls.push(super::HostCall { id, resource: name.clone(), call });
                }
                self.touch(&name);
            }
            Err(e) if r.desired == Desired::Offline => {
                // Opened only to be there (for control codes): an offline resource stays
                // offline, and is not opened again until something changes.
                r.open = Opened::Closed;
                r.open_refused = true;
                let message = format!("open refused while offline: {}", e.message);
                ready.events.push(EventKind::Log { resource: name.clone(), level: "Warning".into(), message });
                self.touch(&name);
            }
            Err(e) => {
                r.open = Opened::Closed;
                let host_trouble = matches!(
                    e.status,
                    Status::ERROR_RESMON_CREATE_FAILED
                        | Status::ERROR_RESMON_INVALID_STATE
                        | Status::ERROR_EXCEPTION_IN_RESOURCE_CALL
                        | Status::ERROR_RESOURCE_CALL_TIMED_OUT
                );
                if host_trouble && r.desired == Desired::Online {
                    // The host, not the resource, failed: the restart policy retries.
                    let policy = r.policy;
                    // The host failed, not the resource: it restarts here, whatever the count.
                    let _ = r.restart.on_failure(&policy, now);
                    if r.restart.wait_until.is_some() {
                        self.waiting.insert(name.clone());
                    }
                } else {
                    // Its configuration is refused: restarts would not help.
                    r.restart.blocked = true;
                }
                ready.events.push(EventKind::Log { resource: name.clone(), level: "Error".into(), message: e.message });
                self.set_state(&name, ResourceState::Failed, e.status, "OpenFailed", ready);
            }
        }
    }

    /// A call the host manager could not deliver: the resource is in no host that can act on it.
    pub(super) fn on_call_failed(
        &mut self,
        now: Time,
        id: ResourceId,
        call: CallKind,
        error: HostError,
        ready: &mut Ready,
    ) {
        let Some(r) = self.view.by_id_mut(id) else { return };
        let name = r.doc.name.clone();
        if error.status == Status::ERROR_RESOURCE_NOT_FOUND {
            // Believed open: its host died, and that report is still to come.
            r.host_lost = r.open == Opened::Open;
            r.open = Opened::Closed;
        }
        // Its host is going away: the manager reports the death (HostDied) once it has made sure
        // nothing of the resource runs; that report, not this refusal, counts as the failure,
        // and nothing is sent to the resource until it comes.
        if error.status == Status::ERROR_RESMON_INVALID_STATE && call != CallKind::Other {
            r.busy = false;
            r.host_gone = true;
            ready.events.push(EventKind::Log { resource: name, level: "Warning".into(), message: error.to_string() });
            return;
        }
        if call == CallKind::Other {
            // A lost Update: send it again at the next chance. An online or offline in flight
            // is not affected.
            r.host_sees = None;
        } else {
            r.busy = false;
            r.terminating = false;
            r.terminate_next = false;
        }
        ready.events.push(EventKind::Log { resource: name.clone(), level: "Error".into(), message: error.to_string() });
        match call {
            // Counted as a failure, so that a host that keeps refusing is retried on the restart
            // policy's schedule rather than in a loop.
            CallKind::Online => {
                let policy = r.policy;
                let _ = r.restart.on_failure(&policy, now);
                if r.restart.wait_until.is_some() {
                    self.waiting.insert(name.clone());
                }
                self.set_state(&name, ResourceState::Failed, error.status, "CallFailed", ready);
            }
            // No host holds it, so nothing of it runs.
            CallKind::Offline | CallKind::Terminate => {
                r.fail_requested = false;
                self.set_state(&name, ResourceState::Offline, Status::ERROR_SUCCESS, "CallFailed", ready);
            }
            CallKind::Other => {}
        }
    }
}
