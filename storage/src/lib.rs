//! The partition log of Sluice: Kafka's on-disk format, written with plain synchronous file I/O.
//!
//! # Layout
//!
//! A partition replica lives in `<log_dir>/<topic>-<partition>/`, exactly as in Apache Kafka:
//!
//! * `<20-digit base offset>.log` — record batches (magic v2) back to back, as produced by
//!   clients, with `baseOffset` and `partitionLeaderEpoch` rewritten by the broker;
//! * `<base>.index` — sparse offset index: 8-byte entries (relative offset u32, position u32);
//! * `<base>.timeindex` — sparse time index: 12-byte entries (timestamp i64, relative offset u32);
//! * `leader-epoch-checkpoint` — leader epochs and their start offsets;
//! * `<base>.log.deleted` (and its indexes) — a segment deleted by retention or DeleteRecords,
//!   unlinked after `file.delete.delay.ms` or when the log is next opened;
//! * `<base>.log.cleaned` / `<base>.log.swap` (and their indexes) — a segment written by the log
//!   cleaner, before and during its swap into the log ([`cleaner`]).
//!
//! Broker-wide checkpoint files (`recovery-point-offset-checkpoint`, …) are read and written with
//! [`checkpoint`].
//!
//! # Invariants
//!
//! * Offsets strictly increase through the log: every batch's base offset is the previous batch's
//!   last offset plus one, and each segment's base offset is the first offset it holds — except
//!   in segments rewritten by the log cleaner, where batches and records removed by compaction
//!   leave gaps (a batch keeps its base and last offsets even when it loses records), and on a
//!   follower, which copies such gaps from its leader.
//! * The log end offset is where the active segment ends.
//! * Index entries strictly increase in offset (and in timestamp for the time index), and point at
//!   the start of a batch inside their segment.
//! * log start offset <= high watermark <= log end offset; the log start offset lies in the
//!   first segment (or at the log end), and only whole segments are ever deleted, oldest first.
//! * Everything below the recovery point has been fsynced; everything above it is re-verified
//!   (CRC32C) when the log is opened, and cut at the first torn or corrupt batch.
//! * Data read from disk or received from the network never panics the broker: it yields errors.
//!
//! The crate knows nothing of the network or of the executor: the engine calls it from its core's
//! executor and runs every blocking file call ([`PendingFlush::sync`], [`write_checkpoint`]) on a
//! helper thread ([`blocking`] states the rule and checks it). A segment roll does not sync:
//! the rolled segment's indexes are synced by the next flush, before the recovery point passes
//! them.

#![warn(missing_docs)]

pub mod batch;
pub mod blocking;
pub mod checkpoint;
pub mod cleaner;
pub mod decompress;
mod error;
pub mod file_cache;
pub mod index;
pub mod leader_epoch;
pub mod log;
pub mod producer_state;
mod records_walk;
mod scan;
pub mod segment;
pub mod wire;

pub use batch::{
    patched_prefix, validate_records, validate_replicated_records, BatchError, BatchHeader,
    Compression, TimestampType, ValidatedBatch, ValidationConfig,
};
pub use checkpoint::{read_checkpoint, write_checkpoint};
pub use cleaner::{
    CleanableRange, CleanedSegment, CleanerError, CleaningJob, CleaningStep, CleaningSummary,
    CompactionConfig, OffsetMap, StepReport, CLEANER_OFFSET_CHECKPOINT,
};
pub use decompress::{decode_batch, decompress_records, decompression_limit, DecompressError};
pub use error::StorageError;
pub use file_cache::{is_out_of_descriptors, LogFileCache};
pub use index::{OffsetIndex, TimeIndex};
pub use leader_epoch::{EpochCheckpointWrite, LeaderEpochCache};
pub use log::{
    AppendError, AppendInfo, FileSlice, FollowerAppendError, LogConfig, LogStartOffsetError,
    LogTruncation, PartitionLog, PendingFlush, ReadError, RecoveryReport, RetentionLimits,
    SegmentDeletion, SegmentDeletionReason, SegmentSwap,
};
pub use producer_state::{BatchMetadata, ProducerError, ProducerStateTable};
pub use segment::{
    remove_file_releasing_blocks, DeletedSegment, LogOpener, Segment, DELETED_FILE_SUFFIX,
};

#[cfg(test)]
mod test_util;
