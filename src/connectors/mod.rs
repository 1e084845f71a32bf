//! Connectors: where records come from and where results go.
//!
//! A source is split in two: a [`Reader`] (one per worker) fetches records of some
//! [`Record`] type — from a domain's [`generator`], a [file](mod@file) or stdin, or
//! [Kafka](kafka) or [MQTT](mqtt) — and the [ingest](crate::ingest) operator runs every reader the same way
//! (stamping, watermark, dead letters, flow control). A sink is a [`Writer`](sink::Writer)
//! shared by a process's workers: stdout, a file, Kafka, MQTT, or nothing.
//!
//! [`SourceSpec`] and [`SinkSpec`](sink::SinkSpec) are what the command line names; Kafka
//! support is a cargo feature, and everything that depends on it is behind [`kafka`]'s one
//! gate.

pub mod file;
pub mod format;
pub mod generator;
pub mod kafka;
pub mod mqtt;
pub mod sink;
pub mod writer;

use crate::deadletter::DeadLetter;
use crate::record::{Format, Record};
use crate::time::EventTime;
use generator::{GeneratorReader, GeneratorSpec, MakeGenerator};
use kafka::{KafkaError, KafkaSourceOptions, KafkaUrl};
use mqtt::{MqttError, MqttSourceOptions, MqttUrl};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What one [`Reader::read`] call produced.
pub struct Ingest<R> {
    /// Records read, in arrival order.
    pub records: Vec<R>,
    /// Input that could not be read as records.
    pub dead: Vec<DeadLetter>,
    /// When the last record read was *scheduled* to arrive (paced sources) or was produced
    /// (Kafka timestamps). Latency is measured from here rather than from when the reader got
    /// around to it.
    pub scheduled: Option<Instant>,
    /// How far the reader is behind its schedule after this read (paced sources only).
    pub behind: Duration,
}

impl<R> Default for Ingest<R> {
    fn default() -> Self {
        Ingest {
            records: Vec::new(),
            dead: Vec::new(),
            scheduled: None,
            behind: Duration::ZERO,
        }
    }
}

impl<R> Ingest<R> {
    /// Empties the buffers for reuse.
    pub fn clear(&mut self) {
        self.records.clear();
        self.dead.clear();
        self.scheduled = None;
        self.behind = Duration::ZERO;
    }
}

/// Whether a reader has more to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadStatus {
    /// More is available right away.
    More,
    /// Nothing more is due before this instant (a paced source).
    WaitUntil(Instant),
    /// The input is exhausted.
    Done,
}

/// One worker's share of a source of records of type `R`.
///
/// # Examples
///
/// A reader of records held in memory, a batch at a time:
///
/// ```
/// use sluice::connectors::{Ingest, ReadStatus, Reader, SourceError};
/// use std::time::Instant;
///
/// struct Memory(std::vec::IntoIter<(String, u64)>);
///
/// impl Reader<(String, u64)> for Memory {
///     fn read(&mut self, _now: Instant, max: usize, out: &mut Ingest<(String, u64)>)
///         -> Result<ReadStatus, SourceError> {
///         out.records.extend(self.0.by_ref().take(max));
///         Ok(if self.0.len() == 0 { ReadStatus::Done } else { ReadStatus::More })
///     }
/// }
///
/// let mut reader = Memory(vec![("a".to_string(), 1), ("b".to_string(), 2)].into_iter());
/// let mut out = Ingest::default();
/// assert_eq!(reader.read(Instant::now(), 1, &mut out).unwrap(), ReadStatus::More);
/// assert_eq!(reader.read(Instant::now(), 1, &mut out).unwrap(), ReadStatus::Done);
/// assert_eq!(out.records.len(), 2);
/// ```
pub trait Reader<R> {
    /// Reads at most `max` records that are available at `now` into `out`.
    fn read(
        &mut self,
        now: Instant,
        max: usize,
        out: &mut Ingest<R>,
    ) -> Result<ReadStatus, SourceError>;

    /// The wall-clock instant that event time `t` corresponds to, for sources paced to the
    /// wall clock; used for the event-time lag measure.
    fn wall_clock_of(&self, _t: EventTime) -> Option<Instant> {
        None
    }

    /// Whether records arrive on a wall-clock schedule (open loop).
    fn paced(&self) -> bool {
        false
    }

    /// The event time this worker's watermark follows (minus the allowed delay), given the
    /// largest event time this worker read so far and the largest any worker read (as far as
    /// this one has heard, for readers that [share progress](Reader::shares_progress)); `None`
    /// holds the watermark where it is. One ordered stream follows its maximum; a reader of
    /// several partitions, the slowest active one.
    fn watermark_basis(
        &mut self,
        _now: Instant,
        max_seen: Option<EventTime>,
        _peers_max: Option<EventTime>,
    ) -> Option<EventTime> {
        max_seen
    }

    /// Whether the workers should tell each other the largest event time they have read, so
    /// that a reader whose input is idle can follow the others instead of holding them back.
    fn shares_progress(&self) -> bool {
        false
    }

    /// Gives the reader a thread-safe way to wake its worker when records arrive, so that a
    /// reader waiting on the network need not poll.
    fn set_waker(&mut self, _wake: Box<dyn Fn() + Send + Sync>) {}

    /// Flow control: the dataflow has no room (`true`) or has room again (`false`). A reader
    /// that fetches ahead on its own (a Kafka consumer) stops fetching while paused.
    fn pause(&mut self, _paused: bool) {}

    /// Where the reader is in each partition it reads (Kafka); empty for other sources.
    fn positions(&self) -> Vec<Position> {
        Vec::new()
    }

    /// Monitoring: how far the reader has read each partition of its input as of `now`
    /// (Kafka); empty for sources of one stream.
    fn progress(&self, _now: Instant) -> Vec<PartitionProgress> {
        Vec::new()
    }

    /// The run checkpoints every `interval` of event time: keep what [`Reader::cut`] needs.
    fn checkpoints_every(&mut self, _interval: EventTime) {}

    /// Checkpoints: the reader's cut after this read, for checkpoints (multiples of
    /// `interval`) the watermark just crossed — what a resumed reader needs to read again
    /// exactly the records whose event time is at or after the checkpoint. `None`: nothing to
    /// record (a generator recomputes its place from the checkpoint alone).
    fn cut(&self, _interval: EventTime) -> Option<Vec<u8>> {
        None
    }

    /// The watermark moved to `watermark`: what only checkpoints below it needed can go.
    fn on_watermark(&mut self, _watermark: EventTime) {}

    /// Checkpoint `c` is complete, and `cut` is this reader's cut for it: a reader may now
    /// record (e.g. commit to a consumer group) the positions it resumes from.
    fn checkpoint_completed(&mut self, _c: EventTime, _cut: &[u8]) {}

    /// Resumes at checkpoint `c` from the cuts of the previous execution's workers
    /// (`same_split`: the mesh has the same workers, so `cuts[i]` is this worker's own).
    fn resume(
        &mut self,
        _c: EventTime,
        _cuts: &[Vec<u8>],
        _same_split: Option<usize>,
    ) -> Result<(), SourceError> {
        Err(SourceError::Unresumable(
            "this source cannot resume from a checkpoint".into(),
        ))
    }
}

/// How far a reader has read one partition of its input.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Position {
    /// The partition.
    pub partition: i32,
    /// The offset of the next record to read.
    pub next_offset: i64,
}

/// How far a reader has read one partition, for monitoring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionProgress {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset of the next record to read (`None`: nothing read yet).
    pub next_offset: Option<i64>,
    /// The largest event time read from it.
    pub max_event_time: Option<EventTime>,
    /// Read to its end, or silent for longer than the idle timeout: it does not hold the
    /// watermark back.
    pub idle: bool,
}

/// A reader with nothing to read.
pub struct Exhausted;

impl<R> Reader<R> for Exhausted {
    fn read(&mut self, _: Instant, _: usize, _: &mut Ingest<R>) -> Result<ReadStatus, SourceError> {
        Ok(ReadStatus::Done)
    }
}

/// Failures that stop a source (bad records never do: they are dead-lettered).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// An input file could not be opened or read.
    #[error("cannot read {path}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A `--source` value that names no source.
    #[error("unknown source {0:?}: expected {1}, `file:PATH` (`file:-` for stdin), `kafka://HOST:PORT/TOPIC` or `mqtt://HOST:PORT/FILTER`")]
    Unknown(String, String),
    /// The chosen format cannot hold this pipeline's records.
    #[error("--format {format} cannot hold this pipeline's records (it reads {supported})")]
    Format {
        /// The format asked for.
        format: &'static str,
        /// The formats the record type supports.
        supported: String,
    },
    /// A Kafka source failed: bad address, brokers unreachable, no such topic, a fatal error.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// An MQTT source failed: bad address or filter, broker unreachable or refusing.
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    /// The source cannot resume from the checkpoint (stdin; a cut missing from the checkpoint).
    #[error("{0}")]
    Unresumable(String),
}

impl SourceError {
    /// Whether the error is a mistake on the command line (exit code 2).
    pub fn is_usage(&self) -> bool {
        match self {
            SourceError::Unknown(..) | SourceError::Format { .. } => true,
            SourceError::Unresumable(_) => true,
            SourceError::Kafka(k) => k.is_usage(),
            SourceError::Mqtt(m) => m.is_usage(),
            SourceError::Io { .. } => false,
        }
    }

    /// Whether the error means a resource is unavailable (exit code 3).
    pub fn is_unavailable(&self) -> bool {
        match self {
            SourceError::Io { .. } => true,
            SourceError::Kafka(k) => k.is_unavailable(),
            SourceError::Mqtt(m) => !m.is_usage(),
            _ => false,
        }
    }
}

/// How input bytes are read: the format, and the cap on one record's size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputFormat {
    /// JSON or CSV.
    pub format: Format,
    /// For CSV from Kafka: the column names, comma-separated (files and stdin have a header row).
    pub csv_header: Option<String>,
    /// Longer records are dead-lettered as `too_large`.
    pub max_record_bytes: usize,
}

impl Default for InputFormat {
    fn default() -> Self {
        InputFormat {
            format: Format::Json,
            csv_header: None,
            max_record_bytes: file::DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

impl InputFormat {
    /// A decoder of these settings for records of type `R`.
    pub fn decoder<R: Record>(&self) -> format::Decoder<R> {
        let headers = self
            .csv_header
            .as_deref()
            .map(|h| csv::StringRecord::from(h.split(',').map(str::trim).collect::<Vec<_>>()));
        format::Decoder::new(self.format, headers)
    }
}

/// A source of records of type `R`, as named on the command line.
#[derive(Clone, Debug)]
pub enum SourceSpec<R> {
    /// A domain's generator (named after the domain, e.g. `nexmark`).
    Generator {
        /// The name it was chosen by.
        name: String,
        /// Makes the generator.
        make: MakeGenerator<R>,
        /// How many records, how fast.
        spec: GeneratorSpec,
    },
    /// Records in a file, one per line (`-` for standard input).
    File {
        /// The path.
        path: PathBuf,
        /// Format and size cap.
        input: InputFormat,
    },
    /// Records of a Kafka topic, one per record value.
    Kafka {
        /// Brokers and topic.
        url: KafkaUrl,
        /// Group, start offsets, idleness, properties.
        options: KafkaSourceOptions,
        /// Format and size cap.
        input: InputFormat,
    },
    /// Messages of MQTT topics, one record per message.
    Mqtt {
        /// Broker and topic filters.
        url: MqttUrl,
        /// Client, sharing, dedup and idleness settings.
        options: MqttSourceOptions,
        /// Format and size cap.
        input: InputFormat,
    },
}

/// The settings of the sources a command line can name besides the generator.
#[derive(Clone, Debug)]
pub struct SourceOptions {
    /// A Kafka source's.
    pub kafka: KafkaSourceOptions,
    /// An MQTT source's.
    pub mqtt: MqttSourceOptions,
    /// How file, Kafka and MQTT records are read.
    pub input: InputFormat,
}

impl<R: Record> SourceSpec<R> {
    /// Parses `<generator name>`, `file:PATH`, `kafka://HOST:PORT/TOPIC` or
    /// `mqtt://HOST:PORT/FILTER`; `generator` is the pipeline's domain generator (its name and
    /// maker), if it has one. The generator, Kafka, MQTT and format settings come from their
    /// own flags.
    pub fn parse(
        text: &str,
        generator: Option<(&str, MakeGenerator<R>)>,
        spec: GeneratorSpec,
        options: SourceOptions,
    ) -> Result<Self, SourceError> {
        let SourceOptions { kafka, mqtt, input } = options;
        let parsed = if text.starts_with(mqtt::SCHEME) {
            let url = MqttUrl::parse(text)?;
            url.filters()?;
            SourceSpec::Mqtt {
                url,
                options: mqtt,
                input,
            }
        } else if text.starts_with(kafka::SCHEME) {
            SourceSpec::Kafka {
                url: KafkaUrl::parse(text)?,
                options: kafka,
                input,
            }
        } else if let Some(path) = text.strip_prefix("file:").filter(|p| !p.is_empty()) {
            SourceSpec::File {
                path: PathBuf::from(path),
                input,
            }
        } else {
            match generator {
                Some((name, make)) if name == text => SourceSpec::Generator {
                    name: name.to_string(),
                    make,
                    spec,
                },
                _ => {
                    let named = generator.map_or("no generator".to_string(), |(n, _)| {
                        format!("`{n}` (the generator)")
                    });
                    return Err(SourceError::Unknown(text.to_string(), named));
                }
            }
        };
        if let SourceSpec::File { input, .. }
        | SourceSpec::Kafka { input, .. }
        | SourceSpec::Mqtt { input, .. } = &parsed
        {
            if !R::FORMATS.contains(&input.format) {
                let supported: Vec<&str> = R::FORMATS.iter().map(|f| f.name()).collect();
                return Err(SourceError::Format {
                    format: input.format.name(),
                    supported: supported.join(", "),
                });
            }
        }
        Ok(parsed)
    }

    /// A short label for reports and dead letters.
    pub fn label(&self) -> String {
        match self {
            SourceSpec::Generator { name, .. } => name.clone(),
            SourceSpec::File { path, .. } => format!("file:{}", path.display()),
            SourceSpec::Kafka { url, .. } => url.to_string(),
            SourceSpec::Mqtt { url, .. } => url.to_string(),
        }
    }

    /// What a checkpoint of a run over this source must match: the source and every setting
    /// that decides which records it delivers, in which order.
    pub fn fingerprint(&self) -> String {
        match self {
            SourceSpec::Generator { name, spec, .. } => {
                let c = &spec.config;
                format!(
                    "{name}(seed {}, rate {}, base {}, events {:?}, burst {:?}, hot key {}, options {:?})",
                    c.seed, c.rate, c.base_time, spec.events, c.burst, c.hot_key_percent, c.options
                )
            }
            SourceSpec::File { path, input } => format!("file:{} {input:?}", path.display()),
            SourceSpec::Kafka { .. } | SourceSpec::Mqtt { .. } => self.label(),
        }
    }

    /// How many records the source will deliver, when known up front (a bounded generator).
    pub fn expected_events(&self) -> Option<u64> {
        match self {
            SourceSpec::Generator { spec, .. } => spec.events,
            _ => None,
        }
    }

    /// What processing latency is measured from with this source.
    pub fn latency_from(&self) -> &'static str {
        match self {
            SourceSpec::Generator { spec, .. } if spec.paced => "scheduled arrival",
            SourceSpec::Kafka { .. } => "Kafka record timestamp",
            _ => "read",
        }
    }

    /// Checks up front that the source can be opened, for a clear error before any worker starts.
    pub fn validate(&self) -> Result<(), SourceError> {
        match self {
            SourceSpec::File { path, .. } if path.as_os_str() != "-" => std::fs::File::open(path)
                .map(drop)
                .map_err(|source| SourceError::Io {
                    path: path.display().to_string(),
                    source,
                }),
            SourceSpec::Kafka { url, options, .. } => Ok(kafka::validate_source(url, options)?),
            SourceSpec::Mqtt { url, options, .. } => Ok(mqtt::probe(url, &options.client)?),
            _ => Ok(()),
        }
    }

    /// After a run ended cleanly — at its end of input (`--until-end`), after `--stop-after`, or
    /// stopped gracefully — and its rows were flushed: records how far each partition was read
    /// (Kafka: commits the offsets to the consumer group), so a run started with
    /// `--kafka-start committed` resumes after it (at-least-once across runs).
    pub fn commit(&self, positions: &[Position]) -> Result<(), SourceError> {
        match self {
            SourceSpec::Kafka { url, options, .. } if options.commit => {
                Ok(kafka::commit(url, options, positions)?)
            }
            _ => Ok(()),
        }
    }

    /// Opens worker `index` of `peers`' share of the source; `start` anchors paced schedules.
    pub fn open(
        &self,
        index: usize,
        peers: usize,
        start: Instant,
    ) -> Result<Box<dyn Reader<R>>, SourceError> {
        match self {
            SourceSpec::Generator { make, spec, .. } => Ok(Box::new(GeneratorReader::new(
                *make, spec, index, peers, start,
            ))),
            SourceSpec::File { path, input } => {
                Ok(Box::new(file::FileReader::open(path, index, peers, input)?))
            }
            SourceSpec::Kafka {
                url,
                options,
                input,
            } => Ok(kafka::open_reader(url, options, input, index, peers)?),
            SourceSpec::Mqtt {
                url,
                options,
                input,
            } => Ok(mqtt::source::open_reader(
                url, options, input, index, peers,
            )?),
        }
    }
}
