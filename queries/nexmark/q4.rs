//! # Nexmark q4 — average price per category
//!
//! **Asks:** for each category, the average over its auctions of the auction's highest bid
//! among bids timed within `[auction.dateTime, auction.expires]` (inclusive): `id` (the
//! category), `final` (the average), with `diff`. Continuously updated: when a maximum grows, the
//! category's old average is retracted (`diff = -1`) and the new one inserted (`+1`). `final` is
//! the exact average (a JSON number, not Flink's integer-truncated `AVG` of `BIGINT`).
//!
//! **Illustrates:** an incremental join feeding two levels of incremental aggregation, with
//! retractions flowing through both.
//!
//! **State:** differential — auctions and bids arranged by auction id and joined
//! (`q4.auctions`, `q4.bids`), `q4.max_per_auction` and `q4.avg_per_category` reductions. The
//! join holds every bid, as Flink's does; results change at most once per stamp (100 ms of
//! event time by default), because differential consolidates each stamp's updates.

use crate::nexmark::model::Event;
use crate::pipeline::{Context, Pipeline};
use crate::collections::{ToRows, ToUpdates};
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// One output row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Category.
    pub id: u64,
    /// Average of the auctions' highest bids, cents.
    #[serde(rename = "final")]
    pub final_price: f64,
    /// +1 insert, −1 retraction.
    pub diff: i64,
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let auctions = events
        .clone()
        .flat_map(|e| match e {
            Event::Auction(a) => Some((a.id, (a.category, a.date_time.0, a.expires.0))),
            _ => None,
        })
        .to_updates("q4.auctions_in");
    let bids = events
        .flat_map(|e| e.into_bid().map(|b| (b.auction, (b.price, b.date_time.0))))
        .to_updates("q4.bids_in");
    let prices = auctions
        .arrange_by_key_named("q4.auctions")
        .join_core(bids.arrange_by_key_named("q4.bids"), |id, &(category, opened, expires), &(price, at)| {
            (opened <= at && at <= expires).then_some(((*id, category), price))
        });
    let finals = prices.reduce_named("q4.max_per_auction", |_key, input: &[(&u64, isize)], output: &mut Vec<(u64, isize)>| {
        // Values arrive sorted ascending: the last is the maximum.
        output.push((*input[input.len() - 1].0, 1));
    });
    let averages = finals
        .map(|((_id, category), price)| (category, price))
        .reduce_named("q4.avg_per_category", |_category, input: &[(&u64, isize)], output: &mut Vec<(u64, isize)>| {
            let (sum, count) = input
                .iter()
                .fold((0u128, 0u128), |(s, c), (price, n)| (s + **price as u128 * *n as u128, c + *n as u128));
            // The average as f64 bits: reduce outputs must be totally ordered data.
            output.push((((sum as f64) / (count as f64)).to_bits(), 1));
        });
    ctx.emit(averages.to_rows(|(category, bits), diff| Row {
        id: category,
        final_price: f64::from_bits(bits),
        diff,
    }));
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q4",
    description: "average price per category: mean of each auction's highest in-time bid (updating)",
    columns: &["id", "final", "diff"],
    writes_files: false,
    build,
};
