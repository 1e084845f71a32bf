//! # fraud — decisions: rules and an online model learning from delayed labels
//!
//! **Asks:** which transactions to review or block, scored the moment they are seen? One row per
//! transaction whose risk reaches review (0.5) or block (0.85): `id, account, time, amount,
//! decision, risk, model_score, rules_score, rules, model_examples, latency_ms`. Risk is the
//! larger of the online model's probability of fraud and the rules' score; `latency_ms` is the
//! wall-clock time from when the pipeline received the transaction (decoded, on the worker that
//! read it) to the decision — the watermark's wait included.
//!
//! **Illustrates:** an online model in the stream, trained from labels that arrive later in
//! event time and joined back to the features their transaction had when it was scored;
//! model state that is ordinary keyed state (checkpointed and restored like any other), and a
//! broadcast of each new model version to every worker, so a transaction is scored by exactly
//! the labels of earlier stamps — the same decisions at any worker or process count.
//!
//! **Windows and state:** see [`detect`](crate::fraud::detect): per account, the rules' state,
//! features awaiting labels (up to seven days of event time) and labels awaiting transactions;
//! one model (15 weights, their scaler) on one worker, copied to all after each stamp that
//! taught it something. Unmatched labels (unknown transaction, second label) are dead letters.

use crate::fraud::detect::{Decision, Scored, SCORED_COLUMNS_WITH_LATENCY};
use crate::fraud::model::FraudEvent;
use crate::fraud::params;
use crate::operators::ingested::{latency_ms, wall_clock_us};
use crate::pipeline::{Context, Pipeline};
use crate::time::EventTime;
use serde::Serialize;
use timely::dataflow::operators::vec::{Filter, Map};
use timely::dataflow::StreamVec;

/// A decision with its ingest-to-decision latency.
#[derive(Serialize)]
struct Alert {
    #[serde(flatten)]
    scored: Scored,
    /// Wall-clock ms from when the pipeline received the transaction to this row.
    latency_ms: f64,
}

fn build<'s>(events: StreamVec<'s, EventTime, FraudEvent>, ctx: &mut Context<'s>) {
    let scored = params::scored(events, ctx);
    let alerts = scored
        .filter(|s| s.decision != Decision::Allow)
        .map(|scored| Alert {
            latency_ms: latency_ms(scored.ingested_us, wall_clock_us()),
            scored,
        });
    ctx.emit(alerts);
}

/// Registry entry.
pub const QUERY: Pipeline<FraudEvent> = Pipeline {
    name: "fraud",
    description: "review/block decisions from the rules and an online model learning from delayed labels",
    columns: SCORED_COLUMNS_WITH_LATENCY,
    writes_files: false,
    params: &[params::RULES, params::THRESHOLDS],
    build,
};
