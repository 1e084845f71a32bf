#!/usr/bin/env bash
# The test suite: unit tests, integration tests (batch references, CLI, two-process meshes over
# loopback, Kafka sources and sinks against a real broker) and doc tests. Starts a Kafka broker
# on 127.0.0.1 (scripts/kafka-broker.sh) unless SLUICE_KAFKA names one, and stops it afterwards;
# nothing binds or connects beyond loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${SLUICE_KAFKA:-}" ]; then
  port="${SLUICE_KAFKA_PORT:-19092}"
  SLUICE_KAFKA="$(bash scripts/kafka-broker.sh start "$port")"
  trap 'bash scripts/kafka-broker.sh stop "$port"' EXIT
  export SLUICE_KAFKA
fi
echo "Kafka broker for the tests: $SLUICE_KAFKA" >&2
cargo test --locked "$@"
