#!/usr/bin/env bash
# An MQTT broker on loopback for tests and demos: Eclipse Mosquitto from Debian's packages
# (installed with apt-get on first use when run as root), bound to 127.0.0.1 only, anonymous,
# with persistence so that a restart keeps sessions and their queued QoS-1 messages.
#
#   scripts/mosquitto.sh start   [PORT]   start on PORT (default 11883) with a fresh state;
#                                         prints the address, e.g. 127.0.0.1:11883
#   scripts/mosquitto.sh restart [PORT]   stop and start again, keeping the saved sessions
#   scripts/mosquitto.sh stop    [PORT]   stop it and remove its state
#   scripts/mosquitto.sh install          install Mosquitto if it is missing (nothing else)
#
# Read from it with `sluice run iot --source mqtt://127.0.0.1:11883/sensors/#`.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${2:-11883}"
RUN="$PWD/.tools/mosquitto-$PORT"
MOSQUITTO="$(command -v mosquitto || echo /usr/sbin/mosquitto)"

install() {
  [ -x "$MOSQUITTO" ] && return
  if [ "$(id -u)" != 0 ]; then
    echo "mosquitto is not installed: sudo apt-get install mosquitto" >&2
    exit 1
  fi
  echo "installing mosquitto (Debian package)" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mosquitto >/dev/null
  MOSQUITTO=/usr/sbin/mosquitto
}

up() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

stop() {
  if [ -f "$RUN/pid" ]; then
    pid="$(cat "$RUN/pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$RUN/pid"
  fi
}

launch() {
  if up; then
    echo "port $PORT is already in use (a broker from an earlier run? scripts/mosquitto.sh stop $PORT)" >&2
    exit 1
  fi
  mkdir -p "$RUN/data"
  cat >"$RUN/mosquitto.conf" <<EOF
listener $PORT 127.0.0.1
allow_anonymous true
persistence true
persistence_location $RUN/data/
# Sessions of disconnected clients keep this many QoS-1 messages (Mosquitto's default is 1000).
max_queued_messages 1000000
max_inflight_messages 1000
log_dest file $RUN/log
log_type error
log_type warning
log_type notice
EOF
  # Mosquitto refuses to run as root without a user to drop to: run as the caller.
  echo "user $(id -un)" >>"$RUN/mosquitto.conf"
  nohup "$MOSQUITTO" -c "$RUN/mosquitto.conf" >>"$RUN/log" 2>&1 &
  echo $! >"$RUN/pid"
  for _ in $(seq 200); do
    if up; then
      echo "127.0.0.1:$PORT"
      return 0
    fi
    kill -0 "$(cat "$RUN/pid")" 2>/dev/null || break
    sleep 0.05
  done
  echo "mosquitto did not start on 127.0.0.1:$PORT; its log:" >&2
  cat "$RUN/log" >&2
  exit 1
}

case "${1:-}" in
  install)
    install
    ;;
  start)
    install
    stop
    rm -rf "$RUN"
    launch
    ;;
  restart)
    stop
    launch
    ;;
  stop)
    stop
    rm -rf "$RUN"
    ;;
  *)
    echo "usage: $0 start|restart|stop [PORT] | install" >&2
    exit 2
    ;;
esac
