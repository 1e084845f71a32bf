//! The registry of this crate's pipelines, one section per domain.
//!
//! Each pipeline lives in its own file under `queries/<domain>/`, with a banner saying what it
//! asks, what it illustrates, its windows and its state, and exports one `QUERY` constant. A
//! domain's section declares its files and lists them; [`catalog`] gathers every domain for the
//! `sluice` binary. Adding a pipeline is one file and one name in its section's list.

use crate::catalog::{Catalog, Domain};

/// Declares a domain's pipeline modules and lists them in its `ALL`, from one list of names.
macro_rules! section {
    ($(#[$doc:meta])* $domain:ident ($record:ty): $($query:ident),* $(,)?) => {
        $(#[$doc])*
        pub mod $domain {
            $(pub mod $query;)*

            /// Every pipeline of the domain, in `sluice list` order.
            pub static ALL: &[&crate::pipeline::Pipeline<$record>] = &[$(&$query::QUERY),*];

            /// The pipeline called `name`.
            pub fn find(name: &str) -> Option<&'static crate::pipeline::Pipeline<$record>> {
                ALL.iter().copied().find(|p| p.name == name)
            }
        }
    };
}

section!(
    /// The Nexmark benchmark's queries over auction events (see `docs/nexmark.md`).
    nexmark (crate::nexmark::model::Event):
    q0, q1, q2, q3, q4, q5, q6, q7, q8, q9, q10, q11, q12, q13, q14, q15, q16, q17, q18, q19, q20, q21, q22
);

section!(
    /// Card fraud detection over transactions and their delayed labels.
    fraud (crate::fraud::model::FraudEvent):
    fraud, fraud_rules, fraud_scores
);

section!(
    /// Sensor readings of a device fleet: the monitor (every detector), offline devices, fleet
    /// statistics, anomalies, change points, early warning of failure, stuck sensors.
    iot (crate::iot::model::Reading):
    iot, iot_offline, iot_fleet, iot_scores, iot_anomaly, iot_changes, iot_warning, iot_stuck
);

section!(
    /// Behaviour events of an online shop or a film site: recommendations by co-occurrence,
    /// similar items, trending items, an online rating model, customer features.
    recommend (crate::recommend::model::Behaviour):
    recommend, recommend_similar, recommend_trending, recommend_ratings, recommend_rfm
);

/// The Nexmark domain: its events, generator and queries.
pub fn nexmark_domain() -> Domain<crate::nexmark::model::Event> {
    Domain {
        name: crate::nexmark::NAME,
        description: "the Nexmark auction benchmark (persons, auctions, bids)",
        generator: Some(crate::nexmark::generator),
        generator_options: &[],
        pipelines: nexmark::ALL,
    }
}

/// The fraud domain: transactions and labels, their generator and pipelines.
pub fn fraud_domain() -> Domain<crate::fraud::model::FraudEvent> {
    Domain {
        name: crate::fraud::NAME,
        description: "card transactions with delayed fraud labels; per-account rules",
        generator: Some(crate::fraud::generator),
        generator_options: crate::fraud::generator::OPTIONS,
        pipelines: fraud::ALL,
    }
}

/// The IoT domain: sensor readings, the fleet generator and its pipelines.
pub fn iot_domain() -> Domain<crate::iot::model::Reading> {
    Domain {
        name: crate::iot::NAME,
        description: "sensor readings of a device fleet with labelled faults",
        generator: Some(crate::iot::generator),
        generator_options: crate::iot::generator::OPTIONS,
        pipelines: iot::ALL,
    }
}

/// The recommendation domain: behaviour events, the clickstream generator and its pipelines.
pub fn recommend_domain() -> Domain<crate::recommend::model::Behaviour> {
    Domain {
        name: crate::recommend::NAME,
        description: "user behaviour (views, carts, purchases, ratings); recommendations",
        generator: Some(crate::recommend::generator),
        generator_options: crate::recommend::generator::OPTIONS,
        pipelines: recommend::ALL,
    }
}

/// Every domain of this crate, for the `sluice` binary.
pub fn catalog() -> Catalog {
    Catalog::new()
        .with(nexmark_domain())
        .with(fraud_domain())
        .with(iot_domain())
        .with(recommend_domain())
}
