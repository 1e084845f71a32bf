//! Progress of a running query on stderr: events read, the current rate and the latest
//! interval's p99 latency — a progress bar redrawn in place when stderr is a terminal, a log line
//! every ten seconds otherwise (so long runs in CI or under `nohup` still say how they are
//! doing). Results never go to stderr, so this never mixes with them.
//!
//! Workers publish their own counters to a process-wide [`Board`] a few times a second; a thread
//! of the process draws. With several processes, each shows its own share.

use crate::metrics::si;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// Not at all.
    Off,
    /// A bar redrawn in place (a terminal).
    Bar,
    /// A line every this often.
    Log(Duration),
}

/// What the workers of one process publish.
pub struct Board {
    events: Vec<AtomicU64>,
    p99_ns: Vec<AtomicU64>,
    done: AtomicBool,
}

impl Board {
    /// A board for `workers` local workers.
    pub fn new(workers: usize) -> Arc<Self> {
        Arc::new(Board {
            events: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            p99_ns: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            done: AtomicBool::new(false),
        })
    }

    /// Local worker `slot` has read `events` so far; its latest interval's p99 was `p99_ns`.
    pub fn publish(&self, slot: usize, events: u64, p99_ns: Option<u64>) {
        if let Some(e) = self.events.get(slot) {
            e.store(events, Ordering::Relaxed);
        }
        if let (Some(p), Some(ns)) = (self.p99_ns.get(slot), p99_ns) {
            p.store(ns, Ordering::Relaxed);
        }
    }

    fn events(&self) -> u64 {
        self.events.iter().map(|e| e.load(Ordering::Relaxed)).sum()
    }

    fn p99_ns(&self) -> u64 {
        self.p99_ns
            .iter()
            .map(|e| e.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }
}

/// Draws the board until [`Reporter::finish`].
pub struct Reporter {
    board: Arc<Board>,
    thread: Option<JoinHandle<()>>,
}

impl Reporter {
    /// Starts drawing `board` in `mode`; `total` is the expected number of events, if known.
    pub fn start(board: Arc<Board>, mode: ProgressMode, total: Option<u64>) -> Self {
        let thread = match mode {
            ProgressMode::Off => None,
            mode => {
                let board = Arc::clone(&board);
                Some(std::thread::spawn(move || draw(&board, mode, total)))
            }
        };
        Reporter { board, thread }
    }

    /// Stops drawing (and clears the bar).
    pub fn finish(mut self) {
        self.board.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

fn draw(board: &Board, mode: ProgressMode, total: Option<u64>) {
    let tick = Duration::from_millis(250);
    let every = match mode {
        ProgressMode::Log(every) => every,
        _ => tick,
    };
    let start = Instant::now();
    let (mut last_at, mut last_events) = (start, 0u64);
    let mut next = start + every;
    while !board.done.load(Ordering::Relaxed) {
        std::thread::park_timeout(tick);
        let now = Instant::now();
        if board.done.load(Ordering::Relaxed) {
            break;
        }
        if now < next {
            continue;
        }
        next = now + every;
        let events = board.events();
        let rate = (events - last_events.min(events)) as f64
            / now
                .saturating_duration_since(last_at)
                .as_secs_f64()
                .max(1e-3);
        (last_at, last_events) = (now, events);
        let p99 = match board.p99_ns() {
            0 => "-".to_string(),
            ns => format!("{:.2} ms", ns as f64 / 1e6),
        };
        let mut err = std::io::stderr().lock();
        let _ = match mode {
            ProgressMode::Bar => {
                let bar = match total {
                    Some(t) if t > 0 => {
                        let done = (events as f64 / t as f64).min(1.0);
                        let filled = (done * 30.0) as usize;
                        format!(
                            "[{}{}] {:>3.0}% ",
                            "=".repeat(filled),
                            " ".repeat(30 - filled),
                            done * 100.0
                        )
                    }
                    _ => String::new(),
                };
                write!(
                    err,
                    "\r\x1b[K{bar}{events} events, {} events/s, p99 {p99}",
                    si(rate)
                )
            }
            _ => writeln!(
                err,
                "sluice: progress after {:.0} s: {events} events, {} events/s, p99 {p99}",
                now.saturating_duration_since(start).as_secs_f64(),
                si(rate)
            ),
        };
    }
    if mode == ProgressMode::Bar {
        let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_board_sums_events_and_keeps_the_worst_p99() {
        let board = Board::new(2);
        board.publish(0, 10, Some(5_000));
        board.publish(1, 32, Some(9_000));
        board.publish(1, 40, None);
        assert_eq!(board.events(), 50);
        assert_eq!(board.p99_ns(), 9_000);
        // A reporter that is off draws nothing and stops at once.
        Reporter::start(board, ProgressMode::Off, None).finish();
    }
}
