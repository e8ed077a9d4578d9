#!/usr/bin/env bash
# Runs jockey-webhook on 127.0.0.1 next to the local cluster and registers it by URL, the way the
# end-to-end tests do (the cluster's nodes are fake, so it cannot run as a pod there).
#   tests/webhook-local.sh start   # (re)start it and register Mutating/ValidatingWebhookConfigurations
#                                  # for namespaces labelled jockey.agentops.ai/webhook=local
#                                  # and the build broker (`jockey-webhook broker`) for namespace
#                                  # default (the demo's; the tests run brokers of their own)
#   tests/webhook-local.sh stop    # unregister and stop both
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state=$root/.cluster/webhook
kubeconfig=$root/.cluster/kubeconfig
bin=$root/target/debug/jockey-webhook
port=${JOCKEY_WEBHOOK_PORT:-9443}
# The CA of the client certificate the local API server presents to webhooks (tests/cluster/up.sh):
# the webhook answers admission reviews from the API server only.
client_ca=$root/.cluster/webhook-client/ca.crt
kubectl() { "$root/.cache/bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }

stop() {
  kubectl delete mutatingwebhookconfiguration jockey-local --ignore-not-found >/dev/null 2>&1 || true
  kubectl delete validatingwebhookconfiguration jockey-local --ignore-not-found >/dev/null 2>&1 || true
  kubectl delete validatingadmissionpolicybinding jockey-local-shared-alb --ignore-not-found >/dev/null 2>&1 || true
  kubectl delete validatingadmissionpolicy jockey-local-shared-alb --ignore-not-found >/dev/null 2>&1 || true
  if [ -f "$state/pid" ]; then kill "$(cat "$state/pid")" 2>/dev/null || true; rm -f "$state/pid"; fi
  if [ -f "$state/broker.pid" ]; then kill "$(cat "$state/broker.pid")" 2>/dev/null || true; rm -f "$state/broker.pid"; fi
}

start() {
  stop
  mkdir -p "$state"
  [ -x "$bin" ] || (cd "$root" && cargo build -p jockey-webhook)
  [ -s "$client_ca" ] || {
    echo "$client_ca is missing: the local API server presents no client certificate to webhooks; restart the cluster with tests/cluster/up.sh" >&2
    exit 1
  }
  # A CA and a serving certificate for 127.0.0.1; the CA goes into caBundle, and its key stays
  # so that the webhook renews the certificate by itself (a third of its lifetime before expiry).
  "$bin" dev-certs --dir "$state" --days 7 --keep-ca-key >/dev/null
  : > "$state/policy.yaml"
  # Project and host claims are Leases in the webhook's own namespace, as in an install.
  kubectl create namespace jockey-system --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  nohup "$bin" --listen "127.0.0.1:$port" --tls-cert-file "$state/tls.crt" \
    --tls-key-file "$state/tls.key" --policy-file "$state/policy.yaml" \
    --renew-ca-cert-file "$state/ca.crt" --renew-ca-key-file "$state/ca.key" \
    --claims-namespace jockey-system --client-ca-file "$client_ca" \
    --kubeconfig "$kubeconfig" --image-registry "${IMAGE_REGISTRY:-registry.local:5000}" > "$state/webhook.log" 2>&1 &
  echo $! > "$state/pid"
  for _ in $(seq 1 60); do
    curl -fsk "https://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -fsk "https://127.0.0.1:$port/readyz" >/dev/null || {
    echo "jockey-webhook did not become ready; its log:" >&2; tail -20 "$state/webhook.log" >&2; exit 1; }
  # The same registration `kubectl jockey install` makes (rendered by jockey-webhook itself):
  # both webhooks, and the admission policy that keeps every other Ingress out of the shared ALB
  # groups. Only namespaces labelled jockey.agentops.ai/webhook=local are answered: the
  # end-to-end tests register webhooks of their own.
  "$bin" registration --url "https://127.0.0.1:$port" --ca-file "$state/ca.crt" \
    --name jockey-local --namespace-label jockey.agentops.ai/webhook=local \
    --policy-file "$state/policy.yaml" | kubectl apply -f - >/dev/null
  echo ">> jockey-webhook serving https://127.0.0.1:$port (log: $state/webhook.log), registered as jockey-local"
  # The build broker, with the registry, Kaniko and base images of the environment (make demo
  # exports the real node's); claims where the webhook claims.
  nohup "$bin" broker --kubeconfig "$kubeconfig" --builder-namespace "${BUILDER_NAMESPACE:-builder}" \
    --claims-namespace jockey-system --request-namespace "${JOCKEY_BROKER_NAMESPACE:-default}" \
    > "$state/broker.log" 2>&1 &
  echo $! > "$state/broker.pid"
  echo ">> build broker answering namespace ${JOCKEY_BROKER_NAMESPACE:-default} (log: $state/broker.log)"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
