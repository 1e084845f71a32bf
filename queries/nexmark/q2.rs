//! # Nexmark q2 — selection
//!
//! **Asks:** `auction, price` of the bids on auctions whose id is a multiple of 123.
//!
//! **Illustrates:** a stateless filter with a small projection. No windows; late bids are
//! selected as well.

use crate::nexmark::model::Event;
use crate::pipeline::{Context, Pipeline};
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// One output row (Flink's q2 sink columns).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Row {
    /// Auction id.
    pub auction: u64,
    /// Price, cents.
    pub price: u64,
}

/// The per-event logic: the bids with `auction % 123 == 0`.
pub fn row(event: Event) -> Option<Row> {
    match event {
        Event::Bid(b) if b.auction % 123 == 0 => Some(Row {
            auction: b.auction,
            price: b.price,
        }),
        _ => None,
    }
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    ctx.emit(events.flat_map(row));
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q2",
    description: "selection: bids on auctions whose id is a multiple of 123",
    columns: &["auction", "price"],
    writes_files: false,
    params: &[],
    build,
};
