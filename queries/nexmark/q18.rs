//! # Nexmark q18 — find last bid
//!
//! **Asks:** for every (bidder, auction) pair, its latest bid by event time:
//! `auction, bidder, price, channel, url, dateTime, extra`, with `diff` (a newer bid retracts
//! the previous one). Among bids at the same instant, the greatest bid (by all its fields)
//! wins, so the result does not depend on arrival order.
//!
//! **Illustrates:** deduplication keeping the last row per key — "max per key" on a composite
//! ordering — as an incremental reduction.
//!
//! **State:** differential — `q18.last_per_pair` reduces bids keyed by (bidder, auction); its
//! input arrangement compacts as the watermark advances, and holds the pairs' bids.

use crate::nexmark::model::{Bid, Event};
use crate::pipeline::{Context, Pipeline};
use crate::collections::{ToRows, ToUpdates};
use crate::time::{EventTime, Timestamp};
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// One output row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// Auction id.
    pub auction: u64,
    /// Bidder id.
    pub bidder: u64,
    /// Price, cents.
    pub price: u64,
    /// Channel.
    pub channel: String,
    /// URL.
    pub url: String,
    /// Bid time.
    pub date_time: Timestamp,
    /// Padding.
    pub extra: String,
    /// +1 insert, −1 retraction.
    pub diff: i64,
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let bids = events
        .flat_map(|e| e.into_bid().map(|b| ((b.bidder, b.auction), (b.date_time, b))))
        .to_updates("q18.bids_in");
    let last = bids.reduce_named(
        "q18.last_per_pair",
        |_pair, input: &[(&(Timestamp, Bid), isize)], output: &mut Vec<((Timestamp, Bid), isize)>| {
            // Sorted ascending by (time, bid): the last is the latest.
            output.push((input[input.len() - 1].0.clone(), 1));
        },
    );
    ctx.emit(last.to_rows(|(_pair, (_t, b)), diff| Row {
        auction: b.auction,
        bidder: b.bidder,
        price: b.price,
        channel: b.channel,
        url: b.url,
        date_time: b.date_time,
        extra: b.extra,
        diff,
    }));
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q18",
    description: "find last bid: the latest bid of every (bidder, auction) pair (updating)",
    columns: &["auction", "bidder", "price", "channel", "url", "dateTime", "extra", "diff"],
    writes_files: false,
    build,
};
