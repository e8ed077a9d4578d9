#!/usr/bin/env bash
# The real node beside KWOK's fake ones: kubelet v1.37.2, containerd 2.4, runc, the CNI bridge and
# kube-proxy (iptables mode) inside a network namespace of their own, and a local OCI registry, so
# that pods really run: Kaniko builds, the agent answers HTTP, the webhook serves the API server.
#
#   realnode.sh kwokctl-args  before the cluster is created: the kwokctl arguments the real node
#                             needs from the control plane, one per line
#   realnode.sh up            starts it; writes .cluster/realnode.status ("ok", or in one line the
#                             piece that failed and why) and, when ok, .cluster/env (IMAGE_REGISTRY,
#                             KANIKO_IMAGE, BASE_IMAGE, ...). When the machine cannot run a real
#                             node it exits 0: the cluster then stays KWOK-only and the tests that
#                             need the node report SKIPPED with that line. Where the node is
#                             required (JOCKEY_REQUIRE_REAL_NODE=1, which .ci/run sets, or CI=true)
#                             it exits 1 with that line instead. JOCKEY_REAL_NODE=off skips it
#                             (refused where it is required).
#   realnode.sh down          stops it and removes everything `up` made
#   realnode.sh leftovers     lists what is still there of it (nothing when clean)
#
# Everything is named after N, chosen per checkout so that several clusters can run side by side:
#   host  jockeyN 10.N.0.1  <- veth ->  eth0 10.N.0.2  node netns .cluster/realnode/netns
#   pods 10.N.1.0/24 on the node's bridge cni0, Services 10.N.2.0/24, registry 10.N.0.1:5000,
#   sockets in /run/jockey-N, cgroups under <this shell's memory cgroup>/jockey-realnode-N (v1) or
#   /jockey-realnode-N (v2), host iptables chains JOCKEY-N-* (jumped to from PREROUTING,
#   POSTROUTING and FORWARD). kube-proxy's and the bridge's rules live in the node's namespace and
#   go with it. The host routes 10.N.0.0/16 to the node, masquerades the node's traffic to the
#   Internet (pip install in a build) and forwards 10.N.0.1:<API port> to the API server on
#   127.0.0.1, which the kubelet, kube-proxy and in-cluster clients use from inside the namespace.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$root/.cache/bin
state=$root/.cluster
rn=$state/realnode
name=${JOCKEY_CLUSTER_NAME:-jockey}
kubeconfig=$state/kubeconfig
pki=$state/kwok/clusters/$name/pki
status_file=$state/realnode.status
env_file=$state/env
NODE=realnode
TAINT_KEY=jockey.agentops.ai/real-node
HOST_PATHS="/var/lib/kubelet /var/lib/cni /var/log/containers /run/xtables.lock"
kubectl() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
in_node() { nsenter --net="$rn/netns" "$@"; }
say() { echo ">> $*" >&2; }

plan() {
  if [ -f "$rn/plan.env" ]; then
    # shellcheck source=/dev/null
    . "$rn/plan.env"
    return
  fi
  mkdir -p "$rn"
  local seed n= i cand
  seed=$(printf %s "$root" | cksum | cut -d' ' -f1)
  for i in $(seq 0 99); do
    cand=$(((seed + i) % 100 + 100))
    ip -4 route show 2>/dev/null | grep -q "^10\.$cand\." && continue
    ip -4 -o addr show 2>/dev/null | grep -q " 10\.$cand\." && continue
    ip link show "jockey$cand" >/dev/null 2>&1 && continue
    n=$cand && break
  done
  [ -n "$n" ] || n=$((seed % 100 + 100))
  local cgroot
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    # cgroup v2: a cgroup holding processes cannot delegate controllers, so the node's root is a
    # child of the root cgroup.
    cgroot=/jockey-realnode-$n
  else
    # cgroup v1: nested under the memory cgroup this shell runs in, so every container stays
    # inside this machine's memory accounting.
    cgroot=$(awk -F: '$2 == "memory" {print $3}' /proc/self/cgroup)
    cgroot=${cgroot%/}/jockey-realnode-$n
  fi
  cat > "$rn/plan.env" <<EOF
N=$n
HOST_IP=10.$n.0.1
NODE_IP=10.$n.0.2
NET=10.$n.0.0/16
POD_CIDR=10.$n.1.0/24
SVC_CIDR=10.$n.2.0/24
SVC_KUBERNETES=10.$n.2.1
VETH=jockey$n
CHAIN=JOCKEY-$n
RUNDIR=/run/jockey-$n
REGISTRY=10.$n.0.1:5000
CGROUP_ROOT=$cgroot
EOF
  # shellcheck source=/dev/null
  . "$rn/plan.env"
}

kwokctl_args() {
  plan
  # The API server's certificate must hold the addresses the node and the pods reach it by.
  cat > "$rn/kwokctl.yaml" <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  kubeApiserverCertSANs: ["$HOST_IP", "$SVC_KUBERNETES"]
EOF
  printf '%s\n' -c "$rn/kwokctl.yaml" \
    --extra-args "kube-apiserver=service-cluster-ip-range=$SVC_CIDR" \
    --extra-args "kube-apiserver=advertise-address=$HOST_IP" \
    --extra-args "kube-apiserver=kubelet-preferred-address-types=InternalIP,Hostname" \
    --extra-args "kube-apiserver=kubelet-client-certificate=$pki/admin.crt" \
    --extra-args "kube-apiserver=kubelet-client-key=$pki/admin.key" \
    --extra-args "kube-apiserver=enable-admission-plugins=PodNodeSelector,PodTolerationRestriction"
}

cgroup_hierarchies() { # every mounted v1 hierarchy, or the v2 root
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    echo /sys/fs/cgroup
  else
    awk '$3 == "cgroup" {print $2}' /proc/self/mounts
    # runc also mirrors cgroups into a hybrid machine's unified hierarchy.
    awk '$3 == "cgroup2" {print $2}' /proc/self/mounts
  fi
}

# --- up -----------------------------------------------------------------------------------------

piece=preflight
fail() { echo "$piece: $*" > "$rn/failed"; exit 1; }
log_tail() { # FILE: the last error-looking line of a log, for the one-line reason
  grep -aiE 'error|fail|fatal|refus|denied|not supported|cannot' "$1" 2>/dev/null | tail -n 1 | cut -c1-400
}
wait_until() { # SECONDS COMMAND...
  local t=$1; shift
  for _ in $(seq 1 $((t * 2))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  return 1
}
start_bg() { # LOGNAME PIDNAME COMMAND...: a daemon in its own session, its pid recorded
  local log=$rn/logs/$1.log pidf=$rn/$2.pid; shift 2
  setsid "$@" > "$log" 2>&1 < /dev/null &
  echo $! > "$pidf"
}

start() {
  plan
  mkdir -p "$rn/logs"
  rm -f "$rn/failed"
  trap 'st=$?; [ $st -eq 0 ] || [ -s "$rn/failed" ] || echo "$piece: failed unexpectedly (exit $st); see $rn/logs" > "$rn/failed"' EXIT

  piece=preflight
  [ "$(id -u)" = 0 ] || fail "not running as root: a real node needs root for cgroups, a network namespace and mounts"
  for cmd in ip iptables nsenter unshare sysctl mmdebstrap; do
    command -v "$cmd" >/dev/null || fail "$cmd is not installed (tests/install-deps.sh installs it)"
  done
  grep -qw overlay /proc/filesystems || fail "the kernel has no overlay filesystem, which containerd's snapshotter needs"
  api_port=$(sed -n 's|.*server: https://127.0.0.1:\([0-9]*\).*|\1|p' "$kubeconfig" | head -n1)
  [ -n "$api_port" ] || fail "no API server port in $kubeconfig"
  openssl x509 -in "$pki/admin.crt" -noout -ext subjectAltName 2>/dev/null | grep -q "$HOST_IP" ||
    fail "the API server's certificate lacks $HOST_IP: the cluster predates the real node; run make cluster-down first"

  piece=cgroups
  : > "$rn/cgroups.created"
  local h found=
  for h in $(cgroup_hierarchies); do
    # Record what is created for the node, parents included, so down removes exactly that. In a
    # hybrid machine's unified hierarchy runc creates the path itself.
    local d=$h$CGROUP_ROOT missing=()
    while [ ! -d "$d" ]; do missing=("$d" "${missing[@]}"); d=$(dirname "$d"); done
    for d in "${missing[@]}"; do
      case "$h" in
        */unified) ;;
        *) mkdir "$d" 2>/dev/null || fail "cannot create cgroup $d" ;;
      esac
      echo "$d" >> "$rn/cgroups.created"
    done
    case "$h" in */unified) ;; *) found=1 ;; esac
  done
  [ -n "$found" ] || fail "no cgroup hierarchy is mounted under /sys/fs/cgroup"
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    for c in cpu memory pids; do
      grep -qw "$c" /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null ||
        echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null ||
        fail "cannot enable the $c controller for child cgroups of /sys/fs/cgroup"
    done
  else
    for c in cpu memory pids devices freezer; do
      mountpoint -q "/sys/fs/cgroup/$c" || [ -d "/sys/fs/cgroup/$c" ] || fail "the cgroup v1 $c hierarchy is not mounted"
    done
  fi

  # Paths the kubelet, libcni and iptables use whatever they are told (the device-plugin socket
  # directory, the CNI result cache, the container log links, the xtables lock): those that do
  # not exist yet are recorded, so that down removes them once no checkout's node needs them.
  : > "$rn/host-paths.created"
  for p in $HOST_PATHS; do [ -e "$p" ] || echo "$p" >> "$rn/host-paths.created"; done

  piece="network namespace"
  mkdir -p "$RUNDIR"
  touch "$rn/netns"
  unshare --net="$rn/netns" true 2>"$rn/logs/netns.log" || fail "unshare --net failed: $(cat "$rn/logs/netns.log")"
  piece=veth
  ip link add "$VETH" type veth peer name "${VETH}n" 2>"$rn/logs/veth.log" || fail "$(cat "$rn/logs/veth.log")"
  ip link set "${VETH}n" netns "$rn/netns"
  in_node ip link set "${VETH}n" name eth0
  in_node ip addr add "$NODE_IP/30" dev eth0
  in_node ip link set lo up
  in_node ip link set eth0 up
  in_node ip route add default via "$HOST_IP"
  ip addr add "$HOST_IP/30" dev "$VETH"
  ip link set "$VETH" up
  ip route add "$NET" via "$NODE_IP" dev "$VETH"
  piece=sysctl
  [ -f "$rn/ip_forward.before" ] || sysctl -n net.ipv4.ip_forward > "$rn/ip_forward.before"
  sysctl -qw net.ipv4.ip_forward=1 || fail "cannot enable net.ipv4.ip_forward (pods need it to reach the registry and PyPI)"
  # The API server listens on 127.0.0.1 only; the node reaches it through a DNAT on this link.
  sysctl -qw "net.ipv4.conf.$VETH.route_localnet=1"
  in_node sysctl -qw net.ipv4.ip_forward=1
  # kube-proxy needs bridged traffic to pass iptables (a pod reaching a Service backed by a pod
  # on the same bridge).
  in_node sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null ||
    fail "net.bridge.bridge-nf-call-iptables is missing in the node's namespace (br_netfilter)"
  piece=iptables
  local comment="jockey real node $root"
  {
    iptables -w -t nat -N "$CHAIN-PRE" &&
      iptables -w -t nat -A "$CHAIN-PRE" -i "$VETH" -d "$HOST_IP" -p tcp --dport "$api_port" \
        -j DNAT --to-destination "127.0.0.1:$api_port" &&
      iptables -w -t nat -I PREROUTING -m comment --comment "$comment" -j "$CHAIN-PRE" &&
      iptables -w -t nat -N "$CHAIN-POST" &&
      iptables -w -t nat -A "$CHAIN-POST" -s "$NET" ! -d "$NET" -j MASQUERADE &&
      iptables -w -t nat -I POSTROUTING -m comment --comment "$comment" -j "$CHAIN-POST" &&
      iptables -w -N "$CHAIN-FWD" &&
      iptables -w -A "$CHAIN-FWD" -i "$VETH" -j ACCEPT &&
      iptables -w -A "$CHAIN-FWD" -o "$VETH" -j ACCEPT &&
      iptables -w -I FORWARD -m comment --comment "$comment" -j "$CHAIN-FWD"
  } 2>"$rn/logs/iptables.log" || fail "$(tail -n1 "$rn/logs/iptables.log")"

  piece=registry
  mkdir -p "$rn/registry"
  cat > "$rn/registry.yml" <<EOF
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $rn/registry}
  delete: {enabled: true}
http: {addr: "$REGISTRY"}
EOF
  OTEL_TRACES_EXPORTER=none start_bg registry registry "$bin/registry" serve "$rn/registry.yml"
  wait_until 20 curl -sf "http://$REGISTRY/v2/" || fail "registry did not answer on $REGISTRY: $(log_tail "$rn/logs/registry.log")"

  piece=images
  "$here/images.sh" push "$REGISTRY" > "$rn/images.env" 2>"$rn/logs/images.log" ||
    fail "$(tail -n 3 "$rn/logs/images.log" | tr '\n' ' ')"
  # shellcheck source=/dev/null
  . "$rn/images.env"

  piece=containerd
  mkdir -p "$rn/containerd/certs.d/$REGISTRY" "$rn/cni/net.d" "$rn/pod-logs"
  cat > "$rn/containerd/certs.d/$REGISTRY/hosts.toml" <<EOF
server = "http://$REGISTRY"
[host."http://$REGISTRY"]
  capabilities = ["pull", "resolve"]
EOF
  cat > "$rn/containerd/config.toml" <<EOF
version = 4
root = '$rn/containerd/root'
state = '$RUNDIR/containerd'
imports = []
[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '$PAUSE_IMAGE'
    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = '$rn/containerd/certs.d'
  [plugins.'io.containerd.cri.v1.runtime']
    # Lowering oom_score_adj needs CAP_SYS_RESOURCE, which a container host may not grant.
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    enable_criu = false
    cdi_spec_dirs = []
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = '$bin/runc'
        Root = '$RUNDIR/runc'
        SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['$bin/cni']
      conf_dir = '$rn/cni/net.d'
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
  [plugins.'io.containerd.internal.v1.opt']
    path = '$rn/containerd/opt'
  [plugins.'io.containerd.nri.v1.nri']
    disable = true
  [plugins.'io.containerd.server.v1.grpc']
    address = '$RUNDIR/containerd.sock'
  [plugins.'io.containerd.server.v1.ttrpc']
    address = '$RUNDIR/containerd.sock.ttrpc'
  [plugins.'io.containerd.shim.v1.manager']
    socket_dir = '$RUNDIR/s'
  [plugins.'io.containerd.image-verifier.v1.bindir']
    bin_dir = '$rn/containerd/image-verifiers'
EOF
  cat > "$rn/cni/net.d/10-jockey.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "jockey-$N", "plugins": [{
  "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
  "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]],
           "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$rn/cni/ipam"}}]}
EOF
  start_bg containerd containerd nsenter --net="$rn/netns" env PATH="$bin:$PATH" \
    "$bin/containerd" --config "$rn/containerd/config.toml"
  wait_until 30 "$bin/ctr" --address "$RUNDIR/containerd.sock" version ||
    fail "did not start: $(log_tail "$rn/logs/containerd.log")"

  piece=kubelet
  sed "s|server: https://127.0.0.1:$api_port|server: https://$HOST_IP:$api_port|" "$kubeconfig" > "$rn/kubeconfig"
  cat > "$rn/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT
failSwapOn: false
containerRuntimeEndpoint: unix://$RUNDIR/containerd.sock
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
# Only the API server, with the cluster's client certificate, may use the kubelet's API.
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
podCIDR: $POD_CIDR
podLogsDir: $rn/pod-logs
registerWithTaints:
- {key: $TAINT_KEY, value: "true", effect: NoSchedule}
enforceNodeAllocatable: []
# The disk is this machine's, shared with builds of every kind: its free space is no reason to
# taint the node and evict test pods (0% disables a signal). Image GC is off for the same reason;
# the images go with the cluster.
evictionHard: {memory.available: 100Mi, nodefs.available: "0%", nodefs.inodesFree: "0%", imagefs.available: "0%", imagefs.inodesFree: "0%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
resolvConf: /etc/resolv.conf
clusterDomain: cluster.local
EOF
  start_bg kubelet kubelet nsenter --net="$rn/netns" "$bin/kubelet" \
    --config "$rn/kubelet.yaml" --kubeconfig "$rn/kubeconfig" \
    --root-dir "$rn/kubelet" --cert-dir "$rn/kubelet/pki" \
    --hostname-override "$NODE" --node-ip "$NODE_IP" --node-labels "$TAINT_KEY=true"
  node_ready() { kubectl get node "$NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True; }
  wait_until 120 node_ready || fail "node $NODE did not become Ready: $(log_tail "$rn/logs/kubelet.log")"

  piece=kube-proxy
  cat > "$rn/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $rn/kubeconfig}
hostnameOverride: $NODE
clusterCIDR: $POD_CIDR
detectLocalMode: ClusterCIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Conntrack limits are the host's; leave them as they are.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  start_bg kube-proxy kube-proxy nsenter --net="$rn/netns" "$bin/kube-proxy" --config "$rn/kube-proxy.yaml"
  wait_until 60 in_node curl -sf http://127.0.0.1:10256/healthz ||
    fail "not healthy: $(log_tail "$rn/logs/kube-proxy.log")"

  piece="smoke pod"
  smoke
  trap - EXIT
}

# A pod from the local registry running on the node proves the whole chain: the sandbox (runc,
# seccomp, cgroups, CNI) and a pull by containerd.
smoke() {
  local pod=realnode-smoke
  kubectl delete pod -n default "$pod" --ignore-not-found --grace-period=0 >/dev/null 2>&1 || true
  kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $pod, namespace: default}
spec:
  nodeName: $NODE
  tolerations: [{key: $TAINT_KEY, operator: Exists, effect: NoSchedule}]
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 0
  containers: [{name: pause, image: "$PAUSE_IMAGE"}]
EOF
  if ! kubectl wait -n default --for=condition=Ready "pod/$pod" --timeout=90s >/dev/null 2>&1; then
    local why
    why=$(kubectl get events -n default --field-selector "involvedObject.name=$pod,type=Warning" \
      -o jsonpath='{range .items[*]}{.reason}: {.message}{"\n"}{end}' 2>/dev/null | tail -n1 | cut -c1-400)
    [ -n "$why" ] || why=$(log_tail "$rn/logs/containerd.log")
    kubectl delete pod -n default "$pod" --grace-period=0 --force >/dev/null 2>&1 || true
    fail "a pod did not start on $NODE: $why"
  fi
  kubectl delete pod -n default "$pod" --grace-period=0 --force >/dev/null 2>&1 || true
}

# Whether a cluster without the real node must fail: CI runs on machines that can run it, so
# there a missing node is a broken machine or script, not a reason to skip its tests.
required() { [ "${JOCKEY_REQUIRE_REAL_NODE:-}" = 1 ] || [ "${CI:-}" = true ]; }
required_by() {
  if [ "${JOCKEY_REQUIRE_REAL_NODE:-}" = 1 ]; then echo JOCKEY_REQUIRE_REAL_NODE=1; else echo CI=true; fi
}

up() {
  mkdir -p "$state"
  if [ "${JOCKEY_REAL_NODE:-on}" = off ]; then
    echo "disabled by JOCKEY_REAL_NODE=off" > "$status_file"
    if required; then
      say "real node: JOCKEY_REAL_NODE=off, but $(required_by) requires the real node; unset one of them"
      exit 1
    fi
    say "real node: disabled by JOCKEY_REAL_NODE=off; the cluster is KWOK-only"
    return 0
  fi
  plan
  if [ "$(cat "$status_file" 2>/dev/null)" = ok ] && alive kubelet && alive containerd && alive registry &&
    alive kube-proxy; then
    say "real node $NODE is already running"
    return 0
  fi
  down >/dev/null 2>&1 || true
  plan
  rm -f "$status_file" "$env_file"
  say "starting the real node $NODE (kubelet, containerd, runc, CNI, kube-proxy) and the registry $REGISTRY"
  if "$0" _start; then
    # shellcheck source=/dev/null
    . "$rn/images.env"
    cat > "$env_file" <<EOF
IMAGE_REGISTRY=$REGISTRY
KANIKO_IMAGE=$KANIKO_IMAGE
BASE_IMAGE=$BASE_IMAGE
JOCKEY_REAL_NODE=$NODE
JOCKEY_REAL_NODE_TAINT=$TAINT_KEY
EOF
    echo ok > "$status_file"
    say "real node $NODE is Ready; registry $REGISTRY; settings in $env_file"
  else
    local reason
    reason=$(cat "$rn/failed" 2>/dev/null || echo "failed without a reason; see $rn/logs")
    # Keep the logs that explain it; remove everything else.
    cp -r "$rn/logs" "$state/realnode-logs" 2>/dev/null || true
    down >/dev/null 2>&1 || true
    echo "$reason" > "$status_file"
    say "real node: $reason"
    if required; then
      say "the real node is required ($(required_by)): failing; its logs are in $state/realnode-logs"
      exit 1
    fi
    say "the cluster stays KWOK-only; tests that need the real node will be SKIPPED"
  fi
}

# --- down ---------------------------------------------------------------------------------------

alive() { [ -f "$rn/$1.pid" ] && kill -0 "$(cat "$rn/$1.pid")" 2>/dev/null; }

# Whether another checkout's real node runs on this machine (its veth is up).
other_nodes() { ip -o link show 2>/dev/null | grep -E '^[0-9]+: jockey[0-9]+[@:]' | grep -vq "^[0-9]*: $VETH[@:]"; }

# libcni's cached results of this node's attachments (they name its network).
cni_results() { grep -lsE "\"(jockey-$N|cni-loopback)\"" /var/lib/cni/results/* 2>/dev/null | xargs -r grep -ls "$RUNDIR/" || true; }

stop_pid() { # NAME
  alive "$1" || { rm -f "$rn/$1.pid"; return 0; }
  local pid; pid=$(cat "$rn/$1.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$rn/$1.pid"
}

cgroup_dirs() { # every cgroup directory of the node, deepest first
  local h
  for h in $(cgroup_hierarchies); do
    [ -d "$h$CGROUP_ROOT" ] && find "$h$CGROUP_ROOT" -depth -type d
  done
  return 0
}

cgroup_pids() { cgroup_dirs | while read -r d; do cat "$d/cgroup.procs" 2>/dev/null; done | sort -un; }

shim_pids() { pgrep -f "containerd-shim-runc-v2 .*$RUNDIR/" 2>/dev/null || true; }

mounts_under() { # mount points under our directories, deepest first
  awk -v a="$rn/" -v b="$RUNDIR/" -v c="$rn" '{p=$5; gsub(/\\040/, " ", p); if (index(p, a) == 1 || index(p, b) == 1 || p == c) print p}' \
    /proc/self/mountinfo | awk '{print length, $0}' | sort -rn | cut -d' ' -f2-
}

host_rules() { # our jump rules, one "TABLE CHAIN RULE" per line
  local t
  for t in nat filter; do
    iptables -w -t "$t" -S 2>/dev/null | grep -E -- "-j $CHAIN-(PRE|POST|FWD)( |$)" | grep -v '^-N' |
      sed "s/^-A /$t /"
  done
}

down() {
  [ -f "$rn/plan.env" ] || return 0
  plan
  stop_pid kube-proxy
  stop_pid kubelet
  # A Node object left NotReady would keep the next start waiting for it.
  [ -s "$kubeconfig" ] && kubectl delete node "$NODE" --ignore-not-found --wait=false --request-timeout=10s >/dev/null 2>&1 || true
  # Containers outlive the kubelet and containerd; end every process in the node's cgroups, then
  # the shims, then containerd.
  for _ in 1 2 3 4 5; do
    pids=$( { cgroup_pids; shim_pids; } | sort -un)
    [ -n "$pids" ] || break
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.5
  done
  stop_pid containerd
  stop_pid registry
  local m
  for m in $(mounts_under); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  cgroup_dirs | while read -r d; do rmdir "$d" 2>/dev/null || true; done
  # Parents created for the node (hierarchies other than the one it nested under), deepest first;
  # one another checkout's node still uses stays (rmdir fails on it).
  if [ -f "$rn/cgroups.created" ]; then
    tac "$rn/cgroups.created" | while read -r d; do rmdir "$d" 2>/dev/null || true; done
  fi
  ip link del "$VETH" 2>/dev/null || true
  host_rules | while read -r t rule; do
    # shellcheck disable=SC2086
    eval iptables -w -t "$t" -D $rule 2>/dev/null || true
  done
  iptables -w -t nat -F "$CHAIN-PRE" 2>/dev/null && iptables -w -t nat -X "$CHAIN-PRE" 2>/dev/null || true
  iptables -w -t nat -F "$CHAIN-POST" 2>/dev/null && iptables -w -t nat -X "$CHAIN-POST" 2>/dev/null || true
  iptables -w -F "$CHAIN-FWD" 2>/dev/null && iptables -w -X "$CHAIN-FWD" 2>/dev/null || true
  # ip_forward goes back to what it was, unless another checkout's real node still needs it.
  if [ "$(cat "$rn/ip_forward.before" 2>/dev/null)" = 0 ] && ! other_nodes; then
    sysctl -qw net.ipv4.ip_forward=0 || true
  fi
  rm -f "$rn/ip_forward.before"
  # The kubelet links container logs into /var/log/containers whatever its podLogsDir; libcni
  # caches each attachment's result in /var/lib/cni whatever containerd's directories.
  find /var/log/containers -maxdepth 1 -type l -lname "$rn/*" -delete 2>/dev/null || true
  cni_results | xargs -r rm -f
  if [ -f "$rn/host-paths.created" ] && ! other_nodes; then
    tac "$rn/host-paths.created" | while read -r p; do rm -rf "$p"; done
    rm -f "$rn/host-paths.created"
  fi
  rm -rf "$RUNDIR"
  rm -rf "$rn/containerd" "$rn/kubelet" "$rn/registry" "$rn/cni" "$rn/pod-logs" "$rn/netns"
  rm -f "$status_file" "$env_file"
  echo ">> real node $NODE stopped" >&2
}

leftovers() {
  [ -f "$rn/plan.env" ] || return 0
  plan
  local p
  for p in kube-proxy kubelet containerd registry; do
    alive "$p" && echo "process: $p (pid $(cat "$rn/$p.pid"))"
  done
  pgrep -af "$RUNDIR/|$rn/" 2>/dev/null | grep -v -e pgrep -e realnode.sh | sed 's/^/process: /'
  cgroup_pids | sed 's/^/process in the node'"'"'s cgroups: /'
  cgroup_dirs | sed 's/^/cgroup: /'
  if [ -f "$rn/cgroups.created" ] && ! other_nodes; then
    while read -r d; do [ -d "$d" ] && echo "cgroup created for the node: $d"; done < "$rn/cgroups.created"
  fi
  mounts_under | sed 's/^/mount: /'
  ip link show "$VETH" >/dev/null 2>&1 && echo "network interface: $VETH"
  host_rules | sed 's/^/iptables rule: /'
  for c in "nat $CHAIN-PRE" "nat $CHAIN-POST" "filter $CHAIN-FWD"; do
    set -- $c
    iptables -w -t "$1" -S "$2" >/dev/null 2>&1 && echo "iptables chain: $1 $2"
  done
  [ -d "$RUNDIR" ] && echo "directory: $RUNDIR"
  find /var/log/containers -maxdepth 1 -type l -lname "$rn/*" 2>/dev/null | sed 's/^/log link: /'
  cni_results | sed 's/^/CNI result: /'
  if [ -f "$rn/host-paths.created" ] && ! other_nodes; then
    while read -r p; do [ -e "$p" ] && echo "path created for the node: $p"; done < "$rn/host-paths.created"
  fi
  return 0
}

case "${1:-}" in
  kwokctl-args) kwokctl_args ;;
  up) up ;;
  _start) start ;;
  down) down ;;
  leftovers) leftovers ;;
  *) echo "usage: realnode.sh kwokctl-args|up|down|leftovers" >&2; exit 2 ;;
esac
