//! The Nexmark domain: the auction site's events ([`model`]) in Flink's JSON form and their
//! deterministic [generator](mod@generator) (`--source nexmark`). Its pipelines, the 23 Nexmark queries, are
//! under `queries/nexmark/`. The engine never imports this module; it is one domain among
//! others, registered with the binary's catalog like a user's own.

pub mod auctions;
pub mod generator;
pub mod model;

use crate::connectors::generator::{Generate, GeneratorConfig};
use model::Event;

/// The name of the domain and of its generator as a source.
pub const NAME: &str = "nexmark";

/// Makes the Nexmark generator (for [`Domain::generator`](crate::catalog::Domain)).
pub fn generator(config: &GeneratorConfig) -> Box<dyn Generate<Record = Event>> {
    Box::new(generator::Generator::new(config.clone()))
}
