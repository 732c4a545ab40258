"""HTTP framing, header values and path parameters at the gateway's door
(issue 19 items 3, 6 and 7), with raw sockets so every byte is the test's:

- RFC 9112 framing: duplicate or conflicting Content-Length, Content-Length
  with Transfer-Encoding, transfer codings other than chunked, a missing or
  repeated Host, and oversized queries get one answer at once and the
  connection closes; a smuggled second request is never answered.
- Header values that become gRPC metadata: a tab, control byte or non-ASCII
  byte in Authorization is 401 with WWW-Authenticate, over 4 KiB is 431, in
  each dialect's error shape; other users' requests keep succeeding while one
  client sends oversized headers; the gateway's stderr holds no secret and
  only JSON lines.
- Path parameters are decoded once, after routing: an encoded NUL, '/',
  control character, dot segment or invalid UTF-8 is 400 in the dialect's
  shape and never another operation; valid non-ASCII ids round-trip exactly.
"""
import http.client
import json
import os
import socket
import tempfile
import threading
import time

import pytest
import requests

from conftest import BIN, TOKEN_A, Process, auth_a, free_port, wait_port
from harden import ACTIVITY, API_JSON, CATALOG, CUSTOMER, JSON, OBJECTS, activity_body, object_body, uid

AUTH = f"Authorization: Bearer {TOKEN_A}\r\n".encode()
LISTS = {"activity": ACTIVITY, "customer": CUSTOMER, "catalog": CATALOG + "/category",
         "object": OBJECTS + "/o/events"}


class DebugStack:
    """Service and gateway on SQLite, the gateway logging at debug level so
    that every refusal and every libmicrohttpd message reaches its stderr."""

    def __init__(self, workdir, credentials):
        self.grpc_port, self.http_port = free_port(), free_port()
        store = "sqlite:" + os.path.join(tempfile.mkdtemp(dir=workdir), "events.db")
        env = dict(os.environ, EVENTS_GRPC_ADDR=f"127.0.0.1:{self.grpc_port}", EVENTS_STORE=store,
                   EVENTS_CREDENTIALS=credentials, EVENTS_LOG_LEVEL="warn")
        self.service = Process([os.path.join(BIN, "events-service")], env,
                               os.path.join(workdir, "framing-service.log"))
        wait_port(self.grpc_port, self.service.proc)
        genv = dict(os.environ, EVENTS_HTTP_ADDR=f"127.0.0.1:{self.http_port}",
                    EVENTS_GRPC_TARGET=f"127.0.0.1:{self.grpc_port}", EVENTS_LOG_LEVEL="debug")
        self.gateway = Process([os.path.join(BIN, "events-gateway")], genv,
                               os.path.join(workdir, "framing-gateway.log"))
        wait_port(self.http_port, self.gateway.proc)
        self.http = requests.Session()
        self.base = f"http://127.0.0.1:{self.http_port}"

    def stop(self):
        self.http.close()
        return self.gateway.stop(), self.service.stop()


@pytest.fixture(scope="module")
def guard_stack(workdir, credentials_file):
    s = DebugStack(workdir, credentials_file)
    yield s
    assert s.stop() == (0, 0)


def parse_responses(buf):
    """The HTTP/1.1 responses in buf: [(status, {lower name: [values]}, body)]."""
    out = []
    while buf.startswith(b"HTTP/1."):
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers.setdefault(k.strip().lower().decode(), []).append(v.strip().decode("latin-1"))
        n = int(headers.get("content-length", ["0"])[0])
        out.append((status, headers, rest[:n]))
        buf = rest[n:]
    return out


def exchange(port, data, wait=3.0):
    """Sends data; reads until the server closes or `wait` seconds pass.
    Returns (responses, closed, seconds until the first response or close)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    s.sendall(data)
    buf, closed, first = b"", False, None
    t0 = time.monotonic()
    try:
        while True:
            b = s.recv(65536)
            if first is None:
                first = time.monotonic() - t0
            if not b:
                closed = True
                break
            buf += b
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    finally:
        s.close()
    return parse_responses(buf), closed, first if first is not None else wait


def body_json(resp):
    return json.loads(resp[2])


def assert_shape(dialect, status, body):
    """The dialect's documented error shape (SPEC 7.1-7.4)."""
    if dialect == "activity":
        errs = body["errors"]
        assert errs and {"id", "title", "detail"} <= set(errs[0]), body
    elif dialect == "customer":
        assert {"type", "exception", "title", "detail", "error_data"} <= set(body["error"]), body
    elif dialect == "catalog":
        assert set(body) <= {"detail", "field"} and isinstance(body["detail"], str), body
    elif dialect == "object":
        assert body["status_code"] == status and "message" in body and "request_id" in body, body
    else:
        assert body["error"]["status"] == status, body


def refused(resps, closed, status):
    assert len(resps) == 1, resps
    assert resps[0][0] == status, resps[0]
    assert "close" in [v.lower() for v in resps[0][1].get("connection", [])], resps[0][1]
    assert closed, "the connection stays open"


# ---- framing (RFC 9112 section 6) ----

def test_keep_alive_still_serves_pipelined_requests(guard_stack):
    # The control for what follows: ordinary requests keep the connection.
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    resps, closed, _ = exchange(guard_stack.http_port, req * 2, wait=1.5)
    assert [r[0] for r in resps] == [200, 200] and not closed


def test_conflicting_content_length_is_not_smuggled(guard_stack):
    title = "smuggle-" + uid()
    first = json.dumps({"title": title}).encode()
    inner = f"GET {CATALOG}/category?title={title} HTTP/1.1\r\nHost: x\r\n".encode() + AUTH + b"\r\n"
    body = first + inner
    req = (f"POST {CATALOG}/category HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(first)}\r\nContent-Length: {len(body)}\r\n").encode() + AUTH + b"\r\n" + body
    resps, closed, first_s = exchange(guard_stack.http_port, req)
    refused(resps, closed, 400)
    assert_shape("catalog", 400, body_json(resps[0]))
    assert first_s < 2
    # Neither request ran.
    r = guard_stack.http.get(f"{guard_stack.base}{CATALOG}/category", params={"title": title},
                              headers=auth_a(), timeout=10)
    assert r.status_code == 200 and r.json()["count"] == 0, r.text


def test_duplicate_equal_content_length(guard_stack):
    req = (f"POST {OBJECTS}/o/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           "Content-Length: 2\r\nContent-Length: 2\r\n").encode() + AUTH + b"\r\n{}"
    resps, closed, _ = exchange(guard_stack.http_port, req)
    refused(resps, closed, 400)
    assert_shape("object", 400, body_json(resps[0]))


def test_content_length_with_chunked(guard_stack):
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    req = (f"POST {CUSTOMER} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           "Content-Length: 7\r\nTransfer-Encoding: chunked\r\n").encode() + AUTH + b"\r\n2\r\n{}\r\n0\r\n\r\n" + smuggled
    resps, closed, _ = exchange(guard_stack.http_port, req)
    refused(resps, closed, 400)
    assert_shape("customer", 400, body_json(resps[0]))


@pytest.mark.parametrize("coding", ["gzip, chunked", "identity", "chunked, gzip", "deflate"])
def test_unsupported_transfer_coding_answers_at_once(guard_stack, coding):
    req = (f"POST {ACTIVITY} HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.api+json\r\n"
           f"Transfer-Encoding: {coding}\r\n").encode() + AUTH + b"\r\n2\r\n{}\r\n0\r\n\r\n"
    resps, closed, first_s = exchange(guard_stack.http_port, req, wait=5)
    refused(resps, closed, 501)
    assert_shape("activity", 501, body_json(resps[0]))
    assert first_s < 2, f"answered after {first_s:.1f} s"


def test_repeated_transfer_encoding_and_http10_chunked(guard_stack):
    req = (f"POST {ACTIVITY} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
           "Transfer-Encoding: chunked\r\n").encode() + AUTH + b"\r\n0\r\n\r\n"
    resps, closed, _ = exchange(guard_stack.http_port, req)
    refused(resps, closed, 501)
    req = f"POST {ACTIVITY} HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n".encode() + AUTH + b"\r\n0\r\n\r\n"
    resps, closed, _ = exchange(guard_stack.http_port, req)
    assert [r[0] for r in resps] == [400] and closed


def test_host_is_required_once_in_http11(guard_stack):
    port = guard_stack.http_port
    resps, closed, _ = exchange(port, f"GET {OBJECTS}/o/events HTTP/1.1\r\n".encode() + AUTH + b"\r\n")
    refused(resps, closed, 400)
    assert_shape("object", 400, body_json(resps[0]))
    resps, closed, _ = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    refused(resps, closed, 400)
    # HTTP/1.0 has no Host requirement.
    resps, _, _ = exchange(port, b"GET /healthz HTTP/1.0\r\n\r\n", wait=1.5)
    assert [r[0] for r in resps] == [200]


@pytest.mark.parametrize("n", [65, 1000, 5000])
def test_many_query_parameters_get_an_answer(guard_stack, n):
    q = "&".join(f"p{i}=1" for i in range(n))
    for dialect, path in LISTS.items():
        req = f"GET {path}?{q} HTTP/1.1\r\nHost: x\r\n".encode() + AUTH + b"\r\n"
        resps, closed, _ = exchange(guard_stack.http_port, req)
        refused(resps, closed, 400)
        body = body_json(resps[0])
        assert_shape(dialect, 400, body)
        assert "more than 64 query parameters" in json.dumps(body), body


def test_sixty_four_parameters_reach_the_dialect(guard_stack):
    q = "&".join(f"p{i}=1" for i in range(64))
    r = guard_stack.http.get(f"{guard_stack.base}{OBJECTS}/o/events?{q}", headers=auth_a(), timeout=10)
    assert r.status_code == 400 and "unknown query parameter" in r.text, r.text


def test_space_in_target(guard_stack):
    resps, closed, _ = exchange(guard_stack.http_port, b"GET /healthz x HTTP/1.1\r\nHost: x\r\n\r\n")
    refused(resps, closed, 400)


def test_query_nul_refused_and_plus_kept(guard_stack):
    base, h = guard_stack.base, auth_a()
    r = guard_stack.http.get(f"{base}{CUSTOMER}?external_id=a%00b", headers=h, timeout=10)
    assert r.status_code == 400 and "NUL" in r.text, r.text
    # The gateway decodes the query itself: escapes once, '+' as a space (so an
    # unencoded time offset still reads as +01:00).
    r = guard_stack.http.get(f"{base}{CUSTOMER}?time_from=2025-01-01T10:00:00+01:00&external_id=%2541",
                              headers=h, timeout=10)
    assert r.status_code == 200, r.text


# ---- header values that become gRPC metadata ----

SECRET = "sk:guard-secret-" + uid()
BAD_VALUES = {"tab": f"Bearer {SECRET}\tx".encode(), "control": f"Bearer {SECRET}\x01".encode(),
              "non-ascii": f"Bearer {SECRET}".encode() + b"\xc3\xa9", "latin1": f"Bearer {SECRET}".encode() + b"\xe9",
              "double-space": f"Bearer  {SECRET}".encode(), "del": f"Bearer {SECRET}\x7f".encode()}


@pytest.mark.parametrize("kind", sorted(BAD_VALUES))
def test_bad_authorization_characters_are_401(guard_stack, kind):
    for dialect, path in LISTS.items():
        req = f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode() + b"Authorization: " + BAD_VALUES[kind] + b"\r\n\r\n"
        resps, closed, _ = exchange(guard_stack.http_port, req)
        refused(resps, closed, 401)
        challenge = resps[0][1].get("www-authenticate", [""])[0]
        assert challenge.startswith("Bearer "), resps[0][1]
        assert ("Basic " in challenge) == (dialect == "customer"), challenge
        body = body_json(resps[0])
        assert_shape(dialect, 401, body)
        assert SECRET not in resps[0][2].decode("latin-1")


def test_oversized_authorization_is_431(guard_stack):
    for size in (4097, 20 * 1024, 60 * 1024):
        value = ("Bearer " + SECRET + "a" * size)[:size]
        for dialect, path in LISTS.items():
            req = f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {value}\r\n\r\n".encode()
            resps, closed, _ = exchange(guard_stack.http_port, req)
            refused(resps, closed, 431)
            assert_shape(dialect, 431, body_json(resps[0]))
    # 4 KiB exactly is a credential like any other (unknown here: 401 from the service).
    value = "Bearer " + "a" * (4096 - 7)
    r = guard_stack.http.get(guard_stack.base + LISTS["object"], headers={"Authorization": value}, timeout=10)
    assert r.status_code == 401, r.text


def test_repeated_authorization_is_refused(guard_stack):
    req = f"GET {OBJECTS}/o/events HTTP/1.1\r\nHost: x\r\n".encode() + AUTH + b"Authorization: Bearer other\r\n\r\n"
    resps, closed, _ = exchange(guard_stack.http_port, req)
    refused(resps, closed, 400)


def test_oversized_headers_beyond_the_memory_pool_get_431(guard_stack):
    for data in (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n",
                 b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(3000)) + b"\r\n"):
        resps, closed, _ = exchange(guard_stack.http_port, data)
        assert [r[0] for r in resps] == [431] and closed


def test_others_are_served_while_one_client_sends_oversized_headers(guard_stack):
    port, stop = guard_stack.http_port, threading.Event()
    attacks = []

    def attacker():
        big = f"GET {OBJECTS}/o/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SECRET}{'a' * 20480}\r\n\r\n".encode()
        while not stop.is_set():
            resps, _, _ = exchange(port, big, wait=5)
            attacks.append(resps[0][0] if resps else None)

    threads = [threading.Thread(target=attacker) for _ in range(3)]
    for t in threads:
        t.start()
    statuses = []
    try:
        deadline = time.monotonic() + 3
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < deadline:
            conn.request("GET", f"{OBJECTS}/o/events?limit=1", headers=auth_a())
            r = conn.getresponse()
            r.read()
            statuses.append(r.status)
        conn.close()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert statuses and set(statuses) == {200}, statuses
    assert len(attacks) > 10 and set(attacks) == {431}, attacks[:20]


def test_gateway_stderr_is_json_and_holds_no_secret(guard_stack):
    # Runs after the tests above in this module, which sent SECRET in every
    # refused header; a refused request is logged, its credential never.
    text = guard_stack.gateway.output()
    assert '"status":401' in text and '"status":431' in text and '"msg":"libmicrohttpd"' in text
    assert SECRET not in text
    for line in text.splitlines():
        if line.strip():
            try:
                json.loads(line)
            except ValueError:
                raise AssertionError(f"not a JSON line: {line!r}") from None


# ---- path parameters ----

def call(port, method, path, body=None, headers=None):
    """One request with the path exactly as given (http.client sends it as is)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={**auth_a(), **(headers or {})})
        r = conn.getresponse()
        data = r.read()
        return r.status, json.loads(data) if data else None
    finally:
        conn.close()


BAD_PARAMS = ["%00", "1%00", "%2F", "1%2F2", "%2e", "%2e%2E", "..", "%ff", "%C3", "%0a", "%7f", "%zz"]


@pytest.fixture(scope="module")
def ids(stack):
    s, b, h = stack.http, stack.base, auth_a()
    r = s.post(b + ACTIVITY, json=activity_body("path-owned"), headers={**h, **API_JSON}, timeout=10)
    assert r.status_code == 201, r.text
    return {"activity": str(r.json()["data"]["id"])}


def test_activity_id_never_routes_elsewhere(stack, ids):
    port = stack.http_port
    for p in BAD_PARAMS + [ids["activity"] + "%00", ids["activity"] + "%2F"]:
        for method in ("GET", "DELETE", "PATCH"):
            body = json.dumps({"data": {"type": "event", "id": ids["activity"], "attributes": {"name": "x"}}})
            status, got = call(port, method, f"{ACTIVITY}/{p}", body if method == "PATCH" else None, API_JSON)
            assert status == 400, (method, p, status, got)
            assert_shape("activity", 400, got)
    status, got = call(port, "GET", f"{ACTIVITY}/{ids['activity']}")
    assert status == 200 and got["data"]["attributes"]["name"] == "path-owned"


def test_customer_catalog_object_ids(stack):
    port = stack.http_port
    for p in BAD_PARAMS:
        for dialect, path in (("customer", f"{CUSTOMER}/{p}"), ("customer", f"{CUSTOMER}/{p}/property-records"),
                              ("catalog", f"{CATALOG}/category/{p}"), ("catalog", f"{CATALOG}/events/{p}"),
                              ("catalog", f"{CATALOG}/event_properties/{p}"),
                              ("object", f"{OBJECTS}/{p}/events"), ("object", f"{OBJECTS}/o/events/{p}")):
            status, got = call(port, "GET", path)
            assert status == 400, (path, status, got)
            assert_shape(dialect, 400, got)
        for path, ctype in ((f"{OBJECTS}/{p}/events", JSON), (f"{CATALOG}/events/{p}", JSON)):
            status, got = call(port, "POST" if path.startswith(OBJECTS) else "PATCH", path,
                               json.dumps(object_body("bad-" + uid())), ctype)
            assert status == 400, (path, status, got)


def test_non_ascii_object_id_round_trips(stack):
    port, tag = stack.http_port, uid()
    encoded, text = f"caf%C3%A9-{tag}", f"caf\u00e9-{tag}"
    status, ev = call(port, "POST", f"{OBJECTS}/{encoded}/events", json.dumps(object_body("utf8")), JSON)
    assert status == 200, ev
    assert ev["object"] == text
    status, got = call(port, "GET", f"{OBJECTS}/{encoded}/events/{ev['id']}")
    assert status == 200 and got["id"] == ev["id"] and got["object"] == text
    status, page = call(port, "GET", f"{OBJECTS}/{encoded}/events")
    assert [e["id"] for e in page["data"]] == [ev["id"]]
    # Neither a look-alike nor the replacement character names the same object.
    for other in (f"cafe-{tag}", f"caf%EF%BF%BD-{tag}", f"caf%C3%A9-{tag}x"):
        status, page = call(port, "GET", f"{OBJECTS}/{other}/events")
        assert status == 200 and page["data"] == [], (other, page)
    # Invalid UTF-8 is refused, never stored under a repaired id.
    status, got = call(port, "POST", f"{OBJECTS}/caf%E9-{tag}/events", json.dumps(object_body("latin1")), JSON)
    assert status == 400, got
    status, page = call(port, "GET", f"{OBJECTS}/caf%EF%BF%BD-{tag}/events")
    assert page["data"] == []
