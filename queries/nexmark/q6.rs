//! # Nexmark q6 — average selling price by seller
//!
//! **Asks:** for each seller, the average winning price of their last 10 closed auctions:
//! `seller, avg_price`, with `diff` (each newly closed auction retracts the seller's previous
//! average). An auction is closed once the watermark passes its `expires`; its winning price is
//! q9's (highest in-time bid, ties to the earlier bid); auctions without a winning bid are not
//! sales. "Last" orders closed auctions by close time, then id. `avg_price` is exact (a JSON
//! number). Flink SQL cannot run this query (its OVER window cannot consume retractions).
//!
//! **Illustrates:** settled facts feeding an updating aggregate: auctions are closed in event
//! time (each sale leaves once, when its auction closes), then a count-based window — the last
//! 10 per seller — kept up to date with retractions.
//!
//! **State:** keyed event time — `q6.close_auctions` ([`close_auctions`]): per open auction, the
//! auction and its best bid, dropped when it closes; `q6.last10_per_seller` ([`Updating`]): per
//! seller, their latest 10 sales only. The sellers grow with the history (10 minutes at
//! 500 K events/s: 150 → 654 MiB); `--state-ttl` retires a seller without a sale that long (their
//! row is retracted), which keeps a long run's memory flat.

use crate::nexmark::auctions::{close_auctions, Listing, Price};
use crate::nexmark::model::Event;
use crate::operators::updating::{Updating, UpdatingFold};
use crate::pipeline::{Context, Pipeline};
use crate::time::{EventTime, Timestamp};
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
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

/// A closed auction of a seller: (seller, (close time, auction id), winning price).
type Sale = (u64, (Timestamp, u64), u64);

/// A seller's latest sales, ascending by (close time, id), and their average.
struct LastTen;

impl UpdatingFold for LastTen {
    type Record = Sale;
    type Key = u64;
    type Acc = Vec<((Timestamp, u64), u64)>;
    /// (seller, the average's f64 bits).
    type Row = (u64, u64);

    fn key(&self, sale: &Sale) -> u64 {
        sale.0
    }

    fn add(&self, latest: &mut Self::Acc, (_, closed, price): Sale) {
        let at = latest.partition_point(|(c, _)| *c <= closed);
        latest.insert(at, (closed, price));
        if latest.len() > LAST {
            // The earliest of eleven is never among the latest ten again: more sales only push
            // it further back.
            latest.remove(0);
        }
    }

    fn rows(&self, seller: &u64, latest: &Self::Acc, rows: &mut Vec<(u64, u64)>) {
        if latest.is_empty() {
            return;
        }
        let sum: u128 = latest.iter().map(|(_, p)| *p as u128).sum();
        rows.push((*seller, (sum as f64 / latest.len() as f64).to_bits()));
    }
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let (closed, rejected) = close_auctions(
        events,
        "q6.close_auctions",
        ctx.policy().granularity_ms,
        Listing::of,
        Price::of,
    );
    ctx.dead_letter(rejected);
    let sales = closed.map(|(a, b)| (a.seller, (Timestamp(a.expires), a.id), b.price));
    let (averages, _never_late) = sales.updating_retiring("q6.last10_per_seller", LastTen, ctx.state_ttl());
    ctx.emit(averages.map(|((seller, bits), diff)| Row {
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
    params: &[],
    build,
};
