#!/usr/bin/env bash
# The test suite: unit tests, integration tests (batch references, CLI, two-process meshes over
# loopback) and doc tests. Starts nothing outside this machine; everything binds 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked "$@"
