"""Readiness follows the store (issue 19 item 5, issue 17 item 5): while
FerretDB is down, calls fail fast with UNAVAILABLE (not each after the
driver's timeout, not DEADLINE_EXCEEDED), gRPC health and the gateway's
/readyz say not ready (grpc-health-probe exits non-zero) while the
"liveness" health service still answers SERVING; once FerretDB is back,
health is SERVING and calls succeed within seconds, with no restart."""
import os
import shutil
import subprocess
import time

import grpc
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import TOKEN_A, FerretDB, Stack

BASE = "/rest-api/enterprise-interface/v1.0/events"
PROBE = shutil.which("grpc-health-probe") or os.path.expanduser("~/go/bin/grpc-health-probe")


def health(stack, service=""):
    with grpc.insecure_channel(stack.grpc_target) as ch:
        return health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5).status


def probe_rc(stack):
    return subprocess.run([PROBE, "-addr", stack.grpc_target, "-connect-timeout", "2s",
                           "-rpc-timeout", "2s"], capture_output=True).returncode


def wait_for(pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def outage(workdir, credentials_file):
    fdb = FerretDB(workdir)
    s = Stack(workdir, credentials_file, fdb.url.replace("/events", "/outage"), "outage")
    yield fdb, s
    assert s.stop() == (0, 0)
    fdb.stop()


def test_store_outage_fails_fast_and_readiness_follows(outage, pb):
    fdb, s = outage
    hdr = {"Authorization": f"Bearer {TOKEN_A}"}
    url = s.base + BASE + "?count=1"
    assert requests.get(url, headers=hdr, timeout=10).status_code == 200
    assert health(s) == health_pb2.HealthCheckResponse.SERVING
    assert probe_rc(s) == 0

    fdb.stop()
    # The first call to find the store gone may wait the driver's timeout;
    # from then on the service knows.
    requests.get(url, headers=hdr, timeout=15)
    assert wait_for(lambda: health(s) == health_pb2.HealthCheckResponse.NOT_SERVING, 10)
    assert probe_rc(s) != 0
    assert health(s, "liveness") == health_pb2.HealthCheckResponse.SERVING
    assert requests.get(s.base + "/readyz", timeout=10).status_code == 503

    mod = pb("events/customer/v1/customer")
    import importlib
    stub = importlib.import_module("events.customer.v1.customer_pb2_grpc").CustomerEventServiceStub
    with grpc.insecure_channel(s.grpc_target) as ch:
        for _ in range(5):
            t = time.monotonic()
            with pytest.raises(grpc.RpcError) as e:
                stub(ch).ListEvents(mod.ListEventsRequest(page_size=1), timeout=10,
                                    metadata=[("authorization", f"Bearer {TOKEN_A}")])
            took = time.monotonic() - t
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value
            assert "mongo" not in (e.value.details() or "").lower()
            assert took < 1.0, took
    for _ in range(5):
        t = time.monotonic()
        r = requests.get(url, headers=hdr, timeout=10)
        assert r.status_code == 503 and time.monotonic() - t < 1.0

    fdb.start()
    assert wait_for(lambda: health(s) == health_pb2.HealthCheckResponse.SERVING, 10)
    assert probe_rc(s) == 0
    assert wait_for(lambda: requests.get(url, headers=hdr, timeout=10).status_code == 200, 5)
    assert requests.get(s.base + "/readyz", timeout=10).status_code == 200
    text = requests.get(f"http://127.0.0.1:{s.metrics_port}/metrics", timeout=5).text
    assert "events_store_up 1" in text
