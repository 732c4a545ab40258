"""Kubernetes manifests and the container image, checked without a cluster.

- Every overlay under k8s/overlays (and the base) is rendered with kustomize
  and every object is validated strictly (unknown fields rejected) against
  the Kubernetes 1.29 OpenAPI schemas that the pinned kubernetes-validate
  wheel carries; the validation runs with the network blocked.
- Cross-references: selectors against pod labels, Service/probe/NetworkPolicy
  ports against container ports (number or name), ConfigMap/Secret names and
  keys, volumes and mounts, HPA/PDB targets, StatefulSet serviceName; and a
  small NetworkPolicy evaluator checks who may reach the service and MongoDB.
- The Dockerfile: its build stage is executed (the COPYs over a context
  filtered by .dockerignore, then the cmake RUN), its runtime packages cover
  every library the binaries link (readelf + dpkg), and they exist in the
  Debian release (apt-cache).
- The image's entrypoint and the gateway's command are run from
  EVENTS_BIN_DIR with exactly the environment a pod gets (image ENV, then
  envFrom ConfigMaps, then env), mounted Secrets materialised as files, the
  store replaced by a temporary SQLite file and listen ports by free ones;
  then the manifests' own probes are performed as the kubelet would (gRPC
  health, HTTP GET), the Prometheus annotations are scraped, and SIGTERM must
  end both within the pod's termination grace period.
"""
import base64
import functools
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

import grpc
import kubernetes_validate
import pytest
import requests
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = os.environ.get("EVENTS_SOURCE_DIR",
                      os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN = os.environ.get("EVENTS_BIN_DIR", os.path.join(ROOT, "build", "bin"))
K8S = os.path.join(ROOT, "k8s")
DOCKERFILE = os.path.join(ROOT, "Dockerfile")
KUBERNETES_VERSION = "1.29.0"

OVERLAYS = sorted(d for d in os.listdir(os.path.join(K8S, "overlays"))
                  if os.path.isfile(os.path.join(K8S, "overlays", d, "kustomization.yaml")))
TARGETS = ["base"] + [f"overlays/{o}" for o in OVERLAYS]

# Secrets an overlay expects to exist in the cluster (created out of band,
# documented in k8s/README.md) instead of rendering them: name -> keys.
TLS_KEYS = {"tls.crt", "tls.key", "ca.crt"}
EXTERNAL_SECRETS = {
    "production": {"events-credentials": {"credentials"}, "events-mongodb": {"uri"},
                   "events-service-tls": TLS_KEYS, "events-gateway-tls": TLS_KEYS},
}


def _make_tls():
    """A CA, the service's certificate (its two Service names) and the
    gateway's client certificate, as the Secrets' keys, made with openssl."""
    d = tempfile.mkdtemp(prefix="k8s-tls-")

    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-x509", *ec, "-days", "2", "-subj", "/CN=k8s-test-ca", "-keyout", "ca.key",
        "-out", "ca.crt")
    for name, san in (("service", "DNS:events-service,DNS:events-service-headless"),
                      ("gateway", "DNS:events-gateway")):
        run("req", *ec, "-subj", f"/CN=events-{name}", "-addext", f"subjectAltName={san}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-copy_extensions", "copy", "-out", f"{name}.crt")
    read = lambda f: open(os.path.join(d, f)).read()  # noqa: E731
    out = {}
    for name in ("service", "gateway"):
        out[(f"events-{name}-tls", "tls.crt")] = read(f"{name}.crt")
        out[(f"events-{name}-tls", "tls.key")] = read(f"{name}.key")
        out[(f"events-{name}-tls", "ca.crt")] = read("ca.crt")
    shutil.rmtree(d)
    return out


# Content the runtime test mounts for an external Secret key.
EXTERNAL_SAMPLE = {
    ("events-credentials", "credentials"): "# sample\nops bearer sk:k8s-test-token\n",
    ("events-mongodb", "uri"): "mongodb://db.invalid:27017/events?replicaSet=rs0&w=majority",
    **_make_tls(),
}
SERVICE, GATEWAY = "events-service", "events-gateway"
GRPC_CLIENT_LABEL = ("events.example/grpc-client", "true")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet")
CLUSTER_SCOPED = ("Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume",
                  "StorageClass", "PriorityClass")


# ---------------------------------------------------------------- rendering

def kustomize_bin():
    found = shutil.which("kustomize")
    if found:
        return found
    try:
        gopath = subprocess.run(["go", "env", "GOPATH"], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        gopath = os.path.expanduser("~/go")
    path = os.path.join(gopath, "bin", "kustomize")
    if not os.access(path, os.X_OK):
        pytest.fail("kustomize is not installed: run scripts/deps.sh")
    return path


@functools.lru_cache(maxsize=None)
def render(target):
    out = subprocess.run([kustomize_bin(), "build", os.path.join(K8S, target)],
                         capture_output=True, text=True)
    assert out.returncode == 0, f"kustomize build {target} failed:\n{out.stderr}"
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert docs, f"{target} renders nothing"
    return docs


def overlay_name(target):
    return target.split("/")[-1]


class Rendered:
    """Index of one rendered target."""

    def __init__(self, target):
        self.target = target
        self.name = overlay_name(target)
        self.docs = render(target)
        self.objs = {}
        for d in self.docs:
            key = (d["kind"], d["metadata"]["name"])
            assert key not in self.objs, f"{target}: duplicate {key}"
            self.objs[key] = d
        self.external = EXTERNAL_SECRETS.get(self.name, {})

    def of(self, kind):
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind, name):
        return self.objs.get((kind, name))

    def workloads(self):
        return [d for d in self.docs if d["kind"] in WORKLOAD_KINDS]

    def pods(self):
        """(workload, pod template metadata labels, pod spec) of each workload."""
        return [(w, w["spec"]["template"]["metadata"].get("labels", {}), w["spec"]["template"]["spec"])
                for w in self.workloads()]

    def workload(self, name):
        ws = [w for w in self.workloads() if w["metadata"]["name"] == name]
        assert len(ws) == 1, f"{self.target}: no single workload {name}"
        return ws[0]

    def container(self, name):
        spec = self.workload(name)["spec"]["template"]["spec"]
        return spec, next(c for c in spec["containers"] if c["name"] == name)

    def config_data(self, kind, name):
        """Keys -> values of a ConfigMap or Secret (decoded), None if absent."""
        obj = self.get(kind, name)
        if obj is None:
            if kind == "Secret" and name in self.external:
                return {k: EXTERNAL_SAMPLE.get((name, k), "sample") for k in self.external[name]}
            return None
        data = dict(obj.get("data") or {})
        if kind == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in data.items()}
        data.update(obj.get("stringData") or {})
        return data

    def namespace(self):
        ns = {d["metadata"].get("namespace") for d in self.docs if d["kind"] not in CLUSTER_SCOPED}
        assert len(ns) == 1, f"{self.target}: objects in several namespaces {ns}"
        return ns.pop()


@functools.lru_cache(maxsize=None)
def rendered(target):
    return Rendered(target)


def selects(selector, labels):
    """Kubernetes label selector semantics (matchLabels + matchExpressions)."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, vals = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(key) not in vals:
            return False
        if op == "NotIn" and labels.get(key) in vals:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def container_ports(spec):
    ports = []
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        for p in c.get("ports") or []:
            ports.append((c["name"], p.get("name"), p["containerPort"], p.get("protocol", "TCP")))
    return ports


def resolve_port(port, container):
    """A probe/target port (number or name) -> the container's port number."""
    for p in container.get("ports") or []:
        if port == p.get("name") or port == p["containerPort"]:
            return p["containerPort"]
    return None


# ---------------------------------------------------------- schema validation

@pytest.fixture
def no_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("schema validation tried to use the network")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_overlays_present():
    assert {"dev", "production"} <= set(OVERLAYS)


def test_external_secrets_are_documented():
    """A Secret an overlay does not render must be explained to operators."""
    with open(os.path.join(K8S, "README.md")) as f:
        readme = f.read()
    for overlay, secrets in EXTERNAL_SECRETS.items():
        assert overlay in OVERLAYS
        for name, keys in secrets.items():
            assert rendered(f"overlays/{overlay}").get("Secret", name) is None
            assert f"create secret generic {name}" in readme, f"k8s/README.md: how to create {name}"
            for key in keys:
                # The kubectl line, continued with backslash-newlines.
                assert re.search(rf"create secret generic {name}(?:[^\n]|\\\n)*?\b{key}=", readme), \
                    f"k8s/README.md: key {key} of {name}"


@pytest.mark.parametrize("target", TARGETS)
def test_schemas_strict_offline(target, no_network):
    docs = render(target)
    for d in docs:
        try:
            version = kubernetes_validate.validate(d, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError as e:
            pytest.fail(f"{target}: no {KUBERNETES_VERSION} schema for {d['kind']} {d['apiVersion']}: {e.message}")
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            pytest.fail(f"{target}: {d['kind']}/{d['metadata']['name']}: {path}: {e.message}")
        assert version == "1.29"


def test_strict_validation_catches_mistakes(no_network):
    """The validator really is strict: a misspelt field or a wrong type fails."""
    dep = next(d for d in render("overlays/dev") if d["kind"] == "Deployment")
    typo = json.loads(json.dumps(dep))
    typo["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, KUBERNETES_VERSION, strict=True)
    wrong = json.loads(json.dumps(dep))
    wrong["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "30"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, KUBERNETES_VERSION, strict=True)


# ------------------------------------------------------------ cross-references

@pytest.mark.parametrize("target", TARGETS[1:])
def test_cross_references(target):
    r = rendered(target)
    errors = []
    ns = r.namespace()
    if not r.get("Namespace", ns):
        errors.append(f"namespace {ns} is not rendered")
    for w, labels, spec in r.pods():
        wn = f"{w['kind']}/{w['metadata']['name']}"
        if w["kind"] != "Job" and not selects(w["spec"].get("selector"), labels):
            errors.append(f"{wn}: selector does not match its pod labels")
        sa = spec.get("serviceAccountName", "default")
        if sa != "default" and not r.get("ServiceAccount", sa):
            errors.append(f"{wn}: ServiceAccount {sa} missing")
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        claims = {c["metadata"]["name"] for c in w["spec"].get("volumeClaimTemplates") or []}
        for v in volumes.values():
            for kind, field, ref in (("ConfigMap", "configMap", "name"), ("Secret", "secret", "secretName")):
                if field in v:
                    data = r.config_data(kind, v[field][ref])
                    if data is None:
                        errors.append(f"{wn}: volume {v['name']}: {kind} {v[field][ref]} missing")
                        continue
                    for item in v[field].get("items") or []:
                        if item["key"] not in data:
                            errors.append(f"{wn}: volume {v['name']}: key {item['key']} missing")
            if "persistentVolumeClaim" in v and not r.get("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"]):
                errors.append(f"{wn}: PVC {v['persistentVolumeClaim']['claimName']} missing")
        for c in spec["containers"] + spec.get("initContainers", []):
            cn = f"{wn}/{c['name']}"
            for m in c.get("volumeMounts") or []:
                if m["name"] not in volumes and m["name"] not in claims:
                    errors.append(f"{cn}: mount {m['name']} has no volume")
            for ef in c.get("envFrom") or []:
                for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    if field in ef and not ef[field].get("optional") and r.config_data(kind, ef[field]["name"]) is None:
                        errors.append(f"{cn}: envFrom {kind} {ef[field]['name']} missing")
            for e in c.get("env") or []:
                vf = e.get("valueFrom") or {}
                for kind, field in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                    if field in vf and not vf[field].get("optional"):
                        data = r.config_data(kind, vf[field]["name"])
                        if data is None or vf[field]["key"] not in data:
                            errors.append(f"{cn}: env {e['name']}: {kind} {vf[field]['name']}/{vf[field]['key']} missing")
            for probe_name in ("startupProbe", "livenessProbe", "readinessProbe"):
                probe = c.get(probe_name)
                if not probe:
                    continue
                for handler in ("httpGet", "tcpSocket", "grpc"):
                    if handler in probe and resolve_port(probe[handler]["port"], c) is None:
                        errors.append(f"{cn}: {probe_name} port {probe[handler]['port']} is not a container port")
    for svc in r.of("Service"):
        sn = f"Service/{svc['metadata']['name']}"
        sel = svc["spec"].get("selector")
        if not sel:
            errors.append(f"{sn}: no selector")
            continue
        matched = [(w, spec) for w, labels, spec in r.pods() if selects({"matchLabels": sel}, labels)]
        if not matched:
            errors.append(f"{sn}: selector {sel} matches no pod template")
        for w, spec in matched:
            for p in svc["spec"]["ports"]:
                tp = p.get("targetPort", p["port"])
                if not any(resolve_port(tp, c) for c in spec["containers"]):
                    errors.append(f"{sn}: port {p.get('name')} targetPort {tp} not on {w['metadata']['name']}")
    for sts in r.of("StatefulSet"):
        svc = r.get("Service", sts["spec"]["serviceName"])
        if not svc or svc["spec"].get("clusterIP") != "None" or \
                not selects({"matchLabels": svc["spec"]["selector"]}, sts["spec"]["template"]["metadata"]["labels"]):
            errors.append(f"StatefulSet/{sts['metadata']['name']}: serviceName is not a headless Service of its pods")
    for hpa in r.of("HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        target = r.get(ref["kind"], ref["name"])
        hn = f"HPA/{hpa['metadata']['name']}"
        if not target or target["apiVersion"] != ref.get("apiVersion", target["apiVersion"]):
            errors.append(f"{hn}: target {ref} missing")
            continue
        if hpa["spec"].get("minReplicas", 1) > hpa["spec"]["maxReplicas"]:
            errors.append(f"{hn}: minReplicas > maxReplicas")
        if "replicas" in target["spec"]:
            errors.append(f"{hn}: {ref['name']} sets replicas, which every apply would fight the HPA over")
        for m in hpa["spec"].get("metrics") or []:
            if m["type"] == "Resource" and m["resource"]["target"]["type"] == "Utilization":
                res = m["resource"]["name"]
                for c in target["spec"]["template"]["spec"]["containers"]:
                    if res not in (c.get("resources") or {}).get("requests", {}):
                        errors.append(f"{hn}: {c['name']} has no {res} request to compute utilization")
    for pdb in r.of("PodDisruptionBudget"):
        matched = [w for w, labels, _ in r.pods() if selects(pdb["spec"]["selector"], labels)]
        if len(matched) != 1 or matched[0]["kind"] == "Job":
            errors.append(f"PDB/{pdb['metadata']['name']}: selects {len(matched)} workloads")
    for np_ in r.of("NetworkPolicy"):
        nn = f"NetworkPolicy/{np_['metadata']['name']}"
        targets = [spec for _, labels, spec in r.pods() if selects(np_["spec"]["podSelector"], labels)]
        if not targets:
            errors.append(f"{nn}: podSelector matches no pod")
        names = {name for spec in targets for _, name, _, _ in container_ports(spec) if name}
        for rule in np_["spec"].get("ingress") or []:
            for p in rule.get("ports") or []:
                if isinstance(p.get("port"), str) and p["port"] not in names:
                    errors.append(f"{nn}: ingress port {p['port']} is not a port name of its pods")
            for peer in rule.get("from") or []:
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    if not any(selects(peer["podSelector"], labels) for _, labels, _ in r.pods()):
                        errors.append(f"{nn}: from {peer['podSelector']} matches no pod of {ns}")
        for rule in np_["spec"].get("egress") or []:
            for peer in rule.get("to") or []:
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    if not any(selects(peer["podSelector"], labels) for _, labels, _ in r.pods()):
                        errors.append(f"{nn}: to {peer['podSelector']} matches no pod of {ns}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("target", TARGETS[1:])
def test_security_and_resources(target):
    r = rendered(target)
    errors = []
    for w, _, spec in r.pods():
        wn = f"{w['kind']}/{w['metadata']['name']}"
        psc = spec.get("securityContext") or {}
        if psc.get("runAsNonRoot") is not True or (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            errors.append(f"{wn}: pod securityContext needs runAsNonRoot and seccompProfile RuntimeDefault")
        if psc.get("runAsUser", 1) == 0:
            errors.append(f"{wn}: runs as root")
        if spec.get("automountServiceAccountToken") is not False:
            sa = r.get("ServiceAccount", spec.get("serviceAccountName", "default"))
            if not sa or sa.get("automountServiceAccountToken") is not False:
                errors.append(f"{wn}: mounts a service account token")
        for c in spec["containers"] + spec.get("initContainers", []):
            cn = f"{wn}/{c['name']}"
            sc = c.get("securityContext") or {}
            want = {"runAsNonRoot": True, "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False}
            for k, v in want.items():
                if sc.get(k) is not v:
                    errors.append(f"{cn}: securityContext.{k} must be {v}")
            if (sc.get("capabilities") or {}).get("drop") != ["ALL"] or (sc.get("capabilities") or {}).get("add"):
                errors.append(f"{cn}: capabilities must drop ALL and add none")
            if (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
                errors.append(f"{cn}: seccompProfile RuntimeDefault")
            res = c.get("resources") or {}
            for kind in ("requests", "limits"):
                for name in ("cpu", "memory"):
                    if name not in (res.get(kind) or {}):
                        errors.append(f"{cn}: no {kind}.{name}")
            for name in ("cpu", "memory"):
                try:
                    if quantity(res["requests"][name]) > quantity(res["limits"][name]):
                        errors.append(f"{cn}: {name} request above its limit")
                except KeyError:
                    pass
            mounts = {m["mountPath"] for m in c.get("volumeMounts") or []}
            if "/tmp" not in mounts:
                errors.append(f"{cn}: read-only root without a writable /tmp")
    assert not errors, "\n".join(errors)


def quantity(q):
    q = str(q)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    for u, f in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if q.endswith(u):
            return float(q[:-len(u)]) * f
    return float(q)


def effective_env(r, container, image_env=None):
    """Environment of a container as the kubelet builds it (no secrets
    decoding needed beyond config_data): image ENV < envFrom < env."""
    env = dict(image_env or {})
    for ef in container.get("envFrom") or []:
        if "configMapRef" in ef:
            env.update(r.config_data("ConfigMap", ef["configMapRef"]["name"]) or {})
        if "secretRef" in ef:
            env.update(r.config_data("Secret", ef["secretRef"]["name"]) or {})
    sources = {}
    for e in container.get("env") or []:
        if "value" in e:
            env[e["name"]] = e["value"]
        else:
            vf = e["valueFrom"]
            for kind, field in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                if field in vf:
                    env[e["name"]] = (r.config_data(kind, vf[field]["name"]) or {}).get(vf[field]["key"])
                    sources[e["name"]] = (kind, vf[field]["name"], vf[field]["key"])
    return env, sources


def addr_port(addr):
    host, _, port = addr.rpartition(":")
    return host, int(port)


@pytest.mark.parametrize("target", TARGETS[1:])
def test_service_and_gateway_wiring(target):
    r = rendered(target)
    spec, c = r.container(SERVICE)
    tmpl = r.workload(SERVICE)["spec"]["template"]
    env, sources = effective_env(r, c)
    # gRPC: listen address, container port, native gRPC probes.
    assert env["EVENTS_GRPC_ADDR"] == "0.0.0.0:50051"
    assert resolve_port("grpc", c) == 50051
    for probe in ("livenessProbe", "readinessProbe"):
        if "EVENTS_TLS_CERT" in env:
            # The kubelet's gRPC probe cannot speak TLS: the metrics port's twins.
            assert resolve_port(c[probe]["httpGet"]["port"], c) == 9464
            assert c[probe]["httpGet"]["path"] == ("/healthz" if probe == "livenessProbe" else "/readyz")
        else:
            assert c[probe]["grpc"]["port"] == 50051, f"{probe} must be a native gRPC probe on 50051"
    # Metrics: own listener on 9464, port named metrics, Prometheus annotations.
    assert env["EVENTS_METRICS_ADDR"] == "0.0.0.0:9464"
    assert resolve_port("metrics", c) == 9464
    ann = tmpl["metadata"].get("annotations") or {}
    assert ann.get("prometheus.io/scrape") == "true"
    assert resolve_port(int(ann["prometheus.io/port"]), c) == 9464
    assert ann.get("prometheus.io/path") == "/metrics"
    # Credentials: a file in a mounted Secret.
    cred = env["EVENTS_CREDENTIALS"]
    mount = next((m for m in c["volumeMounts"] if cred.startswith(m["mountPath"].rstrip("/") + "/")), None)
    assert mount, f"EVENTS_CREDENTIALS={cred} is not under a volume mount"
    vol = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert "secret" in vol and mount.get("readOnly") is True
    rel = cred[len(mount["mountPath"].rstrip("/")) + 1:]
    items = vol["secret"].get("items")
    key = next(i["key"] for i in items if i["path"] == rel) if items else rel
    assert key in r.config_data("Secret", vol["secret"]["secretName"])
    # Store: a MongoDB replica set with majority writes.
    store = env.get("EVENTS_STORE")
    assert store, "EVENTS_STORE is not set"
    if r.name == "production":
        assert sources.get("EVENTS_STORE") == ("Secret", "events-mongodb", "uri"), \
            "production reads EVENTS_STORE from the Secret events-mongodb"
    else:
        u = urllib.parse.urlsplit(store)
        q = urllib.parse.parse_qs(u.query)
        assert u.scheme == "mongodb" and q.get("replicaSet") == ["rs0"] and q.get("w") == ["majority"]
        for hostport in u.netloc.split(","):
            host, port = addr_port(hostport)
            pod, _, svc_name = host.partition(".")
            sts = r.get("StatefulSet", pod.rsplit("-", 1)[0])
            assert sts and sts["spec"]["serviceName"] == svc_name and \
                int(pod.rsplit("-", 1)[1]) < sts["spec"]["replicas"], f"{host} is no StatefulSet pod"
            assert any(resolve_port(port, mc) for mc in sts["spec"]["template"]["spec"]["containers"])
            # The init Job initiates rs0 with exactly this member host.
            scripts = [" ".join(c.get("command", []) + c.get("args", []))
                       for j in r.of("Job") for c in j["spec"]["template"]["spec"]["containers"]]
            assert any("rs.initiate" in s and '_id: "rs0"' in s and f'host: "{hostport}"' in s for s in scripts), \
                f"no Job initiates rs0 with member {hostport}"
    # Gateway: HTTP port, probes, metrics, and a target that is a Service of the service pods.
    gspec, g = r.container(GATEWAY)
    genv, _ = effective_env(r, g)
    assert genv["EVENTS_HTTP_ADDR"] == "0.0.0.0:8080" and resolve_port("http", g) == 8080
    assert g["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert g["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe"):
        assert resolve_port(g[probe]["httpGet"]["port"], g) == 8080
    gann = r.workload(GATEWAY)["spec"]["template"]["metadata"].get("annotations") or {}
    assert gann.get("prometheus.io/scrape") == "true" and gann.get("prometheus.io/path") == "/metrics"
    assert resolve_port(int(gann["prometheus.io/port"]), g) == 8080
    host, port = addr_port(genv["EVENTS_GRPC_TARGET"].removeprefix("dns:///"))
    svc = r.get("Service", host.split(".")[0])
    assert svc, f"EVENTS_GRPC_TARGET host {host} is not a Service"
    assert selects({"matchLabels": svc["spec"]["selector"]}, tmpl["metadata"]["labels"])
    sp = next(p for p in svc["spec"]["ports"] if p["port"] == port)
    assert resolve_port(sp.get("targetPort", port), c) == 50051


@pytest.mark.parametrize("target", TARGETS[1:])
def test_termination_grace_covers_the_drain(target):
    r = rendered(target)
    for name, drain_var, default in ((SERVICE, "EVENTS_GRACE_MS", 20000), (GATEWAY, "EVENTS_RPC_TIMEOUT_MS", 10000)):
        spec, c = r.container(name)
        env, _ = effective_env(r, c)
        cmd = c["lifecycle"]["preStop"]["exec"]["command"]
        assert os.path.basename(cmd[0]) == "sleep" and os.access(cmd[0], os.X_OK), cmd
        pre = float(cmd[1])
        assert 3 <= pre <= 15, "preStop sleep lets endpoints drop the pod before SIGTERM"
        drain = int(env.get(drain_var, default)) / 1000
        grace = spec["terminationGracePeriodSeconds"]
        assert grace >= pre + drain + 3, f"{name}: grace {grace}s < preStop {pre}s + drain {drain}s + margin"


# ----------------------------------------------------- network policy checks

def _peer_matches(peer, policy_ns, src):
    if src is None:  # outside the cluster
        return "ipBlock" in peer
    if "ipBlock" in peer:
        return peer["ipBlock"]["cidr"] in ("0.0.0.0/0", "::/0")
    ns_sel = peer.get("namespaceSelector")
    if ns_sel is None:
        if src["ns"] != policy_ns:
            return False
    elif not selects(ns_sel, {"kubernetes.io/metadata.name": src["ns"]}):
        return False
    return "podSelector" not in peer or selects(peer["podSelector"], src["labels"])


def _port_matches(rule, port, dst):
    if not rule.get("ports"):
        return True
    for p in rule["ports"]:
        if p.get("protocol", "TCP") != "TCP":
            continue
        want = p.get("port")
        if want is None:
            return True
        if isinstance(want, int) and want <= port <= p.get("endPort", want):
            return True
        if isinstance(want, str) and dst and any(n == want and num == port for _, n, num, _ in container_ports(dst["spec"])):
            return True
    return False


def connection_allowed(r, src, dst, port):
    ns = r.namespace()
    pols = r.of("NetworkPolicy")
    if src is not None and src["ns"] == ns:
        egress = [p for p in pols if "Egress" in p["spec"].get("policyTypes", []) and selects(p["spec"]["podSelector"], src["labels"])]
        if egress and not any(_port_matches(rule, port, dst) and (not rule.get("to") or any(_peer_matches(peer, ns, dst) for peer in rule["to"]))
                              for p in egress for rule in p["spec"].get("egress") or []):
            return False
    if dst is not None and dst["ns"] == ns:
        ingress = [p for p in pols if "Ingress" in p["spec"].get("policyTypes", ["Ingress"]) and selects(p["spec"]["podSelector"], dst["labels"])]
        if ingress and not any(_port_matches(rule, port, dst) and (not rule.get("from") or any(_peer_matches(peer, ns, src) for peer in rule["from"]))
                               for p in ingress for rule in p["spec"].get("ingress") or []):
            return False
    return True


@pytest.mark.parametrize("target", TARGETS[1:])
def test_network_policies(target):
    r = rendered(target)
    ns = r.namespace()
    pods = {w["metadata"]["name"]: {"ns": ns, "labels": labels, "spec": spec} for w, labels, spec in r.pods()}
    service, gateway = pods[SERVICE], pods[GATEWAY]
    other = {"ns": ns, "labels": {"app": "something-else"}, "spec": {"containers": []}}
    client = {"ns": "billing", "labels": dict([GRPC_CLIENT_LABEL, ("app", "billing")]), "spec": {"containers": []}}
    prometheus = {"ns": "monitoring", "labels": {"app.kubernetes.io/name": "prometheus"}, "spec": {"containers": []}}
    ok = lambda s, d, p: connection_allowed(r, s, d, p)  # noqa: E731
    assert ok(gateway, service, 50051)
    assert ok(client, service, 50051)
    assert not ok(other, service, 50051)
    assert not ok({**client, "labels": {"app": "billing"}}, service, 50051)
    assert ok(prometheus, service, 9464) and not ok(other, service, 9464)
    assert ok(None, gateway, 8080) and ok(other, gateway, 8080) and ok(prometheus, gateway, 8080)
    # Only the service reaches MongoDB.
    assert not ok(gateway, None, 27017), "the gateway must not reach an external MongoDB"
    assert ok(service, None, 27017)
    mongo = [p for p in pods.values() if p["labels"].get("app.kubernetes.io/component") == "database"
             and any(num == 27017 for _, _, num, _ in container_ports(p["spec"]))]
    if r.name == "production":
        assert not mongo
    else:
        assert mongo, "dev runs MongoDB in the cluster"
        for m in mongo:
            assert ok(service, m, 27017)
            for src in (gateway, other, client, prometheus):
                assert not ok(src, m, 27017)


# --------------------------------------------------------------- Dockerfile

def parse_dockerfile(path=DOCKERFILE):
    lines, cur = [], ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not cur and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if cur and line.lstrip().startswith("#"):
                continue
            if line.endswith("\\"):
                cur += line[:-1] + " "
                continue
            lines.append(cur + line)
            cur = ""
    stages = []
    for line in lines:
        instr, _, rest = line.strip().partition(" ")
        instr = instr.upper()
        rest = rest.strip()
        if instr == "FROM":
            parts = rest.split()
            stages.append({"from": parts[0], "name": parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else None,
                           "steps": []})
        elif stages:
            stages[-1]["steps"].append((instr, rest))
    return stages


def apt_packages(run):
    pkgs = []
    for part in re.split(r"&&|;", run):
        words = shlex.split(part)
        if "apt-get" in words and "install" in words:
            pkgs += [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    return pkgs


def stage_env(stage):
    env = {}
    for instr, rest in stage["steps"]:
        if instr == "ENV":
            for word in shlex.split(rest):
                k, _, v = word.partition("=")
                env[k] = v
    return env


def exec_form(stage, instr):
    vals = [json.loads(rest) for i, rest in stage["steps"] if i == instr]
    return vals[-1] if vals else None


@functools.lru_cache(maxsize=None)
def image():
    stages = parse_dockerfile()
    build = next(s for s in stages if s["name"] == "build")
    final = stages[-1]
    copies = {}
    for instr, rest in final["steps"]:
        if instr == "COPY" and rest.startswith("--from=build"):
            *srcs, dst = rest.split()[1:]
            for s in srcs:
                copies[os.path.join(dst, os.path.basename(s))] = s
    user = [rest for i, rest in final["steps"] if i == "USER"][-1]
    workdir = [rest for i, rest in final["steps"] if i == "WORKDIR"][-1]
    runtime = [p for i, rest in final["steps"] if i == "RUN" for p in apt_packages(rest)]
    return {"stages": stages, "build": build, "final": final, "copies": copies, "user": user,
            "workdir": workdir, "env": stage_env(final), "entrypoint": exec_form(final, "ENTRYPOINT"),
            "cmd": exec_form(final, "CMD"), "runtime_packages": runtime,
            "build_packages": [p for i, rest in build["steps"] if i == "RUN" for p in apt_packages(rest)]}


def test_dockerfile_shape():
    img = image()
    assert len(img["stages"]) >= 2, "multi-stage"
    for s in img["stages"]:
        assert re.fullmatch(r"debian:bookworm(-slim)?", s["from"]), f"{s['from']} is not Debian bookworm"
    assert img["final"]["from"] == "debian:bookworm-slim"
    uid, _, gid = img["user"].partition(":")
    assert uid.isdigit() and int(uid) != 0 and (not gid or gid.isdigit()), "numeric non-root USER"
    assert img["entrypoint"] == ["/usr/local/bin/events-service"]
    assert set(img["copies"]) == {"/usr/local/bin/events-service", "/usr/local/bin/events-gateway",
                                  "/usr/local/lib/events/events-store-mongo.so"}
    assert not [p for p in img["runtime_packages"] if p.endswith("-dev") or p in ("build-essential", "cmake", "gcc")]
    cmake = " ".join(rest for i, rest in img["build"]["steps"] if i == "RUN" and "cmake" in rest)
    for flag in ("-DEVENTS_TESTS=OFF", "-DEVENTS_SANITIZE=OFF", "-DCMAKE_BUILD_TYPE=RelWithDebInfo"):
        assert flag in cmake
    exposed = {int(p) for i, rest in img["final"]["steps"] if i == "EXPOSE" for p in rest.split()}
    for target in TARGETS[1:]:
        r = rendered(target)
        for name in (SERVICE, GATEWAY):
            spec, c = r.container(name)
            assert spec["securityContext"]["runAsUser"] == int(uid), "pods run as the image's user"
            assert {p["containerPort"] for p in c["ports"]} <= exposed
            cmd = c.get("command") or img["entrypoint"]
            assert cmd[0] in img["copies"], f"{name} runs {cmd[0]}, which the image does not have"


def _needed_packages(binary):
    out = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True).stdout
    libs = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out)
    cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    pkgs = {}
    for lib in libs:
        m = re.search(r"^\s*" + re.escape(lib) + r" \(.*?\) => (\S+)$", cache, re.M)
        assert m, f"{binary}: {lib} is not in the linker cache"
        path = os.path.realpath(m.group(1))
        owner = None
        for candidate in (path, path.replace("/usr/lib/", "/lib/", 1), m.group(1)):
            q = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
            if q.returncode == 0:
                owner = q.stdout.split(":")[0].strip()
                break
        assert owner, f"{binary}: no Debian package owns {lib}"
        pkgs[lib] = owner
    return pkgs


def _installed_closure(pkgs):
    """The packages apt installs for pkgs: their Depends/Pre-Depends,
    recursively, as recorded for the packages installed here."""
    seen, todo = set(), list(pkgs)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        out = subprocess.run(["dpkg-query", "-W", "-f=${Pre-Depends}, ${Depends}", p],
                             capture_output=True, text=True)
        if out.returncode != 0:
            continue
        for dep in out.stdout.split(","):
            for alt in dep.split("|"):
                name = alt.strip().split(" ")[0].split(":")[0]
                if name:
                    todo.append(name)
    return seen


def test_runtime_packages_cover_linked_libraries(image_build):
    """Every library the image's binaries (as its build stage makes them)
    link comes with the runtime stage's packages (named, or pulled in as
    their dependencies)."""
    if not shutil.which("dpkg") or not shutil.which("readelf"):
        pytest.skip("needs dpkg and readelf (Debian)")
    img = image()
    named = set(img["runtime_packages"])
    closure = _installed_closure(named | {"libc6"})
    missing, direct = {}, set()
    for binary in image_build.values():
        for lib, pkg in _needed_packages(binary).items():
            pkg = pkg.split(":")[0]
            direct.add(pkg)
            if pkg not in closure:
                missing[lib] = pkg
    assert not missing, f"runtime stage lacks the packages of {missing}"
    # And the named set is not padded: each is linked or needed at run time.
    unused = named - _installed_closure(direct) - {"ca-certificates"}
    assert not unused, f"runtime stage installs {unused}, which nothing links"


def test_dockerfile_packages_exist_in_bookworm():
    if not shutil.which("apt-cache"):
        pytest.skip("needs apt-cache")
    release = open("/etc/os-release").read()
    if "VERSION_CODENAME=bookworm" not in release:
        pytest.skip("package names are checked on Debian bookworm")
    probe = subprocess.run(["apt-cache", "show", "--no-all-versions", "libc6"], capture_output=True, text=True)
    if probe.returncode != 0 or "Package: libc6" not in probe.stdout:
        pytest.skip("apt lists are not available (run apt-get update)")
    img = image()
    for pkg in img["runtime_packages"] + img["build_packages"]:
        out = subprocess.run(["apt-cache", "show", "--no-all-versions", pkg], capture_output=True, text=True)
        assert out.returncode == 0 and f"Package: {pkg}" in out.stdout, f"{pkg} is not a bookworm package"
    # The runtime libraries are the ones the build's -dev packages link against.
    for pkg in ("libgrpc29", "libprotobuf-c1", "libmicrohttpd12", "libjansson4", "libmongoc-1.0-0",
                "libbson-1.0-0", "libsqlite3-0", "libssl3"):
        assert pkg in img["runtime_packages"]


def _dockerignore():
    pats = []
    with open(os.path.join(ROOT, ".dockerignore")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                neg = line.startswith("!")
                pat = line[1:] if neg else line
                rx = re.escape(pat.strip("/")).replace(r"\*\*", "\0").replace(r"\*", "[^/]*").replace("\0", ".*").replace(r"\?", "[^/]")
                pats.append((neg, re.compile(rx + r"\Z"), pat.strip("/")))
    return pats


def _ignored(rel, pats):
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    result = False
    for neg, rx, _ in pats:
        if any(rx.match(p) for p in prefixes):
            result = not neg
    return result


def build_context(dest):
    """The docker build context: the repository less what .dockerignore drops."""
    pats = _dockerignore()
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = os.path.relpath(dirpath, ROOT)
        rel_dir = "" if rel_dir == "." else rel_dir
        keep = []
        for d in dirnames:
            rel = f"{rel_dir}/{d}" if rel_dir else d
            reincluded = any(neg and (raw == rel or raw.startswith(rel + "/")) for neg, _, raw in pats)
            if not _ignored(rel, pats) or reincluded:
                keep.append(d)
        dirnames[:] = keep
        for fn in filenames:
            rel = f"{rel_dir}/{fn}" if rel_dir else fn
            if not _ignored(rel, pats):
                os.makedirs(os.path.join(dest, rel_dir), exist_ok=True)
                shutil.copy2(os.path.join(dirpath, fn), os.path.join(dest, rel))


def test_dockerignore_keeps_junk_out():
    pats = _dockerignore()
    for rel in ("build/bin/events-service", ".venv/bin/python", ".git/HEAD", "var/events.db", "k8s/base/kustomization.yaml"):
        assert _ignored(rel, pats), rel
    for rel in ("CMakeLists.txt", "proto/CMakeLists.txt", "services/core/main.c"):
        assert not _ignored(rel, pats), rel


@pytest.fixture(scope="module")
def image_build(tmp_path_factory):
    """Runs the build stage the way docker would: each COPY from a context
    filtered by .dockerignore, then each RUN except the apt-get one (whose
    packages must be installed here), in the stage's WORKDIR. Returns the
    image path -> built file of each COPY --from=build."""
    tmp_path = tmp_path_factory.mktemp("image-build")
    img = image()
    for pkg in img["build_packages"]:
        q = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}", pkg], capture_output=True, text=True)
        assert q.stdout == "installed", f"build package {pkg} is not installed here (scripts/deps.sh installs the build set)"
    ctx, fs = tmp_path / "context", tmp_path / "fs"
    ctx.mkdir()
    fs.mkdir()
    build_context(str(ctx))
    cwd = str(fs)
    logs = []
    for instr, rest in img["build"]["steps"]:
        if instr == "WORKDIR":
            cwd = os.path.join(str(fs), rest.lstrip("/")) if rest.startswith("/") else os.path.join(cwd, rest)
            os.makedirs(cwd, exist_ok=True)
        elif instr == "COPY":
            *srcs, dst = shlex.split(rest)
            assert not any(s.startswith("--") for s in srcs), "no flags expected in the build stage's COPY"
            dst_path = os.path.join(str(fs), dst.lstrip("/")) if dst.startswith("/") else os.path.join(cwd, dst)
            for s in srcs:
                src = os.path.join(str(ctx), s)
                assert os.path.exists(src), f"COPY {s}: not in the build context (.dockerignore?)"
                if os.path.isdir(src):
                    shutil.copytree(src, dst_path, dirs_exist_ok=True)
                else:
                    target = os.path.join(dst_path, os.path.basename(s)) if dst.endswith("/") or os.path.isdir(dst_path) else dst_path
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    shutil.copy2(src, target)
        elif instr == "RUN" and "apt-get" not in rest:
            out = subprocess.run(["sh", "-ec", rest], cwd=cwd, capture_output=True, text=True, timeout=1500)
            logs.append(out.stdout[-3000:] + out.stderr[-3000:])
            assert out.returncode == 0, f"RUN {rest}\n{logs[-1]}"
    built = {dst: os.path.join(str(fs), src.lstrip("/")) for dst, src in img["copies"].items()}
    for dst, path in built.items():
        assert os.path.isfile(path) and os.access(path, os.X_OK), f"COPY --from=build {img['copies'][dst]}: not built"
    return built


def test_image_build_stage_builds_both_binaries(image_build):
    """Catches a source directory the Dockerfile forgot to COPY (or
    .dockerignore drops): the build stage must produce both binaries, and
    the service's MongoDB engine module."""
    for dst, path in image_build.items():
        if dst.endswith(".so"):
            syms = subprocess.run(["readelf", "--dyn-syms", "-W", path], capture_output=True, text=True,
                                  check=True).stdout
            assert re.search(r"\bstore_mongo_engine$", syms, re.M), dst
            continue
        help_ = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=30)
        assert help_.returncode == 0 and "EVENTS_" in help_.stderr + help_.stdout, dst


# ------------------------------------------- the image's processes, as pods

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, log, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode}:\n{open(log).read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"port {port} did not open:\n{open(log).read()}")


class Pod:
    """One container of a rendered pod, run from EVENTS_BIN_DIR like the
    image would run it: the image's ENV and WORKDIR, the container's
    envFrom/env, its Secret/ConfigMap/emptyDir volumes as directories under a
    temporary root, listen ports mapped to free local ports."""

    def __init__(self, r, name, root, overrides=None):
        self.r, self.name, self.root = r, name, root
        img = image()
        self.spec, self.c = r.container(name)
        env, _ = effective_env(r, self.c, img["env"])
        # Volumes -> directories; paths in the env are rewritten to them.
        self.paths = {}
        volumes = {v["name"]: v for v in self.spec.get("volumes") or []}
        for m in self.c.get("volumeMounts") or []:
            host = os.path.join(root, name, m["mountPath"].lstrip("/"))
            os.makedirs(host, exist_ok=True)
            v = volumes[m["name"]]
            for kind, field, ref in (("ConfigMap", "configMap", "name"), ("Secret", "secret", "secretName")):
                if field in v:
                    data = r.config_data(kind, v[field][ref])
                    items = v[field].get("items") or [{"key": k, "path": k} for k in data]
                    for it in items:
                        with open(os.path.join(host, it["path"]), "w") as f:
                            f.write(data[it["key"]])
            self.paths[m["mountPath"].rstrip("/")] = host
        for k, val in list(env.items()):
            for mp, host in self.paths.items():
                if isinstance(val, str) and val.startswith(mp + "/"):
                    env[k] = host + val[len(mp):]
        # Listen addresses keep their host (0.0.0.0) and get free ports.
        self.ports = {}
        for k in ("EVENTS_GRPC_ADDR", "EVENTS_HTTP_ADDR", "EVENTS_METRICS_ADDR"):
            if k in env:
                host, port = addr_port(env[k])
                self.ports[port] = free_port()
                env[k] = f"{host}:{self.ports[port]}"
        env.update(overrides or {})
        self.env = env
        cmd = list(self.c.get("command") or img["entrypoint"])
        args = list(self.c.get("args") or ([] if self.c.get("command") else img["cmd"] or []))
        assert cmd[0] in img["copies"], f"{cmd[0]} is not in the image"
        self.argv = [os.path.join(BIN, os.path.basename(cmd[0]))] + cmd[1:] + args
        self.cwd = os.path.join(root, name, img["workdir"].lstrip("/"))
        os.makedirs(self.cwd, exist_ok=True)
        self.log = os.path.join(root, f"{name}.log")
        full = {k: v for k, v in os.environ.items() if not k.startswith("EVENTS_")}
        full.update({k: str(v) for k, v in env.items() if v is not None})
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(self.argv, env=full, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT)

    def local_port(self, port):
        number = resolve_port(port, self.c)
        assert number is not None, f"{self.name}: port {port} is not a container port"
        assert number in self.ports, f"{self.name}: container port {number} is not what the process listens on"
        return self.ports[number]

    def wait(self, port):
        wait_port(self.local_port(port), self.proc, self.log)

    def probe(self, kind, deadline_s=20.0):
        """Performs the container's probe like the kubelet, retrying up to
        deadline_s (startup); returns the last result."""
        p = self.c[kind]
        timeout = p.get("timeoutSeconds", 1)
        end = time.time() + deadline_s
        while True:
            ok, detail = self._probe_once(p, timeout)
            if ok or time.time() > end:
                return ok, detail
            time.sleep(0.2)

    def _probe_once(self, p, timeout):
        if "grpc" in p:
            port = self.local_port(p["grpc"]["port"])
            with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
                try:
                    resp = health_pb2_grpc.HealthStub(ch).Check(
                        health_pb2.HealthCheckRequest(service=p["grpc"].get("service", "")), timeout=timeout)
                except grpc.RpcError as e:
                    return False, f"{e.code()} {e.details()}"
                return resp.status == health_pb2.HealthCheckResponse.SERVING, str(resp.status)
        if "httpGet" in p:
            h = p["httpGet"]
            url = f"{h.get('scheme', 'HTTP').lower()}://127.0.0.1:{self.local_port(h['port'])}{h.get('path', '/')}"
            try:
                resp = requests.get(url, timeout=timeout, allow_redirects=False,
                                    headers={x["name"]: x["value"] for x in h.get("httpHeaders") or []})
            except requests.RequestException as e:
                return False, str(e)
            # The kubelet accepts 200..399; ours answer 200.
            return resp.status_code == 200, f"{resp.status_code} {resp.text[:200]}"
        if "tcpSocket" in p:
            try:
                socket.create_connection(("127.0.0.1", self.local_port(p["tcpSocket"]["port"])), timeout=timeout).close()
                return True, "open"
            except OSError as e:
                return False, str(e)
        raise AssertionError(f"unsupported probe {p}")

    def scrape(self):
        ann = self.r.workload(self.name)["spec"]["template"]["metadata"]["annotations"]
        url = f"http://127.0.0.1:{self.local_port(int(ann['prometheus.io/port']))}{ann['prometheus.io/path']}"
        return requests.get(url, timeout=5)

    def terminate(self):
        """SIGTERM, as the kubelet sends after preStop; must exit 0 within
        what is left of terminationGracePeriodSeconds."""
        pre = float(self.c["lifecycle"]["preStop"]["exec"]["command"][1])
        budget = self.spec["terminationGracePeriodSeconds"] - pre
        start = time.time()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.name} outlived its grace period ({budget}s after preStop)")
        return rc, time.time() - start

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def output(self):
        with open(self.log, errors="replace") as f:
            return f.read()


@pytest.mark.parametrize("target", TARGETS[1:])
def test_pods_start_and_pass_their_probes(target, tmp_path):
    r = rendered(target)
    root = str(tmp_path)
    # EVENTS_STORE -> a temporary SQLite file; everything else as rendered.
    svc = Pod(r, SERVICE, root, {"EVENTS_STORE": "sqlite:" + os.path.join(root, "events.db")})
    gw = None
    try:
        svc.wait("grpc")
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            if kind in svc.c:
                ok, detail = svc.probe(kind)
                assert ok, f"{SERVICE} {kind}: {detail}\n{svc.output()}"
        m = svc.scrape()
        assert m.status_code == 200 and "# TYPE events_" in m.text, m.text[:500]
        # The credentials the pod mounts are the ones the service loaded.
        assert re.search(r'"credentials":\s*[1-9]', svc.output()), svc.output()

        gspec, g = r.container(GATEWAY)
        target_host = r.config_data("ConfigMap", next(
            ef["configMapRef"]["name"] for ef in g["envFrom"] if "configMapRef" in ef))["EVENTS_GRPC_TARGET"]
        assert addr_port(target_host.removeprefix("dns:///"))[1] == 50051
        # The Service name does not resolve here: the target becomes the local service.
        gw = Pod(r, GATEWAY, root, {"EVENTS_GRPC_TARGET": f"127.0.0.1:{svc.local_port('grpc')}"})
        gw.wait("http")
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            if kind in g:
                ok, detail = gw.probe(kind)
                assert ok, f"{GATEWAY} {kind}: {detail}\n{gw.output()}"
        m = gw.scrape()
        assert m.status_code == 200 and "# TYPE events_http_requests_total" in m.text, m.text[:500]

        # SIGTERM (after the preStop sleep): exit 0 within the grace period.
        rc, took = gw.terminate()
        assert rc == 0, gw.output()
        rc, took = svc.terminate()
        assert rc == 0, svc.output()
    finally:
        for p in (gw, svc):
            if p:
                p.kill()


def test_dev_store_uri_is_accepted(tmp_path):
    """The dev overlay's literal EVENTS_STORE (no MongoDB here: the service
    starts anyway and calls fail UNAVAILABLE until the replica set is up)."""
    r = rendered("overlays/dev")
    svc = Pod(r, SERVICE, str(tmp_path))
    try:
        svc.wait("grpc")
        ok, detail = svc.probe("livenessProbe")
        assert ok, detail
        assert '"store":"mongodb"' in svc.output().replace(" ", "")
        rc, _ = svc.terminate()
        assert rc == 0, svc.output()
    finally:
        svc.kill()
