#!/usr/bin/env bash
# A one-node Kubernetes cluster run directly on this machine (no node
# containers: this host refuses privileged containers, so kind cannot run).
#
#   cluster.sh up      start it (idempotent: a running cluster is left alone)
#   cluster.sh down    stop it and remove every process, mount, namespace,
#                      link and iptables rule it created
#   cluster.sh status  what runs
#
# The control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler) runs on the host; the node (containerd, kubelet,
# kube-proxy, the pods' CNI bridge and their iptables rules) runs inside the
# network namespace $NETNS, joined to the host by one veth pair:
#   host  $HOST_IP/24 (kube-apiserver listens here only)
#   node  $NODE_IP/24 (kubelet), pods $POD_CIDR on a bridge inside the node,
#   Services $SERVICE_CIDR (kube-proxy, iptables, inside the node).
# Nothing listens beyond loopback and that veth. Everything lives under
# $CLUSTER_DIR; the kubeconfig is $CLUSTER_DIR/admin.kubeconfig.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../common.sh
. "$here/../common.sh"
NETNS=apisix-node
HOST_IF=ao-host
NODE_IF=ao-node
HOST_IP=10.250.0.1
NODE_IP=10.250.0.2
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/24
SERVICE_IP=10.96.0.1
NODE_NAME=apisix-node
V=$KUBE_APISERVER_VERSION
PAUSE_IMAGE=apisix-operator.local/pause:$V

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# Only the network namespace: `ip netns exec` would also remount /sys,
# hiding the cgroup mounts the kubelet and containerd need.
IN_NODE=(nsenter --net="/run/netns/$NETNS")
in_node() { "${IN_NODE[@]}" "$@"; }

require() {
  [ "$(id -u)" -eq 0 ] || die "runs as root (kubelet, containerd, network namespaces)"
  local missing=()
  for tool in etcd-"$ETCD_VERSION" kube-apiserver-"$V" kube-controller-manager-"$V" \
    kube-scheduler-"$V" kubelet-"$V" kube-proxy-"$V" kubectl-"$V" pause-"$V"; do
    [ -x "$bin/$tool" ] || missing+=("$bin/$tool")
  done
  for tool in containerd ctr runc iptables openssl python3 ip nsenter; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [ -x /usr/lib/cni/bridge ] || missing+=(/usr/lib/cni/bridge)
  [ ${#missing[@]} -eq 0 ] || die "missing: ${missing[*]} (make cluster provisions them)"
}

# --- processes -----------------------------------------------------------------
pidfile() { echo "$CLUSTER_DIR/run/$1.pid"; }
running() { local p; p=$(cat "$(pidfile "$1")" 2>/dev/null) && kill -0 "$p" 2>/dev/null; }

start() { # name command...
  local name=$1
  shift
  if running "$name"; then return; fi
  log "starting $name"
  setsid "$@" >"$CLUSTER_DIR/log/$name.log" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
}

stop() { # name
  local p
  p=$(cat "$(pidfile "$1")" 2>/dev/null) || return 0
  if kill -0 "$p" 2>/dev/null; then
    log "stopping $1"
    kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
  fi
  rm -f "$(pidfile "$1")"
}

wait_for() { # what seconds command...
  local what=$1 limit=$2
  shift 2
  for _ in $(seq "$((limit * 5))"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "timed out after ${limit}s waiting for $what (logs: $CLUSTER_DIR/log)"
}

# --- certificates ----------------------------------------------------------------
pki="$CLUSTER_DIR/pki"
issue() { # name subject [san]
  local name=$1 subject=$2 san=${3:-}
  [ -f "$pki/$name.crt" ] && return
  openssl ecparam -name prime256v1 -genkey -noout -out "$pki/$name.key.ec" 2>/dev/null
  openssl pkcs8 -topk8 -nocrypt -in "$pki/$name.key.ec" -out "$pki/$name.key"
  rm -f "$pki/$name.key.ec"
  local ext="$pki/$name.ext"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth,clientAuth"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } >"$ext"
  openssl req -new -key "$pki/$name.key" -subj "$subject" -out "$pki/$name.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 365 -extfile "$ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr" "$ext"
}

certificates() {
  mkdir -p "$pki"
  if [ ! -f "$pki/ca.crt" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=apisix-operator-cluster-ca" -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  fi
  if [ ! -f "$pki/sa.key" ]; then
    openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
    openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  fi
  issue apiserver "/CN=kube-apiserver" \
    "IP:$HOST_IP,IP:$SERVICE_IP,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  issue apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  issue admin "/O=system:masters/CN=cluster-admin"
  issue controller-manager "/CN=system:kube-controller-manager"
  issue scheduler "/CN=system:kube-scheduler"
  issue kube-proxy "/CN=system:kube-proxy"
  issue kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "IP:$NODE_IP,DNS:$NODE_NAME"
}

kubeconfig() { # name cert
  local file="$CLUSTER_DIR/$1.kubeconfig"
  [ -f "$file" ] && return
  cat >"$file" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://$HOST_IP:6443
    certificate-authority: $pki/ca.crt
users:
- name: $1
  user:
    client-certificate: $pki/$2.crt
    client-key: $pki/$2.key
contexts:
- name: local
  context: {cluster: local, user: $1}
current-context: local
KUBECONFIG
}

# --- network ---------------------------------------------------------------------
network() {
  if ! ip netns list | grep -qw "$NETNS"; then
    log "creating network namespace $NETNS"
    ip netns add "$NETNS"
  fi
  if ! ip link show "$HOST_IF" >/dev/null 2>&1; then
    ip link add "$HOST_IF" type veth peer name "$NODE_IF"
    ip link set "$NODE_IF" netns "$NETNS"
    ip addr add "$HOST_IP/24" dev "$HOST_IF"
    ip link set "$HOST_IF" up
    in_node ip addr add "$NODE_IP/24" dev "$NODE_IF"
    in_node ip link set "$NODE_IF" up
    in_node ip link set lo up
    in_node ip route add default via "$HOST_IP"
  fi
  in_node sysctl -qw net.ipv4.ip_forward=1
  # The API server reaches pods and Services (the admission webhook's)
  # through the node, where kube-proxy's rules translate Service addresses.
  ip route replace "$POD_CIDR" via "$NODE_IP" dev "$HOST_IF"
  ip route replace "$SERVICE_CIDR" via "$NODE_IP" dev "$HOST_IF"
}

# --- control plane ---------------------------------------------------------------
control_plane() {
  mkdir -p "$CLUSTER_DIR/etcd"
  start etcd "$bin/etcd-$ETCD_VERSION" --data-dir "$CLUSTER_DIR/etcd" --name cluster \
    --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 \
    --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
    --initial-cluster cluster=http://127.0.0.1:23800
  start kube-apiserver "$bin/kube-apiserver-$V" \
    --etcd-servers http://127.0.0.1:23790 \
    --bind-address "$HOST_IP" --secure-port 6443 --advertise-address "$HOST_IP" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$pki/ca.crt" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --allow-privileged=false
  wait_for "the API server" 60 "$bin/kubectl-$V" --kubeconfig "$CLUSTER_DIR/admin.kubeconfig" get --raw /readyz
  start kube-controller-manager "$bin/kube-controller-manager-$V" \
    --kubeconfig "$CLUSTER_DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$CLUSTER_DIR/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$CLUSTER_DIR/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10257 --leader-elect=false \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --use-service-account-credentials --service-cluster-ip-range "$SERVICE_CIDR"
  start kube-scheduler "$bin/kube-scheduler-$V" \
    --kubeconfig "$CLUSTER_DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig "$CLUSTER_DIR/scheduler.kubeconfig" \
    --authorization-kubeconfig "$CLUSTER_DIR/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10259 --leader-elect=false
}

# --- node ------------------------------------------------------------------------
containerd_config() {
  local dir="$CLUSTER_DIR/containerd"
  mkdir -p "$dir" "$CLUSTER_DIR/cni/net.d"
  cat >"$dir/config.toml" <<TOML
version = 2
root = "$dir/root"
state = "$dir/state"
[grpc]
  address = "$dir/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CLUSTER_DIR/cni/net.d"
TOML
  cat >"$CLUSTER_DIR/cni/net.d/10-apisix-node.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "apisix-node",
  "plugins": [
    {"type": "bridge", "bridge": "ao-cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}],
              "dataDir": "$CLUSTER_DIR/cni/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
}

node_configs() {
  mkdir -p "$CLUSTER_DIR/kubelet"
  cat >"$CLUSTER_DIR/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
containerRuntimeEndpoint: unix://$CLUSTER_DIR/containerd/containerd.sock
tlsCertFile: $pki/kubelet.crt
tlsPrivateKeyFile: $pki/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
resolvConf: ""
evictionHard: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
YAML
  cat >"$CLUSTER_DIR/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $CLUSTER_DIR/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
iptables: {masqueradeAll: true}
conntrack: {maxPerCore: 0}
YAML
}

images() {
  local images="$CLUSTER_DIR/images"
  mkdir -p "$images"
  if ! ctr_node images check "name==$PAUSE_IMAGE" 2>/dev/null | grep -q "$PAUSE_IMAGE"; then
    python3 "$here/oci-image.py" --name "$PAUSE_IMAGE" --output "$images/pause.tar" \
      --file "$bin/pause-$V:/pause" --entrypoint /pause
    ctr_node images import "$images/pause.tar" >/dev/null
  fi
}

ctr_node() { ctr --address "$CLUSTER_DIR/containerd/containerd.sock" -n k8s.io "$@"; }

node() {
  containerd_config
  node_configs
  start containerd "${IN_NODE[@]}" containerd --config "$CLUSTER_DIR/containerd/config.toml"
  wait_for containerd 30 ctr_node version
  images
  start kubelet "${IN_NODE[@]}" "$bin/kubelet-$V" --config "$CLUSTER_DIR/kubelet.yaml" \
    --kubeconfig "$CLUSTER_DIR/kubelet.kubeconfig" --hostname-override "$NODE_NAME" \
    --node-ip "$NODE_IP" --root-dir "$CLUSTER_DIR/kubelet"
  start kube-proxy "${IN_NODE[@]}" "$bin/kube-proxy-$V" --config "$CLUSTER_DIR/kube-proxy.yaml"
  wait_for "the node to be Ready" 120 node_ready
}

kubectl_admin() { "$bin/kubectl-$V" --kubeconfig "$CLUSTER_DIR/admin.kubeconfig" "$@"; }
node_ready() {
  [ "$(kubectl_admin get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}

up() {
  require
  mkdir -p "$CLUSTER_DIR/run" "$CLUSTER_DIR/log"
  certificates
  kubeconfig admin admin
  kubeconfig controller-manager controller-manager
  kubeconfig scheduler scheduler
  kubeconfig kube-proxy kube-proxy
  kubeconfig kubelet kubelet
  network
  control_plane
  node
  log "ready: export KUBECONFIG=$CLUSTER_DIR/admin.kubeconfig"
}

# The network namespaces containerd pinned for its pod sandboxes
# (/run/netns/cni-...), read from the sandboxes' specs.
pod_netns() {
  running containerd || return 0
  local id
  for id in $(ctr_node containers ls -q 2>/dev/null); do
    ctr_node containers info "$id" 2>/dev/null | python3 -c '
import json, sys
spec = json.load(sys.stdin).get("Spec") or {}
for ns in (spec.get("linux") or {}).get("namespaces") or []:
    if ns.get("type") == "network" and ns.get("path", "").startswith("/var/run/netns/"):
        print(ns["path"])' || true
  done | sort -u
}

down() {
  local sandboxes
  sandboxes=$(pod_netns)
  for name in kube-proxy kubelet containerd kube-scheduler kube-controller-manager kube-apiserver etcd; do
    stop "$name"
  done
  for path in $sandboxes; do
    umount "$path" 2>/dev/null || true
    rm -f "$path"
  done
  # Pod sandboxes outlive containerd's stop as shims: end them.
  pkill -KILL -f "containerd-shim.*$CLUSTER_DIR" 2>/dev/null || true
  # The kubelet and containerd leave mounts (pod volumes, rootfs, netns).
  if [ -d "$CLUSTER_DIR" ]; then
    awk -v dir="$CLUSTER_DIR" '$2 ~ "^"dir {print $2}' /proc/mounts | sort -r | while read -r mount; do
      umount -l "$mount" 2>/dev/null || true
    done
  fi
  # Deleting the namespace drops the veth pair, the bridge and every
  # iptables rule kube-proxy and the CNI plugins made inside it.
  if ip netns list | grep -qw "$NETNS"; then
    ip netns pids "$NETNS" | xargs -r kill -KILL 2>/dev/null || true
    ip netns delete "$NETNS"
  fi
  ip link delete "$HOST_IF" 2>/dev/null || true
  # `ip netns add` bind-mounts /run/netns onto itself; undo that once no
  # namespace is left in it.
  if mountpoint -q /run/netns && [ -z "$(ls -A /run/netns)" ]; then umount /run/netns; fi
  ip route delete "$POD_CIDR" 2>/dev/null || true
  ip route delete "$SERVICE_CIDR" 2>/dev/null || true
  rm -rf "$CLUSTER_DIR"
  log "down"
}

status() {
  for name in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy; do
    if running "$name"; then echo "$name: running"; else echo "$name: stopped"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: cluster.sh up|down|status" ;;
esac
