//! Sources: where events come from, and the timely operator that turns them into an event-time
//! stream whose frontier is the watermark.
//!
//! A source is split in two: a [`Reader`] (one per worker) knows how to fetch records — from the
//! generator, a file, later Kafka — and [`ingest`] is the one timely operator every reader runs
//! under. It stamps records, holds the capability at the watermark, routes bad records to the
//! dead-letter stream, paces, applies flow control and feeds the latency [`Ledger`].
//!
//! [`Ledger`]: crate::metrics::Ledger

pub mod file;
mod ingest;
pub mod nexmark;

pub use ingest::{ingest, IngestConfig};

use crate::deadletter::{DeadLetter, Origin, Reason};
use crate::kafka::{KafkaError, KafkaSourceOptions, KafkaUrl};
use crate::model::Event;
use crate::time::EventTime;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What one [`Reader::read`] call produced.
#[derive(Default)]
pub struct Ingest {
    /// Events read, in arrival order.
    pub events: Vec<Event>,
    /// Records that could not be read as events.
    pub dead: Vec<DeadLetter>,
    /// When the last event read was *scheduled* to arrive (paced sources only). Latency is
    /// measured from here rather than from when the reader got around to it.
    pub scheduled: Option<Instant>,
    /// How far the reader is behind its schedule after this read (paced sources only).
    pub behind: Duration,
}

impl Ingest {
    /// Empties the buffers for reuse.
    pub fn clear(&mut self) {
        self.events.clear();
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

/// One worker's share of a source.
pub trait Reader {
    /// Reads at most `max` records that are available at `now` into `out`.
    fn read(
        &mut self,
        now: Instant,
        max: usize,
        out: &mut Ingest,
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

    /// Where the reader is in each partition it reads (Kafka); empty for other sources.
    fn positions(&self) -> Vec<Position> {
        Vec::new()
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

/// Parses one record (a file line, a Kafka value) into `out`: an event, or a dead letter saying
/// why not — `too_large` (when `oversized`: the caller saw more than `max_record_bytes`),
/// `invalid_utf8`, `malformed_json` or `invalid_event`. `origin` is called only for dead letters.
pub fn parse_record(
    bytes: &[u8],
    oversized: bool,
    max_record_bytes: usize,
    origin: impl FnOnce() -> Origin,
    out: &mut Ingest,
) {
    if oversized {
        out.dead.push(DeadLetter::new(
            origin(),
            Reason::TooLarge,
            format!("record longer than {max_record_bytes} bytes"),
            bytes,
        ));
        return;
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        out.dead.push(DeadLetter::new(
            origin(),
            Reason::InvalidUtf8,
            e.to_string(),
            bytes,
        ));
        return;
    }
    match Event::from_json(bytes) {
        Ok(event) => out.events.push(event),
        Err(e) => {
            let reason = match e.classify() {
                serde_json::error::Category::Data => Reason::InvalidEvent,
                _ => Reason::MalformedJson,
            };
            out.dead
                .push(DeadLetter::new(origin(), reason, e.to_string(), bytes));
        }
    }
}

/// A reader with nothing to read.
pub struct Exhausted;

impl Reader for Exhausted {
    fn read(
        &mut self,
        _now: Instant,
        _max: usize,
        _out: &mut Ingest,
    ) -> Result<ReadStatus, SourceError> {
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
    #[error("unknown source {0:?}: expected `nexmark`, `file:PATH` (`file:-` for stdin) or `kafka://HOST:PORT/TOPIC`")]
    Unknown(String),
    /// A Kafka source failed: bad address, brokers unreachable, no such topic, a fatal error.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
}

/// The generator source's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratorSpec {
    /// Generator parameters (seed, event-time rate, base time).
    pub config: nexmark::GeneratorConfig,
    /// Total events over all workers; `None` runs until stopped.
    pub events: Option<u64>,
    /// Emit each event at its scheduled wall-clock time (open loop) instead of as fast as possible.
    pub paced: bool,
}

/// A source as named on the command line.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceSpec {
    /// The built-in Nexmark generator.
    Nexmark(GeneratorSpec),
    /// Flink-format JSON lines from a file (`-` for standard input).
    File {
        /// The path.
        path: PathBuf,
        /// Lines longer than this are dead-lettered as `too_large`.
        max_record_bytes: usize,
    },
    /// Flink-format JSON records from a Kafka topic.
    Kafka {
        /// Brokers and topic.
        url: KafkaUrl,
        /// Group, start offsets, idleness, properties.
        options: KafkaSourceOptions,
        /// Records longer than this are dead-lettered as `too_large`.
        max_record_bytes: usize,
    },
}

impl SourceSpec {
    /// Parses `nexmark`, `file:PATH` or `kafka://HOST:PORT/TOPIC`; the generator and Kafka
    /// settings come from their own flags.
    pub fn parse(
        text: &str,
        generator: GeneratorSpec,
        kafka: KafkaSourceOptions,
        max_record_bytes: usize,
    ) -> Result<Self, SourceError> {
        if text.starts_with(crate::kafka::SCHEME) {
            Ok(SourceSpec::Kafka {
                url: KafkaUrl::parse(text)?,
                options: kafka,
                max_record_bytes,
            })
        } else if text == "nexmark" {
            Ok(SourceSpec::Nexmark(generator))
        } else if let Some(path) = text.strip_prefix("file:").filter(|p| !p.is_empty()) {
            Ok(SourceSpec::File {
                path: PathBuf::from(path),
                max_record_bytes,
            })
        } else {
            Err(SourceError::Unknown(text.to_string()))
        }
    }

    /// A short label for reports and dead letters.
    pub fn label(&self) -> String {
        match self {
            SourceSpec::Nexmark(_) => "nexmark".to_string(),
            SourceSpec::File { path, .. } => format!("file:{}", path.display()),
            SourceSpec::Kafka { url, .. } => url.to_string(),
        }
    }

    /// How many events the source will deliver, when known up front (a bounded generator).
    pub fn expected_events(&self) -> Option<u64> {
        match self {
            SourceSpec::Nexmark(spec) => spec.events,
            _ => None,
        }
    }

    /// What processing latency is measured from with this source.
    pub fn latency_from(&self) -> &'static str {
        match self {
            SourceSpec::Nexmark(spec) if spec.paced => "scheduled arrival",
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
            SourceSpec::Kafka { url, options, .. } => kafka_validate(url, options),
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
                kafka_commit(url, options, positions)
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
    ) -> Result<Box<dyn Reader>, SourceError> {
        match self {
            SourceSpec::Nexmark(spec) => Ok(Box::new(nexmark_reader(spec, index, peers, start))),
            SourceSpec::File {
                path,
                max_record_bytes,
            } => Ok(Box::new(file::FileReader::open(
                path,
                index,
                peers,
                *max_record_bytes,
            )?)),
            SourceSpec::Kafka {
                url,
                options,
                max_record_bytes,
            } => kafka_open(url, options, index, peers, *max_record_bytes),
        }
    }
}

#[cfg(feature = "kafka")]
fn kafka_validate(url: &KafkaUrl, options: &KafkaSourceOptions) -> Result<(), SourceError> {
    crate::kafka::source::topic_partitions(url, options)?;
    Ok(())
}

#[cfg(feature = "kafka")]
fn kafka_open(
    url: &KafkaUrl,
    options: &KafkaSourceOptions,
    index: usize,
    peers: usize,
    max_record_bytes: usize,
) -> Result<Box<dyn Reader>, SourceError> {
    let reader =
        crate::kafka::source::KafkaReader::open(url, options, index, peers, max_record_bytes)?;
    Ok(Box::new(reader))
}

#[cfg(feature = "kafka")]
fn kafka_commit(
    url: &KafkaUrl,
    options: &KafkaSourceOptions,
    positions: &[Position],
) -> Result<(), SourceError> {
    Ok(crate::kafka::source::commit(url, options, positions)?)
}

#[cfg(not(feature = "kafka"))]
fn kafka_validate(url: &KafkaUrl, _: &KafkaSourceOptions) -> Result<(), SourceError> {
    Err(KafkaError::NotBuilt(format!("source {url}")).into())
}

#[cfg(not(feature = "kafka"))]
fn kafka_open(
    url: &KafkaUrl,
    _: &KafkaSourceOptions,
    _: usize,
    _: usize,
    _: usize,
) -> Result<Box<dyn Reader>, SourceError> {
    Err(KafkaError::NotBuilt(format!("source {url}")).into())
}

#[cfg(not(feature = "kafka"))]
fn kafka_commit(url: &KafkaUrl, _: &KafkaSourceOptions, _: &[Position]) -> Result<(), SourceError> {
    Err(KafkaError::NotBuilt(format!("source {url}")).into())
}

/// Worker `index` of `peers` generates event numbers `index, index + peers, …`: every worker's
/// event times stay close together, so no worker holds the global watermark back.
struct GeneratorReader {
    generator: nexmark::Generator,
    next: u64,
    step: u64,
    end: u64,
    /// `(start, ns per event)` when paced.
    pace: Option<(Instant, f64)>,
}

fn nexmark_reader(
    spec: &GeneratorSpec,
    index: usize,
    peers: usize,
    start: Instant,
) -> GeneratorReader {
    let ns_per_event = 1e9 / spec.config.rate.max(1) as f64;
    GeneratorReader {
        generator: nexmark::Generator::new(spec.config.clone()),
        next: index as u64,
        step: peers as u64,
        end: spec.events.unwrap_or(u64::MAX),
        pace: spec.paced.then_some((start, ns_per_event)),
    }
}

impl GeneratorReader {
    fn scheduled(&self, n: u64) -> Option<Instant> {
        self.pace
            .map(|(start, ns)| start + Duration::from_nanos((n as f64 * ns) as u64))
    }
}

impl Reader for GeneratorReader {
    fn read(
        &mut self,
        now: Instant,
        max: usize,
        out: &mut Ingest,
    ) -> Result<ReadStatus, SourceError> {
        for _ in 0..max {
            if self.next >= self.end {
                return Ok(ReadStatus::Done);
            }
            if let Some(due) = self.scheduled(self.next) {
                if due > now {
                    return Ok(ReadStatus::WaitUntil(due));
                }
                out.scheduled = Some(due);
            }
            out.events.push(self.generator.event(self.next));
            self.next += self.step;
        }
        if self.next >= self.end {
            return Ok(ReadStatus::Done);
        }
        if let Some(due) = self.scheduled(self.next) {
            out.behind = now.saturating_duration_since(due);
        }
        Ok(ReadStatus::More)
    }

    fn paced(&self) -> bool {
        self.pace.is_some()
    }

    fn wall_clock_of(&self, t: EventTime) -> Option<Instant> {
        let (start, _) = self.pace?;
        let offset = t.saturating_sub(self.generator.config().base_time);
        Some(start + Duration::from_millis(offset))
    }
}
