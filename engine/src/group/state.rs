//! One classic consumer group as its coordinator holds it: members, generation, the selected
//! protocol, committed offsets, and the responses parked until a rebalance completes.
//!
//! The rebalance transitions live in [`super::rebalance`]; this module holds the data and the
//! small queries both the rebalance and the offset code need.

use bytes::Bytes;
use futures::channel::oneshot;
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The states of a classic group (Kafka's names, as ListGroups and DescribeGroups report them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members; the group may still hold committed offsets.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment in SyncGroup.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Deleted or expired; about to be removed.
    Dead,
}

impl GroupState {
    /// Kafka's name of the state.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// What a JoinGroup request is answered with, immediately or when the rebalance completes.
#[derive(Debug, Clone, Default)]
pub struct JoinOutcome {
    /// Kafka error code (0 = none).
    pub error: i16,
    /// The generation the member joined.
    pub generation: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The selected protocol (assignor).
    pub protocol: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// The member's id (assigned by the coordinator for new members).
    pub member_id: String,
    /// For the leader: every member with its metadata for the selected protocol.
    pub members: Vec<JoinedMember>,
}

impl JoinOutcome {
    /// An error answer for `member_id`.
    pub fn error(error: i16, member_id: &str) -> JoinOutcome {
        JoinOutcome {
            error,
            generation: -1,
            member_id: member_id.to_string(),
            ..JoinOutcome::default()
        }
    }
}

/// One member as the leader sees it in its JoinGroup response.
#[derive(Debug, Clone)]
pub struct JoinedMember {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// The member's metadata (subscription) for the selected protocol.
    pub metadata: Bytes,
}

/// What a SyncGroup request is answered with.
#[derive(Debug, Clone, Default)]
pub struct SyncOutcome {
    /// Kafka error code (0 = none).
    pub error: i16,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The selected protocol.
    pub protocol: Option<String>,
    /// The member's assignment.
    pub assignment: Bytes,
}

impl SyncOutcome {
    /// An error answer.
    pub fn error(error: i16) -> SyncOutcome {
        SyncOutcome {
            error,
            ..SyncOutcome::default()
        }
    }
}

/// One member of a group.
#[derive(Debug)]
pub struct Member {
    /// Member id.
    pub id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// How long a rebalance may wait for this member to rejoin.
    pub rebalance_timeout_ms: i32,
    /// How long the member may go without a heartbeat.
    pub session_timeout_ms: i32,
    /// Protocols the member supports, in its order of preference, with their metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// The member's current assignment (empty until SyncGroup).
    pub assignment: Bytes,
    /// The parked JoinGroup response, while the member waits for the rebalance.
    pub join_waiter: Option<oneshot::Sender<JoinOutcome>>,
    /// The parked SyncGroup response, while the member waits for the leader's assignment.
    pub sync_waiter: Option<oneshot::Sender<SyncOutcome>>,
    /// When the member's session expires unless it heartbeats.
    pub session_deadline_ms: i64,
}

impl Member {
    /// The member's metadata for `protocol`.
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// Whether the member has a JoinGroup parked.
    pub fn is_awaiting_join(&self) -> bool {
        self.join_waiter.is_some()
    }

    /// Answers the parked JoinGroup, if any.
    pub fn answer_join(&mut self, outcome: JoinOutcome) {
        if let Some(waiter) = self.join_waiter.take() {
            let _ = waiter.send(outcome);
        }
    }

    /// Answers the parked SyncGroup, if any.
    pub fn answer_sync(&mut self, outcome: SyncOutcome) {
        if let Some(waiter) = self.sync_waiter.take() {
            let _ = waiter.send(outcome);
        }
    }
}

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The offset.
    pub offset: i64,
    /// The leader epoch of the record at `offset - 1`, or -1.
    pub leader_epoch: i32,
    /// The client's metadata string.
    pub metadata: String,
    /// When it was committed.
    pub commit_timestamp: i64,
    /// An explicit expiry (OffsetCommit v2–v4 retention time), if one was asked for.
    pub expire_timestamp: Option<i64>,
}

/// An initial rebalance of a formerly empty group: it waits `group.initial.rebalance.delay.ms`,
/// and again while new members keep arriving, up to the rebalance timeout.
#[derive(Debug, Clone, Copy)]
pub struct InitialDelay {
    /// `group.initial.rebalance.delay.ms`.
    pub delay_ms: i64,
    /// How much of the rebalance timeout is left for further delays.
    pub remaining_ms: i64,
    /// Whether a member joined since the current delay started.
    pub joined_since: bool,
}

/// One classic group.
#[derive(Debug)]
pub struct Group {
    /// Group id.
    pub id: String,
    /// The `__consumer_offsets` partition that holds the group.
    pub partition: i32,
    /// Current state.
    pub state: GroupState,
    /// When the state last changed (offset retention counts from the move to Empty).
    pub state_since_ms: i64,
    /// Generation, bumped by every completed join phase.
    pub generation: i32,
    /// Protocol type of the members ("consumer" for Kafka consumers); None for a group that only
    /// stores offsets.
    pub protocol_type: Option<String>,
    /// The protocol selected for the current generation.
    pub protocol: Option<String>,
    /// The leader's member id.
    pub leader: Option<String>,
    /// Members by id.
    pub members: BTreeMap<String, Member>,
    /// Member id of each static member's instance id.
    pub static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the deadline to join with them.
    pub pending_members: HashMap<String, i64>,
    /// When the running join phase completes at the latest.
    pub join_deadline_ms: Option<i64>,
    /// Set while the join phase is an initial (delayed) one.
    pub initial_delay: Option<InitialDelay>,
    /// Set by transitions that changed what must be persisted (members, generation,
    /// assignments); the coordinator writes the group record and clears it.
    pub needs_store: bool,
    /// Committed offsets by (topic, partition).
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
}

impl Group {
    /// A new, empty group.
    pub fn new(id: &str, partition: i32, now_ms: i64) -> Group {
        Group {
            id: id.to_string(),
            partition,
            state: GroupState::Empty,
            state_since_ms: now_ms,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            join_deadline_ms: None,
            initial_delay: None,
            needs_store: false,
            offsets: BTreeMap::new(),
        }
    }

    /// Moves to `state`, remembering when.
    pub fn transition(&mut self, state: GroupState, now_ms: i64) {
        debug_assert!(
            state != GroupState::Stable || !self.members.is_empty(),
            "a stable group has members"
        );
        self.state = state;
        self.state_since_ms = now_ms;
    }

    /// Whether the state is one of `states`.
    pub fn is_in(&self, states: &[GroupState]) -> bool {
        states.contains(&self.state)
    }

    /// The member id a static instance id maps to.
    pub fn static_member(&self, instance_id: &str) -> Option<&str> {
        self.static_members.get(instance_id).map(String::as_str)
    }

    /// Kafka's `isStaticMemberFenced`: the instance id is known under another member id.
    pub fn is_fenced(&self, instance_id: Option<&str>, member_id: &str) -> bool {
        match instance_id.and_then(|i| self.static_member(i)) {
            Some(known) => known != member_id,
            None => false,
        }
    }

    /// Kafka's `validateMember`: the member exists and, for a static member, its instance id
    /// maps to it. Returns the Kafka error code on failure.
    pub fn validate_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), i16> {
        use kafka_protocol::ResponseError as E;
        match instance_id {
            Some(instance) => match self.static_member(instance) {
                None => Err(E::UnknownMemberId.code()),
                Some(known) if known != member_id => Err(E::FencedInstanceId.code()),
                Some(_) => Ok(()),
            },
            None if !self.members.contains_key(member_id) => Err(E::UnknownMemberId.code()),
            None => Ok(()),
        }
    }

    /// Protocols every member supports (all of a candidate's, if the group has no members).
    fn common_protocols<'a>(&'a self, candidate: &'a [(String, Bytes)]) -> Vec<&'a str> {
        candidate
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == name))
            })
            .collect()
    }

    /// Whether a member with `protocol_type` and `protocols` may join (Kafka's
    /// `supportsProtocols`).
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && !self.common_protocols(protocols).is_empty()
    }

    /// Kafka's protocol selection: among the protocols every member supports, the one most
    /// members prefer (each votes for its first supported candidate).
    pub fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates = self.common_protocols(&first.protocols);
        let mut votes: Vec<(&str, usize)> = candidates.iter().map(|c| (*c, 0)).collect();
        for member in self.members.values() {
            if let Some((name, _)) = member
                .protocols
                .iter()
                .find(|(p, _)| candidates.contains(&p.as_str()))
            {
                if let Some(v) = votes.iter_mut().find(|(c, _)| *c == name) {
                    v.1 += 1;
                }
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for (name, count) in votes {
            if best.is_none_or(|(_, c)| count > c) {
                best = Some((name, count));
            }
        }
        best.map(|(name, _)| name.to_string())
    }

    /// Whether every member has rejoined and no handed-out member id is still expected.
    pub fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(Member::is_awaiting_join)
    }

    /// The largest rebalance timeout among the members.
    pub fn max_rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    /// Topics the members subscribe to, if the group uses the consumer protocol and every
    /// subscription can be read (None means "unknown": treat every topic as subscribed).
    pub fn subscribed_topics(&self) -> Option<HashSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let mut topics = HashSet::new();
        for member in self.members.values() {
            let protocol = self.protocol.as_deref()?;
            let mut metadata = member.metadata_for(protocol);
            if metadata.len() < 2 {
                return None;
            }
            let version = i16::from_be_bytes([metadata[0], metadata[1]]);
            let _ = bytes::Buf::get_i16(&mut metadata);
            let subscription =
                ConsumerProtocolSubscription::decode(&mut metadata, version.clamp(0, 3)).ok()?;
            topics.extend(subscription.topics.iter().map(|t| t.to_string()));
        }
        Some(topics)
    }

    /// Whether the group can be deleted or have offsets dropped freely: no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, protocols: &[&str]) -> Member {
        Member {
            id: id.into(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            rebalance_timeout_ms: 1000,
            session_timeout_ms: 1000,
            protocols: protocols
                .iter()
                .map(|p| (p.to_string(), Bytes::new()))
                .collect(),
            assignment: Bytes::new(),
            join_waiter: None,
            sync_waiter: None,
            session_deadline_ms: 0,
        }
    }

    #[test]
    fn protocol_selection_follows_member_preferences() {
        let mut g = Group::new("g", 0, 0);
        g.protocol_type = Some("consumer".into());
        for (id, protocols) in [
            ("a", &["range", "roundrobin"][..]),
            ("b", &["roundrobin", "range"][..]),
            ("c", &["roundrobin", "range", "sticky"][..]),
        ] {
            g.members.insert(id.into(), member(id, protocols));
        }
        assert_eq!(g.select_protocol().as_deref(), Some("roundrobin"));
        let candidate = vec![("sticky".to_string(), Bytes::new())];
        assert!(
            !g.supports_protocols("consumer", &candidate),
            "sticky is not supported by every member"
        );
        let candidate = vec![("range".to_string(), Bytes::new())];
        assert!(g.supports_protocols("consumer", &candidate));
        assert!(!g.supports_protocols("connect", &candidate));
    }

    #[test]
    fn static_member_checks() {
        let mut g = Group::new("g", 0, 0);
        g.members.insert("m1".into(), member("m1", &["range"]));
        g.static_members.insert("i1".into(), "m1".into());
        assert!(g.is_fenced(Some("i1"), "m2"));
        assert!(!g.is_fenced(Some("i1"), "m1"));
        assert!(!g.is_fenced(None, "m2"));
        assert_eq!(g.validate_member("m1", Some("i1")), Ok(()));
        assert_eq!(
            g.validate_member("m2", Some("i1")),
            Err(kafka_protocol::ResponseError::FencedInstanceId.code())
        );
        assert_eq!(
            g.validate_member("m9", None),
            Err(kafka_protocol::ResponseError::UnknownMemberId.code())
        );
    }
}
