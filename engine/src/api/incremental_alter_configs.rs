//! IncrementalAlterConfigs (v0–v1): per-key operations on a resource's overrides — SET,
//! DELETE, APPEND and SUBTRACT (the last two for LIST configs only; see
//! [`crate::config::alter`]). Any shard may receive it; the change goes to the controller,
//! which validates, persists and publishes it, and the owning shards apply it live.
//!
//! Resources and per-resource errors are those of AlterConfigs (see
//! [`super::alter_configs`]); in addition an unknown operation code is INVALID_REQUEST, a null
//! value is INVALID_REQUEST unless the operation is DELETE, and APPEND / SUBTRACT on a key that
//! is not a LIST is INVALID_CONFIG.

use super::alter_configs::{alter_resources, check_unique_keys, null_values, Rejection};
use super::{decode, respond, str_bytes, HandlerResult};
use crate::config::{AlterOp, ConfigAlteration, ConfigChange};
use crate::shard::Shard;
use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::ResponseError;
use sluice_net::RawRequest;
use std::rc::Rc;

/// Answers IncrementalAlterConfigs.
pub async fn handle_incremental_alter_configs(
    shard: &Rc<Shard>,
    req: &RawRequest,
) -> HandlerResult {
    let request: IncrementalAlterConfigsRequest = decode(req)?;
    let names: Vec<(i8, &str)> = request
        .resources
        .iter()
        .map(|r| (r.resource_type, r.resource_name.as_str()))
        .collect();
    let outcomes = alter_resources(shard, &names, request.validate_only, |i| {
        Ok(ConfigAlteration::Incremental(changes(
            &request.resources[i].configs,
        )?))
    })
    .await?;
    let responses = request
        .resources
        .iter()
        .zip(outcomes)
        .map(|(r, o)| {
            shard.metrics.record_error(req.api_key as i16, o.error_code);
            AlterConfigsResourceResponse::default()
                .with_error_code(o.error_code)
                .with_error_message(o.error_message.map(str_bytes))
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
        })
        .collect();
    respond(
        req,
        &IncrementalAlterConfigsResponse::default().with_responses(responses),
    )
}

/// The operations of one resource: no key twice, known operation codes, a value for every
/// operation but DELETE.
fn changes(configs: &[AlterableConfig]) -> Result<Vec<ConfigChange>, Rejection> {
    check_unique_keys(configs.iter().map(|c| &c.name))?;
    let mut nulls = Vec::new();
    let mut out = Vec::with_capacity(configs.len());
    for c in configs {
        let op = AlterOp::from_code(c.config_operation).ok_or_else(|| {
            (
                ResponseError::InvalidRequest,
                format!("Unknown operations type {}", c.config_operation),
            )
        })?;
        if op != AlterOp::Delete && c.value.is_none() {
            nulls.push(c.name.as_str());
        }
        out.push(ConfigChange {
            name: c.name.to_string(),
            op,
            value: c
                .value
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        });
    }
    if !nulls.is_empty() {
        return Err(null_values(&nulls));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str, op: i8, value: Option<&str>) -> AlterableConfig {
        AlterableConfig::default()
            .with_name(str_bytes(name))
            .with_config_operation(op)
            .with_value(value.map(str_bytes))
    }

    #[test]
    fn operations_are_parsed_and_checked() {
        assert_eq!(
            changes(&[
                config("retention.ms", 0, Some("5")),
                config("segment.ms", 1, None),
                config("cleanup.policy", 2, Some("compact")),
                config("x", 3, Some("y")),
            ])
            .unwrap()
            .iter()
            .map(|c| (c.name.as_str(), c.op, c.value.as_str()))
            .collect::<Vec<_>>(),
            vec![
                ("retention.ms", AlterOp::Set, "5"),
                ("segment.ms", AlterOp::Delete, ""),
                ("cleanup.policy", AlterOp::Append, "compact"),
                ("x", AlterOp::Subtract, "y"),
            ]
        );
        assert_eq!(
            changes(&[config("a", 7, Some("1"))]).unwrap_err(),
            (
                ResponseError::InvalidRequest,
                "Unknown operations type 7".into()
            )
        );
        assert_eq!(
            changes(&[config("a", 0, None), config("b", 2, None)]).unwrap_err(),
            (
                ResponseError::InvalidRequest,
                "Null value not supported for : a, b".into()
            )
        );
        assert_eq!(
            changes(&[config("a", 1, None), config("a", 0, Some("1"))])
                .unwrap_err()
                .0,
            ResponseError::InvalidRequest
        );
    }
}
