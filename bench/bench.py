#!/usr/bin/env python3
"""`make bench`: jockey-webhook against the webhooks a platform team would run instead
(a controller-runtime webhook, Kyverno, Gatekeeper), side by side in one run, on 127.0.0.1.

Writes bench/results.json (one entry per figure) and the results table of bench/README.md.
Needs the local cluster (tests/cluster/up.sh), the release binaries (jockey-webhook,
jockey-bench), oha (crates.io) and the Go peers (bench/peers/build-go.sh); the Makefile target
builds what is missing, cached.

Every webhook is pinned to CPU 1 and the load generator to CPU 0 (taskset), so all of them are
measured the same way. A peer that could not be built or started is recorded with the reason.
"""

import datetime
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import ssl
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench"
WORK = CACHE / "run"
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
# The CA of the client certificate the local API server presents to webhooks (tests/cluster/up.sh).
# The deploy loop's webhook requires it, as every webhook of the tests does; the side-by-side
# webhooks (direct load with oha, which presents no client certificate, and their API server
# runs) are compared like with like, none of them authenticating its caller.
CLIENT_CA = ROOT / ".cluster" / "webhook-client" / "ca.crt"
KUBECTL = ROOT / ".cache" / "bin" / "kubectl"
OHA = CACHE / "oha" / "bin" / "oha"
JB = ROOT / "target" / "release" / "jockey-bench"
JW = ROOT / "target" / "release" / "jockey-webhook"
REGISTRY = "registry.local:5000"
DOMAIN = "deploy.agentops.ai"
SERVER_CPU = os.environ.get("BENCH_SERVER_CPU", "1")
LOAD_CPU = os.environ.get("BENCH_LOAD_CPU", "0")
DURATION = os.environ.get("BENCH_DURATION", "8s")
QUICK = os.environ.get("BENCH_QUICK") == "1"
CLK = os.sysconf("SC_CLK_TCK")

results = []  # the entries of results.json
notes = {}  # peer -> why it is missing


def log(*a):
    print(">>", *a, file=sys.stderr, flush=True)


def kubectl(*args, input=None, check=True):
    p = subprocess.run([str(KUBECTL), "--kubeconfig", str(KUBECONFIG), *args], input=input,
                       capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {p.stderr.strip()}")
    return p.stdout


def settle(max_busy=0.15, window=2.0, timeout=180):
    """Waits until the machine is quiet (under `max_busy` of all CPUs busy over `window` s):
    after CRDs are applied the API server rebuilds its OpenAPI for a while, and the webhook
    measured first would pay for it."""
    def busy_idle():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v) - v[3] - v[4], v[3] + v[4]
    deadline = time.time() + timeout
    while time.time() < deadline:
        b0, i0 = busy_idle()
        time.sleep(window)
        b1, i1 = busy_idle()
        frac = (b1 - b0) / max((b1 - b0) + (i1 - i0), 1)
        if frac < max_busy:
            return frac
    log(f"the machine did not settle below {max_busy:.0%} busy in {timeout}s; measuring anyway")
    return None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def record(name, ours, peer, peer_name, unit, goal, goal_met, higher_is_better=False, note=""):
    ratio = None
    if isinstance(ours, (int, float)) and isinstance(peer, (int, float)) and peer:
        ratio = round(ours / peer, 3)
    results.append({"name": name, "ours": ours, "peer": peer, "peer_name": peer_name,
                    "ratio": ratio, "unit": unit, "goal": goal, "goal_met": goal_met,
                    **({"note": note} if note else {})})
    log(f"{name}: ours={ours} peer={peer} ({peer_name}) {unit} goal_met={goal_met}")


def insecure_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def post(url, body, timeout=5):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=insecure_ctx(), timeout=timeout) as r:
        return r.status, r.read()


def get(url, timeout=3):
    with urllib.request.urlopen(url, context=insecure_ctx(), timeout=timeout) as r:
        return r.status, r.read()


class Server:
    """A webhook process pinned to SERVER_CPU, in its own process group."""

    def __init__(self, name, cmd, base, ready, env=None):
        self.name, self.cmd, self.base, self.ready, self.env = name, cmd, base, ready, env
        self.proc = None
        self.logf = WORK / f"{name}.log"

    def start(self, timeout=180):
        env = dict(os.environ, **(self.env or {}))
        out = open(self.logf, "ab")
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, *self.cmd], stdout=out,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}); log {self.logf}: "
                                   + tail(self.logf))
            try:
                if self.ready():
                    return self
            except Exception:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout}s; log {self.logf}: " + tail(self.logf))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def status(self, key):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0  # MiB
        return None

    def cpu_seconds(self):
        f = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / CLK


def tail(path, n=12):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


WRK_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
done = function(summary, latency, requests)
  io.write(string.format('\\nJSON {"requests": %d, "duration_us": %d, "p50": %d, "p99": %d, "p999": %d, "non2xx": %d, "errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def wrk(url, body_file, conns=32, duration=DURATION):
    """Saturation with Debian's wrk, when oha (which also does fixed rates) is not built."""
    lua = WORK / "post.lua"
    lua.write_text(WRK_LUA)
    p = subprocess.run(["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{conns}", f"-d{duration}",
                        "-s", str(lua), url], capture_output=True, text=True,
                       env=dict(os.environ, BENCH_BODY=str(body_file)))
    line = next((l for l in p.stdout.splitlines() if l.startswith("JSON ")), None)
    if p.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed: {p.stderr.strip()[:400]} {p.stdout[-400:]}")
    j = json.loads(line[5:])
    ok = j["requests"] - j["non2xx"]
    return {"rps": round(j["requests"] / (j["duration_us"] / 1e6), 1), "ok": ok,
            "total": j["requests"] + j["errors"], "p50": j["p50"] / 1000, "p99": j["p99"] / 1000,
            "p999": j["p999"] / 1000, "codes": {}, "errors": {}, "generator": "wrk"}


def oha(url, body_file, rate=None, conns=32, duration=DURATION):
    if not OHA.exists():
        if rate:
            return None
        return wrk(url, body_file, conns, duration)
    cmd = ["taskset", "-c", LOAD_CPU, str(OHA), "-z", duration, "-c", str(conns), "--no-tui",
           "--output-format", "json", "--insecure", "-m", "POST",
           "-H", "Content-Type: application/json", "-D", str(body_file)]
    if rate:
        cmd += ["-q", str(rate), "--latency-correction"]
    p = subprocess.run(cmd + [url], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"oha failed: {p.stderr.strip()[:400]}")
    j = json.loads(p.stdout)
    codes = j.get("statusCodeDistribution", {})
    ok = codes.get("200", 0)
    total = sum(codes.values()) + sum(j.get("errorDistribution", {}).values())
    lp = j.get("latencyPercentiles", {})
    ms = lambda k: round(lp[k] * 1000, 3) if lp.get(k) is not None else None
    return {"rps": round(j["summary"]["requestsPerSec"], 1), "ok": ok, "total": total,
            "p50": ms("p50"), "p99": ms("p99"), "p999": ms("p99.9"), "codes": codes,
            "errors": j.get("errorDistribution", {})}


# ---------------------------------------------------------------------------------------------
# The webhooks under test.
# ---------------------------------------------------------------------------------------------

def certs():
    d = WORK / "certs"
    if not (d / "tls.crt").exists():
        subprocess.run([str(JW), "dev-certs", "--dir", str(d), "--days", "7"], check=True,
                       capture_output=True)
    return d


def start_jockey(port=None):
    port = port or free_port()
    d = certs()
    # The validating review's Ingress routes to svc-bench-p0: as `deploy` does, its Service exists
    # first, so the webhook answers from its watch of labelled Services (a Service it does not
    # hold would be read from the API server on every review).
    kubectl("create", "namespace", "bench", check=False)
    kubectl("apply", "-n", "bench", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "svc-bench-p0", "labels": {"jockey.agentops.ai/project": "bench-p0"}},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                 "selector": {"app": "bench-p0"}}}), check=False)
    (WORK / "policy.yaml").write_text("")
    base = f"https://127.0.0.1:{port}"
    cmd = [str(JW), "--listen", f"127.0.0.1:{port}", "--tls-cert-file", str(d / "tls.crt"),
           "--tls-key-file", str(d / "tls.key"), "--policy-file", str(WORK / "policy.yaml"),
           "--claims-namespace", "jockey-system", "--kubeconfig", str(KUBECONFIG),
           "--image-registry", REGISTRY]
    s = Server("jockey", cmd, base, lambda: get(base + "/readyz")[0] == 200,
               env={"RUST_LOG": os.environ.get("BENCH_RUST_LOG", "info")})
    s.paths = {"mutate": "/mutate", "validate": "/validate"}
    return s.start()


def start_crpeer(port=None):
    port = port or free_port()
    base = f"https://127.0.0.1:{port}"
    body = (WORK / "reviews" / "ingress-validate.review.json").read_bytes()
    cmd = [str(CACHE / "peer-controller-runtime"), "--kubeconfig", str(KUBECONFIG),
           "--cert-dir", str(certs()), "--port", str(port), "--image-registry", REGISTRY]
    s = Server("controller-runtime", cmd, base,
               lambda: post(base + "/validate", body)[0] == 200)
    s.paths = {"mutate": "/mutate", "validate": "/validate"}
    return s.start()


def start_gatekeeper(port=None):
    port = port or free_port()
    health = free_port()
    base = f"https://127.0.0.1:{port}"
    cmd = [str(CACHE / "gatekeeper"), "--kubeconfig", str(KUBECONFIG), "--port", str(port),
           "--host", "127.0.0.1", "--cert-dir", str(certs()), "--disable-cert-rotation",
           "--health-addr", f"127.0.0.1:{health}", "--metrics-addr", "0",
           # generate: it creates the constraint's CRD from the template (in a cluster that is
           # the audit Pod's job; here one process plays both).
           "--operation", "webhook", "--operation", "generate",
           "--log-level", "ERROR", "--enable-external-data=false",
           "--enable-generator-resource-expansion=false"]
    s = Server("gatekeeper", cmd, base,
               lambda: get(f"http://127.0.0.1:{health}/readyz")[0] == 200,
               env={"POD_NAMESPACE": "gatekeeper-system", "POD_NAME": "gatekeeper-bench",
                    "CONTAINER_NAME": "manager", "NAMESPACE": "gatekeeper-system"})
    s.paths = {"validate": "/v1/admit"}
    return s.start(timeout=300)


def setup_gatekeeper():
    """CRDs, the K8sUniqueIngressHost template and constraint, and Ingresses replicated into its
    cache (Config sync), all from the Gatekeeper module."""
    kubectl("create", "namespace", "gatekeeper-system", check=False)
    # It reads the reviewed object's Namespace (for namespaceSelector matching) and answers 500
    # without it; the direct-load reviews are in `bench`.
    kubectl("create", "namespace", "bench", check=False)
    # Its status objects are owned by its own Pod (POD_NAME): reconcilers stop with "getting
    # reconciler pod: not found" without one. A Pod object that never runs anywhere is enough.
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "gatekeeper-bench", "namespace": "gatekeeper-system"},
        "spec": {"nodeSelector": {"jockey-bench/no-such-node": "true"},
                 "containers": [{"name": "manager", "image": "gatekeeper-runs-outside-the-cluster"}]}}))
    kubectl("apply", "--server-side", "-f", str(CACHE / "gatekeeper-crds.yaml"))
    kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    kubectl("apply", "-f", str(CACHE / "gatekeeper-k8suniqueingresshost.yaml"))
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "config.gatekeeper.sh/v1alpha1", "kind": "Config",
        "metadata": {"name": "config", "namespace": "gatekeeper-system"},
        "spec": {"sync": {"syncOnly": [
            {"group": "networking.k8s.io", "version": "v1", "kind": "Ingress"}]}}}))


def gatekeeper_constraint():
    for _ in range(60):
        p = subprocess.run([str(KUBECTL), "--kubeconfig", str(KUBECONFIG), "apply", "-f", "-"],
                           input=json.dumps({
                               "apiVersion": "constraints.gatekeeper.sh/v1beta1",
                               "kind": "K8sUniqueIngressHost",
                               "metadata": {"name": "unique-ingress-host"},
                               "spec": {"match": {"kinds": [{"apiGroups": ["networking.k8s.io"],
                                                             "kinds": ["Ingress"]}]}}}),
                           capture_output=True, text=True)
        if p.returncode == 0:
            return
        time.sleep(1)
    raise RuntimeError("the K8sUniqueIngressHost constraint could not be created: " + p.stderr)


def start_kyverno(port=None):
    port = port or free_port()
    metrics = free_port()
    base = f"https://127.0.0.1:{port}"
    cmd = [str(CACHE / "kyverno"), "--kubeconfig", str(KUBECONFIG), "--serverIP", f"127.0.0.1:{port}",
           "--webhookServerPort", str(port), "--webhookServerHost", "127.0.0.1",
           "--servicePort", str(port), "--metricsPort", str(metrics), "--disableMetrics",
           "--enableReporting=", "--admissionReports=false", "--enablePolicyException=false",
           "--enableTuf=false", "--autoUpdateWebhooks=true", "--dumpPayload=false",
           "--controllerRuntimeMetricsAddress", "0", "--profile=false",
           # Required; it creates both (its own CA and serving pair) as the leader.
           "--caSecretName", "kyverno-svc.kyverno.svc.kyverno-tls-ca",
           "--tlsSecretName", "kyverno-svc.kyverno.svc.kyverno-tls-pair"]
    body = (WORK / "reviews" / "ingress.review.json").read_bytes()

    def ready():
        # Ready once its policy cache holds our policies: the Ingress gets a patch.
        status, out = post(base + "/mutate/fail", body)
        return status == 200 and "patch" in json.loads(out).get("response", {})

    s = Server("kyverno", cmd, base, ready,
               env={"KYVERNO_NAMESPACE": "kyverno", "KYVERNO_POD_NAME": "kyverno-bench",
                    "KYVERNO_SERVICEACCOUNT_NAME": "kyverno", "KYVERNO_DEPLOYMENT": "kyverno",
                    "KYVERNO_SVC": "kyverno-svc", "INIT_CONFIG": "kyverno",
                    "METRICS_CONFIG": "kyverno-metrics"})
    s.paths = {"mutate": "/mutate/fail"}
    return s.start(timeout=300)


def setup_kyverno():
    kubectl("create", "namespace", "kyverno", check=False)
    kubectl("apply", "--server-side", "-f", str(CACHE / "kyverno-crds"), "-R")
    kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    kubectl("create", "configmap", "kyverno", "-n", "kyverno", check=False)
    kubectl("create", "configmap", "kyverno-metrics", "-n", "kyverno", check=False)
    kubectl("apply", "-f", str(ROOT / "bench" / "peers" / "kyverno-policies.yaml"))


# ---------------------------------------------------------------------------------------------
# 1. Direct load.
# ---------------------------------------------------------------------------------------------

SCENARIOS = [
    # name, endpoint, review file, expected (for mutations)
    ("deployment-mutate", "mutate", "deployment.review.json", "deployment.expected.json"),
    ("ingress-mutate", "mutate", "ingress.review.json", "ingress.expected.json"),
    ("ingress-validate", "validate", "ingress-validate.review.json", None),
]


def check_answer(server, scen):
    name, ep, review, expected = scen
    body = (WORK / "reviews" / review).read_bytes()
    status, out = post(server.base + server.paths[ep], body)
    ans = WORK / f"answer-{server.name}-{name}.json"
    ans.write_bytes(out)
    if status != 200:
        raise RuntimeError(f"{server.name} {name}: HTTP {status}")
    if expected:
        p = subprocess.run([str(JB), "check", str(WORK / "reviews" / review), str(ans),
                            str(WORK / "reviews" / expected)], capture_output=True, text=True)
        if p.returncode != 0:
            return p.stderr.strip()[:600]
    else:
        resp = json.loads(out).get("response", {})
        if not resp.get("allowed"):
            return f"denied: {resp.get('status')}"
    return None


def direct_load(server):
    out = {"idle_rss_mib": round(server.status("VmRSS"), 1)}
    for scen in SCENARIOS:
        name, ep = scen[0], scen[1]
        if ep not in server.paths:
            continue
        mismatch = check_answer(server, scen)
        body = WORK / "reviews" / scen[2]
        url = server.base + server.paths[ep]
        cpu0 = server.cpu_seconds()
        sat = oha(url, body)
        cpu1 = server.cpu_seconds()
        r = {"saturation_rps": sat["rps"], "sat_ok": sat["ok"], "sat_total": sat["total"],
             "cpu_s_per_10k": round((cpu1 - cpu0) / max(sat["ok"], 1) * 10000, 3),
             "same_answer_as_jockey": mismatch is None, "mismatch": mismatch}
        r["generator"] = sat.get("generator", "oha")
        for rate in (500, 2000):
            f = oha(url, body, rate=rate, conns=16)
            if f is None:
                r[f"r{rate}"] = {"rps": None, "ok": 0, "total": 0, "p50": None, "p99": None,
                                 "p999": None, "why": "oha not built (fixed rates need it)"}
                continue
            r[f"r{rate}"] = {k: f[k] for k in ("rps", "ok", "total", "p50", "p99", "p999")}
        out[name] = r
        log(server.name, name, json.dumps(r))
    out["peak_rss_mib"] = round(server.status("VmHWM"), 1)
    return out


# ---------------------------------------------------------------------------------------------
# 2. As the API server sees it.
# ---------------------------------------------------------------------------------------------

BUCKET_RE = re.compile(r'^apiserver_admission_webhook_admission_duration_seconds_bucket\{(.*)\} (\S+)$')


def webhook_buckets():
    text = kubectl("get", "--raw", "/metrics")
    out = {}
    for line in text.splitlines():
        m = BUCKET_RE.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if labels.get("operation") != "CREATE":
            continue
        key = (labels["name"], labels["type"])
        le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
        out.setdefault(key, {}).setdefault(le, 0.0)
        out[key][le] += float(m.group(2))
    return out


def bucket_summary(before, after, names):
    """Per webhook type: count, fraction within 5 ms, the bucket holding p99."""
    res = {}
    for (name, typ), b in after.items():
        if not any(name.startswith(n) for n in names):
            continue
        prev = before.get((name, typ), {})
        agg = res.setdefault(typ, {})
        for le, v in b.items():
            agg[le] = agg.get(le, 0) + v - prev.get(le, 0)
    out = {}
    for typ, agg in res.items():
        total = agg.get(float("inf"), 0)
        if not total:
            continue
        les = sorted(agg)
        p99 = next(le for le in les if agg[le] >= 0.99 * total)
        out[typ] = {"count": int(total), "within_5ms": round(agg.get(0.005, 0) / total, 4),
                    "p99_bucket_s": p99}
    return out


def batch_objects(ns, n_projects, prefix, defaulted=False):
    """A Deployment and an Ingress per project, as `deploy` sends them (the webhook fills in the
    rest); `defaulted` gives the Ingress its host rule already, for a validating-only peer
    (Gatekeeper), whose API server would refuse an Ingress without rules."""
    items = []
    for i in range(n_projects):
        p = f"{prefix}{i}"
        meta = {"name": p, "namespace": ns, "labels": {"jockey.agentops.ai/project": p}}
        items.append({"apiVersion": "apps/v1", "kind": "Deployment",
                      "metadata": {**meta, "annotations": {
                          "jockey.agentops.ai/instance": "instance-0707070707070707"}},
                      "spec": {"replicas": 0, "selector": {"matchLabels": {"app": p}},
                               "template": {"metadata": {"labels": {"app": p}},
                                            "spec": {"containers": [
                                                {"name": "server", "image": "jockey:auto"}]}}}})
        spec = {"ingressClassName": "alb", "rules": [{"host": f"{p}.{DOMAIN}", "http": {"paths": [
            {"path": "/", "pathType": "Prefix",
             "backend": {"service": {"name": f"svc-{p}", "port": {"number": 80}}}}]}}]}
        items.append({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                      "metadata": {**meta, "name": f"ing-{p}"}, "spec": spec if defaulted else {}})
    return {"apiVersion": "v1", "kind": "List", "items": items}


def register_url(name, base, paths, ns_label, kinds):
    """Mutating/validating configurations calling a webhook by URL, like jockey's own."""
    ca = __import__("base64").b64encode((certs() / "ca.crt").read_bytes()).decode()
    rules = []
    for group, res in kinds:
        rules.append({"apiGroups": [group], "apiVersions": ["v1"], "resources": [res],
                      "operations": ["CREATE", "UPDATE"]})
    common = lambda path: {
        "admissionReviewVersions": ["v1"], "sideEffects": "None", "failurePolicy": "Fail",
        "timeoutSeconds": 5, "clientConfig": {"url": base + path, "caBundle": ca},
        "rules": rules, "namespaceSelector": {"matchLabels": {"jockey-bench": ns_label}},
        "objectSelector": {"matchExpressions": [
            {"key": "jockey.agentops.ai/project", "operator": "Exists"}]}}
    items = []
    if "mutate" in paths:
        items.append({"apiVersion": "admissionregistration.k8s.io/v1",
                      "kind": "MutatingWebhookConfiguration", "metadata": {"name": name},
                      "webhooks": [{"name": f"mutate.{name}.bench", "reinvocationPolicy": "Never",
                                    **common(paths["mutate"])}]})
    if "validate" in paths:
        items.append({"apiVersion": "admissionregistration.k8s.io/v1",
                      "kind": "ValidatingWebhookConfiguration", "metadata": {"name": name},
                      "webhooks": [{"name": f"validate.{name}.bench", **common(paths["validate"])}]})
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))


def unregister(name):
    kubectl("delete", "mutatingwebhookconfiguration", name, "--ignore-not-found", check=False)
    kubectl("delete", "validatingwebhookconfiguration", name, "--ignore-not-found", check=False)


def through_apiserver(server, n_projects, register, names, defaulted=False):
    ns = f"bench-{server.name}"
    kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=120s", check=False)
    kubectl("create", "namespace", ns)
    kubectl("label", "namespace", ns, f"jockey-bench={server.name}")
    register()
    time.sleep(3)  # the API server picks configurations up from its informer
    f = WORK / f"batch-{server.name}.json"
    f.write_text(json.dumps(batch_objects(ns, n_projects, f"{server.name[:2]}p", defaulted)))
    before = webhook_buckets()
    t0 = time.time()
    p = subprocess.run([str(KUBECTL), "--kubeconfig", str(KUBECONFIG), "create", "-f", str(f)],
                       capture_output=True, text=True)
    wall = time.time() - t0
    after = webhook_buckets()
    created = p.stdout.count(" created")
    out = {"objects": 2 * n_projects, "created": created, "wall_s": round(wall, 2),
           "webhooks": bucket_summary(before, after, names)}
    if p.returncode != 0:
        out["error"] = p.stderr.strip().splitlines()[-1][:300] if p.stderr.strip() else "?"
    log(server.name, "through the API server", json.dumps(out))
    return out


# ---------------------------------------------------------------------------------------------
# 3. Cost as the cluster grows.
# ---------------------------------------------------------------------------------------------

STORE_NS = "bench-store"


def stored_ingresses():
    out = kubectl("get", "ingress", "-n", STORE_NS, "-l", "jockey.agentops.ai/project",
                  "-o", "name", check=False)
    return len(out.split())


def grow_to(n):
    kubectl("create", "namespace", STORE_NS, check=False)
    have = stored_ingresses()
    chunk = 1000
    while have < n:
        m = min(chunk, n - have)
        items = []
        for i in range(have, have + m):
            p = f"s{i}"
            items.append({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                          "metadata": {"name": f"ing-{p}", "namespace": STORE_NS,
                                       "labels": {"jockey.agentops.ai/project": p},
                                       "annotations": {"alb.ingress.kubernetes.io/group.name": "alb-deployments"}},
                          "spec": {"ingressClassName": "alb", "rules": [{
                              "host": f"{p}.{DOMAIN}", "http": {"paths": [{
                                  "path": "/", "pathType": "Prefix", "backend": {"service": {
                                      "name": f"svc-{p}", "port": {"number": 80}}}}]}}]}})
        f = WORK / "grow.json"
        f.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
        kubectl("create", "-f", str(f))
        have += m
        log(f"stored Ingresses: {have}")


def growth_point(start, n):
    s = start()
    try:
        # The webhook has just listed every stored Ingress and the API server may still be busy
        # with the creates: the p99 is measured on a quiet machine only.
        settle()
        body = WORK / "reviews" / "ingress-validate.review.json"
        r = oha(s.base + s.paths["validate"], body, rate=500, conns=16) or oha(
            s.base + s.paths["validate"], body, conns=16)
        rss = s.status("VmRSS")
        out = {"ingresses": n, "rss_mib": round(rss, 1), "p50": r["p50"], "p99": r["p99"],
               "p999": r["p999"], "ok": r["ok"], "total": r["total"]}
        log(s.name, "growth", json.dumps(out))
        return out
    finally:
        s.stop()


# ---------------------------------------------------------------------------------------------
# 4. The deploy loop.
# ---------------------------------------------------------------------------------------------

KJ = Path(os.environ.get("BENCH_KUBECTL_JOCKEY", ROOT / "target" / "release" / "kubectl-jockey"))
DEPLOY_RUNS = int(os.environ.get("BENCH_DEPLOY_RUNS", "10"))


def timed(cmd, env=None, cwd=None):
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))}: {p.stderr.strip()[-600:]}")
    return time.time() - t0


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def deploy_loop():
    """`kubectl jockey deploy` of examples/agent (unchanged, and one file changed with the build
    cached) against `kubectl apply -k` of the same objects (a kustomization with a
    configMapGenerator) followed by `kubectl rollout status`. Pods land on the KWOK nodes for
    both; the image is built once on the real node by Kaniko beforehand."""
    import shutil
    envfile = ROOT / ".cluster" / "env"
    env = dict(os.environ, KUBECONFIG=str(KUBECONFIG),
               PATH=f"{KUBECTL.parent}:{os.environ['PATH']}")
    for line in envfile.read_text().splitlines() if envfile.exists() else []:
        k, _, v = line.partition("=")
        env[k] = v
    registry = env.get("IMAGE_REGISTRY", REGISTRY)
    ns, kns, project = "bench-deploy", "bench-kustomize", "bench-agent"
    for n in (ns, kns):
        # Fresh each run (the images stay in the registry, so the first deploy builds nothing
        # after the first run).
        kubectl("delete", "namespace", n, "--ignore-not-found", "--wait=true", "--timeout=300s",
                check=False)
        kubectl("create", "namespace", n, check=False)
    kubectl("label", "namespace", ns, "jockey-bench=deploy", "--overwrite")
    port = free_port()
    d = certs()
    (WORK / "policy.yaml").write_text("")
    base = f"https://127.0.0.1:{port}"
    s = Server("jockey-deploy", [str(JW), "--listen", f"127.0.0.1:{port}", "--tls-cert-file",
                                 str(d / "tls.crt"), "--tls-key-file", str(d / "tls.key"),
                                 "--policy-file", str(WORK / "policy.yaml"), "--claims-namespace",
                                 "jockey-system", "--kubeconfig", str(KUBECONFIG),
                                 "--image-registry", registry, "--client-ca-file", str(CLIENT_CA)],
               base, lambda: get(base + "/readyz")[0] == 200).start()
    try:
        kubectl("apply", "-f", "-", input=subprocess.run(
            [str(JW), "registration", "--url", base, "--ca-file", str(d / "ca.crt"), "--name",
             "bench-deploy", "--namespace-label", "jockey-bench=deploy", "--policy-file",
             str(WORK / "policy.yaml")], capture_output=True, text=True, check=True).stdout)
        time.sleep(3)
        timed([str(KJ), "setup-builder"], env=env)
        if env.get("JOCKEY_REAL_NODE_TAINT"):
            taint = env["JOCKEY_REAL_NODE_TAINT"]
            kubectl("annotate", "namespace", env.get("BUILDER_NAMESPACE", "builder"), "--overwrite",
                    f"scheduler.alpha.kubernetes.io/node-selector={taint}=true",
                    "scheduler.alpha.kubernetes.io/defaultTolerations=" + json.dumps(
                        [{"key": taint, "operator": "Exists", "effect": "NoSchedule"}]))
        src = WORK / "agent"
        shutil.rmtree(src, ignore_errors=True)
        shutil.copytree(ROOT / "examples" / "agent", src)
        deploy = [str(KJ), "deploy", str(src), "--project", project, "-n", ns, "--timeout", "15m"]
        log("first deploy of examples/agent (builds the image once)")
        first = timed(deploy, env=env)
        log(f"first deploy: {first:.1f} s")
        noop = [timed(deploy, env=env) for _ in range(DEPLOY_RUNS)]
        # One file changed with its build cached (the case): server.py alternates
        # between two versions whose images were both built before the timed runs.
        changed_file = src / "server.py"
        original = changed_file.read_text()
        versions = [original + "\n# bench edit\n", original]
        changed_file.write_text(versions[0])
        log(f"second version built once: {timed(deploy, env=env):.1f} s")
        changed = []
        for i in range(DEPLOY_RUNS):
            changed_file.write_text(versions[(i + 1) % 2])
            changed.append(timed(deploy, env=env))
        changed_file.write_text(original)

        # The peer: the same objects as jockey applied them, as a kustomization.
        kdir = WORK / "kustomize"
        shutil.rmtree(kdir, ignore_errors=True)
        (kdir / "files").mkdir(parents=True)
        objs = []
        for kind in ("deployment", "service", "ingress"):
            o = json.loads(kubectl("get", kind, "-n", ns, "-l",
                                   f"jockey.agentops.ai/project={project}", "-o", "json"))["items"][0]
            meta = o["metadata"]
            o["metadata"] = {"name": meta["name"], "labels": meta.get("labels", {}),
                             "annotations": {k: v for k, v in meta.get("annotations", {}).items()
                                             if "last-applied" not in k and "deployment.kubernetes.io" not in k}}
            o.pop("status", None)
            if kind == "ingress":
                # The shared ALB group is jockey's: its ValidatingAdmissionPolicy refuses an
                # Ingress naming it in a namespace the webhook does not answer. A team without
                # jockey has an ALB of its own, and a host of its own: jockey rightly refuses
                # the next deploy of a host another namespace's Ingress holds.
                o["metadata"]["annotations"] = {
                    k: v for k, v in o["metadata"]["annotations"].items()
                    if not k.startswith("alb.ingress.kubernetes.io/group.")}
                o["metadata"]["labels"] = {k: v for k, v in o["metadata"]["labels"].items()
                                           if not k.startswith("jockey.agentops.ai/")}
                for rule in o["spec"].get("rules", []):
                    rule["host"] = "kustomize-" + rule["host"]
                for t in o["spec"].get("tls", []):
                    t["hosts"] = ["kustomize-" + h for h in t.get("hosts", [])]
            if kind == "service":
                for k in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                    o["spec"].pop(k, None)
            if kind == "deployment":
                for v in o["spec"]["template"]["spec"].get("volumes", []):
                    if "configMap" in v:
                        v["configMap"]["name"] = "instance"
            objs.append(o)
            (kdir / f"{kind}.json").write_text(json.dumps(o))
        files = []
        for f in sorted(p for p in src.rglob("*") if p.is_file()):
            key = str(f.relative_to(src)).replace("/", "__")
            files.append(f"{key}=files/{key}")
            shutil.copy(f, kdir / "files" / key)
        (kdir / "kustomization.yaml").write_text(json.dumps({
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "namespace": kns, "resources": ["deployment.json", "service.json", "ingress.json"],
            "configMapGenerator": [{"name": "instance", "files": files}]}))
        dep_name = objs[0]["metadata"]["name"]
        apply = [str(KUBECTL), "--kubeconfig", str(KUBECONFIG), "apply", "-k", str(kdir)]
        rollout = [str(KUBECTL), "--kubeconfig", str(KUBECONFIG), "rollout", "status",
                   f"deployment/{dep_name}", "-n", kns, "--timeout=5m"]
        peer_run = lambda: timed(apply) + timed(rollout)
        peer_run()
        knoop = [peer_run() for _ in range(DEPLOY_RUNS)]
        key = "server.py"
        korig = (kdir / "files" / key).read_text()
        kversions = [korig + "\n# bench edit\n", korig]
        (kdir / "files" / key).write_text(kversions[0])
        peer_run()
        kchanged = []
        for i in range(DEPLOY_RUNS):
            (kdir / "files" / key).write_text(kversions[(i + 1) % 2])
            kchanged.append(peer_run())
        out = {"first_s": round(first, 2), "runs": DEPLOY_RUNS,
               "noop_median_s": round(median(noop), 3), "changed_median_s": round(median(changed), 3),
               "peer_noop_median_s": round(median(knoop), 3),
               "peer_changed_median_s": round(median(kchanged), 3),
               "kubectl_jockey": str(KJ)}
        log("deploy loop", json.dumps(out))
        return out
    finally:
        s.stop()
        unregister("bench-deploy")
        kubectl("delete", "validatingadmissionpolicybinding", "bench-deploy-shared-alb", "--ignore-not-found", check=False)
        kubectl("delete", "validatingadmissionpolicy", "bench-deploy-shared-alb", "--ignore-not-found", check=False)


# ---------------------------------------------------------------------------------------------
# 5. Packaging.
# ---------------------------------------------------------------------------------------------

def packaging():
    p = subprocess.run(["taskset", "-c", SERVER_CPU, str(JB), "packaging"], capture_output=True,
                       text=True, check=True)
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


# ---------------------------------------------------------------------------------------------

def main():
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.time()
    subprocess.run([str(JB), "reviews", str(WORK / "reviews")], check=True)
    kubectl("create", "namespace", "jockey-system", check=False)
    # A previous run's namespaces (up to 10,000 Ingresses) still being deleted would load the
    # API server and every watching webhook during the measurements: wait until they are gone.
    for ns in ("bench-jockey", "bench-controller-runtime", "bench-gatekeeper", "bench-kyverno",
               STORE_NS):
        kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=900s",
                check=False)
    # The machine is shared: the load average at both ends goes into the README with the figures.
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    raw = {"direct": {}, "apiserver": {}, "growth": {}, "packaging": None}
    # BENCH_STAGES=direct,apiserver,growth,deploy,packaging,edit runs only those and keeps the
    # other figures of the last run (.cache/bench/raw.json).
    all_stages = {"direct", "apiserver", "growth", "deploy", "packaging", "edit"}
    stages = set(os.environ.get("BENCH_STAGES", ",".join(sorted(all_stages))).split(","))
    if stages != all_stages and (CACHE / "raw.json").exists():
        raw.update(json.loads((CACHE / "raw.json").read_text()))
        raw.pop("elapsed_s", None)
        raw.pop("load", None)

    peers = {"jockey": start_jockey, "controller-runtime": start_crpeer}
    if (CACHE / "gatekeeper").exists():
        try:
            setup_gatekeeper()
            peers["gatekeeper"] = start_gatekeeper
        except Exception as e:
            notes["gatekeeper"] = f"setup failed: {e}"
    else:
        notes["gatekeeper"] = notes_from_build("gatekeeper")
    if (CACHE / "kyverno").exists():
        try:
            setup_kyverno()
            peers["kyverno"] = start_kyverno
        except Exception as e:
            notes["kyverno"] = f"setup failed: {e}"
    else:
        notes["kyverno"] = notes_from_build("kyverno")

    # 1 and 2, one webhook at a time.
    n_projects = 100 if QUICK else 500
    for name, start in list(peers.items()):
        try:
            s = start()
        except Exception as e:
            notes[name] = f"could not start: {e}"
            log(notes[name])
            peers.pop(name)
            continue
        try:
            if name == "gatekeeper":
                gatekeeper_constraint()
                time.sleep(3)
            settle()
            if "direct" in stages:
                raw["direct"][name] = direct_load(s)
            if "apiserver" not in stages:
                pass
            elif name == "jockey":
                reg = lambda: kubectl("apply", "-f", "-", input=subprocess.run(
                    [str(JW), "registration", "--url", s.base, "--ca-file",
                     str(certs() / "ca.crt"), "--name", "bench-jockey", "--namespace-label",
                     "jockey-bench=jockey", "--policy-file", str(WORK / "policy.yaml")],
                    capture_output=True, text=True, check=True).stdout)
                raw["apiserver"][name] = through_apiserver(s, n_projects, reg, ["mutate.jockey", "validate.jockey"])
                unregister("bench-jockey")
                kubectl("delete", "validatingadmissionpolicybinding", "bench-jockey-shared-alb", "--ignore-not-found", check=False)
                kubectl("delete", "validatingadmissionpolicy", "bench-jockey-shared-alb", "--ignore-not-found", check=False)
            elif name == "controller-runtime":
                reg = lambda: register_url("bench-crpeer", s.base, s.paths, name,
                                           [("apps", "deployments"), ("", "services"),
                                            ("networking.k8s.io", "ingresses")])
                raw["apiserver"][name] = through_apiserver(s, n_projects, reg, ["mutate.bench-crpeer", "validate.bench-crpeer"])
                unregister("bench-crpeer")
            elif name == "gatekeeper":
                reg = lambda: register_url("bench-gatekeeper", s.base, s.paths, name,
                                           [("networking.k8s.io", "ingresses")])
                raw["apiserver"][name] = through_apiserver(s, n_projects, reg, ["validate.bench-gatekeeper"],
                                                           defaulted=True)
                unregister("bench-gatekeeper")
            elif name == "kyverno":
                # Kyverno registers its own webhooks (by URL, through --serverIP).
                raw["apiserver"][name] = through_apiserver(s, n_projects, lambda: None, ["mutate.kyverno", "validate.kyverno"])
        except Exception as e:
            notes[name] = f"failed during the run: {e}"
            log(notes[name])
        finally:
            s.stop()
            if name == "kyverno":
                # Its webhooks (failurePolicy Fail, every namespace) must not outlive it.
                for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
                    kubectl("delete", kind, "-l", "webhook.kyverno.io/managed-by=kyverno",
                            "--ignore-not-found", check=False)
        for ns in ("bench-" + name,):
            kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=false", check=False)

    # 3. growth, for every validating webhook that ran.
    levels = [int(x) for x in os.environ.get(
        "BENCH_GROWTH", "0,1000" if QUICK else "0,1000,10000").split(",")]
    grow_peers = [p for p in ("jockey", "controller-runtime", "gatekeeper") if p in peers]
    if "growth" in stages:
        # The namespaces of stage 2 are still being deleted (thousands of objects): the API
        # server's work would land in the level-0 latencies.
        for ns in ("bench-" + p for p in ("jockey", "controller-runtime", "gatekeeper", "kyverno")):
            kubectl("wait", "--for=delete", f"namespace/{ns}", "--timeout=300s", check=False)
        kubectl("delete", "namespace", STORE_NS, "--ignore-not-found", "--wait=true", "--timeout=300s", check=False)
    for n in levels if "growth" in stages else []:
        grow_to(n)
        time.sleep(2)
        for name in grow_peers:
            try:
                raw["growth"].setdefault(name, []).append(growth_point(peers[name], n))
            except Exception as e:
                notes[name + "-growth"] = f"{e}"
                log(name, "growth failed:", e)

    if "growth" in stages:
        # 10,000 labelled Ingresses fill the shared group: left behind, they would move every
        # later project (and the end-to-end tests' ones) to a shard. Waited for: while the
        # namespace controller deletes them, every watching webhook and the API server are busy,
        # and the deploy loop would measure that.
        kubectl("delete", "namespace", STORE_NS, "--ignore-not-found", "--wait=true", "--timeout=900s", check=False)

    # 4. the deploy loop.
    if "deploy" in stages and os.environ.get("BENCH_DEPLOY", "1") == "1":
        try:
            raw["deploy_loop"] = deploy_loop()
        except Exception as e:
            notes["deploy"] = f"{e}"
            log("deploy loop failed:", e)

    # 5. packaging.
    if "packaging" in stages:
        raw["packaging"] = packaging()
    # 6. edit -> serving on the real node (bench/edit_serving.py, with the release binaries).
    if "edit" in stages:
        try:
            raw["edit"] = edit_serving()
        except Exception as e:
            notes["edit"] = f"{e}"
            log("edit -> serving failed:", e)
    raw["elapsed_s"] = round(time.time() - started, 1)
    raw["measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    raw["load"] = {"start": load_at_start, "end": [round(x, 2) for x in os.getloadavg()]}
    raw["notes"] = {**raw.get("notes", {}), **notes}
    (CACHE / "raw.json").write_text(json.dumps(raw, indent=1))
    summarize(raw)


def edit_serving():
    """The inner loop against an image rebuilt for every change (bench/edit_serving.py), with
    this run's release binaries; needs the cluster's real node."""
    status = ROOT / ".cluster" / "realnode.status"
    if not status.exists() or status.read_text().strip() != "ok":
        raise RuntimeError("the local cluster has no real node (.cluster/realnode.status)")
    out = CACHE / "edit-serving.json"
    env = dict(os.environ, BENCH_EDIT_OUT=str(out),
               BENCH_KUBECTL_JOCKEY=str(ROOT / "target" / "release" / "kubectl-jockey"),
               BENCH_JOCKEY_WEBHOOK=str(JW))
    subprocess.run([sys.executable, str(ROOT / "bench" / "edit_serving.py")], env=env, check=True)
    return json.loads(out.read_text())


def notes_from_build(name):
    why = CACHE / f"{name}.why"  # written by whoever stopped a build that could not finish
    if why.exists():
        return why.read_text().strip()
    f = CACHE / f"{name}-build.log"
    return ("not built: " + tail(f, 3).replace("\n", " | ")) if f.exists() else "not built"


def summarize(raw):
    """results.json and the README table from the raw figures."""
    from summarize import write_all
    write_all(raw, ROOT)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if len(sys.argv) > 1 and sys.argv[1] == "summarize":
        summarize(json.loads((CACHE / "raw.json").read_text()))
    else:
        main()
