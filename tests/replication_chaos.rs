//! Issue 12's acceptance, Jepsen style: three brokers with two shards each, a topic with
//! replication factor 3 and `min.insync.replicas=2`, an idempotent acks=all producer and a
//! consumer group writing and reading throughout, and faults (see `tests/common/chaos/`):
//!
//! * chase the leader: `kill -9` the broker leading the most partitions, restart it, again and
//!   again (`SLUICE_CHAOS_LEADER_KILLS`, default 3), then the active controller
//!   (`SLUICE_CHAOS_CONTROLLER_KILLS`, default 1);
//! * a paused leader: SIGSTOP the broker leading the most partitions for twice
//!   `broker.session.timeout.ms`, so that new leaders are elected while it still thinks it
//!   leads, then SIGCONT (`SLUICE_CHAOS_PAUSES`, default 1).
//!
//! After the faults, no acknowledged record may be lost or misplaced, none duplicated, every
//! partition contiguous, every record the consumer read still in the log, the consumer resumed
//! at its committed offsets after every failover, and every replica's segment files
//! byte-identical to the leader's up to the high watermark. The long run with 30 leader kills
//! and 10 controller kills is `tests/long/replication-chaos.sh`; the other `SLUICE_CHAOS_*`
//! variables are listed at `Scenario::from_env`.
//!
//! The checker's own tests (a lost record, a duplicate, a hole, a vanished read, a skipped or
//! forgotten commit, a divergent replica: each is detected) are in [`checker`].
#[path = "common/chaos/mod.rs"]
mod chaos;
mod common;

use chaos::{env_or, run, RunReport, Scenario};
use common::bounded;

/// Fails the test with the whole report unless the run found nothing wrong.
fn assert_clean(report: &RunReport) {
    let failures = report.failures();
    assert!(
        failures.is_empty(),
        "chaos run {} failed:\n  {}\n{report}",
        report.scenario.name,
        failures.join("\n  ")
    );
}

#[test]
fn chasing_the_leader_loses_and_duplicates_nothing() {
    let scenario = Scenario::from_env(
        "chase",
        env_or("SLUICE_CHAOS_LEADER_KILLS", 3),
        env_or("SLUICE_CHAOS_CONTROLLER_KILLS", 1),
        0,
    );
    bounded(scenario.time_limit(), move || {
        let (_cluster, report) = run(scenario);
        assert_clean(&report);
    })
}

#[test]
fn paused_leader_is_replaced_and_truncates_its_tail() {
    let scenario = Scenario::from_env("pause", 0, 0, env_or("SLUICE_CHAOS_PAUSES", 1));
    bounded(scenario.time_limit(), move || {
        let (_cluster, report) = run(scenario);
        assert_clean(&report);
    })
}

/// The checks themselves, on made-up histories: each kind of anomaly is detected, and a clean
/// history passes.
mod checker {
    use crate::chaos::check::{self, Hole, OrderViolation};
    use crate::chaos::history::{Acked, ConsumerEvent, FailedDelivery, FinalLog, History};
    use crate::chaos::replica_logs::{
        compare_to_leader, divergent_batches, segment_batches, Divergence, LogBatch, ReplicaLog,
    };
    use crate::chaos::workload::id_in;
    use crate::common::group::payload;

    /// A final log of one partition holding ids `ids` at offsets 0.., HW at the end.
    fn log_of(ids: &[usize]) -> FinalLog {
        let mut log = FinalLog::with_bounds([(0, (0, ids.len() as i64))]);
        for (o, id) in ids.iter().enumerate() {
            log.insert(0, o as i64, Some(*id));
        }
        log
    }

    fn acked(id: usize, offset: i64) -> Acked {
        Acked {
            id,
            partition: 0,
            offset,
        }
    }

    fn read(epoch: u32, offset: i64, id: usize) -> ConsumerEvent {
        ConsumerEvent::Read {
            epoch,
            partition: 0,
            offset,
            id: Some(id),
        }
    }

    fn assigned(epoch: u32) -> ConsumerEvent {
        ConsumerEvent::Assigned {
            epoch,
            partitions: vec![0],
        }
    }

    fn commit(offset: i64, acknowledged: bool) -> ConsumerEvent {
        ConsumerEvent::Commit {
            partition: 0,
            offset,
            acknowledged,
        }
    }

    /// Three records acknowledged at offsets 0..3, read, committed, and read again by a second
    /// member from the commit.
    fn clean_history() -> History {
        History {
            acked: vec![acked(0, 0), acked(1, 1), acked(2, 2)],
            failed: vec![],
            sent: 3,
            consumer: vec![
                assigned(1),
                read(1, 0, 0),
                read(1, 1, 1),
                commit(2, true),
                read(1, 2, 2),
                assigned(2),
                read(2, 2, 2),
            ],
        }
    }

    #[test]
    fn a_clean_history_passes() {
        let report = check::check(&clean_history(), &log_of(&[0, 1, 2]));
        assert!(report.is_clean(), "{report}");
        assert_eq!(
            (report.acknowledged, report.reads, report.epochs),
            (3, 4, 2)
        );
        assert_eq!((report.unseen, report.indeterminate), (0, 0));
    }

    #[test]
    fn a_lost_record_is_detected() {
        let mut h = clean_history();
        h.acked.push(acked(3, 3));
        h.sent = 4;
        let report = check::check(&h, &log_of(&[0, 1, 2]));
        assert_eq!(report.lost, vec![acked(3, 3)], "{report}");
        assert_eq!(report.violations().len(), 1, "{report}");
    }

    #[test]
    fn a_failed_delivery_absent_from_the_log_is_not_lost() {
        let mut h = clean_history();
        h.failed.push(FailedDelivery {
            id: 3,
            partition: 0,
            error: "timed out".into(),
        });
        h.sent = 5;
        let report = check::check(&h, &log_of(&[0, 1, 2]));
        assert!(report.is_clean(), "{report}");
        assert_eq!((report.failed, report.indeterminate), (1, 1));
    }

    #[test]
    fn a_record_acknowledged_elsewhere_is_misplaced() {
        let mut h = clean_history();
        h.acked[2] = acked(2, 5);
        let report = check::check(&h, &log_of(&[0, 1, 2]));
        assert_eq!(report.misplaced.len(), 1, "{report}");
        assert_eq!(report.misplaced[0].found_at, vec![(0, 2)]);
        assert!(report.lost.is_empty());
    }

    #[test]
    fn an_acknowledgement_without_an_offset_only_needs_its_partition() {
        let mut h = clean_history();
        h.acked[2] = acked(2, -1001);
        let report = check::check(&h, &log_of(&[0, 1, 2]));
        assert!(report.misplaced.is_empty(), "{report}");
        assert!(report.lost.is_empty(), "{report}");
        let report = check::check(&h, &log_of(&[0, 1]));
        assert_eq!(report.lost.len(), 1, "{report}");
    }

    #[test]
    fn a_duplicate_is_detected() {
        let mut h = clean_history();
        h.sent = 4;
        let report = check::check(&h, &log_of(&[0, 1, 2, 1]));
        assert_eq!(
            report.duplicated,
            vec![(1, vec![(0, 1), (0, 3)])],
            "{report}"
        );
    }

    #[test]
    fn an_unknown_value_and_a_conflicting_read_are_detected() {
        let mut log = log_of(&[0, 1, 2, 9]);
        log.insert(0, 3, Some(8));
        let report = check::check(&clean_history(), &log);
        assert_eq!(report.unknown_values, vec![(0, 3)], "{report}");
        assert_eq!(report.conflicts, vec![(0, 3, Some(9), Some(8))]);
    }

    #[test]
    fn a_hole_is_detected() {
        let mut log = log_of(&[0, 1, 2]);
        log.partitions.get_mut(&0).unwrap().records.remove(&1);
        log.partitions.get_mut(&0).unwrap().end = 5;
        let holes = check::holes(&log);
        assert_eq!(
            holes,
            vec![
                Hole {
                    partition: 0,
                    from: 1,
                    to: 2
                },
                Hole {
                    partition: 0,
                    from: 3,
                    to: 5
                }
            ]
        );
        let mut h = clean_history();
        h.consumer.clear();
        let report = check::check(&h, &log);
        assert_eq!(report.missing_offsets(), 3, "{report}");
        assert_eq!(report.lost, vec![acked(1, 1)]);
    }

    #[test]
    fn a_vanished_read_is_detected() {
        let mut h = clean_history();
        h.consumer.push(read(2, 3, 3));
        h.sent = 4;
        let report = check::check(&h, &log_of(&[0, 1, 2]));
        assert_eq!(report.vanished.len(), 1, "{report}");
        assert_eq!(
            (report.vanished[0].offset, report.vanished[0].now),
            (3, None)
        );
        // Read at offset 1 as id 1, but the log now holds id 7 there.
        let report = check::check(&clean_history(), &log_of(&[0, 7, 2]));
        assert_eq!(report.vanished.len(), 1, "{report}");
        assert_eq!(report.vanished[0].now, Some(Some(7)));
    }

    #[test]
    fn consumer_reads_going_backwards_or_skipping_are_detected() {
        let mut h = clean_history();
        h.consumer = vec![assigned(1), read(1, 0, 0), read(1, 2, 2), read(1, 1, 1)];
        let (backwards, skips) = check::consumer_order(&h.consumer, &log_of(&[0, 1, 2]));
        let v = |previous, offset| OrderViolation {
            epoch: 1,
            partition: 0,
            previous,
            offset,
        };
        assert_eq!(skips, vec![v(0, 2)]);
        assert_eq!(backwards, vec![v(2, 1)]);
        // Re-reading from a commit in a new epoch is not going backwards.
        let (backwards, skips) =
            check::consumer_order(&clean_history().consumer, &log_of(&[0, 1, 2]));
        assert!(backwards.is_empty() && skips.is_empty());
    }

    #[test]
    fn resuming_past_or_before_the_commit_is_detected() {
        let log = log_of(&[0, 1, 2, 3]);
        let base = vec![assigned(1), read(1, 0, 0), read(1, 1, 1), commit(2, true)];
        let with = |tail: &[ConsumerEvent]| {
            let mut events = base.clone();
            events.extend_from_slice(tail);
            check::resume_points(&events, &log)
        };
        // Resumes past the commit: offset 2 skipped.
        let (skipped, rewound) = with(&[assigned(2), read(2, 3, 3)]);
        assert_eq!(skipped.len(), 1);
        assert_eq!((skipped[0].first, skipped[0].committed_high), (3, 2));
        assert!(rewound.is_empty());
        // Resumes before the commit: it was forgotten.
        let (skipped, rewound) = with(&[assigned(2), read(2, 0, 0)]);
        assert!(skipped.is_empty());
        assert_eq!((rewound[0].first, rewound[0].committed_low), (0, 2));
        // A commit of unknown outcome allows either.
        for first in [2, 3] {
            let (skipped, rewound) = with(&[
                commit(3, false),
                assigned(2),
                read(2, first, first as usize),
            ]);
            assert!(
                skipped.is_empty() && rewound.is_empty(),
                "resume at {first}"
            );
        }
        // Without any commit, the consumer starts at the log start.
        let (skipped, _) = check::resume_points(&[assigned(1), read(1, 1, 1)], &log);
        assert_eq!(skipped[0].committed_low, 0);
    }

    #[test]
    fn only_exact_payloads_count_as_records() {
        assert_eq!(id_in(Some(&payload(42))), Some(42));
        let mut bad = payload(42);
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(id_in(Some(&bad)), None);
        assert_eq!(id_in(None), None);
    }

    /// A v2 batch header (61 bytes) for offsets `base..base+count`, then `body`.
    fn batch(base: i64, count: i32, body: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&base.to_be_bytes());
        b.extend_from_slice(&(49 + body.len() as i32).to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
        b.push(2); // magic
        b.extend_from_slice(&0u32.to_be_bytes()); // crc
        b.extend_from_slice(&0i16.to_be_bytes()); // attributes
        b.extend_from_slice(&(count - 1).to_be_bytes()); // last offset delta
        b.extend_from_slice(&[0; 8 + 8 + 8 + 2 + 4]); // timestamps, producer id/epoch, sequence
        b.extend_from_slice(&count.to_be_bytes());
        b.extend_from_slice(body);
        b
    }

    /// A replica log of the batches `(base, count, body)`, as one segment with trailing zeroes.
    fn replica(batches: &[(i64, i32, &[u8])]) -> ReplicaLog {
        let mut segment: Vec<u8> = batches
            .iter()
            .flat_map(|(base, count, body)| batch(*base, *count, body))
            .collect();
        segment.extend_from_slice(&[0; 100]);
        ReplicaLog {
            batches: segment_batches(&segment),
        }
    }

    #[test]
    fn segments_are_walked_by_batch_length() {
        let log = replica(&[(0, 2, b"ab"), (2, 3, b"cde")]);
        let spans: Vec<(i64, i64, usize)> = log
            .batches
            .iter()
            .map(|b: &LogBatch| (b.base_offset, b.next_offset, b.bytes.len()))
            .collect();
        assert_eq!(spans, vec![(0, 2, 63), (2, 5, 64)]);
        assert_eq!(log.end(), Some(5));
    }

    #[test]
    fn identical_replicas_pass_up_to_the_high_watermark() {
        let leader = replica(&[(0, 2, b"ab"), (2, 3, b"cde"), (5, 1, b"f")]);
        // The follower has not fetched the batch at 5 yet: the HW is 5.
        let follower = replica(&[(0, 2, b"ab"), (2, 3, b"cde")]);
        assert_eq!(compare_to_leader(&leader, &follower, 5), None);
        // HW inside the second batch: the whole batch is compared.
        assert_eq!(compare_to_leader(&leader, &follower, 3), None);
        assert_eq!(compare_to_leader(&leader, &leader, 6), None);
        assert_eq!(compare_to_leader(&leader, &follower, 0), None);
    }

    #[test]
    fn a_divergent_replica_is_detected() {
        let leader = replica(&[(0, 2, b"ab"), (2, 3, b"cde"), (5, 1, b"f")]);
        let other_bytes = replica(&[(0, 2, b"ab"), (2, 3, b"cdX")]);
        assert!(matches!(
            compare_to_leader(&leader, &other_bytes, 5),
            Some(Divergence::Differs {
                offset: 2,
                first_byte: 63,
                ..
            })
        ));
        let other_bounds = replica(&[(0, 1, b"a"), (1, 4, b"bcde")]);
        assert!(matches!(
            compare_to_leader(&leader, &other_bounds, 5),
            Some(Divergence::Differs { offset: 0, .. })
        ));
        let short = replica(&[(0, 2, b"ab")]);
        assert_eq!(
            compare_to_leader(&leader, &short, 5),
            Some(Divergence::ReplicaShort {
                replica_end: Some(2),
                needed: 5
            })
        );
        assert_eq!(
            compare_to_leader(&leader, &ReplicaLog::default(), 1),
            Some(Divergence::ReplicaShort {
                replica_end: None,
                needed: 2
            })
        );
        assert_eq!(
            compare_to_leader(&short, &leader, 5),
            Some(Divergence::LeaderShort {
                leader_end: Some(2)
            })
        );
    }

    #[test]
    fn a_truncated_tail_is_counted() {
        let before = replica(&[(0, 2, b"ab"), (2, 3, b"old"), (5, 1, b"x")]);
        let after = replica(&[(0, 2, b"ab"), (2, 3, b"new")]);
        assert_eq!(divergent_batches(&before, &after), 2);
        assert_eq!(divergent_batches(&after, &after), 0);
    }
}
