//! `sluice group reset-offsets`: plan new committed offsets, and commit them with `--execute`.

use super::admin::{Admin, TopicPartition};
use super::datetime::parse_datetime;
use crate::tools::common::{code_text, ToolError};
use crate::tools::table::Table;
use clap::ArgGroup;
use sluice_net::client::{ListedOffset, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, READ_UNCOMMITTED};
use std::collections::BTreeMap;

/// Options of `sluice group reset-offsets`.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "Examples:
  sluice group reset-offsets app --topic orders --to-earliest          # print the plan only
  sluice group reset-offsets app --topic orders:0,1 --shift-by -100 --execute
  sluice group reset-offsets app --all-topics --to-datetime 2024-05-01T00:00:00Z --execute")]
#[command(group(ArgGroup::new("scope").required(true).args(["topics", "all_topics"])))]
#[command(group(
    ArgGroup::new("target")
        .required(true)
        .args(["to_earliest", "to_latest", "to_offset", "to_datetime", "to_timestamp", "shift_by"])
))]
pub struct ResetArgs {
    /// The group whose offsets to reset; it must have no active members for --execute.
    pub group: String,
    /// A topic (every partition) or TOPIC:P,P,… (those partitions); repeatable.
    #[arg(long = "topic", value_name = "TOPIC[:P,P...]", value_parser = parse_topic_spec)]
    pub topics: Vec<TopicSpec>,
    /// Every topic the group has committed offsets for.
    #[arg(long)]
    pub all_topics: bool,
    /// To the log start offset.
    #[arg(long)]
    pub to_earliest: bool,
    /// To the log end offset (lag 0).
    #[arg(long)]
    pub to_latest: bool,
    /// To this offset (kept within the log start and log end offsets).
    #[arg(long, value_name = "OFFSET")]
    pub to_offset: Option<i64>,
    /// To the first offset whose timestamp is at or after this UTC time
    /// (YYYY-MM-DDTHH:MM:SS[.sss], optionally ending in Z or ±HH:MM); the log end offset where
    /// every record is older.
    #[arg(long, value_name = "DATETIME", value_parser = parse_datetime)]
    pub to_datetime: Option<i64>,
    /// Like --to-datetime, with the time in milliseconds since the UNIX epoch.
    #[arg(long, value_name = "MS")]
    pub to_timestamp: Option<i64>,
    /// Move the committed offset by N (negative: back), kept within the log.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub shift_by: Option<i64>,
    /// Commit the new offsets (without it, only the plan is printed).
    #[arg(long, conflicts_with = "dry_run")]
    pub execute: bool,
    /// Only print the plan (the default).
    #[arg(long)]
    pub dry_run: bool,
}

/// `--topic` value: a topic and, optionally, some of its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// The topic.
    pub topic: String,
    /// The partitions named (empty: all of them).
    pub partitions: Vec<i32>,
}

/// Parses `TOPIC` or `TOPIC:P,P,…`.
pub fn parse_topic_spec(s: &str) -> Result<TopicSpec, String> {
    let (topic, parts) = match s.split_once(':') {
        Some((t, p)) => (t, Some(p)),
        None => (s, None),
    };
    if topic.is_empty() {
        return Err(format!(
            "'{s}' names no topic (expected TOPIC or TOPIC:P,P,...)"
        ));
    }
    let partitions = match parts {
        None => Vec::new(),
        Some(p) => p
            .split(',')
            .map(|x| {
                x.trim()
                    .parse::<i32>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| format!("'{x}' in '{s}' is not a partition number"))
            })
            .collect::<Result<Vec<i32>, String>>()?,
    };
    Ok(TopicSpec {
        topic: topic.to_string(),
        partitions,
    })
}

/// Where the offsets go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The log start offset.
    Earliest,
    /// The log end offset.
    Latest,
    /// A given offset.
    Offset(i64),
    /// The first offset at or after a time (ms).
    Timestamp(i64),
    /// The committed offset moved by an amount.
    ShiftBy(i64),
}

impl ResetArgs {
    /// The target the options name (clap makes sure there is exactly one).
    pub fn target(&self) -> Target {
        if self.to_earliest {
            Target::Earliest
        } else if self.to_latest {
            Target::Latest
        } else if let Some(o) = self.to_offset {
            Target::Offset(o)
        } else if let Some(t) = self.to_datetime.or(self.to_timestamp) {
            Target::Timestamp(t)
        } else if let Some(n) = self.shift_by {
            Target::ShiftBy(n)
        } else {
            Target::Earliest
        }
    }
}

/// What is known about one partition when planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The committed offset, if any.
    pub current: Option<i64>,
    /// The log start offset.
    pub start: i64,
    /// The log end offset.
    pub end: i64,
    /// For [`Target::Timestamp`]: the offset ListOffsets found (-1: none).
    pub by_time: i64,
}

/// The new offset of one partition, and a note when it had to be moved into the log.
pub fn new_offset(target: Target, b: Bounds) -> Result<(i64, Option<String>), String> {
    let clamp = |o: i64| -> (i64, Option<String>) {
        if o < b.start {
            (
                b.start,
                Some(format!(
                    "offset {o} is before the log start offset {}; using {}",
                    b.start, b.start
                )),
            )
        } else if o > b.end {
            (
                b.end,
                Some(format!(
                    "offset {o} is past the log end offset {}; using {}",
                    b.end, b.end
                )),
            )
        } else {
            (o, None)
        }
    };
    Ok(match target {
        Target::Earliest => (b.start, None),
        Target::Latest => (b.end, None),
        Target::Offset(o) => clamp(o),
        Target::Timestamp(_) if b.by_time >= 0 => (b.by_time, None),
        Target::Timestamp(_) => (b.end, None),
        Target::ShiftBy(n) => match b.current {
            Some(c) => clamp(c.saturating_add(n)),
            None => return Err("it has no committed offset to shift".to_string()),
        },
    })
}

/// One line of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRow {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The committed offset now.
    pub current: Option<i64>,
    /// The offset to commit.
    pub new: i64,
}

/// The TOPIC / PARTITION / CURRENT-OFFSET / NEW-OFFSET table.
pub fn render_plan(plan: &[PlanRow]) -> String {
    let mut t = Table::new(&["TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"]);
    for r in plan {
        t.row(vec![
            r.topic.clone(),
            r.partition.to_string(),
            r.current.map_or("-".to_string(), |c| c.to_string()),
            r.new.to_string(),
        ]);
    }
    t.render()
}

/// Kafka's refusal for a group with active members.
pub fn active_refusal(group: &str, state: &str) -> String {
    format!(
        "Assignments can only be reset if the group '{group}' is inactive, but the current state is {state}."
    )
}

/// The partitions the options select.
async fn select(
    admin: &Admin,
    args: &ResetArgs,
    committed: &BTreeMap<TopicPartition, i64>,
) -> Result<Vec<TopicPartition>, ToolError> {
    if args.all_topics {
        let all: Vec<TopicPartition> = committed
            .iter()
            .filter(|(_, o)| **o >= 0)
            .map(|(tp, _)| tp.clone())
            .collect();
        if all.is_empty() {
            return Err(ToolError::Message(format!(
                "group '{}' has no committed offsets, so --all-topics selects nothing; name the partitions with --topic",
                args.group
            )));
        }
        return Ok(all);
    }
    let names: Vec<String> = args.topics.iter().map(|s| s.topic.clone()).collect();
    let md = admin.cluster().refresh(&names).await?;
    let mut out = Vec::new();
    for spec in &args.topics {
        let tm = md
            .topics
            .get(&spec.topic)
            .filter(|t| t.error_code == 0 && !t.partitions.is_empty())
            .ok_or_else(|| ToolError::Message(format!("topic '{}' does not exist", spec.topic)))?;
        if spec.partitions.is_empty() {
            out.extend(tm.partitions.keys().map(|p| (spec.topic.clone(), *p)));
        }
        for p in &spec.partitions {
            if !tm.partitions.contains_key(p) {
                return Err(ToolError::Message(format!(
                    "topic '{}' has no partition {p} (it has {})",
                    spec.topic,
                    tm.partitions.len()
                )));
            }
            out.push((spec.topic.clone(), *p));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// ListOffsets at `timestamp` for `partitions`, failing on any partition error.
async fn offsets_at(
    admin: &Admin,
    partitions: &[TopicPartition],
    timestamp: i64,
) -> Result<BTreeMap<TopicPartition, ListedOffset>, ToolError> {
    let found = admin
        .cluster()
        .list_offsets(partitions, timestamp, READ_UNCOMMITTED)
        .await?;
    if let Some(((t, p), o)) = found.iter().find(|(_, o)| o.error_code != 0) {
        return Err(ToolError::Message(format!(
            "cannot read the offsets of {t}-{p}: {}",
            code_text(o.error_code)
        )));
    }
    Ok(found)
}

/// Runs `sluice group reset-offsets`.
pub async fn run(admin: &Admin, args: &ResetArgs) -> Result<bool, ToolError> {
    let desc = admin.describe(&args.group).await?;
    if args.execute && !desc.is_inactive() {
        return Err(ToolError::Message(active_refusal(&args.group, &desc.state)));
    }
    let committed = admin.committed(&args.group).await?;
    let partitions = select(admin, args, &committed).await?;
    let starts = offsets_at(admin, &partitions, EARLIEST_TIMESTAMP).await?;
    let ends = offsets_at(admin, &partitions, LATEST_TIMESTAMP).await?;
    let target = args.target();
    let by_time = match target {
        Target::Timestamp(ts) => Some(offsets_at(admin, &partitions, ts).await?),
        _ => None,
    };
    let mut plan = Vec::new();
    for tp in &partitions {
        let offset =
            |m: &BTreeMap<TopicPartition, ListedOffset>| m.get(tp).map_or(-1, |o| o.offset);
        let bounds = Bounds {
            current: committed.get(tp).copied().filter(|o| *o >= 0),
            start: offset(&starts),
            end: offset(&ends),
            by_time: by_time.as_ref().map_or(-1, offset),
        };
        let (new, note) = new_offset(target, bounds).map_err(|why| {
            ToolError::Message(format!(
                "cannot shift the offset of {}-{}: {why}",
                tp.0, tp.1
            ))
        })?;
        if let Some(note) = note {
            eprintln!("note: {}-{}: {note}", tp.0, tp.1);
        }
        plan.push(PlanRow {
            topic: tp.0.clone(),
            partition: tp.1,
            current: bounds.current,
            new,
        });
    }
    out!("{}", render_plan(&plan));
    outln!();
    if !args.execute {
        outln!("Dry run: nothing was committed. Add --execute to commit these offsets.");
        if !desc.is_inactive() {
            outln!(
                "Note: the group is {}; --execute is refused until it has no active members.",
                desc.state
            );
        }
        return Ok(true);
    }
    let offsets: BTreeMap<TopicPartition, i64> = plan
        .iter()
        .map(|r| ((r.topic.clone(), r.partition), r.new))
        .collect();
    let results = admin.commit(&args.group, &offsets).await?;
    let failed: Vec<_> = offsets
        .keys()
        .map(|tp| (tp, results.get(tp).copied()))
        .filter(|(_, code)| *code != Some(0))
        .collect();
    if failed.is_empty() {
        let n = offsets.len();
        outln!(
            "Committed the new offsets of group '{}' ({n} partition{}).",
            args.group,
            if n == 1 { "" } else { "s" }
        );
        return Ok(true);
    }
    for ((t, p), code) in failed {
        match code {
            Some(code) => eprintln!(
                "Could not commit the offset of {t}-{p}: {}",
                code_text(code)
            ),
            None => eprintln!(
                "Could not commit the offset of {t}-{p}: the broker did not answer for it"
            ),
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Bounds = Bounds {
        current: Some(10),
        start: 5,
        end: 20,
        by_time: -1,
    };

    #[test]
    fn topic_specs() {
        assert_eq!(
            parse_topic_spec("orders").unwrap(),
            TopicSpec {
                topic: "orders".into(),
                partitions: vec![]
            }
        );
        assert_eq!(
            parse_topic_spec("orders:0,2").unwrap().partitions,
            vec![0, 2]
        );
        assert!(parse_topic_spec("orders:x").is_err());
        assert!(parse_topic_spec(":1").is_err());
        assert!(parse_topic_spec("orders:-1").is_err());
    }

    #[test]
    fn targets_and_clamping() {
        assert_eq!(new_offset(Target::Earliest, B).unwrap(), (5, None));
        assert_eq!(new_offset(Target::Latest, B).unwrap(), (20, None));
        assert_eq!(new_offset(Target::Offset(12), B).unwrap(), (12, None));
        assert_eq!(new_offset(Target::Offset(2), B).unwrap().0, 5);
        assert_eq!(new_offset(Target::Offset(99), B).unwrap().0, 20);
        assert!(new_offset(Target::Offset(99), B).unwrap().1.is_some());
        assert_eq!(new_offset(Target::ShiftBy(-3), B).unwrap(), (7, None));
        assert_eq!(new_offset(Target::ShiftBy(-30), B).unwrap().0, 5);
        assert_eq!(new_offset(Target::ShiftBy(30), B).unwrap().0, 20);
        let none = Bounds { current: None, ..B };
        assert!(new_offset(Target::ShiftBy(1), none).is_err());
        let found = Bounds { by_time: 8, ..B };
        assert_eq!(new_offset(Target::Timestamp(1), found).unwrap().0, 8);
        assert_eq!(new_offset(Target::Timestamp(1), B).unwrap().0, 20);
    }

    #[test]
    fn refusal_is_kafkas_sentence() {
        assert_eq!(
            active_refusal("g", "Stable"),
            "Assignments can only be reset if the group 'g' is inactive, but the current state is Stable."
        );
    }
}
