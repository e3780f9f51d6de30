//! One client connection: read requests, let the engine answer them, write responses in order.
//!
//! Requests on a connection are handled one at a time and answered in the order they arrived,
//! as Kafka guarantees; clients pipeline by sending several requests before reading, and those
//! wait in the socket buffer and in [`FrameReader`]'s buffer.
//!
//! Memory: a connection holds its small read buffer, the request being received (charged to
//! the shard's [`RequestMemoryPool`] when large) and the request being handled, whose charge is
//! released as soon as the handler returns. A connection on which no byte arrives for
//! `connections.max.idle.ms` is closed, as Kafka does; a client that sends slowly keeps its
//! connection, and costs only the bytes it sent.

use crate::frame::{FrameError, FrameReader};
use crate::listener::ShutdownSignal;
use crate::memory_pool::RequestMemoryPool;
use crate::request::RawRequest;
use crate::response::{Response, ResponsePart};
use crate::zero_copy::write_file_region;
use bytes::BytesMut;
use futures_lite::future;
use futures_lite::io::AsyncWriteExt;
use glommio::net::TcpStream;
use std::future::Future;
use std::io;
use std::rc::Rc;
use std::time::Duration;
use tracing::debug;

/// What the engine provides to answer requests.
pub trait RequestHandler {
    /// Answers one request; `None` means no response is sent (Produce with acks=0), and
    /// `Err` closes the connection (the request could not be understood at all).
    fn handle(&self, request: RawRequest)
        -> impl Future<Output = Result<Option<Response>, String>>;

    /// Told after each response how many file regions went out from the page cache and how many
    /// had to be read from disk first (for metrics).
    fn regions_sent(&self, _page_cache: u64, _disk: u64) {}
}

/// Limits applied to every connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// `socket.request.max.bytes`: larger frames close the connection.
    pub max_request_bytes: usize,
    /// `connections.max.idle.ms`: a connection on which no byte arrives for this long is closed
    /// (`None`: never).
    pub max_idle: Option<Duration>,
}

/// Byte parts smaller than this are coalesced with the frame prefix into one write.
const COALESCE_LIMIT: usize = 64 * 1024;

/// Serves one connection until the peer closes it, it misbehaves, it stays idle for
/// `connections.max.idle.ms`, or `shutdown` is raised (a request already being handled is
/// finished and answered first). Large requests are charged to `pool`, the shard's budget.
pub async fn serve_connection<H: RequestHandler>(
    mut stream: TcpStream,
    handler: &H,
    limits: ConnectionLimits,
    pool: &Rc<RequestMemoryPool>,
    shutdown: &ShutdownSignal,
) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    if let Err(e) = stream.set_read_timeout(limits.max_idle) {
        debug!(%peer, "closing connection: cannot set the idle timeout: {e}");
        return;
    }
    let mut reader = FrameReader::new(limits.max_request_bytes, pool.clone());
    loop {
        if shutdown.is_triggered() && !reader.has_buffered_frame() {
            break;
        }
        let frame = future::or(
            async { Some(reader.read_frame(&mut stream).await) },
            async {
                shutdown.wait().await;
                None
            },
        )
        .await;
        let frame = match frame {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(FrameError::Closed)) => break,
            Some(Err(e)) => {
                debug!(%peer, "closing connection: {e}");
                break;
            }
        };
        let request = match RawRequest::parse(frame) {
            Ok(r) => r,
            Err(e) => {
                debug!(%peer, "closing connection: bad request header: {e}");
                break;
            }
        };
        let handled = handler.handle(request).await;
        reader.request_done();
        match handled {
            Ok(Some(response)) => match write_response(&mut stream, &response).await {
                Ok(sent) if sent.page_cache + sent.disk > 0 => {
                    handler.regions_sent(sent.page_cache, sent.disk)
                }
                Ok(_) => {}
                Err(e) => {
                    debug!(%peer, "closing connection: write failed: {e}");
                    break;
                }
            },
            Ok(None) => {}
            Err(reason) => {
                debug!(%peer, "closing connection: {reason}");
                break;
            }
        }
    }
    let _ = stream.close().await;
}

/// How the file regions of one response were sent.
#[derive(Debug, Default, Clone, Copy)]
pub struct RegionsSent {
    /// Regions that were in the page cache (sent with sendfile).
    pub page_cache: u64,
    /// Regions read from disk first.
    pub disk: u64,
}

/// Writes one response: the prefix and small byte parts coalesced, file regions by sendfile.
pub async fn write_response(
    stream: &mut TcpStream,
    response: &Response,
) -> io::Result<RegionsSent> {
    let mut sent = RegionsSent::default();
    let mut pending = BytesMut::new();
    pending.extend_from_slice(&response.frame_prefix());
    for part in &response.parts {
        match part {
            ResponsePart::Bytes(b) if b.len() + pending.len() <= COALESCE_LIMIT => {
                pending.extend_from_slice(b)
            }
            ResponsePart::Bytes(b) => {
                flush(stream, &mut pending).await?;
                stream.write_all(b).await?;
            }
            ResponsePart::File(region) => {
                flush(stream, &mut pending).await?;
                if write_file_region(stream, region).await? {
                    sent.page_cache += 1;
                } else {
                    sent.disk += 1;
                }
            }
        }
    }
    flush(stream, &mut pending).await?;
    Ok(sent)
}

async fn flush(stream: &mut TcpStream, pending: &mut BytesMut) -> io::Result<()> {
    if !pending.is_empty() {
        stream.write_all(pending).await?;
        pending.clear();
    }
    Ok(())
}
