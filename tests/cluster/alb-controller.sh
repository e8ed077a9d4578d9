#!/usr/bin/env bash
# The AWS Load Balancer Controller beside the local cluster, against a local moto server: the
# real controller turns jockey's Ingresses into a (moto) ALB, rules and target groups.
#   tests/cluster/alb-controller.sh build   # build (or reuse) the controller binary
#   tests/cluster/alb-controller.sh start   # moto + its VPC/subnets/certificate, CRDs,
#                                           # IngressClass alb, node providerIDs, the controller
#   tests/cluster/alb-controller.sh stop    # stop the controller and moto
#   tests/cluster/alb-controller.sh status  # one line: running, or why it is left out
# The controller's source is not part of this repository: ALB_CONTROLLER_SOURCE names its
# unmodified upstream tarball (or an extracted directory holding go.mod and main.go); default:
# ../shared/vendor/aws-load-balancer-controller-*.tar.gz next to the repository. Without it the
# controller is left out with one line saying how to provide it, and .cluster/alb-controller/absent
# holds that reason so that the tests needing the controller report themselves skipped; where the
# controller is required (JOCKEY_REQUIRE_ALB_CONTROLLER=1, which .ci/run sets, or CI=true) `start`
# fails with that line instead.
# Everything listens on 127.0.0.1. State: .cluster/alb-controller (logs, pids), .cluster/aws.env
# (the AWS endpoint and credentials of moto, for `kubectl jockey` and the tests).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$root/.cache/bin
state=$root/.cluster/alb-controller
kubeconfig=$root/.cluster/kubeconfig
name=${JOCKEY_CLUSTER_NAME:-jockey}
controller=$bin/aws-load-balancer-controller
# moto is pinned (tests/install-deps.sh installs this version); the tests rely on how it answers.
MOTO_VERSION=${MOTO_VERSION:-5.2.5}
REGION=us-east-1
ZONES=(us-east-1a us-east-1b)
DOMAIN=${DEPLOYMENT_DOMAIN:-deploy.agentops.ai}
# The label of the namespaces whose Ingresses this controller serves (see the IngressClassParams).
NS_LABEL=jockey.agentops.ai/alb-controller=local
kubectl() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
say() { echo ">> $*" >&2; }

# The source: a tarball or a directory; empty when there is none.
source_path() {
  if [ -n "${ALB_CONTROLLER_SOURCE:-}" ]; then
    [ -e "$ALB_CONTROLLER_SOURCE" ] && (cd "$root" && realpath "$ALB_CONTROLLER_SOURCE")
    return 0
  fi
  local f
  for f in "$root"/../shared/vendor/aws-load-balancer-controller-*.tar.gz; do
    [ -f "$f" ] && { realpath "$f"; return 0; }
  done
}

left_out() {
  local why="AWS Load Balancer Controller left out: $1; set ALB_CONTROLLER_SOURCE to its \
source tarball (kubernetes-sigs/aws-load-balancer-controller, e.g. \
../shared/vendor/aws-load-balancer-controller-v3.5.0-8-g225f44568.tar.gz) to include it"
  echo ">> $why" >&2
  mkdir -p "$state"
  echo "$why" > "$state/absent"
}

build() {
  local src
  src=$(source_path || true)
  if [ -z "$src" ]; then
    left_out "no source at ${ALB_CONTROLLER_SOURCE:-../shared/vendor/aws-load-balancer-controller-*.tar.gz}"
    return 1
  fi
  local stamp
  if [ -d "$src" ]; then
    stamp="dir $(cd "$src" && cat go.sum main.go | sha256sum | cut -c1-16) $(go env GOVERSION)"
  else
    stamp="tar $(sha256sum "$src" | cut -c1-16) $(go env GOVERSION)"
  fi
  if [ -x "$controller" ] && [ "$(cat "$bin/.aws-load-balancer-controller.stamp" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  local dir=$src
  if [ -f "$src" ]; then
    # Extracted into the cache, never into the repository: the source is not the project's.
    dir=$root/.cache/alb-controller-src
    rm -rf "$dir"; mkdir -p "$dir"
    tar -xzf "$src" -C "$dir"
    [ -f "$dir/go.mod" ] || dir=$(dirname "$(find "$dir" -maxdepth 2 -name go.mod | head -1)")
  fi
  say "building the AWS Load Balancer Controller from $src (cold: about 3 minutes)"
  mkdir -p "$bin"
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$controller.tmp" .) ||
    { say "building the AWS Load Balancer Controller from $src failed (above)"; return 1; }
  mv "$controller.tmp" "$controller"
  # Its CRDs go with the binary, so that `start` works from the cache alone.
  rm -rf "$root/.cache/alb-controller-crds"; mkdir -p "$root/.cache/alb-controller-crds"
  cp "$dir"/config/crd/bases/*.yaml "$root/.cache/alb-controller-crds/"
  echo "$stamp" > "$bin/.aws-load-balancer-controller.stamp"
}


pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])' "$1"
}

moto_venv() {
  local venv=$root/.cache/moto-$MOTO_VERSION
  if ! [ -x "$venv/bin/moto_server" ]; then
    say "installing moto[server]==$MOTO_VERSION into $venv (PyPI)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "moto[server]==$MOTO_VERSION"
  fi
  echo "$venv"
}

# The real node's pod range (10.N.1.0/24) when it runs, else nothing: alb-seed.py makes it an
# EC2 instance of its own.
realnode_pod_cidr() {
  [ "$(cat "$root/.cluster/realnode.status" 2>/dev/null)" = ok ] || return 0
  sed -n 's/^POD_CIDR=//p' "$root/.cluster/realnode/plan.env" 2>/dev/null
}

# One node as the EC2 instance INSTANCE in ZONE: spec.providerID (aws:///ZONE/INSTANCE, as on
# EKS) and the zone label. providerID can be set only once, so a node that names an instance of
# an earlier moto is made anew with the new one (its labels, annotations, taints and pod range
# kept; a kubelet goes on reporting the status of the new object by name).
set_provider_id() { # NODE ZONE INSTANCE
  local node=$1 zone=$2 want="aws:///$2/$3" have
  kubectl get node "$node" >/dev/null 2>&1 || return 0
  have=$(kubectl get node "$node" -o jsonpath='{.spec.providerID}')
  if [ -n "$have" ] && [ "$have" != "$want" ]; then
    kubectl get node "$node" -o json | python3 -c '
import json, sys
n = json.load(sys.stdin)
meta = {k: n["metadata"][k] for k in ("name", "labels", "annotations") if k in n["metadata"]}
meta.get("annotations", {}).pop("kubectl.kubernetes.io/last-applied-configuration", None)
spec = {k: n["spec"][k] for k in ("podCIDR", "podCIDRs", "taints") if k in n["spec"]}
spec["providerID"] = sys.argv[1]
print(json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": meta, "spec": spec}))' "$want" \
      > "$state/node-$node.json"
    kubectl delete node "$node" --wait=true >/dev/null
    kubectl create -f "$state/node-$node.json" >/dev/null
  fi
  # A patch, not `kubectl label`: that rewrites the last-applied annotation with the whole
  # node, providerID included, and up.sh's next `kubectl apply` would then try to clear it.
  kubectl patch node "$node" --type merge -p "{\"spec\":{\"providerID\":\"$want\"},
    \"metadata\":{\"labels\":{\"topology.kubernetes.io/zone\":\"$zone\",
    \"topology.kubernetes.io/region\":\"$REGION\"}}}" >/dev/null
}

# The KWOK nodes and the real node as the EC2 instances alb-seed.py made for them.
set_provider_ids() {
  local i instance
  for i in "${!ZONES[@]}"; do
    set_provider_id "kwok-node-$i" "${ZONES[$i]}" "$(sed -n "s/^INSTANCE_$i=//p" "$state/seed.env")"
  done
  instance=$(sed -n 's/^REALNODE_INSTANCE=//p' "$state/seed.env")
  if [ -n "$instance" ]; then
    set_provider_id realnode "$(sed -n 's/^REALNODE_ZONE=//p' "$state/seed.env")" "$instance"
  fi
}

# CI runs on machines that have the source: there a missing controller is a broken machine.
required() { [ "${JOCKEY_REQUIRE_ALB_CONTROLLER:-}" = 1 ] || [ "${CI:-}" = true ]; }

start() {
  rm -f "$state/absent"
  if ! build; then
    # Without a controller nothing may claim class alb: kubectl jockey would wait for an address.
    kubectl delete ingressclass alb --ignore-not-found >/dev/null 2>&1 || true
    if required; then
      say "the AWS Load Balancer Controller is required (JOCKEY_REQUIRE_ALB_CONTROLLER=1 or CI=true): failing"
      return 1
    fi
    return 0
  fi
  if pid_alive "$state/controller.pid" && pid_alive "$state/moto.pid"; then
    # A real node started again since (a new Node object) is given its instance again.
    set_provider_ids
    say "AWS Load Balancer Controller already running (log: $state/controller.log)"
    return 0
  fi
  stop >/dev/null 2>&1 || true
  mkdir -p "$state/certs"
  local venv p_moto p_metrics p_health p_webhook url
  venv=$(moto_venv)
  read -r p_moto p_metrics p_health p_webhook < <(free_ports 4)
  url=http://127.0.0.1:$p_moto
  # Certificates requested from moto's ACM are issued at once, as DNS validation would.
  MOTO_ACM_VALIDATION_WAIT=0 nohup "$venv/bin/python" "$here/moto-server.py" -H 127.0.0.1 -p "$p_moto" \
    > "$state/moto.log" 2>&1 &
  echo $! > "$state/moto.pid"
  for _ in $(seq 1 100); do curl -fs "$url/moto-api/" >/dev/null 2>&1 && break; sleep 0.2; done
  curl -fs "$url/moto-api/" >/dev/null || { echo "moto did not start; its log:" >&2; tail -20 "$state/moto.log" >&2; return 1; }
  REALNODE_POD_CIDR=$(realnode_pod_cidr) \
    "$venv/bin/python" "$here/alb-seed.py" "$url" "$name" "$DOMAIN" "${ZONES[@]}" > "$state/seed.env"
  local vpc cert
  vpc=$(sed -n 's/^VPC_ID=//p' "$state/seed.env")
  cert=$(sed -n 's/^CERTIFICATE_ARN=//p' "$state/seed.env")
  # What `kubectl jockey` and the tests need to reach this moto, as a user's AWS settings.
  cat > "$root/.cluster/aws.env" <<ENV
AWS_ENDPOINT_URL=$url
AWS_ACCESS_KEY_ID=testing
AWS_SECRET_ACCESS_KEY=testing
AWS_REGION=$REGION
AWS_EC2_METADATA_DISABLED=true
ENV
  cat > "$state/info.env" <<ENV
ALB_CONTROLLER_LOG=$state/controller.log
ALB_CONTROLLER_NAMESPACE_LABEL=$NS_LABEL
ALB_CERTIFICATE_ARN_WILDCARD=$cert
ALB_CERTIFICATE_DOMAIN=$DOMAIN
ALB_VPC_ID=$vpc
ENV

  kubectl apply --server-side -f "$root/.cache/alb-controller-crds/" >/dev/null
  kubectl wait --for condition=established --timeout=60s crd/ingressclassparams.elbv2.k8s.aws \
    crd/targetgroupbindings.elbv2.k8s.aws >/dev/null
  # The IngressClass every jockey Ingress names. Its parameters limit the controller to the
  # namespaces labelled $NS_LABEL: the other end-to-end tests and their deliberately broken
  # Ingresses stay out of the real controller's groups, and jockey's own check of which
  # Ingresses a controller serves is exercised (kubectl jockey deploy reads the same objects).
  kubectl apply -f - >/dev/null <<YAML
apiVersion: elbv2.k8s.aws/v1beta1
kind: IngressClassParams
metadata:
  name: alb
spec:
  namespaceSelector:
    matchLabels: {${NS_LABEL%%=*}: "${NS_LABEL#*=}"}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: alb
spec:
  controller: ingress.k8s.aws/alb
  parameters:
    apiGroup: elbv2.k8s.aws
    kind: IngressClassParams
    name: alb
YAML
  set_provider_ids
  # TargetGroupBindings left by a controller that ran against an earlier moto name target groups
  # that no longer exist; the new controller makes its own.
  local tgb
  for tgb in $(kubectl get targetgroupbindings.elbv2.k8s.aws -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{" "}{end}'); do
    kubectl patch targetgroupbindings.elbv2.k8s.aws -n "${tgb%%/*}" "${tgb#*/}" --type merge \
      -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
    kubectl delete targetgroupbindings.elbv2.k8s.aws -n "${tgb%%/*}" "${tgb#*/}" --ignore-not-found >/dev/null
  done

  # Its own admission webhooks are not registered (the cluster's nodes are fake), but it serves
  # them anyway and needs a certificate for that.
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=127.0.0.1 \
    -keyout "$state/certs/tls.key" -out "$state/certs/tls.crt" >/dev/null 2>&1
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true \
    nohup "$controller" \
    --kubeconfig "$kubeconfig" \
    --cluster-name "$name" \
    --aws-region "$REGION" \
    --aws-vpc-id "$vpc" \
    --aws-api-endpoints "EC2=$url,Elastic Load Balancing v2=$url,ACM=$url,STS=$url" \
    --enable-waf=false --enable-wafv2=false --enable-shield=false \
    --enable-leader-election=false \
    --webhook-cert-dir "$state/certs" --webhook-bind-port "$p_webhook" \
    --metrics-bind-addr "127.0.0.1:$p_metrics" \
    --health-probe-bind-addr "127.0.0.1:$p_health" \
    > "$state/controller.log" 2>&1 &
  echo $! > "$state/controller.pid"
  for _ in $(seq 1 150); do
    curl -fs "http://127.0.0.1:$p_health/readyz" >/dev/null 2>&1 && break
    pid_alive "$state/controller.pid" || break
    sleep 0.2
  done
  if ! curl -fs "http://127.0.0.1:$p_health/readyz" >/dev/null 2>&1; then
    echo "the AWS Load Balancer Controller did not become ready; its log:" >&2
    tail -30 "$state/controller.log" >&2
    return 1
  fi
  say "AWS Load Balancer Controller $(cat "$here/../../.cache/bin/.aws-load-balancer-controller.stamp" | cut -d' ' -f1-2) serving namespaces labelled $NS_LABEL, against moto $MOTO_VERSION at $url (log: $state/controller.log; AWS settings: .cluster/aws.env)"
}

stop() {
  local what
  for what in controller moto; do
    if pid_alive "$state/$what.pid"; then
      kill "$(cat "$state/$what.pid")" 2>/dev/null || true
      for _ in $(seq 1 50); do pid_alive "$state/$what.pid" || break; sleep 0.1; done
      pid_alive "$state/$what.pid" && kill -9 "$(cat "$state/$what.pid")" 2>/dev/null
    fi
    rm -f "$state/$what.pid"
  done
  rm -f "$root/.cluster/aws.env"
}

status() {
  if [ -f "$state/absent" ]; then cat "$state/absent"; return 1; fi
  if pid_alive "$state/controller.pid" && pid_alive "$state/moto.pid"; then
    echo "AWS Load Balancer Controller running (log: $state/controller.log)"; return 0
  fi
  echo "AWS Load Balancer Controller not running: start it with tests/cluster/alb-controller.sh start"
  return 1
}

case "${1:-}" in
  build) rm -f "$state/absent"; build || true ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 build|start|stop|status" >&2; exit 2 ;;
esac
