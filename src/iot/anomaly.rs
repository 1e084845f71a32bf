//! Per-device streaming anomaly detection: each device's readings of one event time form a
//! *sample* — a vector over the model's metrics (a metric missing from a sample keeps its last
//! value) — scaled online to `[0, 1]` ([`MinMax`]) and scored by Half-Space Trees ([`Masses`]
//! over a [`Forest`] shared by every device) *before* the sample is learned: prequential, as
//! river's `MinMaxScaler | HalfSpaceTrees` pipeline scores then learns.
//!
//! On the keyed core, per device, samples are taken in event-time order once the watermark
//! passes them, so scores are the same at any worker count and arrival order within the
//! allowed delay. Two outputs: every sample's score ([`Mode::Scores`], for evaluation), or
//! episodes ([`Mode::Alerts`]): `anomaly` when a score reaches the threshold, then one
//! `recovered` after [`CALM_SAMPLES`] samples in a row below it — hysteresis, one alert per
//! episode.

use super::device::{DeviceDetector, PerDevice};
use super::hst::{Forest, Masses, MinMax};
use super::model::Reading;
use super::params;
use super::sample::{samples, LastValues};
use crate::deadletter::{DeadLetter, Origin, Reason};
use crate::operators::keyed::{keyed_options, Emit};
use crate::operators::{split, KeyedCore};
use crate::pipeline::Context;
use crate::time::EventTime;
use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// Trees in the forest (river's default).
pub const TREES: usize = 10;
/// Height of each tree (river's default).
pub const HEIGHT: u32 = 8;
/// Samples below the threshold in a row that end an episode.
pub const CALM_SAMPLES: u32 = 10;

/// What the detector emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every sample's score.
    Scores,
    /// Episode starts and ends.
    Alerts,
}

/// A sample's score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleScore {
    /// The device.
    pub device: CompactString,
    /// The sample's event time.
    pub time: EventTime,
    /// Its anomaly score in `[0, 1]`, before it was learned.
    pub score: f64,
    /// Ground truth carried through: the first fault label among the sample's readings.
    pub fault: Option<CompactString>,
}

/// The output columns of a [`SampleScore`].
pub const SCORE_COLUMNS: &[&str] = &["device", "time", "score", "fault"];

/// An anomaly episode's start or end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnomalyAlert {
    /// The device.
    pub device: CompactString,
    /// Its site.
    pub site: CompactString,
    /// Its model.
    pub model: CompactString,
    /// `anomaly` or `recovered`.
    pub status: CompactString,
    /// The sample that started or ended the episode.
    pub time: EventTime,
    /// Anomaly: that sample's score; recovered: the episode's highest.
    pub score: f64,
    /// Recovered: when the episode started.
    pub since: Option<EventTime>,
}

/// The output columns of an [`AnomalyAlert`].
pub const ALERT_COLUMNS: &[&str] = &[
    "device", "site", "model", "status", "time", "score", "since",
];

/// A device's detector.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceModel {
    scaler: MinMax,
    masses: Masses,
    /// The latest value of each metric, site and model.
    last: LastValues,
    /// An episode in progress: its start and highest score.
    episode: Option<(EventTime, f64)>,
    /// Samples below the threshold in a row, in an episode.
    calm: u32,
}

/// The detector: the metrics a sample is made of, the forest, window and threshold.
pub struct Anomaly {
    metrics: Vec<CompactString>,
    forest: Forest,
    window: u32,
    threshold: f64,
    mode: Mode,
}

impl Anomaly {
    /// A detector over samples of `metrics` (in this order), with windows of `window` samples
    /// and trees drawn from `seed` (every device shares them); alerts from `threshold`.
    pub fn new(
        metrics: Vec<CompactString>,
        window: u32,
        seed: u64,
        threshold: f64,
        mode: Mode,
    ) -> Self {
        let forest = Forest::new(metrics.len(), TREES, HEIGHT, seed);
        Anomaly {
            metrics,
            forest,
            window,
            threshold,
            mode,
        }
    }

    /// Scores sample `x`, then learns it; the score.
    fn step(&self, d: &mut DeviceModel, x: &[f64], scaled: &mut Vec<f64>) -> f64 {
        if d.masses.is_empty() {
            d.masses = Masses::new(&self.forest, self.window);
        }
        d.scaler.scale(x, scaled);
        let score = d.masses.score(&self.forest, scaled);
        d.scaler.learn(x);
        d.scaler.scale(x, scaled);
        d.masses.learn(&self.forest, scaled);
        score
    }

    /// The alert, if the sample at `time` with `score` starts or ends an episode.
    fn hysteresis(
        &self,
        d: &mut DeviceModel,
        time: EventTime,
        score: f64,
    ) -> Option<(&'static str, f64, Option<EventTime>)> {
        match d.episode.as_mut() {
            None if score >= self.threshold => {
                d.episode = Some((time, score));
                d.calm = 0;
                Some(("anomaly", score, None))
            }
            None => None,
            Some((_, peak)) if score >= self.threshold => {
                *peak = peak.max(score);
                d.calm = 0;
                None
            }
            Some(&mut (start, peak)) => {
                d.calm += 1;
                (d.calm >= CALM_SAMPLES).then(|| {
                    d.episode = None;
                    ("recovered", peak, Some(start))
                })
            }
        }
    }
}

/// One output of the detector.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AnomalyOutput {
    /// A sample's score.
    Score(SampleScore),
    /// An episode's start or end.
    Alert(AnomalyAlert),
}

impl DeviceDetector for Anomaly {
    const NAME: &'static str = "anomaly detector";
    type State = DeviceModel;
    type Output = AnomalyOutput;

    fn readings(
        &self,
        device: &CompactString,
        d: &mut DeviceModel,
        pending: Vec<Reading>,
        out: &mut Emit<'_, AnomalyOutput>,
    ) {
        let mut scaled = Vec::with_capacity(self.metrics.len());
        let mut last = std::mem::take(&mut d.last);
        samples(&self.metrics, &mut last, pending, |sample, last| {
            let score = self.step(d, sample.x, &mut scaled);
            let alert = match self.mode {
                Mode::Scores => Some(AnomalyOutput::Score(SampleScore {
                    device: device.clone(),
                    time: sample.time,
                    score,
                    fault: sample.fault,
                })),
                Mode::Alerts => {
                    self.hysteresis(d, sample.time, score)
                        .map(|(status, score, since)| {
                            AnomalyOutput::Alert(AnomalyAlert {
                                device: device.clone(),
                                site: last.site.clone(),
                                model: last.model.clone(),
                                status: CompactString::const_new(status),
                                time: sample.time,
                                score,
                                since,
                            })
                        })
                }
            };
            if let Some(o) = alert {
                out.give(o);
            }
        });
        d.last = last;
    }
}

/// What the anomaly detector gives: its outputs, the late readings and the readings of metrics
/// the model does not take (`invalid_event`), as dead letters.
pub struct Detected<'s> {
    /// Scores or alerts.
    pub out: StreamVec<'s, EventTime, AnomalyOutput>,
    /// Late readings.
    pub late: StreamVec<'s, EventTime, DeadLetter>,
    /// Readings of other metrics.
    pub unknown: StreamVec<'s, EventTime, DeadLetter>,
}

/// The detector over `readings` with the run's parameters, its outputs of `mode`.
pub fn detect<'s>(
    readings: StreamVec<'s, EventTime, Reading>,
    ctx: &mut Context<'s>,
    name: &str,
    mode: Mode,
) -> Detected<'s> {
    let metrics = params::metrics(ctx);
    let logic = Anomaly::new(
        metrics.clone(),
        params::hst_window(ctx),
        params::hst_seed(ctx),
        params::threshold(ctx),
        mode,
    );
    let listed = metrics.join(",");
    let [taken, other] = split(readings, move |r: &Reading| {
        usize::from(!metrics.contains(&r.metric))
    });
    let operator = name.to_string();
    let unknown = other.map(move |r| {
        DeadLetter::new(
            Origin::Operator {
                operator: operator.clone(),
            },
            Reason::InvalidEvent,
            format!(
                "metric {:?} is not one the anomaly model takes ({listed}; --param metrics=…)",
                r.metric
            ),
            &serde_json::to_vec(&r).unwrap_or_default(),
        )
    });
    let (out, late) = taken.keyed(name, PerDevice(logic), keyed_options(name));
    Detected { out, late, unknown }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detector(threshold: f64) -> (Anomaly, DeviceModel) {
        let names = ["a".into()].to_vec();
        (
            Anomaly::new(names, 10, 1, threshold, Mode::Alerts),
            DeviceModel::default(),
        )
    }

    #[test]
    fn an_episode_alerts_once_and_recovers_after_calm_samples() {
        let (a, mut d) = detector(0.8);
        let mut alerts = Vec::new();
        let scores = [
            0.1, 0.85, 0.95, 0.2, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1,
        ];
        for (t, s) in scores.iter().enumerate() {
            if let Some(alert) = a.hysteresis(&mut d, t as u64, *s) {
                alerts.push((t, alert));
            }
        }
        // Starts at the first score over the threshold; a dip does not end it; ten calm
        // samples in a row do, naming the peak and the start.
        assert_eq!(
            alerts,
            vec![
                (1, ("anomaly", 0.85, None)),
                (14, ("recovered", 0.95, Some(1)))
            ]
        );
    }
}
