#!/usr/bin/env python3
"""Throughput with checkpoints every second vs without, and what the checkpoints cost.

For each query, runs the same generator input with a file sink alternately without and with
`--checkpoint-dir` (default interval 1 s of event time, at most one checkpoint per second of wall
clock), --runs times each, and prints the median wall time of each, events/s, the ratio, and the
checkpoints' count, median/max duration (named → manifest durable) and median/max size as the
run's coordinator logs them.

    scripts/bench-checkpoints.py                         # q5, q7 (30 M events), q4 (4 M), -w 2
    scripts/bench-checkpoints.py --queries q9 --events 4000000 --runs 3

Needs a release build (cargo build --release). Writes under target/bench-checkpoints/ (ignored).
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVENTS = {"q4": 4_000_000, "q9": 4_000_000}
SUMMARY = re.compile(
    r"(\d+) checkpoint\(s\) in ([\d.]+) ms median \(max ([\d.]+) ms\).*?([\d.]+) MiB median \(max ([\d.]+) MiB\)")


def run(binary, query, events, workers, work, checkpoints):
    out = os.path.join(work, f"{query}.jsonl")
    ck = os.path.join(work, f"ck-{query}")
    shutil.rmtree(ck, ignore_errors=True)
    args = [binary, "run", query, "--events", str(events), "-w", str(workers),
            "--sink", f"file:{out}", "--report", "none"]
    env = dict(os.environ)
    if checkpoints:
        args += ["--checkpoint-dir", ck]
        env["SLUICE_LOG"] = "warn,sluice::checkpoint=info"
    started = time.monotonic()
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    took = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed: {done.stderr}")
    summary = SUMMARY.search(done.stderr) if checkpoints else None
    return took, summary


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", default="q5,q7,q4")
    ap.add_argument("--events", type=int, help="generator events per run (default 30 M; q4, q9 4 M)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "sluice"))
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench-checkpoints"))
    args = ap.parse_args()
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} is missing: run cargo build --release first")
    os.makedirs(args.work, exist_ok=True)
    print(f"| query | events | off: median s | off: M events/s | 1 s checkpoints: median s | M events/s | "
          f"overhead | checkpoints | duration median / max (ms) | size median / max (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for query in args.queries.split(","):
        events = args.events or EVENTS.get(query, 30_000_000)
        off, on, summaries = [], [], []
        run(args.binary, query, events, args.workers, args.work, False)  # warm-up
        for _ in range(args.runs):
            off.append(run(args.binary, query, events, args.workers, args.work, False)[0])
            took, summary = run(args.binary, query, events, args.workers, args.work, True)
            on.append(took)
            if summary:
                summaries.append(summary)
        a, b = statistics.median(off), statistics.median(on)
        ratios = sorted(y / x for x, y in zip(off, on))
        count = statistics.median(int(s.group(1)) for s in summaries) if summaries else 0
        dur = (f"{statistics.median(float(s.group(2)) for s in summaries):.0f} / "
               f"{max(float(s.group(3)) for s in summaries):.0f}") if summaries else "-"
        size = (f"{statistics.median(float(s.group(4)) for s in summaries):.2f} / "
                f"{max(float(s.group(5)) for s in summaries):.2f}") if summaries else "-"
        print(f"| {query} | {events / 1e6:.0f} M | {a:.2f} | {events / a / 1e6:.2f} | {b:.2f} | "
              f"{events / b / 1e6:.2f} | {100 * (statistics.median(ratios) - 1):+.1f} % | {count:.0f} | "
              f"{dur} | {size} |", flush=True)


if __name__ == "__main__":
    main()
