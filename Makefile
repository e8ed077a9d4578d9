# jockey: `make demo` sets everything up and deploys the example agent to a local cluster;
# `make test` runs every test (unit and end-to-end), starting and stopping the cluster itself.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export PATH := $(CURDIR)/.cache/bin:$(HOME)/.cargo/bin:$(PATH)
KUBECONFIG_LOCAL := $(CURDIR)/.cluster/kubeconfig

.PHONY: help deps build cluster cluster-down lint unit e2e test demo demo-down bench fuzz fuzz-seeds dist tools

help:
	@echo "make demo          install what is missing, build, start the local cluster, deploy examples/agent"
	@echo "make test          every test: fmt, clippy, unit, end-to-end on the local cluster"
	@echo "make cluster       start the local control plane (kubeconfig: .cluster/kubeconfig)"
	@echo "make cluster-down  stop it; no process is left"
	@echo "make bench         jockey-webhook against controller-runtime, Kyverno, Gatekeeper; writes bench/results.json"
	@echo "make dist          release archives of kubectl-jockey per platform and the krew manifest (target/dist)"
	@echo "make fuzz          run every cargo fuzz target (10M executions each; long, nightly) and grow the corpus"

deps:
	@tests/install-deps.sh

build:
	cargo build --workspace --bins

cluster: deps
	@tests/cluster/up.sh

cluster-down:
	@tests/cluster/down.sh

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

unit:
	cargo test --workspace --exclude jockey-e2e

e2e: deps
	tests/e2e.sh

test: deps lint
	@mkdir -p .cache
	@set -o pipefail; { $(MAKE) --no-print-directory unit && $(MAKE) --no-print-directory e2e; } 2>&1 | tee .cache/test.log
	@tests/summary.sh .cache/test.log

# Release archives kubectl-jockey_<version>_<os>_<arch>.tar.gz (binary + LICENSE) and the krew
# manifest target/dist/jockey.yaml naming their sha256 (dist/dist.sh; platforms it cannot build
# are listed in target/dist/MISSING with the reason).
dist:
	@dist/dist.sh

# krew, promtool and helm from the Go module proxy, cached in .cache/bin (tests/tools/build.sh).
tools:
	@tests/tools/build.sh

fuzz:
	@JOCKEY_FUZZ=1 tests/install-deps.sh
	@tests/fuzz.sh

# The starting corpus (fuzz/corpus/*/seed-*), written from the objects jockey renders.
fuzz-seeds:
	cargo run -p jockey-fuzz --example write_seeds

demo: deps build
	@tests/demo.sh

# Benchmarks (bench/README.md): never part of `make test`. Builds jockey in release mode, oha and
# the Go peers (cached under .cache/bench), starts the local cluster, then runs bench/bench.py.
bench: deps
	@tests/cluster/up.sh >/dev/null
	cargo build --release -p jockey-webhook -p jockey-bench -p kubectl-jockey
	@bench/peers/build.sh
	python3 bench/bench.py
