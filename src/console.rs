//! The console progress display (not timely's progress tracking): progress of a running pipeline on stderr: events read, the current rate and the latest
//! interval's p99 latency — a progress bar redrawn in place when stderr is a terminal (drawn by
//! `indicatif`, whose rate is smoothed over the last seconds), a log line every ten seconds
//! otherwise (so long runs in CI or under `nohup` still say how they are doing; its rate is the
//! average over those ten seconds). Latencies are in the report's units. Results never go to
//! stderr, so this never mixes with them.
//!
//! Workers publish their own counters to a process-wide [`Board`] a few times a second; a thread
//! of the process draws. With several processes, each shows its own share.

use crate::metrics::{dur, si};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
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

/// The latest p99 as the report writes durations, or `-` before there is one.
fn p99_text(board: &Board) -> String {
    match board.p99_ns() {
        0 => "-".to_string(),
        ns => dur(ns as f64 / 1e3),
    }
}

fn draw(board: &Board, mode: ProgressMode, total: Option<u64>) {
    match mode {
        ProgressMode::Off => {}
        ProgressMode::Bar => draw_bar(board, total),
        ProgressMode::Log(every) => draw_log(board, every),
    }
}

fn draw_bar(board: &Board, total: Option<u64>) {
    let rate = |state: &ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = write!(w, "{}", si(state.per_sec()));
    };
    let template = match total {
        Some(_) => "[{bar:30}] {percent:>3}% {pos} events, {rate} events/s, p99 {msg}",
        None => "{pos} events, {rate} events/s, p99 {msg}",
    };
    // The template is a constant known to parse.
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("rate", rate)
        .progress_chars("=> ");
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr_with_hz(4))
        .with_style(style);
    while !board.done.load(Ordering::Relaxed) {
        bar.set_position(board.events());
        bar.set_message(p99_text(board));
        std::thread::park_timeout(Duration::from_millis(250));
    }
    bar.finish_and_clear();
}

fn draw_log(board: &Board, every: Duration) {
    let start = Instant::now();
    let (mut last_at, mut last_events) = (start, 0u64);
    let mut next = start + every;
    while !board.done.load(Ordering::Relaxed) {
        std::thread::park_timeout(Duration::from_millis(250));
        let now = Instant::now();
        if board.done.load(Ordering::Relaxed) || now < next {
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
        let _ = writeln!(
            std::io::stderr().lock(),
            "sluice: progress after {:.0} s: {events} events, {} events/s, p99 {}",
            now.saturating_duration_since(start).as_secs_f64(),
            si(rate),
            p99_text(board)
        );
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
