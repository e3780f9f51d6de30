//! Bad input on some connections never hurts the others: while a well-formed
//! producer keeps producing, raw connections send garbage, torn and oversized
//! frames, corrupt and old-format batches and an unsupported ApiVersions. Each
//! gets Kafka's answer (an error code or a closed connection), the broker
//! stays up, and every message of the good producer is delivered and readable.
mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use common::*;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::records::{Compression, IEEE};
use rand::{Rng, RngCore, SeedableRng};
use rdkafka::message::Message;

const MAX_REQUEST: usize = 1024 * 1024;

fn produce_request(topic: &str, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])])
}

/// Sends a Produce with `records` and returns the partition's error code.
/// The connection must stay usable afterwards (checked with ApiVersions).
fn produce_error(broker: &Broker, topic: &str, records: Bytes) -> i16 {
    let mut c = RawClient::connect_negotiated(broker.addr(0));
    let v = c.version::<ProduceRequest>(9);
    let resp = c
        .send(&produce_request(topic, records), v)
        .expect("no Produce response (connection closed?)");
    let code = resp.responses[0].partition_responses[0].error_code;
    // An error response is not a reason to drop the connection.
    c.negotiate();
    code
}

fn valid_batch() -> Bytes {
    let v = filler(7, 300);
    encode_batch(
        &[
            (Some(b"a"), Some(&v[..])),
            (Some(b"b"), Some(b"second")),
            (None, Some(b"third")),
        ],
        1_700_000_000_000,
        Compression::None,
    )
}

/// The batch with one byte of its records flipped: its CRC no longer matches.
fn corrupt_crc_batch() -> Bytes {
    let mut b = BytesMut::from(&valid_batch()[..]);
    let n = b.len();
    b[n - 10] ^= 0xff;
    let b = b.freeze();
    let pos = scan_batches(&b)[0];
    assert!(!batch_crc_ok(&b, &pos));
    b
}

/// A legacy message set with one magic-1 message (its own CRC-32 valid).
fn magic1_message_set() -> Bytes {
    let mut msg = BytesMut::new();
    msg.put_i8(1); // magic
    msg.put_i8(0); // attributes
    msg.put_i64(1_700_000_000_000); // timestamp
    msg.put_i32(-1); // null key
    let value = b"old format";
    msg.put_i32(value.len() as i32);
    msg.extend_from_slice(value);
    let crc = IEEE.checksum(&msg);
    let mut set = BytesMut::new();
    set.put_i64(0); // offset
    set.put_i32(4 + msg.len() as i32); // message size
    set.put_u32(crc);
    set.extend_from_slice(&msg);
    set.freeze()
}

#[test]
fn malformed_input_is_contained() {
    bounded(Duration::from_secs(600), || {
        let mut broker = Broker::builder()
            .set("socket.request.max.bytes", MAX_REQUEST)
            .start();
        let bs = broker.bootstrap();
        let good_topic = unique("malformed-good");
        let raw_topic = unique("malformed-raw");
        create_topic(&bs, &good_topic, 2);
        create_topic(&bs, &raw_topic, 1);

        // The well-behaved producer, running throughout.
        let (p, log) = producer(&bs, &[("acks", "all"), ("linger.ms", "5")]);
        let p = Arc::new(p);
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let sender = {
            let (p, stop, sent, topic) =
                (p.clone(), stop.clone(), sent.clone(), good_topic.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(300);
                let mut id = 0;
                // At least 2,000 messages, then on until the bad traffic is over.
                while id < 2_000 || (!stop.load(Ordering::SeqCst) && id < 200_000) {
                    let m = Msg {
                        key: Some(format!("k{id}").into_bytes()),
                        value: Some(format!("good-{id}").into_bytes()),
                        ..Default::default()
                    };
                    send(&p, &topic, id, &m, deadline);
                    id += 1;
                    sent.store(id, Ordering::SeqCst);
                    if id % 50 == 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            })
        };
        let ok = wait_until(Duration::from_secs(60), Duration::from_millis(10), || {
            log.acked() >= 100
        });
        assert!(ok, "the good producer got no acknowledgements");

        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);

        // 1. Pure random bytes, then close. Whatever the broker makes of them,
        //    it must not fall over.
        for len in [3usize, 64, 4096, 100_000] {
            let mut c = RawClient::connect(broker.addr(0));
            let mut junk = vec![0u8; len];
            rng.fill_bytes(&mut junk);
            let _ = c.write_raw(&junk);
            let _ = c.closed_by_peer_within(Duration::from_millis(300));
            c.shutdown();
        }
        broker.assert_alive();

        // 2. A well-framed request with an unknown API key: connection closed.
        {
            let mut c = RawClient::connect(broker.addr(0));
            let mut body = BytesMut::new();
            body.put_i16(32_000); // api key
            body.put_i16(0);
            body.put_i32(1);
            body.put_i16(-1); // null client id
            for _ in 0..16 {
                body.put_u8(rng.gen());
            }
            let mut f = BytesMut::new();
            f.put_i32(body.len() as i32);
            f.extend_from_slice(&body);
            c.write_raw(&f).unwrap();
            assert!(
                c.closed_by_peer_within(Duration::from_secs(10)),
                "a request with unknown API key 32000 did not get the connection closed"
            );
        }

        // 3. Torn frames: a frame cut short, then the client goes away.
        for cut in [1usize, 2, 5, 12, 20] {
            let mut c = RawClient::connect(broker.addr(0));
            let f = api_versions_frame(3, 7);
            let _ = c.write_raw(&f[..cut.min(f.len() - 1)]);
            c.shutdown();
        }
        // ... and a frame announcing more than it sends, left hanging open
        // while the rest goes on (closed at the end of the test).
        let mut hanging = RawClient::connect(broker.addr(0));
        {
            let mut f = BytesMut::new();
            f.put_i32(1000);
            f.extend_from_slice(&[0u8; 10]);
            hanging.write_raw(&f).unwrap();
        }
        broker.assert_alive();

        // 4. A frame larger than socket.request.max.bytes: connection closed
        //    without the broker reading (or buffering) the announced size.
        for size in [MAX_REQUEST as i32 + 1, 64 * 1024 * 1024, i32::MAX] {
            let mut c = RawClient::connect(broker.addr(0));
            let mut f = BytesMut::new();
            f.put_i32(size);
            f.extend_from_slice(&[0u8; 1024]);
            let _ = c.write_raw(&f);
            assert!(
                c.closed_by_peer_within(Duration::from_secs(10)),
                "a {size}-byte frame (limit {MAX_REQUEST}) did not get the connection closed"
            );
        }
        // A negative size is garbage too.
        {
            let mut c = RawClient::connect(broker.addr(0));
            let _ = c.write_raw(&(-5i32).to_be_bytes());
            assert!(
                c.closed_by_peer_within(Duration::from_secs(10)),
                "a negative frame size did not get the connection closed"
            );
        }
        broker.assert_alive();

        // 5. A batch whose CRC is wrong: CORRUPT_MESSAGE, nothing appended.
        let code = produce_error(&broker, &raw_topic, corrupt_crc_batch());
        assert_eq!(code, errors::CORRUPT_MESSAGE, "Produce with a bad CRC");

        // 6. A magic-1 message set: refused (Kafka: UNSUPPORTED_FOR_MESSAGE_FORMAT,
        //    CORRUPT_MESSAGE or INVALID_RECORD depending on the path).
        let code = produce_error(&broker, &raw_topic, magic1_message_set());
        assert!(
            [
                errors::UNSUPPORTED_FOR_MESSAGE_FORMAT,
                errors::CORRUPT_MESSAGE,
                errors::INVALID_RECORD
            ]
            .contains(&code),
            "Produce with a magic-1 message set got error code {code}"
        );
        broker.assert_alive();
        assert_eq!(
            watermarks(&bs, &raw_topic, 0),
            (0, 0),
            "a rejected batch was appended"
        );

        // A valid batch on the same kind of connection still works.
        assert_eq!(
            produce_error(&broker, &raw_topic, valid_batch()),
            errors::NONE
        );
        assert_eq!(watermarks(&bs, &raw_topic, 0), (0, 3));

        // 7. ApiVersions with a version the broker does not know: the v0-format
        //    response with UNSUPPORTED_VERSION and (at least) ApiVersions'
        //    own version range, so that the client can retry.
        {
            let mut c = RawClient::connect(broker.addr(0));
            c.write_raw(&api_versions_frame(99, 4242)).unwrap();
            let mut resp = c.read_frame().expect("no response to ApiVersions v99");
            let corr = bytes::Buf::get_i32(&mut resp);
            assert_eq!(corr, 4242, "correlation id");
            let r =
                ApiVersionsResponse::decode(&mut resp, 0).expect("decode v0 ApiVersionsResponse");
            assert_eq!(
                r.error_code,
                errors::UNSUPPORTED_VERSION,
                "ApiVersions v99 error code"
            );
            let av = r
                .api_keys
                .iter()
                .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                .expect("ApiVersions in the API list");
            assert!(
                av.min_version == 0 && av.max_version >= 3,
                "ApiVersions range {av:?}"
            );
            // (Kafka lists only ApiVersions itself here; more is fine.)
            // The client may now retry with a version from the list.
            let req = ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("sluice-tests"))
                .with_client_software_version(StrBytes::from_static_str("0.1"));
            let r = c
                .send(&req, 3)
                .expect("ApiVersions v3 after the v99 answer");
            assert_eq!(r.error_code, 0);
        }

        // Oversized but legal-looking: a Produce just above the limit.
        {
            let mut c = RawClient::connect_negotiated(broker.addr(0));
            let v = c.version::<ProduceRequest>(9);
            let big = filler(99, MAX_REQUEST + 1000);
            let batch = encode_batch(
                &[(None, Some(&big[..]))],
                1_700_000_000_000,
                Compression::None,
            );
            let (_, frame) = c.frame(&produce_request(&raw_topic, batch), v);
            assert!(frame.len() > MAX_REQUEST + 4);
            let _ = c.write_raw(&frame);
            assert!(
                c.closed_by_peer_within(Duration::from_secs(10)),
                "a Produce larger than socket.request.max.bytes did not get the connection closed"
            );
        }

        broker.assert_alive();
        hanging.shutdown();

        // The good producer was never disturbed.
        stop.store(true, Ordering::SeqCst);
        sender.join().expect("sender");
        let n = sent.load(Ordering::SeqCst);
        wait_delivered(&p, &log, n as u64, Duration::from_secs(120));
        assert_eq!(
            log.failed(),
            0,
            "good producer failures: {:?}",
            log.first_failures(10)
        );
        let acked = std::mem::take(&mut *log.acked.lock().unwrap());
        drop(p);
        let mut ranges = Vec::new();
        let mut total = 0;
        for part in 0..2 {
            let (_, hi) = watermarks(&bs, &good_topic, part);
            total += hi;
            ranges.push((part, 0, hi));
        }
        assert_eq!(total as usize, n);
        let mut seen = vec![false; n];
        let mut bad = Vec::new();
        let rep = consume(
            &bs,
            &good_topic,
            &ranges,
            Duration::from_secs(120),
            Duration::from_millis(300),
            |m| {
                let id = m
                    .payload()
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|s| s.strip_prefix("good-"))
                    .and_then(|s| s.parse::<usize>().ok())
                    .filter(|i| *i < n);
                match id {
                    Some(i)
                        if !seen[i]
                            && m.key() == Some(format!("k{i}").as_bytes())
                            && acked.get(&i)
                                == Some(&Acked {
                                    partition: m.partition(),
                                    offset: m.offset(),
                                }) =>
                    {
                        seen[i] = true
                    }
                    _ if bad.len() < 10 => {
                        bad.push(format!("p{}@{}: {id:?}", m.partition(), m.offset()))
                    }
                    _ => {}
                }
            },
        );
        assert!(rep.errors.is_empty(), "consumer errors: {:?}", rep.errors);
        assert!(bad.is_empty(), "unexpected messages: {bad:?}");
        assert!(
            seen.iter().all(|s| *s),
            "some good messages were not read back"
        );

        broker.assert_alive();
        broker.stop();
    })
}
