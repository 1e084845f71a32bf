//! The shared skeleton of Sluice's keyed event-time operators (windows, sessions, counts): how
//! they route records, reject late ones, and move their capabilities forward.
//!
//! Each such operator has one input exchanged by key, a results output whose capability is held
//! at the earliest time it may still emit at, and a dead-letter output for late records.

use crate::deadletter::{DeadLetter, Origin, Reason};
use crate::time::EventTime;
use serde::Serialize;
use std::collections::hash_map::DefaultHasher;
use std::hash::{BuildHasher, BuildHasherDefault, Hash};
use timely::dataflow::operators::Capability;

/// The hash a keyed operator routes a record's key by (the same on every worker and process).
pub fn route_hash<K: Hash>(key: &K) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(key)
}

/// The dead letter of `record`, which arrived too late for `operator`.
pub fn late_letter<R: Serialize>(operator: &str, record: &R, detail: String) -> DeadLetter {
    let raw = serde_json::to_vec(record).unwrap_or_default();
    DeadLetter::new(
        Origin::Operator {
            operator: operator.to_string(),
        },
        Reason::Late,
        detail,
        &raw,
    )
}

/// After an activation: holds the results capability at the earlier of `next_output` (the
/// earliest pending result) and the input `frontier`, the dead-letter capability at the
/// frontier, and drops both once the frontier is empty (`None`).
pub fn advance(
    frontier: Option<EventTime>,
    next_output: Option<EventTime>,
    results: &mut Option<Capability<EventTime>>,
    late: &mut Option<Capability<EventTime>>,
) {
    let Some(f) = frontier else {
        *results = None;
        *late = None;
        return;
    };
    if let Some(cap) = results.as_mut() {
        let next = next_output.map_or(f, |n| n.min(f));
        if next > *cap.time() {
            cap.downgrade(&next);
        }
    }
    if let Some(cap) = late.as_mut() {
        if f > *cap.time() {
            cap.downgrade(&f);
        }
    }
}
