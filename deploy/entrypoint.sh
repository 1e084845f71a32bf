#!/bin/sh
# Entrypoint of the Sluice container image (POSIX sh; see deploy/README.md).
#
#   entrypoint.sh [RUN FLAGS…]        sluice run [-p I -n N --hostfile FILE] RUN FLAGS…
#   entrypoint.sh run [RUN FLAGS…]    the same
#   entrypoint.sh SUBCOMMAND [ARGS…]  sluice SUBCOMMAND ARGS… (list, gen, cat, completions, man,
#                                     help, --version, --help)
#
# One process (SLUICE_PROCESSES unset or 1): `sluice run FLAGS…` as given.
#
# Several processes (SLUICE_PROCESSES=N > 1), one per pod of a Kubernetes StatefulSet whose pods
# are named <statefulset>-<ordinal>: this pod's process index is the ordinal at the end of
# $HOSTNAME, and every process's address is the pod's stable DNS name under the headless Service,
#   $SLUICE_STATEFULSET-$i.$SLUICE_SERVICE.$POD_NAMESPACE.svc.cluster.local:$SLUICE_MESH_PORT
# written to a hostfile, one line per process, for `sluice run -p ORDINAL -n N --hostfile FILE`.
#
# Environment (read by this script):
#   HOSTNAME            the pod's name, <statefulset>-<ordinal> (Kubernetes sets it)
#   SLUICE_PROCESSES    processes in the mesh = the StatefulSet's replicas (default 1; required in
#                       a StatefulSet pod). Sluice itself reads it too: it is `-n`.
#   POD_NAMESPACE       the pod's namespace (from the downward API; default: the namespace of the
#                       service account, else `default`)
#   SLUICE_STATEFULSET  the StatefulSet's name (default: $HOSTNAME without its ordinal)
#   SLUICE_SERVICE      the headless Service that governs it (default `sluice`)
#   SLUICE_MESH_PORT    the mesh port of every process (default 2101)
#   SLUICE_DNS_WAIT     seconds to wait for every process's DNS name to resolve before starting
#                       Sluice, which resolves them once (default 300; 0 = do not wait)
#   TMPDIR              where the hostfile is written (default /tmp)
#
# Errors in this script exit with Sluice's own codes: 2 for a bad setting, 3 when the peers'
# names do not resolve in time.
set -eu

prog=sluice-entrypoint

die() {
  code=$1
  shift
  echo "$prog: $*" >&2
  exit "$code"
}

# A non-negative decimal integer without leading zeros.
is_count() {
  case $1 in
    '' | *[!0-9]* | 0?*) return 1 ;;
  esac
  return 0
}

# Subcommands other than `run` go to sluice unchanged.
if [ "$#" -gt 0 ]; then
  case $1 in
    run)
      shift
      ;;
    list | gen | cat | completions | man | help | --version | -V | --help)
      exec sluice "$@"
      ;;
  esac
fi

processes=${SLUICE_PROCESSES-}
# HOSTNAME comes from the container's environment (Docker and Kubernetes set it), not the shell.
# shellcheck disable=SC3028
host=${HOSTNAME:-$(uname -n 2>/dev/null || true)}
ordinal=
case $host in
  *-*) ordinal=${host##*-} ;;
esac

if [ -z "$processes" ]; then
  # Inside a StatefulSet pod other than the first, a missing SLUICE_PROCESSES is a mistake: each
  # pod would run the whole pipeline on its own, all of them into the same checkpoints.
  if [ -n "${KUBERNETES_SERVICE_HOST-}" ] && is_count "$ordinal" && [ "$ordinal" != 0 ]; then
    die 2 "SLUICE_PROCESSES is not set in StatefulSet pod $host: set it to the StatefulSet's replicas"
  fi
  processes=1
fi
if ! is_count "$processes" || [ "$processes" -lt 1 ]; then
  die 2 "SLUICE_PROCESSES must be a whole number of processes, at least 1 (got '$processes')"
fi

if [ "$processes" -eq 1 ]; then
  exec sluice run "$@"
fi

# Several processes: this pod is <statefulset>-<ordinal>.
if [ -z "$host" ]; then
  die 2 "HOSTNAME is not set: with SLUICE_PROCESSES=$processes the pod name <statefulset>-<ordinal> gives this process's index"
fi
if ! is_count "$ordinal" || [ -z "${host%-*}" ]; then
  die 2 "HOSTNAME '$host' is not a StatefulSet pod name <statefulset>-<ordinal>, so it gives no process index (SLUICE_PROCESSES=$processes)"
fi
if [ "$ordinal" -ge "$processes" ]; then
  die 2 "pod $host has ordinal $ordinal but SLUICE_PROCESSES is $processes (ordinals 0..$((processes - 1))): set SLUICE_PROCESSES to the StatefulSet's replicas"
fi

statefulset=${SLUICE_STATEFULSET:-${host%-*}}
service=${SLUICE_SERVICE:-sluice}
port=${SLUICE_MESH_PORT:-2101}
namespace=${POD_NAMESPACE-}
if [ -z "$namespace" ]; then
  account=/var/run/secrets/kubernetes.io/serviceaccount/namespace
  if [ -r "$account" ]; then
    namespace=$(cat "$account")
  fi
  namespace=${namespace:-default}
fi
if ! is_count "$port" || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
  die 2 "SLUICE_MESH_PORT must be a port number 1..65535 (got '$port')"
fi
wait_seconds=${SLUICE_DNS_WAIT:-300}
if ! is_count "$wait_seconds"; then
  die 2 "SLUICE_DNS_WAIT must be a whole number of seconds (got '$wait_seconds')"
fi

domain=$service.$namespace.svc.cluster.local
hostfile=$(mktemp "${TMPDIR:-/tmp}/sluice-hosts.XXXXXX") ||
  die 3 "cannot create the hostfile in ${TMPDIR:-/tmp} (with a read-only root file system, mount an emptyDir there)"
i=0
while [ "$i" -lt "$processes" ]; do
  echo "$statefulset-$i.$domain:$port"
  i=$((i + 1))
done >"$hostfile"

# Sluice resolves each address once and gives up if a name does not resolve yet; a pod's DNS
# record appears only once the pod has an IP address (the Service publishes not-ready pods),
# so wait here until every process's name resolves.
if [ "$wait_seconds" -gt 0 ] && command -v getent >/dev/null 2>&1; then
  start=$(date +%s)
  said=
  while :; do
    missing=
    i=0
    while [ "$i" -lt "$processes" ]; do
      getent hosts "$statefulset-$i.$domain" >/dev/null 2>&1 || missing="$missing $statefulset-$i"
      i=$((i + 1))
    done
    [ -z "$missing" ] && break
    waited=$(($(date +%s) - start))
    if [ "$waited" -ge "$wait_seconds" ]; then
      die 3 "after ${wait_seconds}s these pods' names still do not resolve under $domain:$missing (is the headless Service '$service' there, with publishNotReadyAddresses: true?)"
    fi
    if [ -z "$said" ]; then
      echo "$prog: waiting for the DNS names of$missing under $domain" >&2
      said=1
    fi
    sleep 1
  done
fi

echo "$prog: process $ordinal of $processes (mesh $statefulset-0..$statefulset-$((processes - 1)) under $domain, port $port; hostfile $hostfile)" >&2
exec sluice run -p "$ordinal" -n "$processes" --hostfile "$hostfile" "$@"
