#!/usr/bin/env bash
# The whole test suite: set up (Python env, sandbox binaries), lint, test.
# The sandbox is started by the tests' session fixture (or reused if already up) and stopped after.
set -euo pipefail
cd "$(dirname "$0")/.."
# this checkout's .venv, whatever one the caller has activated (IPython warns on another's: a test error)
export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH"
bash scripts/setup.sh
.venv/bin/ruff check gitops_nb tests benchmarks tools notebooks  # notebooks: the code in their cells
.venv/bin/ruff format --check gitops_nb tests benchmarks tools
.venv/bin/mypy gitops_nb
.venv/bin/gitops-nb sandbox build >/dev/null
# the recording store's S3 tests run a real S3 server (Versity S3 Gateway, built from its Go module, cached)
bash scripts/build_s3.sh >/dev/null
# the browser test drives Debian's Chromium (Playwright's own browser download is not used)
if ! command -v chromium >/dev/null; then
  echo "test.sh: installing Debian's chromium for the browser test ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
fi
exec .venv/bin/pytest "$@"
