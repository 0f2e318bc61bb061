#!/usr/bin/env bash
# The whole test suite: set up, lint, test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check . >/dev/null || { echo "ruff format: files need formatting (run .venv/bin/ruff format .)" >&2; exit 1; }
exec .venv/bin/pytest "$@"
