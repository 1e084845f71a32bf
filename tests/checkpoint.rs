//! Checkpoints and restore, through the binary: a run killed (SIGKILL) at each step of the
//! checkpoint protocol and restored — at the same or another worker or process count — commits
//! exactly the rows of an independent batch computation over the same input (the fraud model and
//! rule book: exactly the rows of an uninterrupted run); a damaged newest
//! checkpoint is reported and the previous one used; a checkpoint of another run is refused;
//! SIGTERM stops with a final checkpoint that a restore continues from, at another worker count.

mod common;

use common::*;
use serde_json::Value;
use sluice::nexmark::generator::GeneratorConfig;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// 120 s of event time (10,000 events/s), out of order by up to 2 s: with 1 s checkpoints
/// taken as fast as they come, a crash at the second or third lands mid-input.
fn input(dir: &Path) -> (PathBuf, Vec<String>) {
    let lines = disorder(
        &generated_lines(1_200_000, &GeneratorConfig::default()),
        2_000,
        7,
    );
    (write_lines(dir, "events.jsonl", &lines), lines)
}

/// The flags every checkpointed run here shares.
fn checkpointed<'a>(dir: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "--sink",
        out,
        "--checkpoint-dir",
        dir,
        "--checkpoint-min-pause",
        "0s",
        "--report",
        "none",
    ]
}

/// Runs `sluice run` with `args`, killed at `fail_point` (when given); returns the output.
fn run(args: &[&str], fail_point: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.arg("run").args(args);
    if let Some(fp) = fail_point {
        cmd.env("SLUICE_FAIL_POINT", fp);
    }
    cmd.output().expect("the sluice binary runs")
}

/// The rows of an output (every process's file).
fn committed(out: &Path) -> Vec<Value> {
    let mut rows = Vec::new();
    let dir = out.parent().unwrap();
    let name = out.file_name().unwrap().to_string_lossy().into_owned();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let is_output = file == name
            || file
                .strip_prefix(&format!("{name}.p"))
                .is_some_and(|p| p.parse::<usize>().is_ok());
        if is_output {
            rows.extend(read_rows(&path));
        }
    }
    rows
}

/// Kills a run of `query` at `fail_point` with `before` mesh flags, restores it with `after`,
/// and checks the committed rows against `expected`.
#[allow(clippy::too_many_arguments)]
fn crash_and_restore(
    query: &str,
    source: &str,
    before: &[&str],
    after: &[&str],
    fail_point: &str,
    expected: &[String],
    dir: &Path,
) {
    let case = format!("{query} {source} {before:?} → {after:?} at {fail_point}");
    let tag = format!("{query}-{}", fail_point.replace(':', "-"))
        + &before.join("").replace(' ', "")
        + &after.join("").replace(' ', "");
    let tag = tag.replace(['/', '.'], "_");
    let ck = dir.join(format!("ck-{tag}"));
    let out = dir.join(format!("out-{tag}.jsonl"));
    let (ck, out_arg) = (ck.to_str().unwrap(), format!("file:{}", out.display()));
    let mut first = vec![query, "--source", source];
    first.extend(checkpointed(ck, &out_arg));
    first.extend(before);
    let crashed = run(&first, Some(fail_point));
    // Killed by the signal (a local mesh's launcher exits with a code instead).
    assert!(
        !crashed.status.success(),
        "{case}: not killed: {}",
        stderr(&crashed)
    );
    let mut second = vec![query, "--source", source, "--restore", "--execution", "2"];
    second.extend(checkpointed(ck, &out_arg));
    second.extend(after);
    let restored = run(&second, None);
    let err = stderr(&restored);
    assert!(restored.status.success(), "{case}: {err}");
    assert!(
        err.contains("restoring checkpoint"),
        "{case}: nothing restored: {err}"
    );
    let rows = canonical(&committed(&out));
    assert_eq!(rows.len(), expected.len(), "{case}: row count");
    assert!(rows == expected, "{case}: rows differ");
}

#[test]
fn a_crash_at_every_protocol_step_commits_each_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let (events, lines) = input(dir.path());
    let source = format!("file:{}", events.display());
    let q5 = canonical(&reference_q5(&lines));
    let w2: &[&str] = &["-w", "2"];
    for fail_point in [
        "after-part:2",
        "mid-manifest:2",
        "after-manifest:2",
        "after-commit:3",
    ] {
        crash_and_restore("q5", &source, &[], &[], fail_point, &q5, dir.path());
        crash_and_restore("q5", &source, w2, w2, fail_point, &q5, dir.path());
    }
    let q7 = canonical(&reference_q7(&lines));
    crash_and_restore("q7", &source, w2, w2, "after-manifest:3", &q7, dir.path());
    let q11 = canonical(&reference_q11(&lines));
    crash_and_restore("q11", &source, &[], &[], "after-part:3", &q11, dir.path());
}

#[test]
fn q10_partitions_commit_each_row_once_across_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let (events, lines) = input(dir.path());
    let q10 = canonical(&reference_q10(&lines));
    let file = format!("file:{}", events.display());
    let generated = generated_lines(1_200_000, &GeneratorConfig::default());
    let q10_generated = canonical(&reference_q10(&generated));
    // (source, mesh before, mesh after, fail point, expected rows)
    type Case<'a> = (&'a str, &'a [&'a str], &'a [&'a str], &'a str, &'a [String]);
    let cases: [Case; 4] = [
        (&file, &["-w", "2"], &["-w", "2"], "after-part:2", &q10),
        (&file, &[], &[], "after-manifest:2", &q10),
        (&file, &["-w", "2"], &["-w", "2"], "after-commit:3", &q10),
        (
            "nexmark",
            &["-w", "2", "--events", "1200000"],
            &["-w", "1", "--events", "1200000"],
            "after-commit:2",
            &q10_generated,
        ),
    ];
    for (i, (source, before, after, fail_point, expected)) in cases.into_iter().enumerate() {
        let parts = dir.path().join(format!("partitions-{i}"));
        let parts_arg = parts.to_str().unwrap();
        let mut before = before.to_vec();
        before.extend(["--output-dir", parts_arg]);
        let mut after = after.to_vec();
        after.extend(["--output-dir", parts_arg]);
        // The rows go to the sink too: both must hold each bid once.
        crash_and_restore(
            "q10",
            source,
            &before,
            &after,
            fail_point,
            expected,
            dir.path(),
        );
        let rows = canonical(&q10_partitions(&parts));
        assert_eq!(rows.len(), expected.len(), "case {i}: partition rows");
        assert!(rows == *expected, "case {i}: partition rows differ");
    }
}

#[test]
fn a_two_process_mesh_restores_as_two_processes() {
    let dir = tempfile::tempdir().unwrap();
    let (events, lines) = input(dir.path());
    let source = format!("file:{}", events.display());
    let q5 = canonical(&reference_q5(&lines));
    let port = free_port_pair().to_string();
    // Unsupervised (a supervisor would restart it at once): crashed, then restored by hand.
    let before: &[&str] = &["-n", "2", "--port", &port, "--max-restarts", "0"];
    let after: &[&str] = &["-n", "2", "--port", &port];
    crash_and_restore(
        "q5",
        &source,
        before,
        after,
        "after-commit:2",
        &q5,
        dir.path(),
    );
}

#[test]
fn a_generated_run_restores_at_another_worker_or_process_count() {
    let dir = tempfile::tempdir().unwrap();
    // The generator makes the same events at any split: the reference is its own lines.
    let lines = generated_lines(1_200_000, &GeneratorConfig::default());
    let port = free_port_pair().to_string();
    let cases: [(&str, &[&str], &[&str], &str); 3] = [
        ("q5", &["-w", "2"], &["-w", "1"], "after-part:3"),
        (
            "q7",
            &["-w", "1"],
            &["-n", "2", "--port", &port],
            "after-manifest:2",
        ),
        ("q11", &["-w", "2"], &["-w", "1"], "after-commit:2"),
    ];
    for (query, before, after, fail_point) in cases {
        let expected = canonical(&match query {
            "q5" => reference_q5(&lines),
            "q7" => reference_q7(&lines),
            _ => reference_q11(&lines),
        });
        let source = "nexmark";
        let mut before = before.to_vec();
        before.extend(["--events", "1200000"]);
        let mut after = after.to_vec();
        after.extend(["--events", "1200000"]);
        crash_and_restore(
            query,
            source,
            &before,
            &after,
            fail_point,
            &expected,
            dir.path(),
        );
    }
}

#[test]
fn the_fraud_model_and_rule_book_restore_exactly() {
    // Three hours of generated transactions at 20 a second (labels an hour later, so the model
    // learns throughout) with a rule change after the first hour; checkpoints every 10 minutes of
    // event time. A run killed after its second checkpoint and restored at another worker count
    // writes exactly the scores of an uninterrupted run: the accounts' features, the model and
    // the rule book all came back.
    let dir = tempfile::tempdir().unwrap();
    let generated = dir.path().join("fraud.jsonl");
    let gen = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["gen", "fraud", "--events", "200000", "--rate", "20", "-o"])
        .arg(&generated)
        .output()
        .unwrap();
    assert!(gen.status.success(), "{}", stderr(&gen));
    let mut lines: Vec<String> = std::fs::read_to_string(&generated)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let first: Value = serde_json::from_str(&lines[0]).unwrap();
    let change_at = first["time"].as_u64().unwrap() + 3_900_000;
    let at = lines
        .iter()
        .position(|l| {
            serde_json::from_str::<Value>(l).unwrap()["time"]
                .as_u64()
                .unwrap()
                + 1_000
                >= change_at
        })
        .unwrap();
    lines.insert(
        at,
        format!(
            r#"{{"kind":"rule","time":{change_at},"rule":"velocity","set":{{"max_count":2}}}}"#
        ),
    );
    let file = write_lines(dir.path(), "fraud-with-rule.jsonl", &lines);
    let source = format!("file:{}", file.display());
    let whole = dir.path().join("whole.jsonl");
    let uninterrupted = run(
        &[
            "fraud_scores",
            "--source",
            &source,
            "-w",
            "2",
            "--report",
            "none",
            "--sink",
            &format!("file:{}", whole.display()),
        ],
        None,
    );
    assert!(uninterrupted.status.success(), "{}", stderr(&uninterrupted));
    let rows = read_rows(&whole);
    let velocity = |r: &&&Value| r["rules"].as_array().unwrap().contains(&"velocity".into());
    let (before_change, after_change): (Vec<&Value>, Vec<&Value>) = rows
        .iter()
        .partition(|r| r["time"].as_u64().unwrap() < change_at);
    assert!(
        after_change.iter().filter(velocity).count()
            > 10 * before_change.iter().filter(velocity).count(),
        "the rule change shows"
    );
    let expected = canonical(&rows);
    assert_eq!(
        expected.len(),
        200_000
            - lines
                .iter()
                .filter(|l| l.contains(r#""kind":"label""#))
                .count()
    );
    let interval = ["--checkpoint-interval", "10m"];
    let before = [&["-w", "2"][..], &interval[..]].concat();
    let after = [&["-w", "1"][..], &interval[..]].concat();
    crash_and_restore(
        "fraud_scores",
        &source,
        &before,
        &after,
        // The ninth checkpoint (90 minutes) is after the rule change and the first labels.
        "after-manifest:9",
        &expected,
        dir.path(),
    );
}

#[test]
fn recommendation_state_restores_exactly() {
    // Generated behaviours, checkpoints every 2 s of event time; each run killed after its
    // first checkpoint and restored at one worker writes exactly the rows of an uninterrupted run
    // at two: users' items, items' co-occurrence counts and users' lists (recommend), the
    // differential arrangements rebuilt from the logged input (recommend_similar), the rating
    // model (recommend_ratings).
    let dir = tempfile::tempdir().unwrap();
    // A file is read much faster than a checkpoint completes: however many intervals the
    // behaviours span, a run may name a single checkpoint before the final one (the rating
    // model over 100 s of behaviours often does). A crash after the first manifest falls
    // inside the run whatever the timing; after the second it may land after the end.
    for (query, events) in [
        ("recommend", 100_000),
        ("recommend_similar", 20_000),
        ("recommend_ratings", 100_000),
    ] {
        let (generated, _) =
            generated_behaviours(dir.path(), &format!("{query}-behaviours.jsonl"), events);
        let source = format!("file:{}", generated.display());
        let whole = dir.path().join(format!("{query}-whole.jsonl"));
        let uninterrupted = run(
            &[
                query,
                "--source",
                &source,
                "-w",
                "2",
                "--report",
                "none",
                "--sink",
                &format!("file:{}", whole.display()),
            ],
            None,
        );
        assert!(uninterrupted.status.success(), "{}", stderr(&uninterrupted));
        let expected = canonical(&read_rows(&whole));
        assert!(expected.len() > 1_000, "{query}: {} rows", expected.len());
        let interval = ["--checkpoint-interval", "2s"];
        let before = [&["-w", "2"][..], &interval[..]].concat();
        let after = [&["-w", "1"][..], &interval[..]].concat();
        let work = dir.path().join(query);
        std::fs::create_dir_all(&work).unwrap();
        crash_and_restore(
            query,
            &source,
            &before,
            &after,
            "after-manifest:1",
            &expected,
            &work,
        );
    }
}

#[test]
fn a_file_run_restores_at_another_worker_or_process_count() {
    let dir = tempfile::tempdir().unwrap();
    let (events, lines) = input(dir.path());
    let source = format!("file:{}", events.display());
    let port = free_port_pair().to_string();
    let cases: [(&str, &[&str], &[&str], &str); 3] = [
        ("q5", &["-w", "2"], &["-w", "1"], "after-part:3"),
        (
            "q7",
            &["-w", "1"],
            &["-n", "2", "--port", &port],
            "after-manifest:2",
        ),
        ("q11", &["-w", "2"], &["-w", "3"], "after-commit:2"),
    ];
    for (query, before, after, fail_point) in cases {
        let expected = canonical(&match query {
            "q5" => reference_q5(&lines),
            "q7" => reference_q7(&lines),
            _ => reference_q11(&lines),
        });
        crash_and_restore(
            query,
            &source,
            before,
            after,
            fail_point,
            &expected,
            dir.path(),
        );
    }
}

#[test]
fn a_damaged_newest_checkpoint_is_reported_and_the_previous_one_used() {
    let dir = tempfile::tempdir().unwrap();
    let (events, lines) = input(dir.path());
    let source = format!("file:{}", events.display());
    let ck = dir.path().join("ck");
    let out = dir.path().join("out.jsonl");
    let (ck_arg, out_arg) = (ck.to_str().unwrap(), format!("file:{}", out.display()));
    let mut args = vec!["q5", "--source", &source];
    args.extend(checkpointed(ck_arg, &out_arg));
    // Killed after committing the fourth checkpoint: the output holds its rows.
    let crashed = run(&args, Some("after-commit:4"));
    assert_eq!(crashed.status.code(), None, "{}", stderr(&crashed));
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(&ck)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".json"))
        .collect();
    manifests.sort();
    let newest: Value =
        serde_json::from_slice(&std::fs::read(manifests.last().unwrap()).unwrap()).unwrap();
    let part = ck.join(newest["parts"][0]["file"].as_str().unwrap());
    let mut bytes = std::fs::read(&part).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&part, bytes).unwrap();
    args.extend(["--restore", "--execution", "2"]);
    let restored = run(&args, None);
    let err = stderr(&restored);
    assert!(restored.status.success(), "{err}");
    let epoch = newest["epoch"].as_u64().unwrap();
    assert!(
        err.lines()
            .any(|l| l.contains(&format!("checkpoint {epoch} is unusable"))
                && l.contains("checksum mismatch")),
        "{err}"
    );
    // The output had the damaged checkpoint's rows: they were taken back, then made again.
    assert_eq!(
        canonical(&committed(&out)),
        canonical(&reference_q5(&lines))
    );
}

#[test]
fn runs_that_cannot_be_checkpointed_or_restored_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    let ck_arg = ck.to_str().unwrap();
    let out = format!("file:{}", dir.path().join("out.jsonl").display());
    let unused = dir.path().join("unused-ck");
    let unused_arg = unused.to_str().unwrap();
    let ok = sluice(&[
        "run",
        "q7",
        "--events",
        "100000",
        "--sink",
        &out,
        "--checkpoint-dir",
        ck_arg,
        "--report",
        "none",
    ]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let stdin_source = [
        "run",
        "q7",
        "--source",
        "file:-",
        "--sink",
        &out,
        "--checkpoint-dir",
    ];
    let mut stdin_source = stdin_source.to_vec();
    stdin_source.push(ck_arg);
    expect_failures(&[
        (
            vec![
                "run",
                "q7",
                "--events",
                "100000",
                "--sink",
                &out,
                "--checkpoint-dir",
                ck_arg,
            ],
            2,
            "holds checkpoints of an earlier run",
        ),
        (
            vec![
                "run",
                "q5",
                "--events",
                "100000",
                "--sink",
                &out,
                "--checkpoint-dir",
                ck_arg,
                "--restore",
            ],
            2,
            "is of another pipeline or configuration",
        ),
        (
            vec!["run", "q12", "--sink", &out, "--checkpoint-dir", unused_arg],
            2,
            "q12 cannot be checkpointed yet: q12.bids_per_bidder (processing-time windows",
        ),
        (
            vec!["run", "q7", "--checkpoint-dir", unused_arg],
            2,
            "checkpoints need a file sink",
        ),
        (stdin_source, 2, "standard input cannot be read again"),
        (
            vec![
                "run",
                "q7",
                "--sink",
                &out,
                "--checkpoint-dir",
                unused_arg,
                "--checkpoint-interval",
                "150ms",
            ],
            2,
            "must be a positive multiple of the stamping granularity",
        ),
        (vec!["run", "q7", "--restore"], 2, "--checkpoint-dir"),
    ]);
    assert!(
        !unused.exists(),
        "a refused run created its checkpoint directory"
    );
}

/// Rescaling, as the README and deploy/README.md describe it: stop with SIGTERM (a final
/// checkpoint), then start again with another worker count and `--restore`.
#[test]
fn sigterm_stops_with_a_checkpoint_that_a_rescaled_restore_continues() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    let out = dir.path().join("out.jsonl");
    let whole = dir.path().join("whole.jsonl");
    let (ck_arg, out_arg) = (ck.to_str().unwrap(), format!("file:{}", out.display()));
    // Several seconds of work: the signal lands mid-run.
    let events = ["--events", "10000000"];
    let uninterrupted = sluice(
        &[
            &[
                "run",
                "q5",
                "--sink",
                &format!("file:{}", whole.display()),
                "--report",
                "none",
            ][..],
            &events,
        ]
        .concat(),
    );
    assert!(uninterrupted.status.success(), "{}", stderr(&uninterrupted));
    let mut args = vec!["run", "q5"];
    args.extend(events);
    args.extend([
        "--sink",
        &out_arg,
        "--checkpoint-dir",
        ck_arg,
        "--report",
        "none",
    ]);
    args.extend(["--checkpoint-min-pause", "200ms"]);
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(&args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let start = Instant::now();
    let stopped = child.wait_with_output().unwrap();
    assert!(stopped.status.success(), "{}", stderr(&stopped));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "the stop took too long"
    );
    let expected = canonical(&read_rows(&whole));
    let partial = committed(&out).len();
    assert!(
        partial > 0 && partial < expected.len(),
        "{partial} rows at the stop"
    );
    args.extend(["--restore", "--execution", "2", "-w", "2"]);
    let restored = sluice(&args);
    assert!(restored.status.success(), "{}", stderr(&restored));
    assert_eq!(canonical(&committed(&out)), expected);
}

/// A run killed while writing its first manifest — the end's, the input being short — leaves
/// parts of that execution behind; a restore finds no checkpoint, starts from the beginning
/// (here at another worker count) and must not count the dead run's parts as its own.
#[test]
fn a_crash_before_the_first_manifest_restores_from_the_beginning() {
    let dir = tempfile::tempdir().unwrap();
    let lines = generated_lines(20_000, &GeneratorConfig::default());
    let expected = canonical(&reference_q5(&lines));
    let ck = dir.path().join("ck");
    let out = dir.path().join("out.jsonl");
    let (ck, out_arg) = (ck.to_str().unwrap(), format!("file:{}", out.display()));
    let mut first = vec!["q5", "--events", "20000", "-w", "2"];
    first.extend(checkpointed(ck, &out_arg));
    let crashed = run(&first, Some("mid-manifest"));
    assert!(
        !crashed.status.success(),
        "not killed: {}",
        stderr(&crashed)
    );
    let mut second = vec!["q5", "--events", "20000", "-w", "1", "--restore"];
    second.extend(checkpointed(ck, &out_arg));
    let started = Instant::now();
    let restored = run(&second, None);
    let err = stderr(&restored);
    assert!(restored.status.success(), "{err}");
    assert!(err.contains("no checkpoint to restore"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60), "{err}");
    assert!(canonical(&committed(&out)) == expected, "rows differ");
}
