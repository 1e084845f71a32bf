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
//! auction into [`SHARDS`](crate::route::SHARDS) (256) shards (a shard's auctions all live on one worker); per shard, each
//! auction's bid count in each open window holding its bids, and per open window the auctions at
//! the shard's maximum, updated as each stamp is applied (a bid counts in the five windows
//! holding it: one map lookup). When the watermark passes a window's end the shard emits its
//! maximum (a few records, not one result per auction: 300 K auctions per window at 500 K
//! events/s); the auctions the close leaves without an open window are dropped a few at a time
//! as the next stamps are applied (a pass over every auction at each close was the tail
//! latency). `q5.hottest_per_window`
//! ([`gather_windows`](crate::operators::GatherWindows)): the shards' maxima of a window on one
//! worker, which keeps those at the overall maximum. Results are final when the watermark passes
//! the window end: append-only. A bid whose windows have all closed is a dead letter (`late`);
//! one some of whose windows are still open counts in those only.

use crate::nexmark::model::{Bid, Event};
use crate::operators::keyed::{keyed_options, Emit, KeyedLogic};
use crate::operators::{GatherWindows, KeyedCore, Window, Windows};
use crate::pipeline::{Context, Pipeline};
use crate::route::shard;
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

/// The auctions at a shard's maximum of one open window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Top {
    max: u64,
    at_max: Vec<u64>,
}

/// A shard's state: each auction's bid count per window holding its bids (`(window end,
/// count)`, a few each), each open window's maximum, by end, and the auctions by the end of the
/// last window holding their latest bid. Counts of closed windows are left where they are until
/// the auction is next counted or swept (they count in nothing): closing a window costs its few
/// maxima, and dropping the auctions it leaves without an open window is spread over the next
/// stamps.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Shard {
    counts: FxHashMap<u64, Vec<(EventTime, u64)>>,
    tops: BTreeMap<EventTime, Top>,
    /// Auctions by the last window end they count in, when it was filed. An auction counted in a
    /// later window since is filed again under that end; the earlier entry is passed over.
    #[serde(default)]
    expiring: BTreeMap<EventTime, Vec<u64>>,
}

impl Shard {
    /// Drops up to `budget` auctions whose windows have all closed at `now`, earliest filed
    /// first.
    fn sweep(&mut self, now: EventTime, mut budget: usize) {
        while budget > 0 {
            let Some(mut entry) = self.expiring.first_entry().filter(|e| *e.key() <= now) else {
                return;
            };
            let filed = entry.get_mut();
            while budget > 0 {
                let Some(auction) = filed.pop() else {
                    break;
                };
                budget -= 1;
                let closed = self
                    .counts
                    .get(&auction)
                    .is_some_and(|counts| last_end(counts) <= now);
                if closed {
                    self.counts.remove(&auction);
                }
            }
            if filed.is_empty() {
                entry.remove();
            }
        }
    }
}

/// The last window end among an auction's counts (0 for none).
fn last_end(counts: &[(EventTime, u64)]) -> EventTime {
    counts.iter().map(|(end, _)| *end).max().unwrap_or(0)
}

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
    type State = Shard;
    /// One stamp's bids, counted per auction and pane as they arrive (the work left for
    /// when the frontier passes the stamp is one update per auction, not per bid).
    type Pending = FxHashMap<u64, Vec<(EventTime, u64)>>;
    /// `(window end, auction, count)`: a shard's maximum of a window.
    type Output = (EventTime, u64, u64);

    fn key(&self, bid: &Bid) -> u16 {
        shard(&bid.auction)
    }

    fn too_late(&self, bid: &Bid, stamp: EventTime) -> Option<String> {
        let t = bid.date_time.0;
        let last_end = self.ends(t).last().unwrap_or(0);
        (last_end <= stamp).then(|| {
            format!("event time {t}: every window holding it (the last ends at {last_end}) closed at or before the frontier {stamp}")
        })
    }

    fn stash(&self, pending: &mut Self::Pending, bid: Bid) {
        let pane = self.windows.pane_of(bid.date_time.0);
        let panes = pending.entry(bid.auction).or_default();
        match panes.iter_mut().find(|(p, _)| *p == pane) {
            Some((_, n)) => *n += 1,
            None => panes.push((pane, 1)),
        }
    }

    fn apply(
        &self,
        _shard: &u16,
        shard: &mut Shard,
        pending: Self::Pending,
        out: &mut Emit<'_, Self::Output>,
    ) {
        // Windows ending at or before the stamp have closed (due times come first).
        let now = out.now();
        let counted = pending.len();
        for (auction, panes) in pending {
            // One lookup per auction: its counts in the (few) windows open for it.
            let counts = shard.counts.entry(auction).or_default();
            let filed_at = last_end(counts);
            counts.retain(|(end, _)| *end > now);
            for (end, bids) in panes
                .into_iter()
                .flat_map(|(pane, bids)| self.ends(pane).map(move |end| (end, bids)))
                .filter(|(end, _)| *end > now)
            {
                let count = match counts.iter_mut().find(|(e, _)| *e == end) {
                    Some((_, n)) => {
                        *n += bids;
                        *n
                    }
                    None => {
                        counts.push((end, bids));
                        bids
                    }
                };
                let top = shard.tops.entry(end).or_default();
                if count > top.max {
                    top.max = count;
                    top.at_max.clear();
                    top.at_max.push(auction);
                } else if count == top.max {
                    top.at_max.push(auction);
                }
            }
            let last = last_end(counts);
            if last > filed_at {
                shard.expiring.entry(last).or_default().push(auction);
            } else if counts.is_empty() {
                // Only closed windows held its bids (a partly late bid of a new auction).
                shard.counts.remove(&auction);
            }
        }
        // Every auction filed was counted once at least: sweeping twice as many as were counted
        // keeps up with the filing, and a quarter of the backlog more drains what a close left
        // within a few stamps — a few at a time, never a pass over the shard.
        let backlog: usize = shard.expiring.range(..=now).map(|(_, a)| a.len()).sum();
        shard.sweep(now, 2 * counted + 16 + backlog / 4);
    }

    fn next_due(&self, shard: &Shard) -> Option<EventTime> {
        shard.tops.first_key_value().map(|(end, _)| *end)
    }

    fn on_due(&self, _shard: &u16, shard: &mut Shard, out: &mut Emit<'_, Self::Output>) {
        let now = out.now();
        while let Some(entry) = shard.tops.first_entry().filter(|e| *e.key() <= now) {
            let end = *entry.key();
            let top = entry.remove();
            for auction in top.at_max {
                out.give_at(end, (end, auction, top.max));
            }
        }
    }

    fn is_done(&self, shard: &Shard) -> bool {
        shard.tops.is_empty()
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
    params: &[],
    build,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn bid(auction: u64, t: EventTime) -> Bid {
        Bid {
            auction,
            bidder: 1,
            price: 100,
            channel: String::new(),
            url: String::new(),
            date_time: Timestamp(t),
            extra: String::new(),
        }
    }

    /// Applies one stamp's bids (due times first, as the keyed core does).
    fn step(logic: &HotAuctions, shard: &mut Shard, now: EventTime, bids: &[(u64, EventTime)]) {
        let mut out = Vec::new();
        if logic.next_due(shard).is_some_and(|due| due <= now) {
            logic.on_due(&0, shard, &mut Emit::new(now, &mut out));
        }
        let mut pending = FxHashMap::default();
        for &(auction, t) in bids {
            logic.stash(&mut pending, bid(auction, t));
        }
        logic.apply(&0, shard, pending, &mut Emit::new(now, &mut out));
    }

    #[test]
    fn auctions_without_an_open_window_are_swept() {
        let logic = HotAuctions {
            windows: Windows::sliding(SIZE_MS, SLIDE_MS),
        };
        let mut shard = Shard::default();
        // 1,000 auctions bid on once at 0..1 s: their windows end at 2, 4, …, 10 s.
        let early: Vec<_> = (0..1000).map(|a| (a, a)).collect();
        step(&logic, &mut shard, 1_000, &early);
        assert_eq!(shard.counts.len(), 1000);
        // Auction 5 is bid on again at 9 s (open until 18 s); one new auction per 100 ms stamp.
        step(&logic, &mut shard, 9_000, &[(5, 9_000)]);
        for (i, now) in (10_000..12_000).step_by(100).enumerate() {
            step(&logic, &mut shard, now, &[(10_000 + i as u64, now)]);
        }
        // After the 10 s close, the sweep (a few per stamp) has dropped every early auction but 5.
        let mut left: Vec<u64> = shard.counts.keys().copied().collect();
        left.sort();
        let mut expected = vec![5];
        expected.extend(10_000..10_020);
        assert_eq!(left, expected);
        // Its closed windows' counts went when it was counted again; they count in nothing.
        assert!(shard.counts[&5].iter().all(|(end, _)| *end > 9_000));
    }
}
