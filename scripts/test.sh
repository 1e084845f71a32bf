#!/usr/bin/env bash
# The test suite: unit tests, integration tests (batch references, CLI, two-process meshes over
# loopback, Kafka sources and sinks against a real broker, MQTT against Mosquitto, checkpoints in
# an S3-compatible object store) and doc tests. Starts a Kafka broker (scripts/kafka-broker.sh)
# and an S3 server (scripts/s3-server.sh) on 127.0.0.1 unless SLUICE_KAFKA / SLUICE_S3 name them,
# and stops them afterwards; installs Mosquitto (scripts/mosquitto.sh), of which each MQTT test
# starts its own on a loopback port; installs Prometheus and Chromium (scripts/monitoring-tools.sh),
# which tests/operating.rs starts against a running pipeline; validates the Kubernetes manifests
# (scripts/validate-manifests.sh). Nothing binds or connects beyond loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
cleanup=()
stop_servers() {
  for step in "${cleanup[@]}"; do eval "$step"; done
}
trap stop_servers EXIT
if [ -z "${SLUICE_KAFKA:-}" ]; then
  port="${SLUICE_KAFKA_PORT:-19092}"
  SLUICE_KAFKA="$(bash scripts/kafka-broker.sh start "$port")"
  cleanup+=("bash scripts/kafka-broker.sh stop $port")
  export SLUICE_KAFKA
fi
echo "Kafka broker for the tests: $SLUICE_KAFKA" >&2
if [ -z "${SLUICE_S3:-}" ]; then
  s3_port="${SLUICE_S3_PORT:-19900}"
  SLUICE_S3="$(bash scripts/s3-server.sh start "$s3_port")"
  cleanup+=("bash scripts/s3-server.sh stop $s3_port")
  export SLUICE_S3
fi
echo "S3-compatible server for the tests: $SLUICE_S3" >&2
bash scripts/mosquitto.sh install
bash scripts/monitoring-tools.sh install
bash scripts/validate-manifests.sh
cargo test --locked "$@"
