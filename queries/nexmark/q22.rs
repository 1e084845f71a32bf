//! # Nexmark q22 — get URL directories
//!
//! **Asks:** every bid with the first three path segments of its URL (Flink's
//! `SPLIT_INDEX(url, '/', 3|4|5)`: split on `/`, counting from 0; `null` past the end):
//! `auction, bidder, price, channel, dir1, dir2, dir3`.
//!
//! **Illustrates:** string splitting per record. No windows; stateless, so late bids are
//! processed as well.

use crate::nexmark::model::Event;
use crate::pipeline::{Context, Pipeline};
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// One output row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Row {
    /// Auction id.
    pub auction: u64,
    /// Bidder id.
    pub bidder: u64,
    /// Price, cents.
    pub price: u64,
    /// Channel name.
    pub channel: String,
    /// Part 3 of the URL split on `/`.
    pub dir1: Option<String>,
    /// Part 4.
    pub dir2: Option<String>,
    /// Part 5.
    pub dir3: Option<String>,
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    ctx.emit(events.flat_map(|e| {
        let b = e.into_bid()?;
        let mut parts = b.url.split('/').skip(3).map(str::to_string);
        Some(Row {
            auction: b.auction,
            bidder: b.bidder,
            price: b.price,
            dir1: parts.next(),
            dir2: parts.next(),
            dir3: parts.next(),
            channel: b.channel,
        })
    }));
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q22",
    description: "get URL directories: the first three path segments of the bid url",
    columns: &["auction", "bidder", "price", "channel", "dir1", "dir2", "dir3"],
    writes_files: false,
    params: &[],
    build,
};
