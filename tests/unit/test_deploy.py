#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# test_deploy.py -- deploy/'s container and orchestration files, checked as far as a machine
# without a container runtime or a cluster allows (ctest test_deploy, label unit; run by
# test_deploy.sh). What is NOT checked here: that the image builds, that compose starts, that a
# cluster accepts the manifests (docs/operations.md says so too).
#
#  - every YAML and JSON file under deploy/ parses (python3-yaml, json);
#  - the Dockerfile: multi-stage on Debian, every COPY source exists, its build stage installs
#    every -dev package of deploy/install-deps.sh, the last stage runs as a non-root uid;
#  - kinfer's configuration in the ConfigMap and in deploy/compose/kinfer.conf, with the
#    environment the manifests give it, loads in the binary (`kinfer serve --dump-config`:
#    every key exists, every value passes its check), and every KINFER_* variable they set is
#    one the binary documents (`kinfer serve --dump-config-doc`);
#  - the probes: /healthz and /readyz (routes of src/http) on the port of http.listen, which
#    is the container port the Service and the PodMonitor use; /metrics for the PodMonitor;
#    and the real server with the ConfigMap's configuration answers those paths (HTTP-only
#    mode, a model trained from the bundled sample, loopback);
#  - cross-references: Secret keys, ConfigMap names, volume mounts of the files the config
#    names, KEDA's group/topic/bootstrap against the config, the schema ConfigMap against
#    schemas/, kustomization resources, compose volume sources, image tags, grace period vs
#    shutdown.timeout.ms, securityContext uid vs the Dockerfile's USER.
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml

K = os.environ["KINFER_BIN"]
SRC = os.environ["KINFER_SOURCE_DIR"]
DEPLOY = os.path.join(SRC, "deploy")
passed = 0
failed = 0


def check(what, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok: " + what, file=sys.stderr)
    else:
        failed += 1
        print("FAIL: " + what + (" (" + str(detail) + ")" if detail else ""), file=sys.stderr)
    return cond


def finish():
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


def rel(p):
    return os.path.relpath(p, SRC)


# ---- every YAML and JSON file parses --------------------------------------------------------
docs = {}  # relative path -> list of documents
for root, _, files in os.walk(DEPLOY):
    for f in sorted(files):
        p = os.path.join(root, f)
        if f.endswith((".yaml", ".yml")):
            try:
                with open(p) as fh:
                    docs[rel(p)] = [d for d in yaml.safe_load_all(fh) if d is not None]
                check("%s parses as YAML (%d documents)" % (rel(p), len(docs[rel(p)])), len(docs[rel(p)]) > 0)
            except yaml.YAMLError as e:
                check(rel(p) + " parses as YAML", False, e)
        elif f.endswith(".json"):
            try:
                with open(p) as fh:
                    json.load(fh)
                check(rel(p) + " parses as JSON", True)
            except ValueError as e:
                check(rel(p) + " parses as JSON", False, e)

k8s = {}  # (kind, name) -> object
for path, ds in docs.items():
    if path.startswith("deploy/k8s/") and not path.endswith("kustomization.yaml"):
        for d in ds:
            check("%s: %s has apiVersion, kind and metadata.name" % (path, d.get("kind")),
                  d.get("apiVersion") and d.get("kind") and (d.get("metadata") or {}).get("name"))
            k8s[(d.get("kind"), (d.get("metadata") or {}).get("name"))] = d


def obj(kind, name=None):
    for (k, n), d in k8s.items():
        if k == kind and (name is None or n == name):
            return d
    check("deploy/k8s has a %s%s" % (kind, " " + name if name else ""), False)
    finish()


# ---- the binary's view of the configuration -------------------------------------------------
doc = subprocess.run([K, "serve", "--dump-config-doc"], capture_output=True, text=True)
check("kinfer serve --dump-config-doc", doc.returncode == 0, doc.stderr.strip())
keys = {}  # key -> (default, environment variable)
for line in doc.stdout.splitlines():
    m = re.match(r"^\| `([a-z0-9.\-_]+)` \|[^|]*\|[^|]*\| (`[^`]*`)? *\| `(KINFER_[A-Z0-9_]+)` \|", line)
    if m:
        keys[m.group(1)] = ((m.group(2) or "").strip("`"), m.group(3))
check("the key table lists http.listen (src/http has landed)", "http.listen" in keys, sorted(keys)[:5])
env_names = {e for _, e in keys.values()}


def parse_conf(text):
    conf = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            conf[k.strip()] = v.strip()
    return conf


def load_in_binary(what, text, env):
    """kinfer serve --config FILE --dump-config with env: True when the binary accepts it."""
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write(text)
    try:
        e = {k: v for k, v in os.environ.items() if not k.startswith("KINFER_")}
        e.update(env)
        r = subprocess.run([K, "serve", "--config", f.name, "--dump-config"], capture_output=True,
                           text=True, env=e, timeout=60)
        check(what + ": kinfer serve --dump-config accepts it", r.returncode == 0, r.stderr.strip()[-400:])
        return r.stdout
    finally:
        os.unlink(f.name)


def check_env_names(what, names):
    for n in names:
        if not n.startswith("KINFER_"):
            continue
        ok = n in env_names or n.startswith("KINFER_KAFKA_")
        check("%s: %s is a documented kinfer variable" % (what, n), ok)


# ---- the Dockerfile -------------------------------------------------------------------------
with open(os.path.join(DEPLOY, "Dockerfile")) as f:
    dockerfile = f.read()
# join continuation lines
lines = re.sub(r"\\\n", " ", dockerfile).splitlines()
instr = [l.strip() for l in lines if l.strip() and not l.strip().startswith("#")]
froms = [l for l in instr if l.upper().startswith("FROM ")]
check("Dockerfile: multi-stage (%d FROM)" % len(froms), len(froms) >= 2)
check("Dockerfile: every stage is Debian bookworm",
      all("debian:" in l for l in froms) and "ARG DEBIAN_RELEASE=bookworm" in dockerfile)
with open("/etc/os-release") as f:
    osr = f.read()
check("Dockerfile: the same Debian release as this machine (%s)" % re.search(r"VERSION_CODENAME=(\w+)", osr).group(1),
      "VERSION_CODENAME=bookworm" in osr)
copies = 0
for l in instr:
    if not l.upper().startswith("COPY ") or "--from=" in l:
        continue
    parts = shlex.split(l)[1:]
    parts = [p for p in parts if not p.startswith("--")]
    for s in parts[:-1]:
        copies += 1
        check("Dockerfile: COPY source %s exists" % s, os.path.exists(os.path.join(SRC, s)))
check("Dockerfile: copies the sources (%d COPY sources)" % copies, copies >= 8)
stage_build = dockerfile.split("\nFROM ")[1]
with open(os.path.join(DEPLOY, "install-deps.sh")) as f:
    deps = f.read()
pkgs_block = re.search(r"PKGS=\((.*?)\n\)", deps, re.S).group(1)
dev = sorted({w for w in re.sub(r"#.*", "", pkgs_block).split() if w.endswith("-dev") and w.startswith("lib")
              and w not in ("libclang-rt-dev",)})
check("install-deps.sh lists build libraries (%d -dev packages)" % len(dev), len(dev) >= 8, dev)
for p in dev:
    check("Dockerfile: the build stage installs %s (install-deps.sh)" % p, re.search(r"\b%s\b" % re.escape(p), stage_build))
check("Dockerfile: installs with cmake --install", "cmake --install" in dockerfile)
last = dockerfile.split("\nFROM ")[-1]
users = re.findall(r"^USER\s+(\S+)", last, re.M)
uid = users[-1].split(":")[0] if users else "0"
check("Dockerfile: the runtime stage runs as a non-root uid (USER %s)" % uid, uid.isdigit() and int(uid) > 0)
check("Dockerfile: the entrypoint is the kinfer binary", re.search(r'^ENTRYPOINT \["/usr/local/bin/kinfer"\]', last, re.M))
for d in ("schemas", "migrations"):
    check("CMake installs %s under share/kinfer (the image's copy)" % d,
          re.search(r"install\(DIRECTORY %s/ DESTINATION share/kinfer/%s" % (d, d), open(os.path.join(SRC, "CMakeLists.txt")).read()))
check("Dockerfile.dockerignore keeps build dirs out of the context",
      os.path.exists(os.path.join(DEPLOY, "Dockerfile.dockerignore")) and "build*/" in open(os.path.join(DEPLOY, "Dockerfile.dockerignore")).read())

# ---- Kubernetes -----------------------------------------------------------------------------
kust = docs.get("deploy/k8s/kustomization.yaml", [{}])[0]
for r in kust.get("resources", []):
    check("kustomization resource %s exists" % r, os.path.exists(os.path.join(DEPLOY, "k8s", r)))
check("kustomization lists every manifest but KEDA's",
      set(kust.get("resources", [])) == {os.path.basename(p) for p in docs if p.startswith("deploy/k8s/")}
      - {"kustomization.yaml", "keda-scaledobject.yaml"})

dep = obj("Deployment", "kinfer")
secret = obj("Secret", "kinfer")
cm = obj("ConfigMap", "kinfer-config")
cm_schemas = obj("ConfigMap", "kinfer-schemas")
svc = obj("Service", "kinfer")
pm = obj("PodMonitor", "kinfer")
job = obj("Job", "kinfer-migrate")
so = obj("ScaledObject", "kinfer")
secret_keys = set((secret.get("stringData") or {}).keys()) | set((secret.get("data") or {}).keys())

pod = dep["spec"]["template"]["spec"]
c = pod["containers"][0]
check("Deployment selector matches its pod labels",
      all(dep["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in dep["spec"]["selector"]["matchLabels"].items()))
check("Deployment: runs kinfer serve --config /etc/kinfer/kinfer.conf", c.get("args") == ["serve", "--config", "/etc/kinfer/kinfer.conf"])

# the environment: secrets resolve, names are kinfer's
env = {}
for e in c.get("env", []):
    ref = (e.get("valueFrom") or {}).get("secretKeyRef")
    if ref:
        check("Deployment env %s: Secret %s has key %s" % (e["name"], ref["name"], ref["key"]),
              ref["name"] == "kinfer" and ref["key"] in secret_keys)
        env[e["name"]] = (secret.get("stringData") or {}).get(ref["key"], "x")
    elif "value" in e:
        env[e["name"]] = e["value"]
    else:
        env[e["name"]] = "kinfer-0"
check_env_names("Deployment", env)
check("Deployment: pg.conninfo comes from the Secret (KINFER_PG_CONNINFO)", "KINFER_PG_CONNINFO" in env)

def check_commented_keys(what, text):
    """A commented-out key=value line is a suggestion to the reader: its key must exist too."""
    for k in re.findall(r"^\s*#([a-z][a-z0-9.\-_]*)=", text, re.M):
        check("%s: the commented-out key %s exists" % (what, k), k in keys or k.startswith("kafka."))


conf_text = cm["data"]["kinfer.conf"]
conf = parse_conf(conf_text)
check_commented_keys("ConfigMap kinfer.conf", conf_text)
load_in_binary("ConfigMap kinfer.conf (+ the Deployment's environment)", conf_text, env)
check("ConfigMap: no secret in the config (pg.conninfo, http.auth.token)",
      "pg.conninfo" not in conf and "http.auth.token" not in conf and "password" not in conf_text)

# HTTP: probes and ports
listen = conf.get("http.listen", "")
m = re.match(r"^(?:(.*):)?(\d+)$", listen)
port = int(m.group(2)) if m else -1
check("ConfigMap: http.listen serves the pod's interfaces (%s)" % listen, m and m.group(1) in ("0.0.0.0", "[::]"))
ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
check("Deployment: container port 'http' = http.listen's port %d" % port, ports.get("http") == port, ports)
http_src = ""
for f in os.listdir(os.path.join(SRC, "src", "http")):
    http_src += open(os.path.join(SRC, "src", "http", f)).read()
for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
    g = (c.get(probe) or {}).get("httpGet") or {}
    check("Deployment: %s GET %s on port http" % (probe, path), g.get("path") == path and g.get("port") in ("http", port), g)
    check("src/http serves %s" % path, '"%s"' % path in http_src)
check("src/http serves /metrics", '"/metrics"' in http_src)
grace = pod.get("terminationGracePeriodSeconds", 30)
sto = int(conf.get("shutdown.timeout.ms", keys.get("shutdown.timeout.ms", ("30000",))[0]))
check("Deployment: terminationGracePeriodSeconds %d s > shutdown.timeout.ms %d ms" % (grace, sto), grace * 1000 > sto)
sc = pod.get("securityContext", {})
check("Deployment: runAsNonRoot with the image's uid %s" % uid, sc.get("runAsNonRoot") is True and str(sc.get("runAsUser")) == uid)
check("Deployment: readOnlyRootFilesystem, no privilege escalation",
      c.get("securityContext", {}).get("readOnlyRootFilesystem") is True
      and c.get("securityContext", {}).get("allowPrivilegeEscalation") is False)

# files the config names are mounted
vols = {v["name"]: v for v in pod.get("volumes", [])}
mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}


def mounted(path):
    """The volume that provides path (a file, or a file in a mounted directory)."""
    for mp, m in mounts.items():
        if path == mp or path.startswith(mp.rstrip("/") + "/"):
            return vols.get(m["name"]), path[len(mp):].lstrip("/"), m
    return None, None, None


v, _, m = mounted("/etc/kinfer/kinfer.conf")
check("Deployment: /etc/kinfer/kinfer.conf is the ConfigMap's kinfer.conf",
      v and v.get("configMap", {}).get("name") == "kinfer-config" and m.get("subPath") == "kinfer.conf")
v, _, _ = mounted(conf["input.schemas.dir"])
check("Deployment: input.schemas.dir %s is the schema ConfigMap" % conf["input.schemas.dir"],
      v and v.get("configMap", {}).get("name") == "kinfer-schemas")
tok = conf.get("http.auth.token.file")
v, name, _ = mounted(tok or "/nonexistent")
items = {i["path"]: i["key"] for i in (v or {}).get("secret", {}).get("items", [])}
check("Deployment: http.auth.token.file %s is the Secret's key" % tok,
      v and v.get("secret", {}).get("secretName") == "kinfer" and items.get(name) in secret_keys)
with open(os.path.join(SRC, "schemas", "text_record.avsc")) as f:
    want_schema = json.load(f)
check("ConfigMap kinfer-schemas: 1.avsc is schemas/text_record.avsc",
      json.loads(cm_schemas["data"]["1.avsc"]) == want_schema)
for sid in ("output.schema.id", "output.dlq.schema.id"):
    check("ConfigMap: %s is set for avro-confluent output" % sid,
          conf.get("output.format") != "avro-confluent" or int(conf.get(sid, "0")) > 0)

# Service, PodMonitor
sp = svc["spec"]["ports"][0]
check("Service: selects the worker pods", svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"])
check("Service: targets the container port http", sp.get("targetPort") in ("http", port))
ep = pm["spec"]["podMetricsEndpoints"][0]
check("PodMonitor: selects the worker pods", pm["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"])
check("PodMonitor: GET /metrics on port http", ep.get("port") == "http" and ep.get("path") == "/metrics")
cred = ((ep.get("authorization") or {}).get("credentials") or {})
check("PodMonitor: sends the bearer token of the Secret",
      not tok or (cred.get("name") == "kinfer" and cred.get("key") in secret_keys and cred.get("key") == items.get(name)))

# the migration Job
jc = job["spec"]["template"]["spec"]["containers"][0]
jenv = {e["name"]: e for e in jc.get("env", [])}
check("Job: runs kinfer migrate", jc.get("args", [None])[0] == "migrate")
for a in jc.get("args", []):
    for var in re.findall(r"\$\(([A-Z0-9_]+)\)", a):
        ref = (jenv.get(var, {}).get("valueFrom") or {}).get("secretKeyRef") or {}
        check("Job: $(%s) is defined from the Secret" % var, ref.get("name") == "kinfer" and ref.get("key") in secret_keys)
check("Job: the same image as the Deployment", jc.get("image") == c.get("image"))
check("Job: restartPolicy OnFailure or Never", job["spec"]["template"]["spec"].get("restartPolicy") in ("OnFailure", "Never"))
mig = subprocess.run([K, "migrate", "--help"], capture_output=True, text=True)
check("kinfer migrate takes --pg", "--pg CONNINFO" in mig.stdout + mig.stderr)

# KEDA
t = so["spec"]["triggers"][0]
md = t.get("metadata", {})
check("KEDA: scales the Deployment kinfer", so["spec"]["scaleTargetRef"].get("name") == "kinfer"
      and so["spec"]["scaleTargetRef"].get("kind", "Deployment") == "Deployment")
check("KEDA: kafka trigger on the worker group's lag", t.get("type") == "kafka"
      and md.get("consumerGroup") == conf.get("kafka.group.id")
      and md.get("topic") == conf.get("input.topic")
      and md.get("bootstrapServers") == conf.get("kafka.bootstrap.servers"), md)
check("KEDA: lagThreshold is a positive integer", str(md.get("lagThreshold", "")).isdigit() and int(md["lagThreshold"]) > 0)
check("KEDA: no more replicas than partitions (allowIdleConsumers false)", str(md.get("allowIdleConsumers")) == "false")
check("KEDA: 1 <= minReplicaCount <= maxReplicaCount",
      1 <= so["spec"].get("minReplicaCount", 0) <= so["spec"].get("maxReplicaCount", 0))

# ---- compose --------------------------------------------------------------------------------
comp = docs["deploy/compose.yaml"][0]
svcs = comp["services"]
for need in ("kafka", "postgres", "migrate", "kinfer"):
    check("compose: has service %s" % need, need in svcs)
check("compose: Kafka runs KRaft (broker,controller, no ZooKeeper)",
      "controller" in svcs["kafka"]["environment"].get("KAFKA_PROCESS_ROLES", "")
      and not any("ZOOKEEPER" in k for k in svcs["kafka"]["environment"]))
check("compose: migrate runs `kinfer migrate` once", svcs["migrate"].get("command") == ["migrate"]
      and svcs["migrate"].get("restart") == "no")
b = svcs["migrate"].get("build", {})
check("compose: builds deploy/Dockerfile from the repository root",
      os.path.normpath(os.path.join(DEPLOY, b.get("context", "."))) == os.path.normpath(SRC)
      and b.get("dockerfile") == "deploy/Dockerfile")
kdeps = svcs["kinfer"].get("depends_on", {})
check("compose: kinfer serve starts after the migration (and the first model)",
      any(svcs.get(d, {}).get("depends_on", {}).get("migrate", {}).get("condition") == "service_completed_successfully"
          or d == "migrate" for d in kdeps))
for name, s in svcs.items():
    for v in s.get("volumes", []):
        srcp = v.split(":")[0]
        if srcp.startswith("."):
            check("compose %s: volume source %s exists" % (name, srcp), os.path.exists(os.path.join(DEPLOY, srcp)))
    if name in ("migrate", "model-init", "kinfer"):
        check("compose %s: the manifests' image tag" % name, s.get("image") == c.get("image"))
cenv = {k: str(v) for k, v in svcs["kinfer"].get("environment", {}).items()}
check_env_names("compose kinfer", cenv)
cconf_text = open(os.path.join(DEPLOY, "compose", "kinfer.conf")).read()
check_commented_keys("deploy/compose/kinfer.conf", cconf_text)
load_in_binary("deploy/compose/kinfer.conf (+ compose's environment)", cconf_text, cenv)
check("compose: schema id 1 is schemas/text_record.avsc",
      "../schemas/text_record.avsc:" + parse_conf(cconf_text)["input.schemas.dir"] + "/1.avsc:ro" in svcs["kinfer"]["volumes"])
cl = parse_conf(cconf_text).get("http.listen", "")
published = [p for p in svcs["kinfer"].get("ports", []) if str(p).endswith(":" + cl.rsplit(":", 1)[-1])]
check("compose: the http.listen port %s is published on the host's loopback" % cl,
      published and all(str(p).startswith("127.0.0.1:") for p in published))

# ---- the real server with the ConfigMap's configuration -------------------------------------
# HTTP-only mode: no Kafka, no PostgreSQL; a model trained from the bundled sample; loopback
# with a free port instead of 0.0.0.0:8080; the token file written here
tmp = tempfile.mkdtemp(prefix="kinfer-test-deploy.")
model = os.path.join(tmp, "m.kinf")
tr = subprocess.run([K, "train", "--input", os.path.join(SRC, "tests", "data", "sections-train.tsv"),
                     "--output", model, "--epoch", "2"], capture_output=True, text=True)
check("train a model for the HTTP check", tr.returncode == 0, tr.stderr[-300:])
with open(os.path.join(tmp, "token"), "w") as f:
    f.write("t0ken\n")
s = socket.socket()
s.bind(("127.0.0.1", 0))
free = s.getsockname()[1]
s.close()
conf_local = conf_text + "\nhttp.listen=127.0.0.1:%d\nhttp.auth.token.file=%s\nmodel.path=%s\ndeployment=\n" % (
    free, os.path.join(tmp, "token"), model)
with open(os.path.join(tmp, "k.conf"), "w") as f:
    f.write(conf_local)
log = open(os.path.join(tmp, "serve.log"), "w")
proc = subprocess.Popen([K, "serve", "--http-only", "--config", os.path.join(tmp, "k.conf")],
                        stdout=log, stderr=log, env={k: v for k, v in os.environ.items() if not k.startswith("KINFER_")})


def get(path, token=None, body=None):
    """The status of GET path (POST body when given), or None when nothing answers."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (free, path), data=body)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


try:
    deadline = time.monotonic() + 60
    st = None
    while time.monotonic() < deadline and proc.poll() is None:
        st = get("/readyz")
        if st == 200:
            break
        time.sleep(0.2)
    check("kinfer serve --http-only with the ConfigMap's config: /readyz 200", st == 200,
          "status %s; log: %s" % (st, open(os.path.join(tmp, "serve.log")).read()[-400:]))
    check("... /healthz 200 without a token (the liveness probe)", get("/healthz") == 200)
    # the token file the Secret provides guards the API (the PodMonitor sends the same token)
    body = json.dumps({"text": "a python module for parsing yaml files"}).encode()
    check("... POST /v1/classify 401 without the token", get("/v1/classify", body=body) == 401)
    check("... POST /v1/classify 200 with the token", get("/v1/classify", "t0ken", body) == 200)
finally:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()
    if not failed:
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)
    else:
        print("# files kept in " + tmp, file=sys.stderr)
finish()
