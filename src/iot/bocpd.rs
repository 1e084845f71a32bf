//! Bayesian online change-point detection (Adams & MacKay 2007) over a device's samples: where
//! its operating state changed.
//!
//! A stream's first [`CALIBRATION`] samples set its scale: each later sample is standardised by
//! their mean and standard deviation (frozen, so a segment's values do not move as the
//! statistics would), then every dimension is modelled as Gaussian with unknown mean and
//! variance under a Normal-Gamma prior (μ₀ = 0, κ₀ = 1, α₀ = 1, β₀ = 1), independently. No change
//! is detected during calibration. The
//! detector keeps the posterior over the *run length* — samples since the last change — with a
//! constant hazard `1 / λ` (λ = 100 by default, the expected segment length): at each sample
//! every run either grows (weighted by the sample's Student-t predictive under that run's
//! posterior) or ends, its mass moving to run length 0. Only the 64 likeliest runs are kept, and
//! none less likely than e⁻³⁰.
//!
//! The most probable run length names where the current segment started. A change is reported
//! when that start moves forward and stays put for `hold` samples (confirmation against one
//! noisy sample), and at least [`MIN_SEGMENT`] samples after the last change reported (one
//! change, not a burst of them, at a transition that takes a few samples). The defaults were
//! chosen on river's occupancy data (see the README's table and its sensitivity).

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Expected samples between changes (the inverse of the hazard) by default.
pub const LAMBDA: f64 = 100.0;
/// Samples the new segment's start must stay the most probable before it is confirmed.
pub const HOLD: u32 = 5;
/// Fewest samples between two changes reported.
pub const MIN_SEGMENT: u64 = 10;
/// Samples a stream's scale is learned from before detection starts.
pub const CALIBRATION: u64 = 20;
/// The longest run length kept (older samples' runs are dropped with them).
const MAX_RUN: usize = 2_000;
/// The most runs kept: the likeliest (a run's posterior cost is per sample and dimension).
const MAX_RUNS: usize = 64;
/// Runs whose log probability falls below this are dropped.
const PRUNE_LOG_P: f64 = -30.0;

/// One run length's posterior: per dimension the Normal-Gamma parameters (κ and α are the same
/// for every dimension: they count samples), and ln β kept alongside β.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Run {
    log_p: f64,
    len: u64,
    kappa: f64,
    alpha: f64,
    mu: Vec<f64>,
    beta: Vec<f64>,
    ln_beta: Vec<f64>,
}

impl Run {
    fn prior(dims: usize, log_p: f64) -> Run {
        Run {
            log_p,
            len: 0,
            kappa: 1.0,
            alpha: 1.0,
            mu: vec![0.0; dims],
            beta: vec![1.0; dims],
            ln_beta: vec![0.0; dims],
        }
    }

    /// Adds the log of the Student-t predictive density of `z` under this run's posterior to
    /// its probability, then updates the posterior with `z`.
    ///
    /// With ν = 2α and s² = β(κ+1)/(ακ), the density's log per dimension is
    /// `ln Γ((ν+1)/2) − ln Γ(ν/2) − ½ ln(2π(κ+1)/κ) + (ν/2) ln β − ((ν+1)/2) ln(β + q)` with
    /// q = κ(x−μ)²/(2(κ+1)) — and β + q is the updated β. So one logarithm per dimension serves
    /// both the density and the next sample's ln β.
    fn observe(&mut self, z: &[f64]) {
        let k = self.kappa;
        let nu = 2.0 * self.alpha;
        let mut log_density = constant_term(self.len) * z.len() as f64;
        for (i, x) in z.iter().enumerate() {
            let d = x - self.mu[i];
            let beta = self.beta[i] + k * d * d / (2.0 * (k + 1.0));
            let ln_beta = beta.ln();
            log_density += 0.5 * nu * self.ln_beta[i] - 0.5 * (nu + 1.0) * ln_beta;
            self.beta[i] = beta;
            self.ln_beta[i] = ln_beta;
            self.mu[i] = (k * self.mu[i] + x) / (k + 1.0);
        }
        self.log_p += log_density;
        self.len += 1;
        self.kappa = k + 1.0;
        self.alpha += 0.5;
    }
}

/// The part of the predictive's log density per dimension that depends on the run length
/// alone: `ln Γ((ν+1)/2) − ln Γ(ν/2) − ½ ln(2π(κ+1)/κ)`, with ν = 2 + len and κ = 1 + len —
/// from a table built once.
fn constant_term(len: u64) -> f64 {
    fn term(len: usize) -> f64 {
        let (nu, k) = (2.0 + len as f64, 1.0 + len as f64);
        ln_gamma((nu + 1.0) / 2.0)
            - ln_gamma(nu / 2.0)
            - 0.5 * (2.0 * std::f64::consts::PI * (k + 1.0) / k).ln()
    }
    static TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| (0..=MAX_RUN).map(term).collect());
    usize::try_from(len)
        .ok()
        .and_then(|i| table.get(i).copied())
        .unwrap_or_else(|| term(len as usize))
}

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7, nine terms: ~15 significant digits).
pub fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let series = G[1..]
        .iter()
        .enumerate()
        .fold(G[0], |acc, (i, g)| acc + g / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

/// A change: the sample index where the new segment starts, and the one that confirmed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    /// Index (since the first sample) of the new segment's first sample.
    pub start: u64,
    /// Index of the sample at which it was reported.
    pub at: u64,
}

/// One stream's detector: plain data, checkpointable.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeDetector {
    runs: Vec<Run>,
    /// Samples seen.
    t: u64,
    /// Per dimension, the calibration samples' mean, and their sum of squared deviations
    /// (Welford) — once calibrated, their standard deviation.
    mean: Vec<f64>,
    m2: Vec<f64>,
    /// A start waiting for confirmation, and for how many samples it has been the most probable.
    candidate: Option<(u64, u32)>,
    /// The latest start confirmed, and the latest change reported.
    confirmed: u64,
    reported: Option<u64>,
}

impl ChangeDetector {
    /// Takes sample `x` (its index is the number of samples before it); a change if `x`
    /// confirms one.
    pub fn step(&mut self, x: &[f64], lambda: f64) -> Option<Change> {
        let dims = x.len();
        let t = self.t;
        self.t += 1;
        if t < CALIBRATION {
            // Calibrating: the scale is learned, nothing is detected.
            if self.mean.len() != dims {
                self.mean = vec![0.0; dims];
                self.m2 = vec![0.0; dims];
            }
            let n = t as f64 + 1.0;
            for (i, &v) in x.iter().enumerate() {
                let d = v - self.mean[i];
                self.mean[i] += d / n;
                self.m2[i] += d * (v - self.mean[i]);
            }
            if t + 1 == CALIBRATION {
                // Freeze: the m2 slots become standard deviations (1 for a constant metric).
                for m2 in &mut self.m2 {
                    let sd = (*m2 / (n - 1.0)).sqrt();
                    *m2 = if sd > 0.0 { sd } else { 1.0 };
                }
                self.runs.push(Run::prior(dims, 0.0));
                self.confirmed = CALIBRATION;
            }
            return None;
        }
        let z: Vec<f64> = (0..dims)
            .map(|i| (x.get(i).copied().unwrap_or(0.0) - self.mean[i]) / self.m2[i])
            .collect();
        // Grow every run (in place) or end it.
        let hazard = 1.0 / lambda.max(1.0);
        let (grow, end) = ((1.0 - hazard).ln(), hazard.ln());
        for r in &mut self.runs {
            r.observe(&z);
        }
        let change_mass = log_sum_exp(self.runs.iter().map(|r| r.log_p)) + end;
        self.runs.retain(|r| (r.len as usize) <= MAX_RUN);
        for r in &mut self.runs {
            r.log_p += grow;
        }
        self.runs.insert(0, Run::prior(dims, change_mass));
        // Keep the likeliest runs only, then normalise.
        if self.runs.len() > MAX_RUNS {
            self.runs
                .select_nth_unstable_by(MAX_RUNS, |a, b| b.log_p.total_cmp(&a.log_p));
            self.runs.truncate(MAX_RUNS);
            self.runs.sort_unstable_by_key(|r| r.len);
        }
        let total = log_sum_exp(self.runs.iter().map(|r| r.log_p));
        self.runs.iter_mut().for_each(|r| r.log_p -= total);
        self.runs.retain(|r| r.log_p > PRUNE_LOG_P);
        let best = self
            .runs
            .iter()
            .max_by(|a, b| a.log_p.total_cmp(&b.log_p))
            .map_or(0, |r| r.len);
        // The current segment started at sample `t + 1 - best` (this sample is index t).
        let start = (t + 1).saturating_sub(best);
        self.confirm(start, t)
    }

    fn confirm(&mut self, start: u64, t: u64) -> Option<Change> {
        if start <= self.confirmed {
            self.candidate = None;
            return None;
        }
        let seen = match self.candidate {
            Some((s, n)) if s == start => n + 1,
            _ => 1,
        };
        self.candidate = Some((start, seen));
        if seen < HOLD {
            return None;
        }
        self.candidate = None;
        self.confirmed = start;
        if self.reported.is_some_and(|r| start - r < MIN_SEGMENT) {
            return None;
        }
        self.reported = Some(start);
        Some(Change { start, at: t })
    }

    /// Samples taken so far.
    pub fn samples(&self) -> u64 {
        self.t
    }
}

fn log_sum_exp(v: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = v.clone().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + v.map(|x| (x - max).exp()).sum::<f64>().ln()
}

/// The times of a stream's recent samples, to name a change's start by its event time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecentTimes {
    first: u64,
    times: VecDeque<u64>,
}

impl RecentTimes {
    /// Notes sample `index`'s time.
    pub fn push(&mut self, time: u64) {
        self.times.push_back(time);
        if self.times.len() > MAX_RUN + 1 {
            self.times.pop_front();
            self.first += 1;
        }
    }

    /// The time of sample `index`, if still known.
    pub fn of(&self, index: u64) -> Option<u64> {
        let i = index.checked_sub(self.first)?;
        self.times.get(usize::try_from(i).ok()?).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::generator::SplitMix64;

    #[test]
    fn ln_gamma_matches_known_values() {
        assert!((ln_gamma(1.0)).abs() < 1e-12);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
        assert!((ln_gamma(10.0) - 362_880f64.ln()).abs() < 1e-10);
        assert!((ln_gamma(2.5) - (1.329_340_388_179_137f64).ln()).abs() < 1e-12);
    }

    #[test]
    fn a_shift_in_the_mean_is_one_change_near_where_it_happened() {
        let mut rng = SplitMix64::seeded(3, 0);
        let mut d = ChangeDetector::default();
        let mut changes = Vec::new();
        for i in 0..400 {
            let level = if i < 150 {
                0.0
            } else if i < 300 {
                5.0
            } else {
                -2.0
            };
            let x = [level + 0.5 * rng.normal(), 10.0 + 0.1 * rng.normal()];
            if let Some(c) = d.step(&x, LAMBDA) {
                changes.push(c);
            }
        }
        let starts: Vec<u64> = changes.iter().map(|c| c.start).collect();
        assert_eq!(starts.len(), 2, "{changes:?}");
        assert!(
            starts[0].abs_diff(150) <= 2 && starts[1].abs_diff(300) <= 2,
            "{starts:?}"
        );
        for c in &changes {
            assert_eq!(
                c.at - c.start,
                u64::from(HOLD) - 1,
                "reported after the hold"
            );
        }
    }

    #[test]
    fn noise_alone_is_no_change() {
        let mut rng = SplitMix64::seeded(9, 0);
        let mut d = ChangeDetector::default();
        let changes = (0..1_000)
            .filter_map(|_| d.step(&[rng.normal(), 3.0 * rng.normal()], LAMBDA))
            .count();
        assert!(changes <= 1, "{changes} changes in noise");
    }

    #[test]
    fn recent_times_name_samples_by_index() {
        let mut r = RecentTimes::default();
        for i in 0..(MAX_RUN as u64 + 10) {
            r.push(1_000 + i);
        }
        assert_eq!(r.of(5), None, "forgotten");
        assert_eq!(r.of(MAX_RUN as u64), Some(1_000 + MAX_RUN as u64));
    }
}
