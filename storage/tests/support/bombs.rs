//! Decompression bombs: record batches whose records are 1 GiB of zeros once decompressed,
//! built by streaming zeros through each codec's encoder (never holding the 1 GiB), plus a
//! streaming check of how far each one really expands. Shared by `storage/tests` and the
//! end-to-end `tests/decompression_bombs.rs` (which includes this file with `#[path]`).

use std::io::{self, Read, Write};

use sluice_storage::wire::{encode_batch, BatchOptions};
use sluice_storage::{BatchHeader, Compression};

/// What every bomb expands to.
pub const BOMB_SIZE: u64 = 1 << 30;
/// Zeros written to an encoder at a time.
const CHUNK: usize = 1 << 20;
/// The block size of xerial framing (snappy-java's default).
const XERIAL_BLOCK: usize = 32 * 1024;
/// The xerial framing's header.
const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";

/// Writes `BOMB_SIZE` zeros into `w`, a chunk at a time.
fn write_zeros(w: &mut impl Write) {
    let zeros = vec![0u8; CHUNK];
    for _ in 0..BOMB_SIZE / CHUNK as u64 {
        w.write_all(&zeros).expect("encode zeros");
    }
}

/// 1 GiB of zeros as gzip (about 1 MiB).
pub fn gzip() -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    write_zeros(&mut e);
    e.finish().expect("gzip")
}

/// 1 GiB of zeros as an LZ4 frame with independent blocks, as Kafka's clients write it
/// (about 4 MiB).
pub fn lz4() -> Vec<u8> {
    let mut e = lz4::EncoderBuilder::new()
        .block_mode(lz4::BlockMode::Independent)
        .build(Vec::new())
        .expect("lz4 encoder");
    write_zeros(&mut e);
    let (out, result) = e.finish();
    result.expect("lz4");
    out
}

/// 1 GiB of zeros as zstd (a few tens of KiB).
pub fn zstd() -> Vec<u8> {
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).expect("zstd encoder");
    write_zeros(&mut e);
    e.finish().expect("zstd")
}

/// 1 GiB of zeros in xerial framing: one 32 KiB block of zeros compressed by snappy, repeated
/// (about 50 MiB: snappy expands at most ~21 times).
pub fn snappy_xerial() -> Vec<u8> {
    let block = snap::raw::Encoder::new()
        .compress_vec(&[0u8; XERIAL_BLOCK])
        .expect("snappy");
    let mut out = XERIAL_HEADER.to_vec();
    for _ in 0..BOMB_SIZE / XERIAL_BLOCK as u64 {
        out.extend_from_slice(&(block.len() as u32).to_be_bytes());
        out.extend_from_slice(&block);
    }
    out
}

/// 1 GiB of zeros as one raw snappy block, written element by element (the raw format cannot
/// be streamed): the length, a one-byte literal, then 3-byte copies of 64 bytes at offset 1.
pub fn snappy_raw() -> Vec<u8> {
    let mut out = Vec::new();
    let mut len = BOMB_SIZE;
    while len >= 0x80 {
        out.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(&[0x00, 0x00]);
    let mut left = BOMB_SIZE - 1;
    while left > 0 {
        let n = left.min(64);
        out.extend_from_slice(&[(((n - 1) as u8) << 2) | 2, 1, 0]);
        left -= n;
    }
    out
}

/// Every bomb, with its codec and a name.
pub fn all() -> Vec<(&'static str, Compression, Vec<u8>)> {
    vec![
        ("gzip", Compression::Gzip, gzip()),
        ("lz4", Compression::Lz4, lz4()),
        ("zstd", Compression::Zstd, zstd()),
        ("snappy-xerial", Compression::Snappy, snappy_xerial()),
        ("snappy-raw", Compression::Snappy, snappy_raw()),
    ]
}

/// How many bytes `bomb` really decompresses to, counted by streaming it into a sink (raw
/// snappy, which cannot be streamed, by decoding its elements' lengths).
pub fn expanded_size(name: &str, bomb: &[u8]) -> u64 {
    let stream = |mut r: Box<dyn Read + '_>| io::copy(&mut r, &mut io::sink()).expect(name);
    match name {
        "gzip" => stream(Box::new(flate2::read::MultiGzDecoder::new(bomb))),
        "lz4" => stream(Box::new(lz4::Decoder::new(bomb).expect("lz4"))),
        "zstd" => stream(Box::new(
            zstd::stream::read::Decoder::new(bomb).expect("zstd"),
        )),
        "snappy-xerial" => {
            let mut total = 0u64;
            let mut rest = &bomb[XERIAL_HEADER.len()..];
            while !rest.is_empty() {
                let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
                let block = &rest[4..4 + len];
                total += snap::raw::Decoder::new()
                    .decompress_vec(block)
                    .unwrap()
                    .len() as u64;
                rest = &rest[4 + len..];
            }
            total
        }
        "snappy-raw" => {
            let mut pos = 0;
            while bomb[pos] & 0x80 != 0 {
                pos += 1;
            }
            // The literal, then copies whose length is in the tag.
            let mut total = 1u64;
            pos += 3;
            while pos < bomb.len() {
                assert_eq!(bomb[pos] & 3, 2, "a 2-byte-offset copy");
                total += u64::from(bomb[pos] >> 2) + 1;
                pos += 3;
            }
            total
        }
        other => panic!("unknown bomb {other}"),
    }
}

/// A v2 record batch (one record, no producer) whose records are `compressed` with `codec`:
/// the header a client would write, with a valid CRC. `timestamp` is its create time.
pub fn batch(codec: Compression, compressed: &[u8], timestamp: i64) -> Vec<u8> {
    let options = BatchOptions {
        compression: codec,
        ..BatchOptions::default()
    };
    let header = BatchHeader {
        base_offset: options.base_offset,
        batch_length: 0,
        partition_leader_epoch: options.partition_leader_epoch,
        magic: 2,
        crc: 0,
        attributes: options.attributes(),
        last_offset_delta: 0,
        base_timestamp: timestamp,
        max_timestamp: timestamp,
        producer_id: options.producer_id,
        producer_epoch: options.producer_epoch,
        base_sequence: options.base_sequence,
        records_count: 1,
    };
    encode_batch(&header, compressed).to_vec()
}
