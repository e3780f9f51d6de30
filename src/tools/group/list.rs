//! `sluice group list`: every group of every node, merged.

use super::admin::{Admin, Listed};
use crate::tools::common::ToolError;
use crate::tools::table::Table;

/// Group states a `--state` filter accepts (Kafka's names; matched case-insensitively).
pub const STATES: [&str; 7] = [
    "Stable",
    "Empty",
    "PreparingRebalance",
    "CompletingRebalance",
    "Dead",
    "Assigning",
    "Reconciling",
];

/// Options of `sluice group list`.
#[derive(clap::Args, Debug, Clone)]
pub struct ListArgs {
    /// Only groups in this state: Stable, Empty, PreparingRebalance, CompletingRebalance, Dead
    /// (case-insensitive; repeatable or comma-separated).
    #[arg(long = "state", value_name = "STATE", value_delimiter = ',', value_parser = parse_state)]
    pub states: Vec<String>,
}

/// A state name in Kafka's spelling, whatever its case was.
pub fn parse_state(s: &str) -> Result<String, String> {
    STATES
        .iter()
        .find(|k| k.eq_ignore_ascii_case(s.trim()))
        .map(|k| k.to_string())
        .ok_or_else(|| format!("unknown group state '{s}' (one of: {})", STATES.join(", ")))
}

/// The GROUP / STATE / PROTOCOL TYPE table (`-` for a missing state or protocol type).
pub fn render(groups: &[Listed]) -> String {
    let mut t = Table::new(&["GROUP", "STATE", "PROTOCOL TYPE"]);
    for g in groups {
        let dash = |s: &str| {
            if s.is_empty() {
                "-".to_string()
            } else {
                s.to_string()
            }
        };
        t.row(vec![
            g.group.clone(),
            dash(g.state.as_deref().unwrap_or("")),
            dash(&g.protocol_type),
        ]);
    }
    t.render()
}

/// Runs `sluice group list`; false if some node could not be asked.
pub async fn run(admin: &Admin, args: &ListArgs) -> Result<bool, ToolError> {
    let (groups, warnings) = admin.list(&args.states).await?;
    if !groups.is_empty() {
        out!("{}", render(&groups));
    } else if warnings.is_empty() {
        // (When some node could not be asked, "no groups" would be a guess.)
        if args.states.is_empty() {
            outln!("No groups found.");
        } else {
            outln!("No groups found in state {}.", args.states.join(" or "));
        }
    }
    for w in &warnings {
        eprintln!("sluice group: could not list the groups of {w}");
    }
    Ok(warnings.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_matched_case_insensitively() {
        assert_eq!(parse_state("stable").unwrap(), "Stable");
        assert_eq!(
            parse_state("PREPARINGREBALANCE").unwrap(),
            "PreparingRebalance"
        );
        assert!(parse_state("running")
            .unwrap_err()
            .contains("Stable, Empty"));
    }

    #[test]
    fn renders_dashes_for_unknowns() {
        let out = render(&[
            Listed {
                group: "a".into(),
                state: Some("Stable".into()),
                protocol_type: "consumer".into(),
            },
            Listed {
                group: "bb".into(),
                state: None,
                protocol_type: String::new(),
            },
        ]);
        assert_eq!(
            out,
            "GROUP  STATE   PROTOCOL TYPE\na      Stable  consumer\nbb     -       -\n"
        );
    }
}
