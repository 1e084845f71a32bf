//! # Nexmark q15 — bidding statistics report
//!
//! **Asks:** per day (`yyyy-MM-dd`, UTC): the number of bids, of distinct bidders and of
//! distinct auctions, in total and per price band — rank 1 below 10,000 cents, rank 2 from
//! 10,000 to below 1,000,000, rank 3 from 1,000,000: `day, total_bids, rank1_bids, rank2_bids,
//! rank3_bids, total_bidders, rank1_bidders, …, total_auctions, …, rank3_auctions`, plus
//! `window_start`/`window_end`.
//!
//! **Illustrates:** many aggregates at once — counts and distinct counts with filters — in one
//! accumulator per window.
//!
//! **Operators:** timely [`window_aggregate`](crate::operators::Windowing) over 1-day
//! tumbling windows (one key per day). Flink runs this as an updating aggregate; Sluice reports
//! each day once, final, when the watermark passes the day's end (or the input ends).

use crate::nexmark::model::{Bid, Event};
use crate::operators::distinct::IdBits;
use crate::operators::{by, Aggregate, Windowing, Windows};
use crate::pipeline::{Context, Pipeline};
use crate::time::{format_timestamp, EventTime};
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// One day, ms.
pub const DAY_MS: u64 = 86_400_000;

/// The price band of a bid: 1, 2 or 3.
pub fn band(price: u64) -> usize {
    match price {
        0..10_000 => 1,
        10_000..1_000_000 => 2,
        _ => 3,
    }
}

/// `yyyy-MM-dd` of an instant.
pub fn day_of(t: EventTime) -> String {
    format_timestamp(t)[..10].to_string()
}

/// Bids, distinct bidders and distinct auctions: in total (index 0) and per band (1–3). Each
/// bidder and auction is kept once, with the bands it was seen in as bits (`1 << band`): one
/// set operation per value and record instead of one per band. Nexmark's ids cluster (recent
/// auctions and people), which [`IdBits`] keeps in dense pages.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BandAcc {
    bids: [u64; 4],
    bidders: IdBits,
    auctions: IdBits,
}

/// How many of `seen`'s values were seen in each band: `[all, band 1, band 2, band 3]`.
fn distinct(seen: &IdBits) -> [u64; 4] {
    [seen.len(), seen.with_bit(1), seen.with_bit(2), seen.with_bit(3)]
}

/// The counts of a [`BandAcc`].
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BandCounts {
    /// All bids.
    pub total_bids: u64,
    /// Bids below 10,000.
    pub rank1_bids: u64,
    /// Bids from 10,000 to below 1,000,000.
    pub rank2_bids: u64,
    /// Bids from 1,000,000.
    pub rank3_bids: u64,
    /// Distinct bidders.
    pub total_bidders: u64,
    /// Distinct bidders of rank-1 bids.
    pub rank1_bidders: u64,
    /// Distinct bidders of rank-2 bids.
    pub rank2_bidders: u64,
    /// Distinct bidders of rank-3 bids.
    pub rank3_bidders: u64,
    /// Distinct auctions.
    pub total_auctions: u64,
    /// Distinct auctions of rank-1 bids.
    pub rank1_auctions: u64,
    /// Distinct auctions of rank-2 bids.
    pub rank2_auctions: u64,
    /// Distinct auctions of rank-3 bids.
    pub rank3_auctions: u64,
}

/// Counts per price band of `(bidder, auction, price)` values.
pub struct BandStats;

impl Aggregate for BandStats {
    type In = (u64, u64, u64);
    type Acc = BandAcc;
    type Out = BandCounts;
    /// Distinct sets: adding a bid to the day's sets beats a set of its own per key and stamp.
    const STASH_VALUES: bool = true;

    fn empty(&self) -> BandAcc {
        BandAcc::default()
    }
    fn add(&self, acc: &mut BandAcc, (bidder, auction, price): (u64, u64, u64)) {
        let b = band(price);
        acc.bids[0] += 1;
        acc.bids[b] += 1;
        acc.bidders.insert(bidder, 1 << b);
        acc.auctions.insert(auction, 1 << b);
    }
    fn merge(&self, acc: &mut BandAcc, other: &BandAcc) {
        for i in 0..4 {
            acc.bids[i] += other.bids[i];
        }
        acc.bidders.merge(&other.bidders);
        acc.auctions.merge(&other.auctions);
    }
    fn finish(&self, acc: &BandAcc) -> BandCounts {
        let (bidders, auctions) = (distinct(&acc.bidders), distinct(&acc.auctions));
        BandCounts {
            total_bids: acc.bids[0],
            rank1_bids: acc.bids[1],
            rank2_bids: acc.bids[2],
            rank3_bids: acc.bids[3],
            total_bidders: bidders[0],
            rank1_bidders: bidders[1],
            rank2_bidders: bidders[2],
            rank3_bidders: bidders[3],
            total_auctions: auctions[0],
            rank1_auctions: auctions[1],
            rank2_auctions: auctions[2],
            rank3_auctions: auctions[3],
        }
    }
}

/// One output row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Row {
    /// `yyyy-MM-dd`.
    pub day: String,
    /// The counts.
    #[serde(flatten)]
    pub counts: BandCounts,
    /// Day start, epoch ms.
    pub window_start: EventTime,
    /// Day end, epoch ms.
    pub window_end: EventTime,
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let (days, late) = events.flat_map(Event::into_bid).window_aggregate(
        by("q15.stats_per_day", |_: &Bid| (), |b| b.date_time.0)
        .fold(|b| (b.bidder, b.auction, b.price), BandStats),
        Windows::tumbling(DAY_MS),
    );
    ctx.dead_letter(late);
    ctx.emit(days.map(|r| Row {
        day: day_of(r.window.start),
        counts: r.value,
        window_start: r.window.start,
        window_end: r.window.end,
    }));
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q15",
    description: "bidding statistics report: bids, bidders and auctions per day and price band",
    columns: &[
        "day", "total_bids", "rank1_bids", "rank2_bids", "rank3_bids", "total_bidders", "rank1_bidders",
        "rank2_bidders", "rank3_bidders", "total_auctions", "rank1_auctions", "rank2_auctions", "rank3_auctions",
        "window_start", "window_end",
    ],
    writes_files: false,
    params: &[],
    build,
};
