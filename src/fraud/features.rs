//! A transaction's features for the online model: its own fields and what the account rules saw
//! of the account before it ([`Assessment`]), as a fixed vector of numbers.
//!
//! Amounts and counts enter as logarithms (their spread is wide and the model is linear), the
//! z-score clamped to ±10, the hour of day as a point on a circle, flags as 0/1, and the rules'
//! own score last — so the model can learn how far to trust the rules.

use super::model::{Channel, Transaction};
use super::rules::{Assessment, Rule};
use std::f64::consts::TAU;

/// The features, in [`features`]' order.
pub const NAMES: [&str; 15] = [
    "log_amount",
    "amount_z",
    "log_history",
    "window_count",
    "log_window_sum",
    "log_speed_kmh",
    "new_country",
    "new_merchant",
    "small_then_large",
    "card_present",
    "online",
    "atm",
    "hour_sin",
    "hour_cos",
    "rules_score",
];

/// The number of features.
pub const COUNT: usize = NAMES.len();

/// `t`'s features, given what the rules found for it.
pub fn features(t: &Transaction, a: &Assessment) -> [f64; COUNT] {
    let s = &a.seen;
    let z = if s.std_dev > 0.0 {
        ((t.amount - s.mean) / s.std_dev).clamp(-10.0, 10.0)
    } else {
        0.0
    };
    let fired = |rule: Rule| f64::from(u8::from(a.rules.contains(&rule)));
    let hour = ((t.time / 3_600_000) % 24) as f64 * TAU / 24.0;
    [
        t.amount.ln_1p(),
        z,
        (s.count as f64).ln_1p(),
        s.window_count as f64,
        s.window_sum.ln_1p(),
        s.speed_kmh.map_or(0.0, f64::ln_1p),
        fired(Rule::NewCountry),
        fired(Rule::NewMerchant),
        fired(Rule::SmallThenLarge),
        f64::from(u8::from(t.card_present)),
        f64::from(u8::from(t.channel == Channel::Online)),
        f64::from(u8::from(t.channel == Channel::Atm)),
        hour.sin(),
        hour.cos(),
        a.score,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fraud::rules::{Account, Rules};

    #[test]
    fn features_follow_the_transaction_and_the_account() {
        let rules = Rules::default();
        let mut account = Account::default();
        let tx = |id: u64, amount: f64, country: &str| Transaction {
            id,
            time: 6 * 3_600_000 + id,
            account: 1,
            merchant: id % 2,
            amount,
            currency: "EUR".into(),
            lat: 52.5,
            lon: 13.4,
            country: country.into(),
            channel: Channel::Online,
            card_present: false,
        };
        for i in 0..6 {
            rules.assess(&mut account, &tx(i, 10.0 + i as f64, "DE"));
        }
        let t = tx(6, 100.0, "FR");
        let a = rules.assess(&mut account, &t);
        let f = features(&t, &a);
        assert_eq!(f.len(), COUNT);
        assert!((f[0] - 101f64.ln()).abs() < 1e-12);
        assert_eq!(f[1], 10.0, "the z-score is clamped");
        assert_eq!(f[6], 1.0, "a new country");
        assert_eq!(f[10], 1.0, "online");
        // 06:00 is a quarter of the way round.
        assert!((f[12] - 1.0).abs() < 1e-6 && f[13].abs() < 1e-6);
        assert_eq!(f[14], a.score);
    }
}
