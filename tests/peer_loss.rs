//! Losing a process of a mesh: without a supervisor the survivors halt within seconds with one
//! line naming the lost process and exit code 5 — no panic backtrace, no hang — whether the
//! peer was killed (its connection closes) or stopped (it goes silent); with a supervisor (a
//! local mesh with checkpoints) the mesh restarts from its last checkpoint and commits exactly
//! the rows of a run without a failure.

mod common;

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sluice::nexmark::generator::GeneratorConfig;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts process `p` of a two-process mesh on `port` running an unbounded q1.
fn spawn(p: &str, port: u16, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "run",
            "q1",
            "--unbounded",
            "--sink",
            "null",
            "--report",
            "none",
        ])
        .args(["-n", "2", "-p", p, "--port", &port.to_string()])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Kills process 1 with `signal` after a second of running; returns process 0's exit and
/// stderr, and how long it took to exit after the signal.
fn lose_process_one(signal: Signal, extra: &[&str]) -> (Option<i32>, String, Duration) {
    let port = free_port_pair();
    let mut p1 = spawn("1", port, extra);
    let p0 = spawn("0", port, extra);
    std::thread::sleep(Duration::from_secs(1));
    kill(Pid::from_raw(p1.id() as i32), signal).unwrap();
    let at = Instant::now();
    let out = p0.wait_with_output().unwrap();
    let took = at.elapsed();
    let _ = p1.kill();
    let _ = p1.wait();
    (out.status.code(), stderr(&out), took)
}

#[test]
fn a_killed_peer_ends_the_survivor_with_one_line() {
    let (code, err, took) = lose_process_one(Signal::SIGKILL, &[]);
    assert_eq!(code, Some(5), "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let lost: Vec<&str> = err.lines().filter(|l| l.contains("lost")).collect();
    assert_eq!(lost.len(), 1, "{err}");
    assert!(
        lost[0].starts_with("sluice: error: process 1 (127.0.0.1:")
            && (lost[0].ends_with("lost: connection reset")
                || lost[0].ends_with("lost: connection closed")),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

#[test]
fn a_stopped_peer_ends_the_survivor_after_the_stall_timeout() {
    let (code, err, took) = lose_process_one(Signal::SIGSTOP, &["--stall-timeout", "2s"]);
    assert_eq!(code, Some(5), "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("sluice: error: process 1 (127.0.0.1:")
                && l.contains("lost: no heartbeat for")),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_supervised_mesh_restarts_from_its_checkpoint_and_commits_each_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    let out = dir.path().join("out.jsonl");
    let port = free_port_pair().to_string();
    let run = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "run", "q5", "--events", "1200000", "-n", "2", "--port", &port,
        ])
        .arg("--sink")
        .arg(format!("file:{}", out.display()))
        .arg("--checkpoint-dir")
        .arg(&ck)
        .args(["--checkpoint-min-pause", "0s", "--report", "none"])
        // Both processes of the first execution die after their second commit.
        .env("SLUICE_FAIL_POINT", "after-commit:2")
        .output()
        .unwrap();
    let err = stderr(&run);
    assert!(run.status.success(), "{err}");
    assert!(
        err.lines().any(|l| l.contains("supervisor: process")
            && l.contains("restarting the mesh as execution 2 from checkpoint")),
        "{err}"
    );
    let mut rows = read_rows(&dir.path().join("out.jsonl.p0"));
    rows.extend(read_rows(&dir.path().join("out.jsonl.p1")));
    let expected = reference_q5(&generated_lines(1_200_000, &GeneratorConfig::default()));
    assert_eq!(canonical(&rows), canonical(&expected));
}
