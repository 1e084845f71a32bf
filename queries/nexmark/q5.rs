//! # Nexmark q5 — hot items
//!
//! **Asks:** in every 10 s window sliding by 2 s, which auctions received the most bids? All
//! auctions tied at the maximum are reported: `auction, num, window_start, window_end`.
//!
//! **Illustrates:** sliding windows on shared 2 s panes (a bid is counted once, in its pane, not
//! copied into five windows), then a second stage that sees a whole window at once.
//!
//! **Operators:** timely, not differential: the per-auction counts are a
//! [`window_aggregate`](crate::operators::Windowing) (exchanged by auction), and the
//! per-window maximum a [`gather_windows_combined`](crate::operators::GatherWindows) (one
//! worker per window, each worker sending it only the auctions at its own maximum). Results are
//! final when the watermark passes the window end: append-only.

use crate::nexmark::model::{Bid, Event};
use crate::operators::{by, Count, GatherWindows, Windowing, WindowResult, Windows};
use crate::pipeline::{Context, Pipeline};
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
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

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let bids = events.flat_map(Event::into_bid);
    let (counts, late) = bids.window_aggregate(
        by("q5.bids_per_auction", |b: &Bid| b.auction, |b| b.date_time.0)
        .fold(|_| (), Count),
        Windows::sliding(SIZE_MS, SLIDE_MS),
    );
    ctx.dead_letter(late);
    let hot = counts.gather_windows_combined(
        "q5.hottest_per_window",
        |r: &WindowResult<u64, u64>| r.window.end,
        // A worker's auctions below its own maximum are below the overall one.
        |_end, results| {
            let max = results.iter().map(|r| r.value).max().unwrap_or(0);
            results.retain(|r| r.value >= max);
        },
        |_end, results| {
            let max = results.iter().map(|r| r.value).max().unwrap_or(0);
            results
                .into_iter()
                .filter(move |r| r.value >= max)
                .map(|r| Row {
                    auction: r.key,
                    num: r.value,
                    window_start: r.window.start,
                    window_end: r.window.end,
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
