//! Splitting a frame into a request header and its body.
//!
//! The header is parsed here (it is tiny); the body is left as a zero-copy `Bytes` slice of the
//! frame for the engine to decode with `kafka-protocol`, so that record data is never copied.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::ApiKey;
use sluice_storage::wire::varint;

/// A request whose header has been read; the body is still encoded.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// The API key (known to `kafka-protocol`; unknown keys are rejected while parsing).
    pub api_key: ApiKey,
    /// The requested API version (not yet checked against what the broker supports).
    pub api_version: i16,
    /// Echoed back in the response header.
    pub correlation_id: i32,
    /// The client's `client.id`, if it sent one.
    pub client_id: Option<String>,
    /// The request body after the header.
    pub body: Bytes,
}

/// Why a frame is not a request we can even answer. The connection is closed, as Kafka does.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The frame is shorter than a request header.
    #[error("request header truncated")]
    Truncated,
    /// The API key is not a Kafka API.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// The client id is not valid UTF-8.
    #[error("client id is not valid UTF-8")]
    BadClientId,
}

impl RawRequest {
    /// Parses the request header (v1, or v2 with tagged fields, as the API version dictates).
    pub fn parse(mut frame: Bytes) -> Result<RawRequest, RequestError> {
        if frame.len() < 8 {
            return Err(RequestError::Truncated);
        }
        let key = frame.get_i16();
        let api_version = frame.get_i16();
        let correlation_id = frame.get_i32();
        let api_key = ApiKey::try_from(key).map_err(|_| RequestError::UnknownApiKey(key))?;
        let header_version = api_key.request_header_version(api_version);
        let client_id = if header_version >= 1 {
            read_nullable_string(&mut frame)?
        } else {
            None
        };
        if header_version >= 2 {
            skip_tagged_fields(&mut frame)?;
        }
        Ok(RawRequest {
            api_key,
            api_version,
            correlation_id,
            client_id,
            body: frame,
        })
    }
}

fn read_nullable_string(buf: &mut Bytes) -> Result<Option<String>, RequestError> {
    if buf.remaining() < 2 {
        return Err(RequestError::Truncated);
    }
    let len = buf.get_i16();
    if len < 0 {
        return Ok(None);
    }
    let len = len as usize;
    if buf.remaining() < len {
        return Err(RequestError::Truncated);
    }
    let raw = buf.split_to(len);
    String::from_utf8(raw.to_vec())
        .map(Some)
        .map_err(|_| RequestError::BadClientId)
}

/// Reads an unsigned varint as used by flexible versions.
pub fn read_uvarint(buf: &mut Bytes) -> Result<u32, RequestError> {
    let mut pos = 0;
    let value = varint::read_uvarint(buf, &mut pos).map_err(|_| RequestError::Truncated)?;
    buf.advance(pos);
    Ok(value)
}

fn skip_tagged_fields(buf: &mut Bytes) -> Result<(), RequestError> {
    let count = read_uvarint(buf)?;
    for _ in 0..count {
        read_uvarint(buf)?;
        let size = read_uvarint(buf)? as usize;
        if buf.remaining() < size {
            return Err(RequestError::Truncated);
        }
        buf.advance(size);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    #[test]
    fn parses_v1_and_v2_headers() {
        let mut f = bytes::BytesMut::new();
        f.put_i16(3); // Metadata
        f.put_i16(12); // flexible => header v2
        f.put_i32(77);
        f.put_i16(3);
        f.put_slice(b"cli");
        f.put_u8(1); // one tagged field
        f.put_u8(5);
        f.put_u8(2);
        f.put_slice(b"xy");
        f.put_slice(b"BODY");
        let r = RawRequest::parse(f.freeze()).unwrap();
        assert_eq!(r.api_key, ApiKey::Metadata);
        assert_eq!(r.correlation_id, 77);
        assert_eq!(r.client_id.as_deref(), Some("cli"));
        assert_eq!(&r.body[..], b"BODY");

        let mut f = bytes::BytesMut::new();
        f.put_i16(0);
        f.put_i16(3);
        f.put_i32(1);
        f.put_i16(-1);
        f.put_slice(b"P");
        let r = RawRequest::parse(f.freeze()).unwrap();
        assert_eq!(r.client_id, None);
        assert_eq!(&r.body[..], b"P");
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            RawRequest::parse(Bytes::from_static(b"abc")),
            Err(RequestError::Truncated)
        ));
        let f = Bytes::from_static(&[0x7f, 0x7f, 0, 0, 0, 0, 0, 1]);
        assert!(matches!(
            RawRequest::parse(f),
            Err(RequestError::UnknownApiKey(_))
        ));
        let f = Bytes::from_static(&[0, 3, 0, 1, 0, 0, 0, 1, 0, 9, b'a']);
        assert!(matches!(RawRequest::parse(f), Err(RequestError::Truncated)));
    }
}
