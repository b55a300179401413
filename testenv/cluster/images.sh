#!/usr/bin/env bash
# Builds the images `make test-cluster` runs, from binaries built here
# (nothing is pulled), and imports them into the cluster's containerd:
#   apisix-operator.local/apisix-operator:dev  the release binary with the
#       C libraries it links (what the Dockerfile's distroless cc base
#       provides), run as 65532 like the Dockerfile's nonroot user;
#   apisix-operator.local/etcd:<version>      the etcd of the test
#       environment (static), the APISIX store.
# Usage: images.sh [--build-only] [operator binary]; --build-only writes the
# image archives ($CLUSTER_DIR/images/*.tar) without importing them (kind.sh
# loads them into kind's nodes instead).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../common.sh
. "$here/../common.sh"
import=yes
if [ "${1:-}" = --build-only ]; then import=no; shift; fi
operator=${1:-$root/target/release/apisix-operator}
out="$CLUSTER_DIR/images"
mkdir -p "$out"
[ -x "$operator" ] || { echo "[images] no operator binary at $operator (cargo build --release -p apisix-operator)" >&2; exit 1; }

files=(--file "$operator:/apisix-operator")
# The libraries the binary links, at the paths its loader looks for them.
while read -r library; do
  files+=(--file "$library:$library:755")
done < <(ldd "$operator" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$out/passwd"
files+=(--file "$out/passwd:/etc/passwd:644")
python3 "$here/oci-image.py" --name apisix-operator.local/apisix-operator:dev \
  --output "$out/apisix-operator.tar" "${files[@]}" --user 65532:65532 \
  --entrypoint /apisix-operator --cmd run
python3 "$here/oci-image.py" --name "apisix-operator.local/etcd:$ETCD_VERSION" \
  --output "$out/etcd.tar" --file "$cache/bin/etcd-$ETCD_VERSION:/usr/local/bin/etcd" \
  --entrypoint /usr/local/bin/etcd

[ "$import" = yes ] || exit 0
for image in apisix-operator etcd; do
  ctr --address "$CLUSTER_DIR/containerd/containerd.sock" -n k8s.io images import "$out/$image.tar" >/dev/null
  echo "[images] imported $image" >&2
done
