#!/usr/bin/env bash
# The real node's images, assembled with crane from what this repository builds and from Debian's
# packages, cached under .cache/images (rebuilt only when their inputs change) and pushed into the
# local cluster's registry:
#   jockey/pause            the sandbox image (tests/cluster/pause)
#   jockey/python           Debian bookworm's python3 + pip (mmdebstrap): the built-in template's
#                           FROM here (BASE_IMAGE), as a private mirror of python:slim would be
#   jockey/kaniko-executor  the Kaniko executor with the /kaniko layout it expects
#   jockey/jockey-webhook   the project's own jockey-webhook build, on request
#
#   images.sh push REGISTRY             pushes the first three; prints NAME=reference lines
#   images.sh webhook REGISTRY [BINARY] pushes jockey-webhook (default target/debug/jockey-webhook)
#                                       and prints its reference
# REGISTRY is a plain-HTTP registry (host:port) such as the one tests/cluster/realnode.sh runs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$root/.cache/bin
cache=$root/.cache/images
DEBIAN_SUITE=${DEBIAN_SUITE:-bookworm}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
KANIKO_VERSION=v1.23.2
PYTHON_PACKAGES=python3,python3-pip,python-is-python3,ca-certificates,passwd
mkdir -p "$cache"

crane() { "$bin/crane" --insecure "$@"; }
say() { echo ">> $*" >&2; }

# A layer from a directory: sorted, mtime 0, root-owned, so the same files give the same digest.
layer() { # DIR OUT
  (cd "$1" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
    tar --no-recursion --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$2" -T -)
}

# Pushes the cached OCI layout $cache/NAME to REF when its stamp matches; otherwise runs BUILDER
# (which assembles REF in the registry), then caches what the registry holds. Prints REF.
cached_push() { # NAME STAMP REF BUILDER
  local name=$1 want=$2 ref=$3 builder=$4 dir=$cache/$1
  if [ "$(cat "$dir.stamp" 2>/dev/null)" = "$want" ] && [ -f "$dir/index.json" ]; then
    crane push "$dir" "$ref" >/dev/null
  else
    say "assembling image $name"
    "$builder" "$ref"
    rm -rf "$dir" "$dir.stamp"
    crane pull --format=oci "$ref" "$dir"
    echo "$want" > "$dir.stamp"
  fi
  echo "$ref"
}

build_pause() {
  local tmp; tmp=$(mktemp -d)
  mkdir "$tmp/root"
  install -m 0755 "$bin/pause" "$tmp/root/pause"
  layer "$tmp/root" "$tmp/layer.tar"
  crane append --oci-empty-base -f "$tmp/layer.tar" -t "$1" >/dev/null
  crane mutate --set-platform linux/amd64 --entrypoint /pause -t "$1" "$1" >/dev/null
  rm -rf "$tmp"
}

# The host's extra CAs (a TLS-intercepting proxy's, a corporate mirror's) go into the images that
# talk to the Internet, so that `pip install` in a build trusts what this machine trusts.
extra_cas() { find /usr/local/share/ca-certificates -name '*.crt' -type f 2>/dev/null | LC_ALL=C sort; }

build_python() {
  local tmp; tmp=$(mktemp -d)
  mkdir "$tmp/cas"
  extra_cas | while read -r f; do cp "$f" "$tmp/cas/"; done
  # The Debian python is the image's own, so pip may install into it: the marker that makes
  # Debian's pip refuse (PEP 668) belongs to a shared system, not to an image.
  SOURCE_DATE_EPOCH=0 mmdebstrap --quiet --mode=root --variant=minbase --include="$PYTHON_PACKAGES" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook="cp $tmp/cas/*.crt \"\$1/usr/local/share/ca-certificates/\" 2>/dev/null || true" \
    --customize-hook='chroot "$1" update-ca-certificates >/dev/null' \
    --customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED' \
    "$DEBIAN_SUITE" "$tmp/rootfs.tar" "$DEBIAN_MIRROR"
  crane append --oci-empty-base -f "$tmp/rootfs.tar" -t "$1" >/dev/null
  crane mutate --set-platform linux/amd64 --cmd python3 \
    -e PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin -e LANG=C.UTF-8 \
    -t "$1" "$1" >/dev/null
  rm -rf "$tmp"
}

# What gcr.io/kaniko-project/executor puts around the binary (its deploy/Dockerfile): /kaniko with
# the executor, a CA bundle and a Docker config directory, nsswitch.conf, and the environment the
# executor reads. No credential helpers: the local registry needs none.
build_kaniko() {
  local tmp; tmp=$(mktemp -d)
  mkdir -p "$tmp/root/kaniko/ssl/certs" "$tmp/root/kaniko/.docker" "$tmp/root/etc" "$tmp/root/workspace"
  install -m 0755 "$bin/kaniko-executor" "$tmp/root/kaniko/executor"
  cp /etc/ssl/certs/ca-certificates.crt "$tmp/root/kaniko/ssl/certs/"
  echo 'hosts: files dns' > "$tmp/root/etc/nsswitch.conf"
  chmod 0777 "$tmp/root/kaniko"
  layer "$tmp/root" "$tmp/layer.tar"
  crane append --oci-empty-base -f "$tmp/layer.tar" -t "$1" >/dev/null
  crane mutate --set-platform linux/amd64 --entrypoint /kaniko/executor -w /workspace \
    -e HOME=/root -e USER=root -e PATH=/usr/local/bin:/kaniko -e SSL_CERT_DIR=/kaniko/ssl/certs \
    -e DOCKER_CONFIG=/kaniko/.docker/ -t "$1" "$1" >/dev/null
  rm -rf "$tmp"
}

python_stamp() {
  { echo "$DEBIAN_SUITE $DEBIAN_MIRROR $PYTHON_PACKAGES"; sed -n '/^build_python()/,/^}/p' "$0"
    extra_cas | xargs -r cat; } | sha256sum | cut -c1-16
}

case "${1:-}" in
  push)
    reg=${2:?usage: images.sh push REGISTRY}
    pause=$(cached_push pause "$(sha256sum "$bin/pause" | cut -c1-16)" "$reg/jockey/pause:1" build_pause)
    python=$(cached_push python "$(python_stamp)" "$reg/jockey/python:3.11-$DEBIAN_SUITE" build_python)
    kaniko_stamp="$(sha256sum "$bin/kaniko-executor" /etc/ssl/certs/ca-certificates.crt | sha256sum | cut -c1-16)"
    kaniko=$(cached_push kaniko "$kaniko_stamp" "$reg/jockey/kaniko-executor:$KANIKO_VERSION" build_kaniko)
    echo "PAUSE_IMAGE=$pause"
    echo "BASE_IMAGE=$python"
    echo "KANIKO_IMAGE=$kaniko"
    ;;
  webhook)
    reg=${2:?usage: images.sh webhook REGISTRY [BINARY]}
    binary=${3:-$root/target/debug/jockey-webhook}
    [ -x "$binary" ] || { echo "no $binary: build it with \`cargo build -p jockey-webhook\`" >&2; exit 1; }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/root/usr/local/bin"
    # The debug build carries ~200 MB of debug info the image does not need.
    strip --strip-debug -o "$tmp/root/usr/local/bin/jockey-webhook" "$binary"
    chmod 0755 "$tmp/root/usr/local/bin/jockey-webhook"
    tag=$(sha256sum "$tmp/root/usr/local/bin/jockey-webhook" | cut -c1-16)
    ref=$reg/jockey/jockey-webhook:$tag
    if ! crane digest "$ref" >/dev/null 2>&1; then
      # glibc and CA certificates come with the Debian base.
      base=$reg/jockey/python:3.11-$DEBIAN_SUITE
      crane digest "$base" >/dev/null 2>&1 || { echo "no $base in $reg: run images.sh push $reg first" >&2; exit 1; }
      layer "$tmp/root" "$tmp/layer.tar"
      crane append -b "$base" -f "$tmp/layer.tar" -t "$ref" >/dev/null
      crane mutate --entrypoint /usr/local/bin/jockey-webhook -t "$ref" "$ref" >/dev/null
    fi
    echo "$ref"
    ;;
  *) echo "usage: images.sh push REGISTRY | images.sh webhook REGISTRY [BINARY]" >&2; exit 2 ;;
esac
