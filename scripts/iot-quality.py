#!/usr/bin/env python3
"""IoT detection quality, Sluice side by side with published figures: anomalies on NASA shuttle
sensor data (against river), change points on office occupancy data (against TCPDBench).

    scripts/iot-quality.py [--sluice PATH]

river 0.26.1's wheel ships `river/datasets/shuttle.csv.gz`: 49,097 shuttle readings of nine
sensors f1..f9 with an `anomaly` label (7.2 % anomalies). The wheel is fetched from PyPI with
`pip download --no-deps` into .tools/wheels (ignored), its sha256 checked, the file read out of
the wheel; the data is never committed.

The readings are replayed as one device's stream — sample i at event time base + i s, one
reading per sensor — through `sluice run iot_scores --param metrics=f1,…,f9`, which scales each
sample online (min-max) and scores it with Half-Space Trees (10 trees, height 8, window 250)
before learning it. river (installed into .tools/) runs `MinMaxScaler | HalfSpaceTrees` with the
same settings on the same samples in the same order, scoring each before learning it. The trees
are random — another seed, other trees, and Sluice draws them with another generator than
Python's — so both run with five seeds. Printed: the ROC AUC of each run over the whole stream,
and the medians.

The same wheel ships `river/drift/datasets/occupancy.csv` (509 samples of temperature, humidity,
light and CO2 in an office, with five annotators' change points, as in TCPDBench). It is replayed
as one device's samples through `sluice run iot_changes`; the changes found are scored with
TCPDBench's F1 (margin 5 samples), next to the published BOCPD (default settings) and
no-detection figures.
"""

import argparse
import csv
import gzip
import io
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import ROOT, install_river, log, roc_auc, wheel_file  # noqa: E402

RIVER_WHEEL = "river-0.26.1-cp311-cp311-manylinux_2_28_x86_64.whl"
RIVER_SHA256 = "6a11e1a9749beec3ea138efeb0205b2c5cea8d424e9deee306c8980faec01bef"
SHUTTLE = "river/datasets/shuttle.csv.gz"
OCCUPANCY = "river/drift/datasets/occupancy.csv"
# The five annotators' change points of the occupancy series (river's `drift.datasets.Occupancy`,
# from TCPDBench), sample indices.
OCCUPANCY_ANNOTATIONS = {
    "6": [238, 416],
    "8": [53, 143, 238, 417],
    "9": [53, 92, 142, 181, 236, 264, 341, 416, 436, 451, 506],
    "10": [1, 52, 91, 142, 181, 234, 267, 324, 360, 416, 451, 506],
    "12": [234, 415],
}
BASE_MS = 1_767_225_600_000
FEATURES = [f"f{i}" for i in range(1, 10)]
SEEDS = (42, 1, 2, 3, 4)


def shuttle_rows():
    text = gzip.decompress(wheel_file("river==0.26.1", RIVER_WHEEL, RIVER_SHA256, SHUTTLE))
    return list(csv.DictReader(io.StringIO(text.decode())))


def readings(rows, path):
    """The shuttle samples as readings of device `shuttle`, one per sensor, a second apart."""
    with open(path, "w") as f:
        for i, r in enumerate(rows):
            fault = "anomaly" if r["anomaly"] == "1" else None
            for name in FEATURES:
                f.write(json.dumps({
                    "time": BASE_MS + 1000 * i, "device": "shuttle", "site": "nasa",
                    "model": "shuttle", "metric": name, "value": float(r[name]), "fault": fault,
                }) + "\n")


def true_positives(truth, predicted, margin):
    """TCPDBench's matching: each true change takes the closest unused prediction within margin."""
    left, hits = set(predicted), set()
    for tau in sorted(truth):
        close = sorted((abs(tau - x), x) for x in left if abs(tau - x) <= margin)
        if close:
            hits.add(tau)
            left.remove(close[0][1])
    return hits


def f1_score(annotations, predicted, margin=5):
    """TCPDBench's F1: precision against every annotator's changes pooled, recall averaged over
    annotators; index 0 counts as a change in every set."""
    sets = [set(a) | {0} for a in annotations.values()]
    found = set(predicted) | {0}
    pooled = set().union(*sets)
    precision = len(true_positives(pooled, found, margin)) / len(found)
    recall = sum(len(true_positives(t, found, margin)) / len(t) for t in sets) / len(sets)
    return 2 * precision * recall / (precision + recall)


def occupancy(args, out):
    text = wheel_file("river==0.26.1", RIVER_WHEEL, RIVER_SHA256, OCCUPANCY).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    stream, changes = out / "occupancy.jsonl", out / "occupancy-changes.jsonl"
    metrics = ["V1", "V2", "V3", "V4"]
    with open(stream, "w") as f:
        for i, r in enumerate(rows):
            for name in metrics:
                f.write(json.dumps({
                    "time": BASE_MS + 1000 * i, "device": "room", "site": "office",
                    "model": "occupancy", "metric": name, "value": float(r[name]),
                }) + "\n")
    subprocess.run(
        [args.sluice, "run", "iot_changes", "--source", f"file:{stream}", "--sink",
         f"file:{changes}", "--param", "metrics=" + ",".join(metrics), "--report", "none"],
        check=True,
    )
    with open(changes) as f:
        found = sorted((json.loads(line)["time"] - BASE_MS) // 1000 for line in f)
    print()
    print(f"Change points on river's occupancy data ({len(rows)} samples, 5 annotators), "
          "TCPDBench F1 with margin 5:")
    print("| detector | changes found | F1 |")
    print("|---|---|---|")
    print(f"| Sluice `iot_changes` | {len(found)} | {f1_score(OCCUPANCY_ANNOTATIONS, found):.3f} |")
    print("| BOCPD, TCPDBench default (published) | | 0.807 |")
    print(f"| no detection | 0 | {f1_score(OCCUPANCY_ANNOTATIONS, []):.3f} (published 0.341) |")
    log(f"changes at {found}")


def river_auc(rows, seed):
    from river import anomaly, compose, preprocessing

    model = compose.Pipeline(
        preprocessing.MinMaxScaler(),
        anomaly.HalfSpaceTrees(n_trees=10, height=8, window_size=250, seed=seed),
    )
    scores, labels = [], []
    for r in rows:
        x = {name: float(r[name]) for name in FEATURES}
        scores.append(model.score_one(x))
        model.learn_one(x)
        labels.append(r["anomaly"] == "1")
    return roc_auc(scores, labels)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sluice", default=str(ROOT / "target/release/sluice"))
    parser.add_argument("--out", default=str(ROOT / "out/iot-quality"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = shuttle_rows()
    log(f"shuttle: {len(rows)} samples, {sum(r['anomaly'] == '1' for r in rows)} anomalies")
    stream = out / "shuttle.jsonl"
    readings(rows, stream)
    labels = [r["anomaly"] == "1" for r in rows]
    ours = {}
    for seed in SEEDS:
        scores = out / f"shuttle-scores-{seed}.jsonl"
        subprocess.run(
            [args.sluice, "run", "iot_scores", "--source", f"file:{stream}", "--sink",
             f"file:{scores}", "--param", "metrics=" + ",".join(FEATURES),
             "--param", f"hst_seed={seed}", "--report", "none"],
            check=True,
        )
        with open(scores) as f:
            got = sorted((json.loads(line) for line in f), key=lambda r: r["time"])
        if len(got) != len(rows):
            sys.exit(f"{len(got)} scores for {len(rows)} samples")
        ours[seed] = roc_auc([r["score"] for r in got], [r["fault"] is not None for r in got])
    install_river()
    theirs = {seed: river_auc(rows, seed) for seed in SEEDS}
    print(f"ROC AUC over the whole stream, scored before learned ({len(rows)} samples, "
          f"{sum(labels)} anomalies), per tree seed {', '.join(map(str, SEEDS))}:")
    print("| detector | per seed | median |")
    print("|---|---|---|")
    for name, aucs in (("Sluice `iot_scores`", ours), ("river `MinMaxScaler | HalfSpaceTrees`", theirs)):
        values = [aucs[s] for s in SEEDS]
        print(f"| {name} | {', '.join(f'{v:.4f}' for v in values)} | "
              f"{statistics.median(values):.4f} |")
    occupancy(args, out)

if __name__ == "__main__":
    main()
