//! Stuck sensors: a metric of a device that reports exactly the same value reading after
//! reading. A live sensor's noise makes repeats of a floating-point value rare; `stuck_after`
//! of them in a row (`--param stuck_after=N`, 30 by default) is a frozen sensor, a dead ADC or
//! a gateway replaying its cache. One alert per episode (`stuck`, with the value and when it
//! froze) and one `recovered` when the value moves again.
//!
//! Per device, per metric, in event-time order once the watermark passes the readings: the
//! same alerts at any worker count and arrival order within the allowed delay.

use super::device::{DeviceDetector, PerDevice};
use super::model::Reading;
use crate::operators::keyed::{keyed_options, Emit};
use crate::operators::KeyedCore;
use crate::pipeline::{Context, Param};
use crate::time::EventTime;
use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use timely::dataflow::StreamVec;

/// `stuck_after=N`: equal readings in a row that make a sensor stuck.
pub const STUCK_AFTER: Param = Param {
    name: "stuck_after",
    help: "identical readings of a metric in a row that make its sensor stuck (default 30)",
    check: |v| parse_count(v).map(drop),
};

/// Default of `stuck_after`.
pub const DEFAULT_STUCK_AFTER: u32 = 30;

fn parse_count(v: &str) -> Result<u32, String> {
    v.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| *n >= 2)
        .ok_or_else(|| format!("{v:?} is not a count of 2 or more"))
}

/// A sensor freezing or moving again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StuckRow {
    /// The device.
    pub device: CompactString,
    /// Its site.
    pub site: CompactString,
    /// Its model.
    pub model: CompactString,
    /// `stuck` or `recovered`.
    pub status: CompactString,
    /// The reading that made it stuck, or moved again.
    pub time: EventTime,
    /// The metric.
    pub metric: CompactString,
    /// The repeated value.
    pub value: f64,
    /// When the value froze: the first of the repeats.
    pub since: EventTime,
    /// Recovered: how many readings repeated it.
    pub repeats: Option<u32>,
}

/// The output columns of a [`StuckRow`].
pub const STUCK_COLUMNS: &[&str] = &[
    "device", "site", "model", "status", "time", "metric", "value", "since", "repeats",
];

/// One metric's latest value and how often it came in a row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    metric: CompactString,
    value: f64,
    since: EventTime,
    repeats: u32,
    stuck: bool,
}

/// A device's metrics (few: a short list beats a map).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sensors {
    runs: Vec<Run>,
    site: CompactString,
    model: CompactString,
}

/// The stuck-sensor logic.
pub struct Stuck {
    /// Repeats that make a sensor stuck.
    pub after: u32,
}

impl DeviceDetector for Stuck {
    const NAME: &'static str = "stuck-sensor detector";
    type State = Sensors;
    type Output = StuckRow;

    fn readings(
        &self,
        device: &CompactString,
        s: &mut Sensors,
        mut pending: Vec<Reading>,
        out: &mut Emit<'_, StuckRow>,
    ) {
        pending.sort_by(|a, b| {
            (a.time, &a.metric)
                .cmp(&(b.time, &b.metric))
                .then(a.value.total_cmp(&b.value))
        });
        for r in pending {
            s.site = r.site;
            s.model = r.model;
            let i = match s.runs.iter().position(|run| run.metric == r.metric) {
                Some(i) => i,
                None => {
                    s.runs.push(Run {
                        metric: r.metric,
                        value: r.value,
                        since: r.time,
                        repeats: 0,
                        stuck: false,
                    });
                    s.runs.len() - 1
                }
            };
            let run = &mut s.runs[i];
            let row = |run: &Run, status: &'static str| StuckRow {
                device: device.clone(),
                site: s.site.clone(),
                model: s.model.clone(),
                status: CompactString::const_new(status),
                time: r.time,
                metric: run.metric.clone(),
                value: run.value,
                since: run.since,
                repeats: (status == "recovered").then_some(run.repeats),
            };
            if run.value == r.value {
                run.repeats += 1;
                if run.repeats == self.after && !run.stuck {
                    run.stuck = true;
                    out.give(row(run, "stuck"));
                }
            } else {
                if run.stuck {
                    out.give(row(run, "recovered"));
                }
                *run = Run {
                    metric: run.metric.clone(),
                    value: r.value,
                    since: r.time,
                    repeats: 1,
                    stuck: false,
                };
            }
        }
    }
}

/// The stuck sensors of `readings` with the run's parameters, and the late readings as dead
/// letters.
pub fn detect<'s>(
    readings: StreamVec<'s, EventTime, Reading>,
    ctx: &mut Context<'s>,
    name: &str,
) -> (
    StreamVec<'s, EventTime, StuckRow>,
    StreamVec<'s, EventTime, crate::deadletter::DeadLetter>,
) {
    let logic = Stuck {
        after: ctx.param_or(&STUCK_AFTER, parse_count, DEFAULT_STUCK_AFTER),
    };
    readings.keyed(name, PerDevice(logic), keyed_options(name))
}
