//! Checkpoints in an S3-compatible object store, through the binary, against the real server
//! `scripts/test.sh` starts on loopback (moto's server mode; its endpoint in `SLUICE_S3`): a run
//! killed at each step of the protocol and restored from `s3://…` — also at another worker
//! count — commits exactly the rows of the batch reference, to a file or (with the broker
//! `scripts/test.sh` starts, in `SLUICE_KAFKA`) to a Kafka topic; an unreachable store is refused
//! with one line.

mod common;

use common::*;
use sluice::nexmark::generator::GeneratorConfig;
use std::path::Path;
use std::process::{Command, Output};

/// The server's endpoint; the object-store tests need one and say so rather than skip.
fn endpoint() -> String {
    std::env::var("SLUICE_S3").expect(
        "SLUICE_S3 is not set: run the tests with scripts/test.sh, which starts an S3-compatible server on 127.0.0.1",
    )
}

/// `sluice run` with `args`, the object store's credentials and endpoint in its environment.
fn run(args: &[&str], fail_point: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.arg("run")
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test");
    if let Some(fp) = fail_point {
        cmd.env("SLUICE_FAIL_POINT", fp);
    }
    cmd.output().expect("the sluice binary runs")
}

/// A prefix in the test bucket no other test (or earlier run) uses.
fn prefix(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("s3://sluice/{name}-{}-{nanos}", std::process::id())
}

fn rows(out: &Path) -> Vec<String> {
    canonical(&read_rows(out))
}

#[test]
fn a_crash_at_every_step_restores_from_the_object_store() {
    let dir = tempfile::tempdir().unwrap();
    // 60 s of event time at 10,000 events/s, out of order by up to 2 s.
    let lines = disorder(
        &generated_lines(600_000, &GeneratorConfig::default()),
        2_000,
        5,
    );
    let events = write_lines(dir.path(), "events.jsonl", &lines);
    let source = format!("file:{}", events.display());
    let expected = canonical(&reference_q5(&lines));
    for fail_point in ["after-part:2", "mid-manifest:2", "after-manifest:2"] {
        let tag = fail_point.replace(':', "-");
        let ck = prefix(&tag);
        let out = dir.path().join(format!("out-{tag}.jsonl"));
        let sink = format!("file:{}", out.display());
        let args = [
            "q5",
            "--source",
            &source,
            "--sink",
            &sink,
            "--checkpoint-dir",
            &ck,
            "--checkpoint-min-pause",
            "0s",
            "--report",
            "none",
            "-w",
            "2",
        ];
        let crashed = run(&args, Some(fail_point));
        assert!(!crashed.status.success(), "{fail_point}: not killed");
        let mut again = args.to_vec();
        again.push("--restore");
        let restored = run(&again, None);
        let err = stderr(&restored);
        assert!(restored.status.success(), "{fail_point}: {err}");
        assert!(err.contains("restoring checkpoint"), "{fail_point}: {err}");
        assert!(rows(&out) == expected, "{fail_point}: rows differ");
    }
}

#[test]
fn a_generated_run_restores_from_the_object_store_at_another_worker_count() {
    let dir = tempfile::tempdir().unwrap();
    // Paced to the wall clock (4 s), so that checkpoints come mid-run in any build.
    let config = GeneratorConfig {
        rate: 250_000,
        ..GeneratorConfig::default()
    };
    let lines = generated_lines(1_000_000, &config);
    let expected = canonical(&reference_q5(&lines));
    let ck = prefix("rescale");
    let out = dir.path().join("out.jsonl");
    let sink = format!("file:{}", out.display());
    let args = |workers: &'static str| {
        vec![
            "q5",
            "--events",
            "1000000",
            "--rate",
            "250000",
            "--paced",
            "--sink",
            &sink,
            "--checkpoint-dir",
            &ck,
            "--checkpoint-min-pause",
            "0s",
            "--report",
            "none",
            "-w",
            workers,
        ]
    };
    let crashed = run(&args("2"), Some("after-commit:2"));
    assert!(!crashed.status.success(), "not killed");
    let mut again = args("1");
    again.push("--restore");
    let restored = run(&again, None);
    let err = stderr(&restored);
    assert!(restored.status.success(), "{err}");
    assert!(err.contains("restoring checkpoint"), "{err}");
    assert!(rows(&out) == expected, "rows differ");
}

/// A Kafka sink with checkpoints in the object store: every worker's epoch files are kept in the
/// store until process 0 commits them in a transaction, so a crash between the manifest and the
/// Kafka commit — restored at another worker count — still leaves each row once in the topic.
#[test]
fn a_kafka_sink_with_checkpoints_in_the_object_store_commits_each_row_once() {
    let broker = std::env::var("SLUICE_KAFKA").expect(
        "SLUICE_KAFKA is not set: run the tests with scripts/test.sh, which starts a Kafka broker on 127.0.0.1",
    );
    // Paced to the wall clock (4 s), so that checkpoints come mid-run in any build.
    let config = GeneratorConfig {
        rate: 150_000,
        ..GeneratorConfig::default()
    };
    let lines = generated_lines(600_000, &config);
    let expected = canonical(&reference_q5(&lines));
    for (fail_point, before, after) in
        [("after-manifest:2", "2", "1"), ("after-commit:2", "1", "2")]
    {
        let tag = fail_point.replace(':', "-");
        let ck = prefix(&format!("kafka-{tag}"));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let topic = format!("q5-object-store-{tag}-{}-{nanos}", std::process::id());
        let sink = format!("kafka://{broker}/{topic}");
        let args = |workers: &'static str| {
            vec![
                "q5",
                "--events",
                "600000",
                "--rate",
                "150000",
                "--paced",
                "--sink",
                &sink,
                "--checkpoint-dir",
                &ck,
                "--checkpoint-min-pause",
                "0s",
                "--report",
                "none",
                "-w",
                workers,
            ]
        };
        let crashed = run(&args(before), Some(fail_point));
        assert!(!crashed.status.success(), "{fail_point}: not killed");
        let mut again = args(after);
        again.push("--restore");
        let restored = run(&again, None);
        let err = stderr(&restored);
        assert!(restored.status.success(), "{fail_point}: {err}");
        assert!(err.contains("restoring checkpoint"), "{fail_point}: {err}");
        let cat = sluice(&["cat", &sink]);
        assert!(cat.status.success(), "{}", stderr(&cat));
        let got: Vec<serde_json::Value> = String::from_utf8_lossy(&cat.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let got = canonical(&got);
        assert_eq!(got.len(), expected.len(), "{fail_point}: row count");
        assert!(got == expected, "{fail_point}: rows differ");
    }
}

#[test]
fn an_unreachable_store_is_refused_in_one_line() {
    let out = run(
        &[
            "q5",
            "--events",
            "1000",
            "--sink",
            "null",
            "--checkpoint-dir",
            "s3://no-such-bucket-here/ck",
        ],
        None,
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("no-such-bucket-here"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
