"""Activity events (seed 000, JSON:API 1.0) end to end on both stores: REST
through the gateway with requests, and the same operations over gRPC with
grpcio."""
import http.client
import json
import re
import uuid
from urllib.parse import parse_qs, urlsplit

import grpc
import pytest

from conftest import TOKEN_A, TOKEN_B, auth_a, auth_b
from conftest import unwrap

PATH = "/api/v2/events"
MEDIA = "application/vnd.api+json"
JSONAPI = {"Content-Type": MEDIA}
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6})?Z$")
ATTRIBUTES = {"body", "createdAt", "eventAt", "externalUrl", "name", "payload", "requestCity",
              "requestDevice", "requestHost", "requestProxied", "requestRegion"}
READ_ONLY = ["createdAt", "requestCity", "requestDevice", "requestHost", "requestProxied",
             "requestRegion"]
RELATIONSHIPS = ["account", "call", "mailing", "note", "opportunity", "plugin", "prospect",
                 "sequence", "sequenceStep", "task", "user"]

# The seed's samples, as printed (attributes of an event, and its relationships).
SEED_ATTRIBUTES = {
    "body": "string",
    "createdAt": "2019-08-24T14:15:22Z",
    "eventAt": "2019-08-24T14:15:22Z",
    "externalUrl": "string",
    "name": "string",
    "payload": {},
    "requestCity": "string",
    "requestDevice": "string",
    "requestHost": "string",
    "requestProxied": True,
    "requestRegion": "string",
}
SEED_RELATIONSHIPS = {
    "opportunity": {"data": {"id": 0, "type": "opportunity"}},
    "sequenceStep": {"data": {"id": 0, "type": "sequenceStep"}},
}


def uid():
    return uuid.uuid4().hex[:12]


def url(stack, suffix=""):
    return stack.base + PATH + suffix


def doc(attributes=None, relationships=None, **data):
    d = {"type": "event", **data}
    if attributes is not None:
        d["attributes"] = attributes
    if relationships is not None:
        d["relationships"] = relationships
    return {"data": d}


def post(stack, body, headers=None, raw=None):
    """A None header is left out (requests drops it, session defaults too)."""
    h = {**JSONAPI, **auth_a(), **(headers or {})}
    data = raw if raw is not None else json.dumps(body).encode()
    return stack.http.post(url(stack), data=data, headers=h, timeout=10)


def create(stack, attributes, relationships=None, headers=None):
    r = post(stack, doc(attributes, relationships), headers)
    assert r.status_code == 201, r.text
    return r.json()["data"]


def get(stack, suffix="", headers=None, **params):
    return stack.http.get(url(stack, suffix), params=params, headers=headers or auth_a(), timeout=10)


def patch(stack, event_id, body, headers=None):
    return stack.http.patch(url(stack, f"/{event_id}"), json=body,
                            headers={**JSONAPI, **(headers or auth_a())}, timeout=10)


def rel(name, rid):
    return {"data": {"type": name, "id": rid}}


def assert_error(r, status, error_id, pointer=None, parameter=None):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"] == MEDIA
    errors = r.json()["errors"]
    assert errors and all(e["id"] == error_id for e in errors), errors
    for e in errors:
        assert isinstance(e["title"], str) and isinstance(e["detail"], str)
        assert set(e) <= {"id", "status", "title", "detail", "source"}
    if pointer is not None:
        assert any(e.get("source", {}).get("pointer") == pointer for e in errors), errors
    if parameter is not None:
        assert any(e.get("source", {}).get("parameter") == parameter for e in errors), errors
    return errors


def names_in(stack, name, headers=None):
    r = get(stack, headers=headers, **{"filter[name]": name})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def assert_resource(stack, res, event_id=None):
    assert res["type"] == "event"
    assert isinstance(res["id"], int) and res["id"] > 0
    if event_id is not None:
        assert res["id"] == event_id
    assert set(res["attributes"]) == ATTRIBUTES
    assert TIME.match(res["attributes"]["createdAt"]) and TIME.match(res["attributes"]["eventAt"])
    assert res["links"] == {"self": url(stack, f"/{res['id']}")}
    for name, value in res["relationships"].items():
        assert name in RELATIONSHIPS
        assert value == {"data": {"type": name, "id": value["data"]["id"]}}
        assert isinstance(value["data"]["id"], int)


# ---- the seed's examples ----

def test_seed_create_example(stack):
    """The seed's writable attributes and relationships samples, as printed."""
    writable = {k: v for k, v in SEED_ATTRIBUTES.items() if k not in READ_ONLY}
    r = post(stack, doc(writable, SEED_RELATIONSHIPS))
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"] == MEDIA
    body = r.json()
    assert list(body) == ["data"]
    res = body["data"]
    assert_resource(stack, res)
    a = res["attributes"]
    assert a["name"] == "string" and a["body"] == "string" and a["externalUrl"] == "string"
    assert a["eventAt"] == "2019-08-24T14:15:22Z" and a["payload"] == {}
    assert res["relationships"] == SEED_RELATIONSHIPS
    # The gateway filled the request facts.
    assert a["requestHost"] == stack.base.split("//")[1] and a["requestProxied"] is False
    assert a["requestCity"] is None and a["requestRegion"] is None

    r = get(stack, f"/{res['id']}")
    assert r.status_code == 200 and r.headers["Content-Type"] == MEDIA
    assert r.json() == {"data": res}


def test_seed_full_sample_is_read_only(stack):
    """The whole attributes sample names read-only attributes: 422 for each, nothing stored."""
    name = "seed-full-" + uid()
    r = post(stack, doc({**SEED_ATTRIBUTES, "name": name}, SEED_RELATIONSHIPS))
    errors = assert_error(r, 422, "validationError")
    pointers = {e["source"]["pointer"] for e in errors}
    assert pointers == {f"/data/attributes/{a}" for a in READ_ONLY}
    assert names_in(stack, name) == []


def test_seed_response_shapes(stack):
    """The seed's list and single responses: data with type, id, attributes, relationships."""
    name = "shape-" + uid()
    ev = create(stack, {"name": name}, {"sequenceStep": rel("sequenceStep", 5)})
    r = get(stack, **{"filter[name]": name})
    body = r.json()
    assert set(body) == {"data", "links", "meta"}
    assert set(body["links"]) == {"first", "next", "prev"}
    assert body["data"] == [ev] and body["meta"] == {}
    assert ev["relationships"] == {"sequenceStep": {"data": {"type": "sequenceStep", "id": 5}}}
    assert all(ev["attributes"][k] is None for k in ("body", "externalUrl", "payload", "requestCity"))


# ---- create ----

def test_create_all_relationships_and_payload(stack):
    rels = {n: rel(n, i + 1) for i, n in enumerate(RELATIONSHIPS)}
    payload = {"a": 1, "b": [1, 2.5, "x", None, True], "c.d": {"$e": {"f": "g"}}, "": 0}
    ev = create(stack, {"name": "all-" + uid(), "payload": payload, "body": "b",
                        "externalUrl": "https://example.com/x", "eventAt": "2021-02-03T04:05:06.789+01:00"},
                rels)
    assert ev["relationships"] == rels
    assert ev["attributes"]["payload"] == payload
    assert ev["attributes"]["eventAt"] == "2021-02-03T03:05:06.789Z"
    assert get(stack, f"/{ev['id']}").json()["data"] == ev
    # string ids and null relationships are accepted too
    ev = create(stack, {"name": "x"}, {"task": {"data": {"type": "task", "id": "42"}}, "user": {"data": None}})
    assert ev["relationships"] == {"task": rel("task", 42)}


def test_ids_increase_and_event_at_defaults_to_now(stack):
    a = create(stack, {"name": "seq-" + uid()})
    b = create(stack, {"name": "seq-" + uid()})
    assert b["id"] > a["id"] > 0
    assert a["attributes"]["eventAt"] == a["attributes"]["createdAt"]


@pytest.mark.parametrize("ua,device", [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36", "desktop"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Safari/605.1.15", "desktop"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 Safari/604.1", "mobile"),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36", "mobile"),
    ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", "tablet"),
    ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 Chrome/120.0 Safari/537.36", "tablet"),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot"),
    ("curl/8.4.0", "other"),
])
def test_request_device(stack, ua, device):
    ev = create(stack, {"name": "ua"}, headers={"User-Agent": ua})
    assert ev["attributes"]["requestDevice"] == device


def test_request_without_user_agent(stack):
    # http.client sends no User-Agent of its own (requests/urllib3 always do).
    conn = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=10)
    conn.request("POST", PATH, body=json.dumps(doc({"name": "no-ua"})),
                 headers={**JSONAPI, **auth_a()})
    r = conn.getresponse()
    body = json.loads(r.read())
    conn.close()
    assert r.status == 201, body
    assert body["data"]["attributes"]["requestDevice"] is None


def test_request_facts_from_headers(stack):
    ev = create(stack, {"name": "facts-" + uid()}, headers={
        "X-Forwarded-Host": "app.example.com", "X-Forwarded-For": "203.0.113.7",
        "X-Client-City": "Zürich".encode(), "X-Client-Region": "ZH"})
    a = ev["attributes"]
    assert a["requestHost"] == "app.example.com" and a["requestProxied"] is True
    assert a["requestCity"] == "Zürich" and a["requestRegion"] == "ZH"
    # Links follow the forwarded host, as the client saw it.
    assert ev["links"]["self"] == f"http://app.example.com{PATH}/{ev['id']}"
    # Of a list of forwarded hosts, the first is the client's.
    ev = create(stack, {"name": "facts"}, headers={"X-Forwarded-Host": "app.example.com , lb.internal"})
    assert ev["attributes"]["requestHost"] == "app.example.com"
    # Facts are cut to 255 characters; bytes that are not UTF-8 are replaced.
    ev = create(stack, {"name": "facts"}, headers={"X-Client-City": "a" * 300,
                                                   "X-Client-Region": "Z\xfcrich".encode("latin-1")})
    assert ev["attributes"]["requestCity"] == "a" * 255
    assert ev["attributes"]["requestRegion"] == "Z\ufffdrich"


def test_name_rules(stack):
    assert create(stack, {"name": "n" * 255})["attributes"]["name"] == "n" * 255
    assert create(stack, {"name": "é" * 255})["attributes"]["name"] == "é" * 255
    for attrs in ({}, {"name": ""}, {"name": None}, {"name": "n" * 256}, {"name": "é" * 256}):
        assert_error(post(stack, doc(attrs)), 422, "validationError", pointer="/data/attributes/name")
    assert_error(post(stack, {"data": {"type": "event"}}), 422, "validationError",
                 pointer="/data/attributes/name")


@pytest.mark.parametrize("attrs,pointer", [
    ({"name": 5}, "/data/attributes/name"),
    ({"name": "x", "body": ["b"]}, "/data/attributes/body"),
    ({"name": "x", "externalUrl": 1}, "/data/attributes/externalUrl"),
    ({"name": "x", "eventAt": "yesterday"}, "/data/attributes/eventAt"),
    ({"name": "x", "eventAt": "2019-02-30T00:00:00Z"}, "/data/attributes/eventAt"),
    ({"name": "x", "eventAt": "10000-01-01T00:00:00Z"}, "/data/attributes/eventAt"),
    ({"name": "x", "payload": "text"}, "/data/attributes/payload"),
    ({"name": "x", "payload": [1]}, "/data/attributes/payload"),
    ({"name": "x", "color": "red"}, "/data/attributes/color"),
    ({"name": "x", "id": 7}, "/data/attributes/id"),
    ({"name": "x", "requestProxied": False}, "/data/attributes/requestProxied"),
])
def test_bad_attributes(stack, attrs, pointer):
    marker = "bad-" + uid()
    attrs = {**attrs, "body": attrs.get("body", marker)}
    assert_error(post(stack, doc(attrs)), 422, "validationError", pointer=pointer)
    r = get(stack, **{"filter[name]": "x"})
    assert all(e["attributes"]["body"] != marker for e in r.json()["data"])


@pytest.mark.parametrize("body,pointer", [
    ({}, "/data"),
    ({"data": None}, "/data"),
    ({"data": [{"type": "event"}]}, "/data"),
    ({"data": {"attributes": {"name": "x"}}}, "/data/type"),
    ({"data": {"type": "event", "attributes": ["x"]}}, "/data/attributes"),
    ({"data": {"type": "event", "attributes": {"name": "x"}, "extra": 1}}, "/data/extra"),
    ({"data": {"type": "event", "attributes": {"name": "x"}}, "included": []}, "/included"),
    (doc({"name": "x"}, []), "/data/relationships"),
    (doc({"name": "x"}, {"owner": rel("owner", 1)}), "/data/relationships/owner"),
    (doc({"name": "x"}, {"account": {"id": 1}}), "/data/relationships/account"),
    (doc({"name": "x"}, {"account": rel("user", 1)}), "/data/relationships/account/data/type"),
    (doc({"name": "x"}, {"account": {"data": {"id": 1}}}), "/data/relationships/account/data/type"),
    (doc({"name": "x"}, {"account": rel("account", -1)}), "/data/relationships/account/data/id"),
    (doc({"name": "x"}, {"account": rel("account", "abc")}), "/data/relationships/account/data/id"),
    (doc({"name": "x"}, {"account": rel("account", 1.5)}), "/data/relationships/account/data/id"),
    (doc({"name": "x"}, {"account": {"data": {"type": "account"}}}), "/data/relationships/account/data/id"),
    (doc({"name": "x"}, {"account": {"data": [rel("account", 1)["data"]]}}), "/data/relationships/account/data"),
    (doc({"name": "x"}, {"account": {"data": {"type": "account", "id": 1, "x": 1}}}),
     "/data/relationships/account/data/x"),
])
def test_bad_documents(stack, body, pointer):
    assert_error(post(stack, body), 422, "validationError", pointer=pointer)


def test_jsonapi_conflicts_and_forbidden_ids(stack):
    """JSON:API 1.0: a type the endpoint does not hold is 409 Conflict (POST
    and PATCH), a client-generated id 403 Forbidden, a PATCH whose id is not
    the URL's 409; error objects carry status as a string."""
    def count_all(stack):
        return listing(stack, **{"count": "true", "page[size]": "1"})["meta"]["count"]
    before = count_all(stack)
    r = post(stack, {"data": {"type": "events", "attributes": {"name": "x"}}})
    assert_error(r, 409, "conflict", pointer="/data/type")
    assert r.json()["errors"][0]["status"] == "409"
    r = post(stack, {"data": {"type": "event", "id": 5, "attributes": {"name": "x"}}})
    assert_error(r, 403, "forbidden", pointer="/data/id")
    assert r.json()["errors"][0]["status"] == "403"
    assert count_all(stack) == before
    eid = post(stack, doc({"name": "c"})).json()["data"]["id"]
    assert_error(patch(stack, eid, doc({"name": "a"}, id=eid + 1)), 409, "conflict", pointer="/data/id")
    assert_error(patch(stack, eid, {"data": {"type": "x", "id": eid}}), 409, "conflict", pointer="/data/type")
    assert_error(post(stack, {}), 422, "validationError")
    assert post(stack, {}).json()["errors"][0]["status"] == "422"


def test_unreadable_bodies_are_bad_requests(stack):
    for raw in ("{", '{"data": }', "[1]", '"text"', "", '{"a":1,"a":2}'):
        assert_error(post(stack, None, raw=raw), 400, "badRequest")
    assert_error(post(stack, None, raw="x" * (1024 * 1024 + 1)), 413, "requestEntityTooLarge")
    r = stack.http.post(url(stack) + "?include=account", json=doc({"name": "x"}),
                        headers={**JSONAPI, **auth_a()}, timeout=10)
    assert_error(r, 400, "badRequest", parameter="include")


def test_media_types(stack):
    body = doc({"name": "media"})
    for ct in (None, "application/json", MEDIA + "; charset=utf-8", "text/plain"):
        assert_error(post(stack, body, headers={"Content-Type": ct}), 415, "unsupportedMediaType")
    assert post(stack, body, headers={"Content-Type": "Application/VND.API+JSON"}).status_code == 201
    ev = create(stack, {"name": "media"})
    r = stack.http.patch(url(stack, f"/{ev['id']}"), json=doc({"name": "m2"}, id=ev["id"]),
                         headers={"Content-Type": "application/json", **auth_a()}, timeout=10)
    assert_error(r, 415, "unsupportedMediaType")
    # Accept: the JSON:API type only with parameters is 406; with one plain instance it is fine.
    assert_error(get(stack, headers={**auth_a(), "Accept": MEDIA + "; ext=bulk"}), 406, "notAcceptable")
    for accept in (MEDIA, MEDIA + "; ext=bulk, " + MEDIA, "*/*", "application/json", MEDIA + ";q=0.9"):
        assert get(stack, headers={**auth_a(), "Accept": accept}).status_code == 200, accept


# ---- update and delete ----

def test_patch_updates_and_clears(stack):
    name = "patch-" + uid()
    ev = create(stack, {"name": name, "payload": {"k": [1, 2]}, "body": "b0"},
                {"account": rel("account", 1), "user": rel("user", 2)})
    eid = ev["id"]
    r = patch(stack, eid, doc({"name": name + "-2", "body": None, "externalUrl": "https://x.test",
                               "eventAt": "2022-01-01T00:00:00Z"},
                              {"account": {"data": None}, "prospect": rel("prospect", 3),
                               "user": rel("user", 4)}, id=str(eid)))
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == MEDIA
    got = r.json()["data"]
    assert_resource(stack, got, eid)
    a = got["attributes"]
    assert a["name"] == name + "-2" and a["body"] is None and a["externalUrl"] == "https://x.test"
    assert a["eventAt"] == "2022-01-01T00:00:00Z" and a["payload"] == {"k": [1, 2]}
    assert a["createdAt"] == ev["attributes"]["createdAt"]
    assert got["relationships"] == {"prospect": rel("prospect", 3), "user": rel("user", 4)}
    assert get(stack, f"/{eid}").json()["data"] == got
    # A GET body sent back unchanged is accepted (read-only values are not changed).
    r = patch(stack, eid, {"data": {k: v for k, v in got.items() if k != "links"}})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == got
    # Only type and id: nothing changes.
    r = patch(stack, eid, {"data": {"type": "event", "id": eid}})
    assert r.status_code == 200 and r.json()["data"] == got


@pytest.mark.parametrize("attrs,rels,pointer", [
    ({"payload": {"k": [1]}}, None, "/data/attributes/payload"),
    ({"payload": None}, None, "/data/attributes/payload"),
    ({"createdAt": "2000-01-01T00:00:00Z"}, None, "/data/attributes/createdAt"),
    ({"requestHost": "elsewhere"}, None, "/data/attributes/requestHost"),
    ({"requestProxied": True}, None, "/data/attributes/requestProxied"),
    ({"name": None}, None, "/data/attributes/name"),
    ({"name": "x" * 256}, None, "/data/attributes/name"),
    ({"eventAt": None}, None, "/data/attributes/eventAt"),
    ({"eventAt": "soon"}, None, "/data/attributes/eventAt"),
    ({"nope": 1}, None, "/data/attributes/nope"),
    ({}, {"account": rel("user", 1)}, "/data/relationships/account/data/type"),
    ({}, {"owner": {"data": None}}, "/data/relationships/owner"),
])
def test_patch_refusals_change_nothing(stack, attrs, rels, pointer):
    name = "keep-" + uid()
    ev = create(stack, {"name": name, "payload": {"k": [1, 2]}}, {"account": rel("account", 1)})
    # A valid change sent along with the bad one must not be applied either.
    r = patch(stack, ev["id"], doc({"body": "changed", **attrs}, rels, id=ev["id"]))
    assert_error(r, 422, "validationError", pointer=pointer)
    assert get(stack, f"/{ev['id']}").json()["data"] == ev


def test_patch_document_rules(stack):
    ev = create(stack, {"name": "rules-" + uid()})
    eid = ev["id"]
    assert_error(patch(stack, eid, doc({"name": "a"})), 422, "validationError", pointer="/data/id")
    assert_error(patch(stack, eid, doc({"name": "a"}, id=eid + 1)), 409, "conflict", pointer="/data/id")
    assert_error(patch(stack, eid, {"data": {"type": "x", "id": eid}}), 409, "conflict", pointer="/data/type")
    assert_error(stack.http.patch(url(stack, f"/{eid}"), data="{nope", headers={**JSONAPI, **auth_a()}, timeout=10),
                 400, "badRequest")
    for bad in ("0", "-1", "abc", "1.5", "99999999999999999999"):
        assert_error(patch(stack, bad, doc({"name": "a"}, id=bad)), 404, "resourceNotFound")
    assert_error(patch(stack, 10 ** 12, doc({"name": "a"}, id=10 ** 12)), 404, "resourceNotFound")
    assert get(stack, f"/{eid}").json()["data"] == ev


def test_delete(stack):
    ev = create(stack, {"name": "del-" + uid()})
    r = stack.http.delete(url(stack, f"/{ev['id']}"), headers=auth_a(), timeout=10)
    assert r.status_code == 204 and r.content == b""
    assert_error(get(stack, f"/{ev['id']}"), 404, "resourceNotFound")
    r = stack.http.delete(url(stack, f"/{ev['id']}"), headers=auth_a(), timeout=10)
    assert_error(r, 404, "resourceNotFound")
    for bad in ("0", "x", "-3"):
        assert_error(stack.http.delete(url(stack, f"/{bad}"), headers=auth_a(), timeout=10), 404,
                     "resourceNotFound")
    r = stack.http.delete(url(stack, f"/{ev['id']}?force=1"), headers=auth_a(), timeout=10)
    assert_error(r, 400, "badRequest", parameter="force")


def test_get_bad_ids_and_params(stack):
    for bad in ("0", "-1", "abc", "1e3", "99999999999999999999"):
        assert_error(get(stack, f"/{bad}"), 404, "resourceNotFound")
    assert_error(get(stack, "/123456789"), 404, "resourceNotFound")
    ev = create(stack, {"name": "view-" + uid()}, {"call": rel("call", 8)})
    r = get(stack, f"/{ev['id']}", **{"fields[event]": "name,call", "provideDataConnections": "true"})
    assert r.status_code == 200, r.text
    res = r.json()["data"]
    assert res["attributes"] == {"name": ev["attributes"]["name"]}
    assert res["relationships"] == {"call": rel("call", 8)}
    assert res["meta"] == {"dataConnections": []}
    assert_error(get(stack, f"/{ev['id']}", include="call"), 400, "badRequest", parameter="include")
    assert_error(get(stack, f"/{ev['id']}", **{"fields[event]": "nope"}), 400, "badRequest",
                 parameter="fields[event]")
    assert_error(get(stack, f"/{ev['id']}", provideDataConnections="yes"), 400, "badRequest",
                 parameter="provideDataConnections")


# ---- listing ----

@pytest.fixture(scope="module")
def dataset(stack):
    """Six events of one name family with distinct eventAt and relationships."""
    tag = "ds-" + uid()
    events = []
    for i in range(6):
        rels = {"account": rel("account", 100 + i % 2), "user": rel("user", 7)}
        if i % 3 == 0:
            rels["task"] = rel("task", 900 + i)
        # eventAt runs backwards so that id order and eventAt order differ
        events.append(create(stack, {"name": f"{tag}-{i}", "eventAt": f"2020-01-{10 - i:02d}T00:00:00Z"}, rels))
    return tag, events


def listing(stack, **params):
    r = get(stack, **params)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == MEDIA
    return r.json()


def ids(body):
    return [e["id"] for e in body["data"]]


def test_list_filters(stack, dataset):
    tag, evs = dataset
    all_ids = [e["id"] for e in evs]
    names = ",".join(e["attributes"]["name"] for e in evs)
    within = {"filter[id]": f"{all_ids[0]}..{all_ids[-1]}"}
    assert ids(listing(stack, **{"filter[name]": names})) == all_ids
    assert ids(listing(stack, **{"filter[name]": f"{tag}-2"})) == [all_ids[2]]
    assert ids(listing(stack, **{"filter[name]": f"{tag}-1..{tag}-3"})) == all_ids[1:4]
    assert ids(listing(stack, **{"filter[name]": f"{tag}-4..inf", **within})) == all_ids[4:]
    assert ids(listing(stack, **{"filter[id]": f"{all_ids[1]},{all_ids[3]}"})) == [all_ids[1], all_ids[3]]
    assert ids(listing(stack, **{"filter[id]": f"{all_ids[2]}..{all_ids[4]}"})) == all_ids[2:5]
    assert ids(listing(stack, **{"filter[id]": f"neginf..{all_ids[1]}", "filter[name]": names})) == all_ids[:2]
    assert ids(listing(stack, **{"filter[id]": "neginf..inf", "filter[name]": names})) == all_ids
    assert ids(listing(stack, **{"filter[eventAt]": "2020-01-08T00:00:00Z", **within})) == [all_ids[2]]
    assert ids(listing(stack, **{"filter[eventAt]": "2020-01-05T00:00:00Z..2020-01-07T00:00:00Z",
                                 **within})) == all_ids[3:6]
    assert ids(listing(stack, **{"filter[eventAt]": "2020-01-09T00:00:00Z,2020-01-10T00:00:00Z",
                                 **within})) == all_ids[:2]
    first, last = evs[0]["attributes"]["createdAt"], evs[-1]["attributes"]["createdAt"]
    assert ids(listing(stack, **{"filter[createdAt]": f"{first}..{last}", "filter[name]": names})) == all_ids
    assert ids(listing(stack, **{"filter[createdAt]": f"{evs[3]['attributes']['createdAt']}..inf",
                                 "filter[name]": names})) == all_ids[3:]
    assert ids(listing(stack, **{"filter[createdAt]": evs[2]["attributes"]["createdAt"],
                                 "filter[name]": names})) == [all_ids[2]]
    assert ids(listing(stack, **{"filter[account][id]": "101", **within})) == all_ids[1::2]
    assert ids(listing(stack, **{"filter[account][id]": "100,101", **within})) == all_ids
    assert ids(listing(stack, **{"filter[task][id]": "900,903", **within})) == [all_ids[0], all_ids[3]]
    assert ids(listing(stack, **{"filter[user][id]": "7", "filter[account][id]": "100", **within})) == all_ids[::2]
    for rel_name in ("call", "mailing", "opportunity", "prospect"):
        assert ids(listing(stack, **{f"filter[{rel_name}][id]": "1", **within})) == []


def test_list_sort_count_fields_connections(stack, dataset):
    tag, evs = dataset
    all_ids = [e["id"] for e in evs]
    within = {"filter[id]": f"{all_ids[0]}..{all_ids[-1]}"}
    assert ids(listing(stack, sort="-id", **within)) == all_ids[::-1]
    assert ids(listing(stack, sort="eventAt", **within)) == all_ids[::-1]
    assert ids(listing(stack, sort="-eventAt", **within)) == all_ids
    assert ids(listing(stack, sort="createdAt", **within)) == all_ids
    # multi-key: account id parity is not sortable, but eventAt then id is
    assert ids(listing(stack, sort="-createdAt,id", **within)) == all_ids[::-1]
    body = listing(stack, count="true", **{"page[size]": "2"}, **within)
    assert body["meta"] == {"count": 6} and len(body["data"]) == 2
    assert listing(stack, count="false", **within)["meta"] == {}
    body = listing(stack, **{"fields[event]": "name,eventAt,account"}, **within)
    for e, src in zip(body["data"], evs):
        assert e["attributes"] == {"name": src["attributes"]["name"], "eventAt": src["attributes"]["eventAt"]}
        assert e["relationships"] == {"account": src["relationships"]["account"]}
        assert "meta" not in e
    body = listing(stack, **{"fields[event]": ""}, **within)
    assert all(e["attributes"] == {} and e["relationships"] == {} for e in body["data"])
    body = listing(stack, provideDataConnections="true", **within)
    assert all(e["meta"] == {"dataConnections": []} for e in body["data"])
    body = listing(stack, **within)
    assert [e for e in body["data"]] == evs


def walk(stack, start_params, direction="next"):
    """Follows links until there are none; returns the pages' ids."""
    body = listing(stack, **start_params)
    pages = [ids(body)]
    seen = 1
    while body["links"][direction]:
        link = body["links"][direction]
        assert link.startswith(stack.base + PATH + "?")
        r = stack.http.get(link, headers=auth_a(), timeout=10)
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(ids(body))
        seen += 1
        assert seen < 50
    return pages, body


@pytest.mark.parametrize("sort", [None, "-eventAt", "createdAt,-id"])
def test_pages_followed_to_the_end(stack, sort):
    tag = "pg-" + uid()
    made = [create(stack, {"name": tag, "eventAt": f"2021-03-0{1 + i % 3}T00:00:00Z"}) for i in range(7)]
    params = {"filter[name]": tag, "page[size]": "3"}
    if sort:
        params["sort"] = sort
    full = ids(listing(stack, **{k: v for k, v in params.items() if k != "page[size]"}))
    assert sorted(full) == sorted(e["id"] for e in made)
    pages, last = walk(stack, params)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert sum(pages, []) == full
    assert last["links"]["next"] is None and last["links"]["prev"]
    first = listing(stack, **params)
    assert first["links"]["prev"] is None
    assert "page%5Bafter%5D" not in first["links"]["first"] and "page%5Bbefore%5D" not in first["links"]["first"]
    q = parse_qs(urlsplit(first["links"]["next"]).query)
    assert q["filter[name]"] == [tag] and q["page[size]"] == ["3"] and "page[after]" in q
    # and back again from the last page
    r = stack.http.get(last["links"]["prev"], headers=auth_a(), timeout=10)
    back = r.json()
    assert ids(back) == pages[1]
    r = stack.http.get(back["links"]["prev"], headers=auth_a(), timeout=10)
    assert ids(r.json()) == pages[0] and r.json()["links"]["prev"] is None
    # a cursor made for one order is refused under another
    token = q["page[after]"][0]
    r = get(stack, **{"filter[name]": tag, "page[after]": token, "sort": "-id" if sort != "-id" else "id"})
    assert_error(r, 400, "badRequest", parameter="page[after]")


def test_default_page_size_is_50(stack):
    tag = "fifty-" + uid()
    made = [create(stack, {"name": tag})["id"] for _ in range(51)]
    body = listing(stack, **{"filter[name]": tag})
    assert ids(body) == made[:50] and body["links"]["next"]
    rest = stack.http.get(body["links"]["next"], headers=auth_a(), timeout=10).json()
    assert ids(rest) == made[50:] and rest["links"]["next"] is None
    assert ids(listing(stack, **{"filter[name]": tag, "page[size]": "1000"})) == made


def test_empty_listing(stack):
    body = listing(stack, **{"filter[name]": "none-" + uid(), "count": "true"})
    assert body["data"] == [] and body["meta"] == {"count": 0}
    assert body["links"]["next"] is None and body["links"]["prev"] is None and body["links"]["first"]


@pytest.mark.parametrize("params,param", [
    ({"filter[foo]": "1"}, "filter[foo]"),
    ({"page": "2"}, "page"),
    ({"include": "account"}, "include"),
    ({"fields[account]": "name"}, "fields[account]"),
    ({"filter[id]": "abc"}, "filter[id]"),
    ({"filter[id]": "1,,2"}, "filter[id]"),
    ({"filter[id]": "1.."}, "filter[id]"),
    ({"filter[id]": "..5"}, "filter[id]"),
    ({"filter[id]": "99999999999999999999"}, "filter[id]"),
    ({"filter[name]": ""}, "filter[name]"),
    ({"filter[createdAt]": "2020-13-01T00:00:00Z"}, "filter[createdAt]"),
    ({"filter[eventAt]": "yesterday..inf"}, "filter[eventAt]"),
    ({"filter[account][id]": "-1"}, "filter[account][id]"),
    ({"filter[account][id]": "1..3"}, "filter[account][id]"),
    ({"filter[note][id]": "1"}, "filter[note][id]"),
    ({"sort": "name"}, "sort"),
    ({"sort": "id,-id"}, "sort"),
    ({"sort": ""}, "sort"),
    ({"page[size]": "0"}, "page[size]"),
    ({"page[size]": "1001"}, "page[size]"),
    ({"page[size]": "ten"}, "page[size]"),
    ({"page[after]": "not-a-cursor"}, "page[after]"),
    ({"page[before]": "AAAA"}, "page[before]"),
    ({"page[after]": ""}, "page[after]"),
    ({"count": "yes"}, "count"),
    ({"provideDataConnections": "1"}, "provideDataConnections"),
    ({"fields[event]": "name,secret"}, "fields[event]"),
])
def test_bad_list_parameters(stack, params, param):
    assert_error(get(stack, **params), 400, "badRequest", parameter=param)


def test_more_list_parameter_rules(stack, dataset):
    _, evs = dataset
    r = stack.http.get(url(stack) + "?sort=id&sort=-id", headers=auth_a(), timeout=10)
    assert_error(r, 400, "badRequest", parameter="sort")
    body = listing(stack, **{"filter[id]": str(evs[0]["id"]), "page[size]": "1"})
    token = parse_qs(urlsplit(body["links"]["first"]).query)
    assert "page[after]" not in token
    page = listing(stack, **{"filter[id]": f"{evs[0]['id']}..{evs[-1]['id']}", "page[size]": "1"})
    after = parse_qs(urlsplit(page["links"]["next"]).query)["page[after]"][0]
    r = get(stack, **{"page[after]": after, "page[before]": after})
    assert_error(r, 400, "badRequest", parameter="page[before]")
    # a tampered cursor
    r = get(stack, **{"page[after]": after[:-2] + ("A" if after[-2] != "A" else "B") + after[-1]})
    assert_error(r, 400, "badRequest", parameter="page[after]")
    assert len(listing(stack, **{"page[size]": "1000"})["data"]) <= 1000
    assert len(listing(stack)["data"]) <= 50


# ---- tenancy and credentials ----

def test_tenancy(stack):
    name = "tenant-" + uid()
    ev = create(stack, {"name": name})
    eid = ev["id"]
    assert_error(get(stack, f"/{eid}", headers=auth_b()), 404, "resourceNotFound")
    assert_error(patch(stack, eid, doc({"name": "stolen"}, id=eid), headers=auth_b()), 404, "resourceNotFound")
    r = stack.http.delete(url(stack, f"/{eid}"), headers=auth_b(), timeout=10)
    assert_error(r, 404, "resourceNotFound")
    assert names_in(stack, name, headers=auth_b()) == []
    assert get(stack, f"/{eid}").json()["data"] == ev
    # tenant B has its own sequence and its own events
    evb = create(stack, {"name": name}, headers=auth_b())
    assert [e["id"] for e in names_in(stack, name, headers=auth_b())] == [evb["id"]]
    assert [e["id"] for e in names_in(stack, name)] == [eid]


def test_credentials(stack):
    ev = create(stack, {"name": "cred-" + uid()})
    for h in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic Zm9vOmJhcg=="}):
        assert_error(stack.http.get(url(stack), headers=h, timeout=10), 401, "unauthorized")
        assert_error(stack.http.get(url(stack, f"/{ev['id']}"), headers=h, timeout=10), 401, "unauthorized")
        assert_error(stack.http.post(url(stack), json=doc({"name": "x"}), headers={**JSONAPI, **h}, timeout=10),
                     401, "unauthorized")
        assert_error(stack.http.patch(url(stack, f"/{ev['id']}"), json=doc({"name": "x"}, id=ev["id"]),
                                      headers={**JSONAPI, **h}, timeout=10), 401, "unauthorized")
        assert_error(stack.http.delete(url(stack, f"/{ev['id']}"), headers=h, timeout=10), 401, "unauthorized")
    assert get(stack, f"/{ev['id']}").json()["data"] == ev


def test_unknown_paths_and_methods(stack):
    assert_error(get(stack, "/1/relationships/account"), 404, "resourceNotFound")
    r = stack.http.put(url(stack, "/1"), json=doc({"name": "x"}), headers={**JSONAPI, **auth_a()}, timeout=10)
    assert_error(r, 405, "methodNotAllowed")
    r = stack.http.delete(url(stack), headers=auth_a(), timeout=10)
    assert_error(r, 405, "methodNotAllowed")


def test_openapi_lists_activity_paths(stack):
    doc_ = stack.http.get(stack.base + "/openapi.json", timeout=10).json()
    assert set(doc_["paths"][PATH]) >= {"get", "post"}
    assert set(doc_["paths"][PATH + "/{id}"]) >= {"get", "patch", "delete"}
    names = {p["name"] for p in doc_["paths"][PATH]["get"]["parameters"]}
    assert {"filter[name]", "sort", "page[size]", "page[after]", "fields[event]"} <= names


# ---- gRPC ----

SVC = "/events.activity.v1.ActivityEventService/"


def rpc(stack, pb, name, req, resp_type, token=TOKEN_A):
    m = pb("events/activity/v1/activity")
    call = stack.channel.unary_unary(SVC + name, request_serializer=req.SerializeToString,
                                     response_deserializer=getattr(m, name + "Response").FromString)
    md = [("authorization", f"Bearer {token}")] if token else None
    return unwrap(call(req, timeout=10, metadata=md))


def rpc_error(stack, pb, name, req, resp_type, token=TOKEN_A):
    with pytest.raises(grpc.RpcError) as e:
        rpc(stack, pb, name, req, resp_type, token)
    return e.value


def violations(pb, err):
    status = pb("google/rpc/status")
    details = pb("google/rpc/error_details")
    for k, v in err.trailing_metadata():
        if k == "grpc-status-details-bin":
            st = status.Status.FromString(v)
            for any_ in st.details:
                if any_.type_url.endswith("google.rpc.BadRequest"):
                    return {f.field: f.reason for f in details.BadRequest.FromString(any_.value).field_violations}
    return {}


def test_grpc_operations(stack, pb):
    m = pb("events/activity/v1/activity")
    name = "grpc-" + uid()
    ev = rpc(stack, pb, "CreateEvent", m.CreateEventRequest(
        event=m.Event(name={"value": name}, body={"value": "b"},
                      relationships=m.Relationships(account={"value": 5}, sequence_step={"value": 6})),
        request_info=m.RequestInfo(host={"value": "svc.internal"}, device={"value": "other"},
                                   proxied={"value": False})), "Event")
    assert ev.id > 0 and ev.name.value == name and ev.relationships.account.value == 5
    assert ev.request_host.value == "svc.internal" and ev.HasField("created_at")
    assert ev.event_at == ev.created_at
    got = rpc(stack, pb, "GetEvent", m.GetEventRequest(id=ev.id), "Event")
    assert got == ev
    # The REST view of the gRPC-created event.
    res = get(stack, f"/{ev.id}").json()["data"]
    assert res["attributes"]["name"] == name and res["attributes"]["requestHost"] == "svc.internal"
    assert res["relationships"] == {"account": rel("account", 5), "sequenceStep": rel("sequenceStep", 6)}

    lst = rpc(stack, pb, "ListEvents", m.ListEventsRequest(
        name=m.StringFilter(values=[name]), account_ids=[5], include_count=True,
        order_by=[m.SortKey(field=m.SORT_FIELD_EVENT_AT, descending=True)]), "ListEventsResponse")
    assert [e.id for e in lst.events] == [ev.id] and lst.total_count.value == 1
    assert lst.next_page_token == "" and lst.prev_page_token == ""

    upd = rpc(stack, pb, "UpdateEvent", m.UpdateEventRequest(
        event=m.Event(id=ev.id, body={"value": "b2"}, relationships=m.Relationships(user={"value": 9})),
        update_mask={"paths": ["body", "relationships"]}), "Event")
    assert upd.body.value == "b2" and upd.relationships.user.value == 9
    assert not upd.relationships.HasField("account")
    # an empty mask updates the fields that are set
    upd = rpc(stack, pb, "UpdateEvent", m.UpdateEventRequest(
        event=m.Event(id=ev.id, name={"value": name + "!"})), "Event")
    assert upd.name.value == name + "!" and upd.body.value == "b2"

    rpc(stack, pb, "DeleteEvent", m.DeleteEventRequest(id=ev.id), "DeleteEventResponse")
    err = rpc_error(stack, pb, "GetEvent", m.GetEventRequest(id=ev.id), "Event")
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_grpc_errors(stack, pb):
    m = pb("events/activity/v1/activity")
    sp = pb("google/protobuf/struct")
    ts = pb("google/protobuf/timestamp")
    ev = rpc(stack, pb, "CreateEvent", m.CreateEventRequest(
        event=m.Event(name={"value": "g"}, payload=sp.Struct(fields={"a": sp.Value(number_value=1)}))), "Event")

    cases = [
        ("CreateEvent", m.CreateEventRequest(), "Event", {"event": "required"}),
        ("CreateEvent", m.CreateEventRequest(event=m.Event()), "Event", {"event.name": "required"}),
        ("CreateEvent", m.CreateEventRequest(event=m.Event(name={"value": "x" * 256})), "Event",
         {"event.name": "invalid_value_format"}),
        ("CreateEvent", m.CreateEventRequest(event=m.Event(
            name={"value": "x"}, id=3, created_at=ts.Timestamp(seconds=1), request_host={"value": "h"},
            relationships=m.Relationships(task={"value": -2}))), "Event",
         {"event.id": "not_allowed_value", "event.created_at": "not_allowed_value",
          "event.request_host": "not_allowed_value", "event.relationships.task": "out_of_range"}),
        ("CreateEvent", m.CreateEventRequest(event=m.Event(
            name={"value": "x"}, event_at=ts.Timestamp(seconds=10 ** 15))), "Event",
         {"event.event_at": "out_of_range"}),
        ("CreateEvent", m.CreateEventRequest(event=m.Event(name={"value": "x"}),
                                             request_info=m.RequestInfo(city={"value": "c" * 256})), "Event",
         {"request_info.city": "invalid_value_format"}),
        ("GetEvent", m.GetEventRequest(id=0), "Event", {"id": "out_of_range"}),
        ("DeleteEvent", m.DeleteEventRequest(id=-1), "DeleteEventResponse", {"id": "out_of_range"}),
        ("ListEvents", m.ListEventsRequest(page_size=5000), "ListEventsResponse", {"page_size": "out_of_range"}),
        ("ListEvents", m.ListEventsRequest(page_token="junk"), "ListEventsResponse",
         {"page_token": "invalid_value_format"}),
        ("ListEvents", m.ListEventsRequest(page_token="a", before_page_token="b"), "ListEventsResponse",
         {"before_page_token": "not_allowed_value"}),
        ("ListEvents", m.ListEventsRequest(name=m.StringFilter(values=["a"], gte={"value": "a"})),
         "ListEventsResponse", {"name": "not_allowed_value"}),
        ("ListEvents", m.ListEventsRequest(order_by=[m.SortKey()]), "ListEventsResponse",
         {"order_by[0].field": "not_allowed_value"}),
        ("ListEvents", m.ListEventsRequest(created_at=m.TimeFilter(gte=ts.Timestamp(seconds=-10 ** 13))),
         "ListEventsResponse", {"created_at": "out_of_range"}),
        ("UpdateEvent", m.UpdateEventRequest(event=m.Event(id=ev.id, payload=sp.Struct()),
                                             update_mask={"paths": ["payload"]}), "Event",
         {"event.payload": "not_allowed_value"}),
        ("UpdateEvent", m.UpdateEventRequest(event=m.Event(id=ev.id), update_mask={"paths": ["colour"]}),
         "Event", {"update_mask": "not_allowed_value"}),
        ("UpdateEvent", m.UpdateEventRequest(event=m.Event(id=ev.id), update_mask={"paths": ["name"]}),
         "Event", {"event.name": "required"}),
        ("UpdateEvent", m.UpdateEventRequest(event=m.Event(id=0, name={"value": "n"})), "Event",
         {"event.id": "out_of_range"}),
    ]
    for method, req, resp, want in cases:
        err = rpc_error(stack, pb, method, req, resp)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, err.details())
        got = violations(pb, err)
        for field, reason in want.items():
            assert got.get(field) == reason, (method, got)
    # nothing of the failed update was applied
    assert rpc(stack, pb, "GetEvent", m.GetEventRequest(id=ev.id), "Event") == ev

    err = rpc_error(stack, pb, "GetEvent", m.GetEventRequest(id=ev.id), "Event", token=TOKEN_B)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = rpc_error(stack, pb, "UpdateEvent", m.UpdateEventRequest(event=m.Event(id=ev.id, name={"value": "n"})),
                    "Event", token=TOKEN_B)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = rpc_error(stack, pb, "DeleteEvent", m.DeleteEventRequest(id=ev.id), "DeleteEventResponse", token=TOKEN_B)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = rpc_error(stack, pb, "ListEvents", m.ListEventsRequest(), "ListEventsResponse", token=None)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


def test_grpc_pages(stack, pb):
    m = pb("events/activity/v1/activity")
    name = "gpages-" + uid()
    made = [rpc(stack, pb, "CreateEvent", m.CreateEventRequest(event=m.Event(name={"value": name})), "Event").id
            for _ in range(5)]
    seen, token = [], ""
    while True:
        page = rpc(stack, pb, "ListEvents", m.ListEventsRequest(
            name=m.StringFilter(values=[name]), page_size=2, page_token=token), "ListEventsResponse")
        seen += [e.id for e in page.events]
        token = page.next_page_token
        if not token:
            break
    assert seen == made
    back = rpc(stack, pb, "ListEvents", m.ListEventsRequest(
        name=m.StringFilter(values=[name]), page_size=2, before_page_token=page.prev_page_token),
        "ListEventsResponse")
    assert [e.id for e in back.events] == made[2:4]


def test_logs_clean(stack):
    """No sanitizer reports in either process so far."""
    for out in (stack.service.output(), stack.gateway.output()):
        assert "ERROR: AddressSanitizer" not in out and "runtime error" not in out, out[-3000:]
