//! A cluster of real `sluice` processes on one host, laid out as the README's "Run a cluster"
//! recipe on free ports: broker n (1-based, its `node.id`) is a voter
//! (`process.roles=broker,controller`) with `shards` shards on client ports `P_n + k` (nodes
//! `n*1000 + k`) and a `CONTROLLER://` listener on `C_n`; every broker lists every
//! controller port in `controller.quorum.voters`.
//!
//! [`Cluster`] starts them all, waits until every broker is registered and unfenced (Metadata
//! lists every shard node), and lets a test kill (`kill -9`), stop (SIGTERM), pause (SIGSTOP)
//! and resume (SIGCONT) single brokers, restart them, and ask the quorum who leads it
//! (DescribeQuorum, API 55).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{DescribeQuorumRequest, TopicName};
use kafka_protocol::protocol::{Request, StrBytes};

use super::{free_range, plain_consumer, Broker, RawClient};
use rdkafka::consumer::Consumer;

/// The metadata log's topic, as DescribeQuorum names it.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
/// How long a cluster may take from launch to every broker registered and unfenced.
pub const FORM_TIMEOUT: Duration = Duration::from_secs(90);

/// One replica of the metadata log as DescribeQuorum reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuorumReplica {
    /// The replica's `node.id`.
    pub id: i32,
    /// Its log end offset (-1 when the leader does not know it).
    pub log_end_offset: i64,
}

/// The quorum as one DescribeQuorum answer describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumView {
    /// The leader's `node.id` (the active controller), -1 when there is none.
    pub leader: i32,
    /// The leader epoch.
    pub epoch: i32,
    /// The metadata log's high watermark.
    pub high_watermark: i64,
    /// The voters.
    pub voters: Vec<QuorumReplica>,
    /// The observers (brokers that follow the log without voting).
    pub observers: Vec<QuorumReplica>,
}

impl QuorumView {
    /// The log end offset of replica `id` (voter or observer), if the answer lists it.
    pub fn log_end_offset(&self, id: i32) -> Option<i64> {
        self.voters
            .iter()
            .chain(&self.observers)
            .find(|r| r.id == id)
            .map(|r| r.log_end_offset)
    }
}

/// DescribeQuorum for the metadata log, sent to `addr` (any shard of any broker; brokers
/// forward it to the active controller). An error for a broker that is down, paused past
/// `timeout`, or that answers with an error code.
pub fn describe_quorum_at(addr: SocketAddr, timeout: Duration) -> std::io::Result<QuorumView> {
    let mut c = RawClient::try_connect_negotiated(addr, timeout)?;
    if !c.versions.contains_key(&DescribeQuorumRequest::KEY) {
        return Err(std::io::Error::other(format!(
            "{addr} does not advertise DescribeQuorum (API 55)"
        )));
    }
    let version = c.version::<DescribeQuorumRequest>(2);
    let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let resp = c.send(&req, version)?;
    let failed = |what: String| std::io::Error::other(format!("DescribeQuorum at {addr}: {what}"));
    if resp.error_code != 0 {
        return Err(failed(format!("error code {}", resp.error_code)));
    }
    let p = resp
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or_else(|| failed("no partition in the answer".into()))?;
    if p.error_code != 0 {
        return Err(failed(format!("partition error code {}", p.error_code)));
    }
    let replicas = |list: &[kafka_protocol::messages::describe_quorum_response::ReplicaState]| {
        list.iter()
            .map(|r| QuorumReplica {
                id: r.replica_id.0,
                log_end_offset: r.log_end_offset,
            })
            .collect()
    };
    Ok(QuorumView {
        leader: p.leader_id.0,
        epoch: p.leader_epoch,
        high_watermark: p.high_watermark,
        voters: replicas(&p.current_voters),
        observers: replicas(&p.observers),
    })
}

/// Options of a test cluster: `Cluster::builder(3, 2).set("k", "v").start()`.
#[derive(Clone, Debug)]
pub struct ClusterBuilder {
    brokers: u16,
    shards: u16,
    sets: Vec<(String, String)>,
    /// Settings of one broker each: (broker id, key, value), after the common ones.
    broker_sets: Vec<(u16, String, String)>,
    metrics: bool,
}

impl ClusterBuilder {
    /// A `--set key=value` for every broker (e.g. `broker.session.timeout.ms`).
    pub fn set(mut self, key: &str, value: impl ToString) -> Self {
        self.sets.push((key.to_string(), value.to_string()));
        self
    }

    /// A `--set key=value` for broker `n` alone (e.g. its `broker.rack`), applied after the
    /// settings of every broker.
    pub fn set_on(mut self, n: u16, key: &str, value: impl ToString) -> Self {
        assert!(
            n >= 1 && n <= self.brokers,
            "no broker {n} in a {}-broker cluster",
            self.brokers
        );
        self.broker_sets
            .push((n, key.to_string(), value.to_string()));
        self
    }

    /// Gives every broker a metrics endpoint on a port of its own ([`Cluster::metrics_port`]).
    pub fn metrics(mut self) -> Self {
        self.metrics = true;
        self
    }

    /// Chooses every port, launches every broker, and waits until all are registered and
    /// unfenced.
    pub fn start(self) -> Cluster {
        let client_ports: Vec<u16> = (0..self.brokers).map(|_| free_range(self.shards)).collect();
        let controller_ports: Vec<u16> = (0..self.brokers).map(|_| free_range(1)).collect();
        let metrics_ports: Vec<Option<u16>> = (0..self.brokers)
            .map(|_| self.metrics.then(|| free_range(1)))
            .collect();
        let voters = controller_ports
            .iter()
            .enumerate()
            .map(|(i, port)| format!("{}@127.0.0.1:{port}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let brokers = (0..self.brokers as usize)
            .map(|i| {
                let mut b = Broker::builder()
                    .cores(self.shards)
                    .base_port(client_ports[i])
                    .controller_port(controller_ports[i])
                    .set("node.id", i + 1)
                    .set("process.roles", "broker,controller")
                    .set("controller.listener.names", "CONTROLLER")
                    .set("controller.quorum.voters", &voters);
                for (k, v) in &self.sets {
                    b = b.set(k, v);
                }
                for (_, k, v) in self
                    .broker_sets
                    .iter()
                    .filter(|(n, _, _)| *n as usize == i + 1)
                {
                    b = b.set(k, v);
                }
                if let Some(port) = metrics_ports[i] {
                    b = b.set("metrics.listener", format!("127.0.0.1:{port}"));
                }
                b.launch()
            })
            .collect();
        let mut cluster = Cluster {
            brokers,
            shards: self.shards,
            paused: vec![false; self.brokers as usize],
            metrics_ports,
        };
        for b in &mut cluster.brokers {
            b.wait_ready();
        }
        cluster.wait_nodes(&cluster.all_nodes(), FORM_TIMEOUT);
        cluster
    }
}

/// A running cluster; dropping it kills every broker (and keeps their data dirs and logs if the
/// test failed, as [`Broker`] does).
pub struct Cluster {
    brokers: Vec<Broker>,
    shards: u16,
    paused: Vec<bool>,
    metrics_ports: Vec<Option<u16>>,
}

impl Cluster {
    /// `brokers` brokers with `shards` shards each, default settings.
    pub fn start(brokers: u16, shards: u16) -> Cluster {
        Cluster::builder(brokers, shards).start()
    }

    /// A cluster to configure before [`ClusterBuilder::start`].
    pub fn builder(brokers: u16, shards: u16) -> ClusterBuilder {
        assert!(brokers >= 1 && shards >= 1);
        ClusterBuilder {
            brokers,
            shards,
            sets: Vec::new(),
            broker_sets: Vec::new(),
            metrics: false,
        }
    }

    /// The broker ids, `1..=brokers`.
    pub fn ids(&self) -> Vec<u16> {
        (1..=self.brokers.len() as u16).collect()
    }

    /// Shards per broker.
    pub fn shards(&self) -> u16 {
        self.shards
    }

    /// Broker `n` (its `node.id`, 1-based).
    pub fn broker(&self, n: u16) -> &Broker {
        &self.brokers[Self::index(n, self.brokers.len())]
    }

    /// Broker `n`, mutably.
    pub fn broker_mut(&mut self, n: u16) -> &mut Broker {
        let i = Self::index(n, self.brokers.len());
        &mut self.brokers[i]
    }

    fn index(n: u16, len: usize) -> usize {
        assert!(
            n >= 1 && (n as usize) <= len,
            "no broker {n} in a {len}-broker cluster"
        );
        n as usize - 1
    }

    /// `bootstrap.servers` naming every broker's first shard.
    pub fn bootstrap(&self) -> String {
        self.brokers
            .iter()
            .map(|b| b.bootstrap())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `bootstrap.servers` naming the first shard of the brokers `ns`.
    pub fn bootstrap_of(&self, ns: &[u16]) -> String {
        ns.iter()
            .map(|n| self.broker(*n).bootstrap())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The shard node ids of broker `n`: `n*1000 + k`.
    pub fn nodes_of(&self, n: u16) -> Vec<i32> {
        (0..self.shards as i32)
            .map(|k| n as i32 * 1000 + k)
            .collect()
    }

    /// Every shard node of every broker.
    pub fn all_nodes(&self) -> Vec<i32> {
        self.ids()
            .into_iter()
            .flat_map(|n| self.nodes_of(n))
            .collect()
    }

    /// Every shard of every broker as (node id, address).
    pub fn node_addrs(&self) -> Vec<(i32, SocketAddr)> {
        self.ids()
            .into_iter()
            .flat_map(|n| {
                let b = self.broker(n);
                (0..self.shards).map(move |k| (n as i32 * 1000 + k as i32, b.addr(k)))
            })
            .collect()
    }

    /// The metrics endpoint port of broker `n` (the cluster was built with
    /// [`ClusterBuilder::metrics`]).
    pub fn metrics_port(&self, n: u16) -> u16 {
        self.metrics_ports[Self::index(n, self.brokers.len())]
            .expect("the cluster was built with metrics endpoints")
    }

    /// `log.dirs` of broker `n`.
    pub fn data_dir(&self, n: u16) -> &Path {
        self.broker(n).data_dir()
    }

    /// The brokers that run and are not paused.
    pub fn live(&self) -> Vec<u16> {
        self.ids()
            .into_iter()
            .filter(|n| self.broker(*n).started() && !self.paused[*n as usize - 1])
            .collect()
    }

    /// `kill -9` broker `n`.
    pub fn kill9(&mut self, n: u16) {
        self.resume_if_paused(n);
        self.broker_mut(n).kill9();
    }

    /// SIGTERM broker `n` (a controlled shutdown) and wait for exit code 0.
    pub fn stop(&mut self, n: u16) {
        self.resume_if_paused(n);
        self.broker_mut(n).stop();
    }

    /// SIGTERM every running broker at once, then wait for each to exit with 0.
    pub fn stop_all(&mut self) {
        for n in self.ids() {
            self.resume_if_paused(n);
        }
        for b in self.brokers.iter().filter(|b| b.started()) {
            b.terminate();
        }
        for b in self.brokers.iter_mut().filter(|b| b.started()) {
            b.wait_stopped();
        }
    }

    /// SIGSTOP broker `n`.
    pub fn pause(&mut self, n: u16) {
        self.broker(n).pause();
        self.paused[n as usize - 1] = true;
    }

    /// SIGCONT broker `n`.
    pub fn resume(&mut self, n: u16) {
        self.broker(n).resume();
        self.paused[n as usize - 1] = false;
    }

    fn resume_if_paused(&mut self, n: u16) {
        if self.paused[n as usize - 1] {
            self.resume(n);
        }
    }

    /// Starts the stopped or killed broker `n` again (same ports, data and settings) and waits
    /// for its ports; [`Cluster::wait_nodes`] waits for it to be registered.
    pub fn start_again(&mut self, n: u16) {
        self.broker_mut(n).start_again();
    }

    /// Starts every stopped broker again at once and waits until all are registered and
    /// unfenced.
    pub fn start_all_again(&mut self) {
        for b in self.brokers.iter_mut().filter(|b| !b.started()) {
            b.launch();
        }
        for b in &mut self.brokers {
            b.wait_ready();
        }
        self.wait_nodes(&self.all_nodes(), FORM_TIMEOUT);
    }

    /// The node ids in a Metadata answer from the live brokers, sorted.
    pub fn metadata_nodes(&self) -> Option<BTreeSet<i32>> {
        let live = self.live();
        if live.is_empty() {
            return None;
        }
        let consumer = plain_consumer(&self.bootstrap_of(&live));
        let md = consumer.fetch_metadata(None, Duration::from_secs(5)).ok()?;
        Some(md.brokers().iter().map(|b| b.id()).collect())
    }

    /// Waits until Metadata from the live brokers lists exactly the nodes `want` (the shards of
    /// the registered, unfenced brokers).
    pub fn wait_nodes(&self, want: &[i32], timeout: Duration) {
        let want: BTreeSet<i32> = want.iter().copied().collect();
        let deadline = Instant::now() + timeout;
        let mut last = None;
        loop {
            last = self.metadata_nodes().or(last);
            if last.as_ref() == Some(&want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Metadata did not list nodes {want:?} within {timeout:?}; last answer {last:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// DescribeQuorum from the first live broker that answers.
    pub fn describe_quorum(&self) -> Option<QuorumView> {
        self.live()
            .into_iter()
            .find_map(|n| describe_quorum_at(self.broker(n).addr(0), Duration::from_secs(3)).ok())
    }

    /// The active controller and its epoch, `(node.id, epoch)`, if the quorum has a leader.
    pub fn active_controller(&self) -> Option<(i32, i32)> {
        self.describe_quorum()
            .filter(|q| q.leader >= 0)
            .map(|q| (q.leader, q.epoch))
    }

    /// Waits until the quorum has a leader and returns it with its epoch.
    pub fn wait_active_controller(&self, timeout: Duration) -> (i32, i32) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(leader) = self.active_controller() {
                return leader;
            }
            assert!(
                Instant::now() < deadline,
                "no active controller within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
