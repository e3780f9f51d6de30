//! Sending file regions to a socket without copying them through user space.
//!
//! glommio's sockets are blocking file descriptors driven by io_uring, and glommio has no
//! sendfile. So for each region we switch the socket to `O_NONBLOCK` just for the `sendfile(2)`
//! call: the kernel moves as much as the socket buffer takes straight from the page cache. When
//! the buffer is full (`EAGAIN`) we send the next chunk through glommio's ordinary async write,
//! which waits for the socket to drain without stalling the core, and then try `sendfile` again.
//!
//! `sendfile` of a range that is not in the page cache would block the core on disk I/O, so
//! each region is first checked with `cachestat(2)` (Linux 6.5+); a cold region is read on
//! glommio's blocking thread pool instead and written from memory, so a cold read never stalls
//! the core. (Kernels without `cachestat` are treated as "cached".)

use crate::response::FileRegion;
use futures_lite::io::{AsyncWrite, AsyncWriteExt};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::FileExt;

/// Largest chunk sent through the copying fallback after `EAGAIN`.
const FALLBACK_CHUNK: u64 = 256 * 1024;

/// Writes `region` to `stream`, zero-copy where the socket buffer has room. Returns whether the
/// region was in the page cache (`false`: it was read from disk off-core first).
pub async fn write_file_region<S>(stream: &mut S, region: &FileRegion) -> io::Result<bool>
where
    S: AsyncWrite + AsRawFd + Unpin,
{
    if !is_cached(region) {
        return write_cold_region(stream, region).await.map(|()| false);
    }
    let socket_fd = stream.as_raw_fd();
    let mut position = region.position;
    let end = region.position + region.len;
    while position < end {
        match sendfile_nonblocking(socket_fd, region, position, end - position) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("file ended at {position} before the region's end {end}"),
                ))
            }
            Ok(sent) => position += sent as u64,
            Err(Errno::EAGAIN) => {
                let chunk = (end - position).min(FALLBACK_CHUNK) as usize;
                let mut buf = vec![0u8; chunk];
                region.file.read_exact_at(&mut buf, position)?;
                stream.write_all(&buf).await?;
                position += chunk as u64;
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(io::Error::from(e)),
        }
    }
    Ok(true)
}

/// Reads a region that is not in the page cache off-core, then writes it.
async fn write_cold_region<S: AsyncWrite + Unpin>(
    stream: &mut S,
    region: &FileRegion,
) -> io::Result<()> {
    let file = region.file.clone();
    let (position, len) = (region.position, region.len as usize);
    let data = glommio::executor()
        .spawn_blocking(move || {
            let mut buf = vec![0u8; len];
            file.read_exact_at(&mut buf, position).map(|()| buf)
        })
        .await?;
    stream.write_all(&data).await
}

/// `struct cachestat_range` of `cachestat(2)`.
#[repr(C)]
struct CachestatRange {
    off: u64,
    len: u64,
}

/// `struct cachestat` of `cachestat(2)`.
#[repr(C)]
#[derive(Default)]
struct Cachestat {
    nr_cache: u64,
    nr_dirty: u64,
    nr_writeback: u64,
    nr_evicted: u64,
    nr_recently_evicted: u64,
}

/// The `cachestat` system call number (the same on every architecture).
const SYS_CACHESTAT: libc::c_long = 451;

/// Whether every page of the region is in the page cache (true when the kernel can't tell).
pub fn is_cached(region: &FileRegion) -> bool {
    if region.len == 0 {
        return true;
    }
    const PAGE: u64 = 4096;
    let first = region.position / PAGE;
    let last = (region.position + region.len - 1) / PAGE;
    let range = CachestatRange {
        off: first * PAGE,
        len: (last - first + 1) * PAGE,
    };
    let mut stat = Cachestat::default();
    // SAFETY: cachestat(2) reads `range` and writes `stat`, both valid for the call's duration
    // and laid out as the kernel's structs (#[repr(C)], u64 fields); the fd is open (we hold
    // the File).
    let rc = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            region.file.as_raw_fd(),
            &range as *const CachestatRange,
            &mut stat as *mut Cachestat,
            0u32,
        )
    };
    rc != 0 || stat.nr_cache > last - first
}

fn sendfile_nonblocking(
    socket_fd: RawFd,
    region: &FileRegion,
    position: u64,
    count: u64,
) -> Result<usize, Errno> {
    let flags = OFlag::from_bits_truncate(fcntl(socket_fd, FcntlArg::F_GETFL)?);
    fcntl(socket_fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    // SAFETY: `socket_fd` belongs to the stream borrowed mutably by our caller for the whole
    // call, so it stays open and is not reused while this borrowed handle exists.
    let socket = unsafe { BorrowedFd::borrow_raw(socket_fd) };
    let mut offset = position as libc::off_t;
    let result = nix::sys::sendfile::sendfile(
        socket,
        region.file.as_ref(),
        Some(&mut offset),
        count as usize,
    );
    fcntl(socket_fd, FcntlArg::F_SETFL(flags))?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::Arc;

    /// Sends `region` through a real glommio socket to a reader thread; returns what arrived and
    /// whether `write_file_region` reported the region as cached.
    fn send_through_socket(region: FileRegion) -> (Vec<u8>, bool) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(50));
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            got
        });
        let cached = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(512 * 1024)
            .spawn(move || async move {
                let mut stream = glommio::net::TcpStream::connect(addr).await.unwrap();
                let cached = write_file_region(&mut stream, &region).await.unwrap();
                stream.close().await.unwrap();
                cached
            })
            .unwrap()
            .join()
            .unwrap();
        (reader.join().unwrap(), cached)
    }

    /// Writes the file back and asks the kernel to drop its pages from the page cache.
    fn drop_from_page_cache(file: &std::fs::File) {
        file.sync_all().unwrap();
        nix::fcntl::posix_fadvise(
            file.as_raw_fd(),
            0,
            0,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        )
        .unwrap();
    }

    /// Sends a region larger than any socket buffer, so both the sendfile path and the EAGAIN
    /// fallback run, and checks every byte arrives in order.
    #[test]
    fn sends_large_region_exactly() {
        let mut file = tempfile_with(8 * 1024 * 1024 + 123);
        let mut expected = Vec::new();
        file.1.read_to_end(&mut expected).unwrap();
        let region = FileRegion {
            file: Arc::new(file.0),
            position: 17,
            len: expected.len() as u64 - 40,
        };
        let want = expected[17..17 + region.len as usize].to_vec();
        let (got, cached) = send_through_socket(region);
        assert!(cached, "a file just written is in the page cache");
        assert_eq!(got, want);
    }

    /// A freshly written file is cached; after fsync + POSIX_FADV_DONTNEED it is not (on a
    /// disk-backed filesystem), and the cold path still delivers the exact bytes.
    #[test]
    fn detects_cold_ranges_and_serves_them() {
        let (file, _) = tempfile_with(1024 * 1024);
        let region = FileRegion {
            file: Arc::new(file),
            position: 5000,
            len: 300_000,
        };
        assert!(is_cached(&region));
        drop_from_page_cache(&region.file);
        let cold = !is_cached(&region);
        let mut want = vec![0u8; region.len as usize];
        region
            .file
            .read_exact_at(&mut want, region.position)
            .unwrap();
        if cold {
            drop_from_page_cache(&region.file);
        }
        let (got, cached) = send_through_socket(region);
        assert_eq!(cached, !cold, "write_file_region reports the path it took");
        assert_eq!(got, want);
    }

    fn tempfile_with(len: usize) -> (std::fs::File, std::fs::File) {
        let path = std::env::temp_dir().join(format!("sluice-zc-{}-{}", std::process::id(), len));
        let mut f = std::fs::File::create(&path).unwrap();
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        f.write_all(&data).unwrap();
        let a = std::fs::File::open(&path).unwrap();
        let b = std::fs::File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        (a, b)
    }
}
