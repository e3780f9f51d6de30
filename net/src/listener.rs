//! Binding shard listeners and telling connections to stop.

use event_listener::Event;
use glommio::net::{TcpListener, TcpStream};
use socket2::{Domain, Protocol, Socket, Type};
use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};

/// Binds a listening socket for one shard.
///
/// Unlike `glommio::net::TcpListener::bind`, this does not set `SO_REUSEPORT`: a second broker
/// started on a port that is already taken must fail loudly instead of silently sharing it.
pub fn bind_listener(addr: SocketAddr) -> io::Result<TcpListener> {
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
    // SAFETY: the descriptor comes from `into_raw_fd`, so the listener becomes its only owner.
    Ok(unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) })
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

/// Waits for the next connection on `listener`; `None` once `shutdown` is raised.
pub async fn accept_until_shutdown(
    listener: &TcpListener,
    shutdown: &ShutdownSignal,
) -> Option<io::Result<TcpStream>> {
    futures_lite::future::or(
        async { Some(listener.accept().await.map_err(io::Error::from)) },
        async {
            shutdown.wait().await;
            None
        },
    )
    .await
}
