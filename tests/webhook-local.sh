#!/usr/bin/env bash
# Runs jockey-webhook on 127.0.0.1 next to the local cluster and registers it by URL, the way the
# end-to-end tests do (the cluster's nodes are fake, so it cannot run as a pod there).
#   tests/webhook-local.sh start   # (re)start it and register Mutating/ValidatingWebhookConfigurations
#                                  # for namespaces labelled jockey.agentops.ai/webhook=local
#   tests/webhook-local.sh stop    # unregister and stop it
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state=$root/.cluster/webhook
kubeconfig=$root/.cluster/kubeconfig
bin=$root/target/debug/jockey-webhook
port=${JOCKEY_WEBHOOK_PORT:-9443}
kubectl() { "$root/.cache/bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }

stop() {
  kubectl delete mutatingwebhookconfiguration jockey-local --ignore-not-found >/dev/null 2>&1 || true
  kubectl delete validatingwebhookconfiguration jockey-local --ignore-not-found >/dev/null 2>&1 || true
  if [ -f "$state/pid" ]; then kill "$(cat "$state/pid")" 2>/dev/null || true; rm -f "$state/pid"; fi
}

start() {
  stop
  mkdir -p "$state"
  [ -x "$bin" ] || (cd "$root" && cargo build -p jockey-webhook)
  # A CA and a serving certificate for 127.0.0.1; the CA goes into caBundle.
  "$bin" dev-certs --dir "$state" --days 7 >/dev/null
  : > "$state/policy.yaml"
  nohup "$bin" --listen "127.0.0.1:$port" --tls-cert-file "$state/tls.crt" \
    --tls-key-file "$state/tls.key" --policy-file "$state/policy.yaml" \
    --kubeconfig "$kubeconfig" --image-registry "${IMAGE_REGISTRY:-registry.local:5000}" > "$state/webhook.log" 2>&1 &
  echo $! > "$state/pid"
  for _ in $(seq 1 60); do
    curl -fsk "https://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -fsk "https://127.0.0.1:$port/readyz" >/dev/null || {
    echo "jockey-webhook did not become ready; its log:" >&2; tail -20 "$state/webhook.log" >&2; exit 1; }
  ca=$(base64 -w0 < "$state/ca.crt")
  for kind in Mutating Validating; do
    path=$([ $kind = Mutating ] && echo mutate || echo validate)
    kubectl apply -f - >/dev/null <<YAML
apiVersion: admissionregistration.k8s.io/v1
kind: ${kind}WebhookConfiguration
metadata:
  name: jockey-local
webhooks:
- name: ${path}.jockey.agentops.ai
  clientConfig:
    url: https://127.0.0.1:${port}/${path}
    caBundle: ${ca}
  rules:
  - apiGroups: ["apps"]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["deployments"]
  - apiGroups: [""]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["services"]
  - apiGroups: ["networking.k8s.io"]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["ingresses"]
  objectSelector:
    matchExpressions: [{key: jockey.agentops.ai/project, operator: Exists}]
  # Only namespaces that opted in: the end-to-end tests register their own webhooks and must
  # never be answered (or failed) by this one.
  namespaceSelector:
    matchLabels: {jockey.agentops.ai/webhook: local}
  sideEffects: None
  admissionReviewVersions: ["v1"]
  matchPolicy: Equivalent
  timeoutSeconds: 10
  failurePolicy: Fail
$([ $kind = Mutating ] && echo "  reinvocationPolicy: IfNeeded")
YAML
  done
  echo ">> jockey-webhook serving https://127.0.0.1:$port (log: $state/webhook.log), registered as jockey-local"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
