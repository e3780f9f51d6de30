//! The follower's pure decisions about its log: where to truncate after the leader answers
//! OffsetForLeaderEpoch or a Fetch with a diverging epoch (KIP-101, KIP-279, KIP-320), where to
//! resume after OFFSET_OUT_OF_RANGE, and which high watermark to keep. No socket, no task:
//! each decision is a function of the leader's answer and the log's offsets and epochs.

use super::log::{FollowerLog, FollowerLogError};

/// Kafka's `UNDEFINED_EPOCH`: the leader knows no epoch for the request.
pub const UNDEFINED_EPOCH: i32 = -1;

/// Kafka's `UNDEFINED_EPOCH_OFFSET`: the leader knows no end offset for the request.
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// Where a follower truncates after the leader told it where an epoch ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Truncation {
    /// Truncate to `offset`: the log now agrees with the leader's below it, so fetching
    /// resumes from there.
    Complete {
        /// The offset to truncate to (a no-op at or above the log end).
        offset: i64,
    },
    /// The leader answered with an epoch this log does not have: truncate to `offset`, the end
    /// of the largest epoch below it that the log has, and ask the leader again about
    /// `next_epoch` (KIP-279). `next_epoch` is always below the epoch asked about before, so
    /// the exchange ends.
    Continue {
        /// The offset to truncate to.
        offset: i64,
        /// The epoch to ask the leader about next.
        next_epoch: i32,
    },
}

impl Truncation {
    /// The offset to truncate to.
    pub fn offset(&self) -> i64 {
        match *self {
            Truncation::Complete { offset } | Truncation::Continue { offset, .. } => offset,
        }
    }
}

/// The truncation for the leader's answer `(leader_epoch, leader_end_offset)` about the epoch
/// the follower asked for (Kafka's `AbstractFetcherThread.getOffsetTruncationState`):
///
/// * an undefined end offset (the leader has no epoch at or below the one asked, e.g. its log
///   start moved past it): truncate to the follower's high watermark, Kafka's fallback;
/// * a defined offset with an undefined epoch: truncate to that offset;
/// * an epoch the follower also has: truncate to the smaller of the two ends of that epoch
///   (the leader's and the follower's);
/// * an epoch the follower lacks (it has a smaller one below it): truncate to the end of the
///   follower's smaller epoch and ask again ([`Truncation::Continue`]);
/// * an epoch below every epoch the follower knows: truncate to the leader's offset.
///
/// The offset is never above the follower's log end offset.
pub fn truncation_for_epoch_end_offset(
    leader_epoch: i32,
    leader_end_offset: i64,
    log: &dyn FollowerLog,
) -> Truncation {
    let log_end = log.log_end_offset();
    if leader_end_offset == UNDEFINED_EPOCH_OFFSET {
        return Truncation::Complete {
            offset: log.high_watermark().min(log_end),
        };
    }
    if leader_epoch == UNDEFINED_EPOCH {
        return Truncation::Complete {
            offset: leader_end_offset.min(log_end),
        };
    }
    let (follower_epoch, follower_end) = log.end_offset_for_epoch(leader_epoch);
    if follower_end == UNDEFINED_EPOCH_OFFSET || follower_epoch == UNDEFINED_EPOCH {
        return Truncation::Complete {
            offset: leader_end_offset.min(log_end),
        };
    }
    if follower_epoch != leader_epoch {
        debug_assert!(
            follower_epoch < leader_epoch,
            "end_offset_for_epoch({leader_epoch}) answered a larger epoch {follower_epoch}"
        );
        return Truncation::Continue {
            offset: follower_end.min(log_end),
            next_epoch: follower_epoch,
        };
    }
    Truncation::Complete {
        offset: follower_end.min(leader_end_offset).min(log_end),
    }
}

/// Applies a truncation to `offset` (Kafka's `UnifiedLog.truncateTo`): nothing at or above
/// the log end, a full truncation restarting at `offset` below the log start, and an ordinary
/// truncation in between. Returns whether the log changed.
pub fn truncate_log(log: &dyn FollowerLog, offset: i64) -> Result<bool, FollowerLogError> {
    let log_end = log.log_end_offset();
    if offset >= log_end {
        return Ok(false);
    }
    if offset < log.log_start_offset() {
        log.truncate_fully_and_start_at(offset)?;
        debug_assert_eq!(
            (log.log_start_offset(), log.log_end_offset()),
            (offset, offset),
            "a full truncation restarts the log at the offset"
        );
    } else {
        log.truncate_to(offset)?;
        debug_assert_eq!(
            log.log_end_offset(),
            offset,
            "truncation leaves the log end at the truncation offset"
        );
    }
    Ok(true)
}

/// What a follower does after its fetch offset was out of range on the leader, given the
/// leader's log start and log end offsets (Kafka's `AbstractFetcherThread.fetchOffsetAndTruncate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutOfRangeReset {
    /// The follower is ahead of the leader (an unclean election made a shorter log the
    /// leader's): truncate to the leader's log end.
    TruncateTo(i64),
    /// The leader has deleted everything up to past the follower's log end: empty the log and
    /// restart it at the leader's log start.
    TruncateFullyAndStartAt(i64),
    /// The follower's log end is within the leader's log now (the range moved while the error
    /// travelled): fetch again from it.
    Resume,
}

/// The reset for a follower whose log ends at `log_end_offset` when the leader's log spans
/// `[leader_log_start_offset, leader_log_end_offset)`.
pub fn out_of_range_reset(
    log_end_offset: i64,
    leader_log_start_offset: i64,
    leader_log_end_offset: i64,
) -> OutOfRangeReset {
    if leader_log_end_offset < log_end_offset {
        OutOfRangeReset::TruncateTo(leader_log_end_offset)
    } else if leader_log_start_offset > log_end_offset {
        OutOfRangeReset::TruncateFullyAndStartAt(leader_log_start_offset)
    } else {
        OutOfRangeReset::Resume
    }
}

/// The follower's high watermark after a fetch response: the leader's, bounded below by the
/// follower's log start and above by its log end (Kafka's `UnifiedLog.updateHighWatermark`).
pub fn follower_high_watermark(
    leader_high_watermark: i64,
    log_start_offset: i64,
    log_end_offset: i64,
) -> i64 {
    debug_assert!(
        log_start_offset <= log_end_offset,
        "log start {log_start_offset} above log end {log_end_offset}"
    );
    leader_high_watermark.clamp(log_start_offset, log_end_offset)
}

#[cfg(test)]
mod tests {
    use super::super::fake_log::FakeLog;
    use super::*;

    /// A follower log with epochs 1 at 0, 3 at 100, 5 at 200, ending at 300, HW 150.
    fn follower() -> FakeLog {
        let log = FakeLog::new();
        log.append_batch(0, 100, 1);
        log.append_batch(100, 100, 3);
        log.append_batch(200, 100, 5);
        log.set_high_watermark(150);
        log
    }

    #[test]
    fn same_latest_epoch_truncates_to_the_smaller_end() {
        let log = follower();
        // The leader's epoch 5 ended at 250: the follower's extra records go.
        assert_eq!(
            truncation_for_epoch_end_offset(5, 250, &log),
            Truncation::Complete { offset: 250 }
        );
        // The leader has more of epoch 5: nothing to truncate (the follower's LEO).
        assert_eq!(
            truncation_for_epoch_end_offset(5, 400, &log),
            Truncation::Complete { offset: 300 }
        );
    }

    #[test]
    fn smaller_known_epoch_truncates_to_the_smaller_end_of_that_epoch() {
        let log = follower();
        // The leader's epoch 3 ended at 180; the follower's ended at 200.
        assert_eq!(
            truncation_for_epoch_end_offset(3, 180, &log),
            Truncation::Complete { offset: 180 }
        );
        // The leader's epoch 3 ended at 220, past the follower's end of it (200).
        assert_eq!(
            truncation_for_epoch_end_offset(3, 220, &log),
            Truncation::Complete { offset: 200 }
        );
    }

    #[test]
    fn unknown_leader_epoch_truncates_to_the_lower_epoch_and_asks_again() {
        let log = follower();
        // The follower never had epoch 4: its largest below is 3, which ends at 200.
        assert_eq!(
            truncation_for_epoch_end_offset(4, 260, &log),
            Truncation::Continue {
                offset: 200,
                next_epoch: 3
            }
        );
    }

    #[test]
    fn epoch_below_every_follower_epoch_truncates_to_the_leader_offset() {
        let log = FakeLog::new();
        log.truncate_fully_and_start_at(50).unwrap();
        log.append_batch(50, 50, 3);
        // Kafka's cache answers (requested, first start) below its first epoch.
        assert_eq!(
            truncation_for_epoch_end_offset(2, 70, &log),
            Truncation::Complete { offset: 50 }
        );
        let empty = FakeLog::new();
        assert_eq!(
            truncation_for_epoch_end_offset(2, 70, &empty),
            Truncation::Complete { offset: 0 }
        );
    }

    #[test]
    fn undefined_offset_falls_back_to_the_high_watermark() {
        let log = follower();
        assert_eq!(
            truncation_for_epoch_end_offset(UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET, &log),
            Truncation::Complete { offset: 150 }
        );
    }

    #[test]
    fn undefined_epoch_with_an_offset_truncates_to_it() {
        let log = follower();
        assert_eq!(
            truncation_for_epoch_end_offset(UNDEFINED_EPOCH, 120, &log),
            Truncation::Complete { offset: 120 }
        );
        assert_eq!(
            truncation_for_epoch_end_offset(UNDEFINED_EPOCH, 900, &log),
            Truncation::Complete { offset: 300 }
        );
    }

    #[test]
    fn truncate_log_is_a_no_op_at_or_above_the_end() {
        let log = follower();
        assert_eq!(truncate_log(&log, 300), Ok(false));
        assert_eq!(truncate_log(&log, 400), Ok(false));
        assert_eq!(log.log_end_offset(), 300);
    }

    #[test]
    fn truncate_log_drops_the_tail_and_its_epochs() {
        let log = follower();
        assert_eq!(truncate_log(&log, 150), Ok(true));
        assert_eq!(log.log_end_offset(), 150);
        assert_eq!(log.latest_epoch(), Some(3));
        assert_eq!(log.end_offset_for_epoch(3), (3, 150));
    }

    #[test]
    fn truncate_log_below_the_start_restarts_the_log() {
        let log = follower();
        log.maybe_increment_log_start_offset(100).unwrap();
        assert_eq!(truncate_log(&log, 40), Ok(true));
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (40, 40));
        assert_eq!(log.latest_epoch(), None);
    }

    #[test]
    #[should_panic(expected = "truncation leaves the log end at the truncation offset")]
    fn a_log_that_does_not_truncate_breaks_the_invariant() {
        let log = follower();
        log.break_truncation();
        let _ = truncate_log(&log, 150);
    }

    #[test]
    fn out_of_range_resets() {
        // Follower ahead of the leader (unclean election): truncate to the leader's end.
        assert_eq!(
            out_of_range_reset(500, 0, 400),
            OutOfRangeReset::TruncateTo(400)
        );
        // Follower behind the leader's start: truncate fully at the leader's start.
        assert_eq!(
            out_of_range_reset(100, 250, 400),
            OutOfRangeReset::TruncateFullyAndStartAt(250)
        );
        // Within range now: resume.
        assert_eq!(out_of_range_reset(300, 250, 400), OutOfRangeReset::Resume);
        assert_eq!(out_of_range_reset(400, 250, 400), OutOfRangeReset::Resume);
    }

    #[test]
    fn follower_high_watermark_is_bounded_by_the_local_log() {
        assert_eq!(follower_high_watermark(120, 0, 300), 120);
        assert_eq!(follower_high_watermark(500, 0, 300), 300);
        assert_eq!(follower_high_watermark(10, 50, 300), 50);
        assert_eq!(follower_high_watermark(-1, 0, 0), 0);
    }
}
