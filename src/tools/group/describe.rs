//! `sluice group describe`: state, assignor, members and offsets of groups.

use super::admin::{Admin, Description};
use super::lag::{self, OffsetRow};
use crate::tools::common::ToolError;
use crate::tools::table::Table;

/// Options of `sluice group describe`.
#[derive(clap::Args, Debug, Clone)]
pub struct DescribeArgs {
    /// The groups to describe.
    #[arg(required = true, value_name = "GROUP")]
    pub groups: Vec<String>,
}

/// The summary lines and the MEMBER ID / INSTANCE ID / CLIENT ID / HOST / ASSIGNMENT table.
pub fn render_summary(d: &Description) -> String {
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    let c = &d.coordinator;
    let mut out = String::new();
    out.push_str(&format!("Group:          {}\n", d.group));
    out.push_str(&format!(
        "Coordinator:    node {} ({}:{})\n",
        c.node_id, c.host, c.port
    ));
    out.push_str(&format!("State:          {}\n", d.state));
    out.push_str(&format!("Protocol type:  {}\n", dash(&d.protocol_type)));
    out.push_str(&format!("Assignor:       {}\n", dash(&d.protocol)));
    out.push_str(&format!("Members:        {}\n", d.members.len()));
    out.push('\n');
    if d.members.is_empty() {
        out.push_str("(no active members)\n");
        return out;
    }
    let mut t = Table::new(&[
        "MEMBER ID",
        "INSTANCE ID",
        "CLIENT ID",
        "HOST",
        "ASSIGNMENT",
    ]);
    for m in &d.members {
        t.row(vec![
            dash(&m.member_id),
            dash(m.instance_id.as_deref().unwrap_or("")),
            dash(&m.client_id),
            dash(&m.host),
            m.assignment.to_string(),
        ]);
    }
    out.push_str(&t.render());
    out
}

/// The whole description: summary, members, and the offsets table.
pub fn render(d: &Description, rows: &[OffsetRow]) -> String {
    let mut out = render_summary(d);
    out.push('\n');
    if rows.is_empty() {
        out.push_str("(no committed offsets)\n");
    } else {
        out.push_str(&lag::render(rows));
    }
    out
}

/// Runs `sluice group describe`; false if some group does not exist.
pub async fn run(admin: &Admin, args: &DescribeArgs) -> Result<bool, ToolError> {
    let mut all_ok = true;
    let mut first = true;
    for group in &args.groups {
        let desc = admin.describe(group).await?;
        let rows = lag::offsets(admin, &desc).await?;
        if !desc.exists() && rows.is_empty() {
            eprintln!("sluice group: {}", lag::not_found(group));
            all_ok = false;
            continue;
        }
        if !first {
            outln!();
        }
        first = false;
        out!("{}", render(&desc, &rows));
    }
    Ok(all_ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::group::admin::Member;
    use crate::tools::group::assignment::Assignment;
    use sluice_net::client::Coordinator;
    use std::collections::BTreeMap;

    #[test]
    fn renders_members_with_assignments() {
        let d = Description {
            group: "g".into(),
            state: "Stable".into(),
            protocol_type: "consumer".into(),
            protocol: "range".into(),
            members: vec![Member {
                member_id: "c-1".into(),
                instance_id: None,
                client_id: "c".into(),
                host: "/127.0.0.1".into(),
                assignment: Assignment::Consumer(BTreeMap::from([("t".into(), vec![0, 1])])),
            }],
            coordinator: Coordinator {
                node_id: 1001,
                host: "127.0.0.1".into(),
                port: 9093,
            },
        };
        let out = render(&d, &[]);
        assert_eq!(
            out,
            "Group:          g\n\
             Coordinator:    node 1001 (127.0.0.1:9093)\n\
             State:          Stable\n\
             Protocol type:  consumer\n\
             Assignor:       range\n\
             Members:        1\n\
             \n\
             MEMBER ID  INSTANCE ID  CLIENT ID  HOST        ASSIGNMENT\n\
             c-1        -            c          /127.0.0.1  t: 0,1\n\
             \n\
             (no committed offsets)\n"
        );
    }
}
