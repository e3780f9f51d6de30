//! AlterUserScramCredentials (v0): delete and create or replace users' SCRAM credentials. Any
//! shard may receive it; it goes to the controller (as KRaft brokers forward it), which checks
//! every entry, persists the valid changes in the cluster metadata and publishes them to every
//! shard before answering.
//!
//! Per user, as Kafka's `ScramControlManager` answers (see [`crate::scram`]): an empty user name,
//! an empty salt or salted password, or fewer than 4096 or more than 16384 iterations is
//! UNACCEPTABLE_CREDENTIAL; a mechanism other than SCRAM-SHA-256 (1) or SCRAM-SHA-512 (2) is
//! UNSUPPORTED_SASL_MECHANISM; deleting a credential that does not exist is RESOURCE_NOT_FOUND;
//! a user named by more than one deletion or upsertion is DUPLICATE_RESOURCE. The response has
//! one result per distinct user.

use super::{decode, respond, str_bytes, HandlerResult};
use crate::messages::{ControllerCommand, ControllerReply};
use crate::scram::{ScramAlterError, ScramAlterOutcome, ScramDeletion, ScramUpsertion};
use crate::shard::Shard;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};
use kafka_protocol::ResponseError;
use sluice_net::RawRequest;
use std::collections::HashSet;
use std::rc::Rc;

/// Answers AlterUserScramCredentials.
pub async fn handle_alter_user_scram_credentials(
    shard: &Rc<Shard>,
    req: &RawRequest,
) -> HandlerResult {
    let request: AlterUserScramCredentialsRequest = decode(req)?;
    let deletions: Vec<ScramDeletion> = request
        .deletions
        .iter()
        .map(|d| ScramDeletion {
            user: d.name.to_string(),
            mechanism: d.mechanism,
        })
        .collect();
    let upsertions: Vec<ScramUpsertion> = request
        .upsertions
        .iter()
        .map(|u| ScramUpsertion {
            user: u.name.to_string(),
            mechanism: u.mechanism,
            iterations: u.iterations,
            salt: u.salt.to_vec(),
            salted_password: u.salted_password.to_vec(),
        })
        .collect();
    let users = distinct_users(&deletions, &upsertions);
    let outcomes = match shard
        .router
        .call_controller(ControllerCommand::AlterScramCredentials {
            deletions,
            upsertions,
        })
        .await
    {
        Ok(ControllerReply::ScramCredentials(outcomes)) => outcomes,
        Ok(other) => {
            return Err(format!(
                "controller answered AlterUserScramCredentials with {other:?}"
            ))
        }
        Err(e) => users
            .into_iter()
            .map(|user| ScramAlterOutcome {
                user,
                result: Err(ScramAlterError::ControllerUnavailable(e.to_string())),
            })
            .collect(),
    };
    let results = outcomes
        .into_iter()
        .map(|o| {
            let result = user_result(o);
            shard
                .metrics
                .record_error(req.api_key as i16, result.error_code);
            result
        })
        .collect();
    respond(
        req,
        &AlterUserScramCredentialsResponse::default().with_results(results),
    )
}

/// Every user the request names, once each, in order of first appearance (deletions first).
fn distinct_users(deletions: &[ScramDeletion], upsertions: &[ScramUpsertion]) -> Vec<String> {
    let mut seen = HashSet::new();
    deletions
        .iter()
        .map(|d| &d.user)
        .chain(upsertions.iter().map(|u| &u.user))
        .filter(|user| seen.insert(user.as_str()))
        .cloned()
        .collect()
}

/// One user's entry of the response.
fn user_result(outcome: ScramAlterOutcome) -> AlterUserScramCredentialsResult {
    let result = AlterUserScramCredentialsResult::default().with_user(str_bytes(outcome.user));
    match outcome.result {
        Ok(()) => result.with_error_message(None),
        Err(e) => result
            .with_error_code(alter_error_code(&e).code())
            .with_error_message(Some(str_bytes(e.to_string()))),
    }
}

/// The Kafka error an alteration refusal is reported with.
fn alter_error_code(e: &ScramAlterError) -> ResponseError {
    match e {
        ScramAlterError::EmptyUserName
        | ScramAlterError::TooFewIterations
        | ScramAlterError::TooManyIterations
        | ScramAlterError::EmptySalt
        | ScramAlterError::EmptySaltedPassword => ResponseError::UnacceptableCredential,
        ScramAlterError::UnknownMechanism => ResponseError::UnsupportedSaslMechanism,
        ScramAlterError::AlteredTwice => ResponseError::DuplicateResource,
        ScramAlterError::NoSuchCredential => ResponseError::ResourceNotFound,
        ScramAlterError::KeyDerivation => ResponseError::UnknownServerError,
        ScramAlterError::TimedOut(_) => ResponseError::RequestTimedOut,
        ScramAlterError::ControllerUnavailable(_) => ResponseError::NotController,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_kafka_codes() {
        let code = |e: ScramAlterError| {
            let r = user_result(ScramAlterOutcome {
                user: "u".into(),
                result: Err(e),
            });
            (r.error_code, r.error_message.map(|m| m.to_string()))
        };
        assert_eq!(
            code(ScramAlterError::TooFewIterations),
            (93, Some("Too few iterations".into()))
        );
        assert_eq!(
            code(ScramAlterError::UnknownMechanism),
            (33, Some("Unknown SCRAM mechanism".into()))
        );
        assert_eq!(code(ScramAlterError::NoSuchCredential).0, 91);
        assert_eq!(code(ScramAlterError::AlteredTwice).0, 92);
        assert_eq!(code(ScramAlterError::EmptyUserName).0, 93);
        let ok = user_result(ScramAlterOutcome {
            user: "u".into(),
            result: Ok(()),
        });
        assert_eq!((ok.error_code, ok.error_message), (0, None));
    }

    #[test]
    fn distinct_users_in_order() {
        let d = |user: &str| ScramDeletion {
            user: user.into(),
            mechanism: 1,
        };
        let u = |user: &str| ScramUpsertion {
            user: user.into(),
            mechanism: 1,
            iterations: 4096,
            salt: vec![1],
            salted_password: vec![2],
        };
        assert_eq!(
            distinct_users(&[d("b"), d("a"), d("b")], &[u("c"), u("a")]),
            ["b", "a", "c"]
        );
    }
}
