//! Running a pipeline: the per-worker loop and the process-level [`run`] that merges the report.
//!
//! Each worker builds the same dataflow — ingest → pipeline → sink, every output probed — then
//! steps it (parking while a paced source waits for its schedule) until the probe's frontier is
//! empty: every window closed, every row written. After each step a short list of
//! observers looks at the run — latency settling, progress, memory, sink flushing — and
//! none of them steers it. Finally the workers' reports travel through a small second dataflow
//! to worker 0 of process 0, which merges them, so one report covers the whole mesh.

use crate::checkpoint::protocol::{Protocol, ProtocolError, END};
use crate::checkpoint::transaction::TransactionalSink;
use crate::checkpoint::{self, CheckpointConfig, CheckpointError, Checkpointing, WorkerCheckpoint};
use crate::connectors::sink::{RowTarget, SinkSpec, SinkWriter, FLUSH_INTERVAL};
use crate::connectors::{kafka, Exhausted, Position, SourceError, SourceSpec};
use crate::console::{ProgressMode, Reporter};
use crate::ingest::{ingest, IngestConfig, IngestShared};
use crate::launch::{Mesh, MeshError};
use crate::metrics::live::{LiveMetrics, RunInfo, WorkerLive, PUBLISH_EVERY};
use crate::metrics::timeline::resident_bytes;
use crate::metrics::{ccdf_tsv, Ledger, MetricsConfig, RunReport, WorkerReport};
use crate::monitoring::graph::Graph;
use crate::monitoring::{Monitor, MonitorError};
use crate::pipeline::{Context, Outputs, Pipeline};
use crate::preflight::{ensure_distinct, prepare_dir, PreflightError, PreparedFile};
use crate::record::Record;
use crate::stop::Stop;
use crate::time::{EventTime, WatermarkPolicy};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::{Exchange, Input, Inspect, Probe};
use timely::dataflow::InputHandleVec;
use timely::dataflow::ProbeHandle;
use timely::worker::Worker;

/// Everything about a run but its pipeline and source: where results go and how it is run
/// and measured.
#[derive(Clone)]
pub struct RunOptions {
    /// Where rows go.
    pub sink: SinkSpec,
    /// Where dead letters go (`None`: counted only).
    pub dead_letter: Option<PathBuf>,
    /// Ingest settings (watermark, batching, flow control).
    pub ingest: IngestConfig,
    /// Directory for pipelines that write files of their own (q10).
    pub output_dir: PathBuf,
    /// Warm-up and timeline settings.
    pub metrics: MetricsConfig,
    /// How progress is shown on stderr.
    pub progress: ProgressMode,
    /// Ends the input early when requested (signals, a closed stdout): the run then finishes
    /// as a bounded run does.
    pub stop: Stop,
    /// Where process 0 writes the JSON report at the end (checked before the run starts).
    pub report_file: Option<PathBuf>,
    /// Where process 0 writes the processing-latency CCDF (TSV) at the end.
    pub histogram: Option<PathBuf>,
    /// Checkpoints and restore ([`crate::checkpoint`]); `None`: none.
    pub checkpoint: Option<CheckpointConfig>,
    /// With several processes: halt when another process sends no heartbeat for this long
    /// (it was stopped or hangs); `None`: never.
    pub stall_timeout: Option<Duration>,
    /// Retire an idle key of an updating result after this much event time (ms); `None`: never.
    pub state_ttl: Option<EventTime>,
    /// The pipeline's parameters (`--param NAME=VALUE`), in command-line order.
    pub params: Vec<(String, String)>,
    /// Serve Prometheus metrics, the dashboard and health probes on this address (this
    /// process's: see [`crate::monitoring::process_addr`]); `None`: not at all.
    pub metrics_addr: Option<String>,
    /// This execution's number (1, then one more after each restart by a supervisor).
    pub execution: u64,
}

impl RunOptions {
    /// Rows to `sink`, every other setting at its default: no dead-letter file, default
    /// ingest and metrics, no progress display, nothing written besides the sink.
    pub fn new(sink: SinkSpec) -> Self {
        RunOptions {
            sink,
            dead_letter: None,
            ingest: IngestConfig::default(),
            output_dir: PathBuf::from("out/files"),
            metrics: MetricsConfig::default(),
            progress: ProgressMode::Off,
            stop: Stop::new(),
            report_file: None,
            histogram: None,
            checkpoint: None,
            stall_timeout: Some(DEFAULT_STALL_TIMEOUT),
            state_ttl: None,
            params: Vec::new(),
            metrics_addr: None,
            execution: 1,
        }
    }
}

/// How long another process of the mesh may send no heartbeat before this one halts.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Everything a run needs.
#[derive(Clone)]
pub struct RunConfig<R: 'static> {
    /// The pipeline.
    pub pipeline: &'static Pipeline<R>,
    /// Where records come from.
    pub source: SourceSpec<R>,
    /// Where results go, how the run goes and is measured.
    pub options: RunOptions,
}

impl<R: Record> RunConfig<R> {
    /// A run of `pipeline` from `source` to `sink` with every other setting at its default.
    pub fn new(pipeline: &'static Pipeline<R>, source: SourceSpec<R>, sink: SinkSpec) -> Self {
        RunConfig {
            pipeline,
            source,
            options: RunOptions::new(sink),
        }
    }

    /// The checks of [`crate::preflight`] for this run; returns the prepared report and
    /// histogram files.
    fn preflight(&self) -> Result<(Option<PreparedFile>, Option<PreparedFile>), PreflightError> {
        let o = &self.options;
        crate::pipeline::check_params(self.pipeline.name, self.pipeline.params, &o.params)
            .map_err(PreflightError::Param)?;
        let mut inputs: Vec<(&str, &Path)> = Vec::new();
        if let SourceSpec::File { path, .. } = &self.source {
            if path.as_os_str() != "-" {
                inputs.push(("the input file", path));
            }
        }
        let mut outputs: Vec<(&str, &Path)> = Vec::new();
        if let SinkSpec::File(path) = &o.sink {
            outputs.push(("the sink", path));
        }
        let named = [
            ("the dead-letter file", &o.dead_letter),
            ("the report file", &o.report_file),
            ("the histogram file", &o.histogram),
        ];
        outputs.extend(
            named
                .iter()
                .filter_map(|(what, path)| path.as_deref().map(|p| (*what, p))),
        );
        ensure_distinct(&inputs, &outputs)?;
        if let (SourceSpec::Kafka { url: from, .. }, SinkSpec::Kafka { url: to, .. }) =
            (&self.source, &o.sink)
        {
            if from == to {
                return Err(PreflightError::SinkIsSource(to.to_string()));
            }
        }
        if self.pipeline.writes_files {
            prepare_dir(&o.output_dir, "the output directory")?;
        }
        let prepare = |path: &Option<PathBuf>, what| {
            path.as_deref()
                .map(|p| PreparedFile::new(p, what))
                .transpose()
        };
        Ok((
            prepare(&o.report_file, "the report file")?,
            prepare(&o.histogram, "the histogram file")?,
        ))
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Checkpointing could not start, or the run cannot be checkpointed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Taking a checkpoint failed during the run.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The mesh could not be formed.
    #[error(transparent)]
    Mesh(#[from] MeshError),
    /// The source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The sink or dead-letter file could not be opened.
    #[error("cannot open the output")]
    Open(#[source] std::io::Error),
    /// Writing to the sink or dead-letter file failed during the run.
    #[error("writing results")]
    Sink(#[source] std::io::Error),
    /// The run was refused before it started (an output that is an input, an unwritable
    /// report file, …).
    #[error(transparent)]
    Refused(#[from] PreflightError),
    /// The report or histogram file could not be written at the end.
    #[error("writing {path}")]
    Report {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The metrics endpoint could not start.
    #[error(transparent)]
    Monitor(#[from] MonitorError),
    /// A worker panicked.
    #[error("worker {worker} failed: {message}")]
    Worker {
        /// Local worker index.
        worker: usize,
        /// Panic message.
        message: String,
    },
}

/// The outcome of one process's part in a run.
pub struct RunOutcome {
    /// The merged report (on process 0; `None` on other processes).
    pub report: Option<RunReport>,
}

/// Runs `config` on this process's share of `mesh`.
pub fn run<R: Record>(config: RunConfig<R>, mesh: &Mesh) -> Result<RunOutcome, RunError> {
    let (report_file, histogram) = config.preflight()?;
    if config.options.checkpoint.is_some() {
        replayable(&config.source)?;
    }
    config.source.validate()?;
    let options = &config.options;
    let checkpointing = match &options.checkpoint {
        Some(c) => Some(Arc::new(start_checkpoints(&config, c, mesh)?)),
        None => None,
    };
    if checkpointing.as_ref().is_some_and(|c| c.resume_at() == END) {
        tracing::warn!("the checkpoint restored is the end of a completed run: every row is already in the output");
        return Ok(RunOutcome { report: None });
    }
    // With checkpoints, rows reach the file outputs through per-epoch files, committed with
    // the checkpoints: the process's writers are not used.
    let (sink, dead) = if checkpointing.is_some() {
        (SinkWriter::null(), SinkWriter::null())
    } else {
        let sink = options.sink.open(&options.stop).map_err(RunError::Open)?;
        let dead = match &options.dead_letter {
            Some(path) => SinkSpec::File(path.clone())
                .open(&options.stop)
                .map_err(RunError::Open)?,
            None => SinkWriter::null(),
        };
        (sink, dead)
    };
    let processes = mesh.processes();
    let label = config.source.label();
    let live = LiveMetrics::new(RunInfo {
        pipeline: config.pipeline.name.to_string(),
        source: label.clone(),
        sink: options.sink.label(),
        process: mesh.process(),
        processes,
        workers: mesh.workers(),
        execution: options.execution,
    });
    // The endpoint answers until this function returns: through the sink's flush and the
    // report files, so that a last scrape sees a finished run's final counts.
    let _monitor = match &options.metrics_addr {
        Some(addr) => {
            let graph = pipeline_graph(config.pipeline, options.ingest.policy);
            Some(Monitor::start(addr, Arc::clone(&live), graph)?)
        }
        None => None,
    };
    let addresses: Arc<Vec<String>> = Arc::new(mesh.addresses().to_vec());
    let reporter = Reporter::start(
        Arc::clone(&live),
        options.progress,
        config.source.expected_events(),
    );
    let latency_from = config.source.latency_from();
    let config = Arc::new(config);
    let ended_at_checkpoint = checkpointing.clone();
    let shared = Arc::new((
        sink.clone(),
        dead.clone(),
        Instant::now(),
        live,
        checkpointing,
    ));
    let worker_config = Arc::clone(&config);
    let results = mesh.execute(move |worker| {
        let (sink, dead, start, live, checkpointing) = &*shared;
        let shared = Shared {
            sink: sink.clone(),
            dead: dead.clone(),
            live: Arc::clone(live),
            checkpointing: checkpointing.clone(),
            addresses: Arc::clone(&addresses),
        };
        run_worker(worker, &worker_config, shared, *start, processes)
    });
    reporter.finish();
    let results = results?;
    let mut reports = None;
    let mut positions = Vec::new();
    let mut first_error = None;
    for (worker, result) in results.into_iter().enumerate() {
        match result {
            Ok(Ok(outcome)) => {
                reports = reports.or(outcome.reports);
                positions.extend(outcome.positions);
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(message) => {
                first_error.get_or_insert(RunError::Worker { worker, message });
            }
        }
    }
    sink.finish().map_err(RunError::Sink)?;
    dead.finish().map_err(RunError::Sink)?;
    if let Some(e) = first_error {
        return Err(e);
    }
    // Every row of this process is written and flushed: only now may the source record how
    // far it read, so a resumed run never skips input whose rows were lost. With checkpoints,
    // a stop ends at its final checkpoint (whose completion recorded the positions): what was
    // read after it is produced again on restore and must not count as read.
    if ended_at_checkpoint.is_none_or(|c| c.committed_everything()) {
        config.source.commit(&positions)?;
    }
    let report = reports.map(|reports| {
        RunReport::merge(
            config.pipeline.name,
            &label,
            latency_from,
            processes,
            reports,
        )
    });
    if let Some(report) = &report {
        let write = |file: PreparedFile, bytes: &[u8]| {
            let path = file.path().display().to_string();
            file.commit(bytes)
                .map_err(|source| RunError::Report { path, source })
        };
        if let Some(file) = report_file {
            write(file, (report.to_json() + "\n").as_bytes())?;
        }
        if let Some(file) = histogram {
            write(file, ccdf_tsv(report.latency_histogram()).as_bytes())?;
        }
    }
    Ok(RunOutcome { report })
}

/// What the workers of a process share.
struct Shared {
    sink: SinkWriter,
    dead: SinkWriter,
    live: Arc<LiveMetrics>,
    checkpointing: Option<Arc<Checkpointing>>,
    /// Every process's address, for naming a lost one.
    addresses: Arc<Vec<String>>,
}

/// The run's file outputs, absolute: where checkpointed rows are committed.
fn checkpointed_outputs(
    options: &RunOptions,
) -> Result<(Option<PathBuf>, Option<PathBuf>), CheckpointError> {
    let absolute = |p: &Path| {
        std::path::absolute(p).map_err(|source| CheckpointError::Io {
            path: p.display().to_string(),
            source,
        })
    };
    let sink = match &options.sink {
        SinkSpec::File(path) => Some(absolute(path)?),
        // Kafka rows go through the transactional sink's epoch files.
        SinkSpec::Null | SinkSpec::Kafka { .. } => None,
        SinkSpec::Mqtt { .. } => {
            return Err(CheckpointError::Unsupported(
                "checkpoints need a file sink (--sink file:PATH), a Kafka sink (exactly-once, with transactions) or none (--sink null): MQTT messages could not be taken back after a crash".into(),
            ))
        }
        SinkSpec::Stdout => {
            return Err(CheckpointError::Unsupported(
                "checkpoints need a file sink (--sink file:PATH), a Kafka sink (exactly-once, with transactions) or none (--sink null): rows written to standard output could not be taken back after a crash".into(),
            ))
        }
    };
    let dead = options.dead_letter.as_deref().map(absolute).transpose()?;
    Ok((sink, dead))
}

/// Builds `pipeline` on `worker` with no input (closed at once) and outputs that write nothing.
fn build_bare<R: Record>(
    worker: &mut Worker,
    pipeline: &'static Pipeline<R>,
    policy: WatermarkPolicy,
) {
    worker.dataflow::<EventTime, _, _>(|scope| {
        let (_input, records) = scope.new_input::<Vec<R>>();
        let outputs = Outputs {
            probe: ProbeHandle::new(),
            sink: RowTarget::Shared(SinkWriter::null()),
            dead_letters: RowTarget::Shared(SinkWriter::null()),
            ledger: Rc::new(RefCell::new(Ledger::new(MetricsConfig::default()))),
            output_dir: PathBuf::new(),
        };
        let mut ctx = Context::new(scope, pipeline.name, policy, outputs);
        (pipeline.build)(records, &mut ctx);
    });
}

/// Builds `pipeline` once on a throwaway single-threaded worker, with no input, and returns the
/// operators in it that cannot take part in checkpoints.
fn probe_pipeline<R: Record>(
    pipeline: &'static Pipeline<R>,
    policy: WatermarkPolicy,
) -> Vec<String> {
    timely::execute::execute_directly(move |worker| {
        checkpoint::uncheckpointable(|| build_bare(worker, pipeline, policy))
    })
}

/// The dataflow graph of `pipeline`, from a throwaway single-threaded build (for the
/// dashboard; the ingest operator shows as its input).
fn pipeline_graph<R: Record>(pipeline: &'static Pipeline<R>, policy: WatermarkPolicy) -> Graph {
    timely::execute::execute_directly(move |worker| {
        Graph::capture(worker, |worker| build_bare(worker, pipeline, policy))
    })
}

/// Starts this process's checkpointing for `config`.
/// Refuses a checkpointed run over a source that cannot be read again after a crash — before
/// anything connects to it.
fn replayable<R: Record>(source: &SourceSpec<R>) -> Result<(), CheckpointError> {
    match source {
        SourceSpec::Mqtt { .. } => Err(CheckpointError::Unsupported(
            "an MQTT broker keeps no history to read again after a crash: checkpoint a file or Kafka source (bridge the MQTT topics to Kafka for exactly-once)".into(),
        )),
        SourceSpec::File { path, .. } if path.as_os_str() == "-" => Err(CheckpointError::Unsupported(
            "standard input cannot be read again after a crash: checkpoint a file or Kafka source".into(),
        )),
        _ => Ok(()),
    }
}

fn start_checkpoints<R: Record>(
    config: &RunConfig<R>,
    checkpoint: &CheckpointConfig,
    mesh: &Mesh,
) -> Result<Checkpointing, RunError> {
    let options = &config.options;
    let policy = options.ingest.policy;
    if checkpoint.interval == 0
        || !checkpoint
            .interval
            .is_multiple_of(policy.granularity_ms.max(1))
    {
        return Err(CheckpointError::Unsupported(format!(
            "--checkpoint-interval ({} ms) must be a positive multiple of the stamping granularity ({} ms)",
            checkpoint.interval, policy.granularity_ms
        ))
        .into());
    }
    let (sink, dead) = checkpointed_outputs(options)?;
    let unsupported = probe_pipeline(config.pipeline, policy);
    if !unsupported.is_empty() {
        return Err(CheckpointError::Unsupported(format!(
            "{} cannot be checkpointed yet: {} keep state that checkpoints do not capture; run it without --checkpoint-dir",
            config.pipeline.name,
            unsupported.join(", ")
        ))
        .into());
    }
    let outputs: Vec<PathBuf> = sink.into_iter().chain(dead).collect();
    let trees: Vec<PathBuf> = if config.pipeline.writes_files {
        let dir =
            std::path::absolute(&options.output_dir).map_err(|source| CheckpointError::Io {
                path: options.output_dir.display().to_string(),
                source,
            })?;
        vec![dir]
    } else {
        Vec::new()
    };
    let fingerprint = checkpoint::fingerprint(&[
        ("pipeline", config.pipeline.name.to_string()),
        ("source", config.source.fingerprint()),
        ("delay", policy.delay_ms.to_string()),
        ("granularity", policy.granularity_ms.to_string()),
        ("interval", checkpoint.interval.to_string()),
    ]);
    let transactional = match &options.sink {
        SinkSpec::Kafka { url, options } => Some(TransactionalSink {
            name: format!("kafka-{}", url.topic),
            open: kafka::open_transactional(url, options),
        }),
        _ => None,
    };
    Ok(Checkpointing::start(
        checkpoint.clone(),
        fingerprint,
        (mesh.workers(), mesh.processes(), mesh.process()),
        &outputs,
        &trees,
        transactional,
    )?)
}

/// Looks at a running worker after each step, never steering it.
trait Observer {
    /// The worker just stepped; `now` is the time after the step.
    fn on_step(&mut self, now: Instant);
}

/// Settles the latency ledger against the output probe: events whose outputs are all written.
struct SettleLatency {
    ledger: Rc<RefCell<Ledger>>,
    probe: ProbeHandle<EventTime>,
}

impl Observer for SettleLatency {
    fn on_step(&mut self, now: Instant) {
        self.ledger.borrow_mut().settle(&self.probe, now);
    }
}

/// Publishes the worker's counters and gauges to the process's live view a few times a second
/// (the progress line, the metrics endpoint and the dashboard read it).
struct PublishLive {
    ledger: Rc<RefCell<Ledger>>,
    probe: ProbeHandle<EventTime>,
    live: Arc<LiveMetrics>,
    slot: usize,
    next: Instant,
}

/// Publishes local worker `slot`'s state as of `now`: its ledger and its output frontier.
fn publish_worker(
    live: &LiveMetrics,
    slot: usize,
    ledger: &Ledger,
    probe: &ProbeHandle<EventTime>,
    now: Instant,
) {
    let frontier = probe.with_frontier(|f| f.first().copied());
    live.publish(slot, WorkerLive::from_ledger(ledger, frontier, now));
}

impl Observer for PublishLive {
    fn on_step(&mut self, now: Instant) {
        if now < self.next {
            return;
        }
        self.next = now + PUBLISH_EVERY;
        publish_worker(
            &self.live,
            self.slot,
            &self.ledger.borrow(),
            &self.probe,
            now,
        );
    }
}

/// Samples the process's resident memory once per timeline interval (one worker per process).
struct SampleMemory {
    ledger: Rc<RefCell<Ledger>>,
    interval: Duration,
    next: Instant,
}

impl Observer for SampleMemory {
    fn on_step(&mut self, now: Instant) {
        if now < self.next {
            return;
        }
        self.next = now + self.interval;
        let mut ledger = self.ledger.borrow_mut();
        if let (Some(origin), Some(bytes)) = (ledger.first_read, resident_bytes()) {
            ledger.timeline.record_rss(origin, now, bytes);
        }
    }
}

/// Writes out rows the file sinks have buffered long enough (one worker per process).
struct FlushSinks {
    sinks: [SinkWriter; 2],
}

impl Observer for FlushSinks {
    fn on_step(&mut self, _now: Instant) {
        for sink in &self.sinks {
            sink.flush_if_due();
        }
    }
}

/// Tells every other worker, once a second, that this one is alive, and halts the process
/// (exit [`PEER_LOST`](crate::cli::exit::PEER_LOST)) when a worker of another process has been
/// silent for the stall timeout: a stopped (`kill -STOP`) or hung process keeps its sockets
/// open, so only its silence shows.
struct Heartbeats {
    input: InputHandleVec<u64, usize>,
    seen: Rc<RefCell<Vec<Instant>>>,
    index: usize,
    workers: usize,
    addresses: Arc<Vec<String>>,
    timeout: Duration,
    next: Instant,
}

impl Heartbeats {
    fn new(
        worker: &mut Worker,
        workers: usize,
        addresses: Arc<Vec<String>>,
        timeout: Duration,
    ) -> Self {
        let now = Instant::now();
        let seen = Rc::new(RefCell::new(vec![now; worker.peers()]));
        let heard = Rc::clone(&seen);
        let input = worker.dataflow::<u64, _, _>(|scope| {
            let (input, beats) = scope.new_input::<Vec<usize>>();
            beats.broadcast().inspect(move |from: &usize| {
                if let Some(at) = heard.borrow_mut().get_mut(*from) {
                    *at = Instant::now();
                }
            });
            input
        });
        Heartbeats {
            input,
            seen,
            index: worker.index(),
            workers: workers.max(1),
            addresses,
            timeout,
            next: now,
        }
    }
}

impl Observer for Heartbeats {
    fn on_step(&mut self, now: Instant) {
        if now < self.next {
            return;
        }
        self.next = now + Duration::from_secs(1);
        self.input.send(self.index);
        let round = *self.input.time() + 1;
        self.input.advance_to(round);
        let mine = self.index / self.workers;
        let seen = self.seen.borrow();
        for (worker, at) in seen.iter().enumerate() {
            let process = worker / self.workers;
            let silent = now.saturating_duration_since(*at);
            if process != mine && silent > self.timeout {
                let address = self.addresses.get(process).map_or("?", String::as_str);
                crate::launch::halt_peer_lost(
                    process,
                    address,
                    &format!("no heartbeat for {} s (stopped or hung)", silent.as_secs()),
                );
            }
        }
    }
}

/// One worker's run; returns every worker's report on global worker 0.
fn run_worker<R: Record>(
    worker: &mut Worker,
    config: &RunConfig<R>,
    shared: Shared,
    start: Instant,
    processes: usize,
) -> Result<WorkerOutcome, RunError> {
    let index = worker.index();
    let peers = worker.peers();
    let local = index % (peers / processes.max(1)).max(1);
    let options = &config.options;
    let ledger = Rc::new(RefCell::new(Ledger::new(options.metrics)));
    let error = Rc::new(RefCell::new(None));
    let positions = Rc::new(RefCell::new(Vec::new()));
    // Every worker must build the same dataflows: one that cannot open its share of the source
    // still takes part, with no input, and reports the error at the end.
    let reader = config.source.open(index, peers, start).unwrap_or_else(|e| {
        *error.borrow_mut() = Some(e);
        Box::new(Exhausted)
    });
    let probe = ProbeHandle::<EventTime>::new();
    let name = config.pipeline.name;
    let checkpoint = shared
        .checkpointing
        .as_ref()
        .map(|c| WorkerCheckpoint::new(Arc::clone(c), index, peers));
    // With checkpoints, a stop is answered by a final checkpoint first; only then does the
    // input end (`drain`).
    let drain = if checkpoint.is_some() {
        Stop::new()
    } else {
        options.stop.clone()
    };
    let (sink_target, dead_target) = match &checkpoint {
        Some(c) => {
            let (mut sink, dead) = checkpointed_outputs(options)?;
            if let Some(output) = c.shared.transactional_output() {
                sink = Some(output.to_path_buf());
            }
            let target = |path: Option<PathBuf>| match path {
                Some(p) => RowTarget::Epochs(c.epoch_files(&p)),
                None => RowTarget::Shared(SinkWriter::null()),
            };
            (target(sink), target(dead))
        }
        None => (
            RowTarget::Shared(shared.sink.clone()),
            RowTarget::Shared(shared.dead.clone()),
        ),
    };

    checkpoint::building(checkpoint.clone(), || {
        worker.dataflow::<EventTime, _, _>(|scope| {
            let shared_ingest = IngestShared {
                ledger: Rc::clone(&ledger),
                error: Rc::clone(&error),
                stop: drain.clone(),
                probe: probe.clone(),
                positions: Rc::clone(&positions),
                checkpoint: checkpoint.clone(),
            };
            let (records, bad) = ingest(
                scope,
                &format!("{name}.ingest"),
                reader,
                options.ingest,
                shared_ingest,
            );
            let outputs = Outputs {
                probe: probe.clone(),
                sink: sink_target,
                dead_letters: dead_target,
                ledger: Rc::clone(&ledger),
                output_dir: options.output_dir.clone(),
            };
            let mut ctx = Context::new(scope, name, options.ingest.policy, outputs)
                .with_state_ttl(options.state_ttl)
                .with_params(options.params.clone());
            ctx.dead_letter(bad);
            (config.pipeline.build)(records, &mut ctx);
        })
    });
    let mut protocol = checkpoint.as_ref().map(|c| {
        let min_pause = c.shared.config.min_pause;
        Protocol::new(
            Rc::clone(c),
            local,
            min_pause,
            options.stop.clone(),
            drain.clone(),
        )
    });

    let now = Instant::now();
    let publisher = PublishLive {
        ledger: Rc::clone(&ledger),
        probe: probe.clone(),
        live: Arc::clone(&shared.live),
        slot: local,
        next: now,
    };
    let live = Arc::clone(&shared.live);
    live.set_running();
    let mut checkpoints_published = now;
    let mut observers: Vec<Box<dyn Observer>> = vec![
        Box::new(SettleLatency {
            ledger: Rc::clone(&ledger),
            probe: probe.clone(),
        }),
        Box::new(publisher),
    ];
    if let Some(timeout) = options.stall_timeout.filter(|_| processes > 1) {
        let workers = peers / processes;
        observers.push(Box::new(Heartbeats::new(
            worker,
            workers,
            Arc::clone(&shared.addresses),
            timeout,
        )));
    }
    if local == 0 {
        observers.push(Box::new(SampleMemory {
            ledger: Rc::clone(&ledger),
            interval: options.metrics.interval,
            next: now,
        }));
        observers.push(Box::new(FlushSinks {
            sinks: [shared.sink, shared.dead],
        }));
    }
    let mut failed: Option<RunError> = None;
    while !probe.done() {
        worker.step_or_park(Some(FLUSH_INTERVAL));
        let now = Instant::now();
        for observer in &mut observers {
            observer.on_step(now);
        }
        if let Some(protocol) = protocol.as_mut().filter(|_| failed.is_none()) {
            let frontier = probe.with_frontier(|f| f.first().copied());
            if let Err(e) = protocol.on_step(frontier, now) {
                // No more checkpoints: end the input; the error ends the run.
                tracing::error!("{e}");
                drain.request(crate::stop::StopCause::Signal("a failed checkpoint"));
                failed = Some(e.into());
            }
            if local == 0 && now >= checkpoints_published {
                checkpoints_published = now + PUBLISH_EVERY;
                live.publish_checkpoints(protocol.live());
            }
        }
    }
    if let (Some(protocol), None) = (protocol.as_mut(), &failed) {
        if error.borrow().is_none() {
            protocol.finish()?;
        }
    }
    ledger.borrow_mut().settle(&probe, Instant::now());
    publish_worker(&live, local, &ledger.borrow(), &probe, Instant::now());
    if let (0, Some(protocol)) = (local, protocol.as_ref()) {
        live.publish_checkpoints(protocol.live());
    }
    let positions = positions.borrow().clone();
    let mine =
        WorkerReport::from_ledger(index, &ledger.borrow(), positions.clone(), Instant::now());
    let reports = gather(worker, mine);
    if let Some(e) = error.borrow_mut().take() {
        return Err(e.into());
    }
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(WorkerOutcome {
        reports: (index == 0).then_some(reports),
        positions,
    })
}

/// What one worker hands back to its process.
struct WorkerOutcome {
    /// Every worker's report (global worker 0 only).
    reports: Option<Vec<WorkerReport>>,
    /// How far the worker read its source's partitions.
    positions: Vec<Position>,
}

/// Sends every worker's report to global worker 0; returns them there (empty elsewhere).
fn gather(worker: &mut Worker, mine: WorkerReport) -> Vec<WorkerReport> {
    let collected = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&collected);
    let (mut input, probe) = worker.dataflow::<u64, _, _>(|scope| {
        let (input, stream) = scope.new_input::<Vec<WorkerReport>>();
        let probe = stream
            .exchange(|_| 0)
            .inspect(move |r: &WorkerReport| sink.borrow_mut().push(r.clone()))
            .probe();
        (input, probe.0)
    });
    input.send(mine);
    input.advance_to(1);
    drop(input);
    while !probe.done() {
        worker.step_or_park(Some(Duration::from_millis(100)));
    }
    let out = collected.borrow_mut().drain(..).collect();
    out
}
