#!/usr/bin/env bash
# `make demo`: start the local cluster, run jockey-webhook next to it (registered by URL, as the
# tests do), and deploy examples/agent with `kubectl jockey deploy` onto the real node: Kaniko
# really builds it into the local registry, and the demo ends with the agent's answer to an HTTP
# request through its Service and the command that repeats it. On a machine that cannot run the
# real node (.cluster/realnode.status says why) the pods are KWOK's and answer nothing.
# The cluster and the webhook keep running afterwards; `make cluster-down` stops both.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH=$root/target/debug:$root/.cache/bin:$PATH
export KUBECONFIG=$root/.cluster/kubeconfig
project=${DEMO_PROJECT:-demo-agent}

tests/cluster/up.sh
# The AWS endpoint of the local moto the AWS Load Balancer Controller works against, when it runs.
if [ -f .cluster/aws.env ]; then set -a; . .cluster/aws.env; set +a; fi

real=$(cat .cluster/realnode.status 2>/dev/null || echo "no .cluster/realnode.status")
if [ "$real" = ok ]; then
  # The local registry, the Kaniko executor and the base image the real node serves.
  set -a
  # shellcheck source=/dev/null
  . .cluster/env
  set +a
else
  # KWOK's fake nodes never pull, and the Kaniko Job "completes": any registry name will do.
  export IMAGE_REGISTRY=${IMAGE_REGISTRY:-registry.local:5000}
fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "kubectl jockey version"
kubectl jockey version

if [ -x tests/webhook-local.sh ]; then
  step "jockey-webhook next to the cluster"
  tests/webhook-local.sh start
  kubectl label namespace default jockey.agentops.ai/webhook=local --overwrite >/dev/null
fi
if tests/cluster/alb-controller.sh status >/dev/null 2>&1; then
  # The local controller serves the namespaces that opt in (see tests/cluster/alb-controller.sh).
  kubectl label namespace default jockey.agentops.ai/alb-controller=local --overwrite >/dev/null
fi

step "kubectl jockey setup-builder"
kubectl jockey setup-builder
if [ "$real" = ok ]; then
  # The demo's pods (the build and the agent) go to the real node: the API server's
  # PodNodeSelector and PodTolerationRestriction plugins read these namespace annotations.
  for ns in default "${BUILDER_NAMESPACE:-builder}"; do
    kubectl annotate namespace "$ns" --overwrite >/dev/null \
      "scheduler.alpha.kubernetes.io/node-selector=$JOCKEY_REAL_NODE_TAINT=true" \
      "scheduler.alpha.kubernetes.io/defaultTolerations=[{\"key\":\"$JOCKEY_REAL_NODE_TAINT\",\"operator\":\"Exists\",\"effect\":\"NoSchedule\"}]"
  done
fi

step "kubectl jockey deploy examples/agent --project $project"
kubectl jockey deploy examples/agent --project "$project" --timeout 10m

step "kubectl jockey status $project"
kubectl jockey status "$project"

if [ "$real" = ok ]; then
  step "the agent answers through its Service"
  ip=$(kubectl get service "svc-$project" -o jsonpath='{.spec.clusterIP}')
  cmd="curl -s -d '{\"provider\": \"reverse\", \"input\": \"hello from jockey\"}' http://$ip/run"
  answer=
  # kube-proxy writes the rules for a new endpoint a moment after the pod is Ready.
  for _ in $(seq 1 30); do
    if answer=$(eval "$cmd") && [ -n "$answer" ]; then break; fi
    sleep 1
  done
  echo "\$ $cmd"
  echo "$answer"
  [ -n "$answer" ] || { echo "the agent did not answer" >&2; exit 1; }
else
  step "no real node: $real"
  echo "the pods run on KWOK's fake nodes and answer nothing"
fi

step "done"
echo "$project is deployed: https://$project.${DEPLOYMENT_DOMAIN:-deploy.agentops.ai}"
[ "$real" != ok ] || echo "ask it:   $cmd"
echo "explore:  export KUBECONFIG=$KUBECONFIG PATH=$root/target/debug:$root/.cache/bin:\$PATH"
if [ -f .cluster/aws.env ]; then
  echo "          set -a; . $root/.cluster/aws.env; set +a   # AWS at the local moto"
  echo "          kubectl jockey status $project; kubectl jockey list -A; kubectl jockey alb-status"
  echo "          kubectl jockey validate-alb-routing $project.${DEPLOYMENT_DOMAIN:-deploy.agentops.ai} --no-dns"
else
  echo "          kubectl jockey status $project; kubectl jockey list -A; kubectl jockey alb-status --no-aws"
fi
echo "stop:     make cluster-down"
