//! The dashboard's data: a snapshot of the process's live view with a history of one point a
//! second (throughput, latency, watermark lag, in flight), as JSON for the page that
//! `assets/` holds — plain HTML, CSS and JavaScript, embedded in the binary, no build step.

use crate::checkpoint::protocol::CheckpointStats;
use crate::metrics::live::{LiveMetrics, WorkerLive};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

/// The page.
pub const INDEX_HTML: &str = include_str!("assets/index.html");
/// Its script.
pub const DASHBOARD_JS: &str = include_str!("assets/dashboard.js");
/// Its style sheet.
pub const DASHBOARD_CSS: &str = include_str!("assets/dashboard.css");

/// Points of history kept (ten minutes at one a second).
pub const HISTORY: usize = 600;

/// One second of history.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Point {
    /// Seconds since the process started the run.
    pub t: f64,
    /// Records read per second over the last second.
    pub events_per_s: f64,
    /// Rows written per second over the last second.
    pub rows_per_s: f64,
    /// The workers' worst latest-interval median, ms.
    pub p50_ms: Option<f64>,
    /// The workers' worst latest-interval 99th percentile, ms.
    pub p99_ms: Option<f64>,
    /// Wall clock minus the slowest watermark, s.
    pub watermark_lag_s: Option<f64>,
    /// The largest gap between a worker's watermark and its output frontier, event-time s.
    pub output_behind_s: Option<f64>,
    /// Records in flight, all workers.
    pub in_flight: u64,
}

/// The process's totals.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    events_in: u64,
    rows_out: u64,
    late: u64,
    dead_letters: u64,
    events_per_s: f64,
    rows_per_s: f64,
}

/// Latency of the latest interval, ms (the workers' worst).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
}

/// One worker's row of the load table.
#[derive(Clone, Debug, Serialize)]
pub struct WorkerRow {
    worker: usize,
    events_in: u64,
    rows_out: u64,
    events_per_s: f64,
    in_flight: u64,
    throttled_s: f64,
    watermark_ms: Option<u64>,
    frontier_ms: Option<u64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
}

/// The checkpoints panel.
#[derive(Clone, Debug, Serialize)]
pub struct Checkpoints {
    completed: u64,
    abandoned: u64,
    last_epoch_ms: Option<u64>,
    last_duration_ms: Option<f64>,
    last_bytes: Option<u64>,
    age_s: Option<f64>,
}

impl From<CheckpointStats> for Checkpoints {
    fn from(c: CheckpointStats) -> Self {
        Checkpoints {
            completed: c.completed,
            abandoned: c.abandoned,
            last_epoch_ms: c.last_epoch,
            last_duration_ms: c.last_duration.map(|d| d.as_secs_f64() * 1e3),
            last_bytes: c.last_bytes,
            age_s: c.last_at.map(|at| at.elapsed().as_secs_f64()),
        }
    }
}

/// What `/api/snapshot` answers.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    pipeline: String,
    source: String,
    sink: String,
    process: usize,
    processes: usize,
    /// Worker threads of this process (`workers` is their rows).
    worker_count: usize,
    execution: u64,
    restarts: u64,
    uptime_s: f64,
    state: &'static str,
    totals: Totals,
    dead_letters: BTreeMap<&'static str, u64>,
    latency: Latency,
    watermark_ms: Option<u64>,
    frontier_ms: Option<u64>,
    watermark_lag_s: Option<f64>,
    output_behind_s: Option<f64>,
    in_flight: u64,
    throttled_s: f64,
    #[serde(rename = "workers")]
    worker_rows: Vec<WorkerRow>,
    checkpoints: Option<Checkpoints>,
    history: VecDeque<Point>,
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// The slowest watermark, the largest output gap, and the worst recent quantiles of `workers`.
struct Across {
    watermark: Option<u64>,
    frontier: Option<u64>,
    behind_s: Option<f64>,
    lag_s: Option<f64>,
    p50: Option<f64>,
    p99: Option<f64>,
    max: Option<f64>,
}

fn across(workers: &[WorkerLive]) -> Across {
    let worst = |f: fn(&WorkerLive) -> Option<u64>| workers.iter().filter_map(f).max().map(ms);
    Across {
        watermark: workers.iter().filter_map(|w| w.watermark).min(),
        frontier: workers.iter().filter_map(|w| w.frontier).min(),
        behind_s: workers
            .iter()
            .filter_map(WorkerLive::output_behind)
            .max()
            .map(|d| d.as_secs_f64()),
        lag_s: workers
            .iter()
            .filter_map(|w| w.watermark_lag)
            .max()
            .map(|d| d.as_secs_f64()),
        p50: worst(|w| w.recent.map(|q| q.p50)),
        p99: worst(|w| w.recent.map(|q| q.p99)),
        max: worst(|w| w.recent.map(|q| q.max)),
    }
}

/// The history, sampled once a second by the endpoint's thread.
#[derive(Default)]
pub struct History {
    points: VecDeque<Point>,
    /// The previous sample: when, and each worker's events and rows then.
    last: Option<(Instant, Vec<(u64, u64)>)>,
    /// Each worker's events and rows per second over the last second.
    rates: Vec<(f64, f64)>,
}

impl History {
    /// Takes a point from `live`.
    pub fn sample(&mut self, live: &LiveMetrics, now: Instant) {
        let workers = live.workers();
        let counts: Vec<(u64, u64)> = workers.iter().map(|w| (w.events_in, w.rows_out)).collect();
        if let Some((at, before)) = &self.last {
            let secs = now.saturating_duration_since(*at).as_secs_f64().max(1e-3);
            self.rates = counts
                .iter()
                .zip(before)
                .map(|(c, b)| {
                    (
                        c.0.saturating_sub(b.0) as f64 / secs,
                        c.1.saturating_sub(b.1) as f64 / secs,
                    )
                })
                .collect();
        }
        self.last = Some((now, counts));
        let a = across(&workers);
        let point = Point {
            t: live.uptime().as_secs_f64(),
            events_per_s: self.rates.iter().map(|r| r.0).sum(),
            rows_per_s: self.rates.iter().map(|r| r.1).sum(),
            p50_ms: a.p50,
            p99_ms: a.p99,
            watermark_lag_s: a.lag_s,
            output_behind_s: a.behind_s,
            in_flight: workers.iter().map(|w| w.in_flight).sum(),
        };
        if self.points.len() == HISTORY {
            self.points.pop_front();
        }
        self.points.push_back(point);
    }

    /// The snapshot `/api/snapshot` answers.
    pub fn snapshot(&self, live: &LiveMetrics) -> Snapshot {
        let info = live.info();
        let workers = live.workers();
        let a = across(&workers);
        let mut dead = BTreeMap::new();
        for w in &workers {
            for (reason, n) in &w.dead {
                if *n > 0 {
                    *dead.entry(reason.name()).or_insert(0) += n;
                }
            }
        }
        let rate = |slot: usize| self.rates.get(slot).copied().unwrap_or_default();
        let first = info.process * info.workers;
        let worker_rows = workers
            .iter()
            .enumerate()
            .map(|(slot, w)| WorkerRow {
                worker: first + slot,
                events_in: w.events_in,
                rows_out: w.rows_out,
                events_per_s: rate(slot).0,
                in_flight: w.in_flight,
                throttled_s: w.throttled.as_secs_f64(),
                watermark_ms: w.watermark,
                frontier_ms: w.frontier,
                p50_ms: w.recent.map(|q| ms(q.p50)),
                p99_ms: w.recent.map(|q| ms(q.p99)),
            })
            .collect();
        let state = if live.is_done() {
            "finished"
        } else if live.is_running() {
            "running"
        } else {
            "starting"
        };
        Snapshot {
            pipeline: info.pipeline.clone(),
            source: info.source.clone(),
            sink: info.sink.clone(),
            process: info.process,
            processes: info.processes,
            worker_count: info.workers,
            execution: info.execution,
            restarts: info.execution.saturating_sub(1),
            uptime_s: live.uptime().as_secs_f64(),
            state,
            totals: Totals {
                events_in: workers.iter().map(|w| w.events_in).sum(),
                rows_out: workers.iter().map(|w| w.rows_out).sum(),
                late: workers.iter().map(|w| w.late).sum(),
                dead_letters: workers.iter().map(WorkerLive::dead_letters).sum(),
                events_per_s: self.rates.iter().map(|r| r.0).sum(),
                rows_per_s: self.rates.iter().map(|r| r.1).sum(),
            },
            dead_letters: dead,
            latency: Latency {
                p50_ms: a.p50,
                p99_ms: a.p99,
                max_ms: a.max,
            },
            watermark_ms: a.watermark,
            frontier_ms: a.frontier,
            watermark_lag_s: a.lag_s,
            output_behind_s: a.behind_s,
            in_flight: workers.iter().map(|w| w.in_flight).sum(),
            throttled_s: workers.iter().map(|w| w.throttled.as_secs_f64()).sum(),
            worker_rows,
            checkpoints: live.checkpoints().map(Checkpoints::from),
            history: self.points.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::live::RunInfo;
    use std::time::Duration;

    #[test]
    fn rates_come_from_consecutive_samples() {
        let live = LiveMetrics::new(RunInfo {
            pipeline: "q1".into(),
            workers: 2,
            ..RunInfo::default()
        });
        let mut history = History::default();
        let t0 = Instant::now();
        history.sample(&live, t0);
        let w = |events_in, rows_out| WorkerLive {
            events_in,
            rows_out,
            watermark: Some(10_000),
            frontier: Some(7_500),
            ..WorkerLive::default()
        };
        live.publish(0, w(1000, 10));
        live.publish(1, w(3000, 30));
        history.sample(&live, t0 + Duration::from_secs(2));
        let snapshot = history.snapshot(&live);
        let json = serde_json::to_value(&snapshot).unwrap();
        assert_eq!(json["totals"]["events_in"], 4000);
        assert_eq!(json["totals"]["events_per_s"], 2000.0);
        assert_eq!(json["totals"]["rows_per_s"], 20.0);
        assert_eq!(json["workers"][1]["events_per_s"], 1500.0);
        assert_eq!(json["output_behind_s"], 2.5);
        assert_eq!(json["history"].as_array().unwrap().len(), 2);
        assert_eq!(json["state"], "starting");
        assert_eq!(json["checkpoints"], serde_json::Value::Null);
    }
}
