//! Size-prefixed Kafka frames: a 4-byte big-endian length followed by that many bytes.
//!
//! Memory follows the bytes that actually arrive, never the length a frame announces:
//! * Every connection reads into one small buffer of [`SMALL_FRAME`] bytes, which holds the
//!   size prefix, small requests, and several pipelined small requests at once. It is a fixed
//!   per-connection cost and is not charged to the shard's [`RequestMemoryPool`].
//! * A frame larger than that gets a body buffer of its own once the read buffer is full. The body
//!   buffer doubles as bytes arrive: it is at most twice the body bytes received so far, and
//!   never beyond the body's end. Each allocation is charged to the pool before it is made;
//!   while the pool has no room the reader waits, leaving the bytes in the socket.
//! * A complete large frame is handed out as the body buffer itself (`Bytes`, no copy); a small
//!   one is copied out of the read buffer (at most [`SMALL_FRAME`] bytes).
//!
//! A connection that announces a 100 MiB frame and sends 4 KiB therefore costs about 8 KiB of
//! buffers, and one that sent N bytes of a large frame at most 2N, never the announced size.

use crate::memory_pool::{Charge, RequestMemoryPool};
use bytes::{Buf, Bytes, BytesMut};
use futures_lite::io::{AsyncRead, AsyncReadExt};
use std::rc::Rc;

/// Size of each connection's read buffer; frames up to this size (prefix included) are received
/// in it and cost no budget.
pub const SMALL_FRAME: usize = 4096;

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
    /// No byte arrived for `connections.max.idle.ms` (the stream's read timeout).
    #[error("idle for longer than connections.max.idle.ms")]
    Idle,
    /// The socket failed.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads Kafka frames from a stream into buffers sized by the bytes received (see the module
/// documentation), charging large ones to the shard's [`RequestMemoryPool`]. Each frame is
/// handed out as an owned `Bytes` so that record data in it can travel on without a copy; its
/// charge lasts until [`FrameReader::request_done`] or the next read.
pub struct FrameReader {
    /// The read buffer. All of it is initialized (allocated zeroed); `buf[..filled]` is received
    /// data that starts at a frame boundary.
    buf: BytesMut,
    filled: usize,
    /// The body of a frame larger than [`SMALL_FRAME`] while it arrives.
    large: Option<LargeBody>,
    /// What the last frame handed out is charged.
    in_flight: Charge,
    max_frame: usize,
    pool: Rc<RequestMemoryPool>,
}

/// The body of one large frame being received.
struct LargeBody {
    /// All of it is initialized (allocated zeroed); `buf[..filled]` has arrived.
    buf: BytesMut,
    filled: usize,
    /// The body size the prefix announced (at most `socket.request.max.bytes`).
    size: usize,
    /// What `buf` is charged.
    charge: Charge,
}

impl FrameReader {
    /// A reader that rejects frames larger than `max_frame` bytes (not counting the prefix) and
    /// charges large frames to `pool`.
    pub fn new(max_frame: usize, pool: Rc<RequestMemoryPool>) -> Self {
        FrameReader {
            buf: BytesMut::new(),
            filled: 0,
            large: None,
            in_flight: Charge::None,
            max_frame,
            pool,
        }
    }

    /// Whether a whole frame is already buffered (so reading it will not wait on the socket).
    pub fn has_buffered_frame(&self) -> bool {
        match &self.large {
            Some(large) => large.filled == large.size,
            None => matches!(self.announced(), Ok(Some(total)) if self.filled >= total),
        }
    }

    /// Releases the budget of the last frame handed out (its request has been handled).
    pub fn request_done(&mut self) {
        self.pool
            .release(std::mem::replace(&mut self.in_flight, Charge::None));
    }

    /// Reads the next frame body (without its size prefix). Releases the previous frame's
    /// budget first. Dropping the future before it completes loses no data.
    pub async fn read_frame<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> Result<Bytes, FrameError> {
        self.request_done();
        loop {
            if let Some(large) = &mut self.large {
                if large.filled == large.size {
                    return Ok(self.finish_large());
                }
                if large.filled == large.buf.len() {
                    self.grow_large().await;
                    continue;
                }
                let n = read_some(stream, &mut large.buf[large.filled..]).await?;
                if n == 0 {
                    return Err(FrameError::Truncated {
                        received: large.filled.saturating_add(4),
                        expected: large.size.saturating_add(4),
                    });
                }
                large.filled += n;
                continue;
            }
            let announced = self.announced()?;
            match announced {
                Some(total) if self.filled >= total => return Ok(self.take_small(total)),
                Some(total) if total > SMALL_FRAME && self.filled == SMALL_FRAME => {
                    self.start_large(total - 4).await;
                    continue;
                }
                _ => {}
            }
            if self.filled == self.buf.len() {
                self.renew_read_buffer();
            }
            let n = read_some(stream, &mut self.buf[self.filled..]).await?;
            if n == 0 {
                return Err(if self.filled == 0 {
                    FrameError::Closed
                } else {
                    FrameError::Truncated {
                        received: self.filled,
                        expected: announced.unwrap_or(4),
                    }
                });
            }
            self.filled += n;
        }
    }

    /// The total size (prefix included) of the frame at the start of the read buffer, once its
    /// prefix has arrived.
    fn announced(&self) -> Result<Option<usize>, FrameError> {
        if self.filled < 4 {
            return Ok(None);
        }
        let size = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        match usize::try_from(size) {
            Ok(body) if body <= self.max_frame => Ok(body.checked_add(4)),
            _ => Err(FrameError::TooLarge {
                size: i64::from(size),
                limit: self.max_frame,
            }),
        }
    }

    /// Copies the complete small frame of `total` bytes out of the read buffer.
    fn take_small(&mut self, total: usize) -> Bytes {
        debug_assert!(total <= SMALL_FRAME && total <= self.filled);
        let frame = Bytes::copy_from_slice(&self.buf[4..total]);
        self.buf.advance(total);
        self.filled -= total;
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
        frame
    }

    /// Replaces a full read buffer by a fresh one holding the same received bytes (the start of
    /// a frame that fits in it, so there is room left).
    fn renew_read_buffer(&mut self) {
        debug_assert!(self.filled < SMALL_FRAME);
        let mut fresh = BytesMut::zeroed(SMALL_FRAME);
        fresh[..self.filled].copy_from_slice(&self.buf[..self.filled]);
        self.buf = fresh;
    }

    /// Moves the body of a large frame (`size` bytes announced) out of the full read buffer
    /// ([`SMALL_FRAME`] bytes received) into a body buffer of its own, charged to the pool.
    async fn start_large(&mut self, size: usize) {
        let received = self.filled - 4;
        let (charge, capacity) = self.charge_body(received, size).await;
        let mut body = BytesMut::zeroed(capacity);
        body[..received].copy_from_slice(&self.buf[4..self.filled]);
        self.large = Some(LargeBody {
            buf: body,
            filled: received,
            size,
            charge,
        });
        self.buf = BytesMut::new();
        self.filled = 0;
    }

    /// Replaces the full body buffer by a larger one.
    async fn grow_large(&mut self) {
        let Some((filled, size)) = self.large.as_ref().map(|l| (l.filled, l.size)) else {
            return;
        };
        let (charge, capacity) = self.charge_body(filled, size).await;
        let Some(large) = self.large.as_mut() else {
            return;
        };
        debug_assert!(
            large.charge != Charge::Reserve(size),
            "a reserve holder never grows"
        );
        let mut body = BytesMut::zeroed(capacity);
        body[..filled].copy_from_slice(&large.buf[..filled]);
        large.buf = body;
        self.pool
            .release(std::mem::replace(&mut large.charge, charge));
    }

    /// Charges the next body buffer of a frame with `received` of `size` body bytes: twice the
    /// bytes received (at most the body), or the whole body when the connection gets the pool's
    /// reserve. Waits while the pool has room for neither.
    async fn charge_body(&self, received: usize, size: usize) -> (Charge, usize) {
        debug_assert!(received >= SMALL_FRAME - 4 && received < size);
        let wanted = received.saturating_mul(2).min(size);
        let charge = self.pool.charge(wanted, size).await;
        let capacity = charge.bytes();
        debug_assert!(capacity > received && capacity <= size);
        (charge, capacity)
    }

    /// Hands out the completed large frame; its charge stays until the request is done.
    fn finish_large(&mut self) -> Bytes {
        let Some(large) = self.large.take() else {
            return Bytes::new();
        };
        debug_assert_eq!(large.buf.len(), large.size);
        self.in_flight = large.charge;
        large.buf.freeze()
    }
}

impl Drop for FrameReader {
    fn drop(&mut self) {
        self.request_done();
        if let Some(large) = self.large.take() {
            self.pool.release(large.charge);
        }
    }
}

/// One read from the stream; a read timeout (`connections.max.idle.ms`) is [`FrameError::Idle`].
async fn read_some<S: AsyncRead + Unpin>(
    stream: &mut S,
    into: &mut [u8],
) -> Result<usize, FrameError> {
    match stream.read(into).await {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(FrameError::Idle),
        Err(e) => Err(FrameError::Io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::{block_on, poll_once};
    use futures_lite::io::Cursor;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    fn framed(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in parts {
            out.extend_from_slice(&(p.len() as i32).to_be_bytes());
            out.extend_from_slice(p);
        }
        out
    }

    fn unbounded() -> Rc<RequestMemoryPool> {
        Rc::new(RequestMemoryPool::new(None, 1 << 30))
    }

    /// A stream that gives out its data a few bytes per read, then either ends or never
    /// answers again (a client that stopped sending).
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        reads: usize,
        max_step: usize,
        then_stall: bool,
    }

    impl Trickle {
        fn new(data: Vec<u8>, max_step: usize, then_stall: bool) -> Self {
            Trickle {
                data,
                pos: 0,
                reads: 0,
                max_step,
                then_stall,
            }
        }
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<std::io::Result<usize>> {
            if self.pos == self.data.len() {
                return if self.then_stall {
                    Poll::Pending
                } else {
                    Poll::Ready(Ok(0))
                };
            }
            self.reads += 1;
            let step = 1 + self.reads % self.max_step;
            let n = step.min(buf.len()).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Poll::Ready(Ok(n))
        }
    }

    #[test]
    fn reads_consecutive_frames_then_closed() {
        let data = framed(&[b"hello", b"", b"world!"]);
        let mut cur = Cursor::new(data);
        let mut r = FrameReader::new(100, unbounded());
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
        let mut r = FrameReader::new(10, unbounded());
        assert!(matches!(
            block_on(r.read_frame(&mut cur)),
            Err(FrameError::TooLarge { size: 11, .. })
        ));
        let mut cur = Cursor::new((-5i32).to_be_bytes().to_vec());
        let mut r = FrameReader::new(10, unbounded());
        assert!(matches!(
            block_on(r.read_frame(&mut cur)),
            Err(FrameError::TooLarge { size: -5, .. })
        ));
    }

    /// Many frames of varied sizes, small and large, pipelined and cut into reads of 1 to 13
    /// bytes, through a pool only a little larger than one maximal frame: every frame comes out
    /// intact, and all budget is back once each request is done.
    #[test]
    fn many_frames_through_small_reads() {
        let bodies: Vec<Vec<u8>> = (0..300)
            .map(|i| {
                (0..(i * 997) % 70_000)
                    .map(|j| (i + j % 251) as u8)
                    .collect()
            })
            .collect();
        let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        let mut stream = Trickle::new(framed(&refs), 13, false);
        let pool = Rc::new(RequestMemoryPool::new(Some(150_000), 100_000));
        let mut r = FrameReader::new(100_000, pool.clone());
        block_on(async {
            for body in &bodies {
                let frame = r.read_frame(&mut stream).await.unwrap();
                assert_eq!(&frame[..], &body[..]);
                assert!(pool.used() <= 150_000);
                r.request_done();
                assert_eq!(pool.used(), 0);
            }
            assert!(matches!(
                r.read_frame(&mut stream).await,
                Err(FrameError::Closed)
            ));
        });
    }

    /// A frame announcing 100 MiB whose bytes come slowly costs budget in proportion to the
    /// bytes received (at most twice them), never the announced size.
    #[test]
    fn huge_declared_frame_fed_slowly_costs_only_its_bytes() {
        let size = 100 << 20;
        for sent in [100usize, 4096, 10_000, 200_000, 1 << 20] {
            let mut data = (size as i32).to_be_bytes().to_vec();
            data.extend(std::iter::repeat(7u8).take(sent));
            let mut stream = Trickle::new(data, 64 * 1024, true);
            let pool = Rc::new(RequestMemoryPool::new(None, size));
            let mut r = FrameReader::new(size, pool.clone());
            {
                let mut reading = Box::pin(r.read_frame(&mut stream));
                assert!(block_on(poll_once(&mut reading)).is_none());
            }
            assert_eq!(stream.pos, stream.data.len(), "every byte sent was read");
            let bound = 2 * sent;
            assert!(
                pool.used() <= bound,
                "{sent} bytes sent hold {} bytes of budget",
                pool.used()
            );
            drop(r);
            assert_eq!(pool.used(), 0);
        }
    }

    /// With the shared part of the pool exhausted, one large frame at a time gets the reserve
    /// and completes; the others wait, without reading, until its request is done.
    #[test]
    fn exhausted_pool_admits_one_large_frame_at_a_time() {
        let body = vec![9u8; 50_000];
        let pool = Rc::new(RequestMemoryPool::new(Some(60_000), 60_000));
        let mut a = FrameReader::new(60_000, pool.clone());
        let mut b = FrameReader::new(60_000, pool.clone());
        let mut sa = Trickle::new(framed(&[&body]), 5000, false);
        let mut sb = Trickle::new(framed(&[&body]), 5000, false);
        block_on(async {
            let fa = a.read_frame(&mut sa).await.unwrap();
            assert_eq!(pool.used(), 50_000);
            {
                let mut waiting = Box::pin(b.read_frame(&mut sb));
                assert!(poll_once(&mut waiting).await.is_none());
            }
            assert!(
                sb.pos <= SMALL_FRAME,
                "b stopped reading at its read buffer"
            );
            assert_eq!(fa.len(), 50_000);
            a.request_done();
            let fb = b.read_frame(&mut sb).await.unwrap();
            assert_eq!(&fb[..], &body[..]);
        });
    }

    #[test]
    fn reports_truncated_frames() {
        let mut data = framed(&[b"abcdef"]);
        data.truncate(7);
        let mut cur = Cursor::new(data);
        let mut r = FrameReader::new(100, unbounded());
        assert!(matches!(
            block_on(r.read_frame(&mut cur)),
            Err(FrameError::Truncated {
                received: 7,
                expected: 10
            })
        ));
        let mut data = framed(&[&[1u8; 10_000]]);
        data.truncate(9_000);
        let mut cur = Cursor::new(data);
        let mut r = FrameReader::new(100_000, unbounded());
        assert!(matches!(
            block_on(r.read_frame(&mut cur)),
            Err(FrameError::Truncated {
                received: 9_000,
                expected: 10_004
            })
        ));
    }
}
