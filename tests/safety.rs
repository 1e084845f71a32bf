//! Safe by default, end to end through the `sluice` binary: a graceful stop on SIGINT/SIGTERM
//! keeps every row (the output equals a batch computation over exactly the events read), one
//! process and a mesh; sinks flush while running; `| head` ends quietly; refusals before any
//! work, each with its exit code and message; too much rejected input fails the run; logs carry
//! no terminal escapes when stderr is not a terminal.

mod common;

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use sluice::nexmark::generator::GeneratorConfig;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running `sluice`, killed if the test fails before it ends (a launcher's processes then
/// get SIGTERM from the kernel: they follow their launcher).
struct Running(Option<Child>);

impl Running {
    fn signal(&self, signal: Signal) {
        let child = self.0.as_ref().expect("running");
        kill(Pid::from_raw(child.id() as i32), signal).unwrap();
    }

    fn wait(mut self) -> Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }

    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("running")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(args: &[&str]) -> Running {
    Running(Some(
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the sluice binary starts"),
    ))
}

/// Waits until a file of `dir` whose name starts with `out` holds a whole line (the run is
/// producing rows), or panics.
fn wait_for_rows(dir: &Path) {
    let start = Instant::now();
    let any_rows = || {
        std::fs::read_dir(dir).unwrap().any(|e| {
            let path = e.unwrap().path();
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("out")
                && std::fs::read_to_string(&path).is_ok_and(|t| t.contains('\n'))
        })
    };
    while !any_rows() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no rows in {dir:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn report_of(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const RATE: u64 = 20_000;

fn config() -> GeneratorConfig {
    GeneratorConfig {
        rate: RATE,
        ..GeneratorConfig::default()
    }
}

/// The generated events a stopped run read: global worker `w` of `peers` reads event numbers
/// `w, w + peers, …`, as many as the report says it read.
fn events_read(report: &Value) -> Vec<String> {
    let per_worker = report["per_worker"].as_array().unwrap();
    let peers = per_worker.len() as u64;
    let counts: Vec<u64> = per_worker
        .iter()
        .map(|w| w["events"].as_u64().unwrap())
        .collect();
    let last = counts
        .iter()
        .enumerate()
        .map(|(w, n)| {
            if *n == 0 {
                0
            } else {
                w as u64 + (n - 1) * peers + 1
            }
        })
        .max()
        .unwrap();
    generated_lines(last, &config())
        .into_iter()
        .enumerate()
        .filter(|(i, _)| {
            let i = *i as u64;
            i / peers < counts[(i % peers) as usize]
        })
        .map(|(_, l)| l)
        .collect()
}

fn reference(query: &str, lines: &[String]) -> Vec<Value> {
    match query {
        "q0" => reference_q0(lines),
        "q5" => reference_q5(lines),
        "q7" => reference_q7(lines),
        other => panic!("no reference for {other}"),
    }
}

/// A paced unbounded run of `query`, stopped by `sig` once rows flow; its rows must equal the
/// batch reference over exactly the events it read.
fn stop_keeps_every_row(query: &str, sig: Signal, mesh: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out-{process}.jsonl");
    let report = dir.path().join("report.json");
    let rate = RATE.to_string();
    let mut args = vec![
        "run",
        query,
        "--unbounded",
        "--rate",
        &rate,
        "--paced",
        "--progress",
        "off",
        "--watermark-delay",
        "1s",
    ];
    let sink = format!("file:{}", out.display());
    args.extend(["--sink", &sink]);
    args.extend(["--report-file", report.to_str().unwrap()]);
    args.extend_from_slice(mesh);
    let child = spawn(&args);
    wait_for_rows(dir.path());
    std::thread::sleep(Duration::from_millis(500));
    child.signal(sig);
    let done = child.wait();
    let err = stderr(&done);
    assert_eq!(done.status.code(), Some(0), "{query} {sig}: {err}");
    assert!(
        err.contains(&format!("STOPPED ({})", sig.as_str())),
        "{err}"
    );
    let report = report_of(&report);
    assert_eq!(report["stopped"]["cause"], sig.as_str(), "{report}");
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("out-") {
            rows.extend(read_rows(&path));
        }
    }
    let read = events_read(&report);
    assert!(
        read.len() > 1000,
        "{query}: only {} events read",
        read.len()
    );
    assert_eq!(report["rows"].as_u64().unwrap() as usize, rows.len());
    let (got, want) = (canonical(&rows), canonical(&reference(query, &read)));
    assert!(
        got == want,
        "{query} stopped by {sig} after {} events: {} rows, reference {}; first difference {:?}",
        read.len(),
        got.len(),
        want.len(),
        got.iter().zip(&want).find(|(a, b)| a != b)
    );
}

#[test]
fn sigint_and_sigterm_keep_every_row_of_one_process() {
    stop_keeps_every_row("q0", Signal::SIGINT, &[]);
    stop_keeps_every_row("q5", Signal::SIGTERM, &["-w", "2"]);
}

#[test]
fn a_signal_to_the_launcher_stops_the_whole_mesh_with_every_row() {
    let port = free_port_pair().to_string();
    stop_keeps_every_row("q7", Signal::SIGTERM, &["-n", "2", "--port", &port]);
}

#[test]
fn a_signal_to_one_hand_started_process_stops_its_peers() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port_pair();
    let hosts = dir.path().join("hosts.txt");
    std::fs::write(
        &hosts,
        format!("127.0.0.1:{port}\n127.0.0.1:{}\n", port + 1),
    )
    .unwrap();
    let report = dir.path().join("report.json");
    let rate = RATE.to_string();
    let start = |p: &str| {
        let out = dir.path().join("out-{process}.jsonl");
        let mut args = vec![
            "run",
            "q5",
            "--unbounded",
            "--rate",
            &rate,
            "--paced",
            "--progress",
            "off",
            // timely's spelling of the hostfile
            "-h",
            hosts.to_str().unwrap(),
            "-n",
            "2",
            "-p",
            p,
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        args.extend(["--sink".into(), format!("file:{}", out.display())]);
        if p == "0" {
            args.extend(["--report-file".into(), report.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        spawn(&args)
    };
    let p0 = start("0");
    let p1 = start("1");
    wait_for_rows(dir.path());
    p1.signal(Signal::SIGINT);
    let (o0, o1) = (p0.wait(), p1.wait());
    assert_eq!(o0.status.code(), Some(0), "{}", stderr(&o0));
    assert_eq!(o1.status.code(), Some(0), "{}", stderr(&o1));
    let report = report_of(&report);
    assert_eq!(report["stopped"]["cause"], "SIGINT", "{report}");
    let mut rows = read_rows(&dir.path().join("out-0.jsonl"));
    rows.extend(read_rows(&dir.path().join("out-1.jsonl")));
    let (got, want) = (
        canonical(&rows),
        canonical(&reference_q5(&events_read(&report))),
    );
    assert!(
        got == want,
        "{} rows, reference {}; first difference {:?}",
        got.len(),
        want.len(),
        got.iter().zip(&want).find(|(a, b)| a != b)
    );
}

#[test]
fn file_sinks_flush_while_running_so_a_crash_loses_little() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let child = spawn(&[
        "run",
        "q0",
        "--unbounded",
        "--rate",
        "5000",
        "--paced",
        "--progress",
        "off",
        "--sink",
        &format!("file:{}", out.display()),
    ]);
    // Rows reach the file while the run goes on: far less than the sink's 1 MiB buffer.
    wait_for_rows(dir.path());
    std::thread::sleep(Duration::from_millis(300));
    child.signal(Signal::SIGKILL); // no chance to flush
    child.wait();
    let rows = read_rows(&out);
    let config = GeneratorConfig {
        rate: 5000,
        ..GeneratorConfig::default()
    };
    let bids = reference_q0(&generated_lines(rows.len() as u64 * 2, &config));
    // Whole lines only, and a prefix of the bids in order.
    assert!(!rows.is_empty());
    let differ = rows.iter().zip(&bids).position(|(a, b)| a != b);
    assert_eq!(differ, None, "{} rows", rows.len());
}

/// Reads one line of a run's stdout, closes it, and returns how the run ended.
fn head_1(args: &[&str]) -> (String, Output) {
    let mut child = spawn(args);
    let mut first = String::new();
    BufReader::new(child.child().stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    (first, child.wait())
}

#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    let port = free_port_pair().to_string();
    for args in [
        vec!["run", "q2", "--events", "2000000"],
        vec![
            "run", "q2", "--events", "2000000", "-n", "2", "--port", &port,
        ],
        vec!["gen", "--events", "2000000"],
    ] {
        let (first, out) = head_1(&args);
        assert!(first.starts_with('{'), "{args:?}: {first}");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(
            !err.contains("error") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
        assert!(!err.contains('\u{1b}'), "{args:?}: escapes in {err:?}");
    }
}

#[test]
fn standard_input_feeds_a_two_process_mesh() {
    let lines = generated_lines(3000, &GeneratorConfig::default());
    let port = free_port_pair().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "run", "q0", "--source", "file:-", "-n", "2", "--port", &port,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let text = lines.join("\n") + "\n";
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(canonical(&rows), canonical(&reference_q0(&lines)));
}

#[test]
fn refusals_come_before_any_work_with_their_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_lines(
        dir.path(),
        "in.jsonl",
        &generated_lines(100, &GeneratorConfig::default()),
    );
    let original = std::fs::read(&input).unwrap();
    let file = format!("file:{}", input.display());
    let dotted = format!("file:{}/./in.jsonl", dir.path().display());
    let other = dir.path().join("rows.jsonl");
    let other_sink = format!("file:{}", other.display());
    let a_file = input.to_str().unwrap();
    let kafka = "kafka://127.0.0.1:9/topic";
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["run", "q0", "--source", &file, "--sink", &file],
            2,
            "refusing to overwrite the input",
        ),
        (
            vec!["run", "q0", "--source", &file, "--sink", &dotted],
            2,
            "refusing to overwrite the input",
        ),
        (
            vec![
                "run",
                "q0",
                "--source",
                &file,
                "--sink",
                "null",
                "--dead-letter",
                a_file,
            ],
            2,
            "refusing to overwrite the input",
        ),
        (
            vec![
                "run",
                "q0",
                "--source",
                &file,
                "--sink",
                &other_sink,
                "--dead-letter",
                other.to_str().unwrap(),
            ],
            2,
            "are the same file",
        ),
        (
            vec!["run", "q0", "--source", kafka, "--sink", kafka],
            2,
            "is the source topic",
        ),
        (
            vec!["run", "q0", "--report-file", "/no/such/dir/r.json"],
            3,
            "cannot write the report file",
        ),
        (
            vec!["run", "q0", "--histogram", "/no/such/dir/h.tsv"],
            3,
            "cannot write the histogram file",
        ),
        (
            vec!["run", "q0", "--dead-letter", "/no/such/dir/d.jsonl"],
            3,
            "cannot create /no/such/dir/d.jsonl",
        ),
        (
            vec!["run", "q10", "--output-dir", a_file],
            3,
            "cannot write the output directory",
        ),
        (
            vec!["run", "q0", "--source", &file, "--events", "5"],
            2,
            "--events applies only to a generator",
        ),
        (
            vec!["run", "q0", "--source", &file, "--paced"],
            2,
            "--paced applies only to a generator",
        ),
        (
            vec!["run", "q0", "--source", &file, "--rate", "5"],
            2,
            "--rate applies only to a generator",
        ),
        (
            vec!["run", "q0", "--until-end"],
            2,
            "--until-end applies only to a Kafka source",
        ),
        (
            vec!["run", "q0", "--kafka-prop", "a=b"],
            2,
            "--kafka-prop applies only when",
        ),
        (
            vec!["run", "q0", "--sink-partitions", "3"],
            2,
            "--sink-partitions applies only to a Kafka sink",
        ),
        (
            vec!["run", "q0", "--give-up-behind", "1s"],
            2,
            "--give-up-behind applies only to a --paced",
        ),
        (
            vec!["run", "q0", "--output-dir", "x"],
            2,
            "--output-dir applies only to pipelines that write files",
        ),
        (
            vec!["run", "q0", "--max-record-bytes", "10"],
            2,
            "--max-record-bytes applies only to file and Kafka",
        ),
        (
            vec!["run", "q0", "--report", "json"],
            2,
            "--report json prints the report on stdout",
        ),
        (vec!["run", "q0", "--rate", "0"], 2, "must be at least 1"),
        (
            vec!["run", "q0", "--events", "-5"],
            2,
            "must be 0 or more, not -5",
        ),
        (
            vec!["run", "q0", "--watermark-delay", "1500"],
            2,
            "has no unit",
        ),
        (
            vec!["run", "q0", "--max-bad-ratio", "2"],
            2,
            "not a fraction from 0 to 1",
        ),
        (
            vec!["run", "q0", "-h"],
            2,
            "a value is required for '--hostfile",
        ),
        (
            vec!["gen", "--partitions", "3"],
            2,
            "--partitions applies only when writing to Kafka",
        ),
    ];
    expect_failures(&cases);
    assert_eq!(
        std::fs::read(&input).unwrap(),
        original,
        "the input is intact"
    );
    assert!(!other.exists());
}

#[test]
fn mostly_rejected_input_fails_the_run_with_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let good = generated_lines(300, &GeneratorConfig::default());
    let garbage: Vec<String> = (0..2000).map(|i| format!("garbage {i}")).collect();
    let all_bad = write_lines(dir.path(), "bad.txt", &garbage);
    let mut some: Vec<String> = good.clone();
    some.extend(garbage[..100].iter().cloned());
    let some_bad = write_lines(dir.path(), "some.txt", &some);
    let run = |path: &Path, extra: &[&str]| {
        let mut args = vec![
            "run".to_string(),
            "q0".into(),
            "--sink".into(),
            "null".into(),
        ];
        args.push("--source".into());
        args.push(format!("file:{}", path.display()));
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        sluice(&args)
    };
    let out = run(&all_bad, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("2000 of the 2000 records read (100.0 %) were rejected"),
        "{err}"
    );
    // The run warned early that nothing was readable, without terminal escapes.
    assert!(
        err.contains("WARN") && err.contains("were all rejected"),
        "{err}"
    );
    assert!(!err.contains('\u{1b}'), "{err:?}");
    // The report still came first.
    assert!(err.contains("dead letters 2000"), "{err}");
    assert_eq!(
        run(&all_bad, &["--max-bad-ratio", "1"]).status.code(),
        Some(0)
    );
    // A quarter rejected is within the default ratio (0.5), not within 0.2.
    assert_eq!(run(&some_bad, &[]).status.code(), Some(0));
    assert_eq!(
        run(&some_bad, &["--max-bad-ratio", "0.2"]).status.code(),
        Some(4)
    );
}

#[test]
fn timely_spellings_threads_and_json_report_on_stdout() {
    let out = sluice(&[
        "run",
        "q1",
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
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON report");
    assert_eq!(report["workers"], 2);
    assert_eq!(report["events"], 20000);
    let help = sluice(&["run", "q1", "--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for heading in [
        "Input:",
        "Generator",
        "Output:",
        "Kafka:",
        "Report:",
        "Mesh",
    ] {
        assert!(text.contains(heading), "no {heading} in\n{text}");
    }
    assert!(text.contains("-h, --hostfile <FILE>"), "{text}");
}
