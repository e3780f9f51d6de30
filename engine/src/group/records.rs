//! The records of `__consumer_offsets`, byte-compatible with Apache Kafka's schemas
//! (`OffsetCommitKey`, `OffsetCommitValue`, `GroupMetadataKey`, `GroupMetadataValue` in
//! `group-coordinator/src/main/resources/common/message/`), so that Kafka's tools can read the
//! topic; plus building batches of them and reading them back from the log for replay.
//!
//! A key is an `i16` version followed by the key fields (always the classic encoding): versions 0
//! and 1 are offset commits, 2 is group metadata. A value is an `i16` version followed by that
//! version's fields; version 4 of both values is flexible (compact lengths, tagged fields). A
//! record with a null value is a tombstone: it deletes the offset or the group.

use std::os::unix::fs::FileExt;

use crate::partition::Partition;
use bytes::{BufMut, Bytes, BytesMut};
use sluice_storage::wire::{
    read_uvarint, BatchBuildError, BatchOptions, RecordBatchBuilder, VarintError,
};
use sluice_storage::{decode_batch, BatchHeader, ReadError};

/// Why a record of `__consumer_offsets` could not be encoded, decoded or read. The
/// `&'static str`s name the field concerned.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// The bytes end inside the field.
    #[error("truncated record: missing {0}")]
    Truncated(&'static str),
    /// The key version is not an offset commit (0, 1) or group metadata (2) key. Newer Kafka
    /// writes other record types (consumer-protocol groups, share groups) from version 3 on.
    #[error("unknown key version {0}")]
    UnknownKeyVersion(i16),
    /// The value version (second field) is not one this decoder knows.
    #[error("unsupported {0} version {1}")]
    UnsupportedVersion(&'static str, i16),
    /// A non-nullable field is null.
    #[error("{0} is null")]
    UnexpectedNull(&'static str),
    /// A length prefix (second field) is negative, and not -1 for null.
    #[error("invalid length of {0}: {1}")]
    InvalidLength(&'static str, i64),
    /// A varint is longer than 5 bytes or overflows 32 bits.
    #[error("invalid varint in {0}")]
    InvalidVarint(&'static str),
    /// A string is not UTF-8.
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// Bytes follow the last field.
    #[error("{0} trailing bytes after the record")]
    TrailingBytes(usize),
    /// `build_batch` was given no records.
    #[error("a batch needs at least one record")]
    EmptyBatch,
    /// The batch encoder failed.
    #[error("encoding a batch: {0}")]
    Encode(String),
    /// A batch of the log could not be decoded, or holds a record without a key.
    #[error("corrupt batch at offset {offset}: {reason}")]
    CorruptBatch {
        /// Base offset of the batch, or offset of the record.
        offset: i64,
        /// What is wrong.
        reason: String,
    },
    /// Reading the log failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Reading a segment file failed.
    #[error("I/O error reading the log: {0}")]
    Io(#[from] std::io::Error),
}

type Result<T> = std::result::Result<T, RecordsError>;

/// The key of a `__consumer_offsets` record: what the record is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OffsetsKey {
    /// The committed offset of one partition for a group (key version 0 or 1).
    Offset {
        /// The group id.
        group: String,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// The metadata of a group: members, generation, assignment (key version 2).
    Group {
        /// The group id.
        group: String,
    },
}

impl OffsetsKey {
    /// The group the record belongs to, to route it to its group during replay.
    pub fn group(&self) -> &str {
        match self {
            OffsetsKey::Offset { group, .. } | OffsetsKey::Group { group } => group,
        }
    }
}

/// A committed offset (`OffsetCommitValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    /// The committed offset.
    pub offset: i64,
    /// Leader epoch of the committed offset, -1 for none (always -1 before value version 3).
    pub leader_epoch: i32,
    /// Client metadata of the commit.
    pub metadata: String,
    /// When the offset was committed.
    pub commit_timestamp: i64,
    /// Explicit expiry of OffsetCommit v1–v4 requests (value version 1 only; None otherwise or
    /// when -1).
    pub expire_timestamp: Option<i64>,
}

/// One member of a classic group (`GroupMetadataValue.MemberMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    /// The member id.
    pub member_id: String,
    /// The static member id (value version 3+).
    pub group_instance_id: Option<String>,
    /// The client id.
    pub client_id: String,
    /// The client host.
    pub client_host: String,
    /// Rebalance timeout (value version 1+; the session timeout in version 0, as Kafka does).
    pub rebalance_timeout_ms: i32,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// The member's metadata for the group's protocol.
    pub subscription: Bytes,
    /// The member's assignment from the leader.
    pub assignment: Bytes,
}

/// The state of a classic group (`GroupMetadataValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    /// Protocol type (e.g. "consumer"), "" when none.
    pub protocol_type: String,
    /// Generation id.
    pub generation: i32,
    /// Chosen protocol (assignor), if any.
    pub protocol: Option<String>,
    /// Leader member id, if any.
    pub leader: Option<String>,
    /// When the group entered its state (value version 2+; -1 otherwise).
    pub current_state_timestamp: i64,
    /// The members.
    pub members: Vec<MemberValue>,
}

/// One record of `__consumer_offsets` as read from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetsRecord {
    /// Its offset in the partition.
    pub offset: i64,
    /// Its key (see [`decode_key`]).
    pub key: Bytes,
    /// Its value, `None` for a tombstone.
    pub value: Option<Bytes>,
}

/// Writes a classic (non-flexible) string. The schemas cap strings at `i16::MAX` bytes; longer
/// ones (which Kafka refuses to serialize) are cut at a char boundary below it, so that the
/// output is always well formed. Callers should reject such group ids and metadata earlier.
fn put_str(buf: &mut BytesMut, s: &str) {
    let mut n = s.len().min(i16::MAX as usize);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    buf.put_i16(n as i16);
    buf.put_slice(&s.as_bytes()[..n]);
}

fn put_nullable_str(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(buf, s),
        None => buf.put_i16(-1),
    }
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    buf.put_i32(i32::try_from(b.len()).unwrap_or(i32::MAX));
    buf.put_slice(&b[..b.len().min(i32::MAX as usize)]);
}

/// A cursor over a key or value, in the classic or the flexible encoding.
struct Reader<'a> {
    buf: &'a [u8],
    flexible: bool,
}

impl<'a> Reader<'a> {
    /// Starts in the classic encoding (every key, and the version of every value).
    fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            flexible: false,
        }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(RecordsError::Truncated(what));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn fixed<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn i16(&mut self, what: &'static str) -> Result<i16> {
        self.fixed(what).map(i16::from_be_bytes)
    }

    fn i32(&mut self, what: &'static str) -> Result<i32> {
        self.fixed(what).map(i32::from_be_bytes)
    }

    fn i64(&mut self, what: &'static str) -> Result<i64> {
        self.fixed(what).map(i64::from_be_bytes)
    }

    fn uvarint(&mut self, what: &'static str) -> Result<u32> {
        let mut pos = 0;
        let value = read_uvarint(self.buf, &mut pos).map_err(|e| match e {
            VarintError::Truncated => RecordsError::Truncated(what),
            VarintError::TooLong(_) => RecordsError::InvalidVarint(what),
        })?;
        self.buf = &self.buf[pos..];
        Ok(value)
    }

    /// A length prefix: `None` for null. Classic strings have an i16 prefix, classic bytes and
    /// arrays an i32 one (`wide`); flexible ones an unsigned varint of length + 1.
    fn length(&mut self, what: &'static str, wide: bool) -> Result<Option<usize>> {
        let n = if self.flexible {
            i64::from(self.uvarint(what)?) - 1
        } else if wide {
            i64::from(self.i32(what)?)
        } else {
            i64::from(self.i16(what)?)
        };
        match n {
            -1 => Ok(None),
            n if n >= 0 => Ok(Some(n as usize)),
            len => Err(RecordsError::InvalidLength(what, len)),
        }
    }

    fn nullable_string(&mut self, what: &'static str) -> Result<Option<String>> {
        let Some(n) = self.length(what, false)? else {
            return Ok(None);
        };
        let raw = self.take(n, what)?;
        match std::str::from_utf8(raw) {
            Ok(s) => Ok(Some(s.to_owned())),
            Err(_) => Err(RecordsError::InvalidUtf8(what)),
        }
    }

    fn string(&mut self, what: &'static str) -> Result<String> {
        self.nullable_string(what)?
            .ok_or(RecordsError::UnexpectedNull(what))
    }

    fn bytes(&mut self, what: &'static str) -> Result<Bytes> {
        let n = self
            .length(what, true)?
            .ok_or(RecordsError::UnexpectedNull(what))?;
        Ok(Bytes::copy_from_slice(self.take(n, what)?))
    }

    /// Skips the tagged fields of a flexible structure (none are defined by these schemas).
    fn tagged_fields(&mut self) -> Result<()> {
        if !self.flexible {
            return Ok(());
        }
        let count = self.uvarint("tagged field count")?;
        for _ in 0..count {
            self.uvarint("tagged field tag")?;
            let size = self.uvarint("tagged field size")?;
            self.take(size as usize, "tagged field")?;
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(RecordsError::TrailingBytes(n)),
        }
    }
}

/// Encodes a key: offset keys with version 1 (Kafka's `OffsetCommitKey`), group keys with
/// version 2 (`GroupMetadataKey`).
pub fn encode_key(key: &OffsetsKey) -> Bytes {
    let mut buf = BytesMut::new();
    match key {
        OffsetsKey::Offset {
            group,
            topic,
            partition,
        } => {
            buf.put_i16(1);
            put_str(&mut buf, group);
            put_str(&mut buf, topic);
            buf.put_i32(*partition);
        }
        OffsetsKey::Group { group } => {
            buf.put_i16(2);
            put_str(&mut buf, group);
        }
    }
    buf.freeze()
}

/// Decodes a key. [`RecordsError::UnknownKeyVersion`] marks a record type this broker does not
/// use (replay may skip it, as Kafka does for record types it ignores).
pub fn decode_key(bytes: &[u8]) -> Result<OffsetsKey> {
    let mut r = Reader::new(bytes);
    let key = match r.i16("key version")? {
        0 | 1 => OffsetsKey::Offset {
            group: r.string("group")?,
            topic: r.string("topic")?,
            partition: r.i32("partition")?,
        },
        2 => OffsetsKey::Group {
            group: r.string("group")?,
        },
        v => return Err(RecordsError::UnknownKeyVersion(v)),
    };
    r.finish()?;
    Ok(key)
}

/// Encodes a committed offset as Kafka does: version 1 when it has an expire timestamp (that
/// version has no leader epoch), else version 3, the newest non-flexible version.
pub fn encode_offset_value(v: &OffsetValue) -> Bytes {
    let mut buf = BytesMut::new();
    match v.expire_timestamp {
        Some(expire) => {
            buf.put_i16(1);
            buf.put_i64(v.offset);
            put_str(&mut buf, &v.metadata);
            buf.put_i64(v.commit_timestamp);
            buf.put_i64(expire);
        }
        None => {
            buf.put_i16(3);
            buf.put_i64(v.offset);
            buf.put_i32(v.leader_epoch);
            put_str(&mut buf, &v.metadata);
            buf.put_i64(v.commit_timestamp);
        }
    }
    buf.freeze()
}

/// Decodes a committed offset of any version from 0 to 4.
pub fn decode_offset_value(bytes: &[u8]) -> Result<OffsetValue> {
    let mut r = Reader::new(bytes);
    let version = r.i16("offset value version")?;
    if !(0..=4).contains(&version) {
        return Err(RecordsError::UnsupportedVersion(
            "offset commit value",
            version,
        ));
    }
    r.flexible = version >= 4;
    let offset = r.i64("offset")?;
    let leader_epoch = if version >= 3 {
        r.i32("leader epoch")?
    } else {
        -1
    };
    let metadata = r.string("metadata")?;
    let commit_timestamp = r.i64("commit timestamp")?;
    let expire_timestamp = if version == 1 {
        Some(r.i64("expire timestamp")?).filter(|&t| t != -1)
    } else {
        None
    };
    r.tagged_fields()?;
    r.finish()?;
    Ok(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
        expire_timestamp,
    })
}

/// Version Kafka writes group metadata with (`GROUP_METADATA_VALUE_VERSION`).
const GROUP_VALUE_VERSION: i16 = 3;

/// Encodes a group's metadata with version 3, as Kafka does.
pub fn encode_group_value(v: &GroupValue) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(GROUP_VALUE_VERSION);
    put_str(&mut buf, &v.protocol_type);
    buf.put_i32(v.generation);
    put_nullable_str(&mut buf, v.protocol.as_deref());
    put_nullable_str(&mut buf, v.leader.as_deref());
    buf.put_i64(v.current_state_timestamp);
    buf.put_i32(i32::try_from(v.members.len()).unwrap_or(i32::MAX));
    for m in &v.members {
        put_str(&mut buf, &m.member_id);
        put_nullable_str(&mut buf, m.group_instance_id.as_deref());
        put_str(&mut buf, &m.client_id);
        put_str(&mut buf, &m.client_host);
        buf.put_i32(m.rebalance_timeout_ms);
        buf.put_i32(m.session_timeout_ms);
        put_bytes(&mut buf, &m.subscription);
        put_bytes(&mut buf, &m.assignment);
    }
    buf.freeze()
}

/// Decodes a group's metadata of any version from 0 to 4.
pub fn decode_group_value(bytes: &[u8]) -> Result<GroupValue> {
    let mut r = Reader::new(bytes);
    let version = r.i16("group value version")?;
    if !(0..=4).contains(&version) {
        return Err(RecordsError::UnsupportedVersion(
            "group metadata value",
            version,
        ));
    }
    r.flexible = version >= 4;
    let protocol_type = r.string("protocol type")?;
    let generation = r.i32("generation")?;
    let protocol = r.nullable_string("protocol")?;
    let leader = r.nullable_string("leader")?;
    let current_state_timestamp = if version >= 2 {
        r.i64("current state timestamp")?
    } else {
        -1
    };
    let count = r
        .length("members", true)?
        .ok_or(RecordsError::UnexpectedNull("members"))?;
    let mut members = Vec::new();
    for _ in 0..count {
        let member_id = r.string("member id")?;
        let group_instance_id = if version >= 3 {
            r.nullable_string("group instance id")?
        } else {
            None
        };
        let client_id = r.string("client id")?;
        let client_host = r.string("client host")?;
        let rebalance_timeout = if version >= 1 {
            Some(r.i32("rebalance timeout")?)
        } else {
            None
        };
        let session_timeout_ms = r.i32("session timeout")?;
        members.push(MemberValue {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms: rebalance_timeout.unwrap_or(session_timeout_ms),
            session_timeout_ms,
            subscription: r.bytes("subscription")?,
            assignment: r.bytes("assignment")?,
        });
        r.tagged_fields()?;
    }
    r.tagged_fields()?;
    r.finish()?;
    Ok(GroupValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp,
        members,
    })
}

/// Builds one uncompressed magic-2 batch (no producer id, base offset 0: the log assigns
/// offsets) of `records` (key, value or `None` for a tombstone), all with CreateTime `now_ms`.
pub fn build_batch(records: &[(Bytes, Option<Bytes>)], now_ms: i64) -> Result<Bytes> {
    let mut builder = RecordBatchBuilder::new();
    for (key, value) in records {
        builder.push(now_ms, Some(key), value.as_deref(), &[]);
    }
    builder
        .finish(&BatchOptions::default())
        .map_err(|e| match e {
            BatchBuildError::Empty => RecordsError::EmptyBatch,
            e => RecordsError::Encode(e.to_string()),
        })
}

/// Bytes read from the log per call while replaying (a larger first batch is read whole).
const READ_CHUNK: u32 = 1 << 20;

/// Reads every record of `partition` from `from` (clamped to the log start) to the log end, in
/// offset order, to replay them when the coordinator starts. Control batches are skipped, and
/// so is a partial batch at the end of a read; a record without a key is an error, as in Kafka,
/// and so is a batch whose records would pass the topic's decompression limit.
pub fn read_records(partition: &Partition, from: i64) -> Result<Vec<OffsetsRecord>> {
    let end = partition.log_end_offset();
    let mut next = from.max(partition.log_start_offset());
    let limit = partition.decompression_limit();
    let mut out = Vec::new();
    while next < end {
        let Some(slice) = partition.read_range(next, READ_CHUNK, true, end)? else {
            break;
        };
        let len = usize::try_from(slice.len).map_err(|_| RecordsError::CorruptBatch {
            offset: slice.first_offset,
            reason: format!("read of {} bytes", slice.len),
        })?;
        let mut raw = vec![0u8; len];
        slice.file.read_exact_at(&mut raw, slice.position)?;
        let raw = Bytes::from(raw);
        let before = next;
        let mut pos = 0;
        while let Ok(header) = BatchHeader::parse(&raw[pos..]) {
            let size = header.total_size();
            if raw.len() - pos < size {
                break;
            }
            let batch = raw.slice(pos..pos + size);
            pos += size;
            next = header.next_offset();
            if header.is_control() {
                continue;
            }
            let set = decode_batch(&batch, limit).map_err(|reason| RecordsError::CorruptBatch {
                offset: header.base_offset,
                reason,
            })?;
            for record in set.records {
                if record.offset < from || record.control {
                    continue;
                }
                let key = record.key.ok_or_else(|| RecordsError::CorruptBatch {
                    offset: record.offset,
                    reason: "record without a key".into(),
                })?;
                // Copies, so that the records do not keep the whole chunk read alive.
                out.push(OffsetsRecord {
                    offset: record.offset,
                    key: Bytes::copy_from_slice(&key),
                    value: record.value.as_deref().map(Bytes::copy_from_slice),
                });
            }
        }
        if next <= before {
            return Err(RecordsError::CorruptBatch {
                offset: before,
                reason: "no whole batch could be read".into(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    /// A classic string, as the schemas define it.
    fn s(b: &mut Vec<u8>, x: &str) {
        b.extend((x.len() as i16).to_be_bytes());
        b.extend(x.as_bytes());
    }

    /// A compact string (short ones only: one-byte varint).
    fn cs(b: &mut Vec<u8>, x: &str) {
        b.push(x.len() as u8 + 1);
        b.extend(x.as_bytes());
    }

    fn offset_value(expire: Option<i64>) -> OffsetValue {
        OffsetValue {
            offset: 42,
            leader_epoch: if expire.is_some() { -1 } else { 7 },
            metadata: "meta".into(),
            commit_timestamp: NOW,
            expire_timestamp: expire,
        }
    }

    fn sample_group() -> GroupValue {
        let member = |id: &str, instance: Option<&str>| MemberValue {
            member_id: id.into(),
            group_instance_id: instance.map(Into::into),
            client_id: "client".into(),
            client_host: "/10.0.0.1".into(),
            rebalance_timeout_ms: 300_000,
            session_timeout_ms: 45_000,
            subscription: Bytes::from_static(b"\x00\x01sub"),
            assignment: Bytes::from_static(b"\x00\x01assign"),
        };
        GroupValue {
            protocol_type: "consumer".into(),
            generation: 3,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp: NOW,
            members: vec![member("m1", None), member("m2", Some("static-2"))],
        }
    }

    #[test]
    fn keys_round_trip_in_kafkas_layout() {
        let key = OffsetsKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 7,
        };
        let bytes = encode_key(&key);
        assert_eq!(&bytes[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 7]);
        assert_eq!(decode_key(&bytes).unwrap(), key);
        assert_eq!(key.group(), "g");
        let v0 = [0, 0, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 7];
        assert_eq!(decode_key(&v0).unwrap(), key);

        let key = OffsetsKey::Group {
            group: "grp".into(),
        };
        let bytes = encode_key(&key);
        assert_eq!(&bytes[..], &[0, 2, 0, 3, b'g', b'r', b'p']);
        assert_eq!(decode_key(&bytes).unwrap(), key);
        assert_eq!(key.group(), "grp");
    }

    #[test]
    fn offset_values_round_trip_as_v3_or_v1() {
        let v3 = offset_value(None);
        let bytes = encode_offset_value(&v3);
        assert_eq!(&bytes[..2], &[0, 3]);
        assert_eq!(bytes.len(), 2 + 8 + 4 + 2 + 4 + 8);
        assert_eq!(decode_offset_value(&bytes).unwrap(), v3);

        let v1 = offset_value(Some(NOW + 1000));
        let bytes = encode_offset_value(&v1);
        assert_eq!(&bytes[..2], &[0, 1]);
        assert_eq!(bytes.len(), 2 + 8 + 2 + 4 + 8 + 8);
        assert_eq!(decode_offset_value(&bytes).unwrap(), v1);
    }

    #[test]
    fn offset_values_of_other_versions_decode() {
        let expected = |epoch, expire| OffsetValue {
            leader_epoch: epoch,
            expire_timestamp: expire,
            ..offset_value(None)
        };
        for version in [0i16, 1, 2] {
            let mut b = version.to_be_bytes().to_vec();
            b.extend(42i64.to_be_bytes());
            s(&mut b, "meta");
            b.extend(NOW.to_be_bytes());
            if version == 1 {
                b.extend((NOW + 5).to_be_bytes());
            }
            let expire = (version == 1).then_some(NOW + 5);
            assert_eq!(
                decode_offset_value(&b).unwrap(),
                expected(-1, expire),
                "v{version}"
            );
        }
        // Version 1 with the default expire timestamp (-1) has none.
        let mut b = vec![0, 1];
        b.extend(42i64.to_be_bytes());
        s(&mut b, "meta");
        b.extend(NOW.to_be_bytes());
        b.extend((-1i64).to_be_bytes());
        assert_eq!(decode_offset_value(&b).unwrap(), expected(-1, None));

        // Version 4: flexible, with an unknown tagged field to skip.
        let mut b = vec![0, 4];
        b.extend(42i64.to_be_bytes());
        b.extend(9i32.to_be_bytes());
        cs(&mut b, "meta");
        b.extend(NOW.to_be_bytes());
        b.extend([1, 5, 2, 0xAA, 0xBB]);
        assert_eq!(decode_offset_value(&b).unwrap(), expected(9, None));
    }

    #[test]
    fn group_values_round_trip_as_v3() {
        let group = sample_group();
        let bytes = encode_group_value(&group);
        assert_eq!(&bytes[..2], &[0, 3]);
        assert_eq!(decode_group_value(&bytes).unwrap(), group);

        let empty = GroupValue {
            protocol_type: String::new(),
            generation: 0,
            protocol: None,
            leader: None,
            current_state_timestamp: -1,
            members: Vec::new(),
        };
        let bytes = encode_group_value(&empty);
        let mut expected = vec![0, 3, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        expected.extend((-1i64).to_be_bytes());
        expected.extend(0i32.to_be_bytes());
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(decode_group_value(&bytes).unwrap(), empty);
    }

    #[test]
    fn group_values_of_v0_and_v4_decode() {
        let mut b = vec![0, 0];
        s(&mut b, "consumer");
        b.extend(5i32.to_be_bytes());
        s(&mut b, "range");
        s(&mut b, "m1");
        b.extend(1i32.to_be_bytes());
        s(&mut b, "m1");
        s(&mut b, "client");
        s(&mut b, "host");
        b.extend(10_000i32.to_be_bytes());
        b.extend(2i32.to_be_bytes());
        b.extend([1, 2]);
        b.extend(0i32.to_be_bytes());
        let v0 = decode_group_value(&b).unwrap();
        assert_eq!(
            v0,
            GroupValue {
                protocol_type: "consumer".into(),
                generation: 5,
                protocol: Some("range".into()),
                leader: Some("m1".into()),
                current_state_timestamp: -1,
                members: vec![MemberValue {
                    member_id: "m1".into(),
                    group_instance_id: None,
                    client_id: "client".into(),
                    client_host: "host".into(),
                    rebalance_timeout_ms: 10_000,
                    session_timeout_ms: 10_000,
                    subscription: Bytes::from_static(&[1, 2]),
                    assignment: Bytes::new(),
                }],
            }
        );

        let mut b = vec![0, 4];
        cs(&mut b, "consumer");
        b.extend(6i32.to_be_bytes());
        b.extend([0, 0]); // null protocol and leader
        b.extend(NOW.to_be_bytes());
        b.push(2); // one member
        cs(&mut b, "m1");
        cs(&mut b, "i1");
        cs(&mut b, "client");
        cs(&mut b, "host");
        b.extend(60_000i32.to_be_bytes());
        b.extend(10_000i32.to_be_bytes());
        b.extend([3, 1, 2]);
        b.push(1);
        b.push(0); // member tagged fields
        b.extend([1, 0, 1, 7]); // group tagged fields: one unknown
        let v4 = decode_group_value(&b).unwrap();
        assert_eq!(v4.protocol, None);
        assert_eq!(v4.leader, None);
        assert_eq!(v4.current_state_timestamp, NOW);
        let m = &v4.members[0];
        assert_eq!(m.group_instance_id.as_deref(), Some("i1"));
        assert_eq!(
            (m.rebalance_timeout_ms, m.session_timeout_ms),
            (60_000, 10_000)
        );
        assert_eq!(
            (&m.subscription[..], &m.assignment[..]),
            (&[1u8, 2][..], &[][..])
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(matches!(
            decode_key(&[0, 3, 0, 0]),
            Err(RecordsError::UnknownKeyVersion(3))
        ));
        assert!(matches!(
            decode_key(&[0xff, 0xff]),
            Err(RecordsError::UnknownKeyVersion(-1))
        ));
        assert!(matches!(
            decode_key(&[0, 2, 0xff, 0xff]),
            Err(RecordsError::UnexpectedNull(_))
        ));
        assert!(matches!(
            decode_key(&[0, 2, 0xff, 0xfe]),
            Err(RecordsError::InvalidLength(..))
        ));
        assert!(matches!(
            decode_key(&[0, 2, 0, 1, 0xff]),
            Err(RecordsError::InvalidUtf8(_))
        ));
        assert!(matches!(
            decode_key(&[0, 2, 0, 0, 9]),
            Err(RecordsError::TrailingBytes(1))
        ));
        for version in [5i16, -1] {
            let b = version.to_be_bytes();
            assert!(matches!(
                decode_offset_value(&b),
                Err(RecordsError::UnsupportedVersion(..))
            ));
            assert!(matches!(
                decode_group_value(&b),
                Err(RecordsError::UnsupportedVersion(..))
            ));
        }
        let mut b = vec![0, 4];
        b.extend([0; 12]);
        b.extend([0xff; 6]);
        assert!(matches!(
            decode_offset_value(&b),
            Err(RecordsError::InvalidVarint(_))
        ));
        let mut b = vec![0, 0];
        s(&mut b, "consumer");
        b.extend([
            0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ]);
        assert!(matches!(
            decode_group_value(&b),
            Err(RecordsError::UnexpectedNull("members"))
        ));
        let mut b = encode_offset_value(&offset_value(None)).to_vec();
        b.push(0);
        assert!(matches!(
            decode_offset_value(&b),
            Err(RecordsError::TrailingBytes(1))
        ));
    }

    #[test]
    fn truncated_and_corrupted_input_never_panics() {
        type Decoder = fn(&[u8]) -> bool;
        let key: Decoder = |b| decode_key(b).is_ok();
        let offset: Decoder = |b| decode_offset_value(b).is_ok();
        let group: Decoder = |b| decode_group_value(b).is_ok();
        let mut v4 = vec![0, 4];
        v4.extend(42i64.to_be_bytes());
        v4.extend(9i32.to_be_bytes());
        cs(&mut v4, "meta");
        v4.extend(NOW.to_be_bytes());
        v4.push(0);
        let cases: Vec<(Decoder, Vec<u8>)> = vec![
            (
                key,
                encode_key(&OffsetsKey::Group { group: "g".into() }).to_vec(),
            ),
            (
                key,
                encode_key(&OffsetsKey::Offset {
                    group: "group".into(),
                    topic: "topic".into(),
                    partition: 1,
                })
                .to_vec(),
            ),
            (offset, encode_offset_value(&offset_value(None)).to_vec()),
            (
                offset,
                encode_offset_value(&offset_value(Some(NOW))).to_vec(),
            ),
            (offset, v4),
            (group, encode_group_value(&sample_group()).to_vec()),
        ];
        for (decode, valid) in cases {
            assert!(decode(&valid));
            for n in 0..valid.len() {
                assert!(
                    !decode(&valid[..n]),
                    "prefix of {n} bytes of {valid:?} decoded"
                );
            }
            // Flipped bytes may decode or not, but must never panic.
            for at in 0..valid.len() {
                for flip in [0x01u8, 0x80, 0xff] {
                    let mut bad = valid.clone();
                    bad[at] ^= flip;
                    let _ = decode(&bad);
                }
            }
        }
    }

    fn open_log(dir: &std::path::Path, segment_bytes: u64) -> Partition {
        Partition::open_for_tests(dir, "__consumer_offsets", NOW, |c| {
            c.segment_bytes = segment_bytes
        })
    }

    #[test]
    fn batches_round_trip_through_a_log_of_several_segments() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), 400);
        let key = |p: i32| {
            encode_key(&OffsetsKey::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: p,
            })
        };
        let value = |o: i64| {
            Some(encode_offset_value(&OffsetValue {
                offset: o,
                ..offset_value(None)
            }))
        };
        let group_key = encode_key(&OffsetsKey::Group { group: "g".into() });
        let batches: Vec<Vec<(Bytes, Option<Bytes>)>> = vec![
            vec![(key(0), value(1))],
            vec![(key(1), value(2)), (key(2), value(3))],
            vec![(group_key.clone(), Some(encode_group_value(&sample_group())))],
            vec![(key(0), None), (group_key, None)],
            vec![(key(3), value(4))],
            vec![(key(4), value(5)), (key(5), value(6)), (key(6), value(7))],
        ];
        let mut expected = Vec::new();
        for batch in &batches {
            let info = log
                .append_as_leader(&build_batch(batch, NOW).unwrap(), NOW)
                .unwrap();
            for (i, (k, v)) in batch.iter().enumerate() {
                expected.push(OffsetsRecord {
                    offset: info.base_offset + i as i64,
                    key: k.clone(),
                    value: v.clone(),
                });
            }
        }
        assert!(log.segment_count() >= 2, "{} segments", log.segment_count());
        assert_eq!(read_records(&log, 0).unwrap(), expected);
        assert_eq!(read_records(&log, -5).unwrap(), expected);
        // From the middle of a batch: the earlier records of that batch are skipped.
        assert_eq!(read_records(&log, 2).unwrap(), expected[2..]);
        assert_eq!(read_records(&log, 9).unwrap(), expected[9..]);
        assert!(read_records(&log, log.log_end_offset()).unwrap().is_empty());
        assert!(read_records(&log, 1000).unwrap().is_empty());
        let tombstone = &expected[4];
        assert_eq!(tombstone.value, None);
        assert_eq!(
            decode_key(&tombstone.key).unwrap(),
            OffsetsKey::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 0
            }
        );
        assert!(matches!(
            build_batch(&[], NOW),
            Err(RecordsError::EmptyBatch)
        ));
    }

    #[test]
    fn segments_larger_than_a_read_chunk_are_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), 1 << 30);
        let value = Bytes::from(vec![b'x'; 3000]);
        let count = (READ_CHUNK as usize / 3000) * 2 + 7;
        for i in 0..count {
            let key = encode_key(&OffsetsKey::Group {
                group: format!("g{i}"),
            });
            let batch = build_batch(&[(key, Some(value.clone()))], NOW).unwrap();
            log.append_as_leader(&batch, NOW).unwrap();
        }
        assert_eq!(log.segment_count(), 1);
        let records = read_records(&log, 0).unwrap();
        assert_eq!(records.len(), count);
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.offset, i as i64);
            assert_eq!(decode_key(&r.key).unwrap().group(), format!("g{i}"));
        }
    }

    #[test]
    fn a_batch_beyond_the_decompression_limit_is_an_error_not_an_allocation() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), 1 << 30);
        let limit = log.decompression_limit();
        let key = encode_key(&OffsetsKey::Group { group: "g".into() });
        log.append_as_leader(&build_batch(&[(key.clone(), None)], NOW).unwrap(), NOW)
            .unwrap();
        // A zstd batch of one record whose value is one byte longer than the limit.
        let mut builder = RecordBatchBuilder::new();
        builder.push(NOW, Some(&key), Some(&vec![0u8; limit + 1]), &[]);
        let options = BatchOptions {
            compression: sluice_storage::Compression::Zstd,
            ..BatchOptions::default()
        };
        let bomb = builder.finish(&options).unwrap();
        assert!(bomb.len() < 1 << 20);
        log.append_as_leader(&bomb, NOW).unwrap();
        match read_records(&log, 0) {
            Err(RecordsError::CorruptBatch { offset: 1, reason }) => {
                assert!(reason.contains("exceed"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
}
