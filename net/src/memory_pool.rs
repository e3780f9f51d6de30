//! A shard's budget for request bytes (`queued.max.request.bytes`).
//!
//! Every connection of a shard charges the pool for the buffers it allocates to receive a large
//! request (see [`crate::frame::FrameReader`]) and keeps the charge until the request has been
//! handled. A connection that cannot get budget stops reading from its socket until another
//! request drains; nothing is allocated beyond the bound.
//!
//! Buffers grow as bytes arrive, so partly received requests hold budget in proportion to the
//! bytes they received. If several large requests were allowed to grow in parallel until the
//! budget ran out, none could complete and the shard would stop for good. So the budget is split:
//! * the *shared* part, `queued.max.request.bytes - socket.request.max.bytes`, which any
//!   connection's buffers may grow into;
//! * the *reserve*, `socket.request.max.bytes`, which one connection at a time may take when the
//!   shared part is exhausted; it then receives its whole current request into the reserve.
//!
//! The reserve always completes a request (if the client sends it), and completing one frees its
//! budget, so the shard always makes progress; the two parts together never exceed the bound.
//!
//! The default, 200 MiB per shard, is two maximal requests (`socket.request.max.bytes` is
//! 100 MiB): one maximal request can always be received through the reserve while the shared
//! 100 MiB keeps ordinary traffic flowing.
//!
//! What a slow client ("slowloris") that holds budget can and cannot do:
//! * It cannot make the broker allocate for bytes it did not send. Announcing 100 MiB and
//!   sending N bytes (N > 4 KiB) costs a body buffer of at most 2N bytes; frames up to 4 KiB
//!   cost no budget at all, only the connection's 4 KiB read buffer.
//! * It cannot exceed the bound or deadlock the shard: over the bound nothing is allocated, and
//!   the reserve lets one request at a time complete.
//! * It can hold the reserve by taking it and then trickling its request; the shard still reads
//!   every request that fits in the shared part and every request of at most 4 KiB.
//! * To stall a shard's large requests it must actually send about half the shared part
//!   (50 MiB by default) and keep those bytes pending; requests of at most 4 KiB (metadata,
//!   fetches, offsets, heartbeats, small produces) are still read and answered. Other shards
//!   have their own budgets.
//! * It is never closed for slowness while it sends at least one byte per
//!   `connections.max.idle.ms` (Kafka has no request deadline either); a connection that sends
//!   nothing for that long is closed and its budget released.

use event_listener::Event;
use std::cell::Cell;

/// Which part of the pool a buffer is charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// Not charged: the small per-connection read buffer (see [`crate::frame::SMALL_FRAME`]).
    None,
    /// This many bytes of the shared part.
    Shared(usize),
    /// This many bytes of the reserve, which the charge's holder owns alone.
    Reserve(usize),
}

/// One shard's request-byte budget. Shard-local: connections of one shard share it by `Rc`.
pub struct RequestMemoryPool {
    shared_limit: usize,
    shared_used: Cell<usize>,
    reserve_limit: usize,
    reserve_used: Cell<Option<usize>>,
    released: Event,
}

impl RequestMemoryPool {
    /// A pool of `limit` bytes (`None`: unbounded) for requests of at most `max_request` bytes.
    /// `limit` should be at least `max_request` (the config enforces it); a smaller limit is
    /// raised to `max_request` so that a maximal request can still be received.
    pub fn new(limit: Option<usize>, max_request: usize) -> Self {
        let (shared_limit, reserve_limit) = match limit {
            None => (usize::MAX, max_request),
            Some(limit) => (limit.saturating_sub(max_request), max_request),
        };
        RequestMemoryPool {
            shared_limit,
            shared_used: Cell::new(0),
            reserve_limit,
            reserve_used: Cell::new(None),
            released: Event::new(),
        }
    }

    /// Bytes currently charged (shared part plus reserve).
    pub fn used(&self) -> usize {
        self.shared_used
            .get()
            .saturating_add(self.reserve_used.get().unwrap_or(0))
    }

    /// Charges `bytes` to the shared part if they fit.
    pub fn try_shared(&self, bytes: usize) -> Option<Charge> {
        let used = self.shared_used.get();
        let after = used.checked_add(bytes)?;
        if after > self.shared_limit {
            return None;
        }
        self.shared_used.set(after);
        Some(Charge::Shared(bytes))
    }

    /// Takes the reserve for `bytes` (at most `socket.request.max.bytes`) if nobody holds it.
    pub fn try_reserve(&self, bytes: usize) -> Option<Charge> {
        if self.reserve_used.get().is_some() || bytes > self.reserve_limit {
            return None;
        }
        self.reserve_used.set(Some(bytes));
        Some(Charge::Reserve(bytes))
    }

    /// Gives a charge back and wakes the connections waiting for budget.
    pub fn release(&self, charge: Charge) {
        match charge {
            Charge::None => return,
            Charge::Shared(bytes) => {
                debug_assert!(bytes <= self.shared_used.get());
                self.shared_used
                    .set(self.shared_used.get().saturating_sub(bytes));
            }
            Charge::Reserve(bytes) => {
                debug_assert_eq!(self.reserve_used.get(), Some(bytes));
                self.reserve_used.set(None);
            }
        }
        self.released.notify(usize::MAX);
    }

    /// Charges `bytes` to the shared part, or else takes the reserve for `whole_request` bytes,
    /// waiting for a release while neither is possible. Returns the charge and its size.
    pub async fn charge(&self, bytes: usize, whole_request: usize) -> Charge {
        loop {
            if let Some(charge) = self.try_now(bytes, whole_request) {
                return charge;
            }
            let released = self.released.listen();
            if let Some(charge) = self.try_now(bytes, whole_request) {
                return charge;
            }
            released.await;
        }
    }

    fn try_now(&self, bytes: usize, whole_request: usize) -> Option<Charge> {
        self.try_shared(bytes)
            .or_else(|| self.try_reserve(whole_request))
    }
}

impl Charge {
    /// The bytes this charge pays for.
    pub fn bytes(self) -> usize {
        match self {
            Charge::None => 0,
            Charge::Shared(b) | Charge::Reserve(b) => b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::{block_on, poll_once};

    #[test]
    fn shared_part_then_reserve_then_waits_until_released() {
        let pool = RequestMemoryPool::new(Some(300), 100);
        let a = pool.try_shared(150).unwrap();
        assert!(pool.try_shared(51).is_none());
        let b = pool.try_shared(50).unwrap();
        assert_eq!(pool.used(), 200);
        let r = block_on(pool.charge(10, 100));
        assert_eq!(r, Charge::Reserve(100));
        assert_eq!(pool.used(), 300);
        let mut waiting = Box::pin(pool.charge(10, 100));
        assert!(block_on(poll_once(&mut waiting)).is_none());
        pool.release(b);
        assert_eq!(block_on(waiting), Charge::Shared(10));
        pool.release(r);
        pool.release(a);
        pool.release(Charge::Shared(10));
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn unbounded_pool_never_refuses() {
        let pool = RequestMemoryPool::new(None, 100);
        assert!(pool.try_shared(usize::MAX / 2).is_some());
        assert!(pool.try_shared(usize::MAX / 2).is_some());
    }

    #[test]
    fn limit_below_one_request_still_admits_one_through_the_reserve() {
        let pool = RequestMemoryPool::new(Some(50), 100);
        assert!(pool.try_shared(1).is_none());
        assert_eq!(pool.try_reserve(100), Some(Charge::Reserve(100)));
        assert!(pool.try_reserve(1).is_none());
    }
}
