#!/usr/bin/env bash
# The main job on the embedded default: build the demo deploy-config repo and run the
# what-changed notebook on it headless. Results land in out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
# this checkout's .venv, whatever one the caller has activated (IPython warns on another's: a test error)
export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH"
case " $* " in
  *" --git-only "*) ;;
  *) echo "demo: the first run compiles the sandbox (Kubernetes and Argo CD, from source) for several minutes," \
       "about 15 on 2 cores, showing progress; later runs start in seconds (--git-only needs no sandbox)." >&2 ;;
esac
bash scripts/setup.sh
exec .venv/bin/gitops-nb demo --workdir out/demo "$@"
