//! The ingest operator: runs one worker's [`Reader`] inside the dataflow.
//!
//! Each activation it reads a batch, stamps every event ([`WatermarkPolicy::stamp`]: at its event
//! time, rounded to the stamping granularity, never below the watermark), emits runs of equal
//! stamps as single containers, sends unreadable records to the dead-letter output, and then
//! downgrades its capability to the new watermark `max event time seen − allowed delay`. Timely's
//! progress tracking combines the workers' capabilities, so every frontier downstream is the
//! global watermark. At end of input the capability is dropped and every window can close.
//!
//! Events behind the watermark are *late*: they are stamped at the watermark (so a record's stamp
//! exceeds its event time exactly when it was late), counted, and passed on; event-time operators
//! decide whether their window is still open.
//!
//! **Flow control** bounds what a source has in flight — records it emitted whose stamp the
//! watermark has passed (released) but the output probe has not — so that a slow dataflow or
//! sink makes the source lag rather than memory grow. Records stamped at or above the watermark
//! are not in flight: they wait for event time by design (the allowed delay's worth of records,
//! which a stateless query passes straight on); counting them made every watermark step a
//! pause once the delay held more records than the bound (q0 at 1 M events/s: 2 M waiting, a
//! pause after each step, p99 in milliseconds). The operator keeps its own count per stamp (the
//! metrics only observe). While the dataflow still has released records of this source to
//! finish and either `max_in_flight` of them are in flight or the oldest trails the watermark
//! by more than `max_lag` of event time, it reads nothing: it
//! asks its reader to pause (a Kafka consumer pauses its partitions, so nothing is prefetched
//! either) and looks again after [`FLOW_RECHECK`], without spinning. Otherwise it reads at most
//! what the bound leaves room for. (A watermark that jumps over empty event time is no lag: only
//! records in flight count.) Once the dataflow has caught up with the watermark, the only way
//! forward is to read on (the records that will move the watermark), so the bound holds as long
//! as the records one watermark step releases fit in it. A paced source that pauses falls
//! behind its schedule, which the report shows, instead of buffering. Time spent paused and the
//! most records in flight are in the report.
//!
//! Stopping: when the run's [`Stop`] is requested (a signal, a closed stdout), the operator ends
//! its input as if the reader were exhausted, and first tells every other worker — of every
//! process — over a small broadcast *control* stream, so that one signal stops the whole mesh.
//! The same stream carries the largest event time each worker has read, for readers that
//! [share progress](Reader::shares_progress). Its capability stays at time 0 until the input
//! ends and is never downgraded, so it costs no progress traffic.

use crate::checkpoint::WorkerCheckpoint;
use crate::connectors::{Ingest, Position, ReadStatus, Reader, SourceError};
use crate::deadletter::DeadLetter;
use crate::metrics::live::PUBLISH_EVERY;
use crate::metrics::{Ledger, KEPT_UP_MS};
use crate::record::Record;
use crate::stop::{Stop, StopCause};
use crate::time::{is_late, EventTime, WatermarkPolicy};
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::Inspect;
use timely::dataflow::{ProbeHandle, Scope, StreamVec};

/// Settings of the ingest operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IngestConfig {
    /// Watermark delay and stamping granularity.
    pub policy: WatermarkPolicy,
    /// Most records read per activation.
    pub batch: usize,
    /// How much the source may have in flight.
    pub flow: FlowControl,
    /// End the input this long after the first read (wall clock), as if it were exhausted: a
    /// bounded run over an unbounded source, for benchmarks.
    pub stop_after: Option<Duration>,
    /// End a paced input early when it falls this far behind its schedule (the rate cannot be
    /// sustained; measuring on would only measure the backlog). The report says so.
    pub give_up_behind: Option<Duration>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            policy: WatermarkPolicy::default(),
            batch: 4096,
            flow: FlowControl::default(),
            stop_after: None,
            give_up_behind: None,
        }
    }
}

/// Bounds on what one worker's source has in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowControl {
    /// Records emitted whose stamp the watermark has passed but the output frontier has not:
    /// released to the dataflow and not yet finished. (Records stamped at or above the
    /// watermark wait for event time by design: the allowed delay's worth of them is state,
    /// not a queue.)
    pub max_in_flight: u64,
    /// Event time between the watermark and the output frontier, ms.
    pub max_lag_ms: EventTime,
}

/// Records a worker may have in flight by default: enough to keep a dataflow running at
/// several million records per second (a few milliseconds' worth), few enough to bound memory.
pub const DEFAULT_MAX_IN_FLIGHT: u64 = 100_000;

/// Event time the output may trail the watermark by default, ms.
pub const DEFAULT_MAX_LAG_MS: EventTime = 10_000;

impl Default for FlowControl {
    fn default() -> Self {
        FlowControl {
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_lag_ms: DEFAULT_MAX_LAG_MS,
        }
    }
}

/// How soon a paused source looks again whether the dataflow has made room.
pub const FLOW_RECHECK: Duration = Duration::from_micros(500);

/// The records a source has in flight, by stamp, until the output frontier passes them.
#[derive(Default)]
struct InFlight {
    by_stamp: std::collections::BTreeMap<EventTime, u64>,
}

impl InFlight {
    fn add(&mut self, stamp: EventTime, count: u64) {
        *self.by_stamp.entry(stamp).or_insert(0) += count;
    }

    /// The records in flight the watermark has released (stamped below it): those the dataflow
    /// could have finished. The others wait for event time to pass their stamp — state the
    /// allowed delay asks for, not a queue.
    fn released(&self, watermark: EventTime) -> u64 {
        self.by_stamp.range(..watermark).map(|(_, n)| *n).sum()
    }

    /// The stamp of the oldest records in flight.
    fn oldest(&self) -> Option<EventTime> {
        self.by_stamp.first_key_value().map(|(&stamp, _)| stamp)
    }

    /// Forgets the records whose stamps the output frontier has passed.
    fn settle(&mut self, probe: &ProbeHandle<EventTime>) {
        while let Some((&stamp, _)) = self.by_stamp.first_key_value() {
            if probe.less_equal(&stamp) {
                break;
            }
            self.by_stamp.pop_first();
        }
    }
}

/// What the workers' ingest operators tell each other.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Control {
    /// The largest event time the sender has read.
    MaxSeen(EventTime),
    /// The sender's process was asked to stop: end the input.
    Stop,
}

/// After this many records with not one of them readable, the operator warns once that the input
/// may be in the wrong format (the run goes on; `--max-bad-ratio` decides at the end).
const ALL_BAD_WARNING: u64 = 1000;

/// What the ingest operator shares with the rest of its worker.
pub struct IngestShared {
    /// Where it notes what it read and released (observed by the metrics).
    pub ledger: Rc<RefCell<Ledger>>,
    /// A reader error, which ends the input.
    pub error: Rc<RefCell<Option<SourceError>>>,
    /// A request to end the input early.
    pub stop: Stop,
    /// The output's probe: how far the dataflow has got (flow control).
    pub probe: ProbeHandle<EventTime>,
    /// How far the reader read each partition, set when the input ended.
    pub positions: Rc<RefCell<Vec<Position>>>,
    /// The worker's checkpointing, if the run checkpoints: the source's cuts go there, and a
    /// restore starts from its checkpoint.
    pub checkpoint: Option<Rc<WorkerCheckpoint>>,
}

/// The source part of a worker's checkpoint: the largest event time read, and the reader's cut.
type SourceCut = (Option<EventTime>, Option<Vec<u8>>);

/// Runs `reader` as a timely source; returns the record stream and the dead-letter stream.
/// A reader error is stored in `shared.error` and ends the input; so does a request to stop.
pub fn ingest<'s, R: Record>(
    scope: Scope<'s, EventTime>,
    name: &str,
    mut reader: Box<dyn Reader<R>>,
    config: IngestConfig,
    shared: IngestShared,
) -> (
    StreamVec<'s, EventTime, R>,
    StreamVec<'s, EventTime, DeadLetter>,
) {
    let IngestShared {
        ledger,
        error,
        stop,
        probe,
        positions,
        checkpoint,
    } = shared;
    ledger.borrow_mut().paced = reader.paced();
    // Checkpoints: the reader keeps what its cuts need; a restore starts it at the checkpoint.
    let interval = checkpoint.as_ref().map(|c| c.interval());
    let mut restored_max = None;
    let resume_at = checkpoint.as_ref().map_or(0, |c| c.shared.resume_at());
    if let Some(checkpoint) = &checkpoint {
        reader.checkpoints_every(checkpoint.interval());
        if let Some(cuts) = checkpoint.restored_source() {
            let cuts: Vec<SourceCut> = cuts
                .iter()
                .map(|c| {
                    c.as_deref()
                        .and_then(|b| bincode::deserialize(b).ok())
                        .unwrap_or((None, None))
                })
                .collect();
            let same_split = (cuts.len() == checkpoint.peers).then_some(checkpoint.worker);
            // The largest event time read counts again from the checkpoint on: what was read
            // ahead of it is read again, and a watermark restored ahead of the replay would
            // make those records late.
            restored_max = same_split
                .and_then(|i| cuts[i].0)
                .map(|m| m.min(resume_at.saturating_sub(1)));
            let reader_cuts: Vec<Vec<u8>> =
                cuts.into_iter().map(|c| c.1.unwrap_or_default()).collect();
            if let Err(e) = reader.resume(resume_at, &reader_cuts, same_split) {
                *error.borrow_mut() = Some(e);
            }
        }
    }
    let mut builder = OperatorBuilder::new(name.to_owned(), scope);
    let info = builder.operator_info();
    let activator = scope.activator_for(info.address.clone());
    // Readers that wait on the network wake the worker when records arrive.
    let waker = scope.worker().sync_activator_for(info.address.to_vec());
    reader.set_waker(Box::new(move || {
        // Fails only once the worker is gone, when nothing is left to wake.
        let _ = waker.activate();
    }));
    // A stop request wakes the operator wherever it waits (a paced schedule, the network).
    let waker = scope.worker().sync_activator_for(info.address.to_vec());
    stop.on_request(Box::new(move || {
        let _ = waker.activate();
    }));
    let (events_out, events) = builder.new_output::<Vec<R>>();
    let (dead_out, dead) = builder.new_output::<Vec<DeadLetter>>();
    // The control stream: every worker hears what every other worker broadcasts. Out of band:
    // no cycle in the graph.
    let peers_max: Rc<Cell<Option<EventTime>>> = Rc::new(Cell::new(None));
    let stop_heard = Rc::new(Cell::new(false));
    let shares_progress = reader.shares_progress();
    let (control_out, control) = builder.new_output::<Vec<Control>>();
    {
        let heard = Rc::clone(&peers_max);
        let stop_heard = Rc::clone(&stop_heard);
        let activator = activator.clone();
        control.broadcast().inspect(move |c: &Control| match c {
            Control::MaxSeen(t) => heard.set(Some(heard.get().map_or(*t, |m| m.max(*t)))),
            Control::Stop => {
                stop_heard.set(true);
                activator.activate();
            }
        });
    }
    let mut control_out =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<Control>>>::from(control_out);
    let mut events_out = OutputBuilder::<_, CapacityContainerBuilder<Vec<R>>>::from(events_out);
    let mut dead_out =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<DeadLetter>>>::from(dead_out);
    let policy = config.policy;

    builder.build(move |mut caps| {
        let mut control_cap = caps.pop();
        let mut dead_cap = caps.pop();
        let mut event_cap = caps.pop();
        // A restored run resumes at its checkpoint: nothing below it is emitted again.
        for cap in [&mut event_cap, &mut dead_cap].into_iter().flatten() {
            cap.downgrade(&resume_at);
        }
        let failed_to_resume = error.borrow().is_some();
        if failed_to_resume {
            event_cap = None;
            dead_cap = None;
            control_cap = None;
        }
        let mut shared_max: Option<EventTime> = None;
        let mut buf = Ingest::default();
        let mut max_seen: Option<EventTime> = restored_max;
        let completions = checkpoint.clone();
        // Records the source's cut for every checkpoint the watermark crosses in (from, to].
        let record_cut = move |reader: &dyn Reader<R>, max_seen: Option<EventTime>, from: EventTime, to: EventTime| {
            let (Some(checkpoint), Some(every)) = (&checkpoint, interval) else {
                return;
            };
            if (from / every).saturating_add(1).saturating_mul(every) > to {
                return;
            }
            let cut: SourceCut = (max_seen, reader.cut(every));
            if let Ok(bytes) = bincode::serialize(&cut) {
                checkpoint.put_source(from, to, bytes);
            }
        };
        let mut warned_behind = false;
        let (mut accepted, mut rejected) = (0u64, 0u64);
        let mut in_flight = InFlight::default();
        let mut paused_since: Option<Instant> = None;
        // When the partitions' progress is next copied into the ledger for monitoring.
        let mut progress_due = Instant::now();

        move |_frontiers| {
            let (Some(cap), Some(dcap), Some(ccap)) =
                (event_cap.as_mut(), dead_cap.as_mut(), control_cap.as_ref())
            else {
                return;
            };
            // A completed checkpoint: the reader may record where it resumes from.
            if let Some((c, cut)) = completions.as_ref().and_then(|k| k.take_completed_source()) {
                if let Ok((_, Some(cut))) = bincode::deserialize::<SourceCut>(&cut) {
                    reader.checkpoint_completed(c, &cut);
                }
            }
            // A stop requested here is announced to every worker; one heard from another
            // process is obeyed. Either ends the input now, before reading more.
            let stop_cause = if stop.is_requested() {
                control_out.activate().session(ccap).give(Control::Stop);
                stop.cause()
            } else if stop_heard.get() {
                Some(StopCause::Peer)
            } else {
                None
            };
            let now = Instant::now();
            in_flight.settle(&probe);
            let watermark = *cap.time();
            let flow = config.flow;
            // The oldest stamp of ours the output has not passed, if it is below the watermark:
            // the dataflow still has released records of this source to finish.
            let behind = in_flight.oldest().filter(|&o| o < watermark);
            let released = in_flight.released(watermark);
            let full = released >= flow.max_in_flight
                || behind.is_some_and(|o| watermark - o > flow.max_lag_ms);
            if stop_cause.is_none() && behind.is_some() && full {
                if paused_since.is_none() {
                    paused_since = Some(now);
                    reader.pause(true);
                }
                activator.activate_after(FLOW_RECHECK);
                return;
            }
            if let Some(since) = paused_since.take() {
                reader.pause(false);
                ledger.borrow_mut().paused += now.saturating_duration_since(since);
            }
            // Caught up with the watermark, a source reads on even over the bound: only new
            // records can move it.
            let room = match behind {
                Some(_) => flow.max_in_flight.saturating_sub(released),
                None => config.batch as u64,
            };
            let max = (config.batch as u64).min(room.max(1)) as usize;
            let first_read = *ledger.borrow_mut().first_read.get_or_insert(now);
            buf.clear();
            let stopped = stop_cause.is_some()
                || config
                    .stop_after
                    .is_some_and(|d| now.saturating_duration_since(first_read) >= d);
            let read = if stop_cause.is_some() {
                Ok(ReadStatus::Done)
            } else {
                reader.read(now, max, &mut buf)
            };
            let mut status = match read {
                Ok(_) if stopped => ReadStatus::Done,
                Ok(status) => status,
                Err(e) => {
                    tracing::error!("source failed: {e}");
                    *error.borrow_mut() = Some(e);
                    ReadStatus::Done
                }
            };
            let stamp = |e: &R| policy.stamp(e.event_time(), watermark);

            {
                let mut ledger = ledger.borrow_mut();
                let mut late = 0;
                accepted += buf.records.len() as u64;
                for e in &buf.records {
                    let t = e.event_time();
                    late += u64::from(is_late(t, policy.stamp(t, watermark)));
                    max_seen = Some(max_seen.map_or(t, |m| m.max(t)));
                }
                ledger.late += late;
                ledger.max_behind = ledger.max_behind.max(buf.behind);
                if !buf.records.is_sorted_by_key(stamp) {
                    buf.records.sort_by_key(stamp);
                }
                // Each run of equal stamps leaves as one whole container (no per-record copy).
                let mut output = events_out.activate();
                let mut events = std::mem::take(&mut buf.records);
                while let Some(last) = events.last() {
                    let at = stamp(last);
                    let start = events.partition_point(|e| stamp(e) < at);
                    let mut run = if start == 0 {
                        std::mem::take(&mut events)
                    } else {
                        events.split_off(start)
                    };
                    ledger.emitted(at, run.len() as u64);
                    in_flight.add(at, run.len() as u64);
                    output.session(&cap.delayed(&at)).give_container(&mut run);
                }
            }
            if !buf.dead.is_empty() {
                let before = rejected;
                rejected += buf.dead.len() as u64;
                if accepted == 0 && before < ALL_BAD_WARNING && rejected >= ALL_BAD_WARNING {
                    tracing::warn!(
                        "the first {rejected} records were all rejected (e.g. {}: {}): is the input in the expected format?",
                        buf.dead[0].reason.name(),
                        buf.dead[0].detail
                    );
                }
                dead_out.activate().session(&*dcap).give_iterator(buf.dead.drain(..));
            }

            if now >= progress_due {
                progress_due = now + PUBLISH_EVERY;
                ledger.borrow_mut().partitions = reader.progress(now);
            }

            let give_up = config.give_up_behind.is_some_and(|g| buf.behind > g);
            if give_up && status != ReadStatus::Done {
                tracing::warn!(
                    "paced source is {} ms behind schedule: giving up on this rate",
                    buf.behind.as_millis()
                );
                ledger.borrow_mut().gave_up = true;
                status = ReadStatus::Done;
            }
            if buf.behind > Duration::from_millis(KEPT_UP_MS) && !warned_behind {
                warned_behind = true;
                tracing::warn!(
                    "paced source is {} ms behind schedule: the dataflow cannot sustain the requested rate",
                    buf.behind.as_millis()
                );
            }
            let reference = buf.scheduled.unwrap_or(now);
            match status {
                ReadStatus::Done => {
                    *positions.borrow_mut() = reader.positions();
                    // Every checkpoint from here on finds the source read to its end.
                    record_cut(&*reader, max_seen, watermark, EventTime::MAX);
                    let mut ledger = ledger.borrow_mut();
                    if let Some(cause) = stop_cause {
                        ledger.stopped = Some((cause, watermark));
                    }
                    // A paced (or stopped) input's last events are released by its end, not by
                    // the watermark: a cool-down artifact that would skew the latency figures.
                    let sampled = !reader.paced() && !stopped && !give_up;
                    ledger.release(None, reference, None, sampled);
                    event_cap = None;
                    dead_cap = None;
                    control_cap = None;
                    return;
                }
                ReadStatus::More => activator.activate(),
                ReadStatus::WaitUntil(due) => activator.activate_after(due.saturating_duration_since(now)),
            }
            if let Some(m) = max_seen.filter(|_| shares_progress) {
                // Tell the others at most once per stamp granule of progress.
                if shared_max.is_none_or(|s| m >= s + policy.granularity_ms) {
                    shared_max = Some(m);
                    control_out
                        .activate()
                        .session(ccap)
                        .give(Control::MaxSeen(m));
                }
            }
            let basis = reader.watermark_basis(now, max_seen, peers_max.get());
            let next = basis.map_or(watermark, |m| policy.watermark(m).max(watermark));
            if next > watermark {
                record_cut(&*reader, max_seen, watermark, next);
                reader.on_watermark(next);
                cap.downgrade(&next);
                dcap.downgrade(&next);
                let mut ledger = ledger.borrow_mut();
                ledger.release(Some(next), reference, reader.wall_clock_of(next), true);
                ledger.max_in_flight = ledger.max_in_flight.max(in_flight.released(next));
            }
        }
    });

    (events, dead)
}
