//! MQTT end to end against a real broker — Mosquitto, started by `scripts/mosquitto.sh` on a
//! loopback port of each test's own: readings published to per-device topics give the same
//! fleet statistics as the same readings from a file (one worker, two workers, a shared
//! subscription), with the device and site taken from the topic; bad payloads and redelivered
//! messages are dead letters counted exactly; a broker restart in the middle of a feed loses
//! nothing and counts nothing twice; rows published to an MQTT sink arrive on topics rendered
//! from the rows; an unreachable broker and a checkpointed MQTT run are refused with one line.

mod common;

use common::*;
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// A Mosquitto broker of the test's own, stopped (and its state removed) when dropped.
struct Broker {
    port: u16,
}

fn script(action: &str, port: u16) -> String {
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mosquitto.sh"))
        .args([action, &port.to_string()])
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "scripts/mosquitto.sh {action} {port}: {}",
        stderr(&out)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Broker {
    fn start() -> Self {
        let port = free_port_pair();
        script("start", port);
        Broker { port }
    }

    /// Stops the broker and starts it again; sessions and queued messages are kept.
    fn restart(&self) {
        script("restart", self.port);
    }

    fn url(&self, path: &str) -> String {
        format!("mqtt://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        script("stop", self.port);
    }
}

/// Connects a test client; events go to the returned receiver (a thread drives the loop).
fn client(port: u16, id: &str) -> (Client, Receiver<Event>) {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut connection) = Client::new(options, 1024);
    let (send, events) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for event in connection.iter() {
            match event {
                Ok(e) => {
                    if send.send(e).is_err() {
                        return;
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    });
    (client, events)
}

/// Publishes `messages` at QoS 1 in order and waits until the broker acknowledged every one.
fn publish(port: u16, messages: &[(String, Vec<u8>)]) {
    let (client, events) = client(port, &format!("test-publisher-{}", std::process::id()));
    let publisher = client.clone();
    let to_send = messages.to_vec();
    std::thread::spawn(move || {
        for (topic, payload) in to_send {
            publisher
                .publish(topic, QoS::AtLeastOnce, false, payload)
                .unwrap();
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut acked = 0;
    while acked < messages.len() {
        match events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
            Ok(_) => {}
            Err(_) => panic!("{acked} of {} messages acknowledged", messages.len()),
        }
    }
    client.disconnect().unwrap();
}

/// A `sluice run` in the background, its stderr read line by line.
struct Running {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits until `count` stderr lines contain `text`.
    fn wait_for(&mut self, text: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.seen.iter().filter(|l| l.contains(text)).count() < count {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!("no {text:?} on stderr within 30 s: {:?}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the run ended before {text:?}: {:?}", self.seen)
                }
            }
        }
    }

    /// Waits for the run to end; returns its stderr.
    fn finish(mut self) -> String {
        let status = self.child.wait().unwrap();
        self.seen.extend(self.lines.iter());
        let text = self.seen.join("\n");
        assert!(status.success(), "the run failed: {text}");
        text
    }
}

/// Generated readings of 20 devices, 1,000 readings/s.
fn readings(dir: &Path, events: u64) -> Vec<String> {
    let path = dir.join("readings.jsonl");
    let out = sluice(&[
        "gen",
        "iot",
        "--devices",
        "20",
        "--rate",
        "1000",
        "--events",
        &events.to_string(),
        "-o",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// Each reading as a message on `prefix/sensors/{site}/{device}` whose payload lacks the site
/// and device (the topic carries them).
fn as_messages(prefix: &str, lines: &[String]) -> Vec<(String, Vec<u8>)> {
    lines
        .iter()
        .map(|l| {
            let mut v: serde_json::Map<String, Value> = serde_json::from_str(l).unwrap();
            let site = v.remove("site").unwrap();
            let device = v.remove("device").unwrap();
            let topic = format!(
                "{prefix}/sensors/{}/{}",
                site.as_str().unwrap(),
                device.as_str().unwrap()
            );
            (topic, serde_json::to_vec(&v).unwrap())
        })
        .collect()
}

/// Fleet statistics of `lines` read from a file: the reference the MQTT runs must match.
fn fleet_from_file(dir: &Path, lines: &[String]) -> Vec<String> {
    let input = write_lines(dir, "reference-in.jsonl", lines);
    let out = dir.join("reference-out.jsonl");
    let run = sluice(&[
        "run",
        "iot_fleet",
        "--source",
        &format!("file:{}", input.display()),
        "--sink",
        &format!("file:{}", out.display()),
        "--report",
        "none",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    sorted_lines(&out)
}

fn sorted_lines(path: &Path) -> Vec<String> {
    let mut rows: Vec<String> = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect();
    rows.sort();
    rows
}

fn report(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The arguments of an `iot_fleet` run from `prefix/sensors/#` that ends `idle` after the feed.
fn fleet_over_mqtt(
    broker: &Broker,
    prefix: &str,
    dir: &Path,
    idle: &str,
    extra: &[&str],
) -> Vec<String> {
    let out = dir.join(format!("{prefix}-rows.jsonl"));
    let mut args: Vec<String> = [
        "run",
        "iot_fleet",
        "--source",
        &broker.url(&format!("{prefix}/sensors/#")),
        "--mqtt-topic-fields",
        &format!("{prefix}/sensors/{{site}}/{{device}}"),
        "--mqtt-client-id",
        &format!("sluice-test-{prefix}"),
        "--mqtt-until-idle",
        idle,
        "--sink",
        &format!("file:{}", out.display()),
        "--dead-letter",
        &format!("{}", dir.join(format!("{prefix}-dead.jsonl")).display()),
        "--report-file",
        &format!("{}", dir.join(format!("{prefix}-report.json")).display()),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn dead_letter_counts(dir: &Path, prefix: &str) -> Value {
    report(&dir.join(format!("{prefix}-report.json")))["dead_letters"].clone()
}

#[test]
fn readings_over_mqtt_match_the_file_source_with_bad_and_redelivered_messages_counted() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let lines = readings(dir.path(), 30_000);
    let reference = fleet_from_file(dir.path(), &lines);
    assert!(reference.len() > 50);
    for (prefix, extra) in [
        ("one", vec![]),
        ("two", vec!["-w", "2"]),
        ("shared", vec!["-w", "2", "--mqtt-group", "fleet"]),
    ] {
        let args = fleet_over_mqtt(&broker, prefix, dir.path(), "3s", &extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut run = Running::start(&args);
        let subscribers = if prefix == "shared" { 2 } else { 1 };
        run.wait_for("subscribed to", subscribers);
        let mut messages = as_messages(prefix, &lines);
        let bad_topic = format!("{prefix}/sensors/site-1/dev-00001");
        let mut bad: Vec<(String, Vec<u8>)> = Vec::new();
        for i in 0..3 {
            bad.push((bad_topic.clone(), format!("{{oops {i}").into_bytes()));
        }
        for i in 0..2 {
            bad.push((
                bad_topic.clone(),
                format!(r#"{{"time":"soon {i}"}}"#).into_bytes(),
            ));
        }
        // The topic has a level too many for the template.
        bad.push((format!("{bad_topic}/extra"), messages[0].1.clone()));
        // Redeliveries (a publisher retrying): identical topic and payload.
        let again: Vec<(String, Vec<u8>)> = messages[1000..1005].to_vec();
        let tail = messages.split_off(1010);
        messages.extend(bad);
        if prefix != "shared" {
            // Shared subscriptions may hand a publisher's duplicate to another worker.
            messages.extend(again);
        }
        messages.extend(tail);
        publish(broker.port, &messages);
        let log = run.finish();
        let rows = sorted_lines(&dir.path().join(format!("{prefix}-rows.jsonl")));
        assert_eq!(rows.len(), reference.len(), "{prefix}: {log}");
        assert!(
            rows == reference,
            "{prefix}: the rows differ from the file run's"
        );
        let dead = dead_letter_counts(dir.path(), prefix);
        assert_eq!(dead["malformed_json"], 3, "{prefix}: {dead}");
        assert_eq!(dead["invalid_event"], 3, "{prefix}: {dead}");
        let duplicates = if prefix == "shared" { 0 } else { 5 };
        assert_eq!(dead["duplicate"], duplicates, "{prefix}: {dead}");
        let letters: Vec<Value> = read_rows(&dir.path().join(format!("{prefix}-dead.jsonl")));
        assert!(letters.iter().all(|d| d["origin"]["mqtt_topic"]
            .as_str()
            .unwrap()
            .starts_with(prefix)));
    }
}

#[test]
fn a_broker_restart_loses_nothing_and_counts_nothing_twice() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let lines = readings(dir.path(), 20_000);
    let reference = fleet_from_file(dir.path(), &lines);
    let args = fleet_over_mqtt(&broker, "restart", dir.path(), "6s", &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut run = Running::start(&args);
    run.wait_for("subscribed to", 1);
    let messages = as_messages("restart", &lines);
    let (first, second) = messages.split_at(10_000);
    publish(broker.port, first);
    // Whatever the broker still holds for the run's session (queued, or sent and not yet
    // acknowledged) is saved and delivered after the restart.
    broker.restart();
    run.wait_for("connected again", 1);
    let mut rest: Vec<(String, Vec<u8>)> = first[9_900..].to_vec();
    rest.extend_from_slice(second);
    publish(broker.port, &rest);
    let log = run.finish();
    let rows = sorted_lines(&dir.path().join("restart-rows.jsonl"));
    assert_eq!(rows.len(), reference.len(), "{log}");
    assert!(
        rows == reference,
        "the rows differ from the file run's: {log}"
    );
    let dead = dead_letter_counts(dir.path(), "restart");
    // The 100 republished messages, and any the broker redelivered itself.
    assert!(dead["duplicate"].as_u64().unwrap() >= 100, "{dead}");
    assert_eq!(dead["malformed_json"], 0);
}

#[test]
fn rows_are_published_to_topics_rendered_from_them() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let lines = readings(dir.path(), 10_000);
    let reference = fleet_from_file(dir.path(), &lines);
    let (subscriber, events) = client(broker.port, "test-subscriber");
    subscriber.subscribe("fleet/#", QoS::AtLeastOnce).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Event::Incoming(Packet::SubAck(_))) => break,
            Ok(_) => {}
            Err(e) => panic!("no SubAck: {e}"),
        }
    }
    let input = dir.path().join("reference-in.jsonl");
    let out = sluice(&[
        "run",
        "iot_fleet",
        "--source",
        &format!("file:{}", input.display()),
        "--sink",
        &broker.url("fleet/{site}/{metric}"),
        "--report",
        "none",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut got = Vec::new();
    while got.len() < reference.len() {
        match events.recv_timeout(Duration::from_secs(10)) {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let row: Value = serde_json::from_slice(&p.payload).unwrap();
                let topic = format!(
                    "fleet/{}/{}",
                    row["site"].as_str().unwrap(),
                    row["metric"].as_str().unwrap()
                );
                assert_eq!(p.topic, topic);
                got.push(String::from_utf8(p.payload.to_vec()).unwrap());
            }
            Ok(_) => {}
            Err(e) => panic!("{} of {} rows arrived: {e}", got.len(), reference.len()),
        }
    }
    got.sort();
    assert!(
        got == reference,
        "the published rows differ from the file run's"
    );
}

#[test]
fn an_unreachable_broker_and_a_checkpointed_mqtt_run_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port_pair();
    let source = format!("mqtt://127.0.0.1:{port}/sensors/#");
    let out = sluice(&[
        "run",
        "iot_fleet",
        "--source",
        &source,
        "--mqtt-timeout",
        "1s",
        "--sink",
        "null",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let error: Vec<String> = stderr(&out)
        .lines()
        .filter(|l| l.contains("error"))
        .map(String::from)
        .collect();
    assert!(
        error.iter().any(|l| l.contains("MQTT broker 127.0.0.1")),
        "{error:?}"
    );
    let checkpoints: PathBuf = dir.path().join("ck");
    let out = sluice(&[
        "run",
        "iot_fleet",
        "--source",
        &source,
        "--sink",
        "null",
        "--checkpoint-dir",
        checkpoints.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("keeps no history"),
        "{}",
        stderr(&out)
    );
    let out = sluice(&[
        "run",
        "iot_fleet",
        "--source",
        "mqtt://127.0.0.1/a/#/b",
        "--sink",
        "null",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = sluice(&[
        "run",
        "iot_fleet",
        "--mqtt-until-idle",
        "1s",
        "--sink",
        "null",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("applies only to an MQTT source"));
}
