//! What a check finds: a [`Finding`] with a [`Status`] and, when something can be done, a [`Fix`].

use serde::Serialize;
use std::fmt;

/// The verdict on one setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// As recommended.
    Ok,
    /// Works, but costs latency or throughput, or is only acceptable.
    Warn,
    /// Will break the broker or put acknowledged data at risk.
    Fail,
    /// Could not be determined (the file is missing or odd); the reason is in `why`.
    Unknown,
}

impl Status {
    /// The lowercase name used in the table and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Unknown => "unknown",
        }
    }

    /// Every status, in display order.
    pub const ALL: [Status; 4] = [Status::Ok, Status::Warn, Status::Fail, Status::Unknown];
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One file write that changes a setting at runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostWrite {
    /// Host path (`/proc/sys/vm/swappiness`), written under the view's root.
    pub path: String,
    /// The value written.
    pub value: String,
}

/// How to bring a setting to its recommended value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Fix {
    /// Can be changed now by writing files under `/proc` or `/sys` (what `--apply` does).
    Runtime {
        /// The writes, in order.
        writes: Vec<HostWrite>,
        /// The equivalent shell command, echoed when applied (`sysctl -w vm.swappiness=1`).
        command: String,
        /// How to make the change survive a reboot.
        persist: String,
    },
    /// Needs a human: a reboot, an fstab or limits.conf edit, moving data.
    Manual {
        /// What to do.
        how: String,
    },
}

/// The result of one check: one row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The setting's name (`vm.swappiness`, `filesystem ./sluice-data`, …).
    pub setting: String,
    /// What the host has now (`?` when unknown).
    pub current: String,
    /// What Sluice recommends.
    pub recommended: String,
    /// Why it matters; for `unknown`, first why it could not be read.
    pub why: String,
    /// The verdict.
    pub status: Status,
    /// How to fix it; only for `warn` and `fail`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<Fix>,
}

impl Finding {
    /// A finding with no fix attached.
    pub fn new(
        setting: impl Into<String>,
        current: impl Into<String>,
        recommended: impl Into<String>,
        why: impl Into<String>,
        status: Status,
    ) -> Self {
        Self {
            setting: setting.into(),
            current: current.into(),
            recommended: recommended.into(),
            why: why.into(),
            status,
            fix: None,
        }
    }

    /// An `unknown` finding: `reason` is why the setting could not be read, `why` why it matters.
    pub fn unknown(
        setting: impl Into<String>,
        recommended: impl Into<String>,
        reason: impl fmt::Display,
        why: &str,
    ) -> Self {
        Self::new(
            setting,
            "?",
            recommended,
            format!("unknown: {reason}. {why}"),
            Status::Unknown,
        )
    }

    /// Attach `fix` when the status calls for one (`warn` or `fail`).
    pub fn with_fix(mut self, fix: Fix) -> Self {
        if matches!(self.status, Status::Warn | Status::Fail) {
            self.fix = Some(fix);
        }
        self
    }
}

/// The process exit status for a set of findings: 1 when any check fails, else 0.
pub fn exit_status(findings: &[Finding]) -> u8 {
    u8::from(findings.iter().any(|f| f.status == Status::Fail))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(status: Status) -> Finding {
        Finding::new("s", "c", "r", "w", status)
    }

    #[test]
    fn exit_status_is_1_only_on_fail() {
        assert_eq!(exit_status(&[]), 0);
        assert_eq!(
            exit_status(&[f(Status::Ok), f(Status::Warn), f(Status::Unknown)]),
            0
        );
        assert_eq!(
            exit_status(&[f(Status::Ok), f(Status::Fail), f(Status::Warn)]),
            1
        );
    }

    #[test]
    fn fixes_attach_only_to_warn_and_fail() {
        let fix = Fix::Manual { how: "x".into() };
        assert!(f(Status::Ok).with_fix(fix.clone()).fix.is_none());
        assert!(f(Status::Unknown).with_fix(fix.clone()).fix.is_none());
        assert!(f(Status::Warn).with_fix(fix.clone()).fix.is_some());
        assert!(f(Status::Fail).with_fix(fix).fix.is_some());
    }
}
