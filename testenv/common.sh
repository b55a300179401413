# shellcheck shell=bash
# Sourced by the scripts of testenv/: the pinned versions, where the binary
# cache and the cluster's state live, and the Go build of a cached binary
# (the sourcing script defines `log`, and `fail` if it uses `eventually`).

# shellcheck source=versions.env
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/versions.env"
cache=${APISIX_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/apisix-operator}
bin="$cache/bin"
# shellcheck disable=SC2034 # used by the cluster scripts
CLUSTER_DIR=${APISIX_OPERATOR_CLUSTER_DIR:-$cache/cluster}

# Stamp the release version on Kubernetes binaries (the module build would
# report v0.0.0-master).
kube_minor=$(echo "$KUBE_APISERVER_VERSION" | cut -d. -f2)
# shellcheck disable=SC2034 # used by the provisioning scripts
kube_ldflags="-X k8s.io/component-base/version.gitVersion=$KUBE_APISERVER_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$kube_minor -X k8s.io/component-base/version.gitTreeState=clean"

# Builds `package` of the Go module in `module-dir` into the cache as
# <name>-<version>, unless it is there already.
build() { # name version module-dir package [ldflags]
  local out="$bin/$1-$2"
  if [ -x "$out" ]; then
    return
  fi
  log "building $1 $2 from Go modules (first time only; cached in $bin)"
  local started=$SECONDS
  (cd "$3" && CGO_ENABLED=0 GOWORK=off GOFLAGS=-mod=readonly GOTOOLCHAIN=local \
    go build -trimpath -buildvcs=false -ldflags "${5:-}" -o "$out.tmp" "$4")
  mv "$out.tmp" "$out"
  log "built $1 in $((SECONDS - started))s"
}

# Runs `command...` until it succeeds, at most `seconds`, then calls the
# sourcing script's `fail` naming `what`.
eventually() { # what seconds command...
  local what=$1 limit=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "timed out after ${limit}s waiting for $what"
    sleep 0.5
  done
}
