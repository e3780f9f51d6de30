//! The replica fetchers' settings: Kafka's `replica.*` broker configs, with Kafka's defaults.

use super::QuotaWindow;
use std::time::Duration;

/// Settings of every replica fetcher of a broker (Kafka's `replica.fetch.*`,
/// `replica.socket.timeout.ms` and `replication.quota.window.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaFetcherConfig {
    /// `replica.fetch.wait.max.ms` (default 500): the `max_wait_ms` of each Fetch, how long the
    /// leader may hold it when fewer than `min_bytes` are available.
    pub fetch_wait_max: Duration,
    /// `replica.fetch.min.bytes` (default 1): the `min_bytes` of each Fetch.
    pub fetch_min_bytes: i32,
    /// `replica.fetch.max.bytes` (default 1048576): the `partition_max_bytes` of each partition
    /// of a Fetch. Not an absolute limit: the first batch is returned whole even when larger
    /// (KIP-74), so replication never sticks on a large batch.
    pub fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes` (default 10485760): the `max_bytes` of each Fetch
    /// (also not absolute, as above).
    pub fetch_response_max_bytes: i32,
    /// `replica.fetch.backoff.ms` (default 1000): how long a partition waits after an error
    /// before it is fetched again, and how long the fetcher waits before reconnecting after a
    /// connection failure.
    pub fetch_backoff: Duration,
    /// `replica.socket.timeout.ms` (default 30000): the bound on connecting and on each request
    /// (a Fetch gets `replica.fetch.wait.max.ms` on top).
    pub socket_timeout: Duration,
    /// `replication.quota.window.num` × `replication.quota.window.size.seconds` (default
    /// 11 × 1 s): the window over which the follower's throttled rate is measured.
    pub quota_window: QuotaWindow,
}

impl Default for ReplicaFetcherConfig {
    fn default() -> Self {
        ReplicaFetcherConfig {
            fetch_wait_max: Duration::from_millis(500),
            fetch_min_bytes: 1,
            fetch_max_bytes: 1_048_576,
            fetch_response_max_bytes: 10_485_760,
            fetch_backoff: Duration::from_millis(1000),
            socket_timeout: Duration::from_millis(30_000),
            quota_window: QuotaWindow::default(),
        }
    }
}

/// A fetcher setting that cannot work, named by its Kafka key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {key}: {why}")]
pub struct FetcherConfigError {
    /// The Kafka configuration key at fault.
    pub key: &'static str,
    /// Why its value is refused.
    pub why: String,
}

impl ReplicaFetcherConfig {
    /// Checks the settings the way Kafka's `KafkaConfig` does: positive sizes, and a socket
    /// timeout at least the fetch wait (Kafka: "replica.socket.timeout.ms should always be at
    /// least replica.fetch.wait.max.ms to prevent unnecessary socket timeouts").
    pub fn validate(&self) -> Result<(), FetcherConfigError> {
        let positive = |key: &'static str, value: i32| {
            if value > 0 {
                Ok(())
            } else {
                Err(FetcherConfigError {
                    key,
                    why: format!("{value} must be positive"),
                })
            }
        };
        positive("replica.fetch.min.bytes", self.fetch_min_bytes)?;
        positive("replica.fetch.max.bytes", self.fetch_max_bytes)?;
        positive(
            "replica.fetch.response.max.bytes",
            self.fetch_response_max_bytes,
        )?;
        if self.socket_timeout < self.fetch_wait_max {
            return Err(FetcherConfigError {
                key: "replica.socket.timeout.ms",
                why: format!(
                    "{} ms is below replica.fetch.wait.max.ms ({} ms)",
                    self.socket_timeout.as_millis(),
                    self.fetch_wait_max.as_millis()
                ),
            });
        }
        Ok(())
    }

    /// `replica.fetch.wait.max.ms` as the Fetch field (saturating at `i32::MAX`).
    pub(crate) fn max_wait_ms(&self) -> i32 {
        i32::try_from(self.fetch_wait_max.as_millis()).unwrap_or(i32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_defaults_are_valid() {
        let config = ReplicaFetcherConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.max_wait_ms(), 500);
    }

    #[test]
    fn socket_timeout_below_fetch_wait_is_refused() {
        let config = ReplicaFetcherConfig {
            socket_timeout: Duration::from_millis(100),
            ..ReplicaFetcherConfig::default()
        };
        assert_eq!(
            config.validate().unwrap_err().key,
            "replica.socket.timeout.ms"
        );
    }

    #[test]
    fn non_positive_sizes_are_refused() {
        let config = ReplicaFetcherConfig {
            fetch_max_bytes: 0,
            ..ReplicaFetcherConfig::default()
        };
        assert_eq!(
            config.validate().unwrap_err().key,
            "replica.fetch.max.bytes"
        );
    }
}
