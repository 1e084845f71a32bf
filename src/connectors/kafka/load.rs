//! `sluice gen --to kafka://HOST:PORT/TOPIC`: a domain's generator as a Kafka load.
//!
//! Record `n` is written to partition `n mod P`: every partition holds an event-time-ordered
//! share of the stream, as a partitioned source would. With `paced`, event `n` is sent
//! at its scheduled wall-clock instant (`n / rate` seconds after the start, or as `--burst` says) and carries that
//! instant as its Kafka timestamp, so a consumer measures latency from when the event was due —
//! a slow producer cannot hide queueing (no coordinated omission).

use super::producer::RowProducer;
use super::{KafkaError, Load, LoadSummary};
use crate::record::Record;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Writes the records as JSON values; returns when every one is delivered (or fails).
pub fn load<R: Record>(load: &Load<'_, R>) -> Result<LoadSummary, KafkaError> {
    let producer = RowProducer::open(load.url, load.props, load.partitions, load.timeout)?;
    let partitions = producer.partitions().to_vec();
    let p = partitions.len() as u64;
    let mut generator = (load.make)(&load.config);
    let start = Instant::now();
    let start_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1e3)
        .unwrap_or(0.0);
    let mut line = Vec::with_capacity(1024);
    let mut max_behind = Duration::ZERO;
    for n in 0..load.events {
        if n % 1024 == 0 && load.stop.is_requested() {
            break;
        }
        let mut timestamp = None;
        if load.paced {
            // The generator's schedule (a --burst included).
            let offset_ns = load.config.offset_ns(n) as f64;
            let due = start + Duration::from_nanos(offset_ns as u64);
            let now = Instant::now();
            if due > now + Duration::from_micros(200) {
                // Sleeping for less overshoots; a few events go out together instead.
                std::thread::sleep(due - now);
            } else if now > due {
                max_behind = max_behind.max(now - due);
            }
            timestamp = Some((start_ms + offset_ns / 1e6) as i64);
        }
        line.clear();
        // Plain serde data into a Vec: serialisation cannot fail.
        let _ = serde_json::to_writer(&mut line, &generator.record(n));
        producer.send(None, &line, Some(partitions[(n % p) as usize]), timestamp);
        if n % 1_000_000 == 999_999 {
            tracing::info!("sent {} events to {}", n + 1, load.url);
        }
    }
    let delivered = producer.finish()?;
    Ok(LoadSummary {
        delivered,
        seconds: start.elapsed().as_secs_f64(),
        partitions: partitions.len(),
        max_behind,
    })
}
