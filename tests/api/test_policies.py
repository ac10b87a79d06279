"""Request-time policies: one route table, each route with an operation; a policy attached to
operations in one place runs on every route doing them, after authentication and authorization,
before the handler; a request no route serves needs registry:admin:*."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shared.api.routing import RouteTable
from shared.composition import APPLICATION, CAPABILITIES, configure, create_app
from shared.errors import Common, RegistryError
from shared.kernel.configurator import Configurator
from shared.kernel.operations import Operation
from shared.kernel.policy import Call
from shared.settings import Settings
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER
from tests.oci import push_blob
from tests.storage import StorageProbe


@pytest.fixture
async def quota_client(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, list[dict[str, Any]]]]:
    """The admin's client of a registry with one more capability: a quota policy refusing every
    upload and manifest push into repositories under ``full/``; and what that policy saw."""
    seen: list[dict[str, Any]] = []

    async def quota(call: Call) -> None:
        seen.append({"operation": call.route.operation, "name": call.params.get("name"),
                     "caller": type(call.state.get("caller")).__name__})
        if str(call.params.get("name", "")).startswith("full/"):
            raise RegistryError(Common.DENIED, "the repository's quota is used up")

    def capability(config: Configurator) -> None:
        config.add_policy(quota, Operation.START_UPLOAD, Operation.WRITE_MANIFEST)

    app = create_app(settings, configure((*CAPABILITIES, capability)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test",
                                 auth=(ADMIN_USER, ADMIN_PASSWORD)) as http:
        yield http, seen
    await app.state.registry.close()


async def test_a_policy_added_by_a_capability_refuses_the_operations_it_is_attached_to(
    quota_client: tuple[httpx.AsyncClient, list[dict[str, Any]]], storage: StorageProbe
) -> None:
    http, seen = quota_client
    before = await storage.snapshot()
    started = await http.post("/v2/full/app/blobs/uploads/")
    assert started.status_code == 403
    assert started.json()["errors"][0] == {"code": "DENIED", "message": "the repository's quota is used up"}
    pushed = await http.put("/v2/full/app/manifests/v1", content=json.dumps({"schemaVersion": 2}).encode(),
                            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert pushed.status_code == 403
    assert await storage.snapshot() == before  # refused before any handler ran
    assert seen == [{"operation": Operation.START_UPLOAD, "name": "full/app", "caller": "Authenticated"},
                    {"operation": Operation.WRITE_MANIFEST, "name": "full/app", "caller": "Authenticated"}]
    await push_blob(http, "open/app", b"a layer")  # other repositories, other operations: untouched
    assert (await http.get("/v2/full/app/tags/list")).status_code == 404
    assert [s["operation"] for s in seen[2:]] == [Operation.START_UPLOAD]  # the upload's PUT is not a push


async def test_authorization_runs_before_a_capability_policy(
    quota_client: tuple[httpx.AsyncClient, list[dict[str, Any]]]
) -> None:
    http, seen = quota_client
    refused = await http.post("/v2/full/app/blobs/uploads/", auth=("nobody", "wrong"))
    assert refused.status_code == 401
    anonymous = await http.post("/v2/full/app/blobs/uploads/", auth=None, headers={"Authorization": ""})
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].endswith('scope="repository:full/app:pull,push"')
    assert seen == []


async def test_a_request_no_route_serves_needs_admin_rights(anon: httpx.AsyncClient) -> None:
    for method, path in (("GET", "/v3/"), ("POST", "/v2/x/manifests/v1"), ("GET", "/acr/admin/unknown")):
        answer = await anon.request(method, path)
        assert answer.status_code == 401, (method, path)
        assert 'scope="registry:admin:*"' in answer.headers["www-authenticate"]


def test_the_route_table_is_what_starlette_serves() -> None:
    routes = RouteTable(APPLICATION).routes
    assert [(r.path, r.methods) for r in routes] == [
        (s.path, set(s.methods) | ({"HEAD"} if "GET" in s.methods else set())) for s in APPLICATION.routes]
    webhook_routes = [s for s in APPLICATION.routes if s.path.startswith("/acr/admin/webhooks")]
    assert len(webhook_routes) == 11  # registered by the webhooks capability
    assert {s.operation for s in webhook_routes} == {Operation.ADMIN}
