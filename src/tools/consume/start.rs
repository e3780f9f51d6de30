//! `--from`: where reading starts, and the offsets it resolves to (ListOffsets on each
//! partition's leader); with `--group`, the group's committed offsets come first.

use crate::tools::common::{code_text, ToolError};
use crate::tools::group::datetime::parse_datetime;
use sluice_net::client::{Cluster, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, READ_UNCOMMITTED};
use std::collections::BTreeMap;

/// Where reading starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The log start offset.
    Earliest,
    /// The log end offset: only records written from now on.
    Latest,
    /// This offset (of the one partition given with --partition).
    Offset(i64),
    /// The first record whose timestamp is at or after this time (ms since the epoch).
    Timestamp(i64),
}

/// Parses `earliest`, `latest`, an offset, or `@` and a time (milliseconds since the epoch or
/// an ISO date-time such as 2024-05-01T12:00:00Z).
pub fn parse_start(s: &str) -> Result<Start, String> {
    match s {
        "earliest" | "beginning" => Ok(Start::Earliest),
        "latest" | "end" => Ok(Start::Latest),
        _ => {
            if let Some(t) = s.strip_prefix('@') {
                return match t.parse::<i64>() {
                    Ok(ms) if ms >= 0 => Ok(Start::Timestamp(ms)),
                    _ => parse_datetime(t).map(Start::Timestamp),
                };
            }
            s.parse::<i64>()
                .ok()
                .filter(|o| *o >= 0)
                .map(Start::Offset)
                .ok_or_else(|| {
                    format!("expected earliest, latest, an offset or @TIMESTAMP_MS, not '{s}'")
                })
        }
    }
}

/// ListOffsets of `partitions` of `topic` at `timestamp`: partition → offset (-1 when no
/// record is that recent).
pub async fn list(
    cluster: &Cluster,
    topic: &str,
    partitions: &[i32],
    timestamp: i64,
) -> Result<BTreeMap<i32, i64>, ToolError> {
    let asked: Vec<(String, i32)> = partitions.iter().map(|p| (topic.to_string(), *p)).collect();
    let listed = cluster
        .list_offsets(&asked, timestamp, READ_UNCOMMITTED)
        .await?;
    let mut out = BTreeMap::new();
    for ((_, p), l) in listed {
        if l.error_code != 0 {
            return Err(ToolError::Message(format!(
                "cannot look up offsets of {topic}-{p}: {}",
                code_text(l.error_code)
            )));
        }
        out.insert(p, l.offset);
    }
    Ok(out)
}

/// The offset each of `partitions` starts at for `start`, given the log end offsets `ends`.
pub async fn resolve(
    cluster: &Cluster,
    topic: &str,
    partitions: &[i32],
    start: Start,
    ends: &BTreeMap<i32, i64>,
) -> Result<BTreeMap<i32, i64>, ToolError> {
    match start {
        Start::Earliest => list(cluster, topic, partitions, EARLIEST_TIMESTAMP).await,
        Start::Latest => Ok(ends.clone()),
        Start::Offset(o) => {
            let earliest = list(cluster, topic, partitions, EARLIEST_TIMESTAMP).await?;
            for (p, first) in earliest {
                let end = ends.get(&p).copied().unwrap_or(0);
                if o < first || o > end {
                    return Err(ToolError::Message(format!(
                        "offset {o} is out of range for {topic}-{p}: its records are at offsets                          {first} to {end} (exclusive)"
                    )));
                }
            }
            Ok(partitions.iter().map(|p| (*p, o)).collect())
        }
        Start::Timestamp(ts) => {
            let found = list(cluster, topic, partitions, ts).await?;
            Ok(found
                .into_iter()
                .map(|(p, o)| {
                    (
                        p,
                        if o < 0 {
                            ends.get(&p).copied().unwrap_or(0)
                        } else {
                            o
                        },
                    )
                })
                .collect())
        }
    }
}

/// The log end offsets (high watermarks) of `partitions`.
pub async fn ends(
    cluster: &Cluster,
    topic: &str,
    partitions: &[i32],
) -> Result<BTreeMap<i32, i64>, ToolError> {
    list(cluster, topic, partitions, LATEST_TIMESTAMP).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(parse_start("earliest"), Ok(Start::Earliest));
        assert_eq!(parse_start("beginning"), Ok(Start::Earliest));
        assert_eq!(parse_start("latest"), Ok(Start::Latest));
        assert_eq!(parse_start("17"), Ok(Start::Offset(17)));
        assert_eq!(
            parse_start("@1700000000000"),
            Ok(Start::Timestamp(1_700_000_000_000))
        );
        assert_eq!(
            parse_start("@1970-01-01T00:00:01Z"),
            Ok(Start::Timestamp(1000))
        );
        assert!(parse_start("-3").unwrap_err().contains("@TIMESTAMP_MS"));
        assert!(parse_start("@yesterday").is_err());
    }
}
