#!/usr/bin/env python3
"""Recommendation quality on real data, Sluice side by side with a baseline and with river, and
customer features side by side with lifetimes.

    scripts/recommend-quality.py [--sluice PATH] [--workers W] [--param NAME=VALUE ...]

Data (fetched from PyPI with `pip download --no-deps` into .tools/wheels, ignored; sha256
checked; the files read out of the wheels; never committed):
  - recbole 1.2.1: `recbole/dataset_example/ml-100k/ml-100k.inter` — MovieLens-100K, 100,000
    ratings (943 users, 1,682 films) with timestamps;
  - Lifetimes 0.11.3: `lifetimes/datasets/CDNOW_master.txt` — 69,659 CD purchases (1997–98).

MovieLens is replayed in timestamp order (ties: user, item) as rating actions, prequentially:
  - HR@10: for every rating whose user has rated before, was the film in the user's top 10 as it
    stood just before (every recommendation change stamped earlier applied)? `sluice run
    recommend` against a popularity baseline (the 10 most-rated films so far that the user has
    not rated).
  - MAE/RMSE: `sluice run recommend_ratings` predicts each rating before learning it; river 0.26.1
    (`reco.BiasedMF`, 10 factors, SGD 0.025 biases / 0.05 factors, N(0, 0.1) initial factors — the
    settings of river's MovieLens benchmark) predicts then learns the same ratings in the same
    order.
CDNOW: `sluice run recommend_rfm` writes each customer's features at every purchase day; for each
customer's last row, lifetimes' `summary_data_from_transaction_data(freq="D",
freq_multiplier=7)` with the observation period ending that day must give the same frequency,
recency, T and monetary value.
"""

import argparse
import bisect
import json
import math
import subprocess
import sys
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import ROOT, RIVER, install_river, log, wheel_file  # noqa: E402

RECBOLE_WHEEL = "recbole-1.2.1-py3-none-any.whl"
RECBOLE_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
ML100K = "recbole/dataset_example/ml-100k/ml-100k.inter"
LIFETIMES_WHEEL = "Lifetimes-0.11.3-py3-none-any.whl"
LIFETIMES_SHA256 = "261e3dc89977c2b60767ca6728aaa29d429de0c814635070a749c36555895da8"
CDNOW = "lifetimes/datasets/CDNOW_master.txt"
WORK = ROOT / "target" / "recommend-quality"
DAY_MS = 86_400_000


def sluice(binary, pipeline, source, sink, workers, params):
    cmd = [binary, "run", pipeline, "--source", f"file:{source}", "--sink", f"file:{sink}",
           "-w", str(workers)]
    for p in params:
        cmd += ["--param", p]
    log("$", " ".join(cmd))
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(sink) as f:
        return [json.loads(line) for line in f]


def movielens():
    text = wheel_file("recbole==1.2.1", RECBOLE_WHEEL, RECBOLE_SHA256, ML100K).decode()
    rows = []
    for line in text.splitlines()[1:]:
        user, item, rating, ts = line.split("\t")
        rows.append((int(float(ts)) * 1000, int(user), int(item), float(rating)))
    rows.sort()
    return rows


def hit_rates(ratings, changes, k=10):
    """HR@k of Sluice's lists and of the popularity baseline over the same ratings."""
    changes.sort(key=lambda c: c["time"])
    lists = defaultdict(dict)  # user -> item -> score
    rated = defaultdict(set)
    popularity = defaultdict(int)
    by_count = []  # (−count, item) of every rated film, sorted
    at = 0
    hits = pop_hits = total = 0
    for time, user, item, _ in ratings:
        while at < len(changes) and changes[at]["time"] < time:
            c = changes[at]
            row = lists[c["user"]]
            if c["diff"] > 0:
                row[c["item"]] = c["score"]
            elif row.get(c["item"]) == c["score"]:
                del row[c["item"]]
            at += 1
        if rated[user]:
            total += 1
            hits += item in lists[user]
            top = []
            for _, other in by_count:
                if other not in rated[user]:
                    top.append(other)
                    if len(top) == k:
                        break
            pop_hits += item in top
        rated[user].add(item)
        popularity[item] += 1
        _bump(by_count, item, popularity)
    return hits / total, pop_hits / total, total


def _bump(by_count, item, popularity):
    """Keeps `by_count` (sorted (−count, item)) in order after `item`'s count went up by one."""
    old = (-(popularity[item] - 1), item)
    i = bisect.bisect_left(by_count, old)
    if i < len(by_count) and by_count[i] == old:
        by_count.pop(i)
    bisect.insort(by_count, (-popularity[item], item))


def river_mae(ratings):
    install_river()
    from river import optim, reco

    model = reco.BiasedMF(
        n_factors=10,
        bias_optimizer=optim.SGD(0.025),
        latent_optimizer=optim.SGD(0.05),
        latent_initializer=optim.initializers.Normal(mu=0.0, sigma=0.1, seed=73),
        l2_bias=0.0,
        l2_latent=0.0,
    )
    abs_err = sq_err = 0.0
    for _, user, item, rating in ratings:
        p = model.predict_one(user, item)
        abs_err += abs(p - rating)
        sq_err += (p - rating) ** 2
        model.learn_one(user, item, rating)
    n = len(ratings)
    return abs_err / n, math.sqrt(sq_err / n)


def errors(predictions, key):
    n = len(predictions)
    mae = sum(abs(p[key] - p["rating"]) for p in predictions) / n
    rmse = math.sqrt(sum((p[key] - p["rating"]) ** 2 for p in predictions) / n)
    return mae, rmse


def cdnow():
    text = wheel_file("Lifetimes==0.11.3", LIFETIMES_WHEEL, LIFETIMES_SHA256, CDNOW).decode()
    rows = []
    for n, line in enumerate(text.splitlines()):
        parts = line.split()
        if len(parts) != 4 or not parts[1].isdigit():
            continue  # the header
        customer, date, _cds, amount = parts
        day = datetime.strptime(date, "%Y%m%d").replace(tzinfo=timezone.utc)
        rows.append((int(day.timestamp() * 1000), int(customer), n, float(amount)))
    rows.sort()
    return rows


def lifetimes_check(purchases, features):
    """Compares each customer's last Sluice row with lifetimes' summary as of that row's day."""
    lifetimes_dir = RIVER.parent / "lifetimes-0.11.3"
    if not (lifetimes_dir / ".installed").exists():
        log(f"installing lifetimes 0.11.3 and pandas into {lifetimes_dir}")
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--target", str(lifetimes_dir)]
        subprocess.run(pip + ["--no-deps", str(ROOT / ".tools" / "wheels" / LIFETIMES_WHEEL)],
                       check=True)
        subprocess.run(pip + ["pandas==2.2.3", "scipy==1.14.1", "autograd==1.7.0",
                              "dill==0.3.9"], check=True)
        (lifetimes_dir / ".installed").touch()
    sys.path.insert(0, str(lifetimes_dir))
    import pandas as pd
    from lifetimes.utils import summary_data_from_transaction_data

    last = {}
    for f in features:
        last[f["customer"]] = f
    frame = pd.DataFrame({
        "customer": [c for _, c, _, _ in purchases],
        "date": pd.to_datetime([t for t, _, _, _ in purchases], unit="ms"),
        "amount": [a for _, _, _, a in purchases],
    })
    by_day = defaultdict(list)
    for customer, f in last.items():
        by_day[f["time"] // DAY_MS].append(customer)
    worst = {"frequency": 0.0, "recency": 0.0, "T": 0.0, "monetary_value": 0.0}
    for day, customers in sorted(by_day.items()):
        end = pd.Timestamp(day * DAY_MS, unit="ms")
        summary = summary_data_from_transaction_data(
            frame[frame["date"] <= end], "customer", "date", monetary_value_col="amount",
            observation_period_end=end, freq="D", freq_multiplier=7)
        for c in customers:
            ours, theirs = last[c], summary.loc[c]
            for mine, key in (("frequency", "frequency"), ("recency", "recency"), ("age", "T"),
                              ("monetary", "monetary_value")):
                worst[key] = max(worst[key], abs(float(ours[mine]) - float(theirs[key])))
    return len(last), worst


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sluice", default=str(ROOT / "target" / "release" / "sluice"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--param", action="append", default=[],
                        help="a recommend parameter, e.g. history=20 (repeatable)")
    parser.add_argument("--no-cdnow", action="store_true", help="MovieLens only")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)

    ratings = movielens()
    source = WORK / "ml-100k.jsonl"
    with open(source, "w") as f:
        for time, user, item, rating in ratings:
            f.write(json.dumps({"time": time, "user": user, "item": item, "action": "rating",
                                "value": rating}) + "\n")
    changes = sluice(args.sluice, "recommend", source, WORK / "ml-recommend.jsonl",
                     args.workers, args.param)
    hr, pop_hr, total = hit_rates(ratings, changes)
    predictions = sluice(args.sluice, "recommend_ratings", source, WORK / "ml-ratings.jsonl",
                         args.workers, [])
    assert len(predictions) == len(ratings), (len(predictions), len(ratings))
    mae, rmse = errors(predictions, "prediction")
    raw_mae, raw_rmse = errors(predictions, "raw")
    river = river_mae(ratings)

    purchases = [] if args.no_cdnow else cdnow()
    cd_source = WORK / "cdnow.jsonl"
    with open(cd_source, "w") as f:
        for time, customer, _, amount in purchases:
            f.write(json.dumps({"time": time, "user": customer, "item": 0,
                                "action": "purchase", "value": amount}) + "\n")
    if purchases:
        features = sluice(args.sluice, "recommend_rfm", cd_source, WORK / "cdnow-rfm.jsonl",
                          args.workers, [])
        customers, worst = lifetimes_check(purchases, features)

    print(f"MovieLens-100K ({len(ratings):,} ratings, {total:,} of them by users who had rated "
          f"before), params {args.param or 'default'}")
    print("| measure | Sluice | baseline |")
    print("|---|---|---|")
    print(f"| HR@10, next rated film in the top 10 | {hr:.4f} | popularity {pop_hr:.4f} |")
    print(f"| rating MAE (RMSE), prequential | {mae:.4f} ({rmse:.4f}) | river BiasedMF "
          f"{river[0]:.4f} ({river[1]:.4f}) |")
    print(f"| — the same model unclipped | {raw_mae:.4f} ({raw_rmse:.4f}) | |")
    if not purchases:
        return
    print(f"CDNOW ({len(purchases):,} purchases, {customers:,} customers): largest difference to "
          "lifetimes at each customer's last purchase day: "
          + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))


if __name__ == "__main__":
    main()
