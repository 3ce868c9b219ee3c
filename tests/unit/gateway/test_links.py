"""The links route and the object preview's id check, in-process (neither reaches the
orchestrator: a link is signed by the gateway alone, a bad id is refused before any call)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from gateway import signing
from gateway.app import create_app
from gateway.deps import GatewaySettings

ORIGIN = "http://testserver"  # TestClient's Host
TOKEN = "unit-s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def gateway():
    # In front of a port nothing listens on: these routes must not need the orchestrator.
    settings = GatewaySettings(orchestrator="127.0.0.1:9", token=TOKEN, allowed_origins=(ORIGIN,))
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize(
    "target, path",
    [
        ({"for": "objects"}, "/api/video/artifact/job1/objects"),
        ({"for": "object", "object_id": 3}, "/api/video/artifact/job1/object/3"),
        ({"for": "object", "object_id": 2**31 - 1}, f"/api/video/artifact/job1/object/{2**31 - 1}"),
    ],
)
def test_a_link_to_the_objects_or_one_preview_is_signed_for_that_path(gateway, target, path):
    reply = gateway.post("/api/video/links/job1", json=target, headers=AUTH)
    assert reply.status_code == 200, reply.text
    url = urlsplit(reply.json()["url"])
    query = parse_qs(url.query)
    assert url.path == path and TOKEN not in reply.json()["url"]
    assert query["k"] == ["auth-token"]  # the link acts for the VIDEOEDIT_AUTH_TOKEN holder
    assert signing.verify(TOKEN, path, query["exp"][0], query["k"][0], query["sig"][0])


@pytest.mark.parametrize("object_id", [None, 0, -1, 2**31, 1.5, "2", True])
def test_a_link_to_a_preview_needs_an_objects_id(gateway, object_id):
    body = {"for": "object"} | ({} if object_id is None else {"object_id": object_id})
    reply = gateway.post("/api/video/links/job1", json=body, headers=AUTH)
    assert reply.status_code == 400
    assert reply.json()["error"]["message"].startswith(f"object_id: {object_id!r}")


@pytest.mark.parametrize("object_id", ["0", "-2", "abc", "1.5", str(2**31)])
def test_a_preview_of_a_bad_object_id_is_400_naming_it(gateway, object_id):
    reply = gateway.get(f"/api/video/artifact/job1/object/{object_id}", headers=AUTH)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT" and error["message"].startswith("object_id:")
    assert repr(object_id) in error["message"]
    assert reply.headers["x-content-type-options"] == "nosniff"
