//! # iot_anomaly — anomaly episodes per device
//!
//! **Asks:** which devices behave unusually, since when, and when are they normal again? One
//! row when a device's sample scores at or above the threshold (`status: anomaly`, the score),
//! one when ten samples in a row stayed below it (`recovered`, the episode's peak and start):
//! `device, site, model, status, time, score, since`.
//!
//! **Illustrates:** alert hysteresis on top of an online model in keyed state — one alert per
//! episode, not one per anomalous sample — exact in event time at any worker count.
//!
//! **Windows and state:** as `iot_scores` (per device: scaler, tree masses, last values) plus
//! the episode in progress. `--param threshold=0.9`, `metrics`, `hst_window`.

use crate::iot::anomaly::{detect, Mode, ALERT_COLUMNS};
use crate::iot::model::Reading;
use crate::iot::params;
use crate::pipeline::{Context, Pipeline};
use crate::time::EventTime;
use timely::dataflow::operators::Concat;
use timely::dataflow::StreamVec;

fn build<'s>(readings: StreamVec<'s, EventTime, Reading>, ctx: &mut Context<'s>) {
    let detected = detect(readings, ctx, "iot_anomaly.devices", Mode::Alerts);
    ctx.dead_letter(detected.late.concat(detected.unknown));
    let alerts = detected.out;
    ctx.emit(alerts);
}

/// Registry entry.
pub const QUERY: Pipeline<Reading> = Pipeline {
    name: "iot_anomaly",
    description: "anomaly episodes per device (Half-Space Trees score over a threshold, with hysteresis)",
    columns: ALERT_COLUMNS,
    writes_files: false,
    params: &[params::METRICS, params::THRESHOLD, params::HST_WINDOW, params::HST_SEED],
    build,
};
