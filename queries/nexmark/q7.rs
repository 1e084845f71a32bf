//! # Nexmark q7 — highest bid
//!
//! **Asks:** the bids at the highest price of each 10 s tumbling window:
//! `auction, bidder, price, dateTime, extra, window_start, window_end`. As in Flink's SQL, a bid
//! qualifies for window `[s, e)` when its time is in `[s, e]` — the end is inclusive, so a bid at
//! exactly `e` at the window's maximum price is reported for it too (besides its own window).
//!
//! **Illustrates:** a windowed maximum that must keep the records that attain it, computed in
//! two stages without holding every bid: per bucket of auctions and window only the bids at the
//! running maximum survive (pane accumulators), then one worker per window compares the
//! survivors.
//!
//! **Operators:** timely [`window_aggregate`](crate::operators::Windowing) with a
//! max-with-ties accumulator, then [`gather_windows`](crate::operators::GatherWindows).
//! Append-only; final when the watermark passes the window end (plus the inclusive end instant).

use crate::nexmark::model::{Bid, Event};
use crate::operators::{by, Aggregate, GatherWindows, Windowing, WindowResult, Windows};
use crate::pipeline::{Context, Pipeline};
use crate::time::{EventTime, Timestamp};
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::Concat;
use timely::dataflow::StreamVec;

/// Window length, ms.
pub const SIZE_MS: u64 = 10_000;

/// Bids are pre-aggregated in this many buckets (by auction id) before one worker per window
/// compares the buckets' maxima: enough to spread the work, few enough that each bucket keeps
/// only a handful of bids.
const BUCKETS: u64 = 64;

/// One output row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// Auction id.
    pub auction: u64,
    /// Bidder id.
    pub bidder: u64,
    /// The window's highest price, cents.
    pub price: u64,
    /// Bid time.
    pub date_time: Timestamp,
    /// Padding.
    pub extra: String,
    /// Window start, epoch ms.
    #[serde(rename = "window_start")]
    pub window_start: EventTime,
    /// Window end, epoch ms.
    #[serde(rename = "window_end")]
    pub window_end: EventTime,
}

/// The highest price and every bid at it.
struct MaxBids;

impl Aggregate for MaxBids {
    type In = Bid;
    type Acc = (u64, Vec<Bid>);
    type Out = (u64, Vec<Bid>);
    fn empty(&self) -> Self::Acc {
        (0, Vec::new())
    }
    fn add(&self, acc: &mut Self::Acc, bid: Bid) {
        if bid.price > acc.0 || acc.1.is_empty() {
            *acc = (bid.price, vec![bid]);
        } else if bid.price == acc.0 {
            acc.1.push(bid);
        }
    }
    fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc) {
        for bid in &other.1 {
            self.add(acc, bid.clone());
        }
    }
    fn finish(&self, acc: &Self::Acc) -> Self::Out {
        acc.clone()
    }
}

/// What the per-window stage sees: a window's per-auction maxima, or a bid at a window's
/// inclusive end.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Part {
    Maxima(WindowResult<u64, (u64, Vec<Bid>)>),
    AtEnd(Bid),
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let bids = events.flat_map(Event::into_bid);
    let at_end = bids
        .clone()
        .flat_map(|b| (b.date_time.0 % SIZE_MS == 0 && b.date_time.0 >= SIZE_MS).then_some(Part::AtEnd(b)));
    let (maxima, late) = bids.window_aggregate(
        by("q7.max_per_bucket", |b: &Bid| b.auction % BUCKETS, |b| b.date_time.0)
        .fold(|b| b.clone(), MaxBids),
        Windows::tumbling(SIZE_MS),
    );
    ctx.dead_letter(late);
    let highest = maxima.map(Part::Maxima).concat(at_end).gather_windows(
        "q7.highest_per_window",
        |p: &Part| match p {
            Part::Maxima(r) => r.window.end,
            Part::AtEnd(b) => b.date_time.0,
        },
        |end, parts| {
            let max = parts
                .iter()
                .filter_map(|p| match p {
                    Part::Maxima(r) => Some(r.value.0),
                    Part::AtEnd(_) => None,
                })
                .max();
            let start = end - SIZE_MS;
            parts
                .into_iter()
                .flat_map(|p| match p {
                    Part::Maxima(r) => r.value.1,
                    Part::AtEnd(b) => vec![b],
                })
                .filter(move |b| Some(b.price) == max)
                .map(move |b| Row {
                    auction: b.auction,
                    bidder: b.bidder,
                    price: b.price,
                    date_time: b.date_time,
                    extra: b.extra,
                    window_start: start,
                    window_end: end,
                })
        },
    );
    ctx.emit(highest);
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q7",
    description: "highest bid: the bids at each 10 s tumbling window's maximum price",
    columns: &["auction", "bidder", "price", "dateTime", "extra", "window_start", "window_end"],
    writes_files: false,
    params: &[],
    build,
};
