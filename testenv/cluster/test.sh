#!/usr/bin/env bash
# The chart on the real one-node cluster of cluster.sh: three replicas as
# pods from the image built here, the APISIX etcd as a pod, the examples
# applied, and then what only a kubelet can show:
#   1. every replica Ready through the chart's probes, in-cluster
#      configuration and the ServiceAccount token used for real;
#   2. etcd holds exactly `apisix-operator translate` of the examples;
#   3. the admission webhook, called by the API server through its Service,
#      refuses a bad Ingress naming the field;
#   4. `kubectl delete pod` of the leader (grace period: SIGTERM) and again
#      with --grace-period=0 --force: another replica leads, and a change
#      made right after reaches etcd;
#   5. `helm upgrade` rolls all three pods while a workload keeps changing an
#      ApisixRoute: never fewer than two replicas Ready, and at the end etcd
#      holds exactly the translation of the final objects (no change lost);
#   6. two evictions at once: the PodDisruptionBudget refuses the second;
#   7. the fault matrix on the pods (chaos-tests' chaos-cluster): the
#      seeded chaos workload while the leader pod's process is SIGKILLed,
#      SIGSTOPped past its Lease, and its network namespace cut from the API
#      server and from the APISIX etcd; the history invariants and no
#      restart but the one a SIGKILL causes (reports in $CHAOS_REPORT_DIR);
#   8. the helm release removed, the OLM bundle installed as OLM would
#      (`apisix-operator-testenv olm-objects`: its RBAC, its Deployment with
#      a Subscription's config.env setting the etcd endpoints, OLM's webhook
#      Service, certificate and configurations): Ready, etcd unchanged, and
#      the webhook refusing through OLM's configuration.
# Usage: test.sh [rounds] (the workload's changes during the upgrade).
# Needs a running cluster (cluster.sh up) and the operator binary for the
# image: $OPERATOR_BINARY, else the release build.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../common.sh
. "$here/../common.sh"
export KUBECONFIG=$CLUSTER_DIR/admin.kubeconfig
kubectl="$cache/bin/kubectl-$KUBE_APISERVER_VERSION"
helm="$cache/bin/helm-$HELM_VERSION"
operator=${OPERATOR_BINARY:-$root/target/release/apisix-operator}
testenv=$root/target/debug/apisix-operator-testenv
chaos_cluster=$root/target/debug/chaos-cluster
ETCD=http://10.96.0.20:2379
NS=apisix-operator
ROUNDS=${1:-20}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

log() { printf '[test-cluster] %s\n' "$*" >&2; }
fail() {
  log "FAILED: $*"
  "$kubectl" -n "$NS" get pods -o wide >&2 || true
  "$kubectl" -n "$NS" logs -l app.kubernetes.io/name=apisix-operator --tail=20 >&2 || true
  exit 1
}
k() { "$kubectl" "$@"; }
[ -f "$KUBECONFIG" ] || fail "no cluster at $CLUSTER_DIR (make cluster)"
[ -x "$operator" ] || fail "no operator binary at $operator"
[ -x "$testenv" ] || fail "no $testenv (cargo build -p apisix-operator-testenv)"
[ -x "$chaos_cluster" ] || fail "no $chaos_cluster (cargo build -p apisix-operator-chaos-tests)"
k get --raw /readyz >/dev/null || fail "the cluster's API server does not answer"

# A previous run's bundle install would run a second operator beside the
# chart's: remove it (make test-cluster starts from a fresh cluster anyway).
k delete validatingwebhookconfigurations crds.validate.apisix.apache.org-apisix-olm \
  ingresses.validate.apisix.apache.org-apisix-olm --ignore-not-found >/dev/null
k delete namespace apisix-olm --ignore-not-found --wait >/dev/null

log "images"
bash "$here/images.sh" "$operator"

log "the APISIX etcd"
sed "s/ETCD_VERSION/$ETCD_VERSION/" "$here/manifests/apisix-etcd.yaml" | k apply -f - >/dev/null
k -n apisix rollout status deploy/etcd --timeout=120s >/dev/null || fail "the etcd pod is not Ready"

log "helm install: three replicas"
helm_args=(--namespace "$NS" --create-namespace --wait --timeout 180s
  --set image.repository=apisix-operator.local/apisix-operator --set image.tag=dev
  --set image.pullPolicy=Never --set replicaCount=3 --set "etcd.endpoints[0]=$ETCD")
"$helm" upgrade --install apisix-operator "$root/deploy/helm/apisix-operator" "${helm_args[@]}" >/dev/null ||
  fail "helm install"
ready_replicas() { k -n "$NS" get deploy apisix-operator -o jsonpath='{.status.readyReplicas}'; }
[ "$(ready_replicas)" = 3 ] || fail "not three Ready replicas"

leader() { k -n "$NS" get lease apisix-operator-leader -o jsonpath='{.spec.holderIdentity}'; }
eventually "a leader" 60 test -n "$(leader)"

log "the examples: etcd holds exactly their translation"
k create namespace shop --dry-run=client -o yaml | k apply -f - >/dev/null
k -n shop delete apisixroute workload --ignore-not-found >/dev/null 2>&1 || true
k apply -f "$root/examples/ingress/shop.yaml" -f "$root/examples/apisix/shop-apisix.yaml" >/dev/null 2>&1
cp "$root/examples/ingress/shop.yaml" "$root/examples/apisix/shop-apisix.yaml" "$work/"
"$operator" translate -f "$work" >"$work/want.json"
converged() { python3 "$here/etcd_keys.py" equal "$ETCD" /apisix/ "$work/want.json"; }
eventually "etcd to hold the translation of the examples" 90 converged

log "the webhook, through its Service, refuses a bad Ingress"
bad='{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"bad","namespace":"shop","annotations":{"k8s.apisix.apache.org/use-regex":"yes"}},"spec":{"ingressClassName":"apisix","rules":[{"http":{"paths":[{"path":"/","pathType":"Prefix","backend":{"service":{"name":"storefront","port":{"number":80}}}}]}}]}}'
if out=$(echo "$bad" | k apply -f - 2>&1); then fail "the bad Ingress was admitted"; fi
grep -q 'metadata.annotations\[k8s.apisix.apache.org/use-regex\]' <<<"$out" || fail "refused without the field: $out"

# The workload: one ApisixRoute whose path changes each round.
route() { # round
  cat <<YAML
apiVersion: apisix.apache.org/v2
kind: ApisixRoute
metadata: {name: workload, namespace: shop}
spec:
  ingressClassName: apisix
  http:
    - name: main
      match: {paths: ["/round-$1/*"]}
      backends: [{serviceName: storefront, servicePort: 80}]
YAML
}
apply_file() { k apply -f "$1"; }
set_round() { # round
  route "$1" >"$work/workload.yaml"
  # Right after a replica dies without a grace period, its Service may
  # still send the API server's webhook call to it for a moment
  # ("failed calling webhook"): an apply is retried, as a user would.
  eventually "round $1 to be applied" 30 apply_file "$work/workload.yaml"
  "$operator" translate -f "$work" >"$work/want.json"
}

failover() { # how, kubectl delete flags...
  local how=$1
  shift
  local old
  old=$(leader)
  log "delete the leader $old ($how)"
  k -n "$NS" delete pod "$old" "$@" >/dev/null 2>&1 || fail "deleting $old"
  eventually "another replica to lead after $how" 60 sh -c "[ \"\$($kubectl -n $NS get lease apisix-operator-leader -o jsonpath='{.spec.holderIdentity}')\" != '$old' ]"
  set_round "$how"
  eventually "the change after $how to reach etcd" 60 converged
}
failover graceful --wait=false
failover forced --grace-period=0 --force --wait=false
eventually "three Ready replicas again" 120 sh -c "[ \"\$($kubectl -n $NS get deploy apisix-operator -o jsonpath='{.status.readyReplicas}')\" = 3 ]"

log "helm upgrade rolls every pod while the workload changes an ApisixRoute $ROUNDS times"
# The pod template hashes of the replicas that are not terminating.
templates() {
  k -n "$NS" get pods -l app.kubernetes.io/name=apisix-operator -o json | python3 -c '
import json, sys
pods = json.load(sys.stdin)["items"]
print(" ".join(sorted({p["metadata"]["labels"]["pod-template-hash"] for p in pods if not p["metadata"].get("deletionTimestamp")})))'
}
before=$(templates)
"$helm" upgrade apisix-operator "$root/deploy/helm/apisix-operator" "${helm_args[@]}" \
  --set-string podAnnotations.rollout="$(date +%s)" >"$work/upgrade.log" 2>&1 &
upgrade=$!
fewest=3
note_ready() {
  local ready
  ready=$(ready_replicas)
  if [ "${ready:-0}" -lt "$fewest" ]; then fewest=${ready:-0}; fi
}
for round in $(seq "$ROUNDS"); do
  set_round "upgrade-$round"
  note_ready
  sleep 0.5
done
while kill -0 "$upgrade" 2>/dev/null; do
  note_ready
  sleep 0.5
done
wait "$upgrade" || fail "helm upgrade: $(cat "$work/upgrade.log")"
after=$(templates)
for template in $before; do
  if grep -qw "$template" <<<"$after"; then fail "pods of template $template were not replaced by the upgrade"; fi
done
[ "$fewest" -ge 2 ] || fail "only $fewest replicas were Ready during the rollout"
eventually "etcd to hold the final workload's translation (no change lost)" 90 converged
log "$ROUNDS changes during the rollout, at least $fewest replicas Ready throughout"

log "the PodDisruptionBudget: two evictions at once, the second refused"
evict() { # pod
  printf '{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"%s","namespace":"%s"}}' "$1" "$NS" |
    k create --raw "/api/v1/namespaces/$NS/pods/$1/eviction" -f - 2>&1
}
eventually "the budget to allow one disruption" 60 sh -c "[ \"\$($kubectl -n $NS get pdb apisix-operator -o jsonpath='{.status.disruptionsAllowed}')\" = 1 ]"
# (jsonpath prints no newline: read reports end of input, not an error)
read -r first second _ < <(k -n "$NS" get pods -l app.kubernetes.io/name=apisix-operator \
  --field-selector=status.phase=Running -o jsonpath='{.items[*].metadata.name}') || true
[ -n "${second:-}" ] || fail "fewer than two running replicas to evict"
evict "$first" >/dev/null || fail "evicting $first"
if out=$(evict "$second"); then fail "a second eviction passed the budget"; fi
grep -q "disruption budget" <<<"$out" || fail "the second eviction failed otherwise: $out"
eventually "three Ready replicas after the eviction" 120 sh -c "[ \"\$($kubectl -n $NS get deploy apisix-operator -o jsonpath='{.status.readyReplicas}')\" = 3 ]"
set_round after-eviction
eventually "a change after the eviction to reach etcd" 60 converged

log "the fault matrix on the pods"
"$chaos_cluster" --etcd "$ETCD" --namespace "$NS" --seed "${CHAOS_SEED:-1}" \
  --report-dir "${CHAOS_REPORT_DIR:-$work/chaos}" || fail "chaos-cluster"
eventually "three Ready replicas after the fault matrix" 120 sh -c "[ \"\$($kubectl -n $NS get deploy apisix-operator -o jsonpath='{.status.readyReplicas}')\" = 3 ]"

log "the OLM bundle, installed as OLM would (the helm release removed first)"
"$helm" uninstall apisix-operator --namespace "$NS" --wait >/dev/null || fail "helm uninstall"
# The release took its IngressClass with it; a bundle cannot ship one, so
# an OLM user creates it (the examples' own).
k apply -f "$root/examples/ingress/shop.yaml" >/dev/null 2>&1
bundle=$root/deploy/olm/bundle/manifests
csv_image=$(python3 -c 'import sys, yaml; csv = yaml.safe_load(open(sys.argv[1]))
print(csv["spec"]["install"]["spec"]["deployments"][0]["spec"]["template"]["spec"]["containers"][0]["image"])' \
  "$bundle/apisix-operator.clusterserviceversion.yaml")
# The image the bundle names, present on the node as a catalog would pull it.
ctr --address "$CLUSTER_DIR/containerd/containerd.sock" -n k8s.io images tag --force \
  apisix-operator.local/apisix-operator:dev "$csv_image" >/dev/null
OLM_NS=apisix-olm
"$testenv" olm-objects "$OLM_NS" "APISIX_OPERATOR_ETCD_ENDPOINTS=$ETCD" | k apply -f - >/dev/null ||
  fail "applying what OLM creates"
for manifest in "$bundle"/*.yaml; do
  case $manifest in *clusterserviceversion*) continue ;; esac
  sed "s/^  namespace: .*/  namespace: $OLM_NS/" "$manifest" | k apply -n "$OLM_NS" -f - >/dev/null ||
    fail "applying $manifest"
done
k -n "$OLM_NS" rollout status deploy/apisix-operator --timeout=180s >/dev/null ||
  fail "the bundle's Deployment is not Ready"
eventually "etcd to still hold the translation under the bundle's operator" 90 converged
if out=$(echo "$bad" | k apply -f - 2>&1); then fail "OLM's webhook admitted the bad Ingress"; fi
grep -q 'metadata.annotations\[k8s.apisix.apache.org/use-regex\]' <<<"$out" ||
  fail "OLM's webhook refused without the field: $out"
log "passed"
