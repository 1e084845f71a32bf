//! The command line (`clap` derive): `sluice list`, `sluice run`, `sluice gen`, `sluice cat`,
//! and the mesh flags `-w/-n/-p/-h` (timely's spellings, `--threads` and `--hostfile` too),
//! parsed here and turned into library types — never passed on to timely's own argument parser.
//!
//! `sluice run --help` groups its flags under headings (input, generator, output, Kafka, MQTT,
//! run control, report, mesh). In `run`, `-h FILE` is the hostfile as in timely; help is `--help`.
//! [`RunArgs::check_applicable`] refuses flags that the chosen source or sink would ignore.

use crate::checkpoint::CheckpointConfig;
use crate::connectors::file::DEFAULT_MAX_RECORD_BYTES;
use crate::connectors::generator::{Burst, GeneratorConfig, GeneratorSpec, DEFAULT_BASE_TIME};
use crate::connectors::kafka::{
    KafkaError, KafkaProps, KafkaSinkOptions, KafkaSourceOptions, StartOffset,
};
use crate::connectors::mqtt::{MqttClient, MqttSourceOptions, Qos, TopicTemplate};
use crate::connectors::{InputFormat, SourceOptions};
use crate::console::ProgressMode;
use crate::ingest::IngestConfig;
use crate::launch::{Mesh, MeshError, DEFAULT_PORT};
use crate::metrics::MetricsConfig;
use crate::pipeline::Param;
use crate::record::Format;
use crate::time::{parse_timestamp, WatermarkPolicy};
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args, Parser, Subcommand, ValueEnum};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The exit codes of `sluice`.
pub mod exit {
    /// Success — also after a graceful stop.
    pub const SUCCESS: u8 = 0;
    /// The run failed.
    pub const FAILED: u8 = 1;
    /// Invalid command line.
    pub const USAGE: u8 = 2;
    /// A resource is unavailable.
    pub const UNAVAILABLE: u8 = 3;
    /// Too much of the input was rejected.
    pub const REJECTED: u8 = 4;
    /// Another process of the mesh was lost.
    pub const PEER_LOST: u8 = crate::launch::PEER_LOST_EXIT;
    /// A second SIGINT ended the process at once (128 + 2).
    pub const SECOND_SIGINT: u8 = 130;
    /// A second SIGTERM ended the process at once (128 + 15).
    pub const SECOND_SIGTERM: u8 = 143;

    /// Every exit code with what it means, as the README's table states it (a test holds the
    /// two together).
    pub const TABLE: &[(u8, &str)] = &[
        (SUCCESS, "success — also after a graceful stop by SIGINT or SIGTERM, or when the reader of stdout went away: every row written, the report printed"),
        (FAILED, "the run failed: a worker panicked, writing results failed, rows not delivered to Kafka, the input failed mid-run"),
        (USAGE, "invalid command line: a bad flag or value, an unknown query, source or sink, a flag that does not apply to the chosen source or sink, an output that would overwrite an input or another output"),
        (UNAVAILABLE, "a resource is unavailable: an unreadable input, an unwritable output, report or directory, a port in use, an unreachable peer, Kafka brokers unreachable, no such topic"),
        (REJECTED, "more of the input than --max-bad-ratio (default 0.5) was rejected as unreadable; the report and dead letters are still written"),
        (PEER_LOST, "another process of the mesh was lost — its connection closed or broke, or it stopped responding for --stall-timeout — and this one halted (a supervisor restarts the mesh from its last checkpoint)"),
        (SECOND_SIGINT, "a second SIGINT ended the process at once, without flushing"),
        (SECOND_SIGTERM, "a second SIGTERM ended the process at once, without flushing"),
    ];
}

/// Checkpoints, restore and supervision (`sluice run`).
#[derive(Debug, Clone, Args)]
pub struct FaultArgs {
    /// Take checkpoints in this directory (shared by every process of the mesh) or object store
    /// (`s3://BUCKET/PREFIX`); rows reach a file or Kafka sink exactly once, when the checkpoint
    /// covering them is durable.
    #[arg(long, value_name = "DIR", help_heading = "Fault tolerance")]
    pub checkpoint_dir: Option<PathBuf>,
    /// Event time between checkpoints (a multiple of --stamp-granularity).
    #[arg(long, default_value = "1s", value_parser = parse_positive_duration, value_name = "DURATION", requires = "checkpoint_dir", help_heading = "Fault tolerance")]
    pub checkpoint_interval: Duration,
    /// Wall-clock time between checkpoints at least (a replay's event time runs far faster than
    /// the clock); default: the interval.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", requires = "checkpoint_dir", help_heading = "Fault tolerance")]
    pub checkpoint_min_pause: Option<Duration>,
    /// How many complete checkpoints to keep.
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = positive_usize, requires = "checkpoint_dir", help_heading = "Fault tolerance")]
    pub checkpoint_retain: usize,
    /// Resume from the newest checkpoint in --checkpoint-dir whose files all verify.
    #[arg(long, requires = "checkpoint_dir", help_heading = "Fault tolerance")]
    pub restore: bool,
    /// With several processes: halt (exit 5) when another process sends no heartbeat for this
    /// long (stopped or hung); `0s` never.
    #[arg(long, default_value = "15s", value_parser = parse_duration, value_name = "DURATION", help_heading = "Fault tolerance")]
    pub stall_timeout: Duration,
    /// A supervised local mesh (`-n N` without `-p`, with --checkpoint-dir) is restarted from
    /// its last checkpoint at most this many times.
    #[arg(
        long,
        default_value_t = 10,
        value_name = "N",
        requires = "checkpoint_dir",
        help_heading = "Fault tolerance"
    )]
    pub max_restarts: u32,
    /// This execution's number (a supervisor counts restarts).
    #[arg(long, default_value_t = 1, hide = true)]
    pub execution: u64,
}

/// Event-time stream processing on timely dataflow.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// List the pipelines of every domain.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a pipeline.
    #[command(disable_help_flag = true)]
    Run(Box<RunArgs>),
    /// Write a domain's generated records (JSON lines or CSV) to a file, stdout or a Kafka topic.
    Gen(GenArgs),
    /// Print every record value of a Kafka topic, one per line, up to its current end.
    Cat(CatArgs),
    /// Print a shell completion script (e.g. `sluice completions bash > ~/.local/share/bash-completion/completions/sluice`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write one page per subcommand into a directory.
    Man {
        /// Write `sluice.1`, `sluice-run.1`, … here instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
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

/// How the report is printed at the end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Human-readable lines on stderr.
    Text,
    /// One JSON object on stdout (so the rows must go elsewhere than stdout).
    Json,
    /// None (see --report-file).
    None,
}

/// `--log-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (timestamp, level, target, fields), for log collectors.
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
#[command(next_help_heading = "Generator (--source <domain>)")]
pub struct GeneratorArgs {
    /// Total events to generate, over all workers.
    #[arg(long, default_value_t = 1_000_000, value_name = "N", value_parser = count, allow_negative_numbers = true)]
    pub events: u64,
    /// Generate until stopped (instead of --events).
    #[arg(long, conflicts_with = "events")]
    pub unbounded: bool,
    /// Events per second of event time (the inter-event delay is 1e6/R µs).
    #[arg(long, default_value_t = 10_000, value_name = "R", value_parser = positive, allow_negative_numbers = true)]
    pub rate: u64,
    /// Random seed.
    #[arg(long, default_value_t = 0, value_parser = count, allow_negative_numbers = true)]
    pub seed: u64,
    /// Event time of the first record: epoch ms, a "yyyy-MM-dd HH:mm:ss.SSS" UTC time, or `now`.
    #[arg(long, value_name = "TIME", value_parser = parse_base_time)]
    pub base_time: Option<u64>,
    /// A burst: FACTOR times the rate for LENGTH, FROM into the schedule (event time, and wall
    /// clock when paced), e.g. `10x@60s+10s`.
    #[arg(long, value_name = "FACTORx@FROM+LENGTH", value_parser = parse_burst)]
    pub burst: Option<Burst>,
    /// Per cent of the records on the domain's hottest key (nexmark: bids on one auction).
    #[arg(long, default_value_t = 0, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub hot_key: u8,
}

fn parse_burst(text: &str) -> Result<Burst, String> {
    Burst::parse(text, parse_duration)
}

impl GeneratorArgs {
    /// The generator configuration.
    pub fn config(&self) -> GeneratorConfig {
        GeneratorConfig {
            seed: self.seed,
            rate: self.rate,
            base_time: self.base_time.unwrap_or(DEFAULT_BASE_TIME),
            burst: self.burst,
            hot_key_percent: self.hot_key,
            options: BTreeMap::new(),
        }
    }

    /// Total events, `None` when unbounded.
    pub fn total(&self) -> Option<u64> {
        (!self.unbounded).then_some(self.events)
    }
}

/// Mesh flags, as timely's examples spell them.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Mesh (as timely spells it)")]
pub struct MeshArgs {
    /// Worker threads per process.
    #[arg(short = 'w', long = "workers", visible_alias = "threads", default_value_t = 1, value_name = "N", value_parser = positive_usize)]
    pub workers: usize,
    /// Processes in the mesh. Without -p, all of them are started here on loopback.
    #[arg(short = 'n', long = "processes", default_value_t = 1, value_name = "N", value_parser = positive_usize)]
    pub processes: usize,
    /// This process's index in the mesh (0-based), when you start the processes yourself.
    #[arg(short = 'p', long = "process", value_name = "I")]
    pub process: Option<usize>,
    /// File of `host:port` lines, one per process (default: 127.0.0.1 from --port). `-h` as in
    /// timely; help is --help.
    #[arg(short = 'h', long, value_name = "FILE")]
    pub hostfile: Option<PathBuf>,
    /// First port of a loopback mesh (process i listens on PORT + i).
    #[arg(long, default_value_t = DEFAULT_PORT, value_name = "PORT")]
    pub port: u16,
    /// How long to wait for the other processes of the mesh.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub connect_timeout: Duration,
    /// How long an idle worker polls for work before it parks its thread: longer trades idle
    /// CPU for less wake-up latency (a parked thread on a virtual machine can take milliseconds
    /// to run again).
    #[arg(long, default_value = "10us", value_parser = parse_duration, value_name = "DURATION")]
    pub idle_spin: Duration,
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
        .map(|mesh| Mesh {
            idle_spin: self.idle_spin,
            ..mesh
        })
    }
}

/// Kafka client flags shared by `run`, `gen` and `cat`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Kafka")]
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
#[command(next_help_heading = "Kafka")]
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
    /// A Kafka partition or MQTT subscription silent for this long stops holding the
    /// watermark back, which then moves on with the wall clock.
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub idle_timeout: Duration,
    /// Do not commit the consumed offsets to the group when the run ends (end of input,
    /// --stop-after, or a graceful stop).
    #[arg(long)]
    pub no_commit: bool,
    /// Partitions of a Kafka sink topic that Sluice creates (default: one per worker).
    #[arg(long, value_name = "N", value_parser = positive_i32)]
    pub sink_partitions: Option<i32>,
}

/// MQTT client flags shared by `run` and `gen`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "MQTT")]
pub struct MqttClientArgs {
    /// Client id of the MQTT connections (a source's workers append their index): a run
    /// restarted with the same id gets what the broker queued for it meanwhile (default
    /// `sluice-<pipeline>-<hash of the subscriptions>`).
    #[arg(long = "mqtt-client-id", value_name = "ID")]
    pub client_id: Option<String>,
    /// Quality of service of an MQTT source's subscriptions and an MQTT sink's messages.
    #[arg(long = "mqtt-qos", value_enum, default_value_t = Qos::AtLeastOnce, value_name = "QOS")]
    pub qos: Qos,
    /// User name at the MQTT broker; the password is read from SLUICE_MQTT_PASSWORD.
    #[arg(long = "mqtt-user", value_name = "USER")]
    pub user: Option<String>,
    /// How long to wait for the MQTT broker at start-up, and at the end for the
    /// acknowledgements of what a sink published.
    #[arg(id = "mqtt_timeout", long = "mqtt-timeout", default_value = "10s", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub timeout: Duration,
}

impl MqttClientArgs {
    /// The client settings; `name` names the default client id.
    pub fn client(&self, name: &str) -> MqttClient {
        MqttClient {
            client_id: self
                .client_id
                .clone()
                .unwrap_or_else(|| format!("sluice-{name}")),
            qos: self.qos,
            user: self.user.clone(),
            timeout: self.timeout,
        }
    }
}

/// `sluice run` flags of `mqtt://` sources.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "MQTT")]
pub struct MqttRunArgs {
    #[command(flatten)]
    /// Client settings.
    pub client: MqttClientArgs,
    /// Record fields from the levels of an MQTT message's topic, e.g.
    /// `sensors/{site}/{device}/+` (a field the payload has itself keeps the payload's value).
    #[arg(long = "mqtt-topic-fields", value_name = "TEMPLATE", value_parser = parse_topic_template)]
    pub topic_fields: Option<TopicTemplate>,
    /// An MQTT message identical to one read within this long is a redelivery: dead-lettered
    /// as `duplicate`, not counted twice (`0s`: off).
    #[arg(long = "mqtt-dedup-window", default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub dedup_window: Duration,
    /// End an MQTT source's input after this long without a message: a bounded run over a
    /// live feed.
    #[arg(long = "mqtt-until-idle", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub until_idle: Option<Duration>,
    /// Start without the session an earlier run with the same client id left at the broker
    /// (the messages queued for it are dropped).
    #[arg(long = "mqtt-clean-start")]
    pub clean_start: bool,
    /// Every worker subscribes, to the shared subscription `$share/NAME/…`, and the broker
    /// splits the messages among them (default: worker 0 alone subscribes and the pipeline
    /// spreads the records; a publisher's duplicates are then always caught).
    #[arg(id = "mqtt_group", long = "mqtt-group", value_name = "NAME")]
    pub group: Option<String>,
}

fn parse_topic_template(text: &str) -> Result<TopicTemplate, String> {
    TopicTemplate::parse(text).map_err(|e| e.to_string())
}

/// `sluice run` flags.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The pipeline to run (see `sluice list`).
    pub query: String,
    /// Print help (in `run`, `-h` is the hostfile, as in timely).
    #[arg(long, action = ArgAction::HelpShort)]
    pub help: Option<bool>,

    /// Where records come from: the domain's generator (its name, e.g. `nexmark`: the default
    /// when it has one), `file:PATH` (`file:-` = stdin) or `kafka://HOST:PORT/TOPIC`.
    #[arg(long, value_name = "SOURCE", help_heading = "Input")]
    pub source: Option<String>,
    /// How file, stdin and Kafka records are written: JSON lines, or CSV with a header row.
    #[arg(long, value_enum, default_value_t = Format::Json, help_heading = "Input")]
    pub format: Format,
    /// The CSV column names of Kafka records (comma-separated); without it, columns are taken
    /// in the order of the record's fields.
    #[arg(long, value_name = "NAMES", help_heading = "Input")]
    pub csv_header: Option<String>,
    /// Allowed out-of-orderness: the watermark is max event time seen minus this.
    #[arg(long, default_value = "4s", value_parser = parse_duration, value_name = "DURATION", help_heading = "Input")]
    pub watermark_delay: Duration,
    /// Records are stamped at their event time rounded down to this (never below the watermark).
    #[arg(long, default_value = "100ms", value_parser = parse_duration, value_name = "DURATION", help_heading = "Input")]
    pub stamp_granularity: Duration,
    /// Records longer than this many bytes are dead-lettered (file and Kafka sources).
    #[arg(long, default_value_t = DEFAULT_MAX_RECORD_BYTES, value_name = "BYTES", value_parser = positive_usize, help_heading = "Input")]
    pub max_record_bytes: usize,
    /// The run fails (exit 4) when more than this fraction of the records read were rejected
    /// as unreadable; 1 never fails.
    #[arg(long, default_value_t = 0.5, value_name = "RATIO", value_parser = ratio, help_heading = "Input")]
    pub max_bad_ratio: f64,
    /// Most records a worker reads per step.
    #[arg(long, default_value_t = 4096, value_name = "N", value_parser = positive, allow_negative_numbers = true, help_heading = "Input")]
    pub batch: u64,
    /// Flow control: a worker's source pauses while this many of its records that the watermark
    /// has released have not reached the output.
    #[arg(long, default_value_t = crate::ingest::DEFAULT_MAX_IN_FLIGHT, value_name = "N", value_parser = positive, allow_negative_numbers = true, help_heading = "Input")]
    pub max_in_flight: u64,
    /// Flow control: a worker's source pauses while the output trails its watermark by more
    /// than this much event time.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION", help_heading = "Input")]
    pub max_lag: Duration,
    /// Retire a key of an updating result (q6's sellers, q18's pairs, q19's auctions) after
    /// this much event time without a record: its rows are retracted when the watermark passes
    /// its last record plus DURATION, and its state is dropped (default: keys are kept forever).
    #[arg(long, value_parser = parse_positive_duration, value_name = "DURATION", help_heading = "State")]
    pub state_ttl: Option<Duration>,

    /// A pipeline parameter (repeatable), e.g. `--param rules=rules.toml`; `sluice list` shows
    /// each pipeline's.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param, help_heading = "Pipeline")]
    pub params: Vec<(String, String)>,

    #[command(flatten)]
    /// Generator settings.
    pub generator: GeneratorArgs,
    /// Emit generated events at their scheduled wall-clock time (open loop) instead of as fast
    /// as possible.
    #[arg(long, help_heading = "Generator (--source <domain>)")]
    pub paced: bool,
    /// With --paced: release the schedule N times faster than its event time passes — a replay
    /// of recorded time at N×: the event-time density stays --rate per second, records arrive
    /// at N × --rate per second.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000), help_heading = "Generator (--source <domain>)")]
    pub speed: u32,

    /// Where rows go: `stdout`, `file:PATH`, `kafka://HOST:PORT/TOPIC` or `null` (count only).
    #[arg(long, default_value = "stdout", help_heading = "Output")]
    pub sink: String,
    /// Write rejected and late records here, one JSON line each.
    #[arg(long, value_name = "PATH", help_heading = "Output")]
    pub dead_letter: Option<PathBuf>,
    /// Directory for queries that write files of their own (q10's partitions).
    #[arg(
        long,
        default_value = "out/files",
        value_name = "DIR",
        help_heading = "Output"
    )]
    pub output_dir: PathBuf,

    /// End the input after this long (wall clock) and finish as at the end of input: a bounded
    /// run over an unbounded source (Kafka, --unbounded), e.g. for benchmarks.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", help_heading = "Run control")]
    pub stop_after: Option<Duration>,
    /// With --paced: end the input when the source falls this far behind its schedule (the rate
    /// cannot be sustained); the report says it stopped early.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", help_heading = "Run control")]
    pub give_up_behind: Option<Duration>,

    #[command(flatten)]
    /// Checkpoints, restore and supervision.
    pub fault: FaultArgs,

    /// Report format: `text` on stderr, `json` on stdout, or `none`.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text, help_heading = "Report")]
    pub report: ReportFormat,
    /// Also write the JSON report to this file.
    #[arg(long, value_name = "PATH", help_heading = "Report")]
    pub report_file: Option<PathBuf>,
    /// Write the processing-latency CCDF (TSV: latency_ns, fraction ≥) to this file.
    #[arg(long, value_name = "PATH", help_heading = "Report")]
    pub histogram: Option<PathBuf>,
    /// Leave latency samples of the first DURATION of the run out of the percentiles (they still
    /// show in the timeline).
    #[arg(long, default_value = "0s", value_parser = parse_duration, value_name = "DURATION", help_heading = "Report")]
    pub warmup: Duration,
    /// Length of the report's timeline intervals (latency, throughput and memory over time).
    #[arg(long, default_value = "1s", value_parser = parse_positive_duration, value_name = "DURATION", help_heading = "Report")]
    pub interval: Duration,
    /// Progress on stderr: `auto` (a bar on a terminal, a line every 10 s otherwise), `bar`,
    /// `log`, or `off`.
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto, help_heading = "Report")]
    pub progress: ProgressArg,

    /// Serve Prometheus metrics (`/metrics`), a live dashboard (`/`) and health probes
    /// (`/healthz`, `/readyz`) on HOST:PORT; process i of a mesh on one machine (no --hostfile)
    /// uses PORT + i.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_listen_addr, help_heading = "Monitoring")]
    pub metrics_addr: Option<String>,
    /// Log lines on stderr as text, or as JSON objects (one a line); filter with SLUICE_LOG
    /// (RUST_LOG syntax, e.g. `info,sluice::checkpoint=debug`).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, help_heading = "Monitoring")]
    pub log_format: LogFormat,

    /// Read flags from this TOML file (keys are the long flag names, `query` the pipeline);
    /// precedence: defaults < file < SLUICE_<FLAG> variables < flags.
    #[arg(long = "config", value_name = "FILE", help_heading = "Configuration")]
    pub config_file: Option<PathBuf>,
    /// Print the effective configuration (TOML, secrets redacted, each value's origin) and exit.
    #[arg(long, help_heading = "Configuration")]
    pub print_config: bool,

    #[command(flatten)]
    /// Kafka settings.
    pub kafka: KafkaRunArgs,
    #[command(flatten)]
    /// MQTT settings.
    pub mqtt: MqttRunArgs,
    #[command(flatten)]
    /// Mesh settings.
    pub mesh: MeshArgs,
}

/// What kind of source or sink a run uses, for [`RunArgs::check_applicable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// The built-in generator (sources only).
    Generator,
    /// A file or standard input/output.
    File,
    /// A Kafka topic.
    Kafka,
    /// MQTT topics.
    Mqtt,
    /// Standard output (sinks only).
    Stdout,
    /// Nothing (sinks only).
    Null,
}

impl RunArgs {
    /// Refuses flags given on the command line that this run would ignore — generator flags
    /// with a file or Kafka source, Kafka flags without Kafka, `--give-up-behind` without
    /// `--paced`, `--output-dir` for a query that writes no files of its own — and a JSON report
    /// on the stdout that carries the rows. `matches` are the `run` subcommand's.
    pub fn check_applicable(
        &self,
        matches: &ArgMatches,
        source: Endpoint,
        sink: Endpoint,
        writes_files: bool,
    ) -> Result<(), String> {
        let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
        let first_given = |ids: &[&'static str]| ids.iter().copied().find(|id| given(id));
        let flag = |id: &str| format!("--{}", id.replace('_', "-"));
        let source_name = match source {
            Endpoint::Generator => "the generator",
            Endpoint::Kafka => "a Kafka topic",
            Endpoint::Mqtt => "MQTT topics",
            _ => "a file",
        };
        let source_text = self.source.as_deref().unwrap_or("the generator");
        if source != Endpoint::Generator {
            let generator = [
                "events",
                "unbounded",
                "rate",
                "seed",
                "base_time",
                "burst",
                "hot_key",
                "paced",
                "speed",
            ];
            if let Some(id) = first_given(&generator) {
                return Err(format!(
                    "{} applies only to a generator (--source <domain>); this run reads {source_name} ({source_text})",
                    flag(id),
                ));
            }
        }
        if source == Endpoint::Generator {
            if let Some(id) = first_given(&["format", "csv_header"]) {
                return Err(format!(
                    "{} applies only to file and Kafka sources; a generator makes its records",
                    flag(id)
                ));
            }
        }
        if source != Endpoint::Kafka && given("csv_header") {
            return Err(
                "--csv-header applies only to a Kafka source (a file's first line is its header)"
                    .into(),
            );
        }
        if source == Endpoint::Generator && given("max_record_bytes") {
            return Err(
                "--max-record-bytes applies only to file and Kafka sources; the generator's records are never too large"
                    .into(),
            );
        }
        if given("give_up_behind") && !self.paced {
            return Err("--give-up-behind applies only to a --paced generator".into());
        }
        if given("speed") && !self.paced {
            return Err("--speed applies only to a --paced generator".into());
        }
        if source != Endpoint::Kafka && source != Endpoint::Mqtt && given("idle_timeout") {
            return Err(format!(
                "--idle-timeout applies only to a Kafka or MQTT source; this run reads {source_name} ({source_text})",
            ));
        }
        if source != Endpoint::Mqtt {
            let subscriber = [
                "topic_fields",
                "dedup_window",
                "until_idle",
                "clean_start",
                "mqtt_group",
            ];
            if let Some(id) = first_given(&subscriber) {
                let name = match id {
                    "mqtt_group" => "--mqtt-group".to_string(),
                    other => format!("--mqtt-{}", other.replace('_', "-")),
                };
                return Err(format!(
                    "{name} applies only to an MQTT source; this run reads {source_name} ({source_text})",
                ));
            }
        }
        if source != Endpoint::Mqtt && sink != Endpoint::Mqtt {
            if let Some(id) = first_given(&["client_id", "qos", "user", "mqtt_timeout"]) {
                let name = match id {
                    "mqtt_timeout" => "--mqtt-timeout".to_string(),
                    other => format!("--mqtt-{}", other.replace('_', "-")),
                };
                return Err(format!(
                    "{name} applies only when the source or the sink is MQTT"
                ));
            }
        }
        if source != Endpoint::Kafka {
            let consumer = ["group", "start", "until_end", "no_commit"];
            if let Some(id) = first_given(&consumer) {
                let name = match id {
                    "group" => "--kafka-group".to_string(),
                    "start" => "--kafka-start".to_string(),
                    other => flag(other),
                };
                return Err(format!(
                    "{name} applies only to a Kafka source; this run reads {source_name} ({source_text})",
                ));
            }
        }
        if sink != Endpoint::Kafka && given("sink_partitions") {
            return Err("--sink-partitions applies only to a Kafka sink (--sink kafka://…)".into());
        }
        if source != Endpoint::Kafka && sink != Endpoint::Kafka {
            if let Some(id) = first_given(&["props", "config", "timeout"]) {
                let name = match id {
                    "props" => "--kafka-prop",
                    "config" => "--kafka-config",
                    _ => "--kafka-timeout",
                };
                return Err(format!(
                    "{name} applies only when the source or the sink is a Kafka topic"
                ));
            }
        }
        if !writes_files && given("output_dir") {
            return Err(format!(
                "--output-dir applies only to pipelines that write files of their own (q10); {} does not",
                self.query
            ));
        }
        if self.report == ReportFormat::Json && sink == Endpoint::Stdout {
            return Err(
                "--report json prints the report on stdout, which carries the rows of --sink stdout: choose another --sink, or --report-file PATH"
                    .into(),
            );
        }
        Ok(())
    }

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

    /// The settings of an MQTT source.
    pub fn mqtt_source(&self) -> MqttSourceOptions {
        let m = &self.mqtt;
        MqttSourceOptions {
            client: m.client.client(&self.query),
            group: m.group.clone(),
            topic_fields: m.topic_fields.clone(),
            dedup_window: m.dedup_window,
            until_idle: m.until_idle,
            clean_start: m.clean_start,
            id_per_subscription: m.client.client_id.is_none(),
            idle_timeout: self.kafka.idle_timeout,
        }
    }

    /// The settings of the sources other than the generator.
    pub fn source_options(&self) -> Result<SourceOptions, KafkaError> {
        Ok(SourceOptions {
            kafka: self.kafka_source()?,
            mqtt: self.mqtt_source(),
            input: self.input_format(),
        })
    }

    /// How file, Kafka and MQTT records are read.
    pub fn input_format(&self) -> InputFormat {
        InputFormat {
            format: self.format,
            csv_header: self.csv_header.clone(),
            max_record_bytes: self.max_record_bytes,
        }
    }

    /// The generator source settings.
    pub fn generator_spec(&self) -> GeneratorSpec {
        GeneratorSpec {
            config: self.generator.config(),
            events: self.generator.total(),
            paced: self.paced,
            speed: self.speed,
        }
    }

    /// The checkpoint settings, when `--checkpoint-dir` is given.
    pub fn checkpoint(&self) -> Option<CheckpointConfig> {
        let f = &self.fault;
        let dir = f.checkpoint_dir.clone()?;
        let interval = f.checkpoint_interval.as_millis() as u64;
        Some(CheckpointConfig {
            dir,
            interval,
            min_pause: f.checkpoint_min_pause.unwrap_or(f.checkpoint_interval),
            retain: f.checkpoint_retain,
            restore: f.restore,
            execution: f.execution,
        })
    }

    /// The ingest settings.
    pub fn ingest(&self) -> IngestConfig {
        IngestConfig {
            policy: WatermarkPolicy {
                delay_ms: self.watermark_delay.as_millis() as u64,
                granularity_ms: (self.stamp_granularity.as_millis() as u64).max(1),
            },
            batch: self.batch as usize,
            flow: crate::ingest::FlowControl {
                max_in_flight: self.max_in_flight,
                max_lag_ms: self.max_lag.as_millis() as u64,
            },
            stop_after: self.stop_after,
            give_up_behind: self.give_up_behind,
        }
    }
}

/// `sluice gen` flags.
#[derive(Debug, Clone, Args)]
pub struct GenArgs {
    /// The domain whose records to generate (default: the first with a generator).
    pub domain: Option<String>,
    /// JSON lines, or CSV with a header row (for flat records).
    #[arg(long, value_enum, default_value_t = Format::Json, help_heading = "Output")]
    pub format: Format,
    #[command(flatten)]
    /// Generator settings.
    pub generator: GeneratorArgs,
    /// Output file (`-` for stdout).
    #[arg(
        long,
        short = 'o',
        default_value = "-",
        value_name = "PATH",
        conflicts_with = "to",
        help_heading = "Output"
    )]
    pub out: PathBuf,
    /// Write the events to a Kafka topic instead (`kafka://HOST:PORT/TOPIC`; event n goes to
    /// partition n mod P, so every partition is in event-time order), or publish each to an
    /// MQTT topic (`mqtt://HOST:PORT/TOPIC`, whose `{field}` levels come from the record, e.g.
    /// `sensors/{site}/{device}`).
    #[arg(long, value_name = "URL", help_heading = "Output")]
    pub to: Option<String>,
    /// Partitions of the topic when `--to` creates it.
    #[arg(long, default_value_t = 4, value_name = "P", value_parser = positive_i32, help_heading = "Output")]
    pub partitions: i32,
    /// With --to: send each event at its scheduled wall-clock time (the --rate), stamped with
    /// that time, instead of as fast as possible: an open-loop load for latency measurements.
    #[arg(long, help_heading = "Output")]
    pub paced: bool,
    #[command(flatten)]
    /// Kafka client settings.
    pub kafka: KafkaClientArgs,
    #[command(flatten)]
    /// MQTT client settings.
    pub mqtt: MqttClientArgs,
}

impl GenArgs {
    /// Refuses flags given on the command line that `gen` would ignore: `--partitions`,
    /// `--paced` and the Kafka flags without `--to`. `matches` are the `gen` subcommand's.
    pub fn check_applicable(&self, matches: &ArgMatches) -> Result<(), String> {
        let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
        let to = self.to.as_deref().unwrap_or("");
        if !to.starts_with(crate::connectors::mqtt::SCHEME) {
            for (id, name) in [
                ("client_id", "--mqtt-client-id"),
                ("qos", "--mqtt-qos"),
                ("user", "--mqtt-user"),
                ("mqtt_timeout", "--mqtt-timeout"),
            ] {
                if given(id) {
                    return Err(format!(
                        "{name} applies only when publishing to MQTT (--to mqtt://…)"
                    ));
                }
            }
        } else if self.format != Format::Json {
            return Err("MQTT messages are JSON records: --to mqtt://… takes --format json".into());
        }
        if !to.starts_with(crate::connectors::kafka::SCHEME) {
            for (id, name) in [
                ("partitions", "--partitions"),
                ("paced", "--paced"),
                ("props", "--kafka-prop"),
                ("config", "--kafka-config"),
                ("timeout", "--kafka-timeout"),
            ] {
                if given(id) {
                    return Err(format!(
                        "{name} applies only when writing to Kafka (--to kafka://…)"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A domain's own generator setting as the command line offers it: `--NAME VALUE` on `run` and
/// `gen`, under the generator heading, checked by the domain's check as clap parses it.
#[derive(Clone, Debug)]
pub struct GeneratorFlag {
    /// The setting (its name is the flag's).
    pub setting: Param,
    /// The domains whose generators take it.
    pub domains: Vec<&'static str>,
}

fn generator_flag_id(name: &str) -> String {
    format!("generator-setting-{name}")
}

/// `command` with one `--NAME` flag on `run` and `gen` for each of `flags`.
///
/// # Panics
///
/// If a setting is named like one of the subcommand's own flags (a programming error in the
/// domain: the flag would be ambiguous).
pub fn with_generator_flags(command: clap::Command, flags: &[GeneratorFlag]) -> clap::Command {
    let add = |mut sub: clap::Command| {
        for flag in flags {
            let name = flag.setting.name;
            assert!(
                !sub.get_arguments().any(|a| a.get_long() == Some(name)),
                "generator setting --{name} of {} clashes with a flag of `{}`",
                flag.domains.join(", "),
                sub.get_name()
            );
            let check = flag.setting.check;
            sub = sub.arg(
                clap::Arg::new(generator_flag_id(name))
                    .long(name)
                    .value_name(name.to_uppercase())
                    .help(format!(
                        "{} ({} generator)",
                        flag.setting.help,
                        flag.domains.join(", ")
                    ))
                    .help_heading("Generator (--source <domain>)")
                    .value_parser(move |text: &str| check(text).map(|()| text.to_string())),
            );
        }
        sub
    };
    command
        .mut_subcommand("run", add)
        .mut_subcommand("gen", add)
}

/// The generator settings given in `matches` (a `run` or `gen` subcommand's), by name.
pub fn given_generator_settings(
    matches: &ArgMatches,
    flags: &[GeneratorFlag],
) -> BTreeMap<String, String> {
    flags
        .iter()
        .filter_map(|flag| {
            let value = matches.get_one::<String>(&generator_flag_id(flag.setting.name))?;
            Some((flag.setting.name.to_string(), value.clone()))
        })
        .collect()
}

/// Refuses generator settings that a run or `gen` would ignore: any when the records do not
/// come from a generator (`source` names what they come from), and one that `domain`'s generator
/// does not take (`takes`).
pub fn check_generator_settings(
    given: &BTreeMap<String, String>,
    domain: &str,
    takes: &[Param],
    source: Option<&str>,
) -> Result<(), String> {
    if let (Some(name), Some(source)) = (given.keys().next(), source) {
        return Err(format!(
            "--{name} applies only to a generator (--source <domain>); this run reads {source}"
        ));
    }
    for (name, value) in given {
        match takes.iter().find(|t| t.name == name) {
            // Domains sharing a setting's name share its flag: this domain's own check decides.
            Some(setting) => {
                (setting.check)(value).map_err(|e| format!("--{name} {value}: {e}"))?
            }
            None if takes.is_empty() => {
                return Err(format!(
                    "--{name} is not a setting of the {domain} generator, which takes none"
                ))
            }
            None => {
                let names: Vec<String> = takes.iter().map(|t| format!("--{}", t.name)).collect();
                return Err(format!(
                    "--{name} is not a setting of the {domain} generator; it takes: {}",
                    names.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// Parses a duration with its unit, as `humantime` reads them: `250ms`, `4s`, `1.5s`, `2m`,
/// `1h`, `1h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{text:?} has no unit: write e.g. {text}ms or {text}s"
        ));
    }
    humantime::parse_duration(text).map_err(|e| {
        format!("invalid duration {text:?} ({e}): expected e.g. 250ms, 4s, 1.5s, 2m, 1h")
    })
}

/// [`parse_duration`], above zero.
fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err("must be longer than zero".into()),
        d => Ok(d),
    }
}

/// A whole number ≥ 0 (a count, a seed).
fn count(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!("must be 0 or more, not {t}"));
    }
    t.replace('_', "")
        .parse()
        .map_err(|_| format!("{t:?} is not a whole number (0 to {})", u64::MAX))
}

/// A whole number ≥ 1.
fn positive(text: &str) -> Result<u64, String> {
    match count(text) {
        Ok(0) => Err("must be at least 1".into()),
        Err(_) if text.trim().starts_with('-') => Err("must be at least 1".into()),
        other => other,
    }
}

/// A whole number ≥ 1 that fits a `usize`.
fn positive_usize(text: &str) -> Result<usize, String> {
    positive(text).and_then(|n| usize::try_from(n).map_err(|_| format!("{n} is too large")))
}

/// A whole number ≥ 1 that fits an `i32` (Kafka partition counts).
fn positive_i32(text: &str) -> Result<i32, String> {
    positive(text).and_then(|n| i32::try_from(n).map_err(|_| format!("{n} is too large")))
}

/// A fraction from 0 to 1.
fn ratio(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{text:?} is not a fraction from 0 to 1 (e.g. 0.5)")),
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

/// `HOST:PORT` to listen on (port 0: any free one).
fn parse_listen_addr(text: &str) -> Result<String, String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is not HOST:PORT (e.g. 127.0.0.1:9464)"))?;
    if host.is_empty() {
        return Err(format!(
            "{text:?} has no host (e.g. 127.0.0.1:9464, 0.0.0.0:9464)"
        ));
    }
    port.parse::<u16>()
        .map_err(|_| format!("{port:?} is not a port number (0 to 65535)"))?;
    Ok(text.to_string())
}

/// `NAME=VALUE` of `--param`.
fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
        // clap checks these only in debug builds; the suite runs in release.
        for sub in Cli::command().get_subcommands() {
            let mut ids = std::collections::BTreeSet::new();
            let mut longs = std::collections::BTreeSet::new();
            for arg in sub.get_arguments() {
                assert!(
                    ids.insert(arg.get_id().clone()),
                    "{}: id {} twice",
                    sub.get_name(),
                    arg.get_id()
                );
                if let Some(long) = arg.get_long() {
                    assert!(longs.insert(long), "{}: --{long} twice", sub.get_name());
                }
            }
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("4s"), Ok(Duration::from_secs(4)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("1500").unwrap_err().contains("no unit"));
        assert!(parse_duration("fast").is_err());
        assert!(parse_positive_duration("0s").is_err());
    }

    #[test]
    fn numbers_say_what_is_wrong() {
        assert_eq!(positive("0").unwrap_err(), "must be at least 1");
        assert_eq!(positive("-3").unwrap_err(), "must be at least 1");
        assert_eq!(count("-5").unwrap_err(), "must be 0 or more, not -5");
        assert_eq!(count("1_000_000"), Ok(1_000_000));
        assert!(count("ten").unwrap_err().contains("not a whole number"));
        assert_eq!(ratio("0.25"), Ok(0.25));
        assert!(ratio("1.5").is_err());
    }

    fn run_matches(args: &[&str]) -> (RunArgs, ArgMatches) {
        use clap::FromArgMatches;
        let matches = Cli::command()
            .try_get_matches_from(args)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let cli = Cli::from_arg_matches(&matches).unwrap();
        let (Command::Run(run), Some(("run", sub))) = (cli.command, matches.subcommand()) else {
            panic!("expected run")
        };
        (*run, sub.clone())
    }

    #[test]
    fn flags_that_would_be_ignored_are_refused() {
        let check = |args: &[&str], source, sink| {
            let (run, m) = run_matches(args);
            run.check_applicable(&m, source, sink, false)
        };
        use Endpoint::*;
        let e = check(&["sluice", "run", "q1", "--events", "5"], File, Stdout).unwrap_err();
        assert!(e.starts_with("--events applies only to a generator"), "{e}");
        assert!(check(&["sluice", "run", "q1", "--paced"], Kafka, Null).is_err());
        assert!(check(&["sluice", "run", "q1", "--until-end"], File, Null).is_err());
        assert!(check(&["sluice", "run", "q1", "--kafka-prop", "a=b"], File, Null).is_err());
        assert!(check(&["sluice", "run", "q1", "--kafka-prop", "a=b"], File, Kafka).is_ok());
        assert!(check(
            &["sluice", "run", "q1", "--sink-partitions", "2"],
            Kafka,
            Null
        )
        .is_err());
        assert!(check(
            &["sluice", "run", "q1", "--give-up-behind", "1s"],
            Generator,
            Null
        )
        .is_err());
        assert!(check(
            &["sluice", "run", "q1", "--output-dir", "x"],
            Generator,
            Null
        )
        .is_err());
        let e = check(&["sluice", "run", "q1", "--speed", "4"], Generator, Null).unwrap_err();
        assert!(e.starts_with("--speed applies only to a --paced"), "{e}");
        assert!(check(
            &["sluice", "run", "q1", "--paced", "--speed", "4"],
            Generator,
            Null
        )
        .is_ok());
        let e = check(&["sluice", "run", "q1", "--hot-key", "50"], File, Null).unwrap_err();
        assert!(
            e.starts_with("--hot-key applies only to a generator"),
            "{e}"
        );
        let e = check(&["sluice", "run", "q1", "--burst", "2x@1s+1s"], Kafka, Null).unwrap_err();
        assert!(e.starts_with("--burst applies only to a generator"), "{e}");
        assert!(check(
            &["sluice", "run", "q1", "--max-record-bytes", "9"],
            Generator,
            Null
        )
        .is_err());
        assert!(check(
            &["sluice", "run", "q1", "--report", "json"],
            Generator,
            Stdout
        )
        .is_err());
        // Defaults are never "given".
        assert!(check(&["sluice", "run", "q1"], Kafka, Kafka).is_ok());
        assert!(check(
            &["sluice", "run", "q1", "--events", "5", "--paced"],
            Generator,
            Null
        )
        .is_ok());
    }

    #[test]
    fn timely_spellings_work() {
        let (run, _) = run_matches(&["sluice", "run", "q1", "--threads", "3", "-h", "hosts.txt"]);
        assert_eq!(run.mesh.workers, 3);
        assert_eq!(run.mesh.hostfile, Some(PathBuf::from("hosts.txt")));
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
