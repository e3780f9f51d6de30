//! Bounded decompression of a batch's records: the one place where the broker turns compressed
//! bytes from a client or from the disk into plain records.
//!
//! A few kilobytes of gzip, lz4 or zstd can expand to gigabytes, and a snappy header can declare
//! any length. [`decompress_records`] therefore streams the codec's output through a cap and
//! refuses the input as soon as the output would pass `limit`, so memory never exceeds `limit`
//! (plus the codec's own bounded state); no size declared by the input is trusted before it
//! has been checked against `limit`.
//!
//! The limit of a topic is [`decompression_limit`] of its `max.message.bytes`: a batch may grow
//! by [`DECOMPRESSION_RATIO`] when decompressed, but never past [`MAX_DECOMPRESSION_LIMIT`].

use std::io::Read;

use bytes::Bytes;
use kafka_protocol::records::{Compression as Codec, RecordBatchDecoder, RecordSet};

use crate::batch::Compression;

/// How many times its compressed size a batch may grow when decompressed. Real record data
/// compresses 2–10× (text, JSON and logs up to ~30×), so 64× refuses no sensible batch, while
/// a default topic (`max.message.bytes` 1 MiB) costs at most 64 MiB per decompression.
pub const DECOMPRESSION_RATIO: usize = 64;
/// The smallest limit, for topics with a tiny `max.message.bytes`: 16 MiB costs little and
/// still lets small batches compress very well.
pub const MIN_DECOMPRESSION_LIMIT: usize = 16 << 20;
/// The largest limit, whatever `max.message.bytes` is (unless a batch itself may be larger):
/// one decompression never costs more than 256 MiB, and a batch that expands to 1 GB is always
/// refused.
pub const MAX_DECOMPRESSION_LIMIT: usize = 256 << 20;

/// Bytes read from a streaming decoder at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Snappy's densest element, a 3-byte copy of 64 bytes, expands 64/3 times: no valid snappy
/// block holds more than this many bytes per compressed byte.
const SNAPPY_MAX_EXPANSION: usize = 22;
/// The xerial framing's header (magic, version 1, compatible version 1), as snappy-java and
/// Kafka's clients write it. Data without it is raw snappy.
const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// The zstd window always accepted (8 MiB): what zstd's levels up to 19 use on streamed input,
/// whatever the limit.
const ZSTD_MIN_WINDOW_LOG: u32 = 23;
/// zstd's default largest window for decoding (`ZSTD_WINDOWLOG_LIMIT_DEFAULT`, 128 MiB).
const ZSTD_MAX_WINDOW_LOG: u32 = 27;

/// Why a batch's records could not be decompressed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecompressError {
    /// The records would take more than `limit` bytes once decompressed (a decompression bomb,
    /// or a batch compressed far better than any real data).
    #[error("{codec:?} records would exceed {limit} bytes once decompressed")]
    ExceedsLimit {
        /// The batch's codec.
        codec: Compression,
        /// The limit that was reached.
        limit: usize,
    },
    /// The compressed data is not valid for its codec (corrupt, truncated, or declaring a size
    /// it cannot hold).
    #[error("corrupt {codec:?} data: {reason}")]
    Corrupt {
        /// The batch's codec.
        codec: Compression,
        /// What the decoder found wrong.
        reason: String,
    },
}

/// The decompression limit of a topic whose `max.message.bytes` is `max_message_bytes`:
/// [`DECOMPRESSION_RATIO`] times it, at least [`MIN_DECOMPRESSION_LIMIT`] and at most
/// [`MAX_DECOMPRESSION_LIMIT`] (but never less than `max_message_bytes`, which an uncompressed
/// batch may reach).
pub fn decompression_limit(max_message_bytes: u32) -> usize {
    let max_message_bytes = usize::try_from(max_message_bytes).unwrap_or(usize::MAX);
    max_message_bytes
        .saturating_mul(DECOMPRESSION_RATIO)
        .clamp(MIN_DECOMPRESSION_LIMIT, MAX_DECOMPRESSION_LIMIT)
        .max(max_message_bytes)
}

/// Decompresses the records of a batch (the bytes after its 61-byte header) compressed with
/// `compression`, refusing them with [`DecompressError::ExceedsLimit`] as soon as they would
/// take more than `limit` bytes: no more than `limit` bytes of output are ever allocated.
/// Snappy may be raw or in xerial framing, as Kafka's clients send it. Uncompressed records
/// are copied (and checked against `limit` too).
pub fn decompress_records(
    compression: Compression,
    compressed: &[u8],
    limit: usize,
) -> Result<Bytes, DecompressError> {
    let plain = match compression {
        Compression::None if compressed.len() > limit => {
            return Err(DecompressError::ExceedsLimit {
                codec: compression,
                limit,
            })
        }
        Compression::None => compressed.to_vec(),
        Compression::Gzip => read_bounded(
            compression,
            flate2::read::MultiGzDecoder::new(compressed),
            limit,
        )?,
        Compression::Lz4 => {
            let mut decoder = lz4::Decoder::new(compressed).map_err(corrupt(compression))?;
            let plain = read_bounded(compression, &mut decoder, limit)?;
            // The decoder reports a truncated frame as the end of its output; only `finish`
            // tells whether the frame was complete.
            decoder.finish().1.map_err(corrupt(compression))?;
            plain
        }
        Compression::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(compressed)
                .map_err(corrupt(compression))?;
            decoder
                .window_log_max(zstd_window_log_max(limit))
                .map_err(corrupt(compression))?;
            read_bounded(compression, decoder, limit)?
        }
        Compression::Snappy => match compressed.strip_prefix(XERIAL_HEADER) {
            Some(blocks) => decompress_xerial(blocks, limit)?,
            None => decompress_snappy_raw(compressed, limit)?,
        },
    };
    Ok(Bytes::from(plain))
}

/// Decodes one whole v2 batch (header included) with kafka-protocol's decoder, its records
/// decompressed by [`decompress_records`] within `limit` bytes (uncompressed records are not
/// copied). For readers of whole records: the coordinator's replay, timestamp lookups, tools.
pub fn decode_batch(batch: &Bytes, limit: usize) -> Result<RecordSet, String> {
    let decompress = |records: &mut Bytes, codec: Codec| {
        let compression = match codec {
            Codec::None => return Ok(records.clone()),
            Codec::Gzip => Compression::Gzip,
            Codec::Snappy => Compression::Snappy,
            Codec::Lz4 => Compression::Lz4,
            Codec::Zstd => Compression::Zstd,
        };
        Ok(decompress_records(compression, records, limit)?)
    };
    RecordBatchDecoder::decode_with_custom_compression(&mut batch.clone(), Some(decompress))
        .map_err(|e| format!("{e:#}"))
}

/// Maps a codec's error to [`DecompressError::Corrupt`].
fn corrupt<E: std::fmt::Display>(codec: Compression) -> impl Fn(E) -> DecompressError {
    move |e| DecompressError::Corrupt {
        codec,
        reason: e.to_string(),
    }
}

/// Reads `decoder` to its end, refusing its output once it passes `limit`. The buffer grows
/// by doubling but never beyond `limit`, and only as output actually arrives.
fn read_bounded(
    codec: Compression,
    mut decoder: impl Read,
    limit: usize,
) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let n = decoder.read(&mut chunk).map_err(corrupt(codec))?;
        if n == 0 {
            return Ok(out);
        }
        if n > limit - out.len() {
            return Err(DecompressError::ExceedsLimit { codec, limit });
        }
        if out.capacity() - out.len() < n {
            let target = out
                .capacity()
                .saturating_mul(2)
                .max(READ_CHUNK)
                .min(limit)
                .max(out.len() + n);
            out.reserve_exact(target - out.len());
        }
        out.extend_from_slice(&chunk[..n]);
        debug_assert!(out.len() <= limit);
    }
}

/// The largest zstd window accepted: a frame's window is reserved up front whatever the frame
/// really holds, so it is bounded by the limit (rounded up to a power of two), but never below
/// what zstd's usual levels declare nor above zstd's own default bound.
fn zstd_window_log_max(limit: usize) -> u32 {
    let bits = usize::BITS - limit.saturating_sub(1).leading_zeros();
    bits.clamp(ZSTD_MIN_WINDOW_LOG, ZSTD_MAX_WINDOW_LOG)
}

/// The length a raw snappy block declares in its header, checked against what its compressed
/// size can possibly hold.
fn snappy_declared_len(block: &[u8]) -> Result<usize, DecompressError> {
    let codec = Compression::Snappy;
    let declared = snap::raw::decompress_len(block).map_err(corrupt(codec))?;
    let possible = block.len().saturating_mul(SNAPPY_MAX_EXPANSION);
    if declared > possible {
        return Err(DecompressError::Corrupt {
            codec,
            reason: format!(
                "a block of {} bytes declares {declared} bytes, more than it can hold",
                block.len()
            ),
        });
    }
    Ok(declared)
}

/// Decompresses one raw snappy block into `out`, which has exactly its declared length.
fn decode_snappy_block(block: &[u8], out: &mut [u8]) -> Result<(), DecompressError> {
    let codec = Compression::Snappy;
    let written = snap::raw::Decoder::new()
        .decompress(block, out)
        .map_err(corrupt(codec))?;
    if written != out.len() {
        return Err(DecompressError::Corrupt {
            codec,
            reason: format!("a block declares {} bytes but holds {written}", out.len()),
        });
    }
    Ok(())
}

/// Raw snappy: one block whose header declares its length, checked before allocating.
fn decompress_snappy_raw(compressed: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    let declared = snappy_declared_len(compressed)?;
    if declared > limit {
        return Err(DecompressError::ExceedsLimit {
            codec: Compression::Snappy,
            limit,
        });
    }
    let mut out = vec![0u8; declared];
    decode_snappy_block(compressed, &mut out)?;
    Ok(out)
}

/// The blocks of xerial-framed snappy (after the header): each a 4-byte big-endian length and
/// that many bytes of raw snappy.
fn xerial_blocks(mut rest: &[u8]) -> impl Iterator<Item = Result<&[u8], DecompressError>> {
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let truncated = || DecompressError::Corrupt {
            codec: Compression::Snappy,
            reason: "truncated xerial block".into(),
        };
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            rest = &[];
            return Some(Err(truncated()));
        };
        let len = usize::try_from(u32::from_be_bytes(*len)).unwrap_or(usize::MAX);
        if tail.len() < len {
            rest = &[];
            return Some(Err(truncated()));
        }
        let (block, after) = tail.split_at(len);
        rest = after;
        Some(Ok(block))
    })
}

/// Xerial-framed snappy: the declared lengths of all blocks are added up and checked against
/// `limit` before anything is allocated, then each block is decompressed in place.
fn decompress_xerial(blocks: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    let mut total = 0usize;
    for block in xerial_blocks(blocks) {
        total = total.saturating_add(snappy_declared_len(block?)?);
        if total > limit {
            return Err(DecompressError::ExceedsLimit {
                codec: Compression::Snappy,
                limit,
            });
        }
    }
    let mut out = vec![0u8; total];
    let mut pos = 0usize;
    for block in xerial_blocks(blocks) {
        let block = block?;
        let len = snappy_declared_len(block)?;
        decode_snappy_block(block, &mut out[pos..pos + len])?;
        pos += len;
    }
    debug_assert_eq!(pos, total);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::compress_records;
    use bytes::BytesMut;

    const CODECS: [Compression; 4] = [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// `data` compressed as Kafka's clients do (kafka-protocol's compressors; xerial snappy).
    fn compress(codec: Compression, data: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        compress_records(codec, data, &mut out).unwrap();
        out.to_vec()
    }

    /// Record-like bytes that compress a few times, as real data does.
    fn sample(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let mut i = 0u64;
        while out.len() < len {
            out.extend_from_slice(
                format!("{{\"id\":{i},\"user\":\"u{}\"}}", i * 7919 % 1000).as_bytes(),
            );
            i += 1;
        }
        out.truncate(len);
        out
    }

    #[test]
    fn round_trips_every_codec_within_the_limit() {
        let data = sample(300_000);
        for codec in [Compression::None].into_iter().chain(CODECS) {
            let compressed = compress(codec, &data);
            let plain = decompress_records(codec, &compressed, data.len()).unwrap();
            assert_eq!(&plain[..], &data[..], "{codec:?}");
            assert_eq!(
                decompress_records(codec, &compressed, data.len() - 1),
                Err(DecompressError::ExceedsLimit {
                    codec,
                    limit: data.len() - 1
                }),
                "{codec:?}"
            );
        }
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        let plain = decompress_records(Compression::Snappy, &raw, data.len()).unwrap();
        assert_eq!(&plain[..], &data[..], "raw snappy");
        assert!(matches!(
            decompress_records(Compression::Snappy, &raw, data.len() - 1),
            Err(DecompressError::ExceedsLimit { .. })
        ));
        for codec in CODECS {
            let empty = compress(codec, b"");
            assert_eq!(decompress_records(codec, &empty, 0).unwrap(), Bytes::new());
        }
    }

    #[test]
    fn refuses_output_beyond_the_limit() {
        let zeros = vec![0u8; 8 << 20];
        for codec in CODECS {
            let compressed = compress(codec, &zeros);
            assert!(compressed.len() < 1 << 20, "{codec:?}");
            assert_eq!(
                decompress_records(codec, &compressed, 1 << 20),
                Err(DecompressError::ExceedsLimit {
                    codec,
                    limit: 1 << 20
                })
            );
        }
    }

    #[test]
    fn corrupt_and_truncated_input_is_an_error() {
        let data = sample(100_000);
        let limit = 1 << 20;
        for codec in CODECS {
            let good = compress(codec, &data);
            for cut in [1, good.len() / 3, good.len() / 2, good.len() - 1] {
                assert!(
                    matches!(
                        decompress_records(codec, &good[..cut], limit),
                        Err(DecompressError::Corrupt { .. })
                    ),
                    "{codec:?} cut at {cut}"
                );
            }
            // Every prefix and a flipped byte at many positions: errors or other data, never
            // a panic, never beyond the limit.
            for cut in (0..good.len()).step_by(97) {
                let _ = decompress_records(codec, &good[..cut], limit);
            }
            for at in (0..good.len()).step_by(89) {
                let mut bad = good.clone();
                bad[at] ^= 0x5a;
                if let Ok(plain) = decompress_records(codec, &bad, limit) {
                    assert!(plain.len() <= limit);
                }
            }
            let garbage: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
            assert!(
                decompress_records(codec, &garbage, limit).is_err(),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn snappy_lengths_are_checked_before_allocating() {
        // Raw snappy declaring 2^31 bytes in a 3-byte body: refused as impossible.
        let mut raw = vec![0x80, 0x80, 0x80, 0x80, 0x08];
        raw.extend_from_slice(&[0, 0, 0]);
        assert!(matches!(
            decompress_records(Compression::Snappy, &raw, usize::MAX),
            Err(DecompressError::Corrupt { reason, .. }) if reason.contains("declares")
        ));
        // Possible, but over the limit.
        let block = snap::raw::Encoder::new()
            .compress_vec(&[7u8; 4096])
            .unwrap();
        assert!(matches!(
            decompress_records(Compression::Snappy, &block, 4095),
            Err(DecompressError::ExceedsLimit { .. })
        ));
        // Xerial: the blocks together pass the limit, although each fits.
        let mut xerial = XERIAL_HEADER.to_vec();
        for _ in 0..3 {
            xerial.extend_from_slice(&(block.len() as u32).to_be_bytes());
            xerial.extend_from_slice(&block);
        }
        assert_eq!(
            decompress_records(Compression::Snappy, &xerial, 3 * 4096)
                .unwrap()
                .len(),
            3 * 4096
        );
        assert!(matches!(
            decompress_records(Compression::Snappy, &xerial, 3 * 4096 - 1),
            Err(DecompressError::ExceedsLimit { .. })
        ));
        // A block length past the end.
        let mut torn = XERIAL_HEADER.to_vec();
        torn.extend_from_slice(&u32::MAX.to_be_bytes());
        torn.extend_from_slice(&block);
        assert!(matches!(
            decompress_records(Compression::Snappy, &torn, usize::MAX),
            Err(DecompressError::Corrupt { .. })
        ));
    }

    #[test]
    fn whole_batches_decode_within_the_limit() {
        use crate::test_util::{encode_batch, with_records, NO_PRODUCER};
        use kafka_protocol::records::Compression as Codec;
        for codec in [
            Codec::None,
            Codec::Gzip,
            Codec::Snappy,
            Codec::Lz4,
            Codec::Zstd,
        ] {
            let batch = encode_batch(5, 1000, codec, NO_PRODUCER);
            let set = decode_batch(&batch, 1 << 20).unwrap();
            assert_eq!(set.records.len(), 5, "{codec:?}");
            assert_eq!(set.records[4].offset, 4);
            if codec != Codec::None {
                let ours = decode_batch(&batch, 10).unwrap_err();
                assert!(ours.contains("exceed 10 bytes"), "{codec:?}: {ours}");
                let bomb = with_records(&batch, &compress(codec.into(), &[0; 2 << 20]));
                assert!(decode_batch(&bomb, 1 << 20).unwrap_err().contains("exceed"));
            }
        }
    }

    #[test]
    fn limits_scale_with_max_message_bytes() {
        assert_eq!(decompression_limit(1_048_588), 1_048_588 * 64);
        assert_eq!(decompression_limit(1000), MIN_DECOMPRESSION_LIMIT);
        assert_eq!(decompression_limit(100 << 20), MAX_DECOMPRESSION_LIMIT);
        assert_eq!(decompression_limit(u32::MAX), u32::MAX as usize);
        assert!(
            decompression_limit(256 << 20) < 1_000_000_000,
            "a 1 GB bomb never fits"
        );
        assert_eq!(zstd_window_log_max(64 << 20), 26);
        assert_eq!(zstd_window_log_max((64 << 20) + 1), 27);
        assert_eq!(zstd_window_log_max(1 << 20), ZSTD_MIN_WINDOW_LOG);
        assert_eq!(zstd_window_log_max(usize::MAX), ZSTD_MAX_WINDOW_LOG);
    }
}
