//! # iot_changes — when a device's operating state changes
//!
//! **Asks:** when did each device change its operating regime (a machine started, a room filled,
//! a setpoint moved)? One row per change: `device, site, model, time` (the first sample of the
//! new regime), `detected_at` (the sample that confirmed it).
//!
//! **Illustrates:** Bayesian online change-point detection per key, in event time: a posterior
//! over the run length since the last change, kept as keyed state and updated sample by sample
//! once the watermark passes them ([`bocpd`](crate::iot::bocpd)); exact at any worker count.
//!
//! **Windows and state:** no windows; per device the run-length posterior (runs more likely
//! than e⁻³⁰, at most 2,000 samples long), the calibration statistics, the last value of each
//! metric (`--param metrics=…`) and the times of the recent samples. Late readings are dead
//! letters; readings of metrics outside the model are not part of any sample.

use crate::iot::changes::{detect, CHANGE_COLUMNS};
use crate::iot::model::Reading;
use crate::iot::params;
use crate::pipeline::{Context, Pipeline};
use crate::time::EventTime;
use timely::dataflow::StreamVec;

fn build<'s>(readings: StreamVec<'s, EventTime, Reading>, ctx: &mut Context<'s>) {
    let (changes, late) = detect(readings, ctx, "iot_changes.devices");
    ctx.dead_letter(late);
    ctx.emit(changes);
}

/// Registry entry.
pub const QUERY: Pipeline<Reading> = Pipeline {
    name: "iot_changes",
    description: "per device, when its operating state changes (Bayesian online change-point detection)",
    columns: CHANGE_COLUMNS,
    writes_files: false,
    params: &[params::METRICS],
    build,
};
