#!/usr/bin/env bash
# Installs what `make demo` and `make test` need and the machine lacks, from the package
# registries only (Debian, PyPI, crates.io, the Go module proxy). Safe to run again.
set -euo pipefail
need() { command -v "$1" >/dev/null 2>&1; }
apt_updated=
apt_install() {
  if ! need apt-get; then echo "missing $*: install it with your package manager" >&2; exit 1; fi
  [ -n "$apt_updated" ] || { apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

need git || apt_install git
need python3 || apt_install python3 python3-pip
need curl || apt_install curl
# tests/cluster/alb-controller.sh: a self-signed certificate, and moto in a venv of its own.
need openssl || apt_install openssl
python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
if ! need cargo; then
  echo "cargo not found: install Rust (rustup or Debian's cargo, 1.95 or newer) and re-run" >&2
  exit 1
fi
need go || apt_install golang-go
# k8s.io/kubernetes v1.37 needs Go 1.26; an older go fetches that toolchain from the module proxy.
go_minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
if [ "${go_minor:-0}" -lt 26 ]; then
  echo "go $(go env GOVERSION) is older than 1.26: export GOTOOLCHAIN=go1.27.3 (see README)" >&2
  exit 1
fi
# The real node (tests/cluster/realnode.sh): runc is built with cgo against libseccomp; the host
# routes and masquerades its traffic with iptables; mmdebstrap makes the Python base image from
# Debian's packages; strip slims the jockey-webhook image; openssl reads the API server's SANs.
need iptables || apt_install iptables
need mmdebstrap || apt_install mmdebstrap
need strip || apt_install binutils
need openssl || apt_install openssl
need gcc || apt_install gcc
need nsenter || apt_install util-linux
# make bench pins each webhook and the load generator to a CPU.
need taskset || apt_install util-linux
# tests/tests/faults signals cluster processes with kill(1) (SIGKILL, SIGSTOP, SIGCONT).
[ -x /usr/bin/kill ] || [ -x /bin/kill ] || apt_install procps
{ need pkg-config && pkg-config --exists libseccomp; } || apt_install pkg-config libseccomp-dev
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt 2>/dev/null || true
# moto serves the AWS APIs (ECR, ELBv2) the tests talk to through the real AWS SDK.
# Pinned: the tests rely on how this moto reports target health, load balancer state and ACM.
python3 -c 'import moto, moto.server, flask_cors, sys; sys.exit(moto.__version__ != "5.2.1")' 2>/dev/null ||
  python3 -m pip install -q 'moto[server]==5.2.1'
# `make fuzz` only (JOCKEY_FUZZ=1): cargo fuzz needs a nightly toolchain for libFuzzer's coverage
# instrumentation; `make test` replays the corpus on stable and needs neither.
if [ "${JOCKEY_FUZZ:-}" = 1 ]; then
  rustup toolchain list 2>/dev/null | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
  need cargo-fuzz || cargo install cargo-fuzz --locked
fi
