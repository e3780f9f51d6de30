//! Size-prefixed Kafka frames: a 4-byte big-endian length followed by that many bytes.

use bytes::{Buf, Bytes, BytesMut};
use futures_lite::io::{AsyncRead, AsyncReadExt};

/// Why a frame could not be read. Every variant ends the connection.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection between frames (a normal end).
    #[error("connection closed by peer")]
    Closed,
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed mid-frame after {received} of {expected} bytes")]
    Truncated {
        /// Bytes of the frame (including its size prefix) that arrived.
        received: usize,
        /// Bytes the size prefix announced (including the prefix).
        expected: usize,
    },
    /// The announced size is negative or above `socket.request.max.bytes`.
    #[error("frame of {size} bytes is over socket.request.max.bytes ({limit}) or negative")]
    TooLarge {
        /// The announced size.
        size: i64,
        /// The configured limit.
        limit: usize,
    },
    /// The socket failed.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads Kafka frames from a stream, reusing one growable buffer; each frame is handed out as
/// an owned `Bytes` so that record data in it can travel on without a copy.
pub struct FrameReader {
    buf: BytesMut,
    /// How many bytes from the start of `buf`'s allocation are initialized (≥ `buf.len()`):
    /// spare capacity is zeroed once, not before every read.
    initialized: usize,
    max_frame: usize,
}

/// The smallest read buffer kept between frames.
const READ_CHUNK: usize = 64 * 1024;

impl FrameReader {
    /// A reader that rejects frames larger than `max_frame` bytes (not counting the prefix).
    pub fn new(max_frame: usize) -> Self {
        FrameReader {
            buf: BytesMut::with_capacity(READ_CHUNK),
            initialized: 0,
            max_frame,
        }
    }

    /// Whether a whole frame is already buffered (so reading it will not wait on the socket).
    pub fn has_buffered_frame(&self) -> bool {
        if self.buf.len() < 4 {
            return false;
        }
        let size = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        size >= 0 && self.buf.len() >= 4 + size as usize
    }

    /// Reads the next frame body (without its size prefix).
    pub async fn read_frame<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> Result<Bytes, FrameError> {
        while self.buf.len() < 4 {
            if self.fill(stream).await? == 0 {
                return if self.buf.is_empty() {
                    Err(FrameError::Closed)
                } else {
                    Err(FrameError::Truncated {
                        received: self.buf.len(),
                        expected: 4,
                    })
                };
            }
        }
        let size = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        if size < 0 || size as usize > self.max_frame {
            return Err(FrameError::TooLarge {
                size: size as i64,
                limit: self.max_frame,
            });
        }
        let total = 4 + size as usize;
        if self.buf.capacity() < total {
            self.reserve(total - self.buf.len());
        }
        while self.buf.len() < total {
            if self.fill(stream).await? == 0 {
                return Err(FrameError::Truncated {
                    received: self.buf.len(),
                    expected: total,
                });
            }
        }
        let mut frame = self.buf.split_to(total);
        self.initialized -= total;
        frame.advance(4);
        Ok(frame.freeze())
    }

    /// Grows the buffer; a new allocation starts with only its copied bytes initialized.
    fn reserve(&mut self, additional: usize) {
        let before = self.buf.as_ptr();
        self.buf.reserve(additional);
        if self.buf.as_ptr() != before {
            self.initialized = self.buf.len();
        }
    }

    /// Reads whatever the socket has into the spare capacity; returns the byte count (0 = EOF).
    async fn fill<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> Result<usize, FrameError> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.reserve(READ_CHUNK);
        }
        let start = self.buf.len();
        let cap = self.buf.capacity();
        debug_assert!(self.initialized >= start && self.initialized <= cap);
        if self.initialized < cap {
            let spare = self.buf.spare_capacity_mut();
            let from = self.initialized - start;
            for byte in &mut spare[from..] {
                byte.write(0);
            }
            self.initialized = cap;
        }
        // SAFETY: bytes [start, cap) were initialized (zeroed now or by an earlier fill; `split_to`
        // and `truncate` never de-initialize memory, and `reserve` resets the watermark when it
        // moves to a new allocation), so exposing them as `&mut [u8]` reads no uninitialized
        // memory.
        unsafe { self.buf.set_len(cap) };
        let result = stream.read(&mut self.buf[start..]).await;
        let n = *result.as_ref().unwrap_or(&0);
        self.buf.truncate(start + n);
        Ok(result?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;
    use futures_lite::io::Cursor;

    fn framed(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in parts {
            out.extend_from_slice(&(p.len() as i32).to_be_bytes());
            out.extend_from_slice(p);
        }
        out
    }

    #[test]
    fn reads_consecutive_frames_then_closed() {
        let data = framed(&[b"hello", b"", b"world!"]);
        let mut cur = Cursor::new(data);
        let mut r = FrameReader::new(100);
        block_on(async {
            assert_eq!(&r.read_frame(&mut cur).await.unwrap()[..], b"hello");
            assert_eq!(&r.read_frame(&mut cur).await.unwrap()[..], b"");
            assert_eq!(&r.read_frame(&mut cur).await.unwrap()[..], b"world!");
            assert!(matches!(
                r.read_frame(&mut cur).await,
                Err(FrameError::Closed)
            ));
        });
    }

    #[test]
    fn rejects_oversized_and_negative_frames() {
        let mut cur = Cursor::new(framed(&[&[0u8; 11]]));
        let mut r = FrameReader::new(10);
        assert!(matches!(
            block_on(r.read_frame(&mut cur)),
            Err(FrameError::TooLarge { size: 11, .. })
        ));
        let mut cur = Cursor::new((-5i32).to_be_bytes().to_vec());
        let mut r = FrameReader::new(10);
        assert!(matches!(
            block_on(r.read_frame(&mut cur)),
            Err(FrameError::TooLarge { size: -5, .. })
        ));
    }

    /// Many frames of varied sizes through small reads: every frame comes out intact while
    /// the initialized-watermark logic recycles and reallocates the buffer.
    #[test]
    fn many_frames_through_reallocations() {
        let bodies: Vec<Vec<u8>> = (0..300)
            .map(|i| vec![(i % 251) as u8; (i * 997) % 70_000])
            .collect();
        let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        let mut cur = Cursor::new(framed(&refs));
        let mut r = FrameReader::new(100_000);
        block_on(async {
            for body in &bodies {
                assert_eq!(&r.read_frame(&mut cur).await.unwrap()[..], &body[..]);
            }
            assert!(matches!(
                r.read_frame(&mut cur).await,
                Err(FrameError::Closed)
            ));
        });
    }

    #[test]
    fn reports_truncated_frames() {
        let mut data = framed(&[b"abcdef"]);
        data.truncate(7);
        let mut cur = Cursor::new(data);
        let mut r = FrameReader::new(100);
        assert!(matches!(
            block_on(r.read_frame(&mut cur)),
            Err(FrameError::Truncated {
                received: 7,
                expected: 10
            })
        ));
    }
}
