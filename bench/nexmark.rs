//! Nexmark benchmarks: `cargo bench --bench nexmark -- [options]`.
//!
//! Runs queries through the same driver and metrics code as `sluice run` (no second
//! implementation) and prints tables, plus every figure as JSON and CSV and each latency run's
//! CCDF as TSV (`ccdf-<query>-<rate>.tsv` beside the JSON):
//! - **throughput at saturation**: the in-process generator as fast as possible, `--sink null`;
//!   median (min–max) events/s and events/s per worker over `--runs` runs;
//! - **open-loop latency** at fixed rates: the generator paced to the wall clock, latency measured
//!   from each event's *scheduled* time (no coordinated omission); p50/p90/p99/p99.9/max of the
//!   processing latency, and whether the rate was sustained;
//! - **scaling** (`--scaling`): throughput at `-w 1`, `-w 2` and `-n 2 -w 1` over loopback TCP.
//!
//! Options: `--queries q0,q1,q2` (default: every registered query) `--workers 2` `--runs 5` `--events 10000000`
//! `--rates 1000000` `--seconds 10` `--out target/bench/nexmark.json`.

use sluice::driver::{run, RunConfig};
use sluice::launch::Mesh;
use sluice::metrics::{ccdf_tsv, RunReport, KEPT_UP_MS};
use sluice::sink::SinkSpec;
use sluice::source::nexmark::GeneratorConfig;
use sluice::source::{GeneratorSpec, IngestConfig, SourceSpec};
use std::path::PathBuf;

struct Options {
    queries: Vec<String>,
    workers: usize,
    runs: usize,
    events: u64,
    rates: Vec<u64>,
    seconds: u64,
    out: PathBuf,
    scaling: bool,
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

fn parse_options() -> Result<Options, String> {
    let mut o = Options {
        queries: sluice::queries::names()
            .into_iter()
            .map(String::from)
            .collect(),
        workers: 2,
        runs: 5,
        events: 10_000_000,
        rates: vec![1_000_000],
        seconds: 10,
        out: PathBuf::from("target/bench/nexmark.json"),
        scaling: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        // `cargo bench` passes `--bench`; ignore it.
        if flag == "--bench" {
            continue;
        }
        if flag == "--scaling" {
            o.scaling = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let list = |v: &str| v.split(',').map(str::to_string).collect::<Vec<_>>();
        let num = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--queries" => o.queries = list(&value),
            "--workers" => o.workers = num(&value)? as usize,
            "--runs" => o.runs = num(&value)? as usize,
            "--events" => o.events = num(&value)?,
            "--rates" => {
                o.rates = list(&value)
                    .iter()
                    .map(|v| num(v))
                    .collect::<Result<_, _>>()?
            }
            "--seconds" => o.seconds = num(&value)?,
            "--out" => o.out = PathBuf::from(value),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

fn run_once(
    query: &str,
    layout: Layout,
    events: u64,
    rate: Option<u64>,
) -> Result<RunReport, String> {
    let config = RunConfig {
        query: sluice::queries::find(query).ok_or_else(|| format!("unknown query {query}"))?,
        source: SourceSpec::Nexmark(GeneratorSpec {
            config: GeneratorConfig {
                rate: rate.unwrap_or(GeneratorConfig::default().rate),
                ..GeneratorConfig::default()
            },
            events: Some(events),
            paced: rate.is_some(),
        }),
        sink: SinkSpec::Null,
        dead_letter: None,
        ingest: IngestConfig::default(),
        output_dir: std::env::temp_dir().join("sluice-bench-out"),
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

fn main() {
    let o = match parse_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("nexmark bench: {e}");
            std::process::exit(2);
        }
    };
    let mut results = Vec::new();
    println!(
        "## Throughput at saturation (generator, sink null, -w {}, {} events, {} runs)",
        o.workers, o.events, o.runs
    );
    println!("| query | events/s (median) | min | max | events/s per worker |");
    println!("|---|---|---|---|---|");
    for q in &o.queries {
        let mut rates = Vec::new();
        for _ in 0..o.runs {
            match run_once(q, Layout::Threads(o.workers), o.events, None) {
                Ok(r) => rates.push(r.events_per_second),
                Err(e) => eprintln!("{q}: {e}"),
            }
        }
        if rates.is_empty() {
            continue;
        }
        let (min, max) = rates
            .iter()
            .fold((f64::MAX, 0.0f64), |(a, b), x| (a.min(*x), b.max(*x)));
        let med = median(rates.clone());
        println!(
            "| {q} | {:.2} M | {:.2} M | {:.2} M | {:.2} M |",
            med / 1e6,
            min / 1e6,
            max / 1e6,
            med / 1e6 / o.workers as f64
        );
        results.push(serde_json::json!({
            "kind": "throughput", "query": q, "workers": o.workers, "events": o.events,
            "runs": rates, "median": med, "median_per_worker": med / o.workers as f64,
        }));
    }
    println!();
    println!(
        "## Open-loop latency (generator paced to the wall clock, -w {}, {} s per rate)",
        o.workers, o.seconds
    );
    println!("| query | rate | p50 | p90 | p99 | p99.9 | max | kept up |");
    println!("|---|---|---|---|---|---|---|---|");
    for q in &o.queries {
        for &rate in &o.rates {
            match run_once(q, Layout::Threads(o.workers), rate * o.seconds, Some(rate)) {
                Ok(r) => {
                    let p = r.processing_latency.clone();
                    let kept_up = r.max_behind_ms <= KEPT_UP_MS;
                    if let Some(p) = &p {
                        println!(
                            "| {q} | {:.0} K/s | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} µs | {} |",
                            rate as f64 / 1e3,
                            p.p50_us,
                            p.p90_us,
                            p.p99_us,
                            p.p999_us,
                            p.max_us,
                            if kept_up { "yes" } else { "NO" }
                        );
                    }
                    // The processing-latency CCDF of this query and rate, beside the JSON.
                    let ccdf = o.out.with_file_name(format!("ccdf-{q}-{rate}.tsv"));
                    if let Some(dir) = ccdf.parent() {
                        let _ = std::fs::create_dir_all(dir);
                    }
                    if let Err(e) = std::fs::write(&ccdf, ccdf_tsv(r.latency_histogram())) {
                        eprintln!("cannot write {}: {e}", ccdf.display());
                    }
                    results.push(serde_json::json!({
                        "kind": "latency", "query": q, "workers": o.workers, "rate": rate,
                        "processing_latency": p, "event_time_lag": r.event_time_lag,
                        "max_behind_ms": r.max_behind_ms, "kept_up": kept_up,
                    }));
                }
                Err(e) => eprintln!("{q} at {rate}/s: {e}"),
            }
        }
    }
    if o.scaling {
        println!();
        println!(
            "## Scaling (generator, sink null, {} events, median of {} runs)",
            o.events, o.runs
        );
        println!("| query | -w 1 | -w 2 | -n 2 -w 1 (loopback TCP) | -w 2 / -w 1 | -n 2 / -w 1 |");
        println!("|---|---|---|---|---|---|");
        let layouts = [Layout::Threads(1), Layout::Threads(2), Layout::Processes(2)];
        for q in &o.queries {
            let mut medians = Vec::new();
            for layout in layouts {
                let rates: Vec<f64> = (0..o.runs)
                    .filter_map(|_| {
                        run_once(q, layout, o.events, None)
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
            println!(
                "| {q} | {:.2} M | {:.2} M | {:.2} M | {:.2}× | {:.2}× |",
                medians[0] / 1e6,
                medians[1] / 1e6,
                medians[2] / 1e6,
                ratio(medians[1]),
                ratio(medians[2])
            );
        }
    }
    if let Some(dir) = o.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(
        &o.out,
        serde_json::to_string_pretty(&results).unwrap_or_default(),
    ) {
        Ok(()) => eprintln!("wrote {}", o.out.display()),
        Err(e) => eprintln!("cannot write {}: {e}", o.out.display()),
    }
    let csv = o.out.with_extension("csv");
    match std::fs::write(&csv, to_csv(&results)) {
        Ok(()) => eprintln!("wrote {}", csv.display()),
        Err(e) => eprintln!("cannot write {}: {e}", csv.display()),
    }
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
