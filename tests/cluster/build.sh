#!/usr/bin/env bash
# Builds the local control plane's binaries into $OUT (default .cache/bin at the repo root), all
# from the Go module proxy: kube-apiserver, kube-controller-manager, kube-scheduler and kubectl
# from k8s.io/kubernetes (through the module in this directory), kwok and kwokctl from
# sigs.k8s.io/kwok. A stamp per binary records what it was built from, so a second run that has
# nothing to do returns at once; Go's own build cache makes a changed-stamp rebuild quick too.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
OUT=${OUT:-$root/.cache/bin}
K8S_VERSION=${K8S_VERSION:-v1.37.2}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
mkdir -p "$OUT"
export CGO_ENABLED=0 GOFLAGS=-mod=mod

stamp_ok() { [ -x "$OUT/$1" ] && [ "$(cat "$OUT/.$1.stamp" 2>/dev/null)" = "$2" ]; }

k8s_stamp="$K8S_VERSION $(sha256sum "$here/go.sum" | cut -c1-16)"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  stamp_ok "$cmd" "$k8s_stamp" && continue
  echo ">> building $cmd $K8S_VERSION from k8s.io/kubernetes (cold: several minutes)" >&2
  (cd "$here" && go build -trimpath -ldflags "$ldflags" -o "$OUT/$cmd" "k8s.io/kubernetes/cmd/$cmd")
  echo "$k8s_stamp" > "$OUT/.$cmd.stamp"
done

for cmd in kwok kwokctl; do
  stamp_ok "$cmd" "$KWOK_VERSION" && continue
  echo ">> building $cmd $KWOK_VERSION from sigs.k8s.io/kwok" >&2
  GOBIN="$OUT" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/$cmd@$KWOK_VERSION"
  echo "$KWOK_VERSION" > "$OUT/.$cmd.stamp"
done

# etcd 3.6+ (1.37 needs it; Debian ships 3.4) comes inside a crates.io package; cargo fetches it
# as a dependency of the jockey-e2e test crate and we link to it from there.
if ! [ -x "$OUT/etcd" ]; then
  echo ">> fetching etcd (crates.io etcd-bin-vendored-linux-amd64)" >&2
  manifest=$(cd "$root" && cargo metadata --format-version 1 2>/dev/null |
    python3 -c 'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"]=="etcd-bin-vendored-linux-amd64"))')
  ln -sf "$(dirname "$manifest")/bin/etcd" "$OUT/etcd"
fi

# cert-manager's CRDs, so the manifests' cert-manager overlay can be dry-run against the real API
# server. They come from the cert-manager Go module (its deploy/crds holds plain CRD YAML).
CERT_MANAGER_VERSION=${CERT_MANAGER_VERSION:-v1.21.2}
crds=$root/.cache/crds/cert-manager
if [ "$(cat "$crds/.stamp" 2>/dev/null)" != "$CERT_MANAGER_VERSION" ]; then
  echo ">> fetching cert-manager $CERT_MANAGER_VERSION CRDs from its Go module" >&2
  dir=$(cd "$here" && go mod download -json "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" |
    sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  mkdir -p "$crds"
  for kind in certificates issuers clusterissuers certificaterequests; do
    cp "$dir/deploy/crds/cert-manager.io_$kind.yaml" "$crds/"
  done
  chmod u+w "$crds"/*.yaml
  echo "$CERT_MANAGER_VERSION" > "$crds/.stamp"
fi
