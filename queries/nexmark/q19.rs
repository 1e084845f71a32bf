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
//! **State:** keyed event time — `q19.top10_per_auction` ([`Updating`]): per auction, its ten
//! best bids only; a bid that ranks below them can never rank again and is not kept. The
//! auctions grow with the history; `--state-ttl` retires an auction without bids that long (its
//! rows are retracted). Bids are kept as q18's [`SharedBid`] (three strings, one allocation,
//! shared by the state and the rows).

use super::q18::SharedBid;
use crate::nexmark::model::Event;
use crate::operators::updating::{Updating, UpdatingFold};
use crate::pipeline::{Context, Pipeline};
use crate::time::{EventTime, Timestamp};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// How many bids per auction.
pub const TOP: usize = 10;

/// One output row: the bid's fields (`auction, bidder, price, channel, url, dateTime, extra`),
/// `rank_number` and `diff`. The bid is shared with the operator's state, not copied.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Row {
    /// The bid.
    #[serde(flatten)]
    pub bid: SharedBid,
    /// 1 for the highest bid.
    pub rank_number: u64,
    /// +1 insert, −1 retraction.
    pub diff: i64,
}

/// A bid in rank order: highest price first, then the earliest, then the least bid.
type Ranked = (Reverse<u64>, Timestamp, SharedBid);

/// The ten best bids of an auction, in rank order.
struct TopTen;

impl UpdatingFold for TopTen {
    type Record = SharedBid;
    type Key = u64;
    type Acc = Vec<Ranked>;
    /// (rank from 1, bid).
    type Row = (u64, SharedBid);

    fn key(&self, bid: &SharedBid) -> u64 {
        bid.auction
    }

    fn add(&self, top: &mut Vec<Ranked>, bid: SharedBid) {
        let ranked = (Reverse(bid.price), bid.date_time, bid);
        let at = top.partition_point(|r| *r <= ranked);
        if at < TOP {
            top.insert(at, ranked);
            top.truncate(TOP);
        }
    }

    fn changes(&self, top: &Vec<Ranked>, bid: &SharedBid) -> bool {
        // Ranked below a full top ten: never in it.
        top.get(TOP - 1)
            .is_none_or(|last| (Reverse(bid.price), bid.date_time, bid) < (last.0, last.1, &last.2))
    }

    fn rows(&self, _auction: &u64, top: &Vec<Ranked>, rows: &mut Vec<(u64, SharedBid)>) {
        rows.extend(top.iter().enumerate().map(|(i, r)| (i as u64 + 1, r.2.clone())));
    }
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let (top, _never_late) = events
        .flat_map(|e| e.into_bid().map(|bid| SharedBid::of(&bid)))
        .updating_retiring("q19.top10_per_auction", TopTen, ctx.state_ttl());
    ctx.emit(top.map(|((rank_number, bid), diff)| Row {
        bid,
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
    params: &[],
    build,
};
