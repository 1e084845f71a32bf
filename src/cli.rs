//! The command line (`clap` derive): `sluice list`, `sluice run`, `sluice gen`, and the mesh
//! flags `-w/-n/-p/--hostfile`, parsed here and turned into library types — never passed on to
//! timely's own argument parser.

use crate::kafka::{KafkaError, KafkaProps, KafkaSinkOptions, KafkaSourceOptions, StartOffset};
use crate::launch::{Mesh, MeshError, DEFAULT_PORT};
use crate::metrics::MetricsConfig;
use crate::progress::ProgressMode;
use crate::source::file::DEFAULT_MAX_RECORD_BYTES;
use crate::source::nexmark::{GeneratorConfig, DEFAULT_BASE_TIME};
use crate::source::{GeneratorSpec, IngestConfig};
use crate::time::{parse_timestamp, WatermarkPolicy};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Sluice: event-time stream processing on timely dataflow.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the registered queries.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a query.
    Run(Box<RunArgs>),
    /// Write Nexmark events as Flink-format JSON lines (to a file, stdout or a Kafka topic).
    Gen(GenArgs),
    /// Print every record value of a Kafka topic, one per line, up to its current end.
    Cat(CatArgs),
}

/// `sluice cat` flags.
#[derive(Debug, Clone, Args)]
pub struct CatArgs {
    /// The topic: `kafka://HOST:PORT/TOPIC`.
    pub url: String,
    #[command(flatten)]
    /// Kafka client settings.
    pub kafka: KafkaClientArgs,
}

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object.
    Json,
}

/// `--progress` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    /// A bar on a terminal, a line every 10 s otherwise.
    Auto,
    /// A bar redrawn in place.
    Bar,
    /// A line every 10 s.
    Log,
    /// None.
    Off,
}

impl ProgressArg {
    /// The mode, given whether stderr is a terminal.
    pub fn mode(self, terminal: bool) -> ProgressMode {
        let log = ProgressMode::Log(Duration::from_secs(10));
        match self {
            ProgressArg::Auto if terminal => ProgressMode::Bar,
            ProgressArg::Auto | ProgressArg::Log => log,
            ProgressArg::Bar => ProgressMode::Bar,
            ProgressArg::Off => ProgressMode::Off,
        }
    }
}

/// Generator flags shared by `run` and `gen`.
#[derive(Debug, Clone, Args)]
pub struct GeneratorArgs {
    /// Total events to generate, over all workers.
    #[arg(long, default_value_t = 1_000_000, value_name = "N")]
    pub events: u64,
    /// Generate until stopped (overrides --events).
    #[arg(long)]
    pub unbounded: bool,
    /// Events per second of event time (the inter-event delay is 1e6/R µs).
    #[arg(long, default_value_t = 10_000, value_name = "R", value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: u64,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Event time of the first event: epoch ms, a "yyyy-MM-dd HH:mm:ss.SSS" UTC time, or `now`.
    #[arg(long, value_name = "TIME", value_parser = parse_base_time)]
    pub base_time: Option<u64>,
}

impl GeneratorArgs {
    /// The generator configuration.
    pub fn config(&self) -> GeneratorConfig {
        GeneratorConfig {
            seed: self.seed,
            rate: self.rate,
            base_time: self.base_time.unwrap_or(DEFAULT_BASE_TIME),
        }
    }

    /// Total events, `None` when unbounded.
    pub fn total(&self) -> Option<u64> {
        (!self.unbounded).then_some(self.events)
    }
}

/// Mesh flags, as timely's examples spell them.
#[derive(Debug, Clone, Args)]
pub struct MeshArgs {
    /// Worker threads per process.
    #[arg(short = 'w', long = "workers", default_value_t = 1, value_name = "N")]
    pub workers: usize,
    /// Processes in the mesh. Without -p, all of them are started here on loopback.
    #[arg(short = 'n', long = "processes", default_value_t = 1, value_name = "N")]
    pub processes: usize,
    /// This process's index in the mesh (0-based).
    #[arg(short = 'p', long = "process", value_name = "I")]
    pub process: Option<usize>,
    /// File of `host:port` lines, one per process (default: 127.0.0.1 from --port).
    #[arg(long, value_name = "FILE")]
    pub hostfile: Option<PathBuf>,
    /// First port of a loopback mesh (process i listens on PORT + i).
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// How long to wait for the other processes of the mesh.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub connect_timeout: Duration,
}

impl MeshArgs {
    /// The mesh of process `process`.
    pub fn mesh(&self, process: usize) -> Result<Mesh, MeshError> {
        Mesh::from_flags(
            self.workers,
            self.processes,
            process,
            self.hostfile.as_deref(),
            self.port,
            self.connect_timeout,
        )
    }
}

/// Kafka client flags shared by `run` and `gen`.
#[derive(Debug, Clone, Args)]
pub struct KafkaClientArgs {
    /// A librdkafka property for every Kafka client, e.g. `security.protocol=ssl` (repeatable;
    /// wins over --kafka-config). Values are never logged.
    #[arg(long = "kafka-prop", value_name = "KEY=VALUE")]
    pub props: Vec<String>,
    /// A file of librdkafka properties (`key=value` lines, `#` comments), e.g. SASL/TLS settings.
    #[arg(long = "kafka-config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// How long to wait for the Kafka brokers before giving up (connect, metadata, offsets).
    #[arg(long = "kafka-timeout", default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
}

impl KafkaClientArgs {
    /// The user's librdkafka properties.
    pub fn props(&self) -> Result<KafkaProps, KafkaError> {
        KafkaProps::load(self.config.as_deref(), &self.props)
    }
}

/// `sluice run` flags of `kafka://` sources and sinks.
#[derive(Debug, Clone, Args)]
pub struct KafkaRunArgs {
    #[command(flatten)]
    /// Client settings.
    pub client: KafkaClientArgs,
    /// Consumer group of a Kafka source: whose committed offsets `--kafka-start committed`
    /// resumes from (default: `sluice-<query>`).
    #[arg(long = "kafka-group", value_name = "ID")]
    pub group: Option<String>,
    /// Where a Kafka source starts in each partition.
    #[arg(long = "kafka-start", value_enum, default_value_t = StartOffset::Earliest)]
    pub start: StartOffset,
    /// Read each partition of a Kafka source up to its end at start-up, then finish (final,
    /// reproducible results on a finite topic).
    #[arg(long)]
    pub until_end: bool,
    /// A Kafka partition silent for this long stops holding the watermark back.
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub idle_timeout: Duration,
    /// Do not commit the consumed offsets to the group when an --until-end run completes.
    #[arg(long)]
    pub no_commit: bool,
    /// Partitions of a Kafka sink topic that Sluice creates (default: one per worker).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub sink_partitions: Option<i32>,
}

/// `sluice run` flags.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The query to run (see `sluice list`).
    pub query: String,
    /// Where events come from: `nexmark` (built-in generator), `file:PATH` (`file:-` = stdin)
    /// or `kafka://HOST:PORT/TOPIC`.
    #[arg(long, default_value = "nexmark")]
    pub source: String,
    /// Where rows go: `stdout`, `file:PATH`, `kafka://HOST:PORT/TOPIC` or `null` (count only).
    #[arg(long, default_value = "stdout")]
    pub sink: String,
    #[command(flatten)]
    /// Generator settings.
    pub generator: GeneratorArgs,
    /// Emit generated events at their scheduled wall-clock time (open loop) instead of as fast
    /// as possible.
    #[arg(long)]
    pub paced: bool,
    /// Allowed out-of-orderness: the watermark is max event time seen minus this.
    #[arg(long, default_value = "4s", value_parser = parse_duration, value_name = "DURATION")]
    pub watermark_delay: Duration,
    /// Records are stamped at their event time rounded down to this (never below the watermark).
    #[arg(long, default_value = "100ms", value_parser = parse_duration, value_name = "DURATION")]
    pub stamp_granularity: Duration,
    /// Write rejected and late records here, one JSON line each.
    #[arg(long, value_name = "PATH")]
    pub dead_letter: Option<PathBuf>,
    /// Directory for queries that write files of their own (q10's partitions).
    #[arg(long, default_value = "sluice-out", value_name = "DIR")]
    pub output_dir: PathBuf,
    /// Records longer than this many bytes are dead-lettered.
    #[arg(long, default_value_t = DEFAULT_MAX_RECORD_BYTES, value_name = "BYTES")]
    pub max_record_bytes: usize,
    /// Most records a worker reads per step.
    #[arg(long, default_value_t = 4096, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,
    /// End the input after this long (wall clock) and finish as at the end of input: a bounded
    /// run over an unbounded source (Kafka, --unbounded), e.g. for benchmarks.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub stop_after: Option<Duration>,
    /// With --paced: end the input when the source falls this far behind its schedule (the rate
    /// cannot be sustained); the report says it stopped early.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub give_up_behind: Option<Duration>,
    /// Leave latency samples of the first DURATION of the run out of the percentiles (they still
    /// show in the timeline).
    #[arg(long, default_value = "0s", value_parser = parse_duration, value_name = "DURATION")]
    pub warmup: Duration,
    /// Length of the report's timeline intervals (latency, throughput and memory over time).
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub interval: Duration,
    /// Progress on stderr: `auto` (a bar on a terminal, a line every 10 s otherwise), `bar`,
    /// `log`, or `off`.
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,
    /// Report format (printed on stderr at the end of the run).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub report: ReportFormat,
    /// Also write the JSON report to this file.
    #[arg(long, value_name = "PATH")]
    pub report_file: Option<PathBuf>,
    /// Write the processing-latency CCDF (TSV: latency_ns, fraction ≥) to this file.
    #[arg(long, value_name = "PATH")]
    pub histogram: Option<PathBuf>,
    #[command(flatten)]
    /// Kafka settings.
    pub kafka: KafkaRunArgs,
    #[command(flatten)]
    /// Mesh settings.
    pub mesh: MeshArgs,
}

impl RunArgs {
    /// The measurement settings.
    pub fn metrics(&self) -> MetricsConfig {
        MetricsConfig {
            warmup: self.warmup,
            interval: self.interval,
        }
    }

    /// The settings of a Kafka source.
    pub fn kafka_source(&self) -> Result<KafkaSourceOptions, KafkaError> {
        Ok(KafkaSourceOptions {
            group_id: self
                .kafka
                .group
                .clone()
                .unwrap_or_else(|| format!("sluice-{}", self.query)),
            start: self.kafka.start,
            until_end: self.kafka.until_end,
            idle_timeout: self.kafka.idle_timeout,
            timeout: self.kafka.client.timeout,
            commit: !self.kafka.no_commit,
            props: self.kafka.client.props()?,
        })
    }

    /// The settings of a Kafka sink.
    pub fn kafka_sink(&self) -> Result<KafkaSinkOptions, KafkaError> {
        let workers = self.mesh.workers.max(1) * self.mesh.processes.max(1);
        Ok(KafkaSinkOptions {
            partitions: self.kafka.sink_partitions.unwrap_or(workers as i32),
            timeout: self.kafka.client.timeout,
            props: self.kafka.client.props()?,
        })
    }

    /// The generator source settings.
    pub fn generator_spec(&self) -> GeneratorSpec {
        GeneratorSpec {
            config: self.generator.config(),
            events: self.generator.total(),
            paced: self.paced,
        }
    }

    /// The ingest settings.
    pub fn ingest(&self) -> IngestConfig {
        IngestConfig {
            policy: WatermarkPolicy {
                delay_ms: self.watermark_delay.as_millis() as u64,
                granularity_ms: (self.stamp_granularity.as_millis() as u64).max(1),
            },
            batch: self.batch as usize,
            stop_after: self.stop_after,
            give_up_behind: self.give_up_behind,
            ..IngestConfig::default()
        }
    }
}

/// `sluice gen` flags.
#[derive(Debug, Clone, Args)]
pub struct GenArgs {
    #[command(flatten)]
    /// Generator settings.
    pub generator: GeneratorArgs,
    /// Output file (`-` for stdout).
    #[arg(
        long,
        short = 'o',
        default_value = "-",
        value_name = "PATH",
        conflicts_with = "to"
    )]
    pub out: PathBuf,
    /// Write the events to a Kafka topic instead (`kafka://HOST:PORT/TOPIC`); event n goes to
    /// partition n mod P, so every partition is in event-time order.
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// Partitions of the topic when `--to` creates it.
    #[arg(long, default_value_t = 4, value_name = "P", value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,
    /// Send each event at its scheduled wall-clock time (the --rate), stamped with that time,
    /// instead of as fast as possible: an open-loop load for latency measurements.
    #[arg(long)]
    pub paced: bool,
    #[command(flatten)]
    /// Kafka client settings.
    pub kafka: KafkaClientArgs,
}

/// Parses `250ms`, `4s`, `2m`, or plain milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 250ms, 4s, 2m"))?;
    match unit.trim() {
        "" | "ms" => Ok(Duration::from_millis(value)),
        "s" => Ok(Duration::from_secs(value)),
        "m" | "min" => Ok(Duration::from_secs(value * 60)),
        other => Err(format!(
            "invalid duration unit {other:?} in {text:?}: use ms, s or m"
        )),
    }
}

fn parse_base_time(text: &str) -> Result<u64, String> {
    if text == "now" {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?;
        return Ok(now.as_millis() as u64);
    }
    parse_timestamp(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("4s"), Ok(Duration::from_secs(4)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1500"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("4h").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn mesh_flags_parse() {
        let cli = Cli::try_parse_from([
            "sluice", "run", "q1", "-w", "2", "-n", "2", "-p", "1", "--sink", "null",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("expected run")
        };
        assert_eq!(args.mesh.workers, 2);
        assert_eq!(args.mesh.process, Some(1));
        assert_eq!(args.mesh.mesh(1).unwrap().peers(), 4);
        assert_eq!(args.ingest().policy.delay_ms, 4000);
    }
}
