#!/usr/bin/env bash
# An S3-compatible object store on loopback for tests and demos of checkpoints in object storage:
# moto's server mode from PyPI (https://pypi.org/project/moto/, the AWS mock the boto ecosystem
# tests against), installed into .tools/ on first use, bound to 127.0.0.1 only, with one bucket.
#
#   scripts/s3-server.sh start [PORT]   start on PORT (default 19900), create bucket `sluice`;
#                                       prints the endpoint, e.g. http://127.0.0.1:19900
#   scripts/s3-server.sh stop  [PORT]   stop it (its objects live in memory and are gone)
#
# Point Sluice at it with:
#   AWS_ENDPOINT_URL=http://127.0.0.1:19900 AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
#   AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test sluice run … --checkpoint-dir s3://sluice/ck
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION=5.1.22
TOOLS="$PWD/.tools"
SITE="$TOOLS/moto-$MOTO_VERSION"
PORT="${2:-19900}"
RUN="$TOOLS/s3-$PORT"

install() {
  [ -f "$SITE/.installed" ] && return
  echo "installing moto $MOTO_VERSION into $SITE" >&2
  python3 -m pip install --quiet --disable-pip-version-check --target "$SITE" \
    "moto[server]==$MOTO_VERSION" 2>&1 | grep -v "Running pip as the 'root' user" >&2 || true
  PYTHONPATH="$SITE" python3 -c "import moto.server" || { echo "moto did not install" >&2; exit 1; }
  touch "$SITE/.installed"
}

up() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

case "${1:-}" in
  start)
    install
    if up; then
      echo "port $PORT is already in use (a server from an earlier run? scripts/s3-server.sh stop $PORT)" >&2
      exit 1
    fi
    rm -rf "$RUN" && mkdir -p "$RUN"
    PYTHONPATH="$SITE" nohup python3 -m moto.server -H 127.0.0.1 -p "$PORT" >"$RUN/log" 2>&1 &
    echo $! >"$RUN/pid"
    for _ in $(seq 150); do
      if up; then
        python3 - "$PORT" <<'PY'
import sys, urllib.request
request = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/sluice", method="PUT")
urllib.request.urlopen(request, timeout=10).read()
PY
        echo "http://127.0.0.1:$PORT"
        exit 0
      fi
      kill -0 "$(cat "$RUN/pid")" 2>/dev/null || break
      sleep 0.2
    done
    echo "the S3 server did not start on 127.0.0.1:$PORT; its log:" >&2
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
  *)
    echo "usage: $0 start|stop [PORT]" >&2
    exit 2
    ;;
esac
