//! AlterConfigs (v0–v2), the legacy config API: each resource's whole set of overrides is
//! replaced by the one given (keys left out go back to their inherited values). Any shard may
//! receive it; the change goes to the controller, which validates, persists and publishes it,
//! and the owning shards apply it live.
//!
//! Resources: TOPIC (2) and BROKER (4 — this broker's `node.id`, any of its shard node ids, or
//! "" for the cluster-wide dynamic defaults). Per resource, as Kafka 4.x answers:
//! * a resource named twice: INVALID_REQUEST, for each of its entries;
//! * a key named twice, or a null value: INVALID_REQUEST;
//! * another broker's id, a name that is not an integer, or a resource type Sluice does not
//!   have (BROKER_LOGGER, CLIENT_METRICS, GROUP, …): INVALID_REQUEST;
//! * an unknown topic: UNKNOWN_TOPIC_OR_PARTITION;
//! * an unknown key, an invalid value, a broker key that cannot change at runtime:
//!   INVALID_CONFIG, with a message naming the key and the reason.
//!
//! `validate_only` checks everything and changes nothing.

use super::describe_configs::{broker_id_of, resource_type, unsupported_resource_type};
use super::{decode, respond, str_bytes, HandlerResult};
use crate::config::{BrokerConfig, ConfigAlteration};
use crate::messages::{
    ConfigOutcome, ConfigTarget, ControllerCommand, ControllerReply, ResourceAlteration,
};
use crate::metadata::MetadataImage;
use crate::shard::Shard;
use kafka_protocol::messages::alter_configs_request::AlterableConfig;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_net::RawRequest;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// A request-level rejection of one resource: error code and message.
pub type Rejection = (ResponseError, String);

/// Answers AlterConfigs.
pub async fn handle_alter_configs(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: AlterConfigsRequest = decode(req)?;
    let names: Vec<(i8, &str)> = request
        .resources
        .iter()
        .map(|r| (r.resource_type, r.resource_name.as_str()))
        .collect();
    let outcomes = alter_resources(shard, &names, request.validate_only, |i| {
        Ok(ConfigAlteration::Replace(replacement(
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
        &AlterConfigsResponse::default().with_responses(responses),
    )
}

/// The flow both alter APIs share: each resource named once, its target resolved and its
/// alteration (built by `alteration` from the resource's index) checked, then all of them
/// applied through the controller. One outcome per resource, in request order.
pub async fn alter_resources(
    shard: &Rc<Shard>,
    names: &[(i8, &str)],
    validate_only: bool,
    mut alteration: impl FnMut(usize) -> Result<ConfigAlteration, Rejection>,
) -> Result<Vec<ConfigOutcome>, String> {
    let image = shard.image();
    let prepared = names
        .iter()
        .zip(repeated_resources(names))
        .enumerate()
        .map(|(i, (&(kind, name), repeated))| {
            if repeated {
                return Err(repeated_resource());
            }
            let target = config_target(&shard.config, &image, kind, name)?;
            Ok(ResourceAlteration {
                target,
                alteration: alteration(i)?,
            })
        })
        .collect();
    alter_through_controller(shard, prepared, validate_only).await
}

/// The (name, value) pairs of a legacy AlterConfigs resource: no key twice, no null value.
fn replacement(configs: &[AlterableConfig]) -> Result<Vec<(String, String)>, Rejection> {
    check_unique_keys(configs.iter().map(|c| &c.name))?;
    let nulls: Vec<&str> = configs
        .iter()
        .filter(|c| c.value.is_none())
        .map(|c| c.name.as_str())
        .collect();
    if !nulls.is_empty() {
        return Err(null_values(&nulls));
    }
    Ok(configs
        .iter()
        .filter_map(|c| {
            c.value
                .as_ref()
                .map(|v| (c.name.to_string(), v.to_string()))
        })
        .collect())
}

/// For each resource (type, name), whether the request names it more than once.
pub fn repeated_resources(names: &[(i8, &str)]) -> Vec<bool> {
    let mut count: HashMap<(i8, &str), usize> = HashMap::new();
    for name in names {
        *count.entry(*name).or_default() += 1;
    }
    names.iter().map(|name| count[name] > 1).collect()
}

/// Kafka's rejection of a resource named more than once in one request.
pub fn repeated_resource() -> Rejection {
    (
        ResponseError::InvalidRequest,
        "Each resource must appear at most once.".to_string(),
    )
}

/// Kafka's rejection of a config key named twice in one resource.
pub fn check_unique_keys<'a>(keys: impl Iterator<Item = &'a StrBytes>) -> Result<(), Rejection> {
    let mut seen = HashSet::new();
    for key in keys {
        if !seen.insert(key.as_str()) {
            return Err((
                ResponseError::InvalidRequest,
                "Error due to duplicate config keys".to_string(),
            ));
        }
    }
    Ok(())
}

/// Kafka's rejection of config values that are null where a value is needed.
pub fn null_values(names: &[&str]) -> Rejection {
    (
        ResponseError::InvalidRequest,
        format!("Null value not supported for : {}", names.join(", ")),
    )
}

/// The resource a (type, name) pair names, or why it cannot be altered here.
pub fn config_target(
    broker: &BrokerConfig,
    image: &MetadataImage,
    kind: i8,
    name: &str,
) -> Result<ConfigTarget, Rejection> {
    match kind {
        resource_type::TOPIC => Ok(ConfigTarget::Topic(name.to_string())),
        resource_type::BROKER if name.is_empty() => Ok(ConfigTarget::BrokerDefaults),
        resource_type::BROKER => broker_id_of(broker, image, name).map(ConfigTarget::Broker),
        other => Err(unsupported_resource_type(other)),
    }
}

/// Sends the resources that passed the request-level checks to the controller (in one
/// command) and returns every resource's outcome in request order.
pub async fn alter_through_controller(
    shard: &Rc<Shard>,
    prepared: Vec<Result<ResourceAlteration, Rejection>>,
    validate_only: bool,
) -> Result<Vec<ConfigOutcome>, String> {
    let resources: Vec<ResourceAlteration> = prepared
        .iter()
        .filter_map(|p| p.as_ref().ok().cloned())
        .collect();
    let mut answers = if resources.is_empty() {
        Vec::new()
    } else {
        let count = resources.len();
        match shard
            .router
            .call_controller(ControllerCommand::AlterConfigs {
                resources,
                validate_only,
            })
            .await
        {
            Ok(ControllerReply::Configs(outcomes)) => outcomes,
            Ok(other) => return Err(format!("controller answered AlterConfigs with {other:?}")),
            Err(e) => vec![
                ConfigOutcome {
                    error_code: ResponseError::NotController.code(),
                    error_message: Some(e.to_string()),
                };
                count
            ],
        }
    }
    .into_iter();
    Ok(prepared
        .into_iter()
        .map(|p| match p {
            Ok(_) => answers.next().unwrap_or(ConfigOutcome {
                error_code: ResponseError::UnknownServerError.code(),
                error_message: Some("the controller gave no answer for this resource".into()),
            }),
            Err((code, message)) => ConfigOutcome {
                error_code: code.code(),
                error_message: Some(message),
            },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::ClusterState;

    fn setup() -> (BrokerConfig, MetadataImage) {
        let broker = BrokerConfig::load(None, &["node.id=2".to_string()]).unwrap();
        let image = MetadataImage::new(ClusterState::new(Some("c".into())), &broker, 2);
        (broker, image)
    }

    fn config(name: &str, value: Option<&str>) -> AlterableConfig {
        AlterableConfig::default()
            .with_name(str_bytes(name))
            .with_value(value.map(str_bytes))
    }

    #[test]
    fn targets() {
        let (broker, image) = setup();
        let target = |kind, name| config_target(&broker, &image, kind, name);
        assert_eq!(
            target(resource_type::TOPIC, "t"),
            Ok(ConfigTarget::Topic("t".into()))
        );
        assert_eq!(
            target(resource_type::BROKER, ""),
            Ok(ConfigTarget::BrokerDefaults)
        );
        for name in ["2", "2000", "2001"] {
            assert_eq!(
                target(resource_type::BROKER, name),
                Ok(ConfigTarget::Broker(2))
            );
        }
        for (kind, name) in [
            (resource_type::BROKER, "2002"),
            (resource_type::BROKER, "x"),
            (resource_type::BROKER_LOGGER, "2"),
            (resource_type::GROUP, "g"),
            (99, "z"),
        ] {
            let (code, message) = target(kind, name).unwrap_err();
            assert_eq!(code, ResponseError::InvalidRequest, "{kind} {name}");
            assert!(!message.is_empty());
        }
    }

    #[test]
    fn request_shape_checks() {
        assert_eq!(
            replacement(&[config("a", Some("1")), config("b", Some("2"))]),
            Ok(vec![("a".into(), "1".into()), ("b".into(), "2".into())])
        );
        assert_eq!(
            replacement(&[config("a", Some("1")), config("a", Some("2"))]),
            Err((
                ResponseError::InvalidRequest,
                "Error due to duplicate config keys".into()
            ))
        );
        assert_eq!(
            replacement(&[config("a", None), config("b", None)]),
            Err((
                ResponseError::InvalidRequest,
                "Null value not supported for : a, b".into()
            ))
        );
        assert_eq!(
            repeated_resources(&[(2, "t"), (4, ""), (2, "t"), (2, "u")]),
            [true, false, true, false]
        );
    }
}
