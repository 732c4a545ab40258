"""A JSON:API client library from a registry (PyPI's jsonapi-client) reads,
pages and creates activity events against the gateway, as a third party's
tooling would."""
import uuid

import pytest
from jsonapi_client import Modifier, ResourceTuple, Session

from conftest import auth_a


# The client's model of the resource (it validates what it sends by it).
SCHEMA = {"event": {"properties": {
    "name": {"type": "string"},
    "body": {"type": ["string", "null"]},
    "account": {"relation": "to-one", "resource": ["account"]},
}}}


@pytest.fixture
def session(stack):
    s = Session(stack.base + "/api/v2", schema=SCHEMA,
                request_kwargs={"headers": {**auth_a(), "Accept": "application/vnd.api+json"}})
    yield s
    s.close()


def test_client_creates_reads_and_pages(stack, session):
    tag = "client-" + uuid.uuid4().hex[:10]
    created = []
    for i in range(5):
        ev = session.create("event", fields={"name": f"{tag}-{i}", "body": "from jsonapi-client",
                                             "account": ResourceTuple(str(40 + i), "account")})
        ev.commit(custom_url=session.url_prefix + "/events")
        assert ev.id and ev.name == f"{tag}-{i}"
        created.append(int(ev.id))
    # read one back as a document
    doc = session.get("events", str(created[2]))
    assert doc.resource.type == "event" and doc.resource.name == f"{tag}-2"
    assert doc.resource.body == "from jsonapi-client"
    account = doc.resource.relationships.account._resource_identifier
    assert (account.type, str(account.id)) == ("account", "42")
    # iterate the filtered collection two at a time: the client follows links.next
    pages = Modifier(f"filter[name]={','.join(f'{tag}-{i}' for i in range(5))}&page[size]=2")
    seen = [int(r.id) for r in session.iterate("events", pages)]
    assert seen == created
    first = session.get("events", pages)
    assert len(first.resources) == 2 and first.links.next
