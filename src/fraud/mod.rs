//! The fraud domain: card transactions and their delayed labels ([`model`]), a deterministic
//! generator of traffic with labelled fraud patterns (`--source fraud`, [`mod@generator`]), and the
//! per-account [`rules`], changed while running through the [`rulebook`], and an online [`learner`]. Its pipelines are under `queries/fraud/`. The engine never imports
//! this module; it is registered with the binary's catalog like a user's own domain.

pub mod detect;
pub mod features;
pub mod generator;
pub mod learner;
pub mod model;
pub mod params;
pub mod rulebook;
pub mod rules;

use crate::connectors::generator::{Generate, GeneratorConfig};
use model::FraudEvent;

/// The name of the domain and of its generator as a source.
pub const NAME: &str = "fraud";

/// Makes the fraud generator (for [`Domain::generator`](crate::catalog::Domain)).
pub fn generator(config: &GeneratorConfig) -> Box<dyn Generate<Record = FraudEvent>> {
    Box::new(generator::Generator::new(config.clone()))
}
