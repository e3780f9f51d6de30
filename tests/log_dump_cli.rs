//! `sluice log dump` end to end: the segment, offset index and time index files of a real
//! partition (several segments, an index entry per batch) decoded — batches, offsets, counts,
//! CRC validity, every record, index entries consistent with their `.log`; then copies damaged
//! on purpose — a flipped byte (CRC invalid), a torn tail, a wrong or torn index entry, garbage —
//! each reported with exit status 1 and never a panic. Also `--help` and files it cannot read.
//!
//! `CLI_SHOW=1` prints every command with its output.
mod cli_support;
mod common;

use cli_support::*;
use common::{segment_base, segment_files, unique, Broker};
use std::path::{Path, PathBuf};

/// Records written, five per batch.
const RECORDS: i64 = 40;

/// One `baseOffset: … isvalid: …` line, as (name, value) pairs.
fn fields(line: &str) -> Vec<(String, String)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .chunks(2)
        .map(|c| (c[0].trim_end_matches(':').to_string(), c[1].to_string()))
        .collect()
}

fn field(line: &str, name: &str) -> String {
    fields(line)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

fn batch_lines(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.starts_with("baseOffset: "))
        .collect()
}

fn dump(files: &[&Path], extra: &[&str]) -> Run {
    let mut args = vec!["log", "dump"];
    args.extend_from_slice(extra);
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    sluice(&args)
}

/// A stopped broker whose partition `topic-0` holds [`RECORDS`] records `k<i>` → `v<i>` with
/// the header `src=dump`, five per batch, over several segments.
fn written_partition() -> (Broker, PathBuf) {
    let mut broker = Broker::builder()
        .cores(2)
        .set("log.segment.bytes", 700)
        .set("log.index.interval.bytes", 1)
        .start();
    let b = broker.bootstrap();
    let topic = unique("dump");
    sluice_at(&b, &["topic", "create", &topic, "--partitions", "1"]).failed_with(0);
    let input: String = (0..RECORDS).map(|i| format!("k{i}:v{i}\n")).collect();
    let mut args = vec!["produce", topic.as_str(), "--bootstrap-server", b.as_str()];
    args.extend_from_slice(&[
        "--key-separator",
        ":",
        "--header",
        "src=dump",
        "--batch-size",
        "5",
        "--linger-ms",
        "5000",
    ]);
    sluice_with_stdin(&args, input.as_bytes()).failed_with(0);
    broker.stop();
    let dir = broker.partition_dir(&topic, 0);
    (broker, dir)
}

#[test]
fn help_describes_the_options() {
    help_mentions(&["log"], &["dump"]);
    help_mentions(
        &["log", "dump"],
        &[
            "<FILE>...",
            ".log",
            ".index",
            ".timeindex",
            "--print-records",
            "--hex",
        ],
    );
}

#[test]
fn dumps_segments_and_indexes_of_a_real_partition() {
    let (_broker, dir) = written_partition();
    let logs = segment_files(&dir);
    assert!(
        logs.len() >= 2,
        "expected several segments in {}",
        dir.display()
    );
    let mut records = Vec::new();
    let mut next_offset = 0;
    for log in &logs {
        let run = dump(&[log], &["--print-records"]);
        let out = run.ok();
        let base = segment_base(log);
        assert_eq!(base, next_offset, "segments are contiguous");
        assert!(
            out.starts_with(&format!(
                "Dumping {}\nStarting offset: {base}\n",
                log.display()
            )),
            "{}",
            run.show()
        );
        let batches = batch_lines(out);
        for line in &batches {
            assert_eq!(field(line, "baseOffset"), next_offset.to_string(), "{line}");
            assert_eq!(
                field(line, "lastOffset"),
                (next_offset + 4).to_string(),
                "{line}"
            );
            assert_eq!(field(line, "count"), "5", "{line}");
            assert_eq!(field(line, "magic"), "2", "{line}");
            assert_eq!(field(line, "compresscodec"), "none", "{line}");
            assert_eq!(field(line, "producerId"), "-1", "{line}");
            assert_eq!(field(line, "isTransactional"), "false", "{line}");
            assert_eq!(field(line, "isvalid"), "true", "{line}");
            next_offset += 5;
        }
        let size = std::fs::metadata(log).unwrap().len();
        assert!(
            out.ends_with(&format!(
                "Batches: {}, records: {}, offsets: {base}-{}\nCRC: all {} valid\nTail: clean, all {size} bytes are whole batches\n",
                batches.len(),
                batches.len() * 5,
                next_offset - 1,
                batches.len()
            )),
            "{}",
            run.show()
        );
        records.extend(
            out.lines()
                .filter(|l| l.starts_with("| "))
                .map(String::from),
        );
    }
    assert_eq!(next_offset, RECORDS);
    assert_eq!(records.len(), RECORDS as usize);
    for (i, r) in records.iter().enumerate() {
        let (head, tail) = r.split_once(" timestamp: ").unwrap();
        assert_eq!(head, format!("| offset: {i}"));
        let (ts, rest) = tail.split_once(' ').unwrap();
        assert!(ts.parse::<i64>().unwrap() > 1_600_000_000_000, "{r}");
        assert_eq!(rest, format!("key: k{i} headers: [src=dump] value: v{i}"));
    }

    // --hex: keys, values and header values in hex.
    let run = dump(&[&logs[0]], &["--print-records", "--hex"]);
    let first = run
        .ok()
        .lines()
        .find(|l| l.starts_with("| offset: 0 "))
        .unwrap_or_else(|| panic!("no record line:\n{}", run.show()));
    assert!(
        first.ends_with(" key: 0x6b30 headers: [src=0x64756d70] value: 0x7630"),
        "{first}"
    );

    // Indexes: one entry per batch, each naming its batch's last offset.
    for log in &logs {
        let index = log.with_extension("index");
        let run = dump(&[&index], &[]);
        let out = run.ok();
        let entries: Vec<&str> = out.lines().filter(|l| l.starts_with("offset: ")).collect();
        assert!(!entries.is_empty(), "{}", run.show());
        for e in &entries {
            let last: i64 = field(e, "offset").parse().unwrap();
            assert_eq!(last % 5, 4, "entry {e} should name a batch's last offset");
        }
        assert!(
            out.ends_with(&format!(
                "Entries: {}\nIndex consistent with {}\n",
                entries.len(),
                log.display()
            )),
            "{}",
            run.show()
        );
        let run = dump(&[&log.with_extension("timeindex")], &[]);
        assert!(
            run.ok()
                .ends_with(&format!("Time index consistent with {}\n", log.display())),
            "{}",
            run.show()
        );
        assert!(
            run.stdout.lines().any(|l| l.starts_with("timestamp: ")),
            "{}",
            run.show()
        );
    }
}

/// Copies the first segment's three files into a fresh directory.
fn copy_first_segment(dir: &Path) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let log = segment_files(dir).remove(0);
    for ext in ["log", "index", "timeindex"] {
        let from = log.with_extension(ext);
        std::fs::copy(&from, tmp.path().join(from.file_name().unwrap())).unwrap();
    }
    let copy = tmp.path().join(log.file_name().unwrap());
    (tmp, copy)
}

#[test]
fn damaged_files_are_reported() {
    let (_broker, dir) = written_partition();

    // A flipped byte inside the second batch: its CRC fails, the walk goes on.
    let (_tmp, log) = copy_first_segment(&dir);
    let good = dump(&[&log], &[]);
    let positions: Vec<u64> = batch_lines(good.ok())
        .iter()
        .map(|l| field(l, "position").parse().unwrap())
        .collect();
    let batches = positions.len();
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[positions[1] as usize + 70] ^= 0x40;
    std::fs::write(&log, &bytes).unwrap();
    let run = dump(&[&log], &["--print-records"]);
    run.failed_with(1);
    let lines = batch_lines(&run.stdout);
    assert_eq!(lines.len(), batches, "{}", run.show());
    let valid: Vec<String> = lines.iter().map(|l| field(l, "isvalid")).collect();
    assert_eq!(valid[1], "false", "{}", run.show());
    assert!(
        valid.iter().enumerate().all(|(i, v)| i == 1 || v == "true"),
        "{}",
        run.show()
    );
    assert!(
        run.stdout.contains(&format!(
            "CRC: 1 of {batches} invalid (batches at positions {})\n",
            positions[1]
        )),
        "{}",
        run.show()
    );
    assert!(
        run.stdout
            .contains("| records not decoded: the batch fails its CRC check\n"),
        "{}",
        run.show()
    );
    // The headers are intact, so the index still matches.
    assert!(dump(&[&log.with_extension("index")], &[])
        .ok()
        .contains("Index consistent with"));

    // A torn tail: the last batch cut short.
    let (_tmp2, log) = copy_first_segment(&dir);
    let bytes = std::fs::read(&log).unwrap();
    std::fs::write(&log, &bytes[..bytes.len() - 10]).unwrap();
    let last = *positions.last().unwrap();
    let run = dump(&[&log], &[]);
    run.failed_with(1);
    assert_eq!(
        batch_lines(&run.stdout).len(),
        batches - 1,
        "{}",
        run.show()
    );
    let declared = bytes.len() as u64 - last;
    assert!(
        run.stdout.contains(&format!(
            "Problem: torn tail at position {last}: the batch at offset {} declares {declared} bytes, {} are present; the broker truncates it on recovery\n",
            (batches as i64 - 1) * 5,
            declared - 10
        )),
        "{}",
        run.show()
    );
    // Its index now points past the whole batches.
    let run = dump(&[&log.with_extension("index")], &[]);
    run.failed_with(1);
    assert!(run.stdout.contains("Index problems:\n"), "{}", run.show());
    assert!(
        run.stdout
            .contains(&format!("position {last}: no batch starts there")),
        "{}",
        run.show()
    );

    // An index entry moved off its batch, and a torn last entry.
    let (_tmp3, log) = copy_first_segment(&dir);
    let index = log.with_extension("index");
    let mut entries = std::fs::read(&index).unwrap();
    assert!(
        entries.len() >= 16,
        "the index should have two entries or more"
    );
    entries[15] ^= 1;
    entries.extend_from_slice(&[1, 2, 3]);
    std::fs::write(&index, &entries).unwrap();
    let run = dump(&[&index], &[]);
    run.failed_with(1);
    assert!(
        run.stdout.contains("Index problems:\n  entry 1: offset "),
        "{}",
        run.show()
    );
    assert!(
        run.stdout.contains("no batch starts there"),
        "{}",
        run.show()
    );
    assert!(
        run.stdout
            .contains("  a torn last entry: 3 trailing bytes (entries are 8 bytes)\n"),
        "{}",
        run.show()
    );
}

#[test]
fn garbage_empty_and_unknown_files() {
    let tmp = tempfile::tempdir().unwrap();
    let garbage = tmp.path().join("00000000000000000000.log");
    std::fs::write(&garbage, vec![0x5a; 300]).unwrap();
    let run = dump(&[&garbage], &[]);
    run.failed_with(1);
    assert!(
        run.stdout
            .contains("Problem: unreadable batch at position 0: "),
        "{}",
        run.show()
    );
    assert!(
        run.stdout
            .contains("the remaining 300 bytes are not decoded"),
        "{}",
        run.show()
    );

    let empty = tmp.path().join("00000000000000000100.log");
    std::fs::write(&empty, b"").unwrap();
    dump(&[&empty], &[])
        .stdout_is(&format!(
            "Dumping {}\nStarting offset: 100\nBatches: 0, records: 0, offsets: none\nCRC: all 0 valid\nTail: clean, all 0 bytes are whole batches\n",
            empty.display()
        ))
        .failed_with(0);
    // An index without its .log: only monotonicity can be checked.
    let index = tmp.path().join("00000000000000000200.index");
    std::fs::write(&index, [0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 200]).unwrap();
    dump(&[&index], &[])
        .stdout_is(&format!(
            "Dumping {}\noffset: 204 position: 0\noffset: 209 position: 200\nEntries: 2\nIndex consistent (entries increase; no .log beside it to check positions against)\n",
            index.display()
        ))
        .failed_with(0);

    let other = tmp.path().join("leader-epoch-checkpoint");
    std::fs::write(&other, b"0\n").unwrap();
    dump(&[&other], &[])
        .failed_with(1)
        .stderr_has(&["not a .log, .index or .timeindex file"]);
    let missing = tmp.path().join("00000000000000000300.log");
    dump(&[&missing], &[])
        .failed_with(1)
        .stderr_has(&["00000000000000000300.log", "No such file"]);
    // Several files: each dumped, the status says whether all were sound.
    let run = dump(&[&empty, &missing], &[]);
    run.failed_with(1);
    assert!(
        run.stdout.contains("Tail: clean, all 0 bytes"),
        "{}",
        run.show()
    );
}
