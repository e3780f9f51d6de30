//! Shared harness for Sluice's end-to-end tests.
//!
//! Every test starts real `sluice` processes (see [`Broker`]) and talks to them
//! with real clients: librdkafka through the `rdkafka` crate, and a small raw
//! Kafka-protocol client ([`RawClient`]) built on `kafka-protocol` for the
//! protocol-level checks that a well-behaved client library would never send.
//!
//! Submodules: [`cluster`] (several brokers as one KRaft-style cluster), [`admin`] (admin
//! requests that report I/O errors instead of panicking), [`group`] (consumer-group members
//! polled by their own threads), [`keyed`] (the keyed round trip), [`metrics`] (scrapes of the
//! Prometheus endpoint) and [`replicated`] (partition states, load and read-back checks for
//! replicated topics).
//!
//! Everything here is bounded in time: every wait has a deadline, so a broken
//! or hung broker fails a test quickly (with the broker's stderr attached)
//! instead of hanging the suite.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{Compression, RecordBatchDecoder, RecordSet};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, DeliveryResult, Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use sluice_storage::wire::{BatchOptions, RecordBatchBuilder};

pub mod admin;
pub mod cluster;
pub mod group;
pub mod keyed;
pub mod metrics;
pub mod replicated;

/// Path of the broker binary built by cargo for these tests.
pub const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

/// How long a broker may take to open all its ports.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a broker may take to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------

/// Runs `f` on its own thread and fails the calling test if it does not
/// finish within `limit`. A panic inside `f` is propagated unchanged.
///
/// This is the backstop for anything that could block without a deadline of
/// its own (a client library's destructor waiting on a dead broker, say).
pub fn bounded<T, F>(limit: Duration, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(
            std::thread::current()
                .name()
                .unwrap_or("bounded")
                .to_string(),
        )
        .spawn(move || {
            let r = f();
            let _ = tx.send(());
            r
        })
        .expect("spawn test thread");
    match rx.recv_timeout(limit) {
        Ok(()) => handle
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e)),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            // The closure panicked: re-raise its panic here.
            match handle.join() {
                Ok(v) => v,
                Err(e) => std::panic::resume_unwind(e),
            }
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("test did not finish within {limit:?} (hung client or broker?)")
        }
    }
}

/// Polls `cond` every `every` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, every: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// A unique-enough name for topics, groups and so on.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 100_000
    )
}

/// SplitMix64: a tiny deterministic generator, so that the content of message
/// `i` can be recomputed when it is read back instead of being kept in memory.
pub fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Deterministic, moderately compressible filler of `len` bytes for seed `seed`.
pub fn filler(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "sluice", "kafka", "broker", "shard", "core", "batch", "record", "offset", "segment",
        "index", "fetch", "produce", "log", "crc", "epoch", "leader",
    ];
    let mut out = Vec::with_capacity(len + 16);
    let mut s = seed;
    while out.len() < len {
        s = mix64(s);
        if s.is_multiple_of(4) {
            // some incompressible noise too
            out.extend_from_slice(&s.to_le_bytes()[..4]);
        } else {
            out.extend_from_slice(WORDS[(s >> 8) as usize % WORDS.len()].as_bytes());
            out.push(b' ');
        }
    }
    out.truncate(len);
    out
}

pub fn free_range(cores: u16) -> u16 {
    // Ports are handed out from a per-process window (so parallel tests in one
    // binary never race for the same port) that starts at a pid-dependent
    // place (so consecutive test binaries rarely reuse a port that still has
    // TIME_WAIT connections), and each candidate range is bind-tested.
    const LO: u16 = 15_000;
    const HI: u16 = 32_000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        LO + ((std::process::id() % 400) as u16) * 40,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..500 {
        let mut base = NEXT.fetch_add(cores + 1, Ordering::SeqCst);
        if base < LO || base + cores >= HI {
            NEXT.store(LO + cores + 1, Ordering::SeqCst);
            base = LO;
        }
        if (0..cores).all(|k| port_is_free(base + k)) {
            return base;
        }
    }
    panic!("could not find {cores} consecutive free ports");
}

/// True if nothing listens on 127.0.0.1:`port` and it can be bound.
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

// ---------------------------------------------------------------------------
// The broker process
// ---------------------------------------------------------------------------

/// Options for a test broker. `Broker::builder().cores(2).set("k", "v").start()`.
#[derive(Clone, Debug)]
pub struct BrokerBuilder {
    cores: u16,
    sets: Vec<(String, String)>,
    nofile: Option<u64>,
    binary: Option<PathBuf>,
    config_file: Option<PathBuf>,
    data_from: Option<PathBuf>,
    base_port: Option<u16>,
    controller_port: Option<u16>,
}

impl BrokerBuilder {
    pub fn cores(mut self, n: u16) -> Self {
        self.cores = n;
        self
    }
    /// Starts the broker with `RLIMIT_NOFILE` set to `limit`, soft and hard.
    pub fn nofile(mut self, limit: u64) -> Self {
        self.nofile = Some(limit);
        self
    }
    /// A `--set key=value` option (Kafka config names).
    pub fn set(mut self, key: &str, value: impl ToString) -> Self {
        self.sets.push((key.to_string(), value.to_string()));
        self
    }
    /// Runs this `sluice` binary instead of the one cargo built (an older release, say).
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }
    /// Passes `--config FILE` (a properties file); `--set` options still override it.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }
    /// Copies the directory `dir` to the broker's data directory before its first start, so
    /// that the broker starts on existing data (a fixture) without changing it.
    pub fn data_from(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_from = Some(dir.into());
        self
    }
    /// The client listener port of shard 0 (shard k listens on `port + k`); default: a free
    /// range from [`free_range`]. Clusters choose every port before the first broker starts.
    pub fn base_port(mut self, port: u16) -> Self {
        self.base_port = Some(port);
        self
    }
    /// Adds a `CONTROLLER://127.0.0.1:port` listener beside the client listener.
    pub fn controller_port(mut self, port: u16) -> Self {
        self.controller_port = Some(port);
        self
    }
    /// Starts the broker and waits until every shard port accepts connections.
    pub fn start(self) -> Broker {
        let mut b = self.launch();
        b.wait_ready();
        b
    }
    /// Starts the broker process without waiting for its ports: a cluster's brokers open them
    /// only once a quorum exists, so they must all be launched before any is waited for
    /// ([`Broker::wait_ready`]).
    pub fn launch(mut self) -> Broker {
        // Many test brokers run at once: the metrics endpoint is off unless a test asks for it.
        if !self.sets.iter().any(|(k, _)| k == "metrics.listener") {
            self.sets
                .push(("metrics.listener".to_string(), String::new()));
        }
        let base_port = self.base_port.unwrap_or_else(|| free_range(self.cores));
        let tmp = tempfile::Builder::new()
            .prefix("sluice-test-")
            .tempdir()
            .expect("tempdir");
        let data_dir = tmp.path().join("data");
        if let Some(from) = &self.data_from {
            copy_dir(from, &data_dir);
        }
        let stderr_path = tmp.path().join("broker.stderr");
        let mut b = Broker {
            child: None,
            binary: self.binary.unwrap_or_else(|| PathBuf::from(SLUICE)),
            config_file: self.config_file,
            base_port,
            controller_port: self.controller_port,
            cores: self.cores,
            sets: self.sets,
            nofile: self.nofile,
            data_dir,
            stderr_path,
            stderr_mark: 0,
            tmp: Some(tmp),
            starts: 0,
        };
        b.launch();
        b
    }
}

/// Copies the directory tree `from` to `to` (which must not exist yet).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("mkdir {}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()))
    {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}

/// A running `sluice start` process with its own ports and data directory.
///
/// Dropping it kills the process (SIGKILL); a test that fails leaves the data
/// directory in place and prints the tail of the broker's stderr.
pub struct Broker {
    child: Option<Child>,
    /// The `sluice` executable.
    binary: PathBuf,
    /// `--config` file, if any.
    config_file: Option<PathBuf>,
    base_port: u16,
    /// Port of the `CONTROLLER://` listener, if the broker has one.
    controller_port: Option<u16>,
    cores: u16,
    sets: Vec<(String, String)>,
    /// `RLIMIT_NOFILE` (soft and hard) of the broker process, if set.
    nofile: Option<u64>,
    data_dir: PathBuf,
    stderr_path: PathBuf,
    /// Byte length of the stderr file when the current process was started.
    stderr_mark: u64,
    tmp: Option<tempfile::TempDir>,
    starts: u32,
}

impl Broker {
    pub fn builder() -> BrokerBuilder {
        BrokerBuilder {
            cores: 1,
            sets: Vec::new(),
            nofile: None,
            binary: None,
            config_file: None,
            data_from: None,
            base_port: None,
            controller_port: None,
        }
    }

    /// A one-core broker with default settings.
    pub fn start() -> Broker {
        Broker::builder().start()
    }

    /// `127.0.0.1:P`, the first shard's listener.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.base_port)
    }

    /// Listener port of shard `shard` (P + shard).
    pub fn port(&self, shard: u16) -> u16 {
        assert!(shard < self.cores, "shard {shard} out of range");
        self.base_port + shard
    }

    pub fn addr(&self, shard: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port(shard)))
    }

    pub fn cores(&self) -> u16 {
        self.cores
    }

    /// `log.dirs` of this broker.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Directory of one partition: `<log.dirs>/<topic>-<partition>`.
    pub fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{partition}"))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Everything the broker wrote to stderr, over all its starts.
    pub fn stderr_text(&self) -> String {
        std::fs::read(&self.stderr_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// What the current (or last) process wrote to stderr.
    pub fn stderr_since_start(&self) -> String {
        let mut f = match File::open(&self.stderr_path) {
            Ok(f) => f,
            Err(_) => return String::new(),
        };
        let _ = f.seek(SeekFrom::Start(self.stderr_mark));
        let mut b = Vec::new();
        let _ = f.read_to_end(&mut b);
        String::from_utf8_lossy(&b).into_owned()
    }

    /// Port of the `CONTROLLER://` listener, if the broker has one.
    pub fn controller_port(&self) -> Option<u16> {
        self.controller_port
    }

    /// True while the harness has a process for this broker (started, not yet stopped or
    /// killed by the harness; a paused process counts).
    pub fn started(&self) -> bool {
        self.child.is_some()
    }

    /// SIGSTOP: the process stays, but answers nothing and sends no heartbeats.
    pub fn pause(&self) {
        self.send_signal(libc::SIGSTOP);
    }

    /// SIGCONT after [`Broker::pause`].
    pub fn resume(&self) {
        self.send_signal(libc::SIGCONT);
    }

    fn send_signal(&self, signal: i32) {
        let pid = self.pid().expect("broker not running");
        // SAFETY: kill(2) with a pid of our own child process and a valid signal number.
        let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
        assert_eq!(
            rc,
            0,
            "kill({pid}, {signal}): {}",
            std::io::Error::last_os_error()
        );
    }

    fn args(&self) -> Vec<String> {
        let mut listeners = format!("PLAINTEXT://127.0.0.1:{}", self.base_port);
        if let Some(c) = self.controller_port {
            listeners.push_str(&format!(",CONTROLLER://127.0.0.1:{c}"));
        }
        let mut a = vec!["start".to_string()];
        if let Some(file) = &self.config_file {
            a.push("--config".to_string());
            a.push(file.display().to_string());
        }
        a.extend([
            "--cores".to_string(),
            self.cores.to_string(),
            "--set".to_string(),
            format!("listeners={listeners}"),
            "--set".to_string(),
            format!("log.dirs={}", self.data_dir.display()),
        ]);
        for (k, v) in &self.sets {
            a.push("--set".to_string());
            a.push(format!("{k}={v}"));
        }
        a
    }

    fn spawn(&mut self) {
        self.launch();
        self.wait_ready();
    }

    /// Starts the process (same ports, data and options) without waiting for its ports.
    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_path)
            .expect("open broker stderr file");
        let args = self.args();
        writeln!(
            log,
            "===== harness: start #{}: sluice {}",
            self.starts,
            args.join(" ")
        )
        .unwrap();
        self.stderr_mark = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new(&self.binary);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .env("RUST_BACKTRACE", "1")
            .env("NO_COLOR", "1"); // plain text, so assertions can grep it
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        // If the test process dies (a test thread hung and the harness was
        // killed), take the broker with it.
        let nofile = self.nofile;
        unsafe {
            cmd.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if let Some(limit) = nofile {
                    let rlim = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn sluice");
        self.child = Some(child);
    }

    /// Waits until every shard port accepts TCP connections.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut pending: Vec<u16> = (0..self.cores).map(|k| self.base_port + k).collect();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!(
                    "sluice exited during start-up ({status}); stderr:\n{}",
                    tail_lines(&self.stderr_since_start(), 80)
                );
            }
            pending.retain(|p| {
                TcpStream::connect_timeout(
                    &SocketAddr::from(([127, 0, 0, 1], *p)),
                    Duration::from_millis(200),
                )
                .is_err()
            });
            if pending.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                let _ = self.child.as_mut().unwrap().kill();
                let _ = self.child.as_mut().unwrap().wait();
                self.child = None;
                panic!(
                    "sluice did not open ports {pending:?} within {START_TIMEOUT:?}; stderr:\n{}",
                    tail_lines(&self.stderr_since_start(), 80)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            None => false,
            Some(c) => c.try_wait().unwrap().is_none(),
        }
    }

    /// Panics (with stderr) unless the process is still alive.
    pub fn assert_alive(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if let Some(st) = c.try_wait().unwrap() {
                panic!(
                    "sluice died ({st}); stderr:\n{}",
                    tail_lines(&self.stderr_since_start(), 80)
                );
            }
        } else {
            panic!("broker is not running");
        }
    }

    /// Sends `signal` and waits (bounded) for the exit status.
    fn signal_and_wait(&mut self, signal: i32) -> ExitStatus {
        let child = self.child.as_mut().expect("broker not running");
        if let Some(st) = child.try_wait().unwrap() {
            self.child = None;
            panic!(
                "sluice had already exited ({st}) before signal {signal}; stderr:\n{}",
                tail_lines(&self.stderr_since_start(), 80)
            );
        }
        unsafe {
            libc::kill(child.id() as libc::pid_t, signal);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                self.child = None;
                return st;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                panic!(
                    "sluice did not exit within {STOP_TIMEOUT:?} of signal {signal}; stderr:\n{}",
                    tail_lines(&self.stderr_since_start(), 80)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM without waiting: [`Broker::stop`] then waits. A cluster signals all its
    /// brokers first, so that none waits for a peer that is still up.
    pub fn terminate(&self) {
        self.send_signal(libc::SIGTERM);
    }

    /// Waits (bounded) for the process to exit after [`Broker::terminate`], and asserts exit
    /// code 0.
    pub fn wait_stopped(&mut self) {
        let child = self.child.as_mut().expect("broker not running");
        let deadline = Instant::now() + STOP_TIMEOUT;
        let st = loop {
            if let Some(st) = child.try_wait().unwrap() {
                self.child = None;
                break st;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                panic!(
                    "sluice did not exit within {STOP_TIMEOUT:?} of SIGTERM; stderr:\n{}",
                    tail_lines(&self.stderr_since_start(), 80)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            st.success(),
            "sluice exited with {st} after SIGTERM (want 0); stderr:\n{}",
            tail_lines(&self.stderr_since_start(), 80)
        );
    }

    /// Clean shutdown: SIGTERM, wait, and assert exit code 0.
    pub fn stop(&mut self) {
        let st = self.signal_and_wait(libc::SIGTERM);
        assert!(
            st.success(),
            "sluice exited with {st} after SIGTERM (want 0); stderr:\n{}",
            tail_lines(&self.stderr_since_start(), 80)
        );
    }

    /// SIGINT, wait, and assert exit code 0.
    pub fn interrupt(&mut self) {
        let st = self.signal_and_wait(libc::SIGINT);
        assert!(
            st.success(),
            "sluice exited with {st} after SIGINT (want 0); stderr:\n{}",
            tail_lines(&self.stderr_since_start(), 80)
        );
    }

    /// `kill -9`: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        let _ = self.signal_and_wait(libc::SIGKILL);
    }

    /// Starts the broker again with the same ports, data directory and options
    /// (stops it cleanly first if it is still running).
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn();
    }

    /// Starts a stopped broker again (panics if it is running).
    pub fn start_again(&mut self) {
        self.spawn();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "----- sluice stderr (tail, {}) -----\n{}\n-----",
                self.stderr_path.display(),
                tail_lines(&self.stderr_text(), 60)
            );
            if let Some(t) = self.tmp.take() {
                let p = t.keep();
                eprintln!("----- test data kept in {} -----", p.display());
            }
        }
    }
}

/// Runs `sluice args…` in `cwd` to completion, killing it if it runs longer than `limit`
/// (returns None then, after printing what it wrote). For commands that should exit by
/// themselves: `--help`, rejected configurations, `--check-config`.
pub fn run_sluice_bounded(
    args: &[&str],
    cwd: &Path,
    limit: Duration,
) -> Option<std::process::Output> {
    let mut child = Command::new(SLUICE)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice");
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            eprintln!(
                "sluice {args:?} still running after {limit:?}; stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A finished command's stdout followed by its stderr, as text.
pub fn output_text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

// ---------------------------------------------------------------------------
// rdkafka helpers
// ---------------------------------------------------------------------------

/// A librdkafka config pointed at `bootstrap`, quiet and with short reconnect
/// backoffs so that restarts in tests are picked up quickly.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("client.id", "sluice-tests")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500")
        .set("topic.metadata.refresh.interval.ms", "5000")
        .set("socket.timeout.ms", "30000")
        .set("log_level", "3");
    c
}

/// Creates `topic` with `partitions` partitions (replication factor 1) with
/// the AdminClient, then waits until Metadata shows every partition with a
/// leader.
pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        client_config(bootstrap).create().expect("admin client");
    let opts = AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(30)))
        .operation_timeout(Some(Duration::from_secs(30)));
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let res = futures::executor::block_on(admin.create_topics([&new], &opts))
        .expect("CreateTopics request failed");
    for r in res {
        if let Err((name, code)) = r {
            panic!("CreateTopics {name}: {code:?}");
        }
    }
    let consumer: BaseConsumer = client_config(bootstrap).create().unwrap();
    let ok = wait_until(
        Duration::from_secs(30),
        Duration::from_millis(100),
        || match consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            Ok(md) => md.topics().iter().any(|t| {
                t.name() == topic
                    && t.error().is_none()
                    && t.partitions().len() == partitions as usize
                    && t.partitions().iter().all(|p| p.leader() >= 0)
            }),
            Err(_) => false,
        },
    );
    assert!(
        ok,
        "topic {topic} did not show up in Metadata with {partitions} led partitions"
    );
}

/// Creates `topic` with the replica assignment `replicas` (one list of node ids per partition,
/// preferred leader first) and the topic configs `configs` with the AdminClient, then waits
/// until Metadata shows every partition with a leader.
pub fn create_topic_assigned(
    bootstrap: &str,
    topic: &str,
    replicas: &[&[i32]],
    configs: &[(&str, &str)],
) {
    let admin: AdminClient<DefaultClientContext> =
        client_config(bootstrap).create().expect("admin client");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let mut new = NewTopic::new(
        topic,
        replicas.len() as i32,
        TopicReplication::Variable(replicas),
    );
    for (k, v) in configs {
        new = new.set(k, v);
    }
    let res = futures::executor::block_on(admin.create_topics([&new], &opts))
        .expect("CreateTopics request failed");
    for r in res {
        if let Err((name, code)) = r {
            panic!("CreateTopics {name}: {code:?}");
        }
    }
    let consumer = plain_consumer(bootstrap);
    let led = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
        consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .is_ok_and(|md| {
                md.topics().iter().any(|t| {
                    t.name() == topic
                        && t.partitions().len() == replicas.len()
                        && t.partitions().iter().all(|p| p.leader() >= 0)
                })
            })
    });
    assert!(led, "{topic} did not get leaders for all its partitions");
}

/// One message to produce.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Msg {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: Option<i64>,
    pub partition: Option<i32>,
}

/// Where a message was acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acked {
    pub partition: i32,
    pub offset: i64,
}

/// Delivery reports, indexed by the message id given to [`send`].
#[derive(Default)]
pub struct DeliveryLog {
    pub acked: Mutex<HashMap<usize, Acked>>,
    pub failed: Mutex<Vec<(usize, String)>>,
    pub acked_count: AtomicU64,
    pub failed_count: AtomicU64,
}

impl DeliveryLog {
    pub fn done(&self) -> u64 {
        self.acked_count.load(Ordering::SeqCst) + self.failed_count.load(Ordering::SeqCst)
    }
    pub fn acked(&self) -> u64 {
        self.acked_count.load(Ordering::SeqCst)
    }
    pub fn failed(&self) -> u64 {
        self.failed_count.load(Ordering::SeqCst)
    }
    pub fn first_failures(&self, n: usize) -> Vec<(usize, String)> {
        self.failed
            .lock()
            .unwrap()
            .iter()
            .take(n)
            .cloned()
            .collect()
    }
}

/// Producer context that records every delivery report in a [`DeliveryLog`].
#[derive(Clone)]
pub struct Tracker(pub Arc<DeliveryLog>);

impl ClientContext for Tracker {}

impl ProducerContext for Tracker {
    type DeliveryOpaque = usize;
    fn delivery(&self, r: &DeliveryResult<'_>, id: usize) {
        match r {
            Ok(m) => {
                self.0.acked.lock().unwrap().insert(
                    id,
                    Acked {
                        partition: m.partition(),
                        offset: m.offset(),
                    },
                );
                self.0.acked_count.fetch_add(1, Ordering::SeqCst);
            }
            Err((e, _)) => {
                self.0.failed.lock().unwrap().push((id, e.to_string()));
                self.0.failed_count.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

pub type TrackedProducer = ThreadedProducer<Tracker>;

/// A producer (with its own polling thread) whose delivery reports go to the
/// returned log. `opts` are librdkafka properties.
pub fn producer(bootstrap: &str, opts: &[(&str, &str)]) -> (TrackedProducer, Arc<DeliveryLog>) {
    let log = Arc::new(DeliveryLog::default());
    let mut cfg = client_config(bootstrap);
    cfg.set("message.timeout.ms", "120000");
    for (k, v) in opts {
        cfg.set(*k, *v);
    }
    let p: TrackedProducer = cfg
        .create_with_context(Tracker(log.clone()))
        .expect("create producer");
    (p, log)
}

/// Enqueues one message (waiting, up to `deadline`, while the local queue is full).
pub fn send(p: &TrackedProducer, topic: &str, id: usize, m: &Msg, deadline: Instant) {
    let mut headers = None;
    if !m.headers.is_empty() {
        let mut h = OwnedHeaders::new_with_capacity(m.headers.len());
        for (k, v) in &m.headers {
            h = h.insert(Header {
                key: k,
                value: v.as_deref(),
            });
        }
        headers = Some(h);
    }
    let mut rec: BaseRecord<'_, [u8], [u8], usize> = BaseRecord::with_opaque_to(topic, id);
    if let Some(k) = &m.key {
        rec = rec.key(&k[..]);
    }
    if let Some(v) = &m.value {
        rec = rec.payload(&v[..]);
    }
    if let Some(ts) = m.timestamp {
        rec = rec.timestamp(ts);
    }
    if let Some(pn) = m.partition {
        rec = rec.partition(pn);
    }
    if let Some(h) = headers {
        rec = rec.headers(h);
    }
    loop {
        match p.send(rec) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                assert!(
                    Instant::now() < deadline,
                    "producer queue stayed full until the deadline (broker not acknowledging?)"
                );
                rec = r;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err((e, _)) => panic!("produce of message {id} failed to enqueue: {e}"),
        }
    }
}

/// Flushes and waits until `expected` delivery reports arrived (bounded).
pub fn wait_delivered(p: &TrackedProducer, log: &DeliveryLog, expected: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let _ = p.flush(timeout);
    while log.done() < expected {
        assert!(
            Instant::now() < deadline,
            "only {} of {expected} delivery reports ({} acked, {} failed; first failures {:?}) within {timeout:?}",
            log.done(),
            log.acked(),
            log.failed(),
            log.first_failures(5)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A consumer with no group: usable for metadata, watermarks and
/// offsets_for_times, but not for assign().
pub fn plain_consumer(bootstrap: &str) -> BaseConsumer {
    client_config(bootstrap).create().expect("create consumer")
}

/// Low and high watermark of a partition.
pub fn watermarks(bootstrap: &str, topic: &str, partition: i32) -> (i64, i64) {
    let c = plain_consumer(bootstrap);
    let mut last = None;
    for _ in 0..20 {
        match c.fetch_watermarks(topic, partition, Duration::from_secs(10)) {
            Ok(w) => return w,
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("fetch_watermarks({topic}, {partition}) kept failing: {last:?}");
}

/// Consumer errors that come from the (not yet existing) group coordinator
/// rather than from fetching. librdkafka's assign() needs a `group.id`, and
/// with one set it looks up a coordinator in the background even though we
/// never commit or subscribe; Sluice has no groups yet, so those lookups may
/// fail. They say nothing about the data path and are ignored.
pub fn is_group_error(e: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(
            C::CoordinatorNotAvailable
                | C::NotCoordinator
                | C::CoordinatorLoadInProgress
                | C::UnsupportedFeature
                | C::UnsupportedVersion
                | C::InvalidGroupId
                | C::GroupAuthorizationFailed
                | C::UnknownGroup
                | C::InvalidRequest
        )
    )
}

/// What [`consume`] saw besides messages.
#[derive(Debug, Default)]
pub struct ConsumeReport {
    pub messages: u64,
    /// Errors returned by poll() that are not group-coordinator noise.
    pub errors: Vec<String>,
    /// Ignored group-coordinator errors (see [`is_group_error`]).
    pub group_errors: Vec<String>,
}

/// Open file descriptors of a process (entries of `/proc/<pid>/fd`; 0 once it is gone).
pub fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

/// Sets the soft RLIMIT_NOFILE of process `pid` to `soft` (capped at, and keeping, its hard
/// limit); returns the soft limit it had.
pub fn set_soft_nofile(pid: u32, soft: u64) -> u64 {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `old` is a valid rlimit to write into; a null new limit only reads.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            std::ptr::null(),
            &mut old,
        )
    };
    assert_eq!(rc, 0, "prlimit read: {}", std::io::Error::last_os_error());
    let new = libc::rlimit {
        rlim_cur: soft.min(old.rlim_max),
        rlim_max: old.rlim_max,
    };
    // SAFETY: `new` is a valid rlimit; a null old limit is allowed.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &new,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit set: {}", std::io::Error::last_os_error());
    old.rlim_cur
}

/// One field of `/proc/<pid>/status` in KiB (`VmRSS`: resident now; `VmHWM`: peak resident),
/// `None` once the process is gone.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Peak resident memory of a running process in KiB (`VmHWM`).
pub fn peak_rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmHWM").unwrap_or_else(|| panic!("VmHWM of process {pid}"))
}

/// Reads `(partition, start, end)` ranges of `topic` with an assign()-based
/// consumer (explicit offsets, no commits, no subscribe) and hands every
/// message to `f`, until every partition has delivered the message at
/// `end - 1`. Then keeps polling for `linger` to catch anything extra
/// (which is also handed to `f`). Panics when `timeout` passes first.
///
/// librdkafka refuses assign() without a group.id, so a unique group.id is
/// set; the group is never joined and nothing is committed.
pub fn consume(
    bootstrap: &str,
    topic: &str,
    ranges: &[(i32, i64, i64)],
    timeout: Duration,
    linger: Duration,
    mut f: impl FnMut(&BorrowedMessage<'_>),
) -> ConsumeReport {
    let mut cfg = client_config(bootstrap);
    cfg.set("group.id", unique("sluice-test-group"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "error")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100")
        .set("check.crcs", "true");
    let consumer: BaseConsumer = cfg.create().expect("create consumer");
    let mut tpl = TopicPartitionList::new();
    let mut next: HashMap<i32, (i64, i64)> = HashMap::new();
    for &(p, start, end) in ranges {
        if end > start {
            tpl.add_partition_offset(topic, p, Offset::Offset(start))
                .unwrap();
            next.insert(p, (start, end));
        }
    }
    let mut rep = ConsumeReport::default();
    if next.is_empty() && linger.is_zero() {
        return rep;
    }
    if tpl.count() > 0 {
        consumer.assign(&tpl).expect("assign");
    }
    let deadline = Instant::now() + timeout;
    let mut linger_deadline: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if next.values().all(|(n, e)| n >= e) {
            let ld = *linger_deadline.get_or_insert(now + linger);
            if now >= ld {
                break;
            }
        }
        if now >= deadline {
            let mut progress: Vec<_> = next.iter().map(|(p, (n, e))| (*p, *n, *e)).collect();
            progress.sort();
            panic!(
                "consume({topic}) timed out after {timeout:?}: (partition, next, end) = {progress:?}; {} messages; errors {:?}; group errors {:?}",
                rep.messages,
                &rep.errors[..rep.errors.len().min(10)],
                &rep.group_errors[..rep.group_errors.len().min(3)],
            );
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => {
                rep.messages += 1;
                if let Some((n, _)) = next.get_mut(&m.partition()) {
                    *n = (*n).max(m.offset() + 1);
                }
                f(&m);
            }
            Some(Err(e)) => {
                if is_group_error(&e) {
                    rep.group_errors.push(e.to_string());
                } else {
                    rep.errors.push(e.to_string());
                    if rep.errors.len() > 1000 {
                        panic!("too many consumer errors: {:?}", &rep.errors[..10]);
                    }
                }
            }
        }
    }
    let _ = consumer.unassign();
    rep
}

/// Headers of a consumed message as owned pairs.
pub fn headers_of(m: &BorrowedMessage<'_>) -> Vec<(String, Option<Vec<u8>>)> {
    use rdkafka::message::Headers;
    match m.headers() {
        None => Vec::new(),
        Some(h) => h
            .iter()
            .map(|h| (h.key.to_string(), h.value.map(|v| v.to_vec())))
            .collect(),
    }
}

// ---------------------------------------------------------------------------
// Raw Kafka protocol client
// ---------------------------------------------------------------------------

/// A blocking Kafka protocol client over one TCP connection, for requests a
/// client library would not send. Every read and write has a timeout.
pub struct RawClient {
    pub stream: TcpStream,
    correlation: i32,
    /// api key -> (min, max) as advertised by the broker, after [`Self::negotiate`].
    pub versions: HashMap<i16, (i16, i16)>,
}

impl RawClient {
    pub fn connect(addr: SocketAddr) -> RawClient {
        RawClient::try_connect(addr, Duration::from_secs(15))
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"))
    }

    /// Connects with `timeout` for the connect and for every later read and write; an error
    /// instead of a panic, for polls of brokers that may be down.
    pub fn try_connect(addr: SocketAddr, timeout: Duration) -> std::io::Result<RawClient> {
        let stream = TcpStream::connect_timeout(&addr, timeout.min(Duration::from_secs(10)))?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(RawClient {
            stream,
            correlation: 1,
            versions: HashMap::new(),
        })
    }

    /// Connects and learns the broker's version ranges with ApiVersions.
    pub fn connect_negotiated(addr: SocketAddr) -> RawClient {
        let mut c = RawClient::connect(addr);
        c.negotiate();
        c
    }

    /// [`RawClient::try_connect`] and [`RawClient::try_negotiate`].
    pub fn try_connect_negotiated(
        addr: SocketAddr,
        timeout: Duration,
    ) -> std::io::Result<RawClient> {
        let mut c = RawClient::try_connect(addr, timeout)?;
        c.try_negotiate()?;
        Ok(c)
    }

    /// ApiVersions v3, falling back (as clients do) to the highest version the
    /// broker lists if it answers UNSUPPORTED_VERSION in the v0 format.
    pub fn negotiate(&mut self) {
        self.try_negotiate().expect("ApiVersions");
    }

    /// [`RawClient::negotiate`], with an error for a broken connection or a bad answer.
    pub fn try_negotiate(&mut self) -> std::io::Result<()> {
        use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("sluice-tests"))
            .with_client_software_version(StrBytes::from_static_str("0.1"));
        let (corr, frame) = self.frame(&req, 3);
        self.stream.write_all(&frame)?;
        let mut raw = self.read_frame()?;
        if raw.len() < 6 {
            return Err(std::io::Error::other("short ApiVersions response"));
        }
        let got_corr = raw.get_i32(); // response header v0, always
        if got_corr != corr {
            return Err(std::io::Error::other(format!(
                "ApiVersions correlation id {got_corr}, want {corr}"
            )));
        }
        let error = i16::from_be_bytes([raw[0], raw[1]]);
        let resp = if error == errors::UNSUPPORTED_VERSION {
            // Kafka answers in the v0 format; if that does not parse, try v2.
            let max = ApiVersionsResponse::decode(&mut raw, 0)
                .ok()
                .and_then(|v0| {
                    v0.api_keys
                        .iter()
                        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                        .map(|k| k.max_version.min(3))
                })
                .unwrap_or(2);
            self.send(&req, max)?
        } else {
            ApiVersionsResponse::decode(&mut raw, 3)
                .map_err(|e| std::io::Error::other(format!("decode ApiVersions v3: {e}")))?
        };
        if resp.error_code != 0 {
            return Err(std::io::Error::other(format!(
                "ApiVersions error {}",
                resp.error_code
            )));
        }
        self.versions = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(())
    }

    /// The highest version of `key` that both the broker (per ApiVersions) and
    /// kafka-protocol support, capped at `cap`. Panics if there is none.
    pub fn version<R: Request>(&self, cap: i16) -> i16 {
        let (bmin, bmax) = *self
            .versions
            .get(&R::KEY)
            .unwrap_or_else(|| panic!("broker does not advertise API key {}", R::KEY));
        let v = bmax.min(cap).min(R::VERSIONS.max);
        assert!(
            v >= bmin && v >= R::VERSIONS.min,
            "no usable version for API key {} (broker {bmin}..{bmax}, client {}..{}, cap {cap})",
            R::KEY,
            R::VERSIONS.min,
            R::VERSIONS.max
        );
        v
    }

    fn next_correlation(&mut self) -> i32 {
        self.correlation += 1;
        self.correlation
    }

    /// Encodes `req` at `version` into a complete size-prefixed frame.
    pub fn frame<R: Request>(&mut self, req: &R, version: i16) -> (i32, Bytes) {
        let corr = self.next_correlation();
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(corr)
            .with_client_id(Some(StrBytes::from_static_str("sluice-tests")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, R::header_version(version))
            .expect("encode header");
        req.encode(&mut body, version).expect("encode request");
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        (corr, frame.freeze())
    }

    /// Sends a request and decodes its response. An I/O error (connection
    /// closed, timeout) is returned as Err.
    pub fn send<R: Request>(&mut self, req: &R, version: i16) -> std::io::Result<R::Response> {
        let (corr, frame) = self.frame(req, version);
        self.stream.write_all(&frame)?;
        let mut resp = self.read_frame()?;
        let hv = <R::Response as HeaderVersion>::header_version(version);
        let header = ResponseHeader::decode(&mut resp, hv).map_err(std::io::Error::other)?;
        assert_eq!(
            header.correlation_id, corr,
            "response correlation id mismatch"
        );
        R::Response::decode(&mut resp, version)
            .map_err(|e| std::io::Error::other(format!("decode response: {e}")))
    }

    pub fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one size-prefixed frame (without the size).
    pub fn read_frame(&mut self) -> std::io::Result<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let len = i32::from_be_bytes(len);
        if !(0..=256 * 1024 * 1024).contains(&len) {
            return Err(std::io::Error::other(format!("bad response size {len}")));
        }
        let mut buf = vec![0u8; len as usize];
        self.stream.read_exact(&mut buf)?;
        Ok(Bytes::from(buf))
    }

    /// Waits (up to `timeout`) for the peer to close the connection: true if
    /// it did (EOF or reset), false if it was still open at the deadline.
    /// Any bytes that arrive meanwhile are discarded.
    pub fn closed_by_peer_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.stream
                .set_read_timeout(Some(left.min(Duration::from_millis(500))))
                .unwrap();
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    continue
                }
                Err(_) => return true, // reset
            }
        }
    }

    pub fn shutdown(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

// ---------------------------------------------------------------------------
// Record batches
// ---------------------------------------------------------------------------

/// A record's key and value (either may be null).
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);
/// One v2 record batch (no producer id) holding `records` as (key, value)
/// pairs, with timestamps `ts0`, `ts0 + 1`, …
pub fn encode_batch(records: &[KeyValue<'_>], ts0: i64, compression: Compression) -> Bytes {
    let mut builder = RecordBatchBuilder::new();
    for (i, (key, value)) in records.iter().enumerate() {
        builder.push(ts0 + i as i64, *key, *value, &[]);
    }
    let options = BatchOptions {
        compression: compression.into(),
        ..BatchOptions::default()
    };
    let b = builder.finish(&options).expect("encode record batch");
    debug_assert_eq!(scan_batches(&b).len(), 1);
    b
}

/// Decodes every batch in `data` (as returned by Fetch).
pub fn decode_batches(data: &Bytes) -> Vec<RecordSet> {
    let mut b = data.clone();
    RecordBatchDecoder::decode_all(&mut b).expect("decode record batches")
}

/// Header fields of one v2 batch found in a byte range (a segment file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPos {
    /// Byte position of the batch in the file.
    pub pos: u64,
    /// Total size (12-byte prefix + batchLength).
    pub size: u64,
    pub base_offset: i64,
    pub last_offset_delta: i32,
    pub record_count: i32,
    pub magic: i8,
}

impl BatchPos {
    pub fn end(&self) -> u64 {
        self.pos + self.size
    }
    pub fn next_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64 + 1
    }
}

/// Walks the batch framing of a segment (or a produce payload) and returns
/// every complete batch. Stops at the first incomplete or zero-length batch
/// (so trailing preallocated zeroes are ignored). CRCs are not checked.
pub fn scan_batches(data: &[u8]) -> Vec<BatchPos> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while data.len() - pos >= 61 {
        let mut h = &data[pos..pos + 61];
        let base_offset = h.get_i64();
        let len = h.get_i32();
        if len < 49 {
            break;
        }
        let size = 12 + len as usize;
        if pos + size > data.len() {
            break;
        }
        let _leader_epoch = h.get_i32();
        let magic = h.get_i8();
        let _crc = h.get_u32();
        let _attrs = h.get_i16();
        let last_offset_delta = h.get_i32();
        let _first_ts = h.get_i64();
        let _max_ts = h.get_i64();
        let _pid = h.get_i64();
        let _epoch = h.get_i16();
        let _seq = h.get_i32();
        let record_count = h.get_i32();
        out.push(BatchPos {
            pos: pos as u64,
            size: size as u64,
            base_offset,
            last_offset_delta,
            record_count,
            magic,
        });
        pos += size;
    }
    out
}

/// True if the stored CRC-32C of the batch at `b` matches its content.
pub fn batch_crc_ok(data: &[u8], b: &BatchPos) -> bool {
    let s = &data[b.pos as usize..b.end() as usize];
    let stored = u32::from_be_bytes(s[17..21].try_into().unwrap());
    crc32c::crc32c(&s[21..]) == stored
}

/// Segment files (`*.log`) of a partition directory, sorted by base offset.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().map(|x| x == "log").unwrap_or(false))
        .collect();
    v.sort();
    v
}

/// The base offset in a segment file name (`00000000000000001234.log`).
pub fn segment_base(path: &Path) -> i64 {
    let stem = path.file_stem().unwrap().to_str().unwrap();
    assert_eq!(stem.len(), 20, "segment name {stem} is not 20 digits");
    stem.parse()
        .unwrap_or_else(|_| panic!("segment name {stem} is not a number"))
}

/// Kafka error code names used in assertions.
pub mod errors {
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const NOT_CONTROLLER: i16 = 41;
    pub const NONE: i16 = 0;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
    pub const INVALID_RECORD: i16 = 87;
}

/// Builds a raw ApiVersions frame at `version` (even one kafka-protocol
/// cannot encode), with the request header v2 that v3+ uses.
pub fn api_versions_frame(version: i16, correlation: i32) -> Bytes {
    let mut body = BytesMut::new();
    body.put_i16(ApiKey::ApiVersions as i16);
    body.put_i16(version);
    body.put_i32(correlation);
    let cid = b"sluice-tests";
    body.put_i16(cid.len() as i16);
    body.extend_from_slice(cid);
    body.put_u8(0); // header tagged fields
                    // ApiVersionsRequest v3+: client_software_name, client_software_version
                    // (compact strings), tagged fields.
    for s in [&b"sluice-tests"[..], &b"0.1"[..]] {
        body.put_u8(s.len() as u8 + 1);
        body.extend_from_slice(s);
    }
    body.put_u8(0);
    let mut f = BytesMut::new();
    f.put_i32(body.len() as i32);
    f.extend_from_slice(&body);
    f.freeze()
}
