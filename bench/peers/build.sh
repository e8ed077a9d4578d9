#!/usr/bin/env bash
# Everything `make bench` runs besides jockey itself, built from the registries and cached:
# oha (crates.io) into .cache/bench/oha, then the Go peers (build-go.sh: the controller-runtime
# peer, Kyverno and Gatekeeper from the Go module proxy). A peer that fails to build is reported
# and left out (bench.py records the error from its build log); oha and the controller-runtime
# peer are required.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
OUT=${OUT:-$root/.cache/bench}
OHA_VERSION=${OHA_VERSION:-1.16.0}
mkdir -p "$OUT"
if ! [ -x "$OUT/oha/bin/oha" ] || [ "$(cat "$OUT/.oha.stamp" 2>/dev/null)" != "$OHA_VERSION" ]; then
  echo ">> building oha $OHA_VERSION from crates.io" >&2
  cargo install --locked --root "$OUT/oha" "oha@$OHA_VERSION" || exit 1
  echo "$OHA_VERSION" > "$OUT/.oha.stamp"
fi
"$here/build-go.sh" controller-runtime || exit 1
for peer in kyverno gatekeeper; do
  if ! "$here/build-go.sh" "$peer" > "$OUT/$peer-build.log" 2>&1; then
    echo ">> $peer did not build (left out of the bench): $(tail -n 3 "$OUT/$peer-build.log" | tr '\n' ' ')" >&2
  fi
done
