#!/usr/bin/env bash
# Memory soak: runs a query paced at RATE events/s for SECONDS, sampling the process's resident
# set size every 10 s, and prints the samples (seconds, RSS MiB) then RSS at minute 2 vs the end.
# Usage: scripts/rss-soak.sh QUERY [RATE=100000] [SECONDS=600] [extra sluice flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
query=${1:?query}; rate=${2:-100000}; seconds=${3:-600}; shift $(( $# < 3 ? $# : 3 ))
bin=target/release/sluice
[ -x "$bin" ] || cargo build --release --locked
"$bin" run "$query" --paced --rate "$rate" --events $(( rate * seconds )) --sink null "$@" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
start=$(date +%s)
echo "seconds	rss_mib"
while kill -0 "$pid" 2>/dev/null; do
  rss=$(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' /proc/$pid/status 2>/dev/null || true)
  [ -n "$rss" ] && printf '%s\t%s\n' $(( $(date +%s) - start )) "$rss"
  sleep 10
done
wait "$pid"
