//! Engine errors, and their mapping to Kafka error codes at the API edge.

use kafka_protocol::ResponseError;
use sluice_storage::{AppendError, BatchError, LogStartOffsetError, ReadError};

/// Kafka's error code for "no error".
pub const NONE: i16 = 0;

/// The Kafka error code a failed append is reported with.
pub fn append_error_code(e: &AppendError) -> i16 {
    match e {
        AppendError::Batch(b) => batch_error_code(b),
        AppendError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber.code(),
        AppendError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch.code(),
        AppendError::RecordListTooLarge { .. } => ResponseError::RecordListTooLarge.code(),
        AppendError::Io(_) => ResponseError::KafkaStorageError.code(),
        AppendError::TruncationPending => ResponseError::NotLeaderOrFollower.code(),
    }
}

/// The Kafka error code an invalid record batch is reported with.
pub fn batch_error_code(e: &BatchError) -> i16 {
    match e {
        BatchError::CorruptMessage(_) => ResponseError::CorruptMessage.code(),
        BatchError::UnsupportedMagic(_) => ResponseError::UnsupportedForMessageFormat.code(),
        BatchError::MessageTooLarge { .. } => ResponseError::MessageTooLarge.code(),
        BatchError::InvalidRecord(_) | BatchError::RecordsWithoutKey { .. } => {
            ResponseError::InvalidRecord.code()
        }
        BatchError::InvalidTimestamp { .. } => ResponseError::InvalidTimestamp.code(),
    }
}

/// The Kafka error code a failed read is reported with.
pub fn read_error_code(e: &ReadError) -> i16 {
    match e {
        ReadError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange.code(),
        ReadError::Io(_) => ResponseError::KafkaStorageError.code(),
    }
}

/// The Kafka error code a refused move of the log start offset (DeleteRecords) is reported with.
pub fn log_start_offset_error_code(e: &LogStartOffsetError) -> i16 {
    match e {
        LogStartOffsetError::OutOfRange { .. } => ResponseError::OffsetOutOfRange.code(),
        LogStartOffsetError::Storage(_) => ResponseError::KafkaStorageError.code(),
    }
}
