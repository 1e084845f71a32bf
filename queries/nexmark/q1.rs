//! # Nexmark q1 — currency conversion
//!
//! **Asks:** every bid with its price converted from dollars to euros (`price × 0.908`):
//! `auction, bidder, price, dateTime, extra`.
//!
//! **Illustrates:** a stateless per-record map. No windows; late bids are converted as well.
//! The euro price is a JSON number with at most three decimals (cents × 0.908 is exact in
//! thousandths of a cent; Flink's `DECIMAL(23,3)` prints the same value).

use crate::nexmark::model::Event;
use crate::pipeline::{Context, Pipeline};
use crate::time::{EventTime, Timestamp};
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// One output row (Flink's q1 sink columns).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// Auction id.
    pub auction: u64,
    /// Bidder id.
    pub bidder: u64,
    /// Price in euro cents (three decimals).
    pub price: f64,
    /// Bid time.
    pub date_time: Timestamp,
    /// Padding.
    pub extra: String,
}

/// `cents × 0.908`, computed in integer thousandths so the result is exact.
pub fn to_euros(cents: u64) -> f64 {
    (cents as f64 * 908.0).round() / 1000.0
}

/// The per-event logic: every bid, converted.
pub fn row(event: Event) -> Option<Row> {
    event.into_bid().map(|b| Row {
        auction: b.auction,
        bidder: b.bidder,
        price: to_euros(b.price),
        date_time: b.date_time,
        extra: b.extra,
    })
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    ctx.emit(events.flat_map(row));
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q1",
    description: "currency conversion: bids with price × 0.908",
    columns: &["auction", "bidder", "price", "dateTime", "extra"],
    writes_files: false,
    params: &[],
    build,
};
