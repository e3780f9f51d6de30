//! Tests of the leader-side rules: one per rule, then a seeded random walk that checks the
//! invariants over long fetch sequences.

use super::*;
use futures::task::noop_waker_ref;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

const LEADER: i32 = 1000;
const F1: i32 = 2000;
const F2: i32 = 3000;
const LAG: i64 = LeaderConfig::DEFAULT_REPLICA_LAG_TIME_MAX_MS;
/// A wall clock far from zero, as Kafka's are.
const T0: i64 = 1_700_000_000_000;
const BROKER_EPOCH: i64 = 7;

fn state(isr: &[i32]) -> LeaderAndIsr {
    LeaderAndIsr {
        leader: LEADER,
        replicas: vec![LEADER, F1, F2],
        isr: isr.to_vec(),
        leader_epoch: 5,
        partition_epoch: 10,
    }
}

fn config(min_insync_replicas: usize) -> LeaderConfig {
    LeaderConfig {
        replica_lag_time_max_ms: LAG,
        min_insync_replicas,
    }
}

fn live_broker() -> FollowerBrokerState {
    FollowerBrokerState {
        broker_epoch: BROKER_EPOCH,
        fenced: false,
        in_controlled_shutdown: false,
    }
}

/// A leader of `state(isr)` with every follower's broker registered and live.
fn tracker(isr: &[i32], leader_log_end: i64, high_watermark: i64) -> IsrTracker {
    tracker_with(isr, leader_log_end, high_watermark, config(1))
}

fn tracker_with(
    isr: &[i32],
    leader_log_end: i64,
    high_watermark: i64,
    config: LeaderConfig,
) -> IsrTracker {
    let mut tracker = IsrTracker::new(&state(isr), leader_log_end, high_watermark, config, T0)
        .expect("a valid partition state");
    for follower in [F1, F2] {
        tracker.update_follower_broker(follower, Some(live_broker()), T0);
    }
    tracker
}

fn fetch_at(replica_id: i32, fetch_offset: i64, leader_log_end: i64, now_ms: i64) -> FollowerFetch {
    FollowerFetch {
        replica_id,
        broker_epoch: BROKER_EPOCH,
        fetch_offset,
        leader_log_end,
        now_ms,
    }
}

/// Records a fetch that the test expects to be accepted.
fn fetch(tracker: &mut IsrTracker, replica_id: i32, fetch_offset: i64, now_ms: i64) -> FetchUpdate {
    let leader_log_end = tracker.leader_log_end();
    tracker
        .record_follower_fetch(&fetch_at(replica_id, fetch_offset, leader_log_end, now_ms))
        .expect("an accepted fetch")
}

fn ids(members: &[IsrMember]) -> Vec<i32> {
    members.iter().map(|member| member.replica_id).collect()
}

#[test]
fn high_watermark_of_a_single_replica_is_its_log_end() {
    assert_eq!(high_watermark(42, &[]), 42);
}

#[test]
fn high_watermark_is_the_isr_minimum() {
    assert_eq!(high_watermark(42, &[40, 41]), 40);
    assert_eq!(high_watermark(42, &[50]), 42);
}

#[test]
fn new_leader_keeps_its_high_watermark_until_every_isr_follower_fetched() {
    let mut tracker = tracker(&[LEADER, F1, F2], 100, 90);
    assert_eq!(tracker.high_watermark(), 90);
    assert_eq!(tracker.leader_epoch_start_offset(), 100);
    let update = fetch(&mut tracker, F1, 100, T0 + 1);
    assert_eq!(update.new_high_watermark, None);
    assert_eq!(tracker.high_watermark(), 90);
    let update = fetch(&mut tracker, F2, 95, T0 + 2);
    assert_eq!(update.new_high_watermark, Some(95));
    assert_eq!(update.isr_expansion, None);
}

#[test]
fn isr_of_the_leader_alone_follows_its_appends() {
    let mut tracker = tracker(&[LEADER], 10, 10);
    assert_eq!(tracker.on_leader_append(15, T0), Some(15));
    assert_eq!(tracker.high_watermark(), 15);
    assert_eq!(tracker.on_leader_append(15, T0), None);
}

#[test]
fn a_stale_leader_log_end_is_ignored() {
    let mut tracker = tracker(&[LEADER], 10, 10);
    tracker.on_leader_append(20, T0);
    assert_eq!(tracker.on_leader_append(15, T0), None);
    assert_eq!(tracker.leader_log_end(), 20);
    assert_eq!(tracker.high_watermark(), 20);
}

#[test]
fn high_watermark_waits_for_a_lagging_isr_follower() {
    let mut tracker = tracker(&[LEADER, F1, F2], 100, 100);
    tracker.on_leader_append(200, T0 + 1);
    fetch(&mut tracker, F1, 200, T0 + 2);
    fetch(&mut tracker, F2, 150, T0 + 3);
    assert_eq!(tracker.high_watermark(), 150);
    tracker.on_leader_append(300, T0 + 4);
    fetch(&mut tracker, F1, 300, T0 + 5);
    assert_eq!(tracker.high_watermark(), 150);
    assert_eq!(
        fetch(&mut tracker, F2, 260, T0 + 6).new_high_watermark,
        Some(260)
    );
}

#[test]
fn high_watermark_never_decreases() {
    let mut tracker = tracker(&[LEADER, F1], 100, 100);
    fetch(&mut tracker, F1, 100, T0 + 1);
    tracker.on_leader_append(120, T0 + 2);
    fetch(&mut tracker, F1, 120, T0 + 3);
    assert_eq!(tracker.high_watermark(), 120);
    // The follower truncated (say, it restarted): its log end drops, the watermark does not.
    let update = fetch(&mut tracker, F1, 110, T0 + 4);
    assert_eq!(update.new_high_watermark, None);
    assert_eq!(tracker.high_watermark(), 120);
}

#[test]
fn slow_follower_leaves_the_isr_after_the_lag_time_and_rejoins_once_caught_up() {
    let mut tracker = tracker(&[LEADER, F1, F2], 100, 100);
    fetch(&mut tracker, F1, 100, T0);
    fetch(&mut tracker, F2, 100, T0);
    assert_eq!(
        tracker.follower(F2).and_then(|f| f.last_caught_up_ms),
        Some(T0)
    );

    // Every second the leader appends 10 records; F1 keeps up, F2 fetches but stays 50 behind
    // the end it saw at its previous fetch, so it never catches up.
    let mut now = T0;
    let mut end = 100;
    while now < T0 + LAG {
        now += 1000;
        end += 10;
        tracker.on_leader_append(end, now);
        fetch(&mut tracker, F1, end, now);
        fetch(&mut tracker, F2, end - 60, now);
    }
    assert_eq!(now, T0 + LAG);
    assert!(
        tracker.out_of_sync_followers(now).is_empty(),
        "lag time not yet exceeded"
    );
    assert_eq!(tracker.high_watermark(), end - 60);
    assert_eq!(tracker.maybe_shrink_isr(now), None);

    now += 1;
    assert_eq!(tracker.out_of_sync_followers(now), vec![F2]);
    let shrink = tracker.maybe_shrink_isr(now).expect("a shrink proposal");
    assert_eq!(ids(&shrink.new_isr), vec![LEADER, F1]);
    assert_eq!(shrink.removed, vec![F2]);
    assert_eq!(shrink.partition_epoch, 10);
    // Until the controller commits the removal, F2 still holds the high watermark back.
    assert_eq!(tracker.maximal_isr(), &[LEADER, F1, F2]);
    assert_eq!(tracker.update_high_watermark(now), None);
    let committed = tracker
        .on_isr_committed(&[LEADER, F1], 11, now)
        .expect("a valid ISR");
    assert!(committed.applied);
    assert_eq!(committed.new_high_watermark, Some(end));
    assert_eq!(tracker.isr(), &[LEADER, F1]);

    // F2 catches up to the high watermark: it becomes a pending member at once.
    now += 1000;
    end += 10;
    tracker.on_leader_append(end, now);
    let update = fetch(&mut tracker, F2, end - 10, now);
    let expansion = update.isr_expansion.expect("an expansion proposal");
    assert_eq!(expansion.added, vec![F2]);
    assert_eq!(ids(&expansion.new_isr), vec![LEADER, F1, F2]);
    assert_eq!(expansion.new_isr[2].broker_epoch, BROKER_EPOCH);
    assert_eq!(expansion.partition_epoch, 11);
    tracker
        .on_isr_committed(&[LEADER, F1, F2], 12, now)
        .expect("a valid ISR");
    assert_eq!(tracker.isr(), &[LEADER, F1, F2]);
    assert!(tracker.out_of_sync_followers(now + LAG).contains(&F1));
}

#[test]
fn follower_that_reaches_the_previous_leader_end_stays_in_sync() {
    let mut tracker = tracker(&[LEADER, F1], 100, 100);
    let mut now = T0;
    let mut end = 100;
    fetch(&mut tracker, F1, end, now);
    // Produces arrive between every two fetches, so F1 is never at the end at fetch time, but
    // each fetch reaches the end of the previous one: F1 caught up at its previous fetch.
    for _ in 0..100 {
        let previous_end = end;
        now += 1000;
        end += 7;
        tracker.on_leader_append(end, now);
        fetch(&mut tracker, F1, previous_end, now);
        assert!(tracker.out_of_sync_followers(now + LAG - 1000).is_empty());
    }
    assert_eq!(
        tracker.follower(F1).and_then(|f| f.last_caught_up_ms),
        Some(now - 1000)
    );
}

#[test]
fn stuck_follower_leaves_the_isr_but_one_at_the_log_end_never_does() {
    let mut tracker = tracker(&[LEADER, F1, F2], 100, 100);
    fetch(&mut tracker, F1, 100, T0);
    fetch(&mut tracker, F2, 100, T0);
    // Nothing is produced for twice the lag time: F2, at the log end, is still in sync.
    assert!(tracker.out_of_sync_followers(T0 + 2 * LAG).is_empty());
    // Now records arrive and F1 stops fetching.
    tracker.on_leader_append(110, T0 + 2 * LAG);
    fetch(&mut tracker, F2, 110, T0 + 2 * LAG);
    assert_eq!(tracker.out_of_sync_followers(T0 + 2 * LAG), vec![F1]);
}

#[test]
fn high_watermark_waits_for_the_maximal_isr_while_an_expansion_is_in_flight() {
    let mut tracker = tracker(&[LEADER, F1], 100, 100);
    fetch(&mut tracker, F1, 100, T0);
    tracker.on_leader_append(150, T0 + 1);
    // F2's first fetch reaches the high watermark but not the leader's end.
    let update = fetch(&mut tracker, F2, 100, T0 + 2);
    let expansion = update.isr_expansion.expect("an expansion proposal");
    assert_eq!(expansion.added, vec![F2]);
    assert_eq!(tracker.isr(), &[LEADER, F1]);
    assert_eq!(tracker.maximal_isr(), &[LEADER, F1, F2]);
    // F1 reaches the end, but the pending member F2 holds the watermark at its log end.
    assert_eq!(
        fetch(&mut tracker, F1, 150, T0 + 3).new_high_watermark,
        None
    );
    assert_eq!(tracker.high_watermark(), 100);
    assert_eq!(
        fetch(&mut tracker, F2, 120, T0 + 4).new_high_watermark,
        Some(120)
    );
    // The controller refuses the change: F2 no longer holds the watermark back.
    assert_eq!(tracker.on_proposal_failed(T0 + 5), Some(150));
    assert_eq!(tracker.maximal_isr(), &[LEADER, F1]);
    assert_eq!(tracker.pending_proposal(), None);
}

#[test]
fn a_caught_up_eligible_follower_outside_the_isr_holds_the_watermark_for_the_lag_time() {
    let mut tracker = tracker(&[LEADER, F1], 100, 100);
    fetch(&mut tracker, F1, 100, T0);
    let update = fetch(&mut tracker, F2, 100, T0);
    assert!(update.isr_expansion.is_some());
    tracker.on_proposal_failed(T0);
    // F2 is caught up (it reached the end at T0) though not in the ISR.
    tracker.on_leader_append(130, T0 + 10);
    fetch(&mut tracker, F1, 130, T0 + 10);
    assert_eq!(tracker.high_watermark(), 100);
    assert_eq!(tracker.update_high_watermark(T0 + LAG), None);
    assert_eq!(tracker.update_high_watermark(T0 + LAG + 1), Some(130));
}

#[test]
fn an_ineligible_caught_up_follower_does_not_hold_the_watermark() {
    let mut tracker = tracker(&[LEADER, F1], 100, 100);
    fetch(&mut tracker, F1, 100, T0);
    fetch(&mut tracker, F2, 100, T0);
    tracker.on_proposal_failed(T0);
    tracker.on_leader_append(130, T0 + 10);
    fetch(&mut tracker, F1, 130, T0 + 10);
    assert_eq!(tracker.high_watermark(), 100);
    let fenced = FollowerBrokerState {
        fenced: true,
        ..live_broker()
    };
    assert_eq!(
        tracker.update_follower_broker(F2, Some(fenced), T0 + 11),
        Some(130)
    );
}

#[test]
fn a_follower_joins_only_once_past_the_leader_epoch_start() {
    // A new leader whose log ends at 100 with a high watermark of 80.
    let mut tracker = tracker(&[LEADER, F1], 100, 80);
    let update = fetch(&mut tracker, F2, 90, T0);
    assert_eq!(
        update.isr_expansion, None,
        "above the HW but before the epoch start"
    );
    assert!(tracker.followers_to_add().is_empty());
    assert_eq!(
        tracker.propose_isr(&[LEADER, F1, F2]),
        Err(IsrProposalError::NotInSync { replica_id: F2 })
    );
    let update = fetch(&mut tracker, F2, 100, T0 + 1);
    assert_eq!(update.isr_expansion.map(|p| p.added), Some(vec![F2]));
}

#[test]
fn followers_to_add_lists_in_sync_followers_outside_the_isr() {
    let mut tracker = tracker(&[LEADER], 100, 100);
    tracker.update_follower_broker(F1, None, T0);
    tracker.update_follower_broker(F2, None, T0);
    fetch(&mut tracker, F1, 100, T0);
    fetch(&mut tracker, F2, 100, T0);
    assert!(tracker.followers_to_add().is_empty(), "brokers unknown");
    tracker.update_follower_broker(F1, Some(live_broker()), T0);
    tracker.update_follower_broker(F2, Some(live_broker()), T0);
    assert_eq!(tracker.followers_to_add(), vec![F1, F2]);
    tracker.propose_isr(&[LEADER, F1]).expect("F1 may be added");
    assert!(
        tracker.followers_to_add().is_empty(),
        "a proposal is in flight"
    );
}

#[test]
fn only_live_brokers_with_their_registered_epoch_may_join() {
    let cases = [
        FollowerBrokerState {
            fenced: true,
            ..live_broker()
        },
        FollowerBrokerState {
            in_controlled_shutdown: true,
            ..live_broker()
        },
        FollowerBrokerState {
            broker_epoch: BROKER_EPOCH + 1,
            ..live_broker()
        },
    ];
    for broker in cases {
        let mut tracker = tracker(&[LEADER, F1], 100, 100);
        tracker.update_follower_broker(F2, Some(broker), T0);
        if broker.broker_epoch > BROKER_EPOCH {
            // A fetch with an older epoch than the registration is refused outright.
            let refused = tracker
                .record_follower_fetch(&fetch_at(F2, 100, 100, T0))
                .expect_err("a stale broker epoch");
            assert!(matches!(refused, LeaderError::StaleBrokerEpoch { .. }));
            // A fetch from this incarnation is accepted.
            let current = FollowerFetch {
                broker_epoch: BROKER_EPOCH + 1,
                ..fetch_at(F2, 100, 100, T0)
            };
            let update = tracker.record_follower_fetch(&current).expect("accepted");
            assert!(update.isr_expansion.is_some());
            continue;
        }
        let update = fetch(&mut tracker, F2, 100, T0);
        assert_eq!(update.isr_expansion, None, "{broker:?}");
        assert_eq!(
            tracker.propose_isr(&[LEADER, F1, F2]),
            Err(IsrProposalError::IneligibleReplica { replica_id: F2 })
        );
    }
}

#[test]
fn a_fetch_without_a_broker_epoch_is_eligible() {
    let mut tracker = tracker(&[LEADER, F1], 100, 100);
    let update = tracker
        .record_follower_fetch(&FollowerFetch {
            broker_epoch: -1,
            ..fetch_at(F2, 100, 100, T0)
        })
        .expect("accepted");
    let expansion = update.isr_expansion.expect("an expansion");
    assert_eq!(expansion.new_isr[2].broker_epoch, -1);
}

#[test]
fn fetches_from_strangers_or_beyond_the_log_end_are_refused() {
    let mut tracker = tracker(&[LEADER, F1, F2], 100, 100);
    assert_eq!(
        tracker.record_follower_fetch(&fetch_at(4000, 100, 100, T0)),
        Err(LeaderError::UnknownReplica { replica_id: 4000 })
    );
    assert_eq!(
        tracker.record_follower_fetch(&fetch_at(LEADER, 100, 100, T0)),
        Err(LeaderError::UnknownReplica { replica_id: LEADER })
    );
    assert!(matches!(
        tracker.record_follower_fetch(&fetch_at(F1, 101, 100, T0)),
        Err(LeaderError::FetchOffsetOutOfRange { .. })
    ));
    assert!(matches!(
        tracker.record_follower_fetch(&fetch_at(F1, -1, 100, T0)),
        Err(LeaderError::FetchOffsetOutOfRange { .. })
    ));
    assert_eq!(tracker.follower(F1).and_then(|f| f.log_end), None);
}

#[test]
fn a_fetch_served_before_a_later_append_keeps_the_newer_log_end() {
    let mut tracker = tracker(&[LEADER, F1], 100, 100);
    tracker.on_leader_append(120, T0);
    // The fetch read the log when it ended at 110.
    let update = tracker
        .record_follower_fetch(&fetch_at(F1, 110, 110, T0 + 1))
        .expect("accepted");
    assert_eq!(update.new_high_watermark, Some(110));
    assert_eq!(tracker.leader_log_end(), 120);
}

#[test]
fn one_isr_change_is_in_flight_at_a_time() {
    let mut tracker = tracker(&[LEADER, F1, F2], 100, 100);
    let proposal = tracker.propose_isr(&[LEADER, F1]).expect("a shrink");
    assert_eq!(tracker.pending_proposal(), Some(&proposal));
    assert_eq!(
        tracker.propose_isr(&[LEADER]),
        Err(IsrProposalError::InFlight)
    );
    assert!(tracker.out_of_sync_followers(T0 + 10 * LAG).is_empty());
    assert_eq!(tracker.maybe_shrink_isr(T0 + 10 * LAG), None);
    tracker.on_proposal_failed(T0);
    assert_eq!(tracker.out_of_sync_followers(T0 + 10 * LAG), vec![F1, F2]);
}

#[test]
fn invalid_proposals_are_refused() {
    let mut tracker = tracker(&[LEADER, F1], 100, 100);
    assert_eq!(
        tracker.propose_isr(&[F1]),
        Err(IsrProposalError::LeaderMissing { leader: LEADER })
    );
    assert_eq!(
        tracker.propose_isr(&[LEADER, 4000]),
        Err(IsrProposalError::NotAReplica { replica_id: 4000 })
    );
    assert_eq!(
        tracker.propose_isr(&[LEADER, F1, F1]),
        Err(IsrProposalError::NotAReplica { replica_id: F1 })
    );
    assert_eq!(
        tracker.propose_isr(&[F1, LEADER]),
        Err(IsrProposalError::Unchanged)
    );
    assert_eq!(
        tracker.propose_isr(&[LEADER, F1, F2]),
        Err(IsrProposalError::IneligibleReplica { replica_id: F2 }),
        "F2 never fetched"
    );
    assert_eq!(tracker.pending_proposal(), None);
}

#[test]
fn committed_isr_older_than_the_held_state_is_ignored() {
    let mut tracker = tracker(&[LEADER, F1, F2], 100, 100);
    tracker.propose_isr(&[LEADER, F1]).expect("a shrink");
    let stale = tracker.on_isr_committed(&[LEADER], 9, T0).expect("ignored");
    assert!(!stale.applied);
    assert!(tracker.pending_proposal().is_some());
    // The same partition epoch: the controller found nothing to change; the proposal ends.
    let same = tracker
        .on_isr_committed(&[LEADER, F1, F2], 10, T0)
        .expect("applied");
    assert!(same.applied);
    assert_eq!(tracker.pending_proposal(), None);
    assert_eq!(tracker.isr(), &[LEADER, F1, F2]);
}

#[test]
fn committed_isr_without_the_leader_or_with_strangers_is_refused() {
    let mut tracker = tracker(&[LEADER, F1], 100, 100);
    assert!(matches!(
        tracker.on_isr_committed(&[F1], 11, T0),
        Err(LeaderError::LeaderNotInIsr { .. })
    ));
    assert!(matches!(
        tracker.on_isr_committed(&[LEADER, 4000], 11, T0),
        Err(LeaderError::IsrNotInReplicas {
            replica_id: 4000,
            ..
        })
    ));
    assert_eq!(tracker.isr(), &[LEADER, F1]);
    assert_eq!(tracker.partition_epoch(), 10);
}

#[test]
fn acks_all_needs_min_insync_replicas_before_the_append() {
    let tracker = tracker_with(&[LEADER], 100, 100, config(2));
    assert_eq!(
        tracker.check_min_isr(),
        Err(NotEnoughReplicas {
            isr_size: 1,
            min_insync_replicas: 2
        })
    );
    assert!(tracker.is_under_min_isr());
    let tracker = tracker_with(&[LEADER, F1], 100, 100, config(2));
    assert_eq!(tracker.check_min_isr(), Ok(()));
    assert!(tracker.is_at_min_isr());
    assert!(tracker.is_under_replicated());
}

#[test]
fn min_insync_replicas_is_capped_at_the_replication_factor() {
    let single = LeaderAndIsr {
        leader: LEADER,
        replicas: vec![LEADER],
        isr: vec![LEADER],
        leader_epoch: 0,
        partition_epoch: 0,
    };
    let mut tracker = IsrTracker::new(&single, 10, 10, config(3), T0).expect("valid");
    assert_eq!(tracker.effective_min_isr(), 1);
    assert_eq!(tracker.check_min_isr(), Ok(()));
    assert_eq!(tracker.on_leader_append(12, T0), Some(12));
    assert!(!tracker.is_under_replicated());
}

#[test]
fn high_watermark_stays_while_the_isr_is_under_min_insync_replicas() {
    let mut tracker = tracker_with(&[LEADER], 100, 100, config(2));
    // acks=1 appends still happen, but the watermark waits for a second in-sync replica.
    assert_eq!(tracker.on_leader_append(120, T0), None);
    let update = fetch(&mut tracker, F1, 100, T0 + 1);
    assert!(update.isr_expansion.is_some());
    assert_eq!(tracker.high_watermark(), 100);
    fetch(&mut tracker, F1, 120, T0 + 2);
    let committed = tracker
        .on_isr_committed(&[LEADER, F1], 11, T0 + 3)
        .expect("applied");
    assert_eq!(committed.new_high_watermark, Some(120));
    // Lowering min.insync.replicas lets it move alone again.
    tracker.on_leader_append(130, T0 + 4);
    tracker
        .on_isr_committed(&[LEADER], 12, T0 + 4)
        .expect("applied");
    assert_eq!(tracker.high_watermark(), 120);
    assert_eq!(tracker.set_config(config(1), T0 + 5), None);
    // F1, out of the ISR but caught up at T0 + 2, holds it for the lag time.
    assert_eq!(tracker.update_high_watermark(T0 + 2 + LAG), None);
    assert_eq!(tracker.update_high_watermark(T0 + 2 + LAG + 1), Some(130));
}

#[test]
fn acks_all_fails_after_the_append_when_the_isr_shrank_below_min() {
    let mut tracker = tracker_with(&[LEADER, F1, F2], 100, 100, config(2));
    assert_eq!(tracker.ack_outcome(), Ok(()));
    tracker
        .on_isr_committed(&[LEADER, F1], 11, T0)
        .expect("applied");
    assert_eq!(tracker.ack_outcome(), Ok(()));
    tracker
        .on_isr_committed(&[LEADER], 12, T0)
        .expect("applied");
    assert_eq!(
        tracker.ack_outcome(),
        Err(AckError::NotEnoughReplicasAfterAppend)
    );
    // A pending addition counts: the maximal ISR is what the records must reach.
    fetch(&mut tracker, F1, 100, T0 + 1);
    assert_eq!(tracker.maximal_isr(), &[LEADER, F1]);
    assert_eq!(tracker.ack_outcome(), Ok(()));
}

#[test]
fn a_new_leader_epoch_restarts_the_epoch_and_the_caught_up_times() {
    let mut tracker = tracker(&[LEADER, F1, F2], 100, 100);
    fetch(&mut tracker, F1, 100, T0);
    fetch(&mut tracker, F2, 100, T0);
    tracker.on_leader_append(140, T0 + 1);
    tracker.propose_isr(&[LEADER, F1]).expect("a shrink");
    let reelected = LeaderAndIsr {
        leader_epoch: 6,
        partition_epoch: 12,
        isr: vec![LEADER, F1],
        ..state(&[])
    };
    let now = T0 + 5 * LAG;
    let update = tracker
        .on_partition_state(&reelected, 150, now)
        .expect("applied");
    assert!(update.applied);
    assert_eq!(tracker.leader_epoch(), 6);
    assert_eq!(tracker.leader_epoch_start_offset(), 150);
    assert_eq!(tracker.pending_proposal(), None);
    let f1 = tracker.follower(F1).copied().expect("a follower");
    assert_eq!(f1.log_end, Some(100), "kept across a re-election");
    assert_eq!(f1.last_caught_up_ms, Some(now));
    assert_eq!(f1.last_fetch_leader_log_end, Some(150));
    assert_eq!(tracker.follower(F2).and_then(|f| f.last_caught_up_ms), None);
    // An ISR member has the lag time from the new epoch before it is out of sync.
    assert!(tracker.out_of_sync_followers(now + LAG).is_empty());
    assert_eq!(tracker.out_of_sync_followers(now + LAG + 1), vec![F1]);
    // F2 at 140 has passed the HW but not the new epoch's start.
    assert_eq!(fetch(&mut tracker, F2, 140, now + 1).isr_expansion, None);
}

#[test]
fn partition_state_changes_the_replica_set() {
    let mut tracker = tracker(&[LEADER, F1, F2], 100, 100);
    let reassigned = LeaderAndIsr {
        replicas: vec![LEADER, F1, 4000],
        isr: vec![LEADER, F1],
        partition_epoch: 11,
        ..state(&[])
    };
    tracker
        .on_partition_state(&reassigned, 100, T0)
        .expect("applied");
    assert_eq!(tracker.replicas(), &[LEADER, F1, 4000]);
    assert!(tracker.follower(F2).is_none());
    assert_eq!(tracker.follower(4000), Some(&FollowerProgress::default()));
    assert_eq!(tracker.leader_epoch_start_offset(), 100);
    assert!(matches!(
        tracker.record_follower_fetch(&fetch_at(F2, 100, 100, T0)),
        Err(LeaderError::UnknownReplica { .. })
    ));
}

#[test]
fn partition_state_naming_another_leader_or_older_is_not_applied() {
    let mut tracker = tracker(&[LEADER, F1, F2], 100, 100);
    let moved = LeaderAndIsr {
        leader: F1,
        leader_epoch: 6,
        partition_epoch: 11,
        ..state(&[LEADER, F1, F2])
    };
    assert_eq!(
        tracker.on_partition_state(&moved, 100, T0),
        Err(LeaderError::NotLeader {
            local: LEADER,
            leader: F1
        })
    );
    let older = LeaderAndIsr {
        partition_epoch: 9,
        ..state(&[LEADER])
    };
    let update = tracker
        .on_partition_state(&older, 100, T0)
        .expect("ignored");
    assert!(!update.applied);
    assert_eq!(tracker.isr(), &[LEADER, F1, F2]);
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "leader epoch went backwards")]
fn a_leader_epoch_going_backwards_breaks_an_invariant() {
    let mut tracker = tracker(&[LEADER, F1, F2], 100, 100);
    let backwards = LeaderAndIsr {
        leader_epoch: 4,
        partition_epoch: 11,
        ..state(&[LEADER, F1, F2])
    };
    let _ = tracker.on_partition_state(&backwards, 100, T0);
}

#[test]
fn invalid_partition_states_cannot_be_led() {
    let no_leader = state(&[F1, F2]);
    assert!(matches!(
        IsrTracker::new(&no_leader, 10, 10, config(1), T0),
        Err(LeaderError::LeaderNotInIsr { .. })
    ));
    let duplicate = LeaderAndIsr {
        replicas: vec![LEADER, F1, F1],
        ..state(&[LEADER])
    };
    assert_eq!(
        IsrTracker::new(&duplicate, 10, 10, config(1), T0).err(),
        Some(LeaderError::DuplicateReplica { replica_id: F1 })
    );
    assert_eq!(
        IsrTracker::new(&state(&[LEADER]), 10, 11, config(1), T0).err(),
        Some(LeaderError::HighWatermarkAboveLogEnd {
            high_watermark: 11,
            leader_log_end: 10
        })
    );
}

/// How an acks=all waiter ended.
type AckOutcome = Result<(), AckError>;

/// xorshift64*: a seeded generator, enough to vary fetch sequences reproducibly.
struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..bound`.
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A random walk of appends, follower fetches (each follower monotone, some stalling), ISR
/// checks, controller answers and fencings, checking after every step that the high watermark
/// never decreases, never passes the leader's log end or any maximal-ISR member's log end, and
/// that the purgatory has completed exactly the waiters it covers. Then everyone catches up and
/// the ISR must grow back to every replica with the high watermark at the log end.
#[test]
fn random_fetch_sequences_keep_the_invariants() {
    const FOLLOWERS: [i32; 3] = [2000, 3000, 4000];
    for seed in 1..=40u64 {
        let mut rng = Prng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let replicas: Vec<i32> = std::iter::once(LEADER).chain(FOLLOWERS).collect();
        let min_isr = 1 + rng.below(3) as usize;
        let state = LeaderAndIsr {
            leader: LEADER,
            replicas: replicas.clone(),
            isr: replicas.clone(),
            leader_epoch: 1,
            partition_epoch: 1,
        };
        let start = rng.below(50) as i64;
        let mut now = T0;
        let mut tracker =
            IsrTracker::new(&state, start, start, config(min_isr), now).expect("valid");
        for follower in FOLLOWERS {
            tracker.update_follower_broker(follower, Some(live_broker()), now);
        }
        let purgatory = AckPurgatory::new(tracker.high_watermark());
        // (required offset, the waiter, its outcome once it completed)
        let mut waits: Vec<(i64, AckWait, Option<AckOutcome>)> = Vec::new();
        let mut follower_log_end = [start; 3];
        let mut stalled_until = [now; 3];
        let mut partition_epoch = 1;
        let mut previous_hw = tracker.high_watermark();

        let notify = |hw: Option<i64>, tracker: &IsrTracker| {
            if let Some(hw) = hw {
                purgatory.on_high_watermark(hw, tracker.ack_outcome());
            }
        };

        for step in 0..3000 {
            now += rng.below(1500) as i64;
            match rng.below(10) {
                0..=2 => {
                    let end = tracker.leader_log_end() + 1 + rng.below(20) as i64;
                    let moved = tracker.on_leader_append(end, now);
                    notify(moved, &tracker);
                    if rng.chance(30) {
                        waits.push((end, purgatory.wait(end), None));
                    }
                }
                3..=6 => {
                    let index = rng.below(3) as usize;
                    if rng.chance(2) {
                        stalled_until[index] = now + rng.below(3 * LAG as u64) as i64;
                    }
                    if now >= stalled_until[index] {
                        let end = tracker.leader_log_end();
                        let behind = end - follower_log_end[index];
                        let offset = follower_log_end[index]
                            + if behind == 0 {
                                0
                            } else {
                                rng.below(behind as u64 + 1) as i64
                            };
                        follower_log_end[index] = offset;
                        let update = tracker
                            .record_follower_fetch(&FollowerFetch {
                                replica_id: FOLLOWERS[index],
                                broker_epoch: BROKER_EPOCH,
                                fetch_offset: offset,
                                leader_log_end: end,
                                now_ms: now,
                            })
                            .expect("a fetch in range");
                        notify(update.new_high_watermark, &tracker);
                    }
                }
                7 => {
                    tracker.maybe_shrink_isr(now);
                    let moved = tracker.update_high_watermark(now);
                    notify(moved, &tracker);
                }
                8 => {
                    if let Some(proposal) = tracker.pending_proposal().cloned() {
                        let moved = if rng.chance(75) {
                            partition_epoch += 1;
                            tracker
                                .on_isr_committed(&ids(&proposal.new_isr), partition_epoch, now)
                                .expect("a valid ISR")
                                .new_high_watermark
                        } else {
                            tracker.on_proposal_failed(now)
                        };
                        notify(moved, &tracker);
                    }
                }
                _ => {
                    let index = rng.below(3) as usize;
                    let broker = FollowerBrokerState {
                        fenced: rng.chance(30),
                        ..live_broker()
                    };
                    let moved = tracker.update_follower_broker(FOLLOWERS[index], Some(broker), now);
                    notify(moved, &tracker);
                }
            }

            let hw = tracker.high_watermark();
            let context = format!("seed {seed} step {step}");
            assert!(hw >= previous_hw, "{context}: HW went back");
            assert!(
                hw <= tracker.leader_log_end(),
                "{context}: HW past the log end"
            );
            assert!(
                tracker.isr().contains(&LEADER),
                "{context}: leader left the ISR"
            );
            for (index, follower) in FOLLOWERS.iter().enumerate() {
                let progress = tracker.follower(*follower).expect("a follower");
                if tracker.maximal_isr().contains(follower) && progress.log_end.is_some() {
                    assert!(
                        hw <= follower_log_end[index],
                        "{context}: HW {hw} past ISR member {follower} at {}",
                        follower_log_end[index]
                    );
                }
            }
            if tracker.is_under_min_isr() {
                assert_eq!(hw, previous_hw, "{context}: HW moved under min ISR");
            }
            for (required, wait, outcome) in &mut waits {
                if outcome.is_none() {
                    if let Poll::Ready(done) =
                        Pin::new(wait).poll(&mut Context::from_waker(noop_waker_ref()))
                    {
                        *outcome = Some(done);
                    }
                }
                assert_eq!(
                    outcome.is_some(),
                    *required <= hw,
                    "{context}: waiter for {required} against HW {hw}"
                );
            }
            previous_hw = hw;
        }

        // Everyone is unfenced and catches up; the controller commits every proposal.
        for follower in FOLLOWERS {
            tracker.update_follower_broker(follower, Some(live_broker()), now);
        }
        let end = tracker.leader_log_end();
        for _ in 0..4 {
            now += 100;
            for follower in FOLLOWERS {
                tracker
                    .record_follower_fetch(&fetch_at(follower, end, end, now))
                    .expect("a fetch in range");
                if let Some(proposal) = tracker.pending_proposal().cloned() {
                    partition_epoch += 1;
                    tracker
                        .on_isr_committed(&ids(&proposal.new_isr), partition_epoch, now)
                        .expect("a valid ISR");
                }
            }
        }
        let mut isr = tracker.isr().to_vec();
        isr.sort_unstable();
        assert_eq!(isr, replicas, "seed {seed}: the ISR grew back");
        assert_eq!(tracker.high_watermark(), end, "seed {seed}: HW at the end");
        purgatory.on_high_watermark(tracker.high_watermark(), tracker.ack_outcome());
        for (required, mut wait, outcome) in waits {
            let done = outcome.or_else(|| {
                match Pin::new(&mut wait).poll(&mut Context::from_waker(noop_waker_ref())) {
                    Poll::Ready(done) => Some(done),
                    Poll::Pending => None,
                }
            });
            assert!(
                done.is_some(),
                "seed {seed}: waiter for {required} never completed"
            );
        }
        assert_eq!(purgatory.waiting(), 0);
    }
}
