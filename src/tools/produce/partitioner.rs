//! Which partition a record goes to, as Kafka's producers choose: the partition given, else the
//! murmur2 hash of the key (Kafka's default partitioner, so keys land where a Java or
//! librdkafka `murmur2_random` producer puts them), else round-robin.

/// Kafka's `Utils.murmur2`: the 32-bit MurmurHash2 with Kafka's seed.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, b) in rest.iter().enumerate() {
            h ^= u32::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Chooses partitions for records.
#[derive(Debug, Clone)]
pub struct Partitioner {
    count: i32,
    fixed: Option<i32>,
    next: i32,
}

impl Partitioner {
    /// A partitioner over `count` partitions; `fixed` sends every record to that partition.
    pub fn new(count: i32, fixed: Option<i32>) -> Partitioner {
        Partitioner {
            count: count.max(1),
            fixed,
            next: 0,
        }
    }

    /// The partition of a record with `key`.
    pub fn partition(&mut self, key: Option<&[u8]>) -> i32 {
        if let Some(p) = self.fixed {
            return p;
        }
        match key {
            Some(k) => (murmur2(k) & 0x7fff_ffff) % self.count,
            None => {
                let p = self.next;
                self.next = (self.next + 1) % self.count;
                p
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Kafka's UtilsTest.testMurmur2.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (data, hash) in cases {
            assert_eq!(murmur2(data), hash, "{}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn keys_hash_unkeyed_round_robin_fixed_wins() {
        let mut p = Partitioner::new(3, None);
        assert_eq!(
            p.partition(Some(b"foobar")),
            (-790_332_482i32 & 0x7fff_ffff) % 3
        );
        assert_eq!(
            [
                p.partition(None),
                p.partition(None),
                p.partition(None),
                p.partition(None)
            ],
            [0, 1, 2, 0]
        );
        let mut fixed = Partitioner::new(3, Some(2));
        assert_eq!(fixed.partition(Some(b"foobar")), 2);
        assert_eq!(fixed.partition(None), 2);
    }
}
