//! `sluice topic describe`: Metadata and overridden configs of topics.

use crate::tools::common::{code_text, ToolError};
use crate::tools::configs::{self, ConfigValue, Resource};
use crate::tools::table::Table;
use sluice_net::client::{Cluster, TopicMetadata};

/// UNKNOWN_TOPIC_OR_PARTITION.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// Options of `sluice topic describe`.
#[derive(clap::Args, Debug, Clone)]
pub struct DescribeArgs {
    /// The topics to describe (default: every topic but the internal ones).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
}

/// Kafka's text form of a topic id: URL-safe base64 without padding (22 characters).
pub fn topic_id_text(id: &[u8; 16]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    for chunk in id.chunks(3) {
        let mut n = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            n |= u32::from(*b) << (16 - 8 * i);
        }
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Node ids as `1000,1001` (`-` for none).
fn nodes(ids: &[i32]) -> String {
    if ids.is_empty() {
        return "-".to_string();
    }
    let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    ids.join(",")
}

/// The description of one topic: a summary line, its overridden configs, and a partition table
/// (with an OFFLINE column of the replicas on brokers that are not live, when there are any).
pub fn render(name: &str, t: &TopicMetadata, configs: Result<&[ConfigValue], String>) -> String {
    let replication = t.partitions.values().next().map_or(0, |p| p.replicas.len());
    let mut out = format!(
        "Topic: {name}  TopicId: {}  PartitionCount: {}  ReplicationFactor: {replication}\n",
        topic_id_text(&t.topic_id),
        t.partitions.len()
    );
    let configs = match configs {
        Ok(c) => {
            let set: Vec<String> = c
                .iter()
                .filter(|c| c.is_overridden())
                .map(|c| format!("{}={}", c.name, c.shown_value()))
                .collect();
            if set.is_empty() {
                "(none overridden)".to_string()
            } else {
                set.join(", ")
            }
        }
        Err(e) => format!("(could not be read: {e})"),
    };
    out.push_str(&format!("Configs: {configs}\n"));
    let any_offline = t
        .partitions
        .values()
        .any(|p| !p.offline_replicas.is_empty());
    let headers: &[&str] = if any_offline {
        &["PARTITION", "LEADER", "REPLICAS", "ISR", "OFFLINE"]
    } else {
        &["PARTITION", "LEADER", "REPLICAS", "ISR"]
    };
    let mut table = Table::new(headers);
    for (index, p) in &t.partitions {
        let leader = if p.leader >= 0 {
            p.leader.to_string()
        } else {
            "none".to_string()
        };
        table.row(vec![
            index.to_string(),
            leader,
            nodes(&p.replicas),
            nodes(&p.isr),
            nodes(&p.offline_replicas),
        ]);
    }
    out.push_str(&table.render());
    out
}

/// Runs `sluice topic describe`; false if a topic does not exist or could not be described.
pub async fn run(cluster: &Cluster, args: &DescribeArgs) -> Result<bool, ToolError> {
    let md = if args.names.is_empty() {
        cluster.refresh_all().await?
    } else {
        cluster.refresh(&args.names).await?
    };
    let mut ok = true;
    let mut found = Vec::new();
    for (name, t) in &md.topics {
        let wanted = if args.names.is_empty() {
            !t.is_internal
        } else {
            args.names.contains(name)
        };
        match t.error_code {
            _ if !wanted => {}
            0 => found.push((name.clone(), t)),
            UNKNOWN_TOPIC_OR_PARTITION => {
                eprintln!("sluice topic: topic '{name}' does not exist (`sluice topic list` lists the topics)");
                ok = false;
            }
            code => {
                eprintln!("sluice topic: topic '{name}': {}", code_text(code));
                ok = false;
            }
        }
    }
    let resources: Vec<Resource> = found
        .iter()
        .map(|(n, _)| Resource::Topic(n.clone()))
        .collect();
    let configs = configs::describe(cluster, &resources).await?;
    for (i, ((name, t), c)) in found.iter().zip(&configs).enumerate() {
        if i > 0 {
            outln!();
        }
        let c = c.as_ref().map(|c| c.as_slice()).map_err(|e| e.to_string());
        ok &= c.is_ok();
        out!("{}", render(name, t, c));
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_net::client::PartitionMetadata;
    use std::collections::BTreeMap;

    #[test]
    fn topic_ids_are_kafka_base64() {
        assert_eq!(topic_id_text(&[0; 16]), "AAAAAAAAAAAAAAAAAAAAAA");
        let id = [
            0xfb, 0xff, 0xbf, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
            0x0b, 0xff,
        ];
        assert_eq!(topic_id_text(&id), "-_-_AAECAwQFBgcICQoL_w");
    }

    #[test]
    fn renders_summary_configs_and_partitions() {
        let p = |leader: i32| PartitionMetadata {
            leader,
            error_code: 0,
            replicas: vec![1000],
            isr: if leader < 0 { vec![] } else { vec![1000] },
            offline_replicas: vec![],
        };
        let t = TopicMetadata {
            error_code: 0,
            topic_id: [0; 16],
            is_internal: false,
            partitions: BTreeMap::from([(0, p(1000)), (1, p(-1))]),
        };
        let configs = [ConfigValue {
            name: "retention.ms".into(),
            value: Some("1000".into()),
            source: 1,
            sensitive: false,
        }];
        assert_eq!(
            render("orders", &t, Ok(&configs)),
            "Topic: orders  TopicId: AAAAAAAAAAAAAAAAAAAAAA  PartitionCount: 2  ReplicationFactor: 1\n\
             Configs: retention.ms=1000\n\
             PARTITION  LEADER  REPLICAS  ISR\n\
             0          1000    1000      1000\n\
             1          none    1000      -\n"
        );
    }

    #[test]
    fn offline_replicas_get_a_column_when_there_are_any() {
        let p = |replicas: Vec<i32>, isr: Vec<i32>, offline: Vec<i32>| PartitionMetadata {
            leader: isr.first().copied().unwrap_or(-1),
            error_code: 0,
            replicas,
            isr,
            offline_replicas: offline,
        };
        let t = TopicMetadata {
            error_code: 0,
            topic_id: [0; 16],
            is_internal: false,
            partitions: BTreeMap::from([
                (0, p(vec![1000, 2000, 3000], vec![1000, 2000], vec![3000])),
                (1, p(vec![2000, 1000], vec![2000, 1000], vec![])),
            ]),
        };
        assert_eq!(
            render("orders", &t, Ok(&[])),
            "Topic: orders  TopicId: AAAAAAAAAAAAAAAAAAAAAA  PartitionCount: 2  ReplicationFactor: 3\n\
             Configs: (none overridden)\n\
             PARTITION  LEADER  REPLICAS        ISR        OFFLINE\n\
             0          1000    1000,2000,3000  1000,2000  3000\n\
             1          2000    2000,1000       2000,1000  -\n"
        );
    }
}
