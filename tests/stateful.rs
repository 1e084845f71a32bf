//! Windowed and enrichment queries (q5, q7, q8, q13, q14, q21, q22) against straightforward
//! batch computations over the same events: generator and file input, in order and with bounded
//! disorder below the watermark delay, at `-w 1` and `-w 2`, and across 2 processes.

mod common;

use common::*;
use serde_json::Value;
use sluice::ingest::IngestConfig;
use sluice::nexmark::generator::GeneratorConfig;

/// 25 s of event time at the default rate: several windows of every kind close during the run.
const EVENTS: u64 = 250_000;

fn check(query: &str, lines: &[String], rows: &[Value]) {
    let want = match query {
        "q5" => reference_q5(lines),
        "q7" => reference_q7(lines),
        "q8" => reference_q8(lines),
        "q11" => reference_q11(lines),
        "q13" => reference_q13(lines),
        "q21" => reference_q21(lines),
        "q22" => reference_q22(lines),
        "q15" | "q16" | "q17" => reference_daily(query, lines),
        "q14" => {
            assert_eq!(q14_tuples(rows), reference_q14(lines), "q14 rows differ");
            return;
        }
        other => panic!("no reference for {other}"),
    };
    assert!(
        !want.is_empty(),
        "{query}: the reference should produce rows"
    );
    let (got, want) = (canonical(rows), canonical(&want));
    if got != want {
        let missing: Vec<_> = want.iter().filter(|w| !got.contains(w)).take(3).collect();
        let extra: Vec<_> = got.iter().filter(|g| !want.contains(g)).take(3).collect();
        panic!(
            "{query}: {} rows, reference {}; missing e.g. {missing:?}; unexpected e.g. {extra:?}",
            got.len(),
            want.len()
        );
    }
}

const QUERIES: [&str; 11] = [
    "q5", "q7", "q8", "q11", "q13", "q14", "q15", "q16", "q17", "q21", "q22",
];

#[test]
fn generator_runs_match_the_batch_reference() {
    let dir = tempfile::tempdir().unwrap();
    let config = GeneratorConfig::default();
    let lines = generated_lines(EVENTS, &config);
    for workers in [1, 2] {
        for query in QUERIES {
            let (rows, report) = run_query(
                query,
                generator_source(EVENTS, config.clone()),
                workers,
                IngestConfig::default(),
                dir.path(),
            );
            check(query, &lines, &rows);
            assert_eq!(report.events, EVENTS);
            assert_eq!(report.dead_letters.total(), 0, "{query} -w {workers}");
        }
    }
}

#[test]
fn disordered_files_match_the_batch_reference() {
    let dir = tempfile::tempdir().unwrap();
    let lines = generated_lines(
        EVENTS,
        &GeneratorConfig {
            seed: 9,
            ..GeneratorConfig::default()
        },
    );
    let path = write_lines(dir.path(), "disordered.jsonl", &disorder(&lines, 3000, 11));
    for workers in [1, 2] {
        for query in ["q5", "q7", "q8"] {
            let (rows, report) = run_query(
                query,
                file_source(&path),
                workers,
                IngestConfig::default(),
                dir.path(),
            );
            check(query, &lines, &rows);
            assert_eq!(report.late, 0);
            assert_eq!(report.dead_letters.total(), 0);
        }
    }
}

/// A Flink-format JSON line of a bid of `auction` at `t` (epoch ms), price 100.
fn bid_line(auction: u64, t: u64) -> String {
    let time = sluice::time::format_timestamp(t);
    format!(
        r#"{{"event_type":2,"person":null,"auction":null,"bid":{{"auction":{auction},"bidder":2,"price":100,"channel":"c","url":"u","dateTime":"{time}","extra":""}}}}"#
    )
}

/// Ingest reading one record per step, so the watermark moves between records exactly.
fn one_at_a_time() -> IngestConfig {
    IngestConfig {
        batch: 1,
        ..IngestConfig::default()
    }
}

#[test]
fn late_events_for_closed_windows_are_dead_lettered_exactly() {
    let bid = bid_line;
    let dir = tempfile::tempdir().unwrap();
    // Bids every second up to 30 s (watermark 26 s), then two bids for the closed window
    // [0, 10 s) — dead letters — and one for the open window [20 s, 30 s) — counted.
    let base = 1_000_000_000;
    let mut lines: Vec<String> = (0..=30).map(|s| bid(1, base + s * 1000)).collect();
    lines.extend([
        bid(2, base + 1000),
        bid(2, base + 9999),
        bid(3, base + 25_000),
    ]);
    let path = write_lines(dir.path(), "late.jsonl", &lines);
    let ingest = one_at_a_time();
    let (rows, report) = run_query("q7", file_source(&path), 1, ingest, dir.path());
    assert_eq!(report.late, 3, "three events arrived behind the watermark");
    assert_eq!(
        report.dead_letters.late, 2,
        "two of them for a window that had closed"
    );
    // The late bid at 25 s joined its window's maximum (all prices are equal).
    assert!(rows.iter().any(|r| r["auction"] == 3), "{rows:?}");
    assert!(!rows.iter().any(|r| r["auction"] == 2));
}

/// q5's sliding windows: a late bid all of whose windows have closed is a dead letter; one
/// some of whose windows are still open counts in those only (closed windows are final).
#[test]
fn q5_counts_a_late_bid_only_in_its_open_windows() {
    let dir = tempfile::tempdir().unwrap();
    let bid = bid_line;
    // Auction 1: a bid every second up to 30 s (watermark 26 s). Then, late: auction 2 at
    // 17 s (its windows end at 18–26 s, all closed: a dead letter) and fifteen bids of
    // auction 3 at 23 s (windows ending 24 and 26 s closed; 28, 30 and 32 s open).
    let base = 1_000_000_000;
    let mut lines: Vec<String> = (0..=30).map(|s| bid(1, base + s * 1000)).collect();
    lines.push(bid(2, base + 17_000));
    lines.extend((0..15).map(|_| bid(3, base + 23_000)));
    let path = write_lines(dir.path(), "late.jsonl", &lines);
    let ingest = one_at_a_time();
    for workers in [1, 2] {
        let (rows, report) = run_query("q5", file_source(&path), workers, ingest, dir.path());
        assert_eq!(report.late, 16, "sixteen bids arrived behind the watermark");
        assert_eq!(
            report.dead_letters.late, 1,
            "one of them for closed windows only"
        );
        let ends = |auction: u64| -> Vec<u64> {
            let mut e: Vec<u64> = rows
                .iter()
                .filter(|r| r["auction"] == auction)
                .map(|r| r["window_end"].as_u64().unwrap() - base)
                .collect();
            e.sort();
            e
        };
        assert_eq!(
            ends(3),
            vec![28_000, 30_000, 32_000],
            "-w {workers}: {rows:?}"
        );
        assert!(ends(2).is_empty());
        // Auction 1 holds the closed windows up to 26 s, and the last ones after auction 3's.
        assert!(ends(1).contains(&26_000) && !ends(1).contains(&28_000));
        assert!(rows
            .iter()
            .filter(|r| r["auction"] == 3)
            .all(|r| r["num"] == 15));
    }
}

/// q9 closes auctions in event time: a late bid of an auction that has closed, and an auction
/// that arrived behind the watermark, are dead letters (exact counts), and so is a repeated
/// auction id (in q20's join too); the winners are final.
#[test]
fn closed_auctions_refuse_late_records_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let base = 1_000_000_000;
    let time = |t: u64| sluice::time::format_timestamp(base + t);
    let bid = |auction: u64, price: u64, t: u64| {
        format!(
            r#"{{"event_type":2,"person":null,"auction":null,"bid":{{"auction":{auction},"bidder":2,"price":{price},"channel":"c","url":"u","dateTime":"{}","extra":""}}}}"#,
            time(t)
        )
    };
    let auction = |id: u64, opened: u64, expires: u64| {
        format!(
            r#"{{"event_type":1,"person":null,"auction":{{"id":{id},"itemName":"i","description":"d","initialBid":1,"reserve":1,"dateTime":"{}","expires":"{}","seller":3,"category":10,"extra":""}},"bid":null}}"#,
            time(opened),
            time(expires)
        )
    };
    let mut lines = vec![auction(1, 0, 5000), bid(1, 10, 1000), bid(1, 30, 3000)];
    // Bids of an auction that never comes move the watermark to 26 s; they match nothing.
    lines.extend((6..=30).map(|s| bid(99, 1, s * 1000)));
    lines.extend([
        bid(1, 1000, 4000),         // late, and auction 1 has closed: a dead letter
        auction(2, 10_000, 60_000), // late auction: a dead letter
        bid(2, 50, 29_000),         // on time, but its auction was refused: no row
        auction(3, 27_000, 40_000), // on time
        bid(3, 5, 28_000),          // its winner, reported when the input ends
        auction(3, 28_500, 50_000), // a second auction 3: a dead letter (invalid_event)
    ]);
    let path = write_lines(dir.path(), "late-auctions.jsonl", &lines);
    let ingest = one_at_a_time();
    for workers in [1, 2] {
        let (rows, report) = run_query("q9", file_source(&path), workers, ingest, dir.path());
        assert_eq!(
            report.late, 2,
            "a bid and an auction arrived behind the watermark"
        );
        assert_eq!(report.dead_letters.late, 2, "both are dead letters");
        assert_eq!(
            report.dead_letters.invalid_event, 1,
            "the repeated auction id"
        );
        let mut won: Vec<(u64, u64, i64)> = rows
            .iter()
            .map(|r| {
                (
                    r["id"].as_u64().unwrap(),
                    r["price"].as_u64().unwrap(),
                    r["diff"].as_i64().unwrap(),
                )
            })
            .collect();
        won.sort();
        assert_eq!(won, vec![(1, 30, 1), (3, 5, 1)], "-w {workers}");
    }
    // q20's join refuses the repeated id too (it has no notion of lateness).
    let (_, report) = run_query("q20", file_source(&path), 2, ingest, dir.path());
    assert_eq!(
        report.dead_letters.invalid_event, 1,
        "q20: the repeated auction id"
    );
    assert_eq!(report.dead_letters.late, 0, "q20 joins late records");
}

#[test]
fn two_processes_equal_one() {
    let dir = tempfile::tempdir().unwrap();
    let lines = generated_lines(150_000, &GeneratorConfig::default());
    for query in ["q5", "q7", "q11", "q4", "q19"] {
        let out = dir.path().join(format!("{query}-{{process}}.jsonl"));
        let port = free_port_pair().to_string();
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args([
                "run", query, "--events", "150000", "-n", "2", "--port", &port, "--sink",
            ])
            .arg(format!("file:{}", out.display()))
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
        let mut rows = read_rows(&dir.path().join(format!("{query}-0.jsonl")));
        rows.extend(read_rows(&dir.path().join(format!("{query}-1.jsonl"))));
        match query {
            "q4" => assert_eq!(consolidate(&rows), canonical(&reference_q4(&lines))),
            "q19" => assert_eq!(consolidate(&rows), canonical(&reference_q19(&lines))),
            _ => check(query, &lines, &rows),
        }
    }
}

#[test]
fn updating_queries_converge_to_the_batch_reference() {
    let dir = tempfile::tempdir().unwrap();
    let config = GeneratorConfig::default();
    let events = 120_000;
    let lines = generated_lines(events, &config);
    let path = write_lines(dir.path(), "disordered.jsonl", &disorder(&lines, 3000, 5));
    for (query, want) in [
        ("q3", reference_q3(&lines)),
        ("q4", reference_q4(&lines)),
        ("q6", reference_q6(&lines)),
        ("q9", reference_q9(&lines)),
        ("q18", reference_q18(&lines)),
        ("q19", reference_q19(&lines)),
        ("q20", reference_q20(&lines)),
    ] {
        assert!(!want.is_empty());
        for workers in [1, 2] {
            for source in [generator_source(events, config.clone()), file_source(&path)] {
                let (rows, _) =
                    run_query(query, source, workers, IngestConfig::default(), dir.path());
                assert_eq!(consolidate(&rows), canonical(&want), "{query} -w {workers}");
            }
        }
    }
}

#[test]
fn a_state_ttl_retires_idle_sellers_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let config = GeneratorConfig::default();
    let events = 120_000;
    let lines = generated_lines(events, &config);
    let path = write_lines(dir.path(), "disordered.jsonl", &disorder(&lines, 3000, 5));
    let ttl = 2_000;
    let want = reference_q6_retiring(&lines, ttl, 100);
    let kept = reference_q6(&lines);
    assert!(
        !want.is_empty() && want.len() < kept.len(),
        "some sellers retire, some stay: {} of {}",
        want.len(),
        kept.len()
    );
    for workers in [1, 2] {
        for source in [generator_source(events, config.clone()), file_source(&path)] {
            let (rows, _) = run_query_with("q6", source, workers, dir.path(), |o| {
                o.state_ttl = Some(ttl)
            });
            assert!(
                rows.iter().any(|r| r["diff"] == -1),
                "retirements are retractions"
            );
            assert_eq!(consolidate(&rows), canonical(&want), "q6 -w {workers}");
        }
    }
}

#[test]
fn processing_time_windows_split_every_bidders_bids_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = GeneratorConfig::default();
    let lines = generated_lines(60_000, &config);
    let mut want: std::collections::BTreeMap<u64, u64> = Default::default();
    for b in bids(&lines) {
        *want.entry(b["bidder"].as_u64().unwrap()).or_default() += 1;
    }
    for workers in [1, 2] {
        let (rows, _) = run_query(
            "q12",
            generator_source(60_000, config.clone()),
            workers,
            IngestConfig::default(),
            dir.path(),
        );
        let mut got: std::collections::BTreeMap<u64, u64> = Default::default();
        for r in &rows {
            *got.entry(r["bidder"].as_u64().unwrap()).or_default() +=
                r["bid_count"].as_u64().unwrap();
            let start = sluice::time::parse_timestamp(r["starttime"].as_str().unwrap()).unwrap();
            let end = sluice::time::parse_timestamp(r["endtime"].as_str().unwrap()).unwrap();
            assert_eq!(
                (start % 10_000, end - start),
                (0, 10_000),
                "aligned 10 s windows"
            );
        }
        assert_eq!(got, want, "-w {workers}");
    }
}

#[test]
fn q10_commits_every_minute_partition_with_all_its_bids() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("partitions");
    // 130 s of event time: three minute partitions.
    let events = 1_300_000;
    let config = GeneratorConfig {
        rate: 10_000,
        ..GeneratorConfig::default()
    };
    for workers in [1, 2] {
        let _ = std::fs::remove_dir_all(&out);
        let mut run = sluice::driver::RunConfig::new(
            sluice::queries::nexmark::find("q10").unwrap(),
            generator_source(events, config.clone()),
            sluice::connectors::sink::SinkSpec::Null,
        );
        run.options.output_dir = out.clone();
        let report = sluice::driver::run(run, &sluice::launch::Mesh::local(workers))
            .unwrap()
            .report
            .unwrap();
        let mut rows = 0;
        let mut partitions = Vec::new();
        for day in std::fs::read_dir(&out).unwrap() {
            for minute in std::fs::read_dir(day.unwrap().path()).unwrap() {
                let minute = minute.unwrap().path();
                assert!(
                    minute.join("_SUCCESS").exists(),
                    "{} committed",
                    minute.display()
                );
                let name = minute.file_name().unwrap().to_string_lossy().into_owned();
                partitions.push(name.clone());
                for file in std::fs::read_dir(&minute).unwrap() {
                    let path = file.unwrap().path();
                    let fname = path.file_name().unwrap().to_string_lossy().into_owned();
                    assert!(
                        !fname.ends_with(".inprogress"),
                        "no uncommitted file: {fname}"
                    );
                    if fname.starts_with("part-") {
                        for row in read_rows(&path) {
                            assert_eq!(format!("hm={}", row["hm"].as_str().unwrap()), name);
                            rows += 1;
                        }
                    }
                }
            }
        }
        partitions.sort();
        assert_eq!(
            partitions,
            vec!["hm=00:00", "hm=00:01", "hm=00:02"],
            "-w {workers}"
        );
        assert_eq!(
            rows, report.rows,
            "every bid is in exactly one committed file"
        );
        assert_eq!(rows, events * 46 / 50);
    }
}
