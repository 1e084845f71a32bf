//! # iot_fleet — fleet statistics per site, model and metric
//!
//! **Asks:** per site, device model and metric, in each window: how many readings, their mean,
//! standard deviation, minimum and maximum? `site, model, metric, window_start, window_end,
//! readings, mean, std_dev, min, max` — what a fleet dashboard plots.
//!
//! **Illustrates:** the keyed window operator on a composite key, tumbling or sliding from the
//! same pipeline: `--param window=1m` (default) and `--param slide=10s` for windows of a
//! minute every ten seconds; a sliding window's panes are folded once and merged.
//!
//! **Windows and state:** event-time windows closed by the frontier; per group one accumulator
//! (count, sum, sum of squares, min, max) per open pane. A reading too late for its window is a
//! dead letter (`late`).

use crate::iot::fleet::{group, row, Values, FLEET_COLUMNS};
use crate::iot::model::Reading;
use crate::iot::params;
use crate::operators::{by, Windowing, Windows};
use crate::pipeline::{Context, Pipeline};
use crate::time::EventTime;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

fn build<'s>(readings: StreamVec<'s, EventTime, Reading>, ctx: &mut Context<'s>) {
    let (size, slide) = params::fleet_windows(ctx);
    let per_group = by("iot_fleet.groups", group, |r: &Reading| r.time);
    let (windows, late) = readings.window_aggregate(
        per_group.fold(|r| r.value, Values),
        Windows::sliding(size, slide),
    );
    ctx.dead_letter(late);
    ctx.emit(windows.map(row));
}

/// Registry entry.
pub const QUERY: Pipeline<Reading> = Pipeline {
    name: "iot_fleet",
    description: "per site, model and metric and window: readings, mean, std dev, min, max",
    columns: FLEET_COLUMNS,
    writes_files: false,
    params: &[params::WINDOW, params::SLIDE],
    build,
};
