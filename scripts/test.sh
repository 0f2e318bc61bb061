#!/usr/bin/env bash
# The whole test suite: set up, lint, test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check gitops_nb tests benchmarks
.venv/bin/ruff format --check gitops_nb tests benchmarks
exec .venv/bin/pytest "$@"
