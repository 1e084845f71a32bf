//! # Nexmark q0 — pass-through
//!
//! **Asks:** every bid, unchanged: `auction, bidder, price, dateTime, extra`.
//!
//! **Illustrates:** the cost of the engine itself — ingest, stamping, watermark progress, the
//! sink — with no query logic. No windows; stateless, so late bids are passed through as well.

use crate::nexmark::model::Event;
use crate::pipeline::{Context, Pipeline};
use crate::time::{EventTime, Timestamp};
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// One output row (Flink's q0 sink columns).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// Auction id.
    pub auction: u64,
    /// Bidder id.
    pub bidder: u64,
    /// Price, cents.
    pub price: u64,
    /// Bid time.
    pub date_time: Timestamp,
    /// Padding.
    pub extra: String,
}

/// The per-event logic: every bid as a row.
pub fn row(event: Event) -> Option<Row> {
    event.into_bid().map(|b| Row {
        auction: b.auction,
        bidder: b.bidder,
        price: b.price,
        date_time: b.date_time,
        extra: b.extra,
    })
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    ctx.emit(events.flat_map(row));
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q0",
    description: "pass-through: every bid",
    columns: &["auction", "bidder", "price", "dateTime", "extra"],
    writes_files: false,
    params: &[],
    build,
};
