//! # Nexmark q12 — processing-time windows
//!
//! **Asks:** how many bids each bidder makes per 10 s window of **processing time** (the wall
//! clock when Sluice handles the bid): `bidder, bid_count, starttime, endtime`.
//!
//! **Illustrates:** windows on the wall clock rather than event time: results depend on how
//! fast events arrive, not only on the events, so two runs split the same per-bidder totals
//! differently. Windows fire when the wall clock passes their end; open windows are flushed at
//! the end of input.
//!
//! **Operators:** timely [`processing_time_count`](crate::operators::ProcessingTimeCount),
//! exchanged by bidder.

use crate::nexmark::model::Event;
use crate::operators::ProcessingTimeCount;
use crate::pipeline::{Context, Pipeline};
use crate::time::{EventTime, Timestamp};
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// Window length, ms of wall-clock time.
pub const SIZE_MS: u64 = 10_000;

/// One output row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Row {
    /// Bidder id.
    pub bidder: u64,
    /// Bids in the window.
    pub bid_count: u64,
    /// Window start (wall clock).
    pub starttime: Timestamp,
    /// Window end (wall clock).
    pub endtime: Timestamp,
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let counts = events
        .flat_map(|e| e.into_bid().map(|b| b.bidder))
        .processing_time_count("q12.bids_per_bidder", SIZE_MS, |bidder| *bidder);
    ctx.emit(counts.map(|(window, bidder, bid_count)| Row {
        bidder,
        bid_count,
        starttime: Timestamp(window.start),
        endtime: Timestamp(window.end),
    }));
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q12",
    description: "processing-time windows: bids per bidder per 10 s of wall-clock time",
    columns: &["bidder", "bid_count", "starttime", "endtime"],
    writes_files: false,
    params: &[],
    build,
};
