//! Ingest time carried with a record: the wall-clock instant a pipeline received it from its
//! source, so a result can say how long after ingest it was produced (an alert's
//! ingest-to-alert latency), per record rather than per stamp.
//!
//! [`Ingested::stamp`] wraps each record of a stream as it comes from the source — on the worker
//! that read it, in the step that decoded it, one clock read per batch — and the wrapper travels
//! with the record through exchanges (between processes too: it is ordinary serde data) and
//! checkpoints. In a human-readable form (JSON: a dead letter's body, a debug dump) an
//! `Ingested<R>` is its record alone, the record as it was read; binary forms (exchange between
//! processes, checkpoints) keep both. The clock is the system clock in microseconds since the Unix epoch, so instants
//! taken by different processes on one machine compare, and a record restored from a checkpoint
//! counts the time the pipeline was down; across machines the figure includes their clock skew.
//!
//! # Examples
//!
//! ```
//! use sluice::operators::ingested::{latency_ms, wall_clock_us, Ingested};
//! use timely::dataflow::operators::vec::{Map, ToStream};
//! use timely::dataflow::operators::Inspect;
//!
//! timely::example(|scope| {
//!     let words = vec!["stream", "of", "words"].into_iter().to_stream(scope);
//!     Ingested::stamp(words)
//!         .map(|w: Ingested<&str>| (w.record, latency_ms(w.at_us, wall_clock_us())))
//!         .inspect(|(word, ms)| assert!(!word.is_empty() && *ms >= 0.0));
//! });
//! ```

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::time::{SystemTime, UNIX_EPOCH};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;
use timely::progress::Timestamp;

/// A record and when the pipeline received it.
#[derive(Clone, Debug, PartialEq)]
pub struct Ingested<R> {
    /// The record.
    pub record: R,
    /// When it was received: the system clock, µs since the Unix epoch ([`wall_clock_us`]).
    pub at_us: u64,
}

impl<R> Ingested<R> {
    /// `record`, received at `at_us`.
    pub fn new(record: R, at_us: u64) -> Self {
        Ingested { record, at_us }
    }

    /// Each record of `stream`, with the instant this operator received its batch. Apply it
    /// first thing to a pipeline's source stream: the operator runs on the reading worker, in
    /// the step that decoded the batch.
    pub fn stamp<'s, T: Timestamp>(stream: StreamVec<'s, T, R>) -> StreamVec<'s, T, Ingested<R>>
    where
        R: Clone + 'static,
    {
        stream.unary::<CapacityContainerBuilder<Vec<Ingested<R>>>, _, _, _>(
            Pipeline,
            "ingested",
            |_, _| {
                |input, output| {
                    input.for_each(|time, batch| {
                        let at_us = wall_clock_us();
                        let mut session = output.session(&time);
                        for record in batch.drain(..) {
                            session.give(Ingested { record, at_us });
                        }
                    });
                }
            },
        )
    }
}

impl<R: Serialize> Serialize for Ingested<R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            self.record.serialize(serializer)
        } else {
            (&self.record, self.at_us).serialize(serializer)
        }
    }
}

impl<'de, R: Deserialize<'de>> Deserialize<'de> for Ingested<R> {
    /// Human-readable: the record, received now; binary: the record and its ingest time.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let record = R::deserialize(deserializer)?;
            Ok(Ingested::new(record, wall_clock_us()))
        } else {
            let (record, at_us) = <(R, u64)>::deserialize(deserializer)?;
            Ok(Ingested { record, at_us })
        }
    }
}

/// The system clock: µs since the Unix epoch (0 before it).
pub fn wall_clock_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Milliseconds from `from_us` to `to_us` (both [`wall_clock_us`] instants), to the µs; 0 when
/// the clock went back.
pub fn latency_ms(from_us: u64, to_us: u64) -> f64 {
    to_us.saturating_sub(from_us) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use timely::dataflow::operators::capture::{Capture, Extract};
    use timely::dataflow::operators::vec::{Map, ToStream};

    #[test]
    fn every_record_is_stamped_once_with_a_clock_reading_of_this_run() {
        let before = wall_clock_us();
        let (tx, rx) = std::sync::mpsc::channel();
        timely::example(move |scope| {
            Ingested::stamp((0..1000u32).to_stream(scope))
                .map(|i| (i.record, i.at_us))
                .capture_into(tx);
        });
        let after = wall_clock_us();
        let got: Vec<Ingested<u32>> = rx
            .extract()
            .into_iter()
            .flat_map(|(_, v)| v)
            .map(|(record, at_us)| Ingested::new(record, at_us))
            .collect();
        let mut records: Vec<u32> = got.iter().map(|i| i.record).collect();
        records.sort_unstable();
        assert_eq!(records, (0..1000).collect::<Vec<_>>());
        assert!(got.iter().all(|i| (before..=after).contains(&i.at_us)));
        assert_eq!(latency_ms(1_000, 3_500), 2.5);
        assert_eq!(latency_ms(3_500, 1_000), 0.0);
    }

    #[test]
    fn json_shows_the_record_binary_keeps_the_ingest_time() {
        let i = Ingested::new(vec![1u8, 2], 1_767_225_600_000_000);
        assert_eq!(serde_json::to_string(&i).unwrap(), "[1,2]");
        let bytes = bincode::serialize(&i).unwrap();
        assert_eq!(
            bincode::deserialize::<Ingested<Vec<u8>>>(&bytes).unwrap(),
            i
        );
        let read: Ingested<Vec<u8>> = serde_json::from_str("[3]").unwrap();
        assert_eq!(read.record, vec![3]);
        assert!(read.at_us > i.at_us);
    }
}
