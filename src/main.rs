//! The `sluice` binary: parse the command line, set up logging, dispatch, map errors to exit codes.
//!
//! Exit codes: 0 success; 1 the run failed (a worker panicked, writing results failed, the
//! input failed mid-run); 2 invalid command line (bad flags, unknown query, source or sink);
//! 3 a resource is unavailable (an unreadable input file, an uncreatable output file, a port in
//! use, an unreachable peer).

use anyhow::Context;
use clap::Parser;
use sluice::cli::{CatArgs, Cli, Command, GenArgs, ReportFormat, RunArgs};
use sluice::driver::{run, RunConfig, RunError};
use sluice::launch::MeshError;
use sluice::metrics::ccdf_tsv;
use sluice::sink::{per_process_path, SinkSpec};
use sluice::source::nexmark::Generator;
use sluice::source::{SourceError, SourceSpec};
use std::io::Write;
use std::process::ExitCode;

/// An error with the exit code it maps to.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl Failure {
    fn usage(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: 2,
            error: error.into(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure { code: 1, error }
    }
}

impl From<RunError> for Failure {
    fn from(e: RunError) -> Self {
        let code = match &e {
            RunError::Mesh(MeshError::Invalid(_)) | RunError::Source(SourceError::Unknown(_)) => 2,
            RunError::Source(SourceError::Kafka(k)) if k.is_usage() => 2,
            RunError::Source(SourceError::Kafka(k)) if k.is_unavailable() => 3,
            RunError::Source(SourceError::Kafka(_)) => 1,
            RunError::Mesh(_) | RunError::Open(_) => 3,
            RunError::Source(SourceError::Io { .. }) => 3,
            RunError::Sink(_) | RunError::Worker { .. } => 1,
        };
        Failure {
            code,
            error: e.into(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let result = match cli.command {
        Command::List { json } => list(json),
        Command::Gen(args) => generate(&args),
        Command::Cat(args) => cat(&args),
        Command::Run(args) => run_query(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("sluice: error: {:#}", f.error);
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

fn generate(args: &GenArgs) -> Result<u8, Failure> {
    if let Some(to) = &args.to {
        return generate_to_kafka(args, to);
    }
    let total = args.generator.total().unwrap_or(u64::MAX);
    let mut generator = Generator::new(args.generator.config());
    let target: Box<dyn Write> = if args.out.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        let file = std::fs::File::create(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))
            .map_err(|error| Failure { code: 3, error })?;
        Box::new(file)
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, target);
    let start = std::time::Instant::now();
    let mut line = Vec::with_capacity(1024);
    for n in 0..total {
        line.clear();
        generator.event(n).write_json_line(&mut line);
        out.write_all(&line).context("writing events")?;
    }
    out.flush().context("writing events")?;
    let secs = start.elapsed().as_secs_f64();
    tracing::info!(
        "wrote {total} events in {secs:.2} s ({:.0} events/s)",
        total as f64 / secs
    );
    Ok(0)
}

#[cfg(feature = "kafka")]
fn generate_to_kafka(args: &GenArgs, to: &str) -> Result<u8, Failure> {
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
    };
    let summary = load::run(&load).map_err(|e| Failure {
        code: if e.is_unavailable() { 3 } else { 1 },
        error: anyhow::Error::new(e).context(format!("writing events to {url}")),
    })?;
    let behind = if args.paced {
        format!(
            "; fell at most {} ms behind schedule",
            summary.max_behind.as_millis()
        )
    } else {
        String::new()
    };
    eprintln!(
        "sluice gen: {} events to {} ({} partitions) in {:.3} s: {:.0} events/s{behind}",
        summary.delivered,
        url,
        summary.partitions,
        summary.seconds,
        summary.delivered as f64 / summary.seconds.max(1e-9),
    );
    Ok(0)
}

#[cfg(not(feature = "kafka"))]
fn generate_to_kafka(_args: &GenArgs, to: &str) -> Result<u8, Failure> {
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
            code: if e.is_unavailable() { 3 } else { 1 },
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

fn run_query(args: &RunArgs) -> Result<u8, Failure> {
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
    let processes = args.mesh.processes;
    let Some(process) = args.mesh.process else {
        if processes > 1 {
            // The whole mesh on this machine: re-run ourselves once per process.
            let argv: Vec<_> = std::env::args_os().skip(1).collect();
            let code = sluice::local::run_local_mesh(&argv, processes).map_err(|e| Failure {
                code: 3,
                error: e.into(),
            })?;
            return Ok(u8::try_from(code).unwrap_or(1));
        }
        return run_process(args, query, source, sink, 0);
    };
    run_process(args, query, source, sink, process)
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
        progress: args
            .progress
            .mode(std::io::IsTerminal::is_terminal(&std::io::stderr())),
    };
    let outcome = run(config, &mesh)?;
    if let Some(report) = outcome.report {
        let text = match args.report {
            ReportFormat::Text => report.to_text(),
            ReportFormat::Json => report.to_json() + "\n",
        };
        eprint!("{text}");
        if let Some(path) = &args.report_file {
            std::fs::write(path, report.to_json() + "\n")
                .with_context(|| format!("writing the report to {}", path.display()))?;
        }
        if let Some(path) = &args.histogram {
            std::fs::write(path, ccdf_tsv(report.latency_histogram()))
                .with_context(|| format!("writing the latency CCDF to {}", path.display()))?;
        }
    }
    Ok(0)
}
