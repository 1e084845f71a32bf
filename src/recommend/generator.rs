//! A deterministic clickstream: users with tastes browse, buy and rate items whose popularity
//! drifts — record `n` is a pure function of the seed and `n`, so every worker, process and run
//! makes the same stream.
//!
//! **Users** — `--users` (default [`USERS`]) — each like three of [`CATEGORIES`] categories
//! (drawn from the user's id) and have a rating bias. **Items** — `--items` (default [`ITEMS`])
//! — item `i` is in category `i mod CATEGORIES`, has a price and a quality. **Sessions** —
//! [`CONCURRENT`] run at a time, interleaved, each [`SESSION_LENGTH`] actions by one user
//! (drawn uniformly) in one category (one of the user's three, or any with probability 0.2).
//! Within a category items are drawn by a skewed popularity whose order **drifts**: every hour of
//! event time the ranking moves on by [`DRIFT_PER_HOUR`] places, so yesterday's hits fade.
//! **Actions** — 79 % views, 8 % carts, 3 % purchases (the item's price), 10 % ratings (1–5,
//! higher in the user's own categories, for better items and for generous users).

use super::model::{Action, Behaviour};
use crate::connectors::generator::{parse_count, Generate, GeneratorConfig, SplitMix64 as Rng};
use crate::pipeline::Param;

/// Users by default.
pub const USERS: u64 = 100_000;
/// Items by default.
pub const ITEMS: u64 = 10_000;
/// Item categories (tastes).
pub const CATEGORIES: u64 = 50;
/// Sessions running at once (interleaved in the stream).
pub const CONCURRENT: u64 = 256;
/// Actions per session.
pub const SESSION_LENGTH: u64 = 12;
/// Places the popularity ranking moves on per hour of event time.
pub const DRIFT_PER_HOUR: u64 = 3;

/// The generator's own settings (`--users`, `--items` on `sluice run` and `sluice gen`).
pub const OPTIONS: &[Param] = &[
    Param {
        name: "users",
        help: "Users (default 100000)",
        check: |text| parse_users(text).map(drop),
    },
    Param {
        name: "items",
        help: "Items (default 10000, at least 50: one per category)",
        check: |text| parse_items(text).map(drop),
    },
];

fn parse_users(text: &str) -> Result<u64, String> {
    parse_count(text, 1, "users")
}

fn parse_items(text: &str) -> Result<u64, String> {
    parse_count(text, CATEGORIES, "items")
}

const SESSION_STREAM: u64 = 0x5e55;
const USER_STREAM: u64 = 0x05e7;
const ITEM_STREAM: u64 = 0x17e3;
const ACTION_STREAM: u64 = 0xac71;

/// The clickstream generator.
pub struct Generator {
    config: GeneratorConfig,
    users: u64,
    items: u64,
}

/// What a user likes: three categories and how generously they rate.
struct Taste {
    categories: [u64; 3],
    bias: f64,
}

impl Generator {
    /// A generator for `config` (its `users` and `items` settings, or the defaults).
    pub fn new(config: GeneratorConfig) -> Self {
        let users = config.option("users", parse_users, USERS);
        let items = config.option("items", parse_items, ITEMS);
        Generator {
            config,
            users,
            items,
        }
    }

    fn taste(&self, user: u64) -> Taste {
        let mut rng = Rng::seeded(self.config.seed ^ USER_STREAM, user);
        Taste {
            categories: [
                rng.below(CATEGORIES),
                rng.below(CATEGORIES),
                rng.below(CATEGORIES),
            ],
            bias: 0.4 * rng.normal(),
        }
    }

    /// An item's price (two decimals) and quality (about −0.5..0.5).
    fn item_traits(&self, item: u64) -> (f64, f64) {
        let mut rng = Rng::seeded(self.config.seed ^ ITEM_STREAM, item);
        let cents = 499 + rng.below(20_000);
        (cents as f64 / 100.0, rng.unit() - 0.5)
    }

    /// Record `n`.
    pub fn behaviour(&self, n: u64) -> Behaviour {
        let time = self.config.event_time(n);
        let slot = n % CONCURRENT;
        let round = n / CONCURRENT;
        let session = (round / SESSION_LENGTH) * CONCURRENT + slot;
        let mut srng = Rng::seeded(self.config.seed ^ SESSION_STREAM, session);
        let user = srng.below(self.users);
        let taste = self.taste(user);
        let category = if srng.chance(0.8) {
            taste.categories[srng.below(3) as usize]
        } else {
            srng.below(CATEGORIES)
        };
        let mut rng = Rng::seeded(self.config.seed ^ ACTION_STREAM, n);
        // Items of the category: `per_category` of them (the first categories get one more
        // when the count does not divide).
        let per_category = (self.items - category).div_ceil(CATEGORIES);
        let rank = (per_category as f64 * rng.unit().powf(3.0)) as u64;
        let hours = (time - self.config.base_time) / 3_600_000;
        let index = (rank + hours * DRIFT_PER_HOUR + category * 7) % per_category;
        let item = index * CATEGORIES + category;
        let (price, quality) = self.item_traits(item);
        let draw = rng.unit();
        let (action, value) = if draw < 0.79 {
            (Action::View, 0.0)
        } else if draw < 0.87 {
            (Action::Cart, price)
        } else if draw < 0.90 {
            (Action::Purchase, price)
        } else {
            let liked = if taste.categories.contains(&category) {
                0.8
            } else {
                -0.6
            };
            let raw = 3.3 + liked + 1.5 * quality + taste.bias + 0.7 * rng.normal();
            (Action::Rating, raw.round().clamp(1.0, 5.0))
        };
        Behaviour {
            time,
            user,
            item,
            action,
            value,
            session: session + 1,
        }
    }
}

impl Generate for Generator {
    type Record = Behaviour;

    fn record(&mut self, n: u64) -> Behaviour {
        self.behaviour(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn generator(users: &str, items: &str) -> Generator {
        let mut config = GeneratorConfig::default();
        config.options.insert("users".into(), users.into());
        config.options.insert("items".into(), items.into());
        Generator::new(config)
    }

    #[test]
    fn records_are_a_pure_function_of_their_number() {
        let g = generator("1000", "500");
        let h = generator("1000", "500");
        for n in [0, 1, 255, 256, 10_000, 99_999] {
            assert_eq!(g.behaviour(n), h.behaviour(n));
        }
        let all: Vec<_> = (0..50_000).map(|n| g.behaviour(n)).collect();
        assert!(all.iter().all(|b| b.user < 1000 && b.item < 500));
        assert!(all.windows(2).all(|w| w[0].time <= w[1].time));
    }

    #[test]
    fn sessions_keep_one_user_and_actions_have_their_shares() {
        let g = generator("1000", "2000");
        let all: Vec<_> = (0..100_000).map(|n| g.behaviour(n)).collect();
        let mut users: HashMap<u64, HashSet<u64>> = HashMap::new();
        for b in &all {
            users.entry(b.session).or_default().insert(b.user);
        }
        assert!(users.values().all(|u| u.len() == 1));
        let share = |a: Action| all.iter().filter(|b| b.action == a).count() as f64 / 1e5;
        assert!((share(Action::View) - 0.79).abs() < 0.01);
        assert!((share(Action::Purchase) - 0.03).abs() < 0.005);
        assert!((share(Action::Rating) - 0.10).abs() < 0.01);
        let ratings: Vec<f64> = all
            .iter()
            .filter(|b| b.action == Action::Rating)
            .map(|b| b.value)
            .collect();
        assert!(ratings
            .iter()
            .all(|v| (1.0..=5.0).contains(v) && v.fract() == 0.0));
    }

    #[test]
    fn popularity_is_skewed_and_drifts() {
        let mut config = GeneratorConfig {
            rate: 100,
            ..GeneratorConfig::default()
        };
        config.options.insert("items".into(), "5000".into());
        let g = Generator::new(config);
        let top = |from: u64| {
            let mut counts: HashMap<u64, u64> = HashMap::new();
            for n in from..from + 100_000 {
                *counts.entry(g.behaviour(n).item).or_default() += 1;
            }
            let mut by: Vec<_> = counts.into_iter().collect();
            by.sort_by_key(|(item, c)| (std::cmp::Reverse(*c), *item));
            by.truncate(50);
            by
        };
        let early = top(0);
        // 100 records/s: 100,000 records ≈ 17 minutes; a day later the hits are others.
        let later = top(100 * 86_400);
        assert!(
            early[0].1 > 20 * 100_000 / 5000,
            "skewed: {:?}",
            &early[..3]
        );
        let early_items: HashSet<u64> = early.iter().map(|e| e.0).collect();
        let shared = later.iter().filter(|e| early_items.contains(&e.0)).count();
        assert!(shared < 10, "drifted: {shared} of the top 50 still on top");
    }
}
