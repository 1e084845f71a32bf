#!/usr/bin/env python3
"""Random kill -9 trials of a supervised two-process Sluice mesh.

For every query and source, a failure-free run gives the reference rows. Then each trial starts
the same run as a supervised local mesh (`-n 2`, `--checkpoint-dir`), kills one of its two
processes with SIGKILL at a random moment, lets the supervisor restore the mesh from its last
checkpoint, and compares the committed output (every process's file) with the reference as
multisets: rows missing (lost), rows there too often (duplicated), rows the reference never had
(wrong). Exactly-once means 0 / 0 / 0 in every trial.

    scripts/kill-trials.py                      # 20 trials each of q5, q7, q4 × generator, file
    scripts/kill-trials.py --trials 5 --queries q9 --sources generator

Needs a release build (cargo build --release). Writes under target/kill-trials/ (ignored).
"""

import argparse
import collections
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port_pair():
    """A port p with p and p + 1 free on loopback (probed, not reserved)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port > 65000:
            continue
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue


def rows_of(prefix):
    """The multiset of JSON rows in `prefix` and `prefix.p<i>` files."""
    rows = collections.Counter()
    directory, name = os.path.split(prefix)
    for f in os.listdir(directory):
        if f == name or (f.startswith(name + ".p") and f[len(name) + 2:].isdigit()):
            with open(os.path.join(directory, f)) as handle:
                for line in handle:
                    # Canonical text: key order and number formatting as serde_json writes them.
                    rows[json.dumps(json.loads(line), sort_keys=True)] += 1
    return rows


def compare(reference, got):
    lost = sum(max(0, n - got.get(r, 0)) for r, n in reference.items())
    dup = sum(max(0, n - reference[r]) for r, n in got.items() if r in reference)
    wrong = sum(n for r, n in got.items() if r not in reference)
    return lost, dup, wrong


def children_of(pid):
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return []
    return [int(p) for p in out.split()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--queries", default="q5,q7,q4")
    ap.add_argument("--sources", default="generator,file")
    ap.add_argument("--events", type=int, default=20_000_000, help="generator events per run")
    ap.add_argument("--file-events", type=int, default=3_000_000, help="events in the file source")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "sluice"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "kill-trials"))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} is missing: run cargo build --release first")
    os.makedirs(args.work, exist_ok=True)
    sources = {}
    for kind in args.sources.split(","):
        if kind == "generator":
            sources[kind] = ["--source", "nexmark", "--events", str(args.events)]
        elif kind == "file":
            path = os.path.join(args.work, f"events-{args.file_events}.jsonl")
            if not os.path.exists(path):
                print(f"writing {args.file_events} events to {path}", file=sys.stderr)
                subprocess.run([args.binary, "gen", "--events", str(args.file_events), "-o", path], check=True)
            sources[kind] = ["--source", f"file:{path}"]
        else:
            sys.exit(f"unknown source {kind!r}: generator or file (Kafka input is not checkpointed yet)")

    print("| query | source | trial | killed | at (s) | restarts | lost | duplicated | wrong | exit | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    failures = 0
    totals = []
    for query in args.queries.split(","):
        for kind, source in sources.items():
            case = os.path.join(args.work, f"{query}-{kind}")
            shutil.rmtree(case, ignore_errors=True)
            os.makedirs(case)
            reference_out = os.path.join(case, "reference.jsonl")
            started = time.monotonic()
            subprocess.run(
                [args.binary, "run", query, *source, "-n", "2", "--port", str(free_port_pair()),
                 "--sink", f"file:{reference_out}", "--report", "none"],
                check=True, stderr=subprocess.DEVNULL)
            duration = time.monotonic() - started
            reference = rows_of(reference_out)
            clean = [0, 0, 0]
            for trial in range(1, args.trials + 1):
                out = os.path.join(case, f"out-{trial}.jsonl")
                ck = os.path.join(case, f"ck-{trial}")
                log = open(os.path.join(case, f"trial-{trial}.log"), "w")
                started = time.monotonic()
                mesh = subprocess.Popen(
                    [args.binary, "run", query, *source, "-n", "2", "--port", str(free_port_pair()),
                     "--sink", f"file:{out}", "--checkpoint-dir", ck, "--checkpoint-min-pause", "200ms",
                     "--report", "none"],
                    stderr=log, stdout=subprocess.DEVNULL)
                at = rng.uniform(0.15, 0.85) * duration
                victim = rng.randrange(2)
                time.sleep(at)
                killed = "-"
                kids = children_of(mesh.pid)
                if len(kids) == 2 and mesh.poll() is None:
                    # The launcher starts process 0 first.
                    pid = sorted(kids)[victim]
                    try:
                        os.kill(pid, signal.SIGKILL)
                        killed = f"p{victim}"
                    except ProcessLookupError:
                        pass
                try:
                    code = mesh.wait(timeout=max(120, 10 * duration))
                except subprocess.TimeoutExpired:
                    mesh.kill()
                    code = "timeout"
                log.close()
                took = time.monotonic() - started
                with open(os.path.join(case, f"trial-{trial}.log")) as handle:
                    restarts = sum("restarting the mesh" in line for line in handle)
                lost, dup, wrong = compare(reference, rows_of(out))
                bad = lost or dup or wrong or code != 0
                failures += bool(bad)
                for i, n in enumerate((lost, dup, wrong)):
                    clean[i] += n
                print(f"| {query} | {kind} | {trial} | {killed} | {at:.2f} | {restarts} | {lost} | {dup} | "
                      f"{wrong} | {code} | {took:.1f} |", flush=True)
                if not bad:
                    shutil.rmtree(ck, ignore_errors=True)
                    for f in os.listdir(case):
                        if f.startswith(f"out-{trial}.jsonl"):
                            os.remove(os.path.join(case, f))
            totals.append((query, kind, sum(reference.values()), *clean))
    print()
    print("| query | source | reference rows | lost | duplicated | wrong |")
    print("|---|---|---|---|---|---|")
    for query, kind, n, lost, dup, wrong in totals:
        print(f"| {query} | {kind} | {n} | {lost} | {dup} | {wrong} |")
    print(f"\n{failures} failed trial(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
