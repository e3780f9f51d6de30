//! Records to v2 record batches (kafka-protocol's encoder, with its codecs) and batches to
//! Produce requests.

use super::input::Line;
use crate::tools::common::ToolError;
use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::ProduceRequest;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use sluice_bench::args::Codec;
use sluice_net::client::topic_name;

/// kafka-protocol's codec for a `--compression` choice.
pub fn compression(codec: Codec) -> Compression {
    match codec {
        Codec::None => Compression::None,
        Codec::Gzip => Compression::Gzip,
        Codec::Snappy => Compression::Snappy,
        Codec::Lz4 => Compression::Lz4,
        Codec::Zstd => Compression::Zstd,
    }
}

/// One batch (no producer id) of `lines`, every record with `headers` and `timestamp_ms`
/// (CreateTime).
pub fn encode(
    lines: &[Line],
    headers: &[(String, String)],
    timestamp_ms: i64,
    compression: Compression,
) -> Result<Bytes, ToolError> {
    let headers: IndexMap<StrBytes, Option<Bytes>> = headers
        .iter()
        .map(|(k, v)| {
            (
                StrBytes::from_string(k.clone()),
                Some(Bytes::from(v.clone())),
            )
        })
        .collect();
    let records: Vec<Record> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch while offset - sequence stays constant;
            // this also makes the batch's base sequence -1 (none).
            sequence: i as i32 - 1,
            timestamp: timestamp_ms,
            key: line.key.clone(),
            value: Some(line.value.clone()),
            headers: headers.clone(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options)
        .map_err(|e| ToolError::Message(format!("cannot encode a record batch: {e}")))?;
    Ok(buf.freeze())
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
            let b = encode(&lines, &headers, 1234, compression(*codec)).unwrap();
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
