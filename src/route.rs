//! Routing by key: the one hash every keyed operator exchanges records by and every restore
//! re-routes state by — XXH64 with seed 0, stable across workers, processes and builds.

use std::hash::{Hash, Hasher};

/// The hash a keyed operator routes a record's key by: XXH64 with seed 0 over the key's `Hash`
/// bytes, stable across workers, processes and builds (std's `DefaultHasher` is not promised to
/// be).
pub fn route_hash<K: Hash>(key: &K) -> u64 {
    let mut hasher = twox_hash::XxHash64::with_seed(0);
    key.hash(&mut hasher);
    hasher.finish()
}

/// The worker (of `peers`) that owns `key`: where timely's exchange sends a record routed by
/// [`route_hash`] (`hash mod peers`), and where a restored state of the key belongs.
pub fn owner<K: Hash>(key: &K, peers: usize) -> usize {
    (route_hash(key) % peers.max(1) as u64) as usize
}

/// Shards a logic may group keys into when its state is per group, not per key (q5's and q8's
/// per-window maps): enough to spread over many workers, few enough that closing a window costs
/// a few hundred records or map drops at most.
pub const SHARDS: u64 = 256;

/// The shard (of [`SHARDS`]) of `key`, by [`route_hash`]: stable across runs, so a shard's
/// state can be restored at another worker count like any key's.
pub fn shard<K: Hash>(key: &K) -> u16 {
    (route_hash(key) % SHARDS) as u16
}

/// A key with its [`route_hash`] computed once, where it is made: routing it and looking it up
/// in a worker's maps then hash one `u64` instead of the whole key (a string key is otherwise
/// hashed three times per record: to route it, to stash it, to find its state). Equal keys have
/// equal hashes, so equality and order are the key's own; it is serialised as the key alone (the
/// hash is computed again when read back, so checkpoints hold the plain key).
#[derive(Clone, Debug)]
pub struct Prehashed<K> {
    hash: u64,
    key: K,
}

impl<K: Hash> Prehashed<K> {
    /// `key` with its hash.
    pub fn new(key: K) -> Self {
        Prehashed {
            hash: route_hash(&key),
            key,
        }
    }
}

impl<K> Prehashed<K> {
    /// The key.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// The key, without its hash.
    pub fn into_key(self) -> K {
        self.key
    }
}

impl<K> Hash for Prehashed<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl<K: PartialEq> PartialEq for Prehashed<K> {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.key == other.key
    }
}

impl<K: Eq> Eq for Prehashed<K> {}

impl<K: Ord> PartialOrd for Prehashed<K> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<K: Ord> Ord for Prehashed<K> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

impl<K: serde::Serialize> serde::Serialize for Prehashed<K> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.key.serialize(serializer)
    }
}

impl<'de, K: serde::Deserialize<'de> + Hash> serde::Deserialize<'de> for Prehashed<K> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        K::deserialize(deserializer).map(Prehashed::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prehashed_keys_compare_and_serialise_as_their_key() {
        let (a, b) = (
            Prehashed::new("apple".to_string()),
            Prehashed::new("baidu".to_string()),
        );
        assert_eq!(a, Prehashed::new("apple".to_string()));
        assert_ne!(a, b);
        assert!(a < b);
        assert_eq!(route_hash(&a), route_hash(&a.clone()));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, "\"apple\"");
        let back: Prehashed<String> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
        assert_eq!(route_hash(&back), route_hash(&a));
        assert_eq!(back.into_key(), "apple");
    }
}
