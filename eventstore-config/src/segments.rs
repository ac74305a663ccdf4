//! Segments: a log follower (a projection, the order saga, the relay) split into N parts that
//! different workers (in different processes, on different hosts) apply side by side.
//!
//! An event belongs to segment `fnv1a64(key) mod N`, where the key is the UTF-8 bytes of the
//! aggregate id (the saga: the order id the event is about) and `fnv1a64` is the 64-bit FNV-1a
//! hash (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`) — stable across processes,
//! hosts, versions and platforms, so every worker agrees where an event goes.
//!
//! Each segment has its own checkpoint row ([`checkpoint_name`]: the follower's own name when
//! N = 1, so that a store written before segments existed keeps working, else
//! `<name>@<segment>/<N>`) and its own lease (named like the checkpoint). Every segment reads
//! the whole log in commit-safe order and keeps only its events (the filter runs in Rust, after
//! the read), then moves its checkpoint past everything it read — its own events or not.

/// The 64-bit FNV-1a hash of `key`'s UTF-8 bytes.
pub fn fnv1a64(key: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The segment (of `segments`) an event with `key` belongs to; always 0 for one segment.
pub fn segment_of(key: &str, segments: u32) -> u32 {
    (fnv1a64(key) % u64::from(segments.max(1))) as u32
}

/// The checkpoint (and lease) name of `segment` of `segments` of follower `name`: `name`
/// itself for one segment, else `name@segment/segments`.
pub fn checkpoint_name(name: &str, segment: u32, segments: u32) -> String {
    if segments <= 1 {
        name.to_string()
    } else {
        format!("{name}@{segment}/{segments}")
    }
}

/// Every checkpoint name of `name` split into `segments`, in segment order.
pub fn checkpoint_names(name: &str, segments: u32) -> Vec<String> {
    (0..segments.max(1))
        .map(|segment| checkpoint_name(name, segment, segments))
        .collect()
}

/// The follower, segment and segment count a checkpoint name stands for (`(name, 0, 1)` for
/// a name without a segment part).
pub fn parse_checkpoint_name(checkpoint: &str) -> (&str, u32, u32) {
    if let Some((name, part)) = checkpoint.rsplit_once('@') {
        if let Some((segment, segments)) = part.split_once('/') {
            if let (Ok(segment), Ok(segments)) = (segment.parse(), segments.parse()) {
                return (name, segment, segments);
            }
        }
    }
    (checkpoint, 0, 1)
}

/// One segment of a follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// This segment's index (`0..of`).
    pub index: u32,
    /// How many segments the follower has.
    pub of: u32,
}

impl Segment {
    /// The only segment of an unsplit follower.
    pub const WHOLE: Segment = Segment { index: 0, of: 1 };

    /// Whether an event with `key` belongs to this segment.
    pub fn owns(&self, key: &str) -> bool {
        self.of <= 1 || segment_of(key, self.of) == self.index
    }

    /// This segment's checkpoint (and lease) name for follower `name`.
    pub fn checkpoint_name(&self, name: &str) -> String {
        checkpoint_name(name, self.index, self.of)
    }

    /// Every segment of a follower split into `segments`.
    pub fn all(segments: u32) -> Vec<Segment> {
        let of = segments.max(1);
        (0..of).map(|index| Segment { index, of }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_has_the_published_test_vectors() {
        assert_eq!(fnv1a64(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn an_aggregate_id_falls_into_a_fixed_segment() {
        let id = "0b7f3a46-3c2e-4d55-9a51-1c8f1f1e2d3c";
        assert_eq!(segment_of(id, 1), 0);
        assert_eq!(segment_of(id, 4), (fnv1a64(id) % 4) as u32);
        assert_eq!(segment_of("a", 4), (0xaf63_dc4c_8601_ec8c_u64 % 4) as u32);
        assert_eq!(
            segment_of("foobar", 6),
            (0x8594_4171_f739_67e8_u64 % 6) as u32
        );
    }

    #[test]
    fn one_segment_keeps_the_followers_own_checkpoint_name() {
        assert_eq!(checkpoint_name("orders", 0, 1), "orders");
        assert_eq!(checkpoint_name("orders", 2, 4), "orders@2/4");
        assert_eq!(parse_checkpoint_name("orders@2/4"), ("orders", 2, 4));
        assert_eq!(parse_checkpoint_name("saga:orders"), ("saga:orders", 0, 1));
        assert_eq!(
            checkpoint_names("audit", 3),
            vec!["audit@0/3", "audit@1/3", "audit@2/3"]
        );
    }

    #[test]
    fn every_key_belongs_to_exactly_one_segment() {
        let segments = Segment::all(4);
        for i in 0..100 {
            let key = format!("key-{i}");
            assert_eq!(segments.iter().filter(|s| s.owns(&key)).count(), 1);
        }
    }
}
