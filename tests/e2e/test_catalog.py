"""Catalog events (seed 002) end to end on both stores: event categories,
events and event properties through the gateway with requests (seed
examples, filters, page-number pagination with absolute links, bad input,
cascading deletes, tenancy), and the same operations over gRPC with grpcio."""
import re
import uuid
from urllib.parse import parse_qs, urlsplit

import grpc
import pytest

from conftest import TOKEN_A, TOKEN_B, auth_a, auth_b, basic_a
from conftest import unwrap

BASE = "/api/v1/event"
JSON = {"Content-Type": "application/json"}
HEX32 = re.compile(r"^[0-9a-f]{32}$")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
FIELDS = {"id", "entity_type", "title", "description", "definition", "integration", "parent", "pii",
          "verified", "published", "teams", "owners", "collections", "tags", "subscribers",
          "created_at", "updated_at"}


def hexid():
    return uuid.uuid4().hex


def url(stack, path):
    return stack.base + BASE + path


def post(stack, path, body, headers=None, raw=None):
    h = {**JSON, **(headers or auth_a())}
    if raw is not None:
        return stack.http.post(url(stack, path), data=raw, headers=h, timeout=10)
    return stack.http.post(url(stack, path), json=body, headers=h, timeout=10)


def get(stack, path, headers=None, **params):
    return stack.http.get(url(stack, path), params=params or None, headers=headers or auth_a(), timeout=10)


def patch(stack, path, body, headers=None, raw=None):
    h = {**JSON, **(headers or auth_a())}
    if raw is not None:
        return stack.http.patch(url(stack, path), data=raw, headers=h, timeout=10)
    return stack.http.patch(url(stack, path), json=body, headers=h, timeout=10)


def delete(stack, path, headers=None):
    return stack.http.delete(url(stack, path), headers=headers or auth_a(), timeout=10)


def created(r):
    assert r.status_code == 201, r.text
    return r.json()


def category(stack, **fields):
    return created(post(stack, "/category", {"title": "cat-" + hexid()[:8], **fields}))


def event(stack, parent, **fields):
    return created(post(stack, "/events", {"title": "ev-" + hexid()[:8], "parent": parent, **fields}))


def prop(stack, parent, **fields):
    return created(post(stack, "/event_properties", {"title": "p-" + hexid()[:8], "parent": parent, **fields}))


def listing(stack, path, **params):
    r = get(stack, path, **params)
    assert r.status_code == 200, r.text
    return r.json()


def assert_detail(r, status, field=None):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert isinstance(body.get("detail"), str) and body["detail"]
    assert set(body) <= {"detail", "field"}
    if field is not None:
        assert body.get("field") == field, body
        assert field.split("[")[0] in body["detail"], body
    return body


def assert_resource(obj, entity_type):
    assert set(obj) == FIELDS
    assert HEX32.match(obj["id"])
    assert obj["entity_type"] == entity_type
    assert RFC3339.match(obj["created_at"]) and RFC3339.match(obj["updated_at"])


# ---- the seed's examples, as printed ----

def test_seed_examples(stack):
    integration = "cf103b4785764467ad34384cd523abd9"
    # Create Event Category: the documented body fields with their examples.
    r = post(stack, "/category", None, raw='{"title": "Landing Page", "integration": "%s", '
                                          '"teams": ["e8ac09ede51e4e618eaf59942c98c260"]}' % integration)
    cat = created(r)
    assert r.headers["Content-Type"].startswith("application/json")
    assert_resource(cat, "event_category")
    assert cat == {**cat, "title": "Landing Page", "description": None, "definition": None,
                   "integration": integration, "parent": None, "pii": False, "verified": False,
                   "published": False, "teams": ["e8ac09ede51e4e618eaf59942c98c260"], "owners": [],
                   "collections": [], "tags": [], "subscribers": []}
    assert cat["created_at"] == cat["updated_at"]
    assert get(stack, "/category/" + cat["id"]).json() == cat
    assert get(stack, "/category/" + cat["id"] + "/").json() == cat  # the trailing-slash form
    page = listing(stack, "/category", title="Landing Page")
    assert cat["id"] in [c["id"] for c in page["results"]]
    assert all(c["title"] == "Landing Page" for c in page["results"])

    # The documented path examples name ids nobody has here.
    r = get(stack, "/category/43d7c33dad744dfbbfadc172f6701afb")
    assert r.status_code == 404 and r.json() == {"detail": "Not found."}
    assert get(stack, "/events/226dc8aafa8d46468b116652cdc64065").status_code == 404
    assert get(stack, "/event_properties/226dc8aafa8d46468b116652cdc64065").status_code == 404

    # Create Event: a category as parent; the event takes the category's integration.
    ev = created(post(stack, "/events", {"title": "Clicked", "parent": cat["id"]}))
    assert_resource(ev, "event")
    assert ev["parent"] == cat["id"] and ev["integration"] == integration
    assert get(stack, "/events/" + ev["id"]).json() == ev
    page = listing(stack, "/events", integration_id=integration, parent_id=cat["id"], title="Clicked")
    assert [e["id"] for e in page["results"]] == [ev["id"]]

    # Update an Event: the documented body with its examples.
    seed_patch = r'''{
      "description": "This is a description for a sample table.",
      "definition": "\n# Castae illa\n\n## Finemque aequore\n\nLorem markdownum motus",
      "pii": false,
      "verified": true,
      "published": true,
      "teams": ["e8ac09ed-e51e-4e61-8eaf-59942c98c260", "cca810f1-11c1-4117-bc23-20ae8020897f"],
      "owners": ["33733f42-8ff7-460b-9e20-50a2133d3bb0", "c90dedee-40ee-47ec-9c27-96dc3b2ec363"],
      "collections": ["3b2c7185-fb5d-4d94-89d4-3dae08e093a9"],
      "tags": ["04654d61-4f64-4f08-b697-3915b5137c49", "429693a2-a5e7-4525-b413-ece5e96bc5b3"],
      "subscribers": ["c90dedee-40ee-47ec-9c27-96dc3b2ec363"]
    }'''
    r = patch(stack, "/events/" + ev["id"], None, raw=seed_patch)
    assert r.status_code == 200, r.text
    up = r.json()
    assert_resource(up, "event")
    assert up["description"] == "This is a description for a sample table."
    assert up["definition"].startswith("\n# Castae illa")
    assert (up["pii"], up["verified"], up["published"]) == (False, True, True)
    # ids are shown as 32 lowercase hex digits, like the API's own
    assert up["teams"] == ["e8ac09ede51e4e618eaf59942c98c260", "cca810f111c14117bc2320ae8020897f"]
    assert up["collections"] == ["3b2c7185fb5d4d9489d43dae08e093a9"]
    assert len(up["owners"]) == 2 and len(up["tags"]) == 2 and len(up["subscribers"]) == 1
    assert up["created_at"] == ev["created_at"] and up["updated_at"] > ev["updated_at"]
    assert up["title"] == "Clicked" and up["parent"] == cat["id"]
    assert get(stack, "/events/" + ev["id"]).json() == up

    # Event properties: the same, with an event as parent.
    p = created(post(stack, "/event_properties", {"title": "button_id", "parent": ev["id"]}))
    assert_resource(p, "event_property")
    assert p["parent"] == ev["id"] and p["integration"] == integration
    r = patch(stack, "/event_properties/" + p["id"], None, raw=seed_patch)
    assert r.status_code == 200 and r.json()["verified"] is True
    page = listing(stack, "/event_properties", parent_id=ev["id"], title="button_id")
    assert [x["id"] for x in page["results"]] == [p["id"]]

    # Delete Event Property, then Delete Event.
    r = delete(stack, "/event_properties/" + p["id"])
    assert r.status_code == 200 and r.json() == {"detail": "deleted"}
    assert get(stack, "/event_properties/" + p["id"]).status_code == 404
    r = delete(stack, "/events/" + ev["id"])
    assert r.status_code == 200 and r.json() == {"detail": "deleted"}
    assert_detail(get(stack, "/events/" + ev["id"]), 404)
    assert_detail(delete(stack, "/events/" + ev["id"]), 404)


# ---- lists, filters and pages ----

def test_pages_followed_to_the_end(stack):
    cat = category(stack)
    ids = [event(stack, cat["id"], title=f"e{i:03d}")["id"] for i in range(120)]
    first = listing(stack, "/events", parent_id=cat["id"])
    assert first["count"] == 120 and first["total_pages"] == 3
    assert first["meta"] == {"page": 1, "previous_page": None, "next_page": 2}
    assert first["links"]["previous"] is None
    seen, page, n = [], first, 1
    while True:
        assert len(page["results"]) == (50 if n < 3 else 20)
        seen += [e["id"] for e in page["results"]]
        nxt = page["links"]["next"]
        if nxt is None:
            break
        # absolute, with the other parameters kept
        assert nxt.startswith(stack.base + BASE + "/events?")
        q = parse_qs(urlsplit(nxt).query)
        assert q == {"parent_id": [cat["id"]], "page": [str(n + 1)]}
        r = stack.http.get(nxt, headers=auth_a(), timeout=10)
        assert r.status_code == 200, r.text
        page = r.json()
        n += 1
        assert page["meta"] == {"page": n, "previous_page": n - 1, "next_page": n + 1 if n < 3 else None}
        assert page["count"] == 120 and page["total_pages"] == 3
    assert n == 3 and seen == ids  # oldest first, nothing skipped or repeated
    # previous of page 2 is the first page, written without page=
    p2 = listing(stack, "/events", parent_id=cat["id"], page=2)
    prev = p2["links"]["previous"]
    assert parse_qs(urlsplit(prev).query) == {"parent_id": [cat["id"]]}
    assert stack.http.get(prev, headers=auth_a(), timeout=10).json()["results"] == first["results"]
    p3 = listing(stack, "/events", parent_id=cat["id"], page=3)
    assert p3["links"]["next"] is None and "page=2" in p3["links"]["previous"]
    r = get(stack, "/events", parent_id=cat["id"], page=4)
    assert r.status_code == 404 and r.json() == {"detail": "Invalid page."}
    # links follow the host the client used
    r = stack.http.get(url(stack, "/events"), params={"parent_id": cat["id"]},
                       headers={**auth_a(), "X-Forwarded-Host": "catalog.example.com",
                                "X-Forwarded-Proto": "https"}, timeout=10)
    assert r.json()["links"]["next"].startswith("https://catalog.example.com/api/v1/event/events?")


def test_empty_list_has_one_page(stack):
    d = listing(stack, "/events", parent_id=hexid())
    assert d == {"count": 0, "total_pages": 1, "links": {"next": None, "previous": None},
                 "meta": {"page": 1, "previous_page": None, "next_page": None}, "results": []}
    for page in (2, 2147483647):
        r = get(stack, "/events", parent_id=hexid(), page=page)
        assert r.status_code == 404 and r.json() == {"detail": "Invalid page."}


def test_filters(stack):
    i1, i2 = hexid(), hexid()
    c1 = category(stack, integration=i1, title="Checkout " + i1[:6])
    c2 = category(stack, integration=i2)
    e1 = event(stack, c1["id"], title="Clicked")
    e2 = event(stack, c1["id"], title="Viewed")
    e3 = event(stack, c2["id"], title="Clicked")
    e4 = event(stack, c2["id"], title="Clicked", integration=i1)  # its own integration

    def ids(path, **params):
        return [x["id"] for x in listing(stack, path, **params)["results"]]
    assert ids("/category", title="Checkout " + i1[:6]) == [c1["id"]]
    assert ids("/events", parent_id=c1["id"]) == [e1["id"], e2["id"]]
    assert ids("/events", parent_id=c1["id"], title="Clicked") == [e1["id"]]
    assert ids("/events", integration_id=i1) == [e1["id"], e2["id"], e4["id"]]
    assert ids("/events", integration_id=i2, title="Clicked") == [e3["id"]]
    assert ids("/events", integration_id=i1, parent_id=c2["id"]) == [e4["id"]]
    # an id filter matches whichever UUID form it is written in
    dashed = str(uuid.UUID(i2)).upper()
    assert ids("/events", integration_id=dashed) == [e3["id"]]
    assert ids("/events", parent_id=c1["id"], title="Nothing") == []
    # an empty filter is no filter
    assert ids("/events", parent_id=c2["id"], title="") == [e3["id"], e4["id"]]
    p1 = prop(stack, e1["id"], title="colour")
    p2 = prop(stack, e1["id"], title="size")
    prop(stack, e2["id"], title="colour")
    assert ids("/event_properties", parent_id=e1["id"]) == [p1["id"], p2["id"]]
    assert ids("/event_properties", parent_id=e1["id"], title="size") == [p2["id"]]
    assert ids("/event_properties", integration_id=i1, title="colour")[:1] == [p1["id"]]


@pytest.mark.parametrize("path,query,name", [
    ("/category", "page=0", "page"),
    ("/category", "page=-1", "page"),
    ("/category", "page=abc", "page"),
    ("/category", "page=1.5", "page"),
    ("/category", "page=99999999999", "page"),
    ("/category", "colour=red", "colour"),
    ("/category", "parent_id=43d7c33dad744dfbbfadc172f6701afb", "parent_id"),
    ("/category", "page_size=10", "page_size"),
    ("/events", "title=a&title=b", "title"),
    ("/events", "integration_id=nope", "integration_id"),
    ("/events", "parent_id=43d7c33dad744dfbbfadc172f6701afbX", "parent_id"),
    ("/events", "sort=title", "sort"),
    ("/event_properties", "parent_id=zz", "parent_id"),
    ("/event_properties", "page=0", "page"),
])
def test_bad_list_parameters(stack, path, query, name):
    r = stack.http.get(url(stack, path) + "?" + query, headers=auth_a(), timeout=10)
    assert_detail(r, 400, name)


def test_unknown_parameters_on_other_routes(stack):
    cat = category(stack)
    ev = event(stack, cat["id"])
    for method, path in [("GET", f"/category/{cat['id']}"), ("GET", f"/events/{ev['id']}"),
                         ("DELETE", f"/events/{ev['id']}"), ("PATCH", f"/events/{ev['id']}"),
                         ("POST", "/events")]:
        r = stack.http.request(method, url(stack, path) + "?force=1", json={}, headers={**JSON, **auth_a()},
                               timeout=10)
        assert_detail(r, 400, "force")
    assert get(stack, f"/events/{ev['id']}").status_code == 200


# ---- bad input ----

def count(stack, path):
    return listing(stack, path)["count"]


LONG = "x" * 256


@pytest.mark.parametrize("path,raw,name", [
    ("/category", '{"title": ', None),
    ("/category", '[]', None),
    ("/category", '"title"', None),
    ("/category", '', None),
    ("/category", '{"title": "a", "title": "b"}', None),
    ("/category", '{"title": 5}', "title"),
    ("/category", '{"title": "%s"}' % LONG, "title"),
    ("/category", '{"title": "   "}', "title"),
    ("/category", '{"colour": "red"}', "colour"),
    ("/category", '{"id": "43d7c33dad744dfbbfadc172f6701afb"}', "id"),
    ("/category", '{"entity_type": "event"}', "entity_type"),
    ("/category", '{"created_at": "2024-01-01T00:00:00Z"}', "created_at"),
    ("/category", '{"integration": "not-a-uuid"}', "integration"),
    ("/category", '{"integration": 7}', "integration"),
    ("/category", '{"teams": "e8ac09ede51e4e618eaf59942c98c260"}', "teams"),
    ("/category", '{"teams": [1]}', "teams[0]"),
    ("/category", '{"teams": ["e8ac09ede51e4e618eaf59942c98c260", "x"]}', "teams[1]"),
    ("/category", '{"teams": [%s]}' % ",".join(['"%s"' % ("%032x" % i) for i in range(101)]), "teams"),
    ("/category", '{"pii": "yes"}', "pii"),
    ("/category", '{"description": "%s"}' % ("d" * 10001), "description"),
    ("/category", '{"parent": "43d7c33dad744dfbbfadc172f6701afb"}', "parent"),
    ("/events", '{"title": "no parent"}', "parent"),
    ("/events", '{"title": "empty parent", "parent": ""}', "parent"),
    ("/events", '{"title": "x", "parent": "43d7c33dad744dfbbfadc172f6701afb"}', "parent"),
    ("/events", '{"title": "x", "parent": "nothex"}', "parent"),
    ("/events", '{"title": "x", "parent": 12}', "parent"),
    ("/event_properties", '{"title": "no parent"}', "parent"),
    ("/event_properties", '{"title": "x", "parent": "43d7c33dad744dfbbfadc172f6701afb"}', "parent"),
])
def test_bad_create_bodies(stack, path, raw, name):
    before = count(stack, path)
    r = post(stack, path, None, raw=raw)
    assert_detail(r, 400, name)
    assert count(stack, path) == before


def test_limits_count_characters_and_bodies_are_bounded(stack):
    assert category(stack, title="\u00e9" * 255)["title"] == "\u00e9" * 255
    assert_detail(post(stack, "/category", {"title": "\u00e9" * 256}), 400, "title")
    r = stack.http.post(url(stack, "/category"), data=b"x" * ((1 << 20) + 1), headers={**JSON, **auth_a()},
                        timeout=10)
    assert_detail(r, 413)


def test_parent_must_be_of_the_right_kind(stack):
    cat = category(stack)
    ev = event(stack, cat["id"])
    p = prop(stack, ev["id"])
    # a category is not an event, an event is not a category
    assert_detail(post(stack, "/event_properties", {"title": "x", "parent": cat["id"]}), 400, "parent")
    assert_detail(post(stack, "/events", {"title": "x", "parent": ev["id"]}), 400, "parent")
    assert_detail(post(stack, "/events", {"title": "x", "parent": p["id"]}), 400, "parent")
    # the dashed, upper-case form of an existing parent is the same parent
    e2 = event(stack, str(uuid.UUID(cat["id"])).upper())
    assert e2["parent"] == cat["id"]


@pytest.mark.parametrize("raw,name", [
    ('{"title": "renamed"}', "title"),
    ('{"parent": "43d7c33dad744dfbbfadc172f6701afb"}', "parent"),
    ('{"integration": "43d7c33dad744dfbbfadc172f6701afb"}', "integration"),
    ('{"id": "43d7c33dad744dfbbfadc172f6701afb"}', "id"),
    ('{"verified": true, "colour": 1}', "colour"),
    ('{"pii": "false"}', "pii"),
    ('{"pii": null}', "pii"),
    ('{"teams": ["nope"]}', "teams[0]"),
    ('{"owners": "33733f42-8ff7-460b-9e20-50a2133d3bb0"}', "owners"),
    ('{"description": "%s"}' % ("d" * 10001), "description"),
    ('{"verified": true', None),
    ('', None),
    ('[{"verified": true}]', None),
])
def test_bad_patch_bodies(stack, raw, name):
    cat = category(stack)
    ev = event(stack, cat["id"], description="keep")
    r = patch(stack, "/events/" + ev["id"], None, raw=raw)
    assert_detail(r, 400, name)
    assert get(stack, "/events/" + ev["id"]).json() == ev


def test_patch_clears_and_empty_patch(stack):
    cat = category(stack)
    ev = event(stack, cat["id"], description="d", teams=[hexid()])
    up = patch(stack, "/events/" + ev["id"], {"description": None, "teams": []}).json()
    assert up["description"] is None and up["teams"] == []
    r = patch(stack, "/events/" + ev["id"], {})
    assert r.status_code == 200
    assert {k: v for k, v in r.json().items() if k != "updated_at"} == \
           {k: v for k, v in up.items() if k != "updated_at"}


@pytest.mark.parametrize("bad", ["nothex", "43D7C33DAD744DFBBFADC172F6701AFB",
                                 "43d7c33dad744dfbbfadc172f6701af", "43d7c33d-ad74-4dfb-bfad-c172f6701afb",
                                 "43d7c33dad744dfbbfadc172f6701afb0"])
def test_bad_ids_are_not_found(stack, bad):
    for method, path in [("GET", f"/category/{bad}"), ("GET", f"/events/{bad}"),
                         ("PATCH", f"/events/{bad}"), ("DELETE", f"/events/{bad}"),
                         ("GET", f"/event_properties/{bad}"), ("PATCH", f"/event_properties/{bad}"),
                         ("DELETE", f"/event_properties/{bad}")]:
        r = stack.http.request(method, url(stack, path), json={"pii": True}, headers={**JSON, **auth_a()},
                               timeout=10)
        assert r.status_code == 404 and r.json() == {"detail": "Not found."}, (method, path, r.text)


# ---- deletes ----

def test_delete_event_deletes_its_properties(stack):
    cat = category(stack)
    ev, other = event(stack, cat["id"]), event(stack, cat["id"])
    mine = [prop(stack, ev["id"]) for _ in range(3)]
    theirs = prop(stack, other["id"])
    assert delete(stack, "/events/" + ev["id"]).status_code == 200
    for p in mine:
        assert get(stack, "/event_properties/" + p["id"]).status_code == 404
    assert listing(stack, "/event_properties", parent_id=ev["id"])["count"] == 0
    assert get(stack, "/event_properties/" + theirs["id"]).json() == theirs
    assert get(stack, "/events/" + other["id"]).json() == other
    assert get(stack, "/category/" + cat["id"]).json() == cat
    # the event is gone as a parent too
    assert_detail(post(stack, "/event_properties", {"title": "late", "parent": ev["id"]}), 400, "parent")


# ---- tenancy, credentials, routing ----

def test_other_tenant_sees_nothing(stack):
    cat = category(stack)
    ev = event(stack, cat["id"])
    p = prop(stack, ev["id"])
    for path in (f"/category/{cat['id']}", f"/events/{ev['id']}", f"/event_properties/{p['id']}"):
        assert_detail(get(stack, path, headers=auth_b()), 404)
    for path in (f"/events/{ev['id']}", f"/event_properties/{p['id']}"):
        assert_detail(patch(stack, path, {"verified": True}, headers=auth_b()), 404)
        assert_detail(delete(stack, path, headers=auth_b()), 404)
    assert listing(stack, "/events", parent_id=cat["id"])["count"] == 1
    r = get(stack, "/events", headers=auth_b(), parent_id=cat["id"])
    assert r.json()["count"] == 0
    r = get(stack, "/category", headers=auth_b(), title=cat["title"])
    assert r.json()["count"] == 0
    # another tenant's category is no parent
    assert_detail(post(stack, "/events", {"title": "x", "parent": cat["id"]}, headers=auth_b()), 400, "parent")
    assert get(stack, f"/event_properties/{p['id']}").json() == p
    assert get(stack, f"/events/{ev['id']}").json()["verified"] is False


def test_credentials(stack):
    for h in ({}, {"Authorization": "Bearer sk:wrong"}, {"Authorization": "Token abc"}):
        r = stack.http.get(url(stack, "/category"), headers=h, timeout=10)
        assert_detail(r, 401)
        r = stack.http.post(url(stack, "/category"), json={"title": "x"}, headers={**JSON, **h}, timeout=10)
        assert_detail(r, 401)
    assert get(stack, "/category", headers=basic_a()).status_code == 200


def test_unknown_paths_and_methods(stack):
    assert_detail(get(stack, "/nothing"), 404)
    assert_detail(stack.http.delete(url(stack, "/category/" + hexid()), headers=auth_a(), timeout=10), 405)
    assert_detail(stack.http.put(url(stack, "/events/" + hexid()), json={}, headers=auth_a(), timeout=10), 405)
    assert_detail(stack.http.delete(url(stack, "/events"), headers=auth_a(), timeout=10), 405)


def test_openapi_lists_catalog_paths(stack):
    doc = stack.http.get(stack.base + "/openapi.json", timeout=10).json()
    paths = doc["paths"]
    assert set(paths[BASE + "/category"]) == {"get", "post"}
    assert set(paths[BASE + "/events/{event_id}"]) == {"get", "patch", "delete"}
    assert set(paths[BASE + "/event_properties/{event_property_id}"]) == {"get", "patch", "delete"}
    assert "201" in paths[BASE + "/events"]["post"]["responses"]
    names = {p["name"] for p in paths[BASE + "/events"]["get"]["parameters"]}
    assert names == {"integration_id", "parent_id", "title", "page"}


# ---- gRPC ----

SVC = "/events.catalog.v1.EventCatalogService/"


def rpc(stack, pb, name, req, resp_type, token=TOKEN_A):
    m = pb("events/catalog/v1/catalog")
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
            for any_ in status.Status.FromString(v).details:
                if any_.type_url.endswith("google.rpc.BadRequest"):
                    return {fv.field: fv.reason for fv in details.BadRequest.FromString(any_.value).field_violations}
    return {}


def test_grpc_operations(stack, pb):
    m = pb("events/catalog/v1/catalog")
    integ = hexid()
    cat = rpc(stack, pb, "CreateEventCategory",
              m.CreateEventCategoryRequest(resource=m.Resource(title={"value": "Landing Page"},
                                                          integration={"value": integ})), "Resource")
    assert HEX32.match(cat.id) and cat.entity_type == m.ENTITY_TYPE_EVENT_CATEGORY
    assert cat.created_at.seconds > 0 and cat.integration.value == integ
    ev = rpc(stack, pb, "CreateEvent", m.CreateEventRequest(
        resource=m.Resource(title={"value": "Clicked"}, parent={"value": cat.id}, pii=True)), "Resource")
    assert ev.entity_type == m.ENTITY_TYPE_EVENT and ev.parent.value == cat.id and ev.pii
    assert ev.integration.value == integ
    p = rpc(stack, pb, "CreateEventProperty", m.CreateEventPropertyRequest(
        resource=m.Resource(title={"value": "button"}, parent={"value": ev.id})), "Resource")
    assert p.entity_type == m.ENTITY_TYPE_EVENT_PROPERTY
    got = rpc(stack, pb, "GetEvent", m.GetEventRequest(event_id=ev.id), "Resource")
    assert got == ev
    # the REST view of what gRPC wrote
    assert get(stack, "/events/" + ev.id).json()["title"] == "Clicked"

    lst = rpc(stack, pb, "ListEvents", m.ListEventsRequest(parent_id={"value": cat.id}), "ListResourcesResponse")
    assert lst.count == 1 and lst.total_pages == 1 and lst.page == 1 and lst.results[0].id == ev.id
    lst = rpc(stack, pb, "ListEventCategories", m.ListEventCategoriesRequest(title={"value": "Landing Page"},
                                                                             page_size=1000),
              "ListResourcesResponse")
    assert cat.id in [r.id for r in lst.results]
    # the category list filters by title alone, as the seed documents it
    assert "integration_id" not in m.ListEventCategoriesRequest.DESCRIPTOR.fields_by_name
    for i in range(4):
        rpc(stack, pb, "CreateEvent", m.CreateEventRequest(
            resource=m.Resource(title={"value": f"e{i}"}, parent={"value": cat.id})), "Resource")
    lst = rpc(stack, pb, "ListEvents", m.ListEventsRequest(parent_id={"value": cat.id}, page_size=2, page=3),
              "ListResourcesResponse")
    assert lst.count == 5 and lst.total_pages == 3 and len(lst.results) == 1
    err = rpc_error(stack, pb, "ListEvents", m.ListEventsRequest(parent_id={"value": cat.id}, page_size=2, page=4),
                    "ListResourcesResponse")
    assert err.code() == grpc.StatusCode.NOT_FOUND

    up = rpc(stack, pb, "UpdateEvent", m.UpdateEventRequest(
        event_id=ev.id, resource=m.Resource(verified=True, tags=["04654d61-4f64-4f08-b697-3915b5137c49"]),
        update_mask={"paths": ["verified", "tags"]}), "Resource")
    assert up.verified and up.pii and up.tags == ["04654d614f644f08b6973915b5137c49"]
    # Categories update and delete over gRPC too; deleting one deletes its events and their properties.
    upc = rpc(stack, pb, "UpdateEventCategory", m.UpdateEventCategoryRequest(
        event_category_id=cat.id, resource=m.Resource(description={"value": "d"}), update_mask={"paths": ["description"]}), "Resource")
    assert upc.description.value == "d"
    rpc(stack, pb, "DeleteEventCategory", m.DeleteEventCategoryRequest(event_category_id=cat.id), "DeleteResourceResponse")
    FIELD = {"GetEventCategory": "event_category_id", "GetEvent": "event_id", "GetEventProperty": "event_property_id"}
    for name, rid in (("GetEventCategory", cat.id), ("GetEvent", ev.id), ("GetEventProperty", p.id)):
        assert rpc_error(stack, pb, name, getattr(m, name + "Request")(**{FIELD[name]: rid}), "Resource").code() == grpc.StatusCode.NOT_FOUND
    lst = rpc(stack, pb, "ListEvents", m.ListEventsRequest(parent_id={"value": cat.id}), "ListResourcesResponse")
    assert lst.count == 0


def test_grpc_errors(stack, pb):
    m = pb("events/catalog/v1/catalog")
    cat = category(stack)
    ev = event(stack, cat["id"])

    def bad(name, req, resp="Resource"):
        err = rpc_error(stack, pb, name, req, resp)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
        return violations(pb, err)
    assert bad("CreateEvent", m.CreateEventRequest(resource=m.Resource(title={"value": "x"}))) == \
        {"resource.parent": "required"}
    assert bad("CreateEvent", m.CreateEventRequest()) == {"resource": "required", "resource.parent": "required"}
    assert bad("CreateEvent", m.CreateEventRequest(resource=m.Resource(parent={"value": hexid()}))) == \
        {"resource.parent": "not_found"}
    v = bad("CreateEventCategory", m.CreateEventCategoryRequest(resource=m.Resource(
        title={"value": "x" * 256}, teams=["x"], parent={"value": cat["id"]})))
    assert set(v) == {"resource.title", "resource.teams[0]", "resource.parent"}
    v = bad("UpdateEvent", m.UpdateEventRequest(event_id=ev["id"], resource=m.Resource(title={"value": "t"}),
                                                   update_mask={"paths": ["title", "pii"]}))
    assert v == {"update_mask": "not_allowed_value"}
    assert bad("UpdateEvent", m.UpdateEventRequest()) == {"resource": "required"}
    assert bad("GetEvent", m.GetEventRequest(event_id="nothex")) == {"event_id": "invalid_value_format"}
    assert bad("DeleteEvent", m.DeleteEventRequest(event_id=""), "DeleteResourceResponse") == {"event_id": "invalid_value_format"}
    assert "page_size" in bad("ListEvents", m.ListEventsRequest(page_size=5000), "ListResourcesResponse")
    assert "page" in bad("ListEvents", m.ListEventsRequest(page=-1), "ListResourcesResponse")
    assert get(stack, "/events/" + ev["id"]).json() == ev  # nothing changed

    other = rpc_error(stack, pb, "GetEvent", m.GetEventRequest(event_id=ev["id"]), "Resource", token=TOKEN_B)
    assert other.code() == grpc.StatusCode.NOT_FOUND
    other = rpc_error(stack, pb, "DeleteEvent", m.DeleteEventRequest(event_id=ev["id"]), "DeleteResourceResponse",
                      token=TOKEN_B)
    assert other.code() == grpc.StatusCode.NOT_FOUND
    anon = rpc_error(stack, pb, "ListEvents", m.ListEventsRequest(), "ListResourcesResponse", token=None)
    assert anon.code() == grpc.StatusCode.UNAUTHENTICATED


def test_service_log_is_clean(stack):
    out = stack.service.output() + stack.gateway.output()
    assert "ERROR: AddressSanitizer" not in out and "runtime error" not in out


def test_read_only_members_named_as_sent(stack):
    """The service refuses output-only members; the detail names the member
    as the client wrote it (the body is the resource itself)."""
    for member, value in (("id", hexid()), ("created_at", "2020-01-01T00:00:00Z"), ("entity_type", "event")):
        r = post(stack, "/category", {"title": "ro", member: value})
        assert r.status_code == 400, r.text
        assert r.json() == {"detail": f"{member} is read-only", "field": member}
