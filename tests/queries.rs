//! q0–q2 against straightforward batch computations over the same events: from the generator
//! and from Flink-format files, in order and with bounded disorder, at `-w 1` and `-w 2`.

mod common;

use common::*;
use sluice::ingest::IngestConfig;
use sluice::nexmark::generator::GeneratorConfig;

/// 6 s of event time at the default 10 K events/s: the 4 s watermark advances during the run.
const EVENTS: u64 = 60_000;

fn check(query: &str, lines: &[String], rows: &[serde_json::Value]) {
    match query {
        "q0" => assert_eq!(
            canonical(rows),
            canonical(&reference_q0(lines)),
            "q0 rows differ"
        ),
        "q1" => {
            let mut want = reference_q1(lines);
            want.sort();
            assert_eq!(q1_tuples(rows), want, "q1 rows differ");
        }
        "q2" => {
            let want = reference_q2(lines);
            assert!(!want.is_empty(), "q2 reference should select some bids");
            assert_eq!(canonical(rows), canonical(&want), "q2 rows differ");
        }
        other => panic!("no reference for {other}"),
    }
}

#[test]
fn generator_runs_match_the_batch_reference() {
    let dir = tempfile::tempdir().unwrap();
    let config = GeneratorConfig {
        seed: 42,
        ..GeneratorConfig::default()
    };
    let lines = generated_lines(EVENTS, &config);
    for workers in [1, 2] {
        for query in ["q0", "q1", "q2"] {
            let (rows, report) = run_query(
                query,
                generator_source(EVENTS, config.clone()),
                workers,
                IngestConfig::default(),
                dir.path(),
            );
            check(query, &lines, &rows);
            assert_eq!(report.events, EVENTS, "{query} -w {workers}");
            assert_eq!(report.rows, rows.len() as u64);
            assert_eq!(report.late, 0);
            assert_eq!(report.dead_letters.total(), 0);
            assert_eq!(report.workers, workers);
            // Every event's completion was observed by the latency ledger.
            assert_eq!(report.processing_latency.as_ref().unwrap().samples, EVENTS);
        }
    }
}

#[test]
fn file_runs_in_order_and_disordered_match_the_batch_reference() {
    let dir = tempfile::tempdir().unwrap();
    let lines = generated_lines(EVENTS, &GeneratorConfig::default());
    let in_order = write_lines(dir.path(), "in_order.jsonl", &lines);
    // Every event arrives less than 2 s of event time out of order: within the 4 s delay.
    let shuffled = disorder(&lines, 2000, 7);
    assert_ne!(shuffled, lines);
    let disordered = write_lines(dir.path(), "disordered.jsonl", &shuffled);
    for path in [&in_order, &disordered] {
        for workers in [1, 2] {
            for query in ["q0", "q1", "q2"] {
                let (rows, report) = run_query(
                    query,
                    file_source(path),
                    workers,
                    IngestConfig::default(),
                    dir.path(),
                );
                check(query, &lines, &rows);
                assert_eq!(report.events, EVENTS);
                assert_eq!(
                    report.late,
                    0,
                    "{} -w {workers}: disorder below the delay is not late",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn file_and_generator_give_identical_rows() {
    let dir = tempfile::tempdir().unwrap();
    let config = GeneratorConfig::default();
    let path = write_lines(
        dir.path(),
        "events.jsonl",
        &generated_lines(20_000, &config),
    );
    for query in ["q0", "q1", "q2"] {
        let (from_file, _) = run_query(
            query,
            file_source(&path),
            2,
            IngestConfig::default(),
            dir.path(),
        );
        let (from_gen, _) = run_query(
            query,
            generator_source(20_000, config.clone()),
            2,
            IngestConfig::default(),
            dir.path(),
        );
        assert_eq!(canonical(&from_file), canonical(&from_gen), "{query}");
    }
}

#[test]
fn late_events_are_counted_exactly_and_still_processed() {
    let dir = tempfile::tempdir().unwrap();
    let bid = |t: u64| {
        let time = sluice::time::format_timestamp(t);
        format!(
            r#"{{"event_type":2,"person":null,"auction":null,"bid":{{"auction":1,"bidder":2,"price":{t},"channel":"c","url":"u","dateTime":"{time}","extra":""}}}}"#
        )
    };
    // In order up to 10 s (watermark 6 s), then three events behind the watermark and one
    // exactly at it (not late).
    let mut lines: Vec<String> = (0..=10).map(|s| bid(1_000_000 + s * 1000)).collect();
    lines.extend([1_001_000, 1_002_000, 1_005_999, 1_006_000].map(bid));
    let path = write_lines(dir.path(), "late.jsonl", &lines);
    let ingest = IngestConfig {
        batch: 1,
        ..IngestConfig::default()
    };
    let (rows, report) = run_query("q0", file_source(&path), 1, ingest, dir.path());
    assert_eq!(report.late, 3);
    assert_eq!(report.events, 15);
    assert_eq!(rows.len(), 15, "stateless queries process late events too");
    assert_eq!(canonical(&rows), canonical(&reference_q0(&lines)));
}
