//! `sluice consume`: a topic's records to stdout, one line each, in the manner of Kafka's
//! `kafka-console-consumer.sh`.
//!
//! * [`start`] — `--from` and the offsets it resolves to.
//! * [`fetch`] — Fetch rounds against each partition's leader.
//! * [`format`] — `--format`.
//!
//! Exit status: 0 when it stopped as asked (--count records, or the end the partitions had at
//! start), 1 on a failure or when --timeout-ms passed without new records first, 2 for usage
//! errors.

pub mod fetch;
pub mod format;
pub mod start;

use crate::tools::common::{
    check_partition, code_text, count_of, run_tool, topic_partitions, CommonArgs, MissingTopic,
    ToolError,
};
use crate::tools::group::admin::Admin;
use fetch::{Fetcher, Position};
use format::Format;
use start::Start;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Longest a single fetch waits for new records.
const MAX_WAIT: Duration = Duration::from_millis(500);

/// Options of `sluice consume`.
#[derive(clap::Args, Debug, Clone)]
#[command(
    mut_arg("timeout_ms", |a| a.help(
        "How long connecting and each request may take, and how long to wait without any new \
         record before giving up, in milliseconds")),
    after_help = "Stops after --count records; without --count, once every partition has been \
read up to the end offset (high watermark) it had at start. If no new record arrives for \
--timeout-ms before that, it gives up with exit status 1. A summary goes to stderr.\n\n\
With --group, reading starts from the group's committed offsets (--from only for partitions \
with none) and the offsets reached are committed at the end as a standalone consumer \
(OffsetCommit with generation -1): there is no group membership, no rebalance, and the \
commit is refused while the group has active members."
)]
pub struct ConsumeArgs {
    /// Broker address and timeouts.
    #[command(flatten)]
    pub common: CommonArgs,
    /// The topic to read.
    #[arg(value_name = "TOPIC")]
    pub topic: String,
    /// Read only this partition (default: every partition).
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(i32).range(0..))]
    pub partition: Option<i32>,
    /// Where to start: earliest, latest, an OFFSET (needs --partition), or @TIMESTAMP_MS (also
    /// @YYYY-MM-DDTHH:MM:SS[Z]) for the first record at or after that time.
    #[arg(long = "from", value_name = "WHERE", default_value = "earliest", value_parser = start::parse_start)]
    pub from: Start,
    /// Stop after this many records.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Resume from and commit to this consumer group's offsets (standalone, see below).
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// How to print each record: %k key, %v value, %h headers (k=v,…), %t timestamp (ms),
    /// %p partition, %o offset, %% a percent sign, \t \n \\; or a preset: value (%v),
    /// key-value (%k\t%v), full (%p\t%o\t%t\t%k\t%h\t%v). A newline ends each record.
    #[arg(long, value_name = "FORMAT", default_value = "value", value_parser = Format::parse)]
    pub format: Format,
}

/// The partitions to read: the one asked for (checked to exist), or all of them.
async fn partitions(admin: &Admin, args: &ConsumeArgs) -> Result<Vec<i32>, ToolError> {
    let all = topic_partitions(admin.cluster(), &args.topic, MissingTopic::IsAnError).await?;
    match args.partition {
        None => Ok(all),
        Some(p) => check_partition(&args.topic, &all, p).map(|()| vec![p]),
    }
}

/// Where each partition starts and stops.
async fn positions(
    admin: &Admin,
    args: &ConsumeArgs,
    partitions: &[i32],
) -> Result<BTreeMap<i32, Position>, ToolError> {
    let cluster = admin.cluster();
    let ends = start::ends(cluster, &args.topic, partitions).await?;
    let mut starts = start::resolve(cluster, &args.topic, partitions, args.from, &ends).await?;
    if let Some(group) = &args.group {
        for ((t, p), offset) in admin.committed(group).await? {
            if t == args.topic && starts.contains_key(&p) {
                starts.insert(p, offset);
            }
        }
    }
    Ok(starts
        .into_iter()
        .map(|(p, next)| {
            let limit = match args.count {
                Some(_) => None,
                None => ends.get(&p).map(|e| (*e).max(next)),
            };
            (p, Position { next, limit })
        })
        .collect())
}

/// Commits the positions reached for the group; false if a partition's commit failed.
async fn commit(
    admin: &Admin,
    group: &str,
    topic: &str,
    positions: &BTreeMap<i32, Position>,
) -> Result<bool, ToolError> {
    let offsets = positions
        .iter()
        .map(|(p, pos)| ((topic.to_string(), *p), pos.next))
        .collect();
    let mut ok = true;
    for ((t, p), code) in admin.commit(group, &offsets).await? {
        if code != 0 {
            eprintln!(
                "sluice consume: could not commit the offset of {t}-{p} for group '{group}': {} \
                 (a standalone commit is refused while the group has active members)",
                code_text(code)
            );
            ok = false;
        }
    }
    let committed: Vec<String> = positions
        .iter()
        .map(|(p, pos)| format!("partition {p}: {}", pos.next))
        .collect();
    if ok {
        eprintln!(
            "Committed offsets of group '{group}' ({}).",
            committed.join(", ")
        );
    }
    Ok(ok)
}

async fn consume(args: &ConsumeArgs) -> Result<bool, ToolError> {
    let admin = Admin::new(
        args.common.connect("sluice-consume").await?,
        args.common.timeout(),
    );
    let partitions = partitions(&admin, args).await?;
    let mut positions = positions(&admin, args, &partitions).await?;
    let fetcher = Fetcher {
        cluster: admin.cluster(),
        topic: args.topic.clone(),
        max_wait: MAX_WAIT.min(args.common.timeout()),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    let mut closed = false;
    let mut last_progress = Instant::now();
    let mut timed_out = false;
    loop {
        let reached_count = args.count.is_some_and(|c| printed >= c);
        if closed || reached_count || positions.values().all(|p| p.done()) {
            break;
        }
        if last_progress.elapsed() >= args.common.timeout() {
            timed_out = true;
            break;
        }
        let progressed = fetcher
            .round(&mut positions, &mut |p, r| {
                closed = out.write_all(args.format.render(r, p).as_bytes()).is_err();
                printed += 1;
                !closed && args.count.is_none_or(|c| printed < c)
            })
            .await?;
        closed |= out.flush().is_err();
        if progressed {
            last_progress = Instant::now();
        }
    }
    let mut ok = !timed_out;
    eprintln!(
        "Consumed {} from topic '{}'.",
        count_of(printed, "record"),
        args.topic
    );
    if timed_out {
        let wanted = match args.count {
            Some(c) => format!("--count {c}"),
            None => "the end offsets at start".to_string(),
        };
        eprintln!(
            "sluice consume: gave up after {} ms without new records, before reaching {wanted}",
            args.common.timeout_ms
        );
    }
    if let Some(group) = &args.group {
        ok &= commit(&admin, group, &args.topic, &positions).await?;
    }
    Ok(ok)
}

/// Runs `sluice consume` and returns its exit status.
pub fn run(args: &ConsumeArgs) -> ExitCode {
    if matches!(args.from, Start::Offset(_)) && args.partition.is_none() {
        clap::Error::raw(
            clap::error::ErrorKind::MissingRequiredArgument,
            "--from OFFSET needs --partition P (offsets differ from partition to partition)\n",
        )
        .exit();
    }
    run_tool("sluice consume", consume(args))
}
