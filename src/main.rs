//! The `sluice` binary: parse the command line, set up logging and signals, dispatch, map errors
//! to exit codes.
//!
//! Exit codes: see [`sluice::cli::exit::TABLE`] (0 success, also after a graceful stop; 1 the
//! run failed; 2 invalid command line; 3 a resource is unavailable; 4 too much input rejected;
//! 130/143 a second SIGINT/SIGTERM).

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches};
use sluice::cli::exit::{FAILED, REJECTED, UNAVAILABLE, USAGE};
use sluice::cli::{CatArgs, Cli, Command, Endpoint, GenArgs, ReportFormat, RunArgs};
use sluice::driver::{run, RunConfig, RunError};
use sluice::launch::MeshError;
use sluice::sink::{per_process_path, SinkSpec};
use sluice::source::nexmark::Generator;
use sluice::source::{SourceError, SourceSpec};
use sluice::stop::Stop;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

/// mimalloc: dataflows allocate and free many small strings per event, and glibc's allocator
/// spent ~40 % of q0's time on them. Set here, not in the library, so programs built on the
/// library choose their own.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An error with the exit code it maps to.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl Failure {
    fn usage(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: USAGE,
            error: error.into(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure {
            code: FAILED,
            error,
        }
    }
}

impl From<RunError> for Failure {
    fn from(e: RunError) -> Self {
        let code = match &e {
            RunError::Mesh(MeshError::Invalid(_)) | RunError::Source(SourceError::Unknown(_)) => {
                USAGE
            }
            RunError::Refused(p) if p.is_usage() => USAGE,
            RunError::Refused(_) => UNAVAILABLE,
            RunError::Source(SourceError::Kafka(k)) if k.is_usage() => USAGE,
            RunError::Source(SourceError::Kafka(k)) if k.is_unavailable() => UNAVAILABLE,
            RunError::Source(SourceError::Kafka(_)) => FAILED,
            RunError::Mesh(_) | RunError::Open(_) => UNAVAILABLE,
            RunError::Source(SourceError::Io { .. }) => UNAVAILABLE,
            RunError::Sink(_) | RunError::Report { .. } | RunError::Worker { .. } => FAILED,
        };
        Failure {
            code,
            error: e.into(),
        }
    }
}

/// Whether an error is stdout closed by its reader: not a failure for `| head`.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_logging() {
    // Colours only for a person at a terminal who has not asked for none (NO_COLOR).
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        // A closed stderr must not panic the thread that logs (e.g. the signal handler's).
        .log_internal_errors(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_logging();
    let sub = matches.subcommand().map(|(_, m)| m.clone());
    let result = match (cli.command, sub) {
        (Command::List { json }, _) => list(json),
        (Command::Gen(args), Some(m)) => generate(&args, &m),
        (Command::Cat(args), _) => cat(&args),
        (Command::Run(args), Some(m)) => run_query(&args, &m),
        (_, None) => unreachable!("clap requires a subcommand"),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) if is_broken_pipe(&f.error) => ExitCode::SUCCESS,
        Err(f) => {
            // stderr may be closed: the exit code still tells.
            let _ = writeln!(std::io::stderr(), "sluice: error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}

fn list(json: bool) -> Result<u8, Failure> {
    let mut out = std::io::stdout().lock();
    for q in sluice::queries::ALL {
        let line = if json {
            serde_json::json!({
                "name": q.name, "family": q.family, "description": q.description, "columns": q.columns,
            })
            .to_string()
        } else {
            format!("{:<6} {:<8} {}", q.name, q.family, q.description)
        };
        writeln!(out, "{line}").context("writing the query list")?;
    }
    Ok(0)
}

/// A stop switch thrown by the first SIGINT/SIGTERM (a second one exits at once).
fn stop_on_signals() -> Result<Stop, Failure> {
    let stop = Stop::new();
    stop.install_signal_handlers()
        .context("installing signal handlers")?;
    Ok(stop)
}

fn generate(args: &GenArgs, matches: &clap::ArgMatches) -> Result<u8, Failure> {
    args.check_applicable(matches)
        .map_err(|e| Failure::usage(anyhow::anyhow!(e)))?;
    let stop = stop_on_signals()?;
    if let Some(to) = &args.to {
        return generate_to_kafka(args, to, &stop);
    }
    let total = args.generator.total().unwrap_or(u64::MAX);
    let mut generator = Generator::new(args.generator.config());
    let target: Box<dyn Write> = if args.out.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        let file = std::fs::File::create(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))
            .map_err(|error| Failure {
                code: UNAVAILABLE,
                error,
            })?;
        Box::new(file)
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, target);
    let start = std::time::Instant::now();
    let mut line = Vec::with_capacity(1024);
    let mut written = 0;
    for n in 0..total {
        // A signal ends the output after a whole line; what was written is flushed below.
        if n % 4096 == 0 && stop.is_requested() {
            break;
        }
        line.clear();
        generator.event(n).write_json_line(&mut line);
        out.write_all(&line).context("writing events")?;
        written += 1;
    }
    out.flush().context("writing events")?;
    let secs = start.elapsed().as_secs_f64();
    tracing::info!(
        "wrote {written} events in {secs:.2} s ({:.0} events/s)",
        written as f64 / secs
    );
    Ok(0)
}

#[cfg(feature = "kafka")]
fn generate_to_kafka(args: &GenArgs, to: &str, stop: &Stop) -> Result<u8, Failure> {
    use sluice::kafka::{load, KafkaUrl};
    let url = KafkaUrl::parse(to).map_err(Failure::usage)?;
    let props = args.kafka.props().map_err(Failure::usage)?;
    let load = load::Load {
        url: &url,
        props: &props,
        partitions: args.partitions,
        timeout: args.kafka.timeout,
        config: args.generator.config(),
        events: args.generator.total().unwrap_or(u64::MAX),
        paced: args.paced,
        stop,
    };
    let summary = load::run(&load).map_err(|e| Failure {
        code: if e.is_unavailable() {
            UNAVAILABLE
        } else {
            FAILED
        },
        error: anyhow::Error::new(e).context(format!("writing events to {url}")),
    })?;
    let behind = if args.paced {
        format!(
            "; fell at most {} behind schedule",
            sluice::metrics::dur(summary.max_behind.as_secs_f64() * 1e6)
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        std::io::stderr(),
        "sluice gen: {} events to {} ({} partitions) in {:.3} s: {} events/s{behind}",
        summary.delivered,
        url,
        summary.partitions,
        summary.seconds,
        sluice::metrics::si(summary.delivered as f64 / summary.seconds.max(1e-9)),
    );
    Ok(0)
}

#[cfg(not(feature = "kafka"))]
fn generate_to_kafka(_args: &GenArgs, to: &str, _stop: &Stop) -> Result<u8, Failure> {
    Err(Failure::usage(sluice::kafka::KafkaError::NotBuilt(
        format!("gen --to {to}"),
    )))
}

#[cfg(feature = "kafka")]
fn cat(args: &CatArgs) -> Result<u8, Failure> {
    let url = sluice::kafka::KafkaUrl::parse(&args.url).map_err(Failure::usage)?;
    let props = args.kafka.props().map_err(Failure::usage)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let n = sluice::kafka::cat::cat(&url, &props, args.kafka.timeout, &mut out).map_err(|e| {
        Failure {
            code: if e.is_unavailable() {
                UNAVAILABLE
            } else {
                FAILED
            },
            error: e.into(),
        }
    })?;
    out.flush().context("writing records")?;
    tracing::info!("{n} records from {url}");
    Ok(0)
}

#[cfg(not(feature = "kafka"))]
fn cat(args: &CatArgs) -> Result<u8, Failure> {
    Err(Failure::usage(sluice::kafka::KafkaError::NotBuilt(
        format!("cat {}", args.url),
    )))
}

fn source_endpoint(spec: &SourceSpec) -> Endpoint {
    match spec {
        SourceSpec::Nexmark(_) => Endpoint::Generator,
        SourceSpec::File { .. } => Endpoint::File,
        SourceSpec::Kafka { .. } => Endpoint::Kafka,
    }
}

fn sink_endpoint(spec: &SinkSpec) -> Endpoint {
    match spec {
        SinkSpec::Stdout => Endpoint::Stdout,
        SinkSpec::File(_) => Endpoint::File,
        SinkSpec::Null => Endpoint::Null,
        SinkSpec::Kafka { .. } => Endpoint::Kafka,
    }
}

fn run_query(args: &RunArgs, matches: &clap::ArgMatches) -> Result<u8, Failure> {
    let Some(query) = sluice::queries::find(&args.query) else {
        return Err(Failure::usage(anyhow::anyhow!(
            "unknown query {:?}; known queries: {}",
            args.query,
            sluice::queries::names().join(", ")
        )));
    };
    let kafka_sink = args.kafka_sink().map_err(Failure::usage)?;
    let kafka_source = args.kafka_source().map_err(Failure::usage)?;
    let sink = SinkSpec::parse(&args.sink, kafka_sink).map_err(Failure::usage)?;
    let source = SourceSpec::parse(
        &args.source,
        args.generator_spec(),
        kafka_source,
        args.max_record_bytes,
    )
    .map_err(Failure::usage)?;
    args.check_applicable(
        matches,
        source_endpoint(&source),
        sink_endpoint(&sink),
        query.writes_files,
    )
    .map_err(|e| Failure::usage(anyhow::anyhow!(e)))?;
    let processes = args.mesh.processes;
    let Some(process) = args.mesh.process else {
        if processes > 1 {
            // The whole mesh on this machine: re-run ourselves once per process.
            let argv: Vec<_> = std::env::args_os().skip(1).collect();
            let code = sluice::local::run_local_mesh(&argv, processes).map_err(|e| Failure {
                code: UNAVAILABLE,
                error: e.into(),
            })?;
            return Ok(u8::try_from(code).unwrap_or(FAILED));
        }
        return run_process(args, query, source, sink, 0);
    };
    if !sluice::local::follow_launcher() {
        return Err(Failure::from(anyhow::anyhow!(
            "the launcher of this local mesh exited before process {process} started"
        )));
    }
    if process > 0
        && matches!(&source, SourceSpec::File { path, .. } if path.as_os_str() == "-")
        && stdin_may_have_data()
    {
        tracing::warn!(
            "file:- is read by process 0 only: the standard input of process {process} is ignored"
        );
    }
    run_process(args, query, source, sink, process)
}

/// Whether standard input is something other than a terminal or `/dev/null` (the local
/// launcher gives processes other than 0 `/dev/null`).
fn stdin_may_have_data() -> bool {
    let null = same_file::Handle::from_path("/dev/null");
    let stdin = same_file::Handle::stdin();
    !std::io::stdin().is_terminal() && !matches!((stdin, null), (Ok(a), Ok(b)) if a == b)
}

fn run_process(
    args: &RunArgs,
    query: &'static sluice::query::Query,
    source: SourceSpec,
    sink: SinkSpec,
    process: usize,
) -> Result<u8, Failure> {
    let mesh = args
        .mesh
        .mesh(process)
        .map_err(|e| Failure::from(RunError::Mesh(e)))?;
    let n = mesh.processes();
    let sink = match sink {
        SinkSpec::File(path) => SinkSpec::File(per_process_path(&path, process, n)),
        other => other,
    };
    let config = RunConfig {
        query,
        source,
        sink,
        dead_letter: args
            .dead_letter
            .as_deref()
            .map(|p| per_process_path(p, process, n)),
        ingest: args.ingest(),
        output_dir: args.output_dir.clone(),
        metrics: args.metrics(),
        progress: args.progress.mode(std::io::stderr().is_terminal()),
        stop: stop_on_signals()?,
        report_file: args.report_file.clone(),
        histogram: args.histogram.clone(),
    };
    let outcome = run(config, &mesh)?;
    let Some(report) = outcome.report else {
        return Ok(0);
    };
    match args.report {
        ReportFormat::Text => {
            let _ = write!(std::io::stderr(), "{}", report.to_text());
        }
        ReportFormat::Json => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", report.to_json())
                .and_then(|_| out.flush())
                .context("writing the report")?;
        }
        ReportFormat::None => {}
    }
    let (rejected, read) = (report.rejected(), report.records_read());
    if read > 0 && rejected as f64 > args.max_bad_ratio * read as f64 {
        return Err(Failure {
            code: REJECTED,
            error: anyhow::anyhow!(
                "{rejected} of the {read} records read ({:.1} %) were rejected as unreadable, more than --max-bad-ratio {}: see the dead letters (--dead-letter PATH)",
                100.0 * rejected as f64 / read as f64,
                args.max_bad_ratio
            ),
        });
    }
    Ok(0)
}
