//! Locked memory: the broker runs as an unprivileged user under an 8 MiB RLIMIT_MEMLOCK, and a
//! limit too low for its shards stops it with a message naming the limit and the fix.
mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Two free consecutive ports.
fn free_port_pair() -> u16 {
    for _ in 0..200 {
        let p = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if p < 60000 && port_is_free(p) && port_is_free(p + 1) {
            return p;
        }
    }
    panic!("no free port pair");
}

/// `sluice start` under `sh -c "ulimit -l <kib>; exec …"`, optionally as user nobody.
fn start_with_memlock(kib: u64, as_nobody: bool, port: u16, data: &std::path::Path) -> Child {
    let script = format!(
        "ulimit -l {kib} && exec {SLUICE} start --cores 2 --set listeners=PLAINTEXT://127.0.0.1:{port} --set metrics.listener= --set log.dirs={}",
        data.display()
    );
    let mut cmd = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "sh",
            "-c",
            &script,
        ]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", &script]);
        c
    };
    cmd.env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice")
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}

#[test]
fn too_low_memlock_limit_names_the_limit_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = start_with_memlock(512, false, free_port_pair(), &dir.path().join("data"));
    let status =
        wait_exit(&mut child, Duration::from_secs(20)).expect("sluice should exit at once");
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "must exit non-zero; stderr: {stderr}");
    assert!(
        stderr.contains("RLIMIT_MEMLOCK") && stderr.contains("ulimit -l"),
        "stderr: {stderr}"
    );
    assert!(
        stderr.contains("512 KiB"),
        "the message names the current limit: {stderr}"
    );
}

/// As root, drop to `nobody` (root's CAP_IPC_LOCK would hide memlock accounting); as another
/// user, run as that user. Either way the broker must serve a producer under 8 MiB.
#[test]
fn runs_unprivileged_under_8_mib_memlock() {
    let as_nobody = nix::unistd::Uid::effective().is_root();
    if as_nobody && Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("SKIP: setpriv is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let port = free_port_pair();
    let mut child = start_with_memlock(8192, as_nobody, port, &dir.path().join("data"));
    let up = wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
        std::net::TcpStream::connect(("127.0.0.1", port + 1)).is_ok()
    });
    if !up {
        let _ = child.kill();
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        panic!("broker did not come up under an 8 MiB memlock limit: {stderr}");
    }
    let bootstrap = format!("127.0.0.1:{port}");
    let topic = unique("memlock");
    create_topic(&bootstrap, &topic, 4);
    let (p, log) = producer(&bootstrap, &[("acks", "all")]);
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..2_000 {
        let m = Msg {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(vec![7; 200]),
            ..Msg::default()
        };
        send(&p, &topic, i, &m, deadline);
    }
    wait_delivered(&p, &log, 2_000, Duration::from_secs(60));
    assert_eq!(log.acked(), 2_000, "failures: {:?}", log.first_failures(3));
    let total: i64 = (0..4)
        .map(|part| watermarks(&bootstrap, &topic, part).1)
        .sum();
    assert_eq!(total, 2_000);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(30)).expect("clean shutdown");
    assert!(status.success(), "exit status {status:?}");
}
