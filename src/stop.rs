//! Stopping a run early, on request: a signal (SIGINT, SIGTERM), a closed standard output, or a
//! caller of the library.
//!
//! A [`Stop`] is shared by everything of one run in a process. Asking it to stop makes every
//! source end its input as if it were exhausted — the ingest operators also tell the workers of
//! the other processes, so one signal stops the whole mesh — after which the run finishes as a
//! bounded run does: open windows fire with what they hold, sinks and dead-letter files are
//! flushed, Kafka offsets are committed, the report is printed.
//!
//! [`Stop::install_signal_handlers`] makes the first SIGINT or SIGTERM such a request; a second
//! one exits the process at once (code 128 + the signal number) without flushing anything.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Why a run was asked to stop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopCause {
    /// A signal, by name (`SIGINT`, `SIGTERM`).
    Signal(&'static str),
    /// Standard output was closed by its reader (e.g. `| head`): the rows have nowhere to go.
    OutputClosed,
    /// A worker of another process of the mesh stopped.
    Peer,
    /// The program using the library asked.
    Requested,
}

impl std::fmt::Display for StopCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopCause::Signal(name) => write!(f, "{name}"),
            StopCause::OutputClosed => f.write_str("standard output closed"),
            StopCause::Peer => f.write_str("another process of the mesh stopped"),
            StopCause::Requested => f.write_str("stop requested"),
        }
    }
}

type Waker = Box<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct Inner {
    requested: AtomicBool,
    cause: Mutex<Option<StopCause>>,
    wakers: Mutex<Vec<Waker>>,
}

/// A shared, one-way "stop now" switch with the cause of the first request.
#[derive(Clone, Default)]
pub struct Stop {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stop")
            .field("cause", &self.cause())
            .finish()
    }
}

/// Locks a mutex, recovering from poisoning (the data is a plain value).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Stop {
    /// A switch that has not been thrown.
    pub fn new() -> Self {
        Stop::default()
    }

    /// Asks the run to stop. The first cause is kept; every registered waker is called so that
    /// sources waiting for input or for their schedule notice at once.
    pub fn request(&self, cause: StopCause) {
        {
            let mut first = lock(&self.inner.cause);
            if first.is_some() {
                return;
            }
            *first = Some(cause);
        }
        self.inner.requested.store(true, Ordering::SeqCst);
        for wake in lock(&self.inner.wakers).iter() {
            wake();
        }
    }

    /// Whether a stop was requested (one atomic load: cheap enough for every activation).
    pub fn is_requested(&self) -> bool {
        self.inner.requested.load(Ordering::Relaxed)
    }

    /// The cause of the first request.
    pub fn cause(&self) -> Option<StopCause> {
        lock(&self.inner.cause).clone()
    }

    /// Calls `wake` when a stop is requested (at once if it already was). A waker may be
    /// called more than once.
    pub fn on_request(&self, wake: Waker) {
        // `request` raises the flag before it takes this lock: whichever runs second sees the
        // other's doing, so no request goes unnoticed.
        let mut wakers = lock(&self.inner.wakers);
        if self.inner.requested.load(Ordering::SeqCst) {
            wake();
        }
        wakers.push(wake);
    }

    /// Makes the first SIGINT or SIGTERM of this process a stop request, and a second one an
    /// immediate exit with code 128 + its number (130 for SIGINT, 143 for SIGTERM). A thread of
    /// signal-hook's receives them, outside signal context.
    /// `then` says what the first signal leads to, in the log line.
    pub fn install_signal_handlers(&self, then: &'static str) -> std::io::Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
        let stop = self.clone();
        std::thread::Builder::new()
            .name("sluice-signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    let name = if signal == SIGINT {
                        "SIGINT"
                    } else {
                        "SIGTERM"
                    };
                    if stop.is_requested() {
                        // stderr may be gone (a closed pipe): never panic over a message.
                        let _ = writeln!(
                            std::io::stderr(),
                            "sluice: second {name}: exiting at once, without flushing"
                        );
                        // 130 for SIGINT, 143 for SIGTERM (`cli::exit`).
                        std::process::exit(128 + signal);
                    }
                    tracing::warn!("{name}: {then} (send it again to exit at once)");
                    stop.request(StopCause::Signal(name));
                }
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn the_first_cause_wins_and_wakers_are_called_once_each() {
        let stop = Stop::new();
        let woken = Arc::new(AtomicUsize::new(0));
        let w = Arc::clone(&woken);
        stop.on_request(Box::new(move || {
            w.fetch_add(1, Ordering::SeqCst);
        }));
        assert!(!stop.is_requested());
        stop.request(StopCause::Signal("SIGTERM"));
        stop.request(StopCause::OutputClosed);
        assert!(stop.is_requested());
        assert_eq!(stop.cause(), Some(StopCause::Signal("SIGTERM")));
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        // A waker registered after the request is called at once.
        let w = Arc::clone(&woken);
        stop.on_request(Box::new(move || {
            w.fetch_add(1, Ordering::SeqCst);
        }));
        assert_eq!(woken.load(Ordering::SeqCst), 2);
    }
}
