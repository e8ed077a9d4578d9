#!/usr/bin/env bash
# `make demo`: start the local cluster, run jockey-webhook next to it (registered by URL, as the
# tests do), and deploy examples/agent with `kubectl jockey deploy`, ending with its URL.
# The cluster and the webhook keep running afterwards; `make cluster-down` stops both.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH=$root/target/debug:$root/.cache/bin:$PATH
export KUBECONFIG=$root/.cluster/kubeconfig
# A registry name for the demo: KWOK's fake nodes never pull, and the Kaniko Job "completes".
export IMAGE_REGISTRY=${IMAGE_REGISTRY:-registry.local:5000}
project=${DEMO_PROJECT:-demo-agent}

tests/cluster/up.sh
# The AWS endpoint of the local moto the AWS Load Balancer Controller works against, when it runs.
if [ -f .cluster/aws.env ]; then set -a; . .cluster/aws.env; set +a; fi

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

step "kubectl jockey deploy examples/agent --project $project"
kubectl jockey deploy examples/agent --project "$project" --timeout 3m

step "kubectl jockey status $project"
kubectl jockey status "$project"

step "done"
echo "$project is deployed: https://$project.${DEPLOYMENT_DOMAIN:-deploy.agentops.ai}"
echo "explore:  export KUBECONFIG=$KUBECONFIG PATH=$root/target/debug:$root/.cache/bin:\$PATH"
if [ -f .cluster/aws.env ]; then
  echo "          set -a; . $root/.cluster/aws.env; set +a   # AWS at the local moto"
  echo "          kubectl jockey status $project; kubectl jockey list -A; kubectl jockey alb-status"
  echo "          kubectl jockey validate-alb-routing $project.${DEPLOYMENT_DOMAIN:-deploy.agentops.ai} --no-dns"
else
  echo "          kubectl jockey status $project; kubectl jockey list -A; kubectl jockey alb-status --no-aws"
fi
echo "stop:     make cluster-down"
