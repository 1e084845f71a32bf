//! # Nexmark q5 — hot items
//!
//! **Asks:** in every 10 s window sliding by 2 s, which auctions received the most bids? All
//! auctions tied at the maximum are reported: `auction, num, window_start, window_end`.
//!
//! **Illustrates:** a windowed top across keys kept incrementally, so that closing a window
//! costs a few records, not one result per key: a user-written [`KeyedLogic`] on the keyed core
//! (ordered, checkpointed and re-routable like every keyed operator), then a second stage that
//! sees a whole window at once.
//!
//! **Operators and state:** `q5.hottest_per_shard` ([`HotAuctions`]): bids are exchanged by
//! auction into 256 shards (a shard's auctions all live on one worker); per shard and open
//! window, each auction's bid count and the auctions at the shard's maximum, updated as each
//! stamp is applied (a bid counts in the five windows holding it). When the watermark passes a
//! window's end the shard emits its maximum and drops the window's counts: no pass over the
//! window's auctions, so results do not wait behind one result per auction (300 K auctions per
//! window at 500 K events/s). `q5.hottest_per_window`
//! ([`gather_windows`](crate::operators::GatherWindows)): the shards' maxima of a window on one
//! worker, which keeps those at the overall maximum. Results are final when the watermark passes
//! the window end: append-only. A bid whose windows have all closed is a dead letter (`late`);
//! one some of whose windows are still open counts in those only.

use crate::nexmark::model::{Bid, Event};
use crate::operators::keyed::{keyed_options, route_hash, Emit, KeyedLogic};
use crate::operators::{GatherWindows, KeyedCore, Window, Windows};
use crate::pipeline::{Context, Pipeline};
use crate::time::EventTime;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// Window length, ms.
pub const SIZE_MS: u64 = 10_000;
/// Window slide, ms.
pub const SLIDE_MS: u64 = 2_000;
/// Shards bids are counted in: enough to spread over many workers, few enough that closing a
/// window costs a few hundred records at most.
pub const SHARDS: u64 = 256;

/// One output row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Row {
    /// Auction id.
    pub auction: u64,
    /// Its bid count in the window.
    pub num: u64,
    /// Window start, epoch ms.
    pub window_start: EventTime,
    /// Window end, epoch ms.
    pub window_end: EventTime,
}

/// One open window of a shard: each auction's bids so far, and those at the maximum.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    counts: FxHashMap<u64, u64>,
    max: u64,
    at_max: Vec<u64>,
}

impl Tally {
    fn add(&mut self, auction: u64) {
        let count = self.counts.entry(auction).or_insert(0);
        *count += 1;
        if *count > self.max {
            self.max = *count;
            self.at_max.clear();
            self.at_max.push(auction);
        } else if *count == self.max {
            self.at_max.push(auction);
        }
    }
}

/// A shard's open windows, by end.
pub type ShardWindows = BTreeMap<EventTime, Tally>;

/// Bid counts per auction and sliding window, kept per shard with the shard's maximum.
pub struct HotAuctions {
    windows: Windows,
}

impl HotAuctions {
    /// The ends of the windows holding event time `t`, earliest first.
    fn ends(&self, t: EventTime) -> impl Iterator<Item = EventTime> + '_ {
        self.windows.windows_of(t).map(|w| w.end)
    }
}

impl KeyedLogic for HotAuctions {
    type Record = Bid;
    type Key = u16;
    type State = ShardWindows;
    /// `(bid time, auction)` of one stamp's bids.
    type Pending = Vec<(EventTime, u64)>;
    /// `(window end, auction, count)`: a shard's maximum of a window.
    type Output = (EventTime, u64, u64);

    fn key(&self, bid: &Bid) -> u16 {
        (route_hash(&bid.auction) % SHARDS) as u16
    }

    fn too_late(&self, bid: &Bid, stamp: EventTime) -> Option<String> {
        let t = bid.date_time.0;
        let last_end = self.ends(t).last().unwrap_or(0);
        (last_end <= stamp).then(|| {
            format!("event time {t}: every window holding it (the last ends at {last_end}) closed at or before the frontier {stamp}")
        })
    }

    fn stash(&self, pending: &mut Self::Pending, bid: Bid) {
        pending.push((bid.date_time.0, bid.auction));
    }

    fn apply(
        &self,
        _shard: &u16,
        open: &mut ShardWindows,
        pending: Self::Pending,
        out: &mut Emit<'_, Self::Output>,
    ) {
        // Windows ending at or before the stamp have closed (due times come first).
        let now = out.now();
        for (t, auction) in pending {
            for end in self.ends(t).filter(|end| *end > now) {
                open.entry(end).or_default().add(auction);
            }
        }
    }

    fn next_due(&self, open: &ShardWindows) -> Option<EventTime> {
        open.first_key_value().map(|(end, _)| *end)
    }

    fn on_due(&self, _shard: &u16, open: &mut ShardWindows, out: &mut Emit<'_, Self::Output>) {
        while let Some(entry) = open.first_entry().filter(|e| *e.key() <= out.now()) {
            let end = *entry.key();
            let tally = entry.remove();
            for auction in tally.at_max {
                out.give_at(end, (end, auction, tally.max));
            }
        }
    }

    fn is_done(&self, open: &ShardWindows) -> bool {
        open.is_empty()
    }
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let name = "q5.hottest_per_shard";
    let logic = HotAuctions {
        windows: Windows::sliding(SIZE_MS, SLIDE_MS),
    };
    let (maxima, late) = events
        .flat_map(Event::into_bid)
        .keyed(name, logic, keyed_options(name));
    ctx.dead_letter(late);
    let hot = maxima.gather_windows(
        "q5.hottest_per_window",
        |(end, _, _): &(EventTime, u64, u64)| *end,
        |end, maxima| {
            let max = maxima.iter().map(|(_, _, n)| *n).max().unwrap_or(0);
            let window = Window {
                start: end - SIZE_MS,
                end,
            };
            maxima
                .into_iter()
                .filter(move |(_, _, n)| *n >= max)
                .map(move |(_, auction, num)| Row {
                    auction,
                    num,
                    window_start: window.start,
                    window_end: window.end,
                })
        },
    );
    ctx.emit(hot);
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q5",
    description: "hot items: auctions with the most bids per 10 s window sliding by 2 s (ties all reported)",
    columns: &["auction", "num", "window_start", "window_end"],
    writes_files: false,
    build,
};
