"""Faults: the store or the service going away under load, and clients that
hold connections without finishing their requests.

- FerretDB (the MongoDB-wire store) is stopped during a write load: while it
  is down writes answer a clear 503 in the dialect's error shape, once it is
  back they succeed again without restarting anything, and every write that
  was acknowledged (201) is still there.
- events-service is stopped while the gateway is under load: 503s, then
  after the service starts again on the same port the gateway recovers by
  itself.
- A client that stalls mid-body or mid-headers, or many idle connections,
  are cut off after EVENTS_IDLE_TIMEOUT_S; EVENTS_MAX_CONNECTIONS bounds
  them; the gateway keeps serving and stops cleanly.
All bounded: about a minute in all.
"""
import os
import signal
import socket
import time

import pytest

from conftest import FerretDB, auth_a
from harden import CUSTOMER, JSON, Load, RestartableStack, customer_body, uid, wait_for


def _sqlite(workdir):
    import tempfile
    return "sqlite:" + os.path.join(tempfile.mkdtemp(dir=workdir), "events.db")


def _customer_write(stack, acked):
    def write(s, i):
        ext = f"fault-{i}-{uid()}"
        r = s.post(stack.base + CUSTOMER, json=customer_body(ext), headers={**auth_a(), **JSON}, timeout=30)
        if r.status_code == 201:
            acked.append(r.json()["data"]["event_id"])
        return r.status_code, r.text[:300]
    return write


def test_store_outage_during_writes(workdir, credentials_file):
    fdb = FerretDB(workdir)
    stack = RestartableStack(workdir, credentials_file, f"mongodb://127.0.0.1:{fdb.port}/faults{uid()}",
                             "faults-store")
    acked = []
    try:
        with Load(_customer_write(stack, acked), threads=3, seconds=90) as load:
            assert wait_for(lambda: len(acked) >= 20, 30), load.results[-5:]
            t_down = time.monotonic()
            fdb.stop()
            # While it is down: only clear 503s, in the customer error shape.
            time.sleep(6)
            t_check = time.monotonic()
            time.sleep(4)
            down = load.since(t_check, time.monotonic())
            assert down, "no request completed while the store was down"
            assert {r[1] for r in down} == {503}, sorted({(r[1], r[2]) for r in down})[:5]
            assert all('"ServiceUnavailableException"' in r[2] for r in down), down[:3]
            n_before = len(acked)
            fdb.start()  # same port, same data directory
            t_up = time.monotonic()
            assert wait_for(lambda: len(acked) >= n_before + 20, 45), (
                "writes did not recover", load.since(t_up)[-5:])
            # Between the outage and recovery, nothing but 201 and 503.
            odd = {(r[1], r[2][:120]) for r in load.since(t_down) if r[1] not in (201, 503)}
            assert not odd, odd
        assert stack.gateway.proc.poll() is None and stack.service.proc.poll() is None
        # No acknowledged write is lost.
        s = stack.http
        missing = [eid for eid in acked
                   if s.get(f"{stack.base}{CUSTOMER}/{eid}", headers=auth_a(), timeout=30).status_code != 200]
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged writes lost: {missing[:5]}"
    finally:
        rcs = stack.stop()
        fdb.stop()
    assert rcs == (0, 0), stack.log_text()


def test_service_restart_under_load(workdir, credentials_file):
    stack = RestartableStack(workdir, credentials_file, _sqlite(workdir), "faults-service")
    try:
        r = stack.http.post(stack.base + CUSTOMER, json=customer_body(), headers={**auth_a(), **JSON}, timeout=30)
        assert r.status_code == 201, r.text

        def read(s, i):
            r = s.get(stack.base + CUSTOMER + "?count=5", headers=auth_a(), timeout=30)
            return r.status_code, r.text[:300]

        with Load(read, threads=3, seconds=90) as load:
            assert wait_for(lambda: len(load.results) >= 20, 30)
            t_down = time.monotonic()
            assert stack.service.stop() == 0, stack.log_text()
            time.sleep(3)
            t_check = time.monotonic()
            time.sleep(3)
            down = load.since(t_check, time.monotonic())
            assert down and {r[1] for r in down} == {503}, sorted({(r[1], r[2]) for r in down})[:5]
            assert all('"ServiceUnavailableException"' in r[2] for r in down), down[:3]
            stack.start_service()
            t_up = time.monotonic()
            assert wait_for(lambda: sum(1 for r in load.since(t_up) if r[1] == 200) >= 10, 45), (
                "the gateway did not recover", load.since(t_up)[-5:])
            odd = {(r[1], r[2][:120]) for r in load.since(t_down) if r[1] not in (200, 503)}
            assert not odd, odd
        assert stack.gateway.proc.poll() is None
        assert stack.http.get(stack.base + "/readyz", timeout=10).status_code == 200
    finally:
        rcs = stack.stop()
    assert rcs == (0, 0), stack.log_text()


IDLE_S = 2
MAX_CONN = 16


@pytest.fixture(scope="module")
def tight_stack(workdir, credentials_file):
    s = RestartableStack(workdir, credentials_file, _sqlite(workdir), "faults-conns",
                         gateway_env={"EVENTS_IDLE_TIMEOUT_S": str(IDLE_S),
                                      "EVENTS_MAX_CONNECTIONS": str(MAX_CONN)})
    yield s
    rcs = s.stop()
    assert rcs == (0, 0), s.log_text()


def _connect(stack):
    c = socket.create_connection(("127.0.0.1", stack.http_port), timeout=10)
    c.settimeout(IDLE_S * 5 + 10)
    return c


def _closed_within(c, seconds):
    """Whether the server closes c (EOF or reset) within `seconds`;
    whatever it sends before (e.g. a 408) is read and dropped."""
    t0 = time.monotonic()
    c.settimeout(seconds)
    try:
        while True:
            if not c.recv(65536):
                break
    except ConnectionResetError:
        pass
    except socket.timeout:
        return None
    return time.monotonic() - t0


def _ok(stack):
    # A connection of its own: the tight stack closes idle keep-alive
    # connections after IDLE_S, and a pooled one reused just then would fail
    # for that reason, not the one under test.
    return stack.http.get(stack.base + CUSTOMER + "?count=1", headers={**auth_a(), "Connection": "close"},
                          timeout=10).status_code == 200


def test_stalled_body_is_cut_off(tight_stack):
    c = _connect(tight_stack)
    c.sendall(b"POST " + CUSTOMER.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Authorization: Bearer sk:tenant-a-secret\r\nContent-Length: 1000\r\n\r\n{\"event\":")
    # Others are served meanwhile.
    assert _ok(tight_stack)
    took = _closed_within(c, IDLE_S * 5 + 5)
    c.close()
    assert took is not None, "a stalled upload was never cut off"
    assert _ok(tight_stack)


def test_stalled_headers_are_cut_off(tight_stack):
    c = _connect(tight_stack)
    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    assert _ok(tight_stack)
    took = _closed_within(c, IDLE_S * 5 + 5)
    c.close()
    assert took is not None, "a stalled header block was never cut off"


def test_idle_connections_do_not_take_it_down(tight_stack):
    socks = []
    try:
        for _ in range(MAX_CONN * 3):
            try:
                socks.append(socket.create_connection(("127.0.0.1", tight_stack.http_port), timeout=5))
            except OSError:
                break
        assert len(socks) >= MAX_CONN
        # Past the limit connections are refused or closed at once, not queued for ever;
        # after the idle timeout the slots are free again.
        assert wait_for(lambda: _try_ok(tight_stack), IDLE_S * 5 + 10), "the gateway did not recover"
        assert tight_stack.gateway.proc.poll() is None
        # Every idle connection is closed in the end (those the kernel queued
        # while the gateway was full get their own idle timeout once accepted).
        open_ = list(socks)
        deadline = time.monotonic() + IDLE_S * 6 + 10
        while open_ and time.monotonic() < deadline:
            open_ = [c for c in open_ if _closed_within(c, 0.2) is None]
        assert not open_, f"{len(open_)} of {len(socks)} idle connections were never closed"
    finally:
        for c in socks:
            c.close()
    assert _ok(tight_stack)


def _try_ok(stack):
    try:
        return _ok(stack)
    except Exception:
        return False


def test_sigterm_while_a_handler_serves_an_abandoned_call(workdir, credentials_file, pb):
    """A handler still blocked on the store when SIGTERM comes, for a call
    its client already gave up on: the service waits for it, then exits 0
    (it used to start the reply on a shut-down queue and abort in gRPC)."""
    import sqlite3

    import grpc

    from conftest import TOKEN_A
    store = _sqlite(workdir)
    stack = RestartableStack(workdir, credentials_file, store, "faults-sigterm")
    m = pb("events/customer/v1/customer")
    channel = grpc.insecure_channel(f"127.0.0.1:{stack.grpc_port}")
    create = channel.unary_unary("/events.customer.v1.CustomerEventService/CreateEvent",
                                 request_serializer=lambda x: x.SerializeToString(),
                                 response_deserializer=m.CreateEventResponse.FromString)
    meta = [("authorization", f"Bearer {TOKEN_A}")]
    try:
        ev = m.Event(event_type_id="t", customer_id="c", external_id="warm")
        create(m.CreateEventRequest(event=ev), timeout=10, metadata=meta)
        # Another process holds SQLite's write lock: the next create blocks
        # inside the service until it is released.
        lock = sqlite3.connect(store[len("sqlite:"):], isolation_level=None, timeout=10)
        lock.execute("BEGIN IMMEDIATE")
        ev = m.Event(event_type_id="t", customer_id="c", external_id="abandoned")
        with pytest.raises(grpc.RpcError) as e:
            create(m.CreateEventRequest(event=ev), timeout=0.5, metadata=meta)
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        channel.close()
        stack.service.proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert stack.service.proc.poll() is None, "exited while its handler was still running"
        lock.execute("ROLLBACK")
        lock.close()
        assert stack.service.proc.wait(timeout=30) == 0, stack.log_text()
    finally:
        rcs = stack.stop()
    assert rcs == (0, 0), stack.log_text()
    assert "assertion failed" not in stack.log_text()


def test_a_call_waiting_on_the_store_does_not_hold_up_others(workdir, credentials_file, pb):
    """On one CPU only one worker waits on the queue at once (rpc_run.c); a
    worker whose create waits on SQLite's write lock gives its turn away, so
    a get is served meanwhile. Without that, the get would queue behind the
    create until the lock is released, after the get's deadline."""
    import sqlite3
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    from conftest import TOKEN_A
    store = _sqlite(workdir)
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})  # inherited by the service: one run token
    try:
        stack = RestartableStack(workdir, credentials_file, store, "faults-run-tokens",
                                 service_env={"EVENTS_WORKERS": "4"})
    finally:
        os.sched_setaffinity(0, cpus)
    m = pb("events/customer/v1/customer")
    channel = grpc.insecure_channel(f"127.0.0.1:{stack.grpc_port}")
    svc = "/events.customer.v1.CustomerEventService/"
    create = channel.unary_unary(svc + "CreateEvent", request_serializer=lambda x: x.SerializeToString(),
                                 response_deserializer=m.CreateEventResponse.FromString)
    get = channel.unary_unary(svc + "GetEvent", request_serializer=lambda x: x.SerializeToString(),
                              response_deserializer=m.GetEventResponse.FromString)
    meta = [("authorization", f"Bearer {TOKEN_A}")]
    pool = ThreadPoolExecutor(1)
    try:
        ev = m.Event(event_type_id="t", customer_id="c", external_id="warm")
        warm = create(m.CreateEventRequest(event=ev), timeout=10, metadata=meta).event_id
        lock = sqlite3.connect(store[len("sqlite:"):], isolation_level=None, timeout=10)
        lock.execute("BEGIN IMMEDIATE")
        ev = m.Event(event_type_id="t", customer_id="c", external_id="waits")
        waiting = pool.submit(create, m.CreateEventRequest(event=ev), timeout=30, metadata=meta)
        time.sleep(0.5)  # the create is in the service, on the lock
        got = get(m.GetEventRequest(event_id=warm), timeout=5, metadata=meta)
        assert got.event.event_id == warm
        assert not waiting.done(), "the create did not wait on the lock: the test proves nothing"
        lock.execute("ROLLBACK")
        lock.close()
        assert len(waiting.result(timeout=30).event_id) == 26
    finally:
        pool.shutdown(wait=False)
        channel.close()
        rcs = stack.stop()
    assert rcs == (0, 0), stack.log_text()


def test_sigterm_ends_open_streams(workdir, credentials_file):
    """Streams that last as long as their client wants (a health Watch, a
    reflection stream) do not hold SIGTERM for the whole grace period: once
    the calls that end by themselves are answered, the service cancels the
    rest (UNAVAILABLE) and exits 0, well inside EVENTS_GRACE_MS."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    stack = RestartableStack(workdir, credentials_file, _sqlite(workdir), "faults-streams",
                             service_env={"EVENTS_GRACE_MS": "60s"})
    ch = grpc.insecure_channel(f"127.0.0.1:{stack.grpc_port}")
    try:
        watch = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(service=""))
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        import queue
        requests_q = queue.Queue()
        info = ch.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                request_serializer=lambda b: b, response_deserializer=lambda b: b)
        refl = info(iter(requests_q.get, None))
        requests_q.put(b"\x3a\x00")  # ServerReflectionRequest{list_services: ""}
        assert b"events.customer.v1" in next(refl)
        t0 = time.monotonic()
        assert stack.service.stop() == 0, stack.log_text()
        took = time.monotonic() - t0
        assert took < 30, f"SIGTERM waited {took:.1f}s for streams that never end by themselves"
        codes = set()
        for stream in (watch, refl):
            try:
                for _ in stream:
                    pass
            except grpc.RpcError as e:
                codes.add(e.code())
        assert codes <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}, codes
        requests_q.put(None)
    finally:
        ch.close()
        stack.service = None
        rcs = stack.stop()
    assert rcs == (0, 0), stack.log_text()
