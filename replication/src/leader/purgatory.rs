//! The acks=all purgatory: produce requests waiting for the high watermark to cover their
//! records (Kafka's `DelayedProduce` in the produce purgatory).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use super::error::AckError;

/// Waiting acks=all produces of one partition this node leads, woken in offset order when the
/// high watermark reaches their records.
///
/// Single-threaded and runtime-agnostic: it only stores wakers, so a glommio task, a test's
/// `block_on` or any executor can await it. Timeouts are the caller's: a waiter dropped before it
/// completes (its request timed out) leaves nothing behind. Dropping the purgatory fails every
/// waiter with [`AckError::NotLeaderOrFollower`], as [`AckPurgatory::fail_all`] does.
#[derive(Debug)]
pub struct AckPurgatory {
    state: Rc<RefCell<PurgatoryState>>,
}

#[derive(Debug)]
struct PurgatoryState {
    high_watermark: i64,
    outcome: Result<(), AckError>,
    failed: Option<AckError>,
    next_id: u64,
    /// Keyed by (required offset, arrival), so that iteration is wake order.
    waiters: BTreeMap<(i64, u64), Rc<RefCell<AckSlot>>>,
}

/// What a waiter and the purgatory share: the outcome once decided, and whom to wake.
#[derive(Debug, Default)]
struct AckSlot {
    outcome: Option<Result<(), AckError>>,
    waker: Option<Waker>,
}

impl AckPurgatory {
    /// An empty purgatory for a leader whose high watermark is `high_watermark`.
    pub fn new(high_watermark: i64) -> AckPurgatory {
        AckPurgatory {
            state: Rc::new(RefCell::new(PurgatoryState {
                high_watermark,
                outcome: Ok(()),
                failed: None,
                next_id: 0,
                waiters: BTreeMap::new(),
            })),
        }
    }

    /// Waits until the high watermark reaches `required_offset` (the log end offset just after
    /// the produce's records). Completes at once when it already has, or when the purgatory has
    /// failed; otherwise with the outcome passed to the [`AckPurgatory::on_high_watermark`] call
    /// that covers it.
    pub fn wait(&self, required_offset: i64) -> AckWait {
        let mut state = self.state.borrow_mut();
        let slot = Rc::new(RefCell::new(AckSlot::default()));
        if let Some(error) = state.failed {
            slot.borrow_mut().outcome = Some(Err(error));
            return AckWait::done(slot);
        }
        if state.high_watermark >= required_offset {
            slot.borrow_mut().outcome = Some(state.outcome);
            return AckWait::done(slot);
        }
        let key = (required_offset, state.next_id);
        state.next_id += 1;
        state.waiters.insert(key, Rc::clone(&slot));
        AckWait {
            slot,
            key: Some(key),
            purgatory: Rc::downgrade(&self.state),
        }
    }

    /// The high watermark moved to `high_watermark`: every waiter it covers completes with
    /// `outcome` (from [`IsrTracker::ack_outcome`](super::IsrTracker::ack_outcome)), woken in
    /// offset order, then arrival order. A smaller value than one already seen is ignored.
    pub fn on_high_watermark(&self, high_watermark: i64, outcome: Result<(), AckError>) {
        let covered = {
            let mut state = self.state.borrow_mut();
            if state.failed.is_some() {
                return;
            }
            state.high_watermark = state.high_watermark.max(high_watermark);
            state.outcome = outcome;
            let first_uncovered = (state.high_watermark.saturating_add(1), 0);
            let uncovered = state.waiters.split_off(&first_uncovered);
            std::mem::replace(&mut state.waiters, uncovered)
        };
        complete(covered, outcome);
    }

    /// This node stopped leading the partition: every waiter completes with `error`, and so
    /// does every later [`AckPurgatory::wait`].
    pub fn fail_all(&self, error: AckError) {
        let waiting = {
            let mut state = self.state.borrow_mut();
            state.failed = Some(error);
            std::mem::take(&mut state.waiters)
        };
        complete(waiting, Err(error));
    }

    /// How many produces are waiting.
    pub fn waiting(&self) -> usize {
        self.state.borrow().waiters.len()
    }
}

impl Drop for AckPurgatory {
    fn drop(&mut self) {
        if self.state.borrow().failed.is_none() {
            self.fail_all(AckError::NotLeaderOrFollower);
        }
    }
}

/// Completes `waiters` with `outcome` and wakes them in key order. Runs with the purgatory's
/// state released, so a waker may touch the purgatory.
fn complete(waiters: BTreeMap<(i64, u64), Rc<RefCell<AckSlot>>>, outcome: Result<(), AckError>) {
    for slot in waiters.into_values() {
        let waker = {
            let mut slot = slot.borrow_mut();
            slot.outcome = Some(outcome);
            slot.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// One acks=all produce waiting in an [`AckPurgatory`]; resolves to `Ok(())` once the high
/// watermark covers its records. Dropping it unregisters it.
#[derive(Debug)]
#[must_use = "a waiter does nothing unless awaited"]
pub struct AckWait {
    slot: Rc<RefCell<AckSlot>>,
    /// Where it waits in the purgatory; None once completed or when it never waited.
    key: Option<(i64, u64)>,
    purgatory: Weak<RefCell<PurgatoryState>>,
}

impl AckWait {
    /// A waiter whose outcome was decided when it was made.
    fn done(slot: Rc<RefCell<AckSlot>>) -> AckWait {
        AckWait {
            slot,
            key: None,
            purgatory: Weak::new(),
        }
    }
}

impl Future for AckWait {
    type Output = Result<(), AckError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let outcome = {
            let mut slot = self.slot.borrow_mut();
            match slot.outcome {
                Some(outcome) => outcome,
                None => {
                    match &mut slot.waker {
                        Some(waker) => waker.clone_from(cx.waker()),
                        None => slot.waker = Some(cx.waker().clone()),
                    }
                    return Poll::Pending;
                }
            }
        };
        self.key = None;
        Poll::Ready(outcome)
    }
}

impl Drop for AckWait {
    fn drop(&mut self) {
        if let (Some(key), Some(purgatory)) = (self.key, self.purgatory.upgrade()) {
            purgatory.borrow_mut().waiters.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::future::{self, Either};
    use futures::task::noop_waker_ref;
    use std::sync::{Arc, Mutex};
    use std::task::Wake;

    /// A waker that records its tag when woken, to observe wake order.
    struct TaggedWaker {
        tag: i64,
        woken: Arc<Mutex<Vec<i64>>>,
    }

    impl Wake for TaggedWaker {
        fn wake(self: Arc<Self>) {
            self.woken
                .lock()
                .expect("the test's wake log is never poisoned")
                .push(self.tag);
        }
    }

    fn poll_once(wait: &mut AckWait, waker: &Waker) -> Poll<Result<(), AckError>> {
        Pin::new(wait).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn waiter_completes_when_the_high_watermark_covers_it() {
        let purgatory = AckPurgatory::new(0);
        let mut wait = purgatory.wait(10);
        assert!(poll_once(&mut wait, noop_waker_ref()).is_pending());
        purgatory.on_high_watermark(9, Ok(()));
        assert!(poll_once(&mut wait, noop_waker_ref()).is_pending());
        purgatory.on_high_watermark(10, Ok(()));
        assert_eq!(block_on(wait), Ok(()));
        assert_eq!(purgatory.waiting(), 0);
    }

    #[test]
    fn waiter_already_covered_completes_at_once() {
        let purgatory = AckPurgatory::new(5);
        assert_eq!(block_on(purgatory.wait(5)), Ok(()));
        assert_eq!(purgatory.waiting(), 0);
    }

    #[test]
    fn wakeups_follow_offset_order_then_arrival() {
        let purgatory = AckPurgatory::new(0);
        let woken = Arc::new(Mutex::new(Vec::new()));
        let mut waits: Vec<(i64, AckWait)> = [30, 10, 20, 10, 40]
            .into_iter()
            .enumerate()
            .map(|(arrival, offset)| (offset * 10 + arrival as i64, purgatory.wait(offset)))
            .collect();
        for (tag, wait) in &mut waits {
            let waker = Waker::from(Arc::new(TaggedWaker {
                tag: *tag,
                woken: Arc::clone(&woken),
            }));
            assert!(poll_once(wait, &waker).is_pending());
        }
        purgatory.on_high_watermark(30, Ok(()));
        assert_eq!(
            *woken.lock().expect("not poisoned"),
            vec![101, 103, 202, 300]
        );
        assert_eq!(purgatory.waiting(), 1);
        for (tag, wait) in &mut waits {
            let expected = if *tag == 404 {
                Poll::Pending
            } else {
                Poll::Ready(Ok(()))
            };
            assert_eq!(poll_once(wait, noop_waker_ref()), expected);
        }
    }

    #[test]
    fn outcome_after_append_reaches_the_covered_waiters() {
        let purgatory = AckPurgatory::new(0);
        let wait = purgatory.wait(3);
        purgatory.on_high_watermark(3, Err(AckError::NotEnoughReplicasAfterAppend));
        assert_eq!(block_on(wait), Err(AckError::NotEnoughReplicasAfterAppend));
    }

    #[test]
    fn a_lower_high_watermark_is_ignored() {
        let purgatory = AckPurgatory::new(0);
        purgatory.on_high_watermark(8, Ok(()));
        purgatory.on_high_watermark(4, Ok(()));
        assert_eq!(block_on(purgatory.wait(8)), Ok(()));
    }

    #[test]
    fn fail_all_fails_waiting_and_later_waiters() {
        let purgatory = AckPurgatory::new(0);
        let first = purgatory.wait(5);
        let second = purgatory.wait(7);
        purgatory.fail_all(AckError::NotLeaderOrFollower);
        assert_eq!(purgatory.waiting(), 0);
        assert_eq!(block_on(first), Err(AckError::NotLeaderOrFollower));
        assert_eq!(block_on(second), Err(AckError::NotLeaderOrFollower));
        assert_eq!(
            block_on(purgatory.wait(0)),
            Err(AckError::NotLeaderOrFollower)
        );
        purgatory.on_high_watermark(10, Ok(()));
        assert_eq!(
            block_on(purgatory.wait(1)),
            Err(AckError::NotLeaderOrFollower)
        );
    }

    #[test]
    fn dropping_the_purgatory_fails_its_waiters() {
        let purgatory = AckPurgatory::new(0);
        let wait = purgatory.wait(5);
        drop(purgatory);
        assert_eq!(block_on(wait), Err(AckError::NotLeaderOrFollower));
    }

    #[test]
    fn a_dropped_waiter_leaves_nothing_behind() {
        let purgatory = AckPurgatory::new(0);
        let mut wait = purgatory.wait(5);
        assert!(poll_once(&mut wait, noop_waker_ref()).is_pending());
        let never_polled = purgatory.wait(6);
        assert_eq!(purgatory.waiting(), 2);
        drop(wait);
        drop(never_polled);
        assert_eq!(purgatory.waiting(), 0);
        purgatory.on_high_watermark(10, Ok(()));
    }

    #[test]
    fn a_timed_out_waiter_is_unregistered() {
        let purgatory = AckPurgatory::new(0);
        let timeout = future::ready(());
        let raced = block_on(future::select(purgatory.wait(5), timeout));
        assert!(matches!(raced, Either::Right(((), _))));
        drop(raced);
        assert_eq!(purgatory.waiting(), 0);
    }

    #[test]
    fn a_completed_but_unpolled_waiter_drops_cleanly() {
        let purgatory = AckPurgatory::new(0);
        let wait = purgatory.wait(5);
        purgatory.on_high_watermark(5, Ok(()));
        let later = purgatory.wait(6);
        drop(wait);
        assert_eq!(purgatory.waiting(), 1);
        drop(later);
        assert_eq!(purgatory.waiting(), 0);
    }
}
