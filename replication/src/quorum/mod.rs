//! The controller quorum: the cluster metadata log replicated by Raft (raft-rs, see QUORUM.md).
//!
//! The quorum is generic: it replicates opaque entries and delivers them, committed and in
//! order, to the engine, which applies them and hands back snapshots. It runs on its own
//! threads, never on a shard's executor, so its blocking file I/O and fsyncs stay off the shards;
//! the engine talks to it through `futures::channel` types that a glommio task can await.
//!
//! Threads: one node thread drives Raft (or, on a broker that is not a voter, fetches as an
//! observer); the CONTROLLER listener has an accept thread and one thread per connection; each
//! peer has a sender thread; each `call` runs on a short-lived thread.

mod calls;
mod config;
mod logger;
mod node;
mod observer;
mod status;
mod storage;
mod transport;

pub use config::{QuorumConfig, QuorumVoter};
pub use status::{QuorumStatus, ReplicaProgress};

use std::future::Future;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Why a quorum operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    /// This node is not the leader; `leader` is the node.id of the one it knows, if any.
    #[error("not the quorum leader (leader: {leader:?})")]
    NotLeader { leader: Option<i32> },
    /// The term changed before the entry committed: it may or may not have committed.
    #[error("leadership lost before the entry committed; its outcome is unknown")]
    LeadershipLost,
    /// The quorum has been shut down (or stopped on a storage error).
    #[error("the quorum is stopped")]
    Stopped,
    /// A `call` got no reply within `controller.quorum.request.timeout.ms`.
    #[error("no reply within the request timeout")]
    Timeout,
    /// A `call`'s target is not a voter or refused the connection.
    #[error("node {node} is unreachable")]
    Unreachable { node: i32 },
    /// A setting the quorum cannot run with; `key` is the Kafka configuration key at fault.
    #[error("invalid {key}: {why}")]
    Config { key: String, why: String },
    /// The metadata directory holds a record that is intact but inconsistent.
    #[error("corrupt quorum state in {path}: {why}")]
    Corrupt { path: String, why: String },
    /// A file or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// raft-rs refused an operation on its state.
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
}

impl QuorumError {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        QuorumError::Io {
            context: context.into(),
            source,
        }
    }
}

/// What the quorum delivers to the engine, in log order, exactly once per start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Committed {
    /// A committed entry. `data` is empty for Raft's own entries (a new leader's empty entry,
    /// configuration changes): the engine only advances its applied index for those.
    Entry {
        index: u64,
        term: u64,
        data: Vec<u8>,
    },
    /// Replace the whole state with this snapshot (taken by some node's engine at `index`).
    Snapshot {
        index: u64,
        term: u64,
        data: Vec<u8>,
    },
}

/// An application request that arrived on this node's CONTROLLER listener (from `call`).
pub struct IncomingCall {
    /// The caller's bytes.
    pub request: Vec<u8>,
    /// Where the engine sends the reply; dropping it closes the caller's connection.
    pub reply: futures::channel::oneshot::Sender<Vec<u8>>,
}

/// The streams the quorum feeds the engine.
pub struct QuorumEvents {
    /// Committed entries and installed snapshots, in log order, exactly once per start. At
    /// start: the persisted snapshot (if any), then every committed entry after it.
    pub committed: futures::channel::mpsc::UnboundedReceiver<Committed>,
    /// Application requests that arrived on this node's CONTROLLER listener.
    pub calls: futures::channel::mpsc::UnboundedReceiver<IncomingCall>,
}

/// What the engine asks of the node thread.
pub(crate) enum NodeInput {
    /// A Raft message from a peer.
    Raft(raft::eraftpb::Message),
    /// Append an entry (leader only); the reply resolves once it commits.
    Propose(
        Vec<u8>,
        futures::channel::oneshot::Sender<Result<u64, QuorumError>>,
    ),
    /// The engine's state after applying everything up to `index`.
    Snapshot { index: u64, data: Vec<u8> },
    /// An observer's fetch from `request.index`; answered on `reply`.
    Fetch(raft::eraftpb::Message, mpsc::Sender<raft::eraftpb::Message>),
    /// A peer sender could not deliver to this Raft id.
    Unreachable(u64),
    /// A snapshot message to this Raft id was written (true) or failed (false).
    SnapshotSent(u64, bool),
    /// Stop the node thread.
    Shutdown,
}

/// The engine's handle on the quorum. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct QuorumHandle {
    inner: Arc<HandleInner>,
}

struct HandleInner {
    config: QuorumConfig,
    inbox: mpsc::Sender<NodeInput>,
    status: status::SharedStatus,
    listener: Option<transport::Listener>,
    node_thread: Mutex<Option<JoinHandle<()>>>,
}

/// Starts the quorum threads. Replays the persisted snapshot and log at start: they are the
/// first things on `QuorumEvents::committed`.
pub fn start_quorum(config: QuorumConfig) -> Result<(QuorumHandle, QuorumEvents), QuorumError> {
    config.validate()?;
    std::fs::create_dir_all(&config.dir)
        .map_err(|e| QuorumError::io(format!("creating {}", config.dir.display()), e))?;
    let storage = storage::DiskStorage::open(&config.dir, &config)?;
    let (committed_tx, committed) = futures::channel::mpsc::unbounded();
    let (calls_tx, calls) = futures::channel::mpsc::unbounded();
    let (inbox_tx, inbox) = mpsc::channel();
    let status = status::SharedStatus::new(config.node_id);
    let listener = match config.listen {
        Some(addr) => Some(transport::Listener::start(
            addr,
            inbox_tx.clone(),
            calls_tx,
        )?),
        None => None,
    };
    let node_thread = if config.is_voter {
        let node = node::VoterNode::new(
            &config,
            storage,
            inbox,
            inbox_tx.clone(),
            committed_tx,
            status.clone(),
        )?;
        std::thread::Builder::new()
            .name(format!("quorum-node-{}", config.node_id))
            .spawn(move || node.run())
    } else {
        let node =
            observer::ObserverNode::new(&config, storage, inbox, committed_tx, status.clone());
        std::thread::Builder::new()
            .name(format!("quorum-observer-{}", config.node_id))
            .spawn(move || node.run())
    }
    .map_err(|e| QuorumError::io("spawning the quorum node thread", e))?;
    let handle = QuorumHandle {
        inner: Arc::new(HandleInner {
            config,
            inbox: inbox_tx,
            status,
            listener,
            node_thread: Mutex::new(Some(node_thread)),
        }),
    };
    Ok((handle, QuorumEvents { committed, calls }))
}

impl QuorumHandle {
    /// Appends `entry` on the leader; resolves with its index once COMMITTED. Errors: NotLeader,
    /// LeadershipLost (term changed before commit: outcome unknown), Stopped. The entry is also
    /// delivered through `QuorumEvents::committed` like every entry; the engine applies it there.
    pub fn propose(&self, entry: Vec<u8>) -> impl Future<Output = Result<u64, QuorumError>> + Send {
        let (reply, result) = futures::channel::oneshot::channel();
        let sent = self
            .inner
            .inbox
            .send(NodeInput::Propose(entry, reply))
            .is_ok();
        async move {
            if !sent {
                return Err(QuorumError::Stopped);
            }
            result.await.unwrap_or(Err(QuorumError::Stopped))
        }
    }

    /// A cheap copy of the current state (updated by the node thread).
    pub fn status(&self) -> QuorumStatus {
        self.inner.status.get()
    }

    /// The engine's state after applying everything up to and including `index`: persisted
    /// (fsync), the log behind it truncated, and used to catch up lagging voters and observers.
    pub fn snapshot(&self, index: u64, data: Vec<u8>) {
        // A stopped quorum has nothing to compact: the send failing is not an error.
        let _ = self.inner.inbox.send(NodeInput::Snapshot { index, data });
    }

    /// An application request to voter `node`'s CONTROLLER listener; resolves with its reply, or
    /// Timeout after `request_timeout`, or Unreachable.
    pub fn call(
        &self,
        node: i32,
        request: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, QuorumError>> + Send {
        calls::call(&self.inner.config, node, request)
    }

    /// Stops the threads and waits for the node thread, so that the directory can be reopened
    /// as soon as this returns (idempotent).
    pub fn shutdown(&self) {
        let _ = self.inner.inbox.send(NodeInput::Shutdown);
        if let Some(listener) = &self.inner.listener {
            listener.stop();
        }
        let thread = self
            .inner
            .node_thread
            .lock()
            .map(|mut guard| guard.take())
            .unwrap_or_else(|poisoned| poisoned.into_inner().take());
        if let Some(thread) = thread {
            if thread.join().is_err() {
                tracing::error!("the quorum node thread panicked");
            }
        }
    }
}

/// The Raft id of a `node.id`: raft-rs reserves 0 for "none", Kafka allows node.id 0.
pub(crate) fn raft_id(node_id: i32) -> u64 {
    debug_assert!(node_id >= 0, "node ids are validated non-negative");
    node_id as u64 + 1
}

/// The `node.id` of a Raft id (`None` for raft-rs's 0, "no node").
pub(crate) fn node_id_of(raft_id: u64) -> Option<i32> {
    raft_id.checked_sub(1).and_then(|id| i32::try_from(id).ok())
}
