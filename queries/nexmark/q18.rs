//! # Nexmark q18 — find last bid
//!
//! **Asks:** for every (bidder, auction) pair, its latest bid by event time:
//! `auction, bidder, price, channel, url, dateTime, extra`, with `diff` (a newer bid retracts
//! the previous one). Among bids at the same instant, the greatest bid (by all its fields)
//! wins, so the result does not depend on arrival order.
//!
//! **Illustrates:** deduplication keeping the last row per key — "max per key" on a composite
//! ordering — as an updating result over a one-row summary per key.
//!
//! **State:** keyed event time — `q18.last_per_pair` ([`Updating`]): per (bidder, auction) pair,
//! its latest bid only (the result row itself), not every bid of the pair.

use crate::nexmark::model::{Bid, Event};
use crate::operators::updating::{Updating, UpdatingFold};
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

/// The latest bid of a (bidder, auction) pair: by time, then by all its fields.
struct LastBid;

impl UpdatingFold for LastBid {
    type Record = Bid;
    type Key = (u64, u64);
    type Acc = Option<Bid>;
    type Row = Bid;

    fn key(&self, bid: &Bid) -> (u64, u64) {
        (bid.bidder, bid.auction)
    }

    fn add(&self, last: &mut Option<Bid>, bid: Bid) {
        let later = |l: &Bid| (bid.date_time, &bid) > (l.date_time, l);
        if last.as_ref().is_none_or(later) {
            *last = Some(bid);
        }
    }

    fn rows(&self, _pair: &(u64, u64), last: &Option<Bid>, rows: &mut Vec<Bid>) {
        rows.extend(last.iter().cloned());
    }
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let (last, _never_late) = events
        .flat_map(Event::into_bid)
        .updating("q18.last_per_pair", LastBid);
    ctx.emit(last.map(|(b, diff)| Row {
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
