#!/usr/bin/env bash
# Runs the end-to-end tests against the local control plane: starts it (unless one is already
# running, which is then left running) and stops it afterwards, whatever the outcome.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kubeconfig=$root/.cluster/kubeconfig
started=1
if [ -s "$kubeconfig" ] && "$root/.cache/bin/kubectl" --kubeconfig "$kubeconfig" get --raw=/readyz >/dev/null 2>&1; then
  started=
fi
# up.sh is idempotent: it leaves a current cluster alone and restarts one an older up.sh made.
# The trap comes first: an up.sh that fails half-way (a real node required but unable to start)
# still has its processes stopped.
[ -z "$started" ] || trap '"$root/tests/cluster/down.sh"' EXIT
"$root/tests/cluster/up.sh"
cd "$root"
# `make demo`'s webhook registration (admission policy included) covers every namespace; the
# tests register their own, scoped to their namespaces, so the demo's is taken down first.
if "$root/.cache/bin/kubectl" --kubeconfig "$kubeconfig" get validatingadmissionpolicy jockey-local-shared-alb >/dev/null 2>&1 ||
  [ -f "$root/.cluster/webhook/broker.pid" ]; then
  echo ">> stopping make demo's jockey-webhook registration (tests/webhook-local.sh stop) for the tests" >&2
  "$root/tests/webhook-local.sh" stop
fi
# tests/tests/faults stops shared components (kube-apiserver, etcd, the webhook): it must not run
# beside other tests. Its tests serialise on a lock, and cargo runs one test binary at a time, so
# running every binary in one `cargo test` (below) keeps it alone; do not split the binaries into
# parallel cargo invocations without keeping `--test faults` apart.
# The tests run the binaries the workspace builds, so build them first; krew, promtool and helm
# (tests/tests/krew_install.rs, monitoring.rs, helm_chart*.rs) come from the Go module proxy,
# cached in .cache/bin.
cargo build --workspace --bins
"$root/tests/tools/build.sh"
rc=0
JOCKEY_KUBECONFIG=$kubeconfig cargo test --no-fail-fast -p jockey-e2e -- --test-threads=2 "$@" || rc=$?
# Stopping is part of the test: down.sh fails when any process of the cluster is left running.
if [ -n "$started" ]; then
  trap - EXIT
  "$root/tests/cluster/down.sh" || rc=1
fi
exit "$rc"
