//! SCRAM credential management end to end (DescribeUserScramCredentials and
//! AlterUserScramCredentials over the raw protocol — the `rdkafka` crate does not expose them):
//! ApiVersions advertises both; an unknown user is RESOURCE_NOT_FOUND; an upsertion sent to one
//! shard is described by every shard with its mechanism and iterations; invalid upsertions get
//! Kafka's per-user errors; the metadata file keeps keys, not salted passwords; credentials
//! survive a restart and are gone after a deletion.
mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, ApiKey, DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;

const SHA_256: i8 = 1;
const SHA_512: i8 = 2;

const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const RESOURCE_NOT_FOUND: i16 = 91;
const DUPLICATE_RESOURCE: i16 = 92;
const UNACCEPTABLE_CREDENTIAL: i16 = 93;

/// A described user: (name, error code, error message, [(mechanism, iterations)]).
type Described = (String, i16, Option<String>, Vec<(i8, i32)>);

fn name(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// DescribeUserScramCredentials on `shard`; `None` asks for every user.
fn describe(broker: &Broker, shard: u16, users: Option<&[&str]>) -> Vec<Described> {
    let mut c = RawClient::connect_negotiated(broker.addr(shard));
    let req = DescribeUserScramCredentialsRequest::default().with_users(users.map(|users| {
        users
            .iter()
            .map(|u| UserName::default().with_name(name(u)))
            .collect()
    }));
    let resp = c.send(&req, 0).expect("DescribeUserScramCredentials");
    assert_eq!(resp.error_code, 0, "request-level error");
    resp.results
        .iter()
        .map(|r| {
            let message = r
                .error_message
                .as_ref()
                .map(|m| m.to_string())
                .filter(|m| !m.is_empty());
            let credentials = r
                .credential_infos
                .iter()
                .map(|c| (c.mechanism, c.iterations))
                .collect();
            (r.user.to_string(), r.error_code, message, credentials)
        })
        .collect()
}

fn describe_one(broker: &Broker, shard: u16, user: &str) -> Described {
    let mut out = describe(broker, shard, Some(&[user]));
    assert_eq!(out.len(), 1, "{out:?}");
    out.remove(0)
}

/// An upsertion of `user` with a 32-byte salted password derived from `seed`.
fn upsertion(user: &str, mechanism: i8, iterations: i32, seed: u64) -> ScramCredentialUpsertion {
    ScramCredentialUpsertion::default()
        .with_name(name(user))
        .with_mechanism(mechanism)
        .with_iterations(iterations)
        .with_salt(Bytes::from_static(b"s\0lt"))
        .with_salted_password(Bytes::from(salted_password(seed)))
}

fn salted_password(seed: u64) -> Vec<u8> {
    (0..4).flat_map(|i| mix64(seed + i).to_le_bytes()).collect()
}

fn deletion(user: &str, mechanism: i8) -> ScramCredentialDeletion {
    ScramCredentialDeletion::default()
        .with_name(name(user))
        .with_mechanism(mechanism)
}

/// AlterUserScramCredentials on `shard`: (user, error code, error message) per result.
fn alter(
    broker: &Broker,
    shard: u16,
    deletions: Vec<ScramCredentialDeletion>,
    upsertions: Vec<ScramCredentialUpsertion>,
) -> Vec<(String, i16, Option<String>)> {
    let mut c = RawClient::connect_negotiated(broker.addr(shard));
    let req = AlterUserScramCredentialsRequest::default()
        .with_deletions(deletions)
        .with_upsertions(upsertions);
    let resp = c.send(&req, 0).expect("AlterUserScramCredentials");
    resp.results
        .iter()
        .map(|r| {
            (
                r.user.to_string(),
                r.error_code,
                r.error_message.as_ref().map(|m| m.to_string()),
            )
        })
        .collect()
}

fn ok(user: &str) -> (String, i16, Option<String>) {
    (user.to_string(), 0, None)
}

fn refused(user: &str, code: i16, message: &str) -> (String, i16, Option<String>) {
    (user.to_string(), code, Some(message.to_string()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn alter_describe_restart_delete() {
    bounded(Duration::from_secs(180), || {
        let mut broker = Broker::builder().cores(2).start();
        let alice = unique("alice");
        let bob = unique("bob");

        let c = RawClient::connect_negotiated(broker.addr(1));
        for key in [
            ApiKey::DescribeUserScramCredentials,
            ApiKey::AlterUserScramCredentials,
        ] {
            assert_eq!(c.versions.get(&(key as i16)), Some(&(0, 0)), "{key:?}");
        }

        // Unknown user.
        assert_eq!(
            describe_one(&broker, 1, &alice),
            (
                alice.clone(),
                RESOURCE_NOT_FOUND,
                Some(format!(
                    "Attempt to describe a user credential that does not exist: {alice}"
                )),
                vec![]
            )
        );

        // Upsert through shard 1; both shards describe the credential at once.
        assert_eq!(
            alter(
                &broker,
                1,
                vec![],
                vec![
                    upsertion(&alice, SHA_256, 8192, 1),
                    upsertion(&bob, SHA_512, 4096, 2)
                ]
            ),
            [ok(&alice), ok(&bob)]
        );
        assert_eq!(
            alter(
                &broker,
                0,
                vec![],
                vec![upsertion(&alice, SHA_512, 16384, 3)]
            ),
            [ok(&alice)]
        );
        for shard in 0..2 {
            assert_eq!(
                describe_one(&broker, shard, &alice),
                (
                    alice.clone(),
                    0,
                    None,
                    vec![(SHA_256, 8192), (SHA_512, 16384)]
                ),
                "shard {shard}"
            );
        }

        // Kafka's per-user refusals; nothing of a refused user changes.
        let empty_salt = upsertion("empty-salt", SHA_256, 4096, 4).with_salt(Bytes::new());
        assert_eq!(
            alter(
                &broker,
                0,
                vec![deletion(&bob, SHA_256), deletion(&alice, SHA_256)],
                vec![
                    upsertion("few", SHA_256, 4095, 5),
                    upsertion("many", SHA_512, 16385, 6),
                    upsertion("mechanism", 3, 4096, 7),
                    upsertion("", SHA_256, 4096, 8),
                    empty_salt,
                    upsertion(&alice, SHA_256, 4096, 9),
                ]
            ),
            [
                refused(
                    &bob,
                    RESOURCE_NOT_FOUND,
                    "Attempt to delete a user credential that does not exist"
                ),
                refused(
                    &alice,
                    DUPLICATE_RESOURCE,
                    "A user credential cannot be altered twice in the same request"
                ),
                refused("few", UNACCEPTABLE_CREDENTIAL, "Too few iterations"),
                refused("many", UNACCEPTABLE_CREDENTIAL, "Too many iterations"),
                refused(
                    "mechanism",
                    UNSUPPORTED_SASL_MECHANISM,
                    "Unknown SCRAM mechanism"
                ),
                refused("", UNACCEPTABLE_CREDENTIAL, "Username must not be empty"),
                refused(
                    "empty-salt",
                    UNACCEPTABLE_CREDENTIAL,
                    "Salt must not be empty"
                ),
            ]
        );

        // Every user (null list), and a user named twice.
        let everyone: Vec<(String, usize)> = describe(&broker, 1, None)
            .into_iter()
            .map(|(user, code, _, credentials)| {
                assert_eq!(code, 0, "{user}");
                (user, credentials.len())
            })
            .collect();
        let mut expected = vec![(alice.clone(), 2), (bob.clone(), 1)];
        expected.sort();
        assert_eq!(everyone, expected);
        assert_eq!(
            describe(&broker, 0, Some(&[&bob, &bob])),
            [(
                bob.clone(),
                DUPLICATE_RESOURCE,
                Some(format!(
                    "Cannot describe SCRAM credentials for the same user twice in a single request: {bob}"
                )),
                vec![]
            )]
        );

        // The metadata log holds the derived keys, never the salted password.
        let metadata = metadata_log_text(&broker.data_dir().join("__cluster_metadata-0"));
        assert!(metadata.contains(&alice), "{metadata}");
        for seed in [1, 2, 3] {
            assert!(
                !metadata.contains(&hex(&salted_password(seed))),
                "{metadata}"
            );
        }

        broker.restart();
        assert_eq!(
            describe_one(&broker, 1, &alice),
            (
                alice.clone(),
                0,
                None,
                vec![(SHA_256, 8192), (SHA_512, 16384)]
            )
        );

        // Deletion, one mechanism at a time.
        assert_eq!(
            alter(&broker, 1, vec![deletion(&alice, SHA_256)], vec![]),
            [ok(&alice)]
        );
        assert_eq!(describe_one(&broker, 0, &alice).3, vec![(SHA_512, 16384)]);
        assert_eq!(
            alter(&broker, 0, vec![deletion(&alice, SHA_512)], vec![]),
            [ok(&alice)]
        );
        for shard in 0..2 {
            assert_eq!(describe_one(&broker, shard, &alice).1, RESOURCE_NOT_FOUND);
        }
        broker.restart();
        assert_eq!(describe_one(&broker, 1, &alice).1, RESOURCE_NOT_FOUND);
        assert_eq!(describe_one(&broker, 1, &bob).3, vec![(SHA_512, 4096)]);
        broker.stop();
    });
}

/// Every file of the metadata log directory, as text (its records are JSON).
fn metadata_log_text(dir: &std::path::Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).expect("the metadata log directory exists") {
        let path = entry.expect("directory entry").path();
        if path.is_file() {
            text.push_str(&String::from_utf8_lossy(
                &std::fs::read(&path).expect("read"),
            ));
        }
    }
    text
}
