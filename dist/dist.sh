#!/usr/bin/env bash
# `make dist`: the release archives of kubectl-jockey and the krew manifest that names them.
#
#   target/dist/kubectl-jockey_<version>_<os>_<arch>.tar.gz  the binary and LICENSE
#   target/dist/jockey.yaml                                  plugins/jockey.yaml.tmpl filled in
#   target/dist/SHA256SUMS, target/dist/MISSING              what could not be built, and why
#
# The manifest is a build output, not a committed file: its sha256 values are those of binaries
# that change with every commit (and with the toolchain), so a committed copy would be wrong the
# commit after; a release publishes the archives and this manifest together.
#
# Settings (environment):
#   DIST_PLATFORMS  default "linux/amd64 linux/arm64 darwin/amd64 darwin/arm64"
#   DIST_PROFILE    release (default) or dev: dev packages target/debug's binary (the tests do, to
#                   prove the archive and manifest with krew without a release build)
#   DIST_OUT        default target/dist
#   DIST_NO_BUILD=1 package the binaries already built (the tests: `cargo build --workspace --bins`
#                   built target/debug/kubectl-jockey; building -p kubectl-jockey alone would
#                   unify features differently and rebuild it)
#   DIST_REQUIRE_ALL=1  fail when a platform cannot be built (default: build the others, list it
#                   in MISSING and say why)
#   JOCKEY_HOMEPAGE, JOCKEY_RELEASE_URL  the manifest's homepage and the base URL the archives
#                   are published under (krew downloads <JOCKEY_RELEASE_URL>/<archive>)
# Archives are reproducible: entries in name order, owner 0:0, mode 0755/0644, mtime the last commit's.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
platforms=${DIST_PLATFORMS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64}
profile=${DIST_PROFILE:-release}
out=${DIST_OUT:-$root/target/dist}
version=v$(cargo metadata --no-deps --format-version 1 |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="kubectl-jockey"))')
homepage=${JOCKEY_HOMEPAGE:-https://agentops.ai/jockey}
release_url=${JOCKEY_RELEASE_URL:-$homepage/releases/download/$version}
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
case $profile in release|dev) ;; *) echo "DIST_PROFILE must be release or dev, not $profile" >&2; exit 2 ;; esac
profile_dir=$([ "$profile" = dev ] && echo debug || echo release)

host=$(rustc -vV | sed -n 's/^host: //p')
triple() {
  case $1 in
    linux/amd64) echo x86_64-unknown-linux-gnu ;;
    linux/arm64) echo aarch64-unknown-linux-gnu ;;
    darwin/amd64) echo x86_64-apple-darwin ;;
    darwin/arm64) echo aarch64-apple-darwin ;;
    *) return 1 ;;
  esac
}
env_name() { echo "$1" | tr 'a-z-' 'A-Z_'; }

# Why PLATFORM cannot be built here ("" when it can); sets up the cross linker where it can.
why_not() {
  local t=$1 var err
  [ "$t" = "$host" ] && return 0
  if ! rustup target list --installed 2>/dev/null | grep -qx "$t"; then
    if ! err=$(rustup target add "$t" 2>&1); then
      echo "rustup target add $t failed: $(echo "$err" | tail -1)"
      return 0
    fi
  fi
  var=CARGO_TARGET_$(env_name "$t")_LINKER
  [ -n "${!var:-}" ] && return 0
  case $t in
    aarch64-unknown-linux-gnu)
      if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
          { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-aarch64-linux-gnu; } >/dev/null 2>&1 || true
        fi
      fi
      command -v aarch64-linux-gnu-gcc >/dev/null ||
        { echo "no cross linker: install Debian's gcc-aarch64-linux-gnu"; return 0; }
      export "$var=aarch64-linux-gnu-gcc" CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc ;;
    *-apple-darwin)
      echo "no macOS linker or SDK: linking for $t needs Apple's ld64 and the macOS SDK (libSystem, the Security framework rustls-native-certs uses), which neither Debian nor any package registry ships (rustc with the host cc: \"cc: error: unrecognized command-line option '-arch'\"); set $var to an osxcross clang and SDKROOT to build it" ;;
    *) echo "no linker for $t: set $var" ;;
  esac
}

rm -rf "$out"
mkdir -p "$out"
entries=
missing=
for p in $platforms; do
  t=$(triple "$p") || { echo "dist: unknown platform $p (linux|darwin)/(amd64|arm64)" >&2; exit 2; }
  reason=$(why_not "$t")
  if [ -n "$reason" ]; then
    echo "dist: $p not built: $reason" >&2
    missing+="$p: $reason"$'\n'
    continue
  fi
  # why_not ran in a subshell: the linker variables are set here again.
  if [ "$t" = aarch64-unknown-linux-gnu ] && [ -z "${CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER:-}" ]; then
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
  fi
  if [ "$t" = "$host" ]; then
    bin=$root/target/$profile_dir/kubectl-jockey
    target_args=()
  else
    bin=$root/target/$t/$profile_dir/kubectl-jockey
    target_args=(--target "$t")
  fi
  echo ">> dist: kubectl-jockey $version for $p ($t, $profile)" >&2
  if [ "${DIST_NO_BUILD:-}" = 1 ]; then
    [ -x "$bin" ] || { echo "dist: DIST_NO_BUILD=1 but $bin is not built" >&2; exit 1; }
  else
    cargo build --locked -p kubectl-jockey --profile "$profile" "${target_args[@]}"
  fi
  name=kubectl-jockey_${version}_${p%/*}_${p#*/}.tar.gz
  stage=$(mktemp -d)
  install -m 0755 "$bin" "$stage/kubectl-jockey"
  install -m 0644 LICENSE "$stage/LICENSE"
  touch -d "@$epoch" "$stage/kubectl-jockey" "$stage/LICENSE"
  tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --format=gnu \
    -cf - LICENSE kubectl-jockey | gzip -n -9 > "$out/$name"
  rm -rf "$stage"
  sha=$(sha256sum "$out/$name" | cut -d' ' -f1)
  echo "$sha  $name" >> "$out/SHA256SUMS"
  entries+="  - selector:
      matchLabels:
        os: ${p%/*}
        arch: ${p#*/}
    uri: $release_url/$name
    sha256: $sha
    bin: kubectl-jockey
    files:
    - from: kubectl-jockey
      to: .
    - from: LICENSE
      to: .
"
done
if [ -z "$entries" ]; then
  echo "dist: no platform could be built:" >&2
  printf '%s' "$missing" >&2
  exit 1
fi
printf '%s' "$missing" > "$out/MISSING"
[ -s "$out/MISSING" ] || rm -f "$out/MISSING"
python3 - "$root/plugins/jockey.yaml.tmpl" "$out/jockey.yaml" "$version" "$homepage" "$entries" <<'PY'
import sys
src, dst, version, homepage, platforms = sys.argv[1:]
text = open(src).read()
# The template's own header comment describes the template, not the result.
body = text[text.index("apiVersion:"):]
out = ("# Generated by `make dist` (dist/dist.sh) from plugins/jockey.yaml.tmpl: do not edit.\n" + body
       .replace("@VERSION@", version).replace("@HOMEPAGE@", homepage)
       .replace("@PLATFORMS@\n", platforms))
open(dst, "w").write(out)
PY
echo ">> dist: $out/jockey.yaml names $(grep -c '' "$out/SHA256SUMS") archive(s):" >&2
sed 's/^/   /' "$out/SHA256SUMS" >&2
if [ -s "$out/MISSING" ] && [ "${DIST_REQUIRE_ALL:-}" = 1 ]; then
  echo "dist: DIST_REQUIRE_ALL=1 and some platforms were not built (above)" >&2
  exit 1
fi
