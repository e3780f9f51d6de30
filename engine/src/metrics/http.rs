//! The metrics HTTP endpoint (`metrics.listener`, default 127.0.0.1:9644), served by shard 0.
//!
//! It answers `GET /metrics` with every shard's snapshot in Prometheus text format (and, on a
//! controller, the quorum's gauges and the active controller's count of partitions without a
//! leader) and anything else with 404. Each scrape is one short HTTP/1.1 exchange (`Connection: close`);
//! a request head over 8 KiB or slower than 5 seconds is dropped.

use super::offline_partitions;
use super::render::{render, render_controller, render_quorum};
use crate::shard::Shard;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use sluice_net::listener::Listener;
use std::rc::Rc;
use std::time::Duration;
use tracing::debug;

/// The largest request head accepted.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts scrapes until the shard shuts down.
pub async fn serve_metrics(listener: Listener, shard: Rc<Shard>) {
    loop {
        match listener.accept_until(&shard.shutdown).await {
            None => break,
            Some(Ok(stream)) => {
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    if let Err(e) = answer(stream, &shard).await {
                        debug!("metrics scrape failed: {e}");
                    }
                })
                .detach();
            }
            Some(Err(e)) => {
                debug!("metrics accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    listener.close();
}

async fn answer(mut stream: TcpStream, shard: &Shard) -> std::io::Result<()> {
    let head = futures_lite::future::or(read_head(&mut stream), async {
        glommio::timer::sleep(HEAD_TIMEOUT).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "request head timed out",
        ))
    })
    .await?;
    let request_line = head.lines().next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let (status, content_type, body) =
        if method == "GET" && (path == "/metrics" || path.starts_with("/metrics?")) {
            match shard.router.collect_metrics().await {
                Ok(snapshots) => {
                    let mut body = render(&snapshots);
                    if let Some(controller) = &shard.controller {
                        let quorum = controller.metrics();
                        let offline = if quorum.active {
                            offline_partitions(&shard.image().state)
                        } else {
                            0
                        };
                        body.push_str(&render_quorum(&quorum));
                        body.push_str(&render_controller(offline));
                    }
                    ("200 OK", "text/plain; version=0.0.4; charset=utf-8", body)
                }
                Err(e) => ("503 Service Unavailable", "text/plain", format!("{e}\n")),
            }
        } else {
            (
                "404 Not Found",
                "text/plain",
                "metrics are at GET /metrics\n".to_string(),
            )
        };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.close().await
}

async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() > MAX_HEAD {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}
