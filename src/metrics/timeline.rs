//! The latency timeline: a small histogram per fixed wall-clock interval of the run (events
//! settled, processing latency, the process's resident memory), so a report shows how latency
//! and memory moved over time — a warm-up, a stall, a slow leak — not only the whole run's
//! percentiles.
//!
//! Interval `i` covers `[origin + i·interval, origin + (i+1)·interval)` where the origin is the
//! worker's first read. Histograms here are coarser than the run's (1 µs to 1 h, 2 significant
//! digits) so that one per second stays cheap; they travel V2-serialised in worker reports and
//! are merged interval by interval.

use super::live::Quantiles;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// The default timeline interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

fn coarse_histogram() -> Histogram<u64> {
    // Fixed, valid bounds and precision: construction cannot fail.
    Histogram::new_with_bounds(1_000, super::histogram::MAX_TRACKED_NS, 2)
        .unwrap_or_else(|_| unreachable!("1 µs .. 1 h at 2 significant figures is valid"))
}

/// The interval being filled.
struct Interval {
    index: usize,
    events: u64,
    latency: Histogram<u64>,
    rss_bytes: Option<u64>,
}

impl Interval {
    fn new(index: usize) -> Self {
        Interval {
            index,
            events: 0,
            latency: coarse_histogram(),
            rss_bytes: None,
        }
    }

    fn encode(&self) -> EncodedInterval {
        EncodedInterval {
            events: self.events,
            latency: encode_histogram(&self.latency),
            rss_bytes: self.rss_bytes,
        }
    }
}

fn encode_histogram(h: &Histogram<u64>) -> Vec<u8> {
    let mut bytes = Vec::new();
    if !h.is_empty() && V2Serializer::new().serialize(h, &mut bytes).is_err() {
        bytes.clear();
    }
    bytes
}

fn decode_histogram(bytes: &[u8]) -> Option<Histogram<u64>> {
    if bytes.is_empty() {
        return None;
    }
    Deserializer::new()
        .deserialize::<u64, _>(&mut &bytes[..])
        .ok()
}

fn quantiles(h: &Histogram<u64>) -> Quantiles {
    Quantiles {
        p50: h.value_at_quantile(0.5),
        p99: h.value_at_quantile(0.99),
        max: h.max(),
    }
}

/// A worker's timeline: one open interval as a histogram, the closed ones V2-encoded (tens of
/// bytes each instead of the histogram's ~25 KiB), so a run of days stays small.
pub struct Timeline {
    interval: Duration,
    closed: Vec<EncodedInterval>,
    open: Option<Interval>,
    /// The quantiles of the latest closed interval with samples, and its index.
    closed_quantiles: Option<(usize, Quantiles)>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::new(DEFAULT_INTERVAL)
    }
}

impl Timeline {
    /// An empty timeline of `interval`-long intervals.
    pub fn new(interval: Duration) -> Self {
        Timeline {
            interval: interval.max(Duration::from_millis(10)),
            closed: Vec::new(),
            open: None,
            closed_quantiles: None,
        }
    }

    /// The interval length.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    fn index(&self, origin: Instant, at: Instant) -> usize {
        (at.saturating_duration_since(origin).as_nanos() / self.interval.as_nanos()) as usize
    }

    /// Closes the open interval, if any.
    fn close(&mut self) {
        let Some(open) = self.open.take() else { return };
        if !open.latency.is_empty() {
            self.closed_quantiles = Some((open.index, quantiles(&open.latency)));
        }
        if self.closed.len() < open.index {
            self.closed.resize(open.index, EncodedInterval::default());
        }
        self.closed.push(open.encode());
    }

    /// Applies `update` to interval `i`: the open one, a new one (closing the open one), or —
    /// for a caller whose clock reading is older than the open interval — a closed one,
    /// decoded and encoded again.
    fn update(&mut self, i: usize, update: impl FnOnce(&mut Interval)) {
        match &self.open {
            Some(open) if open.index == i => {}
            Some(open) if i < open.index => {
                let mut past = Interval::new(i);
                if let Some(slot) = self.closed.get(i) {
                    past.events = slot.events;
                    past.rss_bytes = slot.rss_bytes;
                    if let Some(h) = decode_histogram(&slot.latency) {
                        let _ = past.latency.add(&h);
                    }
                }
                update(&mut past);
                if self.closed.len() <= i {
                    self.closed.resize(i + 1, EncodedInterval::default());
                }
                self.closed[i] = past.encode();
                return;
            }
            _ => {
                self.close();
                self.open = Some(Interval::new(i));
            }
        }
        if let Some(open) = self.open.as_mut() {
            update(open);
        }
    }

    /// Records `events` settled at `at` with latency `ns` each.
    pub fn record(&mut self, origin: Instant, at: Instant, ns: u64, events: u64) {
        let i = self.index(origin, at);
        self.update(i, |slot| {
            slot.events += events;
            slot.latency.saturating_record_n(ns.max(1_000), events);
        });
    }

    /// Records the process's resident memory as sampled at `at`.
    pub fn record_rss(&mut self, origin: Instant, at: Instant, bytes: u64) {
        let i = self.index(origin, at);
        self.update(i, |slot| {
            slot.rss_bytes = Some(slot.rss_bytes.map_or(bytes, |b| b.max(bytes)));
        });
    }

    /// The latency quantiles of the latest complete interval with samples before `at` (for
    /// progress lines and the live view).
    pub fn recent_quantiles_ns(&self, origin: Instant, at: Instant) -> Option<Quantiles> {
        let current = self.index(origin, at);
        if let Some(open) = &self.open {
            if open.index < current && !open.latency.is_empty() {
                return Some(quantiles(&open.latency));
            }
        }
        self.closed_quantiles
            .filter(|&(i, _)| i < current)
            .map(|(_, q)| q)
    }

    /// The timeline as it travels in a worker report.
    pub fn encode(&self) -> Vec<EncodedInterval> {
        let mut all = self.closed.clone();
        if let Some(open) = &self.open {
            if all.len() < open.index {
                all.resize(open.index, EncodedInterval::default());
            }
            if all.len() == open.index {
                all.push(open.encode());
            }
        }
        all
    }
}

/// One interval of a worker's timeline, serialisable.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EncodedInterval {
    /// Events settled.
    pub events: u64,
    /// Latency histogram (ns), V2-serialised; empty when no samples.
    pub latency: Vec<u8>,
    /// The process's RSS, when this worker sampled it.
    pub rss_bytes: Option<u64>,
}

/// One interval of the merged timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelinePoint {
    /// End of the interval, seconds since the first read.
    pub t_s: f64,
    /// Events settled in the interval (all workers).
    pub events: u64,
    /// Events settled per second.
    pub events_per_second: f64,
    /// Median processing latency, µs (`None`: no samples).
    pub p50_us: Option<f64>,
    /// 99th percentile, µs.
    pub p99_us: Option<f64>,
    /// Largest, µs.
    pub max_us: Option<f64>,
    /// Resident memory of all processes, MiB (`None`: not sampled).
    pub rss_mib: Option<f64>,
}

/// Merges workers' timelines interval by interval (RSS summed over the processes that sampled).
pub fn merge(interval: Duration, workers: &[&[EncodedInterval]]) -> Vec<TimelinePoint> {
    let len = workers.iter().map(|w| w.len()).max().unwrap_or(0);
    let secs = interval.as_secs_f64();
    (0..len)
        .map(|i| {
            let mut latency = coarse_histogram();
            let mut events = 0;
            let mut rss: Option<u64> = None;
            for w in workers {
                let Some(slot) = w.get(i) else { continue };
                events += slot.events;
                if let Some(h) = decode_histogram(&slot.latency) {
                    // Same bounds on both sides: adding cannot fail.
                    let _ = latency.add(&h);
                }
                if let Some(b) = slot.rss_bytes {
                    rss = Some(rss.unwrap_or(0) + b);
                }
            }
            let us = |ns: u64| ns as f64 / 1000.0;
            let q = |q: f64| (!latency.is_empty()).then(|| us(latency.value_at_quantile(q)));
            TimelinePoint {
                t_s: (i + 1) as f64 * secs,
                events,
                events_per_second: events as f64 / secs,
                p50_us: q(0.5),
                p99_us: q(0.99),
                max_us: (!latency.is_empty()).then(|| us(latency.max())),
                rss_mib: rss.map(|b| b as f64 / (1024.0 * 1024.0)),
            }
        })
        .collect()
}

/// The resident set size of this process (the `memory-stats` crate: `/proc/self/statm` times the
/// real page size on Linux, the task info elsewhere); `None` where it cannot tell.
pub fn resident_bytes() -> Option<u64> {
    memory_stats::memory_stats().map(|m| m.physical_mem as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_merge_across_workers() {
        let origin = Instant::now();
        let mut a = Timeline::new(Duration::from_secs(1));
        let mut b = Timeline::new(Duration::from_secs(1));
        a.record(origin, origin + Duration::from_millis(200), 10_000, 5);
        b.record(origin, origin + Duration::from_millis(900), 30_000_000, 5);
        b.record(origin, origin + Duration::from_millis(2500), 50_000, 1);
        a.record_rss(origin, origin + Duration::from_millis(1500), 100 << 20);
        let (ea, eb) = (a.encode(), b.encode());
        let points = merge(Duration::from_secs(1), &[&ea, &eb]);
        assert_eq!(points.len(), 3);
        assert_eq!(points[0].events, 10);
        assert!((points[0].p99_us.unwrap() - 30_000.0).abs() < 400.0);
        // Two significant digits: within a few per cent.
        assert!(
            (points[0].p50_us.unwrap() - 10.0).abs() < 0.3,
            "{:?}",
            points[0]
        );
        assert_eq!(points[1].events, 0);
        assert_eq!(points[1].p50_us, None);
        assert_eq!(points[1].rss_mib, Some(100.0));
        assert_eq!(points[2].t_s, 3.0);
        assert_eq!(
            a.recent_quantiles_ns(origin, origin + Duration::from_millis(500)),
            None
        );
        let p99 = a
            .recent_quantiles_ns(origin, origin + Duration::from_millis(1100))
            .unwrap()
            .p99;
        assert!((9_900..=10_300).contains(&p99), "{p99}");
    }

    #[test]
    fn closed_intervals_are_kept_encoded_and_can_still_be_amended() {
        let origin = Instant::now();
        let mut t = Timeline::new(Duration::from_secs(1));
        for s in 0..600u64 {
            let at = origin + Duration::from_millis(s * 1000 + 500);
            t.record(origin, at, 1_000_000 * (s + 1), 10);
            t.record_rss(origin, at, 64 << 20);
        }
        // Only the last interval is a histogram; the others are a few dozen bytes each.
        let encoded: usize = t.closed.iter().map(|i| i.latency.len()).sum();
        assert_eq!(t.closed.len(), 599);
        assert!(encoded < 599 * 64, "{encoded} bytes");
        // A reading from an older clock lands in its own (closed) interval.
        t.record(origin, origin + Duration::from_millis(3_200), 7_000_000, 5);
        let points = merge(Duration::from_secs(1), &[&t.encode()]);
        assert_eq!(points.len(), 600);
        assert_eq!(points[3].events, 15);
        assert!((points[3].max_us.unwrap() - 7_000.0).abs() < 100.0);
        assert_eq!(points[599].events, 10);
        assert_eq!(points[599].rss_mib, Some(64.0));
    }

    #[test]
    fn this_process_has_a_resident_size() {
        if cfg!(target_os = "linux") {
            let rss = resident_bytes().unwrap();
            assert!(rss > 1 << 20);
            // The same figure as the kernel's own status line (VmRSS, in KiB), give or take
            // what the process allocates between the two reads.
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let kib: u64 = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap();
            assert!((rss / 1024).abs_diff(kib) < 4096, "{rss} vs {kib} KiB");
        }
    }
}
