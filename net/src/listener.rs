//! Binding shard listeners and telling connections to stop.

use event_listener::Event;
use glommio::net::{TcpListener, TcpStream};
use socket2::{Domain, Protocol, Socket, Type};
use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};
use std::time::{Duration, Instant};

/// How long a start waits for a port still held by a broker that just exited.
const BIND_RETRY_FOR: Duration = Duration::from_secs(3);

/// Binds a listening socket for one shard.
///
/// Unlike `glommio::net::TcpListener::bind`, this does not set `SO_REUSEPORT`: a second broker
/// started on a port that is already taken must fail loudly instead of silently sharing it. A
/// port that is busy is retried for a few seconds first: when a broker exits, the kernel tears
/// its io_uring rings down asynchronously, and a pending accept keeps the old listening socket
/// alive for a moment after the process is gone (a `kill -9` leaves no chance to close it).
pub fn bind_listener(addr: SocketAddr) -> io::Result<Listener> {
    let deadline = Instant::now() + BIND_RETRY_FOR;
    loop {
        match bind_once(addr) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

fn bind_once(addr: SocketAddr) -> io::Result<Listener> {
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    let fd = socket.into_raw_fd();
    // SAFETY: the descriptor comes from `into_raw_fd`, so the listener becomes its only owner.
    let inner = unsafe { TcpListener::from_raw_fd(fd) };
    Ok(Listener { inner, fd })
}

/// A shard's listening socket (glommio's listener plus its descriptor, which glommio does not
/// expose but [`Listener::close`] needs).
pub struct Listener {
    inner: TcpListener,
    fd: RawFd,
}

impl Listener {
    /// Waits for the next connection; `None` once `shutdown` is raised.
    pub async fn accept_until(&self, shutdown: &ShutdownSignal) -> Option<io::Result<TcpStream>> {
        futures_lite::future::or(
            async { Some(self.inner.accept().await.map_err(io::Error::from)) },
            async {
                shutdown.wait().await;
                None
            },
        )
        .await
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr().map_err(io::Error::from)
    }

    /// Stops listening at once: `shutdown(2)` takes the socket out of the LISTEN state even
    /// while an in-flight io_uring accept still holds a reference to it, so a broker restarted
    /// right after a clean stop can bind the port again.
    pub fn close(self) {
        // `self.fd` is the listener's own descriptor, still open: `self.inner` drops below.
        let _ = nix::sys::socket::shutdown(self.fd, nix::sys::socket::Shutdown::Both);
        drop(self.inner);
    }
}

/// A shard-local "stop now" signal: the accept loop and idle connections wait on it.
#[derive(Default)]
pub struct ShutdownSignal {
    stopped: Cell<bool>,
    event: Event,
}

impl ShutdownSignal {
    /// Raises the signal and wakes everything waiting on it.
    pub fn trigger(&self) {
        self.stopped.set(true);
        self.event.notify(usize::MAX);
    }

    /// Whether the signal was raised.
    pub fn is_triggered(&self) -> bool {
        self.stopped.get()
    }

    /// Completes once the signal is raised.
    pub async fn wait(&self) {
        loop {
            if self.stopped.get() {
                return;
            }
            let listener = self.event.listen();
            if self.stopped.get() {
                return;
            }
            listener.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A closed listener frees its port for an immediate re-bind, and a port held by another
    /// listener is refused (after the retry window) rather than shared.
    #[test]
    fn closed_listener_frees_the_port_and_busy_ports_are_refused() {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(512 * 1024)
            .spawn(|| async {
                let first = bind_listener("127.0.0.1:0".parse().unwrap()).unwrap();
                let addr = first.local_addr().unwrap();
                let stop = ShutdownSignal::default();
                let pending = glommio::spawn_local(async move {
                    let _ = first.accept_until(&stop).await;
                    first
                });
                glommio::timer::sleep(Duration::from_millis(20)).await;
                let blocker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let busy = blocker.local_addr().unwrap();
                let started = Instant::now();
                let err = bind_listener(busy).err().expect("a taken port is refused");
                assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
                assert!(started.elapsed() >= BIND_RETRY_FOR);
                std::net::TcpStream::connect(addr).unwrap();
                pending.await.close();
                bind_listener(addr).expect("port free again after close_listener");
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
