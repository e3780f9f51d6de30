//! Finishing or undoing a swap of cleaned segments that a crash interrupted (Kafka's
//! `LogLoader` handling of `.cleaned` and `.swap` files), before a log's segments are loaded.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::{CLEANED_FILE_SUFFIX, SWAP_FILE_SUFFIX};
use crate::error::{IoContext, StorageError};
use crate::scan::scan_segment;
use crate::segment::file_name;

/// What [`recover_interrupted_cleaning`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CleaningRecovery {
    /// `*.cleaned` files removed (cleanings interrupted before their swap began).
    pub removed_cleaned_files: usize,
    /// Swaps completed: base offsets of the segments that took their place.
    pub completed_swaps: Vec<i64>,
}

/// The base offset in a segment file name `<20 digits>.<ext><suffix>`.
fn base_of(name: &str, ext_and_suffix: &str) -> Option<i64> {
    let stem = name.strip_suffix(ext_and_suffix)?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// Removes `path` if it exists.
fn remove_if_exists(path: &Path) -> Result<(), StorageError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).at(path),
        _ => Ok(()),
    }
}

/// In `dir`, removes every `*.cleaned` file and completes every swap: for each
/// `<base>.log.swap`, the segments whose base offsets lie in its offset range (the ones it
/// replaces) are removed, then its `.swap` files take their final names. Index files with a
/// `.swap` suffix but no `.log.swap` (a swap that never began) are removed too.
pub(crate) fn recover_interrupted_cleaning(dir: &Path) -> Result<CleaningRecovery, StorageError> {
    let mut recovery = CleaningRecovery::default();
    let mut swapped_logs = Vec::new();
    let mut swapped_indexes: Vec<PathBuf> = Vec::new();
    let mut log_bases = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(CLEANED_FILE_SUFFIX) {
            std::fs::remove_file(&path).at(&path)?;
            recovery.removed_cleaned_files += 1;
        } else if let Some(base) = base_of(name, &format!(".log{SWAP_FILE_SUFFIX}")) {
            swapped_logs.push(base);
        } else if name.ends_with(SWAP_FILE_SUFFIX) {
            swapped_indexes.push(path);
        } else if let Some(base) = base_of(name, ".log") {
            log_bases.push(base);
        }
    }
    swapped_logs.sort_unstable();
    for base in swapped_logs {
        let swap_path = dir.join(file_name(base, "log") + SWAP_FILE_SUFFIX);
        let file = File::open(&swap_path).at(&swap_path)?;
        let len = file.metadata().at(&swap_path)?.len();
        let mut end = base;
        let scan =
            scan_segment(&file, len, base, true, |_, h| end = h.next_offset()).at(&swap_path)?;
        if let Some(problem) = scan.problem {
            // The swap file was fsynced before it got its name, so this is damage on disk;
            // the segment is checked again (and cut) when the log is opened.
            tracing::warn!(
                "{} is damaged at position {}: {}",
                swap_path.display(),
                problem.position,
                problem.reason
            );
        }
        for &replaced in log_bases
            .iter()
            .filter(|&&b| b >= base && b < end.max(base + 1))
        {
            for ext in ["log", "index", "timeindex"] {
                remove_if_exists(&dir.join(file_name(replaced, ext)))?;
            }
        }
        for ext in ["index", "timeindex", "log"] {
            let swap = dir.join(file_name(base, ext) + SWAP_FILE_SUFFIX);
            if swap.exists() {
                let target = dir.join(file_name(base, ext));
                std::fs::rename(&swap, &target).at(&target)?;
            }
        }
        swapped_indexes.retain(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            !name.starts_with(&format!("{base:020}."))
        });
        recovery.completed_swaps.push(base);
    }
    for path in swapped_indexes {
        remove_if_exists(&path)?;
    }
    if recovery.removed_cleaned_files > 0 || !recovery.completed_swaps.is_empty() {
        File::open(dir).and_then(|d| d.sync_all()).at(dir)?;
        tracing::info!(
            "log {}: removed {} unfinished cleaned files, completed the swap of cleaned segments {:?}",
            dir.display(),
            recovery.removed_cleaned_files,
            recovery.completed_swaps
        );
    }
    Ok(recovery)
}
