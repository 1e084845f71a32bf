//! The parse limit of file input: `cargo bench --bench parse -- [--file PATH] [--events N]`.
//!
//! One thread, the file in memory (no I/O), Flink-format Nexmark JSON lines (a file given, or
//! `--events` generated ones): how many lines per second
//! - `split`: finding the line ends (memchr), nothing else;
//! - `serde_json`: `serde_json::from_slice::<Event>` per line — a bare parse loop;
//! - `sonic_rs`: the same with `sonic_rs::from_slice` (SIMD JSON, serde-compatible);
//! - `decode`: the file source's decoder (`Decoder::decode`: size cap, UTF-8, parse, dead
//!   letters) per line — the bare loop of the path `sluice run --source file:…` takes.
//!
//! Then each of `--queries` (q0,q1,q2) reads the same file through the whole engine, in this
//! process, as `sluice run Q --source file:PATH -w 1 --sink null` would: the events/s of one
//! worker over the bare `serde_json` loop's lines/s is the share of the parse limit the engine
//! reaches. Passes alternate (bare loop, then each query) and the ratio is taken pass by pass, so
//! a machine whose speed drifts does not skew it; medians of `--runs` passes.

use sluice::connectors::format::Decoder;
use sluice::connectors::sink::SinkSpec;
use sluice::connectors::{Ingest, InputFormat, SourceSpec};
use sluice::deadletter::Origin;
use sluice::driver::{run, RunConfig};
use sluice::launch::Mesh;
use sluice::nexmark::generator::{Generator, GeneratorConfig};
use sluice::nexmark::model::Event;
use sluice::record::Format;
use std::path::PathBuf;
use std::time::Instant;

/// The allocator of the `sluice` binary, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `cargo bench --bench parse -- [options]`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "parse bench",
    about = "Lines per second of the JSON decode path, one thread"
)]
struct Options {
    /// A file of Flink-format JSON lines (default: generated events).
    #[arg(long)]
    file: Option<PathBuf>,
    /// Events to generate when no file is given.
    #[arg(long, default_value_t = 2_000_000)]
    events: u64,
    /// Passes per loop (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Queries run over the file, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "q0,q1,q2")]
    queries: Vec<String>,
    /// Accepted for `cargo bench`'s sake.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Lines per second of `pass` over `lines`, median of `runs`; `pass` returns a checksum so the
/// work cannot be optimised away.
fn measure(runs: usize, lines: usize, mut pass: impl FnMut() -> u64) -> (f64, u64) {
    let mut rates = Vec::new();
    let mut check = 0;
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        check = pass();
        rates.push(lines as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() / 2], check)
}

fn main() -> anyhow::Result<()> {
    let options: Options = clap::Parser::parse();
    let path = match &options.file {
        Some(path) => path.clone(),
        None => {
            let dir = PathBuf::from("target/bench");
            std::fs::create_dir_all(&dir)?;
            let path = dir.join(format!("parse-{}.jsonl", options.events));
            if !path.exists() {
                let mut generator = Generator::new(GeneratorConfig::default());
                let mut data = Vec::new();
                for n in 0..options.events {
                    generator.event(n).write_json_line(&mut data);
                }
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, &data)?;
                std::fs::rename(&tmp, &path)?;
            }
            path
        }
    };
    let data = std::fs::read(&path)?;
    let lines: Vec<&[u8]> = data
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let count = lines.len();
    eprintln!(
        "{count} lines, {:.1} MiB, {:.0} bytes per line",
        data.len() as f64 / (1 << 20) as f64,
        data.len() as f64 / count.max(1) as f64
    );

    let (split, found) = measure(options.runs, count, || {
        memchr::memchr_iter(b'\n', &data).count() as u64
    });
    let (bare, parsed) = measure(options.runs, count, || {
        lines
            .iter()
            .filter(|l| serde_json::from_slice::<Event>(l).is_ok())
            .count() as u64
    });
    let (sonic, sonic_parsed) = measure(options.runs, count, || {
        lines
            .iter()
            .filter(|l| sonic_rs::from_slice::<Event>(l).is_ok())
            .count() as u64
    });
    let decoder: Decoder<Event> = Decoder::new(Format::Json, None);
    let (decode, decoded) = measure(options.runs, count, || {
        let mut out = Ingest::default();
        let mut n = 0;
        for chunk in lines.chunks(4096) {
            out.records.clear();
            for line in chunk {
                decoder.decode(
                    line,
                    false,
                    1 << 20,
                    || Origin::Generator { event: 0 },
                    &mut out,
                );
            }
            n += out.records.len() as u64;
        }
        n
    });
    anyhow::ensure!(
        parsed == count as u64 && decoded == parsed && sonic_parsed == parsed,
        "{count} lines, {parsed} parsed, {decoded} decoded: the input is not all Nexmark JSON"
    );
    println!("| loop | lines/s (one thread) | vs serde_json |");
    println!("|---|---|---|");
    for (name, rate) in [
        ("split (memchr)", split),
        ("serde_json", bare),
        ("sonic_rs", sonic),
        ("decode", decode),
    ] {
        println!("| {name} | {:.2} M | {:.2} |", rate / 1e6, rate / bare);
    }
    eprintln!("({found} line ends)");

    // The engine over the same file, paired with the bare loop pass by pass.
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); options.queries.len()];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); options.queries.len()];
    let mut bares = Vec::new();
    for _ in 0..options.runs.max(1) {
        let (bare, _) = measure(1, count, || {
            lines
                .iter()
                .filter(|l| serde_json::from_slice::<Event>(l).is_ok())
                .count() as u64
        });
        bares.push(bare);
        for (i, query) in options.queries.iter().enumerate() {
            let pipeline = sluice::queries::nexmark::find(query)
                .ok_or_else(|| anyhow::anyhow!("unknown query {query}"))?;
            let source = SourceSpec::File {
                path: path.clone(),
                input: InputFormat::default(),
            };
            let mut config = RunConfig::new(pipeline, source, SinkSpec::Null);
            config.options.output_dir = std::env::temp_dir().join("sluice-bench-out");
            let outcome = run(config, &Mesh::local(1))?;
            let report = outcome
                .report
                .ok_or_else(|| anyhow::anyhow!("{query}: no report"))?;
            anyhow::ensure!(
                report.events == count as u64,
                "{query} read {} of {count} events",
                report.events
            );
            rates[i].push(report.events_per_second);
            ratios[i].push(report.events_per_second / bare);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!();
    println!(
        "| query (-w 1, file, --sink null) | events/s | share of the bare serde_json loop ({:.2} M lines/s) |",
        median(&mut bares) / 1e6
    );
    println!("|---|---|---|");
    for (i, query) in options.queries.iter().enumerate() {
        println!(
            "| {query} | {:.2} M | {:.0} % |",
            median(&mut rates[i]) / 1e6,
            100.0 * median(&mut ratios[i])
        );
    }
    Ok(())
}
