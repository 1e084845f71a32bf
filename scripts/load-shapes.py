#!/usr/bin/env python3
"""Load shapes beyond a steady rate: a 10x burst and its drain, and a hot key.

    scripts/load-shapes.py burst [--queries q5,q7] [--rate 500000] [--burst 10x@30s+10s]
                                 [--seconds 90] [--workers 2] [--binary target/release/sluice]
    scripts/load-shapes.py hot-key [--queries q5] [--events 20000000] [--percent 50]
                                   [--repeat 3] [--workers 2] [--binary target/release/sluice]

burst: the generator paced at --rate with --burst on its schedule (`sluice run Q --paced --rate R
--burst 10x@30s+10s --unbounded --stop-after 90s --sink null --report json`). From the report's
per-second timeline: the steady p99 before the burst (the worst per-second p99 of the 20 s before
it), the worst second, and the drain time — from the end of the burst to the first of 5
consecutive seconds whose p99 is back within 2x the steady p99 (+1 ms). Latency is measured from
each record's scheduled arrival, so the queue a burst builds shows in full.

hot-key: the same query from the unpaced generator, with and without `--hot-key P` (P % of the
bids on one auction), median of --repeat runs: throughput, and the ratio.

Results go to stdout as Markdown tables; the JSON reports are kept under --work. Not part of the
quick test suite (minutes per query).
"""

import argparse
import os
import statistics
import sys

from overload import report as run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def seconds_of(text):
    """`30s` / `1m` / `500ms` as seconds (the forms the burst flag takes in practice)."""
    text = text.strip()
    for unit, scale in (("ms", 1e-3), ("s", 1.0), ("m", 60.0)):
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            return float(text[: -len(unit)]) * scale
    sys.exit(f"cannot read the duration {text!r} (use e.g. 30s)")


def drain(timeline, start, end, settle=5):
    """(steady p99 ms, worst p99 ms, drain seconds or None) from a per-second timeline. The
    bound is the worst second of the steady state, not its median: a sliding window fires every
    slide, so its seconds alternate between quiet and firing."""
    p99 = {int(round(p["t_s"])): p["p99_us"] / 1000 for p in timeline if p.get("p99_us") is not None}
    before = [v for t, v in p99.items() if start - 20 < t <= start]
    if not before:
        return None, None, None
    steady = max(before)
    worst = max((v for t, v in p99.items() if t > start), default=steady)
    bound = 2 * steady + 1
    last = max(p99) if p99 else 0
    t = int(end) + 1
    while t + settle - 1 <= last:
        if all(p99.get(u, float("inf")) <= bound for u in range(t, t + settle)):
            return steady, worst, t - 1 - end
        t += 1
    return steady, worst, None


def burst(a):
    factor, rest = a.burst.split("x@")
    start_text, length_text = rest.split("+")
    start, length = seconds_of(start_text), seconds_of(length_text)
    print(f"| query | rate | burst | events/s (run) | steady p99 | worst second p99 | drained after |")
    print("|---|---|---|---|---|---|---|")
    for q in a.queries.split(","):
        cmd = [a.binary, "run", q, "-w", str(a.workers), "--paced", "--rate", str(a.rate),
               "--burst", a.burst, "--unbounded", "--stop-after", f"{a.seconds}s",
               "--sink", "null", "--report", "json", "--progress", "off"]
        r = run(cmd, os.path.join(a.work, f"{q}-burst.json"))
        steady, worst, drained = drain(r["timeline"], start, start + length)
        fmt = lambda v: "n/a" if v is None else f"{v:,.1f} ms"
        done = "not within the run" if drained is None else f"{drained:.0f} s"
        print(f"| {q} | {a.rate:,} | {factor}x for {length:g} s at {start:g} s | "
              f"{r['events_per_second'] / 1e6:.2f} M | {fmt(steady)} | {fmt(worst)} | {done} |",
              flush=True)


def hot_key(a):
    print(f"| query | events | hot key | events/s per worker (median of {a.repeat}) | vs no hot key |")
    print("|---|---|---|---|---|")
    for q in a.queries.split(","):
        medians = {}
        for percent in (0, a.percent):
            rates = []
            for i in range(a.repeat):
                cmd = [a.binary, "run", q, "-w", str(a.workers), "--events", str(a.events),
                       "--sink", "null", "--report", "json", "--progress", "off"]
                if percent:
                    cmd += ["--hot-key", str(percent)]
                r = run(cmd, os.path.join(a.work, f"{q}-hot{percent}-{i}.json"))
                rates.append(r["events_per_second_per_worker"])
            medians[percent] = statistics.median(rates)
        for percent in (0, a.percent):
            ratio = medians[percent] / medians[0]
            print(f"| {q} | {a.events:,} | {percent} % | {medians[percent] / 1e6:.2f} M | {ratio:.2f}x |",
                  flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="shape", required=True)
    b = sub.add_parser("burst")
    b.add_argument("--queries", default="q5,q7")
    b.add_argument("--rate", type=int, default=500_000)
    b.add_argument("--burst", default="10x@30s+10s")
    b.add_argument("--seconds", type=int, default=90)
    h = sub.add_parser("hot-key")
    h.add_argument("--queries", default="q5")
    h.add_argument("--events", type=int, default=20_000_000)
    h.add_argument("--percent", type=int, default=50)
    h.add_argument("--repeat", type=int, default=3)
    for p in (b, h):
        p.add_argument("--workers", type=int, default=2)
        p.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "sluice"))
        p.add_argument("--work", default=os.path.join(ROOT, "target", "load-shapes"))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    burst(a) if a.shape == "burst" else hot_key(a)


if __name__ == "__main__":
    main()
