//! The recommendation pipelines against straightforward batch computations over the same
//! behaviours: per-user top-k recommendations (with items pushed out of the recent window and
//! idle users retired), similar items, trending items and customer features — in order,
//! disordered within the watermark delay, on two workers and two processes — the rating model
//! the same everywhere, and bad and late behaviours as dead letters counted exactly.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::Path;

const STAMP: u64 = 100;

/// 20,000 generated behaviours of 150 users on 200 items at 1,000 a second.
fn behaviours(dir: &Path) -> Vec<String> {
    generated_behaviours(dir, "generated.jsonl", 20_000).1
}

/// `item` becomes the newest of a user's distinct items, the oldest dropped beyond `cap`.
fn touch(q: &mut VecDeque<u64>, item: u64, cap: usize) {
    if let Some(at) = q.iter().position(|i| *i == item) {
        q.remove(at);
    }
    q.push_back(item);
    if q.len() > cap {
        q.pop_front();
    }
}

/// The small settings the recommendation tests run with (short windows and lists, so items
/// leave them often).
const SMALL: [&str; 8] = [
    "--param",
    "history=5",
    "--param",
    "seen=12",
    "--param",
    "neighbours=6",
    "--param",
    "k=4",
];

struct Event {
    time: u64,
    user: u64,
    item: u64,
    action: u8,
    value: f64,
}

fn events(lines: &[String]) -> Vec<Event> {
    lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let action = match v["action"].as_str().unwrap() {
                "view" => 0,
                "cart" => 1,
                "purchase" => 2,
                _ => 3,
            };
            Event {
                time: v["time"].as_u64().unwrap(),
                user: v["user"].as_u64().unwrap(),
                item: v["item"].as_u64().unwrap(),
                action,
                value: v["value"].as_f64().unwrap_or(0.0),
            }
        })
        .collect()
}

/// The recommendations, recomputed from scratch for every user whose recent items changed, at
/// every stamp and retirement, in time order.
fn reference_recommend(
    lines: &[String],
    history: usize,
    seen: usize,
    m: usize,
    k: usize,
    idle: u64,
) -> Vec<Value> {
    let mut by_stamp: BTreeMap<u64, Vec<&Event>> = BTreeMap::new();
    let all = events(lines);
    for e in &all {
        by_stamp.entry(e.time - e.time % STAMP).or_default().push(e);
    }
    let mut items: HashMap<u64, VecDeque<u64>> = HashMap::new();
    let mut last: HashMap<u64, u64> = HashMap::new();
    let mut lists: HashMap<u64, Vec<(u64, i64)>> = HashMap::new();
    let recent = |q: &VecDeque<u64>| -> BTreeSet<u64> {
        q.iter()
            .skip(q.len().saturating_sub(history))
            .copied()
            .collect()
    };
    let end = *by_stamp.keys().last().unwrap();
    let mut times: BTreeSet<u64> = by_stamp.keys().copied().collect();
    let mut rows = Vec::new();
    while let Some(t) = times.pop_first() {
        let mut changed: BTreeSet<u64> = BTreeSet::new();
        // Retirements first.
        let due: Vec<u64> = last
            .iter()
            .filter(|(_, l)| **l + idle == t)
            .map(|(u, _)| *u)
            .collect();
        for u in due {
            last.remove(&u);
            let before = recent(&items[&u]);
            items.remove(&u);
            if !before.is_empty() {
                changed.insert(u);
            }
        }
        let mut stamp: Vec<&&Event> = by_stamp
            .get(&t)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        stamp.sort_by_key(|e| (e.user, e.time, e.item, e.action));
        for e in stamp {
            let q = items.entry(e.user).or_default();
            let before = recent(q);
            touch(q, e.item, seen);
            if recent(q) != before {
                changed.insert(e.user);
            }
            last.insert(e.user, t);
            if t + idle <= end {
                times.insert(t + idle);
            }
        }
        // Counts as of the end of the time, from scratch.
        let mut holders: HashMap<u64, i64> = HashMap::new();
        let mut together: HashMap<u64, HashMap<u64, i64>> = HashMap::new();
        for q in items.values() {
            let r = recent(q);
            for a in &r {
                *holders.entry(*a).or_default() += 1;
                for b in r.iter().filter(|b| *b != a) {
                    *together.entry(*a).or_default().entry(*b).or_default() += 1;
                }
            }
        }
        for u in changed {
            let mut scores: HashMap<u64, i64> = HashMap::new();
            let seen_items: BTreeSet<u64> = items
                .get(&u)
                .map(|q| q.iter().copied().collect())
                .unwrap_or_default();
            for a in items.get(&u).map(recent).unwrap_or_default() {
                let Some(others) = together.get(&a) else {
                    continue;
                };
                let mut best: Vec<(i64, u64)> = others.iter().map(|(b, c)| (-c, *b)).collect();
                best.sort();
                for (c, b) in best.into_iter().take(m) {
                    if !seen_items.contains(&b) {
                        let share = ((-c) as f64 * 1e6 / holders[&a] as f64).round() as i64;
                        *scores.entry(b).or_default() += share;
                    }
                }
            }
            let mut list: Vec<(u64, i64)> = scores.into_iter().collect();
            list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            list.truncate(k);
            let old = lists.remove(&u).unwrap_or_default();
            let row = |(item, score): (u64, i64), diff: i64| json!({"time": t, "user": u, "item": item, "score": score as f64 / 1e6, "diff": diff});
            rows.extend(
                old.iter()
                    .filter(|e| !list.contains(e))
                    .map(|e| row(*e, -1)),
            );
            rows.extend(list.iter().filter(|e| !old.contains(e)).map(|e| row(*e, 1)));
            lists.insert(u, list);
        }
    }
    rows
}

#[test]
fn recommendations_match_the_batch_reference_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let lines = behaviours(dir.path());
    let expected = reference_recommend(&lines, 5, 12, 6, 4, u64::MAX / 4);
    assert!(expected.len() > 5_000, "{} rows", expected.len());
    assert!(expected.iter().any(|r| r["diff"] == -1));
    assert_pipeline_everywhere(
        dir.path(),
        "recommend",
        &SMALL,
        &lines,
        &expected,
        canonical,
    );
}

#[test]
fn idle_users_are_retired_and_their_lists_retracted() {
    let dir = tempfile::tempdir().unwrap();
    // The first 8 s of the stream, then only users below 50 for 12 s more: the others go idle.
    let lines: Vec<String> = behaviours(dir.path())
        .into_iter()
        .enumerate()
        .filter(|(i, l)| {
            *i < 8_000
                || serde_json::from_str::<Value>(l).unwrap()["user"]
                    .as_u64()
                    .unwrap()
                    < 50
        })
        .map(|(_, l)| l)
        .collect();
    let idle = 2_000;
    let expected = reference_recommend(&lines, 5, 12, 6, 4, idle);
    let end = time_field(lines.last().unwrap());
    // Retirements near the end depend on how far the watermark got; compare the rest.
    let settled = move |rows: &[Value]| -> Vec<String> {
        let kept: Vec<Value> = rows
            .iter()
            .filter(|r| r["time"].as_u64().unwrap() + 8_000 < end)
            .cloned()
            .collect();
        canonical(&kept)
    };
    let retracted = expected
        .iter()
        .filter(|r| r["diff"] == -1 && r["user"].as_u64().unwrap() >= 50)
        .count();
    assert!(retracted > 100, "{retracted} retractions of idle users");
    let file = write_lines(dir.path(), "idle.jsonl", &lines);
    let disordered = write_lines(
        dir.path(),
        "idle-disordered.jsonl",
        &disorder_by(&lines, 3_000, 7, time_field),
    );
    for (tag, input, workers) in [("idle-w1", &file, "1"), ("idle-w2", &disordered, "2")] {
        let args = [&SMALL[..], &["--param", "idle=2s", "-w", workers]].concat();
        let got = run_pipeline(dir.path(), tag, "recommend", input, &args, 1);
        assert_eq!(settled(&got), settled(&expected), "{tag}");
    }
}

/// Each item's final neighbours: the most co-occurring items in the users' recent items at the
/// end, by cosine similarity.
fn reference_similar(lines: &[String], history: usize, m: usize) -> Vec<Value> {
    let mut all = events(lines);
    all.sort_by_key(|e| (e.time - e.time % STAMP, e.user, e.time, e.item, e.action));
    let mut items: HashMap<u64, VecDeque<u64>> = HashMap::new();
    for e in &all {
        touch(items.entry(e.user).or_default(), e.item, history);
    }
    let mut holders: HashMap<u64, i64> = HashMap::new();
    let mut together: BTreeMap<u64, BTreeMap<u64, i64>> = BTreeMap::new();
    for q in items.values() {
        for a in q {
            *holders.entry(*a).or_default() += 1;
            for b in q.iter().filter(|b| *b != a) {
                *together.entry(*a).or_default().entry(*b).or_default() += 1;
            }
        }
    }
    let mut rows = Vec::new();
    for (a, others) in together {
        let mut best: Vec<(i64, u64)> = others
            .iter()
            .map(|(b, c)| {
                let cosine = *c as f64 / ((holders[&a] * holders[b]) as f64).sqrt();
                (((cosine * 1e6).round() as i64).max(1), *b)
            })
            .collect();
        best.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
        for (s, b) in best.into_iter().take(m) {
            rows.push(json!({"item": a, "neighbour": b, "similarity": s as f64 / 1e6}));
        }
    }
    rows
}

fn final_state(rows: &[Value]) -> Vec<String> {
    let stripped: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.as_object_mut().unwrap().remove("time");
            r
        })
        .collect();
    consolidate(&stripped)
}

#[test]
fn similar_items_match_the_batch_reference_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = behaviours(dir.path()).into_iter().take(6_000).collect();
    let expected: Vec<Value> = reference_similar(&lines, 5, 6)
        .into_iter()
        .map(|mut r| {
            r["diff"] = json!(1);
            r
        })
        .collect();
    let args = ["--param", "history=5", "--param", "neighbours=6"];
    assert_pipeline_everywhere(
        dir.path(),
        "recommend_similar",
        &args,
        &lines,
        &expected,
        final_state,
    );
}

fn reference_trending(lines: &[String], size: u64, slide: u64, top: usize) -> Vec<Value> {
    let mut counts: BTreeMap<u64, BTreeMap<u64, u64>> = BTreeMap::new();
    for e in events(lines) {
        let mut start = e.time - e.time % slide;
        loop {
            if start + size > e.time {
                *counts
                    .entry(start + size)
                    .or_default()
                    .entry(e.item)
                    .or_default() += 1;
            } else {
                break;
            }
            if start < slide {
                break;
            }
            start -= slide;
        }
    }
    let mut rows = Vec::new();
    for (end, per_item) in counts {
        let mut best: Vec<(u64, u64)> = per_item.into_iter().map(|(i, c)| (c, i)).collect();
        best.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (rank, (c, i)) in best.into_iter().take(top).enumerate() {
            rows.push(json!({"window_start": end - size, "window_end": end, "rank": rank + 1, "item": i, "actions": c}));
        }
    }
    rows
}

#[test]
fn trending_items_match_the_batch_reference_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let lines = behaviours(dir.path());
    let expected = reference_trending(&lines, 5_000, 1_000, 5);
    let args = [
        "--param",
        "window=5s",
        "--param",
        "slide=1s",
        "--param",
        "top=5",
    ];
    assert_pipeline_everywhere(
        dir.path(),
        "recommend_trending",
        &args,
        &lines,
        &expected,
        canonical,
    );
}

/// Purchases of 40 customers over 90 days, a few a day, some days several.
fn purchases() -> Vec<String> {
    let base = 1_767_225_600_000u64;
    let mut lines = Vec::new();
    let mut x = 12345u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut t = base;
    for _ in 0..3_000 {
        t += 1_000 + next() % 2_600_000;
        let user = next() % 40;
        let cents = next() % 10_000;
        lines.push(json!({"time": t, "user": user, "item": next() % 30, "action": "purchase", "value": cents as f64 / 100.0}).to_string());
    }
    lines
}

fn reference_rfm(lines: &[String]) -> Vec<Value> {
    let mut all = events(lines);
    all.sort_by_key(|e| (e.time - e.time % STAMP, e.user, e.time));
    let day = |t: u64| t / 86_400_000;
    // customer -> (first day, last day, days, purchases, first day total, total)
    let mut state: BTreeMap<u64, (u64, u64, u64, u64, f64, f64)> = BTreeMap::new();
    let mut rows = Vec::new();
    let mut i = 0;
    while i < all.len() {
        let stamp = all[i].time - all[i].time % STAMP;
        let user = all[i].user;
        while i < all.len() && all[i].time - all[i].time % STAMP == stamp && all[i].user == user {
            let e = &all[i];
            let s = state
                .entry(user)
                .or_insert((day(e.time), day(e.time), 1, 0, 0.0, 0.0));
            if day(e.time) > s.1 {
                s.1 = day(e.time);
                s.2 += 1;
            }
            if day(e.time) == s.0 {
                s.4 += e.value;
            }
            s.3 += 1;
            s.5 += e.value;
            i += 1;
        }
        let s = state[&user];
        let frequency = s.2 - 1;
        rows.push(json!({
            "time": stamp, "customer": user, "frequency": frequency,
            "recency": (s.1 - s.0) as f64 / 7.0,
            "age": (day(stamp).max(s.1) - s.0) as f64 / 7.0,
            "monetary": if frequency == 0 { 0.0 } else { (s.5 - s.4) / frequency as f64 },
            "purchases": s.3, "total": s.5,
        }));
    }
    rows
}

fn rounded(rows: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = rows
        .iter()
        .map(|r| {
            let mut r = r.clone();
            for key in ["monetary", "total"] {
                if let Some(x) = r[key].as_f64() {
                    r[key] = json!(format!("{x:.6}"));
                }
            }
            r.to_string()
        })
        .collect();
    out.sort();
    out
}

#[test]
fn customer_features_match_the_batch_reference_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let lines = purchases();
    let expected = reference_rfm(&lines);
    assert!(expected
        .iter()
        .any(|r| r["frequency"].as_u64().unwrap() > 5));
    assert_pipeline_everywhere(dir.path(), "recommend_rfm", &[], &lines, &expected, rounded);
}

#[test]
fn the_rating_model_predicts_the_same_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let lines = behaviours(dir.path());
    let ratings = lines.iter().filter(|l| l.contains("\"rating\"")).count();
    let file = write_lines(dir.path(), "ratings.jsonl", &lines);
    let first = run_pipeline(
        dir.path(),
        "ratings-w1",
        "recommend_ratings",
        &file,
        &["-w", "1"],
        1,
    );
    assert_eq!(first.len(), ratings);
    let mut learned: Vec<u64> = first
        .iter()
        .map(|r| r["learned"].as_u64().unwrap())
        .collect();
    learned.sort();
    assert_eq!(learned, (0..ratings as u64).collect::<Vec<_>>());
    let error: f64 = first
        .iter()
        .skip(ratings / 2)
        .map(|r| (r["prediction"].as_f64().unwrap() - r["rating"].as_f64().unwrap()).abs())
        .sum::<f64>()
        / (ratings - ratings / 2) as f64;
    assert!(error < 1.0, "mean absolute error {error}");
    assert_pipeline_everywhere(
        dir.path(),
        "recommend_ratings",
        &[],
        &lines,
        &first,
        canonical,
    );
}

#[test]
fn bad_and_late_behaviours_are_dead_letters_counted_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines: Vec<String> = behaviours(dir.path()).into_iter().take(12_000).collect();
    let late =
        json!({"time": time_field(&lines[0]), "user": 1, "item": 1, "action": "view"}).to_string();
    lines.extend([
        "{not json".to_string(),
        r#"{"time":1767225611000,"user":1,"item":2,"action":"like"}"#.to_string(),
        r#"{"time":1767225611000,"user":1,"item":2,"action":"purchase","value":-5}"#.to_string(),
        r#"{"time":1767225611000,"user":1,"item":2,"action":"rating","value":0}"#.to_string(),
        r#"{"time":1767225611000,"user":-1,"item":2,"action":"view"}"#.to_string(),
        late,
    ]);
    let (_, letters) = with_dead_letters(dir.path(), "bad", "recommend", &lines);
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for l in letters {
        *reasons
            .entry(l["reason"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let expected: BTreeMap<String, u64> =
        [("malformed_json", 1), ("invalid_event", 4), ("late", 1)]
            .into_iter()
            .map(|(r, n)| (r.to_string(), n))
            .collect();
    assert_eq!(reasons, expected);
}
