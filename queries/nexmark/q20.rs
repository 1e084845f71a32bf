//! # Nexmark q20 — expand bid with auction
//!
//! **Asks:** every bid on a category-10 auction, joined with its auction:
//! `auction, bidder, price, channel, url, bid_dateTime, bid_extra, itemName, description,
//! initialBid, reserve, auction_dateTime, expires, seller, category, auction_extra`, with `diff`.
//!
//! **Illustrates:** an unwindowed stream–stream join where either side may come first (a bid can
//! arrive before its auction when events are out of order), with state per auction rather than
//! per bid: a bid is joined the moment both sides are there and never kept after.
//!
//! **State:** keyed event time — `q20.join_auctions`: per auction id, its category-10 auction
//! (every later bid joins it), or a marker that the auction is of another category (its bids are
//! dropped at once), or the bids that arrived before their auction. Unwindowed, so an auction's
//! entry stays; but nothing per bid does.

use crate::deadletter::DeadLetter;
use crate::nexmark::auctions::{duplicate_auction, AuctionOrBid};
use crate::nexmark::model::{Auction, Bid, Event};
use crate::operators::keyed::{keyed_options, Emit, KeyedCore, KeyedLogic};
use crate::pipeline::{Context, Pipeline};
use crate::time::{EventTime, Timestamp};
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::OkErr;
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

fn row(b: Bid, a: &Auction) -> Row {
    Row {
        auction: b.auction,
        bidder: b.bidder,
        price: b.price,
        channel: b.channel,
        url: b.url,
        bid_date_time: b.date_time,
        bid_extra: b.extra,
        item_name: a.item_name.clone(),
        description: a.description.clone(),
        initial_bid: a.initial_bid,
        reserve: a.reserve,
        auction_date_time: a.date_time,
        expires: a.expires,
        seller: a.seller,
        category: a.category,
        auction_extra: a.extra.clone(),
        diff: 1,
    }
}

/// The join operator's name.
const NAME: &str = "q20.join_auctions";

/// The category whose auctions are joined.
pub const CATEGORY: u64 = 10;

/// One auction id's side of the join.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
enum Side {
    /// Nothing yet.
    #[default]
    Unknown,
    /// Bids that came before their auction.
    Waiting(Vec<Bid>),
    /// A category-10 auction: bids join it.
    Joining(Box<Auction>),
    /// An auction of another category: bids join nothing.
    Other,
}

/// Bids joined with their category-10 auction, whichever comes first.
struct JoinAuctions;

impl KeyedLogic for JoinAuctions {
    type Record = AuctionOrBid;
    type Key = u64;
    type State = Side;
    type Pending = Vec<AuctionOrBid>;
    type Output = Result<Row, DeadLetter>;

    fn key(&self, record: &AuctionOrBid) -> u64 {
        match record {
            AuctionOrBid::Auction(a) => a.id,
            AuctionOrBid::Bid(b) => b.auction,
        }
    }

    fn too_late(&self, _: &AuctionOrBid, _: EventTime) -> Option<String> {
        None
    }

    fn stash(&self, pending: &mut Vec<AuctionOrBid>, record: AuctionOrBid) {
        pending.push(record);
    }

    fn apply(&self, _id: &u64, side: &mut Side, pending: Vec<AuctionOrBid>, out: &mut Emit<'_, Result<Row, DeadLetter>>) {
        for record in pending {
            match (record, &mut *side) {
                (AuctionOrBid::Bid(b), Side::Joining(a)) => out.give(Ok(row(b, a))),
                (AuctionOrBid::Bid(_), Side::Other) => {}
                (AuctionOrBid::Bid(b), Side::Waiting(bids)) => bids.push(b),
                (AuctionOrBid::Bid(b), Side::Unknown) => *side = Side::Waiting(vec![b]),
                (AuctionOrBid::Auction(a), Side::Waiting(_) | Side::Unknown) => {
                    let waiting = match std::mem::take(side) {
                        Side::Waiting(bids) => bids,
                        _ => Vec::new(),
                    };
                    if a.category == CATEGORY {
                        for b in waiting {
                            out.give(Ok(row(b, &a)));
                        }
                        *side = Side::Joining(a);
                    } else {
                        *side = Side::Other;
                    }
                }
                // Auction ids are unique: a second one is bad input, not a second partner.
                (AuctionOrBid::Auction(a), Side::Joining(_) | Side::Other) => {
                    out.give(Err(duplicate_auction(NAME, &a)));
                }
            }
        }
    }

    fn is_done(&self, side: &Side) -> bool {
        matches!(side, Side::Unknown)
    }
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let (outcomes, _never_late) = events
        .flat_map(AuctionOrBid::of)
        .keyed(NAME, JoinAuctions, keyed_options(NAME));
    let (joined, duplicates) = outcomes.ok_err(|o| o);
    ctx.dead_letter(duplicates);
    ctx.emit(joined);
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
    params: &[],
    build,
};
