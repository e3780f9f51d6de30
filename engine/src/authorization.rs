//! Authorized operations, as Metadata, DescribeCluster and DescribeGroups report them.
//!
//! Sluice has no authorizer (Kafka's `authorizer.class.name` unset), so every client may do
//! everything. Kafka answers that case (`AuthHelper.authorizedOperations` without an
//! authorizer) with every operation it supports on the resource type
//! (`AclEntry.supportedOperations`), encoded as a bit field of ACL operation codes; when the
//! client did not ask for authorized operations the field is `i32::MIN`.

/// A Kafka ACL operation, with its wire code (`AclOperation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum AclOperation {
    /// Read records / committed offsets.
    Read = 3,
    /// Produce records.
    Write = 4,
    /// Create topics.
    Create = 5,
    /// Delete topics, records or groups.
    Delete = 6,
    /// Alter partitions.
    Alter = 7,
    /// Describe the resource.
    Describe = 8,
    /// Inter-broker actions.
    ClusterAction = 9,
    /// Describe configs.
    DescribeConfigs = 10,
    /// Alter configs.
    AlterConfigs = 11,
    /// Idempotent produce.
    IdempotentWrite = 12,
}

/// The kinds of resource whose authorized operations the APIs report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// A topic (Metadata).
    Topic,
    /// A consumer group (DescribeGroups).
    Group,
    /// The cluster (Metadata v8–v10, DescribeCluster).
    Cluster,
}

impl ResourceKind {
    /// The operations Kafka supports on this resource type (`AclEntry.supportedOperations`).
    pub fn supported_operations(self) -> &'static [AclOperation] {
        use AclOperation::*;
        match self {
            ResourceKind::Topic => &[
                Read,
                Write,
                Create,
                Describe,
                Delete,
                Alter,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceKind::Group => &[Read, Describe, Delete],
            ResourceKind::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
        }
    }
}

/// "Authorized operations not requested" in Kafka's encoding.
pub const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

/// The `authorized_operations` field for a resource of `kind`: every supported operation
/// (there is no authorizer) when the client asked for them, else [`OPERATIONS_NOT_REQUESTED`].
pub fn authorized_operations(kind: ResourceKind, requested: bool) -> i32 {
    if !requested {
        return OPERATIONS_NOT_REQUESTED;
    }
    kind.supported_operations()
        .iter()
        .fold(0, |bits, op| bits | (1 << *op as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_fields_match_kafka_without_an_authorizer() {
        // READ..ALTER_CONFIGS except CLUSTER_ACTION: bits 3-8, 10, 11.
        assert_eq!(
            authorized_operations(ResourceKind::Topic, true),
            0b1101_1111_1000
        );
        // READ, DELETE, DESCRIBE.
        assert_eq!(
            authorized_operations(ResourceKind::Group, true),
            0b1_0100_1000
        );
        // CREATE, ALTER..IDEMPOTENT_WRITE.
        assert_eq!(authorized_operations(ResourceKind::Cluster, true), 8096);
        for kind in [
            ResourceKind::Topic,
            ResourceKind::Group,
            ResourceKind::Cluster,
        ] {
            assert_eq!(authorized_operations(kind, false), i32::MIN);
        }
    }
}
