"""Foundation: reflection, health, unknown methods, authentication, start-up
refusals, request ids, body limits and graceful shutdown, with independent
clients (grpcurl, grpcio, requests)."""
import os
import subprocess
import time

import grpc
import pytest
import requests

from conftest import BIN, TOKEN_A, Process, Stack, free_port, stop, wait_port

SERVICES = [
    "events.activity.v1.ActivityEventService",
    "events.customer.v1.CustomerEventService",
    "events.catalog.v1.EventCatalogService",
    "events.object.v1.ObjectEventService",
]


def grpcurl(*args):
    r = subprocess.run(["grpcurl", "-plaintext", *args], capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def test_reflection_lists_and_describes(sqlite_stack):
    rc, out = grpcurl(sqlite_stack.grpc_target, "list")
    assert rc == 0, out
    listed = set(out.split())
    for name in SERVICES + ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                            "grpc.reflection.v1alpha.ServerReflection"]:
        assert name in listed
    for name in SERVICES:
        rc, out = grpcurl(sqlite_stack.grpc_target, "describe", name)
        assert rc == 0, out
        assert "rpc CreateEvent" in out or "rpc CreateEventCategory" in out
    rc, out = grpcurl(sqlite_stack.grpc_target, "describe", "events.object.v1.Event")
    assert rc == 0 and "start_at" in out, out
    rc, out = grpcurl(sqlite_stack.grpc_target, "describe", "no.such.Symbol")
    assert rc != 0


def test_health_serving(sqlite_stack):
    from grpc_health.v1 import health_pb2 as health
    from grpc_health.v1 import health_pb2_grpc
    stub = health_pb2_grpc.HealthStub(sqlite_stack.channel).Check
    for name in [""] + SERVICES:
        resp = stub(health.HealthCheckRequest(service=name), timeout=5)
        assert resp.status == health.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as e:
        stub(health.HealthCheckRequest(service="nope.Service"), timeout=5)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    rc, out = grpcurl(sqlite_stack.grpc_target, "grpc.health.v1.Health/Check")
    assert rc == 0 and "SERVING" in out


def test_unknown_method_is_unimplemented_at_once(sqlite_stack):
    call = sqlite_stack.channel.unary_unary("/no.such.Service/Method")
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        call(b"", timeout=10)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert time.monotonic() - t0 < 1.0
    other = sqlite_stack.channel.unary_unary("/grpc.health.v1.Health/NoSuchMethod")
    with pytest.raises(grpc.RpcError) as e:
        other(b"", timeout=10)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def _dialect_methods(pb):
    mods = {
        "events.activity.v1.ActivityEventService": "events/activity/v1/activity",
        "events.customer.v1.CustomerEventService": "events/customer/v1/customer",
        "events.catalog.v1.EventCatalogService": "events/catalog/v1/catalog",
        "events.object.v1.ObjectEventService": "events/object/v1/object",
    }
    for svc, mod in mods.items():
        m = pb(mod)
        sd = m.DESCRIPTOR.services_by_name[svc.rsplit(".", 1)[1]]
        for method in sd.methods:
            yield f"/{svc}/{method.name}"


@pytest.mark.parametrize("creds", [None, "Bearer sk:wrong", "Basic Zm9vOmJhcg==", "garbage"])
def test_every_dialect_method_needs_credentials(sqlite_stack, pb, creds):
    n = 0
    for path in _dialect_methods(pb):
        call = sqlite_stack.channel.unary_unary(path)
        md = [("authorization", creds)] if creds else None
        with pytest.raises(grpc.RpcError) as e:
            call(b"", timeout=5, metadata=md)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED, path
        n += 1
    assert n >= 20


def _start_service(workdir, creds_path, extra=None):
    port = free_port()
    env = dict(os.environ)
    env.pop("EVENTS_CREDENTIALS", None)
    env.update({"EVENTS_GRPC_ADDR": f"127.0.0.1:{port}",
                "EVENTS_STORE": "sqlite:" + os.path.join(workdir, f"refuse{port}.db")})
    if creds_path is not None:
        env["EVENTS_CREDENTIALS"] = creds_path
    argv = [os.path.join(BIN, "events-service")] + (extra or [])
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)


def test_refuses_to_start_without_credentials(workdir):
    r = _start_service(workdir, None)
    assert r.returncode != 0
    assert "EVENTS_CREDENTIALS" in r.stderr
    r = _start_service(workdir, os.path.join(workdir, "missing-file"))
    assert r.returncode != 0 and "missing-file" in r.stderr
    bad = os.path.join(workdir, "bad-credentials")
    with open(bad, "w") as f:
        f.write("# comment\nacme bearer sk:1\nacme telepathy sk:2\n")
    r = _start_service(workdir, bad)
    assert r.returncode != 0
    assert f"{bad}:3" in r.stderr and "telepathy" in r.stderr


def test_flags_work_like_variables(workdir, credentials_file):
    r = _start_service(workdir, None, ["--EVENTS_CREDENTIALS", os.path.join(workdir, "nope")])
    assert r.returncode != 0 and "nope" in r.stderr
    r = _start_service(workdir, credentials_file, ["--no-such-flag=1"])
    assert r.returncode == 2 and "no-such-flag" in r.stderr


def test_gateway_health_ready_and_request_ids(sqlite_stack):
    s = sqlite_stack
    r = requests.get(s.base + "/healthz", timeout=5)
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert len(r.headers["X-Request-Id"]) >= 16
    r = requests.get(s.base + "/readyz", headers={"X-Request-Id": "req-123"}, timeout=5)
    assert r.status_code == 200
    assert r.headers["X-Request-Id"] == "req-123"
    doc = requests.get(s.base + "/openapi.json", timeout=5).json()
    assert doc["openapi"].startswith("3.")
    assert "/healthz" in doc["paths"]


def test_gateway_body_limit(sqlite_stack):
    big = b"x" * ((1 << 20) + 1)
    r = requests.post(sqlite_stack.base + "/v1/objects/o/events", data=big,
                      headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 413
    assert "X-Request-Id" in r.headers


def test_sigterm_exits_zero_and_readyz_follows_service(workdir, credentials_file):
    s = Stack(workdir, credentials_file, "sqlite:" + os.path.join(workdir, "term.db"), "term")
    assert requests.get(s.base + "/readyz", timeout=5).status_code == 200
    assert s.service.stop() == 0
    r = requests.get(s.base + "/readyz", timeout=10)
    assert r.status_code == 503
    assert requests.get(s.base + "/healthz", timeout=5).status_code == 200
    assert s.gateway.stop() == 0
