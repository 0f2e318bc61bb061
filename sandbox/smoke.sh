#!/usr/bin/env bash
# Smoke test of the sandbox binaries: start etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kwok as local processes on
# loopback, wait until each is healthy, run a fake pod on a kwok node, then
# stop everything it started. Exits non-zero on the first failure.
#
#   sandbox/smoke.sh [BIN_DIR]      # default: $(sandbox/build.sh)
#
# Ports (override through the environment): SANDBOX_ETCD_PORT (2379; the
# peer port is +1), SANDBOX_API_PORT (6443), SANDBOX_KCM_PORT (10257),
# SANDBOX_SCHED_PORT (10259), SANDBOX_KWOK_PORT (10247).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${1:-$("$here/build.sh" | tail -n 1)}
etcd_port=${SANDBOX_ETCD_PORT:-2379}
api_port=${SANDBOX_API_PORT:-6443}
kcm_port=${SANDBOX_KCM_PORT:-10257}
sched_port=${SANDBOX_SCHED_PORT:-10259}
kwok_port=${SANDBOX_KWOK_PORT:-10247}

start=$SECONDS
log() { printf '[smoke %4ds] %s\n' "$((SECONDS - start))" "$*" >&2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/gitops-nb-sandbox.XXXXXX")
pids=()
cleanup() {
    local rc=$? p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    if [[ $rc -ne 0 ]]; then
        log "FAILED; last log lines:"
        tail -n 15 "$work"/*.log >&2 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# run NAME COMMAND...: start COMMAND in the background, logging to NAME.log.
run() {
    local name=$1
    shift
    "$@" >"$work/$name.log" 2>&1 &
    pids+=("$!")
    log "$name started (pid $!)"
}

# wait_for WHAT SECONDS COMMAND...: poll COMMAND every 0.5 s until it succeeds.
wait_for() {
    local what=$1 limit=$2 t0=$SECONDS
    shift 2
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS - t0 > limit)); then
            log "$what: not ready after ${limit}s"
            return 1
        fi
        sleep 0.5
    done
    log "$what: ready after $((SECONDS - t0))s"
}

# --- credentials: a service-account key pair and a static admin token.
openssl genrsa -out "$work/sa.key" 2048 2>/dev/null
openssl rsa -in "$work/sa.key" -pubout -out "$work/sa.pub" 2>/dev/null
token=$(openssl rand -hex 16)
echo "$token,admin,admin,\"system:masters\"" >"$work/tokens.csv"
api=https://127.0.0.1:$api_port
cat >"$work/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: sandbox
  cluster:
    server: $api
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: $token
contexts:
- name: sandbox
  context: {cluster: sandbox, user: admin}
current-context: sandbox
EOF

kget() { curl -fsS -k -H "Authorization: Bearer $token" "$api$1"; }
kpost() { curl -fsS -k -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -X POST --data "$2" "$api$1"; }

# --- etcd
run etcd "$bin/etcd" \
    --name=sandbox \
    --data-dir="$work/etcd" \
    --listen-client-urls="http://127.0.0.1:$etcd_port" \
    --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$((etcd_port + 1))" \
    --initial-advertise-peer-urls="http://127.0.0.1:$((etcd_port + 1))" \
    --initial-cluster="sandbox=http://127.0.0.1:$((etcd_port + 1))" \
    --listen-metrics-urls="http://127.0.0.1:$((etcd_port + 2))" \
    --unsafe-no-fsync=true \
    --log-level=warn
wait_for etcd 30 curl -fsS "http://127.0.0.1:$etcd_port/health"

# --- kube-apiserver
run kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --secure-port="$api_port" \
    --cert-dir="$work/apiserver-certs" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --service-account-issuer="$api" \
    --service-account-key-file="$work/sa.pub" \
    --service-account-signing-key-file="$work/sa.key" \
    --token-auth-file="$work/tokens.csv" \
    --authorization-mode=RBAC \
    --allow-privileged=true
wait_for kube-apiserver 90 kget /readyz

# --- kube-controller-manager and kube-scheduler
run kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig="$work/kubeconfig" \
    --authentication-kubeconfig="$work/kubeconfig" \
    --authorization-kubeconfig="$work/kubeconfig" \
    --bind-address=127.0.0.1 \
    --secure-port="$kcm_port" \
    --cert-dir="$work/kcm-certs" \
    --leader-elect=false \
    --service-account-private-key-file="$work/sa.key" \
    --use-service-account-credentials=true \
    --controllers='*,-nodeipam,-cloud-node-lifecycle'
run kube-scheduler "$bin/kube-scheduler" \
    --kubeconfig="$work/kubeconfig" \
    --authentication-kubeconfig="$work/kubeconfig" \
    --authorization-kubeconfig="$work/kubeconfig" \
    --bind-address=127.0.0.1 \
    --secure-port="$sched_port" \
    --cert-dir="$work/scheduler-certs" \
    --leader-elect=false
wait_for kube-controller-manager 60 curl -fsS -k "https://127.0.0.1:$kcm_port/healthz"
wait_for kube-scheduler 60 curl -fsS -k "https://127.0.0.1:$sched_port/healthz"
wait_for "default service account" 60 kget /api/v1/namespaces/default/serviceaccounts/default

# --- kwok: fake nodes and pods
run kwok "$bin/kwok" \
    --kubeconfig="$work/kubeconfig" \
    --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-ip=10.0.0.1 \
    --cidr=10.0.1.0/24 \
    --server-address="127.0.0.1:$kwok_port"
wait_for kwok 30 curl -fsS "http://127.0.0.1:$kwok_port/healthz"

kpost /api/v1/nodes '{"apiVersion":"v1","kind":"Node","metadata":{"name":"kwok-node-0","annotations":{"kwok.x-k8s.io/node":"fake"},"labels":{"type":"kwok"}},"spec":{"taints":[{"key":"kwok.x-k8s.io/node","value":"fake","effect":"NoSchedule"}]}}' >/dev/null
node_ready() { kget /api/v1/nodes/kwok-node-0 | grep -q '"type": *"Ready", *"status": *"True"' ||
    kget /api/v1/nodes/kwok-node-0 | tr -d ' \n' | grep -q '"type":"Ready","status":"True"'; }
wait_for "kwok node Ready" 60 node_ready

kpost /api/v1/namespaces/default/pods '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"smoke"},"spec":{"nodeSelector":{"type":"kwok"},"tolerations":[{"key":"kwok.x-k8s.io/node","operator":"Exists","effect":"NoSchedule"}],"containers":[{"name":"c","image":"busybox"}]}}' >/dev/null
pod_running() { kget /api/v1/namespaces/default/pods/smoke | tr -d ' \n' | grep -q '"phase":"Running"'; }
wait_for "pod Running on the kwok node" 60 pod_running

log "all components healthy; stopping"
