#!/usr/bin/env bash
# Build the binaries of the local Kubernetes + Argo CD sandbox from upstream's
# published Go modules (see docs/sandbox.md).
#
#   BIN=$(sandbox/build.sh)      # last (only) line of stdout = the bin dir
#
# Everything that is downloaded or built lives under $GITOPS_NB_CACHE
# (default ~/.cache/gitops-nb), never in the repository:
#   go/mod, go/build, go/path          Go module cache, build cache, GOPATH
#   sandbox/<key>/bin                  the binaries; <key> hashes this script,
#                                      the go.mod/go.sum/main files and the Go
#                                      version, so a warm run exits at once.
# Progress (per component, with elapsed seconds) goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${GITOPS_NB_CACHE:-$HOME/.cache/gitops-nb}

# Versions of the tools installed with `go install pkg@version`; the others
# are pinned by k8s/go.mod (k8s.io/kubernetes, etcd) and argocd/go.mod.
KWOK_VERSION=v0.7.0
KUSTOMIZE_VERSION=v5.7.1
# Helm: the v3.18 line, as in Argo CD v3.2's own image (hack/tool-versions.sh
# pins helm 3.18.4); v3.18.6 is its newest patch, and its go.mod has no
# replace directives, so a plain `go install` builds it.
HELM_VERSION=v3.18.6

start=$SECONDS
log() { printf '[sandbox %4ds] %s\n' "$((SECONDS - start))" "$*" >&2; }

# --- redis-server (the Argo CD application controller and repo server need
# a Redis; Debian's package is fine).
if ! command -v redis-server >/dev/null 2>&1; then
    log "installing redis-server (apt)"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q redis-server >&2; then
        apt-get update -q >&2
        apt-get install -y -q redis-server >&2
    fi
fi
log "redis-server: $(command -v redis-server)"

# --- Go environment: all caches outside the repository.
if command -v go >/dev/null 2>&1; then
    GO=$(command -v go)
elif [[ -x /usr/local/go/bin/go ]]; then
    GO=/usr/local/go/bin/go
else
    echo "sandbox/build.sh: no Go toolchain found (need go >= 1.25.5)" >&2
    exit 1
fi
export GOMODCACHE=$cache/go/mod
export GOCACHE=$cache/go/build
export GOPATH=$cache/go/path
export GOTOOLCHAIN=local
export CGO_ENABLED=0
# The checksum database is not reachable here: module downloads are verified
# against the committed go.sum files instead (-mod=readonly never edits them).
export GOSUMDB=off
export GOFLAGS=-buildvcs=false
mkdir -p "$GOMODCACHE" "$GOCACHE" "$GOPATH"

go_version=$("$GO" env GOVERSION)

# --- cache key over all inputs.
key=$(
    cd "$here"
    {
        echo "$go_version"
        find build.sh k8s argocd -type f \( -name '*.go' -o -name go.mod -o -name go.sum -o -name '*.sh' \) |
            LC_ALL=C sort | xargs sha256sum
    } | sha256sum | cut -c1-16
)
root=$cache/sandbox/$key
bin=$root/bin
stamp=$root/stamp

binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler argocd
    argocd-application-controller argocd-applicationset-controller
    argocd-repo-server argocd-git-ask-pass kwok kustomize helm)

crds=$root/crds

all_present() {
    local b
    for b in "${binaries[@]}"; do
        [[ -x $bin/$b ]] || return 1
    done
    [[ -f $crds/application-crd.yaml && -f $crds/appproject-crd.yaml && -f $crds/applicationset-crd.yaml ]]
}

if [[ -f $stamp ]] && all_present; then
    log "up to date (key $key)"
    echo "$bin"
    exit 0
fi

log "building into $bin with $go_version (key $key)"
mkdir -p "$bin"

ldflags_common="-s -w"
build_flags=(-mod=readonly -trimpath)

# step NAME COMMAND...: runs COMMAND unless $bin/NAME exists, timing it.
step() {
    local name=$1 t0=$SECONDS
    shift
    if [[ -x $bin/$name ]]; then
        log "$name: already built"
        return 0
    fi
    log "$name: building"
    "$@"
    log "$name: done in $((SECONDS - t0))s"
}

# go_build MODULE_DIR OUT PKG LDFLAGS: build into a temp name, then rename,
# so an interrupted build never leaves a half-written binary behind.
go_build() {
    local dir=$1 out=$2 pkg=$3 ld=$4
    (cd "$here/$dir" && "$GO" build "${build_flags[@]}" -ldflags "$ld" -o "$bin/.$out.tmp" "$pkg")
    mv -f "$bin/.$out.tmp" "$bin/$out"
}

# --- module downloads (only the packages actually built).
t0=$SECONDS
log "downloading modules"
(cd "$here/k8s" && "$GO" list -mod=readonly -deps ./cmd/... >/dev/null)
(cd "$here/argocd" && "$GO" list -mod=readonly -deps . >/dev/null)
log "modules downloaded in $((SECONDS - t0))s"

# --- etcd + Kubernetes control plane (module sandbox/k8s).
k8s_version=$(cd "$here/k8s" && "$GO" list -mod=readonly -m -f '{{.Version}}' k8s.io/kubernetes)
k8s_minor=${k8s_version#v1.}
k8s_minor=${k8s_minor%%.*}
k8s_ld="$ldflags_common"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    k8s_ld+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=$k8s_minor -X $p.gitTreeState=clean"
done

step etcd go_build k8s etcd ./cmd/etcd "$ldflags_common"
for c in kube-apiserver kube-controller-manager kube-scheduler; do
    step "$c" go_build k8s "$c" "./cmd/$c" "$k8s_ld"
done

# --- Argo CD application controller, ApplicationSet controller, repo server
# (module sandbox/argocd).
argocd_version=$(cd "$here/argocd" && "$GO" list -mod=readonly -m -f '{{.Version}}' github.com/argoproj/argo-cd/v3)
# The module carries no commit hash, so `argocd version` reports vX.Y.Z+unknown.
argocd_ld="$ldflags_common -X github.com/argoproj/argo-cd/v3/common.version=${argocd_version#v}"
step argocd go_build argocd argocd . "$argocd_ld"
for c in argocd-application-controller argocd-applicationset-controller argocd-repo-server argocd-git-ask-pass; do
    ln -sfn argocd "$bin/$c"
done

# Argo CD's CRDs, from the same module version (the sandbox applies them at `up`).
if [[ ! -f $crds/application-crd.yaml ]]; then
    argocd_dir=$(cd "$here/argocd" && "$GO" list -mod=readonly -m -f '{{.Dir}}' github.com/argoproj/argo-cd/v3)
    mkdir -p "$crds"
    cp "$argocd_dir"/manifests/crds/*-crd.yaml "$crds/"
    chmod u+w "$crds"/*.yaml
    log "Argo CD CRDs copied to $crds"
fi

# --- kwok, kustomize and helm: plain `go install pkg@version` (the repo
# server runs kustomize and helm from its PATH, which starts with $bin).
# go_install PKG@VERSION [EXTRA_LDFLAGS]
go_install() {
    GOBIN=$bin "$GO" install -trimpath -ldflags "$ldflags_common ${2:-}" "$1"
}
step kwok go_install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
step kustomize go_install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
# As helm's Makefile does, stamp the full version (the module's default is "v3.18").
step helm go_install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"

all_present || { echo "sandbox/build.sh: some binaries are missing in $bin" >&2; exit 1; }
{
    echo "key=$key"
    echo "go=$go_version"
    echo "kubernetes=$k8s_version"
    echo "argocd=$argocd_version"
    echo "kwok=$KWOK_VERSION"
    echo "kustomize=$KUSTOMIZE_VERSION"
    echo "helm=$HELM_VERSION"
} >"$stamp"
log "all binaries built in $((SECONDS - start))s"
echo "$bin"
