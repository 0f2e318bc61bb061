#!/usr/bin/env bash
# The main job on the embedded default: build the demo deploy-config repo and run the
# what-changed notebook on it headless. Results land in out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/gitops-nb demo --workdir out/demo "$@"
