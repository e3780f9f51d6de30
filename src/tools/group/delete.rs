//! `sluice group delete`: DeleteGroups on each group's coordinator.

use super::admin::{Admin, GROUP_ID_NOT_FOUND};
use crate::tools::common::{code_text, ToolError};

/// NON_EMPTY_GROUP.
const NON_EMPTY_GROUP: i16 = 68;
/// INVALID_GROUP_ID.
const INVALID_GROUP_ID: i16 = 24;

/// Options of `sluice group delete`.
#[derive(clap::Args, Debug, Clone)]
pub struct DeleteArgs {
    /// The groups to delete; each must have no active members.
    #[arg(required = true, value_name = "GROUP")]
    pub groups: Vec<String>,
}

/// Why deleting `group` failed with `code`, in words.
pub fn failure(group: &str, code: i16) -> String {
    let why = match code {
        NON_EMPTY_GROUP => "the group still has active members; it must be empty (stop or close its consumers) before it can be deleted".to_string(),
        GROUP_ID_NOT_FOUND => "the group does not exist".to_string(),
        INVALID_GROUP_ID => "the group id is not valid".to_string(),
        _ => String::new(),
    };
    if why.is_empty() {
        format!("Could not delete group '{group}': {}", code_text(code))
    } else {
        format!(
            "Could not delete group '{group}': {} — {why}",
            code_text(code)
        )
    }
}

/// Runs `sluice group delete`; false if any group could not be deleted.
pub async fn run(admin: &Admin, args: &DeleteArgs) -> Result<bool, ToolError> {
    let mut all_ok = true;
    for group in &args.groups {
        match admin.delete(group).await {
            Ok(0) => outln!("Deleted group '{group}'."),
            Ok(code) => {
                eprintln!("{}", failure(group, code));
                all_ok = false;
            }
            Err(e) => {
                eprintln!("Could not delete group '{group}': {e}");
                all_ok = false;
            }
        }
    }
    Ok(all_ok)
}

#[cfg(test)]
mod tests {
    use super::failure;

    #[test]
    fn explains_common_failures() {
        let e = failure("g", 68);
        assert!(
            e.contains("NON_EMPTY_GROUP (68)") && e.contains("active members"),
            "{e}"
        );
        assert!(failure("g", 69).contains("does not exist"));
        assert_eq!(
            failure("g", 30),
            "Could not delete group 'g': GROUP_AUTHORIZATION_FAILED (30)"
        );
    }
}
