#!/usr/bin/env python3
"""Do two `sluice` binaries give the same rows? For refactorings that must not change results.

    scripts/compare-binaries.py OLD_BINARY NEW_BINARY [EVENTS]

Runs every Nexmark query but q12 (processing-time windows depend on the wall clock) with both
binaries over the same generated events (default 300,000) at -w 1, -w 2 and -n 2, and compares the
rows: append-only rows as multisets, updating rows (with a `diff`) consolidated; q10 by the contents
of its partition files. Prints a line per query and mesh, and exits 1 if any differ. Everything it
writes goes under out/compare/ (ignored by git). Only the Python standard library is used.
"""
import collections
import glob
import json
import os
import shutil
import subprocess
import sys

WORK = os.path.join("out", "compare")


def run(binary, query, mesh, tag, events):
    name = f"{tag}-{query}-{'_'.join(mesh)}"
    sink = os.path.join(WORK, name + "-{process}.jsonl")
    files = os.path.join(WORK, "files-" + name)
    shutil.rmtree(files, ignore_errors=True)
    args = [binary, "run", query, "--events", str(events), "--sink", "file:" + sink,
            "--progress", "off", "--report", "none", *mesh]
    if query == "q10":
        args += ["--output-dir", files]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        return None, done.stderr.strip().splitlines()[-1:]
    rows = []
    for path in glob.glob(sink.replace("{process}", "*")):
        with open(path) as f:
            rows += [line for line in f.read().splitlines() if line]
        os.remove(path)
    for path in glob.glob(os.path.join(files, "**", "part-*.jsonl"), recursive=True):
        partition = os.path.relpath(os.path.dirname(path), files)
        with open(path) as f:
            rows += ["FILE " + partition + " " + line for line in f.read().splitlines()]
    shutil.rmtree(files, ignore_errors=True)
    return rows, None


def consolidated(rows):
    net = collections.Counter()
    for row in rows:
        if row.startswith("FILE "):
            net[row] += 1
            continue
        value = json.loads(row)
        diff = value.pop("diff", 1)
        net[json.dumps(value, sort_keys=True)] += diff
    return {k: n for k, n in net.items() if n != 0}


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    old, new = sys.argv[1], sys.argv[2]
    events = int(sys.argv[3]) if len(sys.argv) > 3 else 300_000
    os.makedirs(WORK, exist_ok=True)
    port, different = 4600, 0
    for query in [f"q{i}" for i in range(23) if i != 12]:
        for mesh in (["-w", "1"], ["-w", "2"], ["-n", "2", "--port", str(port)]):
            port += 2
            a, why_a = run(old, query, mesh, "old", events)
            b, why_b = run(new, query, mesh, "new", events)
            if a is None or b is None:
                print(query, " ".join(mesh[:2]), "FAILED", why_a or "", why_b or "")
                different += 1
                continue
            same = consolidated(a) == consolidated(b)
            different += not same
            print(f"{query} {' '.join(mesh[:2])}: {len(a)} / {len(b)} rows, "
                  + ("same" if same else "DIFFERENT"))
    print(f"{different} difference(s)")
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
