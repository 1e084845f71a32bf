//! # Nexmark q17 — auction statistics report
//!
//! **Asks:** per auction and day: the number of bids in total and per price band (as q15), and
//! the minimum, maximum, average and sum of the prices: `auction, day, total_bids, rank1_bids,
//! rank2_bids, rank3_bids, min_price, max_price, avg_price, sum_price`, plus
//! `window_start`/`window_end`. `avg_price` is exact (a JSON number, not Flink's integer `AVG`).
//!
//! **Illustrates:** a plain mergeable accumulator over many keys (every auction).
//!
//! **Operators:** timely [`window_aggregate`](crate::operators::Windowing) over 1-day
//! tumbling windows keyed by auction. Reported once per auction and day, final, when the
//! watermark passes the day's end (Flink's version is an updating aggregate).

use super::q15::{band, day_of, DAY_MS};
use crate::nexmark::model::{Bid, Event};
use crate::operators::{by, Aggregate, Windowing, Windows};
use crate::pipeline::{Context, Pipeline};
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// Bid counts (total, per band), min, max and sum of prices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PriceStats {
    bids: [u64; 4],
    min: u64,
    max: u64,
    /// Wide enough that untrusted prices cannot overflow it.
    sum: u128,
}

struct AuctionStats;

impl Aggregate for AuctionStats {
    type In = u64;
    type Acc = PriceStats;
    type Out = PriceStats;
    fn empty(&self) -> PriceStats {
        PriceStats {
            min: u64::MAX,
            ..PriceStats::default()
        }
    }
    fn add(&self, acc: &mut PriceStats, price: u64) {
        acc.bids[0] += 1;
        acc.bids[band(price)] += 1;
        acc.min = acc.min.min(price);
        acc.max = acc.max.max(price);
        acc.sum += u128::from(price);
    }
    fn merge(&self, acc: &mut PriceStats, other: &PriceStats) {
        for i in 0..4 {
            acc.bids[i] += other.bids[i];
        }
        acc.min = acc.min.min(other.min);
        acc.max = acc.max.max(other.max);
        acc.sum += other.sum;
    }
    fn finish(&self, acc: &PriceStats) -> PriceStats {
        *acc
    }
}

/// One output row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Auction id.
    pub auction: u64,
    /// `yyyy-MM-dd`.
    pub day: String,
    /// All bids.
    pub total_bids: u64,
    /// Bids below 10,000.
    pub rank1_bids: u64,
    /// Bids from 10,000 to below 1,000,000.
    pub rank2_bids: u64,
    /// Bids from 1,000,000.
    pub rank3_bids: u64,
    /// Lowest price.
    pub min_price: u64,
    /// Highest price.
    pub max_price: u64,
    /// Mean price.
    pub avg_price: f64,
    /// Sum of prices (wider than a price: untrusted prices cannot overflow it).
    pub sum_price: u128,
    /// Day start, epoch ms.
    pub window_start: EventTime,
    /// Day end, epoch ms.
    pub window_end: EventTime,
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let (days, late) = events.flat_map(Event::into_bid).window_aggregate(
        by("q17.stats_per_auction_day", |b: &Bid| b.auction, |b| b.date_time.0)
        .fold(|b| b.price, AuctionStats),
        Windows::tumbling(DAY_MS),
    );
    ctx.dead_letter(late);
    ctx.emit(days.map(|r| {
        let s = r.value;
        Row {
            auction: r.key,
            day: day_of(r.window.start),
            total_bids: s.bids[0],
            rank1_bids: s.bids[1],
            rank2_bids: s.bids[2],
            rank3_bids: s.bids[3],
            min_price: s.min,
            max_price: s.max,
            avg_price: s.sum as f64 / s.bids[0] as f64,
            sum_price: s.sum,
            window_start: r.window.start,
            window_end: r.window.end,
        }
    }));
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q17",
    description: "auction statistics report: bids per band and min/max/avg/sum price per auction and day",
    columns: &[
        "auction", "day", "total_bids", "rank1_bids", "rank2_bids", "rank3_bids", "min_price", "max_price",
        "avg_price", "sum_price", "window_start", "window_end",
    ],
    writes_files: false,
    params: &[],
    build,
};
