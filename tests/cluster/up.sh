#!/usr/bin/env bash
# Starts the local control plane every integration test uses: etcd, kube-apiserver,
# kube-controller-manager and kube-scheduler v1.37.2 built from source, and KWOK faking nodes
# so that pods become Ready and Jobs complete. kwokctl's binary runtime runs the processes;
# everything listens on 127.0.0.1. Idempotent: a running cluster is left as it is.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$root/.cache/bin
state=$root/.cluster
name=${JOCKEY_CLUSTER_NAME:-jockey}
kubeconfig=$state/kubeconfig
K8S_VERSION=${K8S_VERSION:-v1.37.2}

"$here/build.sh"
"$here/build-node.sh"

mkdir -p "$state"
export KWOK_WORKDIR=$state/kwok
export KWOK_KUBE_VERSION=$K8S_VERSION
export KWOK_KUBECTL_BINARY=$bin/kubectl
export KWOK_RUNTIME=binary
kubectl() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
webhook_client=$state/webhook-client

# The API server presents a client certificate to every webhook it calls, so that a webhook can
# tell the API server's reviews from anyone else's (jockey-webhook --client-ca-file
# .cluster/webhook-client/ca.crt answers only it). A CA of its own signs that certificate; the
# AdmissionConfiguration gives both webhook plugins a kubeconfig whose user "*" (every webhook)
# holds it. Absolute paths: kwokctl's binary runtime runs kube-apiserver from its own directory.
write_webhook_client() {
  local d=$webhook_client
  rm -rf "$d" && mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/O=jockey/CN=jockey-local-webhook-client-ca" -keyout "$d/ca.key" -out "$d/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=kube-apiserver-webhook-client" -keyout "$d/client.key" -out "$d/client.csr" 2>/dev/null
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=clientAuth" > "$d/client.ext"
  openssl x509 -req -in "$d/client.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 3650 -extfile "$d/client.ext" -out "$d/client.crt" 2>/dev/null
  chmod 600 "$d/ca.key" "$d/client.key"
  rm -f "$d/client.csr" "$d/client.ext" "$d/ca.srl"
  cat > "$d/kubeconfig" <<EOF
apiVersion: v1
kind: Config
users:
- name: "*"
  user:
    client-certificate: $d/client.crt
    client-key: $d/client.key
EOF
  cat > "$d/admission.yaml" <<EOF
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: ValidatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: $d/kubeconfig
- name: MutatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: $d/kubeconfig
EOF
}

# A cluster started before KWOK served logs (no ClusterLogs CRD), before the audit log
# (tests/cluster/audit-policy.yaml), or whose API server presents no client certificate to
# webhooks, is started anew.
if "$bin/kwokctl" get clusters 2>/dev/null | grep -qx "$name" && kubectl get --raw=/readyz >/dev/null 2>&1 &&
  kubectl get crd clusterlogs.kwok.x-k8s.io >/dev/null 2>&1 && [ -s "$state/realnode/kwokctl.yaml" ] &&
  [ -f "$KWOK_WORKDIR/clusters/$name/logs/audit.log" ] &&
  [ -s "$webhook_client/ca.crt" ] &&
  pgrep -f -- "--admission-control-config-file=$webhook_client/admission.yaml" >/dev/null; then
  echo ">> cluster $name is already running" >&2
else
  "$bin/kwokctl" delete cluster --name "$name" >/dev/null 2>&1 || true
  echo ">> starting cluster $name (kube $K8S_VERSION, etcd, kwok) on 127.0.0.1" >&2
  # kwokctl merges its context into --kubeconfig; start from an empty file so the file holds this
  # cluster only and never touches ~/.kube/config.
  : > "$kubeconfig"
  # What the real node (realnode.sh) needs of the control plane: certificate SANs, Service range...
  mapfile -t realnode_args < <("$here/realnode.sh" kwokctl-args)
  write_webhook_client
  # kwokctl binds several components to 0.0.0.0 by default; choose free ports up front so that
  # every listener can be pinned to 127.0.0.1.
  read -r p_api p_etcd p_peer p_kcm p_sched p_kwok < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
  # Container logs: with the Logs and ClusterLogs CRDs, KWOK's controller (the "kubelet" the API
  # server asks for `kubectl logs`, on its server port at the nodes' address, localhost) serves a
  # container's log from a file on this host, follow included; a test points one at its file.
  # KWOK manages only the nodes annotated kwok.x-k8s.io/node=fake (the ones below), so that a
  # test can add a node whose pods it moves itself (a build pod held Running while its log is
  # followed) and still have KWOK serve that node's logs.
  "$bin/kwokctl" create cluster --name "$name" --runtime binary \
    --enable-crds Logs,ClusterLogs \
    --kube-apiserver-binary "$bin/kube-apiserver" \
    --kube-controller-manager-binary "$bin/kube-controller-manager" \
    --kube-scheduler-binary "$bin/kube-scheduler" \
    --kwok-controller-binary "$bin/kwok" \
    --etcd-binary "$bin/etcd" \
    --kubeconfig "$kubeconfig" \
    --kube-apiserver-port "$p_api" --etcd-port "$p_etcd" \
    --kube-controller-manager-port "$p_kcm" --kube-scheduler-port "$p_sched" --controller-port "$p_kwok" \
    --extra-args "kube-apiserver=bind-address=127.0.0.1" \
    --extra-args "kube-controller-manager=bind-address=127.0.0.1" \
    --extra-args "kube-scheduler=bind-address=127.0.0.1" \
    --extra-args "kwok-controller=server-address=127.0.0.1:$p_kwok" \
    --extra-args "etcd=listen-client-urls=http://127.0.0.1:$p_etcd" \
    --extra-args "etcd=advertise-client-urls=http://127.0.0.1:$p_etcd" \
    --extra-args "etcd=listen-peer-urls=http://127.0.0.1:$p_peer" \
    --extra-args "etcd=initial-advertise-peer-urls=http://127.0.0.1:$p_peer" \
    --extra-args "etcd=initial-cluster=node0=http://127.0.0.1:$p_peer" \
    `# kwokctl v0.8.0 indexes these by position: a component's first --extra-args must come` \
    `# before any component's second one, or it panics; so these two come last.` \
    --extra-args "kwok-controller=manage-all-nodes=false" \
    --extra-args "kwok-controller=manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake" \
    "${realnode_args[@]}" \
    --extra-args "kube-apiserver=admission-control-config-file=$webhook_client/admission.yaml" \
    `# The audit log (audit-policy.yaml), bounded: 100 MB and one older file.` \
    --kube-audit-policy "$here/audit-policy.yaml" \
    --extra-args "kube-apiserver=audit-log-maxsize=100" \
    --extra-args "kube-apiserver=audit-log-maxbackup=1" \
    --wait 3m
fi

# Fake nodes managed by KWOK (it answers for every node annotated kwok.x-k8s.io/node=fake).
for i in 0 1; do
  kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
spec:
  podCIDR: 10.244.$i.0/24
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "250"}
  capacity: {cpu: "32", memory: 256Gi, pods: "250"}
YAML
done
kubectl wait --for=condition=Ready node -l type=kwok --timeout=120s >/dev/null
# The Service range of --service-cluster-ip-range (realnode.sh's /24; its first address is the
# `kubernetes` Service the node's certificate names) is full at ~250 Services; a second range
# (ServiceCIDR, GA since 1.33) holds 16,000 more, room for 10,000 projects (make bench). It stays
# inside the cluster's own 10.N.0.0/16, so clusters of other worktrees never share its addresses.
svc_n=$(sed -n 's/^N=//p' "$state/realnode/plan.env" 2>/dev/null || true)
kubectl apply -f - >/dev/null <<YAML
apiVersion: networking.k8s.io/v1
kind: ServiceCIDR
metadata: {name: jockey-projects}
spec: {cidrs: ["10.${svc_n:-250}.64.0/18"]}
YAML
# jockey's BuildRequest API (what `kubectl jockey install` installs): the tests run a build
# broker per test namespace, and tenants ask it for builds.
kubectl apply -f "$root/manifests/base/buildrequest-crd.yaml" >/dev/null
kubectl wait --for=condition=Established crd/buildrequests.jockey.agentops.ai --timeout=60s >/dev/null
# The default service account appears shortly after a namespace; pods need it.
for _ in $(seq 1 60); do kubectl get serviceaccount default -n default >/dev/null 2>&1 && break; sleep 1; done

# The real node joins next to them (or says in .cluster/realnode.status why it cannot).
"$here/realnode.sh" up

# The AWS Load Balancer Controller against a local moto (or one line saying why it is left out).
"$here/alb-controller.sh" start

kubectl version
echo ">> cluster $name is up; use it with:" >&2
echo "export KUBECONFIG=$kubeconfig"
