#!/usr/bin/env bash
# Builds the Go peers of `make bench` into $OUT (default .cache/bench at the repo root), all from
# the Go module proxy, each with a stamp recording what it was built from so a second run returns
# at once: Kyverno's admission controller (github.com/kyverno/kyverno, cmd/kyverno), Gatekeeper
# (github.com/open-policy-agent/gatekeeper/v3, its manager at the module root) and the
# controller-runtime peer in bench/peer-controller-runtime. Kyverno's go.mod holds a `replace`, so
# `go install module@version` refuses it; it is built inside its own downloaded module instead
# (the module cache is read-only, which `go build -o elsewhere` does not mind).
# Heavy on 2 cores: run with `nice`, GOMAXPROCS=1 and `-p 1` when the machine is shared.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
OUT=${OUT:-$root/.cache/bench}
KYVERNO_VERSION=${KYVERNO_VERSION:-v1.19.1}
GATEKEEPER_VERSION=${GATEKEEPER_VERSION:-v3.23.1}
GOBUILDFLAGS=${GOBUILDFLAGS:-}
mkdir -p "$OUT"
export CGO_ENABLED=0

stamp_ok() { [ -x "$OUT/$1" ] && [ "$(cat "$OUT/.$1.stamp" 2>/dev/null)" = "$2" ]; }
moddir() { (cd "$OUT" && GOFLAGS=-mod=mod go mod download -json "$1" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'); }

build_crpeer() {
  local src=$root/bench/peer-controller-runtime
  local stamp; stamp=$(cat "$src"/go.mod "$src"/go.sum "$src"/*.go | sha256sum | cut -c1-16)
  stamp_ok peer-controller-runtime "$stamp" && return 0
  echo ">> building the controller-runtime peer (bench/peer-controller-runtime)" >&2
  (cd "$src" && go build $GOBUILDFLAGS -trimpath -ldflags "-s -w" -o "$OUT/peer-controller-runtime" .)
  echo "$stamp" > "$OUT/.peer-controller-runtime.stamp"
}

build_kyverno() {
  stamp_ok kyverno "$KYVERNO_VERSION" && return 0
  echo ">> building kyverno $KYVERNO_VERSION from the Go module proxy (cold: many minutes)" >&2
  local dir; dir=$(moddir "github.com/kyverno/kyverno@$KYVERNO_VERSION")
  (cd "$dir" && GOFLAGS=-mod=mod go build $GOBUILDFLAGS -trimpath -ldflags "-s -w" -o "$OUT/kyverno" ./cmd/kyverno)
  # Its CRDs (ClusterPolicy, PolicyReport, ...) must be in the API server before it starts.
  rm -rf "$OUT/kyverno-crds"; mkdir -p "$OUT/kyverno-crds"
  cp -r "$dir/config/crds/." "$OUT/kyverno-crds/"; chmod -R u+w "$OUT/kyverno-crds"
  find "$OUT/kyverno-crds" -type f ! -name '*.yaml' -delete
  echo "$KYVERNO_VERSION" > "$OUT/.kyverno.stamp"
}

build_gatekeeper() {
  stamp_ok gatekeeper "$GATEKEEPER_VERSION" && return 0
  echo ">> building gatekeeper $GATEKEEPER_VERSION from the Go module proxy (cold: many minutes)" >&2
  local dir; dir=$(moddir "github.com/open-policy-agent/gatekeeper/v3@$GATEKEEPER_VERSION")
  (cd "$dir" && GOFLAGS=-mod=mod go build $GOBUILDFLAGS -trimpath -ldflags "-s -w" -o "$OUT/gatekeeper" .)
  # Its CRDs (from the release manifest in the module) and the library's K8sUniqueIngressHost
  # template that the module carries for its own tests.
  python3 - "$dir/manifest_staging/deploy/gatekeeper.yaml" "$OUT/gatekeeper-crds.yaml" <<'PY'
import sys
docs = open(sys.argv[1]).read().split("\n---\n")
open(sys.argv[2], "w").write("\n---\n".join(d for d in docs if "\nkind: CustomResourceDefinition" in "\n" + d))
PY
  cp "$dir/test/gator/test/fixtures/policies/default/template_k8suniqueingresshost.yaml" "$OUT/gatekeeper-k8suniqueingresshost.yaml"
  chmod u+w "$OUT/gatekeeper-k8suniqueingresshost.yaml"
  echo "$GATEKEEPER_VERSION" > "$OUT/.gatekeeper.stamp"
}

what=${1:-all}
case $what in
  controller-runtime) build_crpeer ;;
  kyverno) build_kyverno ;;
  gatekeeper) build_gatekeeper ;;
  all) build_crpeer; build_kyverno; build_gatekeeper ;;
  *) echo "usage: $0 [all|controller-runtime|kyverno|gatekeeper]" >&2; exit 2 ;;
esac
