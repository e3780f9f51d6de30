//! `sluice tune` end to end: on this machine's real /proc and /sys (checks only), and on fake
//! roots in temporary directories for every status, missing and odd files, and `--apply`.

use clap::Parser;
use serde_json::Value;
use sluice_tuning::{run_with, Env, TuneArgs};
use std::path::{Path, PathBuf};

const NOT_ROOT: Env = Env { is_root: false };
const ROOT: Env = Env { is_root: true };

/// A fake host tree.
struct Fake {
    dir: tempfile::TempDir,
}

const MOUNTINFO_GOOD: &str = "21 1 8:1 / / rw,noatime shared:1 - ext4 /dev/sda1 rw\n\
    30 21 8:17 / /data rw,noatime shared:9 - xfs /dev/sdb1 rw,attr2\n";

fn limits(nofile: &str, memlock: &str) -> String {
    format!(
        "Limit                     Soft Limit           Hard Limit           Units     \n\
         Max cpu time              unlimited            unlimited            seconds   \n\
         Max open files            {nofile}         files     \n\
         Max locked memory         {memlock}        bytes     \n"
    )
}

impl Fake {
    /// A tree where every check is ok (2 CPUs).
    fn good() -> Self {
        let f = Fake {
            dir: tempfile::tempdir().unwrap(),
        };
        for (p, v) in [
            ("/proc/sys/vm/swappiness", "1\n"),
            ("/proc/sys/vm/dirty_ratio", "20\n"),
            ("/proc/sys/vm/dirty_background_ratio", "5\n"),
            ("/proc/sys/vm/dirty_bytes", "0\n"),
            ("/proc/sys/vm/dirty_background_bytes", "0\n"),
            ("/proc/sys/vm/max_map_count", "262144\n"),
            ("/proc/self/mountinfo", MOUNTINFO_GOOD),
            (
                "/sys/kernel/mm/transparent_hugepage/enabled",
                "always madvise [never]\n",
            ),
            ("/sys/devices/system/cpu/online", "0-1\n"),
            (
                "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor",
                "performance\n",
            ),
            (
                "/sys/devices/system/cpu/cpu0/cpufreq/scaling_available_governors",
                "performance powersave\n",
            ),
            (
                "/sys/devices/system/cpu/cpu1/cpufreq/scaling_governor",
                "performance\n",
            ),
            (
                "/sys/devices/system/cpu/cpu1/cpufreq/scaling_available_governors",
                "performance powersave\n",
            ),
            (
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
                "tsc\n",
            ),
            (
                "/sys/devices/system/clocksource/clocksource0/available_clocksource",
                "tsc hpet acpi_pm \n",
            ),
        ] {
            f.set(p, v);
        }
        f.set(
            "/proc/self/limits",
            &limits(
                "1048576              1048576     ",
                "unlimited            unlimited   ",
            ),
        );
        // Not CPUs: must be ignored.
        std::fs::create_dir_all(f.path("/sys/devices/system/cpu/cpufreq")).unwrap();
        std::fs::create_dir_all(f.path("/sys/devices/system/cpu/cpuidle")).unwrap();
        f
    }

    /// A tree where every runtime-fixable setting is off and nothing fails.
    fn untuned() -> Self {
        let f = Fake::good();
        f.set("/proc/sys/vm/swappiness", "60\n");
        f.set("/proc/sys/vm/dirty_ratio", "40\n");
        f.set("/proc/sys/vm/dirty_background_ratio", "10\n");
        f.set("/proc/sys/vm/max_map_count", "65530\n");
        f.set(
            "/sys/kernel/mm/transparent_hugepage/enabled",
            "[always] madvise never\n",
        );
        f.set(
            "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor",
            "powersave\n",
        );
        f.set(
            "/sys/devices/system/cpu/cpu1/cpufreq/scaling_governor",
            "schedutil\n",
        );
        f.set(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            "hpet\n",
        );
        f
    }

    fn path(&self, host_path: &str) -> PathBuf {
        self.dir.path().join(host_path.trim_start_matches('/'))
    }

    fn set(&self, host_path: &str, content: &str) {
        let p = self.path(host_path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    fn get(&self, host_path: &str) -> String {
        std::fs::read_to_string(self.path(host_path)).unwrap()
    }

    fn remove(&self, host_path: &str) {
        std::fs::remove_file(self.path(host_path)).unwrap();
    }

    fn args(&self) -> TuneArgs {
        TuneArgs {
            log_dirs: vec![PathBuf::from("/data/sluice")],
            root: Some(self.dir.path().to_path_buf()),
            partitions: 1000,
            segments_per_partition: 10,
            connections: 1000,
            ..TuneArgs::default()
        }
    }
}

struct Run {
    code: u8,
    out: String,
    err: String,
}

fn run(args: &TuneArgs, env: Env) -> Run {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_with(args, env, &mut out, &mut err);
    Run {
        code,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

/// Run with `--json` and return (exit status, document).
fn run_json(args: &TuneArgs, env: Env) -> (u8, Value) {
    let mut a = args.clone();
    a.json = true;
    let r = run(&a, env);
    let doc: Value =
        serde_json::from_str(&r.out).unwrap_or_else(|e| panic!("{e}: {}\n{}", r.out, r.err));
    (r.code, doc)
}

/// setting → status from a findings array.
fn statuses(findings: &Value) -> Vec<(String, String)> {
    findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["setting"].as_str().unwrap().to_string(),
                f["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn status_of(doc: &Value, setting_prefix: &str) -> String {
    let all = statuses(&doc["findings"]);
    let hits: Vec<_> = all
        .iter()
        .filter(|(s, _)| s.starts_with(setting_prefix))
        .collect();
    assert_eq!(hits.len(), 1, "{setting_prefix} in {all:?}");
    hits[0].1.clone()
}

fn finding<'a>(doc: &'a Value, setting_prefix: &str) -> &'a Value {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["setting"].as_str().unwrap().starts_with(setting_prefix))
        .unwrap()
}

const SETTINGS: [&str; 12] = [
    "filesystem ",
    "mount options ",
    "vm.swappiness",
    "vm.dirty_ratio",
    "vm.dirty_background_ratio",
    "vm.max_map_count",
    "nofile",
    "memlock",
    "transparent_hugepage",
    "cpu frequency governor",
    "clocksource",
    "",
];

const STATUSES: [&str; 4] = ["ok", "warn", "fail", "unknown"];

// ---------------------------------------------------------------- the real machine

#[test]
fn real_host_reports_every_setting() {
    let data = tempfile::tempdir().unwrap();
    let args = TuneArgs {
        log_dirs: vec![
            data.path().join("sluice-data"),
            PathBuf::from("./relative-dir"),
        ],
        partitions: 1000,
        segments_per_partition: 10,
        connections: 1000,
        ..TuneArgs::default()
    };
    let (code, doc) = run_json(&args, NOT_ROOT);
    let found = statuses(&doc["findings"]);
    assert_eq!(found.len(), 4 + 9, "{found:?}");
    for setting in &SETTINGS[..11] {
        assert!(
            found.iter().any(|(s, _)| s.starts_with(setting)),
            "{setting} missing from {found:?}"
        );
    }
    for (s, st) in &found {
        assert!(STATUSES.contains(&st.as_str()), "{s}: {st}");
    }
    let any_fail = found.iter().any(|(_, st)| st == "fail");
    assert_eq!(code, u8::from(any_fail));
    assert_eq!(doc["exit_status"], u8::from(any_fail));

    // The table too.
    let r = run(&args, NOT_ROOT);
    assert_eq!(r.code, code, "{}", r.err);
    let header = r.out.lines().find(|l| l.starts_with("SETTING")).unwrap();
    for col in ["CURRENT", "RECOMMENDED", "WHY", "STATUS"] {
        assert!(header.contains(col), "{header}");
    }
    for setting in &SETTINGS[..11] {
        assert!(r.out.contains(setting), "{setting} missing:\n{}", r.out);
    }
    println!("{}", r.out);
}

#[test]
fn table_columns_are_aligned() {
    let fake = Fake::untuned();
    fake.set(
        "/proc/sys/vm/swappiness",
        "garbage that is rather long and has spaces in it\n",
    );
    let r = run(&fake.args(), NOT_ROOT);
    let lines: Vec<&str> = r.out.lines().collect();
    let header_at = lines.iter().position(|l| l.starts_with("SETTING")).unwrap();
    let header = lines[header_at];
    let col = |name: &str| header.find(name).unwrap();
    let (cur, why, status) = (col("CURRENT"), col("WHY"), col("STATUS"));
    let mut rows = 0;
    for line in &lines[header_at + 2..] {
        if line.is_empty() {
            continue; // between rows
        }
        if line.ends_with(" unknown") && line.contains(" ok, ") {
            break; // the summary
        }
        let chars: Vec<char> = line.chars().collect();
        if chars[0] != ' ' {
            rows += 1;
            let st: String = chars[status..].iter().collect();
            assert!(STATUSES.contains(&st.as_str()), "{line:?} -> {st:?}");
            assert!(chars[cur - 1] == ' ' && chars[cur - 2] == ' ', "{line}");
        } else {
            // A continuation line of `why`: blank up to the WHY column, text from there.
            assert!(
                chars[..why].iter().all(|c| *c == ' ') && chars[why] != ' ',
                "{line:?}"
            );
        }
    }
    assert_eq!(rows, 11);
    assert!(r.out.contains("ok, "), "{}", r.out);
}

// ---------------------------------------------------------------- fake roots: statuses

#[test]
fn fake_all_ok() {
    let fake = Fake::good();
    let (code, doc) = run_json(&fake.args(), NOT_ROOT);
    for (s, st) in statuses(&doc["findings"]) {
        assert_eq!(st, "ok", "{s}: {}", doc);
    }
    assert_eq!(code, 0);
    assert_eq!(
        doc["workload"]["cores"], 2,
        "cores from the fake cpu/online"
    );
    assert_eq!(
        finding(&doc, "filesystem")["current"],
        "xfs (/dev/sdb1 on /data)"
    );
}

#[test]
fn fake_untuned_warns_but_exits_zero() {
    let fake = Fake::untuned();
    let (code, doc) = run_json(&fake.args(), NOT_ROOT);
    for s in [
        "vm.swappiness",
        "vm.dirty_ratio",
        "vm.dirty_background_ratio",
        "vm.max_map_count",
        "transparent_hugepage",
        "cpu frequency governor",
        "clocksource",
    ] {
        assert_eq!(status_of(&doc, s), "warn", "{s}");
    }
    assert_eq!(
        finding(&doc, "cpu frequency governor")["current"],
        "powersave x1, schedutil x1"
    );
    assert_eq!(finding(&doc, "transparent_hugepage")["current"], "always");
    assert_eq!(
        finding(&doc, "vm.swappiness")["fix"]["command"],
        "sysctl -w vm.swappiness=1"
    );
    assert_eq!(code, 0, "warnings alone do not fail");
}

#[test]
fn filesystem_and_mount_option_cases() {
    let fake = Fake::good();
    let cases = [
        ("xfs", "rw,noatime", "ok", "ok"),
        ("ext4", "rw,relatime", "ok", "warn"),
        ("btrfs", "rw,strictatime", "warn", "warn"),
        ("nfs4", "rw", "warn", "warn"),
        ("tmpfs", "rw,noatime", "fail", "ok"),
        ("ramfs", "rw", "fail", "warn"),
    ];
    for (fstype, opts, fs_status, opt_status) in cases {
        fake.set(
            "/proc/self/mountinfo",
            &format!("21 1 8:1 / / rw,noatime - ext4 /dev/sda1 rw\n30 21 8:17 / /data {opts} - {fstype} src rw\n"),
        );
        let (code, doc) = run_json(&fake.args(), NOT_ROOT);
        assert_eq!(status_of(&doc, "filesystem"), fs_status, "{fstype}");
        assert_eq!(status_of(&doc, "mount options"), opt_status, "{opts}");
        assert_eq!(code, u8::from(fs_status == "fail"), "{fstype}");
    }
    // A directory outside /data is on the root mount; /proc/mounts is used when mountinfo is gone.
    fake.remove("/proc/self/mountinfo");
    fake.set(
        "/proc/mounts",
        "/dev/sda1 / xfs rw,relatime 0 0\ntmpfs /data tmpfs rw 0 0\n",
    );
    let mut args = fake.args();
    args.log_dirs = vec![
        PathBuf::from("/var/lib/sluice"),
        PathBuf::from("/data/x/../y"),
    ];
    let (code, doc) = run_json(&args, NOT_ROOT);
    let found = statuses(&doc["findings"]);
    assert!(
        found.contains(&("filesystem /var/lib/sluice".into(), "ok".into())),
        "{found:?}"
    );
    assert!(
        found.contains(&("mount options /var/lib/sluice".into(), "warn".into())),
        "{found:?}"
    );
    assert!(
        found.contains(&("filesystem /data/x/../y".into(), "fail".into())),
        "{found:?}"
    );
    assert_eq!(code, 1);
}

#[test]
fn sysctl_boundaries() {
    let fake = Fake::good();
    let cases: [(&str, &str, &str, &str); 10] = [
        ("/proc/sys/vm/swappiness", "vm.swappiness", "0", "ok"),
        ("/proc/sys/vm/swappiness", "vm.swappiness", "2", "warn"),
        ("/proc/sys/vm/dirty_ratio", "vm.dirty_ratio", "21", "warn"),
        ("/proc/sys/vm/dirty_ratio", "vm.dirty_ratio", "2", "warn"),
        ("/proc/sys/vm/dirty_ratio", "vm.dirty_ratio", "10", "ok"),
        (
            "/proc/sys/vm/dirty_background_ratio",
            "vm.dirty_background_ratio",
            "6",
            "warn",
        ),
        (
            "/proc/sys/vm/dirty_background_ratio",
            "vm.dirty_background_ratio",
            "3",
            "ok",
        ),
        (
            "/proc/sys/vm/max_map_count",
            "vm.max_map_count",
            "262143",
            "warn",
        ),
        (
            "/proc/sys/vm/max_map_count",
            "vm.max_map_count",
            "1048576",
            "ok",
        ),
        ("/proc/sys/vm/swappiness", "vm.swappiness", "1", "ok"),
    ];
    for (path, name, value, want) in cases {
        let before = fake.get(path);
        fake.set(path, value);
        let (_, doc) = run_json(&fake.args(), NOT_ROOT);
        assert_eq!(status_of(&doc, name), want, "{name}={value}");
        fake.set(path, &before);
    }
    // Background ratio not below dirty_ratio.
    fake.set("/proc/sys/vm/dirty_ratio", "5");
    fake.set("/proc/sys/vm/dirty_background_ratio", "5");
    let (_, doc) = run_json(&fake.args(), NOT_ROOT);
    assert_eq!(status_of(&doc, "vm.dirty_background_ratio"), "warn");
    assert_eq!(status_of(&doc, "vm.dirty_ratio"), "ok");
    // dirty_bytes replaces the ratio: not judged.
    fake.set("/proc/sys/vm/dirty_ratio", "0");
    fake.set("/proc/sys/vm/dirty_bytes", "268435456");
    let (_, doc) = run_json(&fake.args(), NOT_ROOT);
    assert_eq!(status_of(&doc, "vm.dirty_ratio"), "unknown");
    assert!(finding(&doc, "vm.dirty_ratio")["current"]
        .as_str()
        .unwrap()
        .contains("vm.dirty_bytes=268435456"));
}

#[test]
fn limits_against_workload() {
    let fake = Fake::good();
    // nofile: 1000 partitions x 10 segments x 3 + 1000 connections + 1024 slack = 32024.
    fake.set(
        "/proc/self/limits",
        &limits("32024 32024", "unlimited unlimited"),
    );
    let (code, doc) = run_json(&fake.args(), NOT_ROOT);
    assert_eq!(status_of(&doc, "nofile"), "ok");
    assert_eq!(doc["workload"]["nofile_needed"], 32024);
    assert_eq!(code, 0);
    fake.set(
        "/proc/self/limits",
        &limits("32023 unlimited", "unlimited unlimited"),
    );
    let (code, doc) = run_json(&fake.args(), NOT_ROOT);
    assert_eq!(status_of(&doc, "nofile"), "fail");
    assert_eq!(code, 1);
    let mut small = fake.args();
    small.partitions = 10;
    let (code, doc) = run_json(&small, NOT_ROOT);
    assert_eq!(status_of(&doc, "nofile"), "ok");
    assert_eq!(code, 0);

    // memlock: 2 shards need 2 x 8 MiB x 3 x 4/3 = 64 MiB for full buffers.
    let mut args = fake.args();
    args.cores = Some(2);
    fake.set(
        "/proc/self/limits",
        &limits("unlimited unlimited", "67108864 67108864"),
    );
    assert_eq!(status_of(&run_json(&args, NOT_ROOT).1, "memlock"), "ok");
    fake.set(
        "/proc/self/limits",
        &limits("unlimited unlimited", "8388608 8388608"),
    );
    assert_eq!(status_of(&run_json(&args, NOT_ROOT).1, "memlock"), "warn");
    fake.set(
        "/proc/self/limits",
        &limits("unlimited unlimited", "65536 65536"),
    );
    let (code, doc) = run_json(&args, NOT_ROOT);
    assert_eq!(status_of(&doc, "memlock"), "fail");
    assert!(finding(&doc, "memlock")["why"]
        .as_str()
        .unwrap()
        .contains("refuses to start"));
    assert!(finding(&doc, "memlock")["fix"]["how"]
        .as_str()
        .unwrap()
        .contains("ulimit -l"));
    assert_eq!(finding(&doc, "memlock")["fix"]["kind"], "manual");
    assert_eq!(code, 1);
}

#[test]
fn cpu_cases() {
    let fake = Fake::good();
    let gov0 = "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor";
    let thp = "/sys/kernel/mm/transparent_hugepage/enabled";
    let clock = "/sys/devices/system/clocksource/clocksource0/current_clocksource";
    for (v, want) in [
        ("always [madvise] never", "ok"),
        ("[always] madvise never", "warn"),
        ("never", "ok"),
    ] {
        fake.set(thp, v);
        assert_eq!(
            status_of(&run_json(&fake.args(), NOT_ROOT).1, "transparent_hugepage"),
            want,
            "{v}"
        );
    }
    for (v, want) in [
        ("arch_sys_counter", "ok"),
        ("kvm-clock", "warn"),
        ("acpi_pm", "warn"),
        ("tsc", "ok"),
    ] {
        fake.set(clock, v);
        assert_eq!(
            status_of(&run_json(&fake.args(), NOT_ROOT).1, "clocksource"),
            want,
            "{v}"
        );
    }
    fake.set(gov0, "ondemand");
    assert_eq!(
        status_of(
            &run_json(&fake.args(), NOT_ROOT).1,
            "cpu frequency governor"
        ),
        "warn"
    );
    // No cpufreq at all (a VM): unknown with a reason.
    std::fs::remove_dir_all(fake.path("/sys/devices/system/cpu/cpu0/cpufreq")).unwrap();
    std::fs::remove_dir_all(fake.path("/sys/devices/system/cpu/cpu1/cpufreq")).unwrap();
    let (code, doc) = run_json(&fake.args(), NOT_ROOT);
    assert_eq!(status_of(&doc, "cpu frequency governor"), "unknown");
    assert!(finding(&doc, "cpu frequency governor")["why"]
        .as_str()
        .unwrap()
        .contains("cpufreq"));
    assert_eq!(code, 0);
}

// ---------------------------------------------------------------- fake roots: missing and odd

#[test]
fn empty_root_is_all_unknown_and_never_panics() {
    let empty = tempfile::tempdir().unwrap();
    let args = TuneArgs {
        root: Some(empty.path().to_path_buf()),
        ..Fake::good().args()
    };
    let (code, doc) = run_json(&args, NOT_ROOT);
    let found = statuses(&doc["findings"]);
    assert_eq!(found.len(), 11);
    for (s, st) in &found {
        assert_eq!(st, "unknown", "{s}");
    }
    for f in doc["findings"].as_array().unwrap() {
        assert!(f["why"].as_str().unwrap().starts_with("unknown: "), "{f}");
        assert_eq!(f["current"], "?");
    }
    assert!(finding(&doc, "vm.swappiness")["why"]
        .as_str()
        .unwrap()
        .contains("/proc/sys/vm/swappiness does not exist"));
    assert_eq!(doc["workload"]["cores"], 1);
    assert_eq!(code, 0);
    // The table renders too.
    let r = run(&args, NOT_ROOT);
    assert!(
        r.out.contains("0 ok, 0 warn, 0 fail, 11 unknown"),
        "{}",
        r.out
    );
}

#[test]
fn odd_contents_are_unknown() {
    let fake = Fake::good();
    fake.set("/proc/sys/vm/swappiness", "sixty\n");
    fake.set("/proc/sys/vm/dirty_ratio", "");
    fake.set("/proc/sys/vm/dirty_background_ratio", "-5");
    fake.set("/proc/sys/vm/max_map_count", "99999999999999999999999\n");
    fake.set(
        "/proc/self/limits",
        "Max open files  lots\nMax locked memory\n",
    );
    fake.set("/proc/self/mountinfo", "this is not a mount table\n\n");
    fake.set(
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "always madvise never",
    );
    fake.set(
        "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor",
        "\n",
    );
    fake.set(
        "/sys/devices/system/cpu/cpu1/cpufreq/scaling_governor",
        "two words",
    );
    fake.set(
        "/sys/devices/system/clocksource/clocksource0/current_clocksource",
        "\u{0}\u{1} x",
    );
    fake.set("/sys/devices/system/cpu/online", "zero-one");
    let (code, doc) = run_json(&fake.args(), NOT_ROOT);
    for (s, st) in statuses(&doc["findings"]) {
        assert_eq!(st, "unknown", "{s}: {}", finding(&doc, &s));
    }
    assert!(finding(&doc, "vm.swappiness")["why"]
        .as_str()
        .unwrap()
        .contains("\"sixty\""));
    assert!(finding(&doc, "vm.dirty_ratio")["why"]
        .as_str()
        .unwrap()
        .contains("is empty"));
    assert_eq!(code, 0);
    // Binary garbage and a directory where a file should be.
    std::fs::write(fake.path("/proc/sys/vm/swappiness"), [0xff, 0xfe, 0x00]).unwrap();
    fake.remove("/proc/sys/vm/dirty_ratio");
    std::fs::create_dir(fake.path("/proc/sys/vm/dirty_ratio")).unwrap();
    let (_, doc) = run_json(&fake.args(), NOT_ROOT);
    assert_eq!(status_of(&doc, "vm.swappiness"), "unknown");
    assert_eq!(status_of(&doc, "vm.dirty_ratio"), "unknown");
}

// ---------------------------------------------------------------- --apply

#[test]
fn apply_refuses_without_root_and_changes_nothing() {
    let fake = Fake::untuned();
    let mut args = fake.args();
    args.apply = true;
    let r = run(&args, NOT_ROOT);
    assert_eq!(r.code, 2);
    assert!(
        r.err.contains("needs root") && r.err.contains("nothing was changed"),
        "{}",
        r.err
    );
    assert!(r.out.is_empty());
    assert_eq!(fake.get("/proc/sys/vm/swappiness"), "60\n");
    assert_eq!(
        fake.get("/sys/kernel/mm/transparent_hugepage/enabled"),
        "[always] madvise never\n"
    );
    // Also on the real root.
    let r = run(
        &TuneArgs {
            apply: true,
            ..TuneArgs::default()
        },
        NOT_ROOT,
    );
    assert_eq!(r.code, 2);
}

#[test]
fn apply_on_fake_root_writes_expected_values() {
    let fake = Fake::untuned();
    fake.set("/proc/sys/vm/dirty_background_ratio", "30\n");
    fake.set("/proc/self/limits", &limits("1024 4096", "65536 65536"));
    let mut args = fake.args();
    args.apply = true;
    let r = run(&args, ROOT);
    assert_eq!(fake.get("/proc/sys/vm/swappiness"), "1");
    assert_eq!(fake.get("/proc/sys/vm/dirty_ratio"), "20");
    assert_eq!(fake.get("/proc/sys/vm/dirty_background_ratio"), "5");
    assert_eq!(fake.get("/proc/sys/vm/max_map_count"), "262144");
    assert_eq!(
        fake.get("/sys/kernel/mm/transparent_hugepage/enabled"),
        "madvise"
    );
    assert_eq!(
        fake.get("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "performance"
    );
    assert_eq!(
        fake.get("/sys/devices/system/cpu/cpu1/cpufreq/scaling_governor"),
        "performance"
    );
    assert_eq!(
        fake.get("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
        "tsc"
    );
    for cmd in [
        "sysctl -w vm.swappiness=1",
        "sysctl -w vm.dirty_ratio=20",
        "sysctl -w vm.dirty_background_ratio=5",
        "sysctl -w vm.max_map_count=262144",
        "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled",
        "echo performance | tee /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor",
        "echo tsc > /sys/devices/system/clocksource/clocksource0/current_clocksource",
    ] {
        assert!(
            r.out.contains(&format!("applied  {cmd}")),
            "{cmd}:\n{}",
            r.out
        );
    }
    assert!(r.out.contains("/etc/sysctl.d/99-sluice.conf"), "{}", r.out);
    // Limits cannot be changed for the service at runtime: named, with where to change them.
    assert!(
        r.out.contains("LimitNOFILE=") && r.out.contains("/etc/security/limits.conf"),
        "{}",
        r.out
    );
    assert!(r.out.contains("LimitMEMLOCK="), "{}", r.out);
    assert!(r.out.contains("After applying:"), "{}", r.out);
    assert_eq!(r.code, 1, "the limits still fail after applying");

    // Everything runtime is ok now; a second apply has nothing to change at runtime.
    let (code, doc) = run_json(&args, ROOT);
    for s in [
        "vm.",
        "transparent_hugepage",
        "cpu frequency",
        "clocksource",
    ] {
        for f in doc["after"].as_array().unwrap() {
            if f["setting"].as_str().unwrap().starts_with(s) {
                assert_eq!(f["status"], "ok", "{f}");
            }
        }
    }
    assert!(
        doc["actions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["outcome"] == "manual"),
        "{}",
        doc["actions"]
    );
    assert_eq!(code, 1);
}

#[test]
fn apply_reports_failed_writes_and_unoffered_values() {
    let fake = Fake::untuned();
    fake.set(
        "/proc/self/limits",
        &limits("1048576 1048576", "unlimited unlimited"),
    );
    // The kernel offers neither performance nor tsc here.
    fake.set(
        "/sys/devices/system/cpu/cpu0/cpufreq/scaling_available_governors",
        "powersave\n",
    );
    fake.set(
        "/sys/devices/system/cpu/cpu1/cpufreq/scaling_available_governors",
        "schedutil\n",
    );
    fake.set(
        "/sys/devices/system/clocksource/clocksource0/available_clocksource",
        "hpet acpi_pm\n",
    );
    // A sysctl that cannot be written: a directory in place of the file.
    fake.remove("/proc/sys/vm/max_map_count");
    std::fs::create_dir(fake.path("/proc/sys/vm/max_map_count")).unwrap();
    fake.set("/proc/sys/vm/max_map_count/x", "");
    let mut args = fake.args();
    args.apply = true;
    let (code, doc) = run_json(&args, ROOT);
    assert_eq!(
        fake.get("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "powersave\n"
    );
    assert_eq!(
        fake.get("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
        "hpet\n"
    );
    let actions = doc["actions"].as_array().unwrap();
    let by = |s: &str| {
        actions
            .iter()
            .find(|a| a["setting"] == s)
            .unwrap_or_else(|| panic!("{s}: {actions:?}"))
    };
    assert_eq!(by("cpu frequency governor")["outcome"], "manual");
    assert_eq!(by("clocksource")["outcome"], "manual");
    assert_eq!(by("vm.swappiness")["outcome"], "applied");
    // max_map_count was unknown (unreadable), so not touched at all.
    assert!(actions.iter().all(|a| a["setting"] != "vm.max_map_count"));
    assert_eq!(code, 0);
    // A write that fails is reported, not panicked on.
    let fake = Fake::untuned();
    let p = fake.path("/proc/sys/vm/swappiness");
    std::fs::remove_file(&p).unwrap();
    std::os::unix::fs::symlink("/nonexistent-dir-for-sluice-test/x", &p).unwrap();
    let mut args = fake.args();
    args.apply = true;
    let (_, doc) = run_json(&args, ROOT);
    assert_eq!(status_of(&doc, "vm.swappiness"), "unknown");
}

// ---------------------------------------------------------------- options and exit status

#[test]
fn usage_errors_exit_2() {
    let fake = Fake::good();
    let mut a = fake.args();
    a.cores = Some(0);
    assert_eq!(run(&a, NOT_ROOT).code, 2);
    let a = TuneArgs {
        root: Some(PathBuf::from("/nonexistent/sluice/root")),
        ..TuneArgs::default()
    };
    let r = run(&a, NOT_ROOT);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("--root"), "{}", r.err);
    let a = TuneArgs {
        config: Some(PathBuf::from("/nonexistent/server.properties")),
        log_dirs: vec![],
        ..fake.args()
    };
    let r = run(&a, NOT_ROOT);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("--config"), "{}", r.err);
}

#[test]
fn log_dirs_come_from_config_unless_given() {
    let fake = Fake::good();
    let cfg = fake.dir.path().join("server.properties");
    std::fs::write(
        &cfg,
        "# broker\nlog.dir=/ignored\nlog.dirs = /data/a, /srv/b\n",
    )
    .unwrap();
    let a = TuneArgs {
        config: Some(cfg.clone()),
        log_dirs: vec![],
        ..fake.args()
    };
    let (_, doc) = run_json(&a, NOT_ROOT);
    let names: Vec<String> = statuses(&doc["findings"])
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert!(
        names.contains(&"filesystem /data/a".to_string())
            && names.contains(&"filesystem /srv/b".to_string()),
        "{names:?}"
    );
    assert_eq!(doc["log_dirs"], serde_json::json!(["/data/a", "/srv/b"]));
    // --log-dir wins over the file.
    let a = TuneArgs {
        config: Some(cfg),
        log_dirs: vec![PathBuf::from("/x")],
        ..fake.args()
    };
    assert_eq!(
        run_json(&a, NOT_ROOT).1["log_dirs"],
        serde_json::json!(["/x"])
    );
    // Neither: the broker default.
    let a = TuneArgs {
        log_dirs: vec![],
        ..fake.args()
    };
    assert_eq!(
        run_json(&a, NOT_ROOT).1["log_dirs"],
        serde_json::json!(["./sluice-data"])
    );
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    tune: TuneArgs,
}

#[test]
fn clap_options() {
    let c = Cli::try_parse_from([
        "tune",
        "--log-dir",
        "/a",
        "--log-dir",
        "b",
        "--config",
        "s.properties",
        "--cores",
        "4",
        "--partitions",
        "20",
        "--root",
        "/tmp/x",
        "--apply",
        "--json",
    ])
    .unwrap()
    .tune;
    assert_eq!(c.log_dirs, vec![PathBuf::from("/a"), PathBuf::from("b")]);
    assert_eq!(c.config.as_deref(), Some(Path::new("s.properties")));
    assert_eq!(
        (c.cores, c.partitions, c.apply, c.json),
        (Some(4), 20, true, true)
    );
    assert_eq!(c.root.as_deref(), Some(Path::new("/tmp/x")));
    let d = Cli::try_parse_from(["tune"]).unwrap().tune;
    assert_eq!(
        (
            d.cores,
            d.partitions,
            d.segments_per_partition,
            d.connections
        ),
        (None, 1000, 10, 1000)
    );
    assert!(!d.apply && !d.json && d.root.is_none() && d.log_dirs.is_empty());
    let e = Cli::try_parse_from(["tune", "--cores", "many"])
        .err()
        .unwrap();
    assert_eq!(e.exit_code(), 2);
}
