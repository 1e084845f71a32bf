//! Customer features for marketing, kept up to date in event time: recency, frequency and
//! monetary value (RFM) with the customer's age — the definitions of the `lifetimes` package's
//! `summary_data_from_transaction_data(…, freq="D", freq_multiplier=7)`:
//!
//! - **frequency**: the days with a purchase, less one — repeat purchase days;
//! - **recency**: weeks between the first and the latest purchase day;
//! - **age** (`T`): weeks between the first purchase day and the day of the row (the stamp the
//!   row is made at: the watermark's day);
//! - **monetary**: the mean of the per-day purchase totals over the repeat days (the first
//!   day's purchases excluded), 0 without repeat days.
//!
//! Days are UTC days of the event time. A customer's row is written at every stamp with one of
//! their purchases. The state is a handful of numbers per customer.

use super::model::{Action, Behaviour};
use crate::deadletter::DeadLetter;
use crate::operators::keyed::{keyed_options, Emit, KeyedCore, KeyedLogic};
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use timely::dataflow::operators::vec::Filter;
use timely::dataflow::StreamVec;

/// Milliseconds per day.
const DAY_MS: u64 = 86_400_000;

/// One customer's purchase summary.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Customer {
    /// Day of the first purchase (`None`: none yet).
    first_day: Option<u64>,
    /// Day of the latest purchase.
    last_day: u64,
    /// Days with a purchase.
    days: u64,
    /// Purchases.
    purchases: u64,
    /// Amount spent on the first day.
    first_day_total: f64,
    /// Amount spent in all.
    total: f64,
}

/// A customer's features as of a time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Features {
    /// The stamp the row is made at.
    pub time: EventTime,
    /// The customer (user id).
    pub customer: u64,
    /// Repeat purchase days.
    pub frequency: u64,
    /// Weeks from the first to the latest purchase day.
    pub recency: f64,
    /// Weeks from the first purchase day to the row's day.
    pub age: f64,
    /// Mean per-day total of the repeat days (0 without any).
    pub monetary: f64,
    /// Purchases in all.
    pub purchases: u64,
    /// Amount spent in all.
    pub total: f64,
}

/// The columns of a [`Features`] row.
pub const FEATURE_COLUMNS: &[&str] = &[
    "time",
    "customer",
    "frequency",
    "recency",
    "age",
    "monetary",
    "purchases",
    "total",
];

impl Customer {
    /// Adds a purchase of `amount` at `time` (purchases come in time order).
    pub fn add(&mut self, time: EventTime, amount: f64) {
        let day = time / DAY_MS;
        match self.first_day {
            None => {
                self.first_day = Some(day);
                self.last_day = day;
                self.days = 1;
            }
            Some(_) if day > self.last_day => {
                self.last_day = day;
                self.days += 1;
            }
            Some(_) => {}
        }
        if Some(day) == self.first_day {
            self.first_day_total += amount;
        }
        self.total += amount;
        self.purchases += 1;
    }

    /// The features as of `time`.
    pub fn features(&self, customer: u64, time: EventTime) -> Option<Features> {
        let first = self.first_day?;
        let frequency = self.days - 1;
        let today = (time / DAY_MS).max(self.last_day);
        Some(Features {
            time,
            customer,
            frequency,
            recency: (self.last_day - first) as f64 / 7.0,
            age: (today - first) as f64 / 7.0,
            monetary: if frequency == 0 {
                0.0
            } else {
                (self.total - self.first_day_total) / frequency as f64
            },
            purchases: self.purchases,
            total: self.total,
        })
    }
}

struct Rfm;

impl KeyedLogic for Rfm {
    type Record = Behaviour;
    type Key = u64;
    type State = Customer;
    type Pending = SmallVec<[(EventTime, u64); 1]>;
    type Output = Features;

    fn key(&self, r: &Behaviour) -> u64 {
        r.user
    }

    fn too_late(&self, record: &Behaviour, stamp: EventTime) -> Option<String> {
        record.behind(stamp, "customer features")
    }

    fn stash(&self, pending: &mut Self::Pending, r: Behaviour) {
        pending.push((r.time, r.value.to_bits()));
    }

    fn apply(
        &self,
        customer: &u64,
        state: &mut Customer,
        mut pending: Self::Pending,
        out: &mut Emit<'_, Features>,
    ) {
        pending.sort_unstable();
        for (time, bits) in pending {
            state.add(time, f64::from_bits(bits));
        }
        if let Some(row) = state.features(*customer, out.now()) {
            out.give(row);
        }
    }

    fn is_done(&self, _: &Customer) -> bool {
        false
    }
}

/// Every purchasing customer's features at each stamp with their purchases, by the keyed stage
/// `name`; purchases behind its frontier are dead letters.
pub fn customer_features<'s>(
    behaviours: StreamVec<'s, EventTime, Behaviour>,
    name: &str,
) -> (
    StreamVec<'s, EventTime, Features>,
    StreamVec<'s, EventTime, DeadLetter>,
) {
    behaviours
        .filter(|b| b.action == Action::Purchase)
        .keyed(name, Rfm, keyed_options(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_follow_the_lifetimes_definitions() {
        let mut c = Customer::default();
        let day = |d: u64| d * DAY_MS + 3_600_000;
        c.add(day(10), 20.0);
        c.add(day(10), 5.0); // same day: not a repeat
        let f = c.features(7, day(10)).unwrap();
        assert_eq!(
            (f.frequency, f.recency, f.age, f.monetary),
            (0, 0.0, 0.0, 0.0)
        );
        c.add(day(17), 30.0);
        c.add(day(24), 10.0);
        c.add(day(24), 2.0);
        let f = c.features(7, day(31)).unwrap();
        assert_eq!(f.frequency, 2);
        assert_eq!(f.recency, 2.0);
        assert_eq!(f.age, 3.0);
        assert_eq!(f.monetary, 21.0); // (30 + 12) / 2
        assert_eq!((f.purchases, f.total), (5, 67.0));
    }
}
