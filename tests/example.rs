//! `examples/sensors.rs` — a pipeline written as a user would, outside the crate, over its own
//! record type — run through its own binary: from a CSV file with bad rows (exact dead letters),
//! at `-w 1`, `-w 2` and across two processes, against a batch computation over the same rows.
//! (Its Kafka run is in `tests/kafka.rs`.)

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Per (device, window start): readings, min, max, sum — from the CSV text alone.
fn reference(csv_text: &str) -> BTreeMap<(String, u64), (u64, f64, f64, f64)> {
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let mut out: BTreeMap<(String, u64), (u64, f64, f64, f64)> = BTreeMap::new();
    for row in reader.records() {
        let Ok(row) = row else { continue };
        let (Some(time), Some(device), Some(celsius)) = (row.get(0), row.get(1), row.get(2)) else {
            continue;
        };
        let (Ok(time), Ok(celsius)) = (time.parse::<u64>(), celsius.parse::<f64>()) else {
            continue;
        };
        if row.len() != 3 {
            continue;
        }
        let e = out
            .entry((device.to_string(), time - time % 10_000))
            .or_insert((0, f64::INFINITY, f64::NEG_INFINITY, 0.0));
        e.0 += 1;
        e.1 = e.1.min(celsius);
        e.2 = e.2.max(celsius);
        e.3 += celsius;
    }
    out
}

/// The rows' (readings, min, max) by (device, window start), after checking each mean against
/// the reference's sum.
fn check_rows(
    rows: &[Value],
    want: &BTreeMap<(String, u64), (u64, f64, f64, f64)>,
) -> BTreeMap<(String, u64), (u64, f64, f64)> {
    rows.iter()
        .map(|r| {
            let n = r["readings"].as_u64().unwrap();
            let key = (
                r["device"].as_str().unwrap().to_string(),
                r["window_start"].as_u64().unwrap(),
            );
            let mean = r["mean"].as_f64().unwrap();
            let sum = want.get(&key).map_or(f64::NAN, |w| w.3);
            assert!((mean - sum / n as f64).abs() < 1e-9, "{key:?}: mean {mean}");
            let (min, max) = (r["min"].as_f64().unwrap(), r["max"].as_f64().unwrap());
            (key, (n, min, max))
        })
        .collect()
}

/// Generated readings as CSV (header first), with bad rows mixed in: returns the path, the
/// text, and the 1-based line numbers of the bad rows with their reasons.
fn readings_with_bad_rows(dir: &Path) -> (PathBuf, String, Vec<(u64, &'static str)>) {
    let generated = dir.join("generated.csv");
    let out = sensors(&[
        "gen",
        "--format",
        "csv",
        "--events",
        "30000",
        "--rate",
        "1000",
        "-o",
        generated.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&generated).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    assert_eq!(lines[0], "time,device,celsius");
    let bad: [(&str, &str); 3] = [
        ("1767225601000,dev-01", "malformed_csv"),
        ("soon,dev-02,21.5", "invalid_event"),
        ("1767225602000,dev-03,hot", "invalid_event"),
    ];
    let mut at = Vec::new();
    for (i, (row, reason)) in bad.iter().enumerate() {
        let index = 100 + i * 5000;
        lines.insert(index, row.to_string());
        at.push(((index + 1) as u64, *reason));
    }
    let path = dir.join("readings.csv");
    let mut f = std::fs::File::create(&path).unwrap();
    for l in &lines {
        writeln!(f, "{l}").unwrap();
    }
    (path, lines.join("\n") + "\n", at)
}

#[test]
fn the_example_pipeline_runs_from_csv_on_threads_and_processes() {
    let dir = tempfile::tempdir().unwrap();
    let (path, text, bad) = readings_with_bad_rows(dir.path());
    let want = reference(&text);
    assert_eq!(want.values().map(|v| v.0).sum::<u64>(), 30_000);
    let source = format!("file:{}", path.display());
    let port = free_port_pair().to_string();
    for mesh in [
        vec!["-w", "1"],
        vec!["-w", "2"],
        vec!["-n", "2", "--port", &port],
    ] {
        let rows = dir.path().join("rows-{process}.jsonl");
        let dead = dir.path().join("dead-{process}.jsonl");
        let mut args = vec![
            "run",
            "sensor_stats",
            "--source",
            &source,
            "--format",
            "csv",
            "--progress",
            "off",
        ];
        let (rows_arg, dead_arg) = (
            format!("file:{}", rows.display()),
            dead.display().to_string(),
        );
        args.extend(["--sink", &rows_arg, "--dead-letter", &dead_arg]);
        args.extend(mesh.iter().copied());
        let out = sensors(&args);
        assert!(out.status.success(), "{mesh:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("dead letters 3 (malformed_csv 1, invalid_event 2)"),
            "{mesh:?}: {}",
            stderr(&out)
        );
        let (mut got, mut letters) = (Vec::new(), Vec::new());
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let p = entry.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("rows-") {
                got.extend(read_rows(&p));
                std::fs::remove_file(&p).unwrap();
            } else if name.starts_with("dead-") {
                letters.extend(read_rows(&p));
                std::fs::remove_file(&p).unwrap();
            }
        }
        let counts: BTreeMap<_, _> = want
            .iter()
            .map(|(k, (n, min, max, _))| (k.clone(), (*n, *min, *max)))
            .collect();
        assert_eq!(check_rows(&got, &want), counts, "{mesh:?}");
        let mut reasons: Vec<(u64, String)> = letters
            .iter()
            .map(|d| {
                (
                    d["origin"]["line"].as_u64().unwrap(),
                    d["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        reasons.sort();
        let expected: Vec<(u64, String)> = bad.iter().map(|(l, r)| (*l, r.to_string())).collect();
        assert_eq!(reasons, expected, "{mesh:?}");
    }
}

#[test]
fn the_example_has_the_whole_command_line() {
    let list = sensors(&["list"]);
    assert!(list.status.success());
    let listed = String::from_utf8_lossy(&list.stdout);
    let columns: Vec<&str> = listed.split_whitespace().take(2).collect();
    assert_eq!(columns, ["sensor_stats", "sensors"], "{listed}");
    // Its own generator, in the default source, and the mesh flags.
    let out = sensors(&[
        "run",
        "sensor_stats",
        "--events",
        "20000",
        "--threads",
        "2",
        "--sink",
        "null",
        "--report",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["events"], 20000);
    assert_eq!(report["source"], "sensors");
    assert_eq!(report["workers"], 2);
    // Its generator's own setting, checked before anything runs.
    let out = sensors(&["gen", "--devices", "3", "--events", "9", "--format", "csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let devices: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().to_string())
        .collect();
    assert_eq!(
        devices,
        BTreeSet::from(["dev-00", "dev-01", "dev-02"].map(String::from))
    );
    let bad = sensors(&["gen", "--devices", "0"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("not a number of devices"),
        "{}",
        stderr(&bad)
    );
    let elsewhere = sensors(&[
        "run",
        "sensor_stats",
        "--source",
        "file:x.csv",
        "--devices",
        "3",
    ]);
    assert_eq!(elsewhere.status.code(), Some(2));
    assert!(stderr(&elsewhere).contains("--devices applies only to a generator"));
    // Its records are flat: CSV is theirs; Nexmark's are not.
    let help = sensors(&["run", "--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("Usage: sensors run"));
    let nexmark_csv = sluice(&["run", "q0", "--source", "file:x.csv", "--format", "csv"]);
    assert_eq!(nexmark_csv.status.code(), Some(2));
    assert!(stderr(&nexmark_csv).contains("--format csv cannot hold this pipeline's records"));
}
