//! Half-Space Trees (Tan, Ting & Liu, IJCAI 2011): a streaming anomaly detector — an online
//! relative of isolation forests — and the online min-max scaling it needs.
//!
//! Each tree splits the unit hypercube at random: every internal node picks a feature (with
//! probability proportional to the width of that feature's range left at the node) and a
//! threshold uniformly in the middle 70 % of that range. The trees' shape is fixed at
//! construction and can be shared by many detectors ([`Forest`]); a detector ([`Masses`]) keeps,
//! per node, the mass (count of points that reached it) of the *reference* window and of the
//! *latest* window. After every `window` points learned, the latest masses become the reference
//! and counting starts afresh. A point's score walks each tree down to the first node whose
//! reference mass is below a tenth of the window, summing `mass · 2^depth`: dense regions score
//! high; the anomaly score is one minus that sum normalised to `[0, 1]` — high for points in
//! regions the last window rarely visited. Before the first window is complete every score is
//! 0. This is the algorithm as river's `anomaly.HalfSpaceTrees` implements it (same
//! normalisation, padding and stopping rule; another random number generator, so other trees).
//!
//! Features are expected in `[0, 1]`: [`MinMax`] scales each online by the smallest and largest
//! value seen so far.
//!
//! # Examples
//!
//! ```
//! use sluice::iot::hst::{Forest, Masses};
//!
//! let forest = Forest::new(1, 10, 6, 7);
//! let mut hst = Masses::new(&forest, 50);
//! for i in 0..200 {
//!     let x = [0.4 + 0.001 * (i % 20) as f64];
//!     hst.learn(&forest, &x);
//! }
//! let usual = hst.score(&forest, &[0.41]);
//! let odd = hst.score(&forest, &[0.95]);
//! assert!(odd > usual + 0.5, "{odd} vs {usual}");
//! ```

use crate::connectors::generator::SplitMix64 as Rng;
use serde::{Deserialize, Serialize};

/// Share of a node's range left out on either side of its split.
const PADDING: f64 = 0.15;

/// The shape of a set of half-space trees: per tree, each internal node's split, in
/// breadth-first order (node `i`'s children are `2i + 1` and `2i + 2`).
#[derive(Clone, Debug, PartialEq)]
pub struct Forest {
    dims: usize,
    height: u32,
    /// `trees × internal nodes` splits: (feature, threshold).
    splits: Vec<(u32, f64)>,
}

impl Forest {
    /// `trees` random trees of `height` over `dims` features in `[0, 1]`, drawn from `seed`.
    pub fn new(dims: usize, trees: usize, height: u32, seed: u64) -> Self {
        let internal = (1usize << height) - 1;
        let mut splits = vec![(0, 0.0); trees * internal];
        for t in 0..trees {
            let mut rng = Rng::seeded(seed, t as u64);
            let mut limits = vec![(0.0, 1.0); dims.max(1)];
            let tree = &mut splits[t * internal..(t + 1) * internal];
            grow(tree, 0, height, &mut limits, &mut rng);
        }
        Forest {
            dims,
            height,
            splits,
        }
    }

    /// Number of trees.
    pub fn trees(&self) -> usize {
        self.splits.len() / self.internal().max(1)
    }

    /// Number of features.
    pub fn dims(&self) -> usize {
        self.dims
    }

    fn internal(&self) -> usize {
        (1usize << self.height) - 1
    }

    /// Nodes per tree, leaves included.
    fn nodes(&self) -> usize {
        (1usize << (self.height + 1)) - 1
    }

    /// The nodes of tree `t` that `x` passes through, root first.
    fn path<'a>(&'a self, t: usize, x: &'a [f64]) -> impl Iterator<Item = usize> + 'a {
        let internal = self.internal();
        let splits = &self.splits[t * internal..(t + 1) * internal];
        let mut node = Some(0usize);
        std::iter::from_fn(move || {
            let here = node?;
            node = (here < internal).then(|| {
                let (feature, threshold) = splits[here];
                let v = x.get(feature as usize).copied().unwrap_or(0.0);
                if v < threshold {
                    2 * here + 1
                } else {
                    2 * here + 2
                }
            });
            Some(here)
        })
    }
}

/// Fills node `i` of `tree` and its descendants down to `height` levels.
fn grow(tree: &mut [(u32, f64)], i: usize, height: u32, limits: &mut [(f64, f64)], rng: &mut Rng) {
    if height == 0 {
        return;
    }
    // A feature with probability proportional to its range's width.
    let total: f64 = limits.iter().map(|(a, b)| b - a).sum();
    let mut pick = rng.unit() * total;
    let mut feature = limits.len() - 1;
    for (f, (a, b)) in limits.iter().enumerate() {
        if pick < b - a {
            feature = f;
            break;
        }
        pick -= b - a;
    }
    let (a, b) = limits[feature];
    let at = a + PADDING * (b - a) + rng.unit() * (1.0 - 2.0 * PADDING) * (b - a);
    tree[i] = (feature as u32, at);
    limits[feature] = (a, at);
    grow(tree, 2 * i + 1, height - 1, limits, rng);
    limits[feature] = (at, b);
    grow(tree, 2 * i + 2, height - 1, limits, rng);
    limits[feature] = (a, b);
}

/// One detector's node masses over a [`Forest`]: plain data, checkpointable.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Masses {
    /// Reference window's masses, `trees × nodes`.
    reference: Vec<u32>,
    /// Latest window's masses.
    latest: Vec<u32>,
    /// Points learned in the latest window.
    counter: u32,
    /// Points per window.
    window: u32,
    /// Whether a reference window exists yet.
    ready: bool,
}

impl Masses {
    /// An empty detector over `forest` with windows of `window` points.
    pub fn new(forest: &Forest, window: u32) -> Self {
        let n = forest.trees() * forest.nodes();
        Masses {
            reference: vec![0; n],
            latest: vec![0; n],
            counter: 0,
            window: window.max(1),
            ready: false,
        }
    }

    /// Whether this is the empty default (no forest yet).
    pub fn is_empty(&self) -> bool {
        self.reference.is_empty()
    }

    /// Counts `x` in the latest window; pivots the windows when it is full.
    pub fn learn(&mut self, forest: &Forest, x: &[f64]) {
        let nodes = forest.nodes();
        for t in 0..forest.trees() {
            for node in forest.path(t, x) {
                self.latest[t * nodes + node] += 1;
            }
        }
        self.counter += 1;
        if self.counter == self.window {
            std::mem::swap(&mut self.reference, &mut self.latest);
            self.latest.iter_mut().for_each(|m| *m = 0);
            self.counter = 0;
            self.ready = true;
        }
    }

    /// The anomaly score of `x` in `[0, 1]`: high where the reference window rarely went; 0
    /// before the first window is complete.
    pub fn score(&self, forest: &Forest, x: &[f64]) -> f64 {
        if !self.ready {
            return 0.0;
        }
        let nodes = forest.nodes();
        let size_limit = 0.1 * f64::from(self.window);
        let mut sum = 0.0;
        for t in 0..forest.trees() {
            for (depth, node) in forest.path(t, x).enumerate() {
                let mass = f64::from(self.reference[t * nodes + node]);
                sum += mass * f64::from(1u32 << depth);
                if mass < size_limit {
                    break;
                }
            }
        }
        let max = forest.trees() as f64 * f64::from(self.window) * nodes as f64;
        1.0 - sum / max
    }
}

/// Online min-max scaling of each feature to `[0, 1]` by the extremes seen so far (a feature
/// with one value seen scales to 0). Values outside the extremes scale outside `[0, 1]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MinMax {
    min: Vec<f64>,
    max: Vec<f64>,
}

impl MinMax {
    /// Widens the extremes to include `x`.
    pub fn learn(&mut self, x: &[f64]) {
        if self.min.len() < x.len() {
            self.min.resize(x.len(), f64::INFINITY);
            self.max.resize(x.len(), f64::NEG_INFINITY);
        }
        for (i, &v) in x.iter().enumerate() {
            self.min[i] = self.min[i].min(v);
            self.max[i] = self.max[i].max(v);
        }
    }

    /// `x` scaled by the extremes so far, into `out`.
    pub fn scale(&self, x: &[f64], out: &mut Vec<f64>) {
        out.clear();
        out.extend(x.iter().enumerate().map(|(i, &v)| {
            let (lo, hi) = (
                self.min.get(i).copied().unwrap_or(f64::INFINITY),
                self.max.get(i).copied().unwrap_or(f64::NEG_INFINITY),
            );
            if hi > lo {
                (v - lo) / (hi - lo)
            } else {
                0.0
            }
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_split_inside_their_ranges_with_padding() {
        let forest = Forest::new(3, 4, 5, 1);
        assert_eq!((forest.trees(), forest.dims()), (4, 3));
        for &(feature, at) in &forest.splits {
            assert!(feature < 3);
            assert!(at > 0.0 && at < 1.0, "{at}");
        }
        // The root's split is in the padded middle of [0, 1].
        let (_, root) = forest.splits[0];
        assert!((0.15..=0.85).contains(&root), "{root}");
        // A path has height + 1 nodes and ends at a leaf.
        let path: Vec<usize> = forest.path(0, &[0.2, 0.5, 0.9]).collect();
        assert_eq!(path.len(), 6);
        assert!(*path.last().unwrap() >= forest.internal());
        assert_eq!(Forest::new(3, 4, 5, 1), forest, "a function of the seed");
    }

    #[test]
    fn scores_are_zero_until_a_window_then_high_for_rare_regions() {
        let forest = Forest::new(2, 25, 8, 42);
        let mut hst = Masses::new(&forest, 100);
        let usual = |i: usize| [0.3 + 0.002 * (i % 50) as f64, 0.6 - 0.002 * (i % 30) as f64];
        for i in 0..99 {
            hst.learn(&forest, &usual(i));
            assert_eq!(hst.score(&forest, &usual(i)), 0.0, "first window");
        }
        hst.learn(&forest, &usual(99));
        let normal = hst.score(&forest, &usual(7));
        let far = hst.score(&forest, &[0.95, 0.05]);
        assert!((0.0..=1.0).contains(&normal) && (0.0..=1.0).contains(&far));
        assert!(
            far > 0.9 && normal < far - 0.3,
            "normal {normal}, far {far}"
        );
        // The window pivots: after a window of points in the far corner, it is usual.
        for _ in 0..100 {
            hst.learn(&forest, &[0.95, 0.05]);
        }
        assert!(hst.score(&forest, &[0.95, 0.05]) < normal + 0.1);
        assert!(hst.score(&forest, &usual(7)) > 0.9);
    }

    #[test]
    fn min_max_scales_by_the_extremes_so_far() {
        let mut s = MinMax::default();
        let mut out = Vec::new();
        s.scale(&[5.0], &mut out);
        assert_eq!(out, vec![0.0], "nothing seen");
        s.learn(&[2.0, 7.0]);
        s.learn(&[4.0, 7.0]);
        s.scale(&[3.0, 7.0], &mut out);
        assert_eq!(out, vec![0.5, 0.0]);
        s.scale(&[6.0, 1.0], &mut out);
        assert_eq!(out, vec![2.0, 0.0]);
    }
}
