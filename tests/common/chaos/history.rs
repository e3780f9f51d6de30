//! What the workload's clients observed, and the log as it stands at the end: the input of the
//! checks in [`super::check`].
//!
//! Every produced record carries a unique id (its value is [`crate::common::group::payload`]
//! of the id), so a record can be recognised wherever it ends up. The producer's side of the
//! history is the delivery reports; the consumer's side is one sequence of events in the order
//! its poll thread saw them (assignments, reads, commits), so that the checks can tell which
//! commits a consumer resumed from.

use std::collections::BTreeMap;

/// A delivery report that acknowledged record `id` at (`partition`, `offset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acked {
    /// The record's id.
    pub id: usize,
    /// The partition it was acknowledged on.
    pub partition: i32,
    /// The offset the acknowledgement named.
    pub offset: i64,
}

/// A delivery report that failed record `id`: the record may or may not be in the log (Jepsen
/// calls it indeterminate), so it is never counted as lost, but it may not appear twice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedDelivery {
    /// The record's id.
    pub id: usize,
    /// The partition it was sent to.
    pub partition: i32,
    /// The error librdkafka reported.
    pub error: String,
}

/// One thing the consumer-group member saw, in the order it saw them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsumerEvent {
    /// The member was given `partitions`, by a (re)started consumer joining the group or by a
    /// rebalance: assignment epoch `epoch` starts, and each partition's first read in it is
    /// where the member resumed.
    Assigned {
        /// The assignment epoch that starts (unique over the whole run, increasing).
        epoch: u32,
        /// The partitions assigned.
        partitions: Vec<i32>,
    },
    /// The member read the record at (`partition`, `offset`) in assignment epoch `epoch`.
    Read {
        /// The assignment epoch it was read in.
        epoch: u32,
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
        /// Its id, `None` when the value is not a payload the producer wrote.
        id: Option<usize>,
    },
    /// The member committed `offset` (the next offset to read) for `partition`;
    /// `acknowledged` says whether the coordinator answered success (a failed commit may or
    /// may not have been applied).
    Commit {
        /// Its partition.
        partition: i32,
        /// The committed offset: the next offset the group should read.
        offset: i64,
        /// Whether the commit was answered with success.
        acknowledged: bool,
    },
}

/// Everything the clients observed during a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// Every acknowledged delivery.
    pub acked: Vec<Acked>,
    /// Every failed delivery.
    pub failed: Vec<FailedDelivery>,
    /// How many records the producer handed to librdkafka (ids `0..sent`).
    pub sent: usize,
    /// The consumer's events, in order.
    pub consumer: Vec<ConsumerEvent>,
}

/// One partition of the final log: the records from the log start offset up to the high
/// watermark, as a fresh consumer read them after the faults stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionLog {
    /// The log start offset (low watermark).
    pub start: i64,
    /// The high watermark: one past the last readable offset.
    pub end: i64,
    /// Offset → the id of the record there (`None`: not a payload the producer wrote).
    pub records: BTreeMap<i64, Option<usize>>,
}

/// The final log of every partition, and any offset a reader saw with two different values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FinalLog {
    /// Partition → its final log.
    pub partitions: BTreeMap<i32, PartitionLog>,
    /// (partition, offset, first value, second value) read twice with different values.
    pub conflicts: Vec<(i32, i64, Option<usize>, Option<usize>)>,
}

impl FinalLog {
    /// A final log whose partitions span `bounds` (partition → (log start, high watermark)),
    /// with no records yet.
    pub fn with_bounds(bounds: impl IntoIterator<Item = (i32, (i64, i64))>) -> FinalLog {
        FinalLog {
            partitions: bounds
                .into_iter()
                .map(|(p, (start, end))| {
                    (
                        p,
                        PartitionLog {
                            start,
                            end,
                            records: BTreeMap::new(),
                        },
                    )
                })
                .collect(),
            conflicts: Vec::new(),
        }
    }

    /// Records that the reader saw `id` at (`partition`, `offset`); a second, different value
    /// for the same offset goes to [`FinalLog::conflicts`].
    pub fn insert(&mut self, partition: i32, offset: i64, id: Option<usize>) {
        let log = self.partitions.entry(partition).or_default();
        match log.records.get(&offset) {
            Some(seen) if *seen != id => self.conflicts.push((partition, offset, *seen, id)),
            Some(_) => {}
            None => {
                log.records.insert(offset, id);
            }
        }
    }

    /// The id at (`partition`, `offset`): `None` when the offset is not in the final log,
    /// `Some(None)` when it holds a value the producer did not write.
    pub fn at(&self, partition: i32, offset: i64) -> Option<Option<usize>> {
        self.partitions
            .get(&partition)?
            .records
            .get(&offset)
            .copied()
    }

    /// The number of records in the final log.
    pub fn len(&self) -> usize {
        self.partitions.values().map(|p| p.records.len()).sum()
    }
}
