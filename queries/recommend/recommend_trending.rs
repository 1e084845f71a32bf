//! # recommend_trending — what is hot right now
//!
//! **Asks:** in every window of `window` sliding by `slide` (default 1 h every 5 min), which
//! `top` items had the most actions? Rows `window_start, window_end, rank, item, actions`
//! once the watermark passes the window's end (ties: the smaller item id first).
//!
//! **Illustrates:** sliding windows with shared panes (each action counted once per pane, not
//! once per window) and a per-window top across keys gathered on one worker.
//!
//! **Windows and state:** sliding windows; per item the counts of the panes still in open
//! windows (`recommend_trending.counts`), then each window's counts gathered
//! (`recommend_trending.top`). `--param window=1h,slide=5m,top=10`.

use crate::operators::{by, Count, GatherWindows, Windowing, Windows};
use crate::pipeline::{Context, Pipeline};
use crate::recommend::model::Behaviour;
use crate::recommend::params::{trending, TOP, TREND_SLIDE, TREND_WINDOW};
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use timely::dataflow::StreamVec;

/// One trending item of one window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// Window start, epoch ms.
    pub window_start: EventTime,
    /// Window end, epoch ms.
    pub window_end: EventTime,
    /// 1 for the most active item.
    pub rank: u32,
    /// The item.
    pub item: u64,
    /// Its actions in the window.
    pub actions: u64,
}

fn build<'s>(behaviours: StreamVec<'s, EventTime, Behaviour>, ctx: &mut Context<'s>) {
    let (size, slide, top) = trending(ctx);
    let per_item = by(
        "recommend_trending.counts",
        |b: &Behaviour| b.item,
        |b: &Behaviour| b.time,
    );
    let (counts, late) =
        behaviours.window_aggregate(per_item.fold(|_| (), Count), Windows::sliding(size, slide));
    ctx.dead_letter(late);
    let rows = counts.gather_windows(
        "recommend_trending.top",
        |r| r.window.end,
        move |end, results| {
            let mut best: Vec<(u64, u64)> = results
                .into_iter()
                .filter(|r| r.diff > 0)
                .map(|r| (r.value, r.key))
                .collect();
            best.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            best.truncate(top);
            best.into_iter()
                .enumerate()
                .map(move |(i, (actions, item))| Row {
                    window_start: end.saturating_sub(size),
                    window_end: end,
                    rank: i as u32 + 1,
                    item,
                    actions,
                })
        },
    );
    ctx.emit(rows);
}

/// Registry entry.
pub const QUERY: Pipeline<Behaviour> = Pipeline {
    name: "recommend_trending",
    description: "the most active items per sliding window (default 1 h every 5 min)",
    columns: &["window_start", "window_end", "rank", "item", "actions"],
    writes_files: false,
    params: &[TREND_WINDOW, TREND_SLIDE, TOP],
    build,
};
