//! # fraud_scores — every transaction's score, for evaluation
//!
//! **Asks:** what did the model and the rules say about each transaction, allowed or not? One
//! row per transaction, as [`fraud`](super::fraud) computes them: `id, account, time, amount,
//! decision, risk, model_score, rules_score, rules, model_examples, features` (the model's
//! inputs, in [`NAMES`](crate::fraud::features::NAMES) order). Joined with the labels it gives
//! the model's prequential quality, and another learner can be run on the same features in the
//! same order (`scripts/fraud-quality.py`).
//!
//! **Illustrates** and **state:** as `fraud`; only the output differs.

use crate::fraud::detect::{Scored, SCORED_COLUMNS_WITH_FEATURES};
use crate::fraud::features::COUNT;
use crate::fraud::model::FraudEvent;
use crate::fraud::params;
use crate::pipeline::{Context, Pipeline};
use crate::time::EventTime;
use serde::Serialize;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// A scored transaction with its features.
#[derive(Serialize)]
struct Row {
    #[serde(flatten)]
    scored: Scored,
    features: [f64; COUNT],
}

fn build<'s>(events: StreamVec<'s, EventTime, FraudEvent>, ctx: &mut Context<'s>) {
    let scored = params::scored(events, ctx);
    ctx.emit(scored.map(|scored| Row {
        features: scored.features,
        scored,
    }));
}

/// Registry entry.
pub const QUERY: Pipeline<FraudEvent> = Pipeline {
    name: "fraud_scores",
    description: "every transaction's model and rules scores and decision (for evaluation)",
    columns: SCORED_COLUMNS_WITH_FEATURES,
    writes_files: false,
    params: &[params::RULES, params::THRESHOLDS],
    build,
};
