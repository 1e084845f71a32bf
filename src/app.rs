//! Sluice's whole command line as one call: [`main`] parses the arguments, sets up logging and
//! signals, lists, runs or generates with the pipelines of a [`Catalog`], and maps errors to
//! exit codes. The `sluice` binary is `main` over every domain of this crate; a program of
//! your own passes a catalog of its own pipelines and gets the same command line.
//!
//! Exit codes: see [`crate::cli::exit::TABLE`] (0 success, also after a graceful stop; 1 the
//! run failed; 2 invalid command line; 3 a resource is unavailable; 4 too much input rejected;
//! 130/143 a second SIGINT/SIGTERM).

use crate::catalog::{
    Catalog, DomainEntry, GenerateRequest, KafkaTarget, PipelineInfo, SourceKind, SourceRequest,
};
use crate::checkpoint::CheckpointError;
use crate::cli::exit::{FAILED, REJECTED, UNAVAILABLE, USAGE};
use crate::cli::{
    check_generator_settings, given_generator_settings, with_generator_flags, CatArgs, Cli,
    Command, Endpoint, GenArgs, GeneratorFlag, LogFormat, ReportFormat, RunArgs,
};
use crate::config::{Layered, ResolveError};
use crate::connectors::kafka::{self, KafkaError, KafkaUrl};
use crate::connectors::mqtt::{self, sink::MqttWriter, MqttUrl};
use crate::connectors::sink::{per_process_path, SinkSpec, Writer};
use crate::connectors::SourceError;
use crate::driver::{RunError, RunOptions};
use crate::launch::MeshError;
use crate::local::Supervision;
use crate::stop::Stop;
use anyhow::Context;
use clap::{CommandFactory, FromArgMatches};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

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

    fn unavailable(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: UNAVAILABLE,
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

impl From<SourceError> for Failure {
    fn from(e: SourceError) -> Self {
        Failure::from(RunError::Source(e))
    }
}

impl From<RunError> for Failure {
    fn from(e: RunError) -> Self {
        let code = match &e {
            RunError::Mesh(MeshError::Invalid(_)) => USAGE,
            RunError::Refused(p) if p.is_usage() => USAGE,
            RunError::Refused(_) => UNAVAILABLE,
            RunError::Source(s) if s.is_usage() => USAGE,
            RunError::Source(s) if s.is_unavailable() => UNAVAILABLE,
            RunError::Source(_) => FAILED,
            RunError::Mesh(_) | RunError::Open(_) => UNAVAILABLE,
            RunError::Checkpoint(
                CheckpointError::Unsupported(_) | CheckpointError::Mismatch { .. },
            ) => USAGE,
            RunError::Checkpoint(CheckpointError::Io { .. }) => UNAVAILABLE,
            RunError::Sink(_)
            | RunError::Report { .. }
            | RunError::Worker { .. }
            | RunError::Protocol(_) => FAILED,
            RunError::Monitor(_) => UNAVAILABLE,
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

fn init_logging(format: LogFormat) {
    // Colours only for a person at a terminal who has not asked for none (NO_COLOR).
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "warn,sluice::checkpoint=info,sluice::connectors::mqtt=info,sluice::monitoring=info",
        )
    });
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // A closed stderr must not panic the thread that logs (e.g. the signal handler's).
        .log_internal_errors(false)
        .with_env_filter(filter);
    match format {
        LogFormat::Text => builder.with_ansi(colour).init(),
        LogFormat::Json => builder.json().with_current_span(false).init(),
    }
}

/// The command line, with `run`'s flags completed from `--config FILE` and `SLUICE_…`
/// variables ([`crate::config`]); exits on an invalid one, as clap does.
fn parse_command_line(command: &clap::Command) -> (clap::ArgMatches, Layered) {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let vars: Vec<(String, String)> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    match crate::config::resolve(command, &argv, &vars) {
        Ok(resolved) => resolved,
        Err(ResolveError::Clap(e)) => e.exit(),
        Err(ResolveError::Config(e)) => {
            let _ = writeln!(std::io::stderr(), "sluice: error: {e}");
            std::process::exit(i32::from(USAGE))
        }
    }
}

/// Runs Sluice's command line (`list`, `run`, `gen`, `cat`) over the pipelines of `catalog`,
/// with the process's arguments; returns the exit code. The name in usage lines is the
/// program's own.
pub fn main(catalog: Catalog) -> ExitCode {
    let name = std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "sluice".into());
    let flags = generator_flags(&catalog);
    let mut command = with_generator_flags(Cli::command().bin_name(&name), &flags);
    let (matches, layered) = parse_command_line(&command);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let log_format = match &cli.command {
        Command::Run(args) => args.log_format,
        _ => LogFormat::Text,
    };
    init_logging(log_format);
    let sub = matches.subcommand().map(|(_, m)| m.clone());
    let result = match (cli.command, sub) {
        (Command::List { json }, _) => list(&catalog, json),
        (Command::Gen(args), Some(m)) => {
            let settings = given_generator_settings(&m, &flags);
            generate(&catalog, &args, &m, settings)
        }
        (Command::Cat(args), _) => cat(&args),
        (Command::Completions { shell }, _) => {
            clap_complete::generate(shell, &mut command, &name, &mut std::io::stdout());
            Ok(0)
        }
        (Command::Man { dir }, _) => manual(&command, dir.as_deref()),
        (Command::Run(args), Some(m)) if args.print_config => {
            let run = command
                .find_subcommand("run")
                .expect("the command line has `run`");
            print!("{}", crate::config::print(run, &m, &layered));
            Ok(0)
        }
        (Command::Run(args), Some(m)) => {
            let settings = given_generator_settings(&m, &flags);
            run_pipeline(&catalog, &args, &m, settings, &layered)
        }
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

/// `sluice man`: the top page on stdout, or every page (one per subcommand) into `dir`.
fn manual(command: &clap::Command, dir: Option<&std::path::Path>) -> Result<u8, Failure> {
    let Some(dir) = dir else {
        let mut out = std::io::stdout().lock();
        clap_mangen::Man::new(command.clone())
            .render(&mut out)
            .context("writing the manual page")?;
        return Ok(0);
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating {}", dir.display()))
        .map_err(Failure::unavailable)?;
    let name = command.get_name().to_string();
    let mut pages = vec![(name.clone(), command.clone())];
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let page = sub.clone().name(format!("{name}-{}", sub.get_name()));
        pages.push((format!("{name}-{}", sub.get_name()), page));
    }
    for (page, cmd) in pages {
        let path = dir.join(format!("{page}.1"));
        let mut bytes = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut bytes)
            .context("rendering the manual page")?;
        std::fs::write(&path, bytes)
            .with_context(|| format!("writing {}", path.display()))
            .map_err(Failure::unavailable)?;
    }
    Ok(0)
}

fn list(catalog: &Catalog, json: bool) -> Result<u8, Failure> {
    let mut out = std::io::stdout().lock();
    let pipelines = catalog.pipelines();
    let name_width = pipelines.iter().map(|p| p.name.len()).max().unwrap_or(0);
    let domain_width = pipelines.iter().map(|p| p.domain.len()).max().unwrap_or(0);
    for p in pipelines {
        let line = if json {
            let params: Vec<_> = p
                .params
                .iter()
                .map(|q| serde_json::json!({"name": q.name, "help": q.help}))
                .collect();
            serde_json::json!({
                "name": p.name, "domain": p.domain, "description": p.description, "columns": p.columns,
                "params": params,
            })
            .to_string()
        } else {
            let mut line = format!(
                "{:<name_width$}  {:<domain_width$}  {}",
                p.name, p.domain, p.description
            );
            let indent = name_width + domain_width + 4;
            for q in p.params {
                line.push_str(&format!(
                    "\n{:<indent$}--param {}=…: {}",
                    "", q.name, q.help
                ));
            }
            line
        };
        writeln!(out, "{line}").context("writing the pipeline list")?;
    }
    Ok(0)
}

/// One flag per generator setting of the catalog's domains; domains sharing a name share it.
fn generator_flags(catalog: &Catalog) -> Vec<GeneratorFlag> {
    let mut flags: Vec<GeneratorFlag> = Vec::new();
    for domain in catalog.domains() {
        for setting in domain.generator_options() {
            match flags.iter_mut().find(|f| f.setting.name == setting.name) {
                Some(flag) => flag.domains.push(domain.name()),
                None => flags.push(GeneratorFlag {
                    setting: *setting,
                    domains: vec![domain.name()],
                }),
            }
        }
    }
    flags
}

/// A stop switch thrown by the first SIGINT/SIGTERM (a second one exits at once).
fn stop_on_signals(then: &'static str) -> Result<Stop, Failure> {
    let stop = Stop::new();
    stop.install_signal_handlers(then)
        .context("installing signal handlers")?;
    Ok(stop)
}

/// The domain `gen` writes: the one named, or the first with a generator.
fn gen_domain<'c>(catalog: &'c Catalog, args: &GenArgs) -> Result<&'c dyn DomainEntry, Failure> {
    let with_generators: Vec<&str> = catalog
        .domains()
        .filter(|d| d.has_generator())
        .map(|d| d.name())
        .collect();
    let found = match &args.domain {
        Some(name) => catalog.domain(name).filter(|d| d.has_generator()),
        None => catalog.domains().find(|d| d.has_generator()),
    };
    found.ok_or_else(|| {
        Failure::usage(anyhow::anyhow!(
            "no generator {:?}; domains with one: {}",
            args.domain.as_deref().unwrap_or(""),
            with_generators.join(", ")
        ))
    })
}

fn generate(
    catalog: &Catalog,
    args: &GenArgs,
    matches: &clap::ArgMatches,
    settings: BTreeMap<String, String>,
) -> Result<u8, Failure> {
    args.check_applicable(matches)
        .map_err(|e| Failure::usage(anyhow::anyhow!(e)))?;
    let domain = gen_domain(catalog, args)?;
    check_generator_settings(&settings, domain.name(), domain.generator_options(), None)
        .map_err(|e| Failure::usage(anyhow::anyhow!(e)))?;
    let stop = stop_on_signals("ending the output")?;
    let mut config = args.generator.config();
    config.options = settings;
    let request = GenerateRequest {
        config,
        events: args.generator.total(),
        format: args.format,
        stop: &stop,
    };
    if let Some(to) = args.to.as_deref().filter(|t| t.starts_with(mqtt::SCHEME)) {
        return generate_to_mqtt(domain, &request, args, to);
    }
    if let Some(to) = &args.to {
        return generate_to_kafka(domain, &request, args, to);
    }
    let target: Box<dyn Write> = if args.out.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        let file = std::fs::File::create(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))
            .map_err(Failure::unavailable)?;
        Box::new(file)
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, target);
    let start = std::time::Instant::now();
    let written = domain
        .generate(&request, &mut out)
        .context("writing records")?;
    out.flush().context("writing records")?;
    let secs = start.elapsed().as_secs_f64();
    tracing::info!(
        "wrote {written} records in {secs:.2} s ({:.0} records/s)",
        written as f64 / secs
    );
    Ok(0)
}

/// `sluice gen --to mqtt://…`: each record a message, its topic rendered from the record.
fn generate_to_mqtt(
    domain: &dyn DomainEntry,
    request: &GenerateRequest<'_>,
    args: &GenArgs,
    to: &str,
) -> Result<u8, Failure> {
    let url = MqttUrl::parse(to).map_err(Failure::usage)?;
    let name = format!("gen-{}", domain.name());
    let writer = MqttWriter::open(&url, &args.mqtt.client(&name)).map_err(|e| Failure {
        code: if e.is_usage() { USAGE } else { UNAVAILABLE },
        error: e.into(),
    })?;
    let start = std::time::Instant::now();
    let mut lines = LineWriter::new(&writer);
    let written = domain
        .generate(request, &mut lines)
        .and_then(|n| lines.flush().map(|_| n))
        .and_then(|n| writer.flush().map(|_| n))
        .with_context(|| format!("publishing records to {url}"))?;
    let secs = start.elapsed().as_secs_f64();
    let _ = writeln!(
        std::io::stderr(),
        "sluice gen: {written} records to {url} in {secs:.3} s: {} records/s, {}",
        crate::metrics::si(written as f64 / secs.max(1e-9)),
        match args.mqtt.qos {
            mqtt::Qos::AtLeastOnce => "every one acknowledged by the broker",
            mqtt::Qos::AtMostOnce => "every one sent (QoS 0)",
        },
    );
    Ok(0)
}

/// Complete lines written to it go to a sink's writer, in batches.
struct LineWriter<'w> {
    writer: &'w dyn Writer,
    buffer: Vec<u8>,
}

impl<'w> LineWriter<'w> {
    fn new(writer: &'w dyn Writer) -> Self {
        LineWriter {
            writer,
            buffer: Vec::with_capacity(1 << 16),
        }
    }
}

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= 1 << 16 {
            if let Some(end) = memchr::memrchr(b'\n', &self.buffer) {
                self.writer.write(&self.buffer[..=end])?;
                self.buffer.drain(..=end);
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.write(&self.buffer)?;
        self.buffer.clear();
        Ok(())
    }
}

fn generate_to_kafka(
    domain: &dyn DomainEntry,
    request: &GenerateRequest<'_>,
    args: &GenArgs,
    to: &str,
) -> Result<u8, Failure> {
    let url = KafkaUrl::parse(to).map_err(Failure::usage)?;
    let props = args.kafka.props().map_err(Failure::usage)?;
    let to = KafkaTarget {
        url: &url,
        props: &props,
        partitions: args.partitions,
        timeout: args.kafka.timeout,
        paced: args.paced,
    };
    let summary = domain.load(request, &to).map_err(|e| Failure {
        code: kafka_code(&e),
        error: anyhow::Error::new(e).context(format!("writing records to {url}")),
    })?;
    let behind = if args.paced {
        format!(
            "; fell at most {} behind schedule",
            crate::metrics::dur(summary.max_behind.as_secs_f64() * 1e6)
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        std::io::stderr(),
        "sluice gen: {} records to {} ({} partitions) in {:.3} s: {} records/s{behind}",
        summary.delivered,
        url,
        summary.partitions,
        summary.seconds,
        crate::metrics::si(summary.delivered as f64 / summary.seconds.max(1e-9)),
    );
    Ok(0)
}

/// The exit code of a Kafka failure: a bad address or property, unreachable brokers or a
/// missing topic, or anything else.
fn kafka_code(e: &KafkaError) -> u8 {
    if e.is_usage() {
        USAGE
    } else if e.is_unavailable() {
        UNAVAILABLE
    } else {
        FAILED
    }
}

fn cat(args: &CatArgs) -> Result<u8, Failure> {
    let url = KafkaUrl::parse(&args.url).map_err(Failure::usage)?;
    let props = args.kafka.props().map_err(Failure::usage)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let n = kafka::cat(&url, &props, args.kafka.timeout, &mut out).map_err(|e| Failure {
        code: kafka_code(&e),
        error: e.into(),
    })?;
    out.flush().context("writing records")?;
    tracing::info!("{n} records from {url}");
    Ok(0)
}

fn source_endpoint(kind: SourceKind) -> Endpoint {
    match kind {
        SourceKind::Generator => Endpoint::Generator,
        SourceKind::File => Endpoint::File,
        SourceKind::Kafka => Endpoint::Kafka,
        SourceKind::Mqtt => Endpoint::Mqtt,
    }
}

fn sink_endpoint(spec: &SinkSpec) -> Endpoint {
    match spec {
        SinkSpec::Stdout => Endpoint::Stdout,
        SinkSpec::File(_) => Endpoint::File,
        SinkSpec::Null => Endpoint::Null,
        SinkSpec::Kafka { .. } => Endpoint::Kafka,
        SinkSpec::Mqtt { .. } => Endpoint::Mqtt,
    }
}

/// The source of `args` as the pipeline's domain reads it.
fn source_request(
    args: &RunArgs,
    settings: BTreeMap<String, String>,
) -> Result<SourceRequest, Failure> {
    let mut generator = args.generator_spec();
    generator.config.options = settings;
    Ok(SourceRequest {
        text: args.source.clone(),
        generator,
        options: args.source_options().map_err(Failure::usage)?,
    })
}

fn run_pipeline(
    catalog: &Catalog,
    args: &RunArgs,
    matches: &clap::ArgMatches,
    settings: BTreeMap<String, String>,
    layered: &Layered,
) -> Result<u8, Failure> {
    let Some((domain, info)) = catalog.find(&args.query) else {
        let names: Vec<&str> = catalog.pipelines().iter().map(|p| p.name).collect();
        return Err(Failure::usage(anyhow::anyhow!(
            "unknown pipeline {:?}; known pipelines: {}",
            args.query,
            names.join(", ")
        )));
    };
    let kafka_sink = args.kafka_sink().map_err(Failure::usage)?;
    let mqtt_sink = args.mqtt.client.client(&args.query);
    let sink = SinkSpec::parse(&args.sink, kafka_sink, mqtt_sink).map_err(Failure::usage)?;
    let source = source_request(args, settings)?;
    let kind = domain.source_kind(&source)?;
    let reads = (kind != SourceKind::Generator).then(|| args.source.clone().unwrap_or_default());
    check_generator_settings(
        &source.generator.config.options,
        domain.name(),
        domain.generator_options(),
        reads.as_deref(),
    )
    .map_err(|e| Failure::usage(anyhow::anyhow!(layered.explain(&e))))?;
    args.check_applicable(
        matches,
        source_endpoint(kind),
        sink_endpoint(&sink),
        info.writes_files,
    )
    .map_err(|e| Failure::usage(anyhow::anyhow!(layered.explain(&e))))?;
    let processes = args.mesh.processes;
    let Some(process) = args.mesh.process else {
        if processes > 1 {
            // The whole mesh on this machine: re-run ourselves once per process.
            let argv: Vec<_> = std::env::args_os().skip(1).collect();
            let supervision = args.fault.checkpoint_dir.clone().map(|dir| Supervision {
                checkpoint_dir: dir,
                max_restarts: args.fault.max_restarts,
            });
            let code = crate::local::run_local_mesh(&argv, processes, supervision)
                .map_err(Failure::unavailable)?;
            return Ok(u8::try_from(code).unwrap_or(FAILED));
        }
        return run_process(domain, info, args, &source, sink, 0);
    };
    if !crate::local::follow_launcher() {
        return Err(Failure::from(anyhow::anyhow!(
            "the launcher of this local mesh exited before process {process} started"
        )));
    }
    if process > 0
        && kind == SourceKind::File
        && args.source.as_deref() == Some("file:-")
        && stdin_may_have_data()
    {
        tracing::warn!(
            "file:- is read by process 0 only: the standard input of process {process} is ignored"
        );
    }
    run_process(domain, info, args, &source, sink, process)
}

/// Whether standard input is something other than a terminal or `/dev/null` (the local
/// launcher gives processes other than 0 `/dev/null`).
fn stdin_may_have_data() -> bool {
    let null = same_file::Handle::from_path("/dev/null");
    let stdin = same_file::Handle::stdin();
    !std::io::stdin().is_terminal() && !matches!((stdin, null), (Ok(a), Ok(b)) if a == b)
}

fn run_process(
    domain: &dyn DomainEntry,
    info: PipelineInfo,
    args: &RunArgs,
    source: &SourceRequest,
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
    let options = RunOptions {
        sink,
        dead_letter: args
            .dead_letter
            .as_deref()
            .map(|p| per_process_path(p, process, n)),
        ingest: args.ingest(),
        output_dir: args.output_dir.clone(),
        metrics: args.metrics(),
        progress: args.progress.mode(std::io::stderr().is_terminal()),
        stop: stop_on_signals(if args.fault.checkpoint_dir.is_some() {
            "taking a final checkpoint, then stopping"
        } else {
            "ending the input and finishing"
        })?,
        report_file: args.report_file.clone(),
        histogram: args.histogram.clone(),
        checkpoint: args.checkpoint(),
        stall_timeout: Some(args.fault.stall_timeout).filter(|t| !t.is_zero()),
        state_ttl: args.state_ttl.map(|d| d.as_millis() as u64),
        params: args.params.clone(),
        metrics_addr: args
            .metrics_addr
            .as_deref()
            .map(|addr| crate::monitoring::process_addr(addr, process, mesh.on_one_host()))
            .transpose()
            .map_err(|e| Failure::usage(anyhow::anyhow!("--metrics-addr {e}")))?,
        execution: args.fault.execution,
    };
    let outcome = domain.run(info.name, source, options, &mesh)?;
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
