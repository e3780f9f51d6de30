//! [`GroupCoordinator`]: the groups of one shard, the API entry points the handlers call, and
//! the housekeeping (timers, offset expiry, bounding the log).
//!
//! A group is served only by the shard leading its `__consumer_offsets` partition; any other
//! shard answers NOT_COORDINATOR, and the owner answers COORDINATOR_LOAD_IN_PROGRESS until it has
//! replayed the partition. The groups live in a `RefCell` that is never borrowed across an
//! `.await`: every operation runs to completion (parking a oneshot when it must wait).

use super::rebalance::{Answer, GroupConfig, JoinRequest, SyncRequest, SyncStep};
use super::state::{Group, GroupState, JoinOutcome, SyncOutcome};
use super::store::{append_records, group_record, offset_record, replay};
use super::{partition_for, OFFSETS_TOPIC};
use crate::config::BrokerConfig;
use crate::partition::Partition;
use crate::shard::Shard;
use crate::time::now_ms;
use bytes::Bytes;
use kafka_protocol::ResponseError as E;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use tracing::{error, info};

/// The consumer groups coordinated by one shard.
pub struct GroupCoordinator {
    /// Rebalance settings.
    pub config: GroupConfig,
    /// `offsets.topic.num.partitions`.
    partitions: i32,
    /// `offsets.retention.minutes` in ms.
    retention_ms: i64,
    /// `offsets.retention.check.interval.ms`.
    retention_check_ms: i64,
    /// `offset.metadata.max.bytes`.
    pub metadata_max_bytes: usize,
    groups: RefCell<HashMap<String, Group>>,
    loading: RefCell<HashSet<i32>>,
    /// Offsets partitions of this shard already replayed or being replayed.
    loaded: RefCell<HashSet<i32>>,
    last_expiry_check: Cell<i64>,
}

/// One group as DescribeGroups reports it.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    /// Kafka error code.
    pub error: i16,
    /// State name.
    pub state: &'static str,
    /// Protocol type.
    pub protocol_type: String,
    /// Selected protocol (only while Stable, as Kafka does).
    pub protocol: String,
    /// Members.
    pub members: Vec<MemberDescription>,
}

/// One member as DescribeGroups reports it.
#[derive(Debug, Clone)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// `client.id`.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Metadata for the selected protocol (Stable groups only).
    pub metadata: Bytes,
    /// Assignment (Stable groups only).
    pub assignment: Bytes,
}

/// One group as ListGroups reports it.
#[derive(Debug, Clone)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// Protocol type ("" for offset-only groups).
    pub protocol_type: String,
    /// State name.
    pub state: &'static str,
}

impl GroupCoordinator {
    /// The coordinator of a shard, configured from the broker config.
    pub fn new(config: &BrokerConfig) -> GroupCoordinator {
        GroupCoordinator {
            config: GroupConfig {
                initial_rebalance_delay_ms: i64::from(config.group_initial_rebalance_delay_ms),
                min_session_timeout_ms: config.group_min_session_timeout_ms,
                max_session_timeout_ms: config.group_max_session_timeout_ms,
                max_size: config.group_max_size,
            },
            partitions: config.offsets_topic_num_partitions,
            retention_ms: config.offsets_retention_ms,
            retention_check_ms: config.offsets_retention_check_interval_ms,
            metadata_max_bytes: usize::try_from(config.offset_metadata_max_bytes).unwrap_or(0),
            groups: RefCell::new(HashMap::new()),
            loading: RefCell::new(HashSet::new()),
            loaded: RefCell::new(HashSet::new()),
            last_expiry_check: Cell::new(now_ms()),
        }
    }

    /// The `__consumer_offsets` partition of `group`.
    pub fn partition_of(&self, group: &str) -> i32 {
        partition_for(group, self.partitions)
    }

    /// The offsets partition of `group` if this shard coordinates it and has loaded it, else
    /// the Kafka error (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS).
    pub fn owned_partition(&self, shard: &Shard, group: &str) -> Result<Rc<Partition>, i16> {
        let index = self.partition_of(group);
        let partition = shard
            .partition(OFFSETS_TOPIC, index)
            .ok_or(E::NotCoordinator.code())?;
        if self.loading.borrow().contains(&index) {
            return Err(E::CoordinatorLoadInProgress.code());
        }
        Ok(partition)
    }

    /// Runs `f` on `group` (created Empty if `create`), then persists the group if `f` changed
    /// it. `None` if the group does not exist and `create` is false.
    ///
    /// The group's timers run first, so a request never sees a member whose session has already
    /// run out or a join phase whose time is up, even between two housekeeping ticks (Kafka
    /// fires those timers at their deadline; the tick alone would be up to a tick late).
    fn with_group<T>(
        &self,
        partition: &Partition,
        group_id: &str,
        create: bool,
        f: impl FnOnce(&mut Group) -> T,
    ) -> Option<T> {
        let now = now_ms();
        let mut groups = self.groups.borrow_mut();
        if create && !groups.contains_key(group_id) {
            groups.insert(
                group_id.to_string(),
                Group::new(group_id, partition.index, now),
            );
        }
        let group = groups.get_mut(group_id)?;
        group.tick(&self.config, now);
        let out = f(group);
        if group.needs_store {
            group.needs_store = false;
            if let Err(code) = append_records(partition, &[group_record(group)], now) {
                error!(
                    group = group_id,
                    "cannot persist group metadata (error {code})"
                );
            }
        }
        if group.state == GroupState::Empty
            && group.protocol_type.is_none()
            && group.offsets.is_empty()
            && group.pending_members.is_empty()
        {
            groups.remove(group_id);
        }
        Some(out)
    }

    /// JoinGroup.
    pub async fn join(&self, shard: &Shard, group_id: &str, req: JoinRequest) -> JoinOutcome {
        let member = req.member_id.clone();
        if group_id.is_empty() {
            return JoinOutcome::error(E::InvalidGroupId.code(), &member);
        }
        let partition = match self.owned_partition(shard, group_id) {
            Ok(p) => p,
            Err(code) => return JoinOutcome::error(code, &member),
        };
        if req.session_timeout_ms < self.config.min_session_timeout_ms
            || req.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return JoinOutcome::error(E::InvalidSessionTimeout.code(), &member);
        }
        let exists = self.groups.borrow().contains_key(group_id);
        if !exists && !member.is_empty() {
            return JoinOutcome::error(E::UnknownMemberId.code(), &member);
        }
        let config = self.config;
        let answer = self.with_group(&partition, group_id, true, |g| {
            g.join(req, &config, now_ms())
        });
        match answer {
            Some(Answer::Now(outcome)) => outcome,
            Some(Answer::Later(rx)) => rx
                .await
                .unwrap_or_else(|_| JoinOutcome::error(E::NotCoordinator.code(), &member)),
            None => JoinOutcome::error(E::UnknownMemberId.code(), &member),
        }
    }

    /// SyncGroup.
    pub async fn sync(&self, shard: &Shard, group_id: &str, req: SyncRequest) -> SyncOutcome {
        let partition = match self.owned_partition(shard, group_id) {
            Ok(p) => p,
            Err(code) => return SyncOutcome::error(code),
        };
        let config = self.config;
        let step = self.with_group(&partition, group_id, false, |g| {
            let now = now_ms();
            match g.sync(req, now) {
                SyncStep::Answer(answer) => answer,
                SyncStep::Assigned(rx) => {
                    match append_records(&partition, &[group_record(g)], now) {
                        Ok(()) => g.release_sync(),
                        Err(code) => g.fail_sync(code, &config, now),
                    }
                    Answer::Later(rx)
                }
            }
        });
        match step {
            Some(Answer::Now(outcome)) => outcome,
            Some(Answer::Later(rx)) => rx
                .await
                .unwrap_or_else(|_| SyncOutcome::error(E::NotCoordinator.code())),
            None => SyncOutcome::error(E::UnknownMemberId.code()),
        }
    }

    /// Heartbeat; returns the Kafka error code.
    pub fn heartbeat(
        &self,
        shard: &Shard,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> i16 {
        let partition = match self.owned_partition(shard, group_id) {
            Ok(p) => p,
            Err(code) => return code,
        };
        self.with_group(&partition, group_id, false, |g| {
            g.heartbeat(member_id, instance_id, generation, now_ms())
        })
        .unwrap_or(E::UnknownMemberId.code())
    }

    /// LeaveGroup: the top-level error, and one error per (member id, instance id).
    pub fn leave(
        &self,
        shard: &Shard,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> (i16, Vec<i16>) {
        let partition = match self.owned_partition(shard, group_id) {
            Ok(p) => p,
            Err(code) => return (code, vec![code; members.len()]),
        };
        let config = self.config;
        self.with_group(&partition, group_id, false, |g| {
            let now = now_ms();
            let codes = members
                .iter()
                .map(|(id, instance)| g.leave(id, instance.as_deref(), &config, now))
                .collect();
            (0, codes)
        })
        .unwrap_or((
            E::UnknownMemberId.code(),
            vec![E::UnknownMemberId.code(); members.len()],
        ))
    }

    /// Runs `f` on an existing group of an owned partition, persisting the group if needed.
    pub fn update_group<T>(
        &self,
        shard: &Shard,
        group_id: &str,
        create: bool,
        f: impl FnOnce(&mut Group, &Partition) -> T,
    ) -> Result<Option<T>, i16> {
        let partition = self.owned_partition(shard, group_id)?;
        Ok(self.with_group(&partition, group_id, create, |g| f(g, &partition)))
    }

    /// Reads an existing group of an owned partition.
    pub fn read_group<T>(
        &self,
        shard: &Shard,
        group_id: &str,
        f: impl FnOnce(&Group) -> T,
    ) -> Result<Option<T>, i16> {
        let partition = self.owned_partition(shard, group_id)?;
        self.run_due_timers(&partition, group_id);
        Ok(self.groups.borrow().get(group_id).map(f))
    }

    /// Runs the due timers of every group of this shard.
    fn run_all_due_timers(&self, shard: &Shard) {
        let ids: Vec<String> = self.groups.borrow().keys().cloned().collect();
        for id in ids {
            if let Ok(partition) = self.owned_partition(shard, &id) {
                self.run_due_timers(&partition, &id);
            }
        }
    }

    /// Runs the timers of `group_id` that are due (see [`Self::with_group`]).
    fn run_due_timers(&self, partition: &Partition, group_id: &str) {
        self.with_group(partition, group_id, false, |_| ());
    }

    /// DescribeGroups for one group.
    pub fn describe(&self, shard: &Shard, group_id: &str) -> GroupDescription {
        let dead = |error| GroupDescription {
            error,
            state: GroupState::Dead.name(),
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        };
        match self.read_group(shard, group_id, |g| {
            let stable = g.state == GroupState::Stable;
            let protocol = g.protocol.clone().unwrap_or_default();
            GroupDescription {
                error: 0,
                state: g.state.name(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                protocol: if stable {
                    protocol.clone()
                } else {
                    String::new()
                },
                members: if g.state == GroupState::Dead {
                    Vec::new()
                } else {
                    g.members
                        .values()
                        .map(|m| MemberDescription {
                            member_id: m.id.clone(),
                            instance_id: m.instance_id.clone(),
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            metadata: if stable {
                                m.metadata_for(&protocol)
                            } else {
                                Bytes::new()
                            },
                            assignment: if stable {
                                m.assignment.clone()
                            } else {
                                Bytes::new()
                            },
                        })
                        .collect()
                },
            }
        }) {
            Ok(Some(d)) => d,
            Ok(None) => dead(0),
            Err(code) => dead(code),
        }
    }

    /// ListGroups: this shard's groups (all classic, their due timers run first), filtered by
    /// state names if any are given; the error is COORDINATOR_LOAD_IN_PROGRESS while a
    /// partition is still loading.
    pub fn list(&self, shard: &Shard, states: &[String]) -> (i16, Vec<GroupListing>) {
        self.run_all_due_timers(shard);
        let error = if self.loading.borrow().is_empty() {
            0
        } else {
            E::CoordinatorLoadInProgress.code()
        };
        let mut out: Vec<GroupListing> = self
            .groups
            .borrow()
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .filter(|g| {
                states.is_empty()
                    || states
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(g.state.name()))
            })
            .map(|g| GroupListing {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state.name(),
            })
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        (error, out)
    }

    /// DeleteGroups for one group: NON_EMPTY_GROUP while it has members; otherwise tombstones
    /// for its metadata and offsets, and it is gone.
    pub fn delete(&self, shard: &Shard, group_id: &str) -> i16 {
        let partition = match self.owned_partition(shard, group_id) {
            Ok(p) => p,
            Err(code) => return code,
        };
        self.run_due_timers(&partition, group_id);
        let mut groups = self.groups.borrow_mut();
        let Some(group) = groups.get(group_id) else {
            return E::GroupIdNotFound.code();
        };
        if group.state == GroupState::Dead {
            return E::GroupIdNotFound.code();
        }
        if !group.is_empty() {
            return E::NonEmptyGroup.code();
        }
        let mut records: Vec<_> = group
            .offsets
            .keys()
            .map(|(topic, p)| offset_record(group_id, topic, *p, None))
            .collect();
        records.push((group_record(group).0, None));
        if let Err(code) = append_records(&partition, &records, now_ms()) {
            return code;
        }
        if let Some(mut g) = groups.remove(group_id) {
            g.transition(GroupState::Dead, now_ms());
        }
        0
    }

    /// Marks the offsets partitions this shard leads and has not replayed yet (at start, or
    /// newly led here per the metadata log) as loading and replays them, one after the other, on the
    /// shard's executor; requests for their groups get COORDINATOR_LOAD_IN_PROGRESS meanwhile.
    pub fn load(shard: Rc<Shard>) {
        let partitions: Vec<Rc<Partition>> = shard
            .all_partitions()
            .into_iter()
            .filter(|p| {
                p.topic == OFFSETS_TOPIC
                    && shard.partition(OFFSETS_TOPIC, p.index).is_some()
                    && shard.groups.loaded.borrow_mut().insert(p.index)
            })
            .collect();
        if partitions.is_empty() {
            return;
        }
        shard
            .groups
            .loading
            .borrow_mut()
            .extend(partitions.iter().map(|p| p.index));
        glommio::spawn_local(async move {
            let started = std::time::Instant::now();
            let mut loaded = 0usize;
            for p in &partitions {
                glommio::yield_if_needed().await;
                if !shard.groups.loaded.borrow().contains(&p.index) {
                    continue; // unloaded meanwhile: leadership moved on
                }
                match replay(p, now_ms()) {
                    Ok(groups) => {
                        loaded += groups.len();
                        shard.groups.groups.borrow_mut().extend(groups);
                    }
                    Err(e) => error!(
                        shard = shard.id,
                        "cannot replay {OFFSETS_TOPIC}-{}: {e}; its groups start empty", p.index
                    ),
                }
                shard.groups.loading.borrow_mut().remove(&p.index);
            }
            if !partitions.is_empty() {
                info!(
                    shard = shard.id,
                    partitions = partitions.len(),
                    groups = loaded,
                    "loaded consumer groups in {:?}",
                    started.elapsed()
                );
            }
        })
        .detach();
    }

    /// Housekeeping, from the shard's tick: group timers and offset expiry (every
    /// `offsets.retention.check.interval.ms`). The partitions' logs are kept bounded by the
    /// shard's log cleaner (`__consumer_offsets` is compacted).
    pub fn tick(&self, shard: &Shard) {
        let now = now_ms();
        self.run_all_due_timers(shard);
        if now - self.last_expiry_check.get() >= self.retention_check_ms {
            self.last_expiry_check.set(now);
            self.expire_offsets(shard, now);
        }
    }

    /// Drops expired offsets (Kafka's rules, see [`Group::expired_offsets`]) and groups left
    /// with nothing.
    fn expire_offsets(&self, shard: &Shard, now: i64) {
        let retention = self.retention_ms;
        let mut groups = self.groups.borrow_mut();
        let mut dead = Vec::new();
        for g in groups.values_mut() {
            let Some(partition) = shard.partition(OFFSETS_TOPIC, g.partition) else {
                continue;
            };
            let expired = g.expired_offsets(retention, now);
            if expired.is_empty() {
                continue;
            }
            let mut records: Vec<_> = expired
                .iter()
                .map(|(t, p)| offset_record(&g.id, t, *p, None))
                .collect();
            let now_dead = g.state == GroupState::Empty && expired.len() == g.offsets.len();
            if now_dead {
                records.push((group_record(g).0, None));
            }
            if append_records(&partition, &records, now).is_err() {
                continue;
            }
            for key in &expired {
                g.offsets.remove(key);
            }
            info!(group = %g.id, "expired {} committed offsets", expired.len());
            if now_dead {
                g.transition(GroupState::Dead, now);
                dead.push(g.id.clone());
            }
        }
        for id in dead {
            groups.remove(&id);
        }
    }

    /// Unloads the groups of the offsets partitions this shard no longer leads (leadership
    /// moved to another replica): their parked JoinGroup/SyncGroup requests get
    /// NOT_COORDINATOR, and clients find the new coordinator, which replays the partition.
    pub fn unload_lost(shard: &Shard) {
        let lost: Vec<i32> = shard
            .groups
            .loaded
            .borrow()
            .iter()
            .copied()
            .filter(|&index| shard.partition(OFFSETS_TOPIC, index).is_none())
            .collect();
        if lost.is_empty() {
            return;
        }
        let mut groups = shard.groups.groups.borrow_mut();
        let before = groups.len();
        groups.retain(|_, g| {
            let keep = !lost.contains(&g.partition);
            if !keep {
                g.fail_waiters(E::NotCoordinator.code());
            }
            keep
        });
        let unloaded = before - groups.len();
        drop(groups);
        let mut loaded = shard.groups.loaded.borrow_mut();
        let mut loading = shard.groups.loading.borrow_mut();
        for index in &lost {
            loaded.remove(index);
            loading.remove(index);
        }
        info!(
            shard = shard.id,
            partitions = ?lost,
            groups = unloaded,
            "unloaded consumer groups: no longer the coordinator"
        );
    }

    /// Answers every parked JoinGroup/SyncGroup with NOT_COORDINATOR (the shard is stopping).
    pub fn fail_waiters(&self) {
        for g in self.groups.borrow_mut().values_mut() {
            g.fail_waiters(E::NotCoordinator.code());
        }
    }
}
