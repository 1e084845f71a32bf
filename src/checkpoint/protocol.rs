//! The checkpoint protocol, run by every worker after each step: global worker 0 names the next
//! checkpoint and completes it; every worker writes its part; each process commits its outputs.
//!
//! ```text
//! coordinator (global worker 0)     every worker                       each process (local worker 0)
//! ─────────────────────────────     ────────────                       ─────────────────────────────
//! frontier ≥ c, pause elapsed:
//!   write DIR/target-x<e> = c  ──▶  reads c; once its frontier ≥ c:
//!                                     writes DIR/epoch-c/part-w<i>     (sink epoch files ≤ c
//!                                     (or skip-w<i> if it no longer      listed in the part)
//!                                      has the copies c needs)
//! all parts there:
//!   write DIR/manifest-c (last) ──────────────────────────────────────▶ commits epoch files ≤ c
//!   keep the newest K                                                   to the outputs
//! ```
//!
//! Everything goes through the shared directory, so processes need nothing from each other
//! but the dataflow's own progress. One checkpoint is in flight at a time, and a new one is
//! named no sooner than `min_pause` after the last completed: a replay whose event time runs
//! far faster than the wall clock still checkpoints at a steady pace.
//!
//! **End of input.** Every worker writes its part of the final checkpoint [`END`]: its last
//! epoch files, no operator state. The coordinator completes it once all parts are there; every
//! worker waits for its manifest, and each process commits the rest of its output.
//!
//! **Stop with a checkpoint.** A process asked to stop (SIGTERM) asks the coordinator through
//! `DIR/stop-x<e>`; the coordinator names a final checkpoint at once (no pause); once it is
//! committed every worker ends its input, and the rows after it — never committed — are
//! produced again when the run is restored.
//!
//! **Fail points.** `SLUICE_FAIL_POINT=<step>[:<n>]` kills the process (SIGKILL) the `n`-th
//! time (default 1) it reaches `<step>` in its first execution: `after-part` (a part is
//! durable), `mid-manifest` (the manifest's temporary file is written, not renamed),
//! `after-manifest` (the manifest is durable, the outputs not committed), `after-commit`.
//! Tests use them to crash at every step of the protocol.

use super::store::Store;
use super::{Manifest, PartError, WorkerCheckpoint};
use crate::stop::{Stop, StopCause};
use crate::time::EventTime;
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The final checkpoint of a run whose input ended: every row is committed.
pub const END: EventTime = EventTime::MAX;

/// How often a worker looks at the shared directory.
const POLL: Duration = Duration::from_millis(20);

/// How often a worker looks at an object store (each look is a request or three).
const POLL_OBJECTS: Duration = Duration::from_millis(100);

/// How long before the next checkpoint may be named operators start copying their states again.
const COPY_LEAD: Duration = Duration::from_millis(250);

/// How long the end of a run waits for the other workers' parts and the coordinator's manifest.
const END_WAIT: Duration = Duration::from_secs(120);

/// A protocol step a fail point can kill the process at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A worker's part is durable.
    AfterPart,
    /// The manifest's temporary file is written, not yet renamed into place.
    MidManifest,
    /// The manifest is durable; the outputs are not committed.
    AfterManifest,
    /// The outputs are committed.
    AfterCommit,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::AfterPart => "after-part",
            Step::MidManifest => "mid-manifest",
            Step::AfterManifest => "after-manifest",
            Step::AfterCommit => "after-commit",
        }
    }
}

/// The checkpoints of a process as its first worker sees them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckpointStats {
    /// Checkpoints completed (durable manifests) in this execution.
    pub completed: u64,
    /// Checkpoints abandoned (a worker no longer had the state copies one needed).
    pub abandoned: u64,
    /// The newest completed checkpoint's epoch (event time, ms).
    pub last_epoch: Option<EventTime>,
    /// From naming the newest checkpoint to its durable manifest (the coordinator only).
    pub last_duration: Option<Duration>,
    /// Bytes of the newest checkpoint's parts (the coordinator only).
    pub last_bytes: Option<u64>,
    /// When the newest checkpoint completed.
    pub last_at: Option<Instant>,
}

/// The fail point of this process, from `SLUICE_FAIL_POINT` (first execution only).
#[derive(Clone, Debug, Default)]
pub struct FailPoint {
    at: Option<(Step, u32)>,
    reached: Rc<Cell<u32>>,
}

/// The environment variable naming a fail point.
pub const FAIL_POINT_ENV: &str = "SLUICE_FAIL_POINT";

impl FailPoint {
    /// The fail point `SLUICE_FAIL_POINT` names, active in execution 1 only.
    pub fn from_env(execution: u64) -> Self {
        let Ok(text) = std::env::var(FAIL_POINT_ENV) else {
            return FailPoint::default();
        };
        if execution != 1 {
            return FailPoint::default();
        }
        let (name, nth) = text.split_once(':').unwrap_or((&text, "1"));
        let step = [
            Step::AfterPart,
            Step::MidManifest,
            Step::AfterManifest,
            Step::AfterCommit,
        ]
        .into_iter()
        .find(|s| s.name() == name);
        match (step, nth.parse::<u32>()) {
            (Some(step), Ok(n)) if n > 0 => FailPoint {
                at: Some((step, n)),
                reached: Rc::new(Cell::new(0)),
            },
            _ => {
                tracing::warn!("ignoring {FAIL_POINT_ENV}={text:?}: expected after-part, mid-manifest, after-manifest or after-commit, optionally followed by :N");
                FailPoint::default()
            }
        }
    }

    /// Kills the process if this is the fail point's step, reached for the `n`-th time.
    pub fn reach(&self, step: Step) {
        let Some((at, n)) = self.at else {
            return;
        };
        if at != step {
            return;
        }
        self.reached.set(self.reached.get() + 1);
        if self.reached.get() == n {
            tracing::warn!("fail point {}:{n}: killing the process", step.name());
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// Why the protocol failed.
#[derive(Debug, thiserror::Error)]
#[error("checkpoint {epoch}: {why}")]
pub struct ProtocolError {
    /// The checkpoint.
    pub epoch: EventTime,
    /// What went wrong.
    pub why: String,
}

/// One worker's side of the protocol.
pub struct Protocol {
    checkpoint: Rc<WorkerCheckpoint>,
    /// Global worker 0: names and completes checkpoints.
    coordinator: bool,
    /// Local worker 0: commits the process's outputs.
    committer: bool,
    min_pause: Duration,
    next_poll: Instant,
    /// The last checkpoint this worker wrote its part of (or skipped).
    written: Option<EventTime>,
    /// The last checkpoint this worker is done with: part written, manifest seen, output
    /// committed.
    handled: EventTime,
    /// Coordinator: the last checkpoint named (completed or in flight).
    named: EventTime,
    /// Coordinator: the checkpoint in flight.
    in_flight: Option<EventTime>,
    /// Coordinator: when the last checkpoint completed.
    completed_at: Instant,
    /// Coordinator: the final checkpoint of a stop is named.
    final_named: bool,
    /// The user's stop (a signal): answered with a final checkpoint.
    stop: Stop,
    /// Ends the input once the final checkpoint of a stop is committed.
    drain: Stop,
    stop_asked: bool,
    /// The run's last checkpoint is committed: no more are taken.
    finished: bool,
    fail: FailPoint,
    /// How often to look at the store.
    poll: Duration,
    /// Coordinator: when the checkpoint in flight was named.
    named_at: Instant,
    /// Coordinator: each completed checkpoint's duration (named → manifest durable) and size.
    stats: Vec<(Duration, u64)>,
    /// What the metrics endpoint shows of this worker's checkpoints.
    seen: CheckpointStats,
}

impl Protocol {
    /// Worker `checkpoint.worker`'s side, `local` its index in its process.
    pub fn new(
        checkpoint: Rc<WorkerCheckpoint>,
        local: usize,
        min_pause: Duration,
        stop: Stop,
        drain: Stop,
    ) -> Self {
        let execution = checkpoint.shared.config.execution;
        let resume_at = checkpoint.shared.resume_at();
        let now = Instant::now();
        let poll = if checkpoint.shared.store.local_dir().is_some() {
            POLL
        } else {
            POLL_OBJECTS
        };
        Protocol {
            coordinator: checkpoint.worker == 0,
            committer: local == 0,
            min_pause,
            next_poll: now,
            written: None,
            handled: resume_at,
            named: resume_at,
            in_flight: None,
            completed_at: now,
            final_named: false,
            stop,
            drain,
            stop_asked: false,
            finished: false,
            fail: FailPoint::from_env(execution),
            checkpoint,
            poll,
            named_at: now,
            stats: Vec::new(),
            seen: CheckpointStats::default(),
        }
    }

    /// The checkpoints as this worker has seen them: completed in this execution (and, on the
    /// coordinator, how long the newest took and how large it was), abandoned.
    pub fn live(&self) -> CheckpointStats {
        self.seen.clone()
    }

    fn store(&self) -> &Store {
        &self.checkpoint.shared.store
    }

    fn execution(&self) -> u64 {
        self.checkpoint.shared.config.execution
    }

    fn error(epoch: EventTime, why: impl std::fmt::Display) -> ProtocolError {
        ProtocolError {
            epoch,
            why: why.to_string(),
        }
    }

    /// Whether a stop's final checkpoint is committed (the input is draining).
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// After a step, with the output frontier at `frontier` (`None`: empty).
    pub fn on_step(
        &mut self,
        frontier: Option<EventTime>,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        if self.finished || now < self.next_poll {
            return Ok(());
        }
        self.next_poll = now + self.poll;
        // The end of the input is handled by `finish`.
        let Some(frontier) = frontier else {
            return Ok(());
        };
        if self.stop.is_requested() && !self.stop_asked {
            self.stop_asked = true;
            if let Err(e) = self.store().request_stop(self.execution()) {
                tracing::warn!(
                    "cannot ask for a stop with a checkpoint ({e}): stopping without one"
                );
                self.drain
                    .request(self.stop.cause().unwrap_or(StopCause::Signal("stop")));
                return Ok(());
            }
        }
        if self.coordinator {
            self.coordinate(frontier, now)?;
        }
        let Some((c, last)) = self.store().target(self.execution()) else {
            return Ok(());
        };
        if (c > self.handled && self.written != Some(c)) || self.stop_asked {
            // A checkpoint is named and this worker has not written its part: copies wanted.
            self.checkpoint.pause_copies(None);
        }
        if c > self.handled {
            if self.written != Some(c) && frontier >= c {
                match self.checkpoint.part(c) {
                    Ok(None) => {} // a copy is on its way: an operator has not run yet
                    Ok(Some(part)) => {
                        self.write(c, &part)?;
                        self.written = Some(c);
                        self.fail.reach(Step::AfterPart);
                    }
                    Err(PartError::Gone(why)) => {
                        tracing::debug!("skipping checkpoint {c}: {why}");
                        self.store()
                            .write_skip(c, self.checkpoint.worker, self.execution())
                            .map_err(|e| Self::error(c, e))?;
                        self.written = Some(c);
                    }
                    Err(PartError::Failed(why)) => return Err(Self::error(c, why)),
                }
            }
            if self.written == Some(c) && self.store().has_manifest(c) {
                if self.committer {
                    self.commit(c)?;
                }
                let again = self.execution() > 1;
                if self.coordinator && again && self.stats.len() == 1 && self.handled < c {
                    // After a restart: from here on, rows flow to the outputs again.
                    tracing::info!(
                        "checkpoint {c} committed: the first of execution {}",
                        self.execution()
                    );
                }
                self.handled = c;
                self.seen.completed += 1;
                self.seen.last_epoch = Some(c);
                self.seen.last_at = Some(now);
                if let (true, Some(&(took, bytes))) = (self.coordinator, self.stats.last()) {
                    self.seen.last_duration = Some(took);
                    self.seen.last_bytes = Some(bytes);
                }
                self.checkpoint.completed(c);
                // The next checkpoint is named no sooner than `min_pause` from now.
                let resume = self.min_pause.saturating_sub(COPY_LEAD);
                if !resume.is_zero() && !self.stop_asked {
                    self.checkpoint.pause_copies(Some(now + resume));
                }
            }
        }
        if last && c <= self.handled {
            // The stop's checkpoint is committed: end the input; nothing after it counts.
            self.finished = true;
            let cause = self
                .stop
                .cause()
                .unwrap_or(StopCause::Signal("a stop of the mesh"));
            self.drain.request(cause);
        }
        Ok(())
    }

    fn write(&self, c: EventTime, part: &[u8]) -> Result<(), ProtocolError> {
        self.store()
            .write_part(c, self.checkpoint.worker, self.execution(), part)
            .map(|_| ())
            .map_err(|e| Self::error(c, format!("writing the part: {e}")))
    }

    /// At the end of a run: commits checkpoint `c` (this process's outputs) and waits until
    /// the transactional sink, if any, has it too.
    fn commit_to_the_end(&self, c: EventTime) -> Result<(), ProtocolError> {
        if self.committer {
            self.commit(c)?;
        }
        self.checkpoint
            .shared
            .await_sink(c, END_WAIT)
            .map_err(|e| Self::error(c, e))
    }

    /// Polls `done` until it holds; fails with `why` (about the final checkpoint) after
    /// `deadline`.
    fn wait_until(
        &self,
        deadline: Instant,
        why: &str,
        mut done: impl FnMut() -> bool,
    ) -> Result<(), ProtocolError> {
        while !done() {
            if Instant::now() > deadline {
                return Err(Self::error(END, why));
            }
            std::thread::sleep(self.poll);
        }
        Ok(())
    }

    fn commit(&self, c: EventTime) -> Result<(), ProtocolError> {
        self.fail.reach(Step::AfterManifest);
        self.checkpoint
            .shared
            .commit_sinks(c)
            .map_err(|e| Self::error(c, format!("committing the output: {e}")))?;
        self.fail.reach(Step::AfterCommit);
        Ok(())
    }

    /// Global worker 0: completes the checkpoint in flight, or names the next one.
    fn coordinate(&mut self, frontier: EventTime, now: Instant) -> Result<(), ProtocolError> {
        let execution = self.execution();
        if let Some(c) = self.in_flight {
            let (parts, skips) = self.store().parts_written(c, execution);
            if skips > 0 {
                // A worker no longer had the copies `c` needs: name a later one soon.
                tracing::debug!("checkpoint {c} abandoned: {skips} worker(s) skipped it");
                self.seen.abandoned += 1;
                self.in_flight = None;
                self.final_named = false;
                self.completed_at = now.checked_sub(self.min_pause).unwrap_or(now);
            } else if parts == self.checkpoint.peers {
                let bytes = self.complete(c)?;
                self.stats
                    .push((now.saturating_duration_since(self.named_at), bytes));
                self.in_flight = None;
                self.completed_at = now;
            }
            return Ok(());
        }
        if self.final_named {
            return Ok(());
        }
        let every = self.checkpoint.interval();
        let c = frontier / every * every;
        let stopping = self.stop_asked || self.store().stop_requested(execution);
        let due = now.duration_since(self.completed_at) >= self.min_pause;
        if stopping && c <= self.named {
            // Nothing new to checkpoint: the stop ends at the last one (or where the run began).
            self.final_named = true;
            return self.name(self.named, true);
        }
        if c > self.named && (due || stopping) {
            self.named = c;
            self.in_flight = Some(c);
            self.named_at = now;
            self.final_named = stopping;
            return self.name(c, stopping);
        }
        Ok(())
    }

    fn name(&self, c: EventTime, last: bool) -> Result<(), ProtocolError> {
        self.store()
            .set_target(self.execution(), c, last)
            .map_err(|e| Self::error(c, format!("naming it: {e}")))
    }

    /// Writes checkpoint `c`'s manifest once every part is durable, then keeps the newest.
    /// Returns the checkpoint's size (its parts' bytes).
    fn complete(&self, c: EventTime) -> Result<u64, ProtocolError> {
        let shared = &self.checkpoint.shared;
        let (parts, sink_files): (Vec<_>, Vec<_>) = (0..self.checkpoint.peers)
            .map(|w| self.store().part_file(c, w, self.execution()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Self::error(c, format!("reading the parts: {e}")))?
            .into_iter()
            .unzip();
        let written_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let manifest = Manifest {
            epoch: c,
            execution: self.execution(),
            workers: shared.workers,
            processes: shared.processes,
            fingerprint: shared.fingerprint.clone(),
            parts,
            written_ms,
            run: shared.run.clone(),
            sink_files: sink_files.into_iter().flatten().collect(),
        };
        let fail = &self.fail;
        self.store()
            .write_manifest_with(&manifest, || fail.reach(Step::MidManifest))
            .map_err(|e| Self::error(c, format!("writing the manifest: {e}")))?;
        tracing::debug!("checkpoint {c} complete");
        self.store().retain(shared.config.retain);
        Ok(manifest.parts.iter().map(|p| p.len).sum())
    }

    /// Logs the run's checkpoints: how many, how long they took, how large they were.
    fn summarise(&self) {
        if !self.coordinator || self.stats.is_empty() {
            return;
        }
        let mut took: Vec<Duration> = self.stats.iter().map(|(d, _)| *d).collect();
        let mut sizes: Vec<u64> = self.stats.iter().map(|(_, b)| *b).collect();
        took.sort_unstable();
        sizes.sort_unstable();
        let median = |n: usize| n / 2;
        tracing::info!(
            "execution {}: {} checkpoint(s) in {:.1} ms median (max {:.1} ms) from naming to a durable manifest, {:.2} MiB median (max {:.2} MiB)",
            self.execution(),
            self.stats.len(),
            took[median(took.len())].as_secs_f64() * 1e3,
            took[took.len() - 1].as_secs_f64() * 1e3,
            sizes[median(sizes.len())] as f64 / (1 << 20) as f64,
            sizes[sizes.len() - 1] as f64 / (1 << 20) as f64,
        );
    }

    /// The input ended (the output frontier is empty). The coordinator decides how the run
    /// ends, and every worker follows: after a stop's final checkpoint `c` (committed; the
    /// input was drained after it), the rows after `c` are discarded; otherwise the final
    /// checkpoint [`END`] commits every row. One decision, written to `DIR/final-x<e>`, so that
    /// no worker takes the other path.
    pub fn finish(&mut self) -> Result<(), ProtocolError> {
        let execution = self.execution();
        let deadline = Instant::now() + END_WAIT;
        let decision = if self.coordinator {
            let decision = if self.finished { self.handled } else { END };
            self.store()
                .set_final(execution, decision)
                .map_err(|e| Self::error(decision, format!("recording the end: {e}")))?;
            decision
        } else {
            let mut decided = None;
            self.wait_until(
                deadline,
                "the coordinator never decided how the run ends",
                || {
                    decided = self.store().final_decision(execution);
                    decided.is_some()
                },
            )?;
            decided.unwrap_or(END)
        };
        if decision != END {
            // A stop: checkpoint `decision` is complete (the drain came after its manifest).
            self.commit_to_the_end(decision)?;
            self.checkpoint.discard_epoch_files();
            self.finished = true;
            self.summarise();
            return Ok(());
        }
        let part = match self.checkpoint.part(END) {
            Ok(Some(part)) => part,
            Ok(None) | Err(PartError::Gone(_)) => {
                return Err(Self::error(END, "the final part is incomplete"))
            }
            Err(PartError::Failed(why)) => return Err(Self::error(END, why)),
        };
        self.write(END, &part)?;
        self.fail.reach(Step::AfterPart);
        if self.coordinator {
            let peers = self.checkpoint.peers;
            self.wait_until(
                deadline,
                "the other workers' final parts never came",
                || self.store().parts_written(END, execution).0 == peers,
            )?;
            self.complete(END)?;
            self.summarise();
        }
        self.wait_until(deadline, "the final manifest never came", || {
            self.store().has_manifest(END)
        })?;
        self.commit_to_the_end(END)?;
        if self.coordinator && execution > 1 && self.stats.is_empty() {
            tracing::info!(
                "checkpoint {END} committed: the first of execution {}",
                execution
            );
        }
        self.checkpoint
            .shared
            .everything
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.finished = true;
        Ok(())
    }
}
