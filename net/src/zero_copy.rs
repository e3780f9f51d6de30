//! Sending file regions to a socket without copying them through user space.
//!
//! glommio's sockets are blocking file descriptors driven by io_uring, and glommio has no
//! sendfile. So for each region we switch the socket to `O_NONBLOCK` just for the `sendfile(2)`
//! call: the kernel moves as much as the socket buffer takes straight from the page cache. When
//! the buffer is full (`EAGAIN`) we send the next chunk through glommio's ordinary async write,
//! which waits for the socket to drain without stalling the core, and then try `sendfile` again.

use crate::response::FileRegion;
use futures_lite::io::{AsyncWrite, AsyncWriteExt};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::FileExt;

/// Largest chunk sent through the copying fallback after `EAGAIN`.
const FALLBACK_CHUNK: u64 = 256 * 1024;

/// Writes `region` to `stream`, zero-copy where the socket buffer has room.
pub async fn write_file_region<S>(stream: &mut S, region: &FileRegion) -> io::Result<()>
where
    S: AsyncWrite + AsRawFd + Unpin,
{
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
    Ok(())
}

fn sendfile_nonblocking(socket_fd: RawFd, region: &FileRegion, position: u64, count: u64) -> Result<usize, Errno> {
    let flags = OFlag::from_bits_truncate(fcntl(socket_fd, FcntlArg::F_GETFL)?);
    fcntl(socket_fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    // SAFETY: `socket_fd` belongs to the stream borrowed mutably by our caller for the whole
    // call, so it stays open and is not reused while this borrowed handle exists.
    let socket = unsafe { BorrowedFd::borrow_raw(socket_fd) };
    let mut offset = position as libc::off_t;
    let result = nix::sys::sendfile::sendfile(socket, region.file.as_ref(), Some(&mut offset), count as usize);
    fcntl(socket_fd, FcntlArg::F_SETFL(flags))?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::Arc;

    /// Sends a region larger than any socket buffer through a real glommio socket, so both the
    /// sendfile path and the EAGAIN fallback run, and checks every byte arrives in order.
    #[test]
    fn sends_large_region_exactly() {
        let mut file = tempfile_with(8 * 1024 * 1024 + 123);
        let mut expected = Vec::new();
        file.1.read_to_end(&mut expected).unwrap();
        let region = FileRegion { file: Arc::new(file.0), position: 17, len: expected.len() as u64 - 40 };
        let want = expected[17..17 + region.len as usize].to_vec();

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(50));
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            got
        });
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(512 * 1024)
            .spawn(move || async move {
                let mut stream = glommio::net::TcpStream::connect(addr).await.unwrap();
                write_file_region(&mut stream, &region).await.unwrap();
                stream.close().await.unwrap();
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(reader.join().unwrap(), want);
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
