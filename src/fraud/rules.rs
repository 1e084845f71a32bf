//! Fraud rules evaluated per account in event time: each transaction is checked against the
//! account's state as of the transactions before it, then added to that state.
//!
//! The rules ([`Rules`], every parameter settable):
//! - **small then large** (Flink's walkthrough): an amount below `small_below` followed, within
//!   `small_then_large_within` ms, by one above `large_above`;
//! - **velocity**: more than `velocity_count` transactions, or more than `velocity_sum` spent, in
//!   the `velocity_window` ms ending with this one (sliding, per transaction);
//! - **amount anomaly**: the amount's z-score against the account's running mean and standard
//!   deviation (Welford) above `z_above`, once the account has `z_min_history` transactions;
//! - **impossible travel**: between consecutive card-present transactions, a speed above
//!   `max_speed_kmh` over more than `travel_min_km`;
//! - **new country** / **new merchant**: a country, or a merchant, the account has not used in
//!   its history (the last `remembered` merchants), once it has `new_min_history` transactions.
//!
//! A transaction that fires at least one rule becomes an [`Alert`] naming the rules, the
//! transaction, the account's state the rules saw and a score: the sum of the fired rules'
//! weights, at most 1.

use super::model::{distance_km, Transaction};
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The rules' parameters and weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rules {
    /// Small then large: the small amount's bound.
    pub small_below: f64,
    /// Small then large: the large amount's bound.
    pub large_above: f64,
    /// Small then large: at most this long between them, ms.
    pub small_then_large_within: EventTime,
    /// Velocity: the sliding window, ms.
    pub velocity_window: EventTime,
    /// Velocity: more transactions than this in the window fire.
    pub velocity_count: u64,
    /// Velocity: more spent than this in the window fires.
    pub velocity_sum: f64,
    /// Amount anomaly: z-scores above this fire.
    pub z_above: f64,
    /// Amount anomaly: transactions of history needed first.
    pub z_min_history: u64,
    /// Impossible travel: speeds above this fire, km/h.
    pub max_speed_kmh: f64,
    /// Impossible travel: only over more than this, km.
    pub travel_min_km: f64,
    /// New country / merchant: transactions of history needed first.
    pub new_min_history: u64,
    /// New merchant: how many recent merchants an account remembers.
    pub remembered: usize,
    /// Each rule's weight in the score.
    pub weights: Weights,
}

/// Each rule's contribution to an alert's score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Weights {
    /// Small then large.
    pub small_then_large: f64,
    /// Velocity.
    pub velocity: f64,
    /// Amount anomaly.
    pub amount_anomaly: f64,
    /// Impossible travel.
    pub impossible_travel: f64,
    /// New country.
    pub new_country: f64,
    /// New merchant.
    pub new_merchant: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            small_then_large: 0.9,
            velocity: 0.5,
            amount_anomaly: 0.6,
            impossible_travel: 0.9,
            new_country: 0.4,
            new_merchant: 0.1,
        }
    }
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            small_below: 2.0,
            large_above: 500.0,
            small_then_large_within: 60_000,
            velocity_window: 600_000,
            velocity_count: 8,
            velocity_sum: 3_000.0,
            z_above: 4.0,
            z_min_history: 10,
            max_speed_kmh: 900.0,
            travel_min_km: 500.0,
            new_min_history: 5,
            remembered: 32,
            weights: Weights::default(),
        }
    }
}

/// A rule's name, as alerts report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// See [`Rules::small_below`].
    SmallThenLarge,
    /// See [`Rules::velocity_window`].
    Velocity,
    /// See [`Rules::z_above`].
    AmountAnomaly,
    /// See [`Rules::max_speed_kmh`].
    ImpossibleTravel,
    /// See [`Rules::new_min_history`].
    NewCountry,
    /// See [`Rules::remembered`].
    NewMerchant,
}

/// An account's state as the rules see it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// Transactions so far.
    pub count: u64,
    /// The latest one's event time.
    pub last: EventTime,
    /// Running mean of the amounts.
    pub mean: f64,
    /// Running sum of squared deviations (Welford's M2).
    m2: f64,
    /// `(time, amount)` of the transactions in the velocity window (and the small-then-large
    /// one), oldest first.
    recent: VecDeque<(EventTime, f64)>,
    /// The last card-present transaction: time, latitude, longitude.
    last_present: Option<(EventTime, f64, f64)>,
    /// Countries used.
    countries: Vec<compact_str::CompactString>,
    /// Recent merchants, most recent last.
    merchants: VecDeque<u64>,
}

impl Account {
    /// The standard deviation of the amounts so far (population).
    pub fn std_dev(&self) -> f64 {
        if self.count < 2 {
            0.0
        } else {
            (self.m2 / self.count as f64).sqrt()
        }
    }
}

/// What the rules saw of the account when they fired.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    /// Transactions before this one.
    pub count: u64,
    /// Their mean amount.
    pub mean: f64,
    /// Their standard deviation.
    pub std_dev: f64,
    /// Transactions in the velocity window, this one included.
    pub window_count: u64,
    /// Spent in the velocity window, this one included.
    pub window_sum: f64,
    /// Speed from the last card-present transaction, km/h, if both were card-present.
    pub speed_kmh: Option<f64>,
}

/// What the rules found for one transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    /// The rules it fired, in [`Rule`] order.
    pub rules: Vec<Rule>,
    /// The sum of their weights, at most 1.
    pub score: f64,
    /// What the rules saw.
    pub seen: Seen,
}

impl Assessment {
    /// Whether it makes an alert: a rule fired, and not only the new merchant (the ordinary
    /// case: it scores, but alerts only with another).
    pub fn alerts(&self) -> bool {
        !(self.rules.is_empty() || self.rules == [Rule::NewMerchant])
    }
}

/// A transaction that fired one rule or more.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The transaction.
    pub id: u64,
    /// Its account.
    pub account: u64,
    /// Its event time, epoch ms.
    pub time: EventTime,
    /// Its amount.
    pub amount: f64,
    /// The rules it fired, in [`Rule`] order.
    pub rules: Vec<Rule>,
    /// The sum of their weights, at most 1.
    pub score: f64,
    /// What the rules saw.
    pub seen: Seen,
}

impl Rules {
    /// Checks `t` against `account`'s state (its transactions before `t`), then adds `t` to it;
    /// an alert if it fired a rule that alerts. Transactions must come in event-time order per
    /// account (ties by id).
    pub fn check(&self, account: &mut Account, t: &Transaction) -> Option<Alert> {
        let assessment = self.assess(account, t);
        if !assessment.alerts() {
            return None;
        }
        Some(Alert {
            id: t.id,
            account: t.account,
            time: t.time,
            amount: t.amount,
            rules: assessment.rules,
            score: assessment.score,
            seen: assessment.seen,
        })
    }

    /// What the rules find for `t` against `account`'s state; adds `t` to the state.
    pub fn assess(&self, account: &mut Account, t: &Transaction) -> Assessment {
        // The window ending with this transaction.
        let keep = self.velocity_window.max(self.small_then_large_within);
        while account
            .recent
            .front()
            .is_some_and(|(at, _)| at.saturating_add(keep) <= t.time)
        {
            account.recent.pop_front();
        }
        let in_velocity = |at: EventTime| at + self.velocity_window > t.time;
        let (mut window_count, mut window_sum) = (1u64, t.amount);
        let mut small_before = false;
        for &(at, amount) in &account.recent {
            if in_velocity(at) {
                window_count += 1;
                window_sum += amount;
            }
            if amount < self.small_below && at + self.small_then_large_within > t.time {
                small_before = true;
            }
        }
        let std_dev = account.std_dev();
        let speed_kmh = match (t.card_present, account.last_present) {
            (true, Some((at, lat, lon))) => {
                let km = distance_km((lat, lon), (t.lat, t.lon));
                let hours = (t.time.saturating_sub(at)).max(1) as f64 / 3_600_000.0;
                (km > self.travel_min_km).then_some(km / hours)
            }
            _ => None,
        };
        let mut rules = Vec::new();
        if small_before && t.amount > self.large_above {
            rules.push(Rule::SmallThenLarge);
        }
        if window_count > self.velocity_count || window_sum > self.velocity_sum {
            rules.push(Rule::Velocity);
        }
        if account.count >= self.z_min_history
            && std_dev > 0.0
            && (t.amount - account.mean) / std_dev > self.z_above
        {
            rules.push(Rule::AmountAnomaly);
        }
        if speed_kmh.is_some_and(|v| v > self.max_speed_kmh) {
            rules.push(Rule::ImpossibleTravel);
        }
        if account.count >= self.new_min_history {
            if !account.countries.contains(&t.country) {
                rules.push(Rule::NewCountry);
            }
            if !account.merchants.contains(&t.merchant) {
                rules.push(Rule::NewMerchant);
            }
        }
        let seen = Seen {
            count: account.count,
            mean: account.mean,
            std_dev,
            window_count,
            window_sum,
            speed_kmh,
        };
        self.add(account, t);
        let score = rules.iter().map(|r| self.weight(*r)).sum::<f64>().min(1.0);
        Assessment { rules, score, seen }
    }

    /// A rule's weight.
    pub fn weight(&self, rule: Rule) -> f64 {
        let w = &self.weights;
        match rule {
            Rule::SmallThenLarge => w.small_then_large,
            Rule::Velocity => w.velocity,
            Rule::AmountAnomaly => w.amount_anomaly,
            Rule::ImpossibleTravel => w.impossible_travel,
            Rule::NewCountry => w.new_country,
            Rule::NewMerchant => w.new_merchant,
        }
    }

    /// Adds `t` to the account's state.
    fn add(&self, account: &mut Account, t: &Transaction) {
        account.count += 1;
        let delta = t.amount - account.mean;
        account.mean += delta / account.count as f64;
        account.m2 += delta * (t.amount - account.mean);
        account.recent.push_back((t.time, t.amount));
        account.last = t.time;
        if t.card_present {
            account.last_present = Some((t.time, t.lat, t.lon));
        }
        if !account.countries.contains(&t.country) {
            account.countries.push(t.country.clone());
        }
        if let Some(at) = account.merchants.iter().position(|m| *m == t.merchant) {
            account.merchants.remove(at);
        } else if account.merchants.len() >= self.remembered.max(1) {
            account.merchants.pop_front();
        }
        account.merchants.push_back(t.merchant);
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::Channel;
    use super::*;

    fn tx(id: u64, time: EventTime, amount: f64) -> Transaction {
        Transaction {
            id,
            time,
            account: 1,
            merchant: 5,
            amount,
            currency: "EUR".into(),
            lat: 52.52,
            lon: 13.405,
            country: "DE".into(),
            channel: Channel::Pos,
            card_present: true,
        }
    }

    #[test]
    fn small_then_large_fires_within_the_minute_only() {
        let rules = Rules::default();
        let mut a = Account::default();
        assert!(rules.check(&mut a, &tx(1, 0, 0.5)).is_none());
        let alert = rules.check(&mut a, &tx(2, 59_999, 600.0)).unwrap();
        assert_eq!(alert.rules, vec![Rule::SmallThenLarge]);
        assert_eq!(alert.score, 0.9);
        let mut b = Account::default();
        rules.check(&mut b, &tx(1, 0, 0.5));
        assert!(rules.check(&mut b, &tx(2, 60_000, 600.0)).is_none());
    }

    #[test]
    fn velocity_counts_the_sliding_window() {
        let rules = Rules::default();
        let mut a = Account::default();
        for i in 0..8 {
            assert!(rules.check(&mut a, &tx(i, i * 1000, 10.0)).is_none(), "{i}");
        }
        let alert = rules.check(&mut a, &tx(8, 8_000, 10.0)).unwrap();
        assert_eq!(alert.rules, vec![Rule::Velocity]);
        assert_eq!(alert.seen.window_count, 9);
        // Ten minutes after the first, it has left the window.
        assert!(rules.check(&mut a, &tx(9, 600_000 + 1_000, 10.0)).is_none());
    }

    #[test]
    fn an_amount_far_above_the_habit_is_an_anomaly() {
        let rules = Rules::default();
        let mut a = Account::default();
        for i in 0..10u64 {
            let amount = 20.0 + (i % 3) as f64;
            rules.check(&mut a, &tx(i, i * 3_600_000, amount));
        }
        let alert = rules.check(&mut a, &tx(10, 11 * 3_600_000, 90.0)).unwrap();
        assert_eq!(alert.rules, vec![Rule::AmountAnomaly]);
        assert!((alert.seen.mean - 20.9).abs() < 1e-9);
    }

    #[test]
    fn far_in_little_time_is_impossible_travel() {
        let rules = Rules::default();
        let mut a = Account::default();
        rules.check(&mut a, &tx(1, 0, 30.0));
        let mut sydney = tx(2, 3_600_000, 30.0);
        (sydney.lat, sydney.lon, sydney.country) = (-33.869, 151.209, "AU".into());
        let alert = rules.check(&mut a, &sydney).unwrap();
        assert_eq!(alert.rules, vec![Rule::ImpossibleTravel]);
        assert!(alert.seen.speed_kmh.unwrap() > 15_000.0);
    }
}
