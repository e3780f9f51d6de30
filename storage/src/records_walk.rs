//! Walks the records of an uncompressed v2 batch to check their framing (varint lengths, record
//! count, exact fit) without decoding or copying them, noting the records that have no key.

use crate::wire::varint::{read_varint, read_varlong};

/// Skips a varint-length-prefixed byte string; -1 means null when `nullable`. Returns whether
/// the string was present (not null).
fn skip_bytes(buf: &[u8], pos: &mut usize, nullable: bool, what: &str) -> Result<bool, String> {
    let len = read_varint(buf, pos).map_err(|_| format!("bad {what} length"))?;
    if len == -1 && nullable {
        return Ok(false);
    }
    let len = usize::try_from(len).map_err(|_| format!("negative {what} length {len}"))?;
    if buf.len() - *pos < len {
        return Err(format!("{what} overruns its record"));
    }
    *pos += len;
    Ok(true)
}

/// Checks one record's body (everything after its length prefix); it must be consumed exactly.
/// Returns whether the record has a key.
fn walk_record(body: &[u8], expected_offset_delta: i32) -> Result<bool, String> {
    let mut pos = 0usize;
    if body.is_empty() {
        return Err("empty record".into());
    }
    pos += 1; // attributes
    read_varlong(body, &mut pos).map_err(|_| "bad timestamp delta")?;
    let offset_delta = read_varint(body, &mut pos).map_err(|_| "bad offset delta")?;
    if offset_delta != expected_offset_delta {
        return Err(format!(
            "record offset delta {offset_delta}, expected {expected_offset_delta}"
        ));
    }
    let has_key = skip_bytes(body, &mut pos, true, "key")?;
    skip_bytes(body, &mut pos, true, "value")?;
    let headers = read_varint(body, &mut pos).map_err(|_| "bad header count")?;
    if headers < 0 {
        return Err(format!("negative header count {headers}"));
    }
    for _ in 0..headers {
        skip_bytes(body, &mut pos, false, "header key")?;
        skip_bytes(body, &mut pos, true, "header value")?;
    }
    if pos != body.len() {
        return Err(format!(
            "record declares {} bytes but its fields use {pos}",
            body.len()
        ));
    }
    Ok(has_key)
}

/// Checks that `records` (the bytes after a batch header) hold exactly `count` well-framed
/// records with consecutive offset deltas. Returns the indexes of the records without a key
/// (null key), or a description of the first problem.
pub(crate) fn walk_records(records: &[u8], count: i32) -> Result<Vec<i32>, String> {
    let mut unkeyed = Vec::new();
    let mut pos = 0usize;
    for i in 0..count {
        let len = read_varint(records, &mut pos).map_err(|_| format!("record {i}: bad length"))?;
        let len = usize::try_from(len).map_err(|_| format!("record {i}: negative length"))?;
        if records.len() - pos < len {
            return Err(format!("record {i} overruns the batch"));
        }
        let has_key =
            walk_record(&records[pos..pos + len], i).map_err(|e| format!("record {i}: {e}"))?;
        if !has_key {
            unkeyed.push(i);
        }
        pos += len;
    }
    if pos != records.len() {
        return Err(format!(
            "{} bytes after the {count} declared records",
            records.len() - pos
        ));
    }
    Ok(unkeyed)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::wire::varint::put_varlong;

    fn zigzag(v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varlong(&mut out, v);
        out
    }

    fn record(offset_delta: i64, value: &[u8]) -> Vec<u8> {
        keyed_record(offset_delta, None, value)
    }

    fn keyed_record(offset_delta: i64, key: Option<&[u8]>, value: &[u8]) -> Vec<u8> {
        let mut body = vec![0u8];
        body.extend(zigzag(0));
        body.extend(zigzag(offset_delta));
        match key {
            Some(k) => {
                body.extend(zigzag(k.len() as i64));
                body.extend_from_slice(k);
            }
            None => body.extend(zigzag(-1)),
        }
        body.extend(zigzag(value.len() as i64));
        body.extend_from_slice(value);
        body.extend(zigzag(1));
        body.extend(zigzag(1));
        body.push(b'h');
        body.extend(zigzag(-1));
        let mut out = zigzag(body.len() as i64);
        out.extend(body);
        out
    }

    #[test]
    fn accepts_well_framed_records() {
        let mut data = record(0, b"abc");
        data.extend(record(1, b""));
        assert_eq!(walk_records(&data, 2), Ok(vec![0, 1]));
    }

    #[test]
    fn reports_records_without_key() {
        let mut data = keyed_record(0, Some(b"k"), b"abc");
        data.extend(record(1, b"x"));
        data.extend(keyed_record(2, Some(b""), b"y"));
        data.extend(record(3, b"z"));
        assert_eq!(walk_records(&data, 4), Ok(vec![1, 3]));
    }

    #[test]
    fn rejects_bad_framing() {
        let mut data = record(0, b"abc");
        data.extend(record(1, b"de"));
        assert!(walk_records(&data, 1).is_err(), "trailing record");
        assert!(walk_records(&data, 3).is_err(), "missing record");
        assert!(
            walk_records(&data[..data.len() - 1], 2).is_err(),
            "truncated"
        );
        let skipped = record(2, b"x");
        assert!(walk_records(&skipped, 1).is_err(), "offset delta");
    }
}
