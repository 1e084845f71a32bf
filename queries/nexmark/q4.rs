//! # Nexmark q4 — average price per category
//!
//! **Asks:** for each category, the average over its closed auctions of the auction's highest
//! bid among bids timed within `[auction.dateTime, auction.expires]` (inclusive): `id` (the
//! category), `final` (the average), with `diff`. An auction counts once it closes (the
//! watermark passes its `expires`), with its final price; each closing retracts the category's
//! old average (`diff = -1`) and inserts the new one (`+1`). `final` is the exact average (a
//! JSON number, not Flink's integer-truncated `AVG` of `BIGINT`). At the end of the input every
//! auction has closed, so the result is the batch query's.
//!
//! **Illustrates:** settled facts feeding an updating aggregate — instead of an unbounded join
//! whose every bid stays in state, auctions close in event time and only their final prices
//! reach the per-category average.
//!
//! **State:** keyed event time — `q4.close_auctions` ([`close_auctions`]): per open auction, the
//! auction's id, category and interval and its best bid's price (bids are kept only as the
//! fields a price needs while they wait for the frontier), dropped when it closes; `q4.avg_per_category` ([`Updating`]): a sum
//! and a count per category. Nothing grows with the number of bids.

use crate::nexmark::auctions::{close_auctions, Listing, Price};
use crate::nexmark::model::Event;
use crate::operators::updating::{Updating, UpdatingFold};
use crate::pipeline::{Context, Pipeline};
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

/// The running average of final prices per category.
struct Average;

impl UpdatingFold for Average {
    /// (category, an auction's final price).
    type Record = (u64, u64);
    type Key = u64;
    /// (sum, count).
    type Acc = (u128, u64);
    /// (category, the average's f64 bits).
    type Row = (u64, u64);

    fn key(&self, record: &(u64, u64)) -> u64 {
        record.0
    }

    fn add(&self, (sum, count): &mut (u128, u64), (_, price): (u64, u64)) {
        *sum += price as u128;
        *count += 1;
    }

    fn rows(&self, category: &u64, &(sum, count): &(u128, u64), rows: &mut Vec<(u64, u64)>) {
        if count > 0 {
            rows.push((*category, (sum as f64 / count as f64).to_bits()));
        }
    }
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let (closed, rejected) = close_auctions(
        events,
        "q4.close_auctions",
        ctx.policy().granularity_ms,
        Listing::of,
        Price::of,
    );
    ctx.dead_letter(rejected);
    let finals = closed.map(|(a, b)| (a.category, b.price));
    let (averages, _never_late) = finals.updating_retiring("q4.avg_per_category", Average, ctx.state_ttl());
    ctx.emit(averages.map(|((category, bits), diff)| Row {
        id: category,
        final_price: f64::from_bits(bits),
        diff,
    }));
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q4",
    description: "average price per category: mean final price of its closed auctions (updating)",
    columns: &["id", "final", "diff"],
    writes_files: false,
    params: &[],
    build,
};
