//! `sluice group lag`: committed offsets against log end offsets, per partition.

use super::admin::{Admin, Description, TopicPartition};
use crate::tools::common::ToolError;
use crate::tools::table::Table;
use sluice_net::client::{LATEST_TIMESTAMP, READ_UNCOMMITTED};
use std::collections::BTreeMap;

/// Options of `sluice group lag`.
#[derive(clap::Args, Debug, Clone)]
pub struct LagArgs {
    /// The group.
    pub group: String,
}

/// One partition of a group's offsets table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetRow {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The committed offset (`None`: nothing committed).
    pub current: Option<i64>,
    /// The log end offset (high watermark; `None`: could not be read).
    pub log_end: Option<i64>,
    /// The member the partition is assigned to, if any.
    pub owner: Option<String>,
}

impl OffsetRow {
    /// Log end offset minus committed offset, when both are known.
    pub fn lag(&self) -> Option<i64> {
        Some(self.log_end? - self.current?)
    }
}

/// The group's partitions — those with a committed offset and those assigned to a member —
/// with their log end offsets, sorted by topic and partition.
pub async fn offsets(admin: &Admin, desc: &Description) -> Result<Vec<OffsetRow>, ToolError> {
    let committed = admin.committed(&desc.group).await?;
    let owners = desc.owners();
    let mut rows: BTreeMap<TopicPartition, OffsetRow> = BTreeMap::new();
    for tp in committed.keys().chain(owners.keys()) {
        rows.entry(tp.clone()).or_insert_with(|| OffsetRow {
            topic: tp.0.clone(),
            partition: tp.1,
            current: committed.get(tp).copied().filter(|o| *o >= 0),
            log_end: None,
            owner: owners.get(tp).cloned(),
        });
    }
    let partitions: Vec<TopicPartition> = rows.keys().cloned().collect();
    let ends = admin
        .cluster()
        .list_offsets(&partitions, LATEST_TIMESTAMP, READ_UNCOMMITTED)
        .await?;
    for (tp, row) in rows.iter_mut() {
        match ends.get(tp) {
            Some(e) if e.error_code == 0 => row.log_end = Some(e.offset),
            Some(e) => eprintln!(
                "warning: the log end offset of {}-{} could not be read: {}",
                tp.0,
                tp.1,
                crate::tools::common::code_text(e.error_code)
            ),
            None => {}
        }
    }
    Ok(rows.into_values().collect())
}

/// The TOPIC / PARTITION / CURRENT-OFFSET / LOG-END-OFFSET / LAG / CONSUMER-ID table and a
/// `Total lag` line (`-` where a value is unknown).
pub fn render(rows: &[OffsetRow]) -> String {
    let mut t = Table::new(&[
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
    ]);
    let show = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
    for r in rows {
        t.row(vec![
            r.topic.clone(),
            r.partition.to_string(),
            show(r.current),
            show(r.log_end),
            show(r.lag()),
            r.owner.clone().unwrap_or_else(|| "-".to_string()),
        ]);
    }
    let known: Vec<i64> = rows.iter().filter_map(OffsetRow::lag).collect();
    let total: i64 = known.iter().sum();
    let mut out = t.render();
    out.push('\n');
    if known.len() == rows.len() {
        out.push_str(&format!("Total lag: {total}\n"));
    } else {
        out.push_str(&format!(
            "Total lag: {total} (over the {} of {} partitions whose lag is known)\n",
            known.len(),
            rows.len()
        ));
    }
    out
}

/// The message for a group that does not exist.
pub fn not_found(group: &str) -> ToolError {
    ToolError::Message(format!("consumer group '{group}' does not exist"))
}

/// Runs `sluice group lag`.
pub async fn run(admin: &Admin, args: &LagArgs) -> Result<bool, ToolError> {
    let desc = admin.describe(&args.group).await?;
    let rows = offsets(admin, &desc).await?;
    if rows.is_empty() {
        if !desc.exists() {
            return Err(not_found(&args.group));
        }
        outln!(
            "Consumer group '{}' ({}) has no committed offsets and no assigned partitions.",
            args.group,
            desc.state
        );
        return Ok(true);
    }
    if desc.members.is_empty() {
        eprintln!("Consumer group '{}' has no active members.", args.group);
    }
    out!("{}", render(&rows));
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(p: i32, current: Option<i64>, end: Option<i64>, owner: Option<&str>) -> OffsetRow {
        OffsetRow {
            topic: "t".into(),
            partition: p,
            current,
            log_end: end,
            owner: owner.map(String::from),
        }
    }

    #[test]
    fn renders_lag_and_total() {
        let out = render(&[
            row(0, Some(5), Some(20), Some("m-1")),
            row(1, Some(20), Some(20), None),
        ]);
        assert_eq!(
            out,
            "TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID\n\
             t      0          5               20              15   m-1\n\
             t      1          20              20              0    -\n\
             \n\
             Total lag: 15\n"
        );
    }

    #[test]
    fn unknown_values_are_dashes() {
        let out = render(&[
            row(0, None, Some(20), Some("m")),
            row(1, Some(3), Some(4), None),
        ]);
        assert!(
            out.contains("t      0          -               20              -    m\n"),
            "{out}"
        );
        assert!(
            out.contains("Total lag: 1 (over the 1 of 2 partitions"),
            "{out}"
        );
    }
}
