//! Running a query: the per-worker loop and the process-level `run` that merges the report.
//!
//! Each worker builds the same dataflow — ingest → query → sink, every output probed — then steps
//! it (parking while a paced source waits for its schedule) and settles the latency [`Ledger`]
//! against the probe after every step, until the probe's frontier is empty: every window closed,
//! every row written. Finally the workers' reports travel through a small second dataflow to
//! worker 0 of process 0, which merges them, so one report covers the whole mesh.

use crate::launch::{Mesh, MeshError};
use crate::metrics::timeline::resident_bytes;
use crate::metrics::{ccdf_tsv, Ledger, MetricsConfig, RunReport, WorkerReport};
use crate::preflight::{ensure_distinct, prepare_dir, PreflightError, PreparedFile};
use crate::progress::{Board, ProgressMode, Reporter};
use crate::query::{Outputs, Query, QueryContext};
use crate::sink::{SinkSpec, SinkWriter, FLUSH_INTERVAL};
use crate::source::{ingest, Exhausted, IngestConfig, SourceError, SourceSpec};
use crate::stop::Stop;
use crate::time::EventTime;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use timely::dataflow::operators::{Exchange, Input, Inspect, Probe};
use timely::dataflow::ProbeHandle;
use timely::worker::Worker;

/// Everything a run needs.
#[derive(Clone)]
pub struct RunConfig {
    /// The query.
    pub query: &'static Query,
    /// Where events come from.
    pub source: SourceSpec,
    /// Where rows go.
    pub sink: SinkSpec,
    /// Where dead letters go (`None`: counted only).
    pub dead_letter: Option<PathBuf>,
    /// Ingest settings (watermark, batching, flow control).
    pub ingest: IngestConfig,
    /// Directory for queries that write files of their own (q10).
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
}

impl RunConfig {
    /// A run of `query` from `source` to `sink` with every other setting at its default: no
    /// dead-letter file, default ingest and metrics, no progress display, nothing written
    /// besides the sink.
    pub fn new(query: &'static Query, source: SourceSpec, sink: SinkSpec) -> Self {
        RunConfig {
            query,
            source,
            sink,
            dead_letter: None,
            ingest: IngestConfig::default(),
            output_dir: PathBuf::from("out/files"),
            metrics: MetricsConfig::default(),
            progress: ProgressMode::Off,
            stop: Stop::new(),
            report_file: None,
            histogram: None,
        }
    }

    /// The checks of [`crate::preflight`] for this run; returns the prepared report and
    /// histogram files.
    fn preflight(&self) -> Result<(Option<PreparedFile>, Option<PreparedFile>), PreflightError> {
        let mut inputs: Vec<(&str, &Path)> = Vec::new();
        if let SourceSpec::File { path, .. } = &self.source {
            if path.as_os_str() != "-" {
                inputs.push(("the input file", path));
            }
        }
        let mut outputs: Vec<(&str, &Path)> = Vec::new();
        if let SinkSpec::File(path) = &self.sink {
            outputs.push(("the sink", path));
        }
        if let Some(path) = &self.dead_letter {
            outputs.push(("the dead-letter file", path));
        }
        if let Some(path) = &self.report_file {
            outputs.push(("the report file", path));
        }
        if let Some(path) = &self.histogram {
            outputs.push(("the histogram file", path));
        }
        ensure_distinct(&inputs, &outputs)?;
        if let (SourceSpec::Kafka { url: from, .. }, SinkSpec::Kafka { url: to, .. }) =
            (&self.source, &self.sink)
        {
            if from == to {
                return Err(PreflightError::SinkIsSource(to.to_string()));
            }
        }
        if self.query.writes_files {
            prepare_dir(&self.output_dir, "the output directory")?;
        }
        let prepare = |path: &Option<PathBuf>, what| {
            path.as_deref()
                .map(|p| PreparedFile::new(p, what))
                .transpose()
        };
        Ok((
            prepare(&self.report_file, "the report file")?,
            prepare(&self.histogram, "the histogram file")?,
        ))
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
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
pub fn run(config: RunConfig, mesh: &Mesh) -> Result<RunOutcome, RunError> {
    let (report_file, histogram) = config.preflight()?;
    config.source.validate()?;
    let sink = SinkWriter::open(&config.sink)
        .map_err(RunError::Open)?
        .stop_on_close(config.stop.clone());
    let dead = match &config.dead_letter {
        Some(path) => SinkWriter::open(&SinkSpec::File(path.clone())).map_err(RunError::Open)?,
        None => SinkWriter::null(),
    };
    let processes = mesh.processes();
    let source = config.source.clone();
    let board = Board::new(mesh.workers());
    let reporter = Reporter::start(
        Arc::clone(&board),
        config.progress,
        config.source.expected_events(),
    );
    let shared = Arc::new((config, sink.clone(), dead.clone(), Instant::now(), board));
    let results = mesh.execute(move |worker| {
        let (config, sink, dead, start, board) = &*shared;
        run_worker(
            worker,
            config,
            Shared {
                sink: sink.clone(),
                dead: dead.clone(),
                board: Arc::clone(board),
            },
            *start,
            processes,
        )
    });
    reporter.finish();
    let results = results?;
    let mut report = None;
    let mut positions = Vec::new();
    let mut first_error = None;
    for (worker, result) in results.into_iter().enumerate() {
        match result {
            Ok(Ok(outcome)) => {
                report = report.or(outcome.report);
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
    // far it read, so a resumed run never skips input whose rows were lost.
    source.commit(&positions)?;
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
    board: Arc<Board>,
}

/// One worker's run; returns the merged report on global worker 0.
fn run_worker(
    worker: &mut Worker,
    config: &RunConfig,
    shared: Shared,
    start: Instant,
    processes: usize,
) -> Result<WorkerOutcome, RunError> {
    let index = worker.index();
    let peers = worker.peers();
    let local = index % (peers / processes.max(1)).max(1);
    let ledger = Rc::new(RefCell::new(Ledger::new(config.metrics)));
    let error = Rc::new(RefCell::new(None));
    // Every worker must build the same dataflows: one that cannot open its share of the source
    // still takes part, with no input, and reports the error at the end.
    let reader = config.source.open(index, peers, start).unwrap_or_else(|e| {
        *error.borrow_mut() = Some(e);
        Box::new(Exhausted)
    });
    let probe = ProbeHandle::<EventTime>::new();

    worker.dataflow::<EventTime, _, _>(|scope| {
        let name = format!("{}.ingest", config.query.name);
        let (events, bad) = ingest(
            scope,
            &name,
            reader,
            config.ingest,
            Rc::clone(&ledger),
            Rc::clone(&error),
            config.stop.clone(),
        );
        let outputs = Outputs {
            probe: probe.clone(),
            sink: shared.sink.clone(),
            dead_letters: shared.dead.clone(),
            ledger: Rc::clone(&ledger),
            output_dir: config.output_dir.clone(),
        };
        let mut ctx = QueryContext::new(scope, config.query.name, config.ingest.policy, outputs);
        ctx.dead_letter(bad);
        (config.query.build)(events, &mut ctx);
    });

    // The process's first worker samples its memory once per timeline interval; every worker
    // publishes its progress a few times a second.
    let interval = config.metrics.interval;
    let mut next_rss = Instant::now();
    let mut next_publish = Instant::now();
    while !probe.done() {
        worker.step_or_park(Some(FLUSH_INTERVAL));
        if local == 0 {
            shared.sink.flush_if_due();
            shared.dead.flush_if_due();
        }
        let now = Instant::now();
        let mut ledger = ledger.borrow_mut();
        ledger.settle(&probe, now);
        if now >= next_publish {
            next_publish = now + Duration::from_millis(200);
            let p99 = ledger
                .first_read
                .and_then(|origin| ledger.timeline.recent_p99_ns(origin, now));
            shared.board.publish(local, ledger.events, p99);
        }
        if local == 0 && now >= next_rss {
            next_rss = now + interval;
            if let (Some(origin), Some(bytes)) = (ledger.first_read, resident_bytes()) {
                ledger.timeline.record_rss(origin, now, bytes);
            }
        }
    }
    ledger.borrow_mut().settle(&probe, Instant::now());
    let mine = WorkerReport::from_ledger(index, &ledger.borrow(), Instant::now());
    let positions = mine.positions.clone();
    let reports = gather(worker, mine);
    if let Some(e) = error.borrow_mut().take() {
        return Err(e.into());
    }
    let report = (index == 0).then(|| {
        RunReport::merge(
            config.query.name,
            &config.source.label(),
            config.source.latency_from(),
            processes,
            reports,
        )
    });
    Ok(WorkerOutcome { report, positions })
}

/// What one worker hands back to its process.
struct WorkerOutcome {
    /// The merged report (global worker 0 only).
    report: Option<RunReport>,
    /// How far the worker read its source's partitions.
    positions: Vec<crate::source::Position>,
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
