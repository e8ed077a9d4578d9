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
if [ -f "$state/webhook/broker.pid" ]; then kill "$(cat "$state/webhook/broker.pid")" 2>/dev/null || true; fi
# The AWS Load Balancer Controller and its moto server go first, while the API server still runs.
"$here/alb-controller.sh" stop || true
# Then the real node, while the API server still runs: its kubelet and kube-proxy talk to the API server.
"$here/realnode.sh" down || true
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
# Whatever of the real node is left (a process, cgroup, mount, interface, iptables rule) fails
# this, and the state directory is kept so that a second down can still find it by name.
node_left=$("$here/realnode.sh" leftovers)
if [ -n "$node_left" ]; then echo "left behind by the real node:"; echo "$node_left"; exit 1; fi
rm -rf "$state"
left=$(pgrep -af "$state|$bin/(kube|kwok|etcd|containerd|registry|aws-load-balancer-controller)|$root/.cache/moto-[^/]*/bin/" |
  grep -v -e pgrep -e down.sh || true)
if [ -n "$left" ]; then echo "still running:"; echo "$left"; exit 1; fi
echo ">> cluster $name stopped; no process left" >&2
