#!/usr/bin/env python3
"""Sustained overload: a query with the generator paced far beyond what it can process.

    scripts/overload.py [--queries q4,q5,q7] [--rate 8000000] [--speed 1] [--minutes 10]
                        [--workers 2] [--sustainable 500000] [--binary target/release/sluice]

For each query, one run paced at --rate for --minutes (`sluice run Q --paced --rate R --unbounded
--stop-after Dm --sink null --report json`), and, for comparison, one minute at the --sustainable
rate. Two kinds of overload:
  - `--rate 8000000`: records arrive 16x faster *and* each second of event time holds 16x the
    records (more auctions per window, more bids waiting out the watermark delay): the state a
    query must hold grows with that density, whatever the engine;
  - `--rate 500000 --speed 16`: the same records as the sustainable run, arriving 16x faster
    (a backlog replayed at 16x): only flow control stands between the arrival rate and memory. Prints the resident memory per minute (peak of the per-second timeline), how far the source
fell behind its schedule, the time flow control paused the source and the most records in flight,
and the issue's verdict: the last minute's peak RSS at most 1.25x the peak of minute 2 and at most
1.5x the peak at the sustainable rate. Results go to stdout as a Markdown table; the JSON reports
are kept under --work. Not part of the quick test suite (it runs for minutes per query).
"""

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def report(cmd, out):
    """Runs `sluice … --report json` as `cmd`, keeps its report in `out` and returns it; exits
    with the command's last error line if it fails. (`scripts/load-shapes.py` uses it too.)"""
    with open(out, "wb") as f:
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.PIPE)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed (exit {done.returncode}): "
                 f"{done.stderr.decode(errors='replace').strip().splitlines()[-1:]}")
    with open(out) as f:
        return json.load(f)


def run(binary, query, rate, seconds, workers, out, speed=1):
    cmd = [binary, "run", query, "-w", str(workers), "--paced", "--rate", str(rate), "--unbounded",
           "--stop-after", f"{seconds}s", "--sink", "null", "--report", "json", "--progress", "off"]
    if speed > 1:
        cmd += ["--speed", str(speed)]
    return report(cmd, out)


def per_minute(report, minutes):
    """Peak RSS (MiB) of each whole minute of the run's timeline (the drain after the input
    ends is left out)."""
    peaks = {}
    for point in report.get("timeline", []):
        rss = point.get("rss_mib")
        if rss is None:
            continue
        minute = int((point["t_s"] - 1) // 60)
        if minute >= minutes:
            continue
        peaks[minute] = max(peaks.get(minute, 0.0), rss)
    return [peaks[m] for m in sorted(peaks)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", default="q4,q5,q7")
    ap.add_argument("--rate", type=int, default=8_000_000)
    ap.add_argument("--speed", type=int, default=1)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--sustainable", type=int, default=500_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "sluice"))
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "overload"))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    print(f"| query | rate × speed | minutes | events/s | RSS peak per minute (MiB) | sustainable-rate peak | "
          f"behind at the end | paused | max in flight | plateau |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for q in a.queries.split(","):
        base = run(a.binary, q, a.sustainable, 60, a.workers, os.path.join(a.work, f"{q}-sustainable.json"))
        base_peak = max(per_minute(base, 1) or [0.0])
        seconds = int(a.minutes * 60)
        tag = f"{q}-overload" + (f"-x{a.speed}" if a.speed > 1 else "")
        over = run(a.binary, q, a.rate, seconds, a.workers, os.path.join(a.work, f"{tag}.json"), a.speed)
        peaks = per_minute(over, max(1, int(a.minutes)))
        last = peaks[-1] if peaks else 0.0
        second = peaks[1] if len(peaks) > 1 else last
        ok = last <= 1.25 * second and last <= 1.5 * base_peak
        verdict = "yes" if ok else (f"no ({last / second:.2f}x minute 2, {last / base_peak:.2f}x sustainable)"
                                    if second and base_peak else "no")
        print(f"| {q} | {a.rate:,} × {a.speed} | {a.minutes:g} | {over['events_per_second'] / 1e6:.2f} M | "
              f"{', '.join(f'{p:.0f}' for p in peaks)} | {base_peak:.0f} | {over['max_behind_ms'] / 1000:.1f} s | "
              f"{over.get('paused_ms', 0) / 1000:.1f} s | {over.get('max_in_flight', 0):,} | {verdict} |",
              flush=True)


if __name__ == "__main__":
    main()
