//! Shared helpers for the integration tests: event files, runs through the library, reference
//! (batch) computations written independently of the engine, and output readers.
#![allow(dead_code)]

use serde_json::Value;
use sluice::connectors::generator::GeneratorSpec;
use sluice::connectors::sink::SinkSpec;
use sluice::connectors::{InputFormat, SourceSpec};
use sluice::driver::{run, RunConfig};
use sluice::ingest::IngestConfig;
use sluice::launch::Mesh;
use sluice::metrics::RunReport;
use sluice::nexmark::generator::{Generator, GeneratorConfig};
use sluice::nexmark::model::Event;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Generator events `0..n` as Flink JSON lines.
pub fn generated_lines(n: u64, config: &GeneratorConfig) -> Vec<String> {
    let mut g = Generator::new(config.clone());
    (0..n)
        .map(|i| {
            let mut line = Vec::new();
            g.event(i).write_json_line(&mut line);
            String::from_utf8(line).unwrap().trim_end().to_string()
        })
        .collect()
}

/// Event time (ms) of a Flink JSON event line, read with serde_json only.
pub fn event_time_of(line: &str) -> u64 {
    let v: Value = serde_json::from_str(line).unwrap();
    let payload = ["person", "auction", "bid"]
        .iter()
        .find_map(|k| v.get(*k).filter(|p| !p.is_null()))
        .unwrap();
    let text = payload["dateTime"].as_str().unwrap();
    sluice::time::parse_timestamp(text).unwrap()
}

/// Reorders lines so that each is displaced by less than `max_disorder_ms` of event time:
/// sort by event time plus a deterministic pseudo-random jitter in `[0, max_disorder_ms)`.
pub fn disorder(lines: &[String], max_disorder_ms: u64, seed: u64) -> Vec<String> {
    disorder_by(lines, max_disorder_ms, seed, event_time_of)
}

/// [`disorder`] for lines whose event time `time_of` reads.
pub fn disorder_by(
    lines: &[String],
    max_disorder_ms: u64,
    seed: u64,
    time_of: fn(&str) -> u64,
) -> Vec<String> {
    let mut keyed: Vec<(u64, usize)> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut x = (i as u64 ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            x ^= x >> 29;
            (time_of(l) + x % max_disorder_ms, i)
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, i)| lines[i].clone()).collect()
}

/// Writes lines to a file in `dir`.
pub fn write_lines(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    f.flush().unwrap();
    path
}

/// Runs `query` on a single process of `workers` threads, rows to a file; returns rows and report.
pub fn run_query(
    query: &str,
    source: Source,
    workers: usize,
    ingest: IngestConfig,
    dir: &Path,
) -> (Vec<Value>, RunReport) {
    run_query_with(query, source, workers, dir, |options| {
        options.ingest = ingest
    })
}

/// [`run_query`] with run options set by `set`.
pub fn run_query_with(
    query: &str,
    source: Source,
    workers: usize,
    dir: &Path,
    set: impl FnOnce(&mut sluice::driver::RunOptions),
) -> (Vec<Value>, RunReport) {
    let out = dir.join(format!("{query}-{workers}-{}.jsonl", unique()));
    let pipeline = sluice::queries::nexmark::find(query).unwrap();
    let mut config = RunConfig::new(pipeline, source, SinkSpec::File(out.clone()));
    set(&mut config.options);
    config.options.output_dir = dir.join(format!("files-{}", unique()));
    let outcome = run(config, &Mesh::local(workers)).unwrap();
    (read_rows(&out), outcome.report.unwrap())
}

/// A source of Nexmark events.
pub type Source = SourceSpec<Event>;

/// A file source spec (Flink JSON lines).
pub fn file_source(path: &Path) -> Source {
    SourceSpec::File {
        path: path.to_path_buf(),
        input: InputFormat::default(),
    }
}

/// A bounded generator source spec.
pub fn generator_source(events: u64, config: GeneratorConfig) -> Source {
    SourceSpec::Generator {
        name: sluice::nexmark::NAME.into(),
        make: sluice::nexmark::generator,
        spec: GeneratorSpec {
            config,
            events: Some(events),
            paced: false,
            speed: 1,
        },
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// JSON lines of a file (or several, concatenated).
pub fn read_rows(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Canonical, sorted text of rows, for multiset comparison.
pub fn canonical(rows: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    v.sort();
    v
}

/// The bid objects of a set of Flink JSON event lines.
pub fn bids(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["event_type"] == 2)
        .map(|v| v["bid"].clone())
        .collect()
}

/// Reference q0: every bid's auction, bidder, price, dateTime, extra.
pub fn reference_q0(lines: &[String]) -> Vec<Value> {
    bids(lines)
        .into_iter()
        .map(|b| {
            serde_json::json!({
                "auction": b["auction"], "bidder": b["bidder"], "price": b["price"],
                "dateTime": b["dateTime"], "extra": b["extra"],
            })
        })
        .collect()
}

/// Reference q10: every bid as q0, with its day (`dt`) and minute (`hm`) partition.
pub fn reference_q10(lines: &[String]) -> Vec<Value> {
    reference_q0(lines)
        .into_iter()
        .map(|mut row| {
            let text = row["dateTime"].as_str().unwrap().to_string();
            row["dt"] = Value::from(&text[..10]);
            row["hm"] = Value::from(&text[11..16]);
            row
        })
        .collect()
}

/// The rows of q10's committed partitions under `dir`, checking that every partition has its
/// `_SUCCESS` marker, holds only its own rows, and has no file left uncommitted.
pub fn q10_partitions(dir: &Path) -> Vec<Value> {
    let mut rows = Vec::new();
    for day in std::fs::read_dir(dir).unwrap() {
        let day = day.unwrap().path();
        for minute in std::fs::read_dir(&day).unwrap() {
            let minute = minute.unwrap().path();
            let partition = format!(
                "{}/{}",
                day.file_name().unwrap().to_string_lossy(),
                minute.file_name().unwrap().to_string_lossy()
            );
            assert!(minute.join("_SUCCESS").exists(), "{partition}: no _SUCCESS");
            for file in std::fs::read_dir(&minute).unwrap() {
                let path = file.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                assert!(
                    !name.ends_with(".tmp") && !name.ends_with(".inprogress"),
                    "{partition}: {name} left uncommitted"
                );
                if name.starts_with("part-") && name.ends_with(".jsonl") {
                    for row in read_rows(&path) {
                        assert_eq!(
                            format!(
                                "dt={}/hm={}",
                                row["dt"].as_str().unwrap(),
                                row["hm"].as_str().unwrap()
                            ),
                            partition
                        );
                        rows.push(row);
                    }
                }
            }
        }
    }
    rows
}

/// Reference q1: as q0 with the price in euros, compared in thousandths of a cent.
pub fn reference_q1(lines: &[String]) -> Vec<(u64, u64, u64, String, String)> {
    bids(lines)
        .into_iter()
        .map(|b| {
            (
                b["auction"].as_u64().unwrap(),
                b["bidder"].as_u64().unwrap(),
                b["price"].as_u64().unwrap() * 908,
                b["dateTime"].as_str().unwrap().to_string(),
                b["extra"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// q1 output rows in the same shape as [`reference_q1`].
pub fn q1_tuples(rows: &[Value]) -> Vec<(u64, u64, u64, String, String)> {
    let mut v: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r["auction"].as_u64().unwrap(),
                r["bidder"].as_u64().unwrap(),
                (r["price"].as_f64().unwrap() * 1000.0).round() as u64,
                r["dateTime"].as_str().unwrap().to_string(),
                r["extra"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Reference q2: auction and price of bids whose auction id is a multiple of 123.
pub fn reference_q2(lines: &[String]) -> Vec<Value> {
    bids(lines)
        .into_iter()
        .filter(|b| b["auction"].as_u64().unwrap() % 123 == 0)
        .map(|b| serde_json::json!({"auction": b["auction"], "price": b["price"]}))
        .collect()
}

/// Two consecutive free loopback ports (best effort: free when checked).
pub fn free_port_pair() -> u16 {
    loop {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < 65535 && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

/// The person, auction and bid objects of event lines, with their event times (ms).
pub fn payloads(lines: &[String], kind: &str) -> Vec<(Value, u64)> {
    lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter_map(|v| {
            let p = v.get(kind).filter(|p| !p.is_null())?.clone();
            let t = sluice::time::parse_timestamp(p["dateTime"].as_str().unwrap()).unwrap();
            Some((p, t))
        })
        .collect()
}

/// Reference q5: per 10 s window sliding by 2 s, the auctions with the most bids.
pub fn reference_q5(lines: &[String]) -> Vec<Value> {
    use std::collections::BTreeMap;
    let mut counts: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    for (b, t) in payloads(lines, "bid") {
        // Windows [s, s + 10 s) with s a multiple of 2 s and s <= t < s + 10 s.
        let mut s = t - t % 2000;
        loop {
            *counts
                .entry((s, b["auction"].as_u64().unwrap()))
                .or_default() += 1;
            if s < 2000 || s + 10_000 <= t + 2000 {
                break;
            }
            s -= 2000;
        }
    }
    let mut max: BTreeMap<u64, u64> = BTreeMap::new();
    for ((s, _), n) in &counts {
        let m = max.entry(*s).or_default();
        *m = (*m).max(*n);
    }
    counts
        .into_iter()
        .filter(|((s, _), n)| *n == max[s])
        .map(|((s, a), n)| serde_json::json!({"auction": a, "num": n, "window_start": s, "window_end": s + 10_000}))
        .collect()
}

/// Reference q7: bids at the maximum price of each 10 s tumbling window, with Flink's
/// inclusive end (`dateTime BETWEEN window_end - 10 s AND window_end`).
pub fn reference_q7(lines: &[String]) -> Vec<Value> {
    use std::collections::BTreeMap;
    let bids = payloads(lines, "bid");
    let mut max: BTreeMap<u64, u64> = BTreeMap::new();
    for (b, t) in &bids {
        let m = max.entry(t - t % 10_000).or_default();
        *m = (*m).max(b["price"].as_u64().unwrap());
    }
    let mut rows = Vec::new();
    for (s, m) in &max {
        for (b, t) in &bids {
            if *t >= *s && *t <= s + 10_000 && b["price"].as_u64().unwrap() == *m {
                rows.push(serde_json::json!({
                    "auction": b["auction"], "bidder": b["bidder"], "price": b["price"],
                    "dateTime": b["dateTime"], "extra": b["extra"], "window_start": s, "window_end": s + 10_000,
                }));
            }
        }
    }
    rows
}

/// Reference q8: people who registered and sold in the same 10 s tumbling window.
pub fn reference_q8(lines: &[String]) -> Vec<Value> {
    use std::collections::BTreeSet;
    let sellers: BTreeSet<(u64, u64)> = payloads(lines, "auction")
        .into_iter()
        .map(|(a, t)| (a["seller"].as_u64().unwrap(), t - t % 10_000))
        .collect();
    let people: BTreeSet<(u64, String, u64)> = payloads(lines, "person")
        .into_iter()
        .map(|(p, t)| {
            (
                p["id"].as_u64().unwrap(),
                p["name"].as_str().unwrap().to_string(),
                t - t % 10_000,
            )
        })
        .collect();
    people
        .into_iter()
        .filter(|(id, _, s)| sellers.contains(&(*id, *s)))
        .map(|(id, name, s)| {
            serde_json::json!({"id": id, "name": name, "stime": sluice::time::format_timestamp(s),
                "window_start": s, "window_end": s + 10_000})
        })
        .collect()
}

/// Reference q13: every bid with the side table's value for `auction % 10000` (`i,i` lines).
pub fn reference_q13(lines: &[String]) -> Vec<Value> {
    bids(lines)
        .into_iter()
        .map(|b| {
            let key = b["auction"].as_u64().unwrap() % 10_000;
            serde_json::json!({"auction": b["auction"], "bidder": b["bidder"], "price": b["price"],
                "dateTime": b["dateTime"], "value": key.to_string()})
        })
        .collect()
}

/// Reference q14 as comparable tuples: (auction, bidder, price × 908, label, dateTime, c count).
pub fn reference_q14(lines: &[String]) -> Vec<(u64, u64, u64, String, String, u64)> {
    let mut v: Vec<_> = bids(lines)
        .into_iter()
        .filter(|b| {
            let p = b["price"].as_u64().unwrap() as f64 * 0.908;
            p > 1_000_000.0 && p < 50_000_000.0
        })
        .map(|b| {
            let time = b["dateTime"].as_str().unwrap().to_string();
            let hour: u32 = time[11..13].parse().unwrap();
            let label = if (8..=18).contains(&hour) {
                "dayTime"
            } else if hour <= 6 || hour >= 20 {
                "nightTime"
            } else {
                "otherTime"
            };
            let extra = b["extra"].as_str().unwrap();
            (
                b["auction"].as_u64().unwrap(),
                b["bidder"].as_u64().unwrap(),
                b["price"].as_u64().unwrap() * 908,
                label.to_string(),
                time,
                extra.matches('c').count() as u64,
            )
        })
        .collect();
    v.sort();
    v
}

/// q14 output rows in the shape of [`reference_q14`].
pub fn q14_tuples(rows: &[Value]) -> Vec<(u64, u64, u64, String, String, u64)> {
    let mut v: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r["auction"].as_u64().unwrap(),
                r["bidder"].as_u64().unwrap(),
                (r["price"].as_f64().unwrap() * 1000.0).round() as u64,
                r["bidTimeType"].as_str().unwrap().to_string(),
                r["dateTime"].as_str().unwrap().to_string(),
                r["c_counts"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Reference q21: channel ids from the name or the url's `channel_id` parameter.
pub fn reference_q21(lines: &[String]) -> Vec<Value> {
    bids(lines)
        .into_iter()
        .filter_map(|b| {
            let channel = b["channel"].as_str().unwrap();
            let url = b["url"].as_str().unwrap();
            let id = match channel.to_lowercase().as_str() {
                "apple" => Some("0".to_string()),
                "google" => Some("1".to_string()),
                "facebook" => Some("2".to_string()),
                "baidu" => Some("3".to_string()),
                _ => url
                    .split(['?', '&'])
                    .skip(1)
                    .find_map(|kv| kv.strip_prefix("channel_id=").map(str::to_string)),
            }?;
            Some(serde_json::json!({"auction": b["auction"], "bidder": b["bidder"], "price": b["price"],
                "channel": channel, "channel_id": id}))
        })
        .collect()
}

/// Reference q22: the url's path segments 3, 4 and 5 (split on '/').
pub fn reference_q22(lines: &[String]) -> Vec<Value> {
    bids(lines)
        .into_iter()
        .map(|b| {
            let parts: Vec<&str> = b["url"].as_str().unwrap().split('/').collect();
            serde_json::json!({"auction": b["auction"], "bidder": b["bidder"], "price": b["price"],
                "channel": b["channel"], "dir1": parts.get(3), "dir2": parts.get(4), "dir3": parts.get(5)})
        })
        .collect()
}

/// The net rows of an update stream: each row (without its `diff`) with the sum of its diffs,
/// keeping only non-zero sums; panics if any row's running sum goes negative.
pub fn consolidate(rows: &[Value]) -> Vec<String> {
    use std::collections::BTreeMap;
    let mut net: BTreeMap<String, i64> = BTreeMap::new();
    for r in rows {
        let mut r = r.clone();
        let diff = r
            .as_object_mut()
            .unwrap()
            .remove("diff")
            .unwrap()
            .as_i64()
            .unwrap();
        *net.entry(r.to_string()).or_default() += diff;
    }
    let mut out = Vec::new();
    for (row, n) in net {
        assert!(n >= 0, "row {row} has a negative count {n}");
        for _ in 0..n {
            out.push(row.clone());
        }
    }
    out
}

/// Reference q3: category-10 auctions joined with their sellers in OR, ID or CA.
pub fn reference_q3(lines: &[String]) -> Vec<Value> {
    let people: std::collections::HashMap<u64, Value> = payloads(lines, "person")
        .into_iter()
        .map(|(p, _)| (p["id"].as_u64().unwrap(), p))
        .collect();
    payloads(lines, "auction")
        .into_iter()
        .filter(|(a, _)| a["category"] == 10)
        .filter_map(|(a, _)| {
            let p = people.get(&a["seller"].as_u64().unwrap())?;
            ["OR", "ID", "CA"].contains(&p["state"].as_str().unwrap()).then(|| {
                serde_json::json!({"name": p["name"], "city": p["city"], "state": p["state"], "id": a["id"]})
            })
        })
        .collect()
}

/// Reference q4: per category, the mean over auctions of their highest bid timed within
/// `[dateTime, expires]`.
pub fn reference_q4(lines: &[String]) -> Vec<Value> {
    use std::collections::{BTreeMap, HashMap};
    let mut best: HashMap<u64, u64> = HashMap::new();
    let auctions: HashMap<u64, (u64, u64, u64)> = payloads(lines, "auction")
        .into_iter()
        .map(|(a, t)| {
            let expires = sluice::time::parse_timestamp(a["expires"].as_str().unwrap()).unwrap();
            (
                a["id"].as_u64().unwrap(),
                (a["category"].as_u64().unwrap(), t, expires),
            )
        })
        .collect();
    for (b, t) in payloads(lines, "bid") {
        let id = b["auction"].as_u64().unwrap();
        if let Some(&(_, opened, expires)) = auctions.get(&id) {
            if opened <= t && t <= expires {
                let m = best.entry(id).or_default();
                *m = (*m).max(b["price"].as_u64().unwrap());
            }
        }
    }
    let mut per_category: BTreeMap<u64, (u128, u128)> = BTreeMap::new();
    for (id, max) in best {
        let e = per_category.entry(auctions[&id].0).or_default();
        e.0 += max as u128;
        e.1 += 1;
    }
    per_category
        .into_iter()
        .map(|(c, (s, n))| serde_json::json!({"id": c, "final": s as f64 / n as f64}))
        .collect()
}

/// Reference q11: per bidder, sessions of bids with gaps of at most 10 s (touching merges).
pub fn reference_q11(lines: &[String]) -> Vec<Value> {
    use std::collections::BTreeMap;
    let mut times: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (b, t) in payloads(lines, "bid") {
        times
            .entry(b["bidder"].as_u64().unwrap())
            .or_default()
            .push(t);
    }
    let mut rows = Vec::new();
    for (bidder, mut ts) in times {
        ts.sort();
        let mut i = 0;
        while i < ts.len() {
            let (start, mut last, mut n) = (ts[i], ts[i], 0);
            while i < ts.len() && ts[i] <= last + 10_000 {
                last = ts[i];
                n += 1;
                i += 1;
            }
            let end = last + 10_000;
            rows.push(serde_json::json!({"bidder": bidder, "bid_count": n,
                "starttime": sluice::time::format_timestamp(start), "endtime": sluice::time::format_timestamp(end),
                "window_start": start, "window_end": end}));
        }
    }
    rows
}

/// A bid's fields in the order `Bid`'s derived `Ord` compares them (for tie-breaks).
pub fn bid_order(b: &Value) -> (u64, u64, u64, String, String, u64, String) {
    (
        b["auction"].as_u64().unwrap(),
        b["bidder"].as_u64().unwrap(),
        b["price"].as_u64().unwrap(),
        b["channel"].as_str().unwrap().to_string(),
        b["url"].as_str().unwrap().to_string(),
        sluice::time::parse_timestamp(b["dateTime"].as_str().unwrap()).unwrap(),
        b["extra"].as_str().unwrap().to_string(),
    )
}

fn bid_row(b: &Value) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    for k in [
        "auction", "bidder", "price", "channel", "url", "dateTime", "extra",
    ] {
        m.insert(k.into(), b[k].clone());
    }
    m
}

/// Reference q18: the latest bid of each (bidder, auction), ties to the greatest bid.
pub fn reference_q18(lines: &[String]) -> Vec<Value> {
    let mut last: std::collections::HashMap<(u64, u64), (u64, Value)> = Default::default();
    for (b, t) in payloads(lines, "bid") {
        let key = (
            b["bidder"].as_u64().unwrap(),
            b["auction"].as_u64().unwrap(),
        );
        let better = match last.get(&key) {
            None => true,
            Some((lt, lb)) => (t, bid_order(&b)) > (*lt, bid_order(lb)),
        };
        if better {
            last.insert(key, (t, b));
        }
    }
    last.into_values()
        .map(|(_, b)| Value::Object(bid_row(&b)))
        .collect()
}

/// Reference q19: per auction, the ten highest bids (then earliest, then least), ranked.
pub fn reference_q19(lines: &[String]) -> Vec<Value> {
    let mut per: std::collections::BTreeMap<u64, Vec<(u64, Value)>> = Default::default();
    for (b, t) in payloads(lines, "bid") {
        per.entry(b["auction"].as_u64().unwrap())
            .or_default()
            .push((t, b));
    }
    let mut rows = Vec::new();
    for (_, mut bids) in per {
        bids.sort_by(|(ta, a), (tb, b)| {
            (std::cmp::Reverse(a["price"].as_u64()), ta, bid_order(a)).cmp(&(
                std::cmp::Reverse(b["price"].as_u64()),
                tb,
                bid_order(b),
            ))
        });
        for (rank, (_, b)) in bids.iter().take(10).enumerate() {
            let mut m = bid_row(b);
            m.insert("rank_number".into(), (rank as u64 + 1).into());
            rows.push(Value::Object(m));
        }
    }
    rows
}

/// Reference q20: bids joined with their category-10 auctions.
pub fn reference_q20(lines: &[String]) -> Vec<Value> {
    let auctions: std::collections::HashMap<u64, Value> = payloads(lines, "auction")
        .into_iter()
        .filter(|(a, _)| a["category"] == 10)
        .map(|(a, _)| (a["id"].as_u64().unwrap(), a))
        .collect();
    bids(lines)
        .into_iter()
        .filter_map(|b| {
            let a = auctions.get(&b["auction"].as_u64().unwrap())?;
            Some(serde_json::json!({
                "auction": b["auction"], "bidder": b["bidder"], "price": b["price"], "channel": b["channel"],
                "url": b["url"], "bid_dateTime": b["dateTime"], "bid_extra": b["extra"], "itemName": a["itemName"],
                "description": a["description"], "initialBid": a["initialBid"], "reserve": a["reserve"],
                "auction_dateTime": a["dateTime"], "expires": a["expires"], "seller": a["seller"],
                "category": a["category"], "auction_extra": a["extra"],
            }))
        })
        .collect()
}

/// Winning bid per auction: highest price within `[dateTime, expires]`, then earliest, then
/// least bid. Returns (auction, bid) pairs.
pub fn winners(lines: &[String]) -> Vec<(Value, Value)> {
    let auctions: std::collections::HashMap<u64, (Value, u64, u64)> = payloads(lines, "auction")
        .into_iter()
        .map(|(a, t)| {
            let expires = sluice::time::parse_timestamp(a["expires"].as_str().unwrap()).unwrap();
            (a["id"].as_u64().unwrap(), (a, t, expires))
        })
        .collect();
    let mut best: std::collections::HashMap<u64, (u64, Value)> = Default::default();
    for (b, t) in payloads(lines, "bid") {
        let id = b["auction"].as_u64().unwrap();
        let Some((_, opened, expires)) = auctions.get(&id) else {
            continue;
        };
        if t < *opened || t > *expires {
            continue;
        }
        let better = match best.get(&id) {
            None => true,
            Some((bt, bb)) => {
                (std::cmp::Reverse(b["price"].as_u64()), t, bid_order(&b))
                    < (std::cmp::Reverse(bb["price"].as_u64()), *bt, bid_order(bb))
            }
        };
        if better {
            best.insert(id, (t, b));
        }
    }
    best.into_iter()
        .map(|(id, (_, b))| (auctions[&id].0.clone(), b))
        .collect()
}

/// Reference q9: every auction with its winning bid.
pub fn reference_q9(lines: &[String]) -> Vec<Value> {
    winners(lines)
        .into_iter()
        .map(|(a, b)| {
            serde_json::json!({
                "id": a["id"], "itemName": a["itemName"], "description": a["description"],
                "initialBid": a["initialBid"], "reserve": a["reserve"], "dateTime": a["dateTime"],
                "expires": a["expires"], "seller": a["seller"], "category": a["category"], "extra": a["extra"],
                "auction": b["auction"], "bidder": b["bidder"], "price": b["price"],
                "bid_dateTime": b["dateTime"], "bid_extra": b["extra"],
            })
        })
        .collect()
}

/// Reference q6: per seller, the mean winning price of the last 10 auctions by (expires, id).
pub fn reference_q6(lines: &[String]) -> Vec<Value> {
    let mut per: std::collections::BTreeMap<u64, Vec<(u64, u64, u64)>> = Default::default();
    for (a, b) in winners(lines) {
        let expires = sluice::time::parse_timestamp(a["expires"].as_str().unwrap()).unwrap();
        per.entry(a["seller"].as_u64().unwrap()).or_default().push((
            expires,
            a["id"].as_u64().unwrap(),
            b["price"].as_u64().unwrap(),
        ));
    }
    per.into_iter()
        .map(|(seller, mut sales)| {
            sales.sort();
            let last: Vec<u64> = sales.iter().rev().take(10).map(|s| s.2).collect();
            let avg = last.iter().map(|p| *p as u128).sum::<u128>() as f64 / last.len() as f64;
            serde_json::json!({"seller": seller, "avg_price": avg})
        })
        .collect()
}

/// Reference q6 with `--state-ttl ttl` (stamps rounded up to `granularity`): a seller's sale
/// is stamped at its auction's close (`expires + 1` rounded up); a seller with no sale for `ttl`
/// since their latest stamp starts afresh, and one idle for `ttl` before the latest close of
/// the whole input has no row at the end.
pub fn reference_q6_retiring(lines: &[String], ttl: u64, granularity: u64) -> Vec<Value> {
    let mut per: std::collections::BTreeMap<u64, Vec<(u64, u64, u64, u64)>> = Default::default();
    for (a, b) in winners(lines) {
        let expires = sluice::time::parse_timestamp(a["expires"].as_str().unwrap()).unwrap();
        let stamp = (expires + 1).div_ceil(granularity) * granularity;
        per.entry(a["seller"].as_u64().unwrap()).or_default().push((
            stamp,
            expires,
            a["id"].as_u64().unwrap(),
            b["price"].as_u64().unwrap(),
        ));
    }
    let end = per.values().flatten().map(|s| s.0).max().unwrap_or(0);
    let mut rows = Vec::new();
    for (seller, mut sales) in per {
        sales.sort();
        let mut kept: Vec<(u64, u64, u64)> = Vec::new();
        let mut last = None;
        for (stamp, expires, id, price) in sales {
            if last.is_some_and(|l: u64| stamp >= l + ttl) {
                kept.clear();
            }
            last = Some(stamp);
            kept.push((expires, id, price));
        }
        if last.is_some_and(|l| l + ttl <= end) {
            continue;
        }
        kept.sort();
        let latest: Vec<u64> = kept.iter().rev().take(10).map(|s| s.2).collect();
        let avg = latest.iter().map(|p| *p as u128).sum::<u128>() as f64 / latest.len() as f64;
        rows.push(serde_json::json!({"seller": seller, "avg_price": avg}));
    }
    rows
}

fn band_of(price: u64) -> usize {
    if price < 10_000 {
        1
    } else if price < 1_000_000 {
        2
    } else {
        3
    }
}

/// q15/q16's counts for a set of bids, as JSON fields.
fn band_fields(bids: &[&Value]) -> serde_json::Map<String, Value> {
    use std::collections::HashSet;
    let mut m = serde_json::Map::new();
    let names = ["total", "rank1", "rank2", "rank3"];
    for (i, name) in names.iter().enumerate() {
        let chosen: Vec<&&Value> = bids
            .iter()
            .filter(|b| i == 0 || band_of(b["price"].as_u64().unwrap()) == i)
            .collect();
        let distinct = |k: &str| {
            chosen
                .iter()
                .map(|b| b[k].as_u64().unwrap())
                .collect::<HashSet<_>>()
                .len()
        };
        m.insert(format!("{name}_bids"), chosen.len().into());
        m.insert(format!("{name}_bidders"), distinct("bidder").into());
        m.insert(format!("{name}_auctions"), distinct("auction").into());
    }
    m
}

/// Reference q15/q16/q17 (all bids of the input fall in one day window).
pub fn reference_daily(query: &str, lines: &[String]) -> Vec<Value> {
    use std::collections::BTreeMap;
    let all = payloads(lines, "bid");
    let day_start = all[0].1 - all[0].1 % 86_400_000;
    assert!(
        all.iter().all(|(_, t)| t - t % 86_400_000 == day_start),
        "inputs span one day"
    );
    let day = sluice::time::format_timestamp(day_start)[..10].to_string();
    let window = |m: &mut serde_json::Map<String, Value>| {
        m.insert("day".into(), day.clone().into());
        m.insert("window_start".into(), day_start.into());
        m.insert("window_end".into(), (day_start + 86_400_000).into());
    };
    match query {
        "q15" => {
            let refs: Vec<&Value> = all.iter().map(|(b, _)| b).collect();
            let mut m = band_fields(&refs);
            window(&mut m);
            vec![Value::Object(m)]
        }
        "q16" => {
            let mut per: BTreeMap<String, Vec<(&Value, u64)>> = BTreeMap::new();
            for (b, t) in &all {
                per.entry(b["channel"].as_str().unwrap().to_string())
                    .or_default()
                    .push((b, *t));
            }
            per.into_iter()
                .map(|(channel, bids)| {
                    let refs: Vec<&Value> = bids.iter().map(|(b, _)| *b).collect();
                    let latest = bids.iter().map(|(_, t)| *t).max().unwrap();
                    let mut m = band_fields(&refs);
                    window(&mut m);
                    m.insert("channel".into(), channel.into());
                    m.insert(
                        "minute".into(),
                        sluice::time::format_timestamp(latest)[11..16].into(),
                    );
                    Value::Object(m)
                })
                .collect()
        }
        "q17" => {
            let mut per: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
            for (b, _) in &all {
                per.entry(b["auction"].as_u64().unwrap())
                    .or_default()
                    .push(b["price"].as_u64().unwrap());
            }
            per.into_iter()
                .map(|(auction, prices)| {
                    let count = |band: usize| prices.iter().filter(|p| band_of(**p) == band).count();
                    let sum: u64 = prices.iter().sum();
                    let mut m = serde_json::json!({
                        "auction": auction, "total_bids": prices.len(), "rank1_bids": count(1),
                        "rank2_bids": count(2), "rank3_bids": count(3), "min_price": prices.iter().min(),
                        "max_price": prices.iter().max(), "avg_price": sum as f64 / prices.len() as f64,
                        "sum_price": sum,
                    });
                    window(m.as_object_mut().unwrap());
                    m.as_object_mut().unwrap().remove("day");
                    m["day"] = day.clone().into();
                    m
                })
                .collect()
        }
        other => panic!("{other} is not a daily query"),
    }
}

/// Runs the `sluice` binary to completion.
pub fn sluice(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .output()
        .expect("the sluice binary runs")
}

/// The binary of `examples/sensors.rs`, built by `cargo test` beside the crate's own.
pub fn sensors_binary() -> PathBuf {
    let sluice = PathBuf::from(env!("CARGO_BIN_EXE_sluice"));
    sluice.parent().unwrap().join("examples").join("sensors")
}

/// Runs the sensors example with `args`.
pub fn sensors(args: &[&str]) -> std::process::Output {
    std::process::Command::new(sensors_binary())
        .args(args)
        .output()
        .expect("the sensors example is built by cargo test")
}

/// Runs each `(args, exit code, message)` case and checks that it fails with that code, says
/// the message on stderr, prints nothing on stdout, and does so at once (before any work: the
/// default run is a million events).
pub fn expect_failures(cases: &[(Vec<&str>, i32, &str)]) {
    for (args, code, message) in cases {
        let start = std::time::Instant::now();
        let out = sluice(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?} printed on stdout");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "{args:?} ran first"
        );
    }
}

/// A finished command's stderr as text.
pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `time` field of a JSON line (the domains whose records carry their event time flat:
/// IoT readings, behaviours).
pub fn time_field(line: &str) -> u64 {
    serde_json::from_str::<Value>(line).unwrap()["time"]
        .as_u64()
        .unwrap()
}

/// Runs `sluice run pipeline` over `file` with `args` (writing `{tag}-{process}.jsonl` in
/// `dir`), in one process or `processes` on loopback; the rows of every process.
pub fn run_pipeline(
    dir: &Path,
    tag: &str,
    pipeline: &str,
    file: &Path,
    args: &[&str],
    processes: u32,
) -> Vec<Value> {
    let source = format!("file:{}", file.display());
    let out = dir.join(format!("{tag}-{{process}}.jsonl"));
    let sink = format!("file:{}", out.display());
    let port = free_port_pair().to_string();
    let n = processes.to_string();
    let mut all = vec!["run", pipeline, "--source", &source, "--sink", &sink];
    all.extend_from_slice(args);
    if processes > 1 {
        all.extend_from_slice(&["-n", &n, "--port", &port]);
    }
    let run = sluice(&all);
    assert!(run.status.success(), "sluice {all:?}: {}", stderr(&run));
    if processes > 1 {
        (0..processes)
            .flat_map(|p| read_rows(&dir.join(format!("{tag}-{p}.jsonl"))))
            .collect()
    } else {
        read_rows(&out)
    }
}

/// Runs `pipeline` (with `args`) over `lines` — JSON lines with a flat `time` — in order on one
/// worker, disordered within the watermark delay (3 s) on two, and on two processes; each time
/// `compare` of its rows must equal `compare(expected)`.
pub fn assert_pipeline_everywhere(
    d: &Path,
    pipeline: &str,
    args: &[&str],
    lines: &[String],
    expected: &[Value],
    compare: impl Fn(&[Value]) -> Vec<String>,
) {
    let file = write_lines(d, &format!("{pipeline}.jsonl"), lines);
    let disordered = write_lines(
        d,
        &format!("{pipeline}-disordered.jsonl"),
        &disorder_by(lines, 3_000, 7, time_field),
    );
    for (name, input, workers, processes) in [
        ("in-order-w1", &file, "1", 1),
        ("disordered-w2", &disordered, "2", 1),
        ("two-processes", &disordered, "1", 2),
    ] {
        let mut all = args.to_vec();
        all.extend_from_slice(&["-w", workers]);
        let tag = format!("{pipeline}-{name}");
        let got = run_pipeline(d, &tag, pipeline, input, &all, processes);
        assert_eq!(compare(&got), compare(expected), "{tag}");
    }
}

/// `events` generated behaviours of 150 users on 200 items at 1,000 a second (`sluice gen
/// recommend`), written to `dir/name`: the file and its lines.
pub fn generated_behaviours(dir: &Path, name: &str, events: u64) -> (PathBuf, Vec<String>) {
    let path = dir.join(name);
    let events = events.to_string();
    let gen = sluice(&[
        "gen",
        "recommend",
        "--users",
        "150",
        "--items",
        "200",
        "--rate",
        "1000",
        "--events",
        &events,
        "-o",
        path.to_str().unwrap(),
    ]);
    assert!(gen.status.success(), "sluice gen: {}", stderr(&gen));
    let lines = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    (path, lines)
}

/// Runs `pipeline` over `lines` (one worker) with a dead-letter file: its rows and dead letters.
pub fn with_dead_letters(
    dir: &Path,
    tag: &str,
    pipeline: &str,
    lines: &[String],
) -> (Vec<Value>, Vec<Value>) {
    let file = write_lines(dir, &format!("{tag}.jsonl"), lines);
    let letters = dir.join(format!("{tag}-dead.jsonl"));
    let out = dir.join(format!("{tag}-out.jsonl"));
    let source = format!("file:{}", file.display());
    let sink = format!("file:{}", out.display());
    let run = sluice(&[
        "run",
        pipeline,
        "--source",
        &source,
        "--sink",
        &sink,
        "--dead-letter",
        letters.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "sluice run {pipeline}: {}",
        stderr(&run)
    );
    (read_rows(&out), read_rows(&letters))
}
