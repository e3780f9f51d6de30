//! The checks Jepsen runs on a Kafka-like log, as plain functions of a [`History`] and a
//! [`FinalLog`]:
//!
//! * [`lost_and_misplaced`]: every acknowledged record is in the final log, at the partition
//!   and offset its acknowledgement named;
//! * [`duplicated`]: no record appears twice (acknowledged or not: a failed delivery may be in
//!   the log, but once), and no offset holds a value the producer never wrote;
//! * [`holes`]: each partition's offsets are contiguous from its log start to its high
//!   watermark;
//! * [`consumer_order`]: within one assignment, the consumer's offsets on a partition only move
//!   forward, one at a time (no record of the final log skipped);
//! * [`vanished_reads`]: every record the consumer read is still in the final log, at the same
//!   offset (a read record must be committed, so it can never vanish);
//! * [`resume_points`]: after every (re)assignment the consumer resumes exactly at the offset
//!   its group last committed (or, when the last commit's outcome is unknown, between the last
//!   acknowledged commit and that one): never past it (a skipped committed range) and never
//!   before it (a committed offset forgotten).
//!
//! [`check`] runs them all into a [`CheckReport`], whose `Display` gives each count with the
//! first few offending records.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::history::{Acked, ConsumerEvent, FinalLog, History};

/// How many offending records a report shows per check.
const SHOWN: usize = 5;

/// An acknowledged record found in the final log, but not (only) where it was acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Misplaced {
    /// The acknowledgement.
    pub acked: Acked,
    /// Where the final log holds the record instead, as (partition, offset).
    pub found_at: Vec<(i32, i64)>,
}

/// A record the final log holds more than once: its id and every (partition, offset) it is at.
pub type Duplicate = (usize, Vec<(i32, i64)>);

/// Offsets `from..to` of `partition` missing from the final log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hole {
    /// The partition.
    pub partition: i32,
    /// The first missing offset.
    pub from: i64,
    /// One past the last missing offset.
    pub to: i64,
}

/// Two consecutive reads of one partition in one assignment epoch that are out of order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderViolation {
    /// The assignment epoch.
    pub epoch: u32,
    /// The partition.
    pub partition: i32,
    /// The offset read before.
    pub previous: i64,
    /// The offset read next.
    pub offset: i64,
}

/// A record the consumer read that the final log does not hold at that offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VanishedRead {
    /// The assignment epoch it was read in.
    pub epoch: u32,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// The id read.
    pub id: Option<usize>,
    /// What the final log holds there (`None`: nothing).
    pub now: Option<Option<usize>>,
}

/// Where the consumer resumed a partition after an assignment, against what its group had
/// committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resume {
    /// The assignment epoch.
    pub epoch: u32,
    /// The partition.
    pub partition: i32,
    /// The first offset read in the epoch.
    pub first: i64,
    /// The lowest offset it may resume at: the last acknowledged commit (or the log start).
    pub committed_low: i64,
    /// The highest: the largest commit sent since then whose outcome is unknown.
    pub committed_high: i64,
}

/// The outcome of every check, with counts and the offending records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Records the producer handed to librdkafka.
    pub sent: usize,
    /// Acknowledged deliveries.
    pub acknowledged: usize,
    /// Failed deliveries.
    pub failed: usize,
    /// Records with no delivery report at all.
    pub indeterminate: usize,
    /// Records in the final log.
    pub final_records: usize,
    /// Records the consumer read (re-reads included).
    pub reads: usize,
    /// Assignment epochs the consumer went through.
    pub epochs: usize,
    /// Acknowledged records the consumer never read (not a violation: a liveness measure).
    pub unseen: usize,
    /// Acknowledged records missing from the final log.
    pub lost: Vec<Acked>,
    /// Acknowledged records in the final log, but not where they were acknowledged.
    pub misplaced: Vec<Misplaced>,
    /// Records in the final log more than once: (id, where).
    pub duplicated: Vec<Duplicate>,
    /// Final-log offsets holding a value the producer never wrote: (partition, offset).
    pub unknown_values: Vec<(i32, i64)>,
    /// Offsets a final reader saw with two different values.
    pub conflicts: Vec<(i32, i64, Option<usize>, Option<usize>)>,
    /// Offsets missing between a partition's log start and its high watermark.
    pub holes: Vec<Hole>,
    /// Consumer reads that went backwards within one assignment.
    pub consumer_backwards: Vec<OrderViolation>,
    /// Consumer reads that jumped over records of the final log within one assignment.
    pub consumer_skips: Vec<OrderViolation>,
    /// Records read that are not in the final log at that offset.
    pub vanished: Vec<VanishedRead>,
    /// Assignments that resumed past the committed offset.
    pub resume_skipped: Vec<Resume>,
    /// Assignments that resumed before the last acknowledged committed offset.
    pub resume_rewound: Vec<Resume>,
}

impl CheckReport {
    /// One line per check that found something, with its count and first offenders; empty
    /// when every check passed.
    pub fn violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        push_found(&mut out, "lost acknowledged records", &self.lost);
        push_found(&mut out, "misplaced acknowledged records", &self.misplaced);
        push_found(&mut out, "duplicated records", &self.duplicated);
        push_found(&mut out, "unknown values in the log", &self.unknown_values);
        push_found(&mut out, "offsets read with two values", &self.conflicts);
        push_found(&mut out, "holes in the log", &self.holes);
        push_found(
            &mut out,
            "consumer reads going backwards",
            &self.consumer_backwards,
        );
        push_found(
            &mut out,
            "consumer reads skipping records",
            &self.consumer_skips,
        );
        push_found(&mut out, "reads that vanished", &self.vanished);
        push_found(&mut out, "resumes past the commit", &self.resume_skipped);
        push_found(&mut out, "resumes before the commit", &self.resume_rewound);
        out
    }

    /// True when every check passed.
    pub fn is_clean(&self) -> bool {
        self.violations().is_empty()
    }

    /// The number of holes' missing offsets.
    pub fn missing_offsets(&self) -> i64 {
        self.holes.iter().map(|h| h.to - h.from).sum()
    }
}

/// Appends `"<what>: <count> (first: ...)"` to `out` when `found` is not empty.
fn push_found<T: fmt::Debug>(out: &mut Vec<String>, what: &str, found: &[T]) {
    if !found.is_empty() {
        out.push(format!(
            "{what}: {} (first: {:?})",
            found.len(),
            &found[..found.len().min(SHOWN)]
        ));
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} sent, {} acknowledged, {} failed, {} without a report; final log {} records; \
             consumer read {} in {} assignments ({} acknowledged never read)",
            self.sent,
            self.acknowledged,
            self.failed,
            self.indeterminate,
            self.final_records,
            self.reads,
            self.epochs,
            self.unseen
        )?;
        writeln!(
            f,
            "lost {}, misplaced {}, duplicated {}, unknown values {}, conflicts {}, holes {} \
             ({} offsets), consumer backwards {}, consumer skips {}, vanished reads {}, \
             resumes past commit {}, resumes before commit {}",
            self.lost.len(),
            self.misplaced.len(),
            self.duplicated.len(),
            self.unknown_values.len(),
            self.conflicts.len(),
            self.holes.len(),
            self.missing_offsets(),
            self.consumer_backwards.len(),
            self.consumer_skips.len(),
            self.vanished.len(),
            self.resume_skipped.len(),
            self.resume_rewound.len()
        )?;
        for v in self.violations() {
            writeln!(f, "  {v}")?;
        }
        Ok(())
    }
}

/// Runs every check of `history` against `log`.
pub fn check(history: &History, log: &FinalLog) -> CheckReport {
    let (lost, misplaced) = lost_and_misplaced(&history.acked, log);
    let (duplicated, unknown_values) = duplicated(log, history.sent);
    let (consumer_backwards, consumer_skips) = consumer_order(&history.consumer, log);
    let (resume_skipped, resume_rewound) = resume_points(&history.consumer, log);
    let read: BTreeSet<usize> = reads(&history.consumer).filter_map(|r| r.3).collect();
    let reported: BTreeSet<usize> = history
        .acked
        .iter()
        .map(|a| a.id)
        .chain(history.failed.iter().map(|f| f.id))
        .collect();
    CheckReport {
        sent: history.sent,
        acknowledged: history.acked.len(),
        failed: history.failed.len(),
        indeterminate: history.sent.saturating_sub(reported.len()),
        final_records: log.len(),
        reads: reads(&history.consumer).count(),
        epochs: history
            .consumer
            .iter()
            .filter(|e| matches!(e, ConsumerEvent::Assigned { .. }))
            .count(),
        unseen: history
            .acked
            .iter()
            .filter(|a| !read.contains(&a.id))
            .count(),
        lost,
        misplaced,
        duplicated,
        unknown_values,
        conflicts: log.conflicts.clone(),
        holes: holes(log),
        consumer_backwards,
        consumer_skips,
        vanished: vanished_reads(&history.consumer, log),
        resume_skipped,
        resume_rewound,
    }
}

/// The consumer's reads as (epoch, partition, offset, id).
fn reads(events: &[ConsumerEvent]) -> impl Iterator<Item = (u32, i32, i64, Option<usize>)> + '_ {
    events.iter().filter_map(|e| match e {
        ConsumerEvent::Read {
            epoch,
            partition,
            offset,
            id,
        } => Some((*epoch, *partition, *offset, *id)),
        _ => None,
    })
}

/// Id → every (partition, offset) the final log holds it at.
fn positions(log: &FinalLog) -> BTreeMap<usize, Vec<(i32, i64)>> {
    let mut at: BTreeMap<usize, Vec<(i32, i64)>> = BTreeMap::new();
    for (p, part) in &log.partitions {
        for (o, id) in &part.records {
            if let Some(id) = id {
                at.entry(*id).or_default().push((*p, *o));
            }
        }
    }
    at
}

/// Acknowledged records absent from the final log (lost), and those present but not at the
/// acknowledged (partition, offset) (misplaced: the log was rewritten under an acknowledged
/// record, even if the record came back elsewhere).
pub fn lost_and_misplaced(acked: &[Acked], log: &FinalLog) -> (Vec<Acked>, Vec<Misplaced>) {
    let at = positions(log);
    let mut lost = Vec::new();
    let mut misplaced = Vec::new();
    for a in acked {
        match at.get(&a.id) {
            None => lost.push(*a),
            // librdkafka's idempotent producer may report success without an offset (-1001)
            // when a retried request's answer was lost: the record only has to be in its
            // partition (once: duplicates are checked apart).
            Some(found) if a.offset < 0 && found.iter().any(|(p, _)| *p == a.partition) => {}
            Some(found) if !found.contains(&(a.partition, a.offset)) => misplaced.push(Misplaced {
                acked: *a,
                found_at: found.clone(),
            }),
            Some(_) => {}
        }
    }
    (lost, misplaced)
}

/// Ids the final log holds more than once, with where; and offsets holding a value that is not
/// one of the `sent` records the producer wrote.
pub fn duplicated(log: &FinalLog, sent: usize) -> (Vec<Duplicate>, Vec<(i32, i64)>) {
    let duplicated = positions(log)
        .into_iter()
        .filter(|(_, at)| at.len() > 1)
        .collect();
    let unknown = log
        .partitions
        .iter()
        .flat_map(|(p, part)| {
            part.records
                .iter()
                .filter(|(_, id)| id.is_none_or(|id| id >= sent))
                .map(move |(o, _)| (*p, *o))
        })
        .collect();
    (duplicated, unknown)
}

/// The offset ranges between each partition's log start and high watermark that the final log
/// does not hold.
pub fn holes(log: &FinalLog) -> Vec<Hole> {
    let mut out = Vec::new();
    for (p, part) in &log.partitions {
        let mut next = part.start;
        for o in part.records.range(part.start..part.end).map(|(o, _)| *o) {
            if o > next {
                out.push(Hole {
                    partition: *p,
                    from: next,
                    to: o,
                });
            }
            next = o + 1;
        }
        if next < part.end {
            out.push(Hole {
                partition: *p,
                from: next,
                to: part.end,
            });
        }
    }
    out
}

/// Reads that went backwards (an offset at or below the previous one) and reads that jumped
/// over records the final log holds, per partition within one assignment epoch.
pub fn consumer_order(
    events: &[ConsumerEvent],
    log: &FinalLog,
) -> (Vec<OrderViolation>, Vec<OrderViolation>) {
    let mut last: BTreeMap<(u32, i32), i64> = BTreeMap::new();
    let mut backwards = Vec::new();
    let mut skips = Vec::new();
    for (epoch, partition, offset, _) in reads(events) {
        if let Some(previous) = last.insert((epoch, partition), offset) {
            let v = OrderViolation {
                epoch,
                partition,
                previous,
                offset,
            };
            if offset <= previous {
                backwards.push(v);
            } else if offset > previous + 1
                && log
                    .partitions
                    .get(&partition)
                    .is_some_and(|part| part.records.range(previous + 1..offset).next().is_some())
            {
                skips.push(v);
            }
        }
    }
    (backwards, skips)
}

/// Reads whose record the final log does not hold at the offset it was read at (offsets below
/// the final log start, removed by retention, cannot be judged and are left out).
pub fn vanished_reads(events: &[ConsumerEvent], log: &FinalLog) -> Vec<VanishedRead> {
    reads(events)
        .filter(|(_, partition, offset, _)| {
            log.partitions
                .get(partition)
                .is_none_or(|part| *offset >= part.start)
        })
        .filter_map(|(epoch, partition, offset, id)| {
            let now = log.at(partition, offset);
            (now != Some(id)).then_some(VanishedRead {
                epoch,
                partition,
                offset,
                id,
                now,
            })
        })
        .collect()
}

/// What the group has committed for one partition, as the consumer's history tells it.
#[derive(Clone, Copy, Debug, Default)]
struct Committed {
    /// The last acknowledged commit.
    acknowledged: Option<i64>,
    /// The largest commit sent after it whose outcome is unknown.
    unknown: Option<i64>,
}

/// Assignments whose first read of a partition came after the committed offset (a committed
/// range skipped) and before it (a committed offset forgotten). The committed offset is the
/// last acknowledged commit before the assignment, or the log start when there was none; a
/// later commit whose outcome is unknown widens the allowed range up to it.
pub fn resume_points(events: &[ConsumerEvent], log: &FinalLog) -> (Vec<Resume>, Vec<Resume>) {
    let mut committed: BTreeMap<i32, Committed> = BTreeMap::new();
    let mut pending: BTreeMap<i32, (u32, i64, i64)> = BTreeMap::new();
    let mut skipped = Vec::new();
    let mut rewound = Vec::new();
    for e in events {
        match e {
            ConsumerEvent::Assigned { epoch, partitions } => {
                pending.clear();
                for p in partitions {
                    let c = committed.get(p).copied().unwrap_or_default();
                    let start = log.partitions.get(p).map_or(0, |part| part.start);
                    let low = c.acknowledged.unwrap_or(start);
                    let high = c.unknown.map_or(low, |u| u.max(low));
                    pending.insert(*p, (*epoch, low, high));
                }
            }
            ConsumerEvent::Read {
                epoch,
                partition,
                offset,
                ..
            } => {
                if pending.get(partition).is_some_and(|(e, ..)| e == epoch) {
                    let (epoch, low, high) = pending.remove(partition).expect("checked above");
                    let r = Resume {
                        epoch,
                        partition: *partition,
                        first: *offset,
                        committed_low: low,
                        committed_high: high,
                    };
                    if *offset > high {
                        skipped.push(r);
                    } else if *offset < low {
                        rewound.push(r);
                    }
                }
            }
            ConsumerEvent::Commit {
                partition,
                offset,
                acknowledged,
            } => {
                let c = committed.entry(*partition).or_default();
                if *acknowledged {
                    *c = Committed {
                        acknowledged: Some(*offset),
                        unknown: None,
                    };
                } else {
                    c.unknown = Some(c.unknown.map_or(*offset, |u| u.max(*offset)));
                }
            }
        }
    }
    (skipped, rewound)
}
