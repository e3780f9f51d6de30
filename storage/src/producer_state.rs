//! Idempotent-producer state of one partition: per producer id, its epoch and its last five
//! batches, with Kafka's sequence rules.
//!
//! The table is rebuilt from the batch headers of the whole log when the log is opened
//! (snapshots at segment rolls are a later optimisation).

use std::collections::{HashMap, VecDeque};

use crate::batch::{increment_sequence, BatchHeader};

/// How many recent batches are remembered per producer (Kafka's `NUM_BATCHES_TO_RETAIN`).
const BATCHES_TO_RETAIN: usize = 5;

/// Sequence numbers and offsets of one appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    /// Sequence of the first record.
    pub first_seq: i32,
    /// Sequence of the last record.
    pub last_seq: i32,
    /// Offset of the first record.
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
}

/// A producer's epoch and recent batches.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMetadata>,
}

/// A sequence-rule violation (each maps to a Kafka error code in the engine).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    /// The batch's epoch is older than the producer's current one (a fenced zombie).
    #[error("producer {producer_id} epoch {got} is older than the current epoch {current}")]
    InvalidProducerEpoch {
        /// The producer.
        producer_id: i64,
        /// Epoch known to the broker.
        current: i16,
        /// Epoch of the batch.
        got: i16,
    },
    /// The batch does not continue the producer's sequence.
    #[error("out of order sequence: expected {expected}, got {got}")]
    OutOfOrderSequence {
        /// Sequence the broker expected.
        expected: i32,
        /// First sequence of the batch.
        got: i32,
    },
}

/// Per-producer entries staged by one append before it is committed; checks of later batches
/// of the same request see the earlier ones.
#[derive(Debug, Default)]
pub struct ProducerStage {
    entries: HashMap<i64, ProducerEntry>,
}

/// The idempotent-producer state of a partition.
#[derive(Debug, Default)]
pub struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStateTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of producers known.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether no producer is known.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Epoch and last batch of a producer.
    pub fn last_batch(&self, producer_id: i64) -> Option<(i16, BatchMetadata)> {
        let entry = self.producers.get(&producer_id)?;
        entry.batches.back().map(|b| (entry.epoch, *b))
    }

    /// Each known producer's id with the last offset of its last batch: the batches the log
    /// cleaner must keep, even emptied, so that the state survives a reload.
    pub(crate) fn last_offsets(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.producers
            .iter()
            .filter_map(|(&pid, entry)| entry.batches.back().map(|b| (pid, b.last_offset)))
    }

    /// Checks a batch (to be written at `base_offset`) against the producer's state as staged so
    /// far, and stages it. Returns `Ok(Some(original))` for a duplicate of a recent batch, which
    /// must not be written again.
    pub fn check_and_stage(
        &self,
        stage: &mut ProducerStage,
        header: &BatchHeader,
        base_offset: i64,
    ) -> Result<Option<BatchMetadata>, ProducerError> {
        let pid = header.producer_id;
        debug_assert!(pid >= 0);
        let current = stage
            .entries
            .get(&pid)
            .or_else(|| self.producers.get(&pid))
            .cloned();
        let (first_seq, last_seq) = (header.base_sequence, header.last_sequence());
        if let Some(entry) = &current {
            if header.producer_epoch < entry.epoch {
                return Err(ProducerError::InvalidProducerEpoch {
                    producer_id: pid,
                    current: entry.epoch,
                    got: header.producer_epoch,
                });
            }
            if header.producer_epoch == entry.epoch {
                if let Some(dup) = entry
                    .batches
                    .iter()
                    .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
                {
                    return Ok(Some(*dup));
                }
                if let Some(last) = entry.batches.back() {
                    let expected = increment_sequence(last.last_seq, 1);
                    if first_seq != expected {
                        return Err(ProducerError::OutOfOrderSequence {
                            expected,
                            got: first_seq,
                        });
                    }
                }
            } else if first_seq != 0 {
                return Err(ProducerError::OutOfOrderSequence {
                    expected: 0,
                    got: first_seq,
                });
            }
        }
        let meta = BatchMetadata {
            first_seq,
            last_seq,
            base_offset,
            last_offset: base_offset + i64::from(header.last_offset_delta),
        };
        let mut entry = match current {
            Some(e) if e.epoch == header.producer_epoch => e,
            _ => ProducerEntry {
                epoch: header.producer_epoch,
                batches: VecDeque::new(),
            },
        };
        if entry.batches.len() == BATCHES_TO_RETAIN {
            entry.batches.pop_front();
        }
        entry.batches.push_back(meta);
        stage.entries.insert(pid, entry);
        Ok(None)
    }

    /// Makes a stage's entries current (after its batches were written).
    pub fn commit(&mut self, stage: ProducerStage) {
        self.producers.extend(stage.entries);
    }

    /// Forgets every producer (the log restarts empty).
    pub(crate) fn clear(&mut self) {
        self.producers.clear();
    }

    /// Forgets the batches that end at or after `offset` (the log was truncated there, Kafka's
    /// `truncateAndReload` without snapshots). A producer that keeps some batches keeps their
    /// epoch: they are its latest batches below `offset`. A producer left with none is removed,
    /// and returned: its state below `offset` must be read again from the log
    /// ([`ProducerTailScan`]).
    pub(crate) fn truncate_from(&mut self, offset: i64) -> Vec<i64> {
        let mut emptied = Vec::new();
        self.producers.retain(|&pid, entry| {
            entry.batches.retain(|b| b.last_offset < offset);
            if entry.batches.is_empty() {
                emptied.push(pid);
            }
            !entry.batches.is_empty()
        });
        emptied
    }

    /// Replays a batch read from the log (recovery): no checks, the log is the truth.
    pub fn replay(&mut self, header: &BatchHeader) {
        if header.producer_id < 0 {
            return;
        }
        let entry = self
            .producers
            .entry(header.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: header.producer_epoch,
                batches: VecDeque::new(),
            });
        if header.producer_epoch != entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == BATCHES_TO_RETAIN {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMetadata {
            first_seq: header.base_sequence,
            last_seq: header.last_sequence(),
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
        });
    }
}

/// Rebuilds the state of some producers from the batch headers of the log read backwards,
/// segment by segment from the newest, stopping as soon as every producer's state is known:
/// its latest batch gives its epoch, and its state is the run of batches of that epoch that
/// ends the log, at most the last [`BATCHES_TO_RETAIN`] of them (what [`ProducerStateTable::replay`]
/// of the whole log would leave). Reading stops early once each producer has that many
/// batches, or an older batch of another epoch; otherwise it goes back to the log start.
#[derive(Debug)]
pub(crate) struct ProducerTailScan {
    /// Per producer wanted: its epoch and latest batches found so far (oldest first), and
    /// whether they are complete.
    wanted: HashMap<i64, TailState>,
}

/// What a [`ProducerTailScan`] knows of one producer.
#[derive(Debug, Default)]
struct TailState {
    epoch: i16,
    batches: VecDeque<BatchMetadata>,
    complete: bool,
}

impl ProducerTailScan {
    /// A scan for the producers `pids`.
    pub(crate) fn new(pids: impl IntoIterator<Item = i64>) -> Self {
        ProducerTailScan {
            wanted: pids
                .into_iter()
                .map(|pid| (pid, TailState::default()))
                .collect(),
        }
    }

    /// Whether the batches of `producer_id` are still wanted.
    pub(crate) fn wants(&self, producer_id: i64) -> bool {
        self.wanted
            .get(&producer_id)
            .is_some_and(|state| !state.complete)
    }

    /// Whether every producer's state is known (no older segment needs reading).
    pub(crate) fn is_done(&self) -> bool {
        self.wanted.values().all(|state| state.complete)
    }

    /// Takes the headers of the wanted producers' batches in one segment, in log order; the
    /// segment is older than every one fed before.
    pub(crate) fn feed_older_segment(&mut self, headers: &[BatchHeader]) {
        for header in headers.iter().rev() {
            let Some(state) = self.wanted.get_mut(&header.producer_id) else {
                continue;
            };
            if state.complete {
                continue;
            }
            if state.batches.is_empty() {
                state.epoch = header.producer_epoch;
            }
            if header.producer_epoch != state.epoch {
                state.complete = true;
                continue;
            }
            state.batches.push_front(BatchMetadata {
                first_seq: header.base_sequence,
                last_seq: header.last_sequence(),
                base_offset: header.base_offset,
                last_offset: header.last_offset(),
            });
            state.complete = state.batches.len() == BATCHES_TO_RETAIN;
        }
    }

    /// Puts the producers found in `table` (replacing their entries); those without any batch
    /// in the log are left out of it.
    pub(crate) fn finish(self, table: &mut ProducerStateTable) {
        for (pid, state) in self.wanted {
            debug_assert!(state.batches.len() <= BATCHES_TO_RETAIN);
            debug_assert!(state
                .batches
                .iter()
                .zip(state.batches.iter().skip(1))
                .all(|(a, b)| a.last_offset < b.base_offset));
            if state.batches.is_empty() {
                table.producers.remove(&pid);
            } else {
                table.producers.insert(
                    pid,
                    ProducerEntry {
                        epoch: state.epoch,
                        batches: state.batches,
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, count: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: count,
        }
    }

    fn append(
        t: &mut ProducerStateTable,
        h: &BatchHeader,
        at: i64,
    ) -> Result<Option<BatchMetadata>, ProducerError> {
        let mut stage = ProducerStage::default();
        let r = t.check_and_stage(&mut stage, h, at)?;
        t.commit(stage);
        Ok(r)
    }

    #[test]
    fn sequence_rules() {
        let mut t = ProducerStateTable::new();
        assert_eq!(
            append(&mut t, &header(7, 0, 5, 3), 0),
            Ok(None),
            "unknown producer: any seq"
        );
        assert_eq!(append(&mut t, &header(7, 0, 8, 2), 3), Ok(None));
        let dup = append(&mut t, &header(7, 0, 5, 3), 99).unwrap().unwrap();
        assert_eq!((dup.base_offset, dup.last_offset), (0, 2));
        assert_eq!(
            append(&mut t, &header(7, 0, 11, 1), 5),
            Err(ProducerError::OutOfOrderSequence {
                expected: 10,
                got: 11
            })
        );
        assert_eq!(
            append(&mut t, &header(7, 1, 3, 1), 5),
            Err(ProducerError::OutOfOrderSequence {
                expected: 0,
                got: 3
            })
        );
        assert_eq!(
            append(&mut t, &header(7, 1, 0, 1), 5),
            Ok(None),
            "epoch bump"
        );
        assert!(matches!(
            append(&mut t, &header(7, 0, 10, 1), 6),
            Err(ProducerError::InvalidProducerEpoch {
                current: 1,
                got: 0,
                ..
            })
        ));
        assert_eq!(t.last_batch(7).map(|b| b.0), Some(1));
    }

    #[test]
    fn wraps_and_keeps_five_batches() {
        let mut t = ProducerStateTable::new();
        append(&mut t, &header(1, 0, i32::MAX - 1, 2), 0).unwrap();
        assert_eq!(
            append(&mut t, &header(1, 0, 0, 1), 2),
            Ok(None),
            "wraps to 0"
        );
        for i in 1..6 {
            append(&mut t, &header(1, 0, i, 1), 2 + i64::from(i)).unwrap();
        }
        assert_eq!(
            append(&mut t, &header(1, 0, 0, 1), 50),
            Err(ProducerError::OutOfOrderSequence {
                expected: 6,
                got: 0
            }),
            "oldest batch forgotten"
        );
        assert!(append(&mut t, &header(1, 0, 5, 1), 50).unwrap().is_some());
    }

    /// Headers of batches given as (producer id, epoch, base sequence, record count), laid out
    /// back to back from offset 0.
    fn layout(batches: &[(i64, i16, i32, i32)]) -> Vec<BatchHeader> {
        let mut next = 0;
        batches
            .iter()
            .map(|&(pid, epoch, seq, count)| {
                let mut h = header(pid, epoch, seq, count);
                h.base_offset = next;
                next = h.next_offset();
                h
            })
            .collect()
    }

    #[test]
    fn truncation_and_tail_scan_give_what_a_replay_of_the_kept_log_gives() {
        let headers = layout(&[
            (1, 0, 0, 2),
            (2, 3, 0, 1),
            (1, 0, 2, 1),
            (1, 1, 0, 1),
            (1, 1, 1, 1),
            (2, 3, 1, 1),
            (3, 0, 0, 1),
            (1, 1, 2, 3),
            (2, 3, 2, 1),
            (1, 1, 5, 1),
            (1, 1, 6, 1),
            (1, 1, 7, 1),
            (1, 1, 8, 1),
        ]);
        // Two "segments", then truncations at every batch boundary.
        let (older, newer) = headers.split_at(6);
        for cut in 0..=headers.len() {
            let offset = headers.get(cut).map_or(i64::MAX, |h| h.base_offset);
            let mut table = ProducerStateTable::new();
            headers.iter().for_each(|h| table.replay(h));
            let emptied = table.truncate_from(offset);
            let mut scan = ProducerTailScan::new(emptied);
            for segment in [newer, older] {
                if scan.is_done() {
                    break;
                }
                let kept: Vec<BatchHeader> = segment
                    .iter()
                    .filter(|h| h.base_offset < offset && scan.wants(h.producer_id))
                    .copied()
                    .collect();
                scan.feed_older_segment(&kept);
            }
            scan.finish(&mut table);
            let mut expected = ProducerStateTable::new();
            headers[..cut].iter().for_each(|h| expected.replay(h));
            // A producer that kept some batches keeps fewer than a replay remembers: the
            // ones it has are its latest, with their epoch.
            assert_eq!(table.len(), expected.len(), "cut at batch {cut}");
            for (pid, entry) in &expected.producers {
                let got = &table.producers[pid];
                assert_eq!(got.epoch, entry.epoch, "cut {cut} pid {pid}");
                let tail = entry.batches.len() - got.batches.len();
                assert_eq!(
                    got.batches.iter().collect::<Vec<_>>(),
                    entry.batches.iter().skip(tail).collect::<Vec<_>>(),
                    "cut {cut} pid {pid}"
                );
            }
        }
    }

    #[test]
    fn staged_batches_are_seen_and_replay_rebuilds() {
        let t = ProducerStateTable::new();
        let mut stage = ProducerStage::default();
        t.check_and_stage(&mut stage, &header(3, 0, 0, 2), 0)
            .unwrap();
        assert!(t
            .check_and_stage(&mut stage, &header(3, 0, 3, 1), 2)
            .is_err());
        assert!(t.is_empty(), "nothing committed yet");
        let mut replayed = ProducerStateTable::new();
        let mut h = header(3, 0, 0, 2);
        replayed.replay(&h);
        h.base_offset = 2;
        h.base_sequence = 2;
        replayed.replay(&h);
        assert_eq!(replayed.last_batch(3).unwrap().1.last_offset, 3);
    }
}
