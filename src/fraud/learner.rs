//! An online model for fraud scores: feature standardisation and logistic regression, learned
//! one example at a time — the same algorithm as river's `StandardScaler | LogisticRegression`
//! with its defaults, so the two can be compared example for example.
//!
//! - [`Scaler`]: per feature, a running mean and (population) variance (Welford); a value is
//!   scaled to `(x − mean) / std`, and to 0 where the variance is still 0.
//! - [`Logistic`]: `p = σ(w·z + b)` on scaled features `z`; learning an example `(x, y)` first
//!   updates the scaler with `x`, then takes one SGD step on the log loss:
//!   `g = p − y`, `w ← w − lr (g z + l2 w)`, `b ← b − lr_b g`.
//!
//! Scoring never changes the model: a stream scores each transaction with the model as it is,
//! and learns from it when its label arrives (prequential evaluation).

use serde::{Deserialize, Serialize};

/// Running means and variances of each feature.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    count: u64,
    mean: Vec<f64>,
    var: Vec<f64>,
}

impl Scaler {
    /// Adds an example.
    pub fn learn(&mut self, x: &[f64]) {
        if self.mean.len() < x.len() {
            self.mean.resize(x.len(), 0.0);
            self.var.resize(x.len(), 0.0);
        }
        self.count += 1;
        let n = self.count as f64;
        for (i, &v) in x.iter().enumerate() {
            let old = self.mean[i];
            self.mean[i] += (v - old) / n;
            self.var[i] += ((v - old) * (v - self.mean[i]) - self.var[i]) / n;
        }
    }

    /// `x` scaled with the statistics so far, into `out`.
    pub fn transform(&self, x: &[f64], out: &mut Vec<f64>) {
        out.clear();
        out.extend(x.iter().enumerate().map(|(i, &v)| {
            let mean = self.mean.get(i).copied().unwrap_or(0.0);
            let std = self.var.get(i).copied().unwrap_or(0.0).sqrt();
            if std > 0.0 {
                (v - mean) / std
            } else {
                0.0
            }
        }));
    }
}

/// Logistic regression learned by SGD on standardised features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Logistic {
    scaler: Scaler,
    weights: Vec<f64>,
    bias: f64,
    /// Learning rate of the weights.
    pub learning_rate: f64,
    /// Learning rate of the intercept.
    pub intercept_rate: f64,
    /// L2 penalty on the weights.
    pub l2: f64,
    /// Examples learned.
    pub learned: u64,
}

impl Default for Logistic {
    /// river's defaults: SGD at 0.01 for weights and intercept, no penalty.
    fn default() -> Self {
        Logistic {
            scaler: Scaler::default(),
            weights: Vec::new(),
            bias: 0.0,
            learning_rate: 0.01,
            intercept_rate: 0.01,
            l2: 0.0,
            learned: 0,
        }
    }
}

/// The logistic function.
fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

impl Logistic {
    /// The probability that `x` is positive, as the model is now.
    pub fn score(&self, x: &[f64]) -> f64 {
        let mut z = Vec::with_capacity(x.len());
        self.scaler.transform(x, &mut z);
        sigmoid(self.raw(&z))
    }

    fn raw(&self, z: &[f64]) -> f64 {
        self.bias + z.iter().zip(&self.weights).map(|(a, b)| a * b).sum::<f64>()
    }

    /// Learns from `x` labelled `y`.
    pub fn learn(&mut self, x: &[f64], y: bool) {
        self.scaler.learn(x);
        let mut z = Vec::with_capacity(x.len());
        self.scaler.transform(x, &mut z);
        if self.weights.len() < z.len() {
            self.weights.resize(z.len(), 0.0);
        }
        let g = sigmoid(self.raw(&z)) - f64::from(u8::from(y));
        for (w, zi) in self.weights.iter_mut().zip(&z) {
            *w -= self.learning_rate * (g * zi + self.l2 * *w);
        }
        self.bias -= self.intercept_rate * g;
        self.learned += 1;
    }
}

/// The area under the ROC curve of `scores` for labels `labels` (ties count half), exactly, by
/// ranking: the probability that a random positive scores above a random negative.
pub fn roc_auc(scored: &[(f64, bool)]) -> Option<f64> {
    let mut v: Vec<(f64, bool)> = scored.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = v.iter().filter(|(_, y)| *y).count() as f64;
    let negatives = v.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    // Sum of the positives' ranks (1-based, ties at their average rank).
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < v.len() {
        let mut j = i;
        while j < v.len() && v[j].0 == v[i].0 {
            j += 1;
        }
        let average = (i + 1 + j) as f64 / 2.0;
        rank_sum += average * v[i..j].iter().filter(|(_, y)| *y).count() as f64;
        i = j;
    }
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::generator::SplitMix64;

    #[test]
    fn the_scaler_keeps_population_statistics() {
        let mut s = Scaler::default();
        for x in [1.0, 2.0, 3.0, 4.0] {
            s.learn(&[x, 5.0]);
        }
        let mut z = Vec::new();
        s.transform(&[4.0, 5.0], &mut z);
        // Mean 2.5, population variance 1.25.
        assert!((z[0] - 1.5 / 1.25f64.sqrt()).abs() < 1e-12);
        assert_eq!(z[1], 0.0, "a constant feature scales to 0");
    }

    #[test]
    fn one_step_is_the_log_loss_gradient() {
        let mut m = Logistic::default();
        m.learn(&[1.0, -1.0], true);
        // First example: the scaler has variance 0, so z = 0 and only the bias moves:
        // g = σ(0) − 1 = −0.5, b = 0.01 × 0.5.
        assert!((m.bias - 0.005).abs() < 1e-15);
        m.learn(&[3.0, -1.0], false);
        // Scaler: mean 2, variance 1 → z = (1, 0); p = σ(0.005); g = p.
        let p = sigmoid(0.005);
        assert!((m.weights[0] + 0.01 * p).abs() < 1e-15);
        assert_eq!(m.weights[1], 0.0);
        assert!((m.bias - (0.005 - 0.01 * p)).abs() < 1e-15);
    }

    /// river 0.26.1, `StandardScaler() | LogisticRegression()`, on the same 200 examples
    /// (score each, then learn it): the probabilities it gave at these steps.
    #[test]
    fn scores_equal_rivers_on_the_same_sequence() {
        let river = [
            (0, 0.5),
            (1, 0.5012499973958399),
            (2, 0.4941492254337111),
            (5, 0.4913566078367766),
            (10, 0.49830203583539734),
            (50, 0.4607068017777838),
            (100, 0.4523991108151644),
            (199, 0.4135991978860768),
        ];
        let mut m = Logistic::default();
        let mut scores = Vec::new();
        for i in 0..200u64 {
            let x = [
                ((i * 37) % 11) as f64 - 5.0,
                ((i * 13) % 7) as f64 * 0.5,
                if i % 3 == 0 { 1.0 } else { -2.0 },
            ];
            let y = (i * 29) % 5 == 0 || x[0] > 3.0;
            scores.push(m.score(&x));
            m.learn(&x, y);
        }
        for (i, p) in river {
            assert!(
                (scores[i] - p).abs() < 1e-12,
                "step {i}: {} vs river {p}",
                scores[i]
            );
        }
    }

    #[test]
    fn it_learns_a_separable_problem_online() {
        let mut rng = SplitMix64::seeded(1, 2);
        let mut m = Logistic::default();
        let mut scored = Vec::new();
        for i in 0..20_000 {
            let y = rng.chance(0.1);
            let x = [rng.normal() + if y { 2.0 } else { 0.0 }, rng.normal()];
            if i >= 10_000 {
                scored.push((m.score(&x), y));
            }
            m.learn(&x, y);
        }
        let auc = roc_auc(&scored).unwrap();
        assert!(auc > 0.9, "{auc}");
    }

    #[test]
    fn auc_counts_ties_half_and_needs_both_classes() {
        assert_eq!(roc_auc(&[(0.1, false), (0.9, true)]), Some(1.0));
        assert_eq!(roc_auc(&[(0.9, false), (0.1, true)]), Some(0.0));
        assert_eq!(roc_auc(&[(0.5, false), (0.5, true)]), Some(0.5));
        assert_eq!(roc_auc(&[(0.5, true)]), None);
        let v = [(0.1, false), (0.4, true), (0.35, false), (0.8, true)];
        assert_eq!(roc_auc(&v), Some(1.0));
        let v = [(0.1, false), (0.4, false), (0.35, true), (0.8, true)];
        assert_eq!(roc_auc(&v), Some(0.75));
    }
}
