//! [`LogFileCache`]: a bounded, least-recently-used set of open log files of sealed segments.
//!
//! A sealed segment holds no descriptor of its own: when it is rolled (or loaded) it hands its
//! `.log` file to the cache of the shard that owns the partition, which closes it when it is
//! the least recently used, and opens it again on demand (a fetch of old data, the cleaner, a
//! timestamp lookup, a flush). Files are handed out as
//! `Arc<File>`: an evicted file that a reader still holds (a `sendfile` in flight) stays open
//! until that reader drops it, so eviction never closes a descriptor in use. The number of open
//! descriptors is therefore at most the capacity plus the files held by readers in flight.
//!
//! Opening a file that fails with `EMFILE`/`ENFILE` first closes the cache's idle files and
//! tries once more; if it still fails, the error goes to the one request that asked.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A number that identifies one segment for the life of the process (the cache key; paths
/// change when a segment is renamed).
pub(crate) fn next_segment_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The cache's entries, in a map by segment and in use order.
#[derive(Debug, Default)]
struct Entries {
    capacity: usize,
    /// Segment id → (file, use stamp).
    files: HashMap<u64, (Arc<File>, u64)>,
    /// Use stamp → segment id; the first is the least recently used.
    by_use: BTreeMap<u64, u64>,
    next_stamp: u64,
    opened: u64,
}

impl Entries {
    fn touch(&mut self, id: u64) -> Option<Arc<File>> {
        let stamp = self.next_stamp;
        let (file, last) = self.files.get_mut(&id)?;
        self.by_use.remove(last);
        *last = stamp;
        self.by_use.insert(stamp, id);
        self.next_stamp += 1;
        Some(Arc::clone(file))
    }

    fn remove(&mut self, id: u64) {
        if let Some((_, stamp)) = self.files.remove(&id) {
            self.by_use.remove(&stamp);
        }
    }

    fn insert(&mut self, id: u64, file: Arc<File>) {
        while self.files.len() >= self.capacity {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            self.files.remove(&oldest);
        }
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        self.files.insert(id, (file, stamp));
        self.by_use.insert(stamp, id);
        debug_assert_eq!(self.files.len(), self.by_use.len());
        debug_assert!(self.files.len() <= self.capacity);
    }

    /// Closes every file no reader holds.
    fn drop_idle(&mut self) {
        let idle: Vec<u64> = self
            .files
            .iter()
            .filter(|(_, (file, _))| Arc::strong_count(file) == 1)
            .map(|(id, _)| *id)
            .collect();
        idle.into_iter().for_each(|id| self.remove(id));
    }
}

/// A shard's cache of open sealed-segment log files (see the module docs). Cloning gives
/// another handle to the same cache.
#[derive(Debug, Clone)]
pub struct LogFileCache {
    entries: Arc<Mutex<Entries>>,
}

impl LogFileCache {
    /// A cache keeping at most `capacity` files open (at least one).
    pub fn new(capacity: usize) -> LogFileCache {
        LogFileCache {
            entries: Arc::new(Mutex::new(Entries {
                capacity: capacity.max(1),
                ..Entries::default()
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves the maps consistent (no step can fail halfway).
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The open log file of segment `id`, opening `path` read-only when it is not cached.
    pub(crate) fn get_or_open(&self, id: u64, path: &Path) -> io::Result<Arc<File>> {
        if let Some(file) = self.lock().touch(id) {
            return Ok(file);
        }
        let file = match File::open(path) {
            Err(e) if is_out_of_descriptors(&e) => {
                self.lock().drop_idle();
                File::open(path)?
            }
            other => other?,
        };
        let file = Arc::new(file);
        let mut entries = self.lock();
        entries.opened += 1;
        entries.insert(id, Arc::clone(&file));
        Ok(file)
    }

    /// Puts segment `id`'s already open `file` in the cache (a segment being sealed hands its
    /// handle over, so that its recent data is read and flushed without opening it again).
    pub(crate) fn adopt(&self, id: u64, file: Arc<File>) {
        let mut entries = self.lock();
        entries.remove(id);
        entries.insert(id, file);
    }

    /// Closes segment `id`'s file, if cached (the segment is gone); readers keep theirs.
    pub(crate) fn forget(&self, id: u64) {
        self.lock().remove(id);
    }

    /// Files the cache holds open now.
    pub fn open_files(&self) -> usize {
        self.lock().files.len()
    }

    /// The most files the cache keeps open.
    pub fn capacity(&self) -> usize {
        self.lock().capacity
    }

    /// Files opened since the cache was created (misses).
    pub fn files_opened(&self) -> u64 {
        self.lock().opened
    }
}

/// Whether `e` says the process or the system has no descriptor left.
pub fn is_out_of_descriptors(e: &io::Error) -> bool {
    use nix::errno::Errno;
    matches!(e.raw_os_error(), Some(code) if code == Errno::EMFILE as i32 || code == Errno::ENFILE as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path, n: usize) -> Vec<std::path::PathBuf> {
        (0..n)
            .map(|i| {
                let path = dir.join(format!("{i}.log"));
                std::fs::write(&path, format!("file {i}")).unwrap();
                path
            })
            .collect()
    }

    fn content(file: &File) -> String {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 16];
        let n = file.read_at(&mut buf, 0).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn bounded_and_least_recently_used_evicted_first() {
        let dir = tempfile::tempdir().unwrap();
        let paths = files(dir.path(), 4);
        let cache = LogFileCache::new(2);
        cache.get_or_open(0, &paths[0]).unwrap();
        cache.get_or_open(1, &paths[1]).unwrap();
        cache.get_or_open(0, &paths[0]).unwrap();
        assert_eq!((cache.open_files(), cache.files_opened()), (2, 2));
        // 1 is now the least recently used: 2 replaces it, 0 stays.
        cache.get_or_open(2, &paths[2]).unwrap();
        assert_eq!(cache.open_files(), 2);
        cache.get_or_open(0, &paths[0]).unwrap();
        assert_eq!(cache.files_opened(), 3, "0 was still cached");
        let reopened = cache.get_or_open(1, &paths[1]).unwrap();
        assert_eq!(cache.files_opened(), 4, "1 was evicted and is opened again");
        assert_eq!(content(&reopened), "file 1");
        for i in 0..4 {
            cache.get_or_open(i, &paths[i as usize]).unwrap();
            assert!(cache.open_files() <= 2);
        }
    }

    #[test]
    fn a_file_in_use_stays_open_after_eviction() {
        let dir = tempfile::tempdir().unwrap();
        let paths = files(dir.path(), 3);
        let cache = LogFileCache::new(1);
        let held = cache.get_or_open(0, &paths[0]).unwrap();
        cache.get_or_open(1, &paths[1]).unwrap();
        cache.get_or_open(2, &paths[2]).unwrap();
        assert_eq!(cache.open_files(), 1);
        // Evicted from the cache, but the reader's descriptor is still valid and readable,
        // even after the file was renamed or removed.
        std::fs::remove_file(&paths[0]).unwrap();
        assert_eq!(content(&held), "file 0");
        let fd = std::os::fd::AsRawFd::as_raw_fd(&*held);
        assert!(std::fs::read_link(format!("/proc/self/fd/{fd}")).is_ok());
    }

    #[test]
    fn forget_closes_and_a_missing_file_is_an_error_for_that_call_only() {
        let dir = tempfile::tempdir().unwrap();
        let paths = files(dir.path(), 2);
        let cache = LogFileCache::new(4);
        cache.get_or_open(0, &paths[0]).unwrap();
        cache.forget(0);
        assert_eq!(cache.open_files(), 0);
        let missing = dir.path().join("missing.log");
        assert!(cache.get_or_open(7, &missing).is_err());
        assert_eq!(cache.open_files(), 0);
        std::fs::write(&missing, "late").unwrap();
        assert_eq!(content(&cache.get_or_open(7, &missing).unwrap()), "late");
    }

    #[test]
    fn out_of_descriptor_errors_are_recognised() {
        assert!(is_out_of_descriptors(&io::Error::from_raw_os_error(
            nix::errno::Errno::EMFILE as i32
        )));
        assert!(!is_out_of_descriptors(&io::Error::from(
            io::ErrorKind::NotFound
        )));
    }
}
