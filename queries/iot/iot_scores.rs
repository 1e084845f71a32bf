//! # iot_scores — every sample's anomaly score (for evaluation)
//!
//! **Asks:** how unusual is each device's latest sample, judged by what the device did before?
//! One row per sample (a device's readings of one event time): `device, time, score, fault` —
//! the Half-Space Trees score in `[0, 1]` taken *before* the sample is learned, and the ground
//! truth the readings carried (for ROC AUC; never read by the detector).
//!
//! **Illustrates:** an online model per key as ordinary keyed state: per device an online
//! min-max scaler and the node masses of ten half-space trees whose shape all devices share
//! ([`anomaly`](crate::iot::anomaly), [`hst`](crate::iot::hst)). Prequential and in event-time
//! order per device, so the scores are the same at any worker count.
//!
//! **Windows and state:** no event-time windows; per device the scaler's extremes, the masses of
//! the reference and latest windows (`--param hst_window=250` samples) and the last value of
//! each metric (`--param metrics=temperature,vibration,pressure`). Readings of other metrics and
//! late readings are dead letters.

use crate::iot::anomaly::{detect, Mode, SCORE_COLUMNS};
use crate::iot::model::Reading;
use crate::iot::params;
use crate::pipeline::{Context, Pipeline};
use crate::time::EventTime;
use timely::dataflow::operators::Concat;
use timely::dataflow::StreamVec;

fn build<'s>(readings: StreamVec<'s, EventTime, Reading>, ctx: &mut Context<'s>) {
    let detected = detect(readings, ctx, "iot_scores.devices", Mode::Scores);
    ctx.dead_letter(detected.late.concat(detected.unknown));
    let scores = detected.out;
    ctx.emit(scores);
}

/// Registry entry.
pub const QUERY: Pipeline<Reading> = Pipeline {
    name: "iot_scores",
    description: "every device sample's Half-Space Trees anomaly score, scored before learned (for evaluation)",
    columns: SCORE_COLUMNS,
    writes_files: false,
    params: &[params::METRICS, params::HST_WINDOW, params::HST_SEED],
    build,
};
