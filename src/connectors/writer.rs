//! The [`Writer`] trait: a destination of result rows shared by a process's workers, which
//! every sink implements — stdout, files, Kafka, MQTT — and the flush interval of buffered ones.
//! Its own module so that the sinks' implementations and [`SinkSpec`](super::sink::SinkSpec),
//! which opens them, both depend on it and not on each other.

use crate::time::EventTime;
use std::io;
use std::time::Duration;

/// The longest a row waits in a file sink's buffer before it is written to the file.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// A destination of result rows, shared by a process's workers.
///
/// Rows arrive as complete JSON lines. The epoch hooks are for destinations that commit rows
/// in transactions (an exactly-once sink): rows written after `prepare(e)` belong to the epoch
/// that `commit(e)` makes visible. Destinations without transactions keep the defaults.
///
/// # Examples
///
/// A writer that keeps the rows in memory:
///
/// ```
/// use sluice::connectors::sink::Writer;
/// use std::sync::Mutex;
///
/// #[derive(Default)]
/// struct Memory(Mutex<Vec<u8>>);
///
/// impl Writer for Memory {
///     fn write(&self, rows: &[u8]) -> std::io::Result<()> {
///         self.0.lock().unwrap().extend_from_slice(rows);
///         Ok(())
///     }
///     fn flush(&self) -> std::io::Result<()> {
///         Ok(())
///     }
/// }
///
/// let memory = Memory::default();
/// memory.write(b"{\"a\":1}\n").unwrap();
/// memory.commit(0).unwrap();
/// assert_eq!(memory.0.lock().unwrap().len(), 8);
/// ```
pub trait Writer: Send + Sync {
    /// Appends complete lines.
    fn write(&self, rows: &[u8]) -> io::Result<()>;

    /// Writes out buffered rows if they have waited [`FLUSH_INTERVAL`] or more; never waits
    /// for a worker that is writing. Called often.
    fn flush_if_due(&self) -> io::Result<()> {
        Ok(())
    }

    /// Writes out every buffered row (at the end of a run).
    fn flush(&self) -> io::Result<()>;

    /// Whether rows go nowhere (a `null` sink: rows need not even be serialised).
    fn discards(&self) -> bool {
        false
    }

    /// Rows written from now on belong to the epoch ending at event time `epoch`.
    fn prepare(&self, _epoch: EventTime) -> io::Result<()> {
        Ok(())
    }

    /// Makes the rows of the epoch ending at `epoch` visible (they are durable before).
    fn commit(&self, _epoch: EventTime) -> io::Result<()> {
        Ok(())
    }
}
