#!/usr/bin/env bash
# Build a real S3-compatible server for the recording store's S3 tests:
# Versity S3 Gateway (github.com/versity/versitygw, Apache-2.0) with its posix
# backend, from its published Go module.
#
#   BIN=$(scripts/build_s3.sh)      # last (only) line of stdout = the versitygw binary
#
# Everything lives under $GITOPS_NB_CACHE (default ~/.cache/gitops-nb), never in
# the repository: the Go caches (shared with gitops_nb/sandbox/go/build.sh) and
#   s3/<key>/bin/versitygw      <key> hashes this script and the Go version, so a
#                               warm run exits at once (the sandbox's key is apart).
# A cold build takes about 3 minutes on 2 cores; progress goes to stderr.
set -euo pipefail

VERSITYGW_VERSION=v1.8.0

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${GITOPS_NB_CACHE:-$HOME/.cache/gitops-nb}
start=$SECONDS
log() { printf '[s3 build %4ds] %s\n' "$((SECONDS - start))" "$*" >&2; }

if command -v go >/dev/null 2>&1; then
    GO=$(command -v go)
elif [[ -x /usr/local/go/bin/go ]]; then
    GO=/usr/local/go/bin/go
else
    echo "build_s3.sh: no Go toolchain found (need go >= 1.24)" >&2
    exit 1
fi
export GOMODCACHE=$cache/go/mod
export GOCACHE=$cache/go/build
export GOPATH=$cache/go/path
export GOTOOLCHAIN=local
export CGO_ENABLED=0
# the checksum database is not reachable here (as in the sandbox build)
export GOSUMDB=off
export GOFLAGS=-buildvcs=false
mkdir -p "$GOMODCACHE" "$GOCACHE" "$GOPATH"

key=$({
    "$GO" env GOVERSION
    sha256sum "$here/build_s3.sh" | cut -d' ' -f1
} | sha256sum | cut -c1-16)
bin=$cache/s3/$key/bin
if [[ -x $bin/versitygw ]]; then
    echo "$bin/versitygw"
    exit 0
fi

log "building versitygw $VERSITYGW_VERSION from its Go module (cold: about 3 minutes)"
mkdir -p "$bin.tmp"
(
    while sleep 20; do log "still building versitygw ..."; done
) &
ticker=$!
trap 'kill $ticker 2>/dev/null || true' EXIT
GOBIN=$bin.tmp "$GO" install -trimpath -ldflags "-s -w" \
    "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" >&2
rm -rf "$bin"
mv "$bin.tmp" "$bin"
log "versitygw: $bin/versitygw"
echo "$bin/versitygw"
