//! The per-worker ledger: what a source released and when, settled against the output frontier.
//!
//! *Processing latency* of an event is the wall-clock time from when the source **released** it
//! — advanced its watermark past the event's stamp, on the reference clock below — until the
//! output probe's frontier passed that stamp (every output the event can cause has been written).
//! The reference clock is the event's **scheduled** arrival when the source is paced (so queueing
//! in front of a slow dataflow counts: no coordinated omission), else the instant it was read.
//! The watermark's allowed delay is not part of this figure: it is a choice of the user, shown by
//! the second measure.
//!
//! Samples settled during the configured warm-up after the first read go to the timeline only,
//! not to the histograms; so do none of a paced input's cool-down (see `unsampled`).
//!
//! *Event-time lag* (paced sources) is the wall-clock time from the instant an event time
//! "happened" on the source's schedule until the output frontier passed it: processing latency
//! plus the watermark delay, i.e. how far results trail real time.

use super::histogram::new_histogram;
use super::timeline::Timeline;
use crate::connectors::PartitionProgress;
use crate::deadletter::{DeadLetterCounts, Reason};
use crate::stop::StopCause;
use crate::time::EventTime;
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};
use timely::dataflow::ProbeHandle;

/// A watermark advance whose events wait for the output frontier.
struct Release {
    /// Events stamped below this time are covered; `None` is end of input.
    upto: Option<EventTime>,
    /// The reference instant latency is measured from.
    reference: Instant,
    /// Events released.
    events: u64,
    /// The wall-clock instant of `upto` on a paced source's schedule.
    wall_of_upto: Option<Instant>,
    /// Whether its latency goes into the histograms.
    sampled: bool,
}

/// Counters and histograms of one worker.
pub struct Ledger {
    pending: BTreeMap<EventTime, u64>,
    releases: VecDeque<Release>,
    /// Events read from the source (excludes dead letters).
    pub events: u64,
    /// Events that arrived behind the watermark (still processed by stateless queries).
    pub late: u64,
    /// Dead letters by reason.
    pub dead: DeadLetterCounts,
    /// Rows written to the sink.
    pub rows: u64,
    /// Processing latency, ns, one sample per event.
    pub latency: Histogram<u64>,
    /// Event-time lag, ns, one sample per event (paced sources only).
    pub lag: Histogram<u64>,
    /// Events whose latency was not sampled: released by the end of a paced input (a
    /// cool-down artifact: they waited for no watermark) rather than by the watermark.
    pub unsampled: u64,
    /// The furthest a paced source fell behind its schedule.
    pub max_behind: Duration,
    /// Time the source spent paused by flow control.
    pub paused: Duration,
    /// The most records the source had in flight.
    pub max_in_flight: u64,
    /// When the worker started and finished reading.
    pub first_read: Option<Instant>,
    /// When the last release settled.
    pub finished: Option<Instant>,
    /// Latency and memory per interval of the run.
    pub timeline: Timeline,
    /// Samples settled this soon after the first read are left out of the histograms (they
    /// still show in the timeline).
    pub warmup: Duration,
    /// Events whose latency fell in the warm-up.
    pub warmup_events: u64,
    /// The paced source fell too far behind its schedule and ended the input early.
    pub gave_up: bool,
    /// The input was ended by a stop request: its cause, and the worker's watermark then.
    pub stopped: Option<(StopCause, EventTime)>,
    /// The source's watermark, as of its latest advance.
    pub watermark: Option<EventTime>,
    /// The wall-clock instant the watermark's event time stands for, when the source knows
    /// it (a paced source's schedule).
    pub watermark_wall: Option<Instant>,
    /// The source reads on a wall-clock schedule: its event time is not Unix time, and the
    /// watermark's lag is measured against the schedule ([`Ledger::watermark_wall`]).
    pub paced: bool,
    /// How far the source has read each partition, refreshed every
    /// [`PUBLISH_EVERY`](super::live::PUBLISH_EVERY) (Kafka; empty for other sources).
    pub partitions: Vec<PartitionProgress>,
}

/// Settings of the run's measurements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Leave latency samples of the first `warmup` out of the histograms.
    pub warmup: Duration,
    /// Length of a timeline interval.
    pub interval: Duration,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            warmup: Duration::ZERO,
            interval: super::timeline::DEFAULT_INTERVAL,
        }
    }
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            pending: BTreeMap::new(),
            releases: VecDeque::new(),
            events: 0,
            late: 0,
            dead: DeadLetterCounts::default(),
            rows: 0,
            latency: new_histogram(),
            lag: new_histogram(),
            unsampled: 0,
            max_behind: Duration::ZERO,
            paused: Duration::ZERO,
            max_in_flight: 0,
            first_read: None,
            finished: None,
            timeline: Timeline::default(),
            warmup: Duration::ZERO,
            warmup_events: 0,
            gave_up: false,
            stopped: None,
            watermark: None,
            watermark_wall: None,
            paced: false,
            partitions: Vec::new(),
        }
    }
}

impl Ledger {
    /// A ledger measuring as `config` says.
    pub fn new(config: MetricsConfig) -> Self {
        Ledger {
            timeline: Timeline::new(config.interval),
            warmup: config.warmup,
            ..Ledger::default()
        }
    }

    /// Notes `count` events emitted at `stamp`.
    pub fn emitted(&mut self, stamp: EventTime, count: u64) {
        *self.pending.entry(stamp).or_insert(0) += count;
        self.events += count;
    }

    /// Records the watermark has passed whose outputs are not all complete yet: the
    /// dataflow's share of the work, the one flow control bounds.
    pub fn in_flight(&self) -> u64 {
        self.releases.iter().map(|r| r.events).sum()
    }

    /// Records read and emitted that wait for the watermark to pass their event time
    /// (the allowed delay holds them back).
    pub fn awaiting_watermark(&self) -> u64 {
        self.pending.values().sum()
    }

    /// Notes a dead letter.
    pub fn dead_letter(&mut self, reason: Reason) {
        self.dead.add(reason);
    }

    /// The source advanced its watermark to `upto` (`None`: input ended) at `reference`.
    /// Unless `sampled`, the released events are counted but their latency is not recorded.
    pub fn release(
        &mut self,
        upto: Option<EventTime>,
        reference: Instant,
        wall_of_upto: Option<Instant>,
        sampled: bool,
    ) {
        if upto.is_some() {
            self.watermark = upto;
            self.watermark_wall = wall_of_upto;
        }
        let events = match upto {
            Some(t) => {
                let keep = self.pending.split_off(&t);
                let gone = std::mem::replace(&mut self.pending, keep);
                gone.values().sum()
            }
            None => std::mem::take(&mut self.pending).values().sum(),
        };
        self.releases.push_back(Release {
            upto,
            reference,
            events,
            wall_of_upto,
            sampled,
        });
    }

    /// Records every release the output frontier has passed, as of `now`.
    pub fn settle(&mut self, probe: &ProbeHandle<EventTime>, now: Instant) {
        while let Some(r) = self.releases.front() {
            let complete = match r.upto {
                Some(t) => !probe.less_than(&t),
                None => probe.done(),
            };
            if !complete {
                break;
            }
            let origin = *self.first_read.get_or_insert(r.reference);
            if !r.sampled {
                self.unsampled += r.events;
            } else if r.events > 0 {
                let ns = now.saturating_duration_since(r.reference).as_nanos() as u64;
                self.timeline.record(origin, now, ns, r.events);
                if now.saturating_duration_since(origin) < self.warmup {
                    self.warmup_events += r.events;
                } else {
                    self.latency.saturating_record_n(ns.max(1), r.events);
                    if let Some(wall) = r.wall_of_upto {
                        let ns = now.saturating_duration_since(wall).as_nanos() as u64;
                        self.lag.saturating_record_n(ns.max(1), r.events);
                    }
                }
            }
            self.finished = Some(now);
            self.releases.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_count_events_below_the_watermark() {
        let mut ledger = Ledger::default();
        ledger.emitted(100, 3);
        ledger.emitted(200, 4);
        ledger.emitted(300, 5);
        let t0 = Instant::now();
        ledger.release(Some(250), t0, None, true);
        ledger.release(None, t0, None, false);
        assert_eq!(ledger.releases.len(), 2);
        assert_eq!(ledger.releases[0].events, 7);
        assert_eq!(ledger.releases[1].events, 5);
        assert_eq!(ledger.events, 12);
    }
}
