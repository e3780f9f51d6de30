//! The classic rebalance protocol on one group, as Kafka's `GroupCoordinator` runs it:
//! JoinGroup (with KIP-394's member-id round trip and KIP-345's static members), SyncGroup,
//! Heartbeat, LeaveGroup, and the timers (initial delay, rebalance timeout, session timeouts)
//! that [`Group::tick`] drives from the shard's housekeeping loop.
//!
//! Everything here is synchronous: a request either gets its answer now or parks a oneshot
//! sender in the member, which a later transition answers. Persisting the group is the
//! coordinator's job; transitions that change what must be on disk set [`Group::needs_store`].

use super::state::{
    Group, GroupState, InitialDelay, JoinOutcome, JoinedMember, Member, SyncOutcome,
};
use bytes::Bytes;
use futures::channel::oneshot;
use kafka_protocol::ResponseError as E;

/// The broker settings of the group protocol.
#[derive(Debug, Clone, Copy)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// `group.max.size`.
    pub max_size: i32,
}

/// A JoinGroup request, decoded.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// Member id ("" for a new member).
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Protocol type ("consumer").
    pub protocol_type: String,
    /// Protocols in order of preference, with metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new member must first learn its id (MEMBER_ID_REQUIRED).
    pub require_known_member_id: bool,
}

/// A SyncGroup request, decoded.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Generation the member believes in.
    pub generation: i32,
    /// v5+: the protocol type the member expects.
    pub protocol_type: Option<String>,
    /// v5+: the protocol the member expects.
    pub protocol: Option<String>,
    /// The leader's assignment, by member id.
    pub assignments: Vec<(String, Bytes)>,
}

/// An answer available now, or one to wait for.
pub enum Answer<T> {
    /// The answer.
    Now(T),
    /// The answer arrives when the group moves on.
    Later(oneshot::Receiver<T>),
}

/// What SyncGroup did.
pub enum SyncStep {
    /// Answered (or parked) without anything to persist.
    Answer(Answer<SyncOutcome>),
    /// The leader's assignment was applied and the group is Stable; the coordinator must persist
    /// the group, then call [`Group::release_sync`] (or [`Group::fail_sync`] if that failed).
    Assigned(oneshot::Receiver<SyncOutcome>),
}

impl Group {
    /// Handles JoinGroup for a group this coordinator owns (see the module docs).
    pub fn join(
        &mut self,
        req: JoinRequest,
        cfg: &GroupConfig,
        now_ms: i64,
    ) -> Answer<JoinOutcome> {
        let err = |code: E, id: &str| Answer::Now(JoinOutcome::error(code.code(), id));
        if self.state == GroupState::Dead {
            return err(E::CoordinatorNotAvailable, &req.member_id);
        }
        if !self.supports_protocols(&req.protocol_type, &req.protocols) {
            return err(E::InconsistentGroupProtocol, &req.member_id);
        }
        if req.member_id.is_empty() {
            if let Some(instance) = req.instance_id.clone() {
                if let Some(old) = self.static_member(&instance).map(str::to_string) {
                    return self.rejoin_static_member(&old, req, cfg, now_ms);
                }
            }
            if self.members.len() + self.pending_members.len() >= cfg.max_size.max(0) as usize {
                return err(E::GroupMaxSizeReached, "");
            }
            let prefix = req.instance_id.as_deref().unwrap_or(&req.client_id);
            let id = format!("{prefix}-{}", uuid::Uuid::new_v4());
            if req.instance_id.is_none() && req.require_known_member_id {
                self.pending_members
                    .insert(id.clone(), now_ms + i64::from(req.session_timeout_ms));
                return err(E::MemberIdRequired, &id);
            }
            return self.add_member_and_rebalance(id, req, cfg, now_ms);
        }
        if self.pending_members.remove(&req.member_id).is_some() {
            let id = req.member_id.clone();
            return self.add_member_and_rebalance(id, req, cfg, now_ms);
        }
        if self.is_fenced(req.instance_id.as_deref(), &req.member_id) {
            return err(E::FencedInstanceId, &req.member_id);
        }
        if !self.members.contains_key(&req.member_id) {
            return err(E::UnknownMemberId, &req.member_id);
        }
        let id = req.member_id.clone();
        let unchanged = self.members[&id].protocols == req.protocols;
        match self.state {
            GroupState::PreparingRebalance => {
                let rx = self.update_member(&id, req, now_ms);
                self.maybe_complete_join(now_ms);
                Answer::Later(rx)
            }
            GroupState::CompletingRebalance if unchanged => {
                Answer::Now(self.current_generation(&id, true))
            }
            GroupState::Stable if unchanged && self.leader.as_deref() != Some(&id) => {
                Answer::Now(self.current_generation(&id, false))
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                let rx = self.update_member(&id, req, now_ms);
                self.prepare_rebalance(cfg, now_ms);
                Answer::Later(rx)
            }
            GroupState::Empty | GroupState::Dead => err(E::UnknownMemberId, &id),
        }
    }

    /// The JoinGroup answer describing the current generation, without a rebalance.
    fn current_generation(&self, member_id: &str, with_members: bool) -> JoinOutcome {
        let is_leader = self.leader.as_deref() == Some(member_id);
        JoinOutcome {
            error: 0,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if with_members && is_leader {
                self.joined_members()
            } else {
                Vec::new()
            },
        }
    }

    fn joined_members(&self) -> Vec<JoinedMember> {
        let protocol = self.protocol.clone().unwrap_or_default();
        self.members
            .values()
            .map(|m| JoinedMember {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                metadata: m.metadata_for(&protocol),
            })
            .collect()
    }

    fn add_member_and_rebalance(
        &mut self,
        id: String,
        req: JoinRequest,
        cfg: &GroupConfig,
        now_ms: i64,
    ) -> Answer<JoinOutcome> {
        let (tx, rx) = oneshot::channel();
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if let Some(instance) = &req.instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        self.members.insert(
            id.clone(),
            Member {
                id: id.clone(),
                instance_id: req.instance_id,
                client_id: req.client_id,
                client_host: req.client_host,
                rebalance_timeout_ms: req.rebalance_timeout_ms,
                session_timeout_ms: req.session_timeout_ms,
                protocols: req.protocols,
                assignment: Bytes::new(),
                join_waiter: Some(tx),
                sync_waiter: None,
                session_deadline_ms: now_ms + i64::from(req.session_timeout_ms),
            },
        );
        if self.leader.is_none() {
            self.leader = Some(id);
        }
        if let Some(delay) = &mut self.initial_delay {
            delay.joined_since = true;
        }
        match self.state {
            GroupState::PreparingRebalance => self.maybe_complete_join(now_ms),
            _ => self.prepare_rebalance(cfg, now_ms),
        }
        Answer::Later(rx)
    }

    /// Updates a known member's protocols and timeouts and parks its JoinGroup.
    fn update_member(
        &mut self,
        id: &str,
        req: JoinRequest,
        now_ms: i64,
    ) -> oneshot::Receiver<JoinOutcome> {
        let (tx, rx) = oneshot::channel();
        if let Some(m) = self.members.get_mut(id) {
            m.protocols = req.protocols;
            m.rebalance_timeout_ms = req.rebalance_timeout_ms;
            m.session_timeout_ms = req.session_timeout_ms;
            m.session_deadline_ms = now_ms + i64::from(req.session_timeout_ms);
            m.answer_join(JoinOutcome::error(E::UnknownMemberId.code(), id));
            m.join_waiter = Some(tx);
        }
        rx
    }

    /// A static member came back with an empty member id: it replaces its old member id (whose
    /// parked requests are fenced) and, in a Stable group whose protocol does not change, gets
    /// the current generation back without a rebalance.
    fn rejoin_static_member(
        &mut self,
        old_id: &str,
        req: JoinRequest,
        cfg: &GroupConfig,
        now_ms: i64,
    ) -> Answer<JoinOutcome> {
        let Some(mut member) = self.members.remove(old_id) else {
            return Answer::Now(JoinOutcome::error(E::UnknownMemberId.code(), ""));
        };
        let instance = req.instance_id.clone().unwrap_or_default();
        member.answer_join(JoinOutcome::error(E::FencedInstanceId.code(), old_id));
        member.answer_sync(SyncOutcome::error(E::FencedInstanceId.code()));
        let new_id = format!("{instance}-{}", uuid::Uuid::new_v4());
        let leader_before = self.leader.clone().unwrap_or_default();
        member.id = new_id.clone();
        member.client_id = req.client_id.clone();
        member.client_host = req.client_host.clone();
        self.members.insert(new_id.clone(), member);
        self.static_members.insert(instance, new_id.clone());
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.clone());
        }
        match self.state {
            GroupState::Stable => {
                let rx = self.update_member(&new_id, req, now_ms);
                if self.select_protocol() == self.protocol {
                    if let Some(m) = self.members.get_mut(&new_id) {
                        m.join_waiter = None;
                    }
                    drop(rx);
                    self.needs_store = true;
                    let mut outcome = self.current_generation(&new_id, false);
                    outcome.leader = leader_before;
                    return Answer::Now(outcome);
                }
                self.prepare_rebalance(cfg, now_ms);
                Answer::Later(rx)
            }
            GroupState::CompletingRebalance => {
                let rx = self.update_member(&new_id, req, now_ms);
                self.prepare_rebalance(cfg, now_ms);
                Answer::Later(rx)
            }
            _ => {
                let rx = self.update_member(&new_id, req, now_ms);
                self.maybe_complete_join(now_ms);
                Answer::Later(rx)
            }
        }
    }

    /// Starts a join phase: parked SyncGroups fail with REBALANCE_IN_PROGRESS, and the group
    /// waits for its members (after the initial delay if it was empty).
    pub fn prepare_rebalance(&mut self, cfg: &GroupConfig, now_ms: i64) {
        if self.state == GroupState::CompletingRebalance {
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                m.answer_sync(SyncOutcome::error(E::RebalanceInProgress.code()));
            }
        }
        let rebalance_timeout = self.max_rebalance_timeout_ms();
        if self.state == GroupState::Empty {
            let delay = cfg.initial_rebalance_delay_ms.min(rebalance_timeout);
            self.initial_delay = Some(InitialDelay {
                delay_ms: cfg.initial_rebalance_delay_ms,
                remaining_ms: (rebalance_timeout - delay).max(0),
                joined_since: false,
            });
            self.join_deadline_ms = Some(now_ms + delay);
        } else {
            self.initial_delay = None;
            self.join_deadline_ms = Some(now_ms + rebalance_timeout);
        }
        self.transition(GroupState::PreparingRebalance, now_ms);
        self.maybe_complete_join(now_ms);
    }

    /// Completes the join phase early once every member has rejoined (not during an initial
    /// delay, which always runs its course).
    fn maybe_complete_join(&mut self, now_ms: i64) {
        if self.state == GroupState::PreparingRebalance
            && self.initial_delay.is_none()
            && self.all_members_joined()
        {
            self.complete_join(now_ms);
        }
    }

    /// Ends the join phase: members that did not rejoin are removed, the generation advances,
    /// a protocol is selected and every parked JoinGroup is answered (the leader gets the
    /// member list).
    fn complete_join(&mut self, now_ms: i64) {
        self.join_deadline_ms = None;
        self.initial_delay = None;
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.is_awaiting_join())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol = None;
            self.leader = None;
            self.transition(GroupState::Empty, now_ms);
            self.needs_store = true;
            return;
        }
        self.protocol = self.select_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.transition(GroupState::CompletingRebalance, now_ms);
        let everyone = self.joined_members();
        let leader = self.leader.clone().unwrap_or_default();
        let (generation, protocol_type, protocol) = (
            self.generation,
            self.protocol_type.clone(),
            self.protocol.clone(),
        );
        for m in self.members.values_mut() {
            m.session_deadline_ms = now_ms + i64::from(m.session_timeout_ms);
            let members = if m.id == leader {
                everyone.clone()
            } else {
                Vec::new()
            };
            m.answer_join(JoinOutcome {
                error: 0,
                generation,
                protocol_type: protocol_type.clone(),
                protocol: protocol.clone(),
                leader: leader.clone(),
                member_id: m.id.clone(),
                members,
            });
        }
    }

    /// Removes a member; a parked JoinGroup of it is answered UNKNOWN_MEMBER_ID.
    fn remove_member(&mut self, id: &str) {
        let Some(mut m) = self.members.remove(id) else {
            return;
        };
        m.answer_join(JoinOutcome::error(E::UnknownMemberId.code(), id));
        m.answer_sync(SyncOutcome::error(E::UnknownMemberId.code()));
        if let Some(instance) = &m.instance_id {
            if self.static_member(instance) == Some(id) {
                self.static_members.remove(instance);
            }
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = self.members.keys().next().cloned();
        }
    }

    /// After members left or expired: rebalance a settled group, or let a running join phase
    /// complete without them.
    fn after_members_left(&mut self, cfg: &GroupConfig, now_ms: i64) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(cfg, now_ms)
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now_ms),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Handles SyncGroup (see [`SyncStep`]).
    pub fn sync(&mut self, req: SyncRequest, now_ms: i64) -> SyncStep {
        let now = |code: E| SyncStep::Answer(Answer::Now(SyncOutcome::error(code.code())));
        if self.state == GroupState::Dead {
            return now(E::CoordinatorNotAvailable);
        }
        if self.is_fenced(req.instance_id.as_deref(), &req.member_id) {
            return now(E::FencedInstanceId);
        }
        if !self.members.contains_key(&req.member_id) {
            return now(E::UnknownMemberId);
        }
        if req.generation != self.generation {
            return now(E::IllegalGeneration);
        }
        let mismatch =
            |asked: &Option<String>, ours: &Option<String>| asked.is_some() && asked != ours;
        if mismatch(&req.protocol_type, &self.protocol_type)
            || mismatch(&req.protocol, &self.protocol)
        {
            return now(E::InconsistentGroupProtocol);
        }
        let (protocol_type, protocol) = (self.protocol_type.clone(), self.protocol.clone());
        let leader = self.leader.clone();
        let Some(member) = self.members.get_mut(&req.member_id) else {
            return now(E::UnknownMemberId);
        };
        member.session_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
        match self.state {
            GroupState::Empty => now(E::UnknownMemberId),
            GroupState::PreparingRebalance => now(E::RebalanceInProgress),
            GroupState::Stable => SyncStep::Answer(Answer::Now(SyncOutcome {
                error: 0,
                protocol_type,
                protocol,
                assignment: member.assignment.clone(),
            })),
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                member.answer_sync(SyncOutcome::error(E::RebalanceInProgress.code()));
                member.sync_waiter = Some(tx);
                if leader.as_deref() != Some(req.member_id.as_str()) {
                    return SyncStep::Answer(Answer::Later(rx));
                }
                for m in self.members.values_mut() {
                    m.assignment = req
                        .assignments
                        .iter()
                        .find(|(id, _)| *id == m.id)
                        .map(|(_, a)| a.clone())
                        .unwrap_or_default();
                }
                self.transition(GroupState::Stable, now_ms);
                SyncStep::Assigned(rx)
            }
            GroupState::Dead => now(E::CoordinatorNotAvailable),
        }
    }

    /// Answers every parked SyncGroup with its member's assignment (after the group was
    /// persisted).
    pub fn release_sync(&mut self) {
        let (protocol_type, protocol) = (self.protocol_type.clone(), self.protocol.clone());
        for m in self.members.values_mut() {
            let assignment = m.assignment.clone();
            m.answer_sync(SyncOutcome {
                error: 0,
                protocol_type: protocol_type.clone(),
                protocol: protocol.clone(),
                assignment,
            });
        }
    }

    /// Persisting the leader's assignment failed: every parked SyncGroup gets `error` and the
    /// group rebalances.
    pub fn fail_sync(&mut self, error: i16, cfg: &GroupConfig, now_ms: i64) {
        for m in self.members.values_mut() {
            m.assignment = Bytes::new();
            m.answer_sync(SyncOutcome::error(error));
        }
        self.prepare_rebalance(cfg, now_ms);
    }

    /// Handles Heartbeat; returns the Kafka error code.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now_ms: i64,
    ) -> i16 {
        if self.state == GroupState::Dead {
            return E::CoordinatorNotAvailable.code();
        }
        if self.is_fenced(instance_id, member_id) {
            return E::FencedInstanceId.code();
        }
        let state = self.state;
        let group_generation = self.generation;
        let Some(member) = self.members.get_mut(member_id) else {
            return E::UnknownMemberId.code();
        };
        if generation != group_generation {
            return E::IllegalGeneration.code();
        }
        member.session_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
        match state {
            GroupState::PreparingRebalance => E::RebalanceInProgress.code(),
            GroupState::Empty => E::UnknownMemberId.code(),
            _ => 0,
        }
    }

    /// Handles one member of a LeaveGroup; returns the Kafka error code. A static member
    /// leaves by instance id, and a member id that does not match it is fenced.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        cfg: &GroupConfig,
        now_ms: i64,
    ) -> i16 {
        if self.state == GroupState::Dead {
            return E::CoordinatorNotAvailable.code();
        }
        let id = match instance_id {
            Some(instance) => match self.static_member(instance) {
                None => return E::UnknownMemberId.code(),
                Some(known) if !member_id.is_empty() && known != member_id => {
                    return E::FencedInstanceId.code()
                }
                Some(known) => known.to_string(),
            },
            None => member_id.to_string(),
        };
        if self.pending_members.remove(&id).is_some() {
            self.maybe_complete_join(now_ms);
            return 0;
        }
        if !self.members.contains_key(&id) {
            return E::UnknownMemberId.code();
        }
        self.remove_member(&id);
        self.after_members_left(cfg, now_ms);
        0
    }

    /// Runs the group's timers: ends a join phase whose time is up (or extends an initial delay
    /// while members keep arriving) and expires members and pending member ids whose session
    /// ran out.
    pub fn tick(&mut self, cfg: &GroupConfig, now_ms: i64) {
        let expired_pending: Vec<String> = self
            .pending_members
            .iter()
            .filter(|(_, deadline)| **deadline <= now_ms)
            .map(|(id, _)| id.clone())
            .collect();
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.session_deadline_ms <= now_ms && !m.is_awaiting_join() && m.sync_waiter.is_none()
            })
            .map(|m| m.id.clone())
            .collect();
        for id in &expired_pending {
            self.pending_members.remove(id);
        }
        for id in &expired {
            tracing::info!(group = %self.id, member = %id, "member removed: its session timed out");
            self.remove_member(id);
        }
        if !expired.is_empty() {
            self.after_members_left(cfg, now_ms);
        } else if !expired_pending.is_empty() {
            self.maybe_complete_join(now_ms);
        }
        if self.state != GroupState::PreparingRebalance
            || self.join_deadline_ms.is_none_or(|d| d > now_ms)
        {
            return;
        }
        match self.initial_delay {
            Some(d) if d.joined_since && d.remaining_ms > 0 => {
                let delay = d.delay_ms.min(d.remaining_ms);
                self.initial_delay = Some(InitialDelay {
                    delay_ms: d.delay_ms,
                    remaining_ms: d.remaining_ms - delay,
                    joined_since: false,
                });
                self.join_deadline_ms = Some(now_ms + delay);
            }
            _ => self.complete_join(now_ms),
        }
    }

    /// Answers every parked request with `error` (the coordinator is stopping).
    pub fn fail_waiters(&mut self, error: i16) {
        for m in self.members.values_mut() {
            let id = m.id.clone();
            m.answer_join(JoinOutcome::error(error, &id));
            m.answer_sync(SyncOutcome::error(error));
        }
    }
}

#[cfg(test)]
mod tests;
