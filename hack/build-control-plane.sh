#!/usr/bin/env bash
# Builds the test control plane (kube-apiserver, kubectl, etcd) from the Go module proxy into
# $1 (an absolute directory), reusing a per-machine cache. setup-envtest would download
# prebuilt binaries, which this project never does. A cold build takes ~10-13 min on 2 cores.
set -euo pipefail

dest=${1:?usage: build-control-plane.sh DEST_DIR}
k8s_version=${K8S_VERSION:-v1.37.2}
etcd_version=${ETCD_VERSION:-v3.7.3}
staging_version=v0${k8s_version#v1}   # v1.37.2 -> v0.37.2
cache=${LEADHOOK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/leadhook}/control-plane/${k8s_version}-etcd${etcd_version}

have() { [ -x "$1/kube-apiserver" ] && [ -x "$1/kubectl" ] && [ -x "$1/etcd" ]; }

mkdir -p "$dest"
if have "$dest"; then
  exit 0
fi
if have "$cache"; then
  echo "Using cached control plane from $cache"
  cp "$cache"/{kube-apiserver,kubectl,etcd} "$dest"/
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GOFLAGS=-mod=mod CGO_ENABLED=0

echo "Building kube-apiserver and kubectl $k8s_version from the Go module proxy (takes minutes)..."
mkdir -p "$work/k8s"
cd "$work/k8s"
go mod init leadhook.local/control-plane >/dev/null 2>&1
go mod edit -go=1.26.0 -require=k8s.io/kubernetes@"$k8s_version"
gomod=$(go mod download -json k8s.io/kubernetes@"$k8s_version" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
# k8s.io/kubernetes requires its staging modules as v0.0.0 with local replaces; point each at
# the published release instead.
for m in $(sed -n 's#^[[:space:]]*\(k8s.io/[^[:space:]]*\) => ./staging/.*#\1#p' "$gomod"); do
  go mod edit -replace="$m=$m@$staging_version"
done
go get -tool k8s.io/kubernetes/cmd/kube-apiserver@"$k8s_version" k8s.io/kubernetes/cmd/kubectl@"$k8s_version" >/dev/null
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version"
go build -trimpath -ldflags "$ldflags" -o "$work/out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
go build -trimpath -ldflags "$ldflags" -o "$work/out/kubectl" k8s.io/kubernetes/cmd/kubectl

echo "Building etcd $etcd_version..."
mkdir -p "$work/etcd"
cd "$work/etcd"
go mod init leadhook.local/etcd >/dev/null 2>&1
go get -tool go.etcd.io/etcd/server/v3@"$etcd_version" >/dev/null
go build -trimpath -ldflags "-s -w" -o "$work/out/etcd" go.etcd.io/etcd/server/v3

mkdir -p "$cache"
cp "$work"/out/{kube-apiserver,kubectl,etcd} "$cache"/
cp "$work"/out/{kube-apiserver,kubectl,etcd} "$dest"/
echo "Control plane ready in $dest (cached in $cache)"
