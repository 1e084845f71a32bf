//! Sinks: where result rows go — JSON lines on stdout or in a file, records of a Kafka topic
//! (one row per record, keyed by its first column), or nowhere (`null`, counts only, like
//! Flink's blackhole) — and the timely operator that writes them.
//!
//! A [`SinkWriter`] is opened once per process and shared by its workers: each worker serialises
//! a batch of rows into its own buffer and appends the whole buffer under a lock, so lines from
//! different workers never interleave. A file's buffer is flushed at least every
//! [`FLUSH_INTERVAL`] while rows arrive ([`SinkWriter::flush_if_due`]), so a crash loses at most
//! that much. Write errors (a full disk) are kept and reported at the end of the run; nothing is
//! dropped silently. Standard output closed by its reader (`| head`) is not an error: the run is
//! asked to [stop](crate::stop) and ends quietly.

use crate::kafka::{KafkaError, KafkaSinkOptions, KafkaUrl};
use crate::stop::{Stop, StopCause};
use crate::time::EventTime;
use serde::Serialize;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest a row waits in a file sink's buffer before it is written to the file.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;

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
}

/// A `--sink` value that names no sink.
#[derive(Debug, thiserror::Error)]
pub enum UnknownSink {
    /// Not a sink at all.
    #[error(
        "unknown sink {0:?}: expected `stdout`, `file:PATH`, `kafka://HOST:PORT/TOPIC` or `null`"
    )]
    Name(String),
    /// A bad `kafka://` address.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
}

impl SinkSpec {
    /// Parses `stdout`, `file:PATH`, `kafka://HOST:PORT/TOPIC` or `null`.
    pub fn parse(text: &str, kafka: KafkaSinkOptions) -> Result<Self, UnknownSink> {
        if text.starts_with(crate::kafka::SCHEME) {
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

enum Target {
    Stdout,
    File(Mutex<BufWriter<File>>),
    Null,
    #[cfg(feature = "kafka")]
    Kafka(crate::kafka::producer::RowProducer),
}

/// A process-wide writer of JSON lines, shared by the workers.
#[derive(Clone)]
pub struct SinkWriter {
    target: Arc<Target>,
    error: Arc<Mutex<Option<io::Error>>>,
    /// Standard output was closed by its reader: further rows are discarded.
    closed: Arc<AtomicBool>,
    /// When the buffer was last flushed, as ns since `opened`.
    flushed_at: Arc<AtomicU64>,
    opened: Instant,
    /// Asked to stop the run when standard output is closed.
    stop: Option<Stop>,
}

impl SinkWriter {
    /// Opens (creates or truncates) the sink's destination.
    pub fn open(spec: &SinkSpec) -> io::Result<Self> {
        let target = match spec {
            SinkSpec::Stdout => Target::Stdout,
            SinkSpec::Null => Target::Null,
            SinkSpec::File(path) => {
                Target::File(Mutex::new(BufWriter::with_capacity(1 << 20, create(path)?)))
            }
            #[cfg(feature = "kafka")]
            SinkSpec::Kafka { url, options } => Target::Kafka(
                crate::kafka::producer::RowProducer::open(
                    url,
                    &options.props,
                    options.partitions,
                    options.timeout,
                )
                .map_err(io::Error::other)?,
            ),
            #[cfg(not(feature = "kafka"))]
            SinkSpec::Kafka { url, .. } => {
                return Err(io::Error::other(KafkaError::NotBuilt(format!(
                    "sink {url}"
                ))))
            }
        };
        Ok(SinkWriter::new(target))
    }

    fn new(target: Target) -> Self {
        SinkWriter {
            target: Arc::new(target),
            error: Arc::new(Mutex::new(None)),
            closed: Arc::new(AtomicBool::new(false)),
            flushed_at: Arc::new(AtomicU64::new(0)),
            opened: Instant::now(),
            stop: None,
        }
    }

    /// A writer that discards everything.
    pub fn null() -> Self {
        SinkWriter::new(Target::Null)
    }

    /// Asks `stop` to end the run when standard output is closed by its reader.
    pub fn stop_on_close(mut self, stop: Stop) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Whether rows are written anywhere (a `null` sink skips serialisation altogether).
    pub fn is_null(&self) -> bool {
        matches!(*self.target, Target::Null)
    }

    /// Appends complete lines. After the first error, further writes are skipped.
    pub fn write(&self, bytes: &[u8]) {
        if bytes.is_empty() || self.failed() || self.closed.load(Ordering::Relaxed) {
            return;
        }
        let result = match &*self.target {
            Target::Null => Ok(()),
            Target::Stdout => io::stdout().lock().write_all(bytes),
            Target::File(file) => lock(file).write_all(bytes),
            #[cfg(feature = "kafka")]
            Target::Kafka(producer) => {
                producer.send_rows(bytes);
                Ok(())
            }
        };
        if let Err(e) = result {
            self.fail(e);
        }
    }

    fn failed(&self) -> bool {
        lock(&self.error).is_some()
    }

    /// Keeps the first error — except standard output closed by its reader, which ends the
    /// run quietly instead.
    fn fail(&self, e: io::Error) {
        if e.kind() == io::ErrorKind::BrokenPipe && matches!(*self.target, Target::Stdout) {
            if !self.closed.swap(true, Ordering::Relaxed) {
                tracing::info!("standard output closed: stopping the run");
                if let Some(stop) = &self.stop {
                    stop.request(StopCause::OutputClosed);
                }
            }
            return;
        }
        lock(&self.error).get_or_insert(e);
    }

    /// Flushes a file's buffer if it was last flushed [`FLUSH_INTERVAL`] ago or more. Cheap
    /// when not due, and never waits for a worker that is writing: call it often.
    pub fn flush_if_due(&self) {
        let Target::File(file) = &*self.target else {
            return;
        };
        let now = self.opened.elapsed().as_nanos() as u64;
        let last = self.flushed_at.load(Ordering::Relaxed);
        if now.saturating_sub(last) < FLUSH_INTERVAL.as_nanos() as u64 {
            return;
        }
        let Ok(mut file) = file.try_lock() else {
            return;
        };
        self.flushed_at.store(now, Ordering::Relaxed);
        if let Err(e) = file.flush() {
            drop(file);
            self.fail(e);
        }
    }

    /// Flushes buffered output; returns the first error seen during the run, if any.
    pub fn finish(&self) -> io::Result<()> {
        let flushed = match &*self.target {
            Target::Null => Ok(()),
            Target::Stdout => io::stdout().lock().flush(),
            Target::File(file) => lock(file).flush(),
            #[cfg(feature = "kafka")]
            Target::Kafka(producer) => producer.finish().map(drop).map_err(io::Error::other),
        };
        if let Err(e) = flushed {
            self.fail(e);
        }
        match lock(&self.error).take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn create(path: &Path) -> io::Result<File> {
    File::create(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display())))
}

/// Locks a mutex, recovering from poisoning (a panicked worker is reported separately).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes every record of `stream` as a JSON line to `writer`, first showing each batch to
/// `count` (for counters). Returns an empty stream whose frontier follows the sink's input,
/// to be probed: when it passes a time, every row before that time has been written.
pub fn write_json_lines<'s, R, F>(
    stream: StreamVec<'s, EventTime, R>,
    name: &str,
    writer: SinkWriter,
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
                input.for_each(|_time, batch| {
                    count(batch);
                    if writer.is_null() {
                        return;
                    }
                    for row in batch.iter() {
                        // Rows are plain data; serialising into a Vec cannot fail.
                        let _ = serde_json::to_writer(&mut buffer, row);
                        buffer.push(b'\n');
                    }
                    if buffer.len() >= 1 << 16 {
                        writer.write(&buffer);
                        buffer.clear();
                    }
                });
                writer.write(&buffer);
                buffer.clear();
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        let parse = |s: &str| SinkSpec::parse(s, KafkaSinkOptions::default());
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
        let w = SinkWriter::open(&SinkSpec::File(path.clone())).unwrap();
        w.write(b"{\"a\":1}\n");
        w.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n");
        assert!(SinkWriter::open(&SinkSpec::File(dir.path().join("no/such/dir"))).is_err());
    }
}
