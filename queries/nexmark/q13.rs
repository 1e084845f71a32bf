//! # Nexmark q13 — bounded side-input join
//!
//! **Asks:** every bid joined with a static side table on `auction % 10000`:
//! `auction, bidder, price, dateTime, value`.
//!
//! **Illustrates:** enriching a stream from a small bounded table loaded once per worker (no
//! shuffle, no state that grows). The table is `data/side_input.csv` (`key,value` lines; Flink's
//! suite generates `i,i` for `i` in `0..10000`), compiled into the binary. Bids whose key is not
//! in the table produce no row (an inner join). No windows; stateless per bid, so late bids are
//! joined as well.

use crate::nexmark::model::Event;
use crate::pipeline::{Context, Pipeline};
use crate::time::{EventTime, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::rc::Rc;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// The side table, as shipped in `data/`.
pub const SIDE_INPUT: &str = include_str!("../../data/side_input.csv");

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
    /// Bid time.
    pub date_time: Timestamp,
    /// The side table's value for `auction % 10000`.
    pub value: String,
}

/// Parses `key,value` lines (blank lines and lines starting with `#` are skipped).
pub fn parse_side_input(text: &str) -> HashMap<u64, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once(',')?;
            Some((k.trim().parse().ok()?, v.trim().to_string()))
        })
        .collect()
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let table = Rc::new(parse_side_input(SIDE_INPUT));
    ctx.emit(events.flat_map(move |e| {
        let b = e.into_bid()?;
        let value = table.get(&(b.auction % 10_000))?.clone();
        Some(Row {
            auction: b.auction,
            bidder: b.bidder,
            price: b.price,
            date_time: b.date_time,
            value,
        })
    }));
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q13",
    description: "bounded side-input join: bids joined with data/side_input.csv on auction % 10000",
    columns: &["auction", "bidder", "price", "dateTime", "value"],
    writes_files: false,
    params: &[],
    build,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_table_maps_every_key_to_itself() {
        let t = parse_side_input(SIDE_INPUT);
        assert_eq!(t.len(), 10_000);
        assert_eq!(t[&0], "0");
        assert_eq!(t[&9999], "9999");
    }
}
