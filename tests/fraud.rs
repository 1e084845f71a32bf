//! The fraud domain end to end through the `sluice` binary: generated transactions written with
//! `sluice gen`, the rules pipeline over the generator, over the file in order and disordered
//! within the watermark delay, at `-w 1`, `-w 2` and across two processes, against a batch
//! computation of the same rules written here independently (plain loops over each account's
//! transactions sorted by time); bad rows become dead letters, counted exactly.

mod common;

use common::free_port_pair;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Command, Output};

fn sluice(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sluice {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// The rows of `paths`, by id, without their `latency_ms` (wall clock: checked to be a
/// plausible figure, then dropped so rows compare with a reference).
fn rows(paths: &[&Path]) -> Vec<Value> {
    let mut v: Vec<Value> = paths
        .iter()
        .flat_map(|p| lines_of(p))
        .map(|l| {
            let mut row: Value = serde_json::from_str(&l).unwrap();
            if let Some(ms) = row.as_object_mut().unwrap().remove("latency_ms") {
                let ms = ms.as_f64().unwrap_or(-1.0);
                assert!((0.0..600_000.0).contains(&ms), "latency_ms {ms} in {l}");
            }
            row
        })
        .collect();
    v.sort_by_key(|r| r["id"].as_u64());
    v
}

/// Every alert of `path` states its ingest-to-alert latency.
fn assert_timed(path: &Path) {
    for line in lines_of(path) {
        let row: Value = serde_json::from_str(&line).unwrap();
        assert!(row["latency_ms"].is_f64(), "no latency_ms: {line}");
    }
}

/// Whether two rows are equal, numbers to 1e-9 relative (running and batch sums of the same
/// amounts differ in the last bits).
fn close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| close(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
        }
        _ => a == b,
    }
}

/// Asserts that `actual` rows equal `expected` ones (both sorted by id), naming the first that
/// differs.
fn assert_rows(actual: &[Value], expected: &[Value], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: row count");
    for (a, e) in actual.iter().zip(expected) {
        assert!(close(a, e), "{what}:\n  got      {a}\n  expected {e}");
    }
}

fn haversine(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (p1, p2) = (a.0.to_radians(), b.0.to_radians());
    let h = ((p2 - p1) / 2.0).sin().powi(2)
        + p1.cos() * p2.cos() * ((b.1 - a.1).to_radians() / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().min(1.0).asin()
}

/// The rules with their default parameters, over every account's transactions in (time, id)
/// order, recomputing each figure from the full history instead of keeping running state.
/// The rule settings the reference follows at a time (the rest are the defaults).
#[derive(Clone, Copy)]
struct RefRules {
    /// Velocity: more transactions than this in ten minutes fire.
    max_count: usize,
    /// Whether small-then-large is on.
    small_then_large: bool,
}

const DEFAULT_RULES: RefRules = RefRules {
    max_count: 8,
    small_then_large: true,
};

fn reference(lines: &[String]) -> Vec<Value> {
    reference_with(lines, &|_| DEFAULT_RULES)
}

/// The alerts, with the rule settings `rules_at(t)` for a transaction at `t`.
fn reference_with(lines: &[String], rules_at: &dyn Fn(u64) -> RefRules) -> Vec<Value> {
    let mut by_account: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap();
        if v["kind"] == "transaction" {
            by_account
                .entry(v["account"].as_u64().unwrap())
                .or_default()
                .push(v);
        }
    }
    let mut out = Vec::new();
    for txs in by_account.values_mut() {
        txs.sort_by_key(|t| (t["time"].as_u64().unwrap(), t["id"].as_u64().unwrap()));
        for (i, t) in txs.iter().enumerate() {
            let (time, amount) = (t["time"].as_u64().unwrap(), t["amount"].as_f64().unwrap());
            let settings = rules_at(time);
            let before = &txs[..i];
            let amounts: Vec<f64> = before
                .iter()
                .map(|b| b["amount"].as_f64().unwrap())
                .collect();
            let n = amounts.len() as f64;
            let mean = if amounts.is_empty() {
                0.0
            } else {
                amounts.iter().sum::<f64>() / n
            };
            let std_dev = if amounts.len() < 2 {
                0.0
            } else {
                (amounts.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n).sqrt()
            };
            let window: Vec<&Value> = before
                .iter()
                .filter(|b| b["time"].as_u64().unwrap() + 600_000 > time)
                .collect();
            let window_count = window.len() as u64 + 1;
            let window_sum: f64 = window
                .iter()
                .map(|b| b["amount"].as_f64().unwrap())
                .sum::<f64>()
                + amount;
            let small_before = before.iter().any(|b| {
                b["amount"].as_f64().unwrap() < 2.0 && b["time"].as_u64().unwrap() + 60_000 > time
            });
            let speed = if t["card_present"] == true {
                before
                    .iter()
                    .rev()
                    .find(|b| b["card_present"] == true)
                    .and_then(|b| {
                        let km = haversine(
                            (b["lat"].as_f64().unwrap(), b["lon"].as_f64().unwrap()),
                            (t["lat"].as_f64().unwrap(), t["lon"].as_f64().unwrap()),
                        );
                        let hours =
                            (time - b["time"].as_u64().unwrap()).max(1) as f64 / 3_600_000.0;
                        (km > 500.0).then_some(km / hours)
                    })
            } else {
                None
            };
            let mut rules = Vec::new();
            if settings.small_then_large && small_before && amount > 500.0 {
                rules.push(("small_then_large", 0.9));
            }
            if window_count > settings.max_count as u64 || window_sum > 3000.0 {
                rules.push(("velocity", 0.5));
            }
            if before.len() >= 10 && std_dev > 0.0 && (amount - mean) / std_dev > 4.0 {
                rules.push(("amount_anomaly", 0.6));
            }
            if speed.is_some_and(|s| s > 900.0) {
                rules.push(("impossible_travel", 0.9));
            }
            if before.len() >= 5 {
                if !before.iter().any(|b| b["country"] == t["country"]) {
                    rules.push(("new_country", 0.4));
                }
                let recent: Vec<&Value> = {
                    // The last 32 distinct merchants, most recent first.
                    let mut seen: Vec<&Value> = Vec::new();
                    for b in before.iter().rev() {
                        if !seen.contains(&&b["merchant"]) {
                            seen.push(&b["merchant"]);
                        }
                    }
                    seen.into_iter().take(32).collect()
                };
                if !recent.contains(&&t["merchant"]) {
                    rules.push(("new_merchant", 0.1));
                }
            }
            if rules.is_empty() || (rules.len() == 1 && rules[0].0 == "new_merchant") {
                continue;
            }
            let score = rules.iter().map(|r| r.1).sum::<f64>().min(1.0);
            out.push(json!({
                "id": t["id"], "account": t["account"], "time": time, "amount": amount,
                "rules": rules.iter().map(|r| r.0).collect::<Vec<_>>(), "score": score,
                "seen": {"count": before.len(), "mean": mean, "std_dev": std_dev,
                         "window_count": window_count, "window_sum": window_sum, "speed_kmh": speed},
            }));
        }
    }
    out.sort_by_key(|r| r["id"].as_u64());
    out
}

/// `lines` displaced by less than `max_ms` of event time each.
fn disorder(lines: &[String], max_ms: u64) -> Vec<String> {
    let time_of = |l: &str| {
        serde_json::from_str::<Value>(l).unwrap()["time"]
            .as_u64()
            .unwrap()
    };
    common::disorder_by(lines, max_ms, 0, time_of)
}

/// 200,000 generated records at 20 a second: 2.8 hours of traffic, labels from the first hour.
const EVENTS: &str = "200000";
const RATE: &str = "20";

/// The rows of `pipeline` run as two processes on loopback, reading `source` (flags).
fn two_processes(d: &Path, pipeline: &str, source: &[&str]) -> Vec<Value> {
    let port = free_port_pair().to_string();
    let out = d.join(format!("{pipeline}-two-{{process}}.jsonl"));
    let sink = format!("file:{}", out.display());
    let mut args = vec!["run", pipeline, "-n", "2", "--port", &port, "--sink", &sink];
    args.extend_from_slice(source);
    sluice(&args);
    let part = |i: usize| d.join(format!("{pipeline}-two-{i}.jsonl"));
    rows(&[&part(0), &part(1)])
}

/// Writes [`EVENTS`] generated records at [`RATE`] to `path`.
fn generate(path: &Path) {
    let path = path.to_str().unwrap();
    sluice(&[
        "gen", "fraud", "--events", EVENTS, "--rate", RATE, "-o", path,
    ]);
}

#[test]
fn rule_alerts_match_the_batch_reference_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = d.join("fraud.jsonl");
    generate(&file);
    let lines = lines_of(&file);
    assert_eq!(lines.len(), 200_000);
    let expected = reference(&lines);
    assert!(expected.len() > 200, "{} alerts", expected.len());
    let kinds: HashMap<&str, usize> = [
        "small_then_large",
        "velocity",
        "amount_anomaly",
        "impossible_travel",
        "new_country",
    ]
    .into_iter()
    .map(|k| {
        (
            k,
            expected
                .iter()
                .filter(|a| a["rules"].as_array().unwrap().contains(&json!(k)))
                .count(),
        )
    })
    .collect();
    assert!(
        kinds.values().all(|&n| n > 0),
        "every rule fires on generated data: {kinds:?}"
    );

    let shuffled = d.join("disordered.jsonl");
    std::fs::write(&shuffled, disorder(&lines, 3_000).join("\n") + "\n").unwrap();
    let generated = ["--source", "fraud", "--events", EVENTS, "--rate", RATE];
    let (file_arg, shuffled_arg) = (
        format!("file:{}", file.display()),
        format!("file:{}", shuffled.display()),
    );
    for (name, source, workers) in [
        ("generator-w1", &generated[..], "1"),
        ("generator-w2", &generated[..], "2"),
        ("file-w2", &["--source", file_arg.as_str()][..], "2"),
        (
            "disordered-w2",
            &["--source", shuffled_arg.as_str()][..],
            "2",
        ),
    ] {
        let out = d.join(format!("{name}.jsonl"));
        let sink = format!("file:{}", out.display());
        let mut args = vec!["run", "fraud_rules", "-w", workers, "--sink", sink.as_str()];
        args.extend_from_slice(source);
        sluice(&args);
        assert_timed(&out);
        assert_rows(&rows(&[&out]), &expected, name);
    }

    let both = two_processes(
        d,
        "fraud_rules",
        &["--source", "fraud", "--events", EVENTS, "--rate", RATE],
    );
    assert_rows(&both, &expected, "two processes");
}

#[test]
fn bad_and_late_transactions_are_dead_letters_counted_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = |id: u64, t: u64| {
        format!(
            r#"{{"kind":"transaction","id":{id},"time":{t},"account":1,"merchant":2,"amount":10.0,"currency":"EUR","lat":52.5,"lon":13.4,"country":"DE","channel":"pos","card_present":true}}"#
        )
    };
    let lines = [
        good(1, 1_000_000),
        r#"{"kind":"transaction","id":2,"time":1000100,"account":1}"#.to_string(),
        "not json".to_string(),
        good(3, 1_010_000),
        r#"{"kind":"label","id":1,"time":1010500,"account":1}"#.to_string(),
        good(4, 1_020_000),
        // 20 s behind the newest record: behind the watermark (4 s delay).
        good(5, 1_000_500),
        r#"{"kind":"rule","time":1030000,"rule":"speed","set":{"max_count":3}}"#.to_string(),
        r#"{"kind":"rule","time":1030000,"rule":"velocity","set":{"max":3}}"#.to_string(),
        // A rule change for a time the watermark has passed: it cannot apply exactly.
        r#"{"kind":"rule","time":1000600,"rule":"velocity","set":{"max_count":3}}"#.to_string(),
    ];
    let file = d.join("in.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let dead = d.join("dead.jsonl");
    let out = sluice(&[
        "run",
        "fraud_rules",
        "--source",
        &format!("file:{}", file.display()),
        "--dead-letter",
        dead.to_str().unwrap(),
        "--report",
        "json",
        "--sink",
        "null",
        "--batch",
        "1",
    ]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let letters = lines_of(&dead);
    let reasons: Vec<String> = letters
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["reason"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        reasons.iter().filter(|r| r.as_str() != "late").count(),
        5,
        "{letters:?}"
    );
    assert_eq!(
        reasons.iter().filter(|r| r.as_str() == "late").count(),
        2,
        "{letters:?}"
    );
    assert!(
        letters.iter().any(|l| l.contains("no rule \\\"speed\\\"")),
        "{letters:?}"
    );
    assert!(
        letters
            .iter()
            .any(|l| l.contains("publish changes ahead of their time")),
        "{letters:?}"
    );
    assert!(
        letters
            .iter()
            .any(|l| l.contains("not applied: rule velocity has no key")),
        "{letters:?}"
    );
    assert!(
        letters
            .iter()
            .any(|l| l.contains("transaction 2 has no amount")),
        "{letters:?}"
    );
    assert!(
        letters.iter().any(|l| l.contains("label 1 has no fraud")),
        "{letters:?}"
    );
    assert_eq!(report["late"], 2, "{report}");
}

#[test]
fn rule_changes_take_effect_exactly_at_their_event_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let generated = d.join("fraud.jsonl");
    generate(&generated);
    let lines = lines_of(&generated);
    let time = |l: &String| {
        serde_json::from_str::<Value>(l).unwrap()["time"]
            .as_u64()
            .unwrap()
    };
    let (first, last) = (time(&lines[0]), time(&lines[lines.len() - 1]));
    // Velocity tightened at one third (to the millisecond, not a stamp boundary); small then
    // large switched off at two thirds.
    let (t1, t2) = (
        first + (last - first) / 3 + 37,
        first + 2 * (last - first) / 3 + 11,
    );
    let rules_at = move |t: u64| RefRules {
        max_count: if t >= t1 { 3 } else { 8 },
        small_then_large: t < t2,
    };
    let changes = [
        (
            t1,
            r#"{"kind":"rule","time":T,"rule":"velocity","set":{"max_count":3}}"#,
        ),
        (
            t2,
            r#"{"kind":"rule","time":T,"rule":"small_then_large","set":{"enabled":false}}"#,
        ),
    ];
    let mut with_changes = Vec::new();
    let mut pending = changes.iter().peekable();
    for l in &lines {
        // Each change is read a little before its time, as a rules service would publish it.
        while let Some((t, _)) = pending.next_if(|(t, _)| time(l) + 1_000 >= *t) {
            let (_, text) = changes.iter().find(|(at, _)| at == t).unwrap();
            with_changes.push(text.replace('T', &t.to_string()));
        }
        with_changes.push(l.clone());
    }
    let expected = reference_with(&lines, &rules_at);
    let unchanged = reference(&lines);
    let differs = |a: &[Value], b: &[Value], from: u64, to: u64| {
        let pick = |v: &[Value]| -> Vec<Value> {
            v.iter()
                .filter(|r| (from..to).contains(&r["time"].as_u64().unwrap()))
                .cloned()
                .collect()
        };
        pick(a) != pick(b)
    };
    assert!(
        !differs(&expected, &unchanged, 0, t1),
        "the same before the first change"
    );
    assert!(
        differs(&expected, &unchanged, t1, t2),
        "the first change matters"
    );
    assert!(
        differs(&expected, &unchanged, t2, u64::MAX),
        "the second change matters"
    );

    let file = d.join("changes.jsonl");
    std::fs::write(&file, with_changes.join("\n") + "\n").unwrap();
    let shuffled = d.join("disordered.jsonl");
    std::fs::write(&shuffled, disorder(&with_changes, 3_000).join("\n") + "\n").unwrap();
    for (name, path, workers) in [("file-w1", &file, "1"), ("disordered-w2", &shuffled, "2")] {
        let out = d.join(format!("{name}.jsonl"));
        sluice(&[
            "run",
            "fraud_rules",
            "-w",
            workers,
            "--source",
            &format!("file:{}", path.display()),
            "--sink",
            &format!("file:{}", out.display()),
        ]);
        assert_rows(&rows(&[&out]), &expected, name);
    }
    let both = two_processes(
        d,
        "fraud_rules",
        &["--source", &format!("file:{}", shuffled.display())],
    );
    assert_rows(&both, &expected, "two processes");

    // The same first change as a rule book the run starts from: it holds from the beginning.
    let book = d.join("strict.toml");
    std::fs::write(&book, "[velocity]\nmax_count = 3\n").unwrap();
    let out = d.join("book.jsonl");
    sluice(&[
        "run",
        "fraud_rules",
        "-w",
        "2",
        "--source",
        &format!("file:{}", generated.display()),
        "--param",
        &format!("rules={}", book.display()),
        "--sink",
        &format!("file:{}", out.display()),
    ]);
    let strict = reference_with(&lines, &|_| RefRules {
        max_count: 3,
        small_then_large: true,
    });
    assert_rows(&rows(&[&out]), &strict, "rule book");
}

/// The model path, batch: transactions in (time, id) order through the library's rules and
/// features, scored with the model as it stands after learning every label of an earlier
/// 100 ms stamp; each stamp's labels learned in (time, id) order after its transactions are
/// scored. (The rules, features and learner are unit-tested on their own — the learner against
/// river's own scores; this checks the streaming: joins, order, stamps, versions.)
fn reference_scores(lines: &[String]) -> Vec<Value> {
    use sluice::fraud::features::features;
    use sluice::fraud::learner::Logistic;
    use sluice::fraud::model::FraudEvent;
    use sluice::fraud::rules::{Account, Rules};
    let stamp = |t: u64| t / 100 * 100;
    let mut events: Vec<FraudEvent> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e| !matches!(e, FraudEvent::Rule(_)))
        .collect();
    let order = |e: &FraudEvent| match e {
        FraudEvent::Transaction(t) => (stamp(t.time), 1, t.time, t.id),
        FraudEvent::Label(l) => (stamp(l.time), 0, l.time, l.id),
        FraudEvent::Rule(_) => unreachable!("filtered out"),
    };
    events.sort_by_key(order);
    let rules = Rules::default();
    let mut accounts: HashMap<u64, Account> = HashMap::new();
    let mut x_of: HashMap<u64, Vec<f64>> = HashMap::new();
    let mut model = Logistic::default();
    let mut out = Vec::new();
    let mut i = 0;
    while i < events.len() {
        let s = order(&events[i]).0;
        let mut j = i;
        let mut labels = Vec::new();
        while j < events.len() {
            match &events[j] {
                FraudEvent::Label(l) if stamp(l.time) == s => labels.push(l.clone()),
                FraudEvent::Transaction(t) if stamp(t.time) == s => {
                    let a = rules.assess(accounts.entry(t.account).or_default(), t);
                    let x = features(t, &a);
                    let p = model.score(&x);
                    // The model counts once it has learned 1,000 examples.
                    let risk = if model.learned >= 1_000 {
                        p.max(a.score)
                    } else {
                        a.score
                    };
                    let decision = if risk >= 0.85 {
                        "block"
                    } else if risk >= 0.5 {
                        "review"
                    } else {
                        "allow"
                    };
                    out.push(json!({
                        "id": t.id, "account": t.account, "time": t.time, "amount": t.amount,
                        "decision": decision, "risk": risk, "model_score": p, "rules_score": a.score,
                        "rules": a.rules, "model_examples": model.learned, "features": x,
                    }));
                    x_of.insert(t.id, x.to_vec());
                }
                _ => break,
            }
            j += 1;
        }
        labels.sort_by_key(|l| (l.time, l.id));
        for l in labels {
            let x = x_of
                .remove(&l.id)
                .expect("generated labels follow their transactions");
            model.learn(&x, l.fraud);
        }
        i = j;
    }
    out.sort_by_key(|r| r["id"].as_u64());
    out
}

#[test]
fn model_scores_match_the_batch_reference_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = d.join("fraud.jsonl");
    generate(&file);
    let lines = lines_of(&file);
    let expected = reference_scores(&lines);
    let transactions = lines
        .iter()
        .filter(|l| l.contains(r#""kind":"transaction""#))
        .count();
    assert_eq!(expected.len(), transactions);
    // The model learned: late transactions are scored by a model of many examples.
    let learned = expected
        .iter()
        .map(|r| r["model_examples"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(learned > 50_000, "the model learns: {learned} examples");
    let shuffled = d.join("disordered.jsonl");
    std::fs::write(&shuffled, disorder(&lines, 3_000).join("\n") + "\n").unwrap();
    let generated = ["--source", "fraud", "--events", EVENTS, "--rate", RATE];
    let shuffled_arg = format!("file:{}", shuffled.display());
    for (name, source, workers) in [
        ("generator-w1", &generated[..], "1"),
        ("generator-w2", &generated[..], "2"),
        (
            "disordered-w2",
            &["--source", shuffled_arg.as_str()][..],
            "2",
        ),
    ] {
        let out = d.join(format!("{name}.jsonl"));
        let sink = format!("file:{}", out.display());
        let mut args = vec![
            "run",
            "fraud_scores",
            "-w",
            workers,
            "--sink",
            sink.as_str(),
        ];
        args.extend_from_slice(source);
        sluice(&args);
        assert_rows(&rows(&[&out]), &expected, name);
    }
    let both = two_processes(
        d,
        "fraud_scores",
        &["--source", "fraud", "--events", EVENTS, "--rate", RATE],
    );
    assert_rows(&both, &expected, "two processes");
    // `fraud` keeps the decisions that are not `allow`.
    let out = d.join("decisions.jsonl");
    sluice(&[
        "run",
        "fraud",
        "-w",
        "2",
        "--sink",
        &format!("file:{}", out.display()),
        "--source",
        &format!("file:{}", file.display()),
    ]);
    let decided: Vec<Value> = expected
        .iter()
        .filter(|r| r["decision"] != "allow")
        .map(|r| {
            // `fraud` writes the decision without the features.
            let mut r = r.clone();
            r.as_object_mut().unwrap().remove("features");
            r
        })
        .collect();
    assert!(!decided.is_empty());
    assert_timed(&out);
    assert_rows(&rows(&[&out]), &decided, "fraud");
}

#[test]
fn labels_join_their_transactions_whatever_the_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tx = |id: u64, t: u64| {
        format!(
            r#"{{"kind":"transaction","id":{id},"time":{t},"account":1,"merchant":2,"amount":10.0,"currency":"EUR","lat":52.5,"lon":13.4,"country":"DE","channel":"pos","card_present":true}}"#
        )
    };
    let label = |id: u64, t: u64| {
        format!(r#"{{"kind":"label","id":{id},"time":{t},"account":1,"fraud":false}}"#)
    };
    let day = 86_400_000u64;
    let lines = [
        label(2, 1_000), // before its transaction
        tx(1, 2_000),
        tx(2, 3_000),
        label(1, 10_000),  // after it
        label(1, 11_000),  // a second label
        label(99, 12_000), // no such transaction
        tx(3, 20_000),     // scored after two examples were learned
        tx(4, 8 * day),    // the watermark passes label 99's wait
    ];
    let file = d.join("in.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let (dead, out) = (d.join("dead.jsonl"), d.join("out.jsonl"));
    sluice(&[
        "run",
        "fraud_scores",
        "--source",
        &format!("file:{}", file.display()),
        "--dead-letter",
        dead.to_str().unwrap(),
        "--sink",
        &format!("file:{}", out.display()),
    ]);
    let letters = lines_of(&dead);
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert!(
        letters
            .iter()
            .all(|l| l.contains(r#""reason":"unmatched""#)),
        "{letters:?}"
    );
    assert!(
        letters.iter().any(|l| l.contains("labelled already")),
        "{letters:?}"
    );
    assert!(
        letters.iter().any(|l| l.contains("no transaction 99")),
        "{letters:?}"
    );
    let scored: Vec<Value> = lines_of(&out)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let examples = |id: u64| {
        scored.iter().find(|r| r["id"] == id).unwrap()["model_examples"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(examples(1), 0);
    assert_eq!(examples(3), 2, "{scored:?}");
}

#[test]
fn pipeline_parameters_are_checked_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("rules.toml");
    std::fs::write(&book, "[velocity]\nmax_count = 3\nwindow_ms = 0\n").unwrap();
    for (args, says) in [
        (
            vec!["run", "fraud_rules", "--param", "rulez=x"],
            "pipeline fraud_rules has no parameter \"rulez\"; it takes: rules",
        ),
        (
            vec!["run", "q1", "--param", "rules=x"],
            "pipeline q1 takes no parameters",
        ),
        (
            vec!["run", "fraud", "--param", "thresholds=0.9,0.5"],
            "review 0.9 is above block 0.5",
        ),
        (
            vec!["run", "fraud", "--param", "nothing"],
            "expected NAME=VALUE",
        ),
        (
            vec!["gen", "fraud", "--accounts", "50"],
            "accounts: 50 is outside 100..=2^40",
        ),
        (
            vec!["run", "q1", "--merchants", "50"],
            "--merchants is not a setting of the nexmark generator",
        ),
        (vec!["run", "fraud", "--label-delay", "3"], "has no unit"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let param = format!("rules={}", book.display());
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "fraud_rules", "--param", &param])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("velocity.window_ms 0"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}
