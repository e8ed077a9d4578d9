#!/usr/bin/env bash
# Builds what the real node and its registry run, into $OUT (default .cache/bin), all from the Go
# module proxy: kubelet and kube-proxy (k8s.io/kubernetes, through the module beside this script,
# like the control plane), containerd + its runc shim + ctr, runc (cgo + seccomp), the CNI
# plugins (bridge, host-local, loopback), the distribution registry, crane, the Kaniko executor (module kaniko/) and the pause
# program (module pause/). A stamp per binary records what it was built from, so a second run
# with nothing to do returns at once.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
OUT=${OUT:-$root/.cache/bin}
K8S_VERSION=${K8S_VERSION:-v1.37.2}
CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.4.2}
RUNC_VERSION=${RUNC_VERSION:-v1.5.3}
CNI_PLUGINS_VERSION=${CNI_PLUGINS_VERSION:-v1.8.0}
REGISTRY_VERSION=${REGISTRY_VERSION:-v3.1.2}
CRANE_VERSION=${CRANE_VERSION:-v0.22.1}
KANIKO_VERSION=v1.23.2 # pinned by kaniko/go.mod
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
mkdir -p "$OUT" "$OUT/cni"
export CGO_ENABLED=0 GOFLAGS=-mod=mod

stamp_ok() { [ -x "$OUT/$1" ] && [ "$(cat "$OUT/.${1//\//_}.stamp" 2>/dev/null)" = "$2" ]; }
stamp() { echo "$2" > "$OUT/.${1//\//_}.stamp"; }
# go install into a temporary GOBIN, then move the binary where it belongs: an interrupted
# build never leaves a half-written file behind a valid stamp.
install_one() { # NAME DEST_REL PACKAGE@VERSION [go flags...]
  local name=$1 dest=$2 pkg=$3; shift 3
  local tmp; tmp=$(mktemp -d)
  GOBIN=$tmp go install -trimpath "$@" "$pkg"
  mv "$tmp/$name" "$OUT/$dest"
  rmdir "$tmp"
}

k8s_stamp="$K8S_VERSION $(sha256sum "$here/go.sum" | cut -c1-16)"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
for cmd in kubelet kube-proxy; do
  stamp_ok "$cmd" "$k8s_stamp" && continue
  echo ">> building $cmd $K8S_VERSION from k8s.io/kubernetes" >&2
  (cd "$here" && go build -trimpath -ldflags "$ldflags" -o "$OUT/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd")
  mv "$OUT/$cmd.tmp" "$OUT/$cmd"
  stamp "$cmd" "$k8s_stamp"
done

# containerd 2.x: Debian's 1.6 predates the CRI kubelet 1.37 requires.
for cmd in containerd containerd-shim-runc-v2 ctr; do
  stamp_ok "$cmd" "$CONTAINERD_VERSION" && continue
  echo ">> building $cmd $CONTAINERD_VERSION from github.com/containerd/containerd/v2" >&2
  install_one "$cmd" "$cmd" "github.com/containerd/containerd/v2/cmd/$cmd@$CONTAINERD_VERSION" \
    -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION"
  stamp "$cmd" "$CONTAINERD_VERSION"
done

# runc needs cgo and libseccomp: without the seccomp tag every sandbox fails with "seccomp: config
# provided but seccomp not supported" (Debian's runc 1.1 cannot serve containerd 2.4 at all).
if ! stamp_ok runc "$RUNC_VERSION seccomp"; then
  echo ">> building runc $RUNC_VERSION (cgo, seccomp) from github.com/opencontainers/runc" >&2
  CGO_ENABLED=1 install_one runc runc "github.com/opencontainers/runc@$RUNC_VERSION" \
    -tags seccomp -ldflags "-s -w -X main.version=${RUNC_VERSION#v}"
  stamp runc "$RUNC_VERSION seccomp"
fi

for plugin in main/bridge main/loopback ipam/host-local; do
  name=${plugin#*/}
  stamp_ok "cni/$name" "$CNI_PLUGINS_VERSION versioned" && continue
  echo ">> building CNI plugin $name $CNI_PLUGINS_VERSION" >&2
  install_one "$name" "cni/$name" \
    "github.com/containernetworking/plugins/plugins/$plugin@$CNI_PLUGINS_VERSION" -ldflags \
    "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION"
  stamp "cni/$name" "$CNI_PLUGINS_VERSION versioned"
done

if ! stamp_ok registry "$REGISTRY_VERSION"; then
  echo ">> building registry $REGISTRY_VERSION from github.com/distribution/distribution/v3" >&2
  install_one registry registry "github.com/distribution/distribution/v3/cmd/registry@$REGISTRY_VERSION" \
    -ldflags "-s -w -X github.com/distribution/distribution/v3/version.version=$REGISTRY_VERSION"
  stamp registry "$REGISTRY_VERSION"
fi

if ! stamp_ok crane "$CRANE_VERSION"; then
  echo ">> building crane $CRANE_VERSION from github.com/google/go-containerregistry" >&2
  install_one crane crane "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION" \
    -ldflags "-s -w -X github.com/google/go-containerregistry/cmd/crane/cmd.Version=$CRANE_VERSION"
  stamp crane "$CRANE_VERSION"
fi

kaniko_stamp="$KANIKO_VERSION $(sha256sum "$here/kaniko/go.sum" | cut -c1-16)"
if ! stamp_ok kaniko-executor "$kaniko_stamp"; then
  echo ">> building the Kaniko executor $KANIKO_VERSION (module tests/cluster/kaniko)" >&2
  (cd "$here/kaniko" && go build -trimpath -o "$OUT/kaniko-executor.tmp" \
    -ldflags "-s -w -X github.com/GoogleContainerTools/kaniko/pkg/version.version=$KANIKO_VERSION" \
    github.com/GoogleContainerTools/kaniko/cmd/executor)
  mv "$OUT/kaniko-executor.tmp" "$OUT/kaniko-executor"
  stamp kaniko-executor "$kaniko_stamp"
fi

pause_stamp=$(cat "$here/pause/go.mod" "$here/pause/main.go" | sha256sum | cut -c1-16)
if ! stamp_ok pause "$pause_stamp"; then
  echo ">> building pause (module tests/cluster/pause)" >&2
  (cd "$here/pause" && go build -trimpath -ldflags "-s -w" -o "$OUT/pause.tmp" .)
  mv "$OUT/pause.tmp" "$OUT/pause"
  stamp pause "$pause_stamp"
fi
