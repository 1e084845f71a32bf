//! The process's live view in Prometheus's text format (OpenMetrics), encoded by the Prometheus
//! project's `prometheus-client` at each scrape from a copy of what the workers last published.
//!
//! Every sample carries `pipeline`, `process` and — for per-worker figures — `worker` (the
//! global index, as in the report); a mesh is summed in PromQL (`sum by (pipeline) (…)`).
//! README's "Operating Sluice" lists every metric.

use crate::connectors::PartitionProgress;
use crate::metrics::live::{LiveMetrics, WorkerLive, LATENCY_BUCKETS};
use crate::metrics::timeline::resident_bytes;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// The content type of [`encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(&'static str, String)>;

/// The collector: reads the live view at each scrape.
#[derive(Debug)]
struct Live(Arc<LiveMetrics>);

/// One metric family: its samples, each with its labels.
struct Family<'a, T> {
    name: &'a str,
    help: &'a str,
    kind: MetricType,
    samples: Vec<(Labels, T)>,
}

/// A sample's value.
enum Value {
    Counter(u64),
    CounterF(f64),
    Gauge(f64),
}

fn family(encoder: &mut DescriptorEncoder, f: Family<'_, Value>) -> Result<(), std::fmt::Error> {
    if f.samples.is_empty() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(f.name, f.help, None, f.kind)?;
    for (labels, value) in &f.samples {
        let mut sample = metric.encode_family(labels)?;
        match value {
            Value::Counter(n) => sample.encode_counter::<Labels, _, u64>(n, None)?,
            Value::CounterF(x) => sample.encode_counter::<Labels, _, f64>(x, None)?,
            Value::Gauge(x) => sample.encode_gauge(x)?,
        }
    }
    Ok(())
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let live = &self.0;
        let info = live.info();
        let base: Labels = vec![
            ("pipeline", info.pipeline.clone()),
            ("process", info.process.to_string()),
        ];
        {
            let mut labels = base.clone();
            labels.extend([
                ("source", info.source.clone()),
                ("sink", info.sink.clone()),
                ("processes", info.processes.to_string()),
                ("workers", info.workers.to_string()),
                ("execution", info.execution.to_string()),
                ("version", env!("CARGO_PKG_VERSION").to_string()),
            ]);
            encoder
                .encode_descriptor(
                    "sluice_run",
                    "The run: pipeline, source, sink, mesh",
                    None,
                    MetricType::Info,
                )?
                .encode_info(&labels)?;
        }
        let process = |name, help, kind, value| Family {
            name,
            help,
            kind,
            samples: vec![(base.clone(), value)],
        };
        family(
            &mut encoder,
            process(
                "sluice_restarts",
                "Times a supervisor restarted the mesh from its last checkpoint before this execution",
                MetricType::Counter,
                Value::Counter(info.execution.saturating_sub(1)),
            ),
        )?;
        family(
            &mut encoder,
            process(
                "sluice_uptime_seconds",
                "Seconds since this process started the run",
                MetricType::Gauge,
                Value::Gauge(live.uptime().as_secs_f64()),
            ),
        )?;
        if let Some(bytes) = resident_bytes() {
            family(
                &mut encoder,
                process(
                    "sluice_resident_memory_bytes",
                    "Resident memory of the process",
                    MetricType::Gauge,
                    Value::Gauge(bytes as f64),
                ),
            )?;
        }
        family(
            &mut encoder,
            process(
                "sluice_up",
                "1 while the dataflow runs, 0 before it starts and after it ends",
                MetricType::Gauge,
                Value::Gauge(f64::from(u8::from(live.is_running()))),
            ),
        )?;

        let workers = live.workers();
        let first = info.process * info.workers;
        let labelled = |slot: usize| {
            let mut labels = base.clone();
            labels.push(("worker", (first + slot).to_string()));
            labels
        };
        let per_worker = |name, help, kind, value: &dyn Fn(&WorkerLive) -> Option<Value>| Family {
            name,
            help,
            kind,
            samples: workers
                .iter()
                .enumerate()
                .filter_map(|(slot, w)| value(w).map(|v| (labelled(slot), v)))
                .collect(),
        };
        let families = [
            per_worker(
                "sluice_events_in",
                "Records read and accepted",
                MetricType::Counter,
                &|w| Some(Value::Counter(w.events_in)),
            ),
            per_worker(
                "sluice_rows_out",
                "Rows written to the sink",
                MetricType::Counter,
                &|w| Some(Value::Counter(w.rows_out)),
            ),
            per_worker(
                "sluice_late_events",
                "Records that arrived behind the watermark",
                MetricType::Counter,
                &|w| Some(Value::Counter(w.late)),
            ),
            per_worker(
                "sluice_in_flight_records",
                "Records the watermark has passed whose outputs are not complete yet (what flow control bounds)",
                MetricType::Gauge,
                &|w| Some(Value::Gauge(w.in_flight as f64)),
            ),
            per_worker(
                "sluice_awaiting_watermark_records",
                "Records read that wait for the watermark to pass their event time",
                MetricType::Gauge,
                &|w| Some(Value::Gauge(w.awaiting_watermark as f64)),
            ),
            per_worker(
                "sluice_max_in_flight_records",
                "The most records in flight at once so far",
                MetricType::Gauge,
                &|w| Some(Value::Gauge(w.max_in_flight as f64)),
            ),
            per_worker(
                "sluice_throttled_seconds",
                "Time the source spent paused by flow control",
                MetricType::Counter,
                &|w| Some(Value::CounterF(w.throttled.as_secs_f64())),
            ),
            per_worker(
                "sluice_source_behind_schedule_seconds",
                "How far a paced source fell behind its schedule at most",
                MetricType::Gauge,
                &|w| Some(Value::Gauge(w.max_behind.as_secs_f64())),
            ),
            per_worker(
                "sluice_watermark_seconds",
                "The source's watermark (event time, Unix seconds)",
                MetricType::Gauge,
                &|w| w.watermark.map(|t| Value::Gauge(t as f64 / 1e3)),
            ),
            per_worker(
                "sluice_output_frontier_seconds",
                "Event time up to which every output is complete (Unix seconds)",
                MetricType::Gauge,
                &|w| w.frontier.map(|t| Value::Gauge(t as f64 / 1e3)),
            ),
            per_worker(
                "sluice_watermark_lag_seconds",
                "Wall clock minus the time the watermark stands for (a paced source's schedule, else the Unix clock)",
                MetricType::Gauge,
                &|w| w.watermark_lag.map(|d| Value::Gauge(d.as_secs_f64())),
            ),
            per_worker(
                "sluice_output_behind_watermark_seconds",
                "Event time between the watermark and the output frontier",
                MetricType::Gauge,
                &|w| w.output_behind().map(|d| Value::Gauge(d.as_secs_f64())),
            ),
        ];
        for f in families {
            family(&mut encoder, f)?;
        }

        let dead = Family {
            name: "sluice_dead_letters",
            help: "Records rejected or dropped, by reason",
            kind: MetricType::Counter,
            samples: workers
                .iter()
                .enumerate()
                .flat_map(|(slot, w)| {
                    let labels = labelled(slot);
                    w.dead.iter().map(move |(reason, n)| {
                        let mut labels = labels.clone();
                        labels.push(("reason", reason.name().to_string()));
                        (labels, Value::Counter(*n))
                    })
                })
                .collect(),
        };
        family(&mut encoder, dead)?;

        // Per partition of a partitioned source (Kafka), labelled with its topic and number.
        let per_partition = |name, help, value: &dyn Fn(&PartitionProgress) -> Option<f64>| {
            let mut samples = Vec::new();
            for (slot, w) in workers.iter().enumerate() {
                for p in &w.partitions {
                    if let Some(v) = value(p) {
                        let mut labels = labelled(slot);
                        labels.push(("topic", p.topic.clone()));
                        labels.push(("partition", p.partition.to_string()));
                        samples.push((labels, Value::Gauge(v)));
                    }
                }
            }
            Family {
                name,
                help,
                kind: MetricType::Gauge,
                samples,
            }
        };
        for f in [
            per_partition(
                "sluice_partition_event_time_seconds",
                "The largest event time read from a partition (Unix seconds)",
                &|p| p.max_event_time.map(|t| t as f64 / 1e3),
            ),
            per_partition(
                "sluice_partition_next_offset",
                "The offset of the next record to read from a partition",
                &|p| p.next_offset.map(|o| o as f64),
            ),
            per_partition(
                "sluice_partition_idle",
                "1 while a partition is read to its end or silent beyond --idle-timeout (it does not hold the watermark back)",
                &|p| Some(f64::from(u8::from(p.idle))),
            ),
        ] {
            family(&mut encoder, f)?;
        }

        let recent = Family {
            name: "sluice_recent_latency_seconds",
            help: "Processing latency over the latest complete report interval, by quantile",
            kind: MetricType::Gauge,
            samples: workers
                .iter()
                .enumerate()
                .filter_map(|(slot, w)| Some((slot, w.recent?)))
                .flat_map(|(slot, q)| {
                    [("0.5", q.p50), ("0.99", q.p99), ("1", q.max)]
                        .into_iter()
                        .map(move |(quantile, ns)| {
                            let mut labels = labelled(slot);
                            labels.push(("quantile", quantile.to_string()));
                            (labels, Value::Gauge(ns as f64 / 1e9))
                        })
                })
                .collect(),
        };
        family(&mut encoder, recent)?;

        {
            let mut metric = encoder.encode_descriptor(
                "sluice_processing_latency_seconds",
                "From a record's release by the watermark to the completion of its outputs",
                None,
                MetricType::Histogram,
            )?;
            for (slot, w) in workers.iter().enumerate() {
                if w.latency_buckets.len() != LATENCY_BUCKETS.len() + 1 {
                    continue;
                }
                let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
                    .iter()
                    .copied()
                    .chain([f64::INFINITY])
                    .zip(w.latency_buckets.iter().copied())
                    .collect();
                let count = buckets.iter().map(|(_, n)| n).sum();
                let labels = labelled(slot);
                metric.encode_family(&labels)?.encode_histogram::<Labels>(
                    w.latency_sum,
                    count,
                    &buckets,
                    None,
                )?;
            }
        }

        if let Some(c) = live.checkpoints() {
            let mut families = vec![
                process(
                    "sluice_checkpoints_completed",
                    "Checkpoints completed (durable) in this execution",
                    MetricType::Counter,
                    Value::Counter(c.completed),
                ),
                process(
                    "sluice_checkpoints_abandoned",
                    "Checkpoints abandoned and named again later",
                    MetricType::Counter,
                    Value::Counter(c.abandoned),
                ),
            ];
            if let Some(epoch) = c.last_epoch {
                families.push(process(
                    "sluice_checkpoint_last_epoch_seconds",
                    "Event time of the newest completed checkpoint (Unix seconds)",
                    MetricType::Gauge,
                    Value::Gauge(epoch as f64 / 1e3),
                ));
            }
            if let Some(d) = c.last_duration {
                families.push(process(
                    "sluice_checkpoint_last_duration_seconds",
                    "From naming the newest checkpoint to its durable manifest",
                    MetricType::Gauge,
                    Value::Gauge(d.as_secs_f64()),
                ));
            }
            if let Some(bytes) = c.last_bytes {
                families.push(process(
                    "sluice_checkpoint_last_bytes",
                    "Size of the newest checkpoint's parts",
                    MetricType::Gauge,
                    Value::Gauge(bytes as f64),
                ));
            }
            if let Some(at) = c.last_at {
                families.push(process(
                    "sluice_checkpoint_age_seconds",
                    "Time since the newest checkpoint completed",
                    MetricType::Gauge,
                    Value::Gauge(at.elapsed().as_secs_f64()),
                ));
            }
            for f in families {
                family(&mut encoder, f)?;
            }
        }
        Ok(())
    }
}

/// A registry that encodes `live` at each scrape.
pub fn registry(live: Arc<LiveMetrics>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Live(live)));
    registry
}

/// The registry's text.
pub fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing to a String does not fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, registry);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::live::{Quantiles, RunInfo};

    #[test]
    fn every_family_is_in_the_text() {
        let live = LiveMetrics::new(RunInfo {
            pipeline: "q5".into(),
            source: "nexmark".into(),
            sink: "null".into(),
            process: 1,
            processes: 2,
            workers: 2,
            execution: 3,
        });
        let mut buckets = vec![0; LATENCY_BUCKETS.len() + 1];
        buckets[3] = 7;
        live.publish(
            1,
            WorkerLive {
                events_in: 1234,
                rows_out: 56,
                dead: vec![(crate::deadletter::Reason::Late, 2)],
                watermark: Some(1_000_000),
                frontier: Some(996_000),
                recent: Some(Quantiles {
                    p50: 1_000_000,
                    p99: 2_000_000,
                    max: 3_000_000,
                }),
                latency_buckets: buckets,
                latency_sum: 0.007,
                ..WorkerLive::default()
            },
        );
        let text = encode(&registry(live));
        for line in [
            "sluice_events_in_total{pipeline=\"q5\",process=\"1\",worker=\"3\"} 1234",
            "sluice_rows_out_total{pipeline=\"q5\",process=\"1\",worker=\"3\"} 56",
            "sluice_dead_letters_total{pipeline=\"q5\",process=\"1\",worker=\"3\",reason=\"late\"} 2",
            "sluice_restarts_total{pipeline=\"q5\",process=\"1\"} 2",
            "sluice_output_behind_watermark_seconds{pipeline=\"q5\",process=\"1\",worker=\"3\"} 4.0",
            "sluice_recent_latency_seconds{pipeline=\"q5\",process=\"1\",worker=\"3\",quantile=\"0.99\"} 0.002",
            "sluice_processing_latency_seconds_bucket{le=\"0.001\",pipeline=\"q5\",process=\"1\",worker=\"3\"} 7",
            "sluice_processing_latency_seconds_count{pipeline=\"q5\",process=\"1\",worker=\"3\"} 7",
        ] {
            assert!(text.contains(line), "{line}\nnot in\n{text}");
        }
        assert!(text.contains("sluice_run_info{"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        // No checkpoints, no checkpoint families.
        assert!(!text.contains("sluice_checkpoints"), "{text}");
    }
}
