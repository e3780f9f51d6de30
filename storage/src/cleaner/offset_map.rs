//! [`OffsetMap`]: the cleaner's map from record key to the latest offset of that key in the
//! dirty section (Kafka's `SkimpyOffsetMap`), bounded by `log.cleaner.dedupe.buffer.size`.
//!
//! Keys are not stored: each is reduced to a 16-byte digest, as Kafka does with MD5. The digest
//! here is two SipHash-1-3 values under random keys drawn when the map is created, so clients
//! cannot craft keys that collide (MD5 collisions can be crafted). Two different keys sharing a
//! digest by chance (about 2^-64 for a billion keys) would make the cleaner drop the older
//! record of one of them, as in Kafka.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// The digest a key is reduced to.
type KeyDigest = [u8; 16];

/// Bytes of one map slot: the digest and the offset (what Kafka counts per entry).
const SLOT_BYTES: usize = 24;
/// Bytes the hash table spends per bucket: the slot and one control byte.
const BUCKET_BYTES: usize = SLOT_BYTES + 1;
/// The table keeps at most 7 of every 8 buckets full before it grows (hashbrown's load factor).
const LOAD_NUMERATOR: usize = 7;
/// See [`LOAD_NUMERATOR`].
const LOAD_DENOMINATOR: usize = 8;

/// A hasher for keys that are already uniformly random digests: it uses their first 8 bytes.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
}

/// Key digest → latest offset, with a fixed maximum number of entries.
#[derive(Debug)]
pub struct OffsetMap {
    seeds: (RandomState, RandomState),
    entries: HashMap<KeyDigest, i64, BuildHasherDefault<DigestHasher>>,
    max_entries: usize,
    /// The largest offset put in the map (-1 when empty), Kafka's `latestOffset`.
    latest_offset: i64,
}

impl OffsetMap {
    /// A map whose hash table never takes more than `memory_bytes` once full. The table grows
    /// by doubling as entries arrive, so it holds the largest power-of-two bucket count that
    /// fits in `memory_bytes`, at its load factor; while it grows, the old and new tables
    /// briefly coexist (up to 1.5 times the final size). At least 7 entries are always allowed.
    pub fn with_memory(memory_bytes: u64) -> OffsetMap {
        let buckets = usize::try_from(memory_bytes)
            .unwrap_or(usize::MAX)
            .checked_div(BUCKET_BYTES)
            .unwrap_or(0);
        let buckets = match buckets {
            0..=8 => 8,
            n => 1usize << (usize::BITS - 1 - n.leading_zeros()),
        };
        OffsetMap {
            seeds: (RandomState::new(), RandomState::new()),
            entries: HashMap::default(),
            max_entries: buckets / LOAD_DENOMINATOR * LOAD_NUMERATOR,
            latest_offset: -1,
        }
    }

    /// The digest of `key`.
    fn digest(&self, key: &[u8]) -> KeyDigest {
        let mut digest = [0u8; 16];
        digest[..8].copy_from_slice(&self.seeds.0.hash_one(key).to_be_bytes());
        digest[8..].copy_from_slice(&self.seeds.1.hash_one(key).to_be_bytes());
        digest
    }

    /// Records `offset` as the latest offset of `key`. Offsets must be put in increasing order
    /// (the dirty section is read forward). Returns false, changing nothing, when the key is
    /// new and the map is full.
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        debug_assert!(offset > self.latest_offset, "offsets are put in order");
        let digest = self.digest(key);
        if self.entries.len() >= self.max_entries && !self.entries.contains_key(&digest) {
            return false;
        }
        self.entries.insert(digest, offset);
        self.latest_offset = offset;
        true
    }

    /// The latest offset recorded for `key`.
    pub fn get(&self, key: &[u8]) -> Option<i64> {
        self.entries.get(&self.digest(key)).copied()
    }

    /// Number of distinct keys (digests) in the map.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map holds no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many more new keys the map accepts.
    pub fn remaining_capacity(&self) -> usize {
        self.max_entries.saturating_sub(self.entries.len())
    }

    /// The most keys the map holds.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// The largest offset put in the map, -1 when empty.
    pub fn latest_offset(&self) -> i64 {
        self.latest_offset
    }

    /// Empties the map, keeping its memory for the next log.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.latest_offset = -1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_offset_wins_and_keys_stay_apart() {
        let mut map = OffsetMap::with_memory(1 << 20);
        assert!(map.is_empty());
        assert!(map.put(b"a", 1));
        assert!(map.put(b"b", 2));
        assert!(map.put(b"a", 7));
        assert_eq!(map.get(b"a"), Some(7));
        assert_eq!(map.get(b"b"), Some(2));
        assert_eq!(map.get(b"c"), None);
        assert_eq!(map.get(b""), None);
        assert_eq!((map.len(), map.latest_offset()), (2, 7));
        map.clear();
        assert_eq!(
            (map.len(), map.latest_offset(), map.get(b"a")),
            (0, -1, None)
        );
    }

    #[test]
    fn capacity_follows_memory_and_is_enforced() {
        // 1000 bytes / 25 per bucket = 40 buckets -> 32 -> 28 entries.
        let mut map = OffsetMap::with_memory(1000);
        assert_eq!(map.max_entries(), 28);
        for i in 0..28i64 {
            assert!(map.put(format!("key-{i}").as_bytes(), i));
        }
        assert_eq!(map.remaining_capacity(), 0);
        assert!(!map.put(b"one too many", 100), "a new key is refused");
        assert_eq!(map.get(b"one too many"), None);
        assert!(map.put(b"key-3", 101), "a known key is updated");
        assert_eq!(map.get(b"key-3"), Some(101));
        assert_eq!(OffsetMap::with_memory(0).max_entries(), 7);
        let default = OffsetMap::with_memory(128 << 20);
        assert_eq!(default.max_entries(), (1 << 22) / 8 * 7);
        assert!(default.max_entries() * BUCKET_BYTES * 8 / 7 <= 128 << 20);
    }

    #[test]
    fn digests_differ_between_maps_but_lookups_agree() {
        let a = OffsetMap::with_memory(1 << 16);
        let b = OffsetMap::with_memory(1 << 16);
        assert_eq!(a.digest(b"k"), a.digest(b"k"));
        assert_ne!(a.digest(b"k"), b.digest(b"k"), "random keys per map");
        assert_ne!(a.digest(b"k1"), a.digest(b"k2"));
    }
}
