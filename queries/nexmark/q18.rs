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
//! the history; `--state-ttl` retires a pair idle that long (its row is retracted). A bid is
//! kept as a [`SharedBid`]: its three strings in one allocation, shared by the state and the
//! rows.

use crate::nexmark::model::{Bid, Event};
use crate::operators::updating::{Updating, UpdatingFold};
use crate::pipeline::{Context, Pipeline};
use crate::time::{EventTime, Timestamp};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::RefCell;
use std::cmp::Ordering;
use std::sync::Arc;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// One output row: the bid's fields (`auction, bidder, price, channel, url, dateTime, extra`)
/// and `diff`. The bid is shared with the operator's state, not copied.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Row {
    /// The bid.
    #[serde(flatten)]
    pub bid: SharedBid,
    /// +1 insert, −1 retraction.
    pub diff: i64,
}

/// A bid with its channel, URL and extra in one shared allocation. Made from the [`Bid`]
/// before the exchange, on the worker that read it: the three strings are freed where they
/// were made, one allocation crosses to the worker that keeps the pair (instead of three, each
/// then freed across threads), and the state holds one allocation per pair instead of four.
/// Ordered, serialized and read back exactly as the [`Bid`] it was made from.
#[derive(Clone, Debug)]
pub struct SharedBid {
    /// Auction id.
    pub auction: u64,
    /// Bidder's person id.
    pub bidder: u64,
    /// Price, cents.
    pub price: u64,
    /// Event time.
    pub date_time: Timestamp,
    /// Channel, URL and extra, one after the other.
    text: Arc<str>,
    channel_end: usize,
    url_end: usize,
}

thread_local! {
    /// Where a [`SharedBid`]'s text is put together before its one allocation.
    static TEXT: RefCell<String> = const { RefCell::new(String::new()) };
}

impl SharedBid {
    /// The bid's fields, its strings copied into one allocation.
    pub fn of(bid: &Bid) -> Self {
        let text = TEXT.with_borrow_mut(|text| {
            text.clear();
            for part in [&bid.channel, &bid.url, &bid.extra] {
                text.push_str(part);
            }
            Arc::from(text.as_str())
        });
        SharedBid {
            auction: bid.auction,
            bidder: bid.bidder,
            price: bid.price,
            date_time: bid.date_time,
            text,
            channel_end: bid.channel.len(),
            url_end: bid.channel.len() + bid.url.len(),
        }
    }

    /// The channel.
    pub fn channel(&self) -> &str {
        &self.text[..self.channel_end]
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.text[self.channel_end..self.url_end]
    }

    /// The extra.
    pub fn extra(&self) -> &str {
        &self.text[self.url_end..]
    }

    /// The bid again.
    pub fn to_bid(&self) -> Bid {
        Bid {
            auction: self.auction,
            bidder: self.bidder,
            price: self.price,
            channel: self.channel().to_string(),
            url: self.url().to_string(),
            date_time: self.date_time,
            extra: self.extra().to_string(),
        }
    }

    /// [`Bid`]'s order: its fields in declaration order.
    fn fields(&self) -> (u64, u64, u64, &str, &str, Timestamp, &str) {
        let (channel, url, extra) = (self.channel(), self.url(), self.extra());
        let (auction, bidder, price, date_time) = (self.auction, self.bidder, self.price, self.date_time);
        (auction, bidder, price, channel, url, date_time, extra)
    }
}

impl PartialEq for SharedBid {
    fn eq(&self, other: &Self) -> bool {
        self.fields() == other.fields()
    }
}

impl Eq for SharedBid {}

impl PartialOrd for SharedBid {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedBid {
    fn cmp(&self, other: &Self) -> Ordering {
        self.fields().cmp(&other.fields())
    }
}

/// The same fields, names and order as [`Bid`]'s.
impl Serialize for SharedBid {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut bid = serializer.serialize_struct("Bid", 7)?;
        bid.serialize_field("auction", &self.auction)?;
        bid.serialize_field("bidder", &self.bidder)?;
        bid.serialize_field("price", &self.price)?;
        bid.serialize_field("channel", self.channel())?;
        bid.serialize_field("url", self.url())?;
        bid.serialize_field("dateTime", &self.date_time)?;
        bid.serialize_field("extra", self.extra())?;
        bid.end()
    }
}

impl<'de> Deserialize<'de> for SharedBid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Bid::deserialize(deserializer).map(|bid| SharedBid::of(&bid))
    }
}

/// The latest bid of a (bidder, auction) pair: by time, then by all its fields.
struct LastBid;

impl UpdatingFold for LastBid {
    type Record = SharedBid;
    type Key = (u64, u64);
    type Acc = Option<SharedBid>;
    type Row = SharedBid;

    fn key(&self, bid: &SharedBid) -> (u64, u64) {
        (bid.bidder, bid.auction)
    }

    fn add(&self, last: &mut Option<SharedBid>, bid: SharedBid) {
        if self.changes(last, &bid) {
            *last = Some(bid);
        }
    }

    fn changes(&self, last: &Option<SharedBid>, bid: &SharedBid) -> bool {
        last.as_ref()
            .is_none_or(|l| (bid.date_time, bid) > (l.date_time, l))
    }

    fn rows(&self, _pair: &(u64, u64), last: &Option<SharedBid>, rows: &mut Vec<SharedBid>) {
        rows.extend(last.iter().cloned());
    }
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let (last, _never_late) = events
        .flat_map(|e| e.into_bid().map(|bid| SharedBid::of(&bid)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nexmark::generator::{Generator, GeneratorConfig};

    fn bids(n: u64) -> Vec<Bid> {
        let mut generator = Generator::new(GeneratorConfig::default());
        (0..n).filter_map(|i| generator.event(i).into_bid()).collect()
    }

    #[test]
    fn a_shared_bid_is_the_bid_it_was_made_from() {
        let mut bids = bids(2_000);
        // Strings that share a prefix with the next field, and empty ones.
        bids[0].channel = String::new();
        bids[1].url = bids[1].channel.clone() + "x";
        bids[2].extra = String::new();
        for bid in &bids {
            let shared = SharedBid::of(bid);
            assert_eq!(&shared.to_bid(), bid);
            assert_eq!(
                serde_json::to_string(&shared).unwrap(),
                serde_json::to_string(bid).unwrap()
            );
            // The exchange between processes and checkpoints use the binary encoding.
            let encoded = bincode::serialize(&shared).unwrap();
            assert_eq!(encoded, bincode::serialize(bid).unwrap());
            let back: SharedBid = bincode::deserialize(&encoded).unwrap();
            assert_eq!(&back.to_bid(), bid);
        }
        for pair in bids.windows(2) {
            let (a, b) = (SharedBid::of(&pair[0]), SharedBid::of(&pair[1]));
            assert_eq!(a.cmp(&b), pair[0].cmp(&pair[1]));
            assert_eq!(a == b, pair[0] == pair[1]);
        }
    }
}
