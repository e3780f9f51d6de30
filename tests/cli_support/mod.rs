//! Running the `sluice` binary from the CLI tests (`topic_cli.rs`, `produce_consume_cli.rs`,
//! `log_dump_cli.rs`): each run bounded in time, its stdin given, its exit status and output
//! kept for assertions, and checked never to panic.
//!
//! `CLI_SHOW=1` prints every command with its output.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Path of the binary under test.
pub const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");
/// How long one run may take.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

/// One finished `sluice` run.
pub struct Run {
    pub cmd: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Run {
    /// Everything about the run, for assertion messages.
    pub fn show(&self) -> String {
        format!(
            "`{}` exited with {:?} after {:?}\n--- stdout ---\n{}--- stderr ---\n{}--------------",
            self.cmd, self.code, self.took, self.stdout, self.stderr
        )
    }

    /// Asserts exit status 0 and returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "expected success:\n{}", self.show());
        &self.stdout
    }

    /// Asserts exit status `code` and returns the run.
    pub fn failed_with(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit status {code}:\n{}",
            self.show()
        );
        self
    }

    /// Asserts that stderr contains every one of `words`.
    pub fn stderr_has(&self, words: &[&str]) -> &Self {
        for w in words {
            assert!(
                self.stderr.contains(w),
                "stderr does not contain {w:?}:\n{}",
                self.show()
            );
        }
        self
    }

    /// Asserts that stdout is exactly `expected`.
    pub fn stdout_is(&self, expected: &str) -> &Self {
        assert_eq!(self.stdout, expected, "unexpected stdout:\n{}", self.show());
        self
    }
}

/// Runs `sluice <args>` with `stdin` as its standard input, killing it after [`RUN_LIMIT`].
pub fn sluice_with_stdin(args: &[&str], stdin: &[u8]) -> Run {
    let cmd = format!("sluice {}", args.join(" "));
    let start = Instant::now();
    let mut child = Command::new(SLUICE)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("NO_COLOR", "1")
        .spawn()
        .expect("spawn sluice");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for sluice") {
            break Some(st);
        }
        if start.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    let run = Run {
        cmd,
        code: status.and_then(|s| s.code()),
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
        took: start.elapsed(),
    };
    assert!(
        status.is_some(),
        "sluice did not finish within {RUN_LIMIT:?} (killed):\n{}",
        run.show()
    );
    assert!(
        !run.stderr.contains("panicked"),
        "sluice panicked:\n{}",
        run.show()
    );
    if std::env::var_os("CLI_SHOW").is_some() {
        eprintln!("{}", run.show());
    }
    run
}

/// Runs `sluice <args>` with an empty standard input.
pub fn sluice(args: &[&str]) -> Run {
    sluice_with_stdin(args, b"")
}

/// Runs `sluice <args> --bootstrap-server <bootstrap>`.
pub fn sluice_at(bootstrap: &str, args: &[&str]) -> Run {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--bootstrap-server", bootstrap]);
    sluice(&all)
}

/// Asserts that `sluice <args> --help` succeeds and mentions every one of `words`.
pub fn help_mentions(args: &[&str], words: &[&str]) {
    let mut all = args.to_vec();
    all.push("--help");
    let run = sluice(&all);
    let text = run.ok();
    for w in words {
        assert!(
            text.contains(w),
            "`sluice {} --help` does not mention {w}:\n{}",
            args.join(" "),
            run.show()
        );
    }
}

/// Asserts that `sluice <args>` against an address nothing listens on fails fast with one line
/// naming the address and what to check.
pub fn unreachable_is_clear(addr: &str, args: &[&str]) {
    let r = sluice_at(addr, args);
    r.failed_with(1);
    assert!(
        r.took < Duration::from_secs(10),
        "took {:?}:\n{}",
        r.took,
        r.show()
    );
    let line = r.stderr.trim();
    assert_eq!(
        line.lines().count(),
        1,
        "expected a one-line error:\n{}",
        r.show()
    );
    assert!(
        line.contains(addr) && line.contains("check that the broker is running"),
        "the error should name {addr} and say what to check:\n{}",
        r.show()
    );
}
