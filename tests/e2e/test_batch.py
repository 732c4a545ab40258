"""Bulk create over gRPC (BatchCreate… of every dialect), on both stores:
per-item results equal to what the single create answers, atomic all or
nothing, non-atomic partial writes, the 1,000-item bound, uniqueness inside a
batch and across concurrent batches, catalog parents, dense activity ids,
tenancy, and a REST surface that does not show any of it."""
import concurrent.futures
import uuid

import grpc
import pytest

from conftest import TOKEN_A, TOKEN_B, unwrap

MD_A = [("authorization", f"Bearer {TOKEN_A}")]
MD_B = [("authorization", f"Bearer {TOKEN_B}")]

SERVICES = {
    "activity": "events.activity.v1.ActivityEventService",
    "customer": "events.customer.v1.CustomerEventService",
    "catalog": "events.catalog.v1.EventCatalogService",
    "object": "events.object.v1.ObjectEventService",
}


def uid():
    return uuid.uuid4().hex


def mod(pb, dialect):
    return pb(f"events/{dialect}/v1/{dialect}")


def rpc(stack, pb, dialect, name, req, md=MD_A, timeout=60):
    m = mod(pb, dialect)
    fn = stack.channel.unary_unary(f"/{SERVICES[dialect]}/{name}",
                                   request_serializer=req.SerializeToString,
                                   response_deserializer=getattr(m, name + "Response").FromString)
    return fn(req, timeout=timeout, metadata=md)


def rpc_error(stack, pb, dialect, name, req, md=MD_A):
    with pytest.raises(grpc.RpcError) as e:
        rpc(stack, pb, dialect, name, req, md)
    return e.value


def status_of(pb, err):
    """The google.rpc.Status a failed call carries (code, message, details)."""
    status = pb("google/rpc/status")
    for k, v in err.trailing_metadata() or ():
        if k == "grpc-status-details-bin":
            return status.Status.FromString(v)
    return status.Status(code=err.code().value[0], message=err.details())


def violations(pb, st):
    details = pb("google/rpc/error_details")
    out = []
    for any_ in st.details:
        if any_.type_url.endswith("google.rpc.BadRequest"):
            out += [(f.field, f.reason, f.description)
                    for f in details.BadRequest.FromString(any_.value).field_violations]
    return out


def results(resp):
    return [(r.WhichOneof("result"), getattr(r, r.WhichOneof("result"))) for r in resp.results]


def customer_req(m, ext, etype="et-batch", cust="cu-batch", **kw):
    return m.CreateEventRequest(event=m.Event(event_type_id=etype, customer_id=cust, external_id=ext), **kw)


def customer_count(stack, pb, etype, md=MD_A):
    m = mod(pb, "customer")
    from google.protobuf import wrappers_pb2
    r = rpc(stack, pb, "customer", "ListEvents",
            m.ListEventsRequest(event_type_id=wrappers_pb2.StringValue(value=etype)), md)
    return r.total_items


def assert_item_equals_single(stack, pb, dialect, create, item_status, req):
    """The item's status is exactly what the single create fails with."""
    err = rpc_error(stack, pb, dialect, create, req)
    single = status_of(pb, err)
    assert item_status.code == err.code().value[0] == single.code
    assert item_status.message == single.message
    assert violations(pb, item_status) == violations(pb, single)


# ---- customer: per-item results, in-batch duplicates, atomic ----

def test_customer_per_item_results(stack, pb):
    m = mod(pb, "customer")
    sp = pb("google/protobuf/struct")
    etype = "et-" + uid()[:10]
    bad = m.CreateEventRequest(event=m.Event(event_type_id=etype, customer_id="c1"))  # no external_id
    bad_record = customer_req(m, "x-rec", etype,
                              property_records=[m.PropertyRecord(property_id="")])  # no id, no value
    reqs = [customer_req(m, "a", etype), bad, customer_req(m, "a", etype), bad_record,
            customer_req(m, "b", etype, property_records=[
                m.PropertyRecord(property_id="p", property_value=sp.Value(string_value="v"))])]
    resp = rpc(stack, pb, "customer", "BatchCreateEvents", m.BatchCreateEventsRequest(requests=reqs))
    got = results(resp)
    assert [k for k, _ in got] == ["event", "status", "status", "status", "event"]
    assert got[0][1].external_id == "a" and len(got[0][1].event_id) == 26 and got[0][1].state == 1
    assert got[4][1].property_records[0].property_id == "p"
    assert got[2][1].code == grpc.StatusCode.ALREADY_EXISTS.value[0]
    assert violations(pb, got[2][1])[0][:2] == ("event.external_id", "relation_already_exists")
    # The same errors as the single create, for the same requests.
    assert_item_equals_single(stack, pb, "customer", "CreateEvent", got[1][1], bad)
    assert_item_equals_single(stack, pb, "customer", "CreateEvent", got[2][1], customer_req(m, "a", etype))
    assert_item_equals_single(stack, pb, "customer", "CreateEvent", got[3][1], bad_record)
    assert customer_count(stack, pb, etype) == 2
    # Written items are readable by the single Get.
    ev = unwrap(rpc(stack, pb, "customer", "GetEvent", m.GetEventRequest(event_id=got[0][1].event_id)))
    assert ev.external_id == "a"


def test_customer_atomic_all_or_nothing(stack, pb):
    m = mod(pb, "customer")
    etype = "et-" + uid()[:10]
    rpc(stack, pb, "customer", "CreateEvent", customer_req(m, "taken", etype))
    # One invalid item: nothing written, the call names the item's field.
    reqs = [customer_req(m, "n1", etype), m.CreateEventRequest(event=m.Event(event_type_id=etype)),
            customer_req(m, "n2", etype)]
    err = rpc_error(stack, pb, "customer", "BatchCreateEvents",
                    m.BatchCreateEventsRequest(requests=reqs, atomic=True))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    st = status_of(pb, err)
    fields = {f for f, _, _ in violations(pb, st)}
    assert fields == {"requests[1].event.customer_id", "requests[1].event.external_id"}
    assert st.message.startswith("requests[1]: ")
    assert customer_count(stack, pb, etype) == 1
    # A conflict found by the store (the stored triple, and a repeat inside
    # the batch): ALREADY_EXISTS, nothing written.
    reqs = [customer_req(m, "n1", etype), customer_req(m, "taken", etype), customer_req(m, "n2", etype),
            customer_req(m, "n1", etype)]
    err = rpc_error(stack, pb, "customer", "BatchCreateEvents",
                    m.BatchCreateEventsRequest(requests=reqs, atomic=True))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    v = violations(pb, status_of(pb, err))
    assert ("requests[1].event.external_id", "relation_already_exists") in [x[:2] for x in v]
    assert ("requests[3].event.external_id", "relation_already_exists") in [x[:2] for x in v]
    assert customer_count(stack, pb, etype) == 1
    # All valid: all written.
    reqs = [customer_req(m, f"ok{i}", etype) for i in range(5)]
    resp = rpc(stack, pb, "customer", "BatchCreateEvents", m.BatchCreateEventsRequest(requests=reqs, atomic=True))
    assert [k for k, _ in results(resp)] == ["event"] * 5
    assert customer_count(stack, pb, etype) == 6


def test_customer_concurrent_batches_one_triple_wins(stack, pb):
    m = mod(pb, "customer")
    etype = "et-" + uid()[:10]

    def batch(i):
        reqs = [customer_req(m, f"own-{i}-{k}", etype) for k in range(10)]
        reqs.insert(5, customer_req(m, "shared", etype))
        try:
            resp = rpc(stack, pb, "customer", "BatchCreateEvents",
                       m.BatchCreateEventsRequest(requests=reqs, atomic=i % 2 == 1))
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.ALREADY_EXISTS, e
            return 0, 0
        got = results(resp)
        return int(got[5][0] == "event"), sum(k == "event" for k, _ in got)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(batch, range(8)))
    assert sum(w for w, _ in outcomes) == 1
    assert customer_count(stack, pb, etype) == sum(n for _, n in outcomes)


def test_more_than_1000_items_refused(stack, pb):
    m = mod(pb, "customer")
    etype = "et-" + uid()[:10]
    reqs = [customer_req(m, f"x{i}", etype) for i in range(1001)]
    err = rpc_error(stack, pb, "customer", "BatchCreateEvents", m.BatchCreateEventsRequest(requests=reqs))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    v = violations(pb, status_of(pb, err))
    assert [x[:2] for x in v] == [("requests", "out_of_range")]
    assert customer_count(stack, pb, etype) == 0
    # Empty is an empty answer.
    resp = rpc(stack, pb, "customer", "BatchCreateEvents", m.BatchCreateEventsRequest())
    assert len(resp.results) == 0


# ---- activity: dense ids, a full batch, validation equal to the single create ----

def test_activity_full_batch_ids_dense(stack, pb):
    m = mod(pb, "activity")
    sp = pb("google/protobuf/struct")
    wr = pb("google/protobuf/wrappers")
    first = unwrap(rpc(stack, pb, "activity", "CreateEvent",
                       m.CreateEventRequest(event=m.Event(name=wr.StringValue(value="before")))))
    reqs = [m.CreateEventRequest(event=m.Event(name=wr.StringValue(value=f"bulk-{i}"),
                                               payload=sp.Struct(fields={"i": sp.Value(number_value=i)})))
            for i in range(1000)]
    resp = rpc(stack, pb, "activity", "BatchCreateEvents",
               m.BatchCreateEventsRequest(requests=reqs, atomic=True), timeout=120)
    got = results(resp)
    assert [k for k, _ in got] == ["event"] * 1000
    ids = [e.id for _, e in got]
    assert ids == list(range(first.id + 1, first.id + 1001))
    assert got[7][1].name.value == "bulk-7" and got[7][1].payload.fields["i"].number_value == 7
    after = unwrap(rpc(stack, pb, "activity", "CreateEvent",
                       m.CreateEventRequest(event=m.Event(name=wr.StringValue(value="after")))))
    assert after.id == first.id + 1001
    got999 = unwrap(rpc(stack, pb, "activity", "GetEvent", m.GetEventRequest(id=ids[999])))
    assert got999.name.value == "bulk-999"


def test_activity_items_fail_as_single_creates(stack, pb):
    m = mod(pb, "activity")
    wr = pb("google/protobuf/wrappers")
    ts = pb("google/protobuf/timestamp")
    bad = [
        m.CreateEventRequest(event=m.Event()),  # name required
        m.CreateEventRequest(event=m.Event(name=wr.StringValue(value="x" * 256))),
        m.CreateEventRequest(event=m.Event(name=wr.StringValue(value="ro"), id=5,
                                           created_at=ts.Timestamp(seconds=1))),
        m.CreateEventRequest(),
    ]
    good = m.CreateEventRequest(event=m.Event(name=wr.StringValue(value="good")))
    resp = rpc(stack, pb, "activity", "BatchCreateEvents",
               m.BatchCreateEventsRequest(requests=[bad[0], good, bad[1], bad[2], bad[3], good]))
    got = results(resp)
    assert [k for k, _ in got] == ["status", "event", "status", "status", "status", "event"]
    assert got[5][1].id == got[1][1].id + 1  # failed items take no ids
    for st, req in zip([got[0][1], got[2][1], got[3][1], got[4][1]], bad):
        assert_item_equals_single(stack, pb, "activity", "CreateEvent", st, req)


# ---- object and catalog ----

def test_object_batch(stack, pb):
    m = mod(pb, "object")
    ts = pb("google/protobuf/timestamp")
    obj = "obj-" + uid()[:8]

    def ev(name, start, end, **kw):
        return m.CreateEventRequest(object_id=obj, event=m.Event(
            name=name, source=m.SOURCE_MANUAL, record_id="r1", start_at=ts.Timestamp(seconds=start),
            end_at=ts.Timestamp(seconds=end), **kw))
    bad = [ev("backwards", 2000, 1000), m.CreateEventRequest(event=ev("no object", 1, 2).event),
           ev("reason", 1, 2, recommendation_reason=pb("google/protobuf/wrappers").StringValue(value="r"))]
    reqs = [ev("a", 1000, 2000), bad[0], bad[1], ev("b", 1000, 3000), bad[2]]
    got = results(rpc(stack, pb, "object", "BatchCreateEvents", m.BatchCreateEventsRequest(requests=reqs)))
    assert [k for k, _ in got] == ["event", "status", "status", "event", "status"]
    assert got[0][1].object == obj and got[0][1].sync_token and got[0][1].review_status == m.REVIEW_STATUS_APPROVED
    assert got[0][1].id < got[3][1].id  # UUIDv7, in request order
    for st, req in zip([got[1][1], got[2][1], got[4][1]], bad):
        assert_item_equals_single(stack, pb, "object", "CreateEvent", st, req)
    listed = rpc(stack, pb, "object", "ListEvents", m.ListEventsRequest(object_id=obj))
    assert [e.name for e in listed.events] == ["a", "b"]


def test_catalog_parent_rules(stack, pb):
    m = mod(pb, "catalog")
    sv = pb("google/protobuf/wrappers").StringValue

    def R(title, parent=None):
        return m.Resource(title=sv(value=title), parent=sv(value=parent) if parent is not None else None)
    cat = unwrap(rpc(stack, pb, "catalog", "CreateEventCategory",
                     m.CreateEventCategoryRequest(resource=R("cat " + uid()[:6]))))
    other = unwrap(rpc(stack, pb, "catalog", "CreateEventCategory",
                       m.CreateEventCategoryRequest(resource=R("b's")), md=MD_B))
    missing = uid()
    reqs = [m.CreateEventRequest(resource=R("e1", cat.id)),
            m.CreateEventRequest(resource=R("e2", missing)),
            m.CreateEventRequest(resource=R("e3", other.id)),  # another tenant's
            m.CreateEventRequest(resource=R("e4")),
            m.CreateEventRequest(resource=R("  ", cat.id)),
            m.CreateEventRequest(resource=R("e6", cat.id.upper()))]
    got = results(rpc(stack, pb, "catalog", "BatchCreateEvents", m.BatchCreateEventsRequest(requests=reqs)))
    assert [k for k, _ in got] == ["resource", "status", "status", "status", "status", "resource"]
    assert got[0][1].parent.value == cat.id and got[0][1].entity_type == m.ENTITY_TYPE_EVENT
    assert got[5][1].parent.value == cat.id
    for i in (1, 2, 3, 4):
        assert_item_equals_single(stack, pb, "catalog", "CreateEvent", got[i][1], reqs[i])
    # Properties of the new events, in one batch; atomic with a missing parent: none.
    props = [m.CreateEventPropertyRequest(resource=R(f"p{i}", got[0][1].id))
             for i in range(3)]
    err = rpc_error(stack, pb, "catalog", "BatchCreateEventProperties",
                    m.BatchCreateEventPropertiesRequest(
                        requests=props + [m.CreateEventPropertyRequest(
                            resource=R("px", missing))], atomic=True))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [x[:2] for x in violations(pb, status_of(pb, err))] == [("requests[3].resource.parent", "not_found")]
    listed = rpc(stack, pb, "catalog", "ListEventProperties",
                 m.ListEventPropertiesRequest(parent_id=pb("google/protobuf/wrappers").StringValue(value=got[0][1].id)))
    assert listed.count == 0
    resp = rpc(stack, pb, "catalog", "BatchCreateEventProperties",
               m.BatchCreateEventPropertiesRequest(requests=props, atomic=True))
    assert [r.resource.title.value for r in resp.results] == ["p0", "p1", "p2"]
    assert all(r.resource.parent.value == got[0][1].id for r in resp.results)
    # Categories in bulk too; a category names no parent.
    cats = rpc(stack, pb, "catalog", "BatchCreateEventCategories", m.BatchCreateEventCategoriesRequest(
        requests=[m.CreateEventCategoryRequest(resource=R("c1")),
                  m.CreateEventCategoryRequest(resource=R("c2", cat.id))]))
    assert [r.WhichOneof("result") for r in cats.results] == ["resource", "status"]


def test_tenancy(stack, pb):
    m = mod(pb, "customer")
    etype = "et-" + uid()[:10]
    resp = rpc(stack, pb, "customer", "BatchCreateEvents",
               m.BatchCreateEventsRequest(requests=[customer_req(m, "t1", etype)]), md=MD_B)
    eid = resp.results[0].event.event_id
    err = rpc_error(stack, pb, "customer", "GetEvent", m.GetEventRequest(event_id=eid))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert customer_count(stack, pb, etype) == 0
    assert customer_count(stack, pb, etype, MD_B) == 1
    # The same triple is free in the other tenant.
    resp = rpc(stack, pb, "customer", "BatchCreateEvents",
               m.BatchCreateEventsRequest(requests=[customer_req(m, "t1", etype)]))
    assert resp.results[0].WhichOneof("result") == "event"
    err = rpc_error(stack, pb, "customer", "BatchCreateEvents",
                    m.BatchCreateEventsRequest(requests=[customer_req(m, "t2", etype)]), md=[])
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


# ---- REST shows none of it ----

def test_rest_surface_unchanged(stack):
    doc = stack.http.get(stack.base + "/openapi.json", timeout=10).json()
    text = str(doc)
    assert "Batch" not in text and "batch" not in text
    for path in ("/api/v2/events:batchCreate", "/api/v2/events/batch",
                 "/rest-api/enterprise-interface/v1.0/events:batchCreate"):
        r = stack.http.post(stack.base + path, json={}, headers={"Authorization": f"Bearer {TOKEN_A}"},
                            timeout=10)
        assert r.status_code in (400, 404, 405), (path, r.status_code)
