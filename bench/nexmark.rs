//! Nexmark benchmarks: `cargo bench --bench nexmark -- [options]`.
//!
//! Runs queries through the same driver and metrics code as `sluice run` (no second
//! implementation) and prints tables, plus every figure as JSON and CSV and each latency run's
//! CCDF as TSV (`ccdf-<query>-<rate>.tsv` beside the JSON):
//! - **throughput at saturation**: the in-process generator as fast as possible, and a file of
//!   the same events (`--file-events`, parsing included), `--sink null`; median (min–max)
//!   events/s and events/s per worker over `--runs` runs;
//! - **open-loop latency** at fixed rates: the generator paced to the wall clock, latency measured
//!   from each event's *scheduled* time (no coordinated omission); p50/p90/p99/p99.9/max of the
//!   processing latency, and whether the rate was sustained;
//! - **scaling** (`--scaling`): throughput at `-w 1`, `-w 2` and `-n 2 -w 1` over loopback TCP.
//!
//! - **plots** (SVG, beside the JSON): a throughput bar chart, per query and rate a latency CCDF
//!   and a timeline (latency percentiles, throughput and RSS per second), and per rate every
//!   query's CCDF on one chart; `report.md` holds the tables with links to the plots.
//!
//! Paced runs leave the first `--warmup` seconds out of the percentiles (they stay in the
//! timeline) and stop early, saying so, when the source falls `--give-up` seconds behind its
//! schedule. Progress goes to stderr.
//!
//! Options (`-- --help` lists them): `--queries q0,q1,q2` (default: every registered query)
//! `--workers 2` `--runs 5` `--events 10000000` `--rates 1000000` `--seconds 10` `--warmup 2`
//! `--give-up 5` `--file-events 1000000` `--scaling` `--out target/bench/nexmark.json`.

use sluice::connectors::generator::GeneratorSpec;
use sluice::connectors::sink::SinkSpec;
use sluice::connectors::{InputFormat, SourceSpec};
use sluice::driver::{run, RunConfig};
use sluice::ingest::IngestConfig;
use sluice::launch::Mesh;
use sluice::metrics::{ccdf_tsv, dur, si, MetricsConfig, RunReport, KEPT_UP_MS};
use sluice::nexmark::generator::GeneratorConfig;
use sluice::nexmark::model::Event;

/// A source of Nexmark events.
type Source = SourceSpec<Event>;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

#[path = "plots.rs"]
mod plots;

/// The allocator of the `sluice` binary, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `cargo bench --bench nexmark -- [options]`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "nexmark bench",
    about = "Nexmark throughput, latency and scaling benchmarks"
)]
struct Options {
    /// Queries to run, comma-separated (default: every registered query).
    #[arg(long, value_delimiter = ',', value_name = "Q,…")]
    queries: Vec<String>,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Throughput runs per query (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Generated events per throughput run.
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// Paced rates of the latency runs, events/s, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000000",
        value_name = "R,…"
    )]
    rates: Vec<u64>,
    /// Measured seconds of each latency run (after the warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Warm-up seconds left out of the percentiles.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// A latency run stops when its source falls this many seconds behind its schedule.
    #[arg(long, default_value_t = 5)]
    give_up: u64,
    /// Events of the file-source throughput runs (0: skip them).
    #[arg(long, default_value_t = 1_000_000)]
    file_events: u64,
    /// Also measure -w 1, -w 2 and -n 2 -w 1 throughput.
    #[arg(long)]
    scaling: bool,
    /// Where the JSON results go; plots, CSV, TSV and report.md go beside it.
    #[arg(long, default_value = "target/bench/nexmark.json")]
    out: PathBuf,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// How the workers of a run are laid out.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// One process with this many worker threads.
    Threads(usize),
    /// This many processes of one worker each, meshed over loopback TCP (run as threads of this
    /// benchmark, each with its own communication layer).
    Processes(usize),
}

impl Layout {
    fn label(self) -> String {
        match self {
            Layout::Threads(w) => format!("-w {w}"),
            Layout::Processes(n) => format!("-n {n} -w 1"),
        }
    }
}

/// A paced run's settings: rate, warm-up left out of the percentiles, and how far behind its
/// schedule the source may fall before the run stops.
#[derive(Clone, Copy)]
struct Paced {
    rate: u64,
    warmup: Duration,
    give_up: Duration,
}

/// The in-process generator: `events` events, paced at the rate of `paced` if given.
fn generator(events: u64, paced: Option<Paced>) -> Source {
    let rate = paced.map(|p| p.rate);
    SourceSpec::Generator {
        name: sluice::nexmark::NAME.into(),
        make: sluice::nexmark::generator,
        spec: GeneratorSpec {
            config: GeneratorConfig {
                rate: rate.unwrap_or(GeneratorConfig::default().rate),
                ..GeneratorConfig::default()
            },
            events: Some(events),
            paced: rate.is_some(),
            speed: 1,
        },
    }
}

/// The generator's first `events` events as a Flink-format JSON-lines file (written once).
fn events_file(dir: &std::path::Path, events: u64) -> Result<Source, String> {
    let path = dir.join(format!("events-{events}.jsonl"));
    if !path.exists() {
        let tmp = path.with_extension("tmp");
        let file = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut g = sluice::nexmark::generator::Generator::new(GeneratorConfig::default());
        let mut line = Vec::new();
        for n in 0..events {
            line.clear();
            g.event(n).write_json_line(&mut line);
            std::io::Write::write_all(&mut out, &line).map_err(|e| e.to_string())?;
        }
        std::io::Write::flush(&mut out).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &path).map_err(|e| e.to_string())?;
    }
    Ok(SourceSpec::File {
        path,
        input: InputFormat::default(),
    })
}

fn run_once(
    query: &str,
    layout: Layout,
    source: Source,
    paced: Option<Paced>,
) -> Result<RunReport, String> {
    let query =
        sluice::queries::nexmark::find(query).ok_or_else(|| format!("unknown query {query}"))?;
    let mut config = RunConfig::new(query, source, SinkSpec::Null);
    config.options.ingest = IngestConfig {
        give_up_behind: paced.map(|p| p.give_up),
        ..IngestConfig::default()
    };
    config.options.output_dir = std::env::temp_dir().join("sluice-bench-out");
    config.options.metrics = MetricsConfig {
        warmup: paced.map_or(Duration::ZERO, |p| p.warmup),
        ..MetricsConfig::default()
    };
    match layout {
        Layout::Threads(workers) => {
            let outcome = run(config, &Mesh::local(workers)).map_err(|e| e.to_string())?;
            outcome.report.ok_or_else(|| "no report".to_string())
        }
        Layout::Processes(n) => {
            let port = free_ports(n);
            let handles: Vec<_> = (0..n)
                .map(|p| {
                    let config = config.clone();
                    std::thread::spawn(move || {
                        let mesh = Mesh::from_flags(
                            1,
                            n,
                            p,
                            None,
                            port,
                            std::time::Duration::from_secs(30),
                        )
                        .map_err(|e| e.to_string())?;
                        run(config, &mesh).map_err(|e| e.to_string())
                    })
                })
                .collect();
            let mut report = None;
            for h in handles {
                let outcome = h
                    .join()
                    .map_err(|_| "a process thread panicked".to_string())??;
                report = report.or(outcome.report);
            }
            report.ok_or_else(|| "no report".to_string())
        }
    }
}

/// The first of `n` consecutive loopback ports that were free when checked.
fn free_ports(n: usize) -> u16 {
    loop {
        let first = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(40_000);
        let free = (1..n as u16).all(|i| {
            first
                .checked_add(i)
                .is_some_and(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        });
        if free {
            return first;
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Prints a line of the Markdown report and keeps it for `report.md`.
macro_rules! say {
    ($md:expr) => {{
        println!();
        $md.push('\n');
    }};
    ($md:expr, $($arg:tt)*) => {{
        let line = format!($($arg)*);
        println!("{line}");
        let _ = writeln!($md, "{line}");
    }};
}

fn main() {
    let mut o = <Options as clap::Parser>::parse();
    if o.queries.is_empty() {
        o.queries = sluice::queries::nexmark::ALL
            .iter()
            .map(|q| q.name.to_string())
            .collect();
    }
    let dir = o.out.parent().map(PathBuf::from).unwrap_or_default();
    let _ = std::fs::create_dir_all(&dir);
    let started = std::time::Instant::now();
    let mut md = String::new();
    let mut results = Vec::new();
    say!(md, "# Nexmark benchmark report");
    say!(md);
    say!(md, "{}", machine());
    say!(md);
    say!(
        md,
        "## Throughput at saturation (generator, sink null, -w {}, {} events, {} runs)",
        o.workers,
        o.events,
        o.runs
    );
    say!(md);
    say!(
        md,
        "Generator in process; file source: the first {} generated events as Flink JSON lines, read from a file (parsing included).",
        o.file_events
    );
    say!(md);
    say!(
        md,
        "| query | events/s (median) | min | max | events/s per worker | file source events/s | per worker |"
    );
    say!(md, "|---|---|---|---|---|---|---|");
    let file = if o.file_events > 0 {
        events_file(&dir, o.file_events)
            .map_err(|e| eprintln!("cannot write the events file: {e}"))
            .ok()
    } else {
        None
    };
    let mut bars = Vec::new();
    let measure = |q: &str, source: &dyn Fn() -> Source| -> Vec<f64> {
        (0..o.runs)
            .filter_map(|_| {
                run_once(q, Layout::Threads(o.workers), source(), None)
                    .map_err(|e| eprintln!("{q}: {e}"))
                    .ok()
            })
            .map(|r| r.events_per_second)
            .collect()
    };
    for q in &o.queries {
        eprintln!(
            "[{:>4.0} s] throughput {q}",
            started.elapsed().as_secs_f64()
        );
        let rates = measure(q, &|| generator(o.events, None));
        if rates.is_empty() {
            continue;
        }
        let (min, max) = rates
            .iter()
            .fold((f64::MAX, 0.0f64), |(a, b), x| (a.min(*x), b.max(*x)));
        let med = median(rates.clone());
        let from_file = match &file {
            Some(spec) => measure(q, &|| spec.clone()),
            None => Vec::new(),
        };
        let file_med = (!from_file.is_empty()).then(|| median(from_file.clone()));
        let per = o.workers as f64;
        say!(
            md,
            "| {q} | {:.2} M | {:.2} M | {:.2} M | {:.2} M | {} | {} |",
            med / 1e6,
            min / 1e6,
            max / 1e6,
            med / 1e6 / per,
            file_med.map_or("–".into(), |m| format!("{:.2} M", m / 1e6)),
            file_med.map_or("–".into(), |m| format!("{:.2} M", m / 1e6 / per)),
        );
        bars.push((q.clone(), med / per));
        results.push(serde_json::json!({
            "kind": "throughput", "query": q, "workers": o.workers, "events": o.events,
            "runs": rates, "median": med, "median_per_worker": med / per,
            "file_events": o.file_events, "file_runs": from_file, "file_median": file_med,
        }));
    }
    let chart = dir.join("throughput.svg");
    let title = format!(
        "Throughput at saturation, -w {} (median of {})",
        o.workers, o.runs
    );
    match plots::throughput(&chart, &title, &bars) {
        Ok(true) => say!(md, "\n![throughput](throughput.svg)"),
        Ok(false) => {}
        Err(e) => eprintln!("cannot plot {}: {e}", chart.display()),
    }
    say!(md);
    say!(
        md,
        "## Open-loop latency (generator paced to the wall clock, -w {}, {} s per rate after a {} s warm-up)",
        o.workers,
        o.seconds,
        o.warmup
    );
    say!(md);
    say!(md, "Latency from each event's scheduled time until the output frontier passed it; a run stops early when the source falls {} s behind its schedule.", o.give_up);
    say!(md);
    say!(
        md,
        "| query | rate | p50 | p90 | p99 | p99.9 | max | kept up | plots |"
    );
    say!(md, "|---|---|---|---|---|---|---|---|---|");
    let mut by_rate: Vec<(u64, Vec<plots::Curve>)> =
        o.rates.iter().map(|r| (*r, Vec::new())).collect();
    for q in &o.queries {
        for (slot, &rate) in o.rates.iter().enumerate() {
            eprintln!(
                "[{:>4.0} s] latency {q} at {rate}/s",
                started.elapsed().as_secs_f64()
            );
            let paced = Paced {
                rate,
                warmup: Duration::from_secs(o.warmup),
                give_up: Duration::from_secs(o.give_up),
            };
            let events = rate * (o.seconds + o.warmup);
            let source = generator(events, Some(paced));
            match run_once(q, Layout::Threads(o.workers), source, Some(paced)) {
                Ok(r) => {
                    let p = r.processing_latency.clone();
                    let kept_up = r.max_behind_ms <= KEPT_UP_MS && !r.gave_up;
                    let verdict = if r.gave_up {
                        format!("NO (stopped after {:.0} s)", r.seconds)
                    } else if kept_up {
                        "yes".to_string()
                    } else {
                        format!("NO ({} ms behind)", r.max_behind_ms)
                    };
                    let stem = format!("{q}-{rate}");
                    let ccdf_svg = dir.join(format!("ccdf-{stem}.svg"));
                    let timeline_svg = dir.join(format!("timeline-{stem}.svg"));
                    let curve = plots::ccdf_points(r.latency_histogram());
                    let title = format!("{q} at {} events/s: latency CCDF", si(rate as f64));
                    let ccdf_label = q.clone();
                    // Link only the plots that were written.
                    let mut links = Vec::new();
                    match plots::ccdf(&ccdf_svg, &title, &[(ccdf_label.clone(), curve.clone())]) {
                        Ok(true) => links.push(format!("[CCDF](ccdf-{stem}.svg)")),
                        Ok(false) => {}
                        Err(e) => eprintln!("cannot plot {}: {e}", ccdf_svg.display()),
                    }
                    let title = format!(
                        "{q} at {} events/s: latency and memory over time",
                        si(rate as f64)
                    );
                    match plots::timeline(&timeline_svg, &title, &r.timeline) {
                        Ok(true) => links.push(format!("[timeline](timeline-{stem}.svg)")),
                        Ok(false) => {}
                        Err(e) => eprintln!("cannot plot {}: {e}", timeline_svg.display()),
                    }
                    let links = links.join(", ");
                    by_rate[slot].1.push((ccdf_label, curve));
                    let us = dur;
                    match &p {
                        Some(p) => say!(
                            md,
                            "| {q} | {} /s | {} | {} | {} | {} | {} | {verdict} | {links} |",
                            si(rate as f64),
                            us(p.p50_us),
                            us(p.p90_us),
                            us(p.p99_us),
                            us(p.p999_us),
                            us(p.max_us)
                        ),
                        None => say!(
                            md,
                            "| {q} | {} /s | – | – | – | – | – | {verdict} | {links} |",
                            si(rate as f64)
                        ),
                    }
                    let ccdf = dir.join(format!("ccdf-{stem}.tsv"));
                    if let Err(e) = std::fs::write(&ccdf, ccdf_tsv(r.latency_histogram())) {
                        eprintln!("cannot write {}: {e}", ccdf.display());
                    }
                    results.push(serde_json::json!({
                        "kind": "latency", "query": q, "workers": o.workers, "rate": rate,
                        "processing_latency": p, "event_time_lag": r.event_time_lag,
                        "max_behind_ms": r.max_behind_ms, "kept_up": kept_up, "gave_up": r.gave_up,
                        "warmup_events": r.warmup_events, "timeline": r.timeline,
                    }));
                }
                Err(e) => eprintln!("{q} at {rate}/s: {e}"),
            }
        }
    }
    say!(md);
    for (rate, curves) in &by_rate {
        let path = dir.join(format!("ccdf-{rate}.svg"));
        let title = format!("Latency CCDF at {} events/s, every query", si(*rate as f64));
        match plots::ccdf(&path, &title, curves) {
            Ok(true) => say!(md, "![CCDF at {rate}](ccdf-{rate}.svg)"),
            Ok(false) => {}
            Err(e) => eprintln!("cannot plot {}: {e}", path.display()),
        }
    }
    if o.scaling {
        say!(md);
        say!(
            md,
            "## Scaling (generator, sink null, {} events, median of {} runs)",
            o.events,
            o.runs
        );
        say!(md);
        say!(
            md,
            "| query | -w 1 | -w 2 | -n 2 -w 1 (loopback TCP) | -w 2 / -w 1 | -n 2 / -w 1 |"
        );
        say!(md, "|---|---|---|---|---|---|");
        let layouts = [Layout::Threads(1), Layout::Threads(2), Layout::Processes(2)];
        for q in &o.queries {
            eprintln!("[{:>4.0} s] scaling {q}", started.elapsed().as_secs_f64());
            let mut medians = Vec::new();
            for layout in layouts {
                let rates: Vec<f64> = (0..o.runs)
                    .filter_map(|_| {
                        run_once(q, layout, generator(o.events, None), None)
                            .map_err(|e| eprintln!("{q}: {e}"))
                            .ok()
                    })
                    .map(|r| r.events_per_second)
                    .collect();
                let med = if rates.is_empty() {
                    0.0
                } else {
                    median(rates.clone())
                };
                results.push(serde_json::json!({
                    "kind": "scaling", "query": q, "layout": layout.label(), "events": o.events,
                    "runs": rates, "median": med,
                }));
                medians.push(med);
            }
            let ratio = |a: f64| {
                if medians[0] > 0.0 {
                    a / medians[0]
                } else {
                    0.0
                }
            };
            say!(
                md,
                "| {q} | {:.2} M | {:.2} M | {:.2} M | {:.2}× | {:.2}× |",
                medians[0] / 1e6,
                medians[1] / 1e6,
                medians[2] / 1e6,
                ratio(medians[1]),
                ratio(medians[2])
            );
        }
    }
    say!(md);
    say!(
        md,
        "Total benchmark time: {:.0} s.",
        started.elapsed().as_secs_f64()
    );
    let write = |path: PathBuf, text: String| match std::fs::write(&path, text) {
        Ok(()) => eprintln!("wrote {}", path.display()),
        Err(e) => eprintln!("cannot write {}: {e}", path.display()),
    };
    write(
        o.out.clone(),
        serde_json::to_string_pretty(&results).unwrap_or_default(),
    );
    write(o.out.with_extension("csv"), to_csv(&results));
    write(dir.join("report.md"), md);
}

/// The machine and build the figures come from.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    format!("Machine: {cores} cores, {cpu}; commit {commit}; release build.")
}

/// One CSV line per figure: kind, query, layout, rate, median events/s, p50/p90/p99/p99.9/max µs.
fn to_csv(results: &[serde_json::Value]) -> String {
    let mut out = String::from(
        "kind,query,layout,rate,median_events_per_second,p50_us,p90_us,p99_us,p999_us,max_us\n",
    );
    for r in results {
        let f = |v: &serde_json::Value| v.as_f64().map(|x| x.to_string()).unwrap_or_default();
        let p = &r["processing_latency"];
        let layout = r["layout"]
            .as_str()
            .map(str::to_string)
            .or_else(|| r["workers"].as_u64().map(|w| format!("-w {w}")))
            .unwrap_or_default();
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            r["kind"].as_str().unwrap_or(""),
            r["query"].as_str().unwrap_or(""),
            layout,
            f(&r["rate"]),
            f(&r["median"]),
            f(&p["p50_us"]),
            f(&p["p90_us"]),
            f(&p["p99_us"]),
            f(&p["p999_us"]),
            f(&p["max_us"]),
        ));
    }
    out
}
