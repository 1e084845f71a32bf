//! # iot_offline — devices that stop reporting, and come back
//!
//! **Asks:** which devices went silent, when, and when did they report again? One row per
//! change: `device, site, model, status` (`offline` / `recovered`), `time` (offline: the last
//! reading + the timeout; recovered: the new reading), `last_seen`, `silent_ms`.
//!
//! **Illustrates:** the frontier as a clock of event time. A device's silence is only known
//! when the watermark passes its last reading + the timeout (`--param offline_after=30s`): the
//! keyed core fires the device's due time then, so the alert is exact — the same at any worker
//! count and for any arrival order within the allowed delay — with hysteresis built in (one
//! `offline` per episode, then one `recovered`).
//!
//! **Windows and state:** no windows; per device its latest reading time, site, model and
//! whether it is offline ([`offline`](crate::iot::offline)). A reading behind the watermark is
//! a dead letter (`late`).

use crate::iot::model::Reading;
use crate::iot::offline::{detect, ALERT_COLUMNS};
use crate::iot::params;
use crate::pipeline::{Context, Pipeline};
use crate::time::EventTime;
use timely::dataflow::StreamVec;

fn build<'s>(readings: StreamVec<'s, EventTime, Reading>, ctx: &mut Context<'s>) {
    let (alerts, late) = detect(readings, ctx, "iot_offline.devices");
    ctx.dead_letter(late);
    ctx.emit(alerts);
}

/// Registry entry.
pub const QUERY: Pipeline<Reading> = Pipeline {
    name: "iot_offline",
    description: "devices that stop reporting (offline when the watermark passes last + timeout) and recover",
    columns: ALERT_COLUMNS,
    writes_files: false,
    params: &[params::OFFLINE_AFTER],
    build,
};
