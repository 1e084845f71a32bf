//! The fraud domain's generator: card traffic with per-account habits and injected, labelled
//! fraud, and the labels arriving a set delay later in event time (`--source fraud`).
//!
//! Record `n` is a pure function of `(config, n)`, like every generator's. The stream starts with
//! [`label_lag`](Generator::label_lag)`× 2` transactions; after them, even records are transactions
//! and odd ones labels, the `i`-th label naming the `i`-th transaction (shuffled within blocks of
//! 64, so labels do not come in transaction order). In steady state a label arrives the label
//! delay (`--label-delay`, default [`LABEL_DELAY_MS`]: an hour) of event time after its
//! transaction (± a block); every transaction gets exactly one label.
//!
//! **Accounts** — `--accounts`, by default as many as make [`PER_ACCOUNT_DAY`] transactions a
//! day each at the configured rate, at least [`MIN_ACCOUNTS`]; a fifth of the traffic from the
//! busiest 1 % — each have a home city, a typical amount (log-normal, median 15–150), a
//! currency and eight usual merchants (of `--merchants`, default [`MERCHANTS`]), all drawn from
//! the account id. A normal transaction is at a usual merchant 80 % of the time, at the
//! terminal (70 %), online (25 %) or a cash machine (5 %), near home, for a log-normal amount
//! around the account's typical one, larger in the evening and online at night.
//!
//! **Fraud** comes in episodes: a block of 256 records holds one with probability 1/10, on
//! even (transaction) offsets, of one of four kinds, every transaction of which is labelled
//! fraud — *card testing* (four online amounts below 2 at random merchants, then one of
//! 500–2,000), *account takeover* (three online amounts 5–15× the usual from a foreign country),
//! *impossible travel* (a normal transaction at home, then one at a terminal in a city ≥ 3,000 km
//! away; only the second is fraud) and *merchant collusion* (six accounts paying round amounts
//! online to one of [`COLLUDERS`] colluding merchants, ids just above the ordinary ones).

use super::model::{Channel, FraudEvent, Label, Transaction};
use crate::connectors::generator::{parse_count, Generate, GeneratorConfig, SplitMix64 as Rng};
use crate::pipeline::Param;
use crate::time::EventTime;

/// Transactions per account and day, on average: the number of accounts follows the rate.
pub const PER_ACCOUNT_DAY: u64 = 20;
/// The fewest accounts.
pub const MIN_ACCOUNTS: u64 = 1_000;
/// Ordinary merchants by default, ids `0..merchants`.
pub const MERCHANTS: u64 = 10_000;
/// Colluding merchants, ids `merchants..merchants + COLLUDERS`.
pub const COLLUDERS: u64 = 20;
/// A label's delay after its transaction by default, event time: one hour.
pub const LABEL_DELAY_MS: u64 = 3_600_000;
/// The fewest accounts `--accounts` takes: the busiest 1 % must be at least one.
const FEWEST_ACCOUNTS: u64 = 100;

/// The generator's own settings (`--accounts`, `--merchants`, `--label-delay` on `sluice run`
/// and `sluice gen`).
pub const OPTIONS: &[Param] = &[
    Param {
        name: "accounts",
        help: "Accounts (default: 20 transactions per account and day at the rate, at least 1000)",
        check: |text| parse_accounts(text).map(drop),
    },
    Param {
        name: "merchants",
        help: "Ordinary merchants (default 10000; 20 colluding ones come on top)",
        check: |text| parse_merchants(text).map(drop),
    },
    Param {
        name: "label-delay",
        help: "Event time from a transaction to its label, e.g. 1h or 3d (default 1h)",
        check: |text| parse_label_delay(text).map(drop),
    },
];

fn parse_accounts(text: &str) -> Result<u64, String> {
    parse_count(text, FEWEST_ACCOUNTS, "accounts")
}

fn parse_merchants(text: &str) -> Result<u64, String> {
    parse_count(text, 1, "merchants")
}

fn parse_label_delay(text: &str) -> Result<u64, String> {
    let delay = crate::cli::parse_duration(text)?;
    let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 || ms > 365 * 86_400_000 {
        return Err(format!(
            "{text}: a label delay is more than 0 and at most a year"
        ));
    }
    Ok(ms)
}
/// Records per fraud-episode block.
const BLOCK: u64 = 256;
/// One block in this many holds an episode.
const EPISODE_EVERY: u64 = 10;
/// Labels are shuffled within runs of this many.
const SHUFFLE: u64 = 64;

/// Cities accounts live in and fraud happens in: name, country, currency, latitude, longitude.
const CITIES: [(&str, &str, &str, f64, f64); 16] = [
    ("Berlin", "DE", "EUR", 52.52, 13.405),
    ("Munich", "DE", "EUR", 48.137, 11.575),
    ("Paris", "FR", "EUR", 48.857, 2.352),
    ("Lyon", "FR", "EUR", 45.764, 4.836),
    ("Madrid", "ES", "EUR", 40.417, -3.704),
    ("Rome", "IT", "EUR", 41.903, 12.496),
    ("Amsterdam", "NL", "EUR", 52.368, 4.904),
    ("London", "GB", "GBP", 51.507, -0.128),
    ("Manchester", "GB", "GBP", 53.481, -2.243),
    ("New York", "US", "USD", 40.713, -74.006),
    ("Chicago", "US", "USD", 41.878, -87.630),
    ("San Francisco", "US", "USD", 37.775, -122.419),
    ("Toronto", "CA", "CAD", 43.653, -79.383),
    ("Sydney", "AU", "AUD", -33.869, 151.209),
    ("Singapore", "SG", "SGD", 1.352, 103.820),
    ("Tokyo", "JP", "JPY", 35.676, 139.650),
];

/// The fraud patterns the generator injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// Tiny amounts, then a large one.
    CardTesting,
    /// A foreign country and a spending spike.
    AccountTakeover,
    /// Two card-present transactions too far apart for the time between them.
    ImpossibleTravel,
    /// Many accounts paying round amounts to one colluding merchant.
    MerchantCollusion,
}

const PATTERNS: [Pattern; 4] = [
    Pattern::CardTesting,
    Pattern::AccountTakeover,
    Pattern::ImpossibleTravel,
    Pattern::MerchantCollusion,
];

/// An account's habits, drawn from its id.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    /// Index into the cities.
    home: usize,
    /// Median amount.
    typical: f64,
}

/// One transaction slot of an episode: its offset in the block and whether it is fraud.
struct Step {
    offset: u64,
    fraud: bool,
}

/// The fraud-domain generator.
pub struct Generator {
    config: GeneratorConfig,
    /// Records of the initial transactions-only stretch, halved.
    lag: u64,
    /// Accounts, ids `0..accounts`.
    accounts: u64,
    /// Ordinary merchants, ids `0..merchants`.
    merchants: u64,
    /// Event time from a transaction to its label, ms.
    label_delay: u64,
}

impl Generator {
    /// The generator for `config`.
    pub fn new(config: GeneratorConfig) -> Self {
        let per_day = config.rate.max(1).saturating_mul(86_400);
        let accounts = (per_day / PER_ACCOUNT_DAY).max(MIN_ACCOUNTS);
        let accounts = config.option("accounts", parse_accounts, accounts);
        let merchants = config.option("merchants", parse_merchants, MERCHANTS);
        let label_delay = config.option("label-delay", parse_label_delay, LABEL_DELAY_MS);
        // Steady state: a label trails its transaction by 4 × lag + 1 records.
        let delay_records = label_delay.saturating_mul(config.rate.max(1)) / 1000;
        Generator {
            lag: (delay_records / 4).max(SHUFFLE),
            accounts,
            merchants,
            label_delay,
            config,
        }
    }

    /// Event time from a transaction to its label, ms (± a block).
    pub fn label_delay(&self) -> u64 {
        self.label_delay
    }

    /// How many ordinary merchants there are; colluders follow them.
    pub fn merchants(&self) -> u64 {
        self.merchants
    }

    /// Half the number of transactions before the first label.
    pub fn label_lag(&self) -> u64 {
        self.lag
    }

    /// The record number of the `i`-th transaction.
    fn transaction_record(&self, i: u64) -> u64 {
        let warm = 2 * self.lag;
        if i < warm {
            i
        } else {
            warm + 2 * (i - warm)
        }
    }

    /// Which transaction record `n` labels, if it is a label.
    fn labelled_by(&self, n: u64) -> Option<u64> {
        let warm = 2 * self.lag;
        if n < warm || (n - warm).is_multiple_of(2) {
            return None;
        }
        let i = (n - warm) / 2;
        // A fixed shuffle within each run of SHUFFLE labels.
        let (run, at) = (i / SHUFFLE, i % SHUFFLE);
        let key = Rng::seeded(self.config.seed ^ 0x1abe1, run).next_u64() | 1;
        // `at ↦ (at·odd) xor c  mod 64` is a bijection of 0..64.
        let shuffled = (at.wrapping_mul(key) ^ (key >> 7)) % SHUFFLE;
        Some(self.transaction_record(run * SHUFFLE + shuffled))
    }

    /// An account's habits.
    pub fn profile(&self, account: u64) -> Profile {
        let mut rng = Rng::seeded(self.config.seed ^ 0xacc0, account);
        Profile {
            home: rng.below(CITIES.len() as u64) as usize,
            typical: 15.0 * 10f64.powf(rng.unit()),
        }
    }

    /// An account's `j`-th usual merchant.
    fn usual_merchant(&self, account: u64, j: u64) -> u64 {
        Rng::seeded(self.config.seed ^ 0x3e7c, account * 8 + j).below(self.merchants)
    }

    /// The episode of block `b`, if any: its pattern and its random draws.
    fn episode(&self, block: u64) -> Option<(Pattern, Rng)> {
        let mut rng = Rng::seeded(self.config.seed ^ 0xe915, block);
        if rng.below(EPISODE_EVERY) != 0 {
            return None;
        }
        let pattern = PATTERNS[rng.below(PATTERNS.len() as u64) as usize];
        Some((pattern, rng))
    }

    /// The steps of a pattern's episode (even offsets: transaction records once labels flow).
    fn steps(pattern: Pattern) -> &'static [Step] {
        const fn fraud(offset: u64) -> Step {
            Step {
                offset,
                fraud: true,
            }
        }
        const CARD_TESTING: [Step; 5] = [fraud(8), fraud(16), fraud(24), fraud(32), fraud(48)];
        const TAKEOVER: [Step; 3] = [fraud(40), fraud(80), fraud(120)];
        const TRAVEL: [Step; 2] = [
            Step {
                offset: 20,
                fraud: false,
            },
            fraud(28),
        ];
        const COLLUSION: [Step; 6] = [
            fraud(16),
            fraud(36),
            fraud(56),
            fraud(76),
            fraud(96),
            fraud(116),
        ];
        match pattern {
            Pattern::CardTesting => &CARD_TESTING,
            Pattern::AccountTakeover => &TAKEOVER,
            Pattern::ImpossibleTravel => &TRAVEL,
            Pattern::MerchantCollusion => &COLLUSION,
        }
    }

    /// Whether transaction record `n` is fraud, and the pattern it belongs to (`None` for a
    /// normal transaction).
    pub fn truth(&self, n: u64) -> Option<(Pattern, bool)> {
        let (pattern, _) = self.episode(n / BLOCK)?;
        let step = Self::steps(pattern)
            .iter()
            .find(|s| s.offset == n % BLOCK)?;
        Some((pattern, step.fraud))
    }

    /// An account in proportion to its activity: a fifth of the traffic comes from the busiest
    /// 1 % (the lowest ids).
    fn some_account(&self, rng: &mut Rng) -> u64 {
        if rng.chance(0.2) {
            rng.below(self.accounts / 100)
        } else {
            rng.below(self.accounts)
        }
    }

    /// How many accounts there are.
    pub fn accounts(&self) -> u64 {
        self.accounts
    }

    /// A normal transaction of `account` at record `n`.
    fn normal(&self, n: u64, account: u64, rng: &mut Rng) -> Transaction {
        let time = self.config.event_time(n);
        let profile = self.profile(account);
        let (_, country, currency, lat, lon) = CITIES[profile.home];
        let hour = (time / 3_600_000) % 24;
        let night = !(7..23).contains(&hour);
        let roll = rng.unit();
        let channel = if night {
            if roll < 0.6 {
                Channel::Online
            } else if roll < 0.95 {
                Channel::Pos
            } else {
                Channel::Atm
            }
        } else if roll < 0.70 {
            Channel::Pos
        } else if roll < 0.95 {
            Channel::Online
        } else {
            Channel::Atm
        };
        let merchant = if rng.chance(0.8) {
            self.usual_merchant(account, rng.below(8))
        } else {
            rng.below(self.merchants)
        };
        let evening = if (18..22).contains(&hour) { 1.3 } else { 1.0 };
        let amount = match channel {
            Channel::Atm => 20.0 * (1 + rng.below(10)) as f64,
            _ => round_cents(profile.typical * evening * (0.6 * rng.normal()).exp()),
        };
        let jitter = |rng: &mut Rng| 0.05 * rng.normal();
        Transaction {
            id: n,
            time,
            account,
            merchant,
            amount,
            currency: currency.into(),
            lat: lat + jitter(rng),
            lon: lon + jitter(rng),
            country: country.into(),
            channel,
            card_present: channel != Channel::Online,
        }
    }

    /// Transaction record `n`.
    pub fn transaction(&self, n: u64) -> Transaction {
        let mut rng = Rng::seeded(self.config.seed, n);
        // A step of this block's episode, if the record is one (the episode drawn once).
        let step = self.episode(n / BLOCK).and_then(|(pattern, episode)| {
            let step = Self::steps(pattern)
                .iter()
                .find(|s| s.offset == n % BLOCK)?;
            Some((pattern, episode, step.fraud))
        });
        let Some((pattern, mut episode, fraud)) = step else {
            let account = self.some_account(&mut rng);
            return self.normal(n, account, &mut rng);
        };
        // The episode's victim and place, the same for each of its steps.
        let victim = self.some_account(&mut episode);
        let profile = self.profile(victim);
        let far = |rng: &mut Rng| loop {
            let city = rng.below(CITIES.len() as u64) as usize;
            let (_, _, _, lat, lon) = CITIES[city];
            let (_, _, _, hlat, hlon) = CITIES[profile.home];
            if super::model::distance_km((lat, lon), (hlat, hlon)) >= 3_000.0 {
                break city;
            }
        };
        let abroad = far(&mut episode);
        let colluder = self.merchants + episode.below(COLLUDERS);
        let mut t = self.normal(n, victim, &mut rng);
        let place = |t: &mut Transaction, city: usize| {
            let (_, country, currency, lat, lon) = CITIES[city];
            t.country = country.into();
            t.currency = currency.into();
            t.lat = lat;
            t.lon = lon;
        };
        match pattern {
            Pattern::CardTesting => {
                t.channel = Channel::Online;
                t.card_present = false;
                t.merchant = rng.below(self.merchants);
                t.amount = if n % BLOCK == 48 {
                    round_cents(500.0 + 1_500.0 * rng.unit())
                } else {
                    round_cents(0.5 + 1.49 * rng.unit())
                };
            }
            Pattern::AccountTakeover => {
                t.channel = Channel::Online;
                t.card_present = false;
                t.merchant = rng.below(self.merchants);
                t.amount = round_cents(profile.typical * (5.0 + 10.0 * rng.unit()));
                place(&mut t, abroad);
            }
            Pattern::ImpossibleTravel => {
                t.channel = Channel::Pos;
                t.card_present = true;
                if fraud {
                    place(&mut t, abroad);
                }
            }
            Pattern::MerchantCollusion => {
                // A different account each step.
                t = self.normal(n, self.some_account(&mut rng), &mut rng);
                t.channel = Channel::Online;
                t.card_present = false;
                t.merchant = colluder;
                t.amount = [100.0, 200.0, 250.0, 500.0][rng.below(4) as usize];
            }
        }
        t
    }

    /// Record `n`: a transaction or a label.
    pub fn event(&self, n: u64) -> FraudEvent {
        match self.labelled_by(n) {
            None => FraudEvent::Transaction(self.transaction(n)),
            Some(tx) => FraudEvent::Label(Label {
                id: tx,
                time: self.config.event_time(n),
                account: self.transaction(tx).account,
                fraud: self.truth(tx).is_some_and(|(_, fraud)| fraud),
            }),
        }
    }

    /// The event time of record `n`.
    pub fn time_of(&self, n: u64) -> EventTime {
        self.config.event_time(n)
    }
}

/// `x` rounded to cents.
fn round_cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl Generate for Generator {
    type Record = FraudEvent;

    fn record(&mut self, n: u64) -> FraudEvent {
        self.event(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn generator(rate: u64) -> Generator {
        Generator::new(GeneratorConfig {
            rate,
            ..GeneratorConfig::default()
        })
    }

    #[test]
    fn every_transaction_gets_exactly_one_label_an_hour_later() {
        // 100 records/s: an hour is 360,000 records, lag 90,000.
        let g = generator(100);
        let n = 2 * g.label_lag() + 2 * 200_000;
        let mut labels: HashMap<u64, u64> = HashMap::new();
        let mut transactions = Vec::new();
        for r in 0..n {
            match g.event(r) {
                FraudEvent::Transaction(t) => {
                    assert_eq!(t.id, r);
                    transactions.push(r);
                }
                FraudEvent::Label(l) => {
                    assert!(labels.insert(l.id, r).is_none(), "label twice for {}", l.id);
                    assert!(matches!(g.event(l.id), FraudEvent::Transaction(_)));
                }
                FraudEvent::Rule(c) => panic!("the generator changes no rules: {c:?}"),
            }
        }
        // The first 200,000 transactions are labelled, each once.
        for &t in &transactions[..200_000] {
            let at = labels[&t];
            let delay = g.time_of(at) - g.time_of(t);
            if t >= 2 * g.label_lag() {
                let slack = 2 * SHUFFLE * 1000 / 100;
                assert!(delay.abs_diff(LABEL_DELAY_MS) <= slack, "{t}: {delay} ms");
            }
        }
        assert_eq!(labels.len(), 200_000);
    }

    #[test]
    fn episodes_are_labelled_fraud_and_look_like_their_pattern() {
        let g = generator(1000);
        let mut seen: HashMap<Pattern, usize> = HashMap::new();
        let (mut fraud, mut total) = (0, 0);
        for n in (0..2_000_000u64).step_by(2) {
            let t = g.transaction(n);
            total += 1;
            let Some((pattern, is_fraud)) = g.truth(n) else {
                continue;
            };
            fraud += usize::from(is_fraud);
            *seen.entry(pattern).or_default() += 1;
            match pattern {
                Pattern::CardTesting if n % BLOCK == 48 => assert!(t.amount >= 500.0),
                Pattern::CardTesting => assert!(t.amount < 2.0),
                Pattern::MerchantCollusion => assert!(t.merchant >= g.merchants()),
                Pattern::AccountTakeover | Pattern::ImpossibleTravel => {
                    let home = CITIES[g.profile(t.account).home];
                    let abroad = super::super::model::distance_km((t.lat, t.lon), (home.3, home.4))
                        >= 3_000.0;
                    assert_eq!(abroad, is_fraud, "{pattern:?} {n}");
                }
            }
        }
        assert_eq!(seen.len(), 4, "{seen:?}");
        let share = fraud as f64 / total as f64;
        assert!((0.001..0.01).contains(&share), "fraud share {share}");
    }

    #[test]
    fn settings_choose_accounts_merchants_and_the_label_delay() {
        let mut config = GeneratorConfig {
            rate: 1000,
            ..GeneratorConfig::default()
        };
        for (name, value) in [
            ("accounts", "250"),
            ("merchants", "40"),
            ("label-delay", "2d"),
        ] {
            config.options.insert(name.into(), value.into());
        }
        let g = Generator::new(config);
        assert_eq!((g.accounts(), g.merchants()), (250, 40));
        assert_eq!(g.label_delay(), 2 * 86_400_000);
        // Two days at 1000/s: 172.8 M records, a quarter of them the lag.
        assert_eq!(g.label_lag(), 172_800_000 / 4);
        let (mut accounts, mut merchants) = (HashSet::new(), HashSet::new());
        for n in (0..200_000u64).step_by(2) {
            let t = g.transaction(n);
            assert!(t.account < 250, "{t:?}");
            match g.truth(n) {
                Some((Pattern::MerchantCollusion, _)) => {
                    assert!((40..40 + COLLUDERS).contains(&t.merchant))
                }
                _ => assert!(t.merchant < 40, "{t:?}"),
            }
            accounts.insert(t.account);
            merchants.insert(t.merchant);
        }
        assert_eq!(accounts.len(), 250);
        assert!(merchants.len() >= 40, "{}", merchants.len());
    }

    #[test]
    fn settings_are_checked() {
        let check = |name: &str, value: &str| {
            let setting = OPTIONS.iter().find(|p| p.name == name).unwrap();
            (setting.check)(value)
        };
        assert!(check("accounts", "100").is_ok());
        assert!(check("accounts", "99").unwrap_err().contains("100..="));
        assert!(check("accounts", "many").is_err());
        assert!(check("merchants", "0").is_err());
        assert!(check("label-delay", "30d").is_ok());
        assert!(check("label-delay", "30").unwrap_err().contains("unit"));
        assert!(check("label-delay", "0s").is_err());
    }

    #[test]
    fn records_are_a_pure_function_of_their_number() {
        let (a, b) = (generator(10_000), generator(10_000));
        for n in [0, 1, 77, 123_456, 9_999_999] {
            assert_eq!(a.event(n), b.event(n));
        }
    }
}
