#!/usr/bin/env bash
# The whole test suite: set up (Python env, sandbox binaries), lint, test.
# The sandbox is started by the tests' session fixture (or reused if already up) and stopped after.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check gitops_nb tests benchmarks
.venv/bin/ruff format --check gitops_nb tests benchmarks
.venv/bin/gitops-nb sandbox build >/dev/null
exec .venv/bin/pytest "$@"
