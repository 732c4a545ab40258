"""Object events (seed 003) end to end on both stores: REST through the
gateway with requests, and the same operations over gRPC with grpcio."""
import json
import re
import uuid

import grpc
import pytest

from conftest import TOKEN_A, TOKEN_B, auth_a, auth_b
from conftest import unwrap

JSON = {"Content-Type": "application/json"}
UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
UUID_ANY = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
WRITABLE = ["name", "description", "source", "record_id", "external_id", "sync_token", "event_type",
            "start_at", "end_at", "location_object", "location_record_id", "location_record_label",
            "review_status", "recommendation_reason", "planning_strategy"]
EVENT_KEYS = set(WRITABLE) | {"id", "object", "created_at", "updated_at"}


def uid():
    return uuid.uuid4().hex[:12]


def events_url(stack, obj):
    return f"{stack.base}/v1/objects/{obj}/events"


def post(stack, obj, body, headers=None):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return stack.http.post(events_url(stack, obj), data=data,
                           headers={**JSON, **(auth_a() if headers is None else headers)}, timeout=10)


def minimal(**extra):
    ev = {"name": "Meeting", "source": "manual", "record_id": "rec-" + uid(),
          "start_at": "2024-05-01T10:00:00Z", "end_at": "2024-05-01T11:00:00Z"}
    ev.update(extra)
    return ev


def create(stack, obj, **extra):
    r = post(stack, obj, minimal(**extra))
    assert r.status_code == 200, r.text
    return r.json()


def get(stack, obj, eid, headers=None):
    return stack.http.get(f"{events_url(stack, obj)}/{eid}", headers=auth_a() if headers is None else headers,
                          timeout=10)


def assert_error(r, status, *names):
    """The dialect's error body; its message names every field in `names`."""
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"status_code", "message", "request_id"}, body
    assert body["status_code"] == status
    assert body["request_id"] == r.headers["X-Request-Id"]
    assert isinstance(body["message"], str) and body["message"]
    for n in names:
        assert n in body["message"], body
    return body


def list_page(stack, obj, headers=None, **params):
    r = stack.http.get(events_url(stack, obj), params=params, headers=auth_a() if headers is None else headers,
                       timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"data", "paging"}
    return body


def list_all(stack, obj, **params):
    """Follows paging.next to the end; returns the events and the page count."""
    out, pages, after = [], 0, None
    while True:
        p = dict(params)
        if after:
            p["after"] = after
        body = list_page(stack, obj, **p)
        out += body["data"]
        pages += 1
        nxt = body["paging"].get("next")
        if not nxt:
            assert body["paging"] == {}
            return out, pages
        assert set(nxt) == {"after"}
        after = nxt["after"]
        assert pages < 100


def test_create_with_every_documented_field(stack):
    obj = "obj-" + uid()
    body = {
        "name": "Quarterly review",
        "description": "Review of Q2 numbers",
        "source": "system_recommendation",
        "record_id": "rec-1",
        "external_id": "ext-1",
        "sync_token": "sync-abc",
        "event_type": "meeting",
        "start_at": "2024-05-01T12:00:00+02:00",
        "end_at": "2024-05-01T11:30:00.250Z",
        "location_object": "locations",
        "location_record_id": "loc-9",
        "location_record_label": "Head office",
        "review_status": "pending",
        "recommendation_reason": "No visit for 90 days",
        "planning_strategy": "ps_01HZX",
    }
    r = post(stack, obj, body)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    ev = r.json()
    assert set(ev) == EVENT_KEYS
    assert UUID7.match(ev["id"]) and ev["object"] == obj
    for k, v in body.items():
        if k not in ("start_at", "end_at"):
            assert ev[k] == v, k
    assert ev["start_at"] == "2024-05-01T10:00:00Z"
    assert ev["end_at"] == "2024-05-01T11:30:00.250Z"
    assert RFC3339.match(ev["created_at"]) and ev["updated_at"] == ev["created_at"]
    assert get(stack, obj, ev["id"]).json() == ev


def test_create_minimal_defaults_and_nulls(stack):
    obj = "obj-" + uid()
    ev = create(stack, obj)
    assert set(ev) == EVENT_KEYS
    assert ev["review_status"] == "approved"
    assert UUID_ANY.match(ev["sync_token"])
    for k in ("description", "external_id", "event_type", "location_object", "location_record_id",
              "location_record_label", "recommendation_reason", "planning_strategy"):
        assert ev[k] is None, k
    # null is the same as absent for the nullable fields
    ev2 = create(stack, obj, sync_token=None, review_status=None, description=None, external_id=None)
    assert UUID_ANY.match(ev2["sync_token"]) and ev2["sync_token"] != ev["sync_token"]
    assert ev2["review_status"] == "approved" and ev2["description"] is None
    assert ev2["id"] > ev["id"]
    # end_at may equal start_at
    create(stack, obj, start_at="2024-05-01T10:00:00Z", end_at="2024-05-01T10:00:00Z")


def test_get_put_delete(stack):
    obj = "obj-" + uid()
    ev = create(stack, obj, description="d", external_id="x1", review_status="rejected")
    eid = ev["id"]
    url = f"{events_url(stack, obj)}/{eid}"
    # Another object or tenant does not have it.
    assert_error(get(stack, "other-" + uid(), eid), 404)
    assert_error(get(stack, obj, eid, headers=auth_b()), 404)
    r = stack.http.put(f"{events_url(stack, 'other')}/{eid}", json=minimal(), headers=auth_a(), timeout=10)
    assert_error(r, 404)
    r = stack.http.put(url, json=minimal(), headers=auth_b(), timeout=10)
    assert_error(r, 404)

    # PUT replaces the writable fields: left-out ones become null or their default.
    new = {"name": "Renamed", "source": "external", "start_at": "2024-06-01T09:00:00Z",
           "end_at": "2024-06-01T09:30:00Z", "event_type": "call", "location_record_label": "Room 4"}
    r = stack.http.put(url, json=new, headers=auth_a(), timeout=10)
    assert r.status_code == 200, r.text
    put = r.json()
    assert set(put) == EVENT_KEYS
    for k, v in new.items():
        assert put[k] == v
    assert put["id"] == eid and put["object"] == obj and put["record_id"] == ev["record_id"]
    assert put["sync_token"] == ev["sync_token"]  # kept when not given
    assert put["description"] is None and put["external_id"] is None
    assert put["review_status"] == "approved"
    assert put["created_at"] == ev["created_at"] and put["updated_at"] >= ev["updated_at"]
    assert get(stack, obj, eid).json() == put

    # The same record_id may be repeated, another one is refused.
    r = stack.http.put(url, json={**new, "record_id": ev["record_id"], "sync_token": "s2",
                                  "source": "system_recommendation", "planning_strategy": "p"},
                       headers=auth_a(), timeout=10)
    assert r.status_code == 200 and r.json()["sync_token"] == "s2" and r.json()["planning_strategy"] == "p"
    r = stack.http.put(url, json={**new, "record_id": "another"}, headers=auth_a(), timeout=10)
    assert_error(r, 400, "record_id")

    # PUT validates like POST and changes nothing when it refuses.
    before = get(stack, obj, eid).json()
    for bad, field in ((dict(new, name=None), "name"), ({k: v for k, v in new.items() if k != "start_at"}, "start_at"),
                       (dict(new, end_at="2024-05-01T00:00:00Z"), "end_at"),
                       (dict(new, recommendation_reason="r"), "recommendation_reason"),
                       (dict(new, id=eid), "id"), (dict(new, colour="red"), "colour"),
                       (dict(new, review_status="maybe"), "review_status")):
        r = stack.http.put(url, json=bad, headers=auth_a(), timeout=10)
        assert_error(r, 400, field)
    r = stack.http.put(url, data="{", headers={**JSON, **auth_a()}, timeout=10)
    assert_error(r, 400)
    assert get(stack, obj, eid).json() == before

    # DELETE answers the deleted event; then it is gone.
    assert_error(stack.http.delete(f"{events_url(stack, 'other')}/{eid}", headers=auth_a(), timeout=10), 404)
    assert_error(stack.http.delete(url, headers=auth_b(), timeout=10), 404)
    r = stack.http.delete(url, headers=auth_a(), timeout=10)
    assert r.status_code == 200 and r.json() == before
    assert_error(get(stack, obj, eid), 404)
    assert_error(stack.http.delete(url, headers=auth_a(), timeout=10), 404)
    assert_error(stack.http.put(url, json=new, headers=auth_a(), timeout=10), 404)


BAD_BODIES = [
    ('{"name": ', None),
    ('[]', None),
    ('"text"', None),
    ('', None),
    (minimal(name=None), "name"),
    (minimal(name=""), "name"),
    (minimal(name=5), "name"),
    (minimal(name="x" * 256), "name"),
    (minimal(description="x" * 10001), "description"),
    (minimal(external_id="x" * 256), "external_id"),
    (minimal(description=["a"]), "description"),
    (minimal(source=None), "source"),
    (minimal(source="phone"), "source"),
    (minimal(source=1), "source"),
    (minimal(source="MANUAL"), "source"),
    (minimal(record_id=None), "record_id"),
    (minimal(record_id=""), "record_id"),
    (minimal(record_id=42), "record_id"),
    (minimal(start_at=None), "start_at"),
    (minimal(end_at=None), "end_at"),
    (minimal(start_at="yesterday"), "start_at"),
    (minimal(start_at="2024-13-01T10:00:00Z"), "start_at"),
    (minimal(end_at=1714557600), "end_at"),
    (minimal(end_at="2024-05-01T09:59:59Z"), "end_at"),
    (minimal(review_status="done"), "review_status"),
    (minimal(review_status=True), "review_status"),
    (minimal(recommendation_reason="because"), "recommendation_reason"),
    (minimal(source="external", planning_strategy="p1"), "planning_strategy"),
    (minimal(sync_token={"a": 1}), "sync_token"),
    (minimal(colour="red"), "colour"),
    (minimal(id="0190a5b2-0000-7000-8000-000000000000"), "id"),
    (minimal(created_at="2024-05-01T10:00:00Z"), "created_at"),
    (minimal(object="elsewhere"), "object"),
]


@pytest.mark.parametrize("body,field", BAD_BODIES, ids=[str(i) for i in range(len(BAD_BODIES))])
def test_bad_create_bodies_store_nothing(stack, body, field):
    obj = "bad-" + uid()
    r = post(stack, obj, body)
    assert_error(r, 400, *([field] if field else []))
    assert list_page(stack, obj)["data"] == []


def test_missing_required_fields_are_all_named(stack):
    r = post(stack, "obj-" + uid(), {})
    body = assert_error(r, 400, "name", "source", "record_id", "start_at", "end_at")
    assert "event." not in body["message"]


@pytest.fixture(scope="module")
def dataset(stack):
    """14 events of one object (plus one of another object), created in order."""
    obj = "list-" + uid()
    specs = []
    for i in range(14):
        spec = minimal(name=f"ev{i:02d}", record_id=f"rec{i % 3}",
                       source=["external", "manual", "system_recommendation"][i % 3],
                       review_status=["pending", "approved", "rejected", "approved"][i % 4],
                       event_type="call" if i % 2 else "visit",
                       start_at=f"2024-03-{i + 1:02d}T08:00:00Z",
                       end_at=f"2024-03-{i + 1:02d}T{9 + i % 5:02d}:00:00Z")
        if i % 4 == 0:
            spec["external_id"] = f"ext{i}"
        if i == 5:
            spec["sync_token"] = "tok-five"
        specs.append(spec)
    events = []
    for s in specs:
        r = post(stack, obj, s)
        assert r.status_code == 200, r.text
        events.append(r.json())
    create(stack, "other-" + uid(), record_id="rec0")
    return obj, events


def ids(evs):
    return [e["id"] for e in evs]


def test_list_everything_oldest_first(stack, dataset):
    obj, events = dataset
    body = list_page(stack, obj)
    assert body["data"] == events and body["paging"] == {}
    assert ids(events) == sorted(ids(events))


@pytest.mark.parametrize("limit", [1, 3, 5, 13, 14, 1000])
def test_pages_neither_skip_nor_repeat(stack, dataset, limit):
    obj, events = dataset
    got, pages = list_all(stack, obj, limit=limit)
    assert ids(got) == ids(events)
    assert pages == max(1, -(-len(events) // limit))


def test_pages_with_a_filter(stack, dataset):
    obj, events = dataset
    want = [e for e in events if e["event_type"] == "call"]
    got, pages = list_all(stack, obj, event_type="call", limit=2)
    assert ids(got) == ids(want) and pages == 4


def test_list_filters(stack, dataset):
    obj, events = dataset

    def check(params, pred):
        got = list_page(stack, obj, **params)["data"]
        want = [e for e in events if pred(e)]
        assert ids(got) == ids(want), params
        assert want, params
        return got

    check({"record_id": "rec1"}, lambda e: e["record_id"] == "rec1")
    check({"external_id": "ext8"}, lambda e: e["external_id"] == "ext8")
    check({"sync_token": "tok-five"}, lambda e: e["sync_token"] == "tok-five")
    check({"sync_token": events[3]["sync_token"]}, lambda e: e["id"] == events[3]["id"])
    for s in ("external", "manual", "system_recommendation"):
        check({"source": s}, lambda e, s=s: e["source"] == s)
    for s in ("pending", "approved", "rejected"):
        check({"review_status": s}, lambda e, s=s: e["review_status"] == s)
    check({"event_type": "visit"}, lambda e: e["event_type"] == "visit")
    check({"start_at_gte": "2024-03-05T08:00:00Z"}, lambda e: e["start_at"] >= "2024-03-05T08:00:00Z")
    check({"start_at_lte": "2024-03-05T08:00:00Z"}, lambda e: e["start_at"] <= "2024-03-05T08:00:00Z")
    check({"start_at_gte": "2024-03-03T00:00:00Z", "start_at_lte": "2024-03-06T00:00:00Z"},
          lambda e: "2024-03-03" <= e["start_at"][:10] < "2024-03-06")
    check({"end_at_gte": "2024-03-10T12:00:00Z"}, lambda e: e["end_at"] >= "2024-03-10T12:00:00Z")
    check({"end_at_lte": "2024-03-04T10:00:00Z"}, lambda e: e["end_at"] <= "2024-03-04T10:00:00Z")
    # ISO 8601 with an offset is the same instant.
    check({"start_at_gte": "2024-03-05T10:00:00+02:00"}, lambda e: e["start_at"] >= "2024-03-05T08:00:00Z")
    check({"has_external_id": "true"}, lambda e: e["external_id"] is not None)
    check({"has_external_id": "false"}, lambda e: e["external_id"] is None)
    check({"record_id": "rec0", "source": "external", "has_external_id": "true"},
          lambda e: e["record_id"] == "rec0" and e["source"] == "external" and e["external_id"])
    assert list_page(stack, obj, record_id="none")["data"] == []


def test_default_limit_is_100(stack):
    obj = "many-" + uid()
    made = [create(stack, obj, name=f"n{i}")["id"] for i in range(101)]
    body = list_page(stack, obj)
    assert ids(body["data"]) == made[:100] and "after" in body["paging"]["next"]
    rest = list_page(stack, obj, after=body["paging"]["next"]["after"])
    assert ids(rest["data"]) == made[100:] and rest["paging"] == {}


@pytest.mark.parametrize("query,name", [
    ("limit=0", "limit"), ("limit=1001", "limit"), ("limit=-5", "limit"), ("limit=abc", "limit"),
    ("limit=1.5", "limit"), ("limit=99999999999999999999", "limit"),
    ("after=not-a-cursor", "after"), ("after=", "after"),
    ("source=phone", "source"), ("source=1", "source"), ("review_status=done", "review_status"),
    ("start_at_gte=yesterday", "start_at_gte"), ("start_at_lte=2024-02-30T00:00:00Z", "start_at_lte"),
    ("end_at_gte=2024", "end_at_gte"), ("end_at_lte=x", "end_at_lte"),
    ("has_external_id=maybe", "has_external_id"), ("colour=red", "colour"),
    ("limit=5&limit=6", "limit"),
])
def test_bad_list_parameters(stack, query, name):
    r = stack.http.get(events_url(stack, "o1") + "?" + query, headers=auth_a(), timeout=10)
    assert_error(r, 400, name)


def test_tampered_and_foreign_cursors(stack, dataset):
    obj, events = dataset
    after = list_page(stack, obj, limit=2)["paging"]["next"]["after"]
    r = stack.http.get(events_url(stack, obj), params={"after": after[:-2] + ("AA" if after[-2:] != "AA" else "BB")},
                       headers=auth_a(), timeout=10)
    assert_error(r, 400, "after")
    # A cursor is only a position: another tenant walks its own (empty) data.
    assert list_page(stack, obj, headers=auth_b(), after=after)["data"] == []


def test_bad_ids(stack):
    r = get(stack, "o1", "not-a-uuid")
    assert_error(r, 400, "eventId")
    r = stack.http.delete(f"{events_url(stack, 'o1')}/1234", headers=auth_a(), timeout=10)
    assert_error(r, 400, "eventId")
    r = stack.http.put(f"{events_url(stack, 'o1')}/xyz", json=minimal(), headers=auth_a(), timeout=10)
    assert_error(r, 400, "eventId")
    long_obj = "o" * 300
    assert_error(post(stack, long_obj, minimal()), 400, "objectId")
    assert_error(stack.http.get(events_url(stack, long_obj), headers=auth_a(), timeout=10), 400, "objectId")
    # A well-formed id that does not exist; upper case finds the same event.
    assert_error(get(stack, "o1", str(uuid.uuid4())), 404)
    obj = "case-" + uid()
    ev = create(stack, obj)
    assert get(stack, obj, ev["id"].upper()).json()["id"] == ev["id"]


def test_unknown_query_on_single_routes(stack):
    obj = "q-" + uid()
    ev = create(stack, obj)
    url = f"{events_url(stack, obj)}/{ev['id']}"
    assert_error(stack.http.get(url + "?expand=1", headers=auth_a(), timeout=10), 400, "expand")
    assert_error(stack.http.delete(url + "?force=1", headers=auth_a(), timeout=10), 400, "force")
    r = stack.http.post(events_url(stack, obj) + "?dry_run=1", json=minimal(), headers=auth_a(), timeout=10)
    assert_error(r, 400, "dry_run")
    assert get(stack, obj, ev["id"]).status_code == 200
    assert len(list_page(stack, obj)["data"]) == 1


def test_tenancy(stack):
    obj = "tenant-" + uid()
    ev = create(stack, obj)
    assert list_page(stack, obj, headers=auth_b())["data"] == []
    assert_error(get(stack, obj, ev["id"], headers=auth_b()), 404)
    r = post(stack, obj, minimal(), headers=auth_b())
    assert r.status_code == 200
    assert ids(list_page(stack, obj)["data"]) == [ev["id"]]
    assert ids(list_page(stack, obj, headers=auth_b())["data"]) == [r.json()["id"]]


def test_credentials(stack):
    obj = "auth-" + uid()
    for h in ({}, {"Authorization": "Bearer sk:nope"}, {"Authorization": "garbage"}):
        assert_error(stack.http.get(events_url(stack, obj), headers=h, timeout=10), 401)
        assert_error(post(stack, obj, minimal(), headers=h), 401)
        assert_error(get(stack, obj, str(uuid.uuid4()), headers=h), 401)
    assert list_page(stack, obj)["data"] == []


def test_unknown_method_and_request_id(stack):
    r = stack.http.patch(f"{events_url(stack, 'o1')}/{uuid.uuid4()}", json={}, headers=auth_a(), timeout=10)
    assert_error(r, 405)
    r = stack.http.get(events_url(stack, "o1") + "?limit=0", headers={**auth_a(), "X-Request-Id": "my-req-7"}, timeout=10)
    assert assert_error(r, 400, "limit")["request_id"] == "my-req-7"
    r = stack.http.post(events_url(stack, "o1"), data=b"{" + b" " * (1 << 20) + b"}",
                        headers={**JSON, **auth_a()}, timeout=10)
    assert_error(r, 413)


def test_openapi_lists_object_paths(stack):
    doc = stack.http.get(stack.base + "/openapi.json", timeout=10).json()
    assert set(doc["paths"]["/v1/objects/{objectId}/events"]) >= {"get", "post"}
    assert set(doc["paths"]["/v1/objects/{objectId}/events/{eventId}"]) >= {"get", "put", "delete"}


# ---- gRPC ----

SVC = "/events.object.v1.ObjectEventService/"


def rpc(stack, pb, name, req, resp_type, token=TOKEN_A):
    m = pb("events/object/v1/object")
    call = stack.channel.unary_unary(SVC + name, request_serializer=req.SerializeToString,
                                     response_deserializer=getattr(m, name + "Response").FromString)
    md = [("authorization", f"Bearer {token}")] if token else None
    return unwrap(call(req, timeout=10, metadata=md))


def bad_request(pb, err):
    status = pb("google/rpc/status")
    details = pb("google/rpc/error_details")
    for k, v in err.trailing_metadata():
        if k == "grpc-status-details-bin":
            st = status.Status.FromString(v)
            for any_ in st.details:
                if any_.type_url.endswith("google.rpc.BadRequest"):
                    return details.BadRequest.FromString(any_.value)
    return None


def rpc_error(stack, pb, name, req, resp_type, code, token=TOKEN_A):
    with pytest.raises(grpc.RpcError) as e:
        rpc(stack, pb, name, req, resp_type, token=token)
    assert e.value.code() == code, e.value.details()
    return e.value


def grpc_event(m, ts, **kw):
    ev = m.Event(**{"name": "Call", "source": m.SOURCE_MANUAL, "record_id": "r1", **kw})
    ev.start_at.FromJsonString("2024-05-01T10:00:00Z")
    ev.end_at.FromJsonString("2024-05-01T10:30:00Z")
    return ev


def test_grpc_operations(stack, pb):
    m = pb("events/object/v1/object")
    ts = pb("google/protobuf/timestamp")
    obj = "grpc-" + uid()
    ev = rpc(stack, pb, "CreateEvent", m.CreateEventRequest(object_id=obj, event=grpc_event(m, ts)), "Event")
    assert UUID7.match(ev.id) and ev.object == obj
    assert ev.review_status == m.REVIEW_STATUS_APPROVED and UUID_ANY.match(ev.sync_token.value)
    assert not ev.HasField("description") and ev.created_at == ev.updated_at
    got = rpc(stack, pb, "GetEvent", m.GetEventRequest(object_id=obj, event_id=ev.id), "Event")
    assert got == ev
    # The REST view of the gRPC-created event.
    r = get(stack, obj, ev.id)
    assert r.json()["source"] == "manual" and r.json()["start_at"] == "2024-05-01T10:00:00Z"

    ev2 = rpc(stack, pb, "CreateEvent", m.CreateEventRequest(
        object_id=obj, event=grpc_event(m, ts, external_id={"value": "e2"}, review_status=m.REVIEW_STATUS_PENDING)), "Event")
    lst = rpc(stack, pb, "ListEvents", m.ListEventsRequest(object_id=obj, page_size=1), "ListEventsResponse")
    assert [e.id for e in lst.events] == [ev.id] and lst.next_page_token
    lst = rpc(stack, pb, "ListEvents", m.ListEventsRequest(object_id=obj, page_size=1, page_token=lst.next_page_token),
              "ListEventsResponse")
    assert [e.id for e in lst.events] == [ev2.id] and lst.next_page_token == ""
    for req, want in ((m.ListEventsRequest(object_id=obj, has_external_id={"value": True}), [ev2.id]),
                      (m.ListEventsRequest(object_id=obj, review_status=m.REVIEW_STATUS_APPROVED), [ev.id]),
                      (m.ListEventsRequest(object_id=obj, source=m.SOURCE_MANUAL), [ev.id, ev2.id]),
                      (m.ListEventsRequest(object_id=obj, external_id={"value": "e2"}), [ev2.id])):
        assert [e.id for e in rpc(stack, pb, "ListEvents", req, "ListEventsResponse").events] == want

    upd = grpc_event(m, ts, description={"value": "now with notes"})
    out = rpc(stack, pb, "UpdateEvent", m.UpdateEventRequest(object_id=obj, event_id=ev.id, event=upd), "Event")
    assert out.description.value == "now with notes" and out.sync_token == ev.sync_token
    assert out.created_at == ev.created_at
    deleted = rpc(stack, pb, "DeleteEvent", m.DeleteEventRequest(object_id=obj, event_id=ev.id), "Event")
    assert deleted == out
    rpc_error(stack, pb, "GetEvent", m.GetEventRequest(object_id=obj, event_id=ev.id), "Event",
              grpc.StatusCode.NOT_FOUND)
    rpc_error(stack, pb, "GetEvent", m.GetEventRequest(object_id=obj, event_id=ev2.id), "Event",
              grpc.StatusCode.NOT_FOUND, token=TOKEN_B)
    rpc_error(stack, pb, "GetEvent", m.GetEventRequest(object_id="elsewhere", event_id=ev2.id), "Event",
              grpc.StatusCode.NOT_FOUND)
    rpc_error(stack, pb, "ListEvents", m.ListEventsRequest(object_id=obj), "ListEventsResponse",
              grpc.StatusCode.UNAUTHENTICATED, token=None)


def test_grpc_field_violations(stack, pb):
    m = pb("events/object/v1/object")
    ts = pb("google/protobuf/timestamp")

    def violations(name, req, resp_type):
        err = rpc_error(stack, pb, name, req, resp_type, grpc.StatusCode.INVALID_ARGUMENT)
        br = bad_request(pb, err)
        assert br is not None
        return {v.field: v.reason for v in br.field_violations}

    v = violations("CreateEvent", m.CreateEventRequest(object_id="o", event=m.Event()), "Event")
    assert v == {"event.name": "required", "event.source": "required", "event.record_id": "required",
                 "event.start_at": "required", "event.end_at": "required"}
    v = violations("CreateEvent", m.CreateEventRequest(event=grpc_event(m, ts)), "Event")
    assert v == {"object_id": "required"}
    v = violations("CreateEvent", m.CreateEventRequest(object_id="o"), "Event")
    assert v == {"event": "required"}
    bad = grpc_event(m, ts, recommendation_reason={"value": "r"}, planning_strategy={"value": "p"})
    bad.end_at.FromJsonString("2024-05-01T09:00:00Z")
    v = violations("CreateEvent", m.CreateEventRequest(object_id="o", event=bad), "Event")
    assert v == {"event.end_at": "out_of_range", "event.recommendation_reason": "not_allowed_value",
                 "event.planning_strategy": "not_allowed_value"}
    bad = grpc_event(m, ts, name="x" * 300)
    bad.source = 9
    v = violations("CreateEvent", m.CreateEventRequest(object_id="o", event=bad), "Event")
    assert set(v) == {"event.name", "event.source"}
    v = violations("GetEvent", m.GetEventRequest(object_id="o", event_id="nope"), "Event")
    assert v == {"event_id": "invalid_value_format"}
    v = violations("ListEvents", m.ListEventsRequest(object_id="o", page_size=1001), "ListEventsResponse")
    assert v == {"page_size": "out_of_range"}
    v = violations("ListEvents", m.ListEventsRequest(object_id="o", page_token="garbage"), "ListEventsResponse")
    assert v == {"page_token": "invalid_value_format"}
    v = violations("UpdateEvent", m.UpdateEventRequest(object_id="o", event_id=str(uuid.uuid4())), "Event")
    assert v == {"event": "required"}
    assert list_page(stack, "o")["data"] == []


def test_service_log_is_clean(stack):
    """Sanitizer reports would land in the service and gateway logs."""
    for proc in (stack.service, stack.gateway):
        out = proc.output()
        assert "AddressSanitizer" not in out and "runtime error" not in out, out[-4000:]
