#!/usr/bin/env bash
# The full Nexmark report in one command: throughput at saturation and open-loop latency at four
# rates for q0–q8 (or the queries given), with plots, in about 10 minutes on a 2-core machine.
#
#   scripts/bench-report.sh [QUERIES (q0,…,q8)] [extra `cargo bench --bench nexmark` options]
#
# Writes target/bench/report/: report.md (the tables, linking the plots), throughput.svg,
# ccdf-<rate>.svg (every query at one rate), ccdf-<query>-<rate>.svg/.tsv, timeline-<query>-<rate>.svg,
# nexmark.json and nexmark.csv (every figure). Release build; close other programs first: the
# figures are only as quiet as the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
QUERIES="${1:-q0,q1,q2,q3,q4,q5,q6,q7,q8}"
shift || true
OUT=target/bench/report
rm -rf "$OUT" && mkdir -p "$OUT"
start=$(date +%s)
cargo bench --locked --bench nexmark -- \
  --queries "$QUERIES" --workers 2 --runs 3 --events 3000000 \
  --rates 100000,500000,1000000,2000000 --seconds 8 --warmup 2 --give-up 5 \
  --out "$OUT/nexmark.json" "$@"
echo "report: $OUT/report.md ($(( $(date +%s) - start )) s including the build)" >&2
