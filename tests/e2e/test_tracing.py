"""Tracing and correlation: a W3C traceparent sent to the gateway (or made
there when absent) reaches the service as gRPC metadata; both processes log
trace_id, span_id and request_id on the lines about the request; gRPC
callers' traceparent is accepted too; and with EVENTS_OTLP_ENDPOINT both
export their spans over OTLP/HTTP to a real receiver that decodes them with
opentelemetry-proto."""
import http.server
import json
import os
import threading
import time

import grpc
import pytest
import requests

from conftest import BIN, CREDENTIALS, TOKEN_A, Process, free_port, wait_port

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TP = f"00-{TRACE}-{PARENT}-01"
BASE = "/rest-api/enterprise-interface/v1.0/events"


class Receiver:
    """An OTLP/HTTP traces endpoint: POST /v1/traces, protobuf bodies."""

    def __init__(self):
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
        self.spans = []
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = self.path == "/v1/traces" and \
                    self.headers["Content-Type"] == "application/x-protobuf"
                if ok:
                    req = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
                    with outer.lock:
                        for rs in req.resource_spans:
                            svc = {a.key: a.value.string_value for a in rs.resource.attributes}
                            for ss in rs.scope_spans:
                                for s in ss.spans:
                                    outer.spans.append((svc.get("service.name"), s))
                self.send_response(200 if ok else 400)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, pred, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            with self.lock:
                got = [s for s in self.spans if pred(s)]
            if got:
                return got
            time.sleep(0.1)
        return []

    def close(self):
        self.server.shutdown()


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("trace"))
    rx = Receiver()
    creds = os.path.join(d, "credentials")
    with open(creds, "w") as f:
        f.write(CREDENTIALS)
    grpc_port, http_port = free_port(), free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("EVENTS_")}
    env = dict(base, EVENTS_GRPC_ADDR=f"127.0.0.1:{grpc_port}", EVENTS_CREDENTIALS=creds,
               EVENTS_STORE="sqlite:" + os.path.join(d, "t.db"), EVENTS_LOG_LEVEL="info",
               EVENTS_OTLP_ENDPOINT=f"http://127.0.0.1:{rx.port}")
    svc = Process([os.path.join(BIN, "events-service")], env, os.path.join(d, "service.log"))
    wait_port(grpc_port, svc.proc)
    genv = dict(base, EVENTS_HTTP_ADDR=f"127.0.0.1:{http_port}",
                EVENTS_GRPC_TARGET=f"127.0.0.1:{grpc_port}", EVENTS_LOG_LEVEL="info",
                EVENTS_OTLP_ENDPOINT=f"http://127.0.0.1:{rx.port}/v1/traces")
    gw = Process([os.path.join(BIN, "events-gateway")], genv, os.path.join(d, "gateway.log"))
    wait_port(http_port, gw.proc)
    yield {"svc": svc, "gw": gw, "rx": rx, "http": http_port, "grpc": grpc_port}
    assert gw.stop() == 0
    assert svc.stop() == 0
    rx.close()


def lines(p):
    return [json.loads(l) for l in p.output().splitlines() if l.strip()]


def wait_lines(p, pred, timeout=5):
    end = time.time() + timeout
    while time.time() < end:
        got = [l for l in lines(p) if pred(l)]
        if got:
            return got
        time.sleep(0.1)
    return []


def test_traceparent_flows_from_rest_to_the_service_logs(traced):
    r = requests.get(f"http://127.0.0.1:{traced['http']}{BASE}?count=1", timeout=10,
                     headers={"Authorization": f"Bearer {TOKEN_A}", "traceparent": TP,
                              "tracestate": "vendor=x", "X-Request-Id": "req-trace-1"})
    assert r.status_code == 200
    g = wait_lines(traced["gw"], lambda l: l.get("request_id") == "req-trace-1")
    s = wait_lines(traced["svc"], lambda l: l.get("request_id") == "req-trace-1")
    assert g and s, "both processes log the request"
    assert g[0]["trace_id"] == TRACE and s[0]["trace_id"] == TRACE
    assert g[0]["span_id"] != PARENT and len(g[0]["span_id"]) == 16
    # The service's span is a child of the gateway's.
    assert s[0]["parent_span_id"] == g[0]["span_id"] and s[0]["span_id"] != g[0]["span_id"]


def test_trace_is_made_when_absent(traced):
    r = requests.get(f"http://127.0.0.1:{traced['http']}{BASE}?count=1", timeout=10,
                     headers={"Authorization": f"Bearer {TOKEN_A}", "X-Request-Id": "req-trace-2",
                              "traceparent": "garbage"})
    assert r.status_code == 200
    g = wait_lines(traced["gw"], lambda l: l.get("request_id") == "req-trace-2")
    s = wait_lines(traced["svc"], lambda l: l.get("request_id") == "req-trace-2")
    assert g and s
    assert len(g[0]["trace_id"]) == 32 and g[0]["trace_id"] != TRACE
    assert s[0]["trace_id"] == g[0]["trace_id"]


def test_grpc_callers_traceparent_is_accepted(traced, pb):
    mod = pb("events/customer/v1/customer")
    import importlib
    stub = importlib.import_module("events.customer.v1.customer_pb2_grpc").CustomerEventServiceStub
    other = "0af7651916cd43dd8448eb211c80319c"
    with grpc.insecure_channel(f"127.0.0.1:{traced['grpc']}") as ch:
        stub(ch).ListEvents(mod.ListEventsRequest(page_size=1), timeout=10, metadata=[
            ("authorization", f"Bearer {TOKEN_A}"), ("x-request-id", "req-trace-3"),
            ("traceparent", f"00-{other}-b7ad6b7169203331-01")])
    s = wait_lines(traced["svc"], lambda l: l.get("request_id") == "req-trace-3")
    assert s and s[0]["trace_id"] == other and s[0]["parent_span_id"] == "b7ad6b7169203331"


def test_spans_exported_over_otlp(traced):
    rid = "req-trace-otlp"
    requests.get(f"http://127.0.0.1:{traced['http']}{BASE}?count=1", timeout=10,
                 headers={"Authorization": f"Bearer {TOKEN_A}", "traceparent": TP,
                          "X-Request-Id": rid})
    rx = traced["rx"]
    gw = rx.wait(lambda s: s[0] == "events-gateway" and s[1].trace_id.hex() == TRACE)
    svc = rx.wait(lambda s: s[0] == "events-service" and s[1].trace_id.hex() == TRACE)
    assert gw and svc, "both processes exported a span of the trace"
    g, v = gw[0][1], svc[0][1]
    assert g.parent_span_id.hex() == PARENT
    assert v.parent_span_id == g.span_id
    assert g.kind == 2 and v.kind == 2  # SERVER
    assert g.end_time_unix_nano >= g.start_time_unix_nano > 0
    assert "ListEvents" in v.name
    attrs = {a.key: a.value.string_value for a in g.attributes}
    assert attrs.get("http.route", "").endswith("/events")
