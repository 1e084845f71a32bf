//! # Nexmark q16 — channel statistics report
//!
//! **Asks:** q15's statistics per channel and day, with the latest minute (`HH:mm`) seen:
//! `channel, day, minute, total_bids, …, rank3_auctions`, plus `window_start`/`window_end`.
//!
//! **Illustrates:** the same multi-aggregate accumulator keyed by a string, spread over workers
//! by channel.
//!
//! **Operators:** timely [`window_aggregate`](crate::operators::Windowing) over 1-day
//! tumbling windows keyed by channel. Reported once per channel and day, final, when the
//! watermark passes the day's end (Flink's version is an updating aggregate).

use super::q15::{day_of, BandAcc, BandCounts, BandStats, DAY_MS};
use crate::nexmark::model::{Bid, Event};
use crate::operators::{by, Aggregate, Windowing, Windows};
use crate::pipeline::{Context, Pipeline};
use crate::route::Prehashed;
use crate::time::{format_timestamp, EventTime};
use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// [`BandStats`] plus the latest bid time.
struct ChannelStats;

impl Aggregate for ChannelStats {
    type In = ((u64, u64, u64), EventTime);
    type Acc = (BandAcc, EventTime);
    type Out = (BandCounts, EventTime);
    const STASH_VALUES: bool = BandStats::STASH_VALUES;

    fn empty(&self) -> Self::Acc {
        (BandStats.empty(), 0)
    }
    fn add(&self, acc: &mut Self::Acc, (bid, t): Self::In) {
        BandStats.add(&mut acc.0, bid);
        acc.1 = acc.1.max(t);
    }
    fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc) {
        BandStats.merge(&mut acc.0, &other.0);
        acc.1 = acc.1.max(other.1);
    }
    fn finish(&self, acc: &Self::Acc) -> Self::Out {
        (BandStats.finish(&acc.0), acc.1)
    }
}

/// One output row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Row {
    /// Channel.
    pub channel: String,
    /// `yyyy-MM-dd`.
    pub day: String,
    /// `HH:mm` of the latest bid.
    pub minute: String,
    /// The counts.
    #[serde(flatten)]
    pub counts: BandCounts,
    /// Day start, epoch ms.
    pub window_start: EventTime,
    /// Day end, epoch ms.
    pub window_end: EventTime,
}

/// What q16 needs of a bid, taken before the exchange: the worker routing by channel moves
/// 64 bytes instead of the whole bid, and the bid's strings are freed where they were made. The
/// channel is hashed once, here.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ChannelBid {
    channel: Prehashed<CompactString>,
    bidder: u64,
    auction: u64,
    price: u64,
    time: EventTime,
}

impl ChannelBid {
    fn of(bid: Bid) -> Self {
        ChannelBid {
            channel: Prehashed::new(CompactString::from(bid.channel.as_str())),
            bidder: bid.bidder,
            auction: bid.auction,
            price: bid.price,
            time: bid.date_time.0,
        }
    }
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let bids = events.flat_map(|e| e.into_bid().map(ChannelBid::of));
    let (days, late) = bids.window_aggregate(
        // The channel as an inline string with its hash: a key per record without a heap
        // allocation or a rehash.
        by(
            "q16.stats_per_channel_day",
            |b: &ChannelBid| b.channel.clone(),
            |b| b.time,
        )
        .fold(|b| ((b.bidder, b.auction, b.price), b.time), ChannelStats),
        Windows::tumbling(DAY_MS),
    );
    ctx.dead_letter(late);
    ctx.emit(days.map(|r| Row {
        channel: r.key.into_key().into_string(),
        day: day_of(r.window.start),
        minute: format_timestamp(r.value.1)[11..16].to_string(),
        counts: r.value.0,
        window_start: r.window.start,
        window_end: r.window.end,
    }));
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q16",
    description: "channel statistics report: q15's statistics per channel and day",
    columns: &[
        "channel", "day", "minute", "total_bids", "rank1_bids", "rank2_bids", "rank3_bids", "total_bidders",
        "rank1_bidders", "rank2_bidders", "rank3_bidders", "total_auctions", "rank1_auctions", "rank2_auctions",
        "rank3_auctions", "window_start", "window_end",
    ],
    writes_files: false,
    params: &[],
    build,
};
