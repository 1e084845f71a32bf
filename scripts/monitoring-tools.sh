#!/usr/bin/env bash
# The tools the operating tests (tests/operating.rs) watch a running pipeline with: a real
# Prometheus server, which scrapes `--metrics-addr` and answers PromQL, and a real headless
# browser, Chromium, which loads the dashboard. Both are Debian packages, installed with apt-get
# when missing (as root); the tests start them on 127.0.0.1 themselves and stop them afterwards.
#
#   scripts/monitoring-tools.sh install   install what is missing
#   scripts/monitoring-tools.sh paths     print the two executables (prometheus, chromium)
set -euo pipefail

PROMETHEUS="$(command -v prometheus || echo /usr/bin/prometheus)"
CHROMIUM="$(command -v chromium || command -v chromium-browser || echo /usr/bin/chromium)"

install() {
  local need=()
  [ -x "$PROMETHEUS" ] || need+=(prometheus)
  [ -x "$CHROMIUM" ] || need+=(chromium)
  [ "${#need[@]}" -eq 0 ] && return
  if [ "$(id -u)" != 0 ]; then
    echo "missing ${need[*]}: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
  echo "installing ${need[*]} (Debian packages)" >&2
  apt-get update -qq >&2
  # The Debian package starts a Prometheus service where systemd runs; the tests use their own.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl stop prometheus || true
  fi
  PROMETHEUS="$(command -v prometheus)"
  CHROMIUM="$(command -v chromium || command -v chromium-browser)"
}

case "${1:-}" in
  install) install ;;
  paths) echo "$PROMETHEUS"; echo "$CHROMIUM" ;;
  *) echo "usage: $0 install|paths" >&2; exit 2 ;;
esac
