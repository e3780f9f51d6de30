//! Measures the bench's record-batch encoder against kafka-protocol's `RecordBatchEncoder`:
//! `cargo run --release -p sluice-bench --example encode`.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use sluice_bench::args::Codec;
use sluice_bench::batch::{filler_pool, BatchBuilder};
use std::time::Instant;

fn main() {
    let pool = filler_pool(1, 1 << 20);
    let (size, per_batch, batches) = (100usize, 160usize, 5000usize);
    for (codec, compression) in [
        (Codec::None, Compression::None),
        (Codec::Lz4, Compression::Lz4),
        (Codec::Zstd, Compression::Zstd),
        (Codec::Snappy, Compression::Snappy),
        (Codec::Gzip, Compression::Gzip),
    ] {
        let mut b = BatchBuilder::new();
        let t = Instant::now();
        let mut out = 0usize;
        for i in 0..batches {
            for j in 0..per_batch {
                let off = (i * 7919 + j * 104_729) % (pool.len() - size);
                b.push(1_700_000_000_000 + j as i64, None, size, |v| {
                    v.copy_from_slice(&pool[off..off + size])
                });
            }
            out += b.finish(codec, None, 0).expect("encode").len();
        }
        let ours = t.elapsed();
        let t = Instant::now();
        let mut out2 = 0usize;
        for i in 0..batches {
            let recs: Vec<Record> = (0..per_batch)
                .map(|j| {
                    let off = (i * 7919 + j * 104_729) % (pool.len() - size);
                    Record {
                        transactional: false,
                        control: false,
                        partition_leader_epoch: -1,
                        producer_id: -1,
                        producer_epoch: -1,
                        timestamp_type: TimestampType::Creation,
                        offset: j as i64,
                        sequence: j as i32 - 1,
                        timestamp: 1_700_000_000_000 + j as i64,
                        key: None,
                        value: Some(Bytes::copy_from_slice(&pool[off..off + size])),
                        headers: Default::default(),
                        delete_horizon: false,
                    }
                })
                .collect();
            let mut buf = BytesMut::new();
            RecordBatchEncoder::encode(
                &mut buf,
                recs.iter(),
                &RecordEncodeOptions {
                    version: 2,
                    compression,
                },
            )
            .expect("encode");
            out2 += buf.len();
        }
        let theirs = t.elapsed();
        let msgs = (batches * per_batch) as f64;
        println!(
            "{codec:?}: sluice-bench {:.1} M msg/s ({:.0} MB/s in, {} B out) | kafka-protocol {:.1} M msg/s ({} B out)",
            msgs / ours.as_secs_f64() / 1e6,
            msgs * size as f64 / ours.as_secs_f64() / 1e6,
            out,
            msgs / theirs.as_secs_f64() / 1e6,
            out2
        );
    }
}
