//! Early warning of failure: a device's degradation trend, extrapolated to its failure level,
//! gives a predicted time to failure; a warning goes out while there is still time to act.
//!
//! Per device, on one metric (`--param warn_metric`, vibration by default — a bearing's wear
//! shows there first), readings in event-time order once the watermark passes them:
//! - **Baseline:** the mean μ and standard deviation σ of the device's first [`CALIBRATION`]
//!   readings (Welford's algorithm): its healthy level.
//! - **Trend:** an ordinary least-squares line through its latest [`WINDOW`] readings: the level
//!   ℓ it fits at the latest reading and the slope b (per ms).
//! - **Warning** when the level is far above normal (ℓ > μ + [`WARN_SIGMAS`]·σ: noise and a
//!   few σ of sensor drift never get there), rising (b > 0), and the line reaches the failure
//!   level θ = `failure_ratio`·μ (`--param failure_ratio`, 4 by default) within the horizon
//!   (`--param warn_horizon`, 1 h): the row carries ℓ, μ, θ and the predicted failure time
//!   `time + (θ − ℓ)/b`. One warning per episode; **cleared** once the level is back under
//!   μ + [`CLEAR_SIGMAS`]·σ (a repair). A device that fails goes silent — the offline
//!   detector's alert.
//!
//! The same warnings at any worker count and arrival order within the allowed delay. Linear
//! extrapolation of an accelerating rise predicts failure *later* than it comes: warnings err
//! on the side of less lead time, never of false alarms (measured on the generator's
//! degradation faults by `scripts/iot-warning.py`).

use super::device::{DeviceDetector, PerDevice};
use super::model::Reading;
use crate::cli::parse_duration;
use crate::operators::keyed::{keyed_options, Emit};
use crate::operators::KeyedCore;
use crate::pipeline::{Context, Param};
use crate::time::EventTime;
use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use timely::dataflow::operators::vec::Filter;
use timely::dataflow::StreamVec;

/// Readings that set a device's baseline.
pub const CALIBRATION: u32 = 200;
/// Readings the trend line is fitted through.
pub const WINDOW: usize = 64;
/// How far above the baseline (in σ) the fitted level must be for a warning.
pub const WARN_SIGMAS: f64 = 8.0;
/// Under how many σ above the baseline a warning clears.
pub const CLEAR_SIGMAS: f64 = 3.0;

/// `warn_metric=NAME`: the metric whose trend predicts failure.
pub const WARN_METRIC: Param = Param {
    name: "warn_metric",
    help: "the metric whose rising trend predicts failure (default vibration)",
    check: |v| {
        if v.trim().is_empty() {
            Err("a metric name".into())
        } else {
            Ok(())
        }
    },
};

/// `failure_ratio=X`: the failure level as a multiple of the device's baseline.
pub const FAILURE_RATIO: Param = Param {
    name: "failure_ratio",
    help:
        "the warned metric's failure level, as a multiple of the device's healthy mean (default 4)",
    check: |v| parse_ratio(v).map(drop),
};

/// `warn_horizon=DURATION`: how far ahead a predicted failure is warned of.
pub const WARN_HORIZON: Param = Param {
    name: "warn_horizon",
    help: "warn when the trend reaches the failure level within this much event time (default 1h)",
    check: |v| parse_horizon(v).map(drop),
};

fn parse_ratio(v: &str) -> Result<f64, String> {
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x > 1.0)
        .ok_or_else(|| format!("{v:?} is not a ratio above 1"))
}

fn parse_horizon(v: &str) -> Result<EventTime, String> {
    let ms = parse_duration(v)?.as_millis();
    u64::try_from(ms)
        .ok()
        .filter(|ms| *ms > 0)
        .ok_or_else(|| format!("{v}: a positive duration"))
}

/// A warning's start or end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WarningRow {
    /// The device.
    pub device: CompactString,
    /// Its site.
    pub site: CompactString,
    /// Its model.
    pub model: CompactString,
    /// `warning` or `cleared`.
    pub status: CompactString,
    /// The reading that raised or cleared it.
    pub time: EventTime,
    /// The metric.
    pub metric: CompactString,
    /// The trend line's level at `time`.
    pub level: f64,
    /// The device's healthy mean.
    pub baseline: f64,
    /// The failure level.
    pub failure_level: f64,
    /// Warning: when the trend reaches the failure level.
    pub predicted_failure: Option<EventTime>,
}

/// The output columns of a [`WarningRow`].
pub const WARNING_COLUMNS: &[&str] = &[
    "device",
    "site",
    "model",
    "status",
    "time",
    "metric",
    "level",
    "baseline",
    "failure_level",
    "predicted_failure",
];

/// A device's baseline, latest readings and warning.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// Readings in the baseline, their mean and sum of squared deviations (Welford).
    n: u32,
    mean: f64,
    m2: f64,
    /// The latest readings, `(time, value)`, oldest first.
    recent: VecDeque<(EventTime, f64)>,
    /// A warning is out.
    warned: bool,
    site: CompactString,
    model: CompactString,
}

/// What the trend says about a device now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trend {
    /// The fitted level at the latest reading.
    pub level: f64,
    /// The slope, per ms.
    pub slope: f64,
}

impl Health {
    /// Takes one reading (in time order); the trend once the baseline is set and the window
    /// full.
    pub fn learn(&mut self, time: EventTime, value: f64) -> Option<Trend> {
        if self.n < CALIBRATION {
            self.n += 1;
            let delta = value - self.mean;
            self.mean += delta / f64::from(self.n);
            self.m2 += delta * (value - self.mean);
        }
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back((time, value));
        (self.n >= CALIBRATION && self.recent.len() == WINDOW).then(|| self.trend())
    }

    /// The least-squares line through the window (times relative to its first, for precision).
    fn trend(&self) -> Trend {
        let t0 = self.recent[0].0;
        let n = self.recent.len() as f64;
        let (mut st, mut sv) = (0.0, 0.0);
        for &(t, v) in &self.recent {
            st += (t - t0) as f64;
            sv += v;
        }
        let (mt, mv) = (st / n, sv / n);
        let (mut stt, mut stv) = (0.0, 0.0);
        for &(t, v) in &self.recent {
            let dt = (t - t0) as f64 - mt;
            stt += dt * dt;
            stv += dt * (v - mv);
        }
        let slope = if stt > 0.0 { stv / stt } else { 0.0 };
        let last = (self.recent[self.recent.len() - 1].0 - t0) as f64;
        Trend {
            level: mv + slope * (last - mt),
            slope,
        }
    }

    /// The healthy mean and standard deviation (σ floored so a constant sensor has one).
    pub fn baseline(&self) -> (f64, f64) {
        let var = self.m2 / f64::from(self.n.max(2) - 1);
        let floor = 1e-9 * self.mean.abs().max(1e-3);
        (self.mean, var.sqrt().max(floor))
    }
}

/// The early-warning logic.
pub struct Warning {
    /// The metric watched.
    pub metric: CompactString,
    /// Failure level over baseline.
    pub failure_ratio: f64,
    /// Warning horizon, ms.
    pub horizon: EventTime,
}

impl Warning {
    /// The predicted failure time, if `trend` at `time` calls for a warning, given the
    /// device's baseline `(mean, sd)`.
    pub fn predict(
        &self,
        (mean, sd): (f64, f64),
        trend: Trend,
        time: EventTime,
    ) -> Option<EventTime> {
        let failure = self.failure_ratio * mean;
        if trend.level <= mean + WARN_SIGMAS * sd || trend.slope <= 0.0 {
            return None;
        }
        let ahead = ((failure - trend.level) / trend.slope).max(0.0);
        (ahead <= self.horizon as f64).then(|| time + ahead.round() as EventTime)
    }
}

impl DeviceDetector for Warning {
    const NAME: &'static str = "early warning";
    type State = Health;
    type Output = WarningRow;

    fn readings(
        &self,
        device: &CompactString,
        h: &mut Health,
        mut pending: Vec<Reading>,
        out: &mut Emit<'_, WarningRow>,
    ) {
        pending.sort_by(|a, b| a.time.cmp(&b.time).then(a.value.total_cmp(&b.value)));
        for r in pending {
            h.site = r.site;
            h.model = r.model;
            let Some(trend) = h.learn(r.time, r.value) else {
                continue;
            };
            let (mean, sd) = h.baseline();
            let row = |status: &'static str, predicted_failure| WarningRow {
                device: device.clone(),
                site: h.site.clone(),
                model: h.model.clone(),
                status: CompactString::const_new(status),
                time: r.time,
                metric: self.metric.clone(),
                level: trend.level,
                baseline: mean,
                failure_level: self.failure_ratio * mean,
                predicted_failure,
            };
            if !h.warned {
                if let Some(at) = self.predict((mean, sd), trend, r.time) {
                    out.give(row("warning", Some(at)));
                    h.warned = true;
                }
            } else if trend.level < mean + CLEAR_SIGMAS * sd {
                out.give(row("cleared", None));
                h.warned = false;
            }
        }
    }
}

/// The warnings of `readings` with the run's parameters (readings of other metrics are not
/// watched), and the late readings as dead letters.
pub fn detect<'s>(
    readings: StreamVec<'s, EventTime, Reading>,
    ctx: &mut Context<'s>,
    name: &str,
) -> (
    StreamVec<'s, EventTime, WarningRow>,
    StreamVec<'s, EventTime, crate::deadletter::DeadLetter>,
) {
    let logic = Warning {
        metric: ctx.param_or(
            &WARN_METRIC,
            |v| Ok(CompactString::from(v.trim())),
            CompactString::const_new("vibration"),
        ),
        failure_ratio: ctx.param_or(&FAILURE_RATIO, parse_ratio, 4.0),
        horizon: ctx.param_or(&WARN_HORIZON, parse_horizon, 3_600_000),
    };
    let metric = logic.metric.clone();
    let watched = readings.filter(move |r| r.metric == metric);
    watched.keyed(name, PerDevice(logic), keyed_options(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warning() -> Warning {
        Warning {
            metric: "vibration".into(),
            failure_ratio: 4.0,
            horizon: 3_600_000,
        }
    }

    /// A healthy level of 1.0 with ±0.05 of deterministic noise, every second.
    fn healthy(h: &mut Health, from: u64, n: u64) -> Option<Trend> {
        let mut last = None;
        for i in from..from + n {
            let noise = 0.05 * (((i * 7919) % 21) as f64 - 10.0) / 10.0;
            last = h.learn(i * 1000, 1.0 + noise);
        }
        last
    }

    #[test]
    fn the_trend_line_fits_a_straight_rise_exactly() {
        let mut h = Health::default();
        healthy(&mut h, 0, u64::from(CALIBRATION));
        let mut trend = None;
        for i in 0..WINDOW as u64 {
            trend = h.learn(1_000_000 + i * 1000, 2.0 + 0.5 * i as f64);
        }
        let trend = trend.unwrap();
        assert!((trend.slope - 0.5 / 1000.0).abs() < 1e-12, "{trend:?}");
        assert!((trend.level - (2.0 + 0.5 * 63.0)).abs() < 1e-9, "{trend:?}");
        let (mean, sd) = h.baseline();
        assert!(
            (mean - 1.0).abs() < 0.01 && sd > 0.01 && sd < 0.05,
            "{mean} {sd}"
        );
    }

    #[test]
    fn noise_never_warns_and_a_rise_towards_failure_does_once_then_clears() {
        let w = warning();
        let mut h = Health::default();
        let mut rows = Vec::new();
        let step = |rows: &mut Vec<(u64, u64)>, h: &mut Health, t: u64, v: f64| {
            if let Some(trend) = h.learn(t, v) {
                if let Some(at) = w.predict(h.baseline(), trend, t) {
                    rows.push((t, at));
                }
            }
        };
        for i in 0..5_000u64 {
            let noise = 0.05 * (((i * 7919) % 21) as f64 - 10.0) / 10.0;
            step(&mut rows, &mut h, i * 1000, 1.0 + noise);
        }
        assert!(rows.is_empty(), "noise warned: {rows:?}");
        // A rise of 1.5 per 1000 s: from 1.0, failure (4.0) 2000 s after it starts.
        for i in 0..2_000u64 {
            let t = 5_000_000 + i * 1000;
            step(&mut rows, &mut h, t, 1.0 + 1.5e-3 * i as f64);
        }
        let (t, at) = rows[0];
        // Warned once the level is 8 σ up, predicting the failure at 7,000 s.
        assert!(t > 5_000_000 && t < 5_600_000, "{t}");
        assert!((at as i64 - 7_000_000).abs() < 20_000, "{at}");
    }
}
