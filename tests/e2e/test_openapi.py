"""The served OpenAPI document as code generators and linters take it: it
validates (openapi-spec-validator), lints with 0 errors under Redocly CLI and
Spectral's spectral:oas, states what the protos annotate (readOnly,
maxLength, formats, required, typed JSON:API bodies), and a client generated
from it by openapi-python-client creates and lists in every dialect."""
import importlib
import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest
from openapi_spec_validator import validate

from conftest import ROOT, TOKEN_A

NPM_BIN = os.path.join(ROOT, "tests", "openapi", "node_modules", ".bin")


@pytest.fixture(scope="module")
def doc_file(sqlite_stack, tmp_path_factory):
    path = tmp_path_factory.mktemp("openapi") / "openapi.json"
    r = sqlite_stack.http.get(sqlite_stack.base + "/openapi.json", timeout=10)
    assert r.status_code == 200
    path.write_text(r.text)
    return path


@pytest.fixture(scope="module")
def doc(doc_file):
    return json.loads(doc_file.read_text())


def test_validates(doc):
    validate(doc)


def test_grpc_only_members_stay_out(doc):
    """rest_name "-" fields (the lists' resume_token, BatchCreate and Watch
    RPCs have no binding) are not part of the REST surface."""
    text = json.dumps(doc)
    assert "resume_token" not in text and "resumeToken" not in text
    assert "Batch" not in text and "Watch" not in text


def test_spectral_oas_has_no_errors(doc_file, tmp_path):
    ruleset = tmp_path / ".spectral.yaml"
    ruleset.write_text('extends: ["spectral:oas"]\n')
    r = subprocess.run([os.path.join(NPM_BIN, "spectral"), "lint", str(doc_file), "--ruleset", str(ruleset),
                        "--fail-severity", "error", "-f", "json"], capture_output=True, text=True, timeout=300)
    # the JSON report, then possibly a line of text
    problems, _ = json.JSONDecoder().raw_decode(r.stdout.strip() or "[]")
    errors = [p for p in problems if p["severity"] == 0]
    assert r.returncode == 0 and not errors, errors[:5]
    # no warnings either (spectral:oas: operation descriptions, tags, ...)
    assert not problems, problems[:5]


def test_redocly_has_no_errors(doc_file):
    r = subprocess.run([os.path.join(NPM_BIN, "redocly"), "lint", str(doc_file), "--format", "json"],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"})
    report = json.loads(r.stdout)
    errors = [p for p in report["problems"] if p["severity"] == "error"]
    assert r.returncode == 0 and not errors, errors[:5]
    # The one warning left: the gateway's own endpoints document no 4XX
    # (it answers them with none of its own: an oversized request is
    # libmicrohttpd's HTML page).
    warned = {(p["ruleId"], p["location"][0]["pointer"]) for p in report["problems"]}
    assert warned <= {("operation-4xx-response", f"#/paths/~1{p}/get/responses")
                      for p in ("healthz", "readyz", "openapi.json", "metrics")}, warned


def resolve(doc, schema):
    """The schema a $ref names (local refs only, as the document uses)."""
    while "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/components/schemas/"), ref
        schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


def test_the_annotations_are_stated(doc):
    schemas = doc["components"]["schemas"]
    ev = schemas["events.object.v1.Event"]["properties"]
    assert ev["id"].get("readOnly") and ev["created_at"].get("readOnly") and ev["id"]["format"] == "uuid"
    assert ev["name"]["maxLength"] == 255 and not ev["name"].get("readOnly")
    assert ev["start_at"]["format"] == "date-time"
    res = schemas["events.catalog.v1.Resource"]["properties"]
    assert res["teams"]["maxItems"] == 100 and "pattern" in res["teams"]["items"]
    assert res["id"]["pattern"] == "^[0-9a-f]{32}$"
    # a create states what it requires; a PATCH does not
    post = doc["paths"]["/v1/objects/{objectId}/events"]["post"]["requestBody"]["content"]["application/json"]
    assert set(post["schema"]["allOf"][1]["required"]) >= {"name", "source", "record_id", "start_at", "end_at"}
    # ... into the messages it holds (not the output-only ones)
    cust = doc["paths"]["/rest-api/enterprise-interface/v1.0/events"]["post"]["requestBody"]
    cust = cust["content"]["application/json"]["schema"]["allOf"][1]
    assert cust["required"] == ["event"]
    assert cust["properties"]["event"] == {"required": ["event_type_id", "customer_id", "external_id"]}
    patch = doc["paths"]["/api/v1/event/events/{event_id}"]["patch"]["requestBody"]["content"]["application/json"]
    assert "allOf" not in patch["schema"]
    # JSON:API request documents are typed, not {"type": "object"}
    act = doc["paths"]["/api/v2/events"]["post"]["requestBody"]["content"]["application/vnd.api+json"]["schema"]
    assert act == {"$ref": "#/components/schemas/activity.NewEventDocument"}
    act = resolve(doc, act)
    assert act["required"] == ["data"]
    data = resolve(doc, act["properties"]["data"])
    assert {"type", "attributes", "relationships"} <= set(data["properties"])
    assert data["properties"]["type"]["enum"] == ["event"] and set(data["required"]) == {"type", "attributes"}
    attrs = data["properties"]["attributes"]
    assert attrs["required"] == ["name"] and attrs["properties"]["name"]["maxLength"] == 255
    assert attrs["properties"]["createdAt"]["readOnly"] and attrs["properties"]["eventAt"]["format"] == "date-time"
    # ... and an update's document requires no attribute
    upd = doc["paths"]["/api/v2/events/{id}"]["patch"]["requestBody"]["content"]["application/vnd.api+json"]
    upd = resolve(doc, resolve(doc, upd["schema"])["properties"]["data"])
    assert "required" not in upd["properties"]["attributes"] and upd["properties"]["id"]["readOnly"]
    # each dialect's envelopes and error bodies are named schemas
    for dialect, path, method, ctype in [
            ("activity", "/api/v2/events", "get", "application/vnd.api+json"),
            ("customer", "/rest-api/enterprise-interface/v1.0/events", "post", "application/json"),
            ("catalog", "/api/v1/event/category", "get", "application/json"),
            ("object", "/v1/objects/{objectId}/events", "get", "application/json")]:
        responses = doc["paths"][path][method]["responses"]
        for status in ("4XX", "5XX"):
            assert responses[status]["content"][ctype]["schema"] == {
                "$ref": f"#/components/schemas/{dialect}.Error"}
        ok = next(v for k, v in responses.items() if k.startswith("2"))["content"][ctype]["schema"]
        assert ok["$ref"].startswith(f"#/components/schemas/{dialect}."), ok
    # the common errors by code too (generated clients parse only those)
    one = doc["paths"]["/api/v1/event/events/{event_id}"]["get"]["responses"]
    assert {"400", "401", "404", "4XX", "5XX"} <= set(one) and "WWW-Authenticate" in one["401"]["headers"]
    assert "404" not in doc["paths"]["/v1/objects/{objectId}/events"]["get"]["responses"]
    assert set(resolve(doc, {"$ref": "#/components/schemas/customer.Error"})["properties"]) == {"error"}
    assert resolve(doc, {"$ref": "#/components/schemas/object.Error"})["properties"]["status_code"]
    cust = resolve(doc, {"$ref": "#/components/schemas/customer.EventEnvelope"})
    assert cust["properties"]["data"] == {"$ref": "#/components/schemas/events.customer.v1.Event"}
    page = resolve(doc, {"$ref": "#/components/schemas/catalog.ResourcePage"})
    assert page["properties"]["results"]["items"] == {"$ref": "#/components/schemas/events.catalog.v1.Resource"}
    # path parameters are the seed's names, typed by the fields they bind
    params = doc["paths"]["/rest-api/enterprise-interface/v1.0/events/{event_id}"]["get"]["parameters"]
    assert params[0]["name"] == "event_id" and params[0]["schema"]["pattern"] == "^[0-9a-f]{26}$"
    # servers, and no credentials on the gateway's own endpoints
    assert doc["servers"][0]["url"].startswith("http://127.0.0.1:")
    for public in ("/healthz", "/readyz", "/openapi.json", "/metrics"):
        assert doc["paths"][public]["get"]["security"] == [], public
    assert "text/plain" in doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert "503" in doc["paths"]["/readyz"]["get"]["responses"]
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer"} and schemes["basicAuth"]["scheme"] == "basic"
    assert doc["paths"]["/rest-api/enterprise-interface/v1.0/events"]["get"]["security"] == [
        {"bearerAuth": []}, {"basicAuth": []}]
    assert doc["paths"]["/api/v2/events"]["get"]["security"] == [{"bearerAuth": []}]
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    # named after the RPCs the routes call
    assert doc["paths"]["/api/v1/event/category"]["get"]["operationId"] == "catalogListEventCategories"
    assert doc["paths"]["/v1/objects/{objectId}/events/{eventId}"]["put"]["operationId"] == "objectUpdateEvent"
    assert doc["paths"]["/healthz"]["get"]["operationId"] == "getHealthz"


@pytest.fixture(scope="module")
def client_pkg(doc_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("client")
    gen = shutil.which("openapi-python-client") or os.path.join(os.path.dirname(sys.executable),
                                                                "openapi-python-client")
    r = subprocess.run([gen, "generate", "--path", str(doc_file), "--meta", "none"], cwd=out,
                       capture_output=True, text=True, timeout=300)
    assert (out / "events_api_client").is_dir(), r.stdout + r.stderr
    sys.path.insert(0, str(out))
    yield importlib.import_module("events_api_client")
    sys.path.remove(str(out))


def test_generated_client_creates_and_lists_in_every_dialect(sqlite_stack, client_pkg):
    c = importlib.import_module("events_api_client.client").AuthenticatedClient(
        base_url=sqlite_stack.base, token=TOKEN_A)
    api = "events_api_client.api."
    models = importlib.import_module("events_api_client.models")
    tag = uuid.uuid4().hex[:8]

    # activity (JSON:API)
    post = importlib.import_module(api + "activity.activity_create_event")
    r = post.sync_detailed(client=c, body=models.ActivityNewEventDocument.from_dict(
        {"data": {"type": "event", "attributes": {"name": f"gen-{tag}"}}}))
    assert r.status_code == 201, r.content
    created = r.parsed.data
    assert created.attributes.name == f"gen-{tag}" and created.id > 0
    lst = importlib.import_module(api + "activity.activity_list_events").sync(
        client=c, filtername=f"gen-{tag}")
    assert [e.id for e in lst.data] == [created.id]

    # customer
    post = importlib.import_module(api + "customer.customer_create_event")
    r = post.sync_detailed(client=c, body=models.CustomerCreateEventBody.from_dict(
        {"event": {"event_type_id": "gen", "customer_id": "c", "external_id": f"gen-{tag}"}}))
    assert r.status_code == 201, r.content
    eid = r.parsed.data.event_id
    get = importlib.import_module(api + "customer.customer_list_events")
    lst = get.sync(client=c, external_id=f"gen-{tag}")
    assert [e.event_id for e in lst.data.events] == [eid]

    # catalog
    post = importlib.import_module(api + "catalog.catalog_create_event_category")
    r = post.sync_detailed(client=c, body=models.EventsCatalogV1Resource.from_dict({"title": f"gen-{tag}"}))
    assert r.status_code == 201, r.content
    cat = r.parsed
    lst = importlib.import_module(api + "catalog.catalog_list_event_categories").sync(client=c, title=f"gen-{tag}")
    assert [x.id for x in lst.results] == [cat.id]
    # an error parses as the dialect's error body
    get = importlib.import_module(api + "catalog.catalog_get_event_category")
    r = get.sync_detailed(event_category_id="0" * 32, client=c)
    assert r.status_code == 404 and isinstance(r.parsed, models.CatalogError) and r.parsed.detail, r.content

    # object
    post = importlib.import_module(api + "object_.object_create_event")
    r = post.sync_detailed(object_id=f"gen-{tag}", client=c, body=models.ObjectCreateEventBody.from_dict(
        {"name": "n", "source": "manual", "record_id": "r", "start_at": "2025-01-06T09:00:00Z",
         "end_at": "2025-01-06T10:00:00Z"}))
    assert r.status_code == 200, r.content
    assert r.parsed.name == "n" and r.parsed.record_id == "r" and r.parsed.id
    lst = importlib.import_module(api + "object_.object_list_events").sync(
        object_id=f"gen-{tag}", client=c)
    assert [e.id for e in lst.data] == [r.parsed.id]
