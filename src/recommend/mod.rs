//! The recommendation domain: behaviour events — views, carts, purchases, ratings
//! ([`model`]) — a deterministic clickstream generator (`--source recommend`,
//! [`mod@generator`]), each user's recent items ([`history`]), per-user top-k recommendations
//! from item-to-item co-occurrence refreshed for the users who act ([`topk`]), similar items
//! maintained incrementally in differential arrangements ([`cooccurrence`]), an online biased matrix factorisation predicting each rating before it
//! learns it ([`rating`]), and per-customer recency/frequency/monetary features ([`rfm`]). Its
//! pipelines are under `queries/recommend/`. The engine never imports this module; it is
//! registered with the binary's catalog like a user's own domain.

pub mod cooccurrence;
pub mod generator;
pub mod history;
pub mod model;
pub mod params;
pub mod rating;
pub mod rfm;
pub mod topk;

use crate::connectors::generator::{Generate, GeneratorConfig};
use model::Behaviour;

/// Similarities and scores are integers in these units (millionths): sums of them are exact,
/// the same in any order and at any worker count.
pub const SCALE: f64 = 1e6;

/// The name of the domain and of its generator as a source.
pub const NAME: &str = "recommend";

/// Makes the clickstream generator (for [`Domain::generator`](crate::catalog::Domain)).
pub fn generator(config: &GeneratorConfig) -> Box<dyn Generate<Record = Behaviour>> {
    Box::new(generator::Generator::new(config.clone()))
}
