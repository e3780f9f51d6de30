//! The quorum's state as the engine sees it (DescribeQuorum, `sluice cluster status`, metrics).

use std::sync::{Arc, Mutex};

/// A copy of the quorum's state, taken by the node thread after each step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumStatus {
    /// `node.id` of this process.
    pub node_id: i32,
    /// `node.id` of the current leader, if known.
    pub leader: Option<i32>,
    /// The Raft term (Kafka's leader epoch).
    pub epoch: u64,
    /// The commit index.
    pub high_watermark: u64,
    /// The last index in this node's log + 1.
    pub log_end_offset: u64,
    /// On the leader: the index of the first entry of its term. The engine may act as active
    /// controller only once it has applied this index (it then knows everything committed
    /// before).
    pub leader_since_index: Option<u64>,
    /// On the leader: every voter's progress; elsewhere: this node's own only.
    pub voters: Vec<ReplicaProgress>,
    /// On the leader: the observers that fetched recently.
    pub observers: Vec<ReplicaProgress>,
}

/// How far one replica of the metadata log is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaProgress {
    /// The replica's `node.id`.
    pub id: i32,
    /// Its last index + 1, or -1 when unknown.
    pub log_end_offset: i64,
    /// How long ago it last had everything the leader had, if ever seen caught up.
    pub last_caught_up_ms_ago: Option<u64>,
}

/// The status the node thread writes and every handle reads.
#[derive(Clone)]
pub(crate) struct SharedStatus(Arc<Mutex<QuorumStatus>>);

impl SharedStatus {
    /// The status of a node that has not started: no leader, nothing in the log.
    pub(crate) fn new(node_id: i32) -> Self {
        SharedStatus(Arc::new(Mutex::new(QuorumStatus {
            node_id,
            leader: None,
            epoch: 0,
            high_watermark: 0,
            log_end_offset: 1,
            leader_since_index: None,
            voters: Vec::new(),
            observers: Vec::new(),
        })))
    }

    /// A copy of the latest status.
    pub(crate) fn get(&self) -> QuorumStatus {
        match self.0.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the status (node thread only).
    pub(crate) fn set(&self, status: QuorumStatus) {
        match self.0.lock() {
            Ok(mut guard) => *guard = status,
            Err(poisoned) => *poisoned.into_inner() = status,
        }
    }
}
