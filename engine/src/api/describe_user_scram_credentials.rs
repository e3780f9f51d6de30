//! DescribeUserScramCredentials (v0): which SCRAM mechanisms each user has credentials for,
//! and their iteration counts — never the salts or keys. Any shard answers, from its metadata
//! image, as a KRaft broker answers from its `ScramImage`.
//!
//! A null or empty user list describes every user that has a credential. Per user: named more
//! than once in the request, DUPLICATE_RESOURCE; no credential, RESOURCE_NOT_FOUND ("Attempt to
//! describe a user credential that does not exist: <user>"). The request-level error is always
//! NONE.

use super::{decode, respond, str_bytes, HandlerResult};
use crate::scram::{ScramDescribeError, UserScramDescription};
use crate::shard::Shard;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::ResponseError;
use sluice_net::RawRequest;
use std::rc::Rc;

/// Answers DescribeUserScramCredentials.
pub async fn handle_describe_user_scram_credentials(
    shard: &Rc<Shard>,
    req: &RawRequest,
) -> HandlerResult {
    let request: DescribeUserScramCredentialsRequest = decode(req)?;
    let names: Option<Vec<&str>> = request
        .users
        .as_ref()
        .map(|users| users.iter().map(|u| u.name.as_str()).collect());
    let image = shard.image();
    let results = image
        .state
        .scram_credentials
        .describe(names.as_deref())
        .into_iter()
        .map(|d| {
            let result = user_result(d);
            shard
                .metrics
                .record_error(req.api_key as i16, result.error_code);
            result
        })
        .collect();
    respond(
        req,
        &DescribeUserScramCredentialsResponse::default().with_results(results),
    )
}

/// One user's entry of the response.
fn user_result(description: UserScramDescription) -> DescribeUserScramCredentialsResult {
    let result =
        DescribeUserScramCredentialsResult::default().with_user(str_bytes(description.user));
    match description.result {
        Ok(credentials) => result.with_credential_infos(
            credentials
                .into_iter()
                .map(|c| {
                    CredentialInfo::default()
                        .with_mechanism(c.mechanism.type_code())
                        .with_iterations(c.iterations)
                })
                .collect(),
        ),
        Err(e) => result
            .with_error_code(describe_error_code(&e).code())
            .with_error_message(Some(str_bytes(e.to_string()))),
    }
}

/// The Kafka error a describe refusal is reported with.
fn describe_error_code(e: &ScramDescribeError) -> ResponseError {
    match e {
        ScramDescribeError::DuplicateUser(_) => ResponseError::DuplicateResource,
        ScramDescribeError::UnknownUser(_) => ResponseError::ResourceNotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scram::{ScramCredentialInfo, ScramMechanism};

    #[test]
    fn results_carry_mechanisms_or_kafka_errors() {
        let found = user_result(UserScramDescription {
            user: "a".into(),
            result: Ok(vec![ScramCredentialInfo {
                mechanism: ScramMechanism::Sha512,
                iterations: 8192,
            }]),
        });
        assert_eq!(found.error_code, 0);
        assert_eq!(
            found
                .credential_infos
                .iter()
                .map(|c| (c.mechanism, c.iterations))
                .collect::<Vec<_>>(),
            [(2, 8192)]
        );
        let missing = user_result(UserScramDescription {
            user: "b".into(),
            result: Err(ScramDescribeError::UnknownUser("b".into())),
        });
        assert_eq!(missing.error_code, ResponseError::ResourceNotFound.code());
        assert_eq!(
            missing.error_message.as_deref(),
            Some("Attempt to describe a user credential that does not exist: b")
        );
        assert!(missing.credential_infos.is_empty());
        let twice = user_result(UserScramDescription {
            user: "c".into(),
            result: Err(ScramDescribeError::DuplicateUser("c".into())),
        });
        assert_eq!(twice.error_code, ResponseError::DuplicateResource.code());
    }
}
