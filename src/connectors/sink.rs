//! Sinks: where result rows go — JSON lines on stdout or in a file, records of a Kafka topic
//! (one row per record, keyed by its first column), messages of MQTT topics (one row per
//! message, the topic rendered from the row), or nowhere (`null`, counts only, like
//! Flink's blackhole) — and the timely operator that writes them.
//!
//! A [`SinkWriter`] is opened once per process and shared by its workers: each worker serialises
//! a batch of rows into its own buffer and appends the whole buffer under a lock, so lines from
//! different workers never interleave. A file's buffer is flushed at least every
//! [`FLUSH_INTERVAL`] while rows arrive ([`SinkWriter::flush_if_due`]), so a crash loses at most
//! that much. Write errors (a full disk) are kept and reported at the end of the run; nothing is
//! dropped silently. Standard output closed by its reader (`| head`) is not an error: the run is
//! asked to [stop](crate::stop) and ends quietly.

use super::kafka::{self, KafkaError, KafkaSinkOptions, KafkaUrl};
use super::mqtt::{self, MqttClient, MqttError, MqttUrl};
use crate::checkpoint::sink::EpochFiles;
use crate::stop::{Stop, StopCause};
use crate::time::EventTime;
use serde::Serialize;
use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;

pub use super::writer::{Writer, FLUSH_INTERVAL};

/// A sink as named on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkSpec {
    /// JSON lines on standard output.
    Stdout,
    /// JSON lines in a file (all of this process's rows, from every worker).
    File(PathBuf),
    /// Count rows, write nothing.
    Null,
    /// One record per row on a Kafka topic.
    Kafka {
        /// Brokers and topic.
        url: KafkaUrl,
        /// Producer settings.
        options: KafkaSinkOptions,
    },
    /// One message per row on an MQTT topic (a template: `alerts/{device}`).
    Mqtt {
        /// Broker and topic template.
        url: MqttUrl,
        /// Client settings.
        client: MqttClient,
    },
}

impl SinkSpec {
    /// The sink as a person would name it (`stdout`, `file:PATH`, `null`, the topic's URL).
    pub fn label(&self) -> String {
        match self {
            SinkSpec::Stdout => "stdout".into(),
            SinkSpec::File(path) => format!("file:{}", path.display()),
            SinkSpec::Null => "null".into(),
            SinkSpec::Kafka { url, .. } => url.to_string(),
            SinkSpec::Mqtt { url, .. } => url.to_string(),
        }
    }
}

/// A `--sink` value that names no sink.
#[derive(Debug, thiserror::Error)]
pub enum UnknownSink {
    /// Not a sink at all.
    #[error(
        "unknown sink {0:?}: expected `stdout`, `file:PATH`, `kafka://HOST:PORT/TOPIC`, `mqtt://HOST:PORT/TOPIC` or `null`"
    )]
    Name(String),
    /// A bad `kafka://` address.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// A bad `mqtt://` address or topic template.
    #[error(transparent)]
    Mqtt(#[from] MqttError),
}

impl SinkSpec {
    /// Parses `stdout`, `file:PATH`, `kafka://HOST:PORT/TOPIC`, `mqtt://HOST:PORT/TOPIC` or
    /// `null`.
    pub fn parse(
        text: &str,
        kafka: KafkaSinkOptions,
        mqtt: MqttClient,
    ) -> Result<Self, UnknownSink> {
        if text.starts_with(mqtt::SCHEME) {
            let url = MqttUrl::parse(text)?;
            let template = mqtt::TopicTemplate::parse(&url.path)?;
            if template.has_wildcards() {
                return Err(MqttError::Usage(format!(
                    "an MQTT sink's topic {:?} cannot have wildcards (`+`, `#`); use {{field}} levels",
                    url.path
                ))
                .into());
            }
            return Ok(SinkSpec::Mqtt { url, client: mqtt });
        }
        if text.starts_with(kafka::SCHEME) {
            return Ok(SinkSpec::Kafka {
                url: KafkaUrl::parse(text)?,
                options: kafka,
            });
        }
        match text {
            "stdout" | "-" => Ok(SinkSpec::Stdout),
            "null" => Ok(SinkSpec::Null),
            _ => match text.strip_prefix("file:").filter(|p| !p.is_empty()) {
                Some(path) => Ok(SinkSpec::File(PathBuf::from(path))),
                None => Err(UnknownSink::Name(text.to_string())),
            },
        }
    }

    /// Opens (creates or truncates) the destination; `stop` is asked to end the run if
    /// standard output is closed by its reader.
    pub fn open(&self, stop: &Stop) -> io::Result<SinkWriter> {
        let writer: Arc<dyn Writer> = match self {
            SinkSpec::Stdout => Arc::new(StdoutWriter {
                closed: AtomicBool::new(false),
                stop: stop.clone(),
            }),
            SinkSpec::Null => Arc::new(NullWriter),
            SinkSpec::File(path) => Arc::new(FileWriter::create(path)?),
            SinkSpec::Kafka { url, options } => {
                Arc::from(kafka::open_writer(url, options).map_err(io::Error::other)?)
            }
            SinkSpec::Mqtt { url, client } => {
                Arc::new(mqtt::sink::MqttWriter::open(url, client).map_err(io::Error::other)?)
            }
        };
        Ok(SinkWriter::new(writer))
    }
}

/// The file a process of a mesh writes when the user named `path`: with one process, `path`
/// itself; with several, `{process}` in the path becomes the process index, or `.p<index>` is
/// appended — so processes sharing a machine never overwrite each other.
pub fn per_process_path(path: &Path, process: usize, processes: usize) -> PathBuf {
    if processes <= 1 {
        return path.to_path_buf();
    }
    let text = path.to_string_lossy();
    if text.contains("{process}") {
        PathBuf::from(text.replace("{process}", &process.to_string()))
    } else {
        PathBuf::from(format!("{text}.p{process}"))
    }
}

/// Standard output. Closed by its reader (`| head`), it asks the run to stop and discards the
/// rest: not an error.
struct StdoutWriter {
    closed: AtomicBool,
    stop: Stop,
}

impl StdoutWriter {
    fn result(&self, result: io::Result<()>) -> io::Result<()> {
        match result {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                if !self.closed.swap(true, Ordering::Relaxed) {
                    tracing::info!("standard output closed: stopping the run");
                    self.stop.request(StopCause::OutputClosed);
                }
                Ok(())
            }
            other => other,
        }
    }
}

impl Writer for StdoutWriter {
    fn write(&self, rows: &[u8]) -> io::Result<()> {
        if self.closed.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.result(io::stdout().lock().write_all(rows))
    }

    fn flush(&self) -> io::Result<()> {
        self.result(io::stdout().lock().flush())
    }
}

/// A file, buffered and flushed at least every [`FLUSH_INTERVAL`] while rows arrive.
struct FileWriter {
    file: Mutex<BufWriter<File>>,
    /// When the buffer was last flushed, as ns since `opened`.
    flushed_at: AtomicU64,
    opened: Instant,
}

impl FileWriter {
    fn create(path: &Path) -> io::Result<Self> {
        let file = File::create(path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display()))
        })?;
        Ok(FileWriter {
            file: Mutex::new(BufWriter::with_capacity(1 << 20, file)),
            flushed_at: AtomicU64::new(0),
            opened: Instant::now(),
        })
    }
}

impl Writer for FileWriter {
    fn write(&self, rows: &[u8]) -> io::Result<()> {
        lock(&self.file).write_all(rows)
    }

    fn flush_if_due(&self) -> io::Result<()> {
        let now = self.opened.elapsed().as_nanos() as u64;
        let last = self.flushed_at.load(Ordering::Relaxed);
        if now.saturating_sub(last) < FLUSH_INTERVAL.as_nanos() as u64 {
            return Ok(());
        }
        let Ok(mut file) = self.file.try_lock() else {
            return Ok(());
        };
        self.flushed_at.store(now, Ordering::Relaxed);
        file.flush()
    }

    fn flush(&self) -> io::Result<()> {
        lock(&self.file).flush()
    }
}

/// Nowhere: rows are counted, not written (Flink's blackhole).
struct NullWriter;

impl Writer for NullWriter {
    fn write(&self, _rows: &[u8]) -> io::Result<()> {
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        Ok(())
    }

    fn discards(&self) -> bool {
        true
    }
}

/// A process-wide handle on a [`Writer`], shared by the workers: keeps the first error (after
/// it, rows are skipped) and reports it when the run finishes.
#[derive(Clone)]
pub struct SinkWriter {
    writer: Arc<dyn Writer>,
    error: Arc<Mutex<Option<io::Error>>>,
}

impl SinkWriter {
    /// Shares `writer`.
    pub fn new(writer: Arc<dyn Writer>) -> Self {
        SinkWriter {
            writer,
            error: Arc::new(Mutex::new(None)),
        }
    }

    /// A writer that discards everything.
    pub fn null() -> Self {
        SinkWriter::new(Arc::new(NullWriter))
    }

    /// Whether rows are written anywhere (a `null` sink skips serialisation altogether).
    pub fn is_null(&self) -> bool {
        self.writer.discards()
    }

    fn keep(&self, result: io::Result<()>) {
        if let Err(e) = result {
            lock(&self.error).get_or_insert(e);
        }
    }

    /// Appends complete lines. After the first error, further writes are skipped.
    pub fn write(&self, bytes: &[u8]) {
        if bytes.is_empty() || lock(&self.error).is_some() {
            return;
        }
        self.keep(self.writer.write(bytes));
    }

    /// Writes out buffered rows that have waited long enough (see [`Writer::flush_if_due`]).
    pub fn flush_if_due(&self) {
        self.keep(self.writer.flush_if_due());
    }

    /// Flushes buffered output; returns the first error seen during the run, if any.
    pub fn finish(&self) -> io::Result<()> {
        self.keep(self.writer.flush());
        match lock(&self.error).take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Locks a mutex, recovering from poisoning (a panicked worker is reported separately).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where a worker's rows go: straight to the process's shared writer, or — when the run
/// checkpoints — to this worker's per-epoch files, committed to the output with checkpoints.
#[derive(Clone)]
pub enum RowTarget {
    /// The process's writer.
    Shared(SinkWriter),
    /// This worker's epoch files of an output.
    Epochs(Rc<RefCell<EpochFiles>>),
}

impl RowTarget {
    fn discards(&self) -> bool {
        matches!(self, RowTarget::Shared(w) if w.is_null())
    }
}

/// Writes every record of `stream` as a JSON line to `target`, first showing each batch to
/// `count` (for counters). Returns an empty stream whose frontier follows the sink's input,
/// to be probed: when it passes a time, every row before that time has been written.
pub fn write_json_lines<'s, R, F>(
    stream: StreamVec<'s, EventTime, R>,
    name: &str,
    target: RowTarget,
    mut count: F,
) -> StreamVec<'s, EventTime, ()>
where
    R: Serialize + 'static,
    F: FnMut(&[R]) + 'static,
{
    let mut buffer = Vec::with_capacity(1 << 16);
    stream.unary::<timely::container::CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Pipeline,
        name,
        move |_cap, _info| {
            move |input, _output| {
                input.for_each(|time, batch| {
                    count(batch);
                    if target.discards() {
                        return;
                    }
                    for row in batch.iter() {
                        // Rows are plain data; serialising into a Vec cannot fail.
                        let _ = serde_json::to_writer(&mut buffer, row);
                        buffer.push(b'\n');
                    }
                    match &target {
                        RowTarget::Shared(writer) if buffer.len() >= 1 << 16 => {
                            writer.write(&buffer);
                            buffer.clear();
                        }
                        RowTarget::Shared(_) => {}
                        // Each epoch has its own file: rows leave with their time.
                        RowTarget::Epochs(files) => {
                            let time = time.least().copied().unwrap_or(0);
                            files.borrow_mut().write(time, &buffer);
                            buffer.clear();
                        }
                    }
                });
                if let RowTarget::Shared(writer) = &target {
                    writer.write(&buffer);
                    buffer.clear();
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        let parse =
            |s: &str| SinkSpec::parse(s, KafkaSinkOptions::default(), MqttClient::default());
        assert_eq!(parse("stdout").unwrap(), SinkSpec::Stdout);
        assert_eq!(parse("null").unwrap(), SinkSpec::Null);
        assert_eq!(
            parse("file:/tmp/x").unwrap(),
            SinkSpec::File(PathBuf::from("/tmp/x"))
        );
        assert!(parse("file:").is_err());
        assert!(parse("kafka").is_err());
        assert!(parse("kafka://127.0.0.1/t").is_err());
        match parse("kafka://127.0.0.1:9092/out").unwrap() {
            SinkSpec::Kafka { url, .. } => assert_eq!(url.topic, "out"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn processes_get_their_own_files() {
        let p = Path::new("out/rows.jsonl");
        assert_eq!(per_process_path(p, 1, 1), PathBuf::from("out/rows.jsonl"));
        assert_eq!(
            per_process_path(p, 1, 2),
            PathBuf::from("out/rows.jsonl.p1")
        );
        assert_eq!(
            per_process_path(Path::new("rows-{process}.jsonl"), 0, 2),
            PathBuf::from("rows-0.jsonl")
        );
    }

    #[test]
    fn file_writer_reports_errors_at_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let stop = Stop::new();
        let w = SinkSpec::File(path.clone()).open(&stop).unwrap();
        w.write(b"{\"a\":1}\n");
        w.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n");
        assert!(SinkSpec::File(dir.path().join("no/such/dir"))
            .open(&stop)
            .is_err());
    }
}
