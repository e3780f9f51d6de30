//! Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete, and Kafka's expiry rules.
//!
//! A commit is validated against the group (generation, member, static instance; a commit with
//! generation -1 and no member id is a standalone/admin commit, accepted only while the group is
//! empty), written to the group's `__consumer_offsets` partition, and applied to the in-memory
//! table at once so later reads see it in log order. The handler then waits for durability as
//! an acks=all produce does.

use super::coordinator::GroupCoordinator;
use super::state::{CommittedOffset, Group, GroupState};
use super::store::{append_records, offset_record};
use crate::partition::Partition;
use crate::shard::Shard;
use crate::time::now_ms;
use kafka_protocol::ResponseError as E;
use std::rc::Rc;

/// One partition of an OffsetCommit.
#[derive(Debug, Clone)]
pub struct OffsetToCommit {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// Leader epoch of the last consumed record, or -1.
    pub leader_epoch: i32,
    /// The client's metadata string.
    pub metadata: Option<String>,
}

/// An OffsetCommit, decoded.
#[derive(Debug, Clone)]
pub struct CommitRequest {
    /// Generation (-1 for a standalone commit).
    pub generation: i32,
    /// Member id ("" for a standalone commit).
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// v2–v4 retention time, -1 for the broker's default.
    pub retention_ms: i64,
    /// The offsets.
    pub offsets: Vec<OffsetToCommit>,
}

/// One partition of an OffsetFetch answer.
#[derive(Debug, Clone)]
pub struct FetchedOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The committed offset, or -1.
    pub offset: i64,
    /// Its leader epoch, or -1.
    pub leader_epoch: i32,
    /// Its metadata ("" when none).
    pub metadata: String,
}

impl Group {
    /// Kafka's checks of an offset commit against the group (`validateOffsetCommit`).
    fn validate_commit(&self, req: &CommitRequest) -> Result<(), i16> {
        if self.state == GroupState::Dead {
            return Err(E::CoordinatorNotAvailable.code());
        }
        if req.generation < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        if req.generation >= 0 || !req.member_id.is_empty() || req.instance_id.is_some() {
            self.validate_member(&req.member_id, req.instance_id.as_deref())?;
            if req.generation != self.generation {
                return Err(E::IllegalGeneration.code());
            }
        } else if self.state != GroupState::Empty {
            return Err(E::UnknownMemberId.code());
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(E::RebalanceInProgress.code());
        }
        Ok(())
    }

    /// Offsets past their retention (Kafka's rules): all offsets of an Empty group once it has
    /// been empty for `retention_ms`; offsets of a group that only stores offsets, and offsets
    /// of topics a Stable consumer group no longer subscribes to, `retention_ms` after their
    /// commit; an explicit expire timestamp wins.
    pub fn expired_offsets(&self, retention_ms: i64, now_ms: i64) -> Vec<(String, i32)> {
        let subscribed = match (&self.protocol_type, self.state) {
            (Some(_), GroupState::Empty) | (None, _) => None,
            (Some(t), GroupState::Stable) if t == "consumer" => match self.subscribed_topics() {
                Some(topics) => Some(topics),
                None => return Vec::new(),
            },
            _ => return Vec::new(),
        };
        let from_state = self.protocol_type.is_some() && self.state == GroupState::Empty;
        self.offsets
            .iter()
            .filter(|((topic, _), _)| subscribed.as_ref().is_none_or(|s| !s.contains(topic)))
            .filter(|(_, c)| match c.expire_timestamp {
                Some(at) => now_ms >= at,
                None => {
                    let base = if from_state {
                        self.state_since_ms
                    } else {
                        c.commit_timestamp
                    };
                    now_ms - base >= retention_ms
                }
            })
            .map(|(key, _)| key.clone())
            .collect()
    }
}

impl GroupCoordinator {
    /// OffsetCommit: one error code per offset, and the partition written to (to wait on for
    /// durability).
    pub fn commit(
        &self,
        shard: &Shard,
        group_id: &str,
        req: CommitRequest,
    ) -> (Vec<i16>, Option<Rc<Partition>>) {
        let all = |code: i16| (vec![code; req.offsets.len()], None);
        if group_id.is_empty() {
            return all(E::InvalidGroupId.code());
        }
        let exists = match self.read_group(shard, group_id, |_| ()) {
            Ok(found) => found.is_some(),
            Err(code) => return all(code),
        };
        if !exists && req.generation >= 0 {
            return all(E::IllegalGeneration.code());
        }
        let image = shard.image();
        let max_metadata = self.metadata_max_bytes;
        let result = self.update_group(shard, group_id, true, |g, partition| {
            if let Err(code) = g.validate_commit(&req) {
                return (vec![code; req.offsets.len()], false);
            }
            let now = now_ms();
            let expire = (req.retention_ms >= 0).then(|| now.saturating_add(req.retention_ms));
            let mut codes = Vec::with_capacity(req.offsets.len());
            let mut accepted = Vec::new();
            for o in &req.offsets {
                let known = image.topic(&o.topic).is_some_and(|t| {
                    o.partition >= 0 && (o.partition as usize) < t.partitions.len()
                });
                let metadata = o.metadata.clone().unwrap_or_default();
                let code = if !known {
                    E::UnknownTopicOrPartition.code()
                } else if metadata.len() > max_metadata {
                    E::OffsetMetadataTooLarge.code()
                } else {
                    accepted.push((
                        (o.topic.clone(), o.partition),
                        CommittedOffset {
                            offset: o.offset,
                            leader_epoch: o.leader_epoch,
                            metadata,
                            commit_timestamp: now,
                            expire_timestamp: expire,
                        },
                    ));
                    0
                };
                codes.push(code);
            }
            let records: Vec<_> = accepted
                .iter()
                .map(|((t, p), c)| offset_record(group_id, t, *p, Some(c)))
                .collect();
            if !records.is_empty() {
                if let Err(code) = append_records(partition, &records, now) {
                    for c in codes.iter_mut().filter(|c| **c == 0) {
                        *c = code;
                    }
                    return (codes, false);
                }
            }
            if let Some(m) = g.members.get_mut(&req.member_id) {
                m.session_deadline_ms = now + i64::from(m.session_timeout_ms);
            }
            let wrote = !records.is_empty();
            g.offsets.extend(accepted);
            (codes, wrote)
        });
        match result {
            Ok(Some((codes, wrote))) => {
                let written = wrote.then(|| self.owned_partition(shard, group_id).ok());
                (codes, written.flatten())
            }
            Ok(None) => all(E::UnknownMemberId.code()),
            Err(code) => all(code),
        }
    }

    /// OffsetFetch for one group: the committed offsets of `topics` (every committed one when
    /// `None`), -1 for partitions without a commit.
    pub fn fetch(
        &self,
        shard: &Shard,
        group_id: &str,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Vec<FetchedOffset>, i16> {
        let found = self.read_group(shard, group_id, |g| {
            let lookup = |topic: &str, partition: i32| {
                let c = g.offsets.get(&(topic.to_string(), partition));
                FetchedOffset {
                    topic: topic.to_string(),
                    partition,
                    offset: c.map_or(-1, |c| c.offset),
                    leader_epoch: c.map_or(-1, |c| c.leader_epoch),
                    metadata: c.map(|c| c.metadata.clone()).unwrap_or_default(),
                }
            };
            match topics {
                Some(topics) => topics
                    .iter()
                    .flat_map(|(t, ps)| ps.iter().map(move |p| (t, *p)))
                    .map(|(t, p)| lookup(t, p))
                    .collect(),
                None => g.offsets.keys().map(|(t, p)| lookup(t, *p)).collect(),
            }
        })?;
        Ok(found.unwrap_or_else(|| {
            topics
                .unwrap_or_default()
                .iter()
                .flat_map(|(t, ps)| {
                    ps.iter().map(move |p| FetchedOffset {
                        topic: t.clone(),
                        partition: *p,
                        offset: -1,
                        leader_epoch: -1,
                        metadata: String::new(),
                    })
                })
                .collect()
        }))
    }

    /// OffsetDelete: the group-level error, or one error per (topic, partition).
    pub fn delete_offsets(
        &self,
        shard: &Shard,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<i16>, i16> {
        let image = shard.image();
        let outcome = self.update_group(shard, group_id, false, |g, partition| {
            let subscribed = match g.state {
                GroupState::Dead => return Err(E::GroupIdNotFound.code()),
                GroupState::Empty => None,
                _ if g.protocol_type.as_deref() == Some("consumer") => Some(g.subscribed_topics()),
                _ => return Err(E::NonEmptyGroup.code()),
            };
            let mut codes = Vec::with_capacity(partitions.len());
            let mut doomed = Vec::new();
            for (topic, p) in partitions {
                let code = if image.topic(topic).is_none() {
                    E::UnknownTopicOrPartition.code()
                } else if subscribed
                    .as_ref()
                    .is_some_and(|s| s.as_ref().is_none_or(|s| s.contains(topic)))
                {
                    E::GroupSubscribedToTopic.code()
                } else {
                    doomed.push((topic.clone(), *p));
                    0
                };
                codes.push(code);
            }
            let records: Vec<_> = doomed
                .iter()
                .filter(|key| g.offsets.contains_key(key))
                .map(|(t, p)| offset_record(&g.id, t, *p, None))
                .collect();
            if !records.is_empty() {
                append_records(partition, &records, now_ms())?;
            }
            for key in &doomed {
                g.offsets.remove(key);
            }
            Ok(codes)
        });
        match outcome {
            Ok(Some(result)) => result,
            Ok(None) => Err(E::GroupIdNotFound.code()),
            Err(code) => Err(code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(offset: i64, at: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: at,
            expire_timestamp: None,
        }
    }

    #[test]
    fn standalone_commits_expire_by_commit_time() {
        let mut g = Group::new("g", 0, 0);
        g.offsets.insert(("t".into(), 0), committed(5, 1000));
        g.offsets.insert(("t".into(), 1), committed(6, 5000));
        assert!(g.expired_offsets(10_000, 10_999).is_empty());
        assert_eq!(
            g.expired_offsets(10_000, 11_000),
            vec![("t".to_string(), 0)]
        );
        let mut explicit = committed(7, 0);
        explicit.expire_timestamp = Some(2000);
        g.offsets.insert(("u".into(), 0), explicit);
        assert!(g
            .expired_offsets(10_000, 2000)
            .contains(&("u".to_string(), 0)));
    }

    #[test]
    fn an_empty_consumer_group_expires_from_when_it_became_empty() {
        let mut g = Group::new("g", 0, 0);
        g.protocol_type = Some("consumer".into());
        g.offsets.insert(("t".into(), 0), committed(5, 1000));
        g.transition(GroupState::Empty, 50_000);
        assert!(
            g.expired_offsets(10_000, 59_999).is_empty(),
            "old commit, recent emptiness"
        );
        assert_eq!(g.expired_offsets(10_000, 60_000).len(), 1);
        g.state = GroupState::PreparingRebalance;
        assert!(
            g.expired_offsets(10_000, 99_000).is_empty(),
            "active groups keep offsets"
        );
    }

    #[test]
    fn standalone_commits_need_an_empty_group() {
        let mut g = Group::new("g", 0, 0);
        let standalone = CommitRequest {
            generation: -1,
            member_id: String::new(),
            instance_id: None,
            retention_ms: -1,
            offsets: Vec::new(),
        };
        assert_eq!(g.validate_commit(&standalone), Ok(()));
        g.state = GroupState::Stable;
        assert_eq!(
            g.validate_commit(&standalone),
            Err(E::UnknownMemberId.code())
        );
        let stale = CommitRequest {
            generation: 3,
            member_id: "nobody".into(),
            ..standalone
        };
        assert_eq!(g.validate_commit(&stale), Err(E::UnknownMemberId.code()));
    }
}
