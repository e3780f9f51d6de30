//! `--apply`: make the runtime changes findings call for, and list what needs a human.

use crate::host::HostView;
use crate::report::{Finding, Fix, Status};
use serde::Serialize;

/// What happened to one change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Outcome {
    /// Every write succeeded.
    Applied,
    /// A write failed (the error); earlier writes of the same change may have gone through.
    Failed {
        /// The error.
        error: String,
    },
    /// Cannot be changed at runtime: what to do instead.
    Manual {
        /// Instructions.
        how: String,
    },
}

/// One change `--apply` made, tried, or left to a human.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    /// The setting.
    pub setting: String,
    /// The equivalent shell command (empty for manual changes).
    pub command: String,
    /// How to make it survive a reboot (empty for manual changes).
    pub persist: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Apply the runtime fixes of every `warn` / `fail` finding to `host`; manual fixes are returned
/// as [`Outcome::Manual`]. The caller must have checked that the user may change the host.
pub fn apply(findings: &[Finding], host: &HostView) -> Vec<Action> {
    let mut actions = Vec::new();
    for f in findings {
        if !matches!(f.status, Status::Warn | Status::Fail) {
            continue;
        }
        let Some(fix) = &f.fix else { continue };
        let action = match fix {
            Fix::Runtime {
                writes,
                command,
                persist,
            } => {
                let result = writes
                    .iter()
                    .try_for_each(|w| host.write(&w.path, &w.value));
                Action {
                    setting: f.setting.clone(),
                    command: command.clone(),
                    persist: persist.clone(),
                    outcome: match result {
                        Ok(()) => Outcome::Applied,
                        Err(e) => Outcome::Failed {
                            error: e.to_string(),
                        },
                    },
                }
            }
            Fix::Manual { how } => Action {
                setting: f.setting.clone(),
                command: String::new(),
                persist: String::new(),
                outcome: Outcome::Manual { how: how.clone() },
            },
        };
        actions.push(action);
    }
    actions
}

/// The actions as text: what was changed (with the equivalent commands), what failed, and what
/// needs a reboot, an fstab or limits edit.
pub fn render_actions(actions: &[Action]) -> String {
    let mut out = String::new();
    let runtime: Vec<&Action> = actions
        .iter()
        .filter(|a| !matches!(a.outcome, Outcome::Manual { .. }))
        .collect();
    let manual: Vec<&Action> = actions
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Manual { .. }))
        .collect();
    if runtime.is_empty() {
        out.push_str("Nothing to change at runtime.\n");
    } else {
        out.push_str("Runtime changes:\n");
        for a in runtime {
            match &a.outcome {
                Outcome::Applied => {
                    out.push_str(&format!("  applied  {}\n", a.command));
                    out.push_str(&format!("           not persistent: {}\n", a.persist));
                }
                Outcome::Failed { error } => {
                    out.push_str(&format!("  FAILED   {}\n           {error}\n", a.command));
                }
                Outcome::Manual { .. } => {}
            }
        }
    }
    if !manual.is_empty() {
        out.push_str("\nNeeds a manual change (reboot, fstab, limits or new disks):\n");
        for a in manual {
            if let Outcome::Manual { how } = &a.outcome {
                out.push_str(&format!("  {}: {how}\n", a.setting));
            }
        }
    }
    out
}
