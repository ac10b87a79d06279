"""The management APIs (``/acr/v1``, ``/acr/admin``) answer with their generic codes: a malformed body
or date is INVALID_REQUEST (not NAME_INVALID), and a missing token, scope map or role assignment is
the NOT_FOUND of that named resource (not the answer of a path no route matches)."""

from __future__ import annotations

import httpx
import pytest

from tests.oci import push_image
from tests.storage import StorageProbe


def _error(response: httpx.Response) -> dict[str, object]:
    [error] = response.json()["errors"]
    assert isinstance(error, dict)
    return error


async def test_a_password_expiry_that_is_no_date_is_an_invalid_request_and_stores_nothing(
        client: httpx.AsyncClient, storage: StorageProbe) -> None:
    assert (await client.put("/acr/admin/scopemaps/dated-map", json={"actions": ["repositories/x/content/read"]})
            ).status_code == 200
    assert (await client.put("/acr/admin/tokens/dated-token", json={"scopeMap": "dated-map"})).status_code == 200
    before = await storage.snapshot()
    for expiry, message in [("next tuesday", "expiry must be an ISO 8601 time"),
                            ("2030-01-01T00:00:00", "expiry must carry a time zone")]:
        response = await client.post("/acr/admin/tokens/dated-token/passwords",
                                     json={"name": "password1", "expiry": expiry})
        assert response.status_code == 400, response.text
        assert _error(response) == {"code": "INVALID_REQUEST", "message": message}
    assert await storage.snapshot() == before


@pytest.mark.parametrize(("method", "path"), [
    ("PUT", "/acr/admin/tokens/json-token"), ("PATCH", "/acr/admin/options"), ("POST", "/acr/admin/roleassignments"),
    ("PATCH", "/acr/v1/json/app"),
])
async def test_a_body_that_is_not_json_is_an_invalid_request_and_stores_nothing(
        client: httpx.AsyncClient, storage: StorageProbe, method: str, path: str) -> None:
    await push_image(client, "json/app", "v1")
    before = await storage.snapshot()
    response = await client.request(method, path, content=b'{"scopeMap": ')
    assert response.status_code == 400, response.text
    assert _error(response) == {"code": "INVALID_REQUEST", "message": "the body is not JSON"}
    assert await storage.snapshot() == before


@pytest.mark.parametrize(("method", "path", "resource", "name"), [
    ("GET", "/acr/admin/tokens/no-such-token", "token", "no-such-token"),
    ("PATCH", "/acr/admin/tokens/no-such-token", "token", "no-such-token"),
    ("DELETE", "/acr/admin/tokens/no-such-token", "token", "no-such-token"),
    ("POST", "/acr/admin/tokens/no-such-token/passwords", "token", "no-such-token"),
    ("GET", "/acr/admin/scopemaps/no-such-map", "scope map", "no-such-map"),
    ("DELETE", "/acr/admin/scopemaps/no-such-map", "scope map", "no-such-map"),
    ("PUT", "/acr/admin/tokens/new-token", "scope map", "no-such-map"),
    ("DELETE", "/acr/admin/roleassignments/0f8fad5b-d9cb-469f-a165-70867728950e", "role assignment",
     "0f8fad5b-d9cb-469f-a165-70867728950e"),
])
async def test_a_missing_named_resource_is_its_not_found_and_changes_nothing(
        client: httpx.AsyncClient, storage: StorageProbe, method: str, path: str, resource: str, name: str) -> None:
    before = await storage.snapshot()
    body = {"scopeMap": "no-such-map", "name": "password1"} if method in ("PUT", "PATCH", "POST") else None
    response = await client.request(method, path, json=body)
    assert response.status_code == 404, response.text
    assert _error(response) == {"code": "NOT_FOUND", "message": f"{resource} not found",
                                "detail": {"resource": resource, "name": name}}
    assert await storage.snapshot() == before


async def test_a_path_no_route_matches_is_not_found_without_a_resource(client: httpx.AsyncClient) -> None:
    response = await client.get("/acr/admin/nothing-here")
    assert response.status_code == 404
    assert _error(response) == {"code": "NOT_FOUND", "message": "no API route matches this path"}
