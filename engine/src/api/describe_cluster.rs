//! DescribeCluster (v0–v2): the cluster id, the controller and the nodes (one per shard).
//!
//! Follows Kafka 4.x (`AuthHelper.computeDescribeClusterResponse`): the nodes are the shards
//! of the live brokers, and the controller id is a live broker's node (this broker's shard 0,
//! which forwards admin requests to the active controller), as Kafka 4's brokers answer since
//! the controllers are not reachable by clients. One deliberate difference: a request for the
//! controllers endpoint type (2, as the admin client sends with `bootstrap.controllers`) is
//! answered with that node instead of MISMATCHED_ENDPOINT_TYPE. An unknown endpoint type is
//! UNSUPPORTED_ENDPOINT_TYPE (INVALID_REQUEST at v0). With `include_fenced_brokers` (v2), the
//! nodes of fenced brokers are listed too, marked `is_fenced`. With no authorizer every cluster operation is
//! allowed, so when authorized operations are requested the answer is every operation Kafka
//! supports on the cluster resource, as Kafka answers without an authorizer.

use super::{decode, respond, str_bytes, HandlerResult};
use crate::authorization::{authorized_operations, ResourceKind};
use crate::metadata::{BrokerRegistration, MetadataImage, Node};
use crate::shard::Shard;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::ResponseError;
use sluice_net::RawRequest;
use std::rc::Rc;

/// `endpoint_type` brokers.
pub const ENDPOINT_BROKERS: i8 = 1;
/// `endpoint_type` controllers.
pub const ENDPOINT_CONTROLLERS: i8 = 2;

/// Answers DescribeCluster.
pub async fn handle_describe_cluster(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: DescribeClusterRequest = decode(req)?;
    respond(req, &describe(&shard.image(), &request, req.api_version))
}

/// The response to `request` from the cluster shown by `image`.
pub fn describe(
    image: &MetadataImage,
    request: &DescribeClusterRequest,
    version: i16,
) -> DescribeClusterResponse {
    let endpoint_type = request.endpoint_type;
    let nodes: Vec<(Node, bool)> = match endpoint_type {
        ENDPOINT_BROKERS => {
            let mut nodes: Vec<(Node, bool)> =
                image.nodes.iter().map(|n| (n.clone(), false)).collect();
            if request.include_fenced_brokers {
                nodes.extend(fenced_nodes(image).into_iter().map(|n| (n, true)));
            }
            nodes
        }
        ENDPOINT_CONTROLLERS => image
            .nodes
            .iter()
            .filter(|n| n.node_id == image.controller_node())
            .map(|n| (n.clone(), false))
            .collect(),
        other => {
            let code = if version == 0 {
                ResponseError::InvalidRequest
            } else {
                ResponseError::UnsupportedEndpointType
            };
            return DescribeClusterResponse::default()
                .with_error_code(code.code())
                .with_error_message(Some(str_bytes(format!(
                    "Unsupported endpoint type {other}"
                ))));
        }
    };
    let brokers = nodes
        .into_iter()
        .map(|(n, fenced)| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(n.node_id))
                .with_host(str_bytes(n.host))
                .with_port(n.port)
                .with_rack(n.rack.map(str_bytes))
                .with_is_fenced(fenced)
        })
        .collect();
    let mut response = DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(image.state.cluster_id.clone()))
        .with_controller_id(BrokerId(image.controller_node()))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(authorized_operations(
            ResourceKind::Cluster,
            request.include_cluster_authorized_operations,
        ));
    if version >= 1 {
        response.endpoint_type = endpoint_type;
    }
    response
}

/// The nodes of the registered brokers that are fenced.
fn fenced_nodes(image: &MetadataImage) -> Vec<Node> {
    image
        .state
        .brokers
        .values()
        .filter(|b| b.fenced)
        .flat_map(BrokerRegistration::nodes)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::metadata::ClusterState;
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Decodable, Encodable};

    fn image() -> MetadataImage {
        let broker =
            BrokerConfig::load(None, &["listeners=PLAINTEXT://127.0.0.1:9500".to_string()])
                .unwrap();
        let state = ClusterState::new(Some("cluster-x".into())).with_live_local_broker(&broker, 3);
        MetadataImage::new(state, &broker, 3)
    }

    fn round_trip(request: DescribeClusterRequest, version: i16) -> DescribeClusterResponse {
        let mut buf = BytesMut::new();
        request.encode(&mut buf, version).unwrap();
        let decoded = DescribeClusterRequest::decode(&mut buf.freeze(), version).unwrap();
        let response = describe(&image(), &decoded, version);
        let mut out = BytesMut::new();
        response.encode(&mut out, version).unwrap();
        response
    }

    #[test]
    fn brokers_are_every_shard_node() {
        for v in 0..=2 {
            let r = round_trip(DescribeClusterRequest::default(), v);
            assert_eq!(r.error_code, 0);
            assert_eq!(r.cluster_id.as_str(), "cluster-x");
            assert_eq!(r.controller_id, BrokerId(1000));
            let ids: Vec<i32> = r.brokers.iter().map(|b| b.broker_id.0).collect();
            assert_eq!(ids, [1000, 1001, 1002]);
            assert_eq!(r.brokers[2].port, 9502);
            assert!(r.brokers.iter().all(|b| b.rack.is_none() && !b.is_fenced));
            assert_eq!(r.cluster_authorized_operations, i32::MIN);
        }
    }

    #[test]
    fn controllers_endpoint_and_errors() {
        let r = round_trip(
            DescribeClusterRequest::default().with_endpoint_type(ENDPOINT_CONTROLLERS),
            1,
        );
        assert_eq!(r.endpoint_type, ENDPOINT_CONTROLLERS);
        assert_eq!(
            r.brokers.iter().map(|b| b.broker_id.0).collect::<Vec<_>>(),
            [1000]
        );
        let r = round_trip(DescribeClusterRequest::default().with_endpoint_type(7), 2);
        assert_eq!(r.error_code, ResponseError::UnsupportedEndpointType.code());
        let r = round_trip(
            DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
            2,
        );
        assert_eq!(r.cluster_authorized_operations, 8096);
    }
}
