//! Replication quotas (KIP-73): the byte rate of throttled replication traffic over a sliding
//! window, and whether it is above the configured bound (Kafka's `ReplicationQuotaManager`
//! with its `SimpleRate` sensor).
//!
//! The window is `replication.quota.window.num` samples (default 11) of
//! `replication.quota.window.size.seconds` each (default 1). Recording adds bytes to the
//! current sample, starting a new one (the oldest is reused) once the current one is a sample
//! long. Measuring first forgets the samples that started `num × size` ago or earlier, then
//! divides the bytes of the others by the time since the oldest started, but by at least one
//! sample's length (so that a burst right after a quiet spell reads as bytes per sample, not
//! as an infinite rate). The quota is exceeded when that rate is above the bound
//! (`leader.replication.throttled.rate` / `follower.replication.throttled.rate`); the bytes of
//! the request that crosses it are recorded anyway, and the next requests wait until the
//! average has fallen back under the bound, as Kafka's do.
//!
//! Time is passed in (`now`), so that tests drive the window with their own clock. The same
//! type serves the follower side (the replica fetchers of a shard) and the leader side (the
//! engine's fetch handler).

use std::time::{Duration, Instant};

/// Kafka's bound meaning "no throttle" (`Long.MAX_VALUE` bytes per second, the default of
/// both throttled rates).
pub const UNTHROTTLED: i64 = i64::MAX;

/// The sliding window of a replication quota (Kafka's `replication.quota.window.num` and
/// `replication.quota.window.size.seconds`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaWindow {
    /// How many samples the window keeps (at least 1).
    pub num: u32,
    /// How long one sample lasts (at least 1 ms).
    pub size: Duration,
}

impl Default for QuotaWindow {
    /// Kafka's defaults: 11 samples of 1 s ("10 whole windows + 1 current window").
    fn default() -> Self {
        QuotaWindow {
            num: 11,
            size: Duration::from_secs(1),
        }
    }
}

impl QuotaWindow {
    /// The window with nonsensical values raised to the least that works (1 sample of 1 ms).
    fn sane(self) -> QuotaWindow {
        QuotaWindow {
            num: self.num.max(1),
            size: self.size.max(Duration::from_millis(1)),
        }
    }
}

/// One sample: bytes recorded since `start`.
#[derive(Clone, Copy, Debug)]
struct Sample {
    start: Instant,
    bytes: u64,
}

/// The throttled replication traffic of one side (leader or follower) of one shard, and its
/// bound.
#[derive(Clone, Debug)]
pub struct ReplicationQuota {
    window: QuotaWindow,
    /// Bytes per second; [`UNTHROTTLED`] for none.
    bound: i64,
    /// At most `window.num` samples, used as a ring.
    samples: Vec<Sample>,
    /// The sample being filled.
    current: usize,
}

impl ReplicationQuota {
    /// A quota of `bytes_per_second` (negative means 0) over `window`, with nothing recorded.
    pub fn new(window: QuotaWindow, bytes_per_second: i64) -> ReplicationQuota {
        ReplicationQuota {
            window: window.sane(),
            bound: bytes_per_second.max(0),
            samples: Vec::new(),
            current: 0,
        }
    }

    /// An unthrottled quota over Kafka's default window.
    pub fn unthrottled() -> ReplicationQuota {
        ReplicationQuota::new(QuotaWindow::default(), UNTHROTTLED)
    }

    /// The bound, in bytes per second.
    pub fn bound(&self) -> i64 {
        self.bound
    }

    /// Changes the bound (a dynamic config changed); what was recorded stays.
    pub fn set_bound(&mut self, bytes_per_second: i64) {
        self.bound = bytes_per_second.max(0);
    }

    /// The window.
    pub fn window(&self) -> QuotaWindow {
        self.window
    }

    /// Changes the window; a different one starts measuring afresh.
    pub fn set_window(&mut self, window: QuotaWindow) {
        let window = window.sane();
        if window != self.window {
            self.window = window;
            self.samples.clear();
            self.current = 0;
        }
    }

    /// Whether a bound is set at all.
    pub fn is_throttling(&self) -> bool {
        self.bound != UNTHROTTLED
    }

    /// Adds `bytes` of throttled traffic at `now`, even when the quota is exceeded (Kafka's
    /// `record`, which never refuses).
    pub fn record(&mut self, bytes: u64, now: Instant) {
        let size = self.window.size;
        let current = match self.samples.get(self.current) {
            Some(sample) if now.saturating_duration_since(sample.start) < size => self.current,
            Some(_) => {
                self.current = (self.current + 1) % self.window.num as usize;
                if self.current == self.samples.len() {
                    self.samples.push(Sample {
                        start: now,
                        bytes: 0,
                    });
                } else {
                    self.samples[self.current] = Sample {
                        start: now,
                        bytes: 0,
                    };
                }
                self.current
            }
            None => {
                self.samples.push(Sample {
                    start: now,
                    bytes: 0,
                });
                self.current = 0;
                0
            }
        };
        let sample = &mut self.samples[current];
        sample.bytes = sample.bytes.saturating_add(bytes);
        self.check_invariants();
    }

    /// The throttled traffic's rate at `now`, in bytes per second, over the samples of the
    /// window that have not expired.
    pub fn rate(&mut self, now: Instant) -> f64 {
        self.purge_expired(now);
        let Some(oldest) = self.samples.iter().map(|s| s.start).min() else {
            return 0.0;
        };
        let total: u64 = self.samples.iter().map(|s| s.bytes).sum();
        let elapsed = now.saturating_duration_since(oldest).max(self.window.size);
        total as f64 / elapsed.as_secs_f64()
    }

    /// Whether the rate at `now` is above the bound (Kafka's `isQuotaExceeded`); never for an
    /// unthrottled quota.
    pub fn is_exceeded(&mut self, now: Instant) -> bool {
        self.is_throttling() && self.rate(now) > self.bound as f64
    }

    /// Forgets the samples that started `num × size` ago or earlier: they restart empty at
    /// `now` (Kafka's `purgeObsoleteSamples`).
    fn purge_expired(&mut self, now: Instant) {
        let expire_age = self.window.size * self.window.num;
        for sample in &mut self.samples {
            if now.saturating_duration_since(sample.start) >= expire_age {
                *sample = Sample {
                    start: now,
                    bytes: 0,
                };
            }
        }
        self.check_invariants();
    }

    /// The ring never holds more samples than the window has, and its cursor is on one of
    /// them.
    fn check_invariants(&self) {
        debug_assert!(
            self.samples.len() <= self.window.num as usize,
            "a quota keeps at most replication.quota.window.num samples"
        );
        debug_assert!(
            self.samples.is_empty() || self.current < self.samples.len(),
            "the current sample is one of the samples"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn kafka_defaults_and_an_unthrottled_quota() {
        let t0 = Instant::now();
        let mut quota = ReplicationQuota::unthrottled();
        assert_eq!(
            quota.window(),
            QuotaWindow {
                num: 11,
                size: SECOND
            }
        );
        assert!(!quota.is_throttling());
        quota.record(u64::MAX, t0);
        quota.record(u64::MAX, t0);
        assert!(!quota.is_exceeded(t0));
        assert_eq!(quota.rate(t0), u64::MAX as f64);
    }

    #[test]
    fn rate_divides_by_the_time_since_the_oldest_sample_but_at_least_one_sample() {
        let t0 = Instant::now();
        let mut quota = ReplicationQuota::new(QuotaWindow::default(), 1000);
        assert_eq!(quota.rate(t0), 0.0);
        assert!(!quota.is_exceeded(t0));
        // A burst right away reads as bytes per sample.
        quota.record(1500, t0);
        assert_eq!(quota.rate(t0), 1500.0);
        assert_eq!(quota.rate(t0 + ms(500)), 1500.0);
        assert!(quota.is_exceeded(t0 + ms(500)));
        // Then as bytes per second since the oldest sample started.
        assert_eq!(quota.rate(t0 + ms(1500)), 1000.0);
        assert!(
            !quota.is_exceeded(t0 + ms(1500)),
            "at the bound is not above it"
        );
        assert_eq!(quota.rate(t0 + 3 * SECOND), 500.0);
        // Every sample lasts a second: these go to new samples.
        quota.record(1500, t0 + 3 * SECOND);
        quota.record(1000, t0 + ms(3999));
        quota.record(1000, t0 + 4 * SECOND);
        assert_eq!(quota.samples.len(), 3);
        assert_eq!(quota.rate(t0 + 5 * SECOND), 1000.0);
    }

    #[test]
    fn samples_expire_after_the_whole_window() {
        let t0 = Instant::now();
        let window = QuotaWindow {
            num: 3,
            size: SECOND,
        };
        let mut quota = ReplicationQuota::new(window, 100);
        quota.record(600, t0);
        quota.record(300, t0 + SECOND);
        assert_eq!(quota.rate(t0 + 2 * SECOND), 450.0);
        // At 3 s the first sample is num × size old: forgotten.
        assert_eq!(quota.rate(t0 + 3 * SECOND), 150.0);
        assert!(quota.is_exceeded(t0 + 3 * SECOND));
        assert_eq!(quota.rate(t0 + 4 * SECOND), 0.0);
        assert!(!quota.is_exceeded(t0 + 4 * SECOND));
        // The ring reuses its samples: never more than num.
        for i in 0..20 {
            quota.record(10, t0 + 5 * SECOND + i * SECOND);
        }
        assert_eq!(quota.samples.len(), 3);
        // At 25 s the sample of 22 s has expired: 20 bytes over the 2 s since 23 s.
        assert_eq!(quota.rate(t0 + 25 * SECOND), 10.0);
    }

    /// A follower fetching 100 kB whenever the quota allows, for a minute, averages the bound:
    /// the throttle holds the long-run rate within one request of it.
    #[test]
    fn a_throttled_loop_averages_the_bound() {
        let t0 = Instant::now();
        let bound = 50_000;
        let mut quota = ReplicationQuota::new(QuotaWindow::default(), bound);
        let mut sent = 0u64;
        let mut now = t0;
        while now < t0 + 60 * SECOND {
            if !quota.is_exceeded(now) {
                quota.record(100_000, now);
                sent += 100_000;
            }
            now += ms(100);
        }
        let average = sent as f64 / 60.0;
        assert!(
            (bound as f64 * 0.8..=bound as f64 * 1.2).contains(&average),
            "{average} B/s against {bound}"
        );
    }

    #[test]
    fn bound_and_window_changes() {
        let t0 = Instant::now();
        let mut quota = ReplicationQuota::new(QuotaWindow::default(), -5);
        assert_eq!(quota.bound(), 0);
        assert!(!quota.is_exceeded(t0), "nothing recorded is never above");
        quota.record(1, t0);
        assert!(quota.is_exceeded(t0));
        quota.set_bound(UNTHROTTLED);
        assert!(!quota.is_exceeded(t0));
        quota.set_bound(0);
        // The same window keeps the samples; another one starts afresh.
        quota.set_window(QuotaWindow::default());
        assert!(quota.is_exceeded(t0));
        quota.set_window(QuotaWindow {
            num: 0,
            size: ms(0),
        });
        assert_eq!(
            quota.window(),
            QuotaWindow {
                num: 1,
                size: ms(1)
            }
        );
        assert!(!quota.is_exceeded(t0));
    }

    #[test]
    #[should_panic(expected = "at most replication.quota.window.num samples")]
    fn a_ring_larger_than_the_window_breaks_the_invariant() {
        let t0 = Instant::now();
        let mut quota = ReplicationQuota::new(
            QuotaWindow {
                num: 2,
                size: SECOND,
            },
            1,
        );
        quota.record(1, t0);
        quota.record(1, t0 + SECOND);
        // Shrinking the window behind the quota's back leaves too many samples.
        quota.window.num = 1;
        quota.record(1, t0 + ms(1500));
    }
}
