"""One rule per field, stated once in the protos ((events.api.v1.field)) and
checked once by the service (services/core/rpc_validate.c) for gRPC and
REST callers alike: lengths count Unicode code points in every dialect, id
formats, numeric ranges and item counts, each violation naming its field."""
import uuid

import grpc
import pytest

from conftest import TOKEN_A, auth_a

JSON = {"Content-Type": "application/json"}
E = "\u00e9"  # two bytes in UTF-8, one character


def uid():
    return uuid.uuid4().hex[:12]


def call(stack, pb, proto, service, method, req):
    m = pb(proto)
    stub = stack.channel.unary_unary(f"/{service}/{method}", request_serializer=lambda x: x.SerializeToString(),
                                     response_deserializer=getattr(m, method + "Response").FromString)
    return stub(req, timeout=10, metadata=[("authorization", f"Bearer {TOKEN_A}")])


def violations(pb, err):
    status, details = pb("google/rpc/status"), pb("google/rpc/error_details")
    for k, v in err.trailing_metadata():
        if k == "grpc-status-details-bin":
            for any_ in status.Status.FromString(v).details:
                if any_.type_url.endswith("google.rpc.BadRequest"):
                    return {fv.field: (fv.reason, fv.description)
                            for fv in details.BadRequest.FromString(any_.value).field_violations}
    return {}


def refused(stack, pb, proto, service, method, req):
    with pytest.raises(grpc.RpcError) as e:
        call(stack, pb, proto, service, method, req)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    return violations(pb, e.value)


# ---- lengths in characters, over REST, in every dialect ----

def customer_body(**event):
    ev = {"event_type_id": "t-" + uid(), "customer_id": "c", "external_id": "x-" + uid()}
    ev.update(event)
    return {"event": ev}


def test_customer_lengths_count_characters(stack):
    url = stack.base + "/rest-api/enterprise-interface/v1.0/events"
    r = stack.http.post(url, json=customer_body(customer_id=E * 255), headers={**JSON, **auth_a()}, timeout=10)
    assert r.status_code == 201, r.text
    r = stack.http.post(url, json=customer_body(customer_id=E * 256), headers={**JSON, **auth_a()}, timeout=10)
    assert r.status_code == 400, r.text
    params = r.json()["error"]["error_data"]["invalid_params"]
    assert [p["name"] for p in params] == ["customer_id"] or [p["name"] for p in params] == ["event.customer_id"]
    assert "255 characters" in params[0]["message"]


def test_object_lengths_count_characters(stack):
    url = f"{stack.base}/v1/objects/o-{uid()}/events"
    ev = {"name": E * 255, "source": "manual", "record_id": E * 255,
          "start_at": "2024-05-01T10:00:00Z", "end_at": "2024-05-01T11:00:00Z"}
    r = stack.http.post(url, json=ev, headers={**JSON, **auth_a()}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == E * 255
    r = stack.http.post(url, json={**ev, "name": E * 256}, headers={**JSON, **auth_a()}, timeout=10)
    assert r.status_code == 400 and "name" in r.json()["message"] and "characters" in r.json()["message"], r.text


def test_activity_lengths_count_characters(stack):
    url = stack.base + "/api/v2/events"
    hdr = {"Content-Type": "application/vnd.api+json", **auth_a()}
    doc = {"data": {"type": "event", "attributes": {"name": E * 255}}}
    r = stack.http.post(url, json=doc, headers=hdr, timeout=10)
    assert r.status_code == 201, r.text
    doc["data"]["attributes"]["name"] = E * 256
    r = stack.http.post(url, json=doc, headers=hdr, timeout=10)
    assert r.status_code == 422, r.text
    err = r.json()["errors"][0]
    assert err["source"]["pointer"].endswith("/name") and "characters" in err["detail"], err


# ---- the declared rules over gRPC ----

CUST = ("events/customer/v1/customer", "events.customer.v1.CustomerEventService")
OBJ = ("events/object/v1/object", "events.object.v1.ObjectEventService")
CAT = ("events/catalog/v1/catalog", "events.catalog.v1.EventCatalogService")
ACT = ("events/activity/v1/activity", "events.activity.v1.ActivityEventService")


def test_grpc_lengths_count_characters(stack, pb):
    m = pb(CUST[0])
    ev = m.Event(event_type_id="t-" + uid(), customer_id=E * 256, external_id="x")
    v = refused(stack, pb, *CUST, "CreateEvent", m.CreateEventRequest(event=ev))
    assert v["event.customer_id"][0] == "invalid_value_format"
    assert "at most 255 characters" in v["event.customer_id"][1]
    ev.customer_id = E * 255
    assert call(stack, pb, *CUST, "CreateEvent", m.CreateEventRequest(event=ev)).event_id


def test_grpc_id_formats(stack, pb):
    m = pb(CUST[0])
    assert refused(stack, pb, *CUST, "GetEvent", m.GetEventRequest(event_id="XYZ"))["event_id"][0] == \
        "invalid_value_format"
    m = pb(OBJ[0])
    assert refused(stack, pb, *OBJ, "GetEvent", m.GetEventRequest(object_id="o", event_id="nope"))["event_id"][0] \
        == "invalid_value_format"
    m = pb(CAT[0])
    v = refused(stack, pb, *CAT, "CreateEventCategory", m.CreateEventCategoryRequest(
        resource=m.Resource(title={"value": "t"}, teams=[uuid.uuid4().hex, "nope"])))
    assert set(v) == {"resource.teams[1]"}


def test_grpc_ranges_and_counts(stack, pb):
    for proto, svc in (CUST, OBJ, ACT):
        m = pb(proto)
        req = m.ListEventsRequest(page_size=1001)
        if proto == OBJ[0]:
            req.object_id = "o"
        v = refused(stack, pb, proto, svc, "ListEvents", req)
        assert v["page_size"][0] == "out_of_range", (svc, v)
    m = pb(CAT[0])
    assert refused(stack, pb, *CAT, "ListEvents", m.ListEventsRequest(page_size=1001))["page_size"][0] == \
        "out_of_range"
    m = pb(ACT[0])
    v = refused(stack, pb, *ACT, "CreateEvent", m.CreateEventRequest(event=m.Event(
        name={"value": "n"}, relationships=m.Relationships(account={"value": -1}))))
    assert v == {"event.relationships.account": v["event.relationships.account"]}
    assert v["event.relationships.account"][0] == "out_of_range"
    assert refused(stack, pb, *ACT, "GetEvent", m.GetEventRequest(id=0))["id"][0] == "out_of_range"
    m = pb(CUST[0])
    ev = m.Event(event_type_id="t", customer_id="c", external_id="x-" + uid())
    recs = [m.PropertyRecord(property_id="p", property_value={"string_value": "v"}) for _ in range(1001)]
    v = refused(stack, pb, *CUST, "CreateEvent", m.CreateEventRequest(event=ev, property_records=recs))
    assert v["property_records"][0] == "out_of_range"
