#!/usr/bin/env bash
# Stops the local control plane and removes its state; no process of it is left running.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$root/.cache/bin
state=$root/.cluster
name=${JOCKEY_CLUSTER_NAME:-jockey}
export KWOK_WORKDIR=$state/kwok
# The webhook make demo runs next to the cluster goes with it.
if [ -f "$state/webhook/pid" ]; then kill "$(cat "$state/webhook/pid")" 2>/dev/null || true; fi
# The AWS Load Balancer Controller and its moto server go first, while the API server still runs.
"$here/alb-controller.sh" stop || true
if [ -x "$bin/kwokctl" ]; then
  "$bin/kwokctl" delete cluster --name "$name" >/dev/null 2>&1 || true
fi
# kwokctl stops what it started; anything left (a crashed start, an earlier checkout) is found by
# its binary path under this repository and ended.
for comp in kube-apiserver kube-controller-manager kube-scheduler kwok etcd aws-load-balancer-controller; do
  pkill -TERM -f "^$bin/$comp( |$)" 2>/dev/null || true
  pkill -TERM -f "^$state/kwok/.*/$comp( |$)" 2>/dev/null || true
done
sleep 1
for comp in kube-apiserver kube-controller-manager kube-scheduler kwok etcd aws-load-balancer-controller; do
  pkill -KILL -f "^$bin/$comp( |$)" 2>/dev/null || true
  pkill -KILL -f "^$state/kwok/.*/$comp( |$)" 2>/dev/null || true
done
rm -rf "$state"
left=$(pgrep -af "$state|$bin/(kube-|kwok|etcd|aws-load-balancer-controller)|$root/.cache/moto-[^/]*/bin/" |
  grep -v -e pgrep -e down.sh || true)
if [ -n "$left" ]; then echo "still running:"; echo "$left"; exit 1; fi
echo ">> cluster $name stopped; no process left" >&2
