//! The driving loop of a voter: one std thread that owns raft-rs's `RawNode`, ticks it, steps
//! peer messages into it, proposes the engine's entries, handles each `Ready` (persist, send,
//! deliver committed entries in order), compacts the log behind the engine's snapshots and
//! answers observers' fetches.

use super::status::SharedStatus;
use super::storage::DiskStorage;
use super::{
    logger, node_id_of, raft_id, transport, Committed, NodeInput, QuorumConfig, QuorumError,
    QuorumStatus, ReplicaProgress,
};
use raft::eraftpb::{Entry, EntryType, Message, MessageType, Snapshot};
use raft::{RawNode, SnapshotStatus, StateRole};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Raft ticks per election timeout (raft-rs randomises elections in [10, 20) ticks).
const ELECTION_TICKS: usize = 10;
/// The shortest tick, whatever the election timeout.
const MIN_TICK: Duration = Duration::from_millis(10);
/// The most bytes of entries in one append or fetch answer (at least one entry is sent).
pub(crate) const MAX_BATCH_BYTES: u64 = 1 << 20;
/// The most inputs handled before the next `Ready`, so that a flood cannot starve ticks.
const MAX_INPUTS_PER_STEP: usize = 1024;

type ProposeReply = futures::channel::oneshot::Sender<Result<u64, QuorumError>>;

/// A voter of the quorum (the only one of a one-node quorum).
pub(crate) struct VoterNode {
    node_id: i32,
    raw: RawNode<DiskStorage>,
    inbox: mpsc::Receiver<NodeInput>,
    peers: HashMap<u64, mpsc::SyncSender<Message>>,
    voters: HashSet<u64>,
    committed: futures::channel::mpsc::UnboundedSender<Committed>,
    status: SharedStatus,
    tick: Duration,
    fetch_timeout: Duration,
    /// Proposals awaiting commit: index -> (term proposed in, reply).
    pending: BTreeMap<u64, (u64, ProposeReply)>,
    /// The last index delivered to the engine.
    applied: u64,
    /// The role and term last seen, to notice elections and lost leadership.
    role_term: (StateRole, u64),
    leader_since_index: Option<u64>,
    /// When each voter last had every entry the leader had (leader only).
    caught_up: HashMap<u64, Instant>,
    /// Observers' next wanted index and the time of their last fetch (leader only).
    observers: HashMap<i32, (u64, Instant)>,
}

impl VoterNode {
    /// Builds the node from its recovered storage; queues the persisted snapshot for the
    /// engine (raft-rs then delivers the committed entries after it), connects nothing yet,
    /// and in a one-node quorum elects itself at once.
    pub(crate) fn new(
        config: &QuorumConfig,
        storage: DiskStorage,
        inbox: mpsc::Receiver<NodeInput>,
        inbox_tx: mpsc::Sender<NodeInput>,
        committed: futures::channel::mpsc::UnboundedSender<Committed>,
        status: SharedStatus,
    ) -> Result<Self, QuorumError> {
        let snapshot = storage.current_snapshot().clone();
        let applied = snapshot.get_metadata().index;
        if applied > 0 {
            let _ = committed.unbounded_send(snapshot_event(&snapshot));
        }
        let tick = (config.election_timeout / ELECTION_TICKS as u32).max(MIN_TICK);
        let raft_config = raft::Config {
            id: raft_id(config.node_id),
            election_tick: ELECTION_TICKS,
            heartbeat_tick: 1,
            applied,
            max_size_per_msg: MAX_BATCH_BYTES,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            ..Default::default()
        };
        raft_config.validate()?;
        let mut raw = RawNode::new(&raft_config, storage, &logger::raft_logger(config.node_id))?;
        let mut peers = HashMap::new();
        for voter in config.voters.iter().filter(|v| v.id != config.node_id) {
            let sender = transport::spawn_peer(
                raft_id(voter.id),
                voter.host.clone(),
                voter.port,
                config.request_timeout,
                inbox_tx.clone(),
            )
            .map_err(|e| QuorumError::io("spawning a quorum peer thread", e))?;
            peers.insert(raft_id(voter.id), sender);
        }
        let mut voters: HashSet<u64> = config.voters.iter().map(|v| raft_id(v.id)).collect();
        if config.is_single_node() {
            voters.insert(raft_id(config.node_id));
            raw.campaign()?;
        }
        let mut node = VoterNode {
            node_id: config.node_id,
            raw,
            inbox,
            peers,
            voters,
            committed,
            status,
            tick,
            fetch_timeout: config.fetch_timeout,
            pending: BTreeMap::new(),
            applied,
            role_term: (StateRole::Follower, 0),
            leader_since_index: None,
            caught_up: HashMap::new(),
            observers: HashMap::new(),
        };
        node.observe_role();
        node.publish_status();
        Ok(node)
    }

    /// Runs until shutdown, the engine and handles all gone, or a storage error.
    pub(crate) fn run(mut self) {
        let mut last_tick = Instant::now();
        loop {
            let wait = self.tick.saturating_sub(last_tick.elapsed());
            let mut next = match self.inbox.recv_timeout(wait) {
                Ok(input) => Some(input),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut handled = 0;
            while let Some(input) = next.take() {
                if matches!(input, NodeInput::Shutdown) {
                    self.stop();
                    return;
                }
                self.handle(input);
                self.observe_role();
                handled += 1;
                if handled < MAX_INPUTS_PER_STEP {
                    next = self.inbox.try_recv().ok();
                }
            }
            if last_tick.elapsed() >= self.tick {
                self.raw.tick();
                last_tick = Instant::now();
                self.observe_role();
            }
            if let Err(e) = self.on_ready() {
                tracing::error!(node = self.node_id, error = %e, "the quorum node stops on a storage error");
                break;
            }
            self.observe_role();
            self.publish_status();
        }
        self.stop();
    }

    /// Fails what is pending and shows no leader, so nobody acts on a stopped node.
    fn stop(&mut self) {
        for (_, (_, reply)) in std::mem::take(&mut self.pending) {
            let _ = reply.send(Err(QuorumError::Stopped));
        }
        let mut status = self.status.get();
        status.leader = None;
        status.leader_since_index = None;
        self.status.set(status);
    }

    fn leader(&self) -> Option<i32> {
        node_id_of(self.raw.raft.leader_id)
    }

    fn handle(&mut self, input: NodeInput) {
        match input {
            NodeInput::Raft(message) => {
                if message.to != self.raw.raft.id || !self.voters.contains(&message.from) {
                    tracing::debug!(
                        from = message.from,
                        to = message.to,
                        "dropping a raft message not between voters"
                    );
                    return;
                }
                let mut message = message;
                self.guard_against_lost_logs(&mut message);
                if let Err(e) = self.raw.step(message) {
                    tracing::debug!(error = %e, "raft refused a message");
                }
            }
            NodeInput::Propose(data, reply) => self.propose(data, reply),
            NodeInput::Snapshot { index, data } => {
                if index > self.applied {
                    tracing::warn!(
                        index,
                        applied = self.applied,
                        "ignoring a snapshot beyond the delivered entries"
                    );
                    return;
                }
                match self.raw.mut_store().take_snapshot(index, data) {
                    Ok(taken) => tracing::debug!(index, taken, "quorum snapshot"),
                    Err(e) => {
                        tracing::error!(index, error = %e, "cannot store the quorum snapshot")
                    }
                }
            }
            NodeInput::Fetch(request, reply) => {
                let _ = reply.send(self.answer_fetch(&request));
            }
            NodeInput::Unreachable(peer) => self.raw.report_unreachable(peer),
            NodeInput::SnapshotSent(peer, delivered) => {
                let status = if delivered {
                    SnapshotStatus::Finish
                } else {
                    SnapshotStatus::Failure
                };
                self.raw.report_snapshot(peer, status);
            }
            NodeInput::Shutdown => {}
        }
    }

    /// raft-rs assumes a voter never loses what it persisted; a voter whose directory was
    /// wiped breaks that and would make both sides stall or panic. Follower side: a heartbeat
    /// committing past our log (the leader remembers entries we lost) advances nothing.
    /// Leader side: a rejection showing a log shorter than the voter once acknowledged resets
    /// its progress, so it is caught up again from the start (from the snapshot if compacted).
    fn guard_against_lost_logs(&mut self, message: &mut Message) {
        let raft = &mut self.raw.raft;
        match message.get_msg_type() {
            MessageType::MsgHeartbeat if message.commit > raft.raft_log.last_index() => {
                tracing::warn!(
                    leader = message.from,
                    commit = message.commit,
                    last = raft.raft_log.last_index(),
                    "the leader believes this voter has entries it lacks: was its directory lost?"
                );
                message.commit = raft.raft_log.committed;
            }
            MessageType::MsgAppendResponse if message.reject && raft.state == StateRole::Leader => {
                if let Some(progress) = raft.mut_prs().get_mut(message.from) {
                    if message.reject_hint < progress.matched {
                        tracing::warn!(voter = message.from, acknowledged = progress.matched, last = message.reject_hint,
                            "a voter lost entries it had acknowledged: catching it up from its log end");
                        progress.matched = message.reject_hint;
                        progress.become_probe();
                    }
                }
            }
            _ => {}
        }
    }

    fn propose(&mut self, data: Vec<u8>, reply: ProposeReply) {
        if self.raw.raft.state != StateRole::Leader {
            let _ = reply.send(Err(QuorumError::NotLeader {
                leader: self.leader(),
            }));
            return;
        }
        match self.raw.propose(Vec::new(), data) {
            Ok(()) => {
                let index = self.raw.raft.raft_log.last_index();
                self.pending.insert(index, (self.raw.raft.term, reply));
            }
            Err(raft::Error::ProposalDropped) => {
                let _ = reply.send(Err(QuorumError::NotLeader {
                    leader: self.leader(),
                }));
            }
            Err(e) => {
                let _ = reply.send(Err(e.into()));
            }
        }
    }

    /// Notices a new role or term: a new leader records the first index of its term; every
    /// pending proposal's outcome becomes unknown.
    fn observe_role(&mut self) {
        let now = (self.raw.raft.state, self.raw.raft.term);
        if now == self.role_term {
            return;
        }
        self.role_term = now;
        self.leader_since_index = if now.0 == StateRole::Leader {
            // raft-rs appends the leader's empty entry as it becomes leader: the last index is
            // the first entry of this term.
            Some(self.raw.raft.raft_log.last_index())
        } else {
            None
        };
        self.caught_up.clear();
        self.observers.clear();
        for (_, (_, reply)) in std::mem::take(&mut self.pending) {
            let _ = reply.send(Err(QuorumError::LeadershipLost));
        }
    }

    /// Handles one raft-rs `Ready`: send, install a received snapshot, deliver committed
    /// entries, persist (fsync) new entries and hard state, then send what needed persistence.
    fn on_ready(&mut self) -> Result<(), QuorumError> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut ready = self.raw.ready();
        self.send(ready.take_messages());
        if !ready.snapshot().is_empty() {
            let snapshot = ready.snapshot().clone();
            self.raw.mut_store().install_snapshot(snapshot.clone())?;
            self.deliver_snapshot(&snapshot);
        }
        self.deliver(ready.take_committed_entries());
        self.raw.mut_store().persist(ready.entries(), ready.hs())?;
        self.send(ready.take_persisted_messages());
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.raw.mut_store().set_commit(commit)?;
        }
        self.send(light.take_messages());
        self.deliver(light.take_committed_entries());
        self.raw.advance_apply();
        Ok(())
    }

    fn send(&self, messages: Vec<Message>) {
        for message in messages {
            if let Some(peer) = self.peers.get(&message.to) {
                // A full queue means the peer is far behind or gone: Raft resends.
                let _ = peer.try_send(message);
            }
        }
    }

    /// Hands committed entries to the engine in order and resolves their proposals.
    fn deliver(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            let index = entry.index;
            debug_assert_eq!(
                index,
                self.applied + 1,
                "committed entries are delivered in order, without gaps"
            );
            self.resolve_pending(index, Some(entry.term));
            let data = if entry.get_entry_type() == EntryType::EntryNormal {
                entry.data.to_vec()
            } else {
                Vec::new()
            };
            self.applied = index;
            let _ = self.committed.unbounded_send(Committed::Entry {
                index,
                term: entry.term,
                data,
            });
        }
    }

    fn deliver_snapshot(&mut self, snapshot: &Snapshot) {
        let index = snapshot.get_metadata().index;
        debug_assert!(
            index > self.applied,
            "an installed snapshot moves the state forward"
        );
        self.resolve_pending(index, None);
        self.applied = index;
        let _ = self.committed.unbounded_send(snapshot_event(snapshot));
    }

    /// Resolves the proposals up to `index`: the one at `index` succeeded if it is the entry
    /// that was proposed (same term); any other is no longer in the log.
    fn resolve_pending(&mut self, index: u64, term: Option<u64>) {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > index {
                break;
            }
            let (at, (proposed_term, reply)) = entry.remove_entry();
            let result = if at == index && term == Some(proposed_term) {
                Ok(index)
            } else {
                Err(QuorumError::LeadershipLost)
            };
            let _ = reply.send(result);
        }
    }

    /// The answer to an observer's fetch: committed entries from the index it asks for, and
    /// the snapshot first when that index is behind the log.
    fn answer_fetch(&mut self, request: &Message) -> Message {
        let mut answer = Message::default();
        answer.term = self.raw.raft.term;
        answer.from = self.raw.raft.leader_id;
        let commit = self.raw.raft.raft_log.committed;
        answer.commit = commit;
        if self.raw.raft.state != StateRole::Leader {
            return answer;
        }
        if let Some(observer) = node_id_of(request.from) {
            self.observers
                .insert(observer, (request.index, Instant::now()));
        }
        let store = self.raw.store();
        let mut from = request.index.max(1);
        if from < store.first() {
            answer.set_snapshot(store.current_snapshot().clone());
            from = store.first();
        }
        answer.set_entries(store.slice(from, commit + 1, MAX_BATCH_BYTES).into());
        answer
    }

    fn publish_status(&mut self) {
        let raft = &self.raw.raft;
        let last = self.raw.store().last();
        let now = Instant::now();
        let is_leader = raft.state == StateRole::Leader;
        let ms_ago = |at: Option<&Instant>| at.map(|at| now.duration_since(*at).as_millis() as u64);
        let voters = if is_leader {
            let mut voters = Vec::new();
            for (id, progress) in raft.prs().iter() {
                if progress.matched >= last {
                    self.caught_up.insert(*id, now);
                }
                voters.push(ReplicaProgress {
                    id: node_id_of(*id).unwrap_or(-1),
                    log_end_offset: progress.matched as i64 + 1,
                    last_caught_up_ms_ago: ms_ago(self.caught_up.get(id)),
                });
            }
            voters.sort_by_key(|v| v.id);
            voters
        } else {
            vec![ReplicaProgress {
                id: self.node_id,
                log_end_offset: last as i64 + 1,
                last_caught_up_ms_ago: None,
            }]
        };
        let recent = self.fetch_timeout * 3;
        self.observers
            .retain(|_, (_, at)| now.duration_since(*at) < recent);
        let mut observers: Vec<ReplicaProgress> = self
            .observers
            .iter()
            .map(|(id, (next, at))| ReplicaProgress {
                id: *id,
                log_end_offset: *next as i64,
                last_caught_up_ms_ago: (*next > raft.raft_log.committed)
                    .then(|| now.duration_since(*at).as_millis() as u64),
            })
            .collect();
        observers.sort_by_key(|o| o.id);
        self.status.set(QuorumStatus {
            node_id: self.node_id,
            leader: node_id_of(raft.leader_id),
            epoch: raft.term,
            high_watermark: raft.raft_log.committed,
            log_end_offset: last + 1,
            leader_since_index: self.leader_since_index,
            voters,
            observers,
        });
    }
}

/// The engine's view of a snapshot.
pub(crate) fn snapshot_event(snapshot: &Snapshot) -> Committed {
    let meta = snapshot.get_metadata();
    Committed::Snapshot {
        index: meta.index,
        term: meta.term,
        data: snapshot.data.to_vec(),
    }
}
