//! # Nexmark q9 — winning bids
//!
//! **Asks:** every auction with its winning bid: the highest bid timed within
//! `[auction.dateTime, auction.expires]` (inclusive), ties broken by the earlier bid (then by
//! the rest of the bid, so the result does not depend on arrival order). Columns: the auction's
//! `id, itemName, description, initialBid, reserve, dateTime, expires, seller, category, extra`
//! and the bid's `auction, bidder, price, bid_dateTime, bid_extra`, with `diff` (a better bid
//! retracts the previous winner). Auctions without a bid in time have no row.
//!
//! **Illustrates:** an incremental join followed by a top-1 per key with a composite ordering.
//!
//! **State:** differential — auctions and bids arranged by auction id and joined
//! (`q9.auctions`, `q9.bids`), then `q9.winner_per_auction` keyed by id, joined back with the
//! auctions (`q9.winners`).

use crate::nexmark::model::{Auction, Bid, Event};
use crate::pipeline::{Context, Pipeline};
use crate::collections::{ToRows, ToUpdates, Updates};
use crate::time::{EventTime, Timestamp};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
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

/// A bid in winning order: highest price first, then the earliest, then the least bid.
type Ranked = (Reverse<u64>, Timestamp, Bid);

/// The winning bid of every auction that has one, as an updating collection: the auction and
/// its best bid (highest price, then earliest). Shared with q6.
///
/// The join keeps only the bid per in-time match (keyed by auction id); the winner per id is
/// then joined back with the auctions' arrangement, so an auction is copied once per change of
/// its winner, not once per bid.
pub fn winning_bids<'s>(events: StreamVec<'s, EventTime, Event>, name: &str) -> Updates<'s, (Auction, Bid)> {
    let auctions = events
        .clone()
        .flat_map(|e| match e {
            Event::Auction(a) => Some((a.id, *a)),
            _ => None,
        })
        .to_updates(&format!("{name}.auctions_in"))
        .arrange_by_key_named(&format!("{name}.auctions"));
    let bids = events
        .flat_map(|e| e.into_bid().map(|b| (b.auction, b)))
        .to_updates(&format!("{name}.bids_in"));
    let in_time = auctions
        .clone()
        .join_core(bids.arrange_by_key_named(&format!("{name}.bids")), |id, a, b| {
            (a.date_time <= b.date_time && b.date_time <= a.expires)
                .then(|| (*id, (Reverse(b.price), b.date_time, b.clone())))
        });
    let winners = in_time.reduce_named(
        &format!("{name}.winner_per_auction"),
        |_id, input: &[(&Ranked, isize)], output: &mut Vec<(Bid, isize)>| {
            // Sorted ascending: highest price first, then the earliest, then the least bid.
            output.push((input[0].0 .2.clone(), 1));
        },
    );
    auctions.join_core(winners.arrange_by_key_named(&format!("{name}.winners")), |_id, a, b| {
        Some((a.clone(), b.clone()))
    })
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let winners = winning_bids(events, "q9");
    ctx.emit(winners.to_rows(|(a, b), diff| Row {
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
        diff,
    }));
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q9",
    description: "winning bids: every auction with its highest in-time bid (updating)",
    columns: &[
        "id", "itemName", "description", "initialBid", "reserve", "dateTime", "expires", "seller", "category",
        "extra", "auction", "bidder", "price", "bid_dateTime", "bid_extra", "diff",
    ],
    writes_files: false,
    build,
};
