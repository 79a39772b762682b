//! Ownership on this node: which groups may run here, moves out and in, returns after a failed
//! move, and failover when a resource's restarts are exhausted.
//!
//! A group runs here only while three things hold: its ownership record names this node, no
//! move is under way, and this node holds its ownership lease. Losing any of them takes the
//! group down: a move with OfflineV2 toward the destination (dependents first), anything else
//! with Terminate. The record changes hands only when every member is down: the source writes
//! it over to the destination, guarded on its revision, so the new epoch starts with nothing of
//! the group running anywhere.

use super::{Core, Ready, Time};
use crate::model::{EngineError, MoveDoc, OwnerDoc, keys};
use halo_cluster::{Compare, Op, Request};
use resapi::{GroupMoveFlags, GroupState, OfflineFlags, OnlineFlags, ResourceState, Status};

/// How long before its lease ends (less the stop margin) a node that has heard nothing from the
/// coordinator starts to take its groups offline gracefully (OfflineV2 with
/// IGNORE_NETWORK_CONNECTIVITY), before the lease's end makes it terminate what is left.
pub const STEP_DOWN_LEAD: std::time::Duration = std::time::Duration::from_millis(50);

/// How long a move with QUEUE_ENABLED waits before it asks a deferring resource to go offline
/// again.
pub const QUEUE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Where this node stands with its ownership lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeasePhase {
    /// Held: groups owned here run.
    Held,
    /// About to end without renewal (the node is likely cut off): groups go offline gracefully.
    SteppingDown,
    /// Ended, or not yet valid: nothing runs; what is left is terminated.
    Lost,
}

impl Core {
    /// Whether this node steps its groups down for lack of a lease renewal.
    pub(super) fn stepping_down(&self) -> bool {
        self.lease_phase == LeasePhase::SteppingDown
    }

    /// Whether the lease is gone (ended, or not valid yet).
    pub(super) fn lease_lost(&self) -> bool {
        self.lease_phase == LeasePhase::Lost
    }

    /// The outcome of an ownership write: applied, the feed brings it (and ends the hand-over);
    /// refused or failed, the group is looked at again.
    pub(super) fn on_ownership_written(&mut self, write: super::WriteId, applied: bool) {
        if applied {
            return;
        }
        let Some(group) = self.handing.iter().find(|(_, w)| **w == write).map(|(g, _)| g.clone()) else { return };
        self.handing.remove(&group);
        self.touch_group(&group);
    }

    /// Writes an ownership change of `group`, remembered as in flight until its outcome (see
    /// [`Core::on_ownership_written`]) or the feed brings it.
    fn hand(&mut self, group: &str, request: Request, ready: &mut Ready) {
        let write = self.write(request, ready);
        self.handing.insert(group.to_string(), write);
    }

    /// The lease changed.
    pub(super) fn on_lease(&mut self, now: Time, until: Option<Time>, revision: u64) {
        match until {
            // A grant counts once the view has reached the revision it carries; until then the
            // grants before it still do (a new grant never shortens what an older one gave).
            Some(u) => match self.lease_pending {
                Some((pu, pr)) if pr >= revision => self.lease_pending = Some((pu.max(u), pr)),
                _ => self.lease_pending = Some((u, revision)),
            },
            None => {
                self.lease_until = None;
                self.lease_pending = None;
            }
        }
        self.check_lease(now);
    }

    /// Whether the lease is held at `now`; when that changed, every group owned here is looked
    /// at again (to start, or to stop).
    pub(super) fn check_lease(&mut self, now: Time) {
        // A lease granted after the view's revision counts only once the view has caught up:
        // the grant may follow a write that gave this node's groups away.
        if let Some((until, revision)) = self.lease_pending
            && self.view.revision >= revision
        {
            self.lease_until = Some(self.lease_until.map_or(until, |u| u.max(until)));
            self.lease_pending = None;
        }
        let phase = match self.lease_until {
            Some(t) if t.saturating_sub(STEP_DOWN_LEAD) > now => LeasePhase::Held,
            Some(t) if t > now => LeasePhase::SteppingDown,
            _ => LeasePhase::Lost,
        };
        if phase != self.lease_phase {
            self.lease_phase = phase;
            let mine: Vec<String> =
                self.view.owners.iter().filter(|(_, (_, o))| o.node == self.node).map(|(g, _)| g.clone()).collect();
            for g in mine {
                self.touch_group(&g);
            }
        }
    }

    /// Whether `group` may run here now.
    pub(super) fn runs_here(&self, group: &str) -> bool {
        self.lease_phase == LeasePhase::Held
            && self.view.owners.get(group).is_some_and(|(_, o)| o.node == self.node && o.moving.is_none())
    }

    /// The move taking `group` away from here, if one is under way.
    pub(super) fn leaving(&self, group: &str) -> Option<&MoveDoc> {
        self.view.owners.get(group).filter(|(_, o)| o.node == self.node).and_then(|(_, o)| o.moving.as_ref())
    }

    /// The OnlineV2 flags for bringing `r` online: the arriving move's flags on the first online
    /// of the group's epoch, none after (restarts are not arrivals).
    pub(super) fn arrival_flags(&self, r: &super::view::Res) -> u32 {
        match self.view.owners.get(&r.doc.group) {
            Some((epoch, owner)) if r.online_epoch != *epoch => owner.online_flags,
            _ => 0,
        }
    }

    /// The input buffer of an OnlineV2 or OfflineV2 call: a property list holding the group's
    /// epoch as the ULARGE_INTEGER `Epoch` (halo's documented extension; a resource that keeps
    /// the highest epoch it saw can refuse a caller with an older one).
    pub(super) fn epoch_input(&self, group: &str) -> Vec<u8> {
        resapi::PropertyList::new()
            .with(resapi::EPOCH_PROPERTY, resapi::ValueData::ULargeInteger(self.view.epoch_of(group)))
            .encode()
            .unwrap_or_default()
    }

    /// After a group's members changed: hand it over once a move has taken it down, and send it
    /// back after a move with return-on-error if it fails before it was ever up here.
    pub(super) fn ownership_duties(&mut self, group: &str, ready: &mut Ready) {
        if self.handing.contains_key(group) {
            return;
        }
        let Some((revision, owner)) = self.view.owners.get(group).cloned() else { return };
        if owner.node != self.node {
            return;
        }
        let Some(g) = self.view.groups.get(group) else { return };
        let members: Vec<&super::view::Res> = g.members.iter().filter_map(|m| self.view.resources.get(m)).collect();
        let all_down = members.iter().all(|r| !r.is_active());
        let next = if let Some(m) = &owner.moving {
            if !all_down {
                return;
            }
            // Down here: the destination takes over, with what should come up there.
            let return_to = m.return_on_error.then(|| self.node.clone());
            Some(OwnerDoc {
                node: m.to.clone(),
                moving: None,
                online_flags: m.online_flags,
                return_to,
                failovers: owner.failovers.clone(),
            })
        } else if let Some(source) = &owner.return_to {
            if g.state == GroupState::Online {
                // Arrived and up: the move succeeded, a later failure is an ordinary one. (Kept
                // here rather than written, so that the epoch changes only with the owner.)
                self.settled.insert(group.to_string(), revision);
                return;
            }
            let failed = members.iter().any(|r| r.state == ResourceState::Failed && !r.busy);
            let settled = self.settled.get(group) == Some(&revision);
            if failed && !settled && self.view.place(group, &[self.node.as_str()]).is_some() {
                // It could not come online here: back to where it came from.
                Some(OwnerDoc {
                    moving: Some(MoveDoc {
                        to: source.clone(),
                        offline_flags: OfflineFlags::RETURNING_TO_SOURCE_NODE_BECAUSE_OF_ERROR.bits(),
                        online_flags: 0,
                        return_on_error: false,
                        reason: "return".into(),
                    }),
                    ..owner.clone()
                })
            } else {
                None
            }
        } else {
            None
        };
        let Some(next) = next else { return };
        if let Ok(request) = owner_request(group, revision, &next) {
            self.hand(group, request, ready);
        }
    }

    /// A resource's restarts are exhausted with RestartAction 2: the group fails over to the
    /// node placement picks (excluding this one). With nowhere to go it stays here and the
    /// restart policy's retry period applies.
    pub(super) fn fail_over(&mut self, group: &str, ready: &mut Ready) {
        if self.handing.contains_key(group) || !self.runs_here(group) {
            return;
        }
        let Some((revision, owner)) = self.view.owners.get(group).cloned() else { return };
        let Some(to) = self.view.place(group, &[self.node.as_str()]) else { return };
        let Some(doc) = self.view.groups.get(group).map(|g| g.doc.clone()) else { return };
        let (allowed, failovers) =
            crate::model::failover_allowed(&doc, &owner.failovers, self.wall_clock, self.view.nodes.len());
        if !allowed {
            ready.events.push(crate::events::EventKind::Log {
                resource: String::new(),
                level: "Warning".into(),
                message: format!(
                    "group {group} has failed over FailoverThreshold times within FailoverPeriod: it stays failed here"
                ),
            });
            return;
        }
        let next = OwnerDoc {
            failovers,
            moving: Some(MoveDoc {
                to,
                offline_flags: 0,
                online_flags: 0,
                return_on_error: false,
                reason: "failover".into(),
            }),
            ..owner
        };
        if let Ok(request) = owner_request(group, revision, &next) {
            self.hand(group, request, ready);
        }
    }

    /// This node was paused with a drain: every group it owns (and is not already moving)
    /// moves to the node placement picks for it. A group no node can take stays, and says so.
    pub(super) fn drain(&mut self, ready: &mut Ready) {
        let mine = self.settled_here();
        for group in mine {
            let context = format!("draining {}: group {group} stays", self.node);
            self.start_move(&group, None, "drain", &context, ready);
        }
    }

    /// A resource deferred its offline (CLUSRESDLL_STATUS_OFFLINE_BUSY and the like) and stays
    /// Online. During a move with QUEUE_ENABLED the offline is tried again after
    /// [`QUEUE_RETRY`], until it goes or the move is cancelled; any other move is called off and
    /// the group stays here in its persistent state, with no failure counted (WSFC's veto).
    pub(super) fn offline_deferred(&mut self, now: Time, id: halo_host::protocol::ResourceId, ready: &mut Ready) {
        let Some(r) = self.view.by_id_mut(id) else { return };
        let (name, group) = (r.doc.name.clone(), r.doc.group.clone());
        let queued = self
            .leaving(&group)
            .is_some_and(|m| OfflineFlags::from_bits_truncate(m.offline_flags).contains(OfflineFlags::QUEUE_ENABLED));
        if queued {
            if let Some(r) = self.view.resources.get_mut(&name) {
                r.offline_not_before = Some(now + QUEUE_RETRY);
            }
            self.waiting.insert(name);
            return;
        }
        if self.leaving(&group).is_none() || self.handing.contains_key(&group) {
            return;
        }
        ready.events.push(crate::events::EventKind::Log {
            resource: name,
            level: "Warning".into(),
            message: format!(
                "the move of group {group} was vetoed by a resource that cannot go offline now; it stays here"
            ),
        });
        if let Ok(Some(request)) = self.plan_cancel(&group) {
            self.hand(&group, request, ready);
        }
    }

    /// Node `back` is Up and unpaused (again): each group owned here that prefers it to this
    /// node moves to it, if its AutoFailbackType is 1 (inside its failback window, when it has
    /// one) or the node was resumed with failback.
    pub(super) fn fail_back(&mut self, back: &str, asked: bool, ready: &mut Ready) {
        let hour = (self.wall_clock / 3600 % 24) as u32;
        let mine = self.settled_here();
        for group in mine {
            let Some(g) = self.view.groups.get(&group) else { continue };
            let preferred = crate::model::names_in(g.doc.common.get("PreferredOwners"));
            let rank = |n: &str| preferred.iter().position(|p| p == n);
            let better = match (rank(back), rank(&self.node)) {
                (Some(b), Some(me)) => b < me,
                (Some(_), None) => true,
                _ => false,
            };
            if !better {
                continue;
            }
            let dword =
                |name: &str, default: u32| g.doc.common.get(name).and_then(|v| resapi::parse_u32(v)).unwrap_or(default);
            let auto = dword("AutoFailbackType", 0) == 1;
            let (start, end) =
                (dword("FailbackWindowStart", crate::model::UNSET), dword("FailbackWindowEnd", crate::model::UNSET));
            let in_window = match (start, end) {
                (s, e) if s == crate::model::UNSET || e == crate::model::UNSET => true,
                (s, e) if s <= e => (s..=e).contains(&hour),
                (s, e) => hour >= s || hour <= e,
            };
            if !(asked || (auto && in_window)) {
                continue;
            }
            let context = format!("failback of group {group} to {back}");
            self.start_move(&group, Some(back), "failback", &context, ready);
        }
    }

    /// The groups owned here and not moving (nor being handed over).
    fn settled_here(&self) -> Vec<String> {
        self.view
            .owners
            .iter()
            .filter(|(g, (_, o))| o.node == self.node && o.moving.is_none() && !self.handing.contains_key(*g))
            .map(|(g, _)| g.clone())
            .collect()
    }

    /// Starts a move this node decided on (a drain, a failback); one that cannot be made is
    /// logged with `context` and the group stays.
    fn start_move(&mut self, group: &str, to: Option<&str>, reason: &str, context: &str, ready: &mut Ready) {
        match self.plan_move(group, to, GroupMoveFlags::empty(), reason) {
            Ok(Some(request)) => self.hand(group, request, ready),
            Ok(None) => {}
            Err(e) => ready.events.push(crate::events::EventKind::Log {
                resource: String::new(),
                level: "Warning".into(),
                message: format!("{context}: {e}"),
            }),
        }
    }

    /// The ownership record a move command writes, checked as MoveClusterGroupEx checks it:
    /// the group must be here and still, the destination a node that can take it, and no
    /// online resource locked unless the move ignores that.
    pub(super) fn plan_move(
        &self,
        group: &str,
        to: Option<&str>,
        flags: GroupMoveFlags,
        reason: &str,
    ) -> Result<Option<Request>, EngineError> {
        let g = self.view.group(group)?;
        let (revision, owner) = self.view.owners.get(group).cloned().ok_or_else(|| no_owner(group))?;
        if owner.node != self.node {
            return Err(not_owner(group, &owner.node));
        }
        if let Some(m) = &owner.moving {
            return Err(EngineError::new(
                Status::ERROR_CLUSTER_GROUP_MOVING,
                format!("group {group} is already moving to {}", m.to),
            ));
        }
        let to = match to {
            Some(n) if n == self.node => return Ok(None),
            Some(n) => {
                self.check_destination(group, n)?;
                n.to_string()
            }
            None => self.view.place(group, &[self.node.as_str()]).ok_or_else(|| {
                EngineError::new(
                    Status::ERROR_ALL_NODES_NOT_AVAILABLE,
                    format!("no other node can take group {group} (none is Up, unpaused and a possible owner)"),
                )
            })?,
        };
        let ignore_locked = flags.contains(GroupMoveFlags::IGNORE_RESOURCE_STATUS);
        let return_on_error = flags.contains(GroupMoveFlags::RETURN_TO_SOURCE_NODE_ON_ERROR);
        if !ignore_locked
            && let Some(locked) = g
                .members
                .iter()
                .filter_map(|m| self.view.resources.get(m))
                .find(|r| r.locked && r.state == ResourceState::Online)
        {
            return Err(EngineError::new(
                Status::ERROR_CLUSTER_RESOURCE_LOCKED_STATUS,
                format!("resource {} is locked; move with --ignore-locked to move it anyway", locked.doc.name),
            ));
        }
        // The client's flags map by name onto the DLL's (MoveClusterGroupEx → OfflineV2 on the
        // source, OnlineV2 on the destination).
        let mut offline = OfflineFlags::empty();
        let mut online = OnlineFlags::empty();
        if ignore_locked {
            offline |= OfflineFlags::IGNORE_RESOURCE_STATUS;
            online |= OnlineFlags::IGNORE_RESOURCE_STATUS;
        }
        if return_on_error {
            offline |= OfflineFlags::RETURN_TO_SOURCE_NODE_ON_ERROR;
            online |= OnlineFlags::RETURN_TO_SOURCE_NODE_ON_ERROR;
        }
        if flags.contains(GroupMoveFlags::QUEUE_ENABLED) {
            offline |= OfflineFlags::QUEUE_ENABLED;
        }
        let next = OwnerDoc {
            moving: Some(MoveDoc {
                to,
                offline_flags: offline.bits(),
                online_flags: online.bits(),
                return_on_error,
                reason: reason.to_string(),
            }),
            ..owner
        };
        owner_request(group, revision, &next).map(Some)
    }

    /// The write that cancels a move still under way here.
    pub(super) fn plan_cancel(&self, group: &str) -> Result<Option<Request>, EngineError> {
        self.view.group(group)?;
        let (revision, owner) = self.view.owners.get(group).cloned().ok_or_else(|| no_owner(group))?;
        if owner.node != self.node {
            return Err(not_owner(group, &owner.node));
        }
        if owner.moving.is_none() {
            return Ok(None);
        }
        owner_request(group, revision, &OwnerDoc { moving: None, ..owner }).map(Some)
    }

    /// Whether node `n` can take `group`, or the error that says why not.
    fn check_destination(&self, group: &str, n: &str) -> Result<(), EngineError> {
        if !self.view.nodes.contains_key(n) {
            return Err(EngineError::new(
                Status::ERROR_CLUSTER_NODE_NOT_FOUND,
                format!("no node named {n} is in the cluster"),
            ));
        }
        let state = self.view.node_states.get(n).map(|(_, s)| s.clone()).unwrap_or_default();
        if !state.up {
            return Err(EngineError::new(Status::ERROR_CLUSTER_NODE_DOWN, format!("node {n} is down")));
        }
        if state.paused {
            return Err(EngineError::new(
                Status::ERROR_CLUSTER_NODE_PAUSED,
                format!("node {n} is paused and takes no groups"),
            ));
        }
        if self.view.possible_owners(group).is_some_and(|p| !p.contains(n)) {
            return Err(EngineError::new(
                Status::ERROR_NODE_CANT_HOST_RESOURCE,
                format!("node {n} is not a possible owner of every resource of group {group}"),
            ));
        }
        Ok(())
    }
}

/// The guarded write that replaces `group`'s ownership record, read at `revision`, with `next`:
/// it fails whole if anyone changed the record meanwhile.
fn owner_request(group: &str, revision: u64, next: &OwnerDoc) -> Result<Request, EngineError> {
    let key = keys::owner(group);
    let value = serde_json::to_vec(next).map_err(|e| EngineError::new(Status::ERROR_INVALID_DATA, e.to_string()))?;
    Ok(Request {
        compare: vec![Compare { key: key.clone(), revision: Some(revision) }],
        ops: vec![Op::Put { key, value }],
    })
}

fn no_owner(group: &str) -> EngineError {
    EngineError::new(Status::ERROR_GROUP_NOT_AVAILABLE, format!("group {group} has no owner yet"))
}

/// The error for a request about a group another node owns.
pub fn not_owner(group: &str, owner: &str) -> EngineError {
    EngineError::new(
        Status::ERROR_HOST_NODE_NOT_GROUP_OWNER,
        format!("group {group} is owned by node {owner}; send the request there"),
    )
}
