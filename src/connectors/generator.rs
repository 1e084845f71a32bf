//! Generated sources: a domain's deterministic generator of records, read like any other
//! source (`--source <domain>`), and the settings every generator shares.
//!
//! A [`Generate`] implementation makes record `n` as a pure function of its
//! [`GeneratorConfig`] and `n`, so any split of the record numbers over workers and processes
//! generates the same records, and `sluice gen` writes exactly what a run reads. Worker `i` of
//! `P` makes records `i, i + P, i + 2P, …`: every worker's event times stay close together, so no
//! worker holds the global watermark back. Paced (`--paced`), record `n` is released at its
//! scheduled wall-clock instant, `n / rate` seconds after the start — an open-loop load whose
//! latency is measured from that schedule.

use super::{Ingest, ReadStatus, Reader, SourceError};
use crate::record::Record;
use crate::time::EventTime;
use std::time::{Duration, Instant};

/// 2026-01-01 00:00:00.000 UTC: the default event time of record 0, fixed so runs are
/// reproducible.
pub const DEFAULT_BASE_TIME: EventTime = 1_767_225_600_000;

/// What every generator is configured by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratorConfig {
    /// Seed for every random field.
    pub seed: u64,
    /// Records per second of *event time* (the inter-record delay is `10⁶ / rate` µs).
    pub rate: u64,
    /// Event time of record 0, epoch ms.
    pub base_time: EventTime,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            seed: 0,
            rate: 10_000,
            base_time: DEFAULT_BASE_TIME,
        }
    }
}

impl GeneratorConfig {
    /// The event time of record `n` on this schedule: `base + n × 10⁶ / rate` µs, in ms.
    pub fn event_time(&self, n: u64) -> EventTime {
        let offset_us = u128::from(n) * 1_000_000 / u128::from(self.rate.max(1));
        self.base_time + (offset_us / 1000) as u64
    }
}

/// A deterministic generator of one record type.
pub trait Generate: Send + 'static {
    /// The records it makes.
    type Record: Record;

    /// Record number `n`: a pure function of the configuration and `n`.
    fn record(&mut self, n: u64) -> Self::Record;

    /// Appends records `first, first + step, …` (`count` of them) to `out`. Readers call this
    /// once per batch, so a boxed generator costs one dynamic call per batch, not per record.
    fn fill(&mut self, first: u64, step: u64, count: usize, out: &mut Vec<Self::Record>) {
        out.reserve(count);
        for i in 0..count as u64 {
            out.push(self.record(first + i * step));
        }
    }
}

/// How a domain makes its generator from the shared settings.
pub type MakeGenerator<R> = fn(&GeneratorConfig) -> Box<dyn Generate<Record = R>>;

/// A generated source's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratorSpec {
    /// Seed, event-time rate, base time.
    pub config: GeneratorConfig,
    /// Total records over all workers; `None` runs until stopped.
    pub events: Option<u64>,
    /// Release each record at its scheduled wall-clock time (open loop) instead of as fast as
    /// possible.
    pub paced: bool,
}

/// One worker's share of a generated source.
pub struct GeneratorReader<R> {
    generator: Box<dyn Generate<Record = R>>,
    config: GeneratorConfig,
    next: u64,
    step: u64,
    end: u64,
    /// `(start, ns per record)` when paced.
    pace: Option<(Instant, f64)>,
}

impl<R: Record> GeneratorReader<R> {
    /// Worker `index` of `peers`' share of `spec`, made by `make`; `start` anchors the schedule.
    pub fn new(
        make: MakeGenerator<R>,
        spec: &GeneratorSpec,
        index: usize,
        peers: usize,
        start: Instant,
    ) -> Self {
        let ns_per_event = 1e9 / spec.config.rate.max(1) as f64;
        GeneratorReader {
            generator: make(&spec.config),
            config: spec.config.clone(),
            next: index as u64,
            step: peers as u64,
            end: spec.events.unwrap_or(u64::MAX),
            pace: spec.paced.then_some((start, ns_per_event)),
        }
    }

    fn scheduled(&self, n: u64) -> Option<Instant> {
        self.pace
            .map(|(start, ns)| start + Duration::from_nanos((n as f64 * ns) as u64))
    }

    /// How many of the next `max` records exist and are due at `now`.
    fn due(&self, now: Instant, max: usize) -> usize {
        let left = self
            .end
            .saturating_sub(self.next)
            .div_ceil(self.step.max(1));
        let mut count = left.min(max as u64);
        if let Some((start, ns)) = self.pace {
            // The last record number due by now, and so how many of ours are.
            let last_due = (now.saturating_duration_since(start).as_nanos() as f64 / ns) as u64;
            let ours = if last_due >= self.next {
                (last_due - self.next) / self.step.max(1) + 1
            } else {
                0
            };
            count = count.min(ours);
            // Rounding: never release a record before its schedule.
            while count > 0
                && self
                    .scheduled(self.next + (count - 1) * self.step)
                    .is_some_and(|due| due > now)
            {
                count -= 1;
            }
        }
        count as usize
    }
}

impl<R: Record> Reader<R> for GeneratorReader<R> {
    fn read(
        &mut self,
        now: Instant,
        max: usize,
        out: &mut Ingest<R>,
    ) -> Result<ReadStatus, SourceError> {
        let count = self.due(now, max);
        if count > 0 {
            self.generator
                .fill(self.next, self.step, count, &mut out.records);
            let last = self.next + (count as u64 - 1) * self.step;
            out.scheduled = self.scheduled(last);
            self.next = last + self.step;
        }
        if self.next >= self.end {
            return Ok(ReadStatus::Done);
        }
        if count < max {
            if let Some(due) = self.scheduled(self.next) {
                if due > now {
                    return Ok(ReadStatus::WaitUntil(due));
                }
            }
        }
        if let Some(due) = self.scheduled(self.next) {
            out.behind = now.saturating_duration_since(due);
        }
        Ok(ReadStatus::More)
    }

    fn paced(&self) -> bool {
        self.pace.is_some()
    }

    fn resume(
        &mut self,
        c: EventTime,
        _cuts: &[Vec<u8>],
        _same_split: Option<usize>,
    ) -> Result<(), SourceError> {
        // Event time grows with the record number: the records at or after `c` are those from
        // the first whose event time reaches it, whatever the old split.
        let (mut lo, mut hi) = (0u64, self.end.min(u64::MAX / 2));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.config.event_time(mid) >= c {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        let first = lo;
        let index = self.next % self.step.max(1);
        self.next = first + (index + self.step - first % self.step) % self.step;
        if let Some((start, ns)) = self.pace.as_mut() {
            // The schedule goes on from now: record `first` is due at once.
            let ahead = Duration::from_nanos((first as f64 * *ns) as u64);
            *start = Instant::now().checked_sub(ahead).unwrap_or(*start);
        }
        Ok(())
    }

    fn wall_clock_of(&self, t: EventTime) -> Option<Instant> {
        let (start, _) = self.pace?;
        let offset = t.saturating_sub(self.config.base_time);
        Some(start + Duration::from_millis(offset))
    }
}
