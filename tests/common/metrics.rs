//! Scrapes of a broker's Prometheus endpoint: the raw HTTP answer, the parsed document, and
//! one sample's value by name and labels.

use std::io::{Read, Write};
use std::time::Duration;

/// GETs `path` from the metrics endpoint on `port`; returns (status line, body), or the I/O
/// error (the broker may be down or still starting).
pub fn try_http_get(port: u16, path: &str) -> std::io::Result<(String, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("not an HTTP response"))?;
    Ok((
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    ))
}

/// GETs `path` from the metrics endpoint on `port`; returns (status line, body).
pub fn http_get(port: u16, path: &str) -> (String, String) {
    try_http_get(port, path).expect("GET from the metrics endpoint")
}

/// `/metrics` parsed as Prometheus text, or why not (down, not HTTP 200, not Prometheus text).
pub fn try_scrape(port: u16) -> Result<prometheus_parse::Scrape, String> {
    let (status, body) = try_http_get(port, "/metrics").map_err(|e| e.to_string())?;
    if !status.contains("200") {
        return Err(status);
    }
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .map_err(|e| e.to_string())
}

/// The value of the first sample of `name` carrying every label of `labels`.
pub fn value(doc: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    doc.samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

/// The sum of every sample of `name` carrying every label of `labels` (over shards, say).
pub fn sum(doc: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    doc.samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
        .sum()
}
