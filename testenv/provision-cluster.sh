#!/usr/bin/env bash
# What `make cluster` needs beyond testenv/provision.sh, skipping whatever
# is already there:
#   - Debian packages: containerd, runc, the CNI plugins, iptables, conntrack;
#   - kubelet, kube-proxy, kube-controller-manager, kube-scheduler and
#     kubectl, built from the same pinned k8s.io/kubernetes release as
#     kube-apiserver (testenv/tools/kube-node), into the binary cache;
#   - the pause image's binary, built from the kubernetes module's source.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
log() { printf '[provision-cluster] %s\n' "$*" >&2; }
# shellcheck source=common.sh
. "$here/common.sh"
mkdir -p "$bin"

if [ "$(id -u)" -ne 0 ]; then
  log "make cluster runs a kubelet, containerd and network namespaces: run it as root"
  exit 1
fi

missing=()
command -v containerd >/dev/null 2>&1 || missing+=(containerd)
command -v runc >/dev/null 2>&1 || missing+=(runc)
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
command -v conntrack >/dev/null 2>&1 || missing+=(conntrack)
command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! grep -q "k8s.io/kubernetes $KUBE_APISERVER_VERSION" "$here/tools/kube-node/go.mod"; then
  log "testenv/tools/kube-node/go.mod does not require k8s.io/kubernetes $KUBE_APISERVER_VERSION"
  exit 1
fi
for name in kubelet kube-proxy kube-controller-manager kube-scheduler kubectl; do
  build "$name" "$KUBE_APISERVER_VERSION" "$here/tools/kube-node" "k8s.io/kubernetes/cmd/$name" "$kube_ldflags"
done

# The sandbox ("pause") container: the kubernetes module's own pause.c,
# linked statically, so its image needs nothing but the binary.
pause="$bin/pause-$KUBE_APISERVER_VERSION"
if [ ! -x "$pause" ]; then
  module=$(cd "$here/tools/kube-node" && GOWORK=off go list -m -f '{{.Dir}}' k8s.io/kubernetes)
  log "building the pause binary from $module/build/pause/linux/pause.c"
  gcc -Os -static -DVERSION="$KUBE_APISERVER_VERSION" -o "$pause.tmp" "$module/build/pause/linux/pause.c"
  mv "$pause.tmp" "$pause"
fi
log "ready: $bin"
