//! Records to v2 record batches (storage's [`RecordBatchBuilder`]) and batches to Produce
//! requests.

use super::input::Line;
use crate::tools::common::ToolError;
use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::ProduceRequest;
use sluice_net::client::topic_name;
use sluice_storage::wire::{BatchOptions, RecordBatchBuilder, RecordHeader};
use sluice_storage::Compression;

/// One batch (no producer id) of `lines`, every record with `headers` and `timestamp_ms`
/// (CreateTime).
pub fn encode(
    lines: &[Line],
    headers: &[(String, String)],
    timestamp_ms: i64,
    compression: Compression,
) -> Result<Bytes, ToolError> {
    let headers: Vec<RecordHeader<'_>> = headers
        .iter()
        .map(|(k, v)| (k.as_bytes(), Some(v.as_bytes())))
        .collect();
    let mut builder = RecordBatchBuilder::new();
    for line in lines {
        builder.push(
            timestamp_ms,
            line.key.as_deref(),
            Some(&line.value),
            &headers,
        );
    }
    let options = BatchOptions {
        compression,
        ..BatchOptions::default()
    };
    builder
        .finish(&options)
        .map_err(|e| ToolError::Message(format!("cannot encode a record batch: {e}")))
}

/// A Produce request of `batches` (partition → batch) to `topic`.
pub fn produce_request(
    topic: &str,
    batches: &[(i32, Bytes)],
    acks: i16,
    timeout_ms: i32,
) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(
                batches
                    .iter()
                    .map(|(p, b)| {
                        PartitionProduceData::default()
                            .with_index(*p)
                            .with_records(Some(b.clone()))
                    })
                    .collect(),
            )])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::records::{decode_records, headers_text, whole_batches};
    use sluice_bench::args::Codec;

    #[test]
    fn lines_become_one_batch_with_keys_and_headers() {
        let lines = vec![
            Line {
                key: Some(Bytes::from("k1")),
                value: Bytes::from("v1"),
            },
            Line {
                key: None,
                value: Bytes::from("v2"),
            },
        ];
        let headers = vec![("source".to_string(), "cli".to_string())];
        for codec in <Codec as clap::ValueEnum>::value_variants() {
            let b = encode(&lines, &headers, 1234, codec.compression()).unwrap();
            let batches = whole_batches(&b).unwrap();
            assert_eq!(batches.len(), 1, "{codec:?}");
            let (h, bytes) = &batches[0];
            assert_eq!(
                (h.base_sequence, h.producer_id, h.records_count),
                (-1, -1, 2)
            );
            let records = decode_records(h, bytes).unwrap();
            assert_eq!(records[0].key.as_deref(), Some(&b"k1"[..]));
            assert_eq!(records[1].key, None);
            assert_eq!(records[1].value.as_deref(), Some(&b"v2"[..]));
            assert_eq!(records[1].timestamp, 1234);
            assert_eq!(headers_text(&records[1].headers, false), "source=cli");
        }
    }
}
