//! InitProducerId (v0–v5): producer ids for idempotent producers.
//!
//! Follows Kafka 4.x (`KafkaApis.handleInitProducerIdRequest`,
//! `TransactionCoordinator.handleInitProducerId`) for producers without a transactional id:
//!
//! * a producer id without an epoch (or the reverse) is INVALID_REQUEST;
//! * otherwise the producer gets a fresh producer id with epoch 0 — also when it re-initializes
//!   with its current id and epoch (KIP-360, v3+): Kafka's coordinator ignores them for
//!   non-transactional producers and always hands out a new id, and so does Sluice.
//!
//! Producer ids come from the controller in blocks of [`BLOCK_SIZE`], cached per shard, so
//! that a new producer does not cost a cross-shard round trip (Kafka's brokers likewise take
//! blocks from the controller with AllocateProducerIds). If the controller cannot hand out a
//! block (its metadata could not be persisted, or the broker is stopping) the answer is
//! COORDINATOR_LOAD_IN_PROGRESS, Kafka's answer while a broker waits for its next block;
//! clients retry it.
//!
//! Transactions arrive with a later issue: a request with a transactional id gets
//! NOT_COORDINATOR (clients go back to FindCoordinator and retry), except an empty one, which
//! is INVALID_REQUEST as in Kafka.

use super::{decode, respond, HandlerResult};
use crate::messages::{ControllerCommand, ControllerReply};
use crate::shard::Shard;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;
use sluice_net::RawRequest;
use std::cell::RefCell;
use std::rc::Rc;

/// How many producer ids a shard takes from the controller at a time.
pub const BLOCK_SIZE: i64 = 1000;

/// Kafka's `RecordBatch.NO_PRODUCER_ID`.
const NO_PRODUCER_ID: i64 = -1;
/// Kafka's `RecordBatch.NO_PRODUCER_EPOCH`.
const NO_PRODUCER_EPOCH: i16 = -1;

/// A block of producer ids handed out by the controller, `next..end`, and the cluster it
/// belongs to.
#[derive(Debug, Default)]
pub struct IdBlock {
    cluster_id: String,
    next: i64,
    end: i64,
}

impl IdBlock {
    /// The next unused id of the block, if it has one and belongs to `cluster_id`.
    pub fn take(&mut self, cluster_id: &str) -> Option<i64> {
        if self.cluster_id != cluster_id || self.next >= self.end {
            return None;
        }
        let id = self.next;
        self.next += 1;
        Some(id)
    }

    /// Replaces the block with `first..first + count` of `cluster_id`. (When two requests
    /// refill at once, the ids left in the replaced block are skipped — never handed out twice.)
    pub fn refill(&mut self, cluster_id: &str, first: i64, count: i64) {
        self.cluster_id = cluster_id.to_string();
        self.next = first;
        self.end = first.saturating_add(count);
    }
}

thread_local! {
    /// This shard's cached block of producer ids. A thread-local rather than a field of
    /// `Shard` because each shard is exactly one executor thread, so it is per-shard state
    /// without widening `Shard` for one API. It is keyed by cluster id so that a second broker
    /// started later on the same thread (in-process tests) never reuses another cluster's ids.
    static ID_BLOCK: RefCell<IdBlock> = RefCell::new(IdBlock::default());
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A fresh producer id with epoch 0 (idempotent producer).
    NewProducerId,
    /// An error answer.
    Fail(ResponseError),
}

/// Decides what to do with `request` (pure, for tests).
pub fn classify(request: &InitProducerIdRequest) -> Action {
    let pid = request.producer_id.0;
    let epoch = request.producer_epoch;
    if (pid == NO_PRODUCER_ID) != (epoch == NO_PRODUCER_EPOCH) {
        return Action::Fail(ResponseError::InvalidRequest);
    }
    match &request.transactional_id {
        None => Action::NewProducerId,
        Some(id) if id.0.is_empty() => Action::Fail(ResponseError::InvalidRequest),
        // Transactions arrive with a later issue; send the client back to FindCoordinator.
        Some(_) => Action::Fail(ResponseError::NotCoordinator),
    }
}

/// Answers InitProducerId.
pub async fn handle_init_producer_id(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: InitProducerIdRequest = decode(req)?;
    let response = match classify(&request) {
        Action::Fail(e) => error_response(e),
        Action::NewProducerId => match next_producer_id(shard).await {
            Some(id) => InitProducerIdResponse::default()
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(0),
            None => error_response(ResponseError::CoordinatorLoadInProgress),
        },
    };
    respond(req, &response)
}

fn error_response(e: ResponseError) -> InitProducerIdResponse {
    InitProducerIdResponse::default()
        .with_error_code(e.code())
        .with_producer_id(ProducerId(NO_PRODUCER_ID))
        .with_producer_epoch(NO_PRODUCER_EPOCH)
}

/// A new producer id: from this shard's block, or from a new block the controller hands out.
async fn next_producer_id(shard: &Shard) -> Option<i64> {
    let cluster_id = shard.image().state.cluster_id.clone();
    if let Some(id) = ID_BLOCK.with(|b| b.borrow_mut().take(&cluster_id)) {
        return Some(id);
    }
    let reply = shard
        .router
        .call_controller(ControllerCommand::AllocateProducerIds { count: BLOCK_SIZE })
        .await;
    match reply {
        Ok(ControllerReply::ProducerIds { first }) if first >= 0 => {
            ID_BLOCK.with(|b| {
                b.borrow_mut()
                    .refill(&cluster_id, first + 1, BLOCK_SIZE - 1)
            });
            Some(first)
        }
        Ok(ControllerReply::ProducerIds { .. }) => {
            tracing::warn!(
                shard = shard.id,
                "the controller could not allocate producer ids"
            );
            None
        }
        Ok(other) => {
            tracing::error!(
                shard = shard.id,
                "controller answered AllocateProducerIds with {other:?}"
            );
            None
        }
        Err(e) => {
            tracing::warn!(shard = shard.id, "cannot allocate producer ids: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::TransactionalId;
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

    fn request(
        txn: Option<&'static str>,
        pid: i64,
        epoch: i16,
        version: i16,
    ) -> InitProducerIdRequest {
        let r = InitProducerIdRequest::default()
            .with_transactional_id(txn.map(|t| TransactionalId(StrBytes::from_static_str(t))))
            .with_transaction_timeout_ms(60_000);
        let r = if version >= 3 {
            r.with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
        } else {
            r
        };
        let mut buf = BytesMut::new();
        r.encode(&mut buf, version).unwrap();
        InitProducerIdRequest::decode(&mut buf.freeze(), version).unwrap()
    }

    #[test]
    fn idempotent_producers_get_new_ids() {
        for v in 0..=5 {
            assert_eq!(
                classify(&request(None, -1, -1, v)),
                Action::NewProducerId,
                "v{v}"
            );
        }
        // KIP-360 re-initialization: a fresh id, as Kafka does without a transactional id.
        assert_eq!(classify(&request(None, 42, 3, 4)), Action::NewProducerId);
        assert_eq!(
            classify(&request(None, 42, -1, 4)),
            Action::Fail(ResponseError::InvalidRequest)
        );
        assert_eq!(
            classify(&request(None, -1, 0, 4)),
            Action::Fail(ResponseError::InvalidRequest)
        );
    }

    #[test]
    fn transactional_ids_are_not_served_yet() {
        assert_eq!(
            classify(&request(Some("tx"), -1, -1, 5)),
            Action::Fail(ResponseError::NotCoordinator)
        );
        assert_eq!(
            classify(&request(Some(""), -1, -1, 5)),
            Action::Fail(ResponseError::InvalidRequest)
        );
        let r = error_response(ResponseError::NotCoordinator);
        assert_eq!((r.producer_id.0, r.producer_epoch), (-1, -1));
    }

    #[test]
    fn id_blocks() {
        let mut b = IdBlock::default();
        assert_eq!(b.take("c"), None);
        b.refill("c", 1, 2);
        assert_eq!(b.take("other"), None);
        assert_eq!(b.take("c"), Some(1));
        assert_eq!(b.take("c"), Some(2));
        assert_eq!(b.take("c"), None);
        b.refill("c", 2000, 999);
        assert_eq!(b.take("c"), Some(2000));
    }
}
