//! The command line: help texts, config errors reported by key name, and the
//! zero-argument `sluice start`.
mod common;

use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;

#[test]
fn help_mentions_commands_and_options() {
    let tmp = tempfile::tempdir().unwrap();
    let o =
        run_sluice_bounded(&["--help"], tmp.path(), Duration::from_secs(20)).expect("--help hung");
    assert!(
        o.status.success(),
        "sluice --help failed: {}",
        output_text(&o)
    );
    let t = output_text(&o);
    assert!(
        t.contains("start"),
        "sluice --help does not mention `start`:\n{t}"
    );

    let o = run_sluice_bounded(&["start", "--help"], tmp.path(), Duration::from_secs(20))
        .expect("start --help hung");
    assert!(
        o.status.success(),
        "sluice start --help failed: {}",
        output_text(&o)
    );
    let t = output_text(&o);
    for opt in ["--config", "--set", "--cores"] {
        assert!(
            t.contains(opt),
            "sluice start --help does not mention {opt}:\n{t}"
        );
    }
    // --help must not have started a broker or created data.
    assert!(!tmp.path().join("sluice-data").exists());
}

/// A start with one extra `--set`; the listener and data dir are private so a
/// broker that wrongly starts does not collide with anything.
fn start_with_bad_set(kv: &str) -> (Option<Output>, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listeners = format!("listeners=PLAINTEXT://127.0.0.1:{port}");
    let dirs = format!("log.dirs={}", tmp.path().join("data").display());
    let o = run_sluice_bounded(
        &[
            "start", "--cores", "1", "--set", &listeners, "--set", &dirs, "--set", kv,
        ],
        tmp.path(),
        Duration::from_secs(30),
    );
    (o, tmp)
}

/// `sluice start --set <setting>` must exit non-zero with a message naming `key`.
fn assert_set_rejected_naming(setting: &str, key: &str) {
    let (o, _tmp) = start_with_bad_set(setting);
    let o = o.unwrap_or_else(|| {
        panic!("sluice started (or hung) with --set {setting} instead of exiting")
    });
    assert!(
        !o.status.success(),
        "--set {setting} accepted: exit {}, output {}",
        o.status,
        output_text(&o)
    );
    assert!(
        output_text(&o).contains(key),
        "error output does not name '{key}':\n{}",
        output_text(&o)
    );
}

#[test]
fn unknown_config_key_is_rejected_by_name() {
    assert_set_rejected_naming("log.segmnt.bytes=1", "log.segmnt.bytes");
}

#[test]
fn invalid_config_value_is_rejected_by_name() {
    assert_set_rejected_naming("num.partitions=abc", "num.partitions");
}

#[test]
fn unknown_key_in_config_file_is_rejected_by_name() {
    // A properties file with an unknown key must be rejected naming the key:
    // proves --config is parsed with the same validation as --set.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("server.properties");
    std::fs::write(&file, "# comment\nnum.partitions=3\nlog.segmnt.bytes=1\n").unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listeners = format!("listeners=PLAINTEXT://127.0.0.1:{port}");
    let dirs = format!("log.dirs={}", tmp.path().join("data").display());
    let o = run_sluice_bounded(
        &[
            "start",
            "--cores",
            "1",
            "--config",
            file.to_str().unwrap(),
            "--set",
            &listeners,
            "--set",
            &dirs,
        ],
        tmp.path(),
        Duration::from_secs(30),
    )
    .expect("sluice started (or hung) with an unknown key in --config");
    assert!(
        !o.status.success(),
        "unknown key in --config accepted: {}",
        output_text(&o)
    );
    assert!(
        output_text(&o).contains("log.segmnt.bytes"),
        "error output does not name the unknown key from the file:\n{}",
        output_text(&o)
    );
}

#[test]
fn start_without_arguments_uses_9092_and_sluice_data() {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get() as u16)
        .unwrap_or(1);
    if !(0..cores).all(|k| port_is_free(9092 + k)) {
        eprintln!("SKIP: 127.0.0.1:9092..{} is busy", 9092 + cores - 1);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(SLUICE);
    cmd.arg("start")
        .current_dir(tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(tmp.path().join("stderr")).unwrap());
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = KillOnDrop(cmd.spawn().expect("spawn sluice start"));
    let stderr = || std::fs::read_to_string(tmp.path().join("stderr")).unwrap_or_default();
    let addr = SocketAddr::from(([127, 0, 0, 1], 9092));
    let up = wait_until(START_TIMEOUT, Duration::from_millis(50), || {
        if child.0.try_wait().unwrap().is_some() {
            return true; // exited; reported below
        }
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    });
    if let Some(st) = child.0.try_wait().unwrap() {
        panic!("`sluice start` exited ({st}):\n{}", stderr());
    }
    assert!(
        up,
        "`sluice start` did not listen on 127.0.0.1:9092 within {START_TIMEOUT:?}:\n{}",
        stderr()
    );
    // It is a Kafka broker there: ApiVersions answers.
    let mut c = RawClient::connect(addr);
    c.negotiate();
    assert!(!c.versions.is_empty());
    drop(c);
    let data = tmp.path().join("sluice-data");
    assert!(
        data.is_dir(),
        "`sluice start` did not create ./sluice-data; stderr:\n{}",
        stderr()
    );
    unsafe {
        libc::kill(child.0.id() as libc::pid_t, libc::SIGTERM);
    }
    let stopped = wait_until(STOP_TIMEOUT, Duration::from_millis(20), || {
        child.0.try_wait().unwrap().is_some()
    });
    assert!(
        stopped,
        "`sluice start` did not exit after SIGTERM:\n{}",
        stderr()
    );
    let status = child.0.wait().unwrap();
    assert!(
        status.success(),
        "`sluice start` exited with {status} after SIGTERM; stderr:\n{}",
        stderr()
    );
}

/// Kills the child when dropped (a failed assertion must not leave a broker
/// on port 9092).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sigint_is_a_clean_shutdown_too() {
    let mut b = Broker::start();
    b.interrupt();
}
