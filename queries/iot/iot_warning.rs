//! # iot_warning — early warning of failure from a degradation trend
//!
//! **Asks:** which devices are heading for failure, and when will they fail? One row when a
//! device's trend on the watched metric reaches its failure level within the horizon
//! (`status: warning`, the fitted level, the healthy baseline, the failure level and the
//! `predicted_failure` time), one when the level is back to normal (`cleared`).
//!
//! **Illustrates:** prediction in keyed event-time state — a per-device baseline and a
//! least-squares trend over the latest readings, extrapolated — with hysteresis; exact at any
//! worker count ([`warning`](crate::iot::warning)).
//!
//! **Windows and state:** no windows; per device the baseline (count, mean, squared deviations)
//! and the latest 64 readings of the watched metric. `--param warn_metric=vibration`,
//! `failure_ratio=4`, `warn_horizon=1h`.

use crate::iot::model::Reading;
use crate::iot::warning::{detect, FAILURE_RATIO, WARNING_COLUMNS, WARN_HORIZON, WARN_METRIC};
use crate::pipeline::{Context, Pipeline};
use crate::time::EventTime;
use timely::dataflow::StreamVec;

fn build<'s>(readings: StreamVec<'s, EventTime, Reading>, ctx: &mut Context<'s>) {
    let (warnings, late) = detect(readings, ctx, "iot_warning.devices");
    ctx.dead_letter(late);
    ctx.emit(warnings);
}

/// Registry entry.
pub const QUERY: Pipeline<Reading> = Pipeline {
    name: "iot_warning",
    description: "early warning: a device's degradation trend extrapolated to its failure level",
    columns: WARNING_COLUMNS,
    writes_files: false,
    params: &[WARN_METRIC, FAILURE_RATIO, WARN_HORIZON],
    build,
};
