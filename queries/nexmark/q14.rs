//! # Nexmark q14 — calculation
//!
//! **Asks:** bids whose euro price (`price × 0.908`) is strictly between 1,000,000 and
//! 50,000,000, with a label by the bid's UTC hour (`dayTime` 8–18, `nightTime` ≤ 6 or ≥ 20,
//! else `otherTime`) and the number of `c` characters in `extra`:
//! `auction, bidder, price, bidTimeType, dateTime, extra, c_counts`.
//!
//! **Illustrates:** per-record computation with a user-defined function (Flink's `count_char`
//! UDF). No windows; stateless, so late bids are processed as well.

use crate::nexmark::model::Event;
use crate::pipeline::{Context, Pipeline};
use crate::time::{Civil, EventTime, Timestamp};
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

use super::q1::to_euros;

/// One output row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// Auction id.
    pub auction: u64,
    /// Bidder id.
    pub bidder: u64,
    /// Price in euro cents (three decimals).
    pub price: f64,
    /// `dayTime`, `nightTime` or `otherTime`.
    pub bid_time_type: String,
    /// Bid time.
    pub date_time: Timestamp,
    /// Padding.
    pub extra: String,
    /// Number of `c` characters in `extra`.
    #[serde(rename = "c_counts")]
    pub c_counts: u64,
}

/// The hour label of Flink's `CASE` expression.
pub fn bid_time_type(hour: u32) -> &'static str {
    match hour {
        8..=18 => "dayTime",
        0..=6 | 20..=23 => "nightTime",
        _ => "otherTime",
    }
}

/// Whether `price × 0.908` lies strictly between 1,000,000 and 50,000,000 — computed exactly in
/// thousandths of a cent, in a type wide enough that no price can wrap into the band (Flink
/// computes with exact decimals).
pub fn mid_priced(price: u64) -> bool {
    let thousandths = u128::from(price) * 908;
    thousandths > 1_000_000_000 && thousandths < 50_000_000_000
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    ctx.emit(events.flat_map(|e| {
        let b = e.into_bid()?;
        if !mid_priced(b.price) {
            return None;
        }
        let hour = Civil::from_millis(b.date_time.0).hour;
        Some(Row {
            auction: b.auction,
            bidder: b.bidder,
            price: to_euros(b.price),
            bid_time_type: bid_time_type(hour).to_string(),
            date_time: b.date_time,
            c_counts: b.extra.bytes().filter(|c| *c == b'c').count() as u64,
            extra: b.extra,
        })
    }));
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q14",
    description: "calculation: mid-priced bids with an hour label and a count of 'c' in extra",
    columns: &["auction", "bidder", "price", "bidTimeType", "dateTime", "extra", "c_counts"],
    writes_files: false,
    params: &[],
    build,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_band_is_exact_and_huge_prices_never_wrap_into_it() {
        // 1,101,322 × 0.908 = 1,000,000.376; 1,101,321 × 0.908 = 999,999.468.
        assert!(mid_priced(1_101_322));
        assert!(!mid_priced(1_101_321));
        // 55,066,079 × 0.908 = 49,999,999.732; 55,066,080 × 0.908 = 50,000,000.64.
        assert!(mid_priced(55_066_079));
        assert!(!mid_priced(55_066_080));
        // A price whose product with 908 wraps a u64 to 2,000,000,xxx thousandths — inside the
        // band had it been computed in 64 bits.
        let wraps = ((1u128 << 64) + 2_000_000_000).div_ceil(908) as u64;
        assert!((wraps.wrapping_mul(908)) > 1_000_000_000);
        assert!(!mid_priced(wraps));
        assert!(!mid_priced(u64::MAX));
    }
}
