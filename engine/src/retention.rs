//! Log retention on a shard, as Kafka's `LogManager.cleanupLogs`: every
//! `log.retention.check.interval.ms` the shard's housekeeping applies `retention.ms` and
//! `retention.bytes` to each partition it leads whose `cleanup.policy` contains `delete`, and
//! deletes, on every partition, the segments wholly below the log start offset (DeleteRecords
//! moves it). Deleted segments leave the log at once with their files renamed `.deleted`; a task
//! on the shard unlinks them `file.delete.delay.ms` later, on a blocking thread. The moved log
//! start offsets go to the shard's `log-start-offset-checkpoint` at its next housekeeping tick.

use crate::file_worker::FileWorker;
use crate::partition::Partition;
use crate::shard::Shard;
use sluice_storage::{DeletedSegment, SegmentDeletion};
use std::time::Duration;
use tracing::{error, info};

/// Applies retention to every partition `shard` leads (see the module docs).
pub fn delete_old_segments(shard: &Shard, now_ms: i64) {
    for partition in shard.all_partitions() {
        match partition.delete_old_segments(now_ms) {
            Ok(deletions) => finish_segment_deletions(shard, &partition, deletions),
            Err(e) => error!(
                shard = shard.id,
                "retention of {}-{} failed: {e}", partition.topic, partition.index
            ),
        }
    }
}

/// After segments of `partition` were deleted: logs one line per segment, asks for the log
/// start offset checkpoint, and schedules the removal of the renamed files after the topic's
/// `file.delete.delay.ms`.
pub fn finish_segment_deletions(
    shard: &Shard,
    partition: &Partition,
    deletions: Vec<SegmentDeletion>,
) {
    if deletions.is_empty() {
        return;
    }
    let log_start_offset = partition.log_start_offset();
    for deletion in &deletions {
        let segment = &deletion.segment;
        info!(
            shard = shard.id,
            "deleted segment {:020}.log (offsets {}..{}, {} bytes) of {}-{}: {}; log start offset now {log_start_offset}",
            segment.base_offset(),
            segment.base_offset(),
            segment.next_offset(),
            segment.size(),
            partition.topic,
            partition.index,
            deletion.reason
        );
    }
    shard.log_start_offsets_changed();
    let delay_ms = partition.config.borrow().file_delete_delay_ms;
    let segments = deletions.into_iter().map(|d| d.segment).collect();
    schedule_file_removal(shard.id, &shard.file_worker, segments, delay_ms);
}

/// Unlinks the files of `segments` after `delay_ms` (`file.delete.delay.ms`), on the shard's
/// file worker so that freeing a large file's blocks does not stall the core. Files still
/// there at shutdown are removed when the log is next opened.
pub(crate) fn schedule_file_removal(
    shard_id: u32,
    worker: &FileWorker,
    segments: Vec<DeletedSegment>,
    delay_ms: i64,
) {
    let delay = Duration::from_millis(u64::try_from(delay_ms).unwrap_or(0));
    let worker = worker.clone();
    glommio::spawn_local(async move {
        glommio::timer::sleep(delay).await;
        let removed = worker
            .run(move || segments.iter().try_for_each(DeletedSegment::remove_files))
            .await;
        let removed = match removed {
            Ok(removed) => removed.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = removed {
            error!(shard = shard_id, "cannot remove a deleted segment: {e}");
        }
    })
    .detach();
}
