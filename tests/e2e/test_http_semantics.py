"""RFC 9110 semantics on every route, the gateway's own paths included:
405 carries Allow, HEAD answers wherever GET does (same status and headers,
no body), OPTIONS answers 204 with Allow, 401 carries WWW-Authenticate."""
import http.client

import pytest

from conftest import auth_a

ACT = "/api/v2/events"
CUST = "/rest-api/enterprise-interface/v1.0/events"
CAT = "/api/v1/event"
OBJ = "/v1/objects/meetings/events"

# path -> the methods its routes serve (HEAD and OPTIONS come with them)
PATHS = {
    ACT: {"GET", "POST"},
    ACT + "/1": {"GET", "PATCH", "DELETE"},
    CUST: {"GET", "POST"},
    CUST + "/" + "a" * 26: {"GET"},
    CAT + "/category": {"GET", "POST"},
    CAT + "/events/" + "a" * 32: {"GET", "PATCH", "DELETE"},
    CAT + "/event_properties": {"GET", "POST"},
    OBJ: {"GET", "POST"},
    OBJ + "/0190b3e4-7a6c-7cc1-8f3e-3c5a8a0a1b2c": {"GET", "PUT", "DELETE"},
    "/healthz": {"GET"},
    "/openapi.json": {"GET"},
}


def raw(stack, method, path, headers=None):
    host, port = stack.base.split("//")[1].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r, body


def allow_set(r):
    return {m.strip() for m in (r.getheader("Allow") or "").split(",") if m.strip()}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_options_lists_the_methods(sqlite_stack, path):
    r, body = raw(sqlite_stack, "OPTIONS", path, auth_a())
    assert r.status == 204 and body == b""
    assert allow_set(r) == PATHS[path] | {"HEAD", "OPTIONS"}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_405_carries_allow(sqlite_stack, path):
    wrong = next(m for m in ("PUT", "PATCH", "POST", "DELETE") if m not in PATHS[path])
    r, body = raw(sqlite_stack, wrong, path, {**auth_a(), "Content-Type": "application/json"})
    assert r.status == 405, body
    assert allow_set(r) == PATHS[path] | {"HEAD", "OPTIONS"}


@pytest.mark.parametrize("path", [ACT, CUST, CAT + "/category", OBJ, "/healthz", "/openapi.json"])
def test_head_is_get_without_the_body(sqlite_stack, path):
    g, gbody = raw(sqlite_stack, "GET", path, auth_a())
    h, hbody = raw(sqlite_stack, "HEAD", path, auth_a())
    assert h.status == g.status == 200
    assert hbody == b"" and gbody
    assert h.getheader("Content-Type") == g.getheader("Content-Type")
    assert h.getheader("Content-Length") == str(len(gbody)) or path in (ACT, CUST, CAT + "/category", OBJ)


def test_head_of_a_missing_resource_is_404(sqlite_stack):
    r, body = raw(sqlite_stack, "HEAD", CUST + "/" + "b" * 26, auth_a())
    assert r.status == 404 and body == b""


@pytest.mark.parametrize("path,schemes", [(ACT, {"Bearer"}), (CUST, {"Bearer", "Basic"}),
                                          (CAT + "/category", {"Bearer"}), (OBJ, {"Bearer"})])
def test_401_carries_a_challenge(sqlite_stack, path, schemes):
    for headers in ({}, {"Authorization": "Bearer not-a-known-token"}):
        r, _ = raw(sqlite_stack, "GET", path, headers)
        assert r.status == 401
        challenge = r.getheader("WWW-Authenticate") or ""
        assert {s for s in ("Bearer", "Basic") if s in challenge} == schemes, challenge


def test_unknown_path_under_a_dialect_is_404_in_its_shape(sqlite_stack):
    r, body = raw(sqlite_stack, "GET", CUST + "/" + "a" * 26 + "/nope", auth_a())
    assert r.status == 404 and b'"error"' in body
    r, body = raw(sqlite_stack, "OPTIONS", "/no/such/path")
    assert r.status == 404
