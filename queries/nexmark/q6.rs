//! # Nexmark q6 — average selling price by seller
//!
//! **Asks:** for each seller, the average winning price of their last 10 closed auctions:
//! `seller, avg_price`, with `diff` (each newly closed auction retracts the seller's previous
//! average). An auction is closed once the watermark passes its `expires`; its winning price is
//! q9's (highest in-time bid, ties to the earlier bid); auctions without a winning bid are not
//! sales. "Last" orders closed auctions by close time, then id. `avg_price` is exact (a JSON
//! number). Flink SQL cannot run this query (its OVER window cannot consume retractions).
//!
//! **Illustrates:** turning an updating result into final per-entity facts by holding each
//! auction's result until it closes (`delay_until` its `expires`: every change before then
//! consolidates into the final winner), then a count-based window (last 10 per key) as an
//! incremental reduction.
//!
//! **State:** differential — q9's join and `q6.winner_per_auction`, then `q6.last10_per_seller`.

use super::q9::winning_bids;
use crate::nexmark::model::Event;
use crate::pipeline::{Context, Pipeline};
use crate::collections::{DelayUntil, ToRows};
use crate::time::{EventTime, Timestamp};
use serde::{Deserialize, Serialize};
use timely::dataflow::StreamVec;

/// How many of a seller's latest closed auctions are averaged.
pub const LAST: usize = 10;

/// One output row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Seller id.
    pub seller: u64,
    /// Average winning price of the seller's last 10 closed auctions, cents.
    pub avg_price: f64,
    /// +1 insert, −1 retraction.
    pub diff: i64,
}

/// A closed auction of a seller: ((close time, auction id), winning price).
type Sale = ((Timestamp, u64), u64);

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let closed = winning_bids(events, "q6")
        .delay_until(|(a, _b)| a.expires.0)
        .map(|(a, b)| (a.seller, ((a.expires, a.id), b.price)));
    let averages = closed.reduce_named(
        "q6.last10_per_seller",
        |_seller, input: &[(&Sale, isize)], output: &mut Vec<(u64, isize)>| {
            // Sorted ascending by (close time, id): the last ten are the latest.
            let mut prices = Vec::with_capacity(LAST);
            for (value, copies) in input.iter().rev() {
                for _ in 0..*copies {
                    if prices.len() < LAST {
                        prices.push(value.1);
                    }
                }
            }
            let sum: u128 = prices.iter().map(|p| *p as u128).sum();
            output.push(((sum as f64 / prices.len() as f64).to_bits(), 1));
        },
    );
    ctx.emit(averages.to_rows(|(seller, bits), diff| Row {
        seller,
        avg_price: f64::from_bits(bits),
        diff,
    }));
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q6",
    description: "average selling price by seller: mean winning price of their last 10 closed auctions",
    columns: &["seller", "avg_price", "diff"],
    writes_files: false,
    build,
};
