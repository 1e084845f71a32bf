//! Fraud rules evaluated per account in event time: each transaction is checked against the
//! account's state as of the transactions before it, then added to that state.
//!
//! The rules ([`Rules`], a rule book: each rule switched on or off, weighted and parameterised,
//! read from a TOML or JSON file and changed while a pipeline runs — see
//! [`rulebook`](super::rulebook)):
//! - **small then large** (Flink's walkthrough): an amount below `small_below` followed, within
//!   `within_ms`, by one above `large_above`;
//! - **velocity**: more than `max_count` transactions, or more than `max_sum` spent, in the
//!   `window_ms` ending with this one (sliding, per transaction);
//! - **amount anomaly**: the amount's z-score against the account's running mean and standard
//!   deviation (Welford) above `z_above`, once the account has `min_history` transactions;
//! - **impossible travel**: between consecutive card-present transactions, a speed above
//!   `max_speed_kmh` over more than `min_km`;
//! - **new country** / **new merchant**: a country, or a merchant, the account has not used in
//!   its history (the last `remembered` merchants), once it has `min_history` transactions.
//!
//! A transaction that fires at least one rule becomes an [`Alert`] naming the rules, the
//! transaction, the account's state the rules saw and a score: the sum of the fired rules'
//! weights, at most 1.

pub use super::model::Rule;
use super::model::{distance_km, Transaction};
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The rule book: every rule's switch, weight and parameters. Written as TOML (or JSON), one
/// table per rule; a table or key left out keeps its default:
///
/// ```toml
/// [small_then_large]
/// small_below = 1.0
/// large_above = 500.0
/// within_ms = 60000
///
/// [velocity]
/// max_count = 5
///
/// [new_merchant]
/// enabled = false
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rules {
    /// Small then large (Flink's walkthrough rule).
    pub small_then_large: SmallThenLarge,
    /// Velocity.
    pub velocity: Velocity,
    /// Amount anomaly.
    pub amount_anomaly: AmountAnomaly,
    /// Impossible travel.
    pub impossible_travel: ImpossibleTravel,
    /// New country.
    pub new_country: NewCountry,
    /// New merchant.
    pub new_merchant: NewMerchant,
}

/// An amount below `small_below` followed, within `within_ms`, by one above `large_above`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmallThenLarge {
    /// Whether it is checked.
    pub enabled: bool,
    /// Its weight in the score.
    pub weight: f64,
    /// The small amount's bound.
    pub small_below: f64,
    /// The large amount's bound.
    pub large_above: f64,
    /// At most this long between them, ms.
    pub within_ms: EventTime,
}

/// More than `max_count` transactions, or more than `max_sum` spent, in the `window_ms` ending
/// with this one (sliding, per transaction).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Velocity {
    /// Whether it is checked.
    pub enabled: bool,
    /// Its weight in the score.
    pub weight: f64,
    /// The sliding window, ms.
    pub window_ms: EventTime,
    /// More transactions than this in the window fire.
    pub max_count: u64,
    /// More spent than this in the window fires.
    pub max_sum: f64,
}

/// The amount's z-score against the account's running mean and standard deviation (Welford)
/// above `z_above`, once the account has `min_history` transactions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmountAnomaly {
    /// Whether it is checked.
    pub enabled: bool,
    /// Its weight in the score.
    pub weight: f64,
    /// Z-scores above this fire.
    pub z_above: f64,
    /// Transactions of history needed first.
    pub min_history: u64,
}

/// Between consecutive card-present transactions, a speed above `max_speed_kmh` over more than
/// `min_km`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImpossibleTravel {
    /// Whether it is checked.
    pub enabled: bool,
    /// Its weight in the score.
    pub weight: f64,
    /// Speeds above this fire, km/h.
    pub max_speed_kmh: f64,
    /// Only over more than this, km.
    pub min_km: f64,
}

/// A country the account has not used, once it has `min_history` transactions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NewCountry {
    /// Whether it is checked.
    pub enabled: bool,
    /// Its weight in the score.
    pub weight: f64,
    /// Transactions of history needed first.
    pub min_history: u64,
}

/// A merchant not among the account's last `remembered`, once it has `min_history`
/// transactions. Alone it does not make an alert (it is the ordinary case); it adds its weight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NewMerchant {
    /// Whether it is checked.
    pub enabled: bool,
    /// Its weight in the score.
    pub weight: f64,
    /// Transactions of history needed first.
    pub min_history: u64,
    /// How many recent merchants an account remembers.
    pub remembered: usize,
}

impl Default for SmallThenLarge {
    fn default() -> Self {
        SmallThenLarge {
            enabled: true,
            weight: 0.9,
            small_below: 2.0,
            large_above: 500.0,
            within_ms: 60_000,
        }
    }
}

impl Default for Velocity {
    fn default() -> Self {
        Velocity {
            enabled: true,
            weight: 0.5,
            window_ms: 600_000,
            max_count: 8,
            max_sum: 3_000.0,
        }
    }
}

impl Default for AmountAnomaly {
    fn default() -> Self {
        AmountAnomaly {
            enabled: true,
            weight: 0.6,
            z_above: 4.0,
            min_history: 10,
        }
    }
}

impl Default for ImpossibleTravel {
    fn default() -> Self {
        ImpossibleTravel {
            enabled: true,
            weight: 0.9,
            max_speed_kmh: 900.0,
            min_km: 500.0,
        }
    }
}

impl Default for NewCountry {
    fn default() -> Self {
        NewCountry {
            enabled: true,
            weight: 0.4,
            min_history: 5,
        }
    }
}

impl Default for NewMerchant {
    fn default() -> Self {
        NewMerchant {
            enabled: true,
            weight: 0.1,
            min_history: 5,
            remembered: 32,
        }
    }
}

/// The longest history a rule may look back, ms: a day (windows longer than this are refused).
pub const MAX_WINDOW_MS: EventTime = 86_400_000;

impl Rules {
    /// Reads a rule book from a TOML file (or JSON, for a `.json` file).
    pub fn from_file(path: &std::path::Path) -> Result<Rules, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let rules: Rules = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
        } else {
            toml::from_str(&text).map_err(|e| {
                let what = e.message().to_string();
                match e.span() {
                    Some(span) => {
                        let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                        format!("{} line {line}: {what}", path.display())
                    }
                    None => format!("{}: {what}", path.display()),
                }
            })?
        };
        rules
            .validate()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(rules)
    }

    /// Whether every value is usable: weights in [0, 1], windows within [`MAX_WINDOW_MS`],
    /// bounds finite and positive where they must be.
    pub fn validate(&self) -> Result<(), String> {
        let weights = [
            ("small_then_large", self.small_then_large.weight),
            ("velocity", self.velocity.weight),
            ("amount_anomaly", self.amount_anomaly.weight),
            ("impossible_travel", self.impossible_travel.weight),
            ("new_country", self.new_country.weight),
            ("new_merchant", self.new_merchant.weight),
        ];
        for (rule, w) in weights {
            if !(0.0..=1.0).contains(&w) {
                return Err(format!("{rule}.weight {w} is not in [0, 1]"));
            }
        }
        for (key, ms) in [
            (
                "small_then_large.within_ms",
                self.small_then_large.within_ms,
            ),
            ("velocity.window_ms", self.velocity.window_ms),
        ] {
            if ms == 0 || ms > MAX_WINDOW_MS {
                return Err(format!("{key} {ms} is not in [1, {MAX_WINDOW_MS}]"));
            }
        }
        let positive = [
            ("velocity.max_sum", self.velocity.max_sum),
            ("amount_anomaly.z_above", self.amount_anomaly.z_above),
            (
                "impossible_travel.max_speed_kmh",
                self.impossible_travel.max_speed_kmh,
            ),
            ("impossible_travel.min_km", self.impossible_travel.min_km),
            (
                "small_then_large.large_above",
                self.small_then_large.large_above,
            ),
            (
                "small_then_large.small_below",
                self.small_then_large.small_below,
            ),
        ];
        for (key, v) in positive {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{key} {v} is not a finite, non-negative number"));
            }
        }
        if self.new_merchant.remembered == 0 {
            return Err("new_merchant.remembered must be at least 1".into());
        }
        Ok(())
    }

    /// The rule book with `rule`'s table changed by `set`, a JSON object of its keys (e.g.
    /// `{"max_count": 5}` or `{"enabled": false}`); keys left out keep their values. An unknown
    /// key or an unusable value is an error and changes nothing.
    pub fn with_change(&self, rule: Rule, set: &str) -> Result<Rules, String> {
        let patch: serde_json::Value =
            serde_json::from_str(set).map_err(|e| format!("set {set:?}: {e}"))?;
        let serde_json::Value::Object(patch) = patch else {
            return Err(format!("set {set:?} is not a JSON object"));
        };
        let mut whole = serde_json::to_value(self).map_err(|e| e.to_string())?;
        let name = rule.name();
        let Some(serde_json::Value::Object(table)) = whole.get_mut(name) else {
            return Err(format!("no rule {name}"));
        };
        for (k, v) in patch {
            if !table.contains_key(&k) {
                let keys: Vec<&String> = table.keys().collect();
                return Err(format!("rule {name} has no key {k:?} (it has {keys:?})"));
            }
            table.insert(k, v);
        }
        let changed: Rules =
            serde_json::from_value(whole).map_err(|e| format!("rule {name}: {e}"))?;
        changed.validate()?;
        Ok(changed)
    }

    /// How far back an account's recent transactions are kept: the longer of the velocity
    /// window and the small-then-large span.
    fn keep_ms(&self) -> EventTime {
        self.velocity.window_ms.max(self.small_then_large.within_ms)
    }
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
        let (stl, vel) = (&self.small_then_large, &self.velocity);
        // The window ending with this transaction.
        let keep = self.keep_ms();
        while account
            .recent
            .front()
            .is_some_and(|(at, _)| at.saturating_add(keep) <= t.time)
        {
            account.recent.pop_front();
        }
        let (mut window_count, mut window_sum) = (1u64, t.amount);
        let mut small_before = false;
        for &(at, amount) in &account.recent {
            if at + vel.window_ms > t.time {
                window_count += 1;
                window_sum += amount;
            }
            if amount < stl.small_below && at + stl.within_ms > t.time {
                small_before = true;
            }
        }
        let std_dev = account.std_dev();
        let travel = &self.impossible_travel;
        let speed_kmh = match (t.card_present, account.last_present) {
            (true, Some((at, lat, lon))) => {
                let km = distance_km((lat, lon), (t.lat, t.lon));
                let hours = (t.time.saturating_sub(at)).max(1) as f64 / 3_600_000.0;
                (km > travel.min_km).then_some(km / hours)
            }
            _ => None,
        };
        let mut rules = Vec::new();
        if stl.enabled && small_before && t.amount > stl.large_above {
            rules.push(Rule::SmallThenLarge);
        }
        if vel.enabled && (window_count > vel.max_count || window_sum > vel.max_sum) {
            rules.push(Rule::Velocity);
        }
        let anomaly = &self.amount_anomaly;
        if anomaly.enabled
            && account.count >= anomaly.min_history
            && std_dev > 0.0
            && (t.amount - account.mean) / std_dev > anomaly.z_above
        {
            rules.push(Rule::AmountAnomaly);
        }
        if travel.enabled && speed_kmh.is_some_and(|v| v > travel.max_speed_kmh) {
            rules.push(Rule::ImpossibleTravel);
        }
        let (country, merchant) = (&self.new_country, &self.new_merchant);
        if country.enabled
            && account.count >= country.min_history
            && !account.countries.contains(&t.country)
        {
            rules.push(Rule::NewCountry);
        }
        if merchant.enabled
            && account.count >= merchant.min_history
            && !account.merchants.contains(&t.merchant)
        {
            rules.push(Rule::NewMerchant);
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
        match rule {
            Rule::SmallThenLarge => self.small_then_large.weight,
            Rule::Velocity => self.velocity.weight,
            Rule::AmountAnomaly => self.amount_anomaly.weight,
            Rule::ImpossibleTravel => self.impossible_travel.weight,
            Rule::NewCountry => self.new_country.weight,
            Rule::NewMerchant => self.new_merchant.weight,
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
        } else if account.merchants.len() >= self.new_merchant.remembered.max(1) {
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

    #[test]
    fn a_rule_book_reads_from_toml_and_json_with_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let toml_path = dir.path().join("rules.toml");
        std::fs::write(
            &toml_path,
            "[velocity]\nmax_count = 3\n\n[new_merchant]\nenabled = false\n",
        )
        .unwrap();
        let rules = Rules::from_file(&toml_path).unwrap();
        assert_eq!(rules.velocity.max_count, 3);
        assert!(!rules.new_merchant.enabled);
        assert_eq!(
            rules.velocity.window_ms, 600_000,
            "unnamed keys keep defaults"
        );
        let json_path = dir.path().join("rules.json");
        std::fs::write(&json_path, r#"{"amount_anomaly":{"z_above":3.5}}"#).unwrap();
        assert_eq!(
            Rules::from_file(&json_path).unwrap().amount_anomaly.z_above,
            3.5
        );
        std::fs::write(&toml_path, "[velocity]\nmax_count = 3\nwindow = 5\n").unwrap();
        let e = Rules::from_file(&toml_path).unwrap_err();
        assert!(
            e.contains("line 3") && e.contains("unknown field `window`"),
            "{e}"
        );
        std::fs::write(&toml_path, "[velocity]\nwindow_ms = 0\n").unwrap();
        let e = Rules::from_file(&toml_path).unwrap_err();
        assert!(e.contains("velocity.window_ms 0"), "{e}");
    }

    #[test]
    fn a_change_sets_only_the_keys_it_names() {
        let rules = Rules::default();
        let off = rules
            .with_change(Rule::SmallThenLarge, r#"{"enabled":false}"#)
            .unwrap();
        assert!(!off.small_then_large.enabled);
        assert_eq!(off.small_then_large.within_ms, 60_000);
        assert_eq!(off.velocity, rules.velocity);
        let mut a = Account::default();
        off.check(&mut a, &tx(1, 0, 0.5));
        assert!(
            off.check(&mut a, &tx(2, 1_000, 600.0)).is_none(),
            "switched off"
        );
        assert!(rules
            .with_change(Rule::Velocity, r#"{"max_count":"x"}"#)
            .is_err());
        assert!(rules.with_change(Rule::Velocity, "[1]").is_err());
        let e = rules
            .with_change(Rule::Velocity, r#"{"max":3}"#)
            .unwrap_err();
        assert!(e.contains("no key \"max\""), "{e}");
        let e = rules
            .with_change(Rule::Velocity, r#"{"weight":2}"#)
            .unwrap_err();
        assert!(e.contains("weight 2"), "{e}");
    }
}
