//! One pipelined client connection to a Kafka node.
//!
//! Requests are written in the order [`Connection::submit`] is called, each registering a waiter
//! in a FIFO queue before its bytes go out; a reader task takes response frames off the socket
//! and hands each to the waiter at the head of the queue after checking that the correlation ids
//! match (Kafka answers in order on a connection). A mismatch, a bad frame or a closed socket
//! fails the connection and every request still waiting on it.

use super::{ClientError, Result};
use crate::frame::{FrameError, FrameReader};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::channel::oneshot;
use futures::io::{AsyncReadExt as _, AsyncWriteExt as _, ReadHalf, WriteHalf};
use futures::lock::Mutex;
use glommio::net::TcpStream;
use glommio::timer::Timer;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Settings shared by every connection a client opens.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Sent as `client.id` in every request header.
    pub client_id: String,
    /// How long a TCP connect may take.
    pub connect_timeout: Duration,
    /// How long a response may take once its request is written (long-polling fetches add
    /// their `max_wait_ms` on top).
    pub request_timeout: Duration,
    /// The largest response frame accepted.
    pub max_response_bytes: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            client_id: "sluice-client".into(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_response_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Highest version of each API this client has been written and tested against; newer versions
/// change the request shape (topic ids instead of names, for instance).
fn version_cap(key: i16) -> i16 {
    match ApiKey::try_from(key) {
        Ok(ApiKey::Produce) => 9,
        Ok(ApiKey::Fetch) => 12,
        Ok(ApiKey::ListOffsets) => 7,
        Ok(ApiKey::Metadata) => 12,
        Ok(ApiKey::CreateTopics) => 7,
        Ok(ApiKey::InitProducerId) => 4,
        Ok(ApiKey::ApiVersions) => 3,
        _ => i16::MAX,
    }
}

struct Waiter {
    correlation_id: i32,
    tx: oneshot::Sender<Result<Bytes>>,
}

/// State shared by the connection and its reader task.
struct Shared {
    addr: String,
    waiters: RefCell<VecDeque<Waiter>>,
    broken: RefCell<Option<String>>,
}

impl Shared {
    fn fail(&self, reason: String) {
        if self.broken.borrow().is_none() {
            *self.broken.borrow_mut() = Some(reason.clone());
        }
        let waiters: Vec<Waiter> = self.waiters.borrow_mut().drain(..).collect();
        for w in waiters {
            let _ = w.tx.send(Err(ClientError::Broken {
                addr: self.addr.clone(),
                reason: reason.clone(),
            }));
        }
    }

    fn check(&self) -> Result<()> {
        match &*self.broken.borrow() {
            Some(reason) => Err(ClientError::Broken {
                addr: self.addr.clone(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// One TCP connection to a Kafka node, with the API versions the node supports.
///
/// Dropping it cancels its reader task and closes the socket.
pub struct Connection {
    shared: Rc<Shared>,
    writer: Mutex<WriteHalf<TcpStream>>,
    next_correlation: Cell<i32>,
    versions: HashMap<i16, (i16, i16)>,
    options: ClientOptions,
    _reader: glommio::Task<()>,
}

impl Connection {
    /// Connects to `addr` (`host:port`) and negotiates API versions with ApiVersions.
    pub async fn connect(addr: &str, options: &ClientOptions) -> Result<Connection> {
        let connect_err = |reason: String| ClientError::Connect {
            addr: addr.to_string(),
            reason,
        };
        let resolved = std::net::ToSocketAddrs::to_socket_addrs(addr)
            .map_err(|e| connect_err(format!("cannot resolve: {e}")))?
            .next()
            .ok_or_else(|| connect_err("the name resolves to no address".into()))?;
        let stream = TcpStream::connect_timeout(resolved, options.connect_timeout)
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (reader, writer) = stream.split();
        let shared = Rc::new(Shared {
            addr: addr.to_string(),
            waiters: RefCell::new(VecDeque::new()),
            broken: RefCell::new(None),
        });
        let task = glommio::spawn_local(read_loop(
            reader,
            shared.clone(),
            options.max_response_bytes,
        ));
        let mut conn = Connection {
            shared,
            writer: Mutex::new(writer),
            next_correlation: Cell::new(0),
            versions: HashMap::new(),
            options: options.clone(),
            _reader: task,
        };
        conn.negotiate().await?;
        Ok(conn)
    }

    /// The peer address this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// Whether the connection has failed (every further request will fail at once).
    pub fn is_broken(&self) -> bool {
        self.shared.broken.borrow().is_some()
    }

    /// The options the connection was opened with.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// ApiVersions v3, falling back to the version the broker lists when it answers
    /// UNSUPPORTED_VERSION (in the v0 format, as Kafka does).
    async fn negotiate(&mut self) -> Result<()> {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("sluice"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut version = 3;
        for _ in 0..2 {
            let raw = self.submit_raw(&req, version, true).await?.await?;
            let mut body = raw;
            let _header = ResponseHeader::decode(&mut body, 0).map_err(codec)?;
            if body.len() >= 2 && i16::from_be_bytes([body[0], body[1]]) == 35 {
                // UNSUPPORTED_VERSION: the body is in the v0 format and lists what is supported.
                let v0 = ApiVersionsResponse::decode(&mut body, 0).map_err(codec)?;
                let max = v0
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                    .map(|k| k.max_version.min(3))
                    .unwrap_or(0);
                if max >= version {
                    break;
                }
                version = max;
                continue;
            }
            let resp = ApiVersionsResponse::decode(&mut body, version).map_err(codec)?;
            if resp.error_code != 0 {
                return Err(ClientError::Kafka {
                    what: "ApiVersions".into(),
                    code: resp.error_code,
                    message: None,
                });
            }
            self.versions = resp
                .api_keys
                .iter()
                .map(|k| (k.api_key, (k.min_version, k.max_version)))
                .collect();
            return Ok(());
        }
        Err(ClientError::Unsupported {
            api: "ApiVersions".into(),
            addr: self.shared.addr.clone(),
        })
    }

    /// The version of `R` to use: the highest that the broker, kafka-protocol and this client all
    /// support.
    pub fn version<R: Request>(&self) -> Result<i16> {
        self.version_up_to::<R>(version_cap(R::KEY))
    }

    /// The highest version of `R` that the broker and kafka-protocol support, at most `cap`: for
    /// callers that build requests in newer shapes than this client's own cap (the replica
    /// fetcher's Fetch v15+ with `ReplicaState`).
    pub fn version_up_to<R: Request>(&self, cap: i16) -> Result<i16> {
        let unsupported = || ClientError::Unsupported {
            api: api_name(R::KEY),
            addr: self.shared.addr.clone(),
        };
        let (bmin, bmax) = *self.versions.get(&R::KEY).ok_or_else(unsupported)?;
        let v = bmax.min(R::VERSIONS.max).min(cap);
        if v < bmin || v < R::VERSIONS.min {
            return Err(unsupported());
        }
        Ok(v)
    }

    /// Sends `req` at the negotiated version and waits for its response.
    pub async fn send<R: Request>(&self, req: &R) -> Result<R::Response> {
        self.submit(req).await?.await
    }

    /// Sends `req` at `version` (already chosen from the negotiated range, the request built in
    /// that version's shape) and waits for its response.
    pub async fn send_at<R: Request>(&self, req: &R, version: i16) -> Result<R::Response> {
        self.submit_at(req, version, Duration::ZERO).await?.await
    }

    /// Writes `req` (at the negotiated version) and returns a handle on its response, so that
    /// several requests can be in flight on this connection.
    pub async fn submit<R: Request>(&self, req: &R) -> Result<Pending<R::Response>> {
        let version = self.version::<R>()?;
        self.submit_at(req, version, Duration::ZERO).await
    }

    /// Like [`Connection::submit`] at an explicit `version`, allowing `extra` time on top of the
    /// request timeout (for long-polling fetches).
    pub async fn submit_at<R: Request>(
        &self,
        req: &R,
        version: i16,
        extra: Duration,
    ) -> Result<Pending<R::Response>> {
        let mut raw = self.submit_raw(req, version, true).await?;
        raw.timer = Timer::new(self.options.request_timeout + extra);
        raw.timeout_ms = (self.options.request_timeout + extra).as_millis() as u64;
        Ok(Pending {
            raw,
            version,
            _response: PhantomData,
        })
    }

    /// Writes `req` without expecting a response (Produce with acks=0); returns once the bytes
    /// are written.
    pub async fn send_no_response<R: Request>(&self, req: &R) -> Result<()> {
        let version = self.version::<R>()?;
        self.submit_raw(req, version, false).await.map(|_| ())
    }

    async fn submit_raw<R: Request>(
        &self,
        req: &R,
        version: i16,
        expect_response: bool,
    ) -> Result<RawPending> {
        self.shared.check()?;
        let correlation_id = self.next_correlation.get();
        self.next_correlation.set(correlation_id.wrapping_add(1));
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_string(self.options.client_id.clone())));
        let mut frame = BytesMut::with_capacity(256);
        frame.put_i32(0);
        header
            .encode(&mut frame, R::header_version(version))
            .map_err(codec)?;
        req.encode(&mut frame, version).map_err(codec)?;
        let len = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&len.to_be_bytes());
        let api = api_name(R::KEY);
        let (tx, rx) = oneshot::channel();
        let mut writer = self.writer.lock().await;
        self.shared.check()?;
        if expect_response {
            self.shared
                .waiters
                .borrow_mut()
                .push_back(Waiter { correlation_id, tx });
        }
        let timeout = self.options.request_timeout;
        let write = async {
            let r = writer.write_all(&frame).await;
            Some(r)
        };
        let timed = async {
            Timer::new(timeout).await;
            None
        };
        match futures_lite::future::or(write, timed).await {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                self.shared.fail(format!("write failed: {e}"));
                return Err(ClientError::Broken {
                    addr: self.shared.addr.clone(),
                    reason: format!("write failed: {e}"),
                });
            }
            None => {
                self.shared.fail("write timed out".into());
                return Err(ClientError::Timeout {
                    api,
                    addr: self.shared.addr.clone(),
                    timeout_ms: timeout.as_millis() as u64,
                });
            }
        }
        drop(writer);
        Ok(RawPending {
            rx,
            timer: Timer::new(timeout),
            timeout_ms: timeout.as_millis() as u64,
            api,
            addr: self.shared.addr.clone(),
        })
    }
}

/// A response frame on its way (header included), bounded by the request timeout.
pub struct RawPending {
    rx: oneshot::Receiver<Result<Bytes>>,
    timer: Timer,
    timeout_ms: u64,
    api: String,
    addr: String,
}

impl Future for RawPending {
    type Output = Result<Bytes>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Poll::Ready(r) = Pin::new(&mut this.rx).poll(cx) {
            return Poll::Ready(match r {
                Ok(r) => r,
                Err(_) => Err(ClientError::Broken {
                    addr: this.addr.clone(),
                    reason: "connection dropped".into(),
                }),
            });
        }
        if Pin::new(&mut this.timer).poll(cx).is_ready() {
            return Poll::Ready(Err(ClientError::Timeout {
                api: this.api.clone(),
                addr: this.addr.clone(),
                timeout_ms: this.timeout_ms,
            }));
        }
        Poll::Pending
    }
}

/// A decoded response on its way: await it (it is `Unpin`, so `&mut pending` can be polled too).
pub struct Pending<T> {
    raw: RawPending,
    version: i16,
    _response: PhantomData<fn() -> T>,
}

impl<T: Decodable + HeaderVersion> Future for Pending<T> {
    type Output = Result<T>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let version = self.version;
        match Pin::new(&mut self.raw).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(mut frame)) => Poll::Ready((|| {
                ResponseHeader::decode(&mut frame, T::header_version(version)).map_err(codec)?;
                T::decode(&mut frame, version).map_err(codec)
            })()),
        }
    }
}

async fn read_loop(mut reader: ReadHalf<TcpStream>, shared: Rc<Shared>, max_frame: usize) {
    // A client trusts its broker's responses: no budget beyond the buffers' own growth.
    let pool = Rc::new(crate::memory_pool::RequestMemoryPool::new(None, max_frame));
    let mut frames = FrameReader::new(max_frame, pool);
    loop {
        let frame = match frames.read_frame(&mut reader).await {
            Ok(f) => f,
            Err(FrameError::Closed) => return shared.fail("closed by the broker".into()),
            Err(e) => return shared.fail(e.to_string()),
        };
        if frame.len() < 4 {
            return shared.fail("response frame shorter than its header".into());
        }
        let correlation_id = (&frame[..4]).get_i32();
        let waiter = shared.waiters.borrow_mut().pop_front();
        match waiter {
            Some(w) if w.correlation_id == correlation_id => {
                let _ = w.tx.send(Ok(frame));
            }
            Some(w) => {
                let reason = format!(
                    "response correlation id {correlation_id}, expected {}",
                    w.correlation_id
                );
                shared.waiters.borrow_mut().push_front(w);
                return shared.fail(reason);
            }
            None => {
                return shared.fail(format!(
                    "unsolicited response (correlation id {correlation_id})"
                ))
            }
        }
    }
}

fn codec(e: impl std::fmt::Display) -> ClientError {
    ClientError::Codec(e.to_string())
}

/// The API's name (`Produce`, `Fetch`…) for messages.
fn api_name(key: i16) -> String {
    match ApiKey::try_from(key) {
        Ok(k) => format!("{k:?}"),
        Err(_) => format!("API {key}"),
    }
}
