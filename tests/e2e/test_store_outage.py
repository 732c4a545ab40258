"""Readiness follows the store (issue 19 item 5, issue 17 item 5): while
FerretDB is down, calls fail fast with UNAVAILABLE (not each after the
driver's timeout, not DEADLINE_EXCEEDED), gRPC health and the gateway's
/readyz say not ready (grpc-health-probe exits non-zero) while the
"liveness" health service still answers SERVING; once FerretDB is back,
health is SERVING and calls succeed within seconds, with no restart."""
import json
import os
import shutil
import subprocess
import threading
import time
import uuid

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


class Watcher:
    """A Health/Watch stream read in a thread, its statuses in order."""

    def __init__(self, target, service=""):
        self.channel = grpc.insecure_channel(target)
        self.seen = []
        self.ended = None
        self.stream = health_pb2_grpc.HealthStub(self.channel).Watch(
            health_pb2.HealthCheckRequest(service=service), timeout=120)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for m in self.stream:
                self.seen.append(m.status)
        except grpc.RpcError as e:
            self.ended = e.code()

    def wait(self, statuses, timeout=15):
        return wait_for(lambda: self.seen[:len(statuses)] == statuses, timeout)

    def close(self):
        self.stream.cancel()
        self.thread.join(5)
        self.channel.close()


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def test_store_outage_fails_fast_and_readiness_follows(outage, pb):
    fdb, s = outage
    watch = Watcher(s.grpc_target)
    unknown = Watcher(s.grpc_target, "no.such.Service")
    live = Watcher(s.grpc_target, "liveness")
    assert watch.wait([SERVING]) and live.wait([SERVING])
    assert unknown.wait([health_pb2.HealthCheckResponse.SERVICE_UNKNOWN])
    unknown.close()
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
    # The service's plain-HTTP twins on its metrics port, for TLS setups.
    mbase = f"http://127.0.0.1:{s.metrics_port}"
    assert requests.get(mbase + "/readyz", timeout=5).status_code == 503
    assert requests.get(mbase + "/healthz", timeout=5).status_code == 200
    assert watch.wait([SERVING, NOT_SERVING])

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
    assert watch.wait([SERVING, NOT_SERVING, SERVING])
    assert live.seen == [SERVING], "liveness never changed"
    live.close()
    assert probe_rc(s) == 0
    assert wait_for(lambda: requests.get(url, headers=hdr, timeout=10).status_code == 200, 5)
    assert requests.get(s.base + "/readyz", timeout=10).status_code == 200
    assert requests.get(f"http://127.0.0.1:{s.metrics_port}/readyz", timeout=5).json() == \
        {"status": "ready"}
    text = requests.get(f"http://127.0.0.1:{s.metrics_port}/metrics", timeout=5).text
    assert "events_store_up 1" in text
    # SIGTERM with a watch open: the stream hears NOT_SERVING (draining)
    # and the service still exits 0 (the fixture checks).
    s.service.proc.terminate()
    assert watch.wait([SERVING, NOT_SERVING, SERVING, NOT_SERVING])
    watch.close()


def test_watch_with_grpcurl(sqlite_stack):
    out = subprocess.run(["grpcurl", "-plaintext", "-max-time", "2", "-d", '{"service": ""}',
                          sqlite_stack.grpc_target, "grpc.health.v1.Health/Watch"],
                         capture_output=True, text=True)
    # The stream stays open: grpcurl ends at -max-time after the first message.
    assert json.loads(out.stdout.split("}")[0] + "}") == {"status": "SERVING"}, out


def test_a_busy_store_is_not_an_outage(sqlite_stack, pb):
    """Another writer holding SQLite's write lock past the busy timeout (10 s)
    fails a create with UNAVAILABLE "store busy", a retryable answer; but
    the store is there, so health stays SERVING and /readyz 200 (a replica
    is not taken out of rotation for contention), and once the lock goes
    the next create succeeds."""
    import importlib
    import sqlite3
    s = sqlite_stack
    mod = pb("events/customer/v1/customer")
    stub = importlib.import_module("events.customer.v1.customer_pb2_grpc").CustomerEventServiceStub
    md = [("authorization", f"Bearer {TOKEN_A}")]

    def request():
        return mod.CreateEventRequest(event=mod.Event(
            event_type_id="busy-" + uuid.uuid4().hex[:8], customer_id="c", external_id="e"))

    with grpc.insecure_channel(s.grpc_target) as ch:
        stub(ch).CreateEvent(request(), timeout=10, metadata=md)
        db = sqlite3.connect(s.store_url[len("sqlite:"):], timeout=5, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        try:
            fut = stub(ch).CreateEvent.future(request(), timeout=30, metadata=md)
            with pytest.raises(grpc.RpcError) as e:
                fut.result()
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value
            assert "busy" in e.value.details(), e.value.details()
            assert health(s) == health_pb2.HealthCheckResponse.SERVING
            assert requests.get(s.base + "/readyz", timeout=5).status_code == 200
        finally:
            db.execute("ROLLBACK")
            db.close()
        stub(ch).CreateEvent(request(), timeout=10, metadata=md)
