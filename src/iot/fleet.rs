//! Fleet statistics for dashboards: per site, device model and metric, a window's readings —
//! count, mean, standard deviation, minimum and maximum, folded in one pass per pane and merged
//! across the panes of a sliding window.

use super::model::Reading;
use crate::operators::{Aggregate, WindowResult};
use crate::time::EventTime;
use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// Count, sum, sum of squares, minimum and maximum of values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    count: u64,
    sum: f64,
    sum_sq: f64,
    min: f64,
    max: f64,
}

/// Folds readings' values into [`Moments`].
pub struct Values;

impl Aggregate for Values {
    type In = f64;
    type Acc = Moments;
    type Out = Moments;

    fn empty(&self) -> Moments {
        Moments {
            count: 0,
            sum: 0.0,
            sum_sq: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    fn add(&self, acc: &mut Moments, x: f64) {
        acc.count += 1;
        acc.sum += x;
        acc.sum_sq += x * x;
        acc.min = acc.min.min(x);
        acc.max = acc.max.max(x);
    }

    fn merge(&self, acc: &mut Moments, other: &Moments) {
        acc.count += other.count;
        acc.sum += other.sum;
        acc.sum_sq += other.sum_sq;
        acc.min = acc.min.min(other.min);
        acc.max = acc.max.max(other.max);
    }

    fn finish(&self, acc: &Moments) -> Moments {
        *acc
    }
}

/// The group a reading is counted in: site, model, metric.
pub type Group = (CompactString, CompactString, CompactString);

/// A reading's group.
pub fn group(r: &Reading) -> Group {
    (r.site.clone(), r.model.clone(), r.metric.clone())
}

/// One window's statistics of one group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FleetRow {
    /// The site.
    pub site: CompactString,
    /// The device model.
    pub model: CompactString,
    /// The metric.
    pub metric: CompactString,
    /// Window start, epoch ms.
    pub window_start: EventTime,
    /// Window end, epoch ms.
    pub window_end: EventTime,
    /// Readings in the window.
    pub readings: u64,
    /// Their mean.
    pub mean: f64,
    /// Their population standard deviation.
    pub std_dev: f64,
    /// The lowest.
    pub min: f64,
    /// The highest.
    pub max: f64,
}

/// The output columns of a [`FleetRow`].
pub const FLEET_COLUMNS: &[&str] = &[
    "site",
    "model",
    "metric",
    "window_start",
    "window_end",
    "readings",
    "mean",
    "std_dev",
    "min",
    "max",
];

/// A window result as a row.
pub fn row(w: WindowResult<Group, Moments>) -> FleetRow {
    let m = w.value;
    let n = m.count.max(1) as f64;
    let mean = m.sum / n;
    FleetRow {
        site: w.key.0,
        model: w.key.1,
        metric: w.key.2,
        window_start: w.window.start,
        window_end: w.window.end,
        readings: m.count,
        mean,
        std_dev: (m.sum_sq / n - mean * mean).max(0.0).sqrt(),
        min: m.min,
        max: m.max,
    }
}
