//! Per-device change points in event time: each device's samples (over the model's metrics)
//! through its own [`ChangeDetector`], in event-time order once the watermark passes them — the
//! same changes at any worker count and arrival order within the allowed delay.

use super::bocpd::{ChangeDetector, RecentTimes, LAMBDA};
use super::device::{DeviceDetector, PerDevice};
use super::model::Reading;
use super::params;
use super::sample::{samples, LastValues};
use crate::operators::keyed::{keyed_options, Emit};
use crate::operators::KeyedCore;
use crate::pipeline::Context;
use crate::time::EventTime;
use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use timely::dataflow::StreamVec;

/// A change of a device's operating state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangeRow {
    /// The device.
    pub device: CompactString,
    /// Its site.
    pub site: CompactString,
    /// Its model.
    pub model: CompactString,
    /// When the new state began: its first sample's time.
    pub time: EventTime,
    /// The sample that confirmed it.
    pub detected_at: EventTime,
}

/// The output columns of a [`ChangeRow`].
pub const CHANGE_COLUMNS: &[&str] = &["device", "site", "model", "time", "detected_at"];

/// A device's change detector, last values and recent sample times.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceChanges {
    detector: ChangeDetector,
    last: LastValues,
    times: RecentTimes,
}

/// The change-point logic over samples of `metrics`.
pub struct Changes {
    /// The metrics a sample is made of.
    pub metrics: Vec<CompactString>,
    /// Expected samples between changes.
    pub lambda: f64,
}

impl DeviceDetector for Changes {
    const NAME: &'static str = "change detector";
    type State = DeviceChanges;
    type Output = ChangeRow;

    fn readings(
        &self,
        device: &CompactString,
        d: &mut DeviceChanges,
        pending: Vec<Reading>,
        out: &mut Emit<'_, ChangeRow>,
    ) {
        let mut last = std::mem::take(&mut d.last);
        samples(&self.metrics, &mut last, pending, |sample, last| {
            d.times.push(sample.time);
            let Some(change) = d.detector.step(sample.x, self.lambda) else {
                return;
            };
            out.give(ChangeRow {
                device: device.clone(),
                site: last.site.clone(),
                model: last.model.clone(),
                time: d.times.of(change.start).unwrap_or(sample.time),
                detected_at: sample.time,
            });
        });
        d.last = last;
    }
}

/// The change points of `readings` with the run's parameters, and the late readings as dead
/// letters. Readings of metrics outside the model are not part of any sample.
pub fn detect<'s>(
    readings: StreamVec<'s, EventTime, Reading>,
    ctx: &mut Context<'s>,
    name: &str,
) -> (
    StreamVec<'s, EventTime, ChangeRow>,
    StreamVec<'s, EventTime, crate::deadletter::DeadLetter>,
) {
    let logic = Changes {
        metrics: params::metrics(ctx),
        lambda: LAMBDA,
    };
    readings.keyed(name, PerDevice(logic), keyed_options(name))
}
