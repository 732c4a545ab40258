"""Helpers of the hardening suites (faults, soak, security): a stack whose
processes take extra environment and can be stopped and started again on
the same ports, request bodies for every dialect, and a bounded load loop."""
import os
import threading
import time
import uuid

import requests

from conftest import BIN, Process, auth_a, free_port, wait_port

CUSTOMER = "/rest-api/enterprise-interface/v1.0/events"
ACTIVITY = "/api/v2/events"
CATALOG = "/api/v1/event"
OBJECTS = "/v1/objects"
API_JSON = {"Content-Type": "application/vnd.api+json"}
JSON = {"Content-Type": "application/json"}


class RestartableStack:
    """events-service + events-gateway; either can be stopped and started
    again on the same port. Logs go to workdir/<name>-{service,gateway}-N.log."""

    def __init__(self, workdir, credentials, store_url, name, service_env=None, gateway_env=None):
        self.workdir, self.name = workdir, name
        self.grpc_port, self.http_port = free_port(), free_port()
        self.service_env = dict(os.environ, EVENTS_GRPC_ADDR=f"127.0.0.1:{self.grpc_port}",
                                EVENTS_STORE=store_url, EVENTS_CREDENTIALS=credentials,
                                EVENTS_LOG_LEVEL="warn", **(service_env or {}))
        self.gateway_env = dict(os.environ, EVENTS_HTTP_ADDR=f"127.0.0.1:{self.http_port}",
                                EVENTS_GRPC_TARGET=f"127.0.0.1:{self.grpc_port}",
                                EVENTS_LOG_LEVEL="warn", **(gateway_env or {}))
        self.runs = 0
        self.logs = []
        self.service = self.gateway = None
        self.start_service()
        self.start_gateway()
        self.http = requests.Session()

    def _start(self, which, env, port):
        self.runs += 1
        log = os.path.join(self.workdir, f"{self.name}-{which}-{self.runs}.log")
        self.logs.append(log)
        p = Process([os.path.join(BIN, f"events-{which}")], env, log)
        wait_port(port, p.proc)
        return p

    def start_service(self):
        self.service = self._start("service", self.service_env, self.grpc_port)

    def start_gateway(self):
        self.gateway = self._start("gateway", self.gateway_env, self.http_port)

    @property
    def base(self):
        return f"http://127.0.0.1:{self.http_port}"

    def stop(self):
        self.http.close()
        return (self.gateway.stop() if self.gateway else 0, self.service.stop() if self.service else 0)

    def log_text(self):
        out = []
        for path in self.logs:
            with open(path, "rb") as f:
                out.append(f"==> {path}\n" + f.read().decode(errors="replace"))
        return "\n".join(out)


def uid():
    return uuid.uuid4().hex[:10]


def customer_body(external_id=None):
    return {"event": {"event_type_id": "8bed991c68a470e7aaeffbf048",
                      "customer_id": "85bc5819e09dab95437552ce79",
                      "external_id": external_id or "ext-" + uid()},
            "property_records": [{"property_id": "has_purchase", "property_value": "true"}]}


def activity_body(name=None, prospect=7):
    return {"data": {"type": "event", "attributes": {"name": name or "ev-" + uid(), "payload": {"a": 1}},
                     "relationships": {"prospect": {"data": {"type": "prospect", "id": prospect}}}}}


def object_body(record_id="rec-1", **extra):
    body = {"name": "Kick-off", "source": "manual", "record_id": record_id,
            "start_at": "2025-01-06T09:00:00Z", "end_at": "2025-01-06T10:00:00Z"}
    body.update(extra)
    return body


class Load:
    """Threads calling fn(session, i) until stopped or `seconds` pass; each
    result is (monotonic time, status or exception name, detail)."""

    def __init__(self, fn, threads=4, seconds=60):
        self.fn, self.seconds = fn, seconds
        self.results = []
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(t,), daemon=True) for t in range(threads)]

    def _run(self, t):
        s = requests.Session()
        deadline = time.monotonic() + self.seconds
        i = 0
        while not self.stop_event.is_set() and time.monotonic() < deadline:
            i += 1
            try:
                status, detail = self.fn(s, t * 1_000_000 + i)
            except requests.RequestException as e:
                status, detail = type(e).__name__, str(e)[:200]
            with self.lock:
                self.results.append((time.monotonic(), status, detail))
        s.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=60)

    def since(self, t0, t1=None):
        with self.lock:
            return [r for r in self.results if r[0] >= t0 and (t1 is None or r[0] < t1)]


def wait_for(pred, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return False
