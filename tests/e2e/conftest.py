"""Fixtures for the end-to-end suites: real processes on free loopback ports.

The service and gateway binaries come from EVENTS_BIN_DIR (set by ctest);
FerretDB (the MongoDB-wire test server) is started per session when a test
asks for the mongodb store. Python stubs are generated from proto/ with
grpc_tools, so the gRPC client is independent of the C code.
"""
import base64
import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import grpc
import pytest
import requests

ROOT = os.environ.get("EVENTS_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN = os.environ.get("EVENTS_BIN_DIR", os.path.join(ROOT, "build", "bin"))

TOKEN_A = "sk:tenant-a-secret"
TOKEN_B = "sk:tenant-b-secret"
BASIC_A = ("crm", "s3cret")
CREDENTIALS = f"""# tenant scheme secret
tenant-a bearer {TOKEN_A}
tenant-a basic  {BASIC_A[0]}:{BASIC_A[1]}
tenant-b bearer {TOKEN_B}
"""


def auth_a():
    return {"Authorization": f"Bearer {TOKEN_A}"}


def auth_b():
    return {"Authorization": f"Bearer {TOKEN_B}"}


def basic_a():
    raw = f"{BASIC_A[0]}:{BASIC_A[1]}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


def stop(proc, timeout=30):
    """SIGTERM, then the exit status (which must be 0 for our processes)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("process did not stop on SIGTERM")
    return proc.returncode


class Process:
    def __init__(self, argv, env, log_path):
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self):
        rc = stop(self.proc)
        self.log.close()
        return rc

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


@pytest.fixture(scope="session")
def workdir():
    d = tempfile.mkdtemp(prefix="events-e2e-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def credentials_file(workdir):
    path = os.path.join(workdir, "credentials")
    with open(path, "w") as f:
        f.write(CREDENTIALS)
    return path


class FerretDB:
    def __init__(self, workdir):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="ferretdb-", dir=workdir)
        self.proc = None
        self.start()

    def start(self):
        self.log = open(os.path.join(self.dir, "ferretdb.log"), "ab")
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "events-ferretdb"), "-addr", f"127.0.0.1:{self.port}", "-dir", self.dir],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc)

    def stop(self):
        stop(self.proc)
        self.log.close()

    @property
    def url(self):
        return f"mongodb://127.0.0.1:{self.port}/events"


@pytest.fixture(scope="session")
def ferretdb(workdir):
    f = FerretDB(workdir)
    yield f
    f.stop()


class Stack:
    """events-service + events-gateway on free ports."""

    def __init__(self, workdir, credentials, store_url, name, gateway_env=None):
        self.workdir = workdir
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.metrics_port = free_port()
        self.store_url = store_url
        env = dict(os.environ)
        env.update({
            "EVENTS_GRPC_ADDR": f"127.0.0.1:{self.grpc_port}",
            "EVENTS_STORE": store_url,
            "EVENTS_CREDENTIALS": credentials,
            "EVENTS_LOG_LEVEL": "warn",
            "EVENTS_METRICS_ADDR": f"127.0.0.1:{self.metrics_port}",
        })
        self.service = Process([os.path.join(BIN, "events-service")], env,
                               os.path.join(workdir, f"{name}-service.log"))
        wait_port(self.grpc_port, self.service.proc)
        genv = dict(os.environ)
        genv.update({
            "EVENTS_HTTP_ADDR": f"127.0.0.1:{self.http_port}",
            "EVENTS_GRPC_TARGET": f"127.0.0.1:{self.grpc_port}",
            "EVENTS_LOG_LEVEL": "warn",
        })
        genv.update(gateway_env or {})
        self.gateway = Process([os.path.join(BIN, "events-gateway")], genv,
                               os.path.join(workdir, f"{name}-gateway.log"))
        wait_port(self.http_port, self.gateway.proc)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}")
        self.http = requests.Session()

    @property
    def base(self):
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self):
        return f"127.0.0.1:{self.grpc_port}"

    def stop(self):
        self.channel.close()
        self.http.close()
        rcs = (self.gateway.stop(), self.service.stop())
        return rcs


def _store_url(kind, workdir, request):
    if kind == "sqlite":
        return "sqlite:" + os.path.join(tempfile.mkdtemp(dir=workdir), "events.db")
    fdb = request.getfixturevalue("ferretdb")
    db = "e2e" + str(free_port())
    return f"mongodb://127.0.0.1:{fdb.port}/{db}"


@pytest.fixture(scope="module", params=["sqlite", "mongodb"])
def stack(request, workdir, credentials_file):
    s = Stack(workdir, credentials_file, _store_url(request.param, workdir, request),
              f"{request.module.__name__}-{request.param}")
    s.kind = request.param
    yield s
    rcs = s.stop()
    assert rcs == (0, 0), f"exit statuses {rcs}\n{s.service.output()}\n{s.gateway.output()}"


@pytest.fixture(scope="module")
def sqlite_stack(request, workdir, credentials_file):
    s = Stack(workdir, credentials_file, _store_url("sqlite", workdir, request),
              f"{request.module.__name__}-sqlite-only")
    yield s
    assert s.stop() == (0, 0)


@pytest.fixture(scope="session")
def pb(workdir):
    """Python modules generated from proto/: pb('events.customer.v1.customer')."""
    out = os.path.join(workdir, "pygen")
    os.makedirs(out, exist_ok=True)
    from grpc_tools import protoc
    import grpc_tools
    protos = []
    for dirpath, _, files in os.walk(os.path.join(ROOT, "proto")):
        for f in files:
            # grpc/... would shadow the grpc package; grpcio-health-checking
            # and grpcurl cover health and reflection.
            if f.endswith(".proto") and "/proto/grpc" not in dirpath:
                protos.append(os.path.relpath(os.path.join(dirpath, f), os.path.join(ROOT, "proto")))
    wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    # google/api and google/rpc: googleapis-common-protos, whose generated
    # modules are imported from the venv as well.
    import google.api
    googleapis = os.path.dirname(os.path.dirname(google.api.__path__[0]))
    rc = protoc.main(["protoc", f"-I{os.path.join(ROOT, 'proto')}", f"-I{wkt}", f"-I{googleapis}",
                      f"--python_out={out}", f"--grpc_python_out={out}"] + protos)
    assert rc == 0, "protoc failed"
    sys.path.insert(0, out)

    def load(name):
        return importlib.import_module(name.replace("/", ".") + "_pb2")
    return load


def unwrap(msg):
    """The resource a Get/Create/Update/Delete response only wraps (each RPC
    has its own <Rpc>Response), or the response itself."""
    fields = msg.DESCRIPTOR.fields
    if len(fields) == 1 and fields[0].message_type is not None and \
            fields[0].label != fields[0].LABEL_REPEATED:
        return getattr(msg, fields[0].name)
    return msg
