"""Scale-out: two service replicas (each with its own gateway) on ONE store,
with concurrent calls spread over both. On FerretDB (MongoDB wire), the
per-tenant activity sequence, the customer triple and the catalog's
parent rule must hold across processes, a lost race is retried and never
shown to a client, and no reply carries driver, SQL or transport text. The
same runs on one SQLite file shared by two processes (WAL, busy timeout).
"""
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import Stack, _store_url, auth_a, auth_b

ACTIVITY = "/api/v2/events"
MEDIA = {"Content-Type": "application/vnd.api+json"}
CUSTOMER = "/rest-api/enterprise-interface/v1.0/events"
CATALOG = "/api/v1/event"
JSON = {"Content-Type": "application/json"}
WORKERS = 16
# Texts of the store, the driver and the transport that a client never sees.
LEAKS = re.compile(r"E11000|mongo|sqlite|bson|UNIQUE constraint|duplicate key|"
                   r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(:\d+)?\b|localhost:\d+", re.I)


@pytest.fixture(scope="module", params=["mongodb", "sqlite"])
def replicas(request, workdir, credentials_file):
    url = _store_url(request.param, workdir, request)
    name = f"{request.module.__name__}-{request.param}"
    stacks = [Stack(workdir, credentials_file, url, f"{name}-r1")]
    try:
        stacks.append(Stack(workdir, credentials_file, url, f"{name}-r2"))
    except Exception:
        stacks[0].stop()
        raise
    yield stacks
    outputs = [(s.service.output(), s.gateway.output()) for s in stacks]
    rcs = [s.stop() for s in stacks]
    assert rcs == [(0, 0), (0, 0)], f"exit statuses {rcs}\n{outputs}"


_local = threading.local()


def session():
    s = getattr(_local, "session", None)
    if s is None:
        s = _local.session = requests.Session()
    return s


def call(stacks, i, method, path, **kw):
    """Request number i goes to replica i % 2."""
    base = stacks[i % len(stacks)].base
    return session().request(method, base + path, timeout=30, **kw)


def assert_clean(responses):
    """No 5xx; no error body names the store, the driver or an address
    (success bodies carry the gateway's own links and requestHost)."""
    for r in responses:
        assert r.status_code < 500, (r.status_code, r.text)
        if r.status_code >= 400:
            assert not LEAKS.search(r.text), r.text


def run(n, fn):
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(fn, range(n)))


def test_concurrent_activity_creates_get_ids_1_to_n(replicas):
    """500 creates of one tenant over both replicas: every one succeeds and
    the ids are exactly 1..500. Tenant B creates nothing else here, on a
    store of its own, so its sequence starts at 1."""
    n = 500

    def create(i):
        body = {"data": {"type": "event", "attributes": {"name": f"replica-{i}"}}}
        return call(replicas, i, "POST", ACTIVITY, json=body, headers={**MEDIA, **auth_b()})

    responses = run(n, create)
    assert_clean(responses)
    failed = [(r.status_code, r.text) for r in responses if r.status_code != 201]
    assert not failed, f"{len(failed)} of {n} creates failed, e.g. {failed[:3]}"
    ids = sorted(int(r.json()["data"]["id"]) for r in responses)
    assert ids == list(range(1, n + 1))
    # Each replica reads every one back.
    for i in (0, 1):
        r = call(replicas, i, "GET", ACTIVITY, params={"page[size]": "1000", "count": "true"},
                 headers=auth_b())
        assert r.status_code == 200, r.text
        assert sorted(int(d["id"]) for d in r.json()["data"]) == ids


def test_concurrent_identical_customer_creates_one_wins(replicas):
    """Many identical creates of one triple over both replicas: exactly one
    is created, every other is the documented 400 relation_already_exists."""
    for _ in range(3):
        triple = {"event_type_id": "race-" + uuid.uuid4().hex[:8], "customer_id": "c1",
                  "external_id": "x1"}

        def create(i):
            body = {"event": triple, "property_records": [{"property_id": "p", "property_value": i}]}
            return call(replicas, i, "POST", CUSTOMER, json=body, headers={**JSON, **auth_a()})

        responses = run(24, create)
        assert_clean(responses)
        codes = sorted(r.status_code for r in responses)
        assert codes == [201] + [400] * 23, codes
        for r in responses:
            if r.status_code == 400:
                params = r.json()["error"]["error_data"]["invalid_params"]
                assert [p["reason"] for p in params] == ["relation_already_exists"], r.text
        r = call(replicas, 1, "GET", CUSTOMER, params={"event_type_id": triple["event_type_id"]},
                 headers=auth_a())
        assert r.status_code == 200 and r.json()["data"]["total_items"] == 1, r.text


def test_concurrent_catalog_creates_all_succeed(replicas):
    def create(i):
        return call(replicas, i, "POST", CATALOG + "/category", json={"title": "same title"},
                    headers={**JSON, **auth_a()})

    responses = run(40, create)
    assert_clean(responses)
    assert [r.status_code for r in responses] == [201] * 40
    assert len({r.json()["id"] for r in responses}) == 40


def test_child_creates_racing_a_parent_delete_leave_no_orphans(replicas):
    """Event properties created under an event while another replica deletes
    the event: each create either fails (400, the parent is gone) or its
    property goes with the event; none outlives its parent."""
    r = call(replicas, 0, "POST", CATALOG + "/category", json={"title": "race"},
             headers={**JSON, **auth_a()})
    assert r.status_code == 201, r.text
    cat = r.json()["id"]
    orphans = 0
    for rnd in range(8):
        r = call(replicas, 0, "POST", CATALOG + "/events", json={"title": f"doomed-{rnd}", "parent": cat},
                 headers={**JSON, **auth_a()})
        assert r.status_code == 201, r.text
        ev = r.json()["id"]

        def work(i):
            if i == 6:
                return call(replicas, i, "DELETE", CATALOG + f"/events/{ev}", headers=auth_a())
            return call(replicas, i, "POST", CATALOG + "/event_properties",
                        json={"title": f"child-{i}", "parent": ev}, headers={**JSON, **auth_a()})

        responses = run(12, work)
        assert_clean(responses)
        assert responses[6].status_code == 200, responses[6].text
        for i, r in enumerate(responses):
            if i != 6:
                assert r.status_code in (201, 400), r.text
        left = call(replicas, 1, "GET", CATALOG + "/event_properties", params={"parent_id": ev},
                    headers=auth_a())
        assert left.status_code == 200, left.text
        orphans += left.json()["count"]
        for i, r in enumerate(responses):
            if i != 6 and r.status_code == 201:
                g = call(replicas, i + 1, "GET", CATALOG + f"/event_properties/{r.json()['id']}",
                         headers=auth_a())
                assert g.status_code == 404, g.text
    assert orphans == 0


def test_concurrent_patches_of_different_fields_all_stick(replicas):
    """Ten patches, each of another field of one catalog event, at once
    over both replicas: all ten changes are there afterwards (no
    read-modify-write of one replica overwrote another's)."""
    values = {"description": "d", "definition": "def", "pii": True, "verified": True,
              "published": True, "teams": [uuid.uuid4().hex], "owners": [uuid.uuid4().hex],
              "collections": [uuid.uuid4().hex], "tags": [uuid.uuid4().hex],
              "subscribers": [uuid.uuid4().hex]}
    fields = sorted(values)
    lost = []
    r = call(replicas, 0, "POST", CATALOG + "/category", json={"title": "patched"},
             headers={**JSON, **auth_a()})
    assert r.status_code == 201, r.text
    cat = r.json()["id"]
    for rnd in range(5):
        r = call(replicas, 0, "POST", CATALOG + "/events", json={"title": f"patched-{rnd}", "parent": cat},
                 headers={**JSON, **auth_a()})
        assert r.status_code == 201, r.text
        eid = r.json()["id"]

        def patch(i):
            return call(replicas, i, "PATCH", CATALOG + f"/events/{eid}",
                        json={fields[i]: values[fields[i]]}, headers={**JSON, **auth_a()})

        responses = run(len(fields), patch)
        assert_clean(responses)
        assert [r.status_code for r in responses] == [200] * len(fields), [r.text for r in responses]
        got = call(replicas, 1, "GET", CATALOG + f"/events/{eid}", headers=auth_a()).json()
        lost += [(rnd, f) for f in fields if got[f] != values[f]]
    assert not lost, f"lost updates: {lost}"


def test_unreachable_service_is_a_generic_503(workdir):
    """A gateway whose service is gone answers 503 without gRPC core's
    transport text (which names the address it tried)."""
    import os
    from conftest import BIN, Process, free_port, wait_port
    port, dead = free_port(), free_port()
    env = dict(os.environ, EVENTS_HTTP_ADDR=f"127.0.0.1:{port}",
               EVENTS_GRPC_TARGET=f"127.0.0.1:{dead}", EVENTS_LOG_LEVEL="warn")
    gw = Process([os.path.join(BIN, "events-gateway")], env,
                 os.path.join(workdir, "replicas-dead-gateway.log"))
    try:
        wait_port(port, gw.proc)
        base = f"http://127.0.0.1:{port}"
        body = {"data": {"type": "event", "attributes": {"name": "x"}}}
        responses = [
            requests.post(base + ACTIVITY, json=body, headers={**MEDIA, **auth_a()}, timeout=30),
            requests.post(base + CUSTOMER, json={"event": {"event_type_id": "t", "customer_id": "c",
                                                           "external_id": "e"}},
                          headers={**JSON, **auth_a()}, timeout=30),
            requests.get(base + "/readyz", timeout=30),
        ]
        for r in responses:
            assert r.status_code == 503, r.text
            assert not LEAKS.search(r.text) and str(dead) not in r.text, r.text
    finally:
        assert gw.stop() == 0
