"""Customer events (seed 001) end to end on both stores: REST through the
gateway with requests, and the same operations over gRPC with grpcio."""
import json
import re
import uuid

import grpc
import pytest

from conftest import TOKEN_A, auth_a, auth_b, basic_a
from conftest import unwrap

BASE = "/rest-api/enterprise-interface/v1.0"
JSON = {"Content-Type": "application/json", "Accept-Language": "cs, en-gb;q=0.8"}
SQL_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


def uid():
    return uuid.uuid4().hex[:12]


def create(stack, event, records=None, headers=None):
    body = {"event": event}
    if records is not None:
        body["property_records"] = records
    return stack.http.post(stack.base + BASE + "/events", json=body,
                           headers={**JSON, **(headers or auth_a())}, timeout=10)


def assert_error(r, status, name=None, reason=None):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["type"] == "about:blank"
    for k in ("exception", "title", "detail", "error_data"):
        assert k in err
    if name is not None:
        params = err["error_data"]["invalid_params"]
        assert any(name in p["name"] and (reason is None or p["reason"] == reason) for p in params), params
        for p in params:
            assert set(p) == {"name", "reason", "value", "message"}
    return err


def test_seed_create_example(stack):
    """The documented POST, as printed, with credentials of our tenant."""
    ext = "aaabbbccc-" + uid()
    raw = """{
  "event": {
    "event_type_id" : "8bed991c68a470e7aaeffbf048",
    "customer_id" : "85bc5819e09dab95437552ce79",
    "external_id" : "%s"
  },
    "property_records": [
        {
            "property_id": "has_purchase",
            "property_value": "true"
        }
    ]
}""" % ext
    r = stack.http.post(stack.base + BASE + "/events", data=raw, headers={**JSON, **basic_a()}, timeout=10)
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert list(body) == ["data"] and list(body["data"]) == ["event_id"]
    assert re.fullmatch(r"[0-9a-f]{26}", body["data"]["event_id"])
    event_id = body["data"]["event_id"]

    r = stack.http.get(stack.base + BASE + "/events/" + event_id, headers=auth_a(), timeout=10)
    assert r.status_code == 200
    ev = r.json()["data"]
    assert ev == {
        "event_id": event_id, "event_type_id": "8bed991c68a470e7aaeffbf048",
        "customer_id": "85bc5819e09dab95437552ce79", "external_id": ext, "data": None,
        "created_at": ev["created_at"], "secondary_external_id": None, "state": 1}
    assert SQL_TIME.match(ev["created_at"])

    r = stack.http.get(stack.base + BASE + "/events/" + event_id + "/property-records",
                       headers=auth_a(), timeout=10)
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["total_items"] == 1
    rec = data["property_records"][0]
    assert set(rec) == {"property_record_id", "property_id", "property_value", "last_change"}
    assert rec["property_id"] == "has_purchase" and rec["property_value"] == "true"
    assert SQL_TIME.match(rec["last_change"])

    # The seed's list example: filter by event type, count=2.
    r = stack.http.get(stack.base + BASE + "/events?event_type_id=8bed991c68a470e7aaeffbf048&count=2",
                       headers=auth_a(), timeout=10)
    assert r.status_code == 200
    data = r.json()["data"]
    assert set(data) == {"events", "total_items"}
    assert 1 <= len(data["events"]) <= 2 and data["total_items"] >= 1
    assert all("property_records" not in e for e in data["events"])


def test_property_values_and_data(stack):
    values = ["s", 12, 1.5, True, [1, "a"], {"k": {"n": 1}}]
    recs = [{"property_id": f"p{i}", "property_value": v} for i, v in enumerate(values)]
    r = create(stack, {"event_type_id": "t-" + uid(), "customer_id": "c", "external_id": "e",
                       "data": {"test": 10, "test2": 20}, "secondary_external_id": "sec"}, recs)
    assert r.status_code == 201, r.text
    eid = r.json()["data"]["event_id"]
    r = stack.http.get(stack.base + BASE + f"/events/{eid}?include_property_records=true",
                       headers=auth_a(), timeout=10)
    ev = r.json()["data"]
    assert json.loads(ev["data"]) == {"test": 10, "test2": 20}
    assert ev["secondary_external_id"] == "sec"
    assert [p["property_value"] for p in ev["property_records"]] == values
    # data given as a string stays that string
    r = create(stack, {"event_type_id": "t-" + uid(), "customer_id": "c", "external_id": "e",
                       "data": "{\"a\":1}"})
    eid = r.json()["data"]["event_id"]
    ev = stack.http.get(stack.base + BASE + f"/events/{eid}", headers=auth_a(), timeout=10).json()["data"]
    assert ev["data"] == "{\"a\":1}"


def test_duplicate_triple_is_relation_already_exists(stack):
    ev = {"event_type_id": "dup-" + uid(), "customer_id": "c1", "external_id": "x1"}
    assert create(stack, ev, [{"property_id": "a", "property_value": 1}]).status_code == 201
    r = create(stack, ev, [{"property_id": "b", "property_value": 2}])
    assert_error(r, 400, "external_id", "relation_already_exists")
    r = stack.http.get(stack.base + BASE + f"/events?event_type_id={ev['event_type_id']}",
                       headers=auth_a(), timeout=10)
    assert r.json()["data"]["total_items"] == 1
    # another customer or external id is a different event
    assert create(stack, {**ev, "customer_id": "c2"}).status_code == 201
    assert create(stack, {**ev, "external_id": "x2"}).status_code == 201


@pytest.mark.parametrize("body,name,reason", [
    ('{"event": {', None, None),
    ('[]', None, None),
    ('{"event": {"event_type_id": 5, "customer_id": "c", "external_id": "e"}}', "event_type_id", "invalid_value_format"),
    ('{"event": {"customer_id": "c", "external_id": "e"}}', "event_type_id", "required"),
    ('{"event": {"event_type_id": "t", "external_id": "e"}}', "customer_id", "required"),
    ('{"event": {"event_type_id": "t", "customer_id": "c"}}', "external_id", "required"),
    ('{"property_records": []}', "event", "required"),
    ('{"event": {"event_type_id": "t", "customer_id": "c", "external_id": "e", "colour": 1}}', "colour", "not_allowed_value"),
    ('{"event": {"event_type_id": "t", "customer_id": "c", "external_id": "e"}, "extra": 1}', "extra", "not_allowed_value"),
    ('{"event": {"event_type_id": "%s", "customer_id": "c", "external_id": "e"}}' % ("x" * 300), "event_type_id", "invalid_value_format"),
    ('{"event": {"event_type_id": "t", "customer_id": "c", "external_id": "e"}, "property_records": [{"property_value": 1}]}', "property_id", "required"),
    ('{"event": {"event_type_id": "t", "customer_id": "c", "external_id": "e"}, "property_records": [{"property_id": "p"}]}', "property_value", "required"),
    ('{"event": {"event_type_id": "t", "customer_id": "c", "external_id": "e"}, "property_records": {"a": 1}}', "property_records", None),
    ('{"event": {"event_type_id": "t", "customer_id": "c", "external_id": "e", "state": "x"}}', "state", None),
])
def test_bad_create_bodies(stack, body, name, reason):
    before = stack.http.get(stack.base + BASE + "/events?count=1", headers=auth_a(), timeout=10).json()["data"]["total_items"]
    r = stack.http.post(stack.base + BASE + "/events", data=body, headers={**JSON, **auth_a()}, timeout=10)
    assert_error(r, 400, name, reason)
    after = stack.http.get(stack.base + BASE + "/events?count=1", headers=auth_a(), timeout=10).json()["data"]["total_items"]
    assert after == before


def test_too_many_property_records_stores_nothing(stack):
    et = "many-" + uid()
    recs = [{"property_id": f"p{i}", "property_value": i} for i in range(1001)]
    r = create(stack, {"event_type_id": et, "customer_id": "c", "external_id": "e"}, recs)
    assert_error(r, 400, "property_records")
    r = stack.http.get(stack.base + BASE + f"/events?event_type_id={et}", headers=auth_a(), timeout=10)
    assert r.json()["data"]["total_items"] == 0
    r = create(stack, {"event_type_id": et, "customer_id": "c", "external_id": "e"}, recs[:1000])
    assert r.status_code == 201


@pytest.fixture(scope="module")
def dataset(stack):
    """12 events of one type over 3 customers, created one after another."""
    et = "list-" + uid()
    ids = []
    for i in range(12):
        r = create(stack, {"event_type_id": et, "customer_id": f"cust{i % 3}", "external_id": f"ext{i:02d}"},
                   [{"property_id": "n", "property_value": i}])
        assert r.status_code == 201
        ids.append(r.json()["data"]["event_id"])
    return et, ids


def list_events(stack, **params):
    r = stack.http.get(stack.base + BASE + "/events", params=params, headers=auth_a(), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_list_filters(stack, dataset):
    et, ids = dataset
    d = list_events(stack, event_type_id=et)
    assert d["total_items"] == 12 and len(d["events"]) == 12
    d = list_events(stack, event_type_id=et, customer_id="cust1")
    assert d["total_items"] == 4 and {e["customer_id"] for e in d["events"]} == {"cust1"}
    d = list_events(stack, event_type_id=et, external_id="ext05")
    assert d["total_items"] == 1 and d["events"][0]["event_id"] == ids[5]
    d = list_events(stack, event_type_id=et, include_property_records="true", count=1)
    assert d["events"][0]["property_records"][0]["property_id"] == "n"
    first = list_events(stack, event_type_id=et, sort_field="created_at", count=1)["events"][0]["created_at"]
    d = list_events(stack, event_type_id=et, time_from=first)
    assert d["total_items"] == 12
    d = list_events(stack, event_type_id=et, time_to="2000-01-01 00:00:00")
    assert d["total_items"] == 0
    d = list_events(stack, event_type_id=et, time_from="2000-01-01T00:00:00Z", time_to="2999-01-01T00:00:00Z")
    assert d["total_items"] == 12


def test_list_sort_and_offset_pages(stack, dataset):
    et, ids = dataset
    for field in ("created_at", "event_type_id", "customer_id", "external_id"):
        for direction in ("ASC", "DESC"):
            seen = []
            offset = 0
            while True:
                d = list_events(stack, event_type_id=et, sort_field=field, sort_direction=direction,
                                count=5, offset=offset)
                assert d["total_items"] == 12
                seen += d["events"]
                if len(d["events"]) < 5:
                    break
                offset += 5
            assert len(seen) == 12 and len({e["event_id"] for e in seen}) == 12
            keys = [e[field] for e in seen]
            assert keys == sorted(keys, reverse=direction == "DESC")
    d = list_events(stack, event_type_id=et, sort_field="external_id", sort_direction="ASC", count=3, offset=3)
    assert [e["external_id"] for e in d["events"]] == ["ext03", "ext04", "ext05"]
    d = list_events(stack, event_type_id=et, offset=100)
    assert d["events"] == [] and d["total_items"] == 12


@pytest.mark.parametrize("query,name", [
    ("count=0", "count"), ("count=1001", "count"), ("count=abc", "count"), ("count=-1", "count"),
    ("offset=-1", "offset"), ("offset=x", "offset"), ("sort_field=colour", "sort_field"),
    ("sort_direction=UP", "sort_direction"), ("time_from=yesterday", "time_from"),
    ("unknown=1", "unknown"), ("include_property_records=maybe", "include_property_records"),
    ("count=99999999999999999999", "count"),
])
def test_bad_list_parameters(stack, query, name):
    r = stack.http.get(stack.base + BASE + "/events?" + query, headers=auth_a(), timeout=10)
    assert_error(r, 400, name)


@pytest.mark.parametrize("event_id", ["nothex", "85c7c9d1ccf6c6dfed34edc8d", "85C7C9D1CCF6C6DFED34EDC8D2"])
def test_bad_event_ids(stack, event_id):
    r = stack.http.get(stack.base + BASE + "/events/" + event_id, headers=auth_a(), timeout=10)
    assert_error(r, 400, "event_id")


def test_not_found_and_tenancy(stack, dataset):
    et, ids = dataset
    r = stack.http.get(stack.base + BASE + "/events/85c7c9d1ccf6c6dfed34edc8d2", headers=auth_a(), timeout=10)
    err = assert_error(r, 404)
    assert err["error_data"] == {"resource_name": "events", "resource_id": "85c7c9d1ccf6c6dfed34edc8d2"}
    for path in (f"/events/{ids[0]}", f"/events/{ids[0]}/property-records"):
        r = stack.http.get(stack.base + BASE + path, headers=auth_b(), timeout=10)
        assert_error(r, 404)
    d = stack.http.get(stack.base + BASE + f"/events?event_type_id={et}", headers=auth_b(), timeout=10).json()["data"]
    assert d == {"events": [], "total_items": 0}
    # Tenant B may create the same triple: uniqueness is per tenant.
    r = create(stack, {"event_type_id": et, "customer_id": "cust0", "external_id": "ext00"}, headers=auth_b())
    assert r.status_code == 201


def test_credentials(stack):
    for h in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic Zm9vOmJhcg=="}):
        r = stack.http.get(stack.base + BASE + "/events", headers=h, timeout=10)
        assert_error(r, 401)
        r = stack.http.post(stack.base + BASE + "/events", json={"event": {}}, headers={**JSON, **h}, timeout=10)
        assert r.status_code == 401
    assert stack.http.get(stack.base + BASE + "/events", headers=basic_a(), timeout=10).status_code == 200


def test_unknown_path_and_method(stack):
    r = stack.http.get(stack.base + BASE + "/nothing", headers=auth_a(), timeout=10)
    assert_error(r, 404)
    r = stack.http.delete(stack.base + BASE + "/events", headers=auth_a(), timeout=10)
    assert_error(r, 405)


def test_openapi_lists_customer_paths(stack):
    doc = stack.http.get(stack.base + "/openapi.json", timeout=10).json()
    for p in ("/events", "/events/{event_id}", "/events/{event_id}/property-records"):
        assert BASE + p in doc["paths"]
    assert "post" in doc["paths"][BASE + "/events"]


# ---- gRPC ----

def rpc(stack, pb, name, req, resp_type, token=TOKEN_A):
    m = pb("events/customer/v1/customer")
    call = stack.channel.unary_unary(f"/events.customer.v1.CustomerEventService/{name}",
                                     request_serializer=req.SerializeToString,
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


def test_grpc_operations(stack, pb):
    m = pb("events/customer/v1/customer")
    sp = pb("google/protobuf/struct")
    et = "grpc-" + uid()
    req = m.CreateEventRequest(event=m.Event(event_type_id=et, customer_id="c", external_id="e"),
                               property_records=[m.PropertyRecord(property_id="p", property_value=sp.Value(number_value=3))])
    eid = rpc(stack, pb, "CreateEvent", req, "CreateEventResponse").event_id
    assert re.fullmatch(r"[0-9a-f]{26}", eid)
    ev = rpc(stack, pb, "GetEvent", m.GetEventRequest(event_id=eid, include_property_records=True), "Event")
    assert ev.event_type_id == et and ev.state == 1 and ev.property_records[0].property_value.number_value == 3
    lst = rpc(stack, pb, "ListEvents", m.ListEventsRequest(event_type_id={"value": et}), "ListEventsResponse")
    assert lst.total_items == 1 and lst.events[0].event_id == eid
    recs = rpc(stack, pb, "ListPropertyRecords", m.ListPropertyRecordsRequest(event_id=eid), "ListPropertyRecordsResponse")
    assert recs.total_items == 1
    # The REST view of the gRPC-created event.
    r = stack.http.get(stack.base + BASE + "/events/" + eid, headers=auth_a(), timeout=10)
    assert r.json()["data"]["event_type_id"] == et

    with pytest.raises(grpc.RpcError) as e:
        rpc(stack, pb, "CreateEvent", req, "CreateEventResponse")
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    br = bad_request(pb, e.value)
    assert br.field_violations[0].reason == "relation_already_exists"

    with pytest.raises(grpc.RpcError) as e:
        rpc(stack, pb, "CreateEvent", m.CreateEventRequest(event=m.Event(customer_id="c")), "CreateEventResponse")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in bad_request(pb, e.value).field_violations}
    assert {"event.event_type_id", "event.external_id"} <= fields

    with pytest.raises(grpc.RpcError) as e:
        rpc(stack, pb, "GetEvent", m.GetEventRequest(event_id=eid), "Event", token="sk:tenant-b-secret")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as e:
        rpc(stack, pb, "ListEvents", m.ListEventsRequest(page_size=5000), "ListEventsResponse")
    assert bad_request(pb, e.value).field_violations[0].field == "page_size"

    upd = rpc(stack, pb, "UpdateEvent", m.UpdateEventRequest(
        event=m.Event(event_id=eid, secondary_external_id={"value": "s2"}),
        update_mask={"paths": ["secondary_external_id"]}), "Event")
    assert upd.secondary_external_id.value == "s2"
    rpc(stack, pb, "DeleteEvent", m.DeleteEventRequest(event_id=eid), "DeleteEventResponse")
    with pytest.raises(grpc.RpcError) as e:
        rpc(stack, pb, "GetEvent", m.GetEventRequest(event_id=eid), "Event")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
