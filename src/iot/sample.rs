//! A device's *samples*: its readings of one event time, as a vector over a model's metrics (in
//! the model's order). A metric missing from a sample keeps the device's last value of it (0
//! before any); readings of other metrics are not part of a sample.

use super::model::Reading;
use crate::time::EventTime;
use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// What a device's samples carry over from one to the next: the last value of each metric,
/// and the device's site and model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LastValues {
    /// The latest value of each metric.
    pub values: Vec<f64>,
    /// The device's site, from its latest reading.
    pub site: CompactString,
    /// The device's model, from its latest reading.
    pub model: CompactString,
}

/// One sample, as [`samples`] hands it out.
pub struct Sample<'a> {
    /// Its event time.
    pub time: EventTime,
    /// The vector, in the metrics' order.
    pub x: &'a [f64],
    /// The first ground-truth fault label among its readings.
    pub fault: Option<CompactString>,
}

/// Calls `each` with every sample of `readings` (one device's, any order), in time order,
/// updating `last` as it goes.
pub fn samples(
    metrics: &[CompactString],
    last: &mut LastValues,
    mut readings: Vec<Reading>,
    mut each: impl FnMut(Sample<'_>, &LastValues),
) {
    readings.sort_by(|a, b| (a.time, &a.metric).cmp(&(b.time, &b.metric)));
    last.values.resize(metrics.len(), 0.0);
    let mut i = 0;
    while i < readings.len() {
        let time = readings[i].time;
        let mut fault = None;
        while i < readings.len() && readings[i].time == time {
            let r = &mut readings[i];
            if let Some(m) = metrics.iter().position(|m| *m == r.metric) {
                last.values[m] = r.value;
            }
            if fault.is_none() {
                fault = r.fault.take();
            }
            last.site = std::mem::take(&mut r.site);
            last.model = std::mem::take(&mut r.model);
            i += 1;
        }
        let sample = Sample {
            time,
            x: &last.values,
            fault,
        };
        each(sample, last);
    }
}
