#!/usr/bin/env python3
"""Random kill -9 trials of a supervised two-process Sluice mesh.

For every query and configuration (source → sink), a failure-free run gives the reference
rows. Then each trial starts the same run as a supervised local mesh (`-n 2`,
`--checkpoint-dir`), kills one of its two processes with SIGKILL at a random moment, lets the
supervisor restore the mesh from its last checkpoint, and compares the committed output (every
process's file, or the Kafka topic read committed) with the reference as multisets: rows
missing (lost), rows there too often (duplicated), rows the reference never had (wrong).
Exactly-once means 0 / 0 / 0 in every trial.

    scripts/kill-trials.py        # 20 trials each of q5, q7, q4 × generator→file, file→file,
                                  # generator→kafka, kafka→kafka
    scripts/kill-trials.py --trials 5 --queries q9 --configs generator:file

Kafka configurations use the broker named by SLUICE_KAFKA, or start one on loopback
(scripts/kafka-broker.sh) and stop it at the end. Needs a release build (cargo build --release).
Writes under target/kill-trials/ (ignored).
"""

import argparse
import atexit
import collections
import datetime
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


def topic_rows(binary, broker, topic):
    """The multiset of JSON rows committed to a Kafka topic."""
    out = subprocess.run([binary, "cat", f"kafka://{broker}/{topic}"], capture_output=True, text=True)
    if out.returncode != 0:
        return collections.Counter()
    return collections.Counter(json.dumps(json.loads(line), sort_keys=True) for line in out.stdout.splitlines() if line)


# Events per run: enough for several seconds of a -n 2 mesh on two cores (q4 is heavier).
DEFAULT_EVENTS = {"q4": 2_000_000}
KAFKA_PROPS = ["--kafka-prop", "receive.message.max.bytes=1000000000"]


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
    ap.add_argument("--configs", default="generator:file,file:file,generator:kafka,kafka:kafka",
                    help="source:sink pairs; sources generator, file, kafka; sinks file, kafka")
    ap.add_argument("--events", type=int, help="generator events per run (default 20 M; q4 2 M)")
    ap.add_argument("--file-events", type=int, default=3_000_000, help="events in the file source")
    ap.add_argument("--kafka-events", type=int, default=1_000_000, help="events in the Kafka source topic")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "sluice"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "kill-trials"))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} is missing: run cargo build --release first")
    os.makedirs(args.work, exist_ok=True)
    configs = [tuple(c.split(":")) for c in args.configs.split(",")]
    for source, sink in configs:
        if source not in ("generator", "file", "kafka") or sink not in ("file", "kafka"):
            sys.exit(f"unknown configuration {source}:{sink}")
    broker = None
    if any("kafka" in c for c in configs):
        broker = os.environ.get("SLUICE_KAFKA")
        if not broker:
            port = os.environ.get("SLUICE_KAFKA_PORT", "19392")
            broker = subprocess.run(["bash", os.path.join(ROOT, "scripts", "kafka-broker.sh"), "start", port],
                                    check=True, capture_output=True, text=True).stdout.strip()
            atexit.register(subprocess.run, ["bash", os.path.join(ROOT, "scripts", "kafka-broker.sh"), "stop", port])
    stamp = str(int(time.time()))

    def source_args(kind, query):
        if kind == "generator":
            events = args.events or DEFAULT_EVENTS.get(query, 20_000_000)
            return ["--source", "nexmark", "--events", str(events)]
        if kind == "file":
            path = os.path.join(args.work, f"events-{args.file_events}.jsonl")
            if not os.path.exists(path):
                print(f"writing {args.file_events} events to {path}", file=sys.stderr)
                subprocess.run([args.binary, "gen", "--events", str(args.file_events), "-o", path], check=True)
            return ["--source", f"file:{path}"]
        topic = f"kill-trials-in-{args.kafka_events}-{stamp}"
        if not getattr(source_args, "loaded", False):
            print(f"writing {args.kafka_events} events to kafka://{broker}/{topic}", file=sys.stderr)
            subprocess.run([args.binary, "gen", "--events", str(args.kafka_events), "--to",
                            f"kafka://{broker}/{topic}", "--partitions", "4"], check=True,
                           stderr=subprocess.DEVNULL)
            source_args.loaded = True
        return ["--source", f"kafka://{broker}/{topic}", "--kafka-start", "earliest", "--until-end", *KAFKA_PROPS]

    print("| query | source→sink | trial | killed | at (s) | restarts | recovered (s) | lost | duplicated | wrong | exit | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    failures = 0
    totals = []
    for query in args.queries.split(","):
        for kind, sink in configs:
            label = f"{kind}→{sink}"
            source = source_args(kind, query)
            case = os.path.join(args.work, f"{query}-{kind}-{sink}")
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
            recovery = []
            for trial in range(1, args.trials + 1):
                out = os.path.join(case, f"out-{trial}.jsonl")
                topic = f"kill-trials-{query}-{kind}-{trial}-{stamp}"
                target = f"file:{out}" if sink == "file" else f"kafka://{broker}/{topic}"
                ck = os.path.join(case, f"ck-{trial}")
                log = open(os.path.join(case, f"trial-{trial}.log"), "w")
                started = time.monotonic()
                mesh = subprocess.Popen(
                    [args.binary, "run", query, *source, "-n", "2", "--port", str(free_port_pair()),
                     "--sink", target, "--checkpoint-dir", ck, "--checkpoint-min-pause", "200ms",
                     "--report", "none"],
                    stderr=log, stdout=subprocess.DEVNULL)
                # The failure-free reference may take longer than the checkpointed run: stay early.
                at = rng.uniform(0.10, 0.70) * duration
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
                        killed_at = time.time()
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
                    lines = handle.readlines()
                restarts = sum("restarting the mesh" in line for line in lines)
                # Recovery: from the kill to the restored mesh's first committed checkpoint.
                recovered = "-"
                for line in lines:
                    if "the first of execution" in line and killed != "-":
                        at_log = datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00"))
                        recovered = f"{at_log.timestamp() - killed_at:.2f}"
                        recovery.append(at_log.timestamp() - killed_at)
                        break
                got = rows_of(out) if sink == "file" else topic_rows(args.binary, broker, topic)
                lost, dup, wrong = compare(reference, got)
                bad = lost or dup or wrong or code != 0
                failures += bool(bad)
                for i, n in enumerate((lost, dup, wrong)):
                    clean[i] += n
                print(f"| {query} | {label} | {trial} | {killed} | {at:.2f} | {restarts} | {recovered} | {lost} | "
                      f"{dup} | {wrong} | {code} | {took:.1f} |", flush=True)
                if not bad:
                    shutil.rmtree(ck, ignore_errors=True)
                    for f in os.listdir(case):
                        if f.startswith(f"out-{trial}.jsonl"):
                            os.remove(os.path.join(case, f))
            recovery.sort()
            median = f"{recovery[len(recovery) // 2]:.2f}" if recovery else "-"
            worst = f"{recovery[-1]:.2f}" if recovery else "-"
            totals.append((query, label, sum(reference.values()), args.trials, *clean, median, worst))
    print()
    print("| query | source→sink | reference rows | trials | lost | duplicated | wrong | recovery median (s) | recovery max (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for query, kind, n, trials, lost, dup, wrong, median, worst in totals:
        print(f"| {query} | {kind} | {n} | {trials} | {lost} | {dup} | {wrong} | {median} | {worst} |")
    print(f"\n{failures} failed trial(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
