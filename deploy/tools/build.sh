#!/usr/bin/env bash
# Builds the deploy checks' tools from Go modules (no prebuilt downloads: only the Go module
# proxy is assumed reachable) into a cache outside the checkout, keyed by version, and prints
# the binary's path. A cached binary is reused; a cold build of all three takes minutes.
# usage: deploy/tools/build.sh helm|kubeconform|crane|k8s-schemas|kube-apiserver|etcd
# kube-apiserver and etcd (the cluster profile tests' control plane, run by envtest) build from
# their own small modules under deploy/tools/envtest/, pinned by go.mod and go.sum there; their
# cold build is about 20 minutes on 2 cores, at low priority.
# With MINERGUARD_TOOLS_NO_BUILD=1 a missing tool is not built: exit 3 (tests use it to skip).
set -euo pipefail
HELM_VERSION=${HELM_VERSION:-v4.3.2}
KUBECONFORM_VERSION=${KUBECONFORM_VERSION:-v0.7.0}
GGCR_VERSION=${GGCR_VERSION:-v0.22.1}
# The Kubernetes release whose OpenAPI document gives kubeconform its schemas (same as k8s.io/api in go.mod).
K8S_VERSION=${K8S_VERSION:-v1.37.2}
cache=${MINERGUARD_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/minerguard-tools}
case "${1:-}" in
helm) pkg=helm.sh/helm/v4/cmd/helm; ver=$HELM_VERSION ;;
kubeconform) pkg=github.com/yannh/kubeconform/cmd/kubeconform; ver=$KUBECONFORM_VERSION ;;
crane) pkg=github.com/google/go-containerregistry/cmd/crane; ver=$GGCR_VERSION ;;
kube-apiserver | etcd)
  # The version is the one the module under deploy/tools/envtest/ pins (k8s.io/kubernetes or
  # go.etcd.io/etcd/server/v3): changing it there changes the cache key.
  src=$(cd "$(dirname "$0")/envtest/$1" && pwd)
  ver=$(awk '{ if ($1 == "require") { $1 = ""; $0 = $0 } } $1 == "k8s.io/kubernetes" || $1 == "go.etcd.io/etcd/server/v3" { print $2; exit }' "$src/go.mod")
  [ -n "$ver" ] || { echo "no version in $src/go.mod" >&2; exit 2; }
  pkg=local:$src ;;
k8s-schemas)
  # kubeconform's JSON schemas, offline: the OpenAPI document ships in the k8s.io/kubernetes
  # module (21 MB zip from the Go module proxy; nothing of it is compiled).
  dir=$cache/k8s-schemas-$K8S_VERSION
  if [ ! -f "$dir/.done" ]; then
    [ -z "${MINERGUARD_TOOLS_NO_BUILD:-}" ] || exit 3
    here=$(cd "$(dirname "$0")/../.." && pwd)
    src=$(cd "$here" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$here" && go run ./deploy/tools/k8sschema -swagger "$src/api/openapi-spec/swagger.json" -out "$dir")
    touch "$dir/.done"
  fi
  echo "$dir"; exit 0 ;;
*) echo "usage: $0 helm|kubeconform|crane|k8s-schemas|kube-apiserver|etcd" >&2; exit 2 ;;
esac
dir=$cache/$1-$ver
if [ ! -x "$dir/$1" ]; then
  [ -z "${MINERGUARD_TOOLS_NO_BUILD:-}" ] || exit 3
  mkdir -p "$dir"
  start=$(date +%s)
  # GOBIN into a temp dir then rename: an interrupted build never leaves a half binary cached.
  tmp=$(mktemp -d "$dir/.build.XXXXXX")
  case $pkg in
  local:*) (cd "${pkg#local:}" && GOFLAGS="-trimpath -buildvcs=false" CGO_ENABLED=0 nice -n 10 go build -o "$tmp/$1" .) >&2 ;;
  *) GOFLAGS=-trimpath CGO_ENABLED=0 GOBIN=$tmp go install "$pkg@$ver" >&2 ;;
  esac
  mv "$tmp/$1" "$dir/$1"
  rmdir "$tmp"
  echo "built $1 $ver in $(( $(date +%s) - start ))s into $dir" >&2
fi
echo "$dir/$1"
