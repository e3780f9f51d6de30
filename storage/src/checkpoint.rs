//! Kafka's offset checkpoint files (`recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`, `replication-offset-checkpoint`): a version line `0`, a count
//! line, then one `topic partition offset` line per entry. Written atomically (temp file, fsync,
//! rename, fsync of the directory).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::error::{IoContext, StorageError};

/// Writes `contents` to `path` atomically and durably.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = Path::new(&tmp_name);
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    std::fs::rename(tmp, path)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

/// Reads a versioned checkpoint: checks the version line (`0`) and the count line, and returns
/// the entry lines with their 1-based line numbers. A missing file yields no lines.
pub(crate) fn read_versioned_lines(path: &Path) -> Result<Vec<(usize, String)>, StorageError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).at(path),
    };
    let malformed = |line: usize, reason: String| StorageError::Malformed {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut lines = text.lines();
    match lines.next() {
        Some("0") => {}
        Some(other) => return Err(malformed(1, format!("unsupported version {other:?}"))),
        None => return Err(malformed(1, "empty file".into())),
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| malformed(2, "missing or bad entry count".into()))?;
    let entries: Vec<(usize, String)> = lines
        .enumerate()
        .map(|(i, l)| (i + 3, l.to_string()))
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    if entries.len() != count {
        return Err(malformed(
            2,
            format!("declares {count} entries, has {}", entries.len()),
        ));
    }
    Ok(entries)
}

/// Writes a checkpoint of (topic, partition, offset) entries.
pub fn write_checkpoint(path: &Path, entries: &[(String, i32, i64)]) -> io::Result<()> {
    crate::blocking::debug_assert_blocking_allowed("a checkpoint write");
    let mut text = format!("0\n{}\n", entries.len());
    for (topic, partition, offset) in entries {
        text.push_str(&format!("{topic} {partition} {offset}\n"));
    }
    write_atomically(path, text.as_bytes())
}

/// Reads a checkpoint written by Kafka or by [`write_checkpoint`]. A missing file is an empty
/// checkpoint; a malformed one is an error naming the file and the line.
pub fn read_checkpoint(path: &Path) -> Result<Vec<(String, i32, i64)>, StorageError> {
    read_versioned_lines(path)?
        .into_iter()
        .map(|(line, text)| {
            let fields: Vec<&str> = text.split_whitespace().collect();
            let parsed = match fields.as_slice() {
                [topic, partition, offset] => partition
                    .parse()
                    .ok()
                    .zip(offset.parse().ok())
                    .map(|(p, o)| (topic.to_string(), p, o)),
                _ => None,
            };
            parsed.ok_or_else(|| StorageError::Malformed {
                path: path.to_path_buf(),
                line,
                reason: format!("expected `topic partition offset`, got {text:?}"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery-point-offset-checkpoint");
        assert!(read_checkpoint(&path).unwrap().is_empty());
        let entries = vec![
            ("my.topic_a-1".to_string(), 0, 42),
            ("__consumer_offsets".to_string(), 49, 0),
        ];
        write_checkpoint(&path, &entries).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "0\n2\nmy.topic_a-1 0 42\n__consumer_offsets 49 0\n"
        );
        assert_eq!(read_checkpoint(&path).unwrap(), entries);
        write_checkpoint(&path, &[]).unwrap();
        assert!(read_checkpoint(&path).unwrap().is_empty());
    }

    #[test]
    fn malformed_files_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        for (text, bad_line) in [
            ("1\n0\n", 1),
            ("0\nx\n", 2),
            ("0\n2\nt 0 1\n", 2),
            ("0\n2\nt 0 1\nt zero 2\n", 4),
            ("0\n1\nt 0\n", 3),
        ] {
            std::fs::write(&path, text).unwrap();
            match read_checkpoint(&path) {
                Err(StorageError::Malformed { path: p, line, .. }) => {
                    assert_eq!((p, line), (path.clone(), bad_line), "{text:?}")
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }
}
