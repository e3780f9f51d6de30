//! Kafka's variable-length integers, the one implementation every Sluice crate uses.
//!
//! * unsigned varints (LEB128, at most 5 bytes for a `u32`): lengths and tagged fields of
//!   flexible protocol versions;
//! * zigzag varints (`i32`, at most 5 bytes) and varlongs (`i64`, at most 10 bytes): the fields
//!   of the records inside a v2 batch (Kafka's `ByteUtils.writeVarint` / `writeVarlong`).
//!
//! Decoding reads from a slice at a position and never reads past the slice; an encoding longer
//! than the type allows, or one whose last byte carries bits the type cannot hold, is refused
//! (kafka-protocol's decoders accept both silently, which is why Sluice keeps its own).

use bytes::BufMut;

/// Longest unsigned varint of a `u32` (and zigzag varint of an `i32`).
pub const MAX_VARINT_LEN: usize = 5;
/// Longest zigzag varlong of an `i64`.
pub const MAX_VARLONG_LEN: usize = 10;

/// Why a variable-length integer could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VarintError {
    /// The input ended before the integer's last byte.
    #[error("truncated variable-length integer")]
    Truncated,
    /// The encoding is longer than the type allows or overflows it.
    #[error("variable-length integer longer than {0} bytes or out of range")]
    TooLong(usize),
}

/// Reads an unsigned LEB128 value of at most `max_bytes` bytes whose value fits in `bits` bits.
fn read_unsigned(
    buf: &[u8],
    pos: &mut usize,
    max_bytes: usize,
    bits: u32,
) -> Result<u64, VarintError> {
    let mut value = 0u64;
    let mut at = *pos;
    for i in 0..max_bytes {
        let byte = *buf.get(at).ok_or(VarintError::Truncated)?;
        at += 1;
        let shift = 7 * i as u32;
        let payload = u64::from(byte & 0x7f);
        if bits - shift < 7 && payload >> (bits - shift) != 0 {
            return Err(VarintError::TooLong(max_bytes));
        }
        value |= payload << shift;
        if byte & 0x80 == 0 {
            *pos = at;
            return Ok(value);
        }
    }
    Err(VarintError::TooLong(max_bytes))
}

/// Reads an unsigned varint (`u32`) at `*pos`, advancing `*pos` past it on success.
pub fn read_uvarint(buf: &[u8], pos: &mut usize) -> Result<u32, VarintError> {
    let raw = read_unsigned(buf, pos, MAX_VARINT_LEN, 32)?;
    // read_unsigned refused every value of more than 32 bits.
    Ok(raw as u32)
}

/// Reads a zigzag varint (`i32`) at `*pos`, advancing `*pos` past it on success.
pub fn read_varint(buf: &[u8], pos: &mut usize) -> Result<i32, VarintError> {
    let raw = read_uvarint(buf, pos)?;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Reads a zigzag varlong (`i64`) at `*pos`, advancing `*pos` past it on success.
pub fn read_varlong(buf: &[u8], pos: &mut usize) -> Result<i64, VarintError> {
    let raw = read_unsigned(buf, pos, MAX_VARLONG_LEN, 64)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

/// Appends `value` as an unsigned LEB128 varint.
fn put_unsigned(buf: &mut impl BufMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

/// Appends `value` as an unsigned varint.
pub fn put_uvarint(buf: &mut impl BufMut, value: u32) {
    put_unsigned(buf, u64::from(value));
}

/// Appends `value` as a zigzag varint.
pub fn put_varint(buf: &mut impl BufMut, value: i32) {
    put_uvarint(buf, ((value << 1) ^ (value >> 31)) as u32);
}

/// Appends `value` as a zigzag varlong.
pub fn put_varlong(buf: &mut impl BufMut, value: i64) {
    put_unsigned(buf, ((value << 1) ^ (value >> 63)) as u64);
}

/// Encoded size of `value` as a zigzag varlong (the same as a varint for `i32` values).
pub fn varlong_len(value: i64) -> usize {
    let zigzag = ((value << 1) ^ (value >> 63)) as u64;
    let bits = 64 - zigzag.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varlong(v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varlong(&mut out, v);
        out
    }

    #[test]
    fn zigzag_varints_round_trip_at_the_edges() {
        for v in [0, 1, -1, 63, -64, 64, -65, 300, i32::MAX, i32::MIN] {
            let mut enc = Vec::new();
            put_varint(&mut enc, v);
            assert_eq!(
                enc,
                varlong(i64::from(v)),
                "varint and varlong agree for {v}"
            );
            assert_eq!(enc.len(), varlong_len(i64::from(v)));
            let mut pos = 0;
            assert_eq!(read_varint(&enc, &mut pos), Ok(v));
            assert_eq!(pos, enc.len());
            let mut pos = 0;
            assert_eq!(read_varlong(&enc, &mut pos), Ok(i64::from(v)));
        }
        for v in [0, -1, i64::from(i32::MAX) + 1, i64::MAX, i64::MIN] {
            let enc = varlong(v);
            assert_eq!(enc.len(), varlong_len(v));
            let mut pos = 0;
            assert_eq!(read_varlong(&enc, &mut pos), Ok(v));
            assert_eq!(pos, enc.len());
        }
    }

    #[test]
    fn encodings_have_the_expected_lengths() {
        assert_eq!(varlong(0), [0]);
        assert_eq!(varlong(-1), [1]);
        assert_eq!(varlong(63).len(), 1, "largest 1-byte value");
        assert_eq!(varlong(64).len(), 2, "smallest 2-byte value");
        assert_eq!(varlong(-64).len(), 1);
        assert_eq!(varlong(-65).len(), 2);
        assert_eq!(varlong(i64::from(i32::MIN)).len(), MAX_VARINT_LEN);
        assert_eq!(varlong(i64::from(i32::MAX)).len(), MAX_VARINT_LEN);
        assert_eq!(varlong(i64::MIN).len(), MAX_VARLONG_LEN);
        assert_eq!(varlong(i64::MAX).len(), MAX_VARLONG_LEN);
        let mut enc = Vec::new();
        put_uvarint(&mut enc, u32::MAX);
        assert_eq!(enc, [0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(read_uvarint(&enc, &mut 0), Ok(u32::MAX));
        enc.clear();
        put_uvarint(&mut enc, 127);
        assert_eq!(enc, [0x7f]);
        enc.clear();
        put_uvarint(&mut enc, 128);
        assert_eq!(enc, [0x80, 0x01]);
    }

    #[test]
    fn truncated_input_is_an_error_and_leaves_the_position() {
        for v in [64i64, i64::from(i32::MIN), i64::MAX] {
            let enc = varlong(v);
            for cut in 0..enc.len() {
                let mut pos = 0;
                assert_eq!(
                    read_varlong(&enc[..cut], &mut pos),
                    Err(VarintError::Truncated)
                );
                assert_eq!(pos, 0);
            }
        }
        assert_eq!(read_varint(&[], &mut 0), Err(VarintError::Truncated));
        assert_eq!(read_uvarint(&[0x80], &mut 0), Err(VarintError::Truncated));
    }

    #[test]
    fn overlong_or_overflowing_encodings_are_refused() {
        assert_eq!(
            read_varint(&[0xff; 6], &mut 0),
            Err(VarintError::TooLong(5))
        );
        assert_eq!(
            read_uvarint(&[0xff, 0xff, 0xff, 0xff, 0x10], &mut 0),
            Err(VarintError::TooLong(5))
        );
        assert_eq!(
            read_varlong(&[0xff; 11], &mut 0),
            Err(VarintError::TooLong(10))
        );
        let mut eleven = [0xff; 10];
        eleven[9] = 0x02;
        assert_eq!(read_varlong(&eleven, &mut 0), Err(VarintError::TooLong(10)));
    }

    #[test]
    fn reads_advance_through_consecutive_values() {
        let mut buf = Vec::new();
        put_varint(&mut buf, -3);
        put_varlong(&mut buf, 1 << 40);
        put_uvarint(&mut buf, 300);
        let mut pos = 0;
        assert_eq!(read_varint(&buf, &mut pos), Ok(-3));
        assert_eq!(read_varlong(&buf, &mut pos), Ok(1 << 40));
        assert_eq!(read_uvarint(&buf, &mut pos), Ok(300));
        assert_eq!(pos, buf.len());
    }
}
