#!/usr/bin/env python3
"""Early warning, stuck sensors and offline devices, measured on the generator's labelled faults.

    scripts/iot-faults.py [--sluice PATH] [--devices 200] [--epochs 8] [-w 2]

The IoT generator injects, per device and epoch of 4,096 cycles, one fault in twenty: spikes,
stuck sensors (one metric repeats a value for 300 cycles), drift, and degradation — vibration
and temperature rise over 1,200 cycles, then the device fails (goes silent; a spare takes its
slot). Faulty readings carry a `fault` label, degrading ones the failure time `fails_at`.

The script runs `sluice run iot --param detectors=warning,stuck,offline` over the generated
fleet (200 devices reporting once a second, 8 epochs: ~9 days of event time, 19.7 M readings),
reads the labels from `sluice gen` with the same settings, and prints:

- early warning: degradations warned before they failed, the lead time (failure time − warning
  time) and the error of the predicted failure time, and warnings that no failure followed
  (false alarms, per 1,000 device-days);
- stuck sensors: stuck episodes found, how long after the sensor froze, and false alerts;
- offline: failed devices reported offline, and how long after they went silent.
"""

import argparse
import json
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RATE_PER_DEVICE = 3  # readings per device per cycle; a cycle is one second below
EPOCH_CYCLES = 4096
DEGRADATION_CYCLES = 1200


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def settings(args):
    events = args.devices * 3 * EPOCH_CYCLES * args.epochs
    return ["--devices", str(args.devices), "--rate", str(args.devices * RATE_PER_DEVICE),
            "--events", str(events), "--seed", str(args.seed)]


def labels(args):
    """Degradations {(device, fails_at): first degrading time}, stuck episodes
    {(device, metric): [(first, last)]}, from the generated readings with a fault label."""
    degradations = {}
    stuck = defaultdict(list)
    command = [args.sluice, "gen", "iot", *settings(args)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, bufsize=1 << 20) as gen:
        for line in gen.stdout:
            if '"fault"' not in line:
                continue
            r = json.loads(line)
            if r["fault"] == "degradation":
                key = (r["device"], r["fails_at"])
                degradations[key] = min(degradations.get(key, r["time"]), r["time"])
            elif r["fault"] == "stuck":
                episodes = stuck[(r["device"], r["metric"])]
                if episodes and r["time"] - episodes[-1][1] <= 2_000:
                    episodes[-1][1] = r["time"]
                else:
                    episodes.append([r["time"], r["time"]])
    if gen.returncode:
        sys.exit(f"sluice gen failed ({gen.returncode})")
    return degradations, stuck


def alerts(args, out):
    command = [args.sluice, "run", "iot", "--source", "iot", *settings(args),
               "--param", "detectors=warning,stuck,offline", "--param", "offline_after=10s",
               "-w", str(args.workers), "--sink", f"file:{out}", "--report", "none"]
    log("running:", " ".join(command))
    subprocess.run(command, check=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    return rows


def quantiles(xs):
    if not xs:
        return "n/a"
    xs = sorted(xs)
    pick = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))]
    return f"median {statistics.median(xs):.0f} s (p10 {pick(0.1):.0f} s, p90 {pick(0.9):.0f} s)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sluice", default=str(ROOT / "target/release/sluice"))
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("-w", "--workers", type=int, default=2)
    args = parser.parse_args()
    work = ROOT / "out" / "iot-faults"
    work.mkdir(parents=True, exist_ok=True)
    degradations, stuck = labels(args)
    rows = alerts(args, work / "alerts.jsonl")
    device_days = args.devices * args.epochs * EPOCH_CYCLES / 86_400

    # Early warning: the first warning of the device in its degradation, before the failure.
    warnings = [r for r in rows if r["kind"] == "warning" and r["status"] == "warning"]
    leads, errors, matched = [], [], set()
    for (device, fails_at), start in degradations.items():
        hits = [w for w in warnings if w["device"] == device and start <= w["time"] < fails_at]
        if hits:
            w = min(hits, key=lambda w: w["time"])
            matched.add(id(w))
            leads.append((fails_at - w["time"]) / 1000)
            errors.append((w["predicted_failure"] - fails_at) / 1000)
    false_warnings = [w for w in warnings if id(w) not in matched]
    print("early warning (vibration trend → failure level 4× baseline, horizon 1 h):")
    print(f"  degradations warned before failure: {len(leads)} of {len(degradations)}")
    print(f"  lead time: {quantiles(leads)} of a {DEGRADATION_CYCLES} s degradation")
    print(f"  predicted failure time − actual: {quantiles(errors)}")
    print(f"  false alarms: {len(false_warnings)} "
          f"({1000 * len(false_warnings) / device_days:.2f} per 1,000 device-days)")

    # Stuck sensors: an alert on the device and metric within the episode.
    stucks = [r for r in rows if r["kind"] == "stuck" and r["status"] == "stuck"]
    delays, found, used = [], 0, set()
    episodes = sum(len(v) for v in stuck.values())
    for (device, metric), spans in stuck.items():
        for first, last in spans:
            hits = [s for s in stucks if s["device"] == device and s["metric"] == metric
                    and first <= s["time"] <= last]
            if hits:
                s = min(hits, key=lambda s: s["time"])
                used.add(id(s))
                found += 1
                delays.append((s["time"] - first) / 1000)
    false_stuck = [s for s in stucks if id(s) not in used]
    print("stuck sensors (30 identical readings in a row):")
    print(f"  episodes found: {found} of {episodes}; after {quantiles(delays)}")
    print(f"  false alerts: {len(false_stuck)}")

    # Offline: failed devices reported offline after their failure.
    offline = [r for r in rows if r["kind"] == "offline" and r["status"] == "offline"]
    after, reported = [], 0
    for (device, fails_at) in degradations:
        hits = [o for o in offline if o["device"] == device and o["time"] >= fails_at]
        if hits:
            reported += 1
            after.append((min(o["time"] for o in hits) - fails_at) / 1000)
    print("offline (10 s timeout):")
    print(f"  failed devices reported offline: {reported} of {len(degradations)}; "
          f"after {quantiles(after)}")
    print(f"  offline alerts in all: {len(offline)}")


if __name__ == "__main__":
    main()
