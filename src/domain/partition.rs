//! The stable mapping of a chat to a partition queue.
//!
//! `partition = fnv1a_64(chat_id as 16 big-endian bytes) mod partition_count`.
//! FNV-1a (offset 0xcbf29ce484222325, prime 0x100000001b3) is fixed here forever:
//! changing it would reorder chats in flight. Any client can recompute it.

use uuid::Uuid;

pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The partition index of a chat.
pub fn partition_of(chat_id: Uuid, partition_count: u16) -> u16 {
    let count = u64::from(partition_count.max(1));
    // The remainder is < partition_count, so it fits in u16.
    (fnv1a_64(chat_id.as_bytes()) % count) as u16
}

/// Queue name (and routing key) of a partition: `<prefix>.<n>`.
pub fn queue_name(prefix: &str, partition: u16) -> String {
    format!("{prefix}.{partition}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_vectors() {
        assert_eq!(fnv1a_64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn partition_is_stable_and_in_range() {
        let id = Uuid::parse_str("5f0c7a2e-8d1b-4c3e-9a7f-2b6d1e0f4a11").unwrap();
        // Pinned (computed independently): if this changes, chats in flight would move partition.
        assert_eq!(fnv1a_64(id.as_bytes()), 0x68ab31b3d3bfca41);
        assert_eq!(partition_of(id, 8), 1);
        assert_eq!(partition_of(id, 3), 2);
        assert_eq!(partition_of(id, 1), 0);
        for _ in 0..1000 {
            assert!(partition_of(Uuid::new_v4(), 8) < 8);
        }
    }

    #[test]
    fn partitions_are_spread() {
        let mut counts = [0u32; 8];
        for _ in 0..8000 {
            counts[partition_of(Uuid::new_v4(), 8) as usize] += 1;
        }
        assert!(counts.iter().all(|c| (700..1300).contains(c)), "{counts:?}");
    }

    #[test]
    fn queue_names() {
        assert_eq!(queue_name("chat.message.send", 3), "chat.message.send.3");
    }
}
