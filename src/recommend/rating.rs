//! An online rating model: biased matrix factorisation, predicting each rating before it learns
//! from it (prequential), in event-time order.
//!
//! The prediction for user `u` and item `i` is `μ + b_u + b_i + p_u·q_i`: the running mean of
//! every rating learned so far, a bias per user and per item (starting at 0) and `factors`
//! latent factors per user and per item (drawn from N(0, 0.1²) when first seen, from the seed
//! and the id — the same in every run and worker count). Learning a rating `y` updates the mean,
//! then takes one SGD step on the squared error with the gradient `g = 2(ŷ − y)`: biases with
//! rate [`BIAS_RATE`], factors with rate [`LATENT_RATE`], no regularisation — river's
//! `reco.BiasedMF` with the settings of its MovieLens benchmark, so the two can be compared
//! side by side. The prediction written is clipped to the range of ratings seen so far (a
//! rating is never outside it); `raw` is the unclipped value the model learns from.
//!
//! The model is one state (key `()`): every rating goes to one worker and the ratings of a
//! stamp are learned in `(time, user, item)` order, so predictions are the same at any worker
//! count. The model is checkpointed like any keyed state.

use super::model::{Action, Behaviour};
use crate::connectors::generator::SplitMix64 as Rng;
use crate::deadletter::DeadLetter;
use crate::operators::keyed::{keyed_options, Emit, KeyedCore, KeyedLogic};
use crate::time::EventTime;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Filter;
use timely::dataflow::StreamVec;

/// SGD learning rate of the biases.
pub const BIAS_RATE: f64 = 0.025;
/// SGD learning rate of the latent factors.
pub const LATENT_RATE: f64 = 0.05;
/// Standard deviation of the initial latent factors.
pub const INIT_SIGMA: f64 = 0.1;
/// Seed of the initial factors.
pub const SEED: u64 = 73;

/// One user's or item's bias and factors.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Factors {
    bias: f64,
    latent: Vec<f64>,
}

impl Factors {
    fn new(stream: u64, id: u64, factors: usize) -> Factors {
        let mut rng = Rng::seeded(SEED ^ stream, id);
        Factors {
            bias: 0.0,
            latent: (0..factors).map(|_| INIT_SIGMA * rng.normal()).collect(),
        }
    }
}

/// The model: the running mean, per-user and per-item factors, the rating range seen.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Model {
    factors: usize,
    sum: f64,
    learned: u64,
    low: f64,
    high: f64,
    users: FxHashMap<u64, Factors>,
    items: FxHashMap<u64, Factors>,
}

const USER_STREAM: u64 = 0x05e7;
const ITEM_STREAM: u64 = 0x17e3;

impl Model {
    /// An untrained model with `factors` factors.
    pub fn new(factors: usize) -> Model {
        Model {
            factors,
            ..Model::default()
        }
    }

    fn mean(&self) -> f64 {
        if self.learned == 0 {
            0.0
        } else {
            self.sum / self.learned as f64
        }
    }

    fn raw(&mut self, user: u64, item: u64) -> f64 {
        let k = self.factors;
        let mean = self.mean();
        // A user or item seen for the first time gets its factors now (as river's do).
        let u = self
            .users
            .entry(user)
            .or_insert_with(|| Factors::new(USER_STREAM, user, k));
        let i = self
            .items
            .entry(item)
            .or_insert_with(|| Factors::new(ITEM_STREAM, item, k));
        let dot: f64 = u.latent.iter().zip(&i.latent).map(|(a, b)| a * b).sum();
        mean + u.bias + i.bias + dot
    }

    /// The prediction for `(user, item)`: `(clipped, raw)`.
    pub fn predict(&mut self, user: u64, item: u64) -> (f64, f64) {
        let raw = self.raw(user, item);
        let clipped = if self.learned == 0 {
            raw
        } else {
            raw.clamp(self.low, self.high)
        };
        (clipped, raw)
    }

    /// Learns `rating` of `(user, item)`.
    pub fn learn(&mut self, user: u64, item: u64, rating: f64) {
        if self.learned == 0 {
            (self.low, self.high) = (rating, rating);
        } else {
            self.low = self.low.min(rating);
            self.high = self.high.max(rating);
        }
        self.sum += rating;
        self.learned += 1;
        let g = 2.0 * (self.raw(user, item) - rating);
        let (Some(u), Some(i)) = (self.users.get_mut(&user), self.items.get_mut(&item)) else {
            return; // raw() made both
        };
        u.bias -= BIAS_RATE * g;
        i.bias -= BIAS_RATE * g;
        for (p, q) in u.latent.iter_mut().zip(i.latent.iter_mut()) {
            let (p0, q0) = (*p, *q);
            *p -= LATENT_RATE * g * q0;
            *q -= LATENT_RATE * g * p0;
        }
    }

    /// Ratings learned so far.
    pub fn learned(&self) -> u64 {
        self.learned
    }
}

/// One rating and what the model predicted for it before learning it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Event time of the rating.
    pub time: EventTime,
    /// The user.
    pub user: u64,
    /// The item.
    pub item: u64,
    /// The rating given.
    pub rating: f64,
    /// The prediction, clipped to the ratings seen so far.
    pub prediction: f64,
    /// The prediction before clipping.
    pub raw: f64,
    /// Ratings the model had learned before this one.
    pub learned: u64,
}

/// The columns of a [`Prediction`] row.
pub const PREDICTION_COLUMNS: &[&str] = &[
    "time",
    "user",
    "item",
    "rating",
    "prediction",
    "raw",
    "learned",
];

struct Learner {
    factors: usize,
}

impl KeyedLogic for Learner {
    type Record = Behaviour;
    type Key = ();
    type State = Model;
    type Pending = Vec<(EventTime, u64, u64, u64)>;
    type Output = Prediction;

    fn key(&self, _: &Behaviour) {}

    fn too_late(&self, record: &Behaviour, stamp: EventTime) -> Option<String> {
        record.behind(stamp, "rating model")
    }

    fn stash(&self, pending: &mut Self::Pending, r: Behaviour) {
        pending.push((r.time, r.user, r.item, r.value.to_bits()));
    }

    fn apply(
        &self,
        _: &(),
        model: &mut Model,
        mut pending: Self::Pending,
        out: &mut Emit<'_, Prediction>,
    ) {
        if model.factors == 0 {
            model.factors = self.factors;
        }
        pending.sort_unstable();
        for (time, user, item, bits) in pending {
            let rating = f64::from_bits(bits);
            let learned = model.learned();
            let (prediction, raw) = model.predict(user, item);
            model.learn(user, item, rating);
            out.give(Prediction {
                time,
                user,
                item,
                rating,
                prediction,
                raw,
                learned,
            });
        }
    }

    fn is_done(&self, _: &Model) -> bool {
        false
    }
}

/// Predicts, then learns, every rating of the stream, by the keyed stage `name`; ratings behind
/// its frontier are dead letters.
pub fn predict_and_learn<'s>(
    behaviours: StreamVec<'s, EventTime, Behaviour>,
    name: &str,
    factors: usize,
) -> (
    StreamVec<'s, EventTime, Prediction>,
    StreamVec<'s, EventTime, DeadLetter>,
) {
    behaviours.filter(|b| b.action == Action::Rating).keyed(
        name,
        Learner { factors },
        keyed_options(name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_learns_a_users_taste() {
        let mut model = Model::new(4);
        for round in 0..200 {
            for item in 0..10u64 {
                let rating = if item < 5 { 5.0 } else { 1.0 };
                model.learn(round % 7, item, rating);
            }
        }
        let (liked, _) = model.predict(3, 2);
        let (disliked, _) = model.predict(3, 8);
        assert!(liked > 4.5 && disliked < 1.5, "{liked} {disliked}");
        assert_eq!(model.learned(), 2000);
    }

    #[test]
    fn predictions_are_clipped_to_the_ratings_seen() {
        let mut model = Model::new(2);
        model.learn(1, 1, 2.0);
        model.learn(1, 2, 4.0);
        for _ in 0..50 {
            model.learn(2, 3, 4.0);
        }
        let (clipped, raw) = model.predict(2, 3);
        assert!((2.0..=4.0).contains(&clipped));
        assert!((raw - clipped).abs() < 1.0);
    }
}
