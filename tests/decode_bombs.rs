//! Requests whose lengths and counts claim far more than the frame holds never make the broker
//! allocate for them. Each frame below once aborted the whole process (kafka-protocol 0.18 sized
//! its vectors from the wire: see vendor/kafka-protocol/PATCHES.md). Now each gets its
//! connection closed, the broker stays up with its peak memory bounded, and a librdkafka
//! producer and consumer keep working.
mod common;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::*;

/// A size-prefixed frame around `body`.
fn framed(body: &[u8]) -> Bytes {
    let mut f = BytesMut::with_capacity(body.len() + 4);
    f.put_i32(body.len() as i32);
    f.put_slice(body);
    f.freeze()
}

/// A request header: v1 (client id as an INT16 string) and, when `flexible`, the empty tagged
/// fields of header v2.
fn header(api_key: i16, version: i16, flexible: bool) -> BytesMut {
    let mut h = BytesMut::new();
    h.put_i16(api_key);
    h.put_i16(version);
    h.put_i32(1);
    h.put_i16(0); // empty client id
    if flexible {
        h.put_u8(0); // no tagged fields
    }
    h
}

/// The largest unsigned varint a compact field can claim: 2^32 - 1.
const VARINT_MAX: [u8; 5] = [0xff, 0xff, 0xff, 0xff, 0x0f];

/// The frames that once aborted the broker, each with a name for failure messages.
fn bombs() -> Vec<(&'static str, Bytes)> {
    let mut out = Vec::new();
    // The 18 bytes from the report: Metadata v1 whose topic array claims 2^31-1 elements.
    out.push((
        "Metadata v1, INT32 array of 2^31-1",
        Bytes::from_static(&[
            0, 0, 0, 0x0e, 0, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0x7f, 0xff, 0xff, 0xff,
        ]),
    ));
    // Metadata v12: a compact topic array of 2^32-2 elements.
    let mut b = header(3, 12, true);
    b.put_slice(&VARINT_MAX);
    out.push(("Metadata v12, compact array varint bomb", framed(&b)));
    // Metadata v12: one topic whose compact (nullable) name claims 2^32-2 bytes.
    let mut b = header(3, 12, true);
    b.put_u8(2); // one topic
    b.put_slice(&[0u8; 16]); // topic id
    b.put_slice(&VARINT_MAX);
    out.push(("Metadata v12, compact string bomb", framed(&b)));
    // CreateTopics v7: a compact topic array bomb.
    let mut b = header(19, 7, true);
    b.put_slice(&VARINT_MAX);
    out.push(("CreateTopics v7, compact array bomb", framed(&b)));
    // Produce v9: transactional id null, acks, timeout, then a compact topic array bomb.
    let mut b = header(0, 9, true);
    b.put_u8(0); // null transactional id
    b.put_i16(-1);
    b.put_i32(1000);
    b.put_slice(&VARINT_MAX);
    out.push(("Produce v9, compact array bomb", framed(&b)));
    // Produce v9: one topic, one partition whose records claim 2^32-2 bytes.
    let mut b = header(0, 9, true);
    b.put_u8(0);
    b.put_i16(-1);
    b.put_i32(1000);
    b.put_u8(2); // one topic
    b.put_u8(2); // name "t"
    b.put_u8(b't');
    b.put_u8(2); // one partition
    b.put_i32(0);
    b.put_slice(&VARINT_MAX);
    out.push(("Produce v9, compact bytes bomb", framed(&b)));
    // JoinGroup v5 (not flexible): protocols array of 2^31-1.
    let mut b = header(11, 5, false);
    b.put_i16(1);
    b.put_u8(b'g');
    b.put_i32(10_000);
    b.put_i32(10_000);
    b.put_i16(0); // member id ""
    b.put_i16(-1); // no group instance id
    b.put_i16(8);
    b.put_slice(b"consumer");
    b.put_i32(i32::MAX);
    out.push(("JoinGroup v5, INT32 array of 2^31-1", framed(&b)));
    // OffsetCommit v2: a topic whose partition array claims 2^31-1 elements.
    let mut b = header(8, 2, false);
    b.put_i16(1);
    b.put_u8(b'g');
    b.put_i32(-1);
    b.put_i16(0);
    b.put_i64(-1);
    b.put_i32(1); // one topic
    b.put_i16(1);
    b.put_u8(b't');
    b.put_i32(i32::MAX);
    out.push(("OffsetCommit v2, nested INT32 array bomb", framed(&b)));
    out
}

#[test]
fn length_bombs_close_the_connection_and_the_broker_serves_on() {
    bounded(Duration::from_secs(300), || {
        let mut broker = Broker::builder().cores(2).start();
        let bs = broker.bootstrap();
        let pid = broker.pid().expect("broker pid");
        let before = peak_rss_kib(pid);
        for shard in 0..2 {
            for (name, frame) in bombs() {
                let mut c = RawClient::connect(broker.addr(shard));
                c.write_raw(&frame).expect("send");
                assert!(
                    c.closed_by_peer_within(Duration::from_secs(10)),
                    "{name}: the connection was not closed"
                );
                broker.assert_alive();
                // Another connection on the same shard is answered at once.
                RawClient::connect_negotiated(broker.addr(shard));
            }
        }
        let grown = peak_rss_kib(pid).saturating_sub(before);
        assert!(
            grown < 64 * 1024,
            "peak memory grew by {grown} KiB while decoding the bombs"
        );

        // A normal librdkafka client still produces and consumes.
        let topic = unique("after-bombs");
        create_topic(&bs, &topic, 2);
        let (p, log) = producer(&bs, &[("acks", "all")]);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        for id in 0..100 {
            let m = Msg {
                key: Some(format!("k{id}").into_bytes()),
                value: Some(format!("v{id}").into_bytes()),
                ..Default::default()
            };
            send(&p, &topic, id, &m, deadline);
        }
        wait_delivered(&p, &log, 100, Duration::from_secs(60));
        assert_eq!(log.failed(), 0, "{:?}", log.first_failures(3));
        let ranges: Vec<(i32, i64, i64)> = (0..2)
            .map(|p| {
                let (lo, hi) = watermarks(&bs, &topic, p);
                (p, lo, hi)
            })
            .collect();
        assert_eq!(ranges.iter().map(|(_, lo, hi)| hi - lo).sum::<i64>(), 100);
        let report = consume(
            &bs,
            &topic,
            &ranges,
            Duration::from_secs(60),
            Duration::ZERO,
            |_| {},
        );
        assert_eq!(report.messages, 100);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        broker.stop();
    });
}
