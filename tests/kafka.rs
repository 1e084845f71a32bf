//! Kafka end to end, against the real broker `scripts/test.sh` starts on loopback (its address
//! in `SLUICE_KAFKA`): multi-partition topics give the same rows as the file source (also out of
//! order, at -w 1 and -w 2, and across two processes without duplicates), Kafka sinks hold the
//! rows, bad records are dead letters with topic/partition/offset, committed offsets resume a
//! run (also after a graceful stop, whose metrics endpoint showed each partition's offset), idle
//! partitions do not stall windows, and missing brokers or topics fail fast.
#![cfg(feature = "kafka")]

mod common;

use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::Value;
use sluice::nexmark::generator::GeneratorConfig;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The broker's address; the Kafka tests need one and say so rather than skip.
fn broker() -> String {
    std::env::var("SLUICE_KAFKA").expect(
        "SLUICE_KAFKA is not set: run the tests with scripts/test.sh, which starts a Kafka broker on 127.0.0.1",
    )
}

/// A topic name no other test (or earlier run against the same broker) uses.
fn topic(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

fn url(topic: &str) -> String {
    format!("kafka://{}/{topic}", broker())
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "sluice failed: {}", stderr(&out));
    out
}

/// Creates `topic` with `partitions` partitions and writes `records[i]` (value, partition).
fn produce(topic: &str, partitions: i32, records: &[(Option<&[u8]>, i32)]) {
    // Creating through the load tool's code path keeps one way of making topics.
    let url = sluice::connectors::kafka::KafkaUrl::parse(&url(topic)).unwrap();
    sluice::connectors::kafka::client::ensure_topic(
        &url,
        &Default::default(),
        partitions,
        Duration::from_secs(10),
    )
    .unwrap();
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", broker())
        .set("linger.ms", "5")
        .create()
        .unwrap();
    for (value, partition) in records {
        let mut record = BaseRecord::<(), [u8]>::to(topic).partition(*partition);
        if let Some(v) = value {
            record = record.payload(*v);
        }
        let mut record = record;
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Writes event lines to a new topic, line i to partition i mod `partitions`.
fn produce_lines(topic: &str, partitions: i32, lines: &[String]) {
    let records: Vec<(Option<&[u8]>, i32)> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (Some(l.as_bytes()), i as i32 % partitions))
        .collect();
    produce(topic, partitions, &records);
}

/// Runs q0 over `topic` to its end as consumer `group` from `start`; returns the report.
fn read_to_end(topic: &str, group: &str, start: &str) -> String {
    let out = ok(sluice(&[
        "run",
        "q0",
        "--source",
        &url(topic),
        "--until-end",
        "--sink",
        "null",
        "--kafka-group",
        group,
        "--kafka-start",
        start,
    ]));
    stderr(&out)
}

fn sorted_lines(path: &Path) -> Vec<String> {
    canonical(&read_rows(path))
}

fn run_to_file(query: &str, source: &str, workers: &str, out: &Path, extra: &[&str]) -> Output {
    let sink = format!("file:{}", out.display());
    let mut args = vec![
        "run", query, "--source", source, "--sink", &sink, "-w", workers,
    ];
    args.extend_from_slice(extra);
    ok(sluice(&args))
}

#[test]
fn partitioned_topics_give_the_file_sources_rows() {
    let dir = tempfile::tempdir().unwrap();
    // 30 s of event time: several q5 and q7 windows.
    let config = GeneratorConfig {
        rate: 2_000,
        ..GeneratorConfig::default()
    };
    let lines = generated_lines(60_000, &config);
    // Out of order within the allowed delay, then spread over 4 partitions.
    let shuffled = disorder(&lines, 2_000, 7);
    let file = write_lines(dir.path(), "events.jsonl", &shuffled);
    let t = topic("nexmark-disordered");
    produce_lines(&t, 4, &shuffled);

    for query in ["q0", "q5", "q7"] {
        let from_file = dir.path().join(format!("{query}-file.jsonl"));
        run_to_file(
            query,
            &format!("file:{}", file.display()),
            "2",
            &from_file,
            &[],
        );
        let expected = sorted_lines(&from_file);
        assert!(!expected.is_empty(), "{query}: no rows");
        for workers in ["1", "2"] {
            let from_kafka = dir.path().join(format!("{query}-kafka-{workers}.jsonl"));
            let out = run_to_file(query, &url(&t), workers, &from_kafka, &["--until-end"]);
            assert_eq!(
                sorted_lines(&from_kafka),
                expected,
                "{query} -w {workers}: Kafka and file rows differ"
            );
            let report = stderr(&out);
            assert!(report.contains("late events 0"), "{report}");
            assert!(report.contains("from Kafka record timestamp"), "{report}");
        }
    }
    // And the file source is right: q5 against the batch reference.
    let from_file = dir.path().join("q5-file.jsonl");
    assert_eq!(sorted_lines(&from_file), canonical(&reference_q5(&lines)));
}

#[test]
fn recommendation_pipelines_read_behaviours_from_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let (_, lines) = generated_behaviours(dir.path(), "behaviours.jsonl", 20_000);
    let time_of = |line: &str| -> u64 {
        serde_json::from_str::<serde_json::Value>(line).unwrap()["time"]
            .as_u64()
            .unwrap()
    };
    let shuffled = disorder_by(&lines, 2_000, 11, time_of);
    let file = write_lines(dir.path(), "shuffled.jsonl", &shuffled);
    let t = topic("recommend-behaviours");
    produce_lines(&t, 3, &shuffled);
    for query in ["recommend", "recommend_trending", "recommend_ratings"] {
        let from_file = dir.path().join(format!("{query}-file.jsonl"));
        run_to_file(
            query,
            &format!("file:{}", file.display()),
            "2",
            &from_file,
            &[],
        );
        let expected = sorted_lines(&from_file);
        assert!(!expected.is_empty(), "{query}: no rows");
        let from_kafka = dir.path().join(format!("{query}-kafka.jsonl"));
        let out = run_to_file(query, &url(&t), "2", &from_kafka, &["--until-end"]);
        assert_eq!(
            sorted_lines(&from_kafka),
            expected,
            "{query}: Kafka and file rows differ"
        );
        assert!(stderr(&out).contains("late events 0"), "{}", stderr(&out));
    }
}

#[test]
fn kafka_to_kafka_holds_the_same_rows_keyed_by_first_column() {
    let dir = tempfile::tempdir().unwrap();
    let source = topic("nexmark-k2k");
    let sink = topic("q5-out");
    ok(sluice(&[
        "gen",
        "--events",
        "50000",
        "--to",
        &url(&source),
        "--partitions",
        "3",
    ]));
    let file = dir.path().join("events.jsonl");
    ok(sluice(&[
        "gen",
        "--events",
        "50000",
        "-o",
        file.to_str().unwrap(),
    ]));
    let expected_path = dir.path().join("q5.jsonl");
    run_to_file(
        "q5",
        &format!("file:{}", file.display()),
        "2",
        &expected_path,
        &[],
    );

    let out = ok(sluice(&[
        "run",
        "q5",
        "--source",
        &url(&source),
        "--until-end",
        "--sink",
        &url(&sink),
        "-w",
        "2",
    ]));
    assert!(stderr(&out).contains("50000 events"), "{}", stderr(&out));
    let cat = ok(sluice(&["cat", &url(&sink)]));
    let got: Vec<Value> = String::from_utf8(cat.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(canonical(&got), sorted_lines(&expected_path));
    assert!(!got.is_empty());
}

#[test]
fn bad_records_are_dead_letters_with_their_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let good = generated_lines(20, &GeneratorConfig::default());
    let t = topic("nexmark-bad");
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(3000));
    let bad: Vec<(&[u8], &str)> = vec![
        (b"{\"event_type\":2,\"bid\":", "malformed_json"),
        (b"{\"event_type\":7,\"bid\":null}", "invalid_event"),
        (b"{\"event_type\":\xff}", "invalid_utf8"),
        (big.as_bytes(), "too_large"),
    ];
    // Partition 0: the good events; partition 1: a good event, then the bad ones, a record
    // without a value, and another good event.
    let mut records: Vec<(Option<&[u8]>, i32)> =
        good[..18].iter().map(|l| (Some(l.as_bytes()), 0)).collect();
    records.push((Some(good[18].as_bytes()), 1));
    records.extend(bad.iter().map(|(v, _)| (Some(*v), 1)));
    records.push((None, 1));
    records.push((Some(good[19].as_bytes()), 1));
    produce(&t, 2, &records);

    let dead = dir.path().join("dead.jsonl");
    let rows = dir.path().join("rows.jsonl");
    let out = run_to_file(
        "q0",
        &url(&t),
        "2",
        &rows,
        &[
            "--until-end",
            "--max-record-bytes",
            "2048",
            "--dead-letter",
            dead.to_str().unwrap(),
        ],
    );
    let report = stderr(&out);
    assert!(report.contains("dead letters 5"), "{report}");
    let letters = read_rows(&dead);
    let mut got: Vec<(i64, i64, String)> = letters
        .iter()
        .map(|d| {
            assert_eq!(d["origin"]["topic"], t.as_str());
            (
                d["origin"]["partition"].as_i64().unwrap(),
                d["origin"]["offset"].as_i64().unwrap(),
                d["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let mut expected: Vec<(i64, i64, String)> = bad
        .iter()
        .enumerate()
        .map(|(i, (_, reason))| (1, i as i64 + 1, reason.to_string()))
        .collect();
    expected.push((1, 5, "invalid_event".into()));
    assert_eq!(got, expected);
    // Every good bid made it through.
    let bids = reference_q0(&good);
    assert_eq!(read_rows(&rows).len(), bids.len());
}

#[test]
fn two_processes_share_the_partitions_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let t = topic("nexmark-2p");
    ok(sluice(&[
        "gen",
        "--events",
        "40000",
        "--to",
        &url(&t),
        "--partitions",
        "5",
    ]));
    let file = dir.path().join("events.jsonl");
    ok(sluice(&[
        "gen",
        "--events",
        "40000",
        "-o",
        file.to_str().unwrap(),
    ]));
    for query in ["q0", "q5"] {
        let expected_path = dir.path().join(format!("{query}-file.jsonl"));
        run_to_file(
            query,
            &format!("file:{}", file.display()),
            "1",
            &expected_path,
            &[],
        );
        let port = free_port_pair().to_string();
        let out = dir.path().join(format!("{query}-{{process}}.jsonl"));
        let sink = format!("file:{}", out.display());
        let run = ok(sluice(&[
            "run",
            query,
            "--source",
            &url(&t),
            "--until-end",
            "--sink",
            &sink,
            "-n",
            "2",
            "--port",
            &port,
        ]));
        assert!(
            stderr(&run).contains("in 2 process(es)"),
            "{}",
            stderr(&run)
        );
        let mut rows = read_rows(&dir.path().join(format!("{query}-0.jsonl")));
        rows.extend(read_rows(&dir.path().join(format!("{query}-1.jsonl"))));
        // Multisets equal: nothing lost, nothing read twice.
        assert_eq!(canonical(&rows), sorted_lines(&expected_path), "{query}");
    }
}

#[test]
fn committed_offsets_resume_where_a_bounded_run_ended() {
    let t = topic("nexmark-commit");
    let group = topic("group");
    ok(sluice(&[
        "gen",
        "--events",
        "3000",
        "--to",
        &url(&t),
        "--partitions",
        "2",
    ]));
    let run = |start: &str| read_to_end(&t, &group, start);
    let first = run("committed");
    assert!(first.contains(": 3000 events"), "{first}");
    assert!(
        first.contains("next offset per partition: p0 1500, p1 1500"),
        "{first}"
    );
    // More events arrive; the next run reads only those.
    ok(sluice(&[
        "gen",
        "--events",
        "1000",
        "--seed",
        "9",
        "--to",
        &url(&t),
    ]));
    let second = run("committed");
    assert!(second.contains(": 1000 events"), "{second}");
    // Nothing new: nothing read, and the run still ends.
    let third = run("committed");
    assert!(third.contains(": 0 events"), "{third}");
    // `earliest` ignores the group's offsets; `latest` reads only what comes after the start.
    let all = run("earliest");
    assert!(all.contains(": 4000 events"), "{all}");
    let none = run("latest");
    assert!(none.contains(": 0 events"), "{none}");
}

#[test]
fn the_example_pipeline_reads_csv_records_from_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("readings.csv");
    let gen = sensors(&[
        "gen",
        "--format",
        "csv",
        "--events",
        "20000",
        "--rate",
        "1000",
        "-o",
        csv_path.to_str().unwrap(),
    ]);
    assert!(gen.status.success(), "{}", stderr(&gen));
    let text = std::fs::read_to_string(&csv_path).unwrap();
    let mut rows: Vec<String> = text.lines().skip(1).map(String::from).collect();
    rows.insert(700, "1767225601000,dev-01".into()); // a short row: a dead letter
    let t = topic("sensors");
    produce_lines(&t, 3, &rows);
    let run = |source: &str, extra: &[&str], out: &Path| {
        let sink = format!("file:{}", out.display());
        let mut args = vec![
            "run",
            "sensor_stats",
            "--source",
            source,
            "--format",
            "csv",
            "-w",
            "2",
            "--sink",
            &sink,
            "--progress",
            "off",
        ];
        args.extend_from_slice(extra);
        let done = sensors(&args);
        assert!(done.status.success(), "{}", stderr(&done));
        (sorted_lines(out), stderr(&done))
    };
    let (from_file, _) = run(
        &format!("file:{}", csv_path.display()),
        &[],
        &dir.path().join("file.jsonl"),
    );
    let (from_kafka, report) = run(
        &url(&t),
        &["--csv-header", "time,device,celsius", "--until-end"],
        &dir.path().join("kafka.jsonl"),
    );
    assert_eq!(from_kafka, from_file);
    assert!(
        report.contains("dead letters 1 (malformed_csv 1)"),
        "{report}"
    );
}

#[test]
fn a_graceful_stop_commits_what_was_read() {
    let t = topic("nexmark-stop");
    let group = topic("group");
    let lines = generated_lines(3000, &GeneratorConfig::default());
    produce_lines(&t, 2, &lines);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rows.jsonl");
    let bids = reference_q0(&lines).len();
    // An unbounded run over the topic: it reads everything, then waits for more.
    let metrics = format!("127.0.0.1:{}", free_port_pair());
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "q0", "--source", &url(&t), "--kafka-group", &group])
        .args(["--kafka-start", "committed", "--progress", "off", "--sink"])
        .arg(format!("file:{}", out.display()))
        .args(["--metrics-addr", &metrics])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::fs::read_to_string(&out).map_or(0, |t| t.lines().count()) < bids {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the run did not write its rows");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The metrics endpoint shows each partition's progress, labelled with topic and partition.
    let offsets = |text: &str| -> Vec<String> {
        let mut found: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with("sluice_partition_next_offset{"))
            .map(|l| {
                let partition = l
                    .split("partition=\"")
                    .nth(1)
                    .unwrap_or("")
                    .split('"')
                    .next();
                format!(
                    "p{} {}",
                    partition.unwrap_or("?"),
                    l.rsplit(' ').next().unwrap_or("")
                )
            })
            .collect();
        found.sort();
        found
    };
    let start = Instant::now();
    let exposition = loop {
        let text = ureq::get(&format!("http://{metrics}/metrics"))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .unwrap_or_default();
        if offsets(&text) == ["p0 1500.0", "p1 1500.0"] {
            break text;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "partition offsets {:?} in {text}",
            offsets(&text)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let topic_label = format!("topic=\"{t}\"");
    for family in [
        "sluice_partition_event_time_seconds",
        "sluice_partition_idle",
    ] {
        let samples: Vec<&str> = exposition
            .lines()
            .filter(|l| l.starts_with(family) && l.contains(&topic_label))
            .collect();
        assert_eq!(samples.len(), 2, "{family} in {exposition}");
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let done = child.wait_with_output().unwrap();
    let err = stderr(&done);
    assert!(done.status.success(), "{err}");
    assert!(err.contains("STOPPED (SIGTERM)"), "{err}");
    assert!(
        err.contains("next offset per partition: p0 1500, p1 1500"),
        "{err}"
    );
    assert_eq!(read_rows(&out).len(), bids);
    // The group resumes after what the stopped run read: nothing is left.
    let again = read_to_end(&t, &group, "committed");
    assert!(again.contains(": 0 events"), "{again}");
}

#[test]
fn an_idle_partition_does_not_stall_the_windows() {
    // Partition 1 stays empty: without the idle timeout its watermark would hold every window
    // open forever. The run is unbounded; the test reads rows as they come, then stops it.
    let dir = tempfile::tempdir().unwrap();
    let config = GeneratorConfig {
        rate: 1_000,
        ..GeneratorConfig::default()
    };
    let lines = generated_lines(20_000, &config);
    let t = topic("nexmark-idle");
    let records: Vec<(Option<&[u8]>, i32)> =
        lines.iter().map(|l| (Some(l.as_bytes()), 0)).collect();
    produce(&t, 2, &records);
    let file = write_lines(dir.path(), "events.jsonl", &lines);
    let expected_path = dir.path().join("q7.jsonl");
    run_to_file(
        "q7",
        &format!("file:{}", file.display()),
        "1",
        &expected_path,
        &[],
    );
    let expected = sorted_lines(&expected_path);

    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "run",
            "q7",
            "--source",
            &url(&t),
            "--idle-timeout",
            "1s",
            "-w",
            "2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut rows = Vec::new();
    while rows.len() < expected.len() && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            rows.push(serde_json::from_str::<Value>(&line).unwrap());
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(canonical(&rows), expected, "every window closed, once");
}

#[test]
fn missing_brokers_and_topics_fail_fast_and_clearly() {
    let port = free_port_pair();
    let start = Instant::now();
    let out = sluice(&[
        "run",
        "q0",
        "--source",
        &format!("kafka://127.0.0.1:{port}/nexmark"),
        "--kafka-timeout",
        "2s",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not reachable within 2s"),
        "{}",
        stderr(&out)
    );
    assert!(start.elapsed() < Duration::from_secs(10));

    let missing = topic("no-such-topic");
    let out = sluice(&["run", "q0", "--source", &url(&missing), "--until-end"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));

    // A sink on an unreachable broker is an error too, not a silent drop.
    let out = sluice(&[
        "run",
        "q0",
        "--events",
        "10",
        "--sink",
        &format!("kafka://127.0.0.1:{port}/out"),
        "--kafka-timeout",
        "2s",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("not reachable"), "{}", stderr(&out));

    let out = sluice(&["run", "q0", "--source", "kafka://nohost/t"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn undeliverable_rows_fail_the_run() {
    // One bid's row is larger than the producer may send (`message.max.bytes`): that row cannot
    // be delivered, and the run must say so and fail rather than report success without it.
    let dir = tempfile::tempdir().unwrap();
    let mut lines = generated_lines(200, &GeneratorConfig::default());
    let big = lines
        .iter()
        .position(|l| l.contains("\"event_type\":2"))
        .unwrap();
    let mut bid: Value = serde_json::from_str(&lines[big]).unwrap();
    bid["bid"]["extra"] = Value::from("x".repeat(5000));
    lines[big] = bid.to_string();
    let file = write_lines(dir.path(), "events.jsonl", &lines);
    let sink = topic("undeliverable");
    let out = sluice(&[
        "run",
        "q0",
        "--source",
        &format!("file:{}", file.display()),
        "--sink",
        &url(&sink),
        "--kafka-prop",
        "message.max.bytes=4000",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 row(s) could not be delivered"),
        "{}",
        stderr(&out)
    );
}

/// The rows committed to `topic` (read committed, as `sluice cat` reads), canonical.
fn committed_rows(topic: &str) -> Vec<String> {
    let out = ok(sluice(&["cat", &url(topic)]));
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    canonical(&rows)
}

/// Checkpoints with Kafka in and out: a run killed (SIGKILL) at each step of the checkpoint
/// protocol — after a part is durable, mid-manifest, after the manifest and before the Kafka
/// commit (where Arroyo loses data, ArroyoSystems/arroyo#224), after the commit — and restored,
/// also at another worker count (Kafka positions belong to partitions), leaves exactly the
/// batch reference's rows in the output topic; the consumer group's offsets are committed only
/// with checkpoints.
#[test]
fn kafka_in_and_out_commits_each_row_once_through_a_crash_at_every_step() {
    let dir = tempfile::tempdir().unwrap();
    // 100 s of event time, out of order by up to 2 s, over 4 partitions: many 1 s checkpoints.
    let config = GeneratorConfig {
        rate: 2_000,
        ..GeneratorConfig::default()
    };
    let lines = disorder(&generated_lines(200_000, &config), 2_000, 11);
    let input = topic("nexmark-exactly-once");
    produce_lines(&input, 4, &lines);
    let expected = canonical(&reference_q5(&lines));
    // The first time each step is reached: always (the end of the input takes a final
    // checkpoint too), and mid-stream unless the machine is very slow.
    for (fail_point, before, after) in [
        ("after-part", "2", "2"),
        ("mid-manifest", "2", "1"),
        ("after-manifest", "1", "2"),
        ("after-commit", "2", "2"),
    ] {
        let case = format!("{fail_point} -w {before} → -w {after}");
        let tag = fail_point.replace(':', "-");
        let out = topic(&format!("q5-exactly-once-{tag}"));
        let ck = dir.path().join(format!("ck-{tag}"));
        let (source, sink) = (url(&input), url(&out));
        let group = format!("exactly-once-{tag}");
        let args = |workers: &'static str| {
            vec![
                "run".to_string(),
                "q5".into(),
                "--source".into(),
                source.clone(),
                "--until-end".into(),
                "--kafka-group".into(),
                group.clone(),
                "--sink".into(),
                sink.clone(),
                "--checkpoint-dir".into(),
                ck.display().to_string(),
                "--checkpoint-min-pause".into(),
                "0s".into(),
                "--report".into(),
                "none".into(),
                "-w".into(),
                workers.into(),
            ]
        };
        let crashed = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args(before))
            .env("SLUICE_FAIL_POINT", fail_point)
            .output()
            .unwrap();
        assert!(!crashed.status.success(), "{case}: not killed");
        let mut again = args(after);
        again.push("--restore".into());
        let again: Vec<&str> = again.iter().map(String::as_str).collect();
        let restored = sluice(&again);
        let err = stderr(&restored);
        assert!(restored.status.success(), "{case}: {err}");
        // Killed before its first manifest, a run starts again from the beginning.
        let manifest_written = matches!(fail_point, "after-manifest" | "after-commit");
        assert!(
            err.contains("restoring checkpoint")
                || (!manifest_written && err.contains("no checkpoint to restore")),
            "{case}: {err}"
        );
        let rows = committed_rows(&out);
        let extra: Vec<&String> = rows.iter().filter(|r| !expected.contains(r)).collect();
        let missing: Vec<&String> = expected.iter().filter(|r| !rows.contains(r)).collect();
        assert!(
            rows == expected,
            "{case}: {} rows where {} expected; not expected: {extra:?}; missing: {missing:?}",
            rows.len(),
            expected.len()
        );
    }
}
