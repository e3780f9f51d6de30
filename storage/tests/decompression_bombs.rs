//! Every codec's 1 GiB decompression bomb is refused by `decompress_records` without being
//! allocated: a counting global allocator records the peak of the Rust heap during each call,
//! and the process's peak resident memory (VmHWM, reset through /proc/self/clear_refs) covers
//! what the C codecs (lz4, zstd) allocate themselves.

// `bombs::batch` wraps a bomb in a batch for the end-to-end test, which shares this file.
#[allow(dead_code)]
#[path = "support/bombs.rs"]
mod bombs;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use sluice_storage::{decompress_records, decompression_limit, DecompressError};

/// The system allocator, counting the bytes allocated now and their peak. A realloc counts
/// the new block before releasing the old one, as both may exist while it copies.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = CURRENT.fetch_add(n, Ordering::SeqCst) + n;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

fn shrank(n: usize) {
    CURRENT.fetch_sub(n, Ordering::SeqCst);
}

// SAFETY: every call is forwarded unchanged to the system allocator; only counters change.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size);
        // SAFETY: same contract as ours.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            shrank(new_size);
        } else {
            shrank(layout.size());
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A field of /proc/self/status, in bytes.
fn status_bytes(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    let kb: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// Resets the process's peak resident set (VmHWM) to its current size.
fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM through clear_refs");
}

#[test]
fn one_gib_bombs_of_every_codec_are_refused_without_being_allocated() {
    let limit = decompression_limit(1_048_588);
    assert_eq!(limit, 64 * 1_048_588, "a default topic's limit");
    for (name, codec, bomb) in bombs::all() {
        assert_eq!(
            bombs::expanded_size(name, &bomb),
            bombs::BOMB_SIZE,
            "{name}"
        );

        reset_peak_rss();
        let rss_before = status_bytes("VmRSS:");
        let heap_before = CURRENT.load(Ordering::SeqCst);
        PEAK.store(heap_before, Ordering::SeqCst);

        let result = decompress_records(codec, &bomb, limit);

        let heap_peak = PEAK.load(Ordering::SeqCst) - heap_before;
        let rss_peak = status_bytes("VmHWM:").saturating_sub(rss_before);
        assert_eq!(
            result,
            Err(DecompressError::ExceedsLimit { codec, limit }),
            "{name}"
        );
        eprintln!(
            "{name}: {} compressed bytes, heap peak {heap_peak}, resident peak +{rss_peak}",
            bomb.len()
        );
        // The output grows by doubling up to the limit; a realloc may hold the old half too.
        assert!(
            heap_peak <= limit + limit / 2 + (1 << 20),
            "{name}: heap {heap_peak}"
        );
        // Plus the codec's own state (a zstd window of at most 2^26 bytes for this limit).
        assert!(rss_peak < 256 << 20, "{name}: resident {rss_peak}");
        if name.starts_with("snappy") {
            assert!(
                heap_peak < 1 << 20,
                "{name}: refused before allocating: {heap_peak}"
            );
        }
    }
}
