//! Aggregations that window operators fold records into: an accumulator that can absorb a value,
//! merge with another (panes of a sliding window), and produce a result.
//!
//! Queries implement [`Aggregate`] for their own accumulators (e.g. several counters and distinct
//! sets at once); [`Count`], [`Sum`] and [`Max`] cover the common cases.

use serde::de::DeserializeOwned;
use serde::Serialize;
use timely::ExchangeData;

/// A mergeable aggregation.
pub trait Aggregate: 'static {
    /// What each record contributes.
    type In: 'static;
    /// The running state: plain data, so an operator's state can be captured in a checkpoint.
    type Acc: Clone + Serialize + DeserializeOwned + 'static;
    /// The result.
    type Out: ExchangeData + Clone;
    /// The state of no records.
    fn empty(&self) -> Self::Acc;
    /// Absorbs one record's value.
    fn add(&self, acc: &mut Self::Acc, value: Self::In);
    /// Absorbs another state (of disjoint records).
    fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc);
    /// The result of a state.
    fn finish(&self, acc: &Self::Acc) -> Self::Out;
    /// Whether a window operator keeps the values of records waiting for the frontier as they
    /// are, adding them to the window's accumulator when their stamp is applied, rather than
    /// folding them into an accumulator of their own and merging that in. `true` pays when an
    /// accumulator is costly to create and merge and few records share a key and stamp
    /// (distinct sets keyed by something with many values); `false` (the default) when it is a
    /// counter and many records do.
    const STASH_VALUES: bool = false;
}

/// The number of records.
#[derive(Clone, Copy, Debug, Default)]
pub struct Count;

impl Aggregate for Count {
    type In = ();
    type Acc = u64;
    type Out = u64;
    fn empty(&self) -> u64 {
        0
    }
    fn add(&self, acc: &mut u64, _: ()) {
        *acc += 1;
    }
    fn merge(&self, acc: &mut u64, other: &u64) {
        *acc += other;
    }
    fn finish(&self, acc: &u64) -> u64 {
        *acc
    }
}

/// The sum of `u64` values, kept in a `u128`: input values are untrusted, and 2⁶⁴ values of
/// up to 2⁶⁴ each cannot overflow it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sum;

impl Aggregate for Sum {
    type In = u64;
    type Acc = u128;
    type Out = u128;
    fn empty(&self) -> u128 {
        0
    }
    fn add(&self, acc: &mut u128, value: u64) {
        *acc += u128::from(value);
    }
    fn merge(&self, acc: &mut u128, other: &u128) {
        *acc += other;
    }
    fn finish(&self, acc: &u128) -> u128 {
        *acc
    }
}

/// The largest value.
#[derive(Clone, Copy, Debug, Default)]
pub struct Max;

impl Aggregate for Max {
    type In = u64;
    type Acc = u64;
    type Out = u64;
    fn empty(&self) -> u64 {
        0
    }
    fn add(&self, acc: &mut u64, value: u64) {
        *acc = (*acc).max(value);
    }
    fn merge(&self, acc: &mut u64, other: &u64) {
        *acc = (*acc).max(*other);
    }
    fn finish(&self, acc: &u64) -> u64 {
        *acc
    }
}
