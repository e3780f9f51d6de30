//! ApiVersions: which APIs and versions this broker speaks.

use super::{decode, respond, HandlerResult, SUPPORTED_APIS};
use crate::shard::Shard;
use bytes::BytesMut;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::Encodable;
use kafka_protocol::ResponseError;
use sluice_net::{RawRequest, Response};
use std::rc::Rc;

/// Answers ApiVersions with every supported API and its version range.
pub async fn handle_api_versions(_shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: ApiVersionsRequest = decode(req)?;
    let mut response = ApiVersionsResponse::default().with_api_keys(api_list());
    if req.api_version >= 3
        && (!valid_software_field(&request.client_software_name)
            || !valid_software_field(&request.client_software_version))
    {
        response = response.with_error_code(ResponseError::InvalidRequest.code());
    }
    respond(req, &response)
}

/// The answer to an ApiVersions request of a version we don't support: Kafka replies in the v0
/// format with UNSUPPORTED_VERSION and the API list, so the client can pick a version it shares.
pub fn unsupported_version_response(req: &RawRequest) -> HandlerResult {
    let response = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_list());
    let mut buf = BytesMut::new();
    response
        .encode(&mut buf, 0)
        .map_err(|e| format!("cannot encode ApiVersions v0 response: {e}"))?;
    Ok(Some(Response::from_body(
        req.correlation_id,
        false,
        buf.freeze(),
    )))
}

fn api_list() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|&(key, lo, hi)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(lo)
                .with_max_version(hi)
        })
        .collect()
}

/// Kafka's rule for client software name/version: `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`.
fn valid_software_field(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_fields_follow_kafkas_pattern() {
        assert!(valid_software_field("librdkafka"));
        assert!(valid_software_field("2.12.1"));
        assert!(!valid_software_field(""));
        assert!(!valid_software_field("-x"));
        assert!(!valid_software_field("a b"));
    }
}
