//! The controller quorum on real threads, sockets and files: one node, three voters on
//! loopback, snapshots, observers, calls and bad input on the CONTROLLER port.

use futures::StreamExt;
use sluice_replication::quorum::{
    start_quorum, Committed, IncomingCall, QuorumConfig, QuorumError, QuorumEvents, QuorumHandle,
    QuorumVoter,
};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ELECTION: Duration = Duration::from_millis(200);

/// A port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn voters(ids_ports: &[(i32, u16)]) -> Vec<QuorumVoter> {
    ids_ports
        .iter()
        .map(|(id, port)| QuorumVoter {
            id: *id,
            host: "127.0.0.1".into(),
            port: *port,
        })
        .collect()
}

fn networked(node_id: i32, voters: Vec<QuorumVoter>, dir: &Path) -> QuorumConfig {
    let listen = voters
        .iter()
        .find(|v| v.id == node_id)
        .map(|v| SocketAddr::from(([127, 0, 0, 1], v.port)));
    QuorumConfig {
        node_id,
        is_voter: listen.is_some(),
        voters,
        listen,
        dir: dir.join(format!("node-{node_id}")),
        election_timeout: ELECTION,
        fetch_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(500),
    }
}

/// A started node and everything it delivered so far.
struct Node {
    handle: QuorumHandle,
    delivered: Arc<Mutex<Vec<Committed>>>,
    calls: Option<futures::channel::mpsc::UnboundedReceiver<IncomingCall>>,
}

impl Node {
    fn start(config: QuorumConfig) -> Node {
        // RUST_LOG=raft=debug,sluice_replication=debug shows the quorum at work.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
        let (
            handle,
            QuorumEvents {
                mut committed,
                calls,
            },
        ) = start_quorum(config).unwrap();
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let sink = delivered.clone();
        std::thread::spawn(move || {
            while let Some(event) = futures::executor::block_on(committed.next()) {
                sink.lock().unwrap().push(event);
            }
        });
        Node {
            handle,
            delivered,
            calls: Some(calls),
        }
    }

    /// The application data delivered, in order, with a snapshot's data as one item.
    fn data(&self) -> Vec<Vec<u8>> {
        let mut data = Vec::new();
        for event in self.delivered.lock().unwrap().iter() {
            match event {
                Committed::Entry { data: d, .. } if !d.is_empty() => data.push(d.clone()),
                Committed::Entry { .. } => {}
                Committed::Snapshot { data: d, .. } => {
                    data.clear();
                    data.push(d.clone());
                }
            }
        }
        data
    }

    fn last_index(&self) -> u64 {
        match self.delivered.lock().unwrap().last() {
            Some(Committed::Entry { index, .. }) | Some(Committed::Snapshot { index, .. }) => {
                *index
            }
            None => 0,
        }
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn propose(handle: &QuorumHandle, data: &[u8]) -> Result<u64, QuorumError> {
    futures::executor::block_on(handle.propose(data.to_vec()))
}

/// The one node of `nodes` that is leader, once exactly one claims it.
fn leader_of(nodes: &HashMap<i32, Node>) -> i32 {
    let mut leader = None;
    wait_until("a leader is elected", Duration::from_secs(5), || {
        let leaders: Vec<i32> = nodes
            .iter()
            .filter(|(id, n)| {
                n.handle.status().leader == Some(**id)
                    && n.handle.status().leader_since_index.is_some()
            })
            .map(|(id, _)| *id)
            .collect();
        leader = (leaders.len() == 1).then(|| leaders[0]);
        leader.is_some()
    });
    leader.unwrap()
}

#[test]
fn one_node_commits_and_replays_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = QuorumConfig::single_node(0, dir.path().join("__cluster_metadata-0"));
    let node = Node::start(config.clone());
    let status = node.handle.status();
    assert_eq!(
        status.leader,
        Some(0),
        "a one-node quorum elects itself at once"
    );
    assert!(status.leader_since_index.is_some());
    let mut indexes = Vec::new();
    for i in 0..5u8 {
        indexes.push(propose(&node.handle, &[i; 200]).unwrap());
    }
    assert!(indexes.windows(2).all(|w| w[0] < w[1]));
    wait_until("all five are delivered", Duration::from_secs(2), || {
        node.data().len() == 5
    });
    node.handle.shutdown();
    node.handle.shutdown();
    assert!(matches!(
        propose(&node.handle, b"late"),
        Err(QuorumError::Stopped)
    ));

    let again = Node::start(config);
    wait_until(
        "the restarted node replays and re-elects itself",
        Duration::from_secs(2),
        || again.data().len() == 5 && again.handle.status().leader == Some(0),
    );
    assert_eq!(
        again.data(),
        (0..5u8).map(|i| vec![i; 200]).collect::<Vec<_>>()
    );
    let next = propose(&again.handle, b"after restart").unwrap();
    assert!(next > *indexes.last().unwrap());
    wait_until(
        "the commit index reaches the new entry",
        Duration::from_secs(2),
        || again.handle.status().high_watermark == next,
    );
    assert!(again.handle.status().epoch >= 2, "a restart is a new term");
    again.handle.shutdown();
}

/// Samples every node's status and records which nodes claimed leadership in each epoch.
fn watch_leaders(
    handles: Vec<QuorumHandle>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<HashMap<u64, HashSet<i32>>> {
    std::thread::spawn(move || {
        let mut seen: HashMap<u64, HashSet<i32>> = HashMap::new();
        while !stop.load(Ordering::SeqCst) {
            for handle in &handles {
                let status = handle.status();
                if status.leader == Some(status.node_id) {
                    seen.entry(status.epoch).or_default().insert(status.node_id);
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        seen
    })
}

#[test]
fn three_voters_elect_commit_fail_over_and_catch_up() {
    let dir = tempfile::tempdir().unwrap();
    let quorum = voters(&[(1, free_port()), (2, free_port()), (3, free_port())]);
    let mut nodes: HashMap<i32, Node> = (1..=3)
        .map(|id| (id, Node::start(networked(id, quorum.clone(), dir.path()))))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_leaders(
        nodes.values().map(|n| n.handle.clone()).collect(),
        stop.clone(),
    );

    let first = leader_of(&nodes);
    let epoch = nodes[&first].handle.status().epoch;
    let follower = *nodes.keys().find(|id| **id != first).unwrap();
    assert!(matches!(
        propose(&nodes[&follower].handle, b"x"),
        Err(QuorumError::NotLeader { leader: Some(l) }) if l == first
    ));
    let expected: Vec<Vec<u8>> = (0..20u32)
        .map(|i| format!("record-{i}").into_bytes())
        .collect();
    for data in &expected {
        propose(&nodes[&first].handle, data).unwrap();
    }
    wait_until(
        "every voter has every entry, in order",
        Duration::from_secs(5),
        || nodes.values().all(|n| n.data() == expected),
    );
    wait_until(
        "the leader sees every voter's progress",
        Duration::from_secs(5),
        || {
            let status = nodes[&first].handle.status();
            status.voters.len() == 3 && status.voters.iter().all(|v| v.log_end_offset > 20)
        },
    );

    // The leader stops: another takes over in a higher epoch and keeps committing.
    let stopped = nodes.remove(&first).unwrap();
    stopped.handle.shutdown();
    let second = leader_of(&nodes);
    assert_ne!(second, first);
    assert!(nodes[&second].handle.status().epoch > epoch);
    let mut expected = expected;
    for i in 20..30u32 {
        let data = format!("record-{i}").into_bytes();
        propose(&nodes[&second].handle, &data).unwrap();
        expected.push(data);
    }

    // The stopped node restarts from its directory and catches up.
    nodes.insert(
        first,
        Node::start(networked(first, quorum.clone(), dir.path())),
    );
    wait_until(
        "the restarted voter catches up",
        Duration::from_secs(5),
        || nodes[&first].data() == expected,
    );
    wait_until(
        "the restarted voter follows the new leader",
        Duration::from_secs(5),
        || nodes[&first].handle.status().leader == Some(second),
    );
    stop.store(true, Ordering::SeqCst);
    let seen = watcher.join().unwrap();
    for (epoch, leaders) in &seen {
        assert_eq!(leaders.len(), 1, "epoch {epoch} had leaders {leaders:?}");
    }
    assert!(seen.len() >= 2);
    for node in nodes.values() {
        node.handle.shutdown();
    }
}

#[test]
fn a_snapshot_truncates_the_log_and_a_wiped_voter_catches_up_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let quorum = voters(&[(1, free_port()), (2, free_port()), (3, free_port())]);
    let mut nodes: HashMap<i32, Node> = (1..=3)
        .map(|id| (id, Node::start(networked(id, quorum.clone(), dir.path()))))
        .collect();
    let leader = leader_of(&nodes);
    let mut applied = 0;
    for i in 0..40u32 {
        applied = propose(&nodes[&leader].handle, format!("before-{i}").as_bytes()).unwrap();
    }
    let log_file = |id: i32| dir.path().join(format!("node-{id}")).join("raft.log");
    let before = std::fs::metadata(log_file(leader)).unwrap().len();
    for node in nodes.values() {
        wait_until("every voter applied", Duration::from_secs(5), || {
            node.last_index() >= applied
        });
        node.handle.snapshot(applied, b"state-after-40".to_vec());
    }
    wait_until(
        "the leader's log is truncated",
        Duration::from_secs(5),
        || {
            std::fs::metadata(log_file(leader))
                .map(|m| m.len() < before / 4)
                .unwrap_or(false)
        },
    );

    let wiped = *nodes.keys().find(|id| **id != leader).unwrap();
    nodes.remove(&wiped).unwrap().handle.shutdown();
    std::fs::remove_dir_all(dir.path().join(format!("node-{wiped}"))).unwrap();
    for i in 0..5u32 {
        propose(&nodes[&leader].handle, format!("after-{i}").as_bytes()).unwrap();
    }
    nodes.insert(
        wiped,
        Node::start(networked(wiped, quorum.clone(), dir.path())),
    );
    let mut expected = vec![b"state-after-40".to_vec()];
    expected.extend((0..5u32).map(|i| format!("after-{i}").into_bytes()));
    wait_until(
        "the wiped voter catches up from the snapshot",
        Duration::from_secs(5),
        || nodes[&wiped].data() == expected,
    );
    assert!(matches!(
        nodes[&wiped].delivered.lock().unwrap().first(),
        Some(Committed::Snapshot { index, .. }) if *index == applied
    ));
    for node in nodes.values() {
        node.handle.shutdown();
    }
}

#[test]
fn an_observer_follows_the_log_and_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let quorum = voters(&[(1, free_port())]);
    let voter = Node::start(networked(1, quorum.clone(), dir.path()));
    wait_until(
        "the lone voter elects itself",
        Duration::from_secs(5),
        || voter.handle.status().leader == Some(1),
    );
    let mut applied = 0;
    for i in 0..10u32 {
        applied = propose(&voter.handle, format!("m-{i}").as_bytes()).unwrap();
    }
    wait_until(
        "the voter delivered all ten",
        Duration::from_secs(5),
        || voter.last_index() == applied,
    );
    voter.handle.snapshot(applied, b"image-10".to_vec());
    propose(&voter.handle, b"m-10").unwrap();

    let observer = Node::start(networked(7, quorum, dir.path()));
    assert!(matches!(
        propose(&observer.handle, b"no"),
        Err(QuorumError::NotLeader { .. })
    ));
    wait_until(
        "the observer gets the snapshot and what follows",
        Duration::from_secs(5),
        || observer.data() == vec![b"image-10".to_vec(), b"m-10".to_vec()],
    );
    propose(&voter.handle, b"m-11").unwrap();
    wait_until(
        "the observer follows new entries",
        Duration::from_secs(5),
        || observer.data().len() == 3,
    );
    wait_until(
        "the leader lists the observer",
        Duration::from_secs(5),
        || voter.handle.status().observers.iter().any(|o| o.id == 7),
    );
    assert_eq!(observer.handle.status().leader, Some(1));
    observer.handle.shutdown();
    voter.handle.shutdown();
}

#[test]
fn call_reaches_another_voter_and_fails_against_dead_ones() {
    let dir = tempfile::tempdir().unwrap();
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let quorum = voters(&[
        (1, free_port()),
        (2, free_port()),
        (3, free_port()),
        (4, silent.local_addr().unwrap().port()),
    ]);
    let caller = Node::start(networked(1, quorum.clone(), dir.path()));
    let mut callee = Node::start(networked(2, quorum, dir.path()));
    let mut calls = callee.calls.take().unwrap();
    std::thread::spawn(move || {
        while let Some(call) = futures::executor::block_on(calls.next()) {
            let mut reply = b"echo:".to_vec();
            reply.extend_from_slice(&call.request);
            let _ = call.reply.send(reply);
        }
    });
    let reply = futures::executor::block_on(caller.handle.call(2, b"heartbeat".to_vec())).unwrap();
    assert_eq!(reply, b"echo:heartbeat");

    let started = Instant::now();
    let silent_result = futures::executor::block_on(caller.handle.call(4, b"anyone?".to_vec()));
    assert!(
        matches!(silent_result, Err(QuorumError::Timeout)),
        "{silent_result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    let dead = futures::executor::block_on(caller.handle.call(3, b"anyone?".to_vec()));
    assert!(
        matches!(dead, Err(QuorumError::Unreachable { node: 3 })),
        "{dead:?}"
    );
    let unknown = futures::executor::block_on(caller.handle.call(9, Vec::new()));
    assert!(matches!(unknown, Err(QuorumError::Unreachable { node: 9 })));
    caller.handle.shutdown();
    callee.handle.shutdown();
}

#[test]
fn garbage_on_the_controller_port_is_dropped_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let voter = Node::start(networked(1, voters(&[(1, port)]), dir.path()));
    wait_until(
        "the lone voter elects itself",
        Duration::from_secs(5),
        || voter.handle.status().leader == Some(1),
    );
    let garbage: [&[u8]; 4] = [
        b"\xff\xff\xff\xff\x01",              // a 4 GiB frame
        b"\x00\x00\x00\x02\x63\x00",          // an unknown kind
        b"\x00\x00\x00\x04\x01\xff\xff\xff",  // a Raft frame that is not protobuf
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", // not our protocol at all
    ];
    for bytes in garbage {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(bytes).unwrap();
        let mut rest = Vec::new();
        let read = stream.read_to_end(&mut rest);
        assert!(
            matches!(read, Ok(0)) || read.is_err(),
            "the node closes the connection: {read:?}"
        );
    }
    // A frame claiming 200 MiB then silence: the node keeps serving everything else.
    let mut hanging = TcpStream::connect(("127.0.0.1", port)).unwrap();
    hanging.write_all(b"\x0c\x80\x00\x00\x01\x00").unwrap();
    let index = propose(&voter.handle, b"still alive").unwrap();
    wait_until("the entry is committed", Duration::from_secs(2), || {
        voter.handle.status().high_watermark == index
    });
    voter.handle.shutdown();
}
