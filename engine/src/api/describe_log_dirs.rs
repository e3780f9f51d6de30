//! DescribeLogDirs (v1–v4): the log directories and the partition replicas in them.
//!
//! Follows Kafka 4.x (`KafkaApis.handleDescribeLogDirsRequest`, `ReplicaManager.describeLogDirs`)
//! with one difference that comes from the layout: a Kafka broker answers for every replica it
//! holds, and each Sluice shard is a node of its own, so a node answers for the replicas *it*
//! holds, leaders and followers (asking every node in Metadata, as `kafka-log-dirs.sh` asks
//! every broker, covers the cluster). Every log dir of the broker is listed, by its absolute
//! path, since a shard's replicas may live in any of them; a dir without replicas of this node
//! is listed with no topics.
//!
//! A request with `topics` null asks for every replica, otherwise only for the listed
//! partitions; topics left without partitions are dropped. Each replica reports its size on
//! disk, `offset_lag` = max(0, high watermark − log end offset) (0 for a current replica, as
//! Kafka computes it) and `is_future_key` false (there are no future logs:
//! AlterReplicaLogDirs is not supported). v4 adds the total and usable bytes of the dir's volume
//! (`statvfs`, on the blocking pool); a dir whose volume cannot be read gets
//! KAFKA_STORAGE_ERROR and no topics. Replicas whose log could not be opened are not listed.
//! With no authorizer the request is always allowed (no CLUSTER_AUTHORIZATION_FAILED).

use super::{decode, respond, str_bytes, HandlerResult};
use crate::file_worker::run_blocking;
use crate::shard::Shard;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::ResponseError;
use sluice_net::RawRequest;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// One replica of this node, as DescribeLogDirs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaLog {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The replica's directory.
    pub dir: PathBuf,
    /// Bytes of its segments on disk.
    pub size_bytes: u64,
    /// Its log end offset.
    pub log_end_offset: i64,
    /// Its high watermark.
    pub high_watermark: i64,
}

/// The size of the volume a log dir is on (Java's `FileStore.getTotalSpace` /
/// `getUsableSpace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeSpace {
    /// Bytes of the volume.
    pub total_bytes: u64,
    /// Bytes an unprivileged writer may still use.
    pub usable_bytes: u64,
}

/// Answers DescribeLogDirs for the replicas of the receiving node.
pub async fn handle_describe_log_dirs(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: DescribeLogDirsRequest = decode(req)?;
    let log_dirs: Vec<PathBuf> = shard.config.log_dirs.iter().map(|d| absolute(d)).collect();
    let dirs = log_dirs.clone();
    let spaces: Vec<std::io::Result<VolumeSpace>> =
        run_blocking(move || dirs.iter().map(|d| volume_space(d)).collect()).await;
    let replicas: Vec<ReplicaLog> = shard
        .all_partitions()
        .iter()
        .map(|p| ReplicaLog {
            topic: p.topic.clone(),
            partition: p.index,
            dir: absolute(&p.dir()),
            size_bytes: p.size_bytes(),
            log_end_offset: p.log_end_offset(),
            high_watermark: p.high_watermark(),
        })
        .collect();
    let requested = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
            .collect::<HashSet<(String, i32)>>()
    });
    let response = DescribeLogDirsResponse::default().with_results(describe(
        &log_dirs,
        &spaces,
        &replicas,
        requested.as_ref(),
    ));
    respond(req, &response)
}

/// The result of every log dir in `log_dirs` (with the volume space read for each, in the same
/// order): the replicas of `replicas` that lie in it and were `requested` (every one when
/// `None`).
pub fn describe(
    log_dirs: &[PathBuf],
    spaces: &[std::io::Result<VolumeSpace>],
    replicas: &[ReplicaLog],
    requested: Option<&HashSet<(String, i32)>>,
) -> Vec<DescribeLogDirsResult> {
    debug_assert_eq!(log_dirs.len(), spaces.len(), "one volume read per log dir");
    log_dirs
        .iter()
        .zip(spaces)
        .map(|(log_dir, space)| {
            let result = DescribeLogDirsResult::default()
                .with_log_dir(str_bytes(log_dir.display().to_string()));
            let space = match space {
                Ok(space) => space,
                Err(_) => {
                    return result.with_error_code(ResponseError::KafkaStorageError.code());
                }
            };
            let mut topics: BTreeMap<&str, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
            for r in replicas {
                let wanted =
                    requested.is_none_or(|set| set.contains(&(r.topic.clone(), r.partition)));
                if wanted && log_dir_of(log_dirs, &r.dir) == Some(log_dir) {
                    topics
                        .entry(r.topic.as_str())
                        .or_default()
                        .push(partition_result(r));
                }
            }
            let topics = topics
                .into_iter()
                .map(|(name, mut partitions)| {
                    partitions.sort_by_key(|p| p.partition_index);
                    DescribeLogDirsTopic::default()
                        .with_name(TopicName(str_bytes(name)))
                        .with_partitions(partitions)
                })
                .collect();
            result
                .with_topics(topics)
                .with_total_bytes(clamp_bytes(space.total_bytes))
                .with_usable_bytes(clamp_bytes(space.usable_bytes))
        })
        .collect()
}

/// One replica's entry: size, `offset_lag` as Kafka's `getLogEndOffsetLag` for a current log.
fn partition_result(r: &ReplicaLog) -> DescribeLogDirsPartition {
    DescribeLogDirsPartition::default()
        .with_partition_index(r.partition)
        .with_partition_size(clamp_bytes(r.size_bytes))
        .with_offset_lag((r.high_watermark - r.log_end_offset).max(0))
        .with_is_future_key(false)
}

/// The log dir of `log_dirs` that holds `dir` (the longest one that is an ancestor of it).
fn log_dir_of<'a>(log_dirs: &'a [PathBuf], dir: &Path) -> Option<&'a PathBuf> {
    log_dirs
        .iter()
        .filter(|d| dir.starts_with(d))
        .max_by_key(|d| d.components().count())
}

/// A byte count on the wire (an `i64`; Kafka answers `Long.MAX_VALUE` for sizes too large to
/// represent).
fn clamp_bytes(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// `path` made absolute against the working directory (Kafka reports
/// `Path.toAbsolutePath`); left as it is when the working directory is unknown.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The total and usable bytes of the volume `dir` is on (`statvfs`). Blocking: run it on the
/// blocking pool.
fn volume_space(dir: &Path) -> std::io::Result<VolumeSpace> {
    let stat = nix::sys::statvfs::statvfs(dir).map_err(std::io::Error::from)?;
    let fragment = stat.fragment_size();
    Ok(VolumeSpace {
        total_bytes: stat.blocks().saturating_mul(fragment),
        usable_bytes: stat.blocks_available().saturating_mul(fragment),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(topic: &str, partition: i32, dir: &str, size: u64) -> ReplicaLog {
        ReplicaLog {
            topic: topic.to_string(),
            partition,
            dir: PathBuf::from(dir),
            size_bytes: size,
            log_end_offset: 10,
            high_watermark: 7,
        }
    }

    fn space() -> std::io::Result<VolumeSpace> {
        Ok(VolumeSpace {
            total_bytes: 1000,
            usable_bytes: 400,
        })
    }

    #[test]
    fn replicas_are_listed_under_the_log_dir_that_holds_them() {
        let dirs = vec![PathBuf::from("/d1"), PathBuf::from("/d2")];
        let replicas = vec![
            replica("a", 1, "/d1/a-1", 30),
            replica("a", 0, "/d1/shard-1/a-0", 20),
            replica("b", 0, "/d2/b-0", 5),
        ];
        let results = describe(&dirs, &[space(), space()], &replicas, None);
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].log_dir.as_str(), "/d1");
        assert_eq!(results[0].error_code, 0);
        assert_eq!(results[0].total_bytes, 1000);
        assert_eq!(results[0].usable_bytes, 400);
        assert_eq!(results[0].topics.len(), 1);
        let a = &results[0].topics[0];
        assert_eq!(a.name.0.as_str(), "a");
        let listed: Vec<(i32, i64, i64, bool)> = a
            .partitions
            .iter()
            .map(|p| {
                (
                    p.partition_index,
                    p.partition_size,
                    p.offset_lag,
                    p.is_future_key,
                )
            })
            .collect();
        assert_eq!(listed, vec![(0, 20, 0, false), (1, 30, 0, false)]);
        assert_eq!(results[1].topics[0].name.0.as_str(), "b");
    }

    #[test]
    fn only_requested_partitions_are_listed_and_empty_topics_dropped() {
        let dirs = vec![PathBuf::from("/d1")];
        let replicas = vec![
            replica("a", 0, "/d1/a-0", 1),
            replica("a", 1, "/d1/a-1", 1),
            replica("b", 0, "/d1/b-0", 1),
        ];
        let requested: HashSet<(String, i32)> = [("a".to_string(), 1), ("c".to_string(), 0)].into();
        let results = describe(&dirs, &[space()], &replicas, Some(&requested));
        assert_eq!(results[0].topics.len(), 1);
        assert_eq!(results[0].topics[0].name.0.as_str(), "a");
        assert_eq!(results[0].topics[0].partitions.len(), 1);
        assert_eq!(results[0].topics[0].partitions[0].partition_index, 1);
        let nothing = describe(&dirs, &[space()], &replicas, Some(&HashSet::new()));
        assert!(nothing[0].topics.is_empty());
    }

    #[test]
    fn an_unreadable_volume_is_a_storage_error() {
        let dirs = vec![PathBuf::from("/gone")];
        let replicas = vec![replica("a", 0, "/gone/a-0", 1)];
        let results = describe(&dirs, &[Err(std::io::Error::other("no"))], &replicas, None);
        assert_eq!(
            results[0].error_code,
            ResponseError::KafkaStorageError.code()
        );
        assert!(results[0].topics.is_empty());
    }

    #[test]
    fn a_volume_reports_its_space() {
        let dir = tempfile::tempdir().unwrap();
        let space = volume_space(dir.path()).unwrap();
        assert!(space.total_bytes > 0);
        assert!(space.usable_bytes <= space.total_bytes);
        assert!(volume_space(&dir.path().join("missing")).is_err());
    }
}
