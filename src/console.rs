//! The console progress display (not timely's progress tracking): progress of a running pipeline on stderr: events read, the current rate and the latest
//! interval's p99 latency — a progress bar redrawn in place when stderr is a terminal (drawn by
//! `indicatif`, whose rate is smoothed over the last seconds), a log line every ten seconds
//! otherwise (so long runs in CI or under `nohup` still say how they are doing; its rate is the
//! average over those ten seconds). Latencies are in the report's units. Results never go to
//! stderr, so this never mixes with them.
//!
//! Workers publish their own counters to the process's [`LiveMetrics`] a few times a second; a
//! thread of the process draws. With several processes, each shows its own share.

use crate::metrics::live::LiveMetrics;
use crate::metrics::{dur, si};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::io::Write;
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

/// Draws the live view until [`Reporter::finish`].
pub struct Reporter {
    board: Arc<LiveMetrics>,
    thread: Option<JoinHandle<()>>,
}

impl Reporter {
    /// Starts drawing `board` in `mode`; `total` is the expected number of events, if known.
    pub fn start(board: Arc<LiveMetrics>, mode: ProgressMode, total: Option<u64>) -> Self {
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
        self.board.set_done();
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// The latest p99 as the report writes durations, or `-` before there is one.
fn p99_text(board: &LiveMetrics) -> String {
    match board.p99_ns() {
        None => "-".to_string(),
        Some(ns) => dur(ns as f64 / 1e3),
    }
}

fn draw(board: &LiveMetrics, mode: ProgressMode, total: Option<u64>) {
    match mode {
        ProgressMode::Off => {}
        ProgressMode::Bar => draw_bar(board, total),
        ProgressMode::Log(every) => draw_log(board, every),
    }
}

fn draw_bar(board: &LiveMetrics, total: Option<u64>) {
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
    while !board.is_done() {
        bar.set_position(board.events());
        bar.set_message(p99_text(board));
        std::thread::park_timeout(Duration::from_millis(250));
    }
    bar.finish_and_clear();
}

fn draw_log(board: &LiveMetrics, every: Duration) {
    let start = Instant::now();
    let (mut last_at, mut last_events) = (start, 0u64);
    let mut next = start + every;
    while !board.is_done() {
        std::thread::park_timeout(Duration::from_millis(250));
        let now = Instant::now();
        if board.is_done() || now < next {
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
    use crate::metrics::live::RunInfo;

    #[test]
    fn a_reporter_that_is_off_stops_at_once() {
        let live = LiveMetrics::new(RunInfo::default());
        assert_eq!(p99_text(&live), "-");
        Reporter::start(Arc::clone(&live), ProgressMode::Off, None).finish();
        assert!(live.is_done());
    }
}
