#!/usr/bin/env bash
# Kafka-to-Kafka figures on this machine, against the loopback test broker:
#   1. load: `sluice gen --to` writes EVENTS events to a PARTITIONS-partition topic (events/s);
#   2. throughput: each query reads the whole topic (--until-end) and writes its rows to another
#      topic, -w 2 (events/s from the report, median of RUNS runs);
#   3. latency: a paced producer writes RATE events/s for SECONDS s, stamped with their scheduled
#      time, while each query runs on the live topic; the report's processing latency is measured
#      from those timestamps (end to end: produce schedule -> rows written to Kafka).
# Usage: scripts/kafka-bench.sh [QUERIES (q0,q5,q7)] [EVENTS (500000)] [RATE (100000)] [SECONDS (20)]
# The test broker (noida-db) answers a fetch with everything up to the end of the partition,
# ignoring fetch.max.bytes, so the consumers here accept responses beyond librdkafka's 100 MB
# default; a real Kafka never needs that.
# Release build; results as text on stdout and JSON reports under target/kafka-bench/.
set -euo pipefail
cd "$(dirname "$0")/.."

QUERIES="${1:-q0,q5,q7}"
EVENTS="${2:-500000}"
RATE="${3:-100000}"
SECONDS_RUN="${4:-20}"
PARTITIONS=4
RUNS=3
PORT=19099
OUT=target/kafka-bench
mkdir -p "$OUT"

cargo build --release --locked -q
BIN=target/release/sluice
BROKER="$(bash scripts/kafka-broker.sh start "$PORT")"
trap 'bash scripts/kafka-broker.sh stop "$PORT"' EXIT
K="kafka://$BROKER"
BIG=(--kafka-prop receive.message.max.bytes=2147483647)
stamp="$(date +%s)"

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
field() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

echo "== load: $EVENTS events to $PARTITIONS partitions"
$BIN gen --events "$EVENTS" --to "$K/nexmark-$stamp" --partitions "$PARTITIONS" 2>&1 | tail -1

echo "== throughput, Kafka -> Kafka, -w 2, median of $RUNS"
for q in ${QUERIES//,/ }; do
  rates=()
  for r in $(seq "$RUNS"); do
    report="$OUT/$q-throughput-$r.json"
    $BIN run "$q" --source "$K/nexmark-$stamp" --until-end --no-commit "${BIG[@]}" \
      --sink "$K/$q-out-$stamp-$r" -w 2 --report json --report-file "$report" 2>/dev/null
    rates+=("$(field "$report" "r['events_per_second']")")
  done
  med="$(printf '%s\n' "${rates[@]}" | median)"
  printf '%s: %.0f events/s (runs: %s)\n' "$q" "$med" "$(printf '%.0f ' "${rates[@]}")"
done

echo "== latency at $RATE events/s for $SECONDS_RUN s (paced producer, Kafka timestamps = schedule)"
for q in ${QUERIES//,/ }; do
  topic="live-$q-$stamp"
  n=$((RATE * SECONDS_RUN))
  # Create the topic first, so the query's consumer finds it.
  $BIN gen --events 0 --to "$K/$topic" --partitions "$PARTITIONS" 2>/dev/null
  $BIN gen --events "$n" --rate "$RATE" --base-time now --paced --to "$K/$topic" 2>"$OUT/$q-gen.log" &
  gen=$!
  report="$OUT/$q-latency.json"
  $BIN run "$q" --source "$K/$topic" --stop-after "$((SECONDS_RUN + 2))s" --no-commit "${BIG[@]}" \
    --sink "$K/$q-live-out-$stamp" -w 2 --report json --report-file "$report" 2>/dev/null
  wait "$gen"
  tail -1 "$OUT/$q-gen.log"
  field "$report" "'%s: %d events, p50 %s us, p99 %s us, p99.9 %s us, max %s us' % ('$q', r['events'], *[r['processing_latency'][k] for k in ('p50_us','p99_us','p999_us','max_us')])"
done
