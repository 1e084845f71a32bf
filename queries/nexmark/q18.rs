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
//! its latest bid only (the result row itself), not every bid of the pair. The pairs grow with
//! the history; `--state-ttl` retires a pair idle that long (its row is retracted).

use crate::nexmark::model::{Bid, Event};
use crate::operators::updating::{Updating, UpdatingFold};
use crate::pipeline::{Context, Pipeline};
use crate::time::EventTime;
use std::sync::Arc;
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// One output row: the bid's fields (`auction, bidder, price, channel, url, dateTime, extra`)
/// and `diff`. The bid is shared with the operator's state, not copied.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Row {
    /// The bid.
    #[serde(flatten)]
    pub bid: Arc<Bid>,
    /// +1 insert, −1 retraction.
    pub diff: i64,
}

/// The latest bid of a (bidder, auction) pair: by time, then by all its fields.
struct LastBid;

impl UpdatingFold for LastBid {
    type Record = Bid;
    type Key = (u64, u64);
    type Acc = Option<Arc<Bid>>;
    type Row = Arc<Bid>;

    fn key(&self, bid: &Bid) -> (u64, u64) {
        (bid.bidder, bid.auction)
    }

    fn add(&self, last: &mut Option<Arc<Bid>>, bid: Bid) {
        if self.changes(last, &bid) {
            *last = Some(Arc::new(bid));
        }
    }

    fn changes(&self, last: &Option<Arc<Bid>>, bid: &Bid) -> bool {
        last.as_deref()
            .is_none_or(|l| (bid.date_time, bid) > (l.date_time, l))
    }

    fn rows(&self, _pair: &(u64, u64), last: &Option<Arc<Bid>>, rows: &mut Vec<Arc<Bid>>) {
        rows.extend(last.iter().cloned());
    }
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let (last, _never_late) = events
        .flat_map(Event::into_bid)
        .updating_retiring("q18.last_per_pair", LastBid, ctx.state_ttl());
    ctx.emit(last.map(|(bid, diff)| Row { bid, diff }));
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q18",
    description: "find last bid: the latest bid of every (bidder, auction) pair (updating)",
    columns: &["auction", "bidder", "price", "channel", "url", "dateTime", "extra", "diff"],
    writes_files: false,
    params: &[],
    build,
};
