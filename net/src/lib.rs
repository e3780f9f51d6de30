//! Sluice's Kafka wire layer: everything between a TCP socket and a decoded request.
//!
//! * [`frame`] reads size-prefixed Kafka frames, enforcing `socket.request.max.bytes`, into
//!   buffers that grow with the bytes received, charged to the shard's [`memory_pool`]
//!   (`queued.max.request.bytes`).
//! * [`request`] splits a frame into its decoded [`kafka_protocol`] request header and the body,
//!   which stays a zero-copy `Bytes` slice of the frame.
//! * [`response`] describes a response as a list of parts: encoded bytes and *file regions*, so a
//!   Fetch response can carry record batches straight from segment files.
//! * [`connection`] runs one client connection: reads requests, hands them to a
//!   [`connection::RequestHandler`], and writes the responses in request order; file regions go
//!   to the socket with `sendfile` ([`zero_copy`]).
//!
//! This crate knows nothing of partitions or logs: the engine decides what a request means.

pub mod client;
pub mod connection;
pub mod frame;
pub mod listener;
pub mod memory_pool;
pub mod request;
pub mod response;
pub mod zero_copy;

pub use connection::{serve_connection, ConnectionLimits, RequestHandler};
pub use frame::FrameError;
pub use memory_pool::RequestMemoryPool;
pub use request::{RawRequest, RequestError};
pub use response::{FileRegion, Response, ResponsePart};
