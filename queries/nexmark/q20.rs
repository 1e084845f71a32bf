//! # Nexmark q20 — expand bid with auction
//!
//! **Asks:** every bid on a category-10 auction, joined with its auction:
//! `auction, bidder, price, channel, url, bid_dateTime, bid_extra, itemName, description,
//! initialBid, reserve, auction_dateTime, expires, seller, category, auction_extra`, with `diff`.
//!
//! **Illustrates:** an incremental, unwindowed stream–stream join where either side may come
//! first (a bid can arrive before its auction when events are out of order).
//!
//! **State:** differential — category-10 auctions and all bids arranged by auction id
//! (`q20.auctions`, `q20.bids`) and joined. Unwindowed, so, as in Flink, both arrangements keep
//! every record. Inputs only grow: every row has `diff = 1`.

use crate::nexmark::model::{Auction, Bid, Event};
use crate::pipeline::{Context, Pipeline};
use crate::collections::{ToRows, ToUpdates};
use crate::time::{EventTime, Timestamp};
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
    /// Channel.
    pub channel: String,
    /// URL.
    pub url: String,
    /// Bid time.
    #[serde(rename = "bid_dateTime")]
    pub bid_date_time: Timestamp,
    /// Bid padding.
    pub bid_extra: String,
    /// Item name.
    #[serde(rename = "itemName")]
    pub item_name: String,
    /// Description.
    pub description: String,
    /// Starting price, cents.
    #[serde(rename = "initialBid")]
    pub initial_bid: u64,
    /// Reserve price, cents.
    pub reserve: u64,
    /// Auction time.
    #[serde(rename = "auction_dateTime")]
    pub auction_date_time: Timestamp,
    /// Auction close.
    pub expires: Timestamp,
    /// Seller id.
    pub seller: u64,
    /// Category.
    pub category: u64,
    /// Auction padding.
    pub auction_extra: String,
    /// +1 insert, −1 retraction.
    pub diff: i64,
}

fn row((b, a): (Bid, Auction), diff: i64) -> Row {
    Row {
        auction: b.auction,
        bidder: b.bidder,
        price: b.price,
        channel: b.channel,
        url: b.url,
        bid_date_time: b.date_time,
        bid_extra: b.extra,
        item_name: a.item_name,
        description: a.description,
        initial_bid: a.initial_bid,
        reserve: a.reserve,
        auction_date_time: a.date_time,
        expires: a.expires,
        seller: a.seller,
        category: a.category,
        auction_extra: a.extra,
        diff,
    }
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let auctions = events
        .clone()
        .flat_map(|e| match e {
            Event::Auction(a) if a.category == 10 => Some((a.id, *a)),
            _ => None,
        })
        .to_updates("q20.auctions_in");
    let bids = events
        .flat_map(|e| e.into_bid().map(|b| (b.auction, b)))
        .to_updates("q20.bids_in");
    let joined = bids
        .arrange_by_key_named("q20.bids")
        .join_core(auctions.arrange_by_key_named("q20.auctions"), |_id, bid, auction| {
            Some((bid.clone(), auction.clone()))
        });
    ctx.emit(joined.to_rows(row));
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q20",
    description: "expand bid with auction: bids joined with their category-10 auction (incremental join)",
    columns: &[
        "auction", "bidder", "price", "channel", "url", "bid_dateTime", "bid_extra", "itemName", "description",
        "initialBid", "reserve", "auction_dateTime", "expires", "seller", "category", "auction_extra", "diff",
    ],
    writes_files: false,
    build,
};
