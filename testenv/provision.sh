#!/usr/bin/env bash
# Installs and builds everything the tests, benches and the demo need, and
# skips whatever is already there, so a second run does nothing:
#   - Debian packages: protobuf-compiler and libprotobuf-dev (etcd-client's
#     build), shellcheck (the scripts' lint), iptables and iproute2 (the
#     chaos tests' partitions: network namespaces, veth pairs, DNAT, drops)
#   - Python: jsonschema (for ../shared/apisix-schema/validate.py)
#   - kube-apiserver, etcd, helm, kustomize and olm-bundle-validate, built from
#     the pinned Go modules in testenv/tools/
#     into $APISIX_OPERATOR_CACHE (default ~/.cache/apisix-operator/bin), keyed by version
#   - the Gateway API CRDs, from the pinned sigs.k8s.io/gateway-api module,
#     into $APISIX_OPERATOR_CACHE/gateway-api-<version>/
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
log() { printf '[provision] %s\n' "$*" >&2; }
# shellcheck source=common.sh
. "$here/common.sh"
mkdir -p "$bin"

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- Debian packages ---------------------------------------------------------
missing=()
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
[ -f /usr/include/google/protobuf/descriptor.proto ] || missing+=(libprotobuf-dev)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- Python ------------------------------------------------------------------
if ! python3 -c 'import jsonschema' >/dev/null 2>&1; then
  log "installing jsonschema (pip)"
  python3 -m pip install --quiet jsonschema
fi

# --- Go-built binaries -------------------------------------------------------
require_version() { # module file version
  if ! grep -q "$1 $3" "$2"; then
    log "$2 does not require $1 $3 (versions.env and the go.mod disagree)"
    exit 1
  fi
}
require_version k8s.io/kubernetes "$here/tools/kube-apiserver/go.mod" "$KUBE_APISERVER_VERSION"
require_version go.etcd.io/etcd/server/v3 "$here/tools/etcd/go.mod" "$ETCD_VERSION"
require_version helm.sh/helm/v3 "$here/tools/helm/go.mod" "$HELM_VERSION"
require_version sigs.k8s.io/kustomize/kustomize/v5 "$here/tools/kustomize/go.mod" "$KUSTOMIZE_VERSION"
require_version github.com/operator-framework/api "$here/tools/olm-validate/go.mod" "$OPERATOR_FRAMEWORK_API_VERSION"
require_version sigs.k8s.io/gateway-api "$here/tools/gateway-api/go.mod" "$GATEWAY_API_VERSION"

build etcd "$ETCD_VERSION" "$here/tools/etcd" go.etcd.io/etcd/server/v3
build kube-apiserver "$KUBE_APISERVER_VERSION" "$here/tools/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver "$kube_ldflags"

# The install tests (deploy/): helm lint/template, kustomize build, OLM bundle validation.
# Stamp what helm's release Makefile stamps: its version and the Kubernetes
# version it assumes by default (from its client-go, else `helm template`
# assumes v1.20).
helm_k8s_minor=$(sed -n 's|^\s*k8s.io/client-go v0\.\([0-9]*\)\..*|\1|p' "$here/tools/helm/go.mod")
helm_ldflags="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  helm_ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$helm_k8s_minor"
done
build helm "$HELM_VERSION" "$here/tools/helm" helm.sh/helm/v3/cmd/helm "$helm_ldflags"
build kustomize "$KUSTOMIZE_VERSION" "$here/tools/kustomize" sigs.k8s.io/kustomize/kustomize/v5
build olm-bundle-validate "$OPERATOR_FRAMEWORK_API_VERSION" "$here/tools/olm-validate" .

# The Gateway API CRDs the test environment installs, from the pinned module
# (verified against its go.sum), into $cache/gateway-api-<version>/.
gateway_crds="$cache/gateway-api-$GATEWAY_API_VERSION"
if [ ! -d "$gateway_crds" ]; then
  log "Gateway API $GATEWAY_API_VERSION CRDs from its Go module"
  module=$(
    cd "$here/tools/gateway-api"
    export GOWORK=off GOFLAGS=-mod=readonly GOTOOLCHAIN=local
    go mod download sigs.k8s.io/gateway-api && go list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api
  )
  rm -rf "$gateway_crds.tmp" && mkdir -p "$gateway_crds.tmp"
  for kind in gatewayclasses gateways httproutes grpcroutes tlsroutes referencegrants backendtlspolicies; do
    cp "$module/config/crd/standard/gateway.networking.k8s.io_$kind.yaml" "$gateway_crds.tmp/"
  done
  for kind in tcproutes udproutes; do
    cp "$module/config/crd/experimental/gateway.networking.k8s.io_$kind.yaml" "$gateway_crds.tmp/"
  done
  chmod -R u+w "$gateway_crds.tmp" && mv "$gateway_crds.tmp" "$gateway_crds"
fi

log "ready: $bin"
