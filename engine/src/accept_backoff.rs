//! What the accept loop does when accepting a connection fails.
//!
//! Out of descriptors (EMFILE, ENFILE) or kernel memory (ENOBUFS, ENOMEM), `accept` fails at
//! once, again and again: retrying at full speed would spin the core and flood the log. The loop
//! instead waits, doubling the wait after every failure up to [`MAX_DELAY`], logs the first
//! failure of a streak and then at most one summary per [`LOG_EVERY`], and says when accepting
//! works again. A client that gave up before its connection was accepted (ECONNABORTED) only
//! costs a retry.

use std::io;
use std::time::{Duration, Instant};

/// The wait after the first failure of a streak.
pub const FIRST_DELAY: Duration = Duration::from_millis(10);
/// The longest wait between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(1);
/// At most one log line per this interval while failures go on.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// What to do after a failed accept.
#[derive(Debug, PartialEq, Eq)]
pub struct Retry {
    /// How long to wait before accepting again.
    pub delay: Duration,
    /// A line to log now, if any.
    pub log: Option<String>,
}

/// The state of the current streak of accept failures.
#[derive(Debug, Default)]
pub struct AcceptBackoff {
    failures: u64,
    since: Option<Instant>,
    delay: Duration,
    last_log: Option<Instant>,
    unlogged: u64,
}

impl AcceptBackoff {
    /// Records a failed accept at `now` and says how long to wait and what to log.
    pub fn failed(&mut self, error: &io::Error, now: Instant) -> Retry {
        if is_transient(error) {
            return Retry {
                delay: Duration::ZERO,
                log: None,
            };
        }
        self.failures += 1;
        self.delay = if self.failures == 1 {
            FIRST_DELAY
        } else {
            (self.delay * 2).min(MAX_DELAY)
        };
        let since = *self.since.get_or_insert(now);
        let log = match self.last_log {
            None => Some(format!(
                "accept failed: {error}; backing off (up to {} ms between attempts) until it works again",
                MAX_DELAY.as_millis()
            )),
            Some(at) if now.duration_since(at) >= LOG_EVERY => Some(format!(
                "accept still failing: {} more failures, {} in all over {} s; last: {error}",
                self.unlogged + 1,
                self.failures,
                now.duration_since(since).as_secs()
            )),
            Some(_) => None,
        };
        if log.is_some() {
            self.last_log = Some(now);
            self.unlogged = 0;
        } else {
            self.unlogged += 1;
        }
        Retry {
            delay: self.delay,
            log,
        }
    }

    /// Records a successful accept; returns a line to log when it ends a streak of failures.
    pub fn succeeded(&mut self, now: Instant) -> Option<String> {
        if self.failures == 0 {
            return None;
        }
        let line = format!(
            "accept works again after {} failures over {} ms",
            self.failures,
            self.since
                .map_or(0, |since| now.duration_since(since).as_millis())
        );
        *self = AcceptBackoff::default();
        Some(line)
    }
}

/// Failures that concern one connection only, not the listener or the process.
fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emfile() -> io::Error {
        io::Error::from_raw_os_error(24) // EMFILE on Linux
    }

    #[test]
    fn waits_grow_to_the_cap_and_logging_is_throttled() {
        let mut b = AcceptBackoff::default();
        let t0 = Instant::now();
        let first = b.failed(&emfile(), t0);
        assert_eq!(first.delay, FIRST_DELAY);
        assert!(first.log.unwrap().contains("accept failed"));
        let mut delays = Vec::new();
        let mut logs = 0;
        for i in 1..1000u32 {
            let r = b.failed(&emfile(), t0 + Duration::from_millis(50) * i);
            delays.push(r.delay);
            logs += usize::from(r.log.is_some());
        }
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(delays[0], FIRST_DELAY * 2);
        assert_eq!(*delays.last().unwrap(), MAX_DELAY);
        // 50 s of failures: one summary per 10 s.
        assert_eq!(logs, 4);
        let back = b.succeeded(t0 + Duration::from_secs(50)).unwrap();
        assert!(back.contains("1000 failures"), "{back}");
        assert_eq!(b.succeeded(t0), None);
        assert_eq!(b.failed(&emfile(), t0).delay, FIRST_DELAY);
    }

    #[test]
    fn an_aborted_connection_is_retried_at_once() {
        let mut b = AcceptBackoff::default();
        let r = b.failed(
            &io::Error::from(io::ErrorKind::ConnectionAborted),
            Instant::now(),
        );
        assert_eq!(r.delay, Duration::ZERO);
        assert_eq!(r.log, None);
        assert_eq!(b.succeeded(Instant::now()), None);
    }
}
