//! ListOffsets over a log of many small segments: earliest, latest, by
//! timestamp (offsets_for_times, also in middle segments and past the end),
//! and the max timestamp (-3, ListOffsets v7+).
mod common;

use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

const N: i64 = 3_000;
const TS0: i64 = 1_600_000_000_000;
const STEP: i64 = 10;

fn ts(offset: i64) -> i64 {
    TS0 + offset * STEP
}

/// Raw ListOffsets for partition 0: (error, timestamp, offset).
fn raw_list_offsets(
    broker: &Broker,
    topic: &str,
    timestamp: i64,
    min_version: i16,
) -> (i16, i64, i64) {
    let mut c = RawClient::connect_negotiated(broker.addr(0));
    let v = c.version::<ListOffsetsRequest>(9);
    assert!(
        v >= min_version,
        "broker supports ListOffsets only up to v{v}, need v{min_version}"
    );
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(0)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_current_leader_epoch(-1)
                .with_timestamp(timestamp)])]);
    let resp = c.send(&req, v).expect("ListOffsets");
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.timestamp, p.offset)
}

/// offsets_for_times for one timestamp, as a raw offset (-1 = none).
fn offset_for_time(c: &rdkafka::consumer::BaseConsumer, topic: &str, t: i64) -> i64 {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(t))
        .unwrap();
    let r = c
        .offsets_for_times(tpl, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("offsets_for_times({t}): {e}"));
    let e = r.find_partition(topic, 0).expect("partition in result");
    assert!(e.error().is_ok(), "offsets_for_times({t}): {:?}", e.error());
    match e.offset() {
        Offset::Offset(o) => o,
        Offset::End => -1,
        other => panic!("offsets_for_times({t}) gave {other:?}"),
    }
}

#[test]
fn list_offsets_across_segments() {
    bounded(Duration::from_secs(600), || {
        let mut broker = Broker::builder().set("log.segment.bytes", 16_384).start();
        let bs = broker.bootstrap();
        let topic = unique("list-offsets");
        create_topic(&bs, &topic, 1);

        let (p, log) = producer(
            &bs,
            &[("acks", "all"), ("linger.ms", "5"), ("batch.size", "4000")],
        );
        let deadline = Instant::now() + Duration::from_secs(120);
        for i in 0..N {
            let mut value = format!("{i}:").into_bytes();
            value.extend_from_slice(&filler(i as u64, 100));
            let m = Msg {
                key: Some(format!("k{i}").into_bytes()),
                value: Some(value),
                timestamp: Some(ts(i)),
                partition: Some(0),
                ..Default::default()
            };
            send(&p, &topic, i as usize, &m, deadline);
        }
        wait_delivered(&p, &log, N as u64, Duration::from_secs(120));
        assert_eq!(log.failed(), 0, "{:?}", log.first_failures(5));
        {
            let acked = log.acked.lock().unwrap();
            for i in 0..N {
                assert_eq!(acked[&(i as usize)].offset, i, "message {i} offset");
            }
        }
        drop(p);

        let segs = segment_files(&broker.partition_dir(&topic, 0));
        assert!(
            segs.len() >= 3,
            "want >= 3 segments with log.segment.bytes=16384, found {}",
            segs.len()
        );
        let bases: Vec<i64> = segs.iter().map(|s| segment_base(s)).collect();
        assert_eq!(bases[0], 0);
        eprintln!("segment base offsets: {bases:?}");

        // Probes: in every segment, its first offset and one in its middle;
        // each as an exact timestamp and as one between two messages.
        let mut probes = Vec::new();
        for (j, &b) in bases.iter().enumerate() {
            let end = bases.get(j + 1).copied().unwrap_or(N);
            for o in [b, (b + end) / 2, end - 1] {
                probes.push((ts(o), o)); // exact
                probes.push((ts(o) - STEP / 2, o)); // just before it: the first at or after
            }
        }
        probes.push((0, 0));
        probes.push((TS0 - 1, 0));
        probes.push((ts(N - 1) + 1, -1)); // past the end: none
        probes.push((ts(N - 1) + 1_000_000, -1));

        let check_all = |broker: &mut Broker, when: &str| {
            assert_eq!(watermarks(&bs, &topic, 0), (0, N), "{when}: watermarks");
            assert_eq!(
                raw_list_offsets(broker, &topic, -2, 1),
                (0, -1, 0),
                "{when}: raw earliest"
            );
            let (e, _, o) = raw_list_offsets(broker, &topic, -1, 1);
            assert_eq!((e, o), (0, N), "{when}: raw latest");
            let c = plain_consumer(&bs);
            for &(t, want) in &probes {
                assert_eq!(
                    offset_for_time(&c, &topic, t),
                    want,
                    "{when}: offsets_for_times({t})"
                );
            }
            // The raw answer also carries the found record's timestamp.
            for &(t, want) in probes.iter().filter(|(_, w)| *w >= 0).step_by(3) {
                assert_eq!(
                    raw_list_offsets(broker, &topic, t, 1),
                    (0, ts(want), want),
                    "{when}: raw ListOffsets by timestamp {t}"
                );
            }
            let (e, t, o) = raw_list_offsets(broker, &topic, ts(N - 1) + 1, 1);
            assert_eq!(
                (e, t, o),
                (0, -1, -1),
                "{when}: raw ListOffsets past the last timestamp"
            );
            // Max timestamp (KIP-734, v7+).
            assert_eq!(
                raw_list_offsets(broker, &topic, -3, 7),
                (0, ts(N - 1), N - 1),
                "{when}: max timestamp"
            );
        };
        check_all(&mut broker, "running");
        // Indexes must come back after a restart too.
        broker.restart();
        check_all(&mut broker, "after restart");
        broker.stop();
    })
}
