//! Shared helpers for the integration tests: event files, runs through the library, reference
//! (batch) computations written independently of the engine, and output readers.
#![allow(dead_code)]

use serde_json::Value;
use sluice::driver::{run, RunConfig};
use sluice::launch::Mesh;
use sluice::metrics::RunReport;
use sluice::sink::SinkSpec;
use sluice::source::nexmark::{Generator, GeneratorConfig};
use sluice::source::{GeneratorSpec, IngestConfig, SourceSpec};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Generator events `0..n` as Flink JSON lines.
pub fn generated_lines(n: u64, config: &GeneratorConfig) -> Vec<String> {
    let mut g = Generator::new(config.clone());
    (0..n)
        .map(|i| {
            let mut line = Vec::new();
            g.event(i).write_json_line(&mut line);
            String::from_utf8(line).unwrap().trim_end().to_string()
        })
        .collect()
}

/// Event time (ms) of a Flink JSON event line, read with serde_json only.
pub fn event_time_of(line: &str) -> u64 {
    let v: Value = serde_json::from_str(line).unwrap();
    let payload = ["person", "auction", "bid"]
        .iter()
        .find_map(|k| v.get(*k).filter(|p| !p.is_null()))
        .unwrap();
    let text = payload["dateTime"].as_str().unwrap();
    sluice::time::parse_timestamp(text).unwrap()
}

/// Reorders lines so that each is displaced by less than `max_disorder_ms` of event time:
/// sort by event time plus a deterministic pseudo-random jitter in `[0, max_disorder_ms)`.
pub fn disorder(lines: &[String], max_disorder_ms: u64, seed: u64) -> Vec<String> {
    let mut keyed: Vec<(u64, usize)> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut x = (i as u64 ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            x ^= x >> 29;
            (event_time_of(l) + x % max_disorder_ms, i)
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, i)| lines[i].clone()).collect()
}

/// Writes lines to a file in `dir`.
pub fn write_lines(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    f.flush().unwrap();
    path
}

/// Runs `query` on a single process of `workers` threads, rows to a file; returns rows and report.
pub fn run_query(
    query: &str,
    source: SourceSpec,
    workers: usize,
    ingest: IngestConfig,
    dir: &Path,
) -> (Vec<Value>, RunReport) {
    let out = dir.join(format!("{query}-{workers}-{}.jsonl", unique()));
    let config = RunConfig {
        query: sluice::queries::find(query).unwrap(),
        source,
        sink: SinkSpec::File(out.clone()),
        dead_letter: None,
        ingest,
    };
    let outcome = run(config, &Mesh::local(workers)).unwrap();
    (read_rows(&out), outcome.report.unwrap())
}

/// A file source spec.
pub fn file_source(path: &Path) -> SourceSpec {
    SourceSpec::File {
        path: path.to_path_buf(),
        max_record_bytes: 1 << 20,
    }
}

/// A bounded generator source spec.
pub fn generator_source(events: u64, config: GeneratorConfig) -> SourceSpec {
    SourceSpec::Nexmark(GeneratorSpec {
        config,
        events: Some(events),
        paced: false,
    })
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// JSON lines of a file (or several, concatenated).
pub fn read_rows(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Canonical, sorted text of rows, for multiset comparison.
pub fn canonical(rows: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    v.sort();
    v
}

/// The bid objects of a set of Flink JSON event lines.
pub fn bids(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["event_type"] == 2)
        .map(|v| v["bid"].clone())
        .collect()
}

/// Reference q0: every bid's auction, bidder, price, dateTime, extra.
pub fn reference_q0(lines: &[String]) -> Vec<Value> {
    bids(lines)
        .into_iter()
        .map(|b| {
            serde_json::json!({
                "auction": b["auction"], "bidder": b["bidder"], "price": b["price"],
                "dateTime": b["dateTime"], "extra": b["extra"],
            })
        })
        .collect()
}

/// Reference q1: as q0 with the price in euros, compared in thousandths of a cent.
pub fn reference_q1(lines: &[String]) -> Vec<(u64, u64, u64, String, String)> {
    bids(lines)
        .into_iter()
        .map(|b| {
            (
                b["auction"].as_u64().unwrap(),
                b["bidder"].as_u64().unwrap(),
                b["price"].as_u64().unwrap() * 908,
                b["dateTime"].as_str().unwrap().to_string(),
                b["extra"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// q1 output rows in the same shape as [`reference_q1`].
pub fn q1_tuples(rows: &[Value]) -> Vec<(u64, u64, u64, String, String)> {
    let mut v: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r["auction"].as_u64().unwrap(),
                r["bidder"].as_u64().unwrap(),
                (r["price"].as_f64().unwrap() * 1000.0).round() as u64,
                r["dateTime"].as_str().unwrap().to_string(),
                r["extra"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Reference q2: auction and price of bids whose auction id is a multiple of 123.
pub fn reference_q2(lines: &[String]) -> Vec<Value> {
    bids(lines)
        .into_iter()
        .filter(|b| b["auction"].as_u64().unwrap() % 123 == 0)
        .map(|b| serde_json::json!({"auction": b["auction"], "price": b["price"]}))
        .collect()
}

/// Two consecutive free loopback ports (best effort: free when checked).
pub fn free_port_pair() -> u16 {
    loop {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < 65535 && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}
