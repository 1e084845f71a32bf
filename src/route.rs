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
