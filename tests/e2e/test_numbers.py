"""Exact data: a JSON number keeps its form through create, get and list on
both stores (42 never comes back 42.0, 0.1 never 0.10000000000000001),
integers up to 2^53 exactly and larger ones refused, not rounded; the
customer API's invalid_params[].value echoes what was sent."""
import re
import uuid

from conftest import auth_a

JSON = {"Content-Type": "application/json"}
CUST = "/rest-api/enterprise-interface/v1.0/events"
BIG = 9007199254740992  # 2^53
NUMBERS = {"i": 42, "z": 0, "neg": -7, "big": BIG, "half": 1.5, "tenth": 0.1, "nested": [1, [2.5, {"k": 3}]]}
RAW = ['"i":42', '"z":0', '"neg":-7', f'"big":{BIG}', '"half":1.5', '"tenth":0.1',
       '"nested":[1,[2.5,{"k":3}]]']


def uid():
    return uuid.uuid4().hex[:12]


def customer_event(stack, value, ext=None):
    body = {"event": {"event_type_id": "num", "customer_id": "c", "external_id": ext or uid()},
            "property_records": [{"property_id": "p", "property_value": value}]}
    return stack.http.post(stack.base + CUST, json=body, headers={**JSON, **auth_a()}, timeout=10)


def compact(text):
    return re.sub(r"\s", "", text)


def test_customer_property_values_keep_their_form(stack):
    ext = "num-" + uid()
    r = customer_event(stack, NUMBERS, ext)
    assert r.status_code == 201, r.text
    eid = r.json()["data"]["event_id"]
    for url in (f"{stack.base}{CUST}/{eid}/property-records",
                f"{stack.base}{CUST}/{eid}?include_property_records=true",
                f"{stack.base}{CUST}?external_id={ext}&include_property_records=true"):
        text = compact(stack.http.get(url, headers=auth_a(), timeout=10).text)
        for piece in RAW:
            assert piece in text, (url, piece, text[:400])
        assert "42.0" not in text and "0.10000000000000001" not in text


def test_integers_beyond_2_53_are_refused_and_echoed(stack):
    r = customer_event(stack, BIG + 1)
    assert r.status_code == 400, r.text
    params = r.json()["error"]["error_data"]["invalid_params"]
    assert any("property_value" in p["name"] and p["value"] == BIG + 1 for p in params), params
    assert "2^53" in r.text
    r = customer_event(stack, {"deep": [-(BIG + 1)]})
    assert r.status_code == 400, r.text


def test_invalid_params_echo_the_value_sent(stack):
    body = {"event": {"event_type_id": "t", "customer_id": "\u00e9" * 256, "external_id": uid()}}
    r = stack.http.post(stack.base + CUST, json=body, headers={**JSON, **auth_a()}, timeout=10)
    assert r.status_code == 400, r.text
    params = r.json()["error"]["error_data"]["invalid_params"]
    assert [p["value"] for p in params] == ["\u00e9" * 256], params
    r = stack.http.get(stack.base + CUST + "?count=5000", headers=auth_a(), timeout=10)
    assert r.status_code == 400
    assert [p["value"] for p in r.json()["error"]["error_data"]["invalid_params"]] == ["5000"]


def test_activity_payload_keeps_its_form(stack):
    hdr = {"Content-Type": "application/vnd.api+json", **auth_a()}
    doc = {"data": {"type": "event", "attributes": {"name": "num-" + uid(), "payload": NUMBERS}}}
    r = stack.http.post(stack.base + "/api/v2/events", json=doc, headers=hdr, timeout=10)
    assert r.status_code == 201, r.text
    for piece in RAW:
        assert piece in compact(r.text), (piece, r.text[:400])
    eid = r.json()["data"]["id"]
    for url in (f"{stack.base}/api/v2/events/{eid}",
                f"{stack.base}/api/v2/events?filter[id]={eid}"):
        text = compact(stack.http.get(url, headers=auth_a(), timeout=10).text)
        for piece in RAW:
            assert piece in text, (url, piece, text[:400])
    doc["data"]["attributes"]["payload"] = {"too_big": BIG + 1}
    r = stack.http.post(stack.base + "/api/v2/events", json=doc, headers=hdr, timeout=10)
    assert r.status_code == 422 and "2^53" in r.text, r.text
