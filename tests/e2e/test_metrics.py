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
    key = 'events_http_requests_total{method="GET",route="%s/events",status="200"}' % BASE
    assert g[key] >= 3
    assert g['events_http_requests_total{method="GET",route="%s/events/{event_id}",status="400"}' % BASE] >= 1
    assert any(k.startswith('events_http_requests_total{method="other",route="unmatched"') for k in g)
    assert g['events_http_request_duration_seconds_count{method="GET",route="%s/events"}' % BASE] >= 3
    assert 'events_http_requests_in_flight' in g
    assert "# TYPE events_http_request_duration_seconds histogram" in r.text
    # raw paths never become labels
    assert "/no/such/path" not in r.text

    r = requests.get(f"http://127.0.0.1:{s.metrics_port}/metrics", timeout=10)
    assert r.status_code == 200
    m = samples(r.text)
    lm = '/events.customer.v1.CustomerEventService/ListEvents'
    assert m['events_rpc_requests_total{method="%s",code="0"}' % lm] >= 3
    assert m['events_rpc_requests_total{method="/events.customer.v1.CustomerEventService/GetEvent",code="3"}'] >= 1
    assert m['events_rpc_duration_seconds_bucket{method="%s",le="+Inf"}' % lm] >= 3
    assert m["events_store_calls_total"] >= 3
    assert "events_store_calls_in_flight" in m and "events_rpc_in_flight" in m
    assert re.search(r"^# TYPE events_rpc_requests_total counter$", r.text, re.M)
    assert requests.get(f"http://127.0.0.1:{s.metrics_port}/other", timeout=10).status_code == 404
