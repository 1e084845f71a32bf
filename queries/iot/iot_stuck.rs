//! # iot_stuck — sensors that freeze
//!
//! **Asks:** which sensors report the very same value over and over? One row when a device's
//! metric repeats a value `stuck_after` readings in a row (`status: stuck`, the value and when
//! it froze), one when it moves again (`recovered`, how many readings repeated it).
//!
//! **Illustrates:** a small per-key state machine in event time, one alert per episode, exact
//! at any worker count ([`stuck`](crate::iot::stuck)).
//!
//! **Windows and state:** no windows; per device and metric the latest value, when it first
//! came and how often since. `--param stuck_after=30`.

use crate::iot::model::Reading;
use crate::iot::stuck::{detect, STUCK_AFTER, STUCK_COLUMNS};
use crate::pipeline::{Context, Pipeline};
use crate::time::EventTime;
use timely::dataflow::StreamVec;

fn build<'s>(readings: StreamVec<'s, EventTime, Reading>, ctx: &mut Context<'s>) {
    let (rows, late) = detect(readings, ctx, "iot_stuck.devices");
    ctx.dead_letter(late);
    ctx.emit(rows);
}

/// Registry entry.
pub const QUERY: Pipeline<Reading> = Pipeline {
    name: "iot_stuck",
    description: "stuck sensors: a metric repeating the same value reading after reading",
    columns: STUCK_COLUMNS,
    writes_files: false,
    params: &[STUCK_AFTER],
    build,
};
