//! The `sluice` binary end to end: bad input with exact dead-letter counts, clear errors with
//! documented exit codes, and meshes of two processes over loopback TCP.

mod common;

use common::*;
use serde_json::Value;
use sluice::nexmark::generator::GeneratorConfig;
use std::process::{Command, Output};

#[test]
fn list_shows_the_registry() {
    let out = sluice(&["list"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for q in ["q0", "q1", "q2"] {
        assert!(text.lines().any(|l| l.starts_with(q)), "{text}");
    }
}

#[test]
fn bad_records_are_counted_and_dead_lettered_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let good = generated_lines(50, &GeneratorConfig::default());
    let mut lines = good.clone();
    // 1-based line numbers of the bad records after insertion, with their reasons.
    let bad: [(&str, &str); 6] = [
        ("{\"event_type\":2,\"bid\":", "malformed_json"),
        (
            "{\"event_type\":5,\"person\":null,\"auction\":null,\"bid\":null}",
            "invalid_event",
        ),
        (
            "{\"event_type\":2,\"bid\":{\"auction\":\"x\"}}",
            "invalid_event",
        ),
        ("[1,2,3]", "invalid_event"),
        ("not json at all", "malformed_json"),
        (
            &good[10].replace("2026-01-01 00:00:00.00", "2026-13-01 00:00:00.00"),
            "invalid_event",
        ),
    ];
    for (i, (text, _)) in bad.iter().enumerate() {
        lines.insert(5 + i * 7, text.to_string());
    }
    let path = write_lines(dir.path(), "mixed.jsonl", &lines);
    // An invalid UTF-8 line and an oversized line, appended as raw bytes.
    let mut raw = std::fs::read(&path).unwrap();
    raw.extend_from_slice(b"{\"event_type\":2,\"x\":\"\xff\xfe\"}\n");
    raw.extend_from_slice(format!("{{\"pad\":\"{}\"}}\n", "y".repeat(5000)).as_bytes());
    std::fs::write(&path, raw).unwrap();

    let dead = dir.path().join("dead.jsonl");
    let report = dir.path().join("report.json");
    let out = sluice(&[
        "run",
        "q0",
        "--source",
        &format!("file:{}", path.display()),
        "--sink",
        "null",
        "--max-record-bytes",
        "4096",
        "--dead-letter",
        dead.to_str().unwrap(),
        "--report-file",
        report.to_str().unwrap(),
        "-w",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["events"], 50);
    let counts = &report["dead_letters"];
    assert_eq!(counts["malformed_json"], 2);
    assert_eq!(counts["invalid_event"], 4);
    assert_eq!(counts["invalid_utf8"], 1);
    assert_eq!(counts["too_large"], 1);

    let letters = read_rows(&dead);
    assert_eq!(letters.len(), 8);
    let mut got: Vec<(u64, String)> = letters
        .iter()
        .map(|d| {
            (
                d["origin"]["line"].as_u64().unwrap(),
                d["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(u64, String)> = bad
        .iter()
        .enumerate()
        .map(|(i, (_, reason))| ((6 + i * 7) as u64, reason.to_string()))
        .collect();
    want.push((57, "invalid_utf8".into()));
    want.push((58, "too_large".into()));
    assert_eq!(got, want);
    for d in &letters {
        assert_eq!(d["origin"]["file"], path.display().to_string());
        assert!(!d["detail"].as_str().unwrap().is_empty());
    }
    let too_large = letters.iter().find(|d| d["reason"] == "too_large").unwrap();
    assert_eq!(too_large["raw_truncated"], true);
}

#[test]
fn errors_are_one_clear_line_with_documented_exit_codes() {
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["run", "q99"], 2, "unknown pipeline \"q99\""),
        (vec!["run", "q1", "--workers", "two"], 2, "invalid value"),
        (vec!["run", "q1", "--sink", "kafka"], 2, "unknown sink"),
        (vec!["run", "q1", "--source", "socket"], 2, "unknown source"),
        (vec!["run", "q1", "-n", "2", "-p", "5"], 2, "out of range"),
        (
            vec!["run", "q1", "--source", "file:/no/such/file.jsonl"],
            3,
            "cannot read /no/such/file.jsonl",
        ),
        (
            vec!["run", "q1", "--sink", "file:/no/such/dir/out.jsonl"],
            3,
            "cannot create",
        ),
        (
            vec!["run", "q1", "--watermark-delay", "4 parsecs"],
            2,
            "invalid duration",
        ),
    ];
    expect_failures(&cases);
}

#[test]
fn port_in_use_is_reported() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let out = sluice(&[
        "run", "q1", "-n", "2", "-p", "0", "--port", &port, "--events", "10",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("port in use"), "{}", stderr(&out));
}

#[test]
fn unreachable_peer_fails_within_the_timeout() {
    let port = free_port_pair();
    let start = std::time::Instant::now();
    let out = sluice(&[
        "run",
        "q1",
        "-n",
        "2",
        "-p",
        "1",
        "--port",
        &port.to_string(),
        "--connect-timeout",
        "1s",
        "--events",
        "10",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("did not connect within 1 s"),
        "{}",
        stderr(&out)
    );
    assert!(start.elapsed().as_secs() < 10);
}

/// Sorted stdout lines of a run.
fn rows_of(out: &Output) -> Vec<String> {
    assert!(out.status.success(), "{}", stderr(out));
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

#[test]
fn two_processes_over_loopback_equal_two_threads() {
    for query in ["q0", "q1", "q2"] {
        let threads = rows_of(&sluice(&["run", query, "--events", "30000", "-w", "2"]));
        assert!(!threads.is_empty());
        // The local launcher: -n 2 without -p starts both processes.
        let port = free_port_pair().to_string();
        let launched = sluice(&[
            "run", query, "--events", "30000", "-n", "2", "--port", &port,
        ]);
        assert_eq!(rows_of(&launched), threads, "{query}: local launcher");
        assert!(
            stderr(&launched).contains("on 2 worker(s) in 2 process(es)"),
            "{}",
            stderr(&launched)
        );
    }
}

#[test]
fn processes_started_by_hand_share_the_work() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port_pair();
    let hosts = dir.path().join("hosts.txt");
    std::fs::write(
        &hosts,
        format!("127.0.0.1:{port}\n127.0.0.1:{}\n", port + 1),
    )
    .unwrap();
    let out = dir.path().join("rows-{process}.jsonl");
    let spawn = |p: &str| {
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args([
                "run", "q2", "--events", "40000", "-w", "2", "-n", "2", "-p", p,
            ])
            .args(["--hostfile", hosts.to_str().unwrap(), "--sink"])
            .arg(format!("file:{}", out.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Start process 1 first: it waits for process 0.
    let p1 = spawn("1");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let p0 = spawn("0");
    let (o0, o1) = (
        p0.wait_with_output().unwrap(),
        p1.wait_with_output().unwrap(),
    );
    assert!(
        o0.status.success() && o1.status.success(),
        "{} {}",
        stderr(&o0),
        stderr(&o1)
    );
    assert!(
        stderr(&o0).contains("40000 events"),
        "process 0 prints the merged report: {}",
        stderr(&o0)
    );
    let mut rows = read_rows(&dir.path().join("rows-0.jsonl"));
    let second = read_rows(&dir.path().join("rows-1.jsonl"));
    assert!(
        !rows.is_empty() && !second.is_empty(),
        "both processes did work"
    );
    rows.extend(second);
    let lines = generated_lines(40_000, &GeneratorConfig::default());
    assert_eq!(canonical(&rows), canonical(&reference_q2(&lines)));
}

#[test]
fn gen_writes_what_the_generator_source_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let out = sluice(&[
        "gen",
        "--events",
        "5000",
        "--seed",
        "3",
        "-o",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let written = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<String> = written.lines().map(String::from).collect();
    assert_eq!(
        lines,
        generated_lines(
            5000,
            &GeneratorConfig {
                seed: 3,
                ..GeneratorConfig::default()
            }
        )
    );
    let from_file = rows_of(&sluice(&[
        "run",
        "q1",
        "--source",
        &format!("file:{}", path.display()),
    ]));
    let from_gen = rows_of(&sluice(&["run", "q1", "--events", "5000", "--seed", "3"]));
    assert_eq!(from_file, from_gen);
}

#[test]
fn json_report_has_latency_and_per_worker_rates() {
    let out = sluice(&[
        "run", "q1", "--events", "50000", "--sink", "null", "-w", "2", "--report", "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["events"], 50000);
    assert_eq!(report["rows"], 46000);
    assert_eq!(report["per_worker"].as_array().unwrap().len(), 2);
    for key in ["p50_us", "p90_us", "p99_us", "p999_us", "max_us"] {
        assert!(
            report["processing_latency"][key].as_f64().unwrap() > 0.0,
            "{key}"
        );
    }
    assert!(report["events_per_second_per_worker"].as_f64().unwrap() > 0.0);
}

/// Flow control: with a watermark step that fits in the bound, a worker's source never has more
/// records in flight than `--max-in-flight` (the report's exact count); with one that does not
/// (4 s of delay), the source reads on rather than stall. The rows are the batch reference's
/// either way.
#[test]
fn flow_control_keeps_in_flight_records_under_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let lines = generated_lines(300_000, &GeneratorConfig::default());
    let expected = canonical(&reference_q5(&lines));
    for (bound, delay, within) in [("2000", "0s", true), ("1000", "4s", false)] {
        let out = dir.path().join(format!("q5-{bound}.jsonl"));
        let sink = format!("file:{}", out.display());
        let run = sluice(&[
            "run",
            "q5",
            "--events",
            "300000",
            "-w",
            "2",
            "--batch",
            "512",
            "--max-in-flight",
            bound,
            "--watermark-delay",
            delay,
            "--stamp-granularity",
            "1ms",
            "--sink",
            &sink,
            "--report",
            "json",
        ]);
        assert!(run.status.success(), "{}", stderr(&run));
        let report: Value = serde_json::from_slice(&run.stdout).unwrap();
        let most = report["max_in_flight"].as_u64().unwrap();
        assert!(most > 0, "{report}");
        if within {
            assert!(
                most <= 2000,
                "{most} records in flight over a bound of 2000"
            );
        }
        assert!(
            canonical(&read_rows(&out)) == expected,
            "bound {bound}, delay {delay}: rows differ"
        );
    }
}

#[test]
fn the_json_report_has_a_timeline_and_a_warm_up() {
    // 8 s of event time at 50 K events/s, paced: the watermark releases events from 4 s on.
    let out = sluice(&[
        "run",
        "q1",
        "--events",
        "400000",
        "--rate",
        "50000",
        "--paced",
        "--sink",
        "null",
        "--report",
        "json",
        "--warmup",
        "5s",
        "--interval",
        "500ms",
        "--progress",
        "off",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let timeline = report["timeline"].as_array().unwrap();
    assert!(timeline.len() >= 14, "{} intervals", timeline.len());
    assert_eq!(timeline[1]["t_s"], 1.0);
    let settled: u64 = timeline.iter().map(|p| p["events"].as_u64().unwrap()).sum();
    let warm = report["warmup_events"].as_u64().unwrap();
    let sampled = report["processing_latency"]["samples"].as_u64().unwrap();
    // Every event released by the watermark is in the timeline; those settled in the first 5 s
    // are left out of the percentiles.
    assert!(warm > 0, "{report}");
    assert_eq!(settled, warm + sampled);
    assert!(timeline.iter().any(|p| p["rss_mib"].as_f64().is_some()));
    assert_eq!(report["gave_up"], false);
}

#[test]
fn an_unsustainable_rate_stops_early_and_says_so() {
    let start = std::time::Instant::now();
    let out = sluice(&[
        "run",
        "q0",
        "--events",
        "1000000000",
        "--rate",
        "1000000000",
        "--paced",
        "--sink",
        "null",
        "--give-up-behind",
        "1s",
        "--progress",
        "off",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("STOPPED EARLY"), "{}", stderr(&out));
    assert!(start.elapsed().as_secs() < 30);
}

#[test]
fn stop_after_bounds_an_unbounded_run() {
    let start = std::time::Instant::now();
    let out = sluice(&[
        "run",
        "q1",
        "--unbounded",
        "--rate",
        "100000",
        "--paced",
        "--stop-after",
        "1s",
        "--sink",
        "null",
        "--progress",
        "off",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(start.elapsed().as_secs() < 20);
    assert!(stderr(&out).contains("not sampled"), "{}", stderr(&out));
}
