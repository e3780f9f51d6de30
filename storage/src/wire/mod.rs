//! The Kafka wire basics shared by every Sluice crate: variable-length integers ([`varint`]) and
//! the v2 record-batch encoder ([`batch_builder`]). Parsing and validating batches stays in
//! [`crate::batch`].

pub mod batch_builder;
pub mod varint;

pub use batch_builder::{
    compress_records, compression_id, encode_batch, BatchBuildError, BatchOptions,
    RecordBatchBuilder, RecordHeader,
};
pub use varint::{
    put_uvarint, put_varint, put_varlong, read_uvarint, read_varint, read_varlong, varlong_len,
    VarintError,
};
