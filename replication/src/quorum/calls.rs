//! `call`: an application request to another voter's CONTROLLER listener and its reply. Each
//! call runs on its own short-lived thread with its own connection, bounded by the request
//! timeout, so a slow or dead target never holds up Raft traffic or other calls.

use super::transport::{connect, read_frame, write_frame, FrameKind};
use super::{QuorumConfig, QuorumError};
use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

/// Sends `request` to voter `node` and resolves with its reply, `Timeout` once
/// `config.request_timeout` has passed, or `Unreachable`.
pub(crate) fn call(
    config: &QuorumConfig,
    node: i32,
    request: Vec<u8>,
) -> impl Future<Output = Result<Vec<u8>, QuorumError>> + Send {
    let target = config.voter_addr(node);
    let timeout = config.request_timeout;
    let (reply_tx, reply) = futures::channel::oneshot::channel();
    let started = match target {
        None => Err(QuorumError::Unreachable { node }),
        Some((host, port)) => std::thread::Builder::new()
            .name("quorum-call".to_string())
            .spawn(move || {
                let _ = reply_tx.send(call_blocking(&host, port, &request, timeout, node));
            })
            .map(|_| ())
            .map_err(|e| QuorumError::io("spawning a quorum call thread", e)),
    };
    async move {
        started?;
        reply.await.unwrap_or(Err(QuorumError::Stopped))
    }
}

fn call_blocking(
    host: &str,
    port: u16,
    request: &[u8],
    timeout: Duration,
    node: i32,
) -> Result<Vec<u8>, QuorumError> {
    let deadline = Instant::now() + timeout;
    let classify = |e: io::Error| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => QuorumError::Timeout,
        _ if Instant::now() >= deadline => QuorumError::Timeout,
        _ => QuorumError::Unreachable { node },
    };
    let mut stream = connect(host, port, timeout).map_err(classify)?;
    write_frame(&mut stream, FrameKind::Call, request).map_err(classify)?;
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(QuorumError::Timeout);
    }
    stream.set_read_timeout(Some(remaining)).map_err(classify)?;
    match read_frame(&mut stream).map_err(classify)? {
        (FrameKind::CallReply, reply) => Ok(reply),
        (kind, _) => {
            tracing::warn!(
                node,
                ?kind,
                "a controller answered a call with the wrong frame"
            );
            Err(QuorumError::Unreachable { node })
        }
    }
}
