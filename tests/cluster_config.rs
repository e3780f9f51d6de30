//! Cluster configuration at the command line: the real `sluice start` rejects every inconsistent
//! KRaft setting (roles, node id, quorum voters, controller listener), quickly and naming the
//! key, whether the setting comes from `--set` or from a properties file; and
//! `sluice start --check-config` accepts the README's three-voter recipe and the default.
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// A rejected configuration must be reported well within this; nothing should be opened.
const QUICK: Duration = Duration::from_secs(10);
/// Backstop after which a `sluice` that did not exit is killed and the test fails.
const LIMIT: Duration = Duration::from_secs(30);

/// Ports of node 1 in a test cluster: client port (shards on `client + k`) and controller port.
struct Ports {
    client: u16,
    controller: u16,
}

impl Ports {
    /// Free ports: two shards' worth of client ports, then the controller port right after.
    fn free() -> Ports {
        let client = free_range(3);
        Ports {
            client,
            controller: client + 2,
        }
    }

    fn listeners(&self) -> String {
        format!(
            "listeners=PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
            self.client, self.controller
        )
    }

    /// Three voters; node 1 is this process, nodes 2 and 3 are elsewhere (never contacted).
    fn voters(&self) -> String {
        format!(
            "controller.quorum.voters=1@127.0.0.1:{},2@127.0.0.1:{},3@127.0.0.1:{}",
            self.controller,
            self.controller + 100,
            self.controller + 200
        )
    }

    /// The valid configuration of node 1 of three voters.
    fn node_1(&self) -> Vec<String> {
        vec![
            "process.roles=broker,controller".to_string(),
            "node.id=1".to_string(),
            self.listeners(),
            "controller.listener.names=CONTROLLER".to_string(),
            self.voters(),
        ]
    }
}

/// `base` with the settings of `changes` replacing those of the same key; a change `key=`
/// followed by nothing removes the key.
fn with(base: &[String], changes: &[String]) -> Vec<String> {
    let key = |s: &String| s.split('=').next().unwrap_or("").to_string();
    let mut out: Vec<String> = base
        .iter()
        .filter(|s| !changes.iter().any(|c| key(c) == key(s)))
        .cloned()
        .collect();
    out.extend(changes.iter().filter(|c| !c.ends_with('=')).cloned());
    out
}

/// Runs `sluice start --cores 2` with `settings` as `--set` overrides, in a fresh directory
/// with a private data dir.
fn start_with_sets(settings: &[String], extra: &[&str]) -> (std::process::Output, Duration) {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = format!("log.dirs={}", tmp.path().join("data").display());
    let mut args = vec!["start", "--cores", "2", "--set", &dirs];
    for s in settings {
        args.extend(["--set", s.as_str()]);
    }
    args.extend_from_slice(extra);
    run(&args, tmp.path())
}

/// Runs `sluice start --cores 2 --config <file>` with `settings` written to the file.
fn start_with_file(settings: &[String], extra: &[&str]) -> (std::process::Output, Duration) {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("server.properties");
    let mut text = format!(
        "# written by tests/cluster_config.rs\nlog.dirs={}\n",
        tmp.path().join("data").display()
    );
    for s in settings {
        text.push_str(s);
        text.push('\n');
    }
    std::fs::write(&file, text).unwrap();
    let file = file.display().to_string();
    let mut args = vec!["start", "--cores", "2", "--config", file.as_str()];
    args.extend_from_slice(extra);
    run(&args, tmp.path())
}

fn run(args: &[&str], cwd: &Path) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let out = run_sluice_bounded(args, cwd, LIMIT).unwrap_or_else(|| {
        panic!("sluice {args:?} did not exit (it should have refused to start)")
    });
    (out, started.elapsed())
}

/// Both forms of `settings` make `sluice start` exit non-zero within [`QUICK`], with an
/// invalid-configuration message containing every one of `expected`.
fn assert_rejected(case: &str, settings: &[String], expected: &[&str]) {
    for (form, (out, took)) in [
        ("--set", start_with_sets(settings, &[])),
        ("--config", start_with_file(settings, &[])),
    ] {
        let text = output_text(&out);
        assert!(
            !out.status.success(),
            "{case} ({form}): sluice accepted {settings:?}:\n{text}"
        );
        assert!(
            took < QUICK,
            "{case} ({form}): took {took:?} to refuse:\n{text}"
        );
        assert!(
            text.contains("invalid configuration"),
            "{case} ({form}): not reported as a configuration error:\n{text}"
        );
        for needle in expected {
            assert!(
                text.contains(needle),
                "{case} ({form}): the message does not contain {needle:?}:\n{text}"
            );
        }
    }
}

#[test]
fn controller_not_among_the_voters() {
    let p = Ports::free();
    assert_rejected(
        "node.id 4 with voters 1, 2, 3",
        &with(&p.node_1(), &["node.id=4".to_string()]),
        &["'controller.quorum.voters'", "node's id 4"],
    );
}

#[test]
fn two_voters_with_the_same_id() {
    let p = Ports::free();
    let voters = format!(
        "controller.quorum.voters=1@127.0.0.1:{},1@127.0.0.1:{}",
        p.controller,
        p.controller + 100
    );
    assert_rejected(
        "voter id 1 twice",
        &with(&p.node_1(), &[voters]),
        &["'controller.quorum.voters'", "voter id 1 twice"],
    );
}

#[test]
fn controller_without_a_controller_listener() {
    let p = Ports::free();
    let only_client = format!("listeners=PLAINTEXT://127.0.0.1:{}", p.client);
    assert_rejected(
        "no CONTROLLER listener",
        &with(&p.node_1(), &[only_client.clone()]),
        &["'controller.listener.names'", "'listeners'"],
    );
    assert_rejected(
        "no controller.listener.names",
        &with(&p.node_1(), &["controller.listener.names=".to_string()]),
        &["'controller.listener.names'", "'listeners'"],
    );
}

#[test]
fn voter_port_differs_from_the_controller_listener() {
    let p = Ports::free();
    let listeners = format!(
        "listeners=PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
        p.client,
        p.controller + 1
    );
    assert_rejected(
        "voter port of node 1 is not its controller port",
        &with(&p.node_1(), &[listeners]),
        &["'controller.quorum.voters'", &p.controller.to_string()],
    );
}

#[test]
fn broker_only_needs_voters_and_must_not_be_one() {
    let p = Ports::free();
    let broker_only = [
        "process.roles=broker".to_string(),
        format!("listeners=PLAINTEXT://127.0.0.1:{}", p.client),
    ];
    let base = with(&p.node_1(), &broker_only);
    assert_rejected(
        "broker-only without voters",
        &with(
            &base,
            &[
                "node.id=4".to_string(),
                "controller.quorum.voters=".to_string(),
            ],
        ),
        &["'controller.quorum.voters' must list"],
    );
    assert_rejected(
        "broker-only node 1 among voters 1, 2, 3",
        &base,
        &[
            "'controller.quorum.voters'",
            "must not include this node's id 1",
        ],
    );
    assert_rejected(
        "broker-only with a controller listener",
        &with(&base, &["node.id=4".to_string(), p.listeners()]),
        &["'controller.listener.names'", "must not name"],
    );
    assert_rejected(
        "broker-only advertising a controller listener",
        &with(
            &base,
            &[
                "node.id=4".to_string(),
                format!(
                    "advertised.listeners=PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
                    p.client, p.controller
                ),
            ],
        ),
        &["'advertised.listeners'", "CONTROLLER"],
    );
}

#[test]
fn controller_port_among_the_shard_ports() {
    let p = Ports::free();
    let listeners = format!(
        "listeners=PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
        p.client,
        p.client + 1
    );
    let voters = format!("controller.quorum.voters=1@127.0.0.1:{}", p.client + 1);
    assert_rejected(
        "controller port = client port + 1 with 2 shards",
        &with(&p.node_1(), &[listeners, voters]),
        &["listeners", "controller listener", "2 shards"],
    );
}

#[test]
fn unparseable_roles_and_voters() {
    let p = Ports::free();
    assert_rejected(
        "unknown role",
        &with(&p.node_1(), &["process.roles=broker,worker".to_string()]),
        &["'process.roles'", "worker"],
    );
    assert_rejected(
        "voter without a port",
        &with(
            &p.node_1(),
            &["controller.quorum.voters=1@127.0.0.1".to_string()],
        ),
        &["'controller.quorum.voters'", "id@host:port"],
    );
}

#[test]
fn check_config_accepts_three_voters_and_the_default() {
    let p = Ports::free();
    for (form, (out, _)) in [
        ("--set", start_with_sets(&p.node_1(), &["--check-config"])),
        (
            "--config",
            start_with_file(&p.node_1(), &["--check-config"]),
        ),
    ] {
        let text = output_text(&out);
        assert!(
            out.status.success(),
            "node 1 of 3 ({form}) rejected:\n{text}"
        );
        for needle in [
            "configuration is valid",
            "node.id=1",
            "process.roles=broker,controller",
            "shards=2",
            &format!("CONTROLLER://127.0.0.1:{}", p.controller),
            &format!("2@127.0.0.1:{}", p.controller + 100),
        ] {
            assert!(
                text.contains(needle),
                "{form}: summary lacks {needle:?}:\n{text}"
            );
        }
        // The check opened nothing: the port is still free.
        assert!(port_is_free(p.client), "--check-config bound {}", p.client);
    }

    // The default configuration needs no new key and creates no data directory.
    let tmp = tempfile::tempdir().unwrap();
    let (out, _) = run(&["start", "--check-config"], tmp.path());
    let text = output_text(&out);
    assert!(
        out.status.success(),
        "the default configuration is rejected:\n{text}"
    );
    assert!(text.contains("quorum voters this process alone"), "{text}");
    assert!(!tmp.path().join("sluice-data").exists());

    // And --check-config reports a bad configuration like start does.
    let (out, _) = start_with_sets(
        &with(&p.node_1(), &["node.id=4".to_string()]),
        &["--check-config"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));

    let (out, _) = run(&["start", "--help"], tmp.path());
    assert!(
        output_text(&out).contains("--check-config"),
        "{}",
        output_text(&out)
    );
}
