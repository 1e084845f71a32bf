#!/usr/bin/env bash
# Validates the deployment files (deploy/, see deploy/README.md) without a cluster:
#
#   * every manifest in deploy/k8s (the example Secret too) against the OpenAPI schemas of
#     Kubernetes $K8S_VERSION, strictly (an unknown or misspelt field is an error, and so is a
#     kind or apiVersion that has no schema), with the PyPI package kubernetes-validate, which
#     bundles the schemas; it is installed into .tools/kubernetes-validate-<version>/ (ignored)
#     on first use, so only the first run needs PyPI;
#   * kustomization.yaml: it lists every manifest of the folder except the *.example.yaml ones,
#     and each one it lists exists;
#   * what the schemas cannot see: each *.toml of a ConfigMap parses as TOML; the StatefulSet's
#     SLUICE_PROCESSES equals its replicas (every process must know N); its serviceName is a
#     headless Service of the folder that publishes not-ready addresses; it starts its pods in
#     parallel (a mesh forms only once all of them run);
#   * deploy/entrypoint.sh with `sh -n`.
#
#   scripts/validate-manifests.sh [DIR]    DIR defaults to deploy/k8s
#
# Prints one line per file, and exits 1 if any file fails.
set -euo pipefail
cd "$(dirname "$0")/.."

KV_VERSION=1.37.0
# The Kubernetes version the manifests are checked against: an older release still common in
# managed clusters, so that nothing newer than it slips in (the package bundles 1.25 … 1.37).
K8S_VERSION=1.31.0
VENV="$PWD/.tools/kubernetes-validate-$KV_VERSION"
DIR="${1:-deploy/k8s}"
ENTRYPOINT=deploy/entrypoint.sh

fail() {
  echo "validate-manifests: $*" >&2
  exit 1
}

[ -d "$DIR" ] || fail "no such folder: $DIR"

# kubernetes-validate and its dependencies at fixed versions, so every run checks the same way.
install() {
  [ -f "$VENV/.installed" ] && return
  echo "installing kubernetes-validate $KV_VERSION into $VENV" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV" ||
    fail "python3 -m venv failed (on Debian: apt-get install python3-venv)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -c <(printf '%s\n' attrs==26.1.0 importlib_resources==7.1.0 jsonschema==4.26.0 \
      jsonschema-specifications==2025.9.1 packaging==26.4 PyYAML==6.0.4 referencing==0.37.0 \
      rpds-py==2026.9.1 typing_extensions==4.16.0) \
    "kubernetes-validate==$KV_VERSION" ||
    fail "could not install kubernetes-validate $KV_VERSION from PyPI"
  [ "$("$VENV/bin/kubernetes-validate" --version)" = "$KV_VERSION" ] ||
    fail "kubernetes-validate in $VENV is not version $KV_VERSION"
  touch "$VENV/.installed"
}
install

status=0
"$VENV/bin/python" - "$VENV/bin/kubernetes-validate" "$K8S_VERSION" "$DIR" <<'PY' || status=1
"""Validates each manifest of a folder; one line per file; exit status 1 if any fails."""

import re
import subprocess
import sys
from pathlib import Path

import yaml

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None

validator, version, folder = sys.argv[1], sys.argv[2], Path(sys.argv[3])
manifests = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
KUSTOMIZATION = "kustomization.yaml"
failed = 0


def report(path, problems, summary):
    global failed
    if problems:
        failed += 1
        print(f"FAIL {path}")
        for problem in problems:
            print(f"     {problem}")
    else:
        print(f"ok   {path}: {summary}")


def load(path):
    """The documents of a YAML file (empty ones left out), or raises yaml.YAMLError."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def schema_problems(path):
    """kubernetes-validate --strict on one file: (problems, resources that passed)."""
    run = subprocess.run([validator, "--strict", "-k", version, str(path)],
                         capture_output=True, text=True)
    passed, problems = [], []
    for line in (run.stdout + run.stderr).splitlines():
        match = re.match(r"INFO .* passed for resource (\S+) against version", line)
        if match:
            passed.append(match.group(1))
        elif line.strip():
            # ERROR: a schema violation; WARN: no schema for that kind and apiVersion, which
            # kubernetes-validate lets pass.
            problems.append(line.replace(f"{path} ", "", 1).strip())
    if run.returncode != 0 and not problems:
        problems.append(f"kubernetes-validate exited with {run.returncode}")
    return problems, passed


# Every document of the folder first: a StatefulSet's serviceName names a Service of another file.
documents, yaml_errors = {}, {}
for path in manifests:
    if path.name == KUSTOMIZATION:
        continue
    try:
        documents[path] = [d for d in load(path) if isinstance(d, dict)]
    except yaml.YAMLError as e:
        documents[path] = []
        yaml_errors[path] = f"not YAML: {' '.join(str(e).split())}"
services = {}
for docs in documents.values():
    for doc in docs:
        if doc.get("kind") == "Service":
            services[(doc.get("metadata") or {}).get("name")] = doc.get("spec") or {}


def toml_checks(name, doc, problems, notes):
    """Each *.toml of a ConfigMap parses."""
    for key, text in (doc.get("data") or {}).items():
        if not key.endswith(".toml"):
            continue
        if tomllib is None:
            notes.append(f"{key} not parsed (Python < 3.11 has no tomllib)")
            continue
        try:
            tomllib.loads(text)
            notes.append(f"{key} parses")
        except tomllib.TOMLDecodeError as e:
            problems.append(f"ConfigMap {name}: {key} is not valid TOML: {e}")


def mesh_checks(name, doc, problems, notes):
    """A StatefulSet of a Sluice mesh: N known to every process, pods started together and
    resolvable before they are ready."""
    spec = doc.get("spec") or {}
    replicas = spec.get("replicas", 1)
    pod = (spec.get("template") or {}).get("spec") or {}
    for container in pod.get("containers") or []:
        for env in container.get("env") or []:
            if env.get("name") != "SLUICE_PROCESSES" or not isinstance(replicas, int):
                continue
            if str(env.get("value")) != str(replicas):
                problems.append(
                    f"StatefulSet {name}: container {container.get('name')} has "
                    f"SLUICE_PROCESSES={env.get('value')!r} but replicas is {replicas}: "
                    "they must be equal")
            else:
                notes.append(f"SLUICE_PROCESSES = replicas = {replicas}")
    if spec.get("podManagementPolicy") != "Parallel":
        problems.append(f"StatefulSet {name}: podManagementPolicy must be Parallel "
                        "(a pod is ready only once the whole mesh runs)")
    wanted = spec.get("serviceName")
    service = services.get(wanted)
    if service is None:
        problems.append(f"StatefulSet {name}: serviceName {wanted!r} is no Service in {folder}")
    elif service.get("clusterIP") != "None":
        problems.append(f"StatefulSet {name}: Service {wanted} must be headless (clusterIP: None)")
    elif service.get("publishNotReadyAddresses") is not True:
        problems.append(f"StatefulSet {name}: Service {wanted} must have "
                        "publishNotReadyAddresses: true (the processes resolve each other "
                        "before they are ready)")


for path, docs in documents.items():
    problems, passed = schema_problems(path)
    if path in yaml_errors:
        problems = [yaml_errors[path]]  # in place of kubernetes-validate's own lines about it
    elif not docs and not problems:
        problems.append("no Kubernetes resource in it")
    notes = []
    for doc in docs:
        name = (doc.get("metadata") or {}).get("name")
        if doc.get("kind") == "ConfigMap":
            toml_checks(name, doc, problems, notes)
        elif doc.get("kind") == "StatefulSet":
            mesh_checks(name, doc, problems, notes)
    extra = f"; {'; '.join(notes)}" if notes else ""
    report(path, problems, f"{', '.join(passed)} (Kubernetes {version}, strict{extra})")

kustomization = folder / KUSTOMIZATION
if kustomization.exists():
    problems = []
    try:
        docs = load(kustomization)
    except yaml.YAMLError as e:
        docs = []
        problems.append(f"not YAML: {' '.join(str(e).split())}")
    doc = docs[0] if len(docs) == 1 and isinstance(docs[0], dict) else None
    if doc is None:
        problems.append("expected one Kustomization document")
        doc = {}
    if docs and (doc.get("apiVersion"), doc.get("kind")) != (
            "kustomize.config.k8s.io/v1beta1", "Kustomization"):
        problems.append("not a kustomize.config.k8s.io/v1beta1 Kustomization")
    listed = doc.get("resources") or []
    for resource in listed:
        if not (folder / resource).is_file():
            problems.append(f"lists {resource}, which is not in {folder}")
        elif ".example." in resource:
            problems.append(f"lists {resource}: examples are not to be applied")
    for path in manifests:
        if (path.name != KUSTOMIZATION and ".example." not in path.name
                and path.name not in listed):
            problems.append(f"does not list {path.name}")
    report(kustomization, problems, f"Kustomization of {len(listed)} resources, all present")
else:
    report(kustomization, ["missing"], "")

sys.exit(1 if failed else 0)
PY

if out=$(sh -n "$ENTRYPOINT" 2>&1); then
  echo "ok   $ENTRYPOINT: sh -n"
else
  echo "FAIL $ENTRYPOINT: sh -n"
  printf '%s\n' "$out" | sed 's/^/     /'
  status=1
fi

[ "$status" -eq 0 ] ||
  fail "the files above marked FAIL are invalid (Kubernetes $K8S_VERSION schemas, kubernetes-validate $KV_VERSION)"
