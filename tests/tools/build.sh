#!/usr/bin/env bash
# Builds the release and monitoring tools `make test` and `make dist` check with, from the Go
# module proxy, into $OUT (default .cache/bin): krew (the kubectl plugin manager that installs
# kubectl-jockey from its manifest), Prometheus's promtool (unit-tests the alert rules and
# parses the dashboard's queries) and helm (lints, renders, installs and upgrades charts/jockey). A stamp per binary records the version it was built from, so a
# second run returns at once. Cold, promtool takes minutes: Prometheus is a large module.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
OUT=${OUT:-$root/.cache/bin}
KREW_VERSION=${KREW_VERSION:-v0.4.3}
# Prometheus 3.x modules are published as v0.3xx.y: v0.316.0 is Prometheus 3.16.0.
PROMETHEUS_VERSION=${PROMETHEUS_VERSION:-v0.316.0}
HELM_VERSION=${HELM_VERSION:-v4.3.2}
mkdir -p "$OUT"
export CGO_ENABLED=0

stamp_ok() { [ -x "$OUT/$1" ] && [ "$(cat "$OUT/.$1.stamp" 2>/dev/null)" = "$2" ]; }

# Built into a scratch GOBIN and moved, so a failed build never leaves a binary without a stamp.
install() { # NAME VERSION PKG@VERSION LDFLAGS [TAGS]
  local name=$1 version=$2 pkg=$3 ldflags=$4 tags=${5:-} tmp
  stamp_ok "$name" "$version" && return 0
  echo ">> building $name $version from $pkg (Go module proxy; cached in $OUT)" >&2
  tmp=$(mktemp -d)
  if ! GOBIN="$tmp" go install -trimpath -tags "$tags" -ldflags "$ldflags" "$pkg"; then
    rm -rf "$tmp"
    echo "tests/tools/build.sh: building $name from $pkg failed (above)" >&2
    return 1
  fi
  mv -f "$tmp/$(basename "${pkg%@*}")" "$OUT/$name"
  rm -rf "$tmp"
  echo "$version" > "$OUT/.$name.stamp"
}

want=${*:-krew promtool helm}
for tool in $want; do
  case $tool in
    krew)
      install krew "$KREW_VERSION" "sigs.k8s.io/krew/cmd/krew@$KREW_VERSION" \
        "-s -w -X sigs.k8s.io/krew/internal/version.gitTag=$KREW_VERSION" ;;
    promtool)
      # v0.MNN.P is Prometheus M.NN.P (v0.316.0: 3.16.0), what `promtool --version` says.
      v=${PROMETHEUS_VERSION#v0.}; mm=${v%%.*}; v="${mm:0:1}.$((10#${mm:1})).${v#*.}"
      # remove_all_sd leaves out Prometheus's service-discovery plugins (AWS, Azure, GCE, ...
      # SDKs): the tests only check rules and queries, and those SDKs were half of a cold build (README).
      install promtool "$PROMETHEUS_VERSION+remove_all_sd" \
        "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION" \
        "-s -w -X github.com/prometheus/common/version.Version=$v" remove_all_sd ;;
    helm)
      # Without the ldflag `helm version` says v4.0 (its built-in default), not the version built.
      install helm "$HELM_VERSION" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" \
        "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" ;;
    *) echo "tests/tools/build.sh: unknown tool $tool (krew, promtool, helm)" >&2; exit 2 ;;
  esac
done
