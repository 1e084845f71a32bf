//! # iot — the fleet monitor: every detector, one alert stream
//!
//! **Asks:** what needs attention in the fleet right now? One row per alert, tagged with its
//! `kind`: a device went **offline** (or recovered), an **anomaly** episode began (or ended), its
//! operating state **change**d, its degradation trend predicts failure (**warning**, with the
//! predicted failure time; or cleared), a sensor is **stuck** (or moves again). Columns: `kind,
//! device, site, model, status, time` and each kind's own (see the single-detector pipelines).
//!
//! **Illustrates:** several stateful detectors over one stream, each keyed by device in event
//! time, their outputs merged — exactly the rows of `iot_offline`, `iot_anomaly`, `iot_changes`,
//! `iot_warning` and `iot_stuck`, at any worker count and arrival order within the allowed delay.
//!
//! **Windows and state:** no windows; per device, every chosen detector's state (presence,
//! scaler and tree masses, run-length posterior, baseline and trend window, last values).
//! `--param detectors=…` picks a subset; each detector's own parameters apply.

use crate::iot::model::Reading;
use crate::iot::monitor::{monitor, ALERT_COLUMNS, DETECTORS_PARAM};
use crate::iot::{params, stuck, warning};
use crate::pipeline::{Context, Pipeline};
use crate::time::EventTime;
use timely::dataflow::StreamVec;

fn build<'s>(readings: StreamVec<'s, EventTime, Reading>, ctx: &mut Context<'s>) {
    let alerts = monitor(readings, ctx, "iot");
    ctx.emit(alerts);
}

/// Registry entry.
pub const QUERY: Pipeline<Reading> = Pipeline {
    name: "iot",
    description: "the fleet monitor: offline, anomaly, change-point, early-warning and stuck-sensor alerts in one stream",
    columns: ALERT_COLUMNS,
    writes_files: false,
    params: &[
        DETECTORS_PARAM,
        params::OFFLINE_AFTER,
        params::METRICS,
        params::THRESHOLD,
        params::HST_WINDOW,
        params::HST_SEED,
        warning::WARN_METRIC,
        warning::FAILURE_RATIO,
        warning::WARN_HORIZON,
        stuck::STUCK_AFTER,
    ],
    build,
};
