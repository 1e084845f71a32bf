//! The run report: per-worker figures, merged, printed as text or JSON, and the latency CCDF.

use super::histogram::new_histogram;
use super::ledger::Ledger;
use super::timeline::{self, EncodedInterval, TimelinePoint};
use crate::connectors::Position;
use crate::deadletter::DeadLetterCounts;
use crate::stop::StopCause;
use crate::time::{format_timestamp, EventTime};
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::time::Instant;

/// One worker's figures, in a form that can cross process boundaries.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerReport {
    /// Global worker index.
    pub worker: usize,
    /// Events read.
    pub events: u64,
    /// Events that arrived behind the watermark.
    pub late: u64,
    /// Dead letters by reason.
    pub dead: DeadLetterCounts,
    /// Rows written.
    pub rows: u64,
    /// Seconds from this worker's first read until its output frontier passed its last event.
    pub seconds: f64,
    /// Furthest behind schedule a paced source fell, ms.
    pub max_behind_ms: u64,
    /// Time the source was paused by flow control, ms.
    #[serde(default)]
    pub paused_ms: u64,
    /// The most records the source had in flight.
    #[serde(default)]
    pub max_in_flight: u64,
    /// Events released by the end of a paced input, not sampled for latency.
    pub unsampled: u64,
    /// Processing latency histogram (ns), V2-serialised.
    latency: Vec<u8>,
    /// Event-time lag histogram (ns), V2-serialised.
    lag: Vec<u8>,
    /// How far the worker's source read each partition (Kafka).
    pub positions: Vec<Position>,
    /// Timeline interval, ms.
    pub interval_ms: u64,
    /// Latency and memory per interval.
    pub timeline: Vec<EncodedInterval>,
    /// Events whose latency fell in the warm-up (not in the histograms).
    pub warmup_events: u64,
    /// The paced source gave up: it fell too far behind its schedule.
    pub gave_up: bool,
    /// Why the worker's input was ended early, if it was.
    pub stopped: Option<StopRecord>,
}

/// A worker's input ended by a stop request.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StopRecord {
    /// What asked: `SIGINT`, `SIGTERM`, `standard output closed`, …
    pub cause: String,
    /// Whether the request was made in the worker's own process (rather than heard from
    /// another process of the mesh).
    pub local: bool,
    /// The worker's watermark when its input ended, epoch ms.
    pub watermark: EventTime,
}

fn encode(h: &Histogram<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    // Serialising into a Vec only fails for histograms too large to encode; report it empty.
    if V2Serializer::new().serialize(h, &mut out).is_err() {
        out.clear();
    }
    out
}

fn decode(bytes: &[u8]) -> Histogram<u64> {
    if bytes.is_empty() {
        return new_histogram();
    }
    Deserializer::new()
        .deserialize(&mut &bytes[..])
        .unwrap_or_else(|_| new_histogram())
}

impl WorkerReport {
    /// The report of a finished worker whose source read up to `positions`.
    pub fn from_ledger(
        worker: usize,
        ledger: &Ledger,
        positions: Vec<Position>,
        end: Instant,
    ) -> Self {
        let start = ledger.first_read.unwrap_or(end);
        let finish = ledger.finished.unwrap_or(end);
        WorkerReport {
            worker,
            events: ledger.events,
            late: ledger.late,
            dead: ledger.dead.clone(),
            rows: ledger.rows,
            seconds: finish.saturating_duration_since(start).as_secs_f64(),
            max_behind_ms: ledger.max_behind.as_millis() as u64,
            paused_ms: ledger.paused.as_millis() as u64,
            max_in_flight: ledger.max_in_flight,
            unsampled: ledger.unsampled,
            latency: encode(&ledger.latency),
            lag: encode(&ledger.lag),
            positions,
            interval_ms: ledger.timeline.interval().as_millis() as u64,
            timeline: ledger.timeline.encode(),
            warmup_events: ledger.warmup_events,
            gave_up: ledger.gave_up,
            stopped: ledger
                .stopped
                .as_ref()
                .map(|(cause, watermark)| StopRecord {
                    cause: cause.to_string(),
                    local: *cause != StopCause::Peer,
                    watermark: *watermark,
                }),
        }
    }

    /// Events per second of this worker.
    pub fn events_per_second(&self) -> f64 {
        rate(self.events, self.seconds)
    }
}

fn rate(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// Percentiles of a latency histogram, in microseconds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    /// Samples (events).
    pub samples: u64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest sample.
    pub max_us: f64,
}

impl Percentiles {
    /// The percentiles of `h` (ns samples).
    pub fn of(h: &Histogram<u64>) -> Option<Self> {
        if h.is_empty() {
            return None;
        }
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Some(Percentiles {
            samples: h.len(),
            p50_us: us(0.5),
            p90_us: us(0.9),
            p99_us: us(0.99),
            p999_us: us(0.999),
            max_us: h.max() as f64 / 1000.0,
        })
    }
}

/// The whole run's figures: every worker's, merged.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// Query name.
    pub query: String,
    /// Source label.
    pub source: String,
    /// What processing latency is measured from (`read`, `scheduled arrival`, `Kafka record
    /// timestamp`).
    pub latency_from: String,
    /// Processes in the mesh.
    pub processes: usize,
    /// Workers in the mesh.
    pub workers: usize,
    /// Events read by all workers.
    pub events: u64,
    /// Late events.
    pub late: u64,
    /// Dead letters by reason.
    pub dead_letters: DeadLetterCounts,
    /// Rows written by all workers.
    pub rows: u64,
    /// Seconds of the slowest worker.
    pub seconds: f64,
    /// All events over the slowest worker's time.
    pub events_per_second: f64,
    /// `events_per_second / workers`.
    pub events_per_second_per_worker: f64,
    /// Processing latency percentiles.
    pub processing_latency: Option<Percentiles>,
    /// Event-time lag percentiles (paced sources only).
    pub event_time_lag: Option<Percentiles>,
    /// Furthest behind schedule any paced source fell, ms (0 = kept up).
    pub max_behind_ms: u64,
    /// Flow control: the longest any worker's source was paused because the dataflow (or the
    /// sink) had not finished what it had in flight, ms.
    pub paused_ms: u64,
    /// Flow control: the most records any worker's source had in flight.
    pub max_in_flight: u64,
    /// Events not sampled for latency (released by the end of a paced input).
    pub unsampled_events: u64,
    /// Per-worker figures.
    pub per_worker: Vec<WorkerSummary>,
    /// Next offset per partition read (Kafka sources), by partition.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub positions: Vec<Position>,
    /// Events whose latency fell in the warm-up, left out of the percentiles.
    pub warmup_events: u64,
    /// A paced source fell too far behind its schedule and ended the input early: the rate
    /// could not be sustained.
    pub gave_up: bool,
    /// Per-interval latency, throughput and memory.
    pub timeline: Vec<TimelinePoint>,
    /// The input was ended early by a stop request (a signal, a closed stdout): its cause,
    /// and the lowest watermark of any worker then — windows ending after it fired with the
    /// records read so far, as at the end of a bounded input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<StopRecord>,
    #[serde(skip)]
    latency: Histogram<u64>,
}

/// A worker's line in the report.
#[derive(Clone, Debug, Serialize)]
pub struct WorkerSummary {
    /// Global worker index.
    pub worker: usize,
    /// Events read.
    pub events: u64,
    /// Events per second.
    pub events_per_second: f64,
    /// Processing latency percentiles of this worker.
    pub processing_latency: Option<Percentiles>,
}

/// A paced source that ends further behind schedule than this did not keep up.
pub const KEPT_UP_MS: u64 = 1000;

impl RunReport {
    /// Merges worker reports (any order).
    pub fn merge(
        query: &str,
        source: &str,
        latency_from: &str,
        processes: usize,
        mut reports: Vec<WorkerReport>,
    ) -> Self {
        reports.sort_by_key(|r| r.worker);
        let mut latency = new_histogram();
        let mut lag = new_histogram();
        let mut dead = DeadLetterCounts::default();
        let mut per_worker = Vec::new();
        for r in &reports {
            let l = decode(&r.latency);
            // Histograms auto-resize, so adding cannot fail for range reasons.
            let _ = latency.add(&l);
            let _ = lag.add(decode(&r.lag));
            dead.merge(&r.dead);
            per_worker.push(WorkerSummary {
                worker: r.worker,
                events: r.events,
                events_per_second: r.events_per_second(),
                processing_latency: Percentiles::of(&l),
            });
        }
        let interval = std::time::Duration::from_millis(
            reports.first().map_or(1000, |r| r.interval_ms.max(1)),
        );
        let timelines: Vec<&[EncodedInterval]> =
            reports.iter().map(|r| r.timeline.as_slice()).collect();
        let timeline = timeline::merge(interval, &timelines);
        let mut positions: Vec<Position> = reports
            .iter()
            .flat_map(|r| r.positions.iter().copied())
            .collect();
        positions.sort();
        let events = reports.iter().map(|r| r.events).sum();
        let seconds = reports.iter().map(|r| r.seconds).fold(0.0, f64::max);
        let workers = reports.len().max(1);
        RunReport {
            query: query.to_string(),
            source: source.to_string(),
            latency_from: latency_from.to_string(),
            processes,
            workers,
            events,
            late: reports.iter().map(|r| r.late).sum(),
            dead_letters: dead,
            rows: reports.iter().map(|r| r.rows).sum(),
            seconds,
            events_per_second: rate(events, seconds),
            events_per_second_per_worker: rate(events, seconds) / workers as f64,
            processing_latency: Percentiles::of(&latency),
            event_time_lag: Percentiles::of(&lag),
            max_behind_ms: reports.iter().map(|r| r.max_behind_ms).max().unwrap_or(0),
            paused_ms: reports.iter().map(|r| r.paused_ms).max().unwrap_or(0),
            max_in_flight: reports.iter().map(|r| r.max_in_flight).max().unwrap_or(0),
            unsampled_events: reports.iter().map(|r| r.unsampled).sum(),
            per_worker,
            positions,
            warmup_events: reports.iter().map(|r| r.warmup_events).sum(),
            gave_up: reports.iter().any(|r| r.gave_up),
            timeline,
            stopped: merge_stops(&reports),
            latency,
        }
    }

    /// Input records rejected as unreadable (dead letters other than `late` and `duplicate`).
    pub fn rejected(&self) -> u64 {
        self.dead_letters.total() - self.dead_letters.late - self.dead_letters.duplicate
    }

    /// Input records read: events plus the rejected ones.
    pub fn records_read(&self) -> u64 {
        self.events + self.rejected()
    }

    /// Whether the run's input was ended by a stop request.
    pub fn was_stopped(&self) -> bool {
        self.stopped.is_some()
    }

    /// The merged processing-latency histogram (ns).
    pub fn latency_histogram(&self) -> &Histogram<u64> {
        &self.latency
    }

    /// The report as human-readable text.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "sluice {} from {}: {} events in {:.3} s on {} worker(s) in {} process(es): {} events/s, {} events/s per worker",
            self.query,
            self.source,
            self.events,
            self.seconds,
            self.workers,
            self.processes,
            si(self.events_per_second),
            si(self.events_per_second_per_worker),
        );
        let per: Vec<String> = self
            .per_worker
            .iter()
            .map(|w| format!("w{} {}", w.worker, si(w.events_per_second)))
            .collect();
        let _ = writeln!(s, "  per worker events/s: {}", per.join(", "));
        let dead: Vec<String> = self
            .dead_letters
            .nonzero()
            .map(|(r, n)| format!("{} {}", r.name(), n))
            .collect();
        let _ = writeln!(
            s,
            "  rows out {}; late events {}; dead letters {}{}",
            self.rows,
            self.late,
            self.dead_letters.total(),
            if dead.is_empty() {
                String::new()
            } else {
                format!(" ({})", dead.join(", "))
            }
        );
        let line = |name: &str, p: &Option<Percentiles>| match p {
            Some(p) => format!(
                "  {name}: p50 {} p90 {} p99 {} p99.9 {} max {} ({} events)",
                dur(p.p50_us),
                dur(p.p90_us),
                dur(p.p99_us),
                dur(p.p999_us),
                dur(p.max_us),
                p.samples
            ),
            None => format!("  {name}: n/a"),
        };
        let _ = writeln!(
            s,
            "{}",
            line(
                &format!("processing latency (from {})", self.latency_from),
                &self.processing_latency
            )
        );
        if self.unsampled_events > 0 {
            let _ = writeln!(
                s,
                "    ({} events released by the end of a paced or stopped input, not by the watermark, were not sampled)",
                self.unsampled_events
            );
        }
        match &self.event_time_lag {
            Some(_) => {
                let _ = writeln!(s, "{}", line("event-time lag", &self.event_time_lag));
            }
            None => {
                let _ = writeln!(
                    s,
                    "  event-time lag: n/a (measured only for sources paced to the wall clock, once the watermark advances)"
                );
            }
        }
        if self.warmup_events > 0 {
            let _ = writeln!(
                s,
                "    ({} events settled during the warm-up were left out of the percentiles)",
                self.warmup_events
            );
        }
        let p99s: Vec<f64> = self.timeline.iter().filter_map(|p| p.p99_us).collect();
        let rss = self
            .timeline
            .iter()
            .filter_map(|p| p.rss_mib)
            .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
        if !p99s.is_empty() {
            let lo = p99s.iter().copied().fold(f64::MAX, f64::min);
            let hi = p99s.iter().copied().fold(0.0, f64::max);
            let _ = writeln!(
                s,
                "  timeline: {} intervals; p99 per interval {} to {}{}",
                self.timeline.len(),
                dur(lo),
                dur(hi),
                rss.map_or(String::new(), |r| format!("; peak RSS {r:.1} MiB"))
            );
        }
        if self.paused_ms > 0 {
            let share = if self.seconds > 0.0 {
                format!(
                    " ({:.0} % of the run)",
                    self.paused_ms as f64 / 10.0 / self.seconds
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "  flow control: a source paused {}{share}, at most {} records in flight: the dataflow or sink set the pace",
                dur(self.paused_ms as f64 * 1000.0),
                self.max_in_flight
            );
        }
        if !self.positions.is_empty() {
            let next: Vec<String> = self
                .positions
                .iter()
                .map(|p| format!("p{} {}", p.partition, p.next_offset))
                .collect();
            let _ = writeln!(s, "  next offset per partition: {}", next.join(", "));
        }
        if let Some(stop) = &self.stopped {
            let at = match stop.watermark {
                0 => "before the watermark advanced".to_string(),
                w => format!("at watermark {}", format_timestamp(w)),
            };
            let _ = writeln!(
                s,
                "  STOPPED ({}): the input was ended {at}; windows ending after that fired with the records read so far",
                stop.cause,
            );
        }
        if self.gave_up {
            let _ = writeln!(
                s,
                "  STOPPED EARLY: the paced source fell more than the allowed distance behind its schedule; this rate cannot be sustained"
            );
        }
        if self.max_behind_ms > KEPT_UP_MS {
            let _ = writeln!(
                s,
                "  WARNING: the paced source fell {} ms behind its schedule: the rate was not sustained",
                self.max_behind_ms
            );
        }
        s
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// The stop of a mesh: the cause asked in some process (else a peer's), and the lowest
/// watermark at which any worker's input ended.
fn merge_stops(reports: &[WorkerReport]) -> Option<StopRecord> {
    let stops: Vec<&StopRecord> = reports.iter().filter_map(|r| r.stopped.as_ref()).collect();
    let first = stops.iter().find(|s| s.local).or(stops.first())?;
    Some(StopRecord {
        cause: first.cause.clone(),
        local: first.local,
        watermark: stops.iter().map(|s| s.watermark).min().unwrap_or(0),
    })
}

/// A latency histogram's CCDF as TSV: `latency_ns<TAB>fraction of events at or above it`.
pub fn ccdf_tsv(h: &Histogram<u64>) -> String {
    let mut s = String::from("latency_ns\tccdf\n");
    let total = h.len() as f64;
    let mut below = 0u64;
    for v in h.iter_recorded() {
        let _ = writeln!(
            s,
            "{}\t{:.9}",
            h.lowest_equivalent(v.value_iterated_to()),
            (total - below as f64) / total
        );
        below += v.count_at_value();
    }
    s
}

/// `1234567.0` → `1.23 M`.
/// A count or rate in SI units: `950`, `12.3 K`, `4.56 M`, `1.20 G`.
pub fn si(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2} G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} K", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// Microseconds in a readable unit.
/// A duration given in µs, in the unit that suits it: `42µs`, `3.10ms`, `1.25s`.
pub fn dur(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.2}s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{us:.0}µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_workers_and_round_trips_histograms() {
        let now = Instant::now();
        let mut a = Ledger::default();
        a.events = 10;
        a.latency.record_n(1_000, 10).unwrap();
        let mut b = Ledger::default();
        b.events = 30;
        b.latency.record_n(3_000_000, 30).unwrap();
        let reports = vec![
            WorkerReport::from_ledger(1, &b, Vec::new(), now),
            WorkerReport::from_ledger(0, &a, Vec::new(), now),
        ];
        let json = serde_json::to_string(&reports).unwrap();
        let back: Vec<WorkerReport> = serde_json::from_str(&json).unwrap();
        let run = RunReport::merge("q0", "nexmark", "read", 1, back);
        assert_eq!(run.events, 40);
        assert_eq!(run.workers, 2);
        assert_eq!(run.per_worker[0].worker, 0);
        let p = run.processing_latency.clone().unwrap();
        assert_eq!(p.samples, 40);
        assert!((p.p50_us - 3000.0).abs() / 3000.0 < 0.01, "{p:?}");
        let text = run.to_text();
        assert!(text.contains("p99"), "{text}");
        let ccdf = ccdf_tsv(run.latency_histogram());
        assert!(
            ccdf.lines().nth(1).unwrap().ends_with("\t1.000000000"),
            "{ccdf}"
        );
    }
}
