#!/usr/bin/env bash
# A Kafka-compatible broker on loopback for tests, demos and benchmarks: noida-db from PyPI
# (https://pypi.org/project/noida-db/, a single binary that speaks the Kafka protocol),
# installed into .tools/ on first use, bound to 127.0.0.1 only.
#
#   scripts/kafka-broker.sh start [PORT]   start on PORT (default 19092) with a fresh data dir;
#                                          prints the address, e.g. 127.0.0.1:19092
#   scripts/kafka-broker.sh stop  [PORT]   stop it and delete its data
#   scripts/kafka-broker.sh status [PORT]  exit 0 when it is up
#
# noida-db keeps its store in memory and rewrites it to disk about once a second, so each start
# gets an empty data dir, and topics should stay modest (a few million small records).
set -euo pipefail
cd "$(dirname "$0")/.."

NOIDA_VERSION=0.2.3
TOOLS="$PWD/.tools"
NOIDA="$TOOLS/noida-db-$NOIDA_VERSION/noida_db/noida-db"
PORT="${2:-19092}"
RUN="$TOOLS/broker-$PORT"

install() {
  [ -x "$NOIDA" ] && return
  echo "installing noida-db $NOIDA_VERSION into $TOOLS" >&2
  local python
  python="$(command -v python3 || true)"
  if [ -z "$python" ]; then
    apt-get update -qq && apt-get install -y -qq python3 python3-pip >/dev/null
    python="$(command -v python3)"
  fi
  "$python" -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$TOOLS/noida-db-$NOIDA_VERSION" "noida-db==$NOIDA_VERSION" 2>&1 \
    | grep -v "Running pip as the 'root' user" >&2 || true
  [ -x "$NOIDA" ] || { echo "noida-db did not install" >&2; exit 1; }
}

up() {
  # The port accepts connections: the broker is serving.
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

case "${1:-}" in
  start)
    install
    if up; then
      echo "port $PORT is already in use (a broker from an earlier run? scripts/kafka-broker.sh stop $PORT)" >&2
      exit 1
    fi
    rm -rf "$RUN" && mkdir -p "$RUN"
    # The binary warns about a weak GLIBC_2.39 symbol version on older systems; it runs fine.
    nohup "$NOIDA" start --host 127.0.0.1 --only kafka --kafka-port "$PORT" \
      --data-dir "$RUN/data" >"$RUN/log" 2>&1 &
    echo $! >"$RUN/pid"
    for _ in $(seq 100); do
      if up; then echo "127.0.0.1:$PORT"; exit 0; fi
      kill -0 "$(cat "$RUN/pid")" 2>/dev/null || break
      sleep 0.1
    done
    echo "the broker did not start on 127.0.0.1:$PORT; its log:" >&2
    cat "$RUN/log" >&2
    exit 1
    ;;
  stop)
    if [ -f "$RUN/pid" ]; then
      pid="$(cat "$RUN/pid")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$RUN"
    ;;
  status)
    up
    ;;
  *)
    echo "usage: $0 start|stop|status [PORT]" >&2
    exit 2
    ;;
esac
