#!/usr/bin/env python3
"""Fraud model quality, Sluice side by side with river, on the same features in the same order.

    scripts/fraud-quality.py [--sluice PATH] [--events N] [--workers W]

Two labelled streams:
  (a) Sluice's generator: `sluice gen fraud --rate 20 --events N` (labels an hour after each
      transaction, in the stream);
  (b) evalml 0.84.0's demo data set `fraud_transactions.csv.gz` (99,992 card transactions with a
      `fraud` label; synthetic, written by others): the wheel is fetched from PyPI with
      `pip download --no-deps` into .tools/wheels (ignored), its sha256 checked, the file read out
      of the wheel. Each row becomes a transaction (card → account, store → merchant, customer
      present → card present / online); its label arrives a day later in event time.

Each stream is run through `sluice run fraud_scores` (-w 2), which scores every transaction with
the online model before the model learns from it (prequential), and writes the scores and the 15
features the model saw. river 0.26.1 (installed into .tools/, ignored) then replays the same
protocol on the same features: at each 100 ms stamp it scores that stamp's transactions with
`StandardScaler | LogisticRegression` as it stands, then learns the examples whose labels arrived
in the stamp (in label-time, id order) — the model Sluice's scorer uses for a stamp is the one that
learned every earlier stamp's labels. Printed: ROC AUC (exact, ties averaged) of Sluice's model,
river's model, and the rules alone, over every labelled transaction.
"""

import argparse
import csv
import gzip
import io
import json
import math
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import ROOT, install_river, log, roc_auc, wheel_file  # noqa: E402

EVALML_WHEEL = "evalml-0.84.0-py3-none-any.whl"
EVALML_SHA256 = "612e35a9b64f55f4b104855c92816508f5c16deb030c33fcf3ac250020f41ccc"
EVALML_FILE = "evalml/demos/data/fraud_transactions.csv.gz"
STAMP_MS = 100
EVALML_LABEL_DELAY_MS = 86_400_000


def evalml_rows():
    data = wheel_file("evalml==0.84.0", EVALML_WHEEL, EVALML_SHA256, EVALML_FILE)
    text = gzip.decompress(data).decode()
    return list(csv.DictReader(io.StringIO(text)))


def evalml_stream(path):
    """The evalml rows as a fraud stream (JSON lines), transactions and labels in time order."""
    records = []
    for r in evalml_rows():
        t = int(datetime.strptime(r["datetime"], "%Y-%m-%d %H:%M:%S")
                .replace(tzinfo=timezone.utc).timestamp() * 1000)
        tid, account = int(r["id"]), int(r["card_id"])
        present = r["customer_present"] == "True"
        records.append((t, 1, tid, {
            "kind": "transaction", "id": tid, "time": t, "account": account,
            "merchant": int(r["store_id"]), "amount": int(r["amount"]) / 100.0,
            "currency": r["currency"], "lat": float(r["lat"]), "lon": float(r["lng"]),
            "country": r["country"], "channel": "pos" if present else "online",
            "card_present": present,
        }))
        label_time = t + EVALML_LABEL_DELAY_MS
        records.append((label_time, 0, tid, {
            "kind": "label", "id": tid, "time": label_time, "account": account,
            "fraud": r["fraud"] == "True",
        }))
    records.sort(key=lambda x: x[:3])
    with open(path, "w") as f:
        for *_, rec in records:
            f.write(json.dumps(rec) + "\n")
    return len(records)


def evaluate(name, stream, scores_path, sluice, workers):
    log(f"{name}: sluice run fraud_scores -w {workers}")
    subprocess.run(
        [sluice, "run", "fraud_scores", "--source", f"file:{stream}", "-w", str(workers),
         "--sink", f"file:{scores_path}", "--report", "none"],
        check=True,
    )
    labels = {}
    with open(stream) as f:
        for line in f:
            rec = json.loads(line)
            if rec["kind"] == "label":
                labels[rec["id"]] = (rec["time"], rec["fraud"])
    scored = []
    with open(scores_path) as f:
        for line in f:
            s = json.loads(line)
            scored.append(s)

    from river import linear_model, preprocessing

    names = [f"x{i}" for i in range(len(scored[0]["features"]))]
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    # The protocol: per stamp, score its transactions, then learn its examples.
    by_stamp = {}
    for s in scored:
        stamp = s["time"] - s["time"] % STAMP_MS
        by_stamp.setdefault(stamp, ([], []))[0].append(s)
        if s["id"] in labels:
            label_time, fraud = labels[s["id"]]
            # A label before its transaction makes an example at the transaction's time.
            at = max(label_time, s["time"])
            by_stamp.setdefault(at - at % STAMP_MS, ([], []))[1].append((at, s["id"], s, fraud))
    river_score = {}
    for stamp in sorted(by_stamp):
        transactions, examples = by_stamp[stamp]
        for s in transactions:
            x = dict(zip(names, s["features"]))
            river_score[s["id"]] = model.predict_proba_one(x).get(True, 0.0)
        for _, _, s, fraud in sorted(examples, key=lambda e: (e[0], e[1])):
            model.learn_one(dict(zip(names, s["features"])), fraud)
    ids = [s["id"] for s in scored if s["id"] in labels]
    truth = [labels[i][1] for i in ids]
    by_id = {s["id"]: s for s in scored}
    sluice_auc = roc_auc([by_id[i]["model_score"] for i in ids], truth)
    river_auc = roc_auc([river_score[i] for i in ids], truth)
    rules_auc = roc_auc([by_id[i]["rules_score"] for i in ids], truth)
    largest = max(abs(by_id[i]["model_score"] - river_score[i]) for i in ids)
    return {
        "stream": name, "transactions": len(ids), "fraud": sum(truth),
        "sluice": sluice_auc, "river": river_auc, "rules": rules_auc, "max_diff": largest,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sluice", default=str(ROOT / "target/release/sluice"))
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="records of the generated stream (default 1,000,000)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "out/fraud-quality"))
    args = parser.parse_args()
    if not os.path.exists(args.sluice):
        sys.exit(f"{args.sluice} not found: cargo build --release first")
    install_river()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    generated = out / "generated.jsonl"
    log(f"generating {args.events} records at 20 transactions/s")
    subprocess.run([args.sluice, "gen", "fraud", "--rate", "20", "--events", str(args.events),
                    "-o", str(generated)], check=True)
    evalml = out / "evalml.jsonl"
    log(f"evalml: {evalml_stream(evalml)} records")

    results = [
        evaluate("generated", generated, out / "generated-scores.jsonl", args.sluice, args.workers),
        evaluate("evalml 0.84.0", evalml, out / "evalml-scores.jsonl", args.sluice, args.workers),
    ]
    print("| stream | labelled transactions | fraud | Sluice model AUC | river AUC | rules alone AUC | largest score difference |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['stream']} | {r['transactions']:,} | {r['fraud']:,} | {r['sluice']:.4f} | "
              f"{r['river']:.4f} | {r['rules']:.4f} | {r['max_diff']:.1e} |")
    bad = [r for r in results if math.isnan(r["sluice"]) or r["sluice"] < r["river"] - 1e-9]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
