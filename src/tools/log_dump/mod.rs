//! `sluice log dump`: segment files decoded offline, in the manner of Kafka's
//! `kafka-dump-log.sh` — no broker involved, files only read.
//!
//! * `.log` — every batch (offsets, count, timestamps, producer, flags, codec, CRC validity) and
//!   with `--print-records` every record; a torn or unreadable tail is reported.
//! * `.index` / `.timeindex` — every entry, whether the entries increase, and, with the `.log`
//!   beside them, whether each points at the right batch.
//!
//! * [`segment`] — walking `.log` files.
//! * [`index`] — reading and checking index files.
//!
//! Exit status: 0 when every file is sound, 1 when one has problems (an invalid CRC, a torn
//! tail, an inconsistent index) or cannot be read, 2 for usage errors.

pub mod index;
pub mod segment;

use crate::tools::records::{bytes_text, decode_records, headers_text};
use bytes::Bytes;
use segment::{batch_line, BatchAt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `sluice log …`.
#[derive(clap::Args, Debug)]
pub struct LogArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: LogCommand,
}

/// The `sluice log` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum LogCommand {
    /// Decode .log segments (batches, and records with --print-records), .index and .timeindex
    /// files (entries and their consistency with the .log beside them). Files are only read;
    /// exit status 1 when a file has problems.
    Dump(DumpArgs),
}

/// Options of `sluice log dump`.
#[derive(clap::Args, Debug, Clone)]
pub struct DumpArgs {
    /// The files: <base offset>.log, .index or .timeindex, as in a partition's directory.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Also print every record of a .log: offset, timestamp, key, headers and value.
    #[arg(long = "print-records")]
    pub print_records: bool,
    /// Print keys, values and header values as hex (0x…) instead of text.
    #[arg(long)]
    pub hex: bool,
}

/// The base offset a segment file is named after (`00000000000000000042.index` → 42).
pub fn base_offset(path: &Path) -> Option<i64> {
    let stem = path.file_stem()?.to_str()?;
    (!stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// The record lines of one batch (`| offset: …`), or why its records cannot be shown.
fn record_lines(b: &BatchAt, bytes: &Bytes, hex: bool) -> String {
    if !b.crc_valid {
        return "| records not decoded: the batch fails its CRC check\n".to_string();
    }
    match decode_records(&b.header, bytes) {
        Err(e) => format!("| records not decoded: {e}\n"),
        Ok(records) => records
            .iter()
            .map(|r| {
                format!(
                    "| offset: {} timestamp: {} key: {} headers: [{}] value: {}\n",
                    r.offset,
                    r.timestamp,
                    bytes_text(r.key.as_deref(), hex),
                    headers_text(&r.headers, hex),
                    bytes_text(r.value.as_deref(), hex)
                )
            })
            .collect(),
    }
}

/// Dumps a `.log`; false if it has problems.
fn dump_log(path: &Path, args: &DumpArgs) -> std::io::Result<bool> {
    if let Some(base) = base_offset(path) {
        outln!("Starting offset: {base}");
    }
    let walk = segment::walk(path, |b, bytes| {
        outln!("{}", batch_line(b));
        if args.print_records {
            out!("{}", record_lines(b, bytes, args.hex));
        }
    })?;
    let records: i64 = walk
        .batches
        .iter()
        .map(|b| i64::from(b.header.records_count))
        .sum();
    let offsets = match (walk.batches.first(), walk.batches.last()) {
        (Some(f), Some(l)) => format!("{}-{}", f.header.base_offset, l.header.last_offset()),
        _ => "none".to_string(),
    };
    outln!(
        "Batches: {}, records: {records}, offsets: {offsets}",
        walk.batches.len()
    );
    let invalid: Vec<String> = walk
        .batches
        .iter()
        .filter(|b| !b.crc_valid)
        .map(|b| b.position.to_string())
        .collect();
    if invalid.is_empty() {
        outln!("CRC: all {} valid", walk.batches.len());
    } else {
        outln!(
            "CRC: {} of {} invalid (batches at positions {})",
            invalid.len(),
            walk.batches.len(),
            invalid.join(", ")
        );
    }
    match &walk.problem {
        None => outln!("Tail: clean, all {} bytes are whole batches", walk.file_len),
        Some(p) => outln!("Problem: {p}"),
    }
    Ok(invalid.is_empty() && walk.problem.is_none())
}

/// The batches of the `.log` beside an index file, if there is one.
fn beside_log(path: &Path) -> std::io::Result<Option<(PathBuf, Vec<BatchAt>)>> {
    let log = path.with_extension("log");
    if !log.exists() {
        return Ok(None);
    }
    let walk = segment::walk(&log, |_, _| {})?;
    Ok(Some((log, walk.batches)))
}

/// Prints the verdict on an index; true when it is consistent.
fn verdict(
    what: &str,
    entries: usize,
    unused: usize,
    log: Option<&Path>,
    problems: &[String],
) -> bool {
    let unused = if unused > 0 {
        format!(" and {unused} unused (preallocated) entries")
    } else {
        String::new()
    };
    outln!("Entries: {entries}{unused}");
    if problems.is_empty() {
        match log {
            Some(l) => outln!("{what} consistent with {}", l.display()),
            None => outln!("{what} consistent (entries increase; no .log beside it to check positions against)"),
        }
        return true;
    }
    outln!("{what} problems:");
    for p in problems {
        outln!("  {p}");
    }
    false
}

/// Dumps a `.index` or `.timeindex`; false if it has problems.
fn dump_index(path: &Path, time: bool) -> std::io::Result<bool> {
    let Some(base) = base_offset(path) else {
        return Err(std::io::Error::other(
            "cannot tell the segment's base offset: index files are named after it \
             (00000000000000000000.index)",
        ));
    };
    let bytes = std::fs::read(path)?;
    let log = beside_log(path)?;
    let batches = log.as_ref().map(|(_, b)| b.as_slice());
    let size = if time {
        index::TIME_ENTRY
    } else {
        index::OFFSET_ENTRY
    };
    let e = index::entries(&bytes, size);
    let mut problems = if time {
        let entries = index::time_entries(&e, base);
        for (t, o) in &entries {
            outln!("timestamp: {t} offset: {o}");
        }
        index::check_times(&entries, batches)
    } else {
        let entries = index::offset_entries(&e, base);
        for (o, p) in &entries {
            outln!("offset: {o} position: {p}");
        }
        index::check_offsets(&entries, batches)
    };
    if e.torn_bytes > 0 {
        problems.push(format!(
            "a torn last entry: {} trailing bytes (entries are {size} bytes)",
            e.torn_bytes
        ));
    }
    let what = if time { "Time index" } else { "Index" };
    let log_path = log.as_ref().map(|(p, _)| p.as_path());
    Ok(verdict(what, e.used.len(), e.unused, log_path, &problems))
}

/// Dumps one file; false if it has problems or cannot be read (said on stderr).
fn dump(path: &Path, args: &DumpArgs) -> bool {
    outln!("Dumping {}", path.display());
    let result = match path.extension().and_then(|e| e.to_str()) {
        Some("log") => dump_log(path, args),
        Some("index") => dump_index(path, false),
        Some("timeindex") => dump_index(path, true),
        _ => Err(std::io::Error::other(
            "not a .log, .index or .timeindex file (snapshots and transaction indexes are not \
             decoded)",
        )),
    };
    result.unwrap_or_else(|e| {
        eprintln!("sluice log dump: {}: {e}", path.display());
        false
    })
}

/// Runs `sluice log …` and returns its exit status.
pub fn run(args: &LogArgs) -> ExitCode {
    let LogCommand::Dump(dump_args) = &args.command;
    let mut ok = true;
    for (i, path) in dump_args.files.iter().enumerate() {
        if i > 0 {
            outln!();
        }
        ok &= dump(path, dump_args);
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_offsets_come_from_file_names() {
        assert_eq!(
            base_offset(Path::new("/d/00000000000000000042.index")),
            Some(42)
        );
        assert_eq!(base_offset(Path::new("00000000000000000000.log")), Some(0));
        assert_eq!(base_offset(Path::new("/d/segment.log")), None);
    }

    #[test]
    fn records_of_a_segment_are_printed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.log");
        segment::tests::write_segment(&path);
        let mut lines = String::new();
        segment::walk(&path, |b, bytes| {
            lines.push_str(&record_lines(b, bytes, false))
        })
        .unwrap();
        assert_eq!(
            lines,
            "| offset: 0 timestamp: 1000 key: k0 headers: [] value: v0\n\
             | offset: 1 timestamp: 1000 key: k1 headers: [] value: v1\n\
             | offset: 2 timestamp: 1000 key: k2 headers: [] value: v2\n\
             | offset: 3 timestamp: 1003 key: k3 headers: [] value: v3\n\
             | offset: 4 timestamp: 1003 key: k4 headers: [] value: v4\n"
        );
    }
}
