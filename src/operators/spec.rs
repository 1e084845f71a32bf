//! How a keyed operator reads its records: its name, each record's key and event time
//! ([`by`]), and for aggregating operators what each record contributes and how contributions
//! combine ([`By::fold`]).
//!
//! ```
//! use sluice::operators::{by, Count, Fold};
//!
//! let spec = by("clicks.per_user", |c: &(u64, u64)| c.0, |c| c.1).fold(|_| (), Count);
//! assert_eq!(spec.name(), "clicks.per_user");
//! assert_eq!(spec.key(&(7, 1_000)), 7);
//! assert_eq!(spec.time(&(7, 1_000)), 1_000);
//! ```

use super::aggregate::Aggregate;
use crate::time::EventTime;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::hash::Hash;
use std::marker::PhantomData;
use timely::ExchangeData;

/// A keyed operator's name, and how it finds a record's key and event time.
pub struct By<R, KF, TF> {
    /// The operator's name, e.g. `q5.bids_per_auction`.
    pub name: String,
    /// The record's key.
    pub key: KF,
    /// The record's event time.
    pub time: TF,
    _record: PhantomData<fn(&R)>,
}

/// The operator `name` keying records by `key(r)` at event time `time(r)`.
pub fn by<R, K, KF, TF>(name: &str, key: KF, time: TF) -> By<R, KF, TF>
where
    KF: Fn(&R) -> K,
    TF: Fn(&R) -> EventTime,
{
    By {
        name: name.to_string(),
        key,
        time,
        _record: PhantomData,
    }
}

impl<R, KF, TF> By<R, KF, TF> {
    /// Folds `value(r)` of each record with `agg`.
    pub fn fold<VF, G>(self, value: VF, agg: G) -> Folding<R, KF, TF, VF, G>
    where
        VF: Fn(&R) -> G::In,
        G: Aggregate,
    {
        Folding {
            by: self,
            value,
            agg,
        }
    }
}

/// A [`By`] with what each record contributes and the aggregation it feeds.
pub struct Folding<R, KF, TF, VF, G> {
    by: By<R, KF, TF>,
    value: VF,
    agg: G,
}

/// Everything an aggregating keyed operator needs to know about its records of type `R`.
pub trait Fold<R>: 'static {
    /// The key.
    type Key: ExchangeData + Hash + Eq + Ord + Clone + Serialize + DeserializeOwned;
    /// The aggregation.
    type Agg: Aggregate;
    /// The operator's name.
    fn name(&self) -> &str;
    /// A record's key.
    fn key(&self, record: &R) -> Self::Key;
    /// A record's event time.
    fn time(&self, record: &R) -> EventTime;
    /// What a record contributes.
    fn value(&self, record: &R) -> <Self::Agg as Aggregate>::In;
    /// The aggregation.
    fn agg(&self) -> &Self::Agg;
}

impl<R: 'static, K, KF, TF, VF, G> Fold<R> for Folding<R, KF, TF, VF, G>
where
    K: ExchangeData + Hash + Eq + Ord + Clone + Serialize + DeserializeOwned,
    KF: Fn(&R) -> K + 'static,
    TF: Fn(&R) -> EventTime + 'static,
    VF: Fn(&R) -> G::In + 'static,
    G: Aggregate,
{
    type Key = K;
    type Agg = G;
    fn name(&self) -> &str {
        &self.by.name
    }
    fn key(&self, record: &R) -> K {
        (self.by.key)(record)
    }
    fn time(&self, record: &R) -> EventTime {
        (self.by.time)(record)
    }
    fn value(&self, record: &R) -> G::In {
        (self.value)(record)
    }
    fn agg(&self) -> &G {
        &self.agg
    }
}
