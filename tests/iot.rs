//! The IoT pipelines against straightforward batch computations over the same readings: offline
//! and recovered devices (silences cut into generated readings), fleet statistics in tumbling and
//! sliding windows, anomaly scores, change points, early warnings (a degradation written into a
//! device's vibration), stuck sensors and the monitor that runs them together — in order,
//! disordered within the watermark delay, on two workers and two processes — and bad and late
//! readings as dead letters counted exactly.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Generated readings: 20 devices at 1,000 readings/s (each device every 60 ms) for 90 s.
const DEVICES: &str = "20";
const RATE: &str = "1000";
const EVENTS: &str = "90000";
/// The offline timeout the tests run with.
const TIMEOUT_MS: u64 = 2_000;

fn ok(args: &[&str]) -> std::process::Output {
    let out = sluice(args);
    assert!(out.status.success(), "sluice {args:?}: {}", stderr(&out));
    out
}

/// Generated readings with silences cut in: `(device, from, to)` offsets from the first reading,
/// ms; a `to` of `u64::MAX` silences the device to the end.
fn readings(dir: &Path, silences: &[(&str, u64, u64)]) -> Vec<String> {
    let path = dir.join("generated.jsonl");
    ok(&[
        "gen",
        "iot",
        "--devices",
        DEVICES,
        "--rate",
        RATE,
        "--events",
        EVENTS,
        "-o",
        path.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<String> = text.lines().map(String::from).collect();
    let base = time_field(&lines[0]);
    lines
        .into_iter()
        .filter(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let offset = v["time"].as_u64().unwrap() - base;
            !silences
                .iter()
                .any(|(device, from, to)| v["device"] == *device && (*from..*to).contains(&offset))
        })
        .collect()
}

/// The offline/recovered alerts of `lines`, computed from each device's reading times; a
/// trailing silence counts when it ends before `end` (every worker holds readings up to there).
fn reference_offline(lines: &[String], end: u64) -> Vec<Value> {
    let mut devices: BTreeMap<String, (Value, Vec<u64>)> = BTreeMap::new();
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap();
        let entry = devices
            .entry(v["device"].as_str().unwrap().to_string())
            .or_insert_with(|| (v.clone(), Vec::new()));
        entry.1.push(v["time"].as_u64().unwrap());
    }
    let mut out = Vec::new();
    for (device, (first, mut times)) in devices {
        times.sort_unstable();
        let alert = |status: &str, time: u64, last: u64, silent: Option<u64>| {
            json!({"device": device, "site": first["site"], "model": first["model"],
                   "status": status, "time": time, "last_seen": last, "silent_ms": silent})
        };
        for w in times.windows(2) {
            if w[1] - w[0] >= TIMEOUT_MS {
                out.push(alert("offline", w[0] + TIMEOUT_MS, w[0], None));
                out.push(alert("recovered", w[1], w[0], Some(w[1] - w[0])));
            }
        }
        let last = *times.last().unwrap();
        if last + TIMEOUT_MS < end {
            out.push(alert("offline", last + TIMEOUT_MS, last, None));
        }
    }
    out
}

/// Per (site, model, metric) and window `[k·slide, k·slide + size)`: readings, mean, standard
/// deviation, min, max — from every reading, in one pass per window.
fn reference_fleet(lines: &[String], size: u64, slide: u64) -> Vec<Value> {
    type Key = (String, String, String, u64);
    let mut windows: BTreeMap<Key, Vec<f64>> = BTreeMap::new();
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap();
        let t = v["time"].as_u64().unwrap();
        let s = |k: &str| v[k].as_str().unwrap().to_string();
        // Every window start k·slide with start ≤ t < start + size.
        let mut start = (t / slide) * slide;
        while start + size > t {
            windows
                .entry((s("site"), s("model"), s("metric"), start))
                .or_default()
                .push(v["value"].as_f64().unwrap());
            if start < slide {
                break;
            }
            start -= slide;
        }
    }
    windows
        .into_iter()
        .map(|((site, model, metric, start), xs)| {
            let n = xs.len() as f64;
            let mean = xs.iter().sum::<f64>() / n;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
            json!({"site": site, "model": model, "metric": metric, "window_start": start,
                   "window_end": start + size, "readings": xs.len(), "mean": mean,
                   "std_dev": var.sqrt(),
                   "min": xs.iter().copied().fold(f64::INFINITY, f64::min),
                   "max": xs.iter().copied().fold(f64::NEG_INFINITY, f64::max)})
        })
        .collect()
}

/// Rows sorted by their text with numbers rounded to 6 significant digits (sums in another
/// order differ in the last bits).
fn rounded(rows: &[Value]) -> Vec<String> {
    fn round(v: &Value) -> Value {
        match v {
            Value::Number(n) if n.is_f64() => {
                let x = n.as_f64().unwrap();
                json!(format!("{x:.6e}"))
            }
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), round(v))).collect())
            }
            other => other.clone(),
        }
    }
    let mut v: Vec<String> = rows.iter().map(|r| round(r).to_string()).collect();
    v.sort();
    v
}

/// Runs `pipeline` (with `args`) over `lines` in order on one worker, disordered within the
/// watermark delay on two, and on two processes; each time its rows must be `expected`'s.
fn assert_everywhere(
    d: &Path,
    pipeline: &str,
    args: &[&str],
    lines: &[String],
    expected: &[Value],
) {
    assert_pipeline_everywhere(d, pipeline, args, lines, expected, canonical);
}

#[test]
fn offline_devices_match_the_batch_reference_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let silences = [
        ("dev-00003", 10_000, 25_000), // one episode
        ("dev-00007", 40_000, 41_500), // shorter than the timeout: none
        ("dev-00011", 20_000, 30_000), // two episodes
        ("dev-00011", 50_000, 60_000),
        ("dev-00019", 80_000, u64::MAX), // silent to the end: offline, never back
    ];
    let lines = readings(d, &silences);
    let base = time_field(&lines[0]);
    let end = lines.iter().map(|l| time_field(l)).max().unwrap();
    let expected = reference_offline(&lines, end);
    assert_eq!(expected.len(), 2 + 4 + 1, "{expected:#?}");
    // No silence ends near the end, where workers' latest readings differ.
    assert!(expected
        .iter()
        .all(|a| a["time"].as_u64().unwrap() + 1_000 < end));
    assert!(expected.iter().all(|a| a["time"].as_u64().unwrap() > base));
    let timeout = format!("offline_after={TIMEOUT_MS}ms");
    assert_everywhere(d, "iot_offline", &["--param", &timeout], &lines, &expected);
}

#[test]
fn fleet_statistics_match_the_batch_reference_tumbling_and_sliding() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lines = readings(d, &[]);
    let file = write_lines(d, "readings.jsonl", &lines);
    let disordered = write_lines(
        d,
        "disordered.jsonl",
        &disorder_by(&lines, 3_000, 7, time_field),
    );
    for (size, slide) in [(10_000, 10_000), (10_000, 5_000)] {
        let expected = rounded(&reference_fleet(&lines, size, slide));
        let (w, s) = (format!("window={size}ms"), format!("slide={slide}ms"));
        for (name, input, workers, processes) in [
            ("in-order-w1", &file, "1", 1),
            ("disordered-w2", &disordered, "2", 1),
            ("two-processes", &file, "1", 2),
        ] {
            let args = ["--param", &w, "--param", &s, "-w", workers];
            let tag = format!("fleet-{slide}-{name}");
            let got = run_pipeline(d, &tag, "iot_fleet", input, &args, processes);
            assert_eq!(rounded(&got), expected, "{tag}");
        }
    }
}

#[test]
fn bad_readings_are_dead_letters_counted_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut lines = readings(d, &[]);
    lines.truncate(3_000);
    let t = time_field(&lines[100]);
    let bad = [
        format!(r#"{{"time":{t},"device":"dev-x","site":"s","model":"m","metric":"temperature"}}"#),
        format!(
            r#"{{"time":{t},"device":"dev-x","site":"s","model":"m","metric":"temperature","value":"hot"}}"#
        ),
        "not json".to_string(),
    ];
    for (i, b) in bad.iter().enumerate() {
        lines.insert(200 + 500 * i, b.clone());
    }
    let (rows, dead) = with_dead_letters(d, "bad", "iot_fleet", &lines);
    let mut reasons: HashMap<String, usize> = HashMap::new();
    for letter in dead {
        *reasons
            .entry(letter["reason"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(reasons.values().sum::<usize>(), 3, "{reasons:?}");
    let kept: u64 = rows
        .iter()
        .filter(|r| r["window_start"].as_u64().is_some())
        .map(|r| r["readings"].as_u64().unwrap())
        .sum();
    assert_eq!(kept, 3_000, "every good reading is counted once");
}

/// A reading as the references see it: time, metric, value, fault.
type Row = (u64, String, f64, Option<String>);

/// Each device's first reading and its readings in (time, metric) order.
fn per_device(lines: &[String]) -> BTreeMap<String, (Value, Vec<Row>)> {
    let mut devices: BTreeMap<String, (Value, Vec<Row>)> = BTreeMap::new();
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap();
        let entry = devices
            .entry(v["device"].as_str().unwrap().to_string())
            .or_insert_with(|| (v.clone(), Vec::new()));
        entry.1.push((
            v["time"].as_u64().unwrap(),
            v["metric"].as_str().unwrap().to_string(),
            v["value"].as_f64().unwrap(),
            v["fault"].as_str().map(String::from),
        ));
    }
    for (_, readings) in devices.values_mut() {
        readings.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    }
    devices
}

/// Every sample's score, computed per device in (time, metric) order with the library's
/// scaler and trees: the samples a batch program would build, scored before learned.
fn reference_scores(lines: &[String]) -> Vec<Value> {
    use sluice::iot::anomaly::{HEIGHT, TREES};
    use sluice::iot::hst::{Forest, Masses, MinMax};
    let metrics = ["temperature", "vibration", "pressure"];
    let forest = Forest::new(metrics.len(), TREES, HEIGHT, 42);
    let mut out = Vec::new();
    for (device, (_, readings)) in per_device(lines) {
        let (mut scaler, mut masses) = (MinMax::default(), Masses::new(&forest, 250));
        let mut last = vec![0.0; metrics.len()];
        let mut scaled = Vec::new();
        for sample in readings.chunk_by(|a, b| a.0 == b.0) {
            for (_, metric, value, _) in sample {
                last[metrics.iter().position(|m| m == metric).unwrap()] = *value;
            }
            scaler.scale(&last, &mut scaled);
            let score = masses.score(&forest, &scaled);
            scaler.learn(&last);
            scaler.scale(&last, &mut scaled);
            masses.learn(&forest, &scaled);
            let fault = sample.iter().find_map(|r| r.3.clone());
            out.push(
                json!({"device": device, "time": sample[0].0, "score": score, "fault": fault}),
            );
        }
    }
    out
}

#[test]
fn anomaly_scores_match_the_batch_reference_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lines = readings(d, &[]);
    let expected = reference_scores(&lines);
    assert_eq!(expected.len(), lines.len() / 3);
    assert!(expected.iter().any(|r| r["score"].as_f64().unwrap() > 0.5));
    assert_everywhere(d, "iot_scores", &[], &lines, &expected);
    // Readings of a metric the model does not take are dead letters, counted exactly.
    let mut odd = lines[..3_000].to_vec();
    let t = time_field(&odd[10]);
    odd.push(format!(
        r#"{{"time":{t},"device":"dev-00001","site":"s","model":"m","metric":"humidity","value":40.0}}"#
    ));
    let (rows, dead) = with_dead_letters(d, "odd", "iot_scores", &odd);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["reason"], "invalid_event");
    assert_eq!(rows.len(), 1_000);
}

/// Every device's changes, from its samples in (time, metric) order through the library's
/// detector: what a batch program would find.
fn reference_changes(lines: &[String]) -> Vec<Value> {
    use sluice::iot::bocpd::{ChangeDetector, LAMBDA};
    let metrics = ["temperature", "vibration", "pressure"];
    let mut out = Vec::new();
    for (device, (first, readings)) in per_device(lines) {
        let mut detector = ChangeDetector::default();
        let (mut last, mut times) = (vec![0.0; metrics.len()], Vec::new());
        for sample in readings.chunk_by(|a, b| a.0 == b.0) {
            for (_, metric, value, _) in sample {
                last[metrics.iter().position(|m| m == metric).unwrap()] = *value;
            }
            times.push(sample[0].0);
            if let Some(c) = detector.step(&last, LAMBDA) {
                out.push(
                    json!({"device": device, "site": first["site"], "model": first["model"],
                                "time": times[c.start as usize], "detected_at": sample[0].0}),
                );
            }
        }
    }
    out
}

#[test]
fn change_points_match_the_batch_reference_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Two devices change regime: temperature up 10 °C after 40 s, pressure down after 60 s.
    let mut lines = readings(d, &[]);
    let base = time_field(&lines[0]);
    for line in &mut lines {
        let mut v: Value = serde_json::from_str(line).unwrap();
        let offset = v["time"].as_u64().unwrap() - base;
        let shift = match (v["device"].as_str().unwrap(), v["metric"].as_str().unwrap()) {
            ("dev-00005", "temperature") if offset >= 40_000 => 10.0,
            ("dev-00012", "pressure") if offset >= 60_000 => -1.0,
            _ => continue,
        };
        v["value"] = json!(v["value"].as_f64().unwrap() + shift);
        *line = v.to_string();
    }
    let expected = reference_changes(&lines);
    for (device, at) in [("dev-00005", 40_000), ("dev-00012", 60_000)] {
        assert!(
            expected
                .iter()
                .any(|c| c["device"] == device
                    && c["time"].as_u64().unwrap().abs_diff(base + at) <= 200),
            "{device}: {expected:#?}"
        );
    }
    assert_everywhere(d, "iot_changes", &[], &lines, &expected);
}

/// `lines` with two faults written in: dev-00005's vibration rises towards four times its
/// level from 30 s to 60 s and is back to normal after (a repair), dev-00009's pressure is
/// stuck from 20 s to 35 s; dev-00002's temperature repeats a value 20 times (too few).
fn with_faults(lines: &mut [String]) {
    let base = time_field(&lines[0]);
    let mut frozen: HashMap<&str, f64> = HashMap::new();
    for line in lines.iter_mut() {
        let mut v: Value = serde_json::from_str(line).unwrap();
        let offset = v["time"].as_u64().unwrap() - base;
        let value = v["value"].as_f64().unwrap();
        let key = match (v["device"].as_str().unwrap(), v["metric"].as_str().unwrap()) {
            ("dev-00005", "vibration") if (30_000..60_000).contains(&offset) => {
                let x = (offset - 30_000) as f64 / 30_000.0;
                v["value"] = json!(value * (1.0 + 3.0 * x * x));
                *line = v.to_string();
                continue;
            }
            ("dev-00009", "pressure") if (20_000..35_000).contains(&offset) => "dev-00009",
            ("dev-00002", "temperature") if (20_000..21_200).contains(&offset) => "dev-00002",
            _ => continue,
        };
        v["value"] = json!(*frozen.entry(key).or_insert(value));
        *line = v.to_string();
    }
}

/// Early warnings of each device's vibration, computed from scratch: the baseline of its first
/// 200 readings, the least-squares line through its latest 64, a warning when the line is 8 σ
/// above the baseline, rising, and reaches 4 × the baseline within the hour; cleared under 3 σ.
fn reference_warnings(lines: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    for (device, (first, readings)) in per_device(lines) {
        let mut vib: Vec<(u64, f64)> = readings
            .iter()
            .filter(|r| r.1 == "vibration")
            .map(|r| (r.0, r.2))
            .collect();
        vib.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let calibration: Vec<f64> = vib.iter().take(200).map(|r| r.1).collect();
        let mut warned = false;
        // The baseline is set and the window full from the 200th reading on.
        for i in 199..vib.len() {
            let n = calibration.len().min(i + 1) as f64;
            let mean = calibration[..n as usize].iter().sum::<f64>() / n;
            let sd = (calibration[..n as usize]
                .iter()
                .map(|x| (x - mean).powi(2))
                .sum::<f64>()
                / (n - 1.0))
                .sqrt();
            let window = &vib[i + 1 - 64..=i];
            let t0 = window[0].0;
            let mt = window.iter().map(|r| (r.0 - t0) as f64).sum::<f64>() / 64.0;
            let mv = window.iter().map(|r| r.1).sum::<f64>() / 64.0;
            let stt: f64 = window
                .iter()
                .map(|r| ((r.0 - t0) as f64 - mt).powi(2))
                .sum();
            let stv: f64 = window
                .iter()
                .map(|r| ((r.0 - t0) as f64 - mt) * (r.1 - mv))
                .sum();
            let slope = stv / stt;
            let level = mv + slope * ((vib[i].0 - t0) as f64 - mt);
            let row = |status: &str, predicted: Option<u64>| {
                json!({"device": device, "site": first["site"], "model": first["model"],
                       "status": status, "time": vib[i].0, "metric": "vibration", "level": level,
                       "baseline": mean, "failure_level": 4.0 * mean,
                       "predicted_failure": predicted})
            };
            if !warned && level > mean + 8.0 * sd && slope > 0.0 {
                let ahead = ((4.0 * mean - level) / slope).max(0.0);
                if ahead <= 3_600_000.0 {
                    out.push(row("warning", Some(vib[i].0 + ahead.round() as u64)));
                    warned = true;
                }
            } else if warned && level < mean + 3.0 * sd {
                out.push(row("cleared", None));
                warned = false;
            }
        }
    }
    out
}

/// Stuck sensors computed from scratch: runs of equal values per device and metric, an alert
/// at the 30th, `recovered` at the first different value.
fn reference_stuck(lines: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    for (device, (first, readings)) in per_device(lines) {
        let mut by_metric: BTreeMap<String, Vec<(u64, f64)>> = BTreeMap::new();
        for r in &readings {
            by_metric.entry(r.1.clone()).or_default().push((r.0, r.2));
        }
        for (metric, values) in by_metric {
            let mut start = 0;
            for i in 1..=values.len() {
                if i < values.len() && values[i].1 == values[start].1 {
                    continue;
                }
                let repeats = i - start;
                if repeats >= 30 {
                    let alert = |status: &str, time: u64, repeats: Option<usize>| {
                        json!({"device": device, "site": first["site"], "model": first["model"],
                               "status": status, "time": time, "metric": metric,
                               "value": values[start].1, "since": values[start].0,
                               "repeats": repeats})
                    };
                    out.push(alert("stuck", values[start + 29].0, None));
                    if i < values.len() {
                        out.push(alert("recovered", values[i].0, Some(repeats)));
                    }
                }
                start = i;
            }
        }
    }
    out
}

#[test]
fn early_warnings_and_stuck_sensors_match_the_batch_reference_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut lines = readings(d, &[]);
    with_faults(&mut lines);
    let base = time_field(&lines[0]);
    let warnings = reference_warnings(&lines);
    let statuses: Vec<(&str, &str)> = warnings
        .iter()
        .map(|w| (w["device"].as_str().unwrap(), w["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        vec![("dev-00005", "warning"), ("dev-00005", "cleared")],
        "{warnings:#?}"
    );
    let warned = warnings[0]["time"].as_u64().unwrap() - base;
    assert!((30_000..60_000).contains(&warned), "{warned}");
    assert_pipeline_everywhere(d, "iot_warning", &[], &lines, &warnings, rounded);
    let stuck = reference_stuck(&lines);
    assert_eq!(stuck.len(), 2, "{stuck:#?}");
    assert!(stuck.iter().all(|s| s["device"] == "dev-00009"));
    assert_everywhere(d, "iot_stuck", &[], &lines, &stuck);
}

#[test]
fn the_monitor_is_its_detectors_together_and_a_late_reading_one_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut lines = readings(d, &[("dev-00003", 10_000, 25_000)]);
    with_faults(&mut lines);
    let end = lines.iter().map(|l| time_field(l)).max().unwrap();
    let tagged = |kind: &str, rows: Vec<Value>| -> Vec<Value> {
        rows.into_iter()
            .map(|mut r| {
                r.as_object_mut()
                    .unwrap()
                    .insert("kind".into(), json!(kind));
                r
            })
            .collect()
    };
    let mut expected = tagged("offline", reference_offline(&lines, end));
    expected.extend(tagged("warning", reference_warnings(&lines)));
    expected.extend(tagged("stuck", reference_stuck(&lines)));
    let args = [
        "--param",
        "detectors=offline,warning,stuck",
        "--param",
        "offline_after=2s",
    ];
    assert_pipeline_everywhere(d, "iot", &args, &lines, &expected, rounded);
    // One late reading (a minute behind) is one dead letter, though three detectors see it.
    let mut late = lines[..6_000].to_vec();
    let t = time_field(&late[5_990]) - 60_000;
    late.push(format!(
        r#"{{"time":{t},"device":"dev-00001","site":"s","model":"m","metric":"pressure","value":2.0}}"#
    ));
    let file = write_lines(d, "late.jsonl", &late);
    let letters = d.join("late-dead.jsonl");
    ok(&[
        "run",
        "iot",
        "--source",
        &format!("file:{}", file.display()),
        "--sink",
        "null",
        "--param",
        "detectors=offline,warning,stuck",
        "--dead-letter",
        letters.to_str().unwrap(),
    ]);
    let dead = read_rows(&letters);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["reason"], "late");
}
