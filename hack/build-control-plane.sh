#!/usr/bin/env bash
# Builds the test control plane (kube-apiserver, kube-controller-manager, kubectl, etcd) from
# the Go module proxy into $1 (an absolute directory), reusing a per-machine cache. setup-envtest
# would download prebuilt binaries, which this project never does. A cold build takes ~10-15 min
# on 2 cores; each binary is built only when neither $1 nor the cache has it.
set -euo pipefail

dest=${1:?usage: build-control-plane.sh DEST_DIR}
k8s_version=${K8S_VERSION:-v1.37.2}
etcd_version=${ETCD_VERSION:-v3.7.3}
staging_version=v0${k8s_version#v1}   # v1.37.2 -> v0.37.2
cache=${LEADHOOK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/leadhook}/control-plane/${k8s_version}-etcd${etcd_version}
k8s_bins=(kube-apiserver kube-controller-manager kubectl)

mkdir -p "$dest" "$cache"
missing=()
for b in "${k8s_bins[@]}" etcd; do
  if [ -x "$dest/$b" ]; then
    continue
  fi
  if [ -x "$cache/$b" ]; then
    echo "Using cached $b from $cache"
    cp "$cache/$b" "$dest/"
    continue
  fi
  missing+=("$b")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GOFLAGS=-mod=mod CGO_ENABLED=0
mkdir -p "$work/out"

need_k8s=()
for b in "${missing[@]}"; do
  [ "$b" = etcd ] || need_k8s+=("$b")
done
if [ ${#need_k8s[@]} -gt 0 ]; then
  echo "Building ${need_k8s[*]} $k8s_version from the Go module proxy (takes minutes)..."
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
  tools=()
  for b in "${need_k8s[@]}"; do tools+=("k8s.io/kubernetes/cmd/$b@$k8s_version"); done
  go get -tool "${tools[@]}" >/dev/null
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version"
  for b in "${need_k8s[@]}"; do
    go build -trimpath -ldflags "$ldflags" -o "$work/out/$b" "k8s.io/kubernetes/cmd/$b"
  done
fi

if [[ " ${missing[*]} " == *" etcd "* ]]; then
  echo "Building etcd $etcd_version..."
  mkdir -p "$work/etcd"
  cd "$work/etcd"
  go mod init leadhook.local/etcd >/dev/null 2>&1
  go get -tool go.etcd.io/etcd/server/v3@"$etcd_version" >/dev/null
  go build -trimpath -ldflags "-s -w" -o "$work/out/etcd" go.etcd.io/etcd/server/v3
fi

for b in "${missing[@]}"; do
  cp "$work/out/$b" "$cache/"
  cp "$work/out/$b" "$dest/"
done
echo "Control plane ready in $dest (cached in $cache)"
