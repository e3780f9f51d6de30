//! The CONTROLLER listener's wire: length-prefixed frames over std TCP, with timeouts.
//!
//! A frame is `[u32 big-endian length][u8 kind][body]`, the length counting the kind byte and
//! bounded by `MAX_FRAME`; a body is read as its bytes arrive, so a lying length cannot make a
//! reader allocate more than was sent. Anything malformed closes the connection, never panics.
//!
//! Peers hold one outgoing connection each, for Raft messages (one-way); `call`s and observer
//! fetches use their own connections and get a reply frame on the same connection.

use super::{IncomingCall, NodeInput};
use protobuf::Message as _;
use raft::eraftpb::Message;
use std::collections::HashMap;
use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The largest frame accepted: a metadata snapshot travels in one frame.
pub(crate) const MAX_FRAME: usize = 256 << 20;
/// A connection that sends nothing for this long is closed (peers send heartbeats each tick).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The bound on writing one frame, and on waiting for the node thread's answer to a fetch.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// At most this many inbound connections at once; more are closed on accept.
const MAX_CONNECTIONS: usize = 256;
/// Reconnection backoff of a peer sender: doubles from the first to the last.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Messages queued for one peer; beyond this they are dropped (Raft resends).
const PEER_QUEUE: usize = 4096;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FrameKind {
    /// A raft-rs message (eraftpb::Message), one-way.
    Raft = 1,
    /// An application request; answered by `CallReply`.
    Call = 2,
    /// The reply to a `Call`.
    CallReply = 3,
    /// An observer's fetch: an eraftpb::Message whose `from` is the observer and `index` the
    /// next index it needs. Answered by `FetchReply`.
    Fetch = 4,
    /// The answer to a fetch: an eraftpb::Message with the leader (`from`, 0 if unknown), the
    /// term, the commit index, committed entries and, when the observer is behind the log, the
    /// snapshot.
    FetchReply = 5,
}

impl FrameKind {
    fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => FrameKind::Raft,
            2 => FrameKind::Call,
            3 => FrameKind::CallReply,
            4 => FrameKind::Fetch,
            5 => FrameKind::FetchReply,
            _ => return None,
        })
    }
}

/// Writes one frame with a single write call.
pub(crate) fn write_frame(out: &mut impl Write, kind: FrameKind, body: &[u8]) -> io::Result<()> {
    if body.len() + 1 > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "frame larger than MAX_FRAME",
        ));
    }
    let mut frame = Vec::with_capacity(body.len() + 5);
    frame.extend_from_slice(&((body.len() + 1) as u32).to_be_bytes());
    frame.push(kind as u8);
    frame.extend_from_slice(body);
    out.write_all(&frame)?;
    out.flush()
}

/// Reads one frame. A bad length or kind is `InvalidData`; a clean close before a frame is
/// `UnexpectedEof`.
pub(crate) fn read_frame(input: &mut impl Read) -> io::Result<(FrameKind, Vec<u8>)> {
    let mut header = [0u8; 5];
    input.read_exact(&mut header)?;
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame length {len}"),
        ));
    }
    let kind = FrameKind::from_byte(header[4]).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame kind {}", header[4]),
        )
    })?;
    let mut body = Vec::new();
    input.take(len as u64 - 1).read_to_end(&mut body)?;
    if body.len() != len - 1 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "frame cut short",
        ));
    }
    Ok((kind, body))
}

/// Parses an eraftpb::Message from a frame body.
pub(crate) fn decode_message(body: &[u8]) -> io::Result<Message> {
    Message::parse_from_bytes(body)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

/// Encodes an eraftpb::Message for a frame body.
pub(crate) fn encode_message(message: &Message) -> io::Result<Vec<u8>> {
    message
        .write_to_bytes()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

/// Connects to `host:port` within `timeout`, trying each address the name resolves to.
pub(crate) fn connect(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        format!("{host}:{port} resolves to nothing"),
    );
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(timeout))?;
                stream.set_write_timeout(Some(timeout))?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The CONTROLLER listener: an accept thread and one thread per connection.
pub(crate) struct Listener {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    connections: Arc<Mutex<HashMap<u64, TcpStream>>>,
    accept_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Listener {
    /// Binds `addr` and starts accepting. Raft messages and fetches go to the node thread
    /// through `inbox`; application requests go to the engine through `calls`.
    pub(crate) fn start(
        addr: SocketAddr,
        inbox: mpsc::Sender<NodeInput>,
        calls: futures::channel::mpsc::UnboundedSender<IncomingCall>,
    ) -> Result<Self, super::QuorumError> {
        let listener = TcpListener::bind(addr).map_err(|e| {
            super::QuorumError::io(format!("binding the controller listener {addr}"), e)
        })?;
        let local = listener
            .local_addr()
            .map_err(|e| super::QuorumError::io("reading the controller listener's address", e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(HashMap::new()));
        let accept_stop = stop.clone();
        let accept_connections = connections.clone();
        let accept_thread = std::thread::Builder::new()
            .name("quorum-listen".to_string())
            .spawn(move || accept_loop(listener, inbox, calls, accept_stop, accept_connections))
            .map_err(|e| super::QuorumError::io("spawning the controller listener thread", e))?;
        Ok(Listener {
            addr: local,
            stop,
            connections,
            accept_thread: Mutex::new(Some(accept_thread)),
        })
    }

    /// Stops accepting, waits until the port is released, and closes every open connection
    /// (idempotent).
    pub(crate) fn stop(&self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the accept thread, which then sees `stop`.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        let accept_thread = match self.accept_thread.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(thread) = accept_thread {
            if thread.join().is_err() {
                tracing::error!("the controller listener thread panicked");
            }
        }
        let open = match self.connections.lock() {
            Ok(mut guard) => std::mem::take(&mut *guard),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        for stream in open.values() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    inbox: mpsc::Sender<NodeInput>,
    calls: futures::channel::mpsc::UnboundedSender<IncomingCall>,
    stop: Arc<AtomicBool>,
    connections: Arc<Mutex<HashMap<u64, TcpStream>>>,
) {
    let next_id = AtomicU64::new(0);
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "controller listener accept failed");
                std::thread::sleep(BACKOFF_MIN);
                continue;
            }
        };
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut open = match connections.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            if open.len() >= MAX_CONNECTIONS {
                tracing::warn!(
                    "controller listener at {MAX_CONNECTIONS} connections; closing a new one"
                );
                continue;
            }
            match stream.try_clone() {
                Ok(clone) => open.insert(id, clone),
                Err(_) => continue,
            };
        }
        let (inbox, calls, connections) = (inbox.clone(), calls.clone(), connections.clone());
        let spawned = std::thread::Builder::new()
            .name("quorum-conn".to_string())
            .spawn(move || {
                let peer = stream.peer_addr().ok();
                if let Err(e) = serve_connection(stream, &inbox, &calls) {
                    if e.kind() != io::ErrorKind::UnexpectedEof {
                        tracing::debug!(?peer, error = %e, "closing a controller connection");
                    }
                }
                if let Ok(mut open) = connections.lock() {
                    open.remove(&id);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot spawn a controller connection thread");
        }
    }
}

/// Serves one inbound connection until it closes, errs or sends something malformed.
fn serve_connection(
    stream: TcpStream,
    inbox: &mpsc::Sender<NodeInput>,
    calls: &futures::channel::mpsc::UnboundedSender<IncomingCall>,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let closed = || io::Error::new(io::ErrorKind::BrokenPipe, "the quorum is stopped");
    loop {
        let (kind, body) = read_frame(&mut reader)?;
        match kind {
            FrameKind::Raft => {
                inbox
                    .send(NodeInput::Raft(decode_message(&body)?))
                    .map_err(|_| closed())?;
            }
            FrameKind::Fetch => {
                let (reply_tx, reply) = mpsc::channel();
                inbox
                    .send(NodeInput::Fetch(decode_message(&body)?, reply_tx))
                    .map_err(|_| closed())?;
                let answer = reply.recv_timeout(IO_TIMEOUT).map_err(|_| closed())?;
                write_frame(
                    &mut writer,
                    FrameKind::FetchReply,
                    &encode_message(&answer)?,
                )?;
            }
            FrameKind::Call => {
                let (reply_tx, reply) = futures::channel::oneshot::channel();
                calls
                    .unbounded_send(IncomingCall {
                        request: body,
                        reply: reply_tx,
                    })
                    .map_err(|_| closed())?;
                // The engine answers or drops the sender; the caller bounds its own wait.
                let answer = futures::executor::block_on(reply).map_err(|_| closed())?;
                write_frame(&mut writer, FrameKind::CallReply, &answer)?;
            }
            FrameKind::CallReply | FrameKind::FetchReply => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unexpected {kind:?} frame"),
                ));
            }
        }
    }
}

/// Starts the sender thread of peer `peer` (a Raft id) at `host:port` and returns its queue.
/// It connects lazily, backs off after failures, and reports undelivered messages (and every
/// snapshot's outcome) to the node thread.
pub(crate) fn spawn_peer(
    peer: u64,
    host: String,
    port: u16,
    timeout: Duration,
    inbox: mpsc::Sender<NodeInput>,
) -> io::Result<mpsc::SyncSender<Message>> {
    let (tx, rx) = mpsc::sync_channel::<Message>(PEER_QUEUE);
    std::thread::Builder::new()
        .name(format!("quorum-peer-{peer}"))
        .spawn(move || {
            let mut connection: Option<TcpStream> = None;
            let mut backoff = BACKOFF_MIN;
            let mut retry_at = Instant::now();
            while let Ok(message) = rx.recv() {
                let is_snapshot = message.get_msg_type() == raft::eraftpb::MessageType::MsgSnapshot;
                if connection.is_none() && Instant::now() >= retry_at {
                    match connect(&host, port, timeout) {
                        Ok(stream) => {
                            backoff = BACKOFF_MIN;
                            connection = Some(stream);
                        }
                        Err(e) => {
                            tracing::debug!(peer, %host, port, error = %e, "cannot reach quorum peer");
                            retry_at = Instant::now() + backoff;
                            backoff = (backoff * 2).min(BACKOFF_MAX);
                        }
                    }
                }
                let delivered = match connection.as_mut() {
                    Some(stream) => match encode_message(&message).and_then(|b| write_frame(stream, FrameKind::Raft, &b)) {
                        Ok(()) => true,
                        Err(e) => {
                            tracing::debug!(peer, error = %e, "lost the connection to quorum peer");
                            connection = None;
                            false
                        }
                    },
                    None => false,
                };
                let sent = if !delivered { inbox.send(NodeInput::Unreachable(peer)) } else { Ok(()) };
                let reported = if is_snapshot { inbox.send(NodeInput::SnapshotSent(peer, delivered)) } else { Ok(()) };
                if sent.is_err() || reported.is_err() {
                    return;
                }
            }
        })?;
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut wire = Vec::new();
        write_frame(&mut wire, FrameKind::Call, b"hello").unwrap();
        let (kind, body) = read_frame(&mut wire.as_slice()).unwrap();
        assert_eq!((kind, body.as_slice()), (FrameKind::Call, &b"hello"[..]));
    }

    #[test]
    fn bad_frames_are_errors_not_allocations() {
        let huge = [0xff, 0xff, 0xff, 0xff, 1];
        assert_eq!(
            read_frame(&mut &huge[..]).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        let bad_kind = [0, 0, 0, 1, 99];
        assert_eq!(
            read_frame(&mut &bad_kind[..]).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        // Claims 100 MiB, sends 3 bytes: the reader holds only what arrived.
        let short = [0x06, 0x40, 0x00, 0x00, 1, 1, 2, 3];
        assert_eq!(
            read_frame(&mut &short[..]).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        assert!(decode_message(b"\xff\xff\xff").is_err());
    }
}
