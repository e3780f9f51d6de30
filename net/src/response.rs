//! A response as a sequence of parts: encoded bytes and regions of files.
//!
//! A Fetch response's record data is a list of byte ranges of segment files; keeping them as
//! [`FileRegion`]s lets the connection send them with `sendfile` instead of copying them through
//! user space. Every other response is a single `Bytes` part.

use bytes::{BufMut, Bytes, BytesMut};
use std::fs::File;
use std::sync::Arc;

/// A byte range of an open file, sent to the socket without being read into user space.
#[derive(Debug, Clone)]
pub struct FileRegion {
    /// The file (kept open for as long as the response is in flight).
    pub file: Arc<File>,
    /// Where the range starts in the file.
    pub position: u64,
    /// How many bytes.
    pub len: u64,
}

/// One piece of a response body.
#[derive(Debug, Clone)]
pub enum ResponsePart {
    /// Bytes already encoded.
    Bytes(Bytes),
    /// A file range sent as is.
    File(FileRegion),
}

impl ResponsePart {
    /// The number of bytes this part puts on the wire.
    pub fn len(&self) -> u64 {
        match self {
            ResponsePart::Bytes(b) => b.len() as u64,
            ResponsePart::File(r) => r.len,
        }
    }

    /// Whether the part is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A response to one request: its header fields and body parts.
#[derive(Debug, Clone)]
pub struct Response {
    /// The request's correlation id.
    pub correlation_id: i32,
    /// Response header v1 (flexible: an empty tagged-field section) rather than v0.
    pub flexible_header: bool,
    /// The body.
    pub parts: Vec<ResponsePart>,
}

impl Response {
    /// A response whose body is one encoded buffer.
    pub fn from_body(correlation_id: i32, flexible_header: bool, body: Bytes) -> Response {
        Response {
            correlation_id,
            flexible_header,
            parts: vec![ResponsePart::Bytes(body)],
        }
    }

    /// The frame prefix: size, correlation id and (for header v1) the empty tagged fields.
    pub fn frame_prefix(&self) -> Bytes {
        let header_len = if self.flexible_header { 5 } else { 4 };
        let body: u64 = self.parts.iter().map(ResponsePart::len).sum();
        let mut b = BytesMut::with_capacity(4 + header_len);
        b.put_i32((header_len as u64 + body) as i32);
        b.put_i32(self.correlation_id);
        if self.flexible_header {
            b.put_u8(0);
        }
        b.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_counts_all_parts() {
        let r = Response {
            correlation_id: 9,
            flexible_header: true,
            parts: vec![
                ResponsePart::Bytes(Bytes::from_static(b"abc")),
                ResponsePart::Bytes(Bytes::from_static(b"de")),
            ],
        };
        assert_eq!(&r.frame_prefix()[..], &[0, 0, 0, 10, 0, 0, 0, 9, 0]);
        let r = Response::from_body(1, false, Bytes::from_static(b"x"));
        assert_eq!(&r.frame_prefix()[..], &[0, 0, 0, 5, 0, 0, 0, 1]);
    }
}
