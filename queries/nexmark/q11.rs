//! # Nexmark q11 — user sessions
//!
//! **Asks:** how many bids each bidder makes per session, a session ending after 10 s without a
//! bid: `bidder, bid_count, starttime, endtime` (first bid, last bid + 10 s), plus
//! `window_start`/`window_end` in epoch ms.
//!
//! **Illustrates:** session windows — merging per-key intervals that touch, fired when the
//! watermark passes a session's end; one-bid sessions included.
//!
//! **Operators:** timely [`session_aggregate`](crate::operators::Windowing) with a count;
//! state is the open sessions only. Append-only.

use crate::nexmark::model::{Bid, Event};
use crate::operators::{by, Count, Windowing};
use crate::pipeline::{Context, Pipeline};
use crate::time::{EventTime, Timestamp};
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// Inactivity gap that ends a session, ms.
pub const GAP_MS: u64 = 10_000;

/// One output row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Row {
    /// Bidder id.
    pub bidder: u64,
    /// Bids in the session.
    pub bid_count: u64,
    /// Session start (the first bid).
    pub starttime: Timestamp,
    /// Session end (the last bid + the gap).
    pub endtime: Timestamp,
    /// Session start, epoch ms.
    pub window_start: EventTime,
    /// Session end, epoch ms.
    pub window_end: EventTime,
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let (sessions, late) = events.flat_map(Event::into_bid).session_aggregate(
        by("q11.sessions_per_bidder", |b: &Bid| b.bidder, |b| b.date_time.0)
        .fold(|_| (), Count),
        GAP_MS,
    );
    ctx.dead_letter(late);
    ctx.emit(sessions.map(|r| Row {
        bidder: r.key,
        bid_count: r.value,
        starttime: Timestamp(r.window.start),
        endtime: Timestamp(r.window.end),
        window_start: r.window.start,
        window_end: r.window.end,
    }));
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q11",
    description: "user sessions: bids per bidder per session (10 s inactivity gap)",
    columns: &["bidder", "bid_count", "starttime", "endtime", "window_start", "window_end"],
    writes_files: false,
    params: &[],
    build,
};
