//! # Nexmark q9 — winning bids
//!
//! **Asks:** every auction with its winning bid: the highest bid timed within
//! `[auction.dateTime, auction.expires]` (inclusive), ties broken by the earlier bid (then by
//! the rest of the bid, so the result does not depend on arrival order), reported when the
//! auction closes. Columns: the auction's `id, itemName, description, initialBid, reserve,
//! dateTime, expires, seller, category, extra` and the bid's `auction, bidder, price,
//! bid_dateTime, bid_extra`, with `diff` (always `+1`: a closed auction's winner never changes).
//! Auctions without a bid in time have no row.
//!
//! **Illustrates:** an event-time join that settles: each auction's result is final once the
//! watermark passes its `expires`, so it leaves once (`diff` is always `+1`) and its state is
//! dropped.
//!
//! **State:** keyed event time — `q9.close_auctions` ([`close_auctions`]): per open auction, the
//! auction and its best bid so far (bids that arrive before their auction wait for it); dropped
//! when the auction closes, so memory follows the auctions open, not the bids ever made. Late
//! auctions, and late bids of closed auctions, are dead letters.

use crate::nexmark::auctions::close_auctions;
use crate::nexmark::model::Event;
use crate::pipeline::{Context, Pipeline};
use crate::time::{EventTime, Timestamp};
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// One output row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// Auction id.
    pub id: u64,
    /// Item name.
    pub item_name: String,
    /// Description.
    pub description: String,
    /// Starting price, cents.
    pub initial_bid: u64,
    /// Reserve price, cents.
    pub reserve: u64,
    /// Auction time.
    pub date_time: Timestamp,
    /// Auction close.
    pub expires: Timestamp,
    /// Seller id.
    pub seller: u64,
    /// Category.
    pub category: u64,
    /// Auction padding.
    pub extra: String,
    /// The winning bid's auction id.
    pub auction: u64,
    /// Winning bidder.
    pub bidder: u64,
    /// Winning price, cents.
    pub price: u64,
    /// Winning bid time.
    #[serde(rename = "bid_dateTime")]
    pub bid_date_time: Timestamp,
    /// Winning bid padding.
    #[serde(rename = "bid_extra")]
    pub bid_extra: String,
    /// +1 insert, −1 retraction.
    pub diff: i64,
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let (closed, rejected) = close_auctions(
        events,
        "q9.close_auctions",
        ctx.policy().granularity_ms,
        std::convert::identity,
        std::convert::identity,
    );
    ctx.dead_letter(rejected);
    ctx.emit(closed.map(|(a, b)| Row {
        id: a.id,
        item_name: a.item_name,
        description: a.description,
        initial_bid: a.initial_bid,
        reserve: a.reserve,
        date_time: a.date_time,
        expires: a.expires,
        seller: a.seller,
        category: a.category,
        extra: a.extra,
        auction: b.auction,
        bidder: b.bidder,
        price: b.price,
        bid_date_time: b.date_time,
        bid_extra: b.extra,
        diff: 1,
    }));
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q9",
    description: "winning bids: every auction with its highest in-time bid, when it closes",
    columns: &[
        "id", "itemName", "description", "initialBid", "reserve", "dateTime", "expires", "seller", "category",
        "extra", "auction", "bidder", "price", "bid_dateTime", "bid_extra", "diff",
    ],
    writes_files: false,
    params: &[],
    build,
};
