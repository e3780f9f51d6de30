//! The quorum's configuration (Kafka's `controller.quorum.*` keys) and its consistency checks.

use super::QuorumError;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// One entry of `controller.quorum.voters` (`id@host:port`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumVoter {
    /// The voter's `node.id`.
    pub id: i32,
    /// Host of the voter's CONTROLLER listener.
    pub host: String,
    /// Port of the voter's CONTROLLER listener.
    pub port: u16,
}

/// Everything the quorum needs to start on this process.
#[derive(Clone, Debug)]
pub struct QuorumConfig {
    /// `node.id` of this process.
    pub node_id: i32,
    /// `controller.quorum.voters`. Empty means a one-node quorum of this process alone, with no
    /// network at all (the default `sluice start`).
    pub voters: Vec<QuorumVoter>,
    /// The CONTROLLER listener: `Some` iff this process is a voter of a networked quorum.
    pub listen: Option<SocketAddr>,
    /// Whether `process.roles` contains `controller`.
    pub is_voter: bool,
    /// `<first log dir>/__cluster_metadata-0`, created if missing.
    pub dir: PathBuf,
    /// `controller.quorum.election.timeout.ms`: a follower that hears no leader for this long
    /// (randomised up to twice as long) starts an election.
    pub election_timeout: Duration,
    /// `controller.quorum.fetch.timeout.ms`: how long an observer waits on one fetch before it
    /// tries another voter.
    pub fetch_timeout: Duration,
    /// `controller.quorum.request.timeout.ms`: the bound on one `call`.
    pub request_timeout: Duration,
}

impl QuorumConfig {
    /// A one-node quorum of `node_id` alone, stored in `dir`, with Kafka's default timeouts.
    pub fn single_node(node_id: i32, dir: PathBuf) -> Self {
        QuorumConfig {
            node_id,
            voters: Vec::new(),
            listen: None,
            is_voter: true,
            dir,
            election_timeout: Duration::from_millis(1000),
            fetch_timeout: Duration::from_millis(2000),
            request_timeout: Duration::from_millis(2000),
        }
    }

    /// True when the quorum is this process alone and needs no network.
    pub fn is_single_node(&self) -> bool {
        self.voters.is_empty()
    }

    /// The address of voter `id`'s CONTROLLER listener, if `id` is a voter.
    pub fn voter_addr(&self, id: i32) -> Option<(String, u16)> {
        self.voters
            .iter()
            .find(|v| v.id == id)
            .map(|v| (v.host.clone(), v.port))
    }

    /// Rejects settings the quorum cannot run with, naming the Kafka key at fault.
    pub fn validate(&self) -> Result<(), QuorumError> {
        let bad = |key: &str, why: String| {
            Err(QuorumError::Config {
                key: key.to_string(),
                why,
            })
        };
        if self.node_id < 0 {
            return bad("node.id", format!("{} is negative", self.node_id));
        }
        let mut seen = HashSet::new();
        for voter in &self.voters {
            if voter.id < 0 || !seen.insert(voter.id) {
                return bad(
                    "controller.quorum.voters",
                    format!("voter id {} is negative or listed twice", voter.id),
                );
            }
        }
        if self.is_single_node() {
            if !self.is_voter {
                return bad(
                    "controller.quorum.voters",
                    "a broker-only process needs the voters to follow".to_string(),
                );
            }
        } else if self.is_voter {
            if !seen.contains(&self.node_id) {
                return bad(
                    "controller.quorum.voters",
                    format!("this controller's node.id {} is not a voter", self.node_id),
                );
            }
            if self.listen.is_none() {
                return bad(
                    "listeners",
                    "a controller of a networked quorum needs a CONTROLLER listener".to_string(),
                );
            }
        } else if seen.contains(&self.node_id) {
            return bad(
                "process.roles",
                format!(
                    "node.id {} is a voter but the roles lack controller",
                    self.node_id
                ),
            );
        }
        for (key, timeout) in [
            (
                "controller.quorum.election.timeout.ms",
                self.election_timeout,
            ),
            ("controller.quorum.fetch.timeout.ms", self.fetch_timeout),
            ("controller.quorum.request.timeout.ms", self.request_timeout),
        ] {
            if timeout.is_zero() {
                return bad(key, "must be positive".to_string());
            }
        }
        Ok(())
    }
}
