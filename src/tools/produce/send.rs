//! Sending batches to their partitions' leaders, one Produce request per leader (concurrently),
//! retrying what a leader change or a dropped connection failed until the timeout, and counting
//! the outcome.

use super::batch::produce_request;
use crate::tools::common::{code_text, count_of, ToolError};
use bytes::Bytes;
use sluice_net::client::{ClientError, Cluster};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Error codes worth retrying after a metadata refresh: UNKNOWN_TOPIC_OR_PARTITION,
/// LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, NETWORK_EXCEPTION,
/// NOT_ENOUGH_REPLICAS, NOT_ENOUGH_REPLICAS_AFTER_APPEND.
const RETRIABLE: [i16; 7] = [3, 5, 6, 7, 13, 19, 20];
/// LEADER_NOT_AVAILABLE.
const LEADER_NOT_AVAILABLE: i16 = 5;

/// One partition's batch on its way: partition, encoded batch, record count.
pub type Pending = (i32, Bytes, u64);

/// What happened to the records so far.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Records written, by partition.
    pub sent: BTreeMap<i32, u64>,
    /// Records that failed, by reason.
    pub failed: BTreeMap<String, u64>,
}

impl Outcome {
    /// Records that failed.
    pub fn failed_count(&self) -> u64 {
        self.failed.values().sum()
    }

    /// The one-line summary: records, partitions, errors.
    pub fn summary(&self, topic: &str, acks: i16) -> String {
        let total: u64 = self.sent.values().sum();
        let per_partition: Vec<String> = self
            .sent
            .iter()
            .map(|(p, n)| format!("partition {p}: {n}"))
            .collect();
        let mut line = format!("Produced {} to topic '{topic}'", count_of(total, "record"));
        if !per_partition.is_empty() {
            line.push_str(&format!(" ({})", per_partition.join(", ")));
        }
        if acks == 0 {
            line.push_str(", unacknowledged (--acks 0)");
        }
        if self.failed.is_empty() {
            line.push_str("; no errors.");
        } else {
            let reasons: Vec<String> = self
                .failed
                .iter()
                .map(|(why, n)| format!("{n} × {why}"))
                .collect();
            line.push_str(&format!(
                "; {} failed: {}.",
                self.failed_count(),
                reasons.join(", ")
            ));
        }
        line
    }
}

/// Sends batches of one topic.
pub struct Sender<'a> {
    /// The cluster (metadata and connections).
    pub cluster: &'a Cluster,
    /// The topic.
    pub topic: String,
    /// Kafka's `acks`: 0, 1 or -1 (all).
    pub acks: i16,
    /// How long to keep retrying a batch.
    pub timeout: Duration,
}

impl Sender<'_> {
    /// Sends `batches`, adding their fate to `outcome`.
    pub async fn send(
        &self,
        batches: Vec<Pending>,
        outcome: &mut Outcome,
    ) -> Result<(), ToolError> {
        let deadline = Instant::now() + self.timeout;
        let mut pending = batches;
        loop {
            let (retry, last_error) = self.attempt(pending, outcome).await?;
            if retry.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                for (_, _, n) in retry {
                    *outcome.failed.entry(last_error.clone()).or_default() += n;
                }
                return Ok(());
            }
            glommio::timer::sleep(Duration::from_millis(100)).await;
            self.cluster
                .refresh(std::slice::from_ref(&self.topic))
                .await?;
            pending = retry;
        }
    }

    /// One round: a request per leader. Returns the batches to retry and the last reason.
    async fn attempt(
        &self,
        pending: Vec<Pending>,
        outcome: &mut Outcome,
    ) -> Result<(Vec<Pending>, String), ToolError> {
        let md = self.cluster.metadata();
        let mut retry = Vec::new();
        let mut last_error = code_text(LEADER_NOT_AVAILABLE);
        let mut by_leader: BTreeMap<i32, Vec<Pending>> = BTreeMap::new();
        for b in pending {
            match md.leader(&self.topic, b.0) {
                Some(leader) => by_leader.entry(leader).or_default().push(b),
                None => retry.push(b),
            }
        }
        let requests = by_leader.into_iter().map(|(leader, batches)| async move {
            let codes = self.request(leader, &batches).await;
            (batches, codes)
        });
        for (batches, codes) in futures::future::join_all(requests).await {
            let codes = match codes {
                Ok(c) => c,
                Err(
                    e @ (ClientError::Broken { .. }
                    | ClientError::Timeout { .. }
                    | ClientError::Connect { .. }),
                ) => {
                    last_error = e.to_string();
                    retry.extend(batches);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            for b in batches {
                match codes.get(&b.0) {
                    Some((0, _)) => *outcome.sent.entry(b.0).or_default() += b.2,
                    Some((code, message)) if RETRIABLE.contains(code) => {
                        last_error = reason(*code, message.as_deref());
                        retry.push(b);
                    }
                    Some((code, message)) => {
                        *outcome
                            .failed
                            .entry(reason(*code, message.as_deref()))
                            .or_default() += b.2
                    }
                    None => {
                        *outcome
                            .failed
                            .entry("the broker did not answer for the partition".into())
                            .or_default() += b.2
                    }
                }
            }
        }
        Ok((retry, last_error))
    }

    /// One Produce request to `leader`: each partition's error code and message (all 0 with
    /// acks=0, which gets no answer).
    async fn request(
        &self,
        leader: i32,
        batches: &[Pending],
    ) -> Result<BTreeMap<i32, (i16, Option<String>)>, ClientError> {
        let conn = self.cluster.node_conn(leader).await?;
        let parts: Vec<(i32, Bytes)> = batches.iter().map(|(p, b, _)| (*p, b.clone())).collect();
        let req = produce_request(
            &self.topic,
            &parts,
            self.acks,
            crate::tools::common::request_timeout_ms(&conn),
        );
        if self.acks == 0 {
            conn.send_no_response(&req).await?;
            return Ok(batches.iter().map(|(p, _, _)| (*p, (0, None))).collect());
        }
        let resp = conn.send(&req).await?;
        Ok(resp
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .map(|p| {
                (
                    p.index,
                    (
                        p.error_code,
                        p.error_message.as_ref().map(|m| m.to_string()),
                    ),
                )
            })
            .collect())
    }
}

/// A failure reason: the code's name and the broker's message.
fn reason(code: i16, message: Option<&str>) -> String {
    match message {
        Some(m) if !m.is_empty() => format!("{} ({m})", code_text(code)),
        _ => code_text(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_partitions_and_errors() {
        let mut o = Outcome::default();
        assert_eq!(
            o.summary("t", -1),
            "Produced 0 records to topic 't'; no errors."
        );
        o.sent.insert(0, 2);
        o.sent.insert(2, 3);
        assert_eq!(
            o.summary("t", 1),
            "Produced 5 records to topic 't' (partition 0: 2, partition 2: 3); no errors."
        );
        o.failed.insert(reason(10, None), 4);
        assert_eq!(o.failed_count(), 4);
        assert_eq!(
            o.summary("t", 0),
            "Produced 5 records to topic 't' (partition 0: 2, partition 2: 3), unacknowledged \
             (--acks 0); 4 failed: 4 × MESSAGE_TOO_LARGE (10)."
        );
        assert_eq!(reason(87, Some("bad")), "INVALID_RECORD (87) (bad)");
    }
}
