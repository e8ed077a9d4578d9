#!/usr/bin/env python3
"""Edit -> serving on the real node (bench/README.md, "Edit -> serving").

For each approach, 5 runs (BENCH_EDIT_RUNS) of three steps, each timed from the command's start
until five answers in a row come from the new version (`POST /run` through the project's Service):

- first deploy: a fresh project (so its image is built from nothing: no image, no layer cache);
- code-only change: one provider's answer changed, `deploy` again;
- dependency change: requirements.txt changed (and the answer), `deploy` again.

Each step also logs where its time went (the build Job's and the new pod's times).

Approaches, measured in the same run on the same machine:

- "inner" (jockey now): the built-in template; the image holds the dependencies (`:d-...`) and
  the files are unpacked from the instance at pod start: a code-only change builds nothing.
- "rebuild" (today's approach before it): the project brings the old built-in Dockerfile
  (`COPY . /app` before `pip install`), so every change rebuilds the image and reinstalls.

Needs the local cluster with its real node (`make cluster`, `.cluster/realnode.status` = ok) and
`cargo build --workspace --bins` (BENCH_KUBECTL_JOCKEY / BENCH_JOCKEY_WEBHOOK name other
binaries). Starts its own build broker for its namespace. Writes .cache/bench/edit-serving.json
and prints the table.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
KUBECTL = ROOT / ".cache" / "bin" / "kubectl"
KJ = Path(os.environ.get("BENCH_KUBECTL_JOCKEY", ROOT / "target" / "debug" / "kubectl-jockey"))
JW = Path(os.environ.get("BENCH_JOCKEY_WEBHOOK", ROOT / "target" / "debug" / "jockey-webhook"))
RUNS = int(os.environ.get("BENCH_EDIT_RUNS", "5"))
# Both by default; one alone (BENCH_EDIT_APPROACHES=inner) for a side measurement, e.g. a longer
# requirements.txt.
APPROACHES = os.environ.get("BENCH_EDIT_APPROACHES", "inner,rebuild").split(",")
WORK = ROOT / ".cache" / "bench" / "edit"
OUT = Path(os.environ.get("BENCH_EDIT_OUT", ROOT / ".cache" / "bench" / "edit-serving.json"))
NS, BUILDER = "bench-edit", "bench-edit-builder"
# The dependencies of the measured agent (three small packages from PyPI through the node's
# route out; BENCH_EDIT_REQS="a==1 b c ..." for others, e.g. thirty), and the dependency change:
# `six` moved to 1.17.0 (added when the list has no six).
REQS1 = os.environ.get("BENCH_EDIT_REQS", "six==1.16.0 attrs==23.2.0 idna==3.6").replace(",", " ").split()
REQS2 = [r for r in REQS1 if not r.startswith("six")] + ["six==1.17.0"]
REQS = ["\n".join(REQS1), "\n".join(REQS2)]


def log(*a):
    print("[edit-serving]", *a, file=sys.stderr, flush=True)


def env():
    e = dict(os.environ, KUBECONFIG=str(KUBECONFIG), PATH=f"{KUBECTL.parent}:{os.environ['PATH']}")
    for line in (ROOT / ".cluster" / "env").read_text().splitlines():
        k, _, v = line.partition("=")
        e[k] = v
    return e


def kubectl(*args, check=True):
    p = subprocess.run([str(KUBECTL), "--kubeconfig", str(KUBECONFIG), *args],
                       capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {p.stderr.strip()}")
    return p.stdout


def rebuild_dockerfile(base):
    # The built-in template before the inner loop: any change invalidates the pip layer.
    return f"""FROM {base}
ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PORT=8080
WORKDIR /app
COPY . /app
RUN if [ -f requirements.txt ]; then pip install --no-cache-dir -r requirements.txt; fi \\
 && chmod 0755 /app \\
 && useradd --system --uid 10001 --no-create-home agent
USER 10001
EXPOSE 8080
CMD ["python", "server.py"]
"""


def write_version(src, version, reqs):
    (src / "providers" / "echo.py").write_text(
        f'NAME = "echo"\n\n\ndef run(text: str) -> str:\n    return text + " {version}"\n')
    (src / "requirements.txt").write_text(reqs + "\n")


def post(url, body):
    req = urllib.request.Request(url, data=body.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=3) as r:
        return json.loads(r.read()).get("output")


def until_serving(project, want, t0, limit=900):
    """Seconds from t0 until `want` answered five times in a row."""
    ip = None
    in_a_row = 0
    while time.time() - t0 < limit:
        try:
            if ip is None:
                ip = kubectl("get", "service", f"svc-{project}", "-n", NS, "-o",
                             "jsonpath={.spec.clusterIP}").strip() or None
            out = post(f"http://{ip}/run", json.dumps({"provider": "echo", "input": "hi"}))
        except Exception:
            out = None
        if out == f"hi {want}":
            in_a_row += 1
            if in_a_row == 5:
                return time.time() - t0
        else:
            in_a_row = 0
            time.sleep(0.1)
    raise RuntimeError(f"{project}: {want} not serving after {limit} s")


def jobs(project):
    out = kubectl("get", "jobs", "-n", BUILDER, "-l", f"jockey.agentops.ai/project={project}",
                  "-o", "name")
    return len([l for l in out.splitlines() if l.strip()])


def rfc3339(t):
    from datetime import datetime
    return datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() if t else None


def timeline(project, t0):
    """Where a step's time went, in seconds after its start (the API's times have one-second
    resolution): the newest build Job's start and end, and the newest pod's creation, start of
    its init container (if any), initialization and readiness."""
    out = {}
    j = json.loads(kubectl("get", "jobs", "-n", BUILDER, "-l",
                           f"jockey.agentops.ai/project={project}", "-o", "json"))["items"]
    j.sort(key=lambda x: x["metadata"]["creationTimestamp"])
    if j:
        st = j[-1].get("status", {})
        out["job_created"] = rfc3339(j[-1]["metadata"]["creationTimestamp"])
        out["job_done"] = rfc3339(st.get("completionTime"))
    pods = json.loads(kubectl("get", "pods", "-n", NS, "-l",
                              f"jockey.agentops.ai/project={project}", "-o", "json"))["items"]
    pods = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    pods.sort(key=lambda x: x["metadata"]["creationTimestamp"])
    if pods:
        p = pods[-1]
        out["pod_created"] = rfc3339(p["metadata"]["creationTimestamp"])
        for c in p.get("status", {}).get("conditions", []):
            out["pod_" + c["type"]] = rfc3339(c.get("lastTransitionTime"))
        for c in p.get("status", {}).get("initContainerStatuses", []):
            term = c.get("state", {}).get("terminated", {})
            out["init_started"] = rfc3339(term.get("startedAt"))
            out["init_finished"] = rfc3339(term.get("finishedAt"))
        for c in p.get("status", {}).get("containerStatuses", [])[:1]:
            out["agent_started"] = rfc3339(c.get("state", {}).get("running", {}).get("startedAt"))
    return {k: round(v - t0, 1) for k, v in out.items() if v is not None and v >= t0 - 1}


def step(e, src, project, version, reqs):
    write_version(src, version, reqs)
    before = jobs(project)
    t0 = time.time()
    p = subprocess.Popen([str(KJ), "deploy", str(src), "--project", project, "-n", NS,
                          "--timeout", "15m"], env=e, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    # Served when the new version answers (the command may still be waiting for the ALB).
    seconds = until_serving(project, version, t0)
    _, err = p.communicate()
    if p.returncode != 0:
        raise RuntimeError(f"deploy {project}: {err.strip()[-800:]}")
    log(f"  {project} {version} timeline: {json.dumps(timeline(project, t0))}")
    return round(seconds, 2), jobs(project) - before


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main():
    e = env()
    base = e["BASE_IMAGE"]
    WORK.mkdir(parents=True, exist_ok=True)
    for n in (NS, BUILDER):
        kubectl("delete", "namespace", n, "--ignore-not-found", "--wait=true", "--timeout=300s",
                check=False)
    kubectl("create", "namespace", NS)
    subprocess.run([str(KJ), "setup-builder", "-n", BUILDER], env=e, check=True,
                   capture_output=True)
    taint = e.get("JOCKEY_REAL_NODE_TAINT", "jockey.agentops.ai/real-node")
    for n in (NS, BUILDER):
        kubectl("annotate", "namespace", n, "--overwrite",
                f"scheduler.alpha.kubernetes.io/node-selector={taint}=true",
                "scheduler.alpha.kubernetes.io/defaultTolerations=" + json.dumps(
                    [{"key": taint, "operator": "Exists", "effect": "NoSchedule"}]))
    kubectl("create", "namespace", "jockey-system", check=False)
    broker_log = open(WORK / "broker.log", "w")
    broker = subprocess.Popen([str(JW), "broker", "--kubeconfig", str(KUBECONFIG),
                               "--builder-namespace", BUILDER, "--claims-namespace",
                               "jockey-system", "--request-namespace", NS],
                              env=e, stdout=broker_log, stderr=subprocess.STDOUT)
    results = {a: {"first": [], "code": [], "deps": [], "jobs": {"first": [], "code": [], "deps": []}}
               for a in APPROACHES}
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    try:
        for run in range(RUNS):
            for approach in APPROACHES:
                project = f"edit-{approach}-{run}-{int(time.time()) % 100000}"
                src = WORK / project
                shutil.rmtree(src, ignore_errors=True)
                shutil.copytree(ROOT / "examples" / "agent", src)
                if approach == "rebuild":
                    (src / "Dockerfile").write_text(rebuild_dockerfile(base))
                r = results[approach]
                for kind, version, reqs in (("first", "v1", REQS[0]), ("code", "v2", REQS[0]),
                                            ("deps", "v3", REQS[1])):
                    s, j = step(e, src, project, version, reqs)
                    r[kind].append(s)
                    r["jobs"][kind].append(j)
                    log(f"run {run + 1}/{RUNS} {approach} {kind}: {s:.1f} s, {j} build Job(s)")
                subprocess.run([str(KJ), "delete", project, "-n", NS, "--no-wait"], env=e,
                               capture_output=True)
                shutil.rmtree(src, ignore_errors=True)
    finally:
        broker.send_signal(signal.SIGTERM)
        broker.wait(timeout=30)
    out = {"runs": RUNS, "requirements": REQS, "load_at_start": load_at_start,
           "load_at_end": [round(x, 2) for x in os.getloadavg()],
           "machine": f"{os.cpu_count()} cores, " + subprocess.run(
               ["uname", "-sr"], capture_output=True, text=True).stdout.strip(),
           "results": results}
    for a in results:
        for k in ("first", "code", "deps"):
            out.setdefault("median_s", {}).setdefault(a, {})[k] = median(results[a][k])
    (ROOT / ".cache" / "bench").mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1))
    m = out["median_s"]
    if set(m) != {"inner", "rebuild"}:
        for a in m:
            print(f"{a}: " + ", ".join(f"{k} {v:.1f} s" for k, v in m[a].items()))
        print(json.dumps(out["results"]))
        return
    print("| step | jockey (inner loop) | rebuild every change | ratio |")
    print("|---|---|---|---|")
    for k, name in (("first", "first deploy"), ("code", "code-only change"),
                    ("deps", "dependency change")):
        print(f"| {name} | {m['inner'][k]:.1f} s | {m['rebuild'][k]:.1f} s | "
              f"{m['inner'][k] / m['rebuild'][k]:.2f}x |")
    print(f"| code-only / first deploy | {m['inner']['code'] / m['inner']['first']:.2f}x | "
          f"{m['rebuild']['code'] / m['rebuild']['first']:.2f}x | |")
    print(json.dumps(out["results"]))


if __name__ == "__main__":
    main()
