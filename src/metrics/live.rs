//! The live view of a running process: what its workers publish a few times a second for the
//! console's progress line, the Prometheus endpoint and the dashboard ([`crate::monitoring`]).
//!
//! Each worker copies a small [`WorkerLive`] out of its [`Ledger`] after a step (every
//! [`PUBLISH_EVERY`] at most) into its slot of the process's [`LiveMetrics`]; readers take
//! copies under a short lock. Nothing here is read back by the dataflow: it observes the run,
//! never steers it.

use super::Ledger;
use crate::checkpoint::protocol::CheckpointStats;
use crate::connectors::PartitionProgress;
use crate::deadletter::Reason;
use crate::time::EventTime;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often a worker publishes at most.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(200);

/// Upper bounds (seconds) of the processing-latency histogram's buckets, as exported to
/// Prometheus: 100 µs to a minute, about three per decade.
pub const LATENCY_BUCKETS: [f64; 18] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// What a run is, for the endpoint's labels and the dashboard's header.
#[derive(Clone, Debug, Default)]
pub struct RunInfo {
    /// The pipeline's name.
    pub pipeline: String,
    /// Where records come from, as the report says it.
    pub source: String,
    /// Where rows go.
    pub sink: String,
    /// This process's index in the mesh.
    pub process: usize,
    /// Processes in the mesh.
    pub processes: usize,
    /// Worker threads of this process.
    pub workers: usize,
    /// The execution's number (1, then one more after each restart by a supervisor).
    pub execution: u64,
}

/// Latency quantiles of a recent interval, ns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quantiles {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

/// One worker's counters and gauges as of its latest publication.
#[derive(Clone, Debug, Default)]
pub struct WorkerLive {
    /// Records read and accepted.
    pub events_in: u64,
    /// Rows written.
    pub rows_out: u64,
    /// Records that arrived behind the watermark.
    pub late: u64,
    /// Dead letters by reason (every reason, in report order).
    pub dead: Vec<(Reason, u64)>,
    /// Records the watermark has passed whose outputs are not complete yet.
    pub in_flight: u64,
    /// Records read that wait for the watermark to pass their event time.
    pub awaiting_watermark: u64,
    /// The most records that were in flight at once.
    pub max_in_flight: u64,
    /// Time the source spent paused by flow control.
    pub throttled: Duration,
    /// How far a paced source is behind its schedule at most.
    pub max_behind: Duration,
    /// The source's watermark (event time, ms).
    pub watermark: Option<EventTime>,
    /// How long ago, in wall-clock time, the watermark's event time was: against the paced
    /// source's schedule when there is one, else against the Unix clock.
    pub watermark_lag: Option<Duration>,
    /// The output frontier: event time the outputs are complete up to (ms).
    pub frontier: Option<EventTime>,
    /// The latest interval's latency quantiles.
    pub recent: Option<Quantiles>,
    /// Processing-latency samples per [`LATENCY_BUCKETS`] bucket (not cumulative), the last
    /// entry counting those above the largest bound.
    pub latency_buckets: Vec<u64>,
    /// Sum of the latency samples, seconds.
    pub latency_sum: f64,
    /// How far the source has read each partition (Kafka).
    pub partitions: Vec<PartitionProgress>,
    /// The input has ended and every output is complete.
    pub done: bool,
}

impl WorkerLive {
    /// The worker's state from its ledger; `frontier` is its output probe's.
    pub fn from_ledger(ledger: &Ledger, frontier: Option<EventTime>, now: Instant) -> Self {
        let h = &ledger.latency;
        // One pass over the recorded values (not one scan of the histogram per bound).
        let mut buckets = vec![0u64; LATENCY_BUCKETS.len() + 1];
        for v in h.iter_recorded() {
            let secs = h.lowest_equivalent(v.value_iterated_to()) as f64 / 1e9;
            let slot = LATENCY_BUCKETS.partition_point(|&bound| bound < secs);
            buckets[slot] += v.count_at_value();
        }
        let recent = ledger
            .first_read
            .and_then(|origin| ledger.timeline.recent_quantiles_ns(origin, now));
        WorkerLive {
            events_in: ledger.events,
            rows_out: ledger.rows,
            late: ledger.late,
            dead: Reason::ALL
                .into_iter()
                .map(|r| (r, ledger.dead.get(r)))
                .collect(),
            in_flight: ledger.in_flight(),
            awaiting_watermark: ledger.awaiting_watermark(),
            max_in_flight: ledger.max_in_flight,
            throttled: ledger.paused,
            max_behind: ledger.max_behind,
            watermark: ledger.watermark,
            watermark_lag: watermark_lag(ledger, now),
            frontier,
            recent,
            latency_buckets: buckets,
            latency_sum: h.mean() * h.len() as f64 / 1e9,
            partitions: ledger.partitions.clone(),
            done: frontier.is_none() && ledger.finished.is_some(),
        }
    }

    /// Event time between the watermark and the output frontier, when both are known.
    pub fn output_behind(&self) -> Option<Duration> {
        let behind = self.watermark?.saturating_sub(self.frontier?);
        Some(Duration::from_millis(behind))
    }

    /// Dead letters of every reason.
    pub fn dead_letters(&self) -> u64 {
        self.dead.iter().map(|(_, n)| n).sum()
    }
}

/// Wall clock minus the wall-clock time the watermark stands for.
fn watermark_lag(ledger: &Ledger, now: Instant) -> Option<Duration> {
    if ledger.paced {
        return ledger
            .watermark_wall
            .map(|wall| now.saturating_duration_since(wall));
    }
    let watermark = Duration::from_millis(ledger.watermark?);
    let unix = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    Some(unix.saturating_sub(watermark))
}

/// The live view of one process of a run.
pub struct LiveMetrics {
    info: RunInfo,
    started: Instant,
    workers: Vec<Mutex<WorkerLive>>,
    checkpoints: Mutex<Option<CheckpointStats>>,
    /// Events read, per worker, also kept as atomics for the progress line.
    events: Vec<AtomicU64>,
    running: AtomicBool,
    done: AtomicBool,
}

impl std::fmt::Debug for LiveMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveMetrics")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A worker that panicked while publishing left a complete value behind: keep reading it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LiveMetrics {
    /// The view of a process described by `info` (`info.workers` slots).
    pub fn new(info: RunInfo) -> Arc<Self> {
        let workers = info.workers.max(1);
        Arc::new(LiveMetrics {
            info,
            started: Instant::now(),
            workers: (0..workers)
                .map(|_| Mutex::new(WorkerLive::default()))
                .collect(),
            checkpoints: Mutex::new(None),
            events: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            running: AtomicBool::new(false),
            done: AtomicBool::new(false),
        })
    }

    /// What the run is.
    pub fn info(&self) -> &RunInfo {
        &self.info
    }

    /// How long ago the view was made.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Local worker `slot` publishes its state.
    pub fn publish(&self, slot: usize, state: WorkerLive) {
        if let Some(e) = self.events.get(slot) {
            e.store(state.events_in, Ordering::Relaxed);
        }
        if let Some(w) = self.workers.get(slot) {
            *lock(w) = state;
        }
    }

    /// The process's first worker publishes what it knows of the checkpoints.
    pub fn publish_checkpoints(&self, state: CheckpointStats) {
        *lock(&self.checkpoints) = Some(state);
    }

    /// Every local worker's latest state.
    pub fn workers(&self) -> Vec<WorkerLive> {
        self.workers.iter().map(|w| lock(w).clone()).collect()
    }

    /// The checkpoints, when the run takes them.
    pub fn checkpoints(&self) -> Option<CheckpointStats> {
        lock(&self.checkpoints).clone()
    }

    /// Events read by the process's workers so far.
    pub fn events(&self) -> u64 {
        self.events.iter().map(|e| e.load(Ordering::Relaxed)).sum()
    }

    /// The worst of the workers' latest-interval 99th percentiles, ns.
    pub fn p99_ns(&self) -> Option<u64> {
        self.workers
            .iter()
            .filter_map(|w| lock(w).recent.map(|q| q.p99))
            .max()
    }

    /// The dataflow is built and the workers step it.
    pub fn set_running(&self) {
        self.running.store(true, Ordering::Relaxed);
    }

    /// Whether the dataflow runs (readiness).
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Relaxed) && !self.is_done()
    }

    /// The process's part of the run is over.
    pub fn set_done(&self) {
        self.done.store(true, Ordering::Relaxed);
    }

    /// Whether the process's part of the run is over.
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricsConfig;

    #[test]
    fn buckets_count_each_sample_once() {
        let mut ledger = Ledger::new(MetricsConfig::default());
        for ns in [50_000u64, 200_000, 900_000, 3_000_000, 90_000_000_000] {
            ledger.latency.record(ns).unwrap();
        }
        let live = WorkerLive::from_ledger(&ledger, Some(0), Instant::now());
        assert_eq!(live.latency_buckets.len(), LATENCY_BUCKETS.len() + 1);
        assert_eq!(live.latency_buckets.iter().sum::<u64>(), 5);
        // 50 µs ≤ 100 µs; 200 µs ≤ 250 µs; 900 µs ≤ 1 ms; 3 ms ≤ 5 ms; 90 s above a minute.
        assert_eq!(live.latency_buckets[0], 1);
        assert_eq!(live.latency_buckets[1], 1);
        assert_eq!(live.latency_buckets[3], 1);
        assert_eq!(live.latency_buckets[5], 1);
        assert_eq!(live.latency_buckets[LATENCY_BUCKETS.len()], 1);
        // The histogram keeps three significant digits: the sum is as precise.
        let exact = 90.004_15;
        assert!(
            (live.latency_sum - exact).abs() < exact * 1e-3,
            "{}",
            live.latency_sum
        );
    }

    #[test]
    fn the_process_sums_its_workers() {
        let live = LiveMetrics::new(RunInfo {
            workers: 2,
            ..RunInfo::default()
        });
        let at = |events_in, p99| WorkerLive {
            events_in,
            recent: Some(Quantiles {
                p50: 1,
                p99,
                max: p99,
            }),
            ..WorkerLive::default()
        };
        live.publish(0, at(10, 5));
        live.publish(1, at(32, 9));
        assert_eq!(live.events(), 42);
        assert_eq!(live.p99_ns(), Some(9));
        assert!(!live.is_running());
        live.set_running();
        assert!(live.is_running());
        live.set_done();
        assert!(!live.is_running());
    }
}
