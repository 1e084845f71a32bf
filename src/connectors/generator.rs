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
use std::collections::BTreeMap;
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
    /// A stretch of the schedule at a multiple of the rate (event time and, paced, wall clock).
    pub burst: Option<Burst>,
    /// Per cent of the records a domain puts on its hottest key (nexmark: bids on one auction);
    /// 0 leaves the domain's own key distribution untouched.
    pub hot_key_percent: u8,
    /// The domain's own settings (`--accounts 50000` for the fraud generator), by name, as
    /// given; the domain declares them in [`Domain::generator_options`](crate::catalog::Domain)
    /// and the command line checks them before a generator is made. Read with
    /// [`option`](GeneratorConfig::option).
    pub options: BTreeMap<String, String>,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            seed: 0,
            rate: 10_000,
            base_time: DEFAULT_BASE_TIME,
            burst: None,
            hot_key_percent: 0,
            options: BTreeMap::new(),
        }
    }
}

/// `factor` times the rate for `length` of the schedule from `from` (both since record 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Burst {
    /// The rate's multiple, ≥ 1.
    pub factor: u64,
    /// Where the burst starts on the schedule.
    pub from: Duration,
    /// How long it lasts.
    pub length: Duration,
}

impl Burst {
    /// Parses `FACTORx@FROM+LENGTH`, e.g. `10x@60s+10s`: ten times the rate for ten seconds,
    /// one minute into the schedule.
    pub fn parse(
        text: &str,
        duration: impl Fn(&str) -> Result<Duration, String>,
    ) -> Result<Burst, String> {
        let shape = || format!("{text:?} is not FACTORx@FROM+LENGTH, e.g. 10x@60s+10s");
        let (factor, rest) = text.trim().split_once("x@").ok_or_else(shape)?;
        let (from, length) = rest.split_once('+').ok_or_else(shape)?;
        let factor: u64 = factor.trim().parse().map_err(|_| shape())?;
        if !(1..=1000).contains(&factor) {
            return Err(format!("the burst factor must be 1 to 1000, not {factor}"));
        }
        Ok(Burst {
            factor,
            from: duration(from)?,
            length: duration(length)?,
        })
    }
}

impl GeneratorConfig {
    /// The domain setting `name` parsed by `parse`, `default` when it is not set. A value
    /// `parse` refuses also gives `default`, with a warning: the command line checks values
    /// with the domain's own check before a generator is made, so only a configuration built in
    /// code can hold one.
    pub fn option<T>(&self, name: &str, parse: fn(&str) -> Result<T, String>, default: T) -> T {
        let Some(text) = self.options.get(name) else {
            return default;
        };
        parse(text).unwrap_or_else(|e| {
            tracing::warn!("generator setting {name}={text} ignored: {e}");
            default
        })
    }

    /// The offset of record `n` from record 0 on the schedule, ns: `n × 10⁹ / rate`, at
    /// `factor × rate` inside the burst.
    pub fn offset_ns(&self, n: u64) -> u128 {
        let rate = u128::from(self.rate.max(1));
        let at = |n: u64, rate: u128| u128::from(n) * 1_000_000_000 / rate;
        let Some(burst) = self.burst else {
            return at(n, rate);
        };
        let (before, inside) = self.burst_records(burst);
        let (from, length) = (burst.from.as_nanos(), burst.length.as_nanos());
        if n < before {
            at(n, rate)
        } else if n < before + inside {
            from + at(n - before, rate * u128::from(burst.factor))
        } else {
            from + length + at(n - before - inside, rate)
        }
    }

    /// How many records come before the burst, and how many in it.
    fn burst_records(&self, burst: Burst) -> (u64, u64) {
        let rate = u128::from(self.rate.max(1));
        let count = |d: Duration, rate: u128| (d.as_nanos() * rate).div_ceil(1_000_000_000) as u64;
        (
            count(burst.from, rate),
            count(burst.length, rate * u128::from(burst.factor)),
        )
    }

    /// How many records are due `elapsed` after record 0 (the first `k` with offsets ≤ it).
    pub fn due_by(&self, elapsed: Duration) -> u64 {
        let rate = u128::from(self.rate.max(1));
        let upto = |ns: u128, rate: u128| (ns * rate / 1_000_000_000) as u64 + 1;
        let ns = elapsed.as_nanos();
        let Some(burst) = self.burst else {
            return upto(ns, rate);
        };
        let (before, inside) = self.burst_records(burst);
        let (from, length) = (burst.from.as_nanos(), burst.length.as_nanos());
        if ns < from {
            upto(ns, rate).min(before)
        } else if ns < from + length {
            before + upto(ns - from, rate * u128::from(burst.factor)).min(inside)
        } else {
            before + inside + upto(ns - from - length, rate)
        }
    }

    /// The event time of record `n` on this schedule: `base` + its offset, in ms.
    pub fn event_time(&self, n: u64) -> EventTime {
        self.base_time + (self.offset_ns(n) / 1_000_000) as u64
    }
}

/// A domain generator's count setting (`--accounts 5000`, `--items 800`): a whole number of
/// `what` in `fewest..=2^40`, or a one-line reason why not.
pub fn parse_count(text: &str, fewest: u64, what: &str) -> Result<u64, String> {
    let n: u64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number of {what}"))?;
    if n < fewest || n > 1 << 40 {
        return Err(format!("{what}: {n} is outside {fewest}..=2^40"));
    }
    Ok(n)
}

/// SplitMix64: the small, fast random number generator domains' generators draw from. Seeded
/// with `(seed, stream)` — a record number, an account id — it makes the same numbers in every
/// run, worker and process, which is what makes record `n` a pure function of `n`.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// The generator of `stream` under `seed`.
    pub fn seeded(seed: u64, stream: u64) -> SplitMix64 {
        let mut r = SplitMix64(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next_u64();
        r
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound > 0`), by multiply-shift.
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller; one of the pair).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit(); // (0, 1]: the logarithm stays finite
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
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
    /// Paced, the wall clock runs this many times faster than the schedule's event time (1: real
    /// time).
    pub speed: u32,
}

/// One worker's share of a generated source.
pub struct GeneratorReader<R> {
    generator: Box<dyn Generate<Record = R>>,
    config: GeneratorConfig,
    next: u64,
    step: u64,
    end: u64,
    /// When record 0 was due, when paced.
    pace: Option<Instant>,
    /// Wall-clock speed-up of the schedule.
    speed: u32,
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
        GeneratorReader {
            generator: make(&spec.config),
            config: spec.config.clone(),
            next: index as u64,
            step: peers as u64,
            end: spec.events.unwrap_or(u64::MAX),
            pace: spec.paced.then_some(start),
            speed: spec.speed.max(1),
        }
    }

    /// The wall-clock offset of record `n` from record 0.
    fn wall_offset(&self, n: u64) -> Duration {
        let ns = self.config.offset_ns(n) / u128::from(self.speed);
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    fn scheduled(&self, n: u64) -> Option<Instant> {
        self.pace.map(|start| start + self.wall_offset(n))
    }

    /// How many of the next `max` records exist and are due at `now`.
    fn due(&self, now: Instant, max: usize) -> usize {
        let left = self
            .end
            .saturating_sub(self.next)
            .div_ceil(self.step.max(1));
        let mut count = left.min(max as u64);
        if let Some(start) = self.pace {
            // How many record numbers are due by now, and so how many of ours are.
            let elapsed = now.saturating_duration_since(start);
            let due = self.config.due_by(elapsed.saturating_mul(self.speed));
            let ours = if due > self.next {
                (due - 1 - self.next) / self.step.max(1) + 1
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
        let ahead = self.wall_offset(first);
        if let Some(start) = self.pace.as_mut() {
            // The schedule goes on from now: record `first` is due at once.
            *start = Instant::now().checked_sub(ahead).unwrap_or(*start);
        }
        Ok(())
    }

    fn wall_clock_of(&self, t: EventTime) -> Option<Instant> {
        let start = self.pace?;
        let offset = Duration::from_millis(t.saturating_sub(self.config.base_time));
        Some(start + offset / self.speed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burst() -> GeneratorConfig {
        GeneratorConfig {
            rate: 1000,
            burst: Some(Burst {
                factor: 10,
                from: Duration::from_secs(2),
                length: Duration::from_secs(1),
            }),
            ..GeneratorConfig::default()
        }
    }

    #[test]
    fn a_burst_packs_factor_times_the_records_into_its_stretch() {
        let c = burst();
        let base = c.base_time;
        // 2000 records before it, 10,000 in its second, then the base rate again.
        assert_eq!(c.event_time(1999), base + 1999);
        assert_eq!(c.event_time(2000), base + 2000);
        assert_eq!(c.event_time(2000 + 9_999), base + 2999);
        assert_eq!(c.event_time(12_000), base + 3000);
        assert_eq!(c.event_time(12_500), base + 3500);
        let in_burst = (0..20_000u64)
            .filter(|&n| (base + 2000..base + 3000).contains(&c.event_time(n)))
            .count();
        assert_eq!(in_burst, 10_000);
        // Offsets never go back.
        assert!((1..20_000u64).all(|n| c.offset_ns(n) >= c.offset_ns(n - 1)));
    }

    #[test]
    fn due_counts_match_the_offsets() {
        for c in [burst(), GeneratorConfig::default()] {
            for ms in (0..5000u64).step_by(7) {
                let elapsed = Duration::from_millis(ms) + Duration::from_nanos(123);
                let due = c.due_by(elapsed);
                // Every record counted is due, and the next one is not yet.
                assert!(c.offset_ns(due - 1) <= elapsed.as_nanos(), "{ms} ms");
                assert!(c.offset_ns(due) > elapsed.as_nanos(), "{ms} ms");
            }
        }
    }

    #[test]
    fn burst_flags_parse() {
        let d = |t: &str| humantime::parse_duration(t).map_err(|e| e.to_string());
        let b = Burst::parse("10x@60s+10s", d).unwrap();
        assert_eq!(
            b,
            Burst {
                factor: 10,
                from: Duration::from_secs(60),
                length: Duration::from_secs(10)
            }
        );
        assert!(Burst::parse("10@60s+10s", d).is_err());
        assert!(Burst::parse("0x@1s+1s", d).is_err());
        assert!(Burst::parse("10x@1s", d).is_err());
    }
}
