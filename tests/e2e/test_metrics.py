"""Prometheus metrics of both processes: the gateway's GET /metrics and the
service's listener at EVENTS_METRICS_ADDR."""
import re

import requests

from conftest import auth_a

BASE = "/rest-api/enterprise-interface/v1.0"


def samples(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_gateway_and_service_metrics(sqlite_stack):
    s = sqlite_stack
    for _ in range(3):
        assert s.http.get(s.base + BASE + "/events?count=1", headers=auth_a(), timeout=10).status_code == 200
    s.http.get(s.base + BASE + "/events/nothex", headers=auth_a(), timeout=10)
    s.http.get(s.base + "/no/such/path", timeout=10)

    r = requests.get(s.base + "/metrics", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    g = samples(r.text)
    key = 'events_http_requests_total{code="2xx",method="GET",route="%s/events"}' % BASE
    assert g[key] >= 3
    assert g['events_http_requests_total{code="4xx",method="GET",route="%s/events/{event_id}"}' % BASE] >= 1
    assert any(k.startswith('events_http_requests_total{code="4xx",method="other",route="unmatched"') for k in g)
    assert g['events_http_request_duration_seconds_count{code="2xx",method="GET",route="%s/events"}' % BASE] >= 3
    assert 'events_http_requests_in_flight' in g
    assert "# TYPE events_http_request_duration_seconds histogram" in r.text
    # raw paths never become labels
    assert "/no/such/path" not in r.text

    r = requests.get(f"http://127.0.0.1:{s.metrics_port}/metrics", timeout=10)
    assert r.status_code == 200
    m = samples(r.text)
    # go-grpc-prometheus names and labels, so its dashboards and alerts work.
    svc = 'grpc_type="unary",grpc_service="events.customer.v1.CustomerEventService"'
    lm = svc + ',grpc_method="ListEvents"'
    assert m['grpc_server_started_total{%s}' % lm] >= 3
    assert m['grpc_server_handled_total{%s,grpc_code="OK"}' % lm] >= 3
    assert m['grpc_server_handled_total{%s,grpc_method="GetEvent",grpc_code="InvalidArgument"}' % svc] >= 1
    assert m['grpc_server_handling_seconds_bucket{%s,grpc_code="OK",le="+Inf"}' % lm] >= 3
    assert m['grpc_server_msg_received_total{%s}' % lm] >= 3
    assert m["events_store_calls_total"] >= 3
    assert "events_store_calls_in_flight" in m and "events_rpc_in_flight" in m
    assert re.search(r"^# TYPE grpc_server_handled_total counter$", r.text, re.M)
    assert re.search(r"^# TYPE grpc_server_handling_seconds histogram$", r.text, re.M)
    assert requests.get(f"http://127.0.0.1:{s.metrics_port}/other", timeout=10).status_code == 404


def families(text):
    """Parses with the reference client's parser; every family must be typed
    and appear once (one group per family)."""
    from prometheus_client.parser import text_string_to_metric_families
    fams = list(text_string_to_metric_families(text))
    names = [f.name for f in fams]
    assert len(names) == len(set(names)), f"a family is split: {names}"
    untyped = [f.name for f in fams if f.type in ("unknown", "untyped")]
    assert not untyped, f"untyped families: {untyped}"
    return {f.name: f for f in fams}


def promtool_check(text):
    import os
    import shutil
    import subprocess
    tool = shutil.which("promtool") or os.path.expanduser("~/go/bin/promtool")
    assert os.path.exists(tool), "promtool is installed by scripts/deps.sh"
    p = subprocess.run([tool, "check", "metrics"], input=text.encode(), capture_output=True,
                       timeout=60)
    # promtool exits 1 for lint findings and 3 for a parse error; both fail here.
    assert p.returncode == 0, (p.stdout + p.stderr).decode()


def test_exposition_parses_with_reference_tools(sqlite_stack):
    s = sqlite_stack
    for _ in range(2):
        s.http.get(s.base + BASE + "/events?count=1", headers=auth_a(), timeout=10)
    for url in (s.base + "/metrics", f"http://127.0.0.1:{s.metrics_port}/metrics"):
        text = requests.get(url, timeout=10).text
        fams = families(text)
        for name in ("process_cpu_seconds", "process_resident_memory_bytes",
                     "process_virtual_memory_bytes", "process_open_fds",
                     "process_start_time_seconds", "events_build_info"):
            assert name in fams, f"{name} missing from {url}"
        info = fams["events_build_info"].samples[0]
        assert info.labels["version"] and info.labels["commit"]
        assert fams["process_open_fds"].samples[0].value > 0
        promtool_check(text)
