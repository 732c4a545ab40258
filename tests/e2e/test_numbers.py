"""Exact data: a JSON number keeps its form through create, get and list on
both stores (42 never comes back 42.0, 0.1 never 0.10000000000000001),
integers up to 2^53 exactly and larger ones refused, not rounded; the
customer API's invalid_params[].value echoes what was sent.

The rule (common/pbjson.h): free-form numbers are doubles, as in
google.protobuf.Value; one whose value is an integer within +/-2^53 is
written as a JSON integer however it was spelled (1.0 and 1e2 come back 1
and 100, -0 as 0), any other number as the shortest real that reads back
the same (1.5, 0.1, 1e20). Integers beyond +/-2^53 are refused.

Responses are checked as raw text: the JSON is parsed with every number
kept as the token the server wrote."""
import json
import math
import re
import uuid

import grpc
import pytest

from conftest import TOKEN_A, auth_a, basic_a, unwrap

JSON = {"Content-Type": "application/json"}
CUST = "/rest-api/enterprise-interface/v1.0/events"
ACT = "/api/v2/events"
BIG = 9007199254740992  # 2^53

# (text sent, text that must come back)
FORMS = [
    ("42", "42"), ("0", "0"), ("-0", "0"), ("-7", "-7"),
    (str(BIG), str(BIG)), (str(-BIG), str(-BIG)), (str(BIG - 1), str(BIG - 1)),
    ("1e2", "100"), ("1E2", "100"), ("1.0", "1"), ("-0.0", "0"), ("2.5e1", "25"),
    ("1.5", "1.5"), ("-1.5", "-1.5"), ("0.1", "0.1"), ("0.30000000000000004", "0.30000000000000004"),
    ("1e20", "1e20"), ("2.5e-8", "2.5e-8"), ("-1.7976931348623157e308", "-1.7976931348623157e308"),
]
# One free-form object holding nested numbers, as sent and as it must come back.
NESTED_SENT = '{"nested":[1,[2.5,{"k":3.0}],1e2,-0]}'
NESTED_BACK = '{"nested":[1,[2.5,{"k":3}],100,0]}'


class Raw(str):
    """A number token exactly as the server wrote it."""


def raw_json(body):
    return json.loads(body, parse_int=Raw, parse_float=Raw)


def raw_dumps(x):
    """Compact JSON text of raw_json's result, numbers as they were read."""
    if isinstance(x, Raw):
        return str(x)
    if isinstance(x, dict):
        return "{" + ",".join(json.dumps(k) + ":" + raw_dumps(v) for k, v in x.items()) + "}"
    if isinstance(x, list):
        return "[" + ",".join(raw_dumps(v) for v in x) + "]"
    return json.dumps(x, ensure_ascii=False)


def uid():
    return uuid.uuid4().hex[:12]


# ---- customer ----

def customer_body(values, ext):
    """A create body as text, so that 1.0 and 1e2 go out as written."""
    recs = ",".join(f'{{"property_id":"p{i}","property_value":{v}}}' for i, v in enumerate(values))
    return (f'{{"event":{{"event_type_id":"num","customer_id":"c","external_id":"{ext}"}},'
            f'"property_records":[{recs}]}}')


def post_customer(stack, text):
    return stack.http.post(stack.base + CUST, data=text.encode(), headers={**JSON, **auth_a()},
                           timeout=10)


def record_values(doc):
    """property_id -> property_value (raw tokens) of every record in a response."""
    out = {}

    def visit(x):
        if isinstance(x, dict):
            if "property_id" in x and "property_value" in x:
                out[x["property_id"]] = x["property_value"]
            for v in x.values():
                visit(v)
        elif isinstance(x, list):
            for v in x:
                visit(v)
    visit(doc)
    return out


def customer_reads(stack, eid, ext):
    return [f"{stack.base}{CUST}/{eid}/property-records",
            f"{stack.base}{CUST}/{eid}?include_property_records=true",
            f"{stack.base}{CUST}?external_id={ext}&include_property_records=true"]


def test_customer_property_values_keep_their_form(stack):
    ext = "num-" + uid()
    r = post_customer(stack, customer_body([s for s, _ in FORMS] + [NESTED_SENT], ext))
    assert r.status_code == 201, r.text
    eid = r.json()["data"]["event_id"]
    want = {f"p{i}": back for i, (_, back) in enumerate(FORMS)}
    for url in customer_reads(stack, eid, ext):
        r = stack.http.get(url, headers=auth_a(), timeout=10)
        assert r.status_code == 200, r.text
        got = record_values(raw_json(r.text))
        nested = got.pop(f"p{len(FORMS)}")
        assert {k: str(v) for k, v in got.items()} == want, url
        assert all(type(v) is Raw for v in got.values()), url
        assert raw_dumps(nested) == NESTED_BACK, url
        # and byte for byte on the wire
        assert b'"property_value":42,' in r.content or b'"property_value":42}' in r.content
        assert b'"property_value":' + NESTED_BACK.encode() in r.content, url
        for bad in (b"42.0", b"0.10000000000000001", b"100.0", b"1e+20"):
            assert bad not in r.content, (url, bad)


def test_customer_list_sorts_and_pages_past_numbers(stack):
    """Lists of events carrying numbers page and sort as before."""
    et = "numlist-" + uid()
    ids = []
    for i, v in enumerate(["1", "1.5", str(BIG), "-0"]):
        body = (f'{{"event":{{"event_type_id":"{et}","customer_id":"c","external_id":"x{i}"}},'
                f'"property_records":[{{"property_id":"p","property_value":{v}}}]}}')
        r = post_customer(stack, body)
        assert r.status_code == 201, r.text
        ids.append(r.json()["data"]["event_id"])
    seen, values = [], []
    for offset in range(0, 4, 2):
        r = stack.http.get(f"{stack.base}{CUST}?event_type_id={et}&include_property_records=true"
                           f"&sort_field=external_id&sort_direction=ASC&count=2&offset={offset}",
                           headers=auth_a(), timeout=10)
        assert r.status_code == 200, r.text
        data = raw_json(r.text)["data"]
        assert data["total_items"] == "4"
        seen += [e["event_id"] for e in data["events"]]
        values += [e["property_records"][0]["property_value"] for e in data["events"]]
    assert seen == ids
    assert values == ["1", "1.5", str(BIG), "0"]


def test_customer_data_text_keeps_its_numbers(stack):
    ext = "data-" + uid()
    text = (f'{{"event":{{"event_type_id":"num","customer_id":"c","external_id":"{ext}",'
            f'"data":{{"a":0.1,"b":42,"c":42.0,"d":[1.5,0.30000000000000004]}}}}}}')
    r = post_customer(stack, text)
    assert r.status_code == 201, r.text
    eid = r.json()["data"]["event_id"]
    r = stack.http.get(f"{stack.base}{CUST}/{eid}", headers=auth_a(), timeout=10)
    assert r.json()["data"]["data"] == '{"a":0.1,"b":42,"c":42.0,"d":[1.5,0.30000000000000004]}'


def invalid_params(r):
    assert r.status_code == 400, r.text
    return raw_json(r.text)["error"]["error_data"]["invalid_params"]


@pytest.mark.parametrize("sent", [str(BIG + 1), str(-(BIG + 1)), "9223372036854775807",
                                  "-9223372036854775808"])
def test_integers_beyond_2_53_are_refused_and_echoed(stack, sent):
    r = post_customer(stack, customer_body(["1", sent], "big-" + uid()))
    params = invalid_params(r)
    assert [(p["name"], p["reason"], p["value"]) for p in params] == \
        [("property_records[1].property_value", "invalid_value_format", sent)], params
    assert type(params[0]["value"]) is Raw
    assert b'"value":' + sent.encode() in r.content
    assert "2^53" in params[0]["message"]


def test_nested_integer_beyond_2_53_is_named(stack):
    r = post_customer(stack, customer_body(['{"deep":[0,{"x":-9007199254740993}]}'], "deep-" + uid()))
    params = invalid_params(r)
    assert [(p["name"], p["value"]) for p in params] == \
        [("property_records[0].property_value.deep[1].x", "-9007199254740993")], params
    # nothing was created
    r = stack.http.get(f"{stack.base}{CUST}?event_type_id=num&external_id=deep", headers=auth_a(),
                       timeout=10)
    assert r.status_code == 200


@pytest.mark.parametrize("sent", ["18446744073709551616", "1" + "0" * 40, "1e400", "-1e400"])
def test_numbers_beyond_any_range_are_refused_naming_the_field(stack, sent):
    """Too large even for the JSON parser: still a 400 naming the field."""
    r = post_customer(stack, customer_body([sent], "huge-" + uid()))
    params = invalid_params(r)
    assert [(p["name"], p["reason"]) for p in params] == \
        [("property_records[0].property_value", "invalid_value_format")], params
    # the number's text: no JSON parser holds it as a number
    assert params[0]["value"] == sent
    assert "too large" in params[0]["message"]


def test_invalid_params_echo_the_value_sent(stack):
    # a string, as sent
    body = {"event": {"event_type_id": "t", "customer_id": "\u00e9" * 256, "external_id": uid()}}
    r = stack.http.post(stack.base + CUST, json=body, headers={**JSON, **auth_a()}, timeout=10)
    assert [p["value"] for p in invalid_params(r)] == ["\u00e9" * 256]
    # a number where a string belongs: the number, an integer or a real as
    # sent, in its shortest form (JSON parsers keep no more: -0 is 0, 1e2 100.0)
    for sent, echo in (("1.0", "1.0"), ("0.1", "0.1"), ("42", "42"), ("-0", "0"),
                       ("1e2", "100.0"), ("-2.5E-3", "-0.0025"), ("0.30000000000000004", None)):
        text = f'{{"event":{{"event_type_id":"t","customer_id":{sent},"external_id":"{uid()}"}}}}'
        r = post_customer(stack, text)
        params = invalid_params(r)
        assert [(p["name"], p["value"]) for p in params] == \
            [("event.customer_id", echo or sent)], params
        assert type(params[0]["value"]) is Raw
        assert b'"value":' + (echo or sent).encode() + b"," in r.content
    # objects and booleans as sent
    text = f'{{"event":{{"event_type_id":{{"a":[1.5,true]}},"customer_id":"c","external_id":"{uid()}"}}}}'
    params = invalid_params(post_customer(stack, text))
    assert [(p["name"], raw_dumps(p["value"])) for p in params] == \
        [("event.event_type_id", '{"a":[1.5,true]}')], params
    # a query parameter: the text sent
    r = stack.http.get(stack.base + CUST + "?count=5000", headers=basic_a(), timeout=10)
    assert [p["value"] for p in invalid_params(r)] == ["5000"]


# ---- activity ----

def test_activity_payload_keeps_its_form(stack):
    hdr = {"Content-Type": "application/vnd.api+json", **auth_a()}
    members = ",".join(f'"k{i}":{s}' for i, (s, _) in enumerate(FORMS))
    name = "num-" + uid()
    doc = (f'{{"data":{{"type":"event","attributes":{{"name":"{name}",'
           f'"payload":{{{members},"n":{NESTED_SENT}}}}}}}}}')
    r = stack.http.post(stack.base + ACT, data=doc.encode(), headers=hdr, timeout=10)
    assert r.status_code == 201, r.text
    eid = r.json()["data"]["id"]
    want = {f"k{i}": back for i, (_, back) in enumerate(FORMS)}
    for url in (None, f"{stack.base}{ACT}/{eid}", f"{stack.base}{ACT}?filter[id]={eid}",
                f"{stack.base}{ACT}?filter[name]={name}"):
        if url:
            r = stack.http.get(url, headers=auth_a(), timeout=10)
            assert r.status_code == 200, r.text
        data = raw_json(r.text)["data"]
        if isinstance(data, list):
            assert len(data) == 1, url
            data = data[0]
        payload = data["attributes"]["payload"]
        nested = payload.pop("n")
        assert {k: str(v) for k, v in payload.items()} == want, url
        assert raw_dumps(nested) == NESTED_BACK
        assert b'"k0":42,' in r.content and b'"k14":0.1,' in r.content, url


@pytest.mark.parametrize("sent", [str(BIG + 1), "-9223372036854775808", "1e400"])
def test_activity_refuses_what_it_cannot_keep(stack, sent):
    hdr = {"Content-Type": "application/vnd.api+json", **auth_a()}
    doc = (f'{{"data":{{"type":"event","attributes":{{"name":"n",'
           f'"payload":{{"ok":1,"too_big":[{sent}]}}}}}}}}')
    r = stack.http.post(stack.base + ACT, data=doc.encode(), headers=hdr, timeout=10)
    assert r.status_code in (400, 422), r.text
    errors = r.json()["errors"]
    assert any("payload" in json.dumps(e.get("source", {})) for e in errors), errors


# ---- gRPC: google.protobuf.Value numbers ----

def customer_rpc(stack, pb, name, req):
    m = pb("events/customer/v1/customer")
    call = stack.channel.unary_unary(f"/events.customer.v1.CustomerEventService/{name}",
                                     request_serializer=req.SerializeToString,
                                     response_deserializer=getattr(m, name + "Response").FromString)
    return unwrap(call(req, timeout=10, metadata=[("authorization", f"Bearer {TOKEN_A}")]))


GRPC_FORMS = [(42.0, "42"), (-0.0, "0"), (1.5, "1.5"), (0.1, "0.1"), (float(BIG), str(BIG)),
              (-float(BIG), str(-BIG)), (float(BIG + 2), "9007199254740994.0"), (1e20, "1e20"),
              (5e-324, "5e-324")]


def test_grpc_value_numbers(stack, pb):
    m = pb("events/customer/v1/customer")
    sp = pb("google/protobuf/struct")
    ext = "grpc-" + uid()
    recs = [m.PropertyRecord(property_id=f"p{i}", property_value=sp.Value(number_value=d))
            for i, (d, _) in enumerate(GRPC_FORMS)]
    req = m.CreateEventRequest(event=m.Event(event_type_id="num", customer_id="c", external_id=ext),
                               property_records=recs)
    eid = customer_rpc(stack, pb, "CreateEvent", req).event_id
    ev = customer_rpc(stack, pb, "GetEvent",
                      m.GetEventRequest(event_id=eid, include_property_records=True))
    got = {p.property_id: p.property_value for p in ev.property_records}
    for i, (d, _) in enumerate(GRPC_FORMS):
        v = got[f"p{i}"]
        assert v.WhichOneof("kind") == "number_value" and v.number_value == d
        assert math.copysign(1, v.number_value) == math.copysign(1, d) or d == 0
    # REST sees the same numbers, integers as integers
    for url in customer_reads(stack, eid, ext):
        r = stack.http.get(url, headers=auth_a(), timeout=10)
        vals = {k: str(v) for k, v in record_values(raw_json(r.text)).items()}
        assert vals == {f"p{i}": back for i, (_, back) in enumerate(GRPC_FORMS)}, url


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_grpc_value_not_finite_is_refused(stack, pb, bad):
    """JSON has no NaN or infinity: such a Value could only come back as
    something else (a string), so it is refused, naming the field."""
    m = pb("events/customer/v1/customer")
    sp = pb("google/protobuf/struct")
    inner = sp.Struct()
    inner.update({"ok": 1})
    inner["list"] = [1, bad]
    recs = [m.PropertyRecord(property_id="a", property_value=sp.Value(number_value=1)),
            m.PropertyRecord(property_id="b", property_value=sp.Value(struct_value=inner))]
    req = m.CreateEventRequest(event=m.Event(event_type_id="num", customer_id="c",
                                             external_id="nan-" + uid()), property_records=recs)
    with pytest.raises(grpc.RpcError) as e:
        customer_rpc(stack, pb, "CreateEvent", req)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    assert "property_records[1].property_value" in e.value.details()
