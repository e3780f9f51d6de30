//! Produce 200,000 keyed messages with headers to an 8-partition topic and read
//! them all back, once per compression codec, each against its own broker.
mod common;

use std::time::Duration;

use common::*;

const N: usize = 200_000;
const PARTITIONS: i32 = 8;

fn roundtrip(codec: &'static str) {
    bounded(Duration::from_secs(900), move || {
        let mut broker = Broker::builder().cores(2).start();
        let bs = broker.bootstrap();
        let topic = unique(&format!("pc-{codec}"));
        create_topic(&bs, &topic, PARTITIONS);
        keyed::round_trip(&bs, &topic, PARTITIONS, N, codec);
        broker.stop();
    })
}

#[test]
fn roundtrip_200k_uncompressed() {
    roundtrip("none")
}

#[test]
fn roundtrip_200k_gzip() {
    roundtrip("gzip")
}

#[test]
fn roundtrip_200k_snappy() {
    roundtrip("snappy")
}

#[test]
fn roundtrip_200k_lz4() {
    roundtrip("lz4")
}

#[test]
fn roundtrip_200k_zstd() {
    roundtrip("zstd")
}
