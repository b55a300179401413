#!/usr/bin/env bash
# The chaos suite's cluster driver on kind, for users with Docker. (The
# project's CI machine cannot start kind's privileged node containers; it
# runs the same driver and checker against `make cluster`, in
# testenv/cluster/test.sh.) In order:
#   1. a kind cluster of three nodes (a control plane and two workers) named
#      $KIND_CLUSTER (default apisix-operator-chaos), created unless it exists;
#   2. the images make test-cluster runs, built from this checkout
#      (testenv/cluster/images.sh: the release binary; the test environment's
#      etcd as the APISIX store) and loaded into every node with
#      `kind load image-archive`: nothing of ours is pulled;
#   3. the APISIX etcd as a pod, the Helm chart with three replicas, the
#      examples; etcd must hold exactly `apisix-operator translate` of them;
#   4. chaos-cluster: the seeded workload while the leader pod's process is
#      SIGKILLed and SIGSTOPped past its Lease and its network namespace is
#      cut from the API server and from the APISIX etcd; the history
#      invariants against the translation of the live cluster and no pod
#      restart but the one a SIGKILL causes. Reports go to $CHAOS_REPORT_DIR
#      (default target/chaos-kind) and their table is printed;
#   5. the kind cluster deleted, unless KEEP=1.
# Needs Linux and root: kind's node containers are processes of this host, and
# chaos-cluster finds the leader's process in /proc and runs iptables inside
# its network namespace. Also docker, kind, python3, cargo, and the binaries
# `make provision` builds (etcd for the image, helm, kubectl).
# Usage: sudo -E chaos-tests/cluster/kind.sh [scenarios]
#   scenarios: comma-separated, default kill,freeze,cutapi,cutetcd;
#   CHAOS_SEED (default 1) seeds the workload.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../../testenv/common.sh
. "$root/testenv/common.sh"
scenarios=${1:-kill,freeze,cutapi,cutetcd}
name=${KIND_CLUSTER:-apisix-operator-chaos}
reports=${CHAOS_REPORT_DIR:-$root/target/chaos-kind}
kubectl="$cache/bin/kubectl-$KUBE_APISERVER_VERSION"
helm="$cache/bin/helm-$HELM_VERSION"
NS=apisix-operator
# The etcd Service's fixed ClusterIP (testenv/cluster/manifests/apisix-etcd.yaml),
# inside kind's default Service range; the host reaches it by a port-forward.
ETCD_IN_CLUSTER=http://10.96.0.20:2379
ETCD_PORT=${ETCD_FORWARD_PORT:-23790}
ETCD=http://127.0.0.1:$ETCD_PORT
work=$(mktemp -d)
forward=
cleanup() {
  [ -z "$forward" ] || kill "$forward" 2>/dev/null || true
  rm -rf "$work"
  if [ "${KEEP:-0}" != 1 ]; then kind delete cluster --name "$name" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

log() { printf '[kind] %s\n' "$*" >&2; }
fail() {
  log "FAILED: $*"
  k -n "$NS" get pods -o wide >&2 || true
  k -n "$NS" logs -l app.kubernetes.io/name=apisix-operator --tail=20 >&2 || true
  exit 1
}
k() { "$kubectl" --kubeconfig "$work/kubeconfig" "$@"; }
[ "$(uname -s)" = Linux ] || fail "needs Linux: the pods' processes must be this host's"
[ "$(id -u)" = 0 ] || fail "needs root (reading /proc/<pid>/environ, nsenter + iptables)"
for tool in docker kind python3 cargo iptables nsenter; do
  command -v "$tool" >/dev/null || fail "no $tool on PATH"
done
for binary in "$kubectl" "$helm" "$cache/bin/etcd-$ETCD_VERSION"; do
  [ -x "$binary" ] || fail "no $binary (make provision builds it)"
done
docker info >/dev/null 2>&1 || fail "docker does not answer (is dockerd running?)"

log "binaries: the release operator, the test tools"
(cd "$root" && cargo build --release --quiet -p apisix-operator &&
  cargo build --quiet -p apisix-operator-chaos-tests --bin chaos-cluster --bin chaos-report) ||
  fail "cargo build"
operator=$root/target/release/apisix-operator

if ! kind get clusters 2>/dev/null | grep -qx "$name"; then
  log "kind cluster $name: a control plane and two workers"
  printf '%s\n' 'kind: Cluster' 'apiVersion: kind.x-k8s.io/v1alpha4' 'nodes:' \
    '  - role: control-plane' '  - role: worker' '  - role: worker' >"$work/kind.yaml"
  kind create cluster --name "$name" --config "$work/kind.yaml" --wait 180s || fail "kind create cluster"
fi
kind get kubeconfig --name "$name" >"$work/kubeconfig"

log "images, built here and loaded into every node"
bash "$root/testenv/cluster/images.sh" --build-only "$operator"
for image in apisix-operator etcd; do
  kind load image-archive --name "$name" "$CLUSTER_DIR/images/$image.tar" || fail "kind load $image"
done

log "the APISIX etcd"
sed "s/ETCD_VERSION/$ETCD_VERSION/" "$root/testenv/cluster/manifests/apisix-etcd.yaml" | k apply -f - >/dev/null
k -n apisix rollout status deploy/etcd --timeout=120s >/dev/null || fail "the etcd pod is not Ready"
k -n apisix port-forward svc/etcd "$ETCD_PORT:2379" >"$work/port-forward.log" 2>&1 &
forward=$!
eventually "the port-forward to the APISIX etcd" 30 curl -sf "$ETCD/health"

log "helm install: three replicas"
"$helm" upgrade --install apisix-operator "$root/deploy/helm/apisix-operator" \
  --kubeconfig "$work/kubeconfig" --namespace "$NS" --create-namespace --wait --timeout 300s \
  --set image.repository=apisix-operator.local/apisix-operator --set image.tag=dev \
  --set image.pullPolicy=Never --set replicaCount=3 --set "etcd.endpoints[0]=$ETCD_IN_CLUSTER" \
  >/dev/null || fail "helm install"
leader() { k -n "$NS" get lease apisix-operator-leader -o jsonpath='{.spec.holderIdentity}'; }
eventually "a leader" 60 test -n "$(leader)"

log "the examples: etcd holds exactly their translation"
k create namespace shop --dry-run=client -o yaml | k apply -f - >/dev/null
eventually "the webhook to admit the examples" 60 \
  k apply -f "$root/examples/ingress/shop.yaml" -f "$root/examples/apisix/shop-apisix.yaml"
mkdir "$work/examples"
cp "$root/examples/ingress/shop.yaml" "$root/examples/apisix/shop-apisix.yaml" "$work/examples/"
"$operator" translate -f "$work/examples" >"$work/want.json"
converged() { python3 "$root/testenv/cluster/etcd_keys.py" equal "$ETCD" /apisix/ "$work/want.json"; }
eventually "etcd to hold the translation of the examples" 90 converged

log "the fault matrix: $scenarios (seed ${CHAOS_SEED:-1})"
rm -rf "$reports"
KUBECONFIG=$work/kubeconfig "$root/target/debug/chaos-cluster" --etcd "$ETCD" \
  --etcd-in-cluster "$ETCD_IN_CLUSTER" --namespace "$NS" --seed "${CHAOS_SEED:-1}" \
  --scenarios "$scenarios" --report-dir "$reports" || fail "chaos-cluster"
"$root/target/debug/chaos-report" "$reports"
log "passed"
