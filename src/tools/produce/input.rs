//! Reading stdin: one record per line, read on a thread of its own (stdin blocks) and handed to
//! the executor over a bounded channel, so that lines typed by hand go out at once while piped
//! input is sent in large batches.

use bytes::Bytes;
use futures::channel::mpsc;
use futures::{SinkExt as _, StreamExt as _};
use std::io::BufRead;
use std::time::{Duration, Instant};

/// Lines buffered between the reader thread and the producer.
const CHANNEL_LINES: usize = 4096;

/// One input line as a record's key and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The key: the part before the separator, or none.
    pub key: Option<Bytes>,
    /// The value.
    pub value: Bytes,
}

/// Splits `line` (without its line ending) at the first `separator`; without a separator, or
/// when the line does not contain it, the whole line is the value and the key is null.
pub fn split_line(line: &[u8], separator: Option<&[u8]>) -> Line {
    let at = separator.and_then(|sep| {
        line.windows(sep.len())
            .position(|w| w == sep)
            .map(|i| (i, i + sep.len()))
    });
    match at {
        Some((end, start)) => Line {
            key: Some(Bytes::copy_from_slice(&line[..end])),
            value: Bytes::copy_from_slice(&line[start..]),
        },
        None => Line {
            key: None,
            value: Bytes::copy_from_slice(line),
        },
    }
}

/// Starts the thread reading stdin; the receiver ends after the last line (or a read error,
/// which is reported on stderr).
pub fn read_stdin(separator: Option<Vec<u8>>) -> mpsc::Receiver<Line> {
    let (mut tx, rx) = mpsc::channel(CHANNEL_LINES);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match input.read_until(b'\n', &mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => {
                    eprintln!("sluice produce: cannot read stdin: {e}");
                    return;
                }
            }
            if buf.last() == Some(&b'\n') {
                buf.pop();
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
            }
            let line = split_line(&buf, separator.as_deref());
            if futures::executor::block_on(tx.send(line)).is_err() {
                return; // the producer stopped
            }
        }
    });
    rx
}

/// How many lines, and how many key plus value bytes, make a full chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLimits {
    /// Most lines.
    pub lines: usize,
    /// Bytes after which the chunk is full.
    pub bytes: usize,
    /// How long to wait for more lines after the first one.
    pub linger: Duration,
}

/// The next lines to send: the first line to arrive, then whatever follows until the chunk is
/// full, `linger` has passed since the first line, or the input ended. Empty when the input
/// ended before any line.
pub async fn next_chunk(lines: &mut mpsc::Receiver<Line>, limits: ChunkLimits) -> Vec<Line> {
    let mut chunk = Vec::new();
    let Some(first) = lines.next().await else {
        return chunk;
    };
    let deadline = Instant::now() + limits.linger;
    let mut bytes = 0;
    let mut next = Some(first);
    while let Some(line) = next {
        bytes += line.value.len() + line.key.as_ref().map_or(0, |k| k.len());
        chunk.push(line);
        if chunk.len() >= limits.lines || bytes >= limits.bytes {
            break;
        }
        next = match lines.try_recv() {
            Ok(line) => Some(line),
            Err(_) => {
                let left = deadline.saturating_duration_since(Instant::now());
                glommio::timer::timeout(left, async { Ok(lines.next().await) })
                    .await
                    .unwrap_or(None)
            }
        };
    }
    chunk
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_first_separator() {
        let l = split_line(b"k1::v::1", Some(b"::"));
        assert_eq!(l.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(&l.value[..], b"v::1");
        let l = split_line(b"::v", Some(b"::"));
        assert_eq!(l.key.as_deref(), Some(&b""[..]));
        assert_eq!(&l.value[..], b"v");
    }

    #[test]
    fn no_separator_means_no_key() {
        let l = split_line(b"just a value", Some(b"\t"));
        assert_eq!(l.key, None);
        assert_eq!(&l.value[..], b"just a value");
        assert_eq!(split_line(b"a:b", None).key, None);
    }
}
