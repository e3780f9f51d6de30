//! An observer: a broker that is not a voter follows the metadata log by fetching committed
//! entries (and the snapshot, when it is behind the leader's log) from the leader, stores them
//! like a voter does, and delivers them through the same `committed` channel.

use super::node::snapshot_event;
use super::status::SharedStatus;
use super::storage::DiskStorage;
use super::transport::{
    connect, decode_message, encode_message, read_frame, write_frame, FrameKind,
};
use super::{
    node_id_of, raft_id, Committed, NodeInput, QuorumConfig, QuorumError, QuorumStatus,
    ReplicaProgress,
};
use raft::eraftpb::Message;
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

/// How long an observer waits before fetching again when it got nothing new.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A broker-only process following the quorum.
pub(crate) struct ObserverNode {
    node_id: i32,
    storage: DiskStorage,
    inbox: mpsc::Receiver<NodeInput>,
    committed: futures::channel::mpsc::UnboundedSender<Committed>,
    status: SharedStatus,
    voters: Vec<(i32, String, u16)>,
    /// The voter asked when no leader is known; moves on after each failure.
    next_voter: usize,
    leader: Option<i32>,
    epoch: u64,
    high_watermark: u64,
    fetch_timeout: Duration,
    connection: Option<(i32, TcpStream)>,
}

impl ObserverNode {
    /// An observer of `config.voters` over its recovered storage.
    pub(crate) fn new(
        config: &QuorumConfig,
        storage: DiskStorage,
        inbox: mpsc::Receiver<NodeInput>,
        committed: futures::channel::mpsc::UnboundedSender<Committed>,
        status: SharedStatus,
    ) -> Self {
        ObserverNode {
            node_id: config.node_id,
            storage,
            inbox,
            committed,
            status,
            voters: config
                .voters
                .iter()
                .map(|v| (v.id, v.host.clone(), v.port))
                .collect(),
            next_voter: 0,
            leader: None,
            epoch: 0,
            high_watermark: 0,
            fetch_timeout: config.fetch_timeout,
            connection: None,
        }
    }

    /// Replays what is stored, then fetches until shutdown.
    pub(crate) fn run(mut self) {
        self.replay();
        loop {
            loop {
                match self.inbox.try_recv() {
                    Ok(NodeInput::Shutdown) | Err(mpsc::TryRecvError::Disconnected) => return,
                    Ok(input) => self.handle(input),
                    Err(mpsc::TryRecvError::Empty) => break,
                }
            }
            let progressed = match self.fetch() {
                Ok(progressed) => progressed,
                Err(e) => {
                    tracing::debug!(node = self.node_id, error = %e, "quorum fetch failed");
                    self.connection = None;
                    self.leader = None;
                    self.next_voter = (self.next_voter + 1) % self.voters.len().max(1);
                    false
                }
            };
            self.publish_status();
            if !progressed {
                match self.inbox.recv_timeout(POLL_INTERVAL) {
                    Ok(NodeInput::Shutdown) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    Ok(input) => self.handle(input),
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                }
            }
        }
    }

    /// Delivers the stored snapshot and entries: an observer stores only committed entries.
    fn replay(&mut self) {
        let snapshot = self.storage.current_snapshot();
        if snapshot.get_metadata().index > 0 {
            let _ = self.committed.unbounded_send(snapshot_event(snapshot));
        }
        let entries = self
            .storage
            .slice(self.storage.first(), self.storage.last() + 1, u64::MAX);
        self.deliver(&entries);
        self.high_watermark = self.storage.last();
    }

    fn handle(&mut self, input: NodeInput) {
        match input {
            NodeInput::Propose(_, reply) => {
                let _ = reply.send(Err(QuorumError::NotLeader {
                    leader: self.leader,
                }));
            }
            NodeInput::Snapshot { index, data } => {
                if index > self.storage.last() {
                    tracing::warn!(index, "ignoring a snapshot beyond the delivered entries");
                    return;
                }
                if let Err(e) = self.storage.take_snapshot(index, data) {
                    tracing::error!(index, error = %e, "cannot store the quorum snapshot");
                }
            }
            NodeInput::Fetch(_, reply) => {
                let _ = reply.send(Message::default());
            }
            NodeInput::Raft(_)
            | NodeInput::Unreachable(_)
            | NodeInput::SnapshotSent(..)
            | NodeInput::Shutdown => {}
        }
    }

    /// One fetch from the leader (or a voter that may know it). True when something new came.
    fn fetch(&mut self) -> Result<bool, QuorumError> {
        let target = match self
            .leader
            .filter(|l| self.voters.iter().any(|v| v.0 == *l))
        {
            Some(leader) => leader,
            None => match self.voters.get(self.next_voter) {
                Some(voter) => voter.0,
                None => return Ok(false),
            },
        };
        if self.connection.as_ref().map(|(id, _)| *id) != Some(target) {
            let Some((_, host, port)) = self.voters.iter().find(|v| v.0 == target) else {
                return Ok(false);
            };
            let stream = connect(host, *port, self.fetch_timeout)
                .map_err(|e| QuorumError::io(format!("connecting to voter {target}"), e))?;
            self.connection = Some((target, stream));
        }
        let Some((_, stream)) = self.connection.as_mut() else {
            return Ok(false);
        };
        let mut request = Message::default();
        request.from = raft_id(self.node_id);
        request.index = self.storage.last() + 1;
        let io = |e| QuorumError::io(format!("fetching from voter {target}"), e);
        write_frame(
            stream,
            FrameKind::Fetch,
            &encode_message(&request).map_err(io)?,
        )
        .map_err(io)?;
        let answer = match read_frame(stream).map_err(io)? {
            (FrameKind::FetchReply, body) => decode_message(&body).map_err(io)?,
            (kind, _) => {
                return Err(io(std::io::Error::other(format!(
                    "unexpected {kind:?} frame"
                ))))
            }
        };
        self.epoch = self.epoch.max(answer.term);
        self.leader = node_id_of(answer.from);
        if answer.from != raft_id(target) {
            // Not the leader: the next fetch goes to the one it named, or to another voter.
            if self.leader.is_none() {
                self.next_voter = (self.next_voter + 1) % self.voters.len().max(1);
            }
            return Ok(false);
        }
        let mut progressed = false;
        if answer.has_snapshot() && answer.get_snapshot().get_metadata().index > self.storage.last()
        {
            let snapshot = answer.get_snapshot().clone();
            self.storage.install_snapshot(snapshot.clone())?;
            let _ = self.committed.unbounded_send(snapshot_event(&snapshot));
            progressed = true;
        }
        let next = self.storage.last() + 1;
        let entries: Vec<_> = answer
            .get_entries()
            .iter()
            .skip_while(|e| e.index < next)
            .enumerate()
            .take_while(|(i, e)| e.index == next + *i as u64)
            .map(|(_, e)| e.clone())
            .collect();
        if !entries.is_empty() {
            self.storage.persist(&entries, None)?;
            self.storage.set_commit(self.storage.last())?;
            self.deliver(&entries);
            progressed = true;
        }
        self.high_watermark = answer.commit.max(self.storage.last());
        Ok(progressed)
    }

    fn deliver(&self, entries: &[raft::eraftpb::Entry]) {
        for entry in entries {
            let data = if entry.get_entry_type() == raft::eraftpb::EntryType::EntryNormal {
                entry.data.to_vec()
            } else {
                Vec::new()
            };
            let _ = self.committed.unbounded_send(Committed::Entry {
                index: entry.index,
                term: entry.term,
                data,
            });
        }
    }

    fn publish_status(&self) {
        self.status.set(QuorumStatus {
            node_id: self.node_id,
            leader: self.leader,
            epoch: self.epoch,
            high_watermark: self.high_watermark,
            log_end_offset: self.storage.last() + 1,
            leader_since_index: None,
            voters: Vec::new(),
            observers: vec![ReplicaProgress {
                id: self.node_id,
                log_end_offset: self.storage.last() as i64 + 1,
                last_caught_up_ms_ago: None,
            }],
        });
    }
}
