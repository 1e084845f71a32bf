//! # Nexmark q10 — log to file system
//!
//! **Asks:** every bid, written to files partitioned by day and minute of its event time:
//! `OUTPUT_DIR/dt=yyyy-MM-dd/hm=HH:mm/part-<worker>.jsonl` with rows
//! `auction, bidder, price, dateTime, extra, dt, hm`. A partition's files are committed (renamed
//! from `.inprogress`, then `_SUCCESS` written) when the watermark passes the end of its minute.
//! The rows also go to the run's sink (use `--sink null` to keep only the files).
//!
//! **Illustrates:** a sink whose commits are driven by the frontier: a reader that waits for
//! `_SUCCESS` never sees a partial partition. `OUTPUT_DIR` is `--output-dir` (default
//! `sluice-out`).
//!
//! **Operators:** timely [`write_partitioned`](crate::operators::PartitionedFiles); stateless per
//! bid apart from the open files of uncommitted minutes. Late bids go to a new part file of
//! their (already committed) partition. With checkpoints the partitions are committed exactly
//! once with the checkpoint that covers them (rows appended to `part-<worker>.jsonl`, then
//! `_SUCCESS`), and a restore takes every partition back to the restored checkpoint.

use crate::nexmark::model::Event;
use crate::operators::PartitionedFiles;
use crate::pipeline::{Context, Pipeline};
use crate::time::{format_timestamp, EventTime, Timestamp};
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

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
    /// Padding.
    pub extra: String,
    /// `yyyy-MM-dd`.
    pub dt: String,
    /// `HH:mm`.
    pub hm: String,
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let rows = events.flat_map(|e| {
        let b = e.into_bid()?;
        let text = format_timestamp(b.date_time.0);
        Some(Row {
            auction: b.auction,
            bidder: b.bidder,
            price: b.price,
            date_time: b.date_time,
            extra: b.extra,
            dt: text[..10].to_string(),
            hm: text[11..16].to_string(),
        })
    });
    let committed = rows.clone().write_partitioned(
        "q10.partitions",
        ctx.output_dir().to_path_buf(),
        |r: &Row| {
            let minute_end = r.date_time.0 - r.date_time.0 % 60_000 + 60_000;
            (format!("dt={}/hm={}", r.dt, r.hm), minute_end)
        },
    );
    ctx.track(committed);
    ctx.emit(rows);
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q10",
    description: "log to file system: bids in files partitioned by day and minute, committed by the watermark",
    columns: &["auction", "bidder", "price", "dateTime", "extra", "dt", "hm"],
    writes_files: true,
    params: &[],
    build,
};
