//! # Nexmark q19 — auction top-10 price
//!
//! **Asks:** the ten highest-priced bids of every auction, ranked:
//! `auction, bidder, price, channel, url, dateTime, extra, rank_number`, with `diff` (when a
//! higher bid arrives, the bids it pushes down are retracted at their old rank and re-inserted
//! at the new one). Equal prices are ranked by the rest of the bid (time, then the other
//! fields), so ranks do not depend on arrival order.
//!
//! **Illustrates:** incremental top-k per key.
//!
//! **State:** differential — `q19.top10_per_auction` reduces bids keyed by auction; its input
//! arrangement holds the auctions' bids and compacts as the watermark advances.

use crate::nexmark::model::{Bid, Event};
use crate::pipeline::{Context, Pipeline};
use crate::collections::{ToRows, ToUpdates};
use crate::time::{EventTime, Timestamp};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// How many bids per auction.
pub const TOP: usize = 10;

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
    /// 1 for the highest bid.
    #[serde(rename = "rank_number")]
    pub rank_number: u64,
    /// +1 insert, −1 retraction.
    pub diff: i64,
}

/// A bid in rank order: highest price first, then the earliest, then the least bid.
type Ranked = (Reverse<u64>, Timestamp, Bid);

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    // Keyed by auction; values ordered by descending price, then ascending time and bid.
    let bids = events
        .flat_map(|e| e.into_bid().map(|b| (b.auction, (Reverse(b.price), b.date_time, b))))
        .to_updates("q19.bids_in");
    let top = bids.reduce_named(
        "q19.top10_per_auction",
        |_auction, input: &[(&Ranked, isize)], output: &mut Vec<((u64, Bid), isize)>| {
            let mut rank = 0;
            for (value, copies) in input {
                for _ in 0..*copies {
                    if rank == TOP {
                        return;
                    }
                    rank += 1;
                    output.push(((rank as u64, value.2.clone()), 1));
                }
            }
        },
    );
    ctx.emit(top.to_rows(|(_auction, (rank_number, b)), diff| Row {
        auction: b.auction,
        bidder: b.bidder,
        price: b.price,
        channel: b.channel,
        url: b.url,
        date_time: b.date_time,
        extra: b.extra,
        rank_number,
        diff,
    }));
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q19",
    description: "auction top-10 price: the ten highest bids of every auction, ranked (updating)",
    columns: &["auction", "bidder", "price", "channel", "url", "dateTime", "extra", "rank_number", "diff"],
    writes_files: false,
    build,
};
