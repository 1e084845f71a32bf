//! # recommend_rfm — customer features for marketing
//!
//! **Asks:** for every customer, how often do they come back, how recently did they buy, how
//! long have they been a customer and how much do they spend? Rows `time, customer,
//! frequency, recency, age, monetary, purchases, total` at every stamp with a purchase of
//! theirs — the RFM definitions of the `lifetimes` package (repeat purchase days; recency and
//! age in weeks; mean spend of the repeat days).
//!
//! **Illustrates:** per-key state in event time with O(1) state per customer; its figures are
//! checked against `lifetimes` on the CDNOW purchases (`scripts/recommend-quality.py`).
//!
//! **Windows and state:** no windows; per customer the first and latest purchase day, the
//! number of purchase days and purchases, the first day's and the total spend
//! (`recommend_rfm.customers`).

use crate::pipeline::{Context, Pipeline};
use crate::recommend::model::Behaviour;
use crate::recommend::rfm::{customer_features, FEATURE_COLUMNS};
use crate::time::EventTime;
use timely::dataflow::StreamVec;

fn build<'s>(behaviours: StreamVec<'s, EventTime, Behaviour>, ctx: &mut Context<'s>) {
    let (features, late) = customer_features(behaviours, "recommend_rfm.customers");
    ctx.dead_letter(late);
    ctx.emit(features);
}

/// Registry entry.
pub const QUERY: Pipeline<Behaviour> = Pipeline {
    name: "recommend_rfm",
    description: "per-customer recency, frequency, age and monetary value (lifetimes' definitions)",
    columns: FEATURE_COLUMNS,
    writes_files: false,
    params: &[],
    build,
};
